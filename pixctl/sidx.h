/* sidx: the sync folder's index (DIR/.pixplane/index): which image each local file holds,
 * with the content hash and size it must have. One line per image, tab-separated. */
#ifndef PIXCTL_SIDX_H
#define PIXCTL_SIDX_H

#include "naming.h"
#include "util.h"

struct sidx_entry {
    char id[64];
    char sha256[65];
    long long size;
    char name[NAMING_MAX + 1];   /* the name on the server (the API allows 255 bytes) */
    char local[NAMING_MAX + 64]; /* file relative to DIR ("" until placed) */
    /* the local file as last synced, so an unchanged file is known without reading it */
    long long mtime_ns; /* 0: unknown (read it to compare) */
    unsigned long long ino;
    int foreign; /* owned by another user (shared with us): read-only */
    /* two-way: the server's state, recorded from the feed and not yet merged */
    int srv; /* SIDX_SRV_* */
    char srv_sha256[65];
    long long srv_size;
    char srv_name[NAMING_MAX + 1];
    int seen;    /* listed by the current full resync (not saved) */
    int need;    /* content changed: download again (not saved) */
    int fetched; /* downloaded this pass: 1 new, 2 new content (not saved) */
    int hold;    /* two-way: the local file has changes not merged yet: leave it (not saved) */
};

enum { SIDX_SRV_NONE = 0, SIDX_SRV_PRESENT = 1, SIDX_SRV_GONE = 2 };

struct sidx {
    struct sidx_entry *e;
    int n, cap;
};

/* Text form: a header line, then per entry "id sha256 size mtime_ns ino foreign local name
 * srv srv_sha256 srv_size srv_name", tab-separated (v1 files, "id sha256 size local name",
 * still load). malloc'd. */
char *sidx_format(const struct sidx *x);
/* Parses text (replacing x's entries). 0 or -1 with err. */
int sidx_parse(const char *text, struct sidx *x, char *err) PIX_WUR;
/* Missing file: empty index. 0 or -1 with err. */
int sidx_load(const char *path, struct sidx *x, char *err) PIX_WUR;
int sidx_save(const char *path, const struct sidx *x, char *err) PIX_WUR;
struct sidx_entry *sidx_find(struct sidx *x, const char *id);
/* The entry whose local file is local, or NULL. */
struct sidx_entry *sidx_find_local(struct sidx *x, const char *local);
/* A new zeroed entry for id (NULL: out of memory). Pointers to entries are invalidated. */
struct sidx_entry *sidx_add(struct sidx *x, const char *id);
void sidx_remove(struct sidx *x, struct sidx_entry *e);
/* Records path's size, mtime and inode in e (left alone if it cannot be read). */
void sidx_note_stat(struct sidx_entry *e, const char *path);
void sidx_free(struct sidx *x);

#endif
