/* upload: what a bulk import (bulk.c) uses of the single-file upload: the resume state
 * directory, and carrying one hashed file from the session a batch opened to an image. */
#ifndef PIXCTL_UPLOAD_H
#define PIXCTL_UPLOAD_H

#include <cjson/cJSON.h>
#include "pixctl.h"
#include "state.h"

/* One file of a bulk import, hashed (file.sha256 set). */
struct upload_item {
    const char *arg;        /* the path as walked or listed (for messages) */
    struct file_ident file; /* absolute path, size, mtime, device, inode, sha256 */
    const char *mime;
};

struct upload_result {
    char image_id[64];
    char session_id[37];
    int dedup;            /* the server stored the content once for several images */
    int proof;            /* possession proved: no bytes sent */
    long long bytes_sent; /* bytes this run sent to storage */
};

/* The resume state directory (--state-dir, else $XDG_CACHE_HOME/pixplane/uploads, else
 * ~/.cache/pixplane/uploads), created if missing. PIX_OK or an exit code with err. */
int upload_state_dir(const struct pixctl_config *cfg, char *out, size_t n, char *err);

/* Uploads it through session (a session object POST /uploads/batch answered, maybe a
 * replay of an earlier run's: it carries on from its status; NULL or a dead session: a new
 * one is opened with POST /uploads). Answers the session's dedup challenge, sends the
 * chunks storage lacks, completes. The file must still have it->file's size, mtime and
 * inode. Thread-safe when each thread has its own px->api. PIX_OK with res filled, or an
 * exit code with err. No resume state file is written: the batch's idempotency key is the
 * way back to the session. */
int upload_session_file(struct pix *px, const struct upload_item *it, const cJSON *session,
                        struct upload_result *res, char *err);

#endif
