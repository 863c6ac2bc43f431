/* upload: resumable uploads straight to object storage through presigned multipart URLs,
 * server-side SHA-256 verification, exact dedup and proof of possession. */
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api.h"
#include "finalize.h"
#include "json.h"
#include "log.h"
#include "pop.h"
#include "prehook.h"
#include "quota.h"
#include "upload.h"

#define MIB (1024LL * 1024)
#define MAX_PART_SIZE (5LL * 1024 * MIB) /* S3's largest part */

int upload_plan(long long size, long long preferred, long long min, long max_chunks,
                struct upload_plan *out)
{
    long long cs = preferred < min ? min : preferred;

    if (size <= 0 || max_chunks < 1 || cs <= 0 || size > MAX_PART_SIZE * max_chunks)
        return -1;
    if ((size + cs - 1) / cs > max_chunks) {
        cs = (size + max_chunks - 1) / max_chunks;
        cs = (cs + MIB - 1) / MIB * MIB;
    }
    if (cs > MAX_PART_SIZE)
        return -1;
    out->chunk_size = cs;
    out->chunk_count = (int)((size + cs - 1) / cs);
    return 0;
}

static long long chunk_len(const struct upload_row *s, int n)
{
    return n < s->chunk_count - 1 ? s->chunk_size : s->size - (long long)n * s->chunk_size;
}

/* Runs a statement that returns one session row: 1 found (s filled), 0 none, -1 failed
 * (answered). */
static int sess_query(struct api_call *c, const char *stmt, int n, const char *const *p,
                      struct upload_row *s)
{
    char err[ERR_MAX];
    PGresult *r;
    int found;

    if (!api_db(c))
        return -1;
    r = pg_exec(c->db, stmt, n, p, err);
    if (!r) {
        api_db_fail(c, stmt, err);
        return -1;
    }
    found = PQntuples(r) > 0;
    if (found)
        upload_row_load(r, 0, s);
    PQclear(r);
    return found;
}

/* The caller's session from the {id} route parameter; answers 404 and returns -1 if none. */
static int sess_get(struct api_call *c, struct upload_row *s)
{
    const char *id = api_param_uuid(c, "id");
    const char *p[2] = {id, c->user.sub};
    int rc;

    if (!id)
        return -1;
    rc = sess_query(c, "session_get", 2, p, s);
    if (rc == 0)
        api_error(c, 404, "not_found", "no such upload session");
    return rc == 1 ? 0 : -1;
}

static const char *public_status(const struct upload_row *s)
{
    return s->expired && !strcmp(s->status, "uploading") ? "expired" : s->status;
}

static void add_time(cJSON *o, const char *name, time_t t)
{
    char ts[21];

    util_rfc3339(t, ts);
    cJSON_AddStringToObject(o, name, ts);
}

static cJSON *sess_json(const struct upload_row *s)
{
    cJSON *o = cJSON_CreateObject();

    cJSON_AddStringToObject(o, "upload_session_id", s->id);
    cJSON_AddStringToObject(o, "status", public_status(s));
    cJSON_AddStringToObject(o, "file_name", s->name);
    cJSON_AddNumberToObject(o, "file_size", (double)s->size);
    cJSON_AddStringToObject(o, "mime_type", s->mime);
    cJSON_AddNumberToObject(o, "chunk_size", (double)s->chunk_size);
    cJSON_AddNumberToObject(o, "chunk_count", s->chunk_count);
    add_time(o, "expires_at", (time_t)s->expires);
    if (s->image_id[0]) {
        cJSON_AddStringToObject(o, "image_id", s->image_id);
        cJSON_AddBoolToObject(o, "deduplicated", s->dedup_own);
    }
    if (s->hash[0]) /* the content as the server hashed it */
        cJSON_AddStringToObject(o, "sha256", s->hash);
    if (s->error_code[0]) {
        cJSON *e = cJSON_AddObjectToObject(o, "error");
        cJSON_AddStringToObject(e, "code", s->error_code);
        cJSON_AddStringToObject(e, "message", s->error_msg);
    }
    return o;
}

/* ---- POST /uploads ---- */

/* The formats the worker's libvips reads. Anything else (SVG: scripts; BMP, ICO) is 415. */
static const char *const image_types[] = {"image/jpeg", "image/jpg",  "image/png",  "image/gif",
                                          "image/webp", "image/tiff", "image/heic", "image/heif",
                                          "image/avif", "image/jxl"};

static int valid_mime(const char *m, char *out, size_t outlen)
{
    size_t n = strlen(m);

    if (n <= 6 || n >= outlen)
        return 0;
    for (size_t i = 0; i <= n; i++)
        out[i] = (char)(m[i] >= 'A' && m[i] <= 'Z' ? m[i] + 32 : m[i]);
    for (size_t i = 0; i < ARRAY_LEN(image_types); i++)
        if (strcmp(out, image_types[i]) == 0)
            return 1;
    return 0;
}

/* A sha256 as 64 lower-case hex digits into out; -1 if it is not 64 hex digits. */
static int sha256_norm(const char *in, char out[65])
{
    unsigned char raw[32];

    if (strlen(in) != 64 || util_unhex(in, raw, 32) < 0)
        return -1;
    util_hex(raw, 32, out);
    return 0;
}

/* A declared sha256 into out; -1 answered 400. */
static int sha256_parse(struct api_call *c, const char *in, char out[65])
{
    if (sha256_norm(in, out) < 0)
        return api_error(c, 400, "bad_request", "sha256 must be 64 hex digits"), -1;
    return 0;
}

static int req_err(struct upload_err *e, int status, const char *code, const char *msg)
{
    e->status = status;
    e->code = code;
    e->msg = msg;
    return -1;
}

int upload_req_check(const struct api_config *cfg, const cJSON *body, struct upload_req *q,
                     struct upload_err *e)
{
    const char *err = NULL;
    int has_sha, has_mod;

