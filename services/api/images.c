/* images: reading, listing, sharing, renaming and two-phase deletion of images. Bytes are
 * only ever served by object storage through short-lived presigned URLs. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "imgcache.h"
#include "gc.h"
#include "json.h"
#include "log.h"
#include "purge.h"
#include "ryw.h"

#define MAX_PAGE 200
#define GC_BATCH 100

void api_img_from_row(const PGresult *r, int i, struct api_img *m)
{
    util_strlcpy(m->id, sizeof m->id, pg_val(r, i, 0));
    util_strlcpy(m->owner, sizeof m->owner, pg_val(r, i, 1));
    util_strlcpy(m->name, sizeof m->name, pg_val(r, i, 2));
    m->size = pg_i64(r, i, 3);
    util_strlcpy(m->mime, sizeof m->mime, pg_val(r, i, 4));
    util_strlcpy(m->hash, sizeof m->hash, pg_val(r, i, 5));
    util_strlcpy(m->visibility, sizeof m->visibility, pg_val(r, i, 6));
    util_strlcpy(m->status, sizeof m->status, pg_val(r, i, 7));
    util_strlcpy(m->created, sizeof m->created, pg_val(r, i, 8));
    util_strlcpy(m->updated, sizeof m->updated, pg_val(r, i, 9));
    util_strlcpy(m->taken, sizeof m->taken, pg_val(r, i, 10));
}

static void not_found(struct api_call *c)
{
    api_error(c, 404, "not_found", "no such image");
}

/* Loads {id} if the caller may read it (owner: also when deleted). 0, or -1 answered. */
static int img_load(struct api_call *c, struct api_img *m)
{
    const char *id = api_param_uuid(c, "id");
    char ttl[24], err[ERR_MAX];
    const char *p[3] = {id, c->user.sub, ttl};
    unsigned long stamp = imgcache_stamp(c->api->gens);
    PGresult *r;

    if (id && ryw_cache_ok(c) && imgcache_get(c->t->imgs, id, c->user.sub, util_now_mono(), m))
        return 0;
    if (!id || !api_db(c))
        return -1;
    snprintf(ttl, sizeof ttl, "%.0f", c->api->cfg->retention);
    if (!(r = pg_exec(c->db, "image_read", 3, p, err)))
        return api_db_fail(c, "image_read", err), -1;
    if (PQntuples(r) != 1) {
        PQclear(r);
        return not_found(c), -1;
    }
    api_img_from_row(r, 0, m);
    util_strlcpy(m->path, sizeof m->path, pg_val(r, 0, API_IMAGE_NCOLS));
    m->owner_is_caller = strcmp(m->owner, c->user.sub) == 0;
    m->in_retention = pg_val(r, 0, API_IMAGE_NCOLS + 1)[0] == 't';
    PQclear(r);
    if (!c->on_standby) /* a standby's row may be older than the changes heard so far */
        imgcache_put(c->t->imgs, c->user.sub, m, stamp, util_now_mono());
    return 0;
}

/* Made at complete and not (or never to be) verified: seen by its owner only. */
static int img_unverified(const struct api_img *m)
{
    return !strcmp(m->status, "verifying") || !strcmp(m->status, "failed");
}

/* Why a failed image failed (its session's error) into code and msg. */
static void img_failure(struct api_call *c, const struct api_img *m, char code[64], char msg[256])
{
    const char *p[1] = {m->id};
    char err[ERR_MAX];
    PGresult *r = api_db(c) ? pg_exec(c->db, "image_error", 1, p, err) : NULL;

    util_strlcpy(code, 64, "verification_failed");
    util_strlcpy(msg, 256, "the upload could not be verified");
    if (r && PQntuples(r) == 1 && pg_val(r, 0, 0)[0])
        util_strlcpy(code, 64, pg_val(r, 0, 0)), util_strlcpy(msg, 256, pg_val(r, 0, 1));
    PQclear(r);
}

/* Bytes of an unverified image: 202 while it is verified (ask again), 422 with the reason
 * once it failed. */
