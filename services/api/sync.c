/* sync: gap-free device deltas. A cursor starts as a snapshot of the current state, then
 * follows the change log by (txid, seq), handing out only positions below the oldest
 * transaction still in flight, so a late commit can never be skipped. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "log.h"
#include "sync.h"

#define SYNC_DEFAULT_LIMIT 100
#define SYNC_MAX_LIMIT 1000

/* Encodes the cursor as opaque text: base64url of "c.<txid>.<seq>" or "s.<wm>.<uuid|0>". */
char *sync_cursor_encode(const struct sync_cursor *cur)
{
    char raw[96];
    int n = cur->snapshot ? snprintf(raw, sizeof raw, "s.%" PRIu64 ".%s", cur->txid,
                                     cur->after[0] ? cur->after : "0")
                          : snprintf(raw, sizeof raw, "c.%" PRIu64 ".%lld", cur->txid, cur->seq);

    return util_b64url_encode((const unsigned char *)raw, (size_t)n);
}

static int parse_u64(const char *s, const char *end, uint64_t *out)
{
    uint64_t v = 0;

    if (s == end || end - s > 19)
        return -1;
    for (; s < end; s++) {
        if (*s < '0' || *s > '9')
            return -1;
        v = v * 10 + (uint64_t)(*s - '0');
    }
    *out = v;
    return 0;
}

int sync_cursor_decode(const char *text, struct sync_cursor *cur)
{
    unsigned char *raw = NULL;
    char *a, *b;
    size_t n;
    uint64_t v;
    int rc = -1;

    memset(cur, 0, sizeof *cur);
    if (!text[0] || !strcmp(text, "0"))
        return cur->snapshot = 1, cur->fresh = 1, 0;
    if (util_b64url_decode(text, strlen(text), &raw, &n) < 0 || n < 5 || n > 90)
        goto done;
    raw[n] = '\0';
    a = strchr((char *)raw, '.');
    b = a ? strchr(a + 1, '.') : NULL;
    if (!b || (raw[0] != 'c' && raw[0] != 's') || a != (char *)raw + 1 ||
        parse_u64(a + 1, b, &cur->txid) < 0)
        goto done;
    cur->snapshot = raw[0] == 's';
    if (cur->snapshot && strcmp(b + 1, "0") && !util_is_uuid(b + 1))
        goto done;
    if (cur->snapshot && strcmp(b + 1, "0"))
        util_strlcpy(cur->after, sizeof cur->after, b + 1);
    if (!cur->snapshot && (parse_u64(b + 1, b + 1 + strlen(b + 1), &v) < 0 || v > INT64_MAX))
        goto done;
    cur->seq = cur->snapshot ? 0 : (long long)v;
    rc = 0;
done:
    free(raw);
    return rc;
}

/* One image's entry: its state now, and what the window says happened to it. */
struct entry {
    char id[37];
    int first_seen; /* the window holds its 'added' (or 'restored'): new to the device */
    int touched;
};

static void entry_json(cJSON *o, const PGresult *r, int i)
{
    struct api_img m;
    cJSON *j, *v;

    api_img_from_row(r, i, &m);
    j = api_img_json(&m);
    v = cJSON_Parse(pg_val(r, i, API_IMAGE_NCOLS + 1));
    cJSON_AddItemToObject(j, "variants", v ? v : cJSON_CreateObject());
    v = cJSON_Parse(pg_val(r, i, API_IMAGE_NCOLS + 2));
    cJSON_AddItemToObject(j, "capture", v ? v : cJSON_CreateObject());
    cJSON_AddItemToArray(o, j);
}

static void add_deleted(cJSON *arr, const char *id)
{
    cJSON *d = cJSON_CreateObject();

    cJSON_AddStringToObject(d, "image_id", id);
    cJSON_AddItemToArray(arr, d);
}

/* Classifies each image of the window by its current state (added, updated, deleted or
 * nothing when it came and went inside the window). */
