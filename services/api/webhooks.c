/* webhooks: the admin API of webhook endpoints (/internal/webhooks). The API never connects
 * to an endpoint: it checks urls (ssrf.h) and writes the rows pixplane-hooks delivers. */
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "log.h"
#include "ssrf.h"
#include "webhooks.h"

static const char *const event_types[] = {
    "image.created",
    "image.verified",
    "image.failed",
    "variant.ready",
    "image.deleted",
    "image.restored",
    "image.purged",
    "share.created",
    "link.created",
    "quota.exceeded",
    "*",
};

int webhook_event_known(const char *type)
{
    for (size_t i = 0; i < ARRAY_LEN(event_types); i++)
        if (!strcmp(type, event_types[i]))
            return 1;
    return 0;
}

/* 1 if the string item it is named again after it in the array. */
static int named_again(const cJSON *it)
{
    for (const cJSON *o = it->next; o; o = o->next)
        if (cJSON_IsString(o) && !strcmp(o->valuestring, it->valuestring))
            return 1;
    return 0;
}

int webhook_events_literal(const cJSON *events, buf *out, const char **msg)
{
    const cJSON *it;

    *msg = "events must be a non-empty array of event types";
    if (!cJSON_IsArray(events) || cJSON_GetArraySize(events) < 1)
        return -1;
    *msg = "events may name at most " PIX_STR(WEBHOOK_EVENTS_MAX) " event types";
    if (cJSON_GetArraySize(events) > WEBHOOK_EVENTS_MAX)
        return -1;
    cJSON_ArrayForEach(it, events)
    {
        *msg = "events must name known event types (image.created, image.verified, "
               "image.failed, variant.ready, image.deleted, image.restored, image.purged, "
               "share.created, link.created, quota.exceeded) or *";
        if (!cJSON_IsString(it) || !webhook_event_known(it->valuestring))
            return -1;
        *msg = "events must name each type once";
        if (named_again(it))
            return -1;
        *msg = "out of memory";
        if (buf_printf(out, "%s\"%s\"", it == events->child ? "{" : ",", it->valuestring) < 0)
            return -1;
    }
    if (buf_puts(out, "}") < 0)
        return -1;
    *msg = NULL;
    return 0;
}

int webhook_secret_valid(const char *s)
{
    size_t bytes = 0;
    unsigned char *key;

    if (strncmp(s, "whsec_", 6) || strlen(s + 6) > WEBHOOK_SECRET_MAX)
        return 0;
    if (!(key = util_b64_decode(s + 6, strlen(s + 6), &bytes)))
        return 0;
    free(key);
    return bytes >= 24 && bytes <= 64;
}

int webhook_secret_new(char out[WEBHOOK_SECRET_MAX])
{
    unsigned char raw[WEBHOOK_SECRET_BYTES];

    if (util_random(raw, sizeof raw) < 0)
        return -1;
    memcpy(out, "whsec_", 6);
    EVP_EncodeBlock((unsigned char *)out + 6, raw, (int)sizeof raw);
    return 0;
}

/* ---- answers ---- */

static void bad_request(struct api_call *c, const char *msg)
{
    api_error(c, 400, "bad_request", msg);
}

static void not_found(struct api_call *c)
{
    api_error(c, 404, "not_found", "no such webhook endpoint");
}

static void add_nullable(cJSON *o, const char *key, const char *v)
{
    if (v)
        cJSON_AddStringToObject(o, key, v);
    else
        cJSON_AddNullToObject(o, key);
}

/* The endpoint of row `row` (WEBHOOK_COLS); its secret only when it was just set. */
static cJSON *endpoint_json(const PGresult *r, int row, int with_secret)
{
    cJSON *o = cJSON_CreateObject();

    cJSON_AddStringToObject(o, "endpoint_id", pg_val(r, row, 0));
    cJSON_AddStringToObject(o, "url", pg_val(r, row, 1));
    cJSON_AddItemToObject(o, "events", cJSON_Parse(pg_val(r, row, 2)));
    cJSON_AddStringToObject(o, "description", pg_val(r, row, 3));
    cJSON_AddBoolToObject(o, "enabled", pg_val(r, row, 4)[0] == 't');
    cJSON_AddStringToObject(o, "created_at", pg_val(r, row, 5));
    cJSON_AddStringToObject(o, "updated_at", pg_val(r, row, 6));
    cJSON_AddNumberToObject(o, "failures", (double)pg_i64(r, row, 7));
    add_nullable(o, "last_error", pg_val(r, row, 8));
    add_nullable(o, "last_failure_at", pg_val(r, row, 9));
    add_nullable(o, "last_success_at", pg_val(r, row, 10));
    add_nullable(o, "disabled_at", pg_val(r, row, 11));
    add_nullable(o, "disabled_reason", pg_val(r, row, 12));
    cJSON_AddNumberToObject(o, "pending_deliveries", (double)pg_i64(r, row, 13));
    if (with_secret)
        cJSON_AddStringToObject(o, "secret", pg_val(r, row, WEBHOOK_NCOLS));
    return o;
}

