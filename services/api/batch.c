/* batch: POST /uploads/batch opens many upload sessions in one call and one database round
 * trip (session_batch), for bulk imports; each item's answer is independent, in order. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "json.h"
#include "log.h"
#include "prehook.h"
#include "quota.h"
#include "upload.h"

/* One item of the batch and, once known, its answer. */
struct bitem {
    struct upload_req q;
    struct upload_offer f;
    struct upload_plan plan;
    struct upload_err e; /* e.status 0: valid so far */
    const char *idem;
    char id[37];
    cJSON *answer; /* the created or replayed session */
    cJSON *detail; /* an error object with more than code and message (quota_exceeded) */
    char reason[PREHOOK_REASON_MAX]; /* the pre-upload hook's refusal */
    int replayed;
};

struct batch {
    struct bitem *it;
    int n;
    long long open, bytes;   /* the caller's open sessions before the batch (the caps row) */
    int caps_row;            /* its row in session_batch's result (quota usage follows) */
    struct prehook_run hook; /* the pre-upload hook's calls: one time budget for the batch */
};

/* Columns of session_batch after the session's: declared sha256, kind, ord, n, bytes, dry,
 * then the quota usage (QUOTA_COLS) on the caps row. */
#define BATCH_KIND (UPLOAD_ROW_NCOLS + 1)
#define BATCH_QUOTA (BATCH_KIND + 5)

static void item_fail(struct bitem *b, int status, const char *code, const char *msg)
{
    b->e = (struct upload_err){.status = status, .code = code, .msg = msg};
}

/* Whether an earlier valid item carries the same idempotency_key. */
static int idem_repeated(const struct batch *bt, int i)
{
    for (int k = 0; k < i; k++)
        if (!bt->it[k].e.status && bt->it[k].idem && !strcmp(bt->it[k].idem, bt->it[i].idem))
            return 1;
    return 0;
}

/* Checks item i like POST /uploads, and prepares its id, plan and challenge offer. */
static void item_check(struct api_call *c, struct batch *bt, int i, const cJSON *o)
{
    const struct api_config *cfg = c->api->cfg;
    struct bitem *b = &bt->it[i];
    const char *err = NULL;
    int has_key;

    if (!cJSON_IsObject(o))
        return item_fail(b, 400, "bad_request", "an item must be an object");
    if (upload_req_check(cfg, o, &b->q, &b->e) < 0)
        return;
    if ((has_key = json_get_str(o, "idempotency_key", &b->idem, &err)) < 0 ||
        (has_key == 1 && !upload_idem_ok(b->idem)))
        return item_fail(b, 400, "bad_request",
                         "idempotency_key must be 1-128 printable characters");
    if (has_key != 1)
        b->idem = NULL;
    if (b->idem && idem_repeated(bt, i))
        return item_fail(b, 400, "bad_request", "idempotency_key repeated within the batch");
    if (upload_plan(b->q.size, cfg->chunk_size, cfg->min_chunk_size, cfg->max_chunks, &b->plan) < 0)
        return item_fail(b, 413, "file_too_large", "file_size cannot be split into chunks");
    if (util_uuid(b->id) < 0)
        return item_fail(b, 500, "internal", "no randomness");
    if (upload_offer_make(cfg, &b->q, &b->f, &b->e) < 0)
        return;
    if (prehook_admit(c, &b->q, b->idem, b->reason, &bt->hook, &b->e) < 0)
        return;
}

/* The valid items as session_batch's JSON parameter. */
static char *items_param(const struct batch *bt)
{
    cJSON *a = cJSON_CreateArray();
    char key[64];
    char *s;

    for (int i = 0; a && i < bt->n; i++) {
        const struct bitem *b = &bt->it[i];
        cJSON *o;

        if (b->e.status || !(o = cJSON_CreateObject()))
            continue;
        snprintf(key, sizeof key, "blobs/%s", b->id);
        cJSON_AddNumberToObject(o, "ord", i);
        cJSON_AddStringToObject(o, "id", b->id);
        cJSON_AddStringToObject(o, "name", b->q.name);
        cJSON_AddNumberToObject(o, "size", (double)b->q.size);
        cJSON_AddStringToObject(o, "mime", b->q.mime_lc);
        if (b->q.sha256)
            cJSON_AddStringToObject(o, "sha", b->q.sha256);
        cJSON_AddNumberToObject(o, "csz", (double)b->plan.chunk_size);
        cJSON_AddNumberToObject(o, "ccnt", b->plan.chunk_count);
        cJSON_AddStringToObject(o, "okey", key);
        if (b->idem)
            cJSON_AddStringToObject(o, "idem", b->idem);
        if (b->q.modified)
            cJSON_AddStringToObject(o, "fmod", b->q.modified);
        cJSON_AddStringToObject(o, "nonce", b->f.nonce);
        if (b->f.nonce[0])
            cJSON_AddStringToObject(o, "ranges", b->f.ranges.data);
        cJSON_AddStringToObject(o, "answer", b->f.answer);
        cJSON_AddItemToArray(a, o);
    }
    s = a ? cJSON_PrintUnformatted(a) : NULL;
    cJSON_Delete(a);
    return s;
}

