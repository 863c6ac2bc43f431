/* iidx: the import index (STATE_DIR/import-index): which image each imported file became,
 * by absolute path, with the size, mtime, device and inode the file had then, so that a
 * second import trusts unchanged files without reading them. One line per file,
 * tab-separated; lines are appended as files finish (a torn last line after a crash is
 * ignored) and the file is rewritten whole at the end of an import. Also a small set of
 * short keys (hex digests, image ids) with a value each, for what the server holds. */
#ifndef PIXCTL_IIDX_H
#define PIXCTL_IIDX_H

#include <stddef.h>
#include "state.h"
#include "util.h"

#define IIDX_KEY_MAX 64 /* keys of an iidx_set: a sha256 in hex, an image id */
#define IIDX_VAL_MAX 36 /* values: an image id */

struct iidx_entry {
    char *path; /* absolute (owned by the index) */
    long long size, mtime_sec, mtime_nsec;
    unsigned long long dev, ino;
    char sha256[65];
    char image_id[IIDX_VAL_MAX + 1];
    char kind; /* IIDX_* */
};

enum {
    IIDX_IMPORTED = 'i', /* the image was made from this file */
    IIDX_MATCHED = 'm',  /* the file was skipped: this image has its content */
};

typedef struct iidx iidx;
typedef struct iidx_set iidx_set;

iidx *iidx_new(void);
void iidx_free(iidx *x);
int iidx_count(const iidx *x);
/* Adds the entries of the index file path (a missing file adds none; malformed lines are
 * skipped, later lines win). 0 or -1 with err (out of memory, unreadable). */
int iidx_load(iidx *x, const char *path, char *err) PIX_WUR;
/* Writes every entry to path atomically. 0 or -1 with err. */
int iidx_save(const iidx *x, const char *path, char *err) PIX_WUR;
/* The entry for path, or NULL. */
const struct iidx_entry *iidx_find(const iidx *x, const char *path);
/* Adds e (copied) or replaces the entry with its path. 0 or -1 (out of memory). */
int iidx_put(iidx *x, const struct iidx_entry *e) PIX_WUR;
/* One entry as a line (with its '\n') into out: its length, or -1 if it does not fit or
 * the path holds a tab or a line end (such files are imported but not indexed). */
int iidx_format(const struct iidx_entry *e, char *out, size_t n);
/* Parses one line (without its '\n') into e; e->path points into line (modified). 0 or
 * -1. */
int iidx_parse(char *line, struct iidx_entry *e) PIX_WUR;
/* 1 if e still describes f: same size, mtime (to the nanosecond), device and inode. */
int iidx_fresh(const struct iidx_entry *e, const struct file_ident *f);
/* The entry for f's path as the index has it (f->sha256 is copied in). */
void iidx_entry_of(const struct file_ident *f, const char *image_id, char kind,
                   struct iidx_entry *e);

iidx_set *iidx_set_new(void);
void iidx_set_free(iidx_set *s);
/* Adds key with val ("" allowed): 1 added, 0 already there (its value kept), -1 out of
 * memory or a key longer than IIDX_KEY_MAX. */
int iidx_set_put(iidx_set *s, const char *key, const char *val);
/* The value of key, or NULL if it is not in the set. */
const char *iidx_set_get(const iidx_set *s, const char *key);
int iidx_set_count(const iidx_set *s);

#endif
