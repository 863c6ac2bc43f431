/* dl: verified downloads through signed URLs: streamed into a temporary file with SHA-256
 * computed on the way, retried (resuming with Range) on network errors and expired URLs,
 * fsynced, and only then renamed by the caller; a failure leaves no file behind. */
#ifndef PIXCTL_DL_H
#define PIXCTL_DL_H

#include <cjson/cJSON.h>
#include <limits.h>
#include "pixctl.h"

/* Gives a fresh signed URL (malloc'd) for each attempt. */
typedef int (*dl_url_fn)(struct pix *px, void *ud, char **url, char *err);

struct dl_src {
    dl_url_fn get_url;
    void *ud;
    const char *label; /* for progress */
    int progress;      /* enum progress_mode */
};

struct dl_result {
    char sha256[65];
    long long bytes;
    char content_type[128];
};

/* Downloads src into a new file dir/PREFIX-XXXXXX (mode 0666 & ~umask), checks the
 * sha256 when expect_sha is not NULL, fsyncs it. PIX_OK with its path in tmp; else the file
 * is removed and the exit code returned with err (PIX_EVERIFY for a wrong hash). */
int dl_to_tmp(struct pix *px, const struct dl_src *src, const char *dir, const char *prefix,
              const char *expect_sha, long long size, char tmp[PATH_MAX], struct dl_result *res,
              char *err);
/* Image id's signed URL (GET /images/{id}); ud is the id. */
int dl_image_url(struct pix *px, void *ud, char **url, char *err);
/* GET /images/{id}/metadata. */
int dl_metadata(struct pix *px, const char *id, cJSON **meta, char *err);
/* The string member key of o, or "". */
const char *dl_jstr(const cJSON *o, const char *key);
/* The number member key of o, or -1. */
long long dl_jnum(const cJSON *o, const char *key);

#endif