    if (json_get_str(body, "file_name", &q->name, &err) != 1 ||
        json_get_i64(body, "file_size", &q->size, &err) != 1 ||
        json_get_str(body, "mime_type", &q->mime, &err) != 1 ||
        (has_sha = json_get_str(body, "sha256", &q->sha256_in, &err)) < 0 ||
        (has_mod = json_get_str(body, "file_modified_at", &q->modified, &err)) < 0)
        return req_err(e, 400, "bad_request",
                       err ? err : "file_name, file_size and mime_type are required");
    if (!api_valid_name(q->name, 255))
        return req_err(e, 400, "bad_request", "file_name must be 1-255 bytes of UTF-8 text");
    if (q->size <= 0)
        return req_err(e, 400, "bad_request", "file_size must be a positive integer");
    if (has_mod != 1)
        q->modified = NULL;
    if (q->modified && !util_rfc3339_valid(q->modified))
        return req_err(e, 400, "bad_request",
                       "file_modified_at must be an RFC 3339 date-time (2021-07-04T12:34:56Z)");
    if (q->size > cfg->max_file_size)
        return req_err(e, 413, "file_too_large", "file_size exceeds the maximum");
    if (!valid_mime(q->mime, q->mime_lc, sizeof q->mime_lc))
        return req_err(e, 415, "unsupported_media_type",
                       "mime_type must be one of image/jpeg, png, gif, webp, tiff, heic, heif, "
                       "avif, jxl");
    q->sha256 = NULL;
    if (has_sha == 1 && sha256_norm(q->sha256_in, q->sha_lc) < 0)
        return req_err(e, 400, "bad_request", "sha256 must be 64 hex digits");
    if (has_sha == 1)
        q->sha256 = q->sha_lc;
    return 0;
}

/* Validates the body; answers and returns -1 on bad input. */
static int create_parse(struct api_call *c, const cJSON *body, struct upload_req *q)
{
    struct upload_err e;

    if (upload_req_check(c->api->cfg, body, q, &e) < 0)
        return api_error(c, e.status, e.code, e.msg), -1;
    return 0;
}

/* ---- dedup without upload (common/pop.h) ---- */

struct refill_job {
    char hash[65], rid[65];
};

static void refill_run(void *arg, void *tctx)
{
    struct refill_job *j = arg;
    struct api_tctx *t = tctx;
    char err[ERR_MAX];
    pg_conn *db = pg_acquire(t->api->pg, 30, err);
    int rc = db ? pop_refill(db, t->s3, j->hash, (int)t->api->cfg->pop_bank, err) : -1;

    if (rc < 0)
        log_warn(j->rid, "pop_refill_failed", err, "content_hash", j->hash);
    else if (rc == 1)
        log_info(j->rid, "pop_refilled", "challenge bank refilled", "content_hash", j->hash);
    pg_release(db);
    free(j);
}

/* Refills queued at most: the pool is shared with large verifications, which one user's
 * dry banks must not crowd out. */
#define REFILL_QUEUE_MAX 16

/* Queues a refill of a dry bank on the background pool (dropped when too many wait: the
 * next dry hit queues it again). */
void upload_queue_refill(struct api_call *c, const char *hash)
{
    struct refill_job *j;

    if (c->api->cfg->pop_bank < 1 || pool_pending(c->api->jobs) >= REFILL_QUEUE_MAX)
        return;
    if (!(j = calloc(1, sizeof *j)))
        return;
    util_strlcpy(j->hash, sizeof j->hash, hash);
    util_strlcpy(j->rid, sizeof j->rid, c->rid);
    if (pool_submit(c->api->jobs, refill_run, j) < 0) {
        log_warn(c->rid, "pop_refill_dropped", "background pool full", "content_hash", hash);
        free(j);
    }
}

static void prune_run(void *arg, void *tctx)
{
    struct api_tctx *t = tctx;
    const struct api_config *cfg = t->api->cfg;
    char err[ERR_MAX], full[32];
    const char *p[1] = {full};
    pg_conn *db = pg_acquire(t->api->pg, 5, err);
    PGresult *r = NULL;

    snprintf(full, sizeof full, "%.3f", cfg->pop_budget_refill * (double)cfg->pop_budget);
    if (!db)
        log_warn(NULL, "pop_budget_prune_failed", err);
    else if (!(r = pg_exec(db, "pop_budget_prune", 1, p, err)))
        log_warn(NULL, "pop_budget_prune_failed", err);
    PQclear(r);
    r = NULL;
    if (db && !(r = pg_exec(db, "ticket_prune", 0, NULL, err)))
        log_warn(NULL, "ticket_prune_failed", err);
    PQclear(r);
    pg_release(db);
    __atomic_store_n(&t->api->housekeeping_busy, 0, __ATOMIC_RELEASE);
}

void upload_housekeeping(struct api *api)
{
    if (__atomic_exchange_n(&api->housekeeping_busy, 1, __ATOMIC_ACQ_REL))
        return;
    if (pool_submit(api->jobs, prune_run, NULL) < 0)
        __atomic_store_n(&api->housekeeping_busy, 0, __ATOMIC_RELEASE);
}

/* What POST /uploads offers for a declared sha256 (see session_create): a fresh challenge
 * (nonce, ranges as JSON) and a random answer for the case it stays a decoy. nonce ""
 * means none is offered (no sha256, or dedup without upload turned off). */
int upload_offer_make(const struct api_config *cfg, const struct upload_req *q,
                      struct upload_offer *f, struct upload_err *e)
{
    struct pop_challenge ch;

    if (!q->sha256 || cfg->pop_budget < 1)
        return 0;
    if (pop_challenge_new(q->size, &ch) < 0 || pop_decoy_answer(f->answer) < 0)
        return req_err(e, 500, "internal", "no randomness");
    if (pop_ranges_json(&ch, &f->ranges) < 0)
        return req_err(e, 500, "internal", "out of memory");
    util_strlcpy(f->nonce, sizeof f->nonce, ch.nonce);
    return 0;
}

/* make_offer, answering on failure. */
static int make_offer(struct api_call *c, const struct upload_req *q, struct upload_offer *f)
{
    struct upload_err e;

    if (upload_offer_make(c->api->cfg, q, f, &e) < 0)
        return api_error(c, e.status, e.code, e.msg), -1;
    return 0;
}

cJSON *upload_created_json(const struct upload_row *s)
{
    cJSON *o = sess_json(s), *ch, *ranges;

    if (!s->pop_nonce[0])
        return o;
    ch = cJSON_AddObjectToObject(o, "dedup_challenge");
    cJSON_AddStringToObject(ch, "nonce", s->pop_nonce);
    cJSON_AddStringToObject(ch, "mode", s->size <= POP_WHOLE_MAX ? "whole" : "ranges");
    ranges = cJSON_Parse(s->pop_ranges);
    cJSON_AddItemToObject(ch, "ranges", ranges ? ranges : cJSON_CreateArray());
    cJSON_AddStringToObject(ch, "proof", "hex sha256 of the nonce text then each range's bytes");
    cJSON_AddStringToObject(ch, "proof_url", "/uploads/{upload_session_id}/proof");
    return o;
}

int upload_idem_ok(const char *k)
{
    size_t n = k ? strlen(k) : 0;

    if (n == 0 || n > 128)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (k[i] < 0x21 || k[i] > 0x7e)
            return 0;
    return 1;
}