static void respond_unverified(struct api_call *c, const struct api_img *m)
{
    char code[64], msg[256];
    cJSON *o;

    if (!strcmp(m->status, "failed")) {
        img_failure(c, m, code, msg);
        return api_error(c, 422, code, msg);
    }
    o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "image_id", m->id);
    cJSON_AddStringToObject(o, "status", m->status);
    if (http_resp_header(c->req, "Retry-After", "1") < 0)
        log_warn(c->rid, "http", "header");
    http_respond_json(c->req, 202, o);
}

/* An active image the caller may read; deleted ones are 404 for everyone, unverified ones
 * answered for their owner (respond_unverified). */
static int img_readable(struct api_call *c, struct api_img *m)
{
    if (img_load(c, m) < 0)
        return -1;
    if (strcmp(m->status, "active") == 0)
        return 0;
    if (m->owner_is_caller && img_unverified(m))
        return respond_unverified(c, m), -1;
    not_found(c);
    return -1;
}

/* A change the owner asked for on an image not verified yet: 409. */
static void refuse_unverified(struct api_call *c, const struct api_img *m)
{
    if (!strcmp(m->status, "verifying"))
        return api_error(c, 409, "image_verifying",
                         "the image is being verified; retry once it is active");
    api_error(c, 409, "image_failed", "the image failed verification; delete it");
}

/* After a write matched nothing: 404 if the caller cannot see the image, 403 if it can
 * see but not change it. m is loaded for the caller to decide otherwise. */
static int owner_only(struct api_call *c, struct api_img *m)
{
    if (img_load(c, m) < 0)
        return -1;
    if (m->owner_is_caller)
        return 0;
    if (strcmp(m->status, "active") != 0)
        return not_found(c), -1;
    api_error(c, 403, "forbidden", "only the owner can change this image");
    return -1;
}

static void respond_status(struct api_call *c, int code, const char *id, const char *status)
{
    cJSON *o = cJSON_CreateObject();

    if (id)
        cJSON_AddStringToObject(o, "image_id", id);
    cJSON_AddStringToObject(o, "status", status);
    http_respond_json(c->req, code, o);
}

/* Runs a write statement; the number of rows it reports, or -1 (answered). */
static long exec_count(struct api_call *c, const char *stmt, int n, const char *const *p)
{
    char err[ERR_MAX];
    PGresult *r;
    long rows;

    if (!api_db(c))
        return -1;
    if (!(r = pg_exec(c->db, stmt, n, p, err)))
        return api_db_fail(c, stmt, err), -1;
    rows = PQntuples(r) > 0 ? atol(PQgetvalue(r, 0, 0)) : atol(PQcmdTuples(r));
    PQclear(r);
    return rows;
}

/* ---- signed downloads ---- */

/* expires_in from the query (60..600) or the configured default; -1 answered. */
static long url_ttl(struct api_call *c)
{
    char v[16];
    char *end;
    long ttl = (long)c->api->cfg->download_url_ttl;
    int rc = http_req_query_param(c->req, "expires_in", v, sizeof v);

    if (rc == 0)
        return ttl;
    if (rc == 1)
        ttl = strtol(v, &end, 10);
    if (rc < 0 || (rc == 1 && *end) || ttl < 60 || ttl > 600)
        return api_error(c, 400, "bad_request", "expires_in must be 60 to 600 seconds"), -1;
    return ttl;
}

