/* gc: settles tombstones: the storage side of two-phase delete, shared by the API's
 * cleanup route and the reconciler. Idempotent; safe to run concurrently. */
#include "gc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

#define GC_SELECT                                                                                  \
    "SELECT storage_path FROM gc_objects WHERE ($1::text[] IS NULL OR storage_path = ANY($1))"     \
    " ORDER BY created_at LIMIT $2"
#define GC_FORGET "DELETE FROM gc_objects WHERE storage_path = $1"
#define GC_FAILED                                                                                  \
    "UPDATE gc_objects SET attempts = attempts + 1, last_error = $2 WHERE storage_path = $1"

struct prefix_walk {
    s3_client *s3;
    long deleted;
    int failed;
    char err[ERR_MAX];
};

static int delete_one(const char *key, long long size, time_t mtime, void *ud)
{
    struct prefix_walk *w = ud;

    if (s3_delete_object(w->s3, key, w->err) != S3_OK)
        return w->failed = 1, 1;
    w->deleted++;
    return 0;
}

/* Deletes the object, or every object under a prefix. Objects deleted, or -1. */
static long delete_path(s3_client *s3, const char *path, char *err)
{
    struct prefix_walk w = {.s3 = s3};
    size_t n = strlen(path);

    if (n == 0 || path[n - 1] != '/')
        return s3_delete_object(s3, path, err) == S3_OK ? 1 : -1;
    if (s3_list_objects(s3, path, delete_one, &w, err) != S3_OK)
        return -1;
    if (w.failed)
        return err_set(err, "%s", w.err), -1;
    return w.deleted;
}

/* {a,b,c} as a text[] literal; paths are object keys without quotes or braces. */
static char *pg_array(const char *const *paths, int n)
{
    buf b = {0};

    if (buf_puts(&b, "{") < 0)
        goto fail;
    for (int i = 0; i < n; i++)
        if (buf_printf(&b, "%s\"%s\"", i ? "," : "", paths[i]) < 0)
            goto fail;
    if (buf_puts(&b, "}") < 0)
        goto fail;
    return b.data;
fail:
    buf_free(&b);
    return NULL;
}

static int settle(pg_conn *db, s3_client *s3, const char *path, struct gc_stats *st, char *err)
{
    char s3err[ERR_MAX];
    const char *p[2] = {path, s3err};
    long n = delete_path(s3, path, s3err);
    PGresult *r;

    FAULT_POINT("gc_after_delete");
    r = pg_query(db, n < 0 ? GC_FAILED : GC_FORGET, n < 0 ? 2 : 1, p, err);
    if (!r)
        return -1;
    PQclear(r);
    if (n < 0) {
        st->failures++;
        log_warn(NULL, "gc_delete_failed", s3err, "path", path);
    } else {
        st->tombstones++;
        st->objects += n;
    }
    return 0;
}

int gc_drain(pg_conn *db, s3_client *s3, const char *const *paths, int npaths, int limit,
             struct gc_stats *st, char *err)
{
    char lim[16], *arr = npaths > 0 ? pg_array(paths, npaths) : NULL;
    const char *p[2] = {arr, lim};
    PGresult *r;
    int rc = 0;

    if (npaths > 0 && !arr)
        return err_set(err, "out of memory"), -1;
    snprintf(lim, sizeof lim, "%d", limit);
    r = pg_query(db, GC_SELECT, 2, p, err);
    free(arr);
    if (!r)
        return -1;
    for (int i = 0; i < PQntuples(r) && rc == 0; i++)
        rc = settle(db, s3, PQgetvalue(r, i, 0), st, err);
    PQclear(r);
    return rc;
}