/* Same Idempotency-Key: the same session if the request is the same, else 422. */
static void create_replay(struct api_call *c, const struct upload_req *q, const char *key)
{
    const char *p[2] = {c->user.sub, key};
    struct upload_row s;
    int rc = sess_query(c, "session_by_idem", 2, p, &s);

    if (rc < 0)
        return;
    if (rc == 0)
        return api_error(c, 409, "conflict", "concurrent request with this Idempotency-Key");
    if (strcmp(s.name, q->name) || s.size != q->size || strcmp(s.mime, q->mime_lc) ||
        strcmp(s.declared, q->sha256 ? q->sha256 : ""))
        return api_error(c, 422, "idempotency_key_reused",
                         "Idempotency-Key was used with a different request");
    if (http_resp_header(c->req, "Idempotent-Replayed", "true") < 0)
        log_warn(c->rid, "http", "header");
    http_respond_json(c->req, 201, upload_created_json(&s));
}

/* Parameters of session_create beyond the session's own columns. */
struct create_params {
    char id[37], key[64], csz[24], ccnt[16], size[24], ttl[24], cap[16], refill[32], thr[16];
};

/* The row of session_create: 1 made (s filled), 0 Idempotency-Key replay, -1 refused by a
 * quota (answered 403). */
static int session_result(struct api_call *c, const struct upload_req *q, const PGresult *r,
                          struct upload_row *s)
{
    const int kind = UPLOAD_ROW_NCOLS + 1; /* after the dry flag: kind, usage */

    if (!PQgetisnull(r, 0, 0)) {
        upload_row_load(r, 0, s);
        if (pg_val(r, 0, UPLOAD_ROW_NCOLS)[0] == 't')
            upload_queue_refill(c, q->sha256); /* stored content whose bank is dry */
        return 1;
    }
    if (PQgetisnull(r, 0, kind))
        return 0;
    quota_refuse(c, r, 0, kind + 1, pg_val(r, 0, kind), q->size);
    return -1;
}

/* Inserts the session (see session_create): 1 made (s filled), 0 Idempotency-Key replay,
 * -1 answered. */
static int session_insert(struct api_call *c, const struct upload_req *q, const char *idem,
                          struct upload_row *s)
{
    const struct api_config *cfg = c->api->cfg;
    struct upload_plan plan;
    struct create_params v;
    struct quota_params qp;
    struct upload_offer f = {.nonce = ""};
    const char *p[21];
    char err[ERR_MAX];
    PGresult *r = NULL;
    int rc = -1;

    if (upload_plan(q->size, cfg->chunk_size, cfg->min_chunk_size, cfg->max_chunks, &plan) < 0)
        return api_error(c, 413, "file_too_large", "file_size cannot be split into chunks"), -1;
    if (util_uuid(v.id) < 0)
        return api_error(c, 500, "internal", "no randomness"), -1;
    if (make_offer(c, q, &f) < 0)
        goto done;
    snprintf(v.key, sizeof v.key, "blobs/%s", v.id);
    snprintf(v.csz, sizeof v.csz, "%lld", plan.chunk_size);
    snprintf(v.ccnt, sizeof v.ccnt, "%d", plan.chunk_count);
    snprintf(v.size, sizeof v.size, "%lld", q->size);
    snprintf(v.ttl, sizeof v.ttl, "%.0f", cfg->session_ttl);
    snprintf(v.cap, sizeof v.cap, "%ld", cfg->pop_budget);
    snprintf(v.refill, sizeof v.refill, "%.3f", cfg->pop_budget_refill);
    snprintf(v.thr, sizeof v.thr, "%ld", cfg->dedup_threshold);
    p[0] = v.id, p[1] = c->user.sub, p[2] = q->name, p[3] = v.size, p[4] = q->mime_lc;
    p[5] = q->sha256 ? q->sha256 : "", p[6] = v.csz, p[7] = v.ccnt, p[8] = v.key;
    p[9] = idem ? idem : "", p[10] = v.ttl, p[11] = f.nonce;
    p[12] = f.nonce[0] ? f.ranges.data : "", p[13] = f.answer, p[14] = v.cap;
    p[15] = v.refill, p[16] = v.thr, p[17] = q->modified ? q->modified : "";
    quota_params_of(cfg, &qp);
    p[18] = qp.bytes, p[19] = qp.images, p[20] = qp.every;
    if (!(r = pg_exec(c->db, "session_create", 21, p, err))) {
        api_db_fail(c, "session_create", err);
        goto done;
    }
    rc = session_result(c, q, r, s);
done:
    PQclear(r);
    buf_free(&f.ranges);
    return rc;
}

/* The per-user caps on open sessions and the bytes they declare; a replay of one of the
 * caller's Idempotency-Keys passes. 0, 1 a replay, or -1 answered (429 says which limit). Counted
 * before the insert, so concurrent creates may pass a cap by their number: a bound, not a quota. */
static int within_caps(struct api_call *c, const struct upload_req *q, const char *idem)
{
    const struct api_config *cfg = c->api->cfg;
    const char *p[2] = {c->user.sub, idem ? idem : ""};
    char err[ERR_MAX], msg[160];
    PGresult *r = pg_exec(c->db, "sessions_open", 2, p, err);
    long long open, bytes;

    if (!r)
        return api_db_fail(c, "sessions_open", err), -1;
    open = pg_i64(r, 0, 0);
    bytes = pg_i64(r, 0, 1);
    int replay = pg_val(r, 0, 2)[0] == 't';
    PQclear(r);
    if (replay)
        return 1;
    if (open >= cfg->sessions_per_user) {
        snprintf(msg, sizeof msg,
                 "at most %ld open upload sessions per user; complete or abort "
                 "some first",
                 cfg->sessions_per_user);
        return api_error(c, 429, "too_many_open_sessions", msg), -1;
    }
    if (bytes + q->size > cfg->inflight_bytes_per_user) {
        snprintf(msg, sizeof msg,
                 "open upload sessions may declare at most %lld bytes per user "
                 "(%lld declared); complete or abort some first",
                 cfg->inflight_bytes_per_user, bytes);
        return api_error(c, 429, "inflight_bytes_exceeded", msg), -1;
    }
    return 0;
}

/* The pre-upload hook (prehook.c), called without a pooled connection held; 0 allowed (a
 * connection taken again), -1 answered. */
static int hook_admit(struct api_call *c, const struct upload_req *q, const char *idem)
{
    char reason[PREHOOK_REASON_MAX];
    struct upload_err e;
    struct prehook_run run = {0};

    if (!c->api->cfg->pre_upload_hook_url[0])
        return 0;
    pg_release(c->db); /* the call may take its whole timeout: not with a connection held */
    c->db = NULL;
    if (prehook_admit(c, q, idem, reason, &run, &e) < 0)
        return api_error(c, e.status, e.code, e.msg), -1;
    return api_db(c) ? 0 : -1; /* answered 503 if no connection is to be had */
}