/* attachment; filename="ascii"; filename*=UTF-8''percent-encoded (RFC 6266). */
int api_disposition(const char *name, buf *out)
{
    static const char hex[] = "0123456789ABCDEF";
    int rc = buf_puts(out, "attachment; filename=\"");

    for (const unsigned char *p = (const unsigned char *)name; *p && rc == 0; p++)
        rc = buf_append(out, *p < 0x80 && *p != '"' && *p != '\\' ? (const char *)p : "_", 1);
    rc = rc ? rc : buf_puts(out, "\"; filename*=UTF-8''");
    for (const unsigned char *p = (const unsigned char *)name; *p && rc == 0; p++) {
        char enc[3] = {'%', hex[*p >> 4], hex[*p & 15]};
        int plain = (*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
                    (*p >= '0' && *p <= '9') || strchr("-._~", *p);
        rc = plain ? buf_append(out, p, 1) : buf_append(out, enc, 3);
    }
    return rc;
}

static void respond_url(struct api_call *c, const char *key, const char *mime, const char *name,
                        long ttl, const char *variant)
{
    buf url = {0}, disp = {0};
    char err[ERR_MAX];
    cJSON *o;

    if (api_disposition(name, &disp) < 0 ||
        s3_presign_get(c->t->s3, key, mime, disp.data, time(NULL), ttl, &url, err) < 0) {
        log_error(c->rid, "presign_failed", err);
        api_error(c, 500, "internal", "cannot sign the URL");
        goto done;
    }
    o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "download_url", url.data);
    if (variant)
        cJSON_AddStringToObject(o, "variant", variant);
    cJSON_AddNumberToObject(o, "expires_in", (double)ttl);
    http_respond_json(c->req, 200, o);
done:
    buf_free(&url);
    buf_free(&disp);
}

void image_get(struct api_call *c)
{
    struct api_img m;
    long ttl = url_ttl(c);

    if (ttl < 0 || img_readable(c, &m) < 0)
        return;
    respond_url(c, m.path, m.mime, m.name, ttl, NULL);
}

static int variant_known(const struct api *api, const char *type)
{
    size_t n = strlen(type);
    const char *list = api->cfg->variant_types, *p = list;

    while (n && (p = strstr(p, type))) {
        if ((p == list || p[-1] == ',') && (p[n] == ',' || p[n] == '\0'))
            return 1;
        p += n;
    }
    return 0;
}

void image_variant(struct api_call *c)
{
    const char *type = route_param(&c->params, "variant_type");
    char err[ERR_MAX], name[300];
    struct api_img m;
    PGresult *r;
    long ttl;

    if (!variant_known(c->api, type))
        return api_error(c, 404, "unknown_variant", "no such variant type");
    if ((ttl = url_ttl(c)) < 0 || img_readable(c, &m) < 0)
        return;
    const char *p[2] = {m.hash, type};
    if (!api_db(c)) /* the image may have come from the cache */
        return;
    if (!(r = pg_exec(c->db, "variant_get", 2, p, err)))
        return api_db_fail(c, "variant_get", err);
    if (PQntuples(r) == 1 && !strcmp(pg_val(r, 0, 0), "ready")) {
        snprintf(name, sizeof name, "%s.%s.%s", m.name, type,
                 strstr(pg_val(r, 0, 2), "jpeg") ? "jpg" : "webp");
        respond_url(c, pg_val(r, 0, 1), pg_val(r, 0, 2), name, ttl, type);
    } else if (PQntuples(r) == 1 && !strcmp(pg_val(r, 0, 0), "failed")) {
        api_error(c, 422, "variant_failed", pg_val(r, 0, 3));
    } else {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "status", "pending");
        cJSON_AddStringToObject(o, "variant", type);
        http_respond_json(c->req, 202, o);
    }
    PQclear(r);
}

/* ---- metadata and listings ---- */

cJSON *api_img_json(const struct api_img *m)
{
    cJSON *o = cJSON_CreateObject();

    cJSON_AddStringToObject(o, "image_id", m->id);
    cJSON_AddStringToObject(o, "owner_id", m->owner);
    cJSON_AddStringToObject(o, "name", m->name);
    cJSON_AddNumberToObject(o, "size", (double)m->size);
    cJSON_AddStringToObject(o, "mime_type", m->mime);
    if (m->hash[0])
        cJSON_AddStringToObject(o, "sha256", m->hash);
    else
        cJSON_AddNullToObject(o, "sha256"); /* not verified yet */
    cJSON_AddStringToObject(o, "visibility", m->visibility);
    cJSON_AddStringToObject(o, "status", m->status);
    cJSON_AddStringToObject(o, "created_at", m->created);
    cJSON_AddStringToObject(o, "updated_at", m->updated);
    cJSON_AddStringToObject(o, "taken_at", m->taken);
    return o;
}

