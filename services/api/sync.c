/* sync: gap-free device deltas. A cursor starts as a snapshot of the current state, then
 * follows the change log by (txid, seq), handing out only positions below the oldest
 * transaction still in flight, so a late commit can never be skipped. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "albums.h"
#include "api.h"
#include "log.h"
#include "sync.h"

#define SYNC_DEFAULT_LIMIT 100
#define SYNC_MAX_LIMIT 1000
#define ZERO_UUID "00000000-0000-0000-0000-000000000000"

/* A UUID's 32 hex digits (into out[33]). */
static void uuid_hex(const char *uuid, char *out)
{
    for (; *uuid; uuid++)
        if (*uuid != '-')
            *out++ = *uuid;
    *out = '\0';
}

/* The UUID of 32 hex digits at hex into out[37]; 0, or -1 if it is none. */
static int uuid_unhex(const char *hex, char *out)
{
    snprintf(out, 37, "%.8s-%.4s-%.4s-%.4s-%.12s", hex, hex + 8, hex + 12, hex + 16, hex + 20);
    return strlen(hex) >= 32 && util_is_uuid(out) ? 0 : -1;
}

/* Encodes the cursor as opaque text: base64url of "c.<txid>.<seq>", "s.<wm>.<uuid|0>" or,
 * listing albums, "a.<wm>.<album hex><item hex>" (short enough for 128-byte buffers). */
char *sync_cursor_encode(const struct sync_cursor *cur)
{
    char raw[96], album[33], item[33];
    int n;

    if (cur->snapshot && cur->albums) {
        uuid_hex(cur->after, album);
        uuid_hex(cur->after_item, item);
        n = snprintf(raw, sizeof raw, "a.%" PRIu64 ".%s%s", cur->txid, album, item);
    } else {
        n = cur->snapshot ? snprintf(raw, sizeof raw, "s.%" PRIu64 ".%s", cur->txid,
                                     cur->after[0] ? cur->after : "0")
                          : snprintf(raw, sizeof raw, "c.%" PRIu64 ".%lld", cur->txid, cur->seq);
    }
    return util_b64url_encode((const unsigned char *)raw, (size_t)n);
}

/* The tail of an "a." cursor: the last album and item listed. 0 or -1. */
static int decode_albums(const char *tail, struct sync_cursor *cur)
{
    cur->albums = 1;
    if (strlen(tail) != 64 || uuid_unhex(tail, cur->after) < 0)
        return -1;
    return uuid_unhex(tail + 32, cur->after_item);
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
    if (!b || !strchr("csa", raw[0]) || a != (char *)raw + 1 || parse_u64(a + 1, b, &cur->txid) < 0)
        goto done;
    cur->snapshot = raw[0] != 'c';
    if (raw[0] == 'a') {
        rc = decode_albums(b + 1, cur);
        goto done;
    }
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
    int first_seen; /* the window holds its 'added' ('restored', 'item_added'): new to the device */
    int touched;
    int via_album; /* an album item row names it: the device may know it from elsewhere */
};

/* An album item the window names. */
struct pair {
    char album[37], image[37];
};

/* What a page of the change log names: images, albums and album items, each once. */
struct window {
    struct entry *img;
    char (*alb)[37];
    struct pair *pairs;
    int nimg, nalb, npairs;
};

static int window_alloc(struct window *w, int rows)
{
    w->img = calloc((size_t)rows, sizeof *w->img);
    w->alb = calloc((size_t)rows, sizeof *w->alb);
    w->pairs = calloc((size_t)rows, sizeof *w->pairs);
    return w->img && w->alb && w->pairs ? 0 : -1;
}

static void window_free(struct window *w)
{
    free(w->img);
    free(w->alb);
    free(w->pairs);
}

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

static void pair_json(cJSON *out, const char *album, const char *image, int added)
{
    cJSON *o = cJSON_CreateObject();

    cJSON_AddStringToObject(o, "album_id", album);
    cJSON_AddStringToObject(o, "image_id", image);
    cJSON_AddBoolToObject(o, "added", added);
    cJSON_AddItemToArray(cJSON_GetObjectItem(out, "album_items"), o);
}

/* The row whose column 0 is id (and column 1 id2, if given), or -1. */
static int find_row(const PGresult *r, const char *id, const char *id2)
{
    for (int k = 0; k < PQntuples(r); k++)
        if (!strcmp(pg_val(r, k, 0), id) && (!id2 || !strcmp(pg_val(r, k, 1), id2)))
            return k;
    return -1;
}

