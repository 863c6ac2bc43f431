/* storage: the sweeps that start from the bucket: abort multipart uploads no live session owns,
 * delete objects under blobs/ and variants/ no row refers to, a listed batch at a time. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rec.h"

/* A batch of listed keys (and, for multipart uploads, their upload ids). */
struct listing {
    struct rec *r;
    const char *stmt; /* returns the 1-based positions of live (multipart) or orphan keys */
    time_t cutoff;    /* only entries last touched before this count */
    char **keys, **uids;
    int multipart; /* uids are filled */
    int n, failed;
    char err[ERR_MAX];
};

static void listing_reset(struct listing *l)
{
    for (int i = 0; i < l->n; i++) {
        free(l->keys[i]);
        free(l->uids[i]);
    }
    l->n = 0;
}

static int listing_init(struct listing *l, struct rec *r, const char *stmt, double grace,
                        int multipart)
{
    memset(l, 0, sizeof *l);
    l->r = r, l->stmt = stmt, l->multipart = multipart;
    l->cutoff = time(NULL) - (time_t)grace;
    l->keys = calloc((size_t)r->cfg->batch, sizeof *l->keys);
    l->uids = calloc((size_t)r->cfg->batch, sizeof *l->uids);
    return l->keys && l->uids ? 0 : -1;
}

static void listing_free(struct listing *l)
{
    listing_reset(l);
    free(l->keys);
    free(l->uids);
}

/* The batch's column as a PostgreSQL array literal into b. */
static int batch_array(buf *b, char **v, int n)
{
    int rc = buf_puts(b, "{");

    for (int i = 0; i < n && rc == 0; i++)
        rc = rec_array_add(b, v[i]);
    return rc ? rc : buf_puts(b, "}");
}

/* Runs l->stmt over the batch; marks[i] = 1 for the positions it returns. */
static int batch_query(struct listing *l, char *marks)
{
    buf keys = {0}, uids = {0};
    const char *p[2];
    PGresult *res = NULL;
    int np = l->multipart ? 2 : 1;

    if (batch_array(&keys, l->keys, l->n) < 0 || (np == 2 && batch_array(&uids, l->uids, l->n) < 0))
        err_set(l->err, "out of memory");
    else if ((p[0] = keys.data, p[1] = uids.data, res = rec_exec(l->r, l->stmt, np, p, l->err)))
        for (int i = 0; i < PQntuples(res); i++)
            marks[atoi(pg_val(res, i, 0)) - 1] = 1;
    buf_free(&keys);
    buf_free(&uids);
    PQclear(res);
    return res ? 0 : -1;
}

/* One storage repair: a multipart upload to abort (uid set) or an object to delete. */
struct target {
    const char *key, *uid;
};

static void repair(struct rec *r, s3_client *s3, void *item)
{
    const struct target *t = item;
    char err[ERR_MAX];
    int rc = S3_OK;

    if (!r->cfg->dry_run)
        rc = t->uid ? s3_abort_multipart(s3, t->key, t->uid, err)
                    : s3_delete_object(s3, t->key, err);
    if (rc == S3_ERR)
        rec_failed(r, t->uid ? "abort_multipart" : "delete_object", t->key, err);
    else if (t->uid)
        rec_did(r, "abort_multipart", t->key, "upload_id", t->uid, NULL);
    else
        rec_did(r, "delete_object", t->key, NULL);
}

/* Checks and repairs the batch; 1 (stop listing) on a database failure or a stop. */
static int flush(struct listing *l)
{
    char marks[10000] = {0};
    struct target *v;
    size_t n = 0;

    if (l->n == 0)
        return 0;
    if (rec_stopping(l->r, l->err) || batch_query(l, marks) < 0)
        return l->failed = 1;
    if (!(v = calloc((size_t)l->n, sizeof *v))) {
        err_set(l->err, "out of memory");
        return l->failed = 1;
    }
    for (int i = 0; i < l->n; i++)
        if (l->multipart ? !marks[i] : marks[i]) /* live uploads, orphan objects are marked */
            v[n++] = (struct target){l->keys[i], l->multipart ? l->uids[i] : NULL};
    rec_fanout(l->r, repair, v, sizeof *v, n);
    free(v);
    listing_reset(l);
    return 0;
}

static int push(struct listing *l, const char *key, const char *uid, time_t when)
{
    rec_examined(l->r, 1);
    if (when > l->cutoff)
        return 0;
    if (!(l->keys[l->n] = strdup(key)) || (uid && !(l->uids[l->n] = strdup(uid)))) {
        free(l->keys[l->n]);
        l->keys[l->n] = NULL;
        err_set(l->err, "out of memory");
        return l->failed = 1;
    }
    return ++l->n == l->r->cfg->batch ? flush(l) : 0;
}

static int on_upload(const char *key, const char *upload_id, time_t initiated, void *ud)
{
    return push(ud, key, upload_id, initiated);
}

static int on_object(const char *key, long long size, time_t last_modified, void *ud)
{
    return push(ud, key, NULL, last_modified);
}

/* Lists prefix (multipart uploads or objects) and repairs batch by batch. 0 or -1. */
static int sweep_prefix(struct rec *r, const char *prefix, const char *stmt, double grace,
                        int multipart, char *err)
{
    struct listing l;
    int rc;

    if (listing_init(&l, r, stmt, grace, multipart) < 0) {
        listing_free(&l);
        return err_set(err, "out of memory"), -1;
    }
    rc = multipart ? s3_list_multipart_uploads(r->lister, prefix, on_upload, &l, err)
                   : s3_list_objects(r->lister, prefix, on_object, &l, err);
    if (rc == S3_OK && !l.failed)
        flush(&l);
    if (l.failed)
        err_set(err, "%s", l.err);
    listing_free(&l);
    return rc == S3_OK && !l.failed ? 0 : -1;
}

int sweep_orphan_multipart(struct rec *r, char *err)
{
    return sweep_prefix(r, "blobs/", "multipart_live", r->cfg->multipart_grace, 1, err);
}

int sweep_orphan_objects(struct rec *r, char *err)
{
    if (sweep_prefix(r, "blobs/", "blobs_orphans", r->cfg->orphan_grace, 0, err) < 0 ||
        sweep_prefix(r, "staging/", "staging_orphans", r->cfg->orphan_grace, 0, err) < 0)
        return -1;
    return sweep_prefix(r, "variants/", "variants_orphans", r->cfg->orphan_grace, 0, err);
}