static int classify(struct api_call *c, struct entry *e, int n, cJSON *out, char *err)
{
    buf ids = {0};
    const char *p[2] = {NULL, c->user.sub};
    PGresult *r;
    int rc = -1;

    if (FAIL_POINT("sync_classify_alloc"))
        goto oom;
    for (int i = 0; i < n; i++)
        if (buf_printf(&ids, "%s%s", i ? "," : "{", e[i].id) < 0)
            goto oom;
    if (buf_puts(&ids, "}") < 0)
        goto oom;
    p[0] = ids.data;
    if (!(r = pg_exec(c->db, "sync_states", 2, p, err)))
        goto done;
    for (int i = 0; i < n; i++) {
        int row = -1;
        for (int k = 0; k < PQntuples(r) && row < 0; k++)
            if (!strcmp(pg_val(r, k, 0), e[i].id))
                row = k;
        if (row >= 0 && pg_val(r, row, API_IMAGE_NCOLS)[0] == 't')
            entry_json(cJSON_GetObjectItem(out, e[i].first_seen ? "added" : "updated"), r, row);
        else if (!e[i].first_seen)
            add_deleted(cJSON_GetObjectItem(out, "deleted"), e[i].id);
    }
    PQclear(r);
    rc = 0;
    goto done;
oom:
    err_set(err, "out of memory");
done:
    buf_free(&ids);
    return rc;
}

/* Folds the first rows change rows into one entry per image, in order of appearance. */
static int fold(const PGresult *r, int rows, struct entry *e)
{
    int n = 0;

    for (int i = 0; i < rows; i++) {
        const char *id = pg_val(r, i, 2), *kind = pg_val(r, i, 3);
        int k = 0;
        while (k < n && strcmp(e[k].id, id))
            k++;
        if (k == n)
            util_strlcpy(e[n++].id, sizeof e[0].id, id);
        if (!strcmp(kind, "added") || !strcmp(kind, "restored"))
            e[k].first_seen = !e[k].touched || e[k].first_seen;
        e[k].touched = 1;
    }
    return n;
}

static cJSON *delta_new(void)
{
    cJSON *o = cJSON_CreateObject();

    cJSON_AddArrayToObject(o, "added");
    cJSON_AddArrayToObject(o, "updated");
    cJSON_AddArrayToObject(o, "deleted");
    return o;
}

/* Change-log mode: the page after cur. 0, or -1 with err. */
static int delta_changes(struct api_call *c, struct sync_cursor *cur, int limit, cJSON *out,
                         int *more, char *err)
{
    char tx[24], seq[24], lim[16];
    const char *p[4] = {c->user.sub, tx, seq, lim};
    struct entry *e = NULL;
    PGresult *r;
    int n, rows, rc = -1;

    snprintf(tx, sizeof tx, "%" PRIu64, cur->txid);
    snprintf(seq, sizeof seq, "%lld", cur->seq);
    snprintf(lim, sizeof lim, "%d", limit + 1);
    if (!(r = pg_exec(c->db, "sync_changes", 4, p, err)))
        return -1;
    rows = PQntuples(r) > limit ? limit : PQntuples(r);
    *more = PQntuples(r) > limit;
    if (rows > 0 && !FAIL_POINT("sync_fold_alloc") && (e = calloc((size_t)rows, sizeof *e))) {
        n = fold(r, rows, e);
        rc = classify(c, e, n, out, err);
        cur->txid = strtoull(pg_val(r, rows - 1, 0), NULL, 10);
        cur->seq = pg_i64(r, rows - 1, 1);
    } else {
        rc = rows > 0 ? (err_set(err, "out of memory"), -1) : 0;
    }
    free(e);
    PQclear(r);
    return rc;
}

/* Snapshot mode: the caller's visible images after cur->after, all as added. */
static int delta_snapshot(struct api_call *c, struct sync_cursor *cur, int limit, cJSON *out,
                          int *more, char *err)
{
    char lim[16];
    const char *p[3] = {c->user.sub, cur->after[0] ? cur->after : NULL, lim};
    PGresult *r;
    int rows;

    if (cur->fresh) {
        if (!(r = pg_exec(c->db, "sync_watermark", 0, NULL, err)))
            return -1;
        cur->txid = strtoull(pg_val(r, 0, 0), NULL, 10);
        PQclear(r);
    }
    if (!p[1])
        p[1] = "00000000-0000-0000-0000-000000000000";
    snprintf(lim, sizeof lim, "%d", limit + 1);
    if (!(r = pg_exec(c->db, "sync_snapshot", 3, p, err)))
        return -1;
    rows = PQntuples(r) > limit ? limit : PQntuples(r);
    *more = PQntuples(r) > limit;
    for (int i = 0; i < rows; i++)
        entry_json(cJSON_GetObjectItem(out, "added"), r, i);
    if (*more) {
        util_strlcpy(cur->after, sizeof cur->after, pg_val(r, rows - 1, 0));
    } else { /* done: follow the change log from the watermark taken at the start */
        cur->snapshot = 0;
        cur->txid = cur->txid ? cur->txid - 1 : 0;
        cur->seq = INT64_MAX;
    }
    PQclear(r);
    cur->fresh = 0;
    return 0;
}

