/* finalize: assembles, hashes, verifies and commits an upload (blob or ref_count + 1,
 * image, change log, outbox) for the API's complete route and the reconciler's repairs. */
#include "finalize.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gc.h"
#include "log.h"
#include "pop.h"

#define UNCLAIM_TRIES 5 /* 0.1 + 0.2 + 0.4 + 0.8 s between them */

/* Back to 'uploading'; a pending image's session stays 'verifying' with its lease run out,
 * so the next verifier (a client's complete, the API's sweep, the reconciler) takes it. */
const char finalize_sql_unclaim[] =
    "UPDATE upload_sessions SET status = CASE WHEN image_id IS NULL THEN 'uploading'"
    " ELSE status END, lease_token = NULL,"
    " lease_until = CASE WHEN image_id IS NULL THEN NULL ELSE now() END,"
    " updated_at = now() WHERE upload_session_id = $1 AND lease_token = $2";

const char finalize_sql_renew[] =
    "UPDATE upload_sessions SET lease_until = now() + make_interval(secs => $3::float8)"
    " WHERE upload_session_id = $1 AND lease_token = $2";

/* A permanent failure: the session failed, its pending image (if any) failed with a
 * change-log entry, and a tombstone for its object, all at once (then gc_drain). */
const char finalize_sql_fail[] =
    "WITH s AS (UPDATE upload_sessions SET status = 'failed', error_code = $3,"
    " error_message = $4, lease_token = NULL, lease_until = NULL, updated_at = now()"
    " WHERE upload_session_id = $1 AND lease_token = $2 RETURNING image_id, object_key),"
    " i AS (UPDATE images m SET status = 'failed', updated_at = clock_timestamp() FROM s"
    " WHERE m.image_id = s.image_id AND m.status = 'verifying' RETURNING m.image_id, m.owner_id),"
    " c AS (INSERT INTO change_log (user_id, image_id, kind)"
    " SELECT owner_id, image_id, 'failed' FROM i),"
    " g AS (INSERT INTO gc_objects (storage_path, reason) SELECT object_key, 'upload_failed'"
    " FROM s ON CONFLICT DO NOTHING) SELECT count(*) FROM s";

/* The pending commit of an upload verified in the background: while the completer holds
 * the lease ($2), the session 'verifying' with its image ($3) and a verification lease of
 * $4 seconds, the image 'verifying' (no blob: content_hash stays NULL until verified), and
 * its change-log entry. */
const char finalize_sql_pending[] =
    "WITH s AS (UPDATE upload_sessions SET status = 'verifying', image_id = $3,"
    " lease_until = now() + make_interval(secs => $4::float8), updated_at = now()"
    " WHERE upload_session_id = $1 AND lease_token = $2 AND status = 'completing'"
    " RETURNING owner_id, file_name, file_size, mime_type, file_modified_at),"
    " i AS (INSERT INTO images (image_id, owner_id, content_hash, upload_session_id, name, size,"
    " mime_type, status, file_modified_at) SELECT $3, owner_id, NULL, $1, file_name, file_size,"
    " mime_type, 'verifying', file_modified_at FROM s RETURNING image_id, owner_id),"
    " c AS (INSERT INTO change_log (user_id, image_id, kind)"
    " SELECT owner_id, image_id, 'added' FROM i) SELECT count(*) FROM i";

/* The commit, in one statement (atomic, one round trip): while the caller still holds the
 * session's lease ($4, $5), the blob (`blob`: new or ref_count + 1), the session completed,
 * the image (`image`: made, or a pending one verified), its change-log entry (`kind`) and
 * its outbox event. Returns: lease held, the blob's object (NULL: no blob, the content went
 * away), the owner ($6) already had the content, image made. $1 hash, $2 our object, $3
 * size, $7 image, $8 topic. */
