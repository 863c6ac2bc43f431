/* sessions: the upload-session sweeps. half_committed takes over sessions whose completion
 * lease ran out; expired_sessions closes sessions past expires_at and frees their storage. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "finalize.h"
#include "rec.h"

#define TS_START "-infinity"
#define UUID_START "00000000-0000-0000-0000-000000000000"
#define LEASED_COLS 21 /* lease_until, after the UPLOAD_ROW_COLS */

enum { HALF_REOPEN, HALF_FINALIZE };

/* A session marked expired, for the storage step. */
struct expiring {
    const char *id, *uid, *key;
    int owned; /* a blob has the key as its storage: never deleted */
};

static void expire_storage(struct rec *r, s3_client *s3, void *item);

/* ---- half_committed ---- */

/* Takes the session's lease (it ran out). 1 taken (s reloaded), 0 someone else has it. */
static int lease_take(struct rec *r, struct upload_row *s, char *err)
{
    char lease[37], secs[32], grace[32];
    const char *p[4] = {s->id, lease, secs, grace};
    PGresult *res;
    int got;

    if (util_uuid(lease) < 0)
        return err_set(err, "no randomness"), -1;
    rec_secs(secs, r->cfg->complete_lease);
    rec_secs(grace, r->cfg->lease_grace);
    if (!(res = rec_exec(r, "lease_take", 4, p, err)))
        return -1;
    if ((got = PQntuples(res) == 1))
        upload_row_load(res, 0, s);
    PQclear(res);
    return got;
}

/* Parts still listed: not assembled, the client may retry complete (reopen). No parts
 * (completed in storage, or lost) or no multipart upload but an object: finalize decides.
 * A pending image (made at complete) is always verified: finalize fails it if its object
 * is gone. */
static int half_decide(struct rec *r, const struct upload_row *s, char *err)
{
    struct s3_part *parts = NULL;
    struct s3_object obj;
    int n = 0, rc;

    if (finalize_pending_image(s))
        return HALF_FINALIZE;

    if (s->upload_id[0]) {
        rc = s3_list_parts(r->s3, s->key, s->upload_id, &parts, &n, err);
        free(parts);
        return rc == S3_ERR ? -1 : rc == S3_OK ? HALF_REOPEN : HALF_FINALIZE;
    }
    rc = s3_head_object(r->s3, s->key, &obj, err);
    return rc == S3_ERR ? -1 : rc == S3_OK ? HALF_FINALIZE : HALF_REOPEN;
}

static void half_finalize(struct rec *r, const struct upload_row *s)
{
    struct upload_outcome o = {0};
    struct finalize_opts opt = {r->cfg->upload_topic, POP_BANK_DEFAULT};

    if (r->cfg->dry_run)
        return rec_did(r, "finalize", s->id, "object", s->key, NULL);
    finalize_upload(r->db, r->s3, s, NULL, 0, &opt, &o, NULL);
    if (o.status == 200 && upload_one_put(s))
        finalize_drop_staged(r->s3, s, NULL);
    if (o.status == 503)
        return rec_failed(r, "finalize", s->id, o.msg);
    rec_did(r, "finalize", s->id, "outcome", o.status == 200 ? "committed" : o.code, "image_id",
            o.image_id, "deduplicated", o.dedup ? "true" : "false", NULL);
}

/* Not assembled, but past expiry: no client can complete it any more, so it is closed
 * like any expired session instead of reopened. */
static void half_expire(struct rec *r, const struct upload_row *s)
{
    const char *p[2] = {s->id, s->lease};
    char err[ERR_MAX];
    PGresult *res;
    int n;

    if (r->cfg->dry_run)
        return rec_did(r, "expire_session", s->id, "multipart", s->upload_id[0] ? "abort" : "none",
                       NULL);
    if (!(res = rec_exec(r, "lease_expire", 2, p, err))) {
        finalize_unclaim(r->db, s, NULL);
        return rec_failed(r, "expire_session", s->id, err);
    }
    n = PQntuples(res);
    PQclear(res);
    if (n == 1)
        expire_storage(r, r->s3, &(struct expiring){s->id, s->upload_id, s->key, 0});
}

static void half_one(struct rec *r, struct upload_row *s)
{
    char err[ERR_MAX] = "";
    int rc = r->cfg->dry_run ? 1 : lease_take(r, s, err);

    if (rc <= 0) {
        if (rc < 0)
            rec_failed(r, "take_lease", s->id, err);
        return;
    }
    if ((rc = half_decide(r, s, err)) < 0) {
        if (!r->cfg->dry_run)
            finalize_unclaim(r->db, s, NULL);
        return rec_failed(r, "inspect_upload", s->id, err);
    }
    if (rc == HALF_FINALIZE)
        return half_finalize(r, s);
    if (time(NULL) > s->expires + (time_t)r->cfg->expired_grace)
        return half_expire(r, s);
    if (!r->cfg->dry_run)
        finalize_unclaim(r->db, s, NULL);
    rec_did(r, "reopen", s->id, "status", s->status, NULL);
}

static int half_page(struct rec *r, const PGresult *page, void *ud, char *err)
{
    struct upload_row s;

    for (int i = 0; i < PQntuples(page); i++) {
        upload_row_load(page, i, &s);
        half_one(r, &s);
    }
    return 0;
}

