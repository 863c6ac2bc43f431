/* finalize: the last step of an upload, shared by the API's complete route and the
 * reconciler: assemble the parts, hash the object, verify, and commit in one transaction. */
#ifndef PIX_FINALIZE_H
#define PIX_FINALIZE_H

#include <string.h>

#include "pg.h"
#include "pop.h"
#include "s3.h"
#include "util.h"

/* Columns of an upload_sessions row as upload_row_load reads them. */
#define UPLOAD_ROW_COLS                                                                            \
    "upload_session_id, owner_id, status, file_name, file_size, mime_type,"                        \
    " coalesce(declared_sha256, ''), chunk_size, chunk_count, object_key,"                         \
    " coalesce(s3_upload_id, ''), coalesce(pop_nonce, ''), coalesce(pop_ranges::text, ''),"        \
    " coalesce(image_id::text, ''), coalesce(deduplicated, false),"                                \
    " coalesce(error_code, ''), coalesce(error_message, ''),"                                      \
    " extract(epoch from expires_at)::bigint, expires_at < now(),"                                 \
    " coalesce(content_hash, ''), coalesce(lease_token::text, ''),"                                \
    " coalesce(deduplicated_own, false)"

#define UPLOAD_ROW_NCOLS 22

struct upload_row {
    char id[37], owner[129], status[16], name[256], mime[128], declared[65];
    char key[64], upload_id[512], pop_nonce[65], pop_ranges[POP_RANGES_JSON_MAX], image_id[37];
    char error_code[64], error_msg[256], hash[65], lease[37];
    long long size, chunk_size, expires;
    int chunk_count, dedup, expired;
    int dedup_own; /* deduplicated as the owner may be told (see upload_outcome.seen) */
};

/* What finishing an upload came to: an HTTP status and, on success, the image. */
struct upload_outcome {
    int status;
    char code[64], msg[160], image_id[37], hash[65];
    int dedup; /* the content was already stored (our object is removed); internal */
    int seen;  /* what the client is told as `deduplicated`: a proof of possession, or the
                * owner already had this content. Never other users' content (no oracle). */
};

/* How finalize_upload runs: the outbox topic, and how many one-time proof-of-possession
 * challenges to prepare in the verification pass (0: none). */
typedef struct finalize_held finalize_held;

struct finalize_opts {
    const char *topic;
    int pop_bank;
    double verify_lease; /* seconds a background verification holds its session, renewed */
    finalize_held *held; /* leases a failed release left held, released later (NULL: none) */
    double held_for;     /* seconds such a lease stays worth releasing (the complete-lease) */
};

/* The statements finalize runs, by name: every pool a finalize caller uses must list
 * FINALIZE_STMTS (and POP_STMTS) in its statement table, so they are prepared once. */
extern const char finalize_sql_unclaim[], finalize_sql_renew[], finalize_sql_fail[],
    finalize_sql_pending[], finalize_sql_commit_upload[], finalize_sql_commit_verified[],
    finalize_sql_commit_proof[];
#define FINALIZE_STMTS                                                                             \
    {"fin_unclaim", finalize_sql_unclaim}, {"fin_renew", finalize_sql_renew},                      \
        {"fin_fail", finalize_sql_fail}, {"fin_pending", finalize_sql_pending},                    \
        {"fin_commit_upload", finalize_sql_commit_upload},                                         \
        {"fin_commit_verified", finalize_sql_commit_verified},                                     \
    {                                                                                              \
        "fin_commit_proof", finalize_sql_commit_proof                                              \
    }

void upload_row_load(const PGresult *r, int row, struct upload_row *s);
void finalize_outcome(struct upload_outcome *o, int status, const char *code, const char *msg);

/* A session whose image was made at complete and waits for its verification (pending
 * image): it is verified by finalize_upload, never reassembled nor reopened. */
static inline int finalize_pending_image(const struct upload_row *s)
{
    return s->image_id[0] && !strcmp(s->status, "verifying");
}