#define FIN_COMMIT(blob, seen, image, kind)                                                        \
    "WITH l AS (SELECT upload_session_id FROM upload_sessions WHERE upload_session_id = $4"        \
    " AND lease_token = $5 AND status IN ('completing', 'verifying') FOR UPDATE),"                 \
    " b AS (" blob " RETURNING storage_path, EXISTS (SELECT 1 FROM images"                         \
    " WHERE owner_id = $6 AND content_hash = $1) AS own),"                                         \
    " s AS (UPDATE upload_sessions SET status = 'completed', content_hash = $1, image_id = $7,"    \
    " deduplicated = b.storage_path <> $2, deduplicated_own = " seen ", lease_token = NULL,"       \
    " lease_until = NULL, pop_nonce = NULL, pop_ranges = NULL, pop_answer = NULL,"                 \
    " updated_at = now() FROM b WHERE upload_session_id = $4"                                      \
    " RETURNING b.storage_path, file_name, mime_type, file_modified_at),"                          \
    " i AS (" image " RETURNING image_id, owner_id, content_hash, size, mime_type, created_at),"   \
    " c AS (INSERT INTO change_log (user_id, image_id, kind)"                                      \
    " SELECT owner_id, image_id, '" kind "' FROM i),"                                              \
    " o AS (INSERT INTO outbox (topic, msg_key, payload)"                                          \
    " SELECT $8, content_hash, jsonb_build_object('version', 1, 'type', 'image.uploaded',"         \
    " 'image_id', image_id, 'owner_id', owner_id, 'content_hash', content_hash,"                   \
    " 'storage_path', (SELECT storage_path FROM s), 'size', size, 'mime_type', mime_type,"         \
    " 'occurred_at', created_at) FROM i)"                                                          \
    " SELECT EXISTS (SELECT 1 FROM l), (SELECT storage_path FROM b),"                              \
    " coalesce((SELECT own FROM b), false), EXISTS (SELECT 1 FROM i)"

#define FIN_BLOB_UPLOAD                                                                            \
    "INSERT INTO blobs (content_hash, storage_path, size, ref_count)"                              \
    " SELECT $1, $2, $3, 1 WHERE EXISTS (SELECT 1 FROM l) ON CONFLICT (content_hash)"              \
    " DO UPDATE SET ref_count = blobs.ref_count + 1, updated_at = now()"

#define FIN_IMAGE_NEW                                                                              \
    "INSERT INTO images (image_id, owner_id, content_hash, upload_session_id, name, size,"         \
    " mime_type, file_modified_at) SELECT $7, $6, $1, $4, file_name, $3, mime_type,"               \
    " file_modified_at FROM s"

/* An upload's own bytes: the first copy becomes the blob, a duplicate counts once more. */
const char finalize_sql_commit_upload[] =
    FIN_COMMIT(FIN_BLOB_UPLOAD, "b.own", FIN_IMAGE_NEW, "added");

/* A pending image's bytes, verified in the background: the same, for the image made at
 * complete (a duplicate's image is re-pointed to the stored content). */
const char finalize_sql_commit_verified[] =
    FIN_COMMIT(FIN_BLOB_UPLOAD, "b.own",
               "UPDATE images SET content_hash = $1, status = 'active',"
               " updated_at = clock_timestamp() WHERE image_id = $7 AND status = 'verifying'"
               " AND EXISTS (SELECT 1 FROM s)",
               "verified");

/* A proof of possession: the stored content counts once more, if it is still there. */
const char finalize_sql_commit_proof[] =
    FIN_COMMIT("UPDATE blobs SET ref_count = ref_count + 1, updated_at = now()"
               " WHERE content_hash = $1 AND size = $3 AND EXISTS (SELECT 1 FROM l)",
               "true", FIN_IMAGE_NEW, "added");
void upload_row_load(const PGresult *r, int row, struct upload_row *s)
{
    memset(s, 0, sizeof *s);
    util_strlcpy(s->id, sizeof s->id, pg_val(r, row, 0));
    util_strlcpy(s->owner, sizeof s->owner, pg_val(r, row, 1));
    util_strlcpy(s->status, sizeof s->status, pg_val(r, row, 2));
    util_strlcpy(s->name, sizeof s->name, pg_val(r, row, 3));
    s->size = pg_i64(r, row, 4);
    util_strlcpy(s->mime, sizeof s->mime, pg_val(r, row, 5));
    util_strlcpy(s->declared, sizeof s->declared, pg_val(r, row, 6));
    s->chunk_size = pg_i64(r, row, 7);
    s->chunk_count = (int)pg_i64(r, row, 8);
    util_strlcpy(s->key, sizeof s->key, pg_val(r, row, 9));
    util_strlcpy(s->upload_id, sizeof s->upload_id, pg_val(r, row, 10));
    util_strlcpy(s->pop_nonce, sizeof s->pop_nonce, pg_val(r, row, 11));
    util_strlcpy(s->pop_ranges, sizeof s->pop_ranges, pg_val(r, row, 12));
    util_strlcpy(s->image_id, sizeof s->image_id, pg_val(r, row, 13));
    s->dedup = pg_val(r, row, 14)[0] == 't';
    util_strlcpy(s->error_code, sizeof s->error_code, pg_val(r, row, 15));
    util_strlcpy(s->error_msg, sizeof s->error_msg, pg_val(r, row, 16));
    s->expires = pg_i64(r, row, 17);
    s->expired = pg_val(r, row, 18)[0] == 't';
    util_strlcpy(s->hash, sizeof s->hash, pg_val(r, row, 19));
    util_strlcpy(s->lease, sizeof s->lease, pg_val(r, row, 20));
    s->dedup_own = pg_val(r, row, 21)[0] == 't';
}