void upload_create(struct api_call *c)
{
    const char *idem = http_req_header(c->req, "Idempotency-Key");
    struct upload_req q = {0};
    struct upload_row s;
    cJSON *body = api_body(c);
    int rc;

    if (!body)
        return;
    if (create_parse(c, body, &q) < 0 || !api_db(c))
        goto done;
    if (idem && !upload_idem_ok(idem)) {
        api_error(c, 400, "bad_request", "Idempotency-Key must be 1-128 printable characters");
        goto done;
    }
    if ((rc = within_caps(c, &q, idem)) < 0 || (rc == 0 && hook_admit(c, &q, idem) < 0))
        goto done;
    rc = session_insert(c, &q, idem, &s);
    if (rc == 1)
        http_respond_json(c->req, 201, upload_created_json(&s));
    else if (rc == 0)
        create_replay(c, &q, idem);
done:
    cJSON_Delete(body);
}

/* ---- GET /uploads/{id} ---- */

/* Parts present in storage with the right size, as 0-based chunk numbers. */
static cJSON *uploaded_chunks(const struct upload_row *s, const struct s3_part *parts, int n)
{
    cJSON *a = cJSON_CreateArray();

    for (int i = 0; i < n; i++) {
        int chunk = parts[i].number - 1;
        if (chunk >= 0 && chunk < s->chunk_count && parts[i].size == chunk_len(s, chunk))
            cJSON_AddItemToArray(a, cJSON_CreateNumber(chunk));
    }
    return a;
}

/* A one-PUT upload's object as its only part, if it is there (resume is a HEAD). */
static int one_put_part(struct api_call *c, const struct upload_row *s, struct s3_part **parts,
                        int *n, char *err)
{
    struct s3_object obj;
    char staging[80];
    int rc;

    upload_staging_key(s->key, staging, sizeof staging);
    rc = s3_head_object(c->t->s3, staging, &obj, err);

    if (rc != S3_OK)
        return rc == S3_NOTFOUND ? S3_OK : rc;
    if (!(*parts = calloc(1, sizeof **parts)))
        return err_set(err, "out of memory"), S3_ERR;
    (*parts)[0] = (struct s3_part){.number = 1, .size = obj.size};
    util_strlcpy((*parts)[0].etag, sizeof(*parts)[0].etag, obj.etag);
    *n = 1;
    return S3_OK;
}

void upload_status(struct api_call *c)
{
    struct s3_part *parts = NULL;
    char err[ERR_MAX];
    struct upload_row s;
    cJSON *o;
    int n = 0, rc = S3_OK;

    if (sess_get(c, &s) < 0)
        return;
    if (!strcmp(s.status, "uploading") && s.upload_id[0])
        rc = s3_list_parts(c->t->s3, s.key, s.upload_id, &parts, &n, err);
    else if (!strcmp(s.status, "uploading") && upload_one_put(&s))
        rc = one_put_part(c, &s, &parts, &n, err);
    if (rc == S3_ERR)
        return api_s3_fail(c, "list_parts", err);
    o = sess_json(&s);
    cJSON_AddItemToObject(o, "uploaded_chunks", uploaded_chunks(&s, parts, n));
    free(parts);
    http_respond_json(c->req, 200, o);
}

/* ---- chunk URLs ---- */

/* Answers and returns -1 unless the session accepts chunks. */
static int sess_open(struct api_call *c, const struct upload_row *s)
{
    if (!strcmp(s->status, "uploading") && !s->expired)
        return 0;
    if (s->expired || !strcmp(s->status, "expired"))
        api_error(c, 410, "session_expired", "the upload session has expired");
    else
        api_error(c, 409, "session_closed", "the upload session no longer accepts chunks");
    return -1;
}

/* Creates the multipart upload on first use (a proof of possession needs none). */
static int ensure_multipart(struct api_call *c, struct upload_row *s)
{
    char err[ERR_MAX], uid[512];
    const char *p[3] = {s->id, c->user.sub, uid};
    PGresult *r;
    int won;

    if (s->upload_id[0] || (upload_one_put(s) && c->api->cfg->one_put))
        return 0;
    if (s3_create_multipart(c->t->s3, s->key, s->mime, uid, sizeof uid, err) != S3_OK)
        return api_s3_fail(c, "create_multipart", err), -1;
    if (!(r = pg_exec(c->db, "session_set_upload_id", 3, p, err))) {
        if (s3_abort_multipart(c->t->s3, s->key, uid, err) == S3_ERR)
            log_warn(c->rid, "s3_abort_failed", err, "key", s->key);
        return api_db_fail(c, "session_set_upload_id", err), -1;
    }
    won = PQntuples(r) == 1;
    PQclear(r);
    if (won)
        return util_strlcpy(s->upload_id, sizeof s->upload_id, uid), 0;
    if (s3_abort_multipart(c->t->s3, s->key, uid, err) == S3_ERR) /* a concurrent call won */
        log_warn(c->rid, "s3_abort_failed", err, "key", s->key);
    if (sess_get(c, s) < 0 || sess_open(c, s) < 0)
        return -1;
    return s->upload_id[0] ? 0 : (api_error(c, 409, "conflict", "retry"), -1);
}

static int presign_chunk(struct api_call *c, const struct upload_row *s, int chunk, buf *url)
{
    char err[ERR_MAX];
    char staging[80];
    long ttl = (long)c->api->cfg->part_url_ttl;
    int rc;

    upload_staging_key(s->key, staging, sizeof staging);
    rc = upload_one_put(s)
             ? s3_presign_put_sized(c->t->s3, staging, s->size, time(NULL), ttl, url, err)
             : s3_presign_part(c->t->s3, s->key, s->upload_id, chunk + 1, chunk_len(s, chunk),
                               time(NULL), ttl, url, err);

    if (rc < 0) {
        api_error(c, 500, "internal", "cannot sign the URL");
        log_error(c->rid, "presign_failed", err);
        return -1;
    }
    return 0;
}

/* Validated chunk numbers of the body into out (count in *n); answers 400 on bad input. */
static int parse_chunk_numbers(struct api_call *c, const cJSON *body, const struct upload_row *s,
                               int **out, int *n)
{
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(body, "chunk_numbers"), *it;
    int i = 0, size = cJSON_IsArray(a) ? cJSON_GetArraySize(a) : -1;

    if (size < 1 || size > s->chunk_count)
        return api_error(c, 400, "bad_request",
                         "chunk_numbers must be a non-empty array of at most chunk_count"),
               -1;
    *out = malloc(sizeof(int) * (size_t)size);
    if (!*out)
        return api_error(c, 500, "internal", "out of memory"), -1;
    cJSON_ArrayForEach(it, a)
    {
        double v = cJSON_IsNumber(it) ? it->valuedouble : -1;
        if (v < 0 || v >= s->chunk_count || v != (double)(int)v) {
            free(*out);
            *out = NULL;
            return api_error(c, 400, "chunk_out_of_range",
                             "chunk numbers are integers from 0 to chunk_count - 1"),
                   -1;
        }
        (*out)[i++] = (int)v;
    }
    *n = i;
    return 0;
}

