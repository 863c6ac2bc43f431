/* state: the resume state of one upload, kept in a small JSON file per local file so that a
 * killed pixctl can carry on: session id, the file's identity, chunk layout, chunks done. */
#ifndef PIXCTL_STATE_H
#define PIXCTL_STATE_H

#include <limits.h>
#include "util.h"

/* What makes a file "the same file" for resuming. */
struct file_ident {
    char path[PATH_MAX]; /* absolute */
    long long size;
    long long mtime_sec, mtime_nsec;
    unsigned long long dev, ino;
    char sha256[65]; /* "" for an upload hashed while it is sent (declared at complete) */
};

struct upload_state {
    struct file_ident file;
    char api_url[512];
    char session_id[37];
    long long chunk_size;
    int chunk_count;
    unsigned char *done; /* chunk_count flags: 1 = known stored (advisory: the server decides) */
};

/* dir/<sha256 of abs_path>.json into out. 0 or -1 if it does not fit. */
int state_path(const char *dir, const char *abs_path, char *out, size_t n) PIX_WUR;
/* Serialized state, malloc'd (NULL: out of memory). */
char *state_to_json(const struct upload_state *s);
/* Parses text into s (s->done allocated). 0 or -1 with err (not a state file, bad field). */
int state_from_json(const char *text, size_t len, struct upload_state *s, char *err) PIX_WUR;
/* Writes s to path atomically. 0 or -1 with err. */
int state_save(const char *path, const struct upload_state *s, char *err) PIX_WUR;
/* 1 loaded, 0 no such file, -1 unreadable or corrupt (err set). */
int state_load(const char *path, struct upload_state *s, char *err) PIX_WUR;
/* Allocates done flags for chunk_count chunks (all 0). 0 or -1. */
int state_alloc(struct upload_state *s, int chunk_count) PIX_WUR;
void state_clear(struct upload_state *s);
int state_count_done(const struct upload_state *s);
/* 1 when a and b are the same file with the same content (path, size, mtime, device,
 * inode and sha256 all equal). */
int state_same_file(const struct file_ident *a, const struct file_ident *b);

#endif