void upload_staging_key(const char *key, char *out, size_t len)
{
    const char *slash = strchr(key, '/');

    snprintf(out, len, "staging/%s", slash ? slash + 1 : key);
}

void finalize_outcome(struct upload_outcome *o, int status, const char *code, const char *msg)
{
    o->status = status;
    util_strlcpy(o->code, sizeof o->code, code);
    util_strlcpy(o->msg, sizeof o->msg, msg);
}

/* Runs one statement guarded by the session's lease: 1 applied, 0 the lease was lost (another
 * completer owns the session now), -1 with err. */
static int lease_stmt(pg_conn *db, const char *stmt, const struct upload_row *s, const char *a,
                      const char *b, char *err)
{
    const char *p[4] = {s->id, s->lease, a, b};
    PGresult *r = pg_exec(db, stmt, b ? 4 : a ? 3 : 2, p, err);
    int applied = r && (PQntuples(r) > 0 ? atoi(PQgetvalue(r, 0, 0)) : atoi(PQcmdTuples(r))) > 0;

    PQclear(r);
    return r ? applied : -1;
}

/* Puts a claimed session back to 'uploading' after a transient failure or missing chunks.
 * The failure is often the database going away, so the release is retried for a few
 * seconds (each attempt reconnects): a lease left held would stall the upload for the
 * whole complete-lease (found by bench/chaos: a 0.6 s PostgreSQL restart, 15 min stall). */
int finalize_unclaim(pg_conn *db, const struct upload_row *s, const char *rid)
{
    char err[ERR_MAX] = "";
    useconds_t pause = 100000;

    for (int i = 0; i < UNCLAIM_TRIES; i++, pause *= 2) {
        if (lease_stmt(db, "fin_unclaim", s, NULL, NULL, err) >= 0)
            return 0;
        if (i + 1 < UNCLAIM_TRIES)
            usleep(pause);
    }
    log_warn(rid, "unclaim_failed", err, "upload_session_id", s->id);
    return -1;
}

struct held_lease {
    char id[37], lease[37];
    double until; /* util_now_mono() */
};

struct finalize_held {
    pthread_mutex_t mu;
    int n, cap;
    struct held_lease *v;
};

finalize_held *finalize_held_new(int cap)
{
    finalize_held *h = calloc(1, sizeof *h);

    if (!h || !(h->v = calloc((size_t)cap, sizeof *h->v)) || pthread_mutex_init(&h->mu, NULL)) {
        if (h)
            free(h->v);
        free(h);
        return NULL;
    }
    h->cap = cap;
    return h;
}

void finalize_held_free(finalize_held *h)
{
    if (!h)
        return;
    pthread_mutex_destroy(&h->mu);
    free(h->v);
    free(h);
}

long finalize_held_count(finalize_held *h)
{
    long n;

    pthread_mutex_lock(&h->mu);
    n = h->n;
    pthread_mutex_unlock(&h->mu);
    return n;
}

/* Appends to h; 0, or -1 when full. */
static int held_add(finalize_held *h, const struct held_lease *l)
{
    int rc = -1;

    pthread_mutex_lock(&h->mu);
    if (h->n < h->cap) {
        h->v[h->n++] = *l;
        rc = 0;
    }
    pthread_mutex_unlock(&h->mu);
    return rc;
}