static cJSON *urls_json(struct api_call *c, const struct upload_row *s, const int *chunks, int n)
{
    cJSON *o = cJSON_CreateObject(), *a = cJSON_AddArrayToObject(o, "urls");
    long ttl = (long)c->api->cfg->part_url_ttl;
    buf url = {0};

    cJSON_AddStringToObject(o, "upload_session_id", s->id);
    cJSON_AddNumberToObject(o, "expires_in", (double)ttl);
    add_time(o, "expires_at", time(NULL) + ttl);
    for (int i = 0; i < n; i++) {
        cJSON *u = cJSON_CreateObject();
        buf_reset(&url);
        if (presign_chunk(c, s, chunks[i], &url) < 0) {
            cJSON_Delete(u), cJSON_Delete(o), buf_free(&url);
            return NULL;
        }
        cJSON_AddNumberToObject(u, "chunk_number", chunks[i]);
        cJSON_AddNumberToObject(u, "size", (double)chunk_len(s, chunks[i]));
        cJSON_AddStringToObject(u, "method", "PUT");
        cJSON_AddStringToObject(u, "url", url.data);
        cJSON_AddItemToArray(a, u);
    }
    buf_free(&url);
    return o;
}

void upload_part_urls(struct api_call *c)
{
    int *chunks = NULL, n = 0;
    struct upload_row s;
    cJSON *body = api_body(c), *o;

    if (!body)
        return;
    if (sess_get(c, &s) < 0 || sess_open(c, &s) < 0 ||
        parse_chunk_numbers(c, body, &s, &chunks, &n) < 0 || ensure_multipart(c, &s) < 0)
        goto done;
    if ((o = urls_json(c, &s, chunks, n)))
        http_respond_json(c->req, 200, o);
done:
    free(chunks);
    cJSON_Delete(body);
}

void upload_part_redirect(struct api_call *c)
{
    const char *ns = route_param(&c->params, "n");
    struct upload_row s;
    buf url = {0};
    char *end;
    long n = ns ? strtol(ns, &end, 10) : -1;
    cJSON *o;

    if (sess_get(c, &s) < 0 || sess_open(c, &s) < 0)
        return;
    if (!ns || *end || n < 0 || n >= s.chunk_count)
        return api_error(c, 400, "chunk_out_of_range",
                         "chunk numbers are integers from 0 to chunk_count - 1");
    if (ensure_multipart(c, &s) < 0 || presign_chunk(c, &s, (int)n, &url) < 0)
        return buf_free(&url);
    o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "url", url.data);
    if (http_resp_header(c->req, "Location", url.data) < 0)
        log_warn(c->rid, "http", "header");
    http_respond_json(c->req, 307, o);
    buf_free(&url);
}

/* ---- DELETE /uploads/{id} ---- */

void upload_abort(struct api_call *c)
{
    const char *id = api_param_uuid(c, "id");
    const char *p[2] = {id, c->user.sub};
    char err[ERR_MAX], uid[512] = "", key[64] = "", staging[80];
    struct upload_row s;
    PGresult *r;
    cJSON *o;

    if (!id || !api_db(c))
        return;
    if (!(r = pg_exec(c->db, "session_abort", 2, p, err)))
        return api_db_fail(c, "session_abort", err);
    if (PQntuples(r) == 1)
        util_strlcpy(uid, sizeof uid, pg_val(r, 0, 0)),
            util_strlcpy(key, sizeof key, pg_val(r, 0, 1));
    PQclear(r);
    if (!key[0]) {
        if (sess_get(c, &s) < 0)
            return;
        if (strcmp(s.status, "aborted"))
            return api_error(c, 409, "session_closed", "the upload session is not open");
    }
    /* The row says aborted first, so no new URL is issued; a failed abort here is
     * retried by the reconciler (multipart uploads without a live session). */
    if (uid[0] && s3_abort_multipart(c->t->s3, key, uid, err) == S3_ERR)
        log_warn(c->rid, "s3_abort_failed", err, "key", key);
    upload_staging_key(key, staging, sizeof staging);
    if (!uid[0] && s3_delete_object(c->t->s3, staging, err) == S3_ERR) /* a one-PUT object */
        log_warn(c->rid, "s3_delete_failed", err, "key", staging);
    o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "upload_session_id", id);
    cJSON_AddStringToObject(o, "status", "aborted");
    http_respond_json(c->req, 200, o);
}

/* ---- completion ---- */

/* Metrics for a committed upload; pop: proven possession, no bytes moved. */
static void count_upload(struct api *api, const struct upload_row *s,
                         const struct upload_outcome *o, int pop)
{
    if (o->status != 200)
        return;
    api_count(api, "pixplane_uploads_completed_total",
              pop        ? "kind=\"proof\""
              : o->dedup ? "kind=\"dedup\""
                         : "kind=\"new\"",
              1);
    if (o->dedup)
        api_count(api, "pixplane_dedup_hits_total", "", 1);
    if (!pop)
        api_count(api, "pixplane_upload_bytes_total", "", (double)s->size);
}

static void respond_outcome(struct api_call *c, const struct upload_row *s,
                            const struct upload_outcome *o)
{
    cJSON *j;

    if (o->status >= 400)
        return api_error(c, o->status, o->code, o->msg);
    j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "upload_session_id", s->id);
    if (o->image_id[0])
        cJSON_AddStringToObject(j, "image_id", o->image_id);
    if (o->status == 202) {
        cJSON_AddStringToObject(j, "status", o->code);
        if (o->image_id[0])
            cJSON_AddStringToObject(j, "image_status", "verifying");
        if (http_resp_header(c->req, "Retry-After", "1") < 0)
            log_warn(c->rid, "http", "header");
    } else {
        cJSON_AddStringToObject(j, "status", "completed");
        cJSON_AddBoolToObject(j, "deduplicated", o->seen);
        cJSON_AddStringToObject(j, "sha256", o->hash);
        cJSON_AddStringToObject(j, "image_status", "active");
    }
    http_respond_json(c->req, o->status, j);
}

/* A one-PUT upload's object, copied from its staging key to the session's key inside
 * storage (common/finalize.h): S3_OK (in place: copied now, or by an earlier complete),
 * S3_NOTFOUND (not sent yet) or S3_ERR. */