/* A replayed item: the same session if the request is the same, else 422. */
static void item_replay(struct bitem *b, const struct upload_row *s)
{
    if (strcmp(s->name, b->q.name) || s->size != b->q.size || strcmp(s->mime, b->q.mime_lc) ||
        strcmp(s->declared, b->q.sha256 ? b->q.sha256 : ""))
        return item_fail(b, 422, "idempotency_key_reused",
                         "idempotency_key was used with a different request");
    b->answer = upload_created_json(s);
    b->replayed = 1;
}

/* Reads session_batch's rows into the items; queues refills of dry banks. */
static void take_rows(struct api_call *c, struct batch *bt, PGresult *r)
{
    struct upload_row s;
    const int k = BATCH_KIND;

    for (int row = 0; row < PQntuples(r); row++) {
        const char *kind = pg_val(r, row, k);
        struct bitem *b;
        int ord;

        if (!strcmp(kind, "caps")) {
            bt->open = pg_i64(r, row, k + 2);
            bt->bytes = pg_i64(r, row, k + 3);
            bt->caps_row = row;
            continue;
        }
        ord = atoi(pg_val(r, row, k + 1)); /* new and replayed rows carry their item's */
        if (ord < 0 || ord >= bt->n)
            continue;
        b = &bt->it[ord];
        if (b->e.status || b->answer)
            continue;
        upload_row_load(r, row, &s);
        if (!strcmp(kind, "replay"))
            item_replay(b, &s);
        else
            b->answer = upload_created_json(&s);
        if (!strcmp(kind, "new") && pg_val(r, row, k + 4)[0] == 't')
            upload_queue_refill(c, s.declared);
    }
}

/* A limit of the caps row (-1: unlimited) and the usage it applies to (used + reserved). */
static long long quota_limit(const PGresult *r, int row, int bytes, long long *used)
{
    int col = BATCH_QUOTA;

    *used = pg_i64(r, row, col + (bytes ? 0 : 1)) + pg_i64(r, row, col + (bytes ? 4 : 5));
    return PQgetisnull(r, row, col + (bytes ? 6 : 7)) ? -1 : pg_i64(r, row, col + (bytes ? 6 : 7));
}

/* Whether the item taking the batch's new sessions to qbytes and qn overshoots the quota:
 * "bytes", "images" or NULL (as quota_kind in migrations/013_quota.sql). */
static const char *quota_over(const PGresult *r, int row, long long qbytes, long long qn)
{
    long long used, max = quota_limit(r, row, 1, &used);

    if (max >= 0 && used + qbytes > max)
        return "bytes";
    max = quota_limit(r, row, 0, &used);
    if (max >= 0 && used + qn > max)
        return "images";
    return NULL;
}

/* Valid items with no session: refused by the caps or the quota (admitted in order while
 * they fit), or their idempotency_key taken by a concurrent request. */
static void settle_rest(struct api_call *c, struct batch *bt, const PGresult *r)
{
    const struct api_config *cfg = c->api->cfg;
    long long n = bt->open, bytes = bt->bytes, qn = 0, qbytes = 0;
    const char *kind;

    for (int i = 0; i < bt->n; i++) {
        struct bitem *b = &bt->it[i];

        if (b->e.status || b->replayed)
            continue;
        n++, qn++;
        bytes += b->q.size;
        qbytes += b->q.size;
        if (b->answer)
            continue;
        if (n > cfg->sessions_per_user)
            item_fail(b, 429, "too_many_open_sessions",
                      "the caller's open upload sessions are at the cap; complete or abort "
                      "some first");
        else if (bytes > cfg->inflight_bytes_per_user)
            item_fail(b, 429, "inflight_bytes_exceeded",
                      "the caller's open upload sessions declare the most bytes allowed; "
                      "complete or abort some first");
        else if ((kind = quota_over(r, bt->caps_row, qbytes, qn))) {
            item_fail(b, 403, "quota_exceeded", "the upload does not fit in the quota");
            b->detail = quota_error_json(r, bt->caps_row, BATCH_QUOTA, kind, b->q.size);
            quota_count(c->api, kind);
        } else
            item_fail(b, 409, "conflict", "concurrent request with this idempotency_key");
    }
}