int sync_cursor_now(struct api_call *c, struct sync_cursor *cur, char *err)
{
    PGresult *r = pg_exec(c->db, "sync_watermark", 0, NULL, err);
    uint64_t wm;

    if (!r)
        return -1;
    wm = strtoull(pg_val(r, 0, 0), NULL, 10);
    PQclear(r);
    memset(cur, 0, sizeof *cur);
    cur->txid = wm ? wm - 1 : 0; /* (txid, seq) > (wm - 1, max): everything from wm on */
    cur->seq = INT64_MAX;
    return 0;
}

/* 1 if positions at cur were pruned (410), 0 if not, -1 with err. */
static int cursor_expired(struct api_call *c, const struct sync_cursor *cur, char *err)
{
    char tx[24], seq[24];
    const char *p[2] = {tx, seq};
    PGresult *r;
    int expired;

    if (cur->snapshot)
        return 0;
    snprintf(tx, sizeof tx, "%" PRIu64, cur->txid);
    snprintf(seq, sizeof seq, "%lld", cur->seq);
    if (!(r = pg_exec(c->db, "sync_expired", 2, p, err)))
        return -1;
    expired = PQntuples(r) == 1 && pg_val(r, 0, 0)[0] == 't';
    PQclear(r);
    return expired;
}

int sync_delta(struct api_call *c, struct sync_cursor *cur, int limit, cJSON **out, char *err)
{
    int more = 0, rc, exp = cursor_expired(c, cur, err);
    cJSON *o;
    char *text;

    if (exp != 0)
        return exp > 0 ? 1 : -1;
    o = delta_new();
    rc = cur->snapshot ? delta_snapshot(c, cur, limit, o, &more, err)
                       : delta_changes(c, cur, limit, o, &more, err);
    text = rc == 0 ? sync_cursor_encode(cur) : NULL;
    if (rc == 0 && !text)
        err_set(err, "out of memory");
    if (!text) {
        cJSON_Delete(o);
        return -1;
    }
    cJSON_AddStringToObject(o, "cursor", text);
    cJSON_AddBoolToObject(o, "has_more", more);
    free(text);
    *out = o;
    return 0;
}

static int parse_limit(struct api_call *c, int *limit)
{
    char v[16], *end;
    long n = SYNC_DEFAULT_LIMIT;
    int rc = http_req_query_param(c->req, "limit", v, sizeof v);

    if (rc == 1)
        n = strtol(v, &end, 10);
    if (rc < 0 || (rc == 1 && *end) || n < 1 || n > SYNC_MAX_LIMIT)
        return api_error(c, 400, "bad_request", "limit must be 1 to 1000"), -1;
    *limit = (int)n;
    return 0;
}

void sync_get(struct api_call *c)
{
    char since[128] = "", err[ERR_MAX];
    struct sync_cursor cur;
    int limit, rc;
    cJSON *o = NULL;

    if (parse_limit(c, &limit) < 0)
        return;
    if (http_req_query_param(c->req, "since", since, sizeof since) < 0 ||
        sync_cursor_decode(since, &cur) < 0)
        return api_error(c, 400, "bad_cursor", "since is not a cursor this server issued");
    if (!api_db(c))
        return;
    rc = sync_delta(c, &cur, limit, &o, err);
    if (rc > 0)
        return api_error(c, 410, "full_resync_required",
                         "the cursor is older than the change-log retention; sync from 0");
    if (rc < 0)
        return api_db_fail(c, "sync", err);
    http_respond_json(c->req, 200, o);
}

void sync_prune(struct api_call *c)
{
    char secs[24], err[ERR_MAX];
    const char *p[1] = {secs};
    PGresult *r;
    cJSON *o;

    snprintf(secs, sizeof secs, "%.0f", c->api->cfg->sync_retention);
    if (!api_db(c))
        return;
    if (!(r = pg_exec(c->db, "sync_prune", 1, p, err)))
        return api_db_fail(c, "sync_prune", err);
    o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "pruned", PQntuples(r) ? (double)pg_i64(r, 0, 0) : 0);
    PQclear(r);
    http_respond_json(c->req, 200, o);
}