/* The image's capture metadata as the caller may see it (location: see
 * capture_gps_visible in migrations/009_capture.sql) and its variants' rows, in one round
 * trip (image_details); NULL with err. No row (purged meanwhile): *cap stays NULL. */
static PGresult *details_load(struct api_call *c, const char *id, cJSON **cap, char *err)
{
    const char *p[2] = {id, c->user.sub};
    PGresult *r = pg_exec(c->db, "image_details", 2, p, err);

    *cap = r && PQntuples(r) > 0 ? cJSON_Parse(pg_val(r, 0, 0)) : NULL;
    if (r && !*cap && PQntuples(r) > 0) {
        err_set(err, "image_details: no row");
        PQclear(r);
        r = NULL;
    }
    return r;
}

/* Every configured variant type with its status ("pending" until a row of r says
 * otherwise). */
static cJSON *variants_json(struct api_call *c, const PGresult *r)
{
    const char *list = c->api->cfg->variant_types;
    cJSON *a = cJSON_CreateArray();
    char type[64];

    for (const char *s = list; *s;) {
        size_t n = strcspn(s, ",");
        const char *status = "pending";
        snprintf(type, sizeof type, "%.*s", (int)n, s);
        for (int i = 0; i < PQntuples(r); i++)
            if (!PQgetisnull(r, i, 1) && !strcmp(pg_val(r, i, 1), type))
                status = pg_val(r, i, 2);
        cJSON *v = cJSON_CreateObject();
        cJSON_AddStringToObject(v, "variant_type", type);
        cJSON_AddStringToObject(v, "status", status);
        cJSON_AddItemToArray(a, v);
        s += n + (s[n] == ',');
    }
    return a;
}

/* The owner's view of an unverified image: its state, and why it failed. */
static void metadata_unverified(struct api_call *c, const struct api_img *m)
{
    char code[64], msg[256], err[ERR_MAX];
    cJSON *o, *e, *cap = NULL;
    PGresult *r = api_db(c) ? details_load(c, m->id, &cap, err) : NULL;

    if (!c->db)
        return;
    if (!r)
        return api_db_fail(c, "image_details", err);
    PQclear(r);
    if (!cap)
        return not_found(c);
    o = api_img_json(m);
    cJSON_AddArrayToObject(o, "variants");
    cJSON_AddItemToObject(o, "capture", cap);
    if (!strcmp(m->status, "failed")) {
        img_failure(c, m, code, msg);
        e = cJSON_AddObjectToObject(o, "error");
        cJSON_AddStringToObject(e, "code", code);
        cJSON_AddStringToObject(e, "message", msg);
    }
    http_respond_json(c->req, 200, o);
}

void image_metadata(struct api_call *c)
{
    char err[ERR_MAX];
    struct api_img m;
    cJSON *o, *cap = NULL;
    PGresult *r;

    if (img_load(c, &m) < 0)
        return;
    if (m.owner_is_caller && img_unverified(&m))
        return metadata_unverified(c, &m);
    if (strcmp(m.status, "active"))
        return not_found(c);
    if (!api_db(c)) /* the image may have come from the cache */
        return;
    if (!(r = details_load(c, m.id, &cap, err)))
        return api_db_fail(c, "image_details", err);
    if (!cap) {
        PQclear(r);
        return not_found(c);
    }
    o = api_img_json(&m);
    cJSON_AddItemToObject(o, "variants", variants_json(c, r));
    cJSON_AddItemToObject(o, "capture", cap);
    PQclear(r);
    http_respond_json(c->req, 200, o);
}

/* A listing's order: its statement, the mark its cursors carry (0: none, the upload-time
 * cursors of before), and the position above its first row (no cursor yet). */
struct list_order {
    const char *stmt;
    char mark;
    const char *top_ts, *top_id;
};