static cJSON *endpoint_listed(const PGresult *r, int row)
{
    return endpoint_json(r, row, 0);
}

static cJSON *delivery_json(const PGresult *r, int row)
{
    cJSON *o = cJSON_CreateObject();

    cJSON_AddNumberToObject(o, "delivery_id", (double)pg_i64(r, row, 0));
    cJSON_AddStringToObject(o, "event_id", pg_val(r, row, 1));
    cJSON_AddStringToObject(o, "event_type", pg_val(r, row, 2));
    cJSON_AddStringToObject(o, "msg_key", pg_val(r, row, 3));
    cJSON_AddBoolToObject(o, "replay", pg_val(r, row, 4)[0] == 't');
    cJSON_AddStringToObject(o, "status", pg_val(r, row, 5));
    cJSON_AddNumberToObject(o, "attempts", (double)pg_i64(r, row, 6));
    add_nullable(o, "next_attempt_at", pg_val(r, row, 7));
    if (pg_val(r, row, 8))
        cJSON_AddNumberToObject(o, "last_status", (double)pg_i64(r, row, 8));
    else
        cJSON_AddNullToObject(o, "last_status");
    add_nullable(o, "last_error", pg_val(r, row, 9));
    cJSON_AddStringToObject(o, "created_at", pg_val(r, row, 10));
    add_nullable(o, "delivered_at", pg_val(r, row, 11));
    return o;
}

/* Runs a statement; the result, or NULL answered (400 for a value the database refused as
 * data, e.g. a 31st of February; else 503/500). */
static PGresult *run(struct api_call *c, const char *stmt, int n, const char *const *p)
{
    char err[ERR_MAX];
    PGresult *r;

    if (!api_db(c))
        return NULL;
    if ((r = pg_exec(c->db, stmt, n, p, err)))
        return r;
    if (!strncmp(pg_sqlstate(c->db), "22", 2))
        return bad_request(c, "a value is malformed or out of range"), NULL;
    return api_db_fail(c, stmt, err), NULL;
}

/* Answers the endpoint of the one row of r (404 none), with its secret if with_secret. */
static void respond_endpoint(struct api_call *c, int status, PGresult *r, int with_secret)
{
    if (PQntuples(r) == 1)
        http_respond_json(c->req, status, endpoint_json(r, 0, with_secret));
    else
        not_found(c);
    PQclear(r);
}

/* ---- request bodies ---- */

/* What a create or patch body sets (NULL: unchanged). */
struct wh_fields {
    const char *url, *desc, *secret, *enabled;
    buf events;
    char made[WEBHOOK_SECRET_MAX]; /* a generated secret */
};

static int desc_valid(const char *s)
{
    return !s[0] || api_valid_name(s, WEBHOOK_DESC_MAX);
}

/* 0 if url may be an endpoint's; else -1 answered 400 url_invalid or url_forbidden. */
static int url_check(struct api_call *c, const char *url)
{
    char err[ERR_MAX] = "";
    const char *why;
    int forbidden;

    if (strlen(url) > WEBHOOK_URL_MAX)
        return api_error(c, 400, "url_invalid", "url must be at most 2048 bytes"), -1;
    if (ssrf_check_url(c->api->webhook_ssrf, url, err) == 0)
        return 0;
    forbidden = !strncmp(err, "url_forbidden", 13);
    why = strchr(err, ':');
    why = why ? why + 1 + (why[1] == ' ') : err;
    log_info(c->rid, "webhook_url_refused", err);
    api_error(c, 400, forbidden ? "url_forbidden" : "url_invalid", why[0] ? why : "refused");
    return -1;
}