void finalize_release(pg_conn *db, const struct upload_row *s, const struct finalize_opts *opt,
                      const char *rid)
{
    struct held_lease l = {.until = util_now_mono() + opt->held_for};
    char err[ERR_MAX] = "";

    if (!opt->held) {
        (void)finalize_unclaim(db, s, rid); /* logged */
        return;
    }
    /* one try: the held list retries in the background, not on this request's worker */
    if (lease_stmt(db, "fin_unclaim", s, NULL, NULL, err) >= 0)
        return;
    util_strlcpy(l.id, sizeof l.id, s->id);
    util_strlcpy(l.lease, sizeof l.lease, s->lease);
    if (held_add(opt->held, &l) < 0)
        log_warn(rid, "unclaim_dropped", "too many held leases", "upload_session_id", s->id);
}

long finalize_held_retry(finalize_held *h, pg_conn *db, const char *rid)
{
    struct held_lease *mine;
    struct upload_row s = {0};
    char err[ERR_MAX];
    double now = util_now_mono();
    int n;

    pthread_mutex_lock(&h->mu);
    n = h->n;
    mine = malloc(sizeof *mine * (size_t)(n ? n : 1));
    if (mine) {
        memcpy(mine, h->v, sizeof *mine * (size_t)n);
        h->n = 0;
    }
    pthread_mutex_unlock(&h->mu);
    if (!mine)
        return finalize_held_count(h);
    for (int i = 0, down = 0; i < n; i++) {
        if (mine[i].until <= now)
            continue; /* ran out: the session is anyone's again */
        util_strlcpy(s.id, sizeof s.id, mine[i].id);
        util_strlcpy(s.lease, sizeof s.lease, mine[i].lease);
        if (!down && lease_stmt(db, "fin_unclaim", &s, NULL, NULL, err) >= 0) {
            log_info(rid, "unclaim_retried", "released", "upload_session_id", s.id);
            continue;
        }
        down = 1; /* the database is still away: the rest wait for the next pass */
        if (held_add(h, &mine[i]) < 0)
            log_warn(rid, "unclaim_dropped", "too many held leases", "upload_session_id", s.id);
    }
    free(mine);
    return finalize_held_count(h);
}

int finalize_renew(pg_conn *db, const struct upload_row *s, double secs, char *err)
{
    char v[32];
    int rc;

    snprintf(v, sizeof v, "%.3f", secs);
    rc = lease_stmt(db, "fin_renew", s, v, NULL, err);
    if (rc == 0)
        err_set(err, "the completion lease was lost");
    return rc > 0 ? 0 : -1;
}

/* The transaction that makes the image: blob (new or +1), session, image, change log and
 * outbox. pop: the content exists and the client proved possession (no object of ours). A
 * pending image (made at complete) is verified instead of made. */
int finalize_commit(pg_conn *db, const struct upload_row *s, const char *hash, int pop,
                    const char *topic, struct upload_outcome *o, char *err)
{
    char size[24], image_id[37];
    const char *p[8] = {hash, s->key, size, s->id, s->lease, s->owner, image_id, topic};
    const char *stmt = pop ? "fin_commit_proof" : "fin_commit_upload";
    PGresult *r;

    snprintf(size, sizeof size, "%lld", s->size);
    if (finalize_pending_image(s))
        util_strlcpy(image_id, sizeof image_id, s->image_id), stmt = "fin_commit_verified";
    else if (util_uuid(image_id) < 0)
        return err_set(err, "no randomness"), -1;
    if (!(r = pg_exec(db, stmt, 8, p, err)))
        return -1;
    if (pg_val(r, 0, 0)[0] != 't')
        finalize_outcome(o, 409, "conflict", "another completion took this session over");
    else if (!pg_val(r, 0, 1))
        finalize_outcome(o, 409, "dedup_unavailable", "the content is gone; upload it instead");
    else
        finalize_outcome(o, 200, "completed", "");
    if (o->status == 200) {
        util_strlcpy(o->image_id, sizeof o->image_id, image_id);
        util_strlcpy(o->hash, sizeof o->hash, hash);
        o->dedup = strcmp(pg_val(r, 0, 1), s->key) != 0;
        o->seen = pop || pg_val(r, 0, 2)[0] == 't'; /* a proof, or the owner's own duplicate */
    }
    PQclear(r);
    return 0;
}

/* Marks the session (and its pending image) failed for a permanent reason and removes its
 * object through the tombstone written in the same statement. */