static const struct list_order by_upload = {"image_list", 0, NULL, NULL};
static const struct list_order by_share = {"image_list_shared", 0, NULL, NULL};
static const struct list_order by_taken = {"image_list_taken", 'T', "infinity",
                                           "ffffffff-ffff-ffff-ffff-ffffffffffff"};
static const struct list_order by_taken_asc = {"image_list_taken_asc", 'A', "-infinity",
                                               "00000000-0000-0000-0000-000000000000"};

/* Opaque keyset cursor: base64url of "[mark]<sort key as text>|<image_id>". */
char *api_cursor_make(char mark, const char *ts, const char *id)
{
    char raw[128];
    int n = mark ? snprintf(raw, sizeof raw, "%c%s|%s", mark, ts, id)
                 : snprintf(raw, sizeof raw, "%s|%s", ts, id);

    return util_b64url_encode((const unsigned char *)raw, (size_t)n);
}

/* Decodes ?cursor= of a listing in order mark into ts and id; 0 (absent: both empty), or
 * -1 answered. */
int api_cursor_parse(struct api_call *c, char mark, char *ts, size_t tslen, char *id)
{
    char v[256];
    unsigned char *raw = NULL;
    size_t n;
    int rc = http_req_query_param(c->req, "cursor", v, sizeof v);
    char *bar, *key;

    ts[0] = id[0] = '\0';
    if (rc == 0 || (rc == 1 && !v[0]))
        return 0;
    if (rc < 0 || util_b64url_decode(v, strlen(v), &raw, &n) < 0 || n >= tslen + 38)
        goto bad;
    raw[n] = '\0'; /* decode allocates room for one more byte than it fills */
    key = (char *)raw + (mark != 0);
    bar = strchr(key, '|');
    if ((mark && raw[0] != (unsigned char)mark) || !bar || (size_t)(bar - key) >= tslen ||
        !util_is_uuid(bar + 1))
        goto bad;
    *bar = '\0';
    util_strlcpy(ts, tslen, key);
    util_strlcpy(id, 37, bar + 1);
    free(raw);
    return 0;
bad:
    free(raw);
    return api_error(c, 400, "bad_cursor", "cursor is not valid for this listing"), -1;
}

/* ?limit= (1..200, default page-size); -1 answered. */
long api_page_limit(struct api_call *c)
{
    char v[16], *end;
    long n = c->api->cfg->page_size;
    int rc = http_req_query_param(c->req, "limit", v, sizeof v);

    if (rc == 1)
        n = strtol(v, &end, 10);
    if (rc < 0 || (rc == 1 && *end) || n < 1 || n > MAX_PAGE)
        return api_error(c, 400, "bad_request", "limit must be 1 to 200"), -1;
    return n;
}

/* The listing's page as {images:[...], next_cursor}; r has limit + 1 rows at most, each
 * with its sort key as text after the image's columns. */
static void list_respond(struct api_call *c, const struct list_order *o, PGresult *r, long limit)
{
    int n = PQntuples(r) > limit ? (int)limit : PQntuples(r);
    cJSON *out = cJSON_CreateObject(), *a = cJSON_AddArrayToObject(out, "images");

    for (int i = 0; i < n; i++) {
        struct api_img m;
        api_img_from_row(r, i, &m);
        cJSON_AddItemToArray(a, api_img_json(&m));
    }
    if (PQntuples(r) > limit) {
        char *cur =
            api_cursor_make(o->mark, pg_val(r, n - 1, API_IMAGE_NCOLS), pg_val(r, n - 1, 0));
        cJSON_AddStringToObject(out, "next_cursor", cur);
        free(cur);
    } else {
        cJSON_AddNullToObject(out, "next_cursor");
    }
    http_respond_json(c->req, 200, out);
}

/* Runs a listing statement (params: user, status, cursor ts, cursor id, limit + 1, and for
 * an order with a top position the window taken_after, taken_before) and answers. */