/* The fields both create and patch take; 0, or -1 answered. */
static int fields_parse(struct api_call *c, const cJSON *body, struct wh_fields *f)
{
    const cJSON *ev = cJSON_GetObjectItemCaseSensitive(body, "events");
    const char *err = NULL, *msg = NULL;

    if (json_get_str(body, "url", &f->url, &err) < 0)
        return bad_request(c, "url must be a string"), -1;
    if (ev && !cJSON_IsNull(ev) && webhook_events_literal(ev, &f->events, &msg) < 0)
        return bad_request(c, msg), -1;
    if (json_get_str(body, "description", &f->desc, &err) < 0 || (f->desc && !desc_valid(f->desc)))
        return bad_request(c, "description must be at most 1024 bytes of UTF-8 text without "
                              "control characters"),
               -1;
    if (json_get_str(body, "secret", &f->secret, &err) < 0 ||
        (f->secret && !webhook_secret_valid(f->secret)))
        return bad_request(c, "secret must be whsec_ and the base64 of 24 to 64 bytes"), -1;
    return f->url ? url_check(c, f->url) : 0;
}

/* The patch's own fields: enabled, rotate_secret; 0, or -1 answered. */
static int patch_parse(struct api_call *c, const cJSON *body, struct wh_fields *f)
{
    const char *err = NULL;
    int enabled = 0, rotate = 0, has;

    if ((has = json_get_bool(body, "enabled", &enabled, &err)) < 0)
        return bad_request(c, "enabled must be true or false"), -1;
    f->enabled = has ? (enabled ? "true" : "false") : NULL;
    if (json_get_bool(body, "rotate_secret", &rotate, &err) < 0)
        return bad_request(c, "rotate_secret must be true or false"), -1;
    if (rotate && f->secret)
        return bad_request(c, "give secret or rotate_secret, not both"), -1;
    if (rotate && webhook_secret_new(f->made) < 0)
        return api_error(c, 500, "internal", "cannot make a secret"), -1;
    if (rotate)
        f->secret = f->made;
    if (!f->url && !f->events.len && !f->desc && !f->secret && !f->enabled)
        return bad_request(c, "give url, events, description, secret, rotate_secret and/or "
                              "enabled"),
               -1;
    return 0;
}

/* ---- endpoints ---- */

static void create_run(struct api_call *c, struct wh_fields *f)
{
    char id[37], cap[24];
    const char *p[6] = {id, f->url, f->events.data, f->secret, f->desc ? f->desc : "", cap};
    PGresult *r;

    if (util_uuid(id) < 0)
        return api_error(c, 500, "internal", "cannot make an id");
    snprintf(cap, sizeof cap, "%ld", c->api->cfg->webhook_endpoints);
    if (!(r = run(c, "webhook_create", 6, p)))
        return;
    if (PQntuples(r) == 0) {
        PQclear(r);
        return api_error(c, 409, "endpoint_limit_reached",
                         "endpoint limit reached (PIXPLANE_WEBHOOK_ENDPOINTS); delete one first");
    }
    log_info(c->rid, "webhook_created", "webhook endpoint registered", "endpoint_id", id);
    respond_endpoint(c, 201, r, 1);
}

static void create_fields(struct api_call *c, struct wh_fields *f)
{
    if (!f->url || !f->events.len)
        return bad_request(c, "url and events are required");
    if (!f->secret && webhook_secret_new(f->made) < 0)
        return api_error(c, 500, "internal", "cannot make a secret");
    if (!f->secret)
        f->secret = f->made;
    create_run(c, f);
}

static void create_body(struct api_call *c, const char *none, const cJSON *body)
{
    struct wh_fields f = {0};

    if (fields_parse(c, body, &f) == 0)
        create_fields(c, &f);
    buf_free(&f.events);
}

/* Runs fn on the request's JSON body (id: the endpoint of the path, or NULL). */
static void with_body(struct api_call *c, const char *id,
                      void (*fn)(struct api_call *c, const char *id, const cJSON *body))
{
    cJSON *body = api_body(c);

    if (!body)
        return;
    fn(c, id, body);
    cJSON_Delete(body);
}

void webhook_create(struct api_call *c)
{
    with_body(c, NULL, create_body);
}

void webhook_get(struct api_call *c)
{
    const char *id = api_param_uuid(c, "id");
    PGresult *r = id ? run(c, "webhook_get", 1, &id) : NULL;

    if (r)
        respond_endpoint(c, 200, r, 0);
}