/* Most photos are one chunk: their URL is one presigned PUT of the whole object, with no
 * multipart upload to create or complete (sessions from before keep their upload id). It
 * writes a staging key ("staging/<id>" for the session's "blobs/<id>"), which a client can
 * overwrite as long as its URL lives; the API's complete copies it to the session's key
 * inside storage first, so the bytes hashed are bytes no client can write any more. */
static inline int upload_one_put(const struct upload_row *s)
{
    return s->chunk_count == 1 && !s->upload_id[0];
}

/* The staging key of a one-PUT upload whose session key is `key`. */
void upload_staging_key(const char *key, char *out, size_t len);
/* Deletes a one-PUT upload's staging object once it was copied (logged on failure: the
 * reconciler's orphan sweep takes what is left). Callers run it off the request's path. */
void finalize_drop_staged(s3_client *s3, const struct upload_row *s, const char *rid);

/* nparts of finalize_upload/finalize_pending with parts NULL: the caller has just seen the
 * object in place with the declared size (a one-PUT copy, an assembled multipart upload),
 * so it is not looked up again. */
#define FINALIZE_IN_PLACE (-1)

/* Extends the held lease to now + secs. 0, or -1 with err (lost: another verifier has it). */
int finalize_renew(pg_conn *db, const struct upload_row *s, double secs, char *err) PIX_WUR;
/* Back to 'uploading' after a transient failure, retried for 1.5 s. 0 released (or no
 * longer ours), -1 still held (logged): the database is away, e.g. failing over. */
int finalize_unclaim(pg_conn *db, const struct upload_row *s, const char *rid);
/* Releases the lease: without opt->held, finalize_unclaim (retried inline); with it, one try,
 * and a lease left held goes to opt->held (released in the background, by
 * finalize_held_retry), so neither the request's worker waits out a database outage nor the
 * upload stalls for the whole complete-lease. */
void finalize_release(pg_conn *db, const struct upload_row *s, const struct finalize_opts *opt,
                      const char *rid);

/* Leases to release once the database is back: at most cap, each until its deadline. */
finalize_held *finalize_held_new(int cap);
void finalize_held_free(finalize_held *h); /* NULL-safe */
long finalize_held_count(finalize_held *h);
/* One pass over the held leases: released, lost or past their deadline ones are dropped.
 * Returns how many are still held (thread-safe; entries added meanwhile are kept). */
long finalize_held_retry(finalize_held *h, pg_conn *db, const char *rid);

/* The commit, one atomic statement: blob (new, or ref_count + 1), session completed, image, change
 * log and outbox event on `topic`. pop: the content exists and possession was proven (no
 * object of ours). Fills o (200, or 409 when the blob vanished or the lease was lost);
 * -1 with err if the database failed. */
int finalize_commit(pg_conn *db, const struct upload_row *s, const char *hash, int pop,
                    const char *topic, struct upload_outcome *o, char *err) PIX_WUR;

/* Assembles (parts != NULL) or takes the assembled object, hashes it (answering a bank of
 * proof-of-possession challenges in the same pass), checks size and the declared sha256,
 * commits, stores the bank, and removes a duplicate's own object. Permanent failures mark
 * the session failed; transient ones put it back to 'uploading' (outcome 503). */
void finalize_upload(pg_conn *db, s3_client *s3, const struct upload_row *s,
                     const struct s3_part *parts, int nparts, const struct finalize_opts *opt,
                     struct upload_outcome *o, const char *rid);

/* Complete without waiting for verification: assembles, checks the size, and makes the
 * image 'verifying' with the session (opt->verify_lease). Outcome 202 with the image (s now
 * holds it: hand s to finalize_upload to verify), or a failure as finalize_upload's. */
void finalize_pending(pg_conn *db, s3_client *s3, struct upload_row *s, const struct s3_part *parts,
                      int nparts, const struct finalize_opts *opt, struct upload_outcome *o,
                      const char *rid);

#endif