/* A uuid[] literal of the n ids found stride bytes apart from first. 0 or -1. */
static int id_array(buf *out, const char *first, size_t stride, int n)
{
    for (int i = 0; i < n; i++)
        if (buf_printf(out, "%s%s", i ? "," : "{", first + (size_t)i * stride) < 0)
            return -1;
    return buf_puts(out, n ? "}" : "{}");
}

/* Classifies each image of the window by its current state (added, updated, deleted or
 * nothing when it came and went inside the window). */
static int classify(struct api_call *c, const struct window *w, cJSON *out, char *err)
{
    buf ids = {0};
    const char *p[2] = {NULL, c->user.sub};
    const struct entry *e = w->img;
    PGresult *r;
    int rc = -1;

    if (w->nimg == 0)
        return 0;
    if (FAIL_POINT("sync_classify_alloc") || id_array(&ids, e[0].id, sizeof e[0], w->nimg) < 0)
        goto oom;
    p[0] = ids.data;
    if (!(r = pg_exec(c->db, "sync_states", 2, p, err)))
        goto done;
    for (int i = 0; i < w->nimg; i++) {
        int row = find_row(r, e[i].id, NULL);
        if (row >= 0 && pg_val(r, row, API_IMAGE_NCOLS)[0] == 't')
            entry_json(cJSON_GetObjectItem(out, e[i].first_seen ? "added" : "updated"), r, row);
        else if (!e[i].first_seen || e[i].via_album)
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

/* Each album of the window as the caller sees it now: updated, or deleted (gone or no
 * longer theirs). */
static int classify_albums(struct api_call *c, const struct window *w, cJSON *out, char *err)
{
    buf ids = {0};
    const char *p[2] = {NULL, c->user.sub};
    cJSON *albums = cJSON_GetObjectItem(out, "albums");
    PGresult *r;

    if (w->nalb == 0)
        return 0;
    if (id_array(&ids, w->alb[0], sizeof w->alb[0], w->nalb) < 0) {
        buf_free(&ids);
        return err_set(err, "out of memory"), -1;
    }
    p[0] = ids.data;
    r = pg_exec(c->db, "sync_album_states", 2, p, err);
    buf_free(&ids);
    if (!r)
        return -1;
    for (int i = 0; i < w->nalb; i++) {
        int row = find_row(r, w->alb[i], NULL);
        if (row >= 0)
            cJSON_AddItemToArray(cJSON_GetObjectItem(albums, "updated"), album_json(r, row));
        else
            cJSON_AddItemToArray(cJSON_GetObjectItem(albums, "deleted"),
                                 cJSON_CreateString(w->alb[i]));
    }
    PQclear(r);
    return 0;
}

/* Each album item of the window: added (an item of an album the caller sees) or not. */
static int classify_pairs(struct api_call *c, const struct window *w, cJSON *out, char *err)
{
    buf albums = {0}, images = {0};
    const char *p[3] = {NULL, NULL, c->user.sub};
    PGresult *r = NULL;
    int rc = -1;

    if (w->npairs == 0)
        return 0;
    if (id_array(&albums, w->pairs[0].album, sizeof w->pairs[0], w->npairs) < 0 ||
        id_array(&images, w->pairs[0].image, sizeof w->pairs[0], w->npairs) < 0) {
        err_set(err, "out of memory");
        goto done;
    }
    p[0] = albums.data;
    p[1] = images.data;
    if (!(r = pg_exec(c->db, "sync_item_states", 3, p, err)))
        goto done;
    for (int i = 0; i < w->npairs; i++)
        pair_json(out, w->pairs[i].album, w->pairs[i].image,
                  find_row(r, w->pairs[i].album, w->pairs[i].image) >= 0);
    PQclear(r);
    rc = 0;
done:
    buf_free(&albums);
    buf_free(&images);
    return rc;
}

static void fold_image(struct window *w, const char *id, const char *kind)
{
    struct entry *e = w->img;
    int k = 0;

    while (k < w->nimg && strcmp(e[k].id, id))
        k++;
    if (k == w->nimg)
        util_strlcpy(e[w->nimg++].id, sizeof e[0].id, id);
    if (!strcmp(kind, "added") || !strcmp(kind, "restored") || !strcmp(kind, "item_added"))
        e[k].first_seen = !e[k].touched || e[k].first_seen;
    e[k].touched = 1;
    e[k].via_album |= !strncmp(kind, "item_", 5);
}

static void fold_album(struct window *w, const char *album)
{
    int k = 0;

    while (k < w->nalb && strcmp(w->alb[k], album))
        k++;
    if (k == w->nalb)
        util_strlcpy(w->alb[w->nalb++], sizeof w->alb[0], album);
}

static void fold_pair(struct window *w, const char *album, const char *image)
{
    int k = 0;

    while (k < w->npairs && (strcmp(w->pairs[k].album, album) || strcmp(w->pairs[k].image, image)))
        k++;
    if (k < w->npairs)
        return;
    util_strlcpy(w->pairs[k].album, sizeof w->pairs[k].album, album);
    util_strlcpy(w->pairs[k].image, sizeof w->pairs[k].image, image);
    w->npairs++;
}

/* Folds the first rows change rows (image, kind, album) into the window, in order of
 * appearance. */
static void fold(const PGresult *r, int rows, struct window *w)
{
    for (int i = 0; i < rows; i++) {
        const char *id = pg_val(r, i, 2), *kind = pg_val(r, i, 3), *album = pg_val(r, i, 4);
        if (id)
            fold_image(w, id, kind);
        if (album)
            fold_album(w, album);
        if (id && album)
            fold_pair(w, album, id);
    }
}

static cJSON *delta_new(void)
{
    cJSON *o = cJSON_CreateObject(), *albums;

    cJSON_AddArrayToObject(o, "added");
    cJSON_AddArrayToObject(o, "updated");
    cJSON_AddArrayToObject(o, "deleted");
    albums = cJSON_AddObjectToObject(o, "albums");
    cJSON_AddArrayToObject(albums, "updated");
    cJSON_AddArrayToObject(albums, "deleted");
    cJSON_AddArrayToObject(o, "album_items");
    return o;
}

static int classify_window(struct api_call *c, const struct window *w, cJSON *out, char *err)
{
    if (classify(c, w, out, err) < 0 || classify_albums(c, w, out, err) < 0)
        return -1;
    return classify_pairs(c, w, out, err);
}

/* Change-log mode: the page after cur. 0, or -1 with err. */
static int delta_changes(struct api_call *c, struct sync_cursor *cur, int limit, cJSON *out,
                         int *more, char *err)
{
    char tx[24], seq[24], lim[16];
    const char *p[4] = {c->user.sub, tx, seq, lim};
    struct window w = {0};
    PGresult *r;
    int rows, rc = -1;

    snprintf(tx, sizeof tx, "%" PRIu64, cur->txid);
    snprintf(seq, sizeof seq, "%lld", cur->seq);
    snprintf(lim, sizeof lim, "%d", limit + 1);
    if (!(r = pg_exec(c->db, "sync_changes", 4, p, err)))
        return -1;
    rows = PQntuples(r) > limit ? limit : PQntuples(r);
    *more = PQntuples(r) > limit;
    if (rows > 0 && !FAIL_POINT("sync_fold_alloc") && window_alloc(&w, rows) == 0) {
        fold(r, rows, &w);
        rc = classify_window(c, &w, out, err);
        cur->txid = strtoull(pg_val(r, rows - 1, 0), NULL, 10);
        cur->seq = pg_i64(r, rows - 1, 1);
    } else {
        rc = rows > 0 ? (err_set(err, "out of memory"), -1) : 0;
    }
    window_free(&w);
    PQclear(r);
    return rc;
}

/* The snapshot is done: follow the change log from the watermark taken at its start. */
static void snapshot_done(struct sync_cursor *cur)
{
    cur->snapshot = 0;
    cur->albums = 0;
    cur->txid = cur->txid ? cur->txid - 1 : 0;
    cur->seq = INT64_MAX;
}

/* Snapshot mode, past the images: the caller's albums and their items after
 * (cur->after, cur->after_item), albums as updated and items as added. */
static int snapshot_albums(struct api_call *c, struct sync_cursor *cur, int limit, cJSON *out,
                           int *more, char *err)
{
    char lim[16];
    const char *p[4] = {c->user.sub, cur->after, cur->after_item, lim};
    struct window w = {0};
    PGresult *r;
    int rows, rc;

    snprintf(lim, sizeof lim, "%d", limit + 1);
    if (!(r = pg_exec(c->db, "sync_snapshot_albums", 4, p, err)))
        return -1;
    rows = PQntuples(r) > limit ? limit : PQntuples(r);
    *more = PQntuples(r) > limit;
    if (window_alloc(&w, rows > 0 ? rows : 1) < 0) {
        rc = (err_set(err, "out of memory"), -1);
        goto done;
    }
    for (int i = 0; i < rows; i++) {
        if (strcmp(pg_val(r, i, 1), ZERO_UUID))
            pair_json(out, pg_val(r, i, 0), pg_val(r, i, 1), 1);
        else
            fold_album(&w, pg_val(r, i, 0));
    }
    if ((rc = classify_albums(c, &w, out, err)) == 0 && *more) {
        util_strlcpy(cur->after, sizeof cur->after, pg_val(r, rows - 1, 0));
        util_strlcpy(cur->after_item, sizeof cur->after_item, pg_val(r, rows - 1, 1));
    } else if (rc == 0) {
        snapshot_done(cur);
    }
done:
    window_free(&w);
    PQclear(r);
    return rc;
}

/* Snapshot mode: the caller's visible images after cur->after, all as added; then (on
 * the same page while there is room) the albums. */
static int delta_snapshot(struct api_call *c, struct sync_cursor *cur, int limit, cJSON *out,
                          int *more, char *err)
{
    char lim[16];
    const char *p[3] = {c->user.sub, cur->after[0] ? cur->after : ZERO_UUID, lim};
    PGresult *r;
    int rows;

    if (cur->fresh) {
        if (!(r = pg_exec(c->db, "sync_watermark", 0, NULL, err)))
            return -1;
        cur->txid = strtoull(pg_val(r, 0, 0), NULL, 10);
        PQclear(r);
    }
    snprintf(lim, sizeof lim, "%d", limit + 1);
    if (!(r = pg_exec(c->db, "sync_snapshot", 3, p, err)))
        return -1;
    rows = PQntuples(r) > limit ? limit : PQntuples(r);
    *more = PQntuples(r) > limit;
    for (int i = 0; i < rows; i++)
        entry_json(cJSON_GetObjectItem(out, "added"), r, i);
    if (*more)
        util_strlcpy(cur->after, sizeof cur->after, pg_val(r, rows - 1, 0));
    PQclear(r);
    cur->fresh = 0;
    if (*more)
        return 0;
    cur->albums = 1; /* the images are done: the albums next */
    util_strlcpy(cur->after, sizeof cur->after, ZERO_UUID);
    util_strlcpy(cur->after_item, sizeof cur->after_item, ZERO_UUID);
    if (rows < limit)
        return snapshot_albums(c, cur, limit - rows, out, more, err);
    *more = 1;
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
/* A yes/no statement about the position of a change-mode cursor: $1 txid, $2 seq and, when
 * nparams is 3, $3 the caller. 1 or 0 (snapshot cursors: 0), -1 with err. */
static int cursor_test(struct api_call *c, const char *stmt, int nparams,
                       const struct sync_cursor *cur, char *err)
{
    char tx[24], seq[24];
    const char *p[3] = {tx, seq, c->user.sub};
    PGresult *r;
    int yes;

    if (cur->snapshot)
        return 0;
    snprintf(tx, sizeof tx, "%" PRIu64, cur->txid);
    snprintf(seq, sizeof seq, "%lld", cur->seq);
    if (!(r = pg_exec(c->db, stmt, nparams, p, err)))
        return -1;
    yes = PQntuples(r) == 1 && pg_val(r, 0, 0)[0] == 't';
    PQclear(r);
    return yes;
}

static int cursor_expired(struct api_call *c, const struct sync_cursor *cur, char *err)
{
    return cursor_test(c, "sync_expired", 2, cur, err);
}

/* The horizon is checked after the changes are read: a prune (partition drop and horizon
 * move, one transaction) that committed before the read shows in the check, one after it
 * waited for the read to end. */
int sync_delta(struct api_call *c, struct sync_cursor *cur, int limit, cJSON **out, char *err)
{
    const struct sync_cursor from = *cur;
    int more = 0, rc, exp = 0;
    cJSON *o = delta_new();
    char *text;

    if (cur->snapshot && cur->albums)
        rc = snapshot_albums(c, cur, limit, o, &more, err);
    else
        rc = cur->snapshot ? delta_snapshot(c, cur, limit, o, &more, err)
                           : delta_changes(c, cur, limit, o, &more, err);
    if (rc == 0 && (exp = cursor_expired(c, &from, err)) != 0) {
        cJSON_Delete(o);
        return exp > 0 ? 1 : -1;
    }
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

int sync_held(struct api_call *c, const struct sync_cursor *cur, char *err)
{
    return cursor_test(c, "sync_held", 3, cur, err);
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
    /* a snapshot page after another server's: a standby must have finished every transaction
     * below that snapshot's watermark (later ones come from the change log) */
    c->read_xid = cur.snapshot && !cur.fresh ? cur.txid : 0;
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
    cJSON_AddNumberToObject(o, "pruned", (double)pg_i64(r, 0, 0));
    cJSON_AddNumberToObject(o, "partitions", (double)pg_i64(r, 0, 1));
    PQclear(r);
    http_respond_json(c->req, 200, o);
}