static cJSON *results_json(struct batch *bt)
{
    cJSON *o = cJSON_CreateObject(), *a = cJSON_AddArrayToObject(o, "items");

    for (int i = 0; i < bt->n; i++) {
        struct bitem *b = &bt->it[i];
        cJSON *x = cJSON_CreateObject(), *e;

        cJSON_AddNumberToObject(x, "index", i);
        cJSON_AddNumberToObject(x, "status_code", b->e.status ? b->e.status : 201);
        if (b->detail) {
            cJSON_AddItemToObject(x, "error", b->detail);
            b->detail = NULL;
        } else if (b->e.status) {
            e = cJSON_AddObjectToObject(x, "error");
            cJSON_AddStringToObject(e, "code", b->e.code);
            cJSON_AddStringToObject(e, "message", b->e.msg);
        } else {
            cJSON_AddItemToObject(x, "session", b->answer);
            cJSON_AddBoolToObject(x, "replayed", b->replayed);
            b->answer = NULL;
        }
        cJSON_AddItemToArray(a, x);
    }
    return o;
}

/* Runs session_batch over the valid items; -1 answered. */
static int batch_insert(struct api_call *c, struct batch *bt)
{
    const struct api_config *cfg = c->api->cfg;
    char caps[24], bytes[24], cap[16], refill[32], thr[16], ttl[24], err[ERR_MAX];
    char *items = items_param(bt);
    struct quota_params q;
    const char *p[11] = {c->user.sub, items, caps,    bytes,    cap,    refill,
                         thr,         ttl,   q.bytes, q.images, q.every};
    PGresult *r;

    if (!items)
        return api_error(c, 500, "internal", "out of memory"), -1;
    snprintf(caps, sizeof caps, "%ld", cfg->sessions_per_user);
    snprintf(bytes, sizeof bytes, "%lld", cfg->inflight_bytes_per_user);
    snprintf(cap, sizeof cap, "%ld", cfg->pop_budget);
    snprintf(refill, sizeof refill, "%.3f", cfg->pop_budget_refill);
    snprintf(thr, sizeof thr, "%ld", cfg->dedup_threshold);
    snprintf(ttl, sizeof ttl, "%.0f", cfg->session_ttl);
    quota_params_of(cfg, &q);
    r = api_db(c) ? pg_exec(c->db, "session_batch", 11, p, err) : NULL;
    free(items);
    if (!r && c->db)
        api_db_fail(c, "session_batch", err);
    if (!r)
        return -1;
    take_rows(c, bt, r);
    settle_rest(c, bt, r);
    PQclear(r);
    return 0;
}

static void batch_free(struct batch *bt)
{
    for (int i = 0; i < bt->n; i++) {
        buf_free(&bt->it[i].f.ranges);
        cJSON_Delete(bt->it[i].answer);
        cJSON_Delete(bt->it[i].detail);
    }
    free(bt->it);
}

void upload_batch(struct api_call *c)
{
    const long max = c->api->cfg->batch_max_items;
    cJSON *body = api_body(c), *items, *o;
    struct batch bt = {0};
    char msg[96];
    int n, i = 0;

    if (!body)
        return;
    items = cJSON_GetObjectItemCaseSensitive(body, "items");
    if (!cJSON_IsArray(items) || (n = cJSON_GetArraySize(items)) < 1) {
        api_error(c, 400, "bad_request", "items must be a non-empty array");
        goto done;
    }
    if (n > max) {
        snprintf(msg, sizeof msg, "at most %ld items per batch", max);
        api_error(c, 413, "too_many_items", msg);
        goto done;
    }
    if (!(bt.it = calloc((size_t)n, sizeof *bt.it))) {
        api_error(c, 500, "internal", "out of memory");
        goto done;
    }
    bt.n = n;
    cJSON_ArrayForEach(o, items)
    {
        item_check(c, &bt, i++, o);
    }
    if (batch_insert(c, &bt) == 0)
        http_respond_json(c->req, 200, results_json(&bt));
done:
    batch_free(&bt);
    cJSON_Delete(body);
}