static void patch_run(struct api_call *c, const char *id, const struct wh_fields *f)
{
    const char *p[6] = {id,      f->url,    f->events.len ? f->events.data : NULL,
                        f->desc, f->secret, f->enabled};
    PGresult *r = run(c, "webhook_patch", 6, p);

    if (!r)
        return;
    if (PQntuples(r) == 1)
        log_info(c->rid, "webhook_changed", "webhook endpoint changed", "endpoint_id", id,
                 "enabled", f->enabled ? f->enabled : "", "secret",
                 f->secret ? "replaced" : "kept");
    respond_endpoint(c, 200, r, f->secret != NULL);
}

static void patch_body(struct api_call *c, const char *id, const cJSON *body)
{
    struct wh_fields f = {0};

    if (fields_parse(c, body, &f) == 0 && patch_parse(c, body, &f) == 0)
        patch_run(c, id, &f);
    buf_free(&f.events);
}

void webhook_patch(struct api_call *c)
{
    const char *id = api_param_uuid(c, "id");

    if (id)
        with_body(c, id, patch_body);
}

void webhook_delete(struct api_call *c)
{
    const char *id = api_param_uuid(c, "id");
    PGresult *r = id ? run(c, "webhook_delete", 1, &id) : NULL;
    long long n;

    if (!r)
        return;
    n = pg_i64(r, 0, 0);
    PQclear(r);
    if (n == 0)
        return not_found(c);
    log_info(c->rid, "webhook_deleted", "webhook endpoint deleted", "endpoint_id", id);
    http_respond(c->req, 204, NULL, NULL, 0);
}

/* ---- listings ---- */

/* A paged listing, newest or oldest first by its statement: params cursor key, cursor id,
 * limit + 1, then the endpoint and ?status= for deliveries (nparams 5); each row's
 * cursor key is column keycol, its cursor id column idcol. */
struct wh_list {
    const char *stmt;
    int nparams;
    char mark;
    const char *key;
    int keycol, idcol;
    cJSON *(*one)(const PGresult *r, int row);
};

static const struct wh_list endpoints_list = {
    "webhook_list", 3, 'W', "endpoints", WEBHOOK_NCOLS + 1, 0, endpoint_listed};
static const struct wh_list deliveries_list = {"webhook_deliveries", 5, 'D', "deliveries", 0, 1,
                                               delivery_json};

static void list_respond(struct api_call *c, const struct wh_list *l, PGresult *r, long limit)
{
    int n = PQntuples(r) > limit ? (int)limit : PQntuples(r);
    cJSON *o = cJSON_CreateObject(), *a = cJSON_AddArrayToObject(o, l->key);
    char *cur = NULL;

    for (int i = 0; i < n; i++)
        cJSON_AddItemToArray(a, l->one(r, i));
    if (PQntuples(r) > limit)
        cur = api_cursor_make(l->mark, pg_val(r, n - 1, l->keycol), pg_val(r, n - 1, l->idcol));
    add_nullable(o, "next_cursor", cur);
    free(cur);
    http_respond_json(c->req, 200, o);
}

/* ?status= of the deliveries (empty: all) into st[16]; 0, or -1 answered. */
static int status_param(struct api_call *c, char *st)
{
    int rc = http_req_query_param(c->req, "status", st, 16);

    if (rc == 0)
        st[0] = '\0';
    if (rc < 0 ||
        (st[0] && strcmp(st, "pending") && strcmp(st, "delivered") && strcmp(st, "failed")))
        return bad_request(c, "status must be pending, delivered or failed"), -1;
    return 0;
}

/* The page's rows, or NULL answered; endpoint: the deliveries' endpoint. */
static PGresult *list_rows(struct api_call *c, const struct wh_list *l, const char *endpoint,
                           long *limit)
{
    char key[64], id[37], lim[24], st[16] = "";
    const char *p[5] = {NULL, NULL, lim, endpoint, NULL};

    if ((*limit = api_page_limit(c)) < 0 || api_cursor_parse(c, l->mark, key, sizeof key, id) < 0)
        return NULL;
    if (l->nparams == 5 && status_param(c, st) < 0)
        return NULL;
    snprintf(lim, sizeof lim, "%ld", *limit + 1);
    p[0] = key[0] ? key : NULL;
    p[1] = id[0] ? id : NULL;
    p[4] = st[0] ? st : NULL;
    return run(c, l->stmt, l->nparams, p);
}

