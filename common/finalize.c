/* finalize: assembles, hashes, verifies and commits an upload (blob or ref_count + 1,
 * image, change log, outbox) for the API's complete route and the reconciler's repairs. */
#include "finalize.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "pop.h"

#define UNCLAIM_TRIES 5 /* 0.1 + 0.2 + 0.4 + 0.8 s between them */

const char finalize_sql_unclaim[] =
    "UPDATE upload_sessions SET status = 'uploading', lease_token = NULL, lease_until = NULL,"
    " updated_at = now() WHERE upload_session_id = $1 AND lease_token = $2";

const char finalize_sql_verifying[] =
    "UPDATE upload_sessions SET status = 'verifying', updated_at = now()"
    " WHERE upload_session_id = $1 AND lease_token = $2";

const char finalize_sql_fail[] =
    "UPDATE upload_sessions SET status = 'failed', error_code = $3, error_message = $4,"
    " lease_token = NULL, lease_until = NULL, updated_at = now()"
    " WHERE upload_session_id = $1 AND lease_token = $2";

/* The commit, in one statement (atomic, one round trip): while the caller still holds the
 * session's lease ($4, $5), the blob (`blob`: new or ref_count + 1), the session completed,
 * the image, its change-log entry and its outbox event. Returns: lease held, the blob's
 * object (NULL: no blob, the content went away), the owner ($6) already had the content,
 * image made. $1 hash, $2 our object, $3 size, $7 image, $8 name, $9 mime, $10 topic. */
#define FIN_COMMIT(blob, seen)                                                                     \
    "WITH l AS (SELECT upload_session_id FROM upload_sessions WHERE upload_session_id = $4"        \
    " AND lease_token = $5 AND status IN ('completing', 'verifying') FOR UPDATE),"                 \
    " b AS (" blob " RETURNING storage_path, EXISTS (SELECT 1 FROM images"                         \
    " WHERE owner_id = $6 AND content_hash = $1) AS own),"                                         \
    " s AS (UPDATE upload_sessions SET status = 'completed', content_hash = $1, image_id = $7,"    \
    " deduplicated = b.storage_path <> $2, deduplicated_own = " seen ", lease_token = NULL,"       \
    " lease_until = NULL, pop_nonce = NULL, pop_ranges = NULL, pop_answer = NULL,"                 \
    " updated_at = now() FROM b WHERE upload_session_id = $4 RETURNING b.storage_path),"           \
    " i AS (INSERT INTO images (image_id, owner_id, content_hash, upload_session_id, name, size,"  \
    " mime_type) SELECT $7, $6, $1, $4, $8, $3, $9 FROM s"                                         \
    " RETURNING image_id, owner_id, content_hash, size, mime_type, created_at),"                   \
    " c AS (INSERT INTO change_log (user_id, image_id, kind)"                                      \
    " SELECT owner_id, image_id, 'added' FROM i),"                                                 \
    " o AS (INSERT INTO outbox (topic, msg_key, payload)"                                          \
    " SELECT $10, content_hash, jsonb_build_object('version', 1, 'type', 'image.uploaded',"        \
    " 'image_id', image_id, 'owner_id', owner_id, 'content_hash', content_hash,"                   \
    " 'storage_path', (SELECT storage_path FROM s), 'size', size, 'mime_type', mime_type,"         \
    " 'occurred_at', created_at) FROM i)"                                                          \
    " SELECT EXISTS (SELECT 1 FROM l), (SELECT storage_path FROM b),"                              \
    " coalesce((SELECT own FROM b), false), EXISTS (SELECT 1 FROM i)"

/* An upload's own bytes: the first copy becomes the blob, a duplicate counts once more. */
const char finalize_sql_commit_upload[] =
    FIN_COMMIT("INSERT INTO blobs (content_hash, storage_path, size, ref_count)"
               " SELECT $1, $2, $3, 1 WHERE EXISTS (SELECT 1 FROM l) ON CONFLICT (content_hash)"
               " DO UPDATE SET ref_count = blobs.ref_count + 1, updated_at = now()",
               "b.own");

/* A proof of possession: the stored content counts once more, if it is still there. */
const char finalize_sql_commit_proof[] =
    FIN_COMMIT("UPDATE blobs SET ref_count = ref_count + 1, updated_at = now()"
               " WHERE content_hash = $1 AND size = $3 AND EXISTS (SELECT 1 FROM l)",
               "true");

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
    PGresult *r = pg_exec(db, stmt, a ? 4 : 2, p, err);
    int applied = r && atoi(PQcmdTuples(r)) > 0;

    PQclear(r);
    return r ? applied : -1;
}

/* Puts a claimed session back to 'uploading' after a transient failure or missing chunks.
 * The failure is often the database going away, so the release is retried for a few
 * seconds (each attempt reconnects): a lease left held would stall the upload for the
 * whole complete-lease (found by bench/chaos: a 0.6 s PostgreSQL restart, 15 min stall). */