static void fail_upload(pg_conn *db, s3_client *s3, const struct upload_row *s,
                        struct upload_outcome *o, int status, const char *code, const char *msg)
{
    char err[ERR_MAX];
    const char *key = s->key;
    struct gc_stats st = {0};

    finalize_outcome(o, status, code, msg);
    util_strlcpy(o->image_id, sizeof o->image_id, s->image_id);
    int rc = lease_stmt(db, "fin_fail", s, code, msg, err);

    if (rc < 0)
        log_warn(NULL, "session_fail_failed", err, "upload_session_id", s->id);
    else if (rc == 0) /* taken over: the object is the new owner's to judge */
        log_warn(NULL, "lease_lost", "session taken over", "upload_session_id", s->id);
    else if (gc_drain(db, s3, &key, 1, 1, &st, err) < 0 || st.failures)
        log_warn(NULL, "gc_failed", err, "key", s->key); /* the reconciler settles it */
}

/* Stores the challenges prepared in the verification pass (best effort: a blob without a
 * bank is refilled on first use). */
static void store_bank(pg_conn *db, pop_bank *bank, int cap, const char *hash, const char *rid)
{
    char err[ERR_MAX];

    if (!bank)
        return;
    if (pop_bank_finish(bank) < 0)
        log_warn(rid, "pop_bank_failed", "short read", "content_hash", hash);
    else if (pop_bank_store(bank, db, hash, cap, err) < 0)
        log_warn(rid, "pop_bank_failed", err, "content_hash", hash);
}

void finalize_drop_staged(s3_client *s3, const struct upload_row *s, const char *rid)
{
    char staging[80], err[ERR_MAX];

    upload_staging_key(s->key, staging, sizeof staging);
    if (s3_delete_object(s3, staging, err) == S3_ERR)
        log_warn(rid, "s3_delete_failed", err, "key", staging);
}

/* Assembles the parts (unless parts is NULL: assembled already, or a one-PUT upload's object
 * the API copied from its staging key) and checks the object's size. 0 (obj filled), 1
 * failed for good (o answered), -1 transient (err). */
static int assemble(pg_conn *db, s3_client *s3, const struct upload_row *s,
                    const struct s3_part *parts, int n, struct s3_object *obj,
                    struct upload_outcome *o, char *err)
{
    int rc = parts ? s3_complete_multipart(s3, s->key, s->upload_id, parts, n, err) : S3_OK;

    FAULT_POINT("complete_after_s3");
    if (!parts && n == FINALIZE_IN_PLACE) /* the caller just saw it, of the declared size */
        return obj->size = s->size, 0;
    if (rc == S3_OK || rc == S3_NOTFOUND)
        rc = s3_head_object(s3, s->key, obj, err);
    if (rc == S3_NOTFOUND)
        return fail_upload(db, s3, s, o, 409, "upload_lost", "the uploaded parts are gone"), 1;
    if (rc != S3_OK)
        return -1;
    if (obj->size != s->size)
        return fail_upload(db, s3, s, o, 422, "size_mismatch", "stored size differs"), 1;
    return 0;
}

/* A background verification's lease, renewed while it hashes. */
struct renewal {
    pg_conn *db;
    const struct upload_row *s;
    double secs;
};

static int renew_tick(void *ud)
{
    struct renewal *w = ud;
    char err[ERR_MAX];

    if (finalize_renew(w->db, w->s, w->secs, err) == 0)
        return 0;
    log_warn(NULL, "lease_renewal_failed", err, "upload_session_id", w->s->id);
    return -1; /* lost (or no database): another verifier takes over */
}

/* Hashes the object (answering the bank in the same pass, renewing a verification lease)
 * and checks the declared sha256. 0 (hash set), 1 failed for good (o answered), -1
 * transient (err). */
static int verify(pg_conn *db, s3_client *s3, const struct upload_row *s, pop_bank *bank,
                  double lease, char hash[65], struct upload_outcome *o, char *err)
{
    struct renewal w = {db, s, lease};
    struct pop_tick tick = {renew_tick, &w, lease / 3};
    int rc = pop_hash_object(s3, s->key, s->size, bank, lease > 0 ? &tick : NULL, hash, err);

    if (rc == S3_NOTFOUND)
        return fail_upload(db, s3, s, o, 409, "upload_lost", "the uploaded object is gone"), 1;
    if (rc != S3_OK)
        return -1;
    if (s->declared[0] && strcmp(hash, s->declared))
        return fail_upload(db, s3, s, o, 422, "sha256_mismatch",
                           "the uploaded bytes do not match the declared sha256"),
               1;
    return 0;
}