void webhook_list(struct api_call *c)
{
    long limit;
    PGresult *r = list_rows(c, &endpoints_list, NULL, &limit);

    if (!r)
        return;
    list_respond(c, &endpoints_list, r, limit);
    PQclear(r);
}

/* 1 if endpoint id exists, 0 if not (answered 404), -1 answered. */
static int endpoint_exists(struct api_call *c, const char *id)
{
    PGresult *r = run(c, "webhook_get", 1, &id);
    int n;

    if (!r)
        return -1;
    n = PQntuples(r);
    PQclear(r);
    if (n == 0)
        not_found(c);
    return n == 1;
}

void webhook_deliveries(struct api_call *c)
{
    const char *id = api_param_uuid(c, "id");
    long limit;
    PGresult *r = id ? list_rows(c, &deliveries_list, id, &limit) : NULL;

    if (!r)
        return;
    if (PQntuples(r) > 0 || endpoint_exists(c, id) == 1)
        list_respond(c, &deliveries_list, r, limit);
    PQclear(r);
}

/* ---- ping and replay ---- */

static void ping_respond(struct api_call *c, const char *event, const PGresult *r)
{
    cJSON *o = cJSON_CreateObject();

    cJSON_AddStringToObject(o, "event_id", event);
    cJSON_AddNumberToObject(o, "delivery_id", (double)pg_i64(r, 0, 2));
    http_respond_json(c->req, 202, o);
}

void webhook_ping(struct api_call *c)
{
    const char *id = api_param_uuid(c, "id");
    char event[37];
    const char *p[2] = {id, event};
    PGresult *r;

    if (!id)
        return;
    if (util_uuid(event) < 0)
        return api_error(c, 500, "internal", "cannot make an id");
    if (!(r = run(c, "webhook_ping", 2, p)))
        return;
    if (pg_i64(r, 0, 0) == 0)
        not_found(c);
    else if (pg_val(r, 0, 1)[0] != 't')
        api_error(c, 409, "endpoint_disabled",
                  "the endpoint is disabled; re-enable it first (PATCH enabled: true)");
    else
        ping_respond(c, event, r);
    if (pg_val(r, 0, 2))
        log_info(c->rid, "webhook_ping", "webhook ping queued", "endpoint_id", id, "event_id",
                 event);
    PQclear(r);
}

static void replay_respond(struct api_call *c, const char *id, const PGresult *r)
{
    long long cap = c->api->cfg->webhook_replay_max;
    char msg[160];
    cJSON *o;

    if (pg_i64(r, 0, 0) == 0)
        return not_found(c);
    if (pg_val(r, 0, 1)[0] != 't')
        return bad_request(c, "to must be after from, and at most PIXPLANE_WEBHOOK_REPLAY_RANGE "
                              "after it");
    if (pg_i64(r, 0, 2) > cap) {
        snprintf(msg, sizeof msg,
                 "more than %lld events in the range (PIXPLANE_WEBHOOK_REPLAY_MAX); replay a "
                 "shorter range",
                 cap);
        return api_error(c, 413, "too_many_events", msg);
    }
    log_info(c->rid, "webhook_replay", "webhook replay queued", "endpoint_id", id, "replayed",
             pg_val(r, 0, 3));
    o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "replayed", (double)pg_i64(r, 0, 3));
    http_respond_json(c->req, 202, o);
}

static void replay_body(struct api_call *c, const char *id, const cJSON *body)
{
    const char *from = NULL, *to = NULL, *err = NULL;
    char range[32], cap[24];
    const char *p[5] = {id, NULL, NULL, range, cap};
    PGresult *r;

    if (json_get_str(body, "from", &from, &err) != 1 || !util_rfc3339_valid(from) ||
        json_get_str(body, "to", &to, &err) != 1 || !util_rfc3339_valid(to))
        return bad_request(c, "from and to must be RFC 3339 date-times "
                              "(2026-12-03T10:00:00Z)");
    p[1] = from;
    p[2] = to;
    snprintf(range, sizeof range, "%.3f", c->api->cfg->webhook_replay_range);
    snprintf(cap, sizeof cap, "%ld", c->api->cfg->webhook_replay_max);
    if (!(r = run(c, "webhook_replay", 5, p)))
        return;
    replay_respond(c, id, r);
    PQclear(r);
}

void webhook_replay(struct api_call *c)
{
    const char *id = api_param_uuid(c, "id");

    if (id)
        with_body(c, id, replay_body);
}