void finalize_unclaim(pg_conn *db, const struct upload_row *s, const char *rid)
{
    char err[ERR_MAX] = "";
    useconds_t pause = 100000;

    for (int i = 0; i < UNCLAIM_TRIES; i++, pause *= 2) {
        if (lease_stmt(db, "fin_unclaim", s, NULL, NULL, err) >= 0)
            return;
        if (i + 1 < UNCLAIM_TRIES)
            usleep(pause);
    }
    log_warn(rid, "unclaim_failed", err, "upload_session_id", s->id);
}

/* The transaction that makes the image: blob (new or +1), session, image, change log and
 * outbox. pop: the content exists and the client proved possession (no object of ours). */
int finalize_commit(pg_conn *db, const struct upload_row *s, const char *hash, int pop,
                    const char *topic, struct upload_outcome *o, char *err)
{
    char size[24], image_id[37];
    const char *p[10] = {hash,     s->key,   size,    s->id,   s->lease,
                         s->owner, image_id, s->name, s->mime, topic};
    PGresult *r;

    snprintf(size, sizeof size, "%lld", s->size);
    if (util_uuid(image_id) < 0)
        return err_set(err, "no randomness"), -1;
    r = pg_exec(db, pop ? "fin_commit_proof" : "fin_commit_upload", 10, p, err);
    if (!r)
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

/* Marks the session failed for a permanent reason and removes its object. */
static void fail_upload(pg_conn *db, s3_client *s3, const struct upload_row *s,
                        struct upload_outcome *o, int status, const char *code, const char *msg)
{
    char err[ERR_MAX];

    finalize_outcome(o, status, code, msg);
    int rc = lease_stmt(db, "fin_fail", s, code, msg, err);

    if (rc < 0)
        log_warn(NULL, "session_fail_failed", err, "upload_session_id", s->id);
    else if (rc == 0) /* taken over: the object is the new owner's to judge */
        log_warn(NULL, "lease_lost", "session taken over", "upload_session_id", s->id);
    else if (s3_delete_object(s3, s->key, err) != S3_OK)
        log_warn(NULL, "s3_delete_failed", err, "key", s->key);
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

/* Assembles (unless already assembled), verifies and commits a claimed session. On a
 * transient failure the session goes back to 'uploading' and the outcome is 503. */
void finalize_upload(pg_conn *db, s3_client *s3, const struct upload_row *s,
                     const struct s3_part *parts, int n, const struct finalize_opts *opt,
                     struct upload_outcome *o, const char *rid)
{
    struct s3_object obj;
    char err[ERR_MAX] = "", hash[65];
    /* a declared duplicate whose bank is full gets no challenges to hash for */
    int want = s->declared[0] ? pop_bank_wanted(db, s->declared, opt->pop_bank) : opt->pop_bank;
    pop_bank *bank = pop_bank_new(s->size, want);
    int rc;

    rc = parts ? s3_complete_multipart(s3, s->key, s->upload_id, parts, n, err) : S3_OK;
    FAULT_POINT("complete_after_s3");
    if (rc == S3_OK || rc == S3_NOTFOUND)
        rc = s3_head_object(s3, s->key, &obj, err);
    if (rc == S3_NOTFOUND) {
        fail_upload(db, s3, s, o, 409, "upload_lost", "the uploaded parts are gone");
        goto done;
    }
    if (rc != S3_OK || pop_hash_object(s3, s->key, obj.size, bank, hash, err) != S3_OK)
        goto transient;
    if (obj.size != s->size) {
        fail_upload(db, s3, s, o, 422, "size_mismatch", "stored size differs");
        goto done;
    }
    if (s->declared[0] && strcmp(hash, s->declared)) {
        fail_upload(db, s3, s, o, 422, "sha256_mismatch",
                    "the uploaded bytes do not match the declared sha256");
        goto done;
    }
    if (finalize_commit(db, s, hash, 0, opt->topic, o, err) < 0)
        goto transient;
    FAULT_POINT("complete_after_commit");
    if (o->status == 200 && o->dedup && s3_delete_object(s3, s->key, err) != S3_OK)
        log_warn(rid, "s3_delete_failed", err, "key", s->key); /* reconciler: orphan */
    if (o->status == 200)
        store_bank(db, bank, opt->pop_bank, hash, rid);
    log_info(rid, "upload_completed", o->status == 200 ? "committed" : o->code, "upload_session_id",
             s->id, "image_id", o->image_id, "deduplicated", o->dedup ? "true" : "false");
    goto done;
transient:
    log_error(rid, "complete_failed", err, "upload_session_id", s->id);
    finalize_outcome(o, 503, "unavailable", "storage or database unavailable; retry complete");
    finalize_unclaim(db, s, rid);
done:
    pop_bank_free(bank);
}

int finalize_set_verifying(pg_conn *db, const struct upload_row *s, char *err)
{
    int rc = lease_stmt(db, "fin_verifying", s, NULL, NULL, err);

    if (rc == 0)
        err_set(err, "the completion lease was lost");
    return rc > 0 ? 0 : -1;
}