static void list_run(struct api_call *c, const struct list_order *o, const char *status,
                     const char *after, const char *before)
{
    char ts[64], id[37], lim[24], err[ERR_MAX];
    long limit = api_page_limit(c);
    const char *p[7] = {c->user.sub, status, ts, id, lim, after, before};
    PGresult *r;

    if (limit < 0 || api_cursor_parse(c, o->mark, ts, sizeof ts, id) < 0 || !api_db(c))
        return;
    snprintf(lim, sizeof lim, "%ld", limit + 1);
    p[2] = ts[0] ? ts : o->top_ts, p[3] = id[0] ? id : o->top_id;
    if (!(r = pg_exec(c->db, o->stmt, o->top_ts ? 7 : 5, p, err))) {
        if (!strncmp(pg_sqlstate(c->db), "22", 2))
            return api_error(c, 400, "bad_cursor", "cursor is not valid for this listing");
        return api_db_fail(c, o->stmt, err);
    }
    list_respond(c, o, r, limit);
    PQclear(r);
}

/* ?name= into out ("" when absent) if it is one of the n words in allowed; 0, or -1 if
 * not (the caller answers). */
static int query_word(struct api_call *c, const char *name, const char *const *allowed, size_t n,
                      char *out, size_t len)
{
    int rc = http_req_query_param(c->req, name, out, len);

    if (rc <= 0)
        out[0] = '\0';
    if (rc < 0)
        return -1;
    for (size_t i = 0; rc == 1 && i < n; i++)
        if (!strcmp(out, allowed[i]))
            return 0;
    return rc == 1 && out[0] ? -1 : 0;
}

/* ?taken_after= / ?taken_before= into out (dflt when absent); 0, or -1 answered. */
static int query_time(struct api_call *c, const char *name, const char *dflt, char *out, size_t len)
{
    int rc = http_req_query_param(c->req, name, out, len);

    if (rc == 0)
        util_strlcpy(out, len, dflt);
    if (rc < 0 || (rc == 1 && !util_rfc3339_valid(out)))
        return api_error(c, 400, "bad_request",
                         "taken_after and taken_before must be RFC 3339 date-times"),
               -1;
    return 0;
}

/* sort=created_at|taken_at and order=desc|asc into the listing's order; NULL answered. */
static const struct list_order *list_order_of(struct api_call *c, int *taken)
{
    static const char *const sorts[] = {"created_at", "taken_at"}, *const orders[] = {"desc",
                                                                                      "asc"};
    char sort[16], order[8];

    if (query_word(c, "sort", sorts, ARRAY_LEN(sorts), sort, sizeof sort) < 0 ||
        query_word(c, "order", orders, ARRAY_LEN(orders), order, sizeof order) < 0)
        return api_error(c, 400, "bad_request",
                         "sort must be created_at or taken_at, order desc or asc"),
               NULL;
    *taken = !strcmp(sort, "taken_at");
    if (!*taken && !strcmp(order, "asc"))
        return api_error(c, 400, "bad_request", "order=asc needs sort=taken_at"), NULL;
    return !*taken ? &by_upload : !strcmp(order, "asc") ? &by_taken_asc : &by_taken;
}

void image_list(struct api_call *c)
{
    static const char *const known[] = {"active", "deleted", "verifying", "failed"};
    char status[16], after[64], before[64];
    const struct list_order *o;
    int taken = 0;

    if (query_word(c, "status", known, ARRAY_LEN(known), status, sizeof status) < 0)
        return api_error(c, 400, "bad_request",
                         "status must be active, deleted, verifying or failed");
    if (!(o = list_order_of(c, &taken)) ||
        query_time(c, "taken_after", "-infinity", after, sizeof after) < 0 ||
        query_time(c, "taken_before", "infinity", before, sizeof before) < 0)
        return;
    if (!taken && (strcmp(after, "-infinity") || strcmp(before, "infinity")))
        return api_error(c, 400, "bad_request", "taken_after and taken_before need sort=taken_at");
    /* by default what is or will be a photo: active and still verifying */
    list_run(c, o, status[0] ? status : "active,verifying", after, before);
}