static int one_put_take(struct api_call *c, const struct upload_row *s, char *err)
{
    char staging[80];
    struct s3_object obj;
    int rc;

    upload_staging_key(s->key, staging, sizeof staging);
    if ((rc = s3_copy_object(c->t->s3, staging, s->key, err)) != S3_NOTFOUND)
        return rc;
    rc = s3_head_object(c->t->s3, s->key, &obj, err);
    return rc == S3_OK && obj.size != s->size ? S3_NOTFOUND : rc;
}

static void upload_release(struct api_call *c, const struct upload_row *s);

/* Answers 409 chunks_missing with the list (taken) and releases the claim. */
static void respond_missing(struct api_call *c, const struct upload_row *s, cJSON *list)
{
    cJSON *e = cJSON_CreateObject(), *inner = cJSON_AddObjectToObject(e, "error");

    upload_release(c, s);
    cJSON_AddStringToObject(inner, "code", "chunks_missing");
    cJSON_AddStringToObject(inner, "message", "some chunks are missing or have the wrong size");
    cJSON_AddItemToObject(inner, "missing_chunks", list);
    http_respond_json(c->req, 409, e);
}

/* ListParts (or a one-PUT upload's copy): every chunk present with its exact size. 1 ok
 * (parts set), 2 already assembled (a one PUT in place, or a retry after the multipart
 * upload was completed), 0/-1 answered. */
static int check_parts(struct api_call *c, const struct upload_row *s, struct s3_part **parts,
                       int *n)
{
    char err[ERR_MAX];
    struct s3_object obj;
    int rc = S3_NOTFOUND, missing = 0;
    cJSON *list;

    if (s->upload_id[0])
        rc = s3_list_parts(c->t->s3, s->key, s->upload_id, parts, n, err);
    else if (upload_one_put(s) && (rc = one_put_take(c, s, err)) == S3_OK)
        return 2;
    if (rc == S3_ERR)
        return upload_release(c, s), api_s3_fail(c, "list_parts", err), -1;
    if (rc == S3_NOTFOUND && s->upload_id[0] &&
        s3_head_object(c->t->s3, s->key, &obj, err) == S3_OK && obj.size == s->size)
        return 2; /* assembled already (a retry after the completion) */
    list = cJSON_CreateArray();
    for (int i = 0, j = 0; i < s->chunk_count; i++) {
        while (j < *n && (*parts)[j].number < i + 1)
            j++;
        if (j >= *n || (*parts)[j].number != i + 1 || (*parts)[j].size != chunk_len(s, i))
            missing++, cJSON_AddItemToArray(list, cJSON_CreateNumber(i));
    }
    if (!missing)
        return cJSON_Delete(list), 1;
    respond_missing(c, s, list);
    return 0;
}

static void record_chunks(struct api_call *c, const struct upload_row *s,
                          const struct s3_part *parts, int n)
{
    cJSON *a = cJSON_CreateArray();
    char err[ERR_MAX], *json;
    const char *p[2] = {s->id, NULL};
    PGresult *r;

    for (int i = 0; i < n; i++) {
        cJSON *e = cJSON_CreateObject();
        cJSON_AddNumberToObject(e, "n", parts[i].number - 1);
        cJSON_AddNumberToObject(e, "size", (double)parts[i].size);
        cJSON_AddStringToObject(e, "etag", parts[i].etag);
        cJSON_AddItemToArray(a, e);
    }
    p[1] = json = json_print(a);
    r = json ? pg_exec(c->db, "chunks_record", 2, p, err) : NULL;
    if (!r)
        log_warn(c->rid, "chunks_record_failed", json ? err : "out of memory");
    PQclear(r);
    free(json);
    cJSON_Delete(a);
}

/* A pending image verified in the background (the session as claimed: its lease). */
struct verify_job {
    struct upload_row s;
    char rid[65];
};

static struct finalize_opts finalize_opts_of(const struct api *api)
{
    const struct api_config *cfg = api->cfg;

    return (struct finalize_opts){cfg->upload_topic, (int)cfg->pop_bank, cfg->verify_lease,
                                  api->held, cfg->complete_lease};
}

/* Gives a claimed session back (a lease the database outage kept goes to api->held). */
static void upload_release(struct api_call *c, const struct upload_row *s)
{
    struct finalize_opts opt = finalize_opts_of(c->api);

    finalize_release(c->db, s, &opt, c->rid);
}

/* Releases the leases complete could not give back while the database was away. */
static void held_run(void *arg, void *tctx)
{
    struct api *api = arg;
    char err[ERR_MAX];
    pg_conn *db = pg_acquire(api->pg, 1, err);

    if (db)
        (void)finalize_held_retry(api->held, db, NULL);
    pg_release(db);
    __atomic_store_n(&api->held_busy, 0, __ATOMIC_RELEASE);
}

void upload_held_sweep(struct api *api)
{
    if (!finalize_held_count(api->held) ||
        __atomic_exchange_n(&api->held_busy, 1, __ATOMIC_ACQ_REL))
        return;
    if (pool_submit(api->jobs, held_run, api) < 0)
        __atomic_store_n(&api->held_busy, 0, __ATOMIC_RELEASE);
}

static void verify_run(void *arg, void *tctx)
{
    struct verify_job *j = arg;
    struct api_tctx *t = tctx;
    struct upload_outcome o = {0};
    struct finalize_opts opt = finalize_opts_of(t->api);
    char err[ERR_MAX];
    pg_conn *db = pg_acquire(t->api->pg, 30, err);

    /* a lease taken by a complete is the long complete-lease: shorten it to the verify
     * lease, renewed while hashing, so a crash hands the work on soon */
    if (!db || finalize_renew(db, &j->s, opt.verify_lease, err) < 0) {
        log_warn(j->rid, "verify_skipped", err, "upload_session_id", j->s.id);
    } else {
        for (int i = 0; FAIL_POINT("verify_stall") && i < 1200; i++)
            usleep(100000); /* crash tests: a verification still running after 2 min */
        finalize_upload(db, t->s3, &j->s, NULL, 0, &opt, &o, j->rid);
        count_upload(t->api, &j->s, &o, 0);
    }
    pg_release(db);
    __atomic_sub_fetch(&t->api->verifications, 1, __ATOMIC_ACQ_REL);
    free(j);
}

/* Queues the verification of a pending image. When the pool is full the session keeps its
 * lease until it runs out; the sweep (or the client's next complete) takes it then. */
