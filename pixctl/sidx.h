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
    int seen;                    /* listed by the current full resync (not saved) */
    int need;                    /* content changed: download again (not saved) */
    int fetched;                 /* downloaded this pass: 1 new, 2 new content (not saved) */
};

struct sidx {
    struct sidx_entry *e;
    int n, cap;
};

/* Text form: a header line, then "id\tsha256\tsize\tlocal\tname\n" per entry. malloc'd. */
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
void sidx_free(struct sidx *x);

#endif