/* Commits a verified object, removes a duplicate's own object, stores the bank. */
static int commit(pg_conn *db, s3_client *s3, const struct upload_row *s, const char *hash,
                  pop_bank *bank, const struct finalize_opts *opt, struct upload_outcome *o,
                  const char *rid, char *err)
{
    if (finalize_commit(db, s, hash, 0, opt->topic, o, err) < 0)
        return -1;
    FAULT_POINT("complete_after_commit");
    if (o->status == 200 && o->dedup && s3_delete_object(s3, s->key, err) != S3_OK)
        log_warn(rid, "s3_delete_failed", err, "key", s->key); /* reconciler: orphan */
    if (o->status == 200)
        store_bank(db, bank, opt->pop_bank, hash, rid);
    log_info(rid, finalize_pending_image(s) ? "upload_verified" : "upload_completed",
             o->status == 200 ? "committed" : o->code, "upload_session_id", s->id, "image_id",
             o->image_id, "deduplicated", o->dedup ? "true" : "false");
    return 0;
}

static void transient(pg_conn *db, const struct upload_row *s, const struct finalize_opts *opt,
                      struct upload_outcome *o, const char *err, const char *rid)
{
    log_error(rid, "complete_failed", err, "upload_session_id", s->id);
    finalize_outcome(o, 503, "unavailable", "storage or database unavailable; retry complete");
    finalize_release(db, s, opt, rid);
}

/* Assembles (unless already assembled), verifies and commits a claimed session, or verifies
 * and commits its pending image. On a transient failure the session is released (outcome
 * 503). */
void finalize_upload(pg_conn *db, s3_client *s3, const struct upload_row *s,
                     const struct s3_part *parts, int n, const struct finalize_opts *opt,
                     struct upload_outcome *o, const char *rid)
{
    struct s3_object obj;
    char err[ERR_MAX] = "", hash[65];
    /* a declared duplicate whose bank is full gets no challenges to hash for */
    int want = s->declared[0] ? pop_bank_wanted(db, s->declared, opt->pop_bank) : opt->pop_bank;
    pop_bank *bank = pop_bank_new(s->size, want);
    int rc = assemble(db, s3, s, finalize_pending_image(s) ? NULL : parts, n, &obj, o, err);

    if (rc == 0)
        rc = verify(db, s3, s, bank, opt->verify_lease, hash, o, err);
    if (rc == 0)
        rc = commit(db, s3, s, hash, bank, opt, o, rid, err);
    if (rc < 0)
        transient(db, s, opt, o, err, rid);
    pop_bank_free(bank);
}

void finalize_pending(pg_conn *db, s3_client *s3, struct upload_row *s, const struct s3_part *parts,
                      int n, const struct finalize_opts *opt, struct upload_outcome *o,
                      const char *rid)
{
    struct s3_object obj;
    char err[ERR_MAX] = "", image_id[37], secs[32];
    const char *p[4] = {s->id, s->lease, image_id, secs};
    PGresult *r = NULL;
    int rc = assemble(db, s3, s, parts, n, &obj, o, err);

    if (rc > 0)
        return;
    snprintf(secs, sizeof secs, "%.3f", opt->verify_lease);
    if (rc == 0 && util_uuid(image_id) < 0)
        rc = -1, err_set(err, "no randomness");
    if (rc == 0 && !(r = pg_exec(db, "fin_pending", 4, p, err)))
        rc = -1;
    if (rc < 0)
        return transient(db, s, opt, o, err, rid);
    if (atoi(pg_val(r, 0, 0)) != 1)
        finalize_outcome(o, 409, "conflict", "another completion took this session over");
    else
        finalize_outcome(o, 202, "verifying", "");
    PQclear(r);
    if (o->status != 202)
        return;
    util_strlcpy(o->image_id, sizeof o->image_id, image_id);
    util_strlcpy(s->image_id, sizeof s->image_id, image_id);
    util_strlcpy(s->status, sizeof s->status, "verifying");
    log_info(rid, "upload_pending", "verifying in the background", "upload_session_id", s->id,
             "image_id", image_id);
}