int sweep_half_committed(struct rec *r, char *err)
{
    struct rec_pager pg = {.stmt = "leased_list",
                           .nfixed = 1,
                           .nkeys = 2,
                           .key_cols = {LEASED_COLS, 0},
                           .keys = {TS_START, UUID_START},
                           .fn = half_page};
    char grace[32];

    rec_secs(grace, r->cfg->lease_grace);
    pg.fixed[0] = grace;
    return rec_pages(r, &pg, err);
}

/* ---- expired_sessions ---- */

/* The assembled object of an expired session, unless a blob took it as its storage. */
static const char *drop_staging(struct rec *r, s3_client *s3, const struct expiring *e)
{
    char err[ERR_MAX];
    struct s3_object obj;
    int rc = s3_head_object(s3, e->key, &obj, err);

    if (rc == S3_NOTFOUND)
        return "none";
    if (rc == S3_OK && e->owned)
        return "kept";
    if (rc == S3_OK && s3_delete_object(s3, e->key, err) == S3_OK)
        return "deleted";
    rec_failed(r, "delete_staging", e->key, err);
    return "failed";
}

/* A one-PUT upload's staging object (common/finalize.h), if the client sent it. */
static int drop_one_put(struct rec *r, s3_client *s3, const struct expiring *e)
{
    char key[80], err[ERR_MAX];

    upload_staging_key(e->key, key, sizeof key);
    if (s3_delete_object(s3, key, err) != S3_ERR)
        return 0;
    rec_failed(r, "delete_staging", key, err);
    return -1;
}

/* Storage of a session just marked expired: its multipart upload and any staging object.
 * What fails here is picked up by orphan_multipart and orphan_objects. */
static void expire_storage(struct rec *r, s3_client *s3, void *item)
{
    const struct expiring *e = item;
    char err[ERR_MAX];
    const char *mp = "none", *staging = "none";
    int rc = e->uid[0] ? s3_abort_multipart(s3, e->key, e->uid, err) : S3_NOTFOUND;

    if (rc == S3_ERR)
        rec_failed(r, "abort_multipart", e->key, err), mp = "failed";
    else if (e->uid[0])
        mp = rc == S3_OK ? "aborted" : "gone";
    /* completed in storage, or a one-PUT upload: the object may be there */
    if (rc == S3_NOTFOUND)
        staging = drop_staging(r, s3, e);
    if (!e->uid[0] && drop_one_put(r, s3, e) < 0)
        staging = "failed";
    rec_did(r, "expire_session", e->id, "multipart", mp, "staging", staging, NULL);
}

static int row_in(const PGresult *res, const char *id)
{
    for (int i = 0; i < PQntuples(res); i++)
        if (!strcmp(pg_val(res, i, 0), id))
            return 1;
    return 0;
}

/* One transaction marks the page expired: the page's ids, or NULL with err. */
static PGresult *mark_expired(struct rec *r, const PGresult *page, const char *grace, char *err)
{
    buf ids = {0};
    PGresult *m = NULL;
    int rc = buf_puts(&ids, "{");

    for (int i = 0; i < PQntuples(page) && rc == 0; i++)
        rc = rec_array_add(&ids, pg_val(page, i, 0));
    if (rc < 0 || buf_puts(&ids, "}") < 0) {
        err_set(err, "out of memory");
    } else {
        const char *p[2] = {ids.data, grace};
        m = rec_exec(r, "expired_mark", 2, p, err);
    }
    buf_free(&ids);
    return m;
}

/* The page marked expired in one transaction, then each session's storage freed. */
static int expired_page(struct rec *r, const PGresult *page, void *ud, char *err)
{
    struct expiring *v = calloc((size_t)PQntuples(page), sizeof *v);
    PGresult *m = NULL;
    size_t n = 0;

    if (!v)
        return err_set(err, "out of memory"), -1;
    if (!r->cfg->dry_run && !(m = mark_expired(r, page, ud, err)))
        return free(v), -1;
    if (m && PQntuples(m) > 0)
        FAULT_POINT("expire_after_mark"); /* storage is then orphan_multipart's business */
    for (int i = 0; i < PQntuples(page); i++) {
        const char *id = pg_val(page, i, 0), *uid = pg_val(page, i, 1);
        if (r->cfg->dry_run)
            rec_did(r, "expire_session", id, "multipart", uid[0] ? "abort" : "none", NULL);
        else if (row_in(m, id))
            v[n++] = (struct expiring){id, uid, pg_val(page, i, 2), pg_val(page, i, 4)[0] == 't'};
    }
    rec_fanout(r, expire_storage, v, sizeof *v, n);
    PQclear(m);
    free(v);
    return 0;
}

int sweep_expired_sessions(struct rec *r, char *err)
{
    char grace[32];
    struct rec_pager pg = {.stmt = "expired_list",
                           .nfixed = 1,
                           .nkeys = 2,
                           .key_cols = {3, 0},
                           .keys = {TS_START, UUID_START},
                           .fn = expired_page,
                           .ud = grace};

    rec_secs(grace, r->cfg->expired_grace);
    pg.fixed[0] = grace;
    return rec_pages(r, &pg, err);
}
