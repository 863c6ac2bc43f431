/* sync: what the one-way mirror (sync.c) shares with the two-way sync (bisync.c): the open
 * sync folder, its index and cursor on disk, the delta feed's pages, and bringing the
 * folder in line with the index (downloads, names, removals). */
#ifndef PIXCTL_SYNC_H
#define PIXCTL_SYNC_H

#include <cjson/cJSON.h>
#include <limits.h>
#include "pixctl.h"
#include "sidx.h"

#define SYNC_META ".pixplane"
#define SYNC_TMP_REL ".pixplane/tmp/"
#define SYNC_CURSOR_MAX 512

struct syncer;
/* One pass of the folder's sync (a mirror pull or a two-way pass). */
typedef int (*sync_pass_fn)(struct syncer *s, char *err);

struct syncer {
    struct pix *px;
    char dir[PATH_MAX], tmpdir[PATH_MAX], index_path[PATH_MAX], cursor_path[PATH_MAX];
    struct sidx idx;
    char cursor[SYNC_CURSOR_MAX];
    int lockfd;
    int added, updated, removed, renamed, downloads;
    int dl_rc; /* first download failure of this pass */
    char dl_err[ERR_MAX];
    sync_pass_fn pass; /* what --watch runs after an event */
    int wfd;           /* inotify descriptor of DIR for a two-way --watch, else -1 */
    void *two;         /* the two-way sync's state (bisync.c) */
};

/* DIR/local into out. */
void sync_abs(const struct syncer *s, const char *local, char *out, size_t n);
/* 1 if local is a file staged in DIR/.pixplane/tmp/. */
int sync_in_tmp(const char *local);
/* {"action":what,"image_id":id,"path":path}, for more members and sync_print. */
cJSON *sync_action_new(const char *what, const char *id, const char *path);
/* o as one line on stdout (flushed); o is freed. */
void sync_print(cJSON *o);
/* An "action" line: JSON on stdout with --json, else a note on stderr. */
void sync_action(const struct syncer *s, const char *what, const char *id, const char *path,
                 const char *from);
int sync_save_index(struct syncer *s, char *err);
int sync_save_cursor(struct syncer *s, const char *cursor, char *err);
/* GET /sync?since=: PIX_OK with the page, 1 when the cursor is too old (410), else an exit
 * code with err. */
int sync_get_page(struct syncer *s, const char *since, cJSON **page, char *err);
/* sync_get_page, restarting from "0" (*full set) when the cursor is too old. */
int sync_fetch(struct syncer *s, char *since, size_t n, int *full, cJSON **page, char *err);
/* Done with a page (freed): its cursor in since, *more if pages follow. rc is how its
 * changes went; PIX_EAPI with err if the page has no cursor. */
int sync_page_end(cJSON *page, char *since, size_t n, int *more, int rc, char *err);
/* The page's cursor as text ("" if it has none). */
void sync_page_cursor(const cJSON *page, char *out, size_t n);
/* Unlinks e's file and drops e from the index. */
void sync_remove_entry(struct syncer *s, struct sidx_entry *e);
/* Gives every entry its content (in place, adopted or downloaded; need set: downloaded
 * again) and its assigned name, then saves the index. */
int sync_reconcile(struct syncer *s, char *err);

/* `sync --two-way`: one pass (bisync.c), set up by bisync_open after the folder is open. */
int bisync_open(struct syncer *s, char *err);
int bisync_pass(struct syncer *s, char *err);
/* Reads the inotify events waiting on s->wfd: 1 if one concerns a synced file. */
int bisync_drain_events(struct syncer *s);
void bisync_summary(const struct syncer *s);
void bisync_close(struct syncer *s);

#endif