void image_shared_with_me(struct api_call *c)
{
    list_run(c, &by_share, "active", NULL, NULL);
}

static int parse_patch(struct api_call *c, const cJSON *body, const char **name, const char **vis)
{
    const char *err = NULL;
    int hn = json_get_str(body, "name", name, &err);
    int hv = hn < 0 ? 0 : json_get_str(body, "visibility", vis, &err);

    if (hn < 0 || hv < 0)
        return api_error(c, 400, "bad_request", err), -1;
    if (!hn && !hv)
        return api_error(c, 400, "bad_request", "give name and/or visibility"), -1;
    if (hn && !api_valid_name(*name, 255))
        return api_error(c, 400, "bad_request",
                         "name must be 1-255 bytes of UTF-8 text "
                         "without control characters"),
               -1;
    if (hv && strcmp(*vis, "private") && strcmp(*vis, "shared") && strcmp(*vis, "public"))
        return api_error(c, 400, "bad_request", "visibility must be private, shared or public"), -1;
    if (!hn)
        *name = NULL;
    if (!hv)
        *vis = NULL;
    return 0;
}

void image_patch(struct api_call *c)
{
    const char *id = api_param_uuid(c, "id"), *name = NULL, *vis = NULL;
    cJSON *body = id ? api_body(c) : NULL;
    struct api_img m;
    long n;

    if (!body)
        return;
    if (parse_patch(c, body, &name, &vis) == 0) {
        const char *p[4] = {id, c->user.sub, name, vis};
        n = exec_count(c, "image_patch", 4, p);
        if (n > 0)
            respond_status(c, 200, id, "updated");
        else if (n == 0 && owner_only(c, &m) == 0)
            img_unverified(&m) ? refuse_unverified(c, &m)
                               : not_found(c); /* the owner's image is in the trash */
    }
    cJSON_Delete(body);
}

void image_delete(struct api_call *c)
{
    const char *id = api_param_uuid(c, "id");
    const char *p[2] = {id, c->user.sub};
    struct api_img m;
    long n = id ? exec_count(c, "image_soft_delete", 2, p) : -1;

    if (n > 0)
        return respond_status(c, 200, id, "deleted");
    if (n < 0 || owner_only(c, &m) < 0)
        return;
    if (!strcmp(m.status, "failed")) /* nothing to keep in the trash: gone at once */
        n = exec_count(c, "image_drop_failed", 2, p);
    if (n > 0)
        return respond_status(c, 200, id, "deleted");
    if (n < 0)
        return;
    if (!strcmp(m.status, "verifying"))
        return refuse_unverified(c, &m);
    respond_status(c, 200, id, m.status); /* already deleted: the same answer */
}

void image_restore(struct api_call *c)
{
    const char *id = api_param_uuid(c, "id");
    char ttl[24];
    const char *p[3] = {id, c->user.sub, ttl};
    struct api_img m;
    long n;

    snprintf(ttl, sizeof ttl, "%.0f", c->api->cfg->retention);
    n = id ? exec_count(c, "image_restore", 3, p) : -1;
    if (n > 0)
        return respond_status(c, 200, id, "active");
    if (n < 0 || owner_only(c, &m) < 0)
        return;
    if (!strcmp(m.status, "active"))
        return respond_status(c, 200, id, "active");
    if (img_unverified(&m))
        return refuse_unverified(c, &m);
    api_error(c, 410, "retention_expired",
              "the image is past its retention and cannot be "
              "restored");
}

/* ---- sharing ---- */

#define SHARE_LIMIT -2 /* image_share: a cap was reached */

/* Shares with a user id whether or not it was seen: ids come from the identity provider,
 * a user sees the share on first sign-in, and refusing would tell whether an account
 * exists. Caps bound the rows (and the change-log fan-out) one owner can make. */