static void verify_queue(struct api *api, const struct upload_row *s, const char *rid)
{
    struct verify_job *j = calloc(1, sizeof *j);

    if (j) {
        j->s = *s;
        util_strlcpy(j->rid, sizeof j->rid, rid ? rid : "");
        __atomic_add_fetch(&api->verifications, 1, __ATOMIC_ACQ_REL);
    }
    if (j && pool_submit(api->jobs, verify_run, j) == 0)
        return;
    if (j)
        __atomic_sub_fetch(&api->verifications, 1, __ATOMIC_ACQ_REL);
    free(j);
    log_warn(rid, "verify_deferred", "background pool full", "upload_session_id", s->id);
}

/* Takes pending images whose verification lease ran out (a crashed or restarted process,
 * a full pool), as many as there are idle verification threads. */
static void verify_sweep_run(void *arg, void *tctx)
{
    struct api_tctx *t = tctx;
    struct api *api = t->api;
    char err[ERR_MAX], secs[32], lim[24];
    const char *p[2] = {secs, lim};
    long idle = api->cfg->verify_jobs - __atomic_load_n(&api->verifications, __ATOMIC_ACQUIRE);
    pg_conn *db = idle > 0 ? pg_acquire(api->pg, 5, err) : NULL;
    PGresult *r = NULL;
    struct upload_row s;

    (void)arg;
    snprintf(secs, sizeof secs, "%.3f", api->cfg->verify_lease);
    snprintf(lim, sizeof lim, "%ld", idle);
    if (db && !(r = pg_exec(db, "verify_take", 2, p, err)))
        log_warn(NULL, "verify_sweep_failed", err);
    for (int i = 0; r && i < PQntuples(r); i++) {
        upload_row_load(r, i, &s);
        log_info(NULL, "verify_resumed", "lease ran out", "upload_session_id", s.id);
        verify_queue(api, &s, NULL);
    }
    PQclear(r);
    pg_release(db);
    __atomic_store_n(&api->verify_sweep_busy, 0, __ATOMIC_RELEASE);
}

void upload_verify_sweep(struct api *api)
{
    if (__atomic_exchange_n(&api->verify_sweep_busy, 1, __ATOMIC_ACQ_REL))
        return;
    if (pool_submit(api->jobs, verify_sweep_run, NULL) < 0)
        __atomic_store_n(&api->verify_sweep_busy, 0, __ATOMIC_RELEASE);
}

/* Large uploads: the image is made 'verifying' now and verified in the background. */
static void run_pending(struct api_call *c, struct upload_row *s, struct s3_part *parts, int n)
{
    struct upload_outcome o = {0};
    struct finalize_opts opt = finalize_opts_of(c->api);

    finalize_pending(c->db, c->t->s3, s, parts, n, &opt, &o, c->rid);
    free(parts);
    if (o.status == 202)
        verify_queue(c->api, s, c->rid);
    respond_outcome(c, s, &o);
}

/* After the answer went out (the request holds nothing of it): a one-PUT upload's staging
 * object was copied by check_parts, whatever came of the commit, and is not needed. */
static void after_complete(struct api_call *c, const struct upload_row *s)
{
    if (upload_one_put(s))
        finalize_drop_staged(c->t->s3, s, c->rid);
}

static void run_claimed(struct api_call *c, struct upload_row *s)
{
    struct s3_part *parts = NULL;
    struct upload_outcome o = {.status = 202};
    struct finalize_opts opt = finalize_opts_of(c->api);
    int n = 0, rc;

    if (finalize_pending_image(s)) { /* its verifier died: this complete restarts it */
        char err[ERR_MAX];
        util_strlcpy(o.code, sizeof o.code, "verifying");
        util_strlcpy(o.image_id, sizeof o.image_id, s->image_id);
        /* the claim took the long complete-lease: a full pool must not hold it that long */
        if (finalize_renew(c->db, s, opt.verify_lease, err) == 0)
            verify_queue(c->api, s, c->rid);
        return respond_outcome(c, s, &o);
    }
    if ((rc = check_parts(c, s, &parts, &n)) <= 0)
        return free(parts);
    if (rc == 1)
        record_chunks(c, s, parts, n);
    else
        free(parts), parts = NULL, n = FINALIZE_IN_PLACE;
    if (s->size >= c->api->cfg->verify_async_threshold) {
        run_pending(c, s, parts, n);
        return after_complete(c, s);
    }
    finalize_upload(c->db, c->t->s3, s, parts, n, &opt, &o, c->rid);
    free(parts);
    count_upload(c->api, s, &o, 0);
    respond_outcome(c, s, &o);
    after_complete(c, s);
}

/* Answers for a session nobody can claim; 0 if it is still being completed elsewhere. */
static int respond_settled(struct api_call *c, const struct upload_row *s)
{
    struct upload_outcome o = {.status = 200, .dedup = s->dedup, .seen = s->dedup_own};

    if (!strcmp(s->status, "completed")) {
        util_strlcpy(o.image_id, sizeof o.image_id, s->image_id);
        util_strlcpy(o.hash, sizeof o.hash, s->hash);
        return respond_outcome(c, s, &o), 1;
    }
    if (!strcmp(s->status, "failed"))
        return api_error(c, !strcmp(s->error_code, "upload_lost") ? 409 : 422, s->error_code,
                         s->error_msg),
               1;
    if (!strcmp(s->status, "aborted"))
        return api_error(c, 409, "session_closed", "the upload session was aborted"), 1;
    if (s->expired || !strcmp(s->status, "expired"))
        return api_error(c, 410, "session_expired", "the upload session has expired"), 1;
    return 0;
}

/* Tries to take the session's completion lease: 1 taken, 0 not (s holds the current row),
 * -1 answered. */
static int claim(struct api_call *c, struct upload_row *s)
{
    const char *id = api_param_uuid(c, "id");
    char lease[37], secs[24];
    const char *p[4] = {id, c->user.sub, lease, secs};
    int rc;

    if (!id || util_uuid(lease) < 0)
        return id ? (api_error(c, 500, "internal", "no randomness"), -1) : -1;
    snprintf(secs, sizeof secs, "%.0f", c->api->cfg->complete_lease);
    rc = sess_query(c, "session_claim", 4, p, s);
    if (rc != 0)
        return rc;
    return sess_get(c, s) < 0 ? -1 : 0;
}

/* complete's optional body {"sha256"}: a client that hashed while uploading declares the
 * hash now (the server checks it as one declared at creation). 0, or -1 answered. */