void image_share(struct api_call *c)
{
    const char *id = api_param_uuid(c, "id"), *user = NULL, *err = NULL;
    cJSON *body = id ? api_body(c) : NULL;
    struct api_img m;
    int show = -1, has_show;
    long n;

    if (!body)
        return;
    if ((has_show = json_get_bool(body, "show_location", &show, &err)) < 0)
        api_error(c, 400, "bad_request", "show_location must be true or false");
    else if (json_get_str(body, "user_id", &user, &err) != 1 || !auth_valid_sub(user))
        api_error(c, 400, "bad_request", err ? err : "user_id must be a valid user id");
    else if (!strcmp(user, c->user.sub))
        api_error(c, 400, "bad_request", "cannot share an image with its owner");
    else {
        char per_image[24], per_owner[24];
        const char *p[6] = {id,        c->user.sub, user,
                            per_image, per_owner,   has_show != 1 ? "" : show ? "true" : "false"};
        snprintf(per_image, sizeof per_image, "%ld", c->api->cfg->shares_per_image);
        snprintf(per_owner, sizeof per_owner, "%ld", c->api->cfg->shares_per_user);
        n = exec_count(c, "image_share", 6, p);
        if (n == SHARE_LIMIT) {
            api_error(c, 409, "share_limit_reached",
                      "share limit reached (PIXPLANE_SHARES_PER_IMAGE users per image, "
                      "PIXPLANE_SHARES_PER_USER shares per owner); unshare first");
        } else if (n > 0) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "image_id", id);
            cJSON_AddStringToObject(o, "user_id", user);
            cJSON_AddStringToObject(o, "status", "shared");
            http_respond_json(c->req, 200, o);
        } else if (n == 0 && owner_only(c, &m) == 0) {
            img_unverified(&m) ? refuse_unverified(c, &m) : not_found(c);
        }
    }
    cJSON_Delete(body);
}

void image_unshare(struct api_call *c)
{
    const char *id = api_param_uuid(c, "id"), *user = route_param(&c->params, "user_id");
    const char *p[3] = {id, c->user.sub, user};
    struct api_img m;
    long n = id ? exec_count(c, "image_unshare", 3, p) : -1;

    if (n > 0)
        return respond_status(c, 200, id, "unshared");
    if (n == 0 && owner_only(c, &m) == 0)
        not_found(c);
}

/* ---- hard delete ---- */

/* The shared hard delete (common/purge): 1 purged, 0 nothing to purge, -1 failed
 * (answered). */
static int purge_rows(struct api_call *c, const char *id, int *blob_gone)
{
    struct purge_result res;
    char err[ERR_MAX];
    int rc;

    if (!api_db(c))
        return -1;
    if ((rc = purge_image(c->db, id, &res, err)) < 0)
        return api_db_fail(c, "image_purge", err), -1;
    *blob_gone = res.blob_gone;
    return rc;
}

void image_cleanup(struct api_call *c)
{
    const char *id = api_param_uuid(c, "id");
    const char *p[1] = {id};
    struct gc_stats st = {0};
    char err[ERR_MAX];
    int blob_gone = 0, rc;
    long active;
    cJSON *o;

    if (!id)
        return;
    if ((rc = purge_rows(c, id, &blob_gone)) < 0)
        return;
    if (rc == 0 && (active = exec_count(c, "image_is_active", 1, p)) != 0)
        return active < 0 ? (void)0
                          : api_error(c, 409, "not_deleted", "soft-delete the image first");
    /* Settle tombstones now; what fails stays for the next call or the reconciler. */
    if (gc_drain(c->db, c->t->s3, NULL, 0, GC_BATCH, &st, err) < 0)
        return api_db_fail(c, "gc_drain", err);
    o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "image_id", id);
    cJSON_AddStringToObject(o, "status", "permanently_deleted");
    cJSON_AddBoolToObject(o, "blob_deleted", blob_gone);
    cJSON_AddNumberToObject(o, "objects_deleted", (double)st.objects);
    log_info(c->rid, "image_purged", "permanently deleted", "image_id", id, "blob_deleted",
             blob_gone ? "true" : "false");
    http_respond_json(c->req, 200, o);
}