static int declare_late(struct api_call *c)
{
    const char *id = api_param_uuid(c, "id"), *in = NULL, *msg = NULL;
    char sha[65], err[ERR_MAX];
    const char *p[3] = {id, c->user.sub, sha};
    size_t len = 0;
    cJSON *body;
    PGresult *r;
    int rc = -1;

    if (!id || !http_req_body(c->req, &len) || len == 0)
        return id ? 0 : -1;
    if (!(body = api_body(c)))
        return -1;
    if (json_get_str(body, "sha256", &in, &msg) < 0)
        api_error(c, 400, "bad_request", msg);
    else if (!in || sha256_parse(c, in, sha) == 0)
        rc = 0;
    if (rc == 0 && in && api_db(c)) {
        if (!(r = pg_exec(c->db, "session_declare", 3, p, err)))
            rc = -1, api_db_fail(c, "session_declare", err);
        else if (PQntuples(r) == 1 && pg_val(r, 0, 0)[0] != 't')
            rc = -1, api_error(c, 422, "sha256_mismatch",
                               "sha256 differs from the one declared at creation");
        PQclear(r);
    }
    cJSON_Delete(body);
    return rc;
}

/* A complete on a session another request is completing or verifying answers 202 with its
 * status at once: nobody waits holding a worker and a database connection (issue 13). */
void upload_complete(struct api_call *c)
{
    struct upload_outcome o = {.status = 202};
    struct upload_row s;
    int rc = declare_late(c) < 0 ? -1 : claim(c, &s);

    if (rc < 0)
        return;
    if (rc == 1)
        return run_claimed(c, &s);
    if (respond_settled(c, &s))
        return;
    util_strlcpy(o.code, sizeof o.code, s.status);
    util_strlcpy(o.image_id, sizeof o.image_id, s.image_id);
    respond_outcome(c, &s, &o);
}

/* ---- proof of possession ---- */

/* No answer was prepared (the bank was dry): computes it from the stored content. Content
 * that is gone leaves the answer "", refused like any wrong proof. 0, or -1 answered. */
static int answer_from_storage(struct api_call *c, const struct upload_row *s,
                               struct pop_challenge *ch)
{
    const char *p[1] = {s->declared};
    char err[ERR_MAX], key[512];
    PGresult *r = pg_exec(c->db, "blob_get", 1, p, err);
    int found;

    if (!r)
        return api_db_fail(c, "blob_get", err), -1;
    found = PQntuples(r) == 1 && pg_i64(r, 0, 1) == s->size;
    if (found)
        util_strlcpy(key, sizeof key, pg_val(r, 0, 0));
    PQclear(r);
    if (found && pop_answer_from(c->t->s3, key, ch, err) != S3_OK)
        return api_s3_fail(c, "proof_read", err), -1;
    return 0;
}

/* A wrong proof, a decoy and content that is gone get the same answer. */
static void refuse(struct api_call *c, const struct upload_row *s)
{
    log_info(c->rid, "proof_rejected", "proof of possession refused", "upload_session_id", s->id);
    api_error(c, 403, "proof_rejected", "proof of possession refused; upload the content instead");
}

/* No open challenge: says why (404, 410, 409). */
static void no_challenge(struct api_call *c, struct upload_row *s)
{
    if (sess_get(c, s) < 0 || sess_open(c, s) < 0)
        return;
    api_error(c, 409, "no_challenge",
              "this session has no open proof-of-possession challenge; upload the content");
}

/* Checks the proof against the prepared answer in one statement that also consumes the
 * challenge (one attempt) and, if right, takes the completion lease. 1 right (s is the
 * claimed row), 0 no answer was prepared (ch holds the challenge), -1 answered. */
static int prove_prepared(struct api_call *c, const char *proof, struct upload_row *s,
                          struct pop_challenge *ch)
{
    const char *id = api_param_uuid(c, "id");
    char lease[37], secs[24], err[ERR_MAX];
    const char *p[5] = {id, c->user.sub, proof, lease, secs};
    PGresult *r;
    int right, prepared, loaded = -1;

    if (!id || !api_db(c))
        return -1;
    if (util_uuid(lease) < 0)
        return api_error(c, 500, "internal", "no randomness"), -1;
    snprintf(secs, sizeof secs, "%.0f", c->api->cfg->complete_lease);
    if (!(r = pg_exec(c->db, "session_prove", 5, p, err)))
        return api_db_fail(c, "session_prove", err), -1;
    if (PQntuples(r) != 1) {
        PQclear(r);
        no_challenge(c, s);
        return -1;
    }
    upload_row_load(r, 0, s);
    right = pg_val(r, 0, UPLOAD_ROW_NCOLS)[0] == 't';
    prepared = pg_val(r, 0, UPLOAD_ROW_NCOLS + 1)[0] == 't';
    if (!prepared)
        loaded = pop_challenge_load(pg_val(r, 0, UPLOAD_ROW_NCOLS + 2),
                                    pg_val(r, 0, UPLOAD_ROW_NCOLS + 3), ch);
    PQclear(r);
    if (right)
        return 1;
    if (loaded == 0)
        return 0;
    refuse(c, s);
    return -1;
}

/* The bank was dry: reads the answer from storage, then takes the lease if right. 1 right
 * (s is the claimed row), -1 answered. */
static int prove_from_storage(struct api_call *c, const char *proof, struct upload_row *s,
                              struct pop_challenge *ch)
{
    int rc;

    if (answer_from_storage(c, s, ch) < 0)
        return -1;
    if (!ch->answer[0] || strlen(proof) != 64 || !util_streq_ct(ch->answer, proof, 64)) {
        refuse(c, s);
        return -1;
    }
    rc = claim(c, s);
    if (rc == 0 && !respond_settled(c, s))
        api_error(c, 409, "conflict", "the session is being completed");
    return rc == 1 ? 1 : -1;
}

void upload_proof(struct api_call *c)
{
    char proof[65] = "", err[ERR_MAX];
    struct pop_challenge ch;
    const char *v = NULL, *jerr = NULL;
    struct upload_outcome o = {0};
    struct upload_row s;
    cJSON *body = api_body(c);
    int rc;

    if (!body)
        return;
    if (json_get_str(body, "proof", &v, &jerr) != 1 || strlen(v) != 64 ||
        strspn(v, "0123456789abcdefABCDEF") != 64) {
        api_error(c, 400, "bad_request", jerr ? jerr : "proof must be 64 hex digits");
        goto done;
    }
    for (size_t i = 0; strlen(v) == 64 && i < 64; i++)
        proof[i] = (char)(v[i] >= 'A' && v[i] <= 'F' ? v[i] + 32 : v[i]);
    rc = prove_prepared(c, proof, &s, &ch);
    if (rc == 0)
        rc = prove_from_storage(c, proof, &s, &ch);
    if (rc != 1)
        goto done;
    if (finalize_commit(c->db, &s, s.declared, 1, c->api->cfg->upload_topic, &o, err) < 0) {
        upload_release(c, &s);
        api_db_fail(c, "commit_image", err);
        goto done;
    }
    if (o.status != 200)
        upload_release(c, &s);
    count_upload(c->api, &s, &o, 1);
    respond_outcome(c, &s, &o);
done:
    cJSON_Delete(body);
}
