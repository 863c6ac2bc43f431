/* server: wires the API together: worker threads with their S3 clients, the PostgreSQL
 * pool, the route table, and per-request dispatch (routing, authentication, helpers). */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "albums.h"
#include "api.h"
#include "cors.h"
#include "imgcache.h"
#include "json.h"
#include "links.h"
#include "log.h"
#include "opshttp.h"
#include "prehook.h"
#include "quota.h"
#include "ryw.h"
#include "stream.h"
#include "ssrf.h"
#include "ticket.h"
#include "webapp.h"
#include "webhooks.h"

#define DB_ACQUIRE_TIMEOUT 2.0
#define AUTH_CACHE_SLOTS 512 /* per worker thread */
#define IMG_CACHE_TTL 30.0   /* seconds: a backstop; change stamps do the invalidating */

#define R(m, p, h, f)                                                                              \
    {                                                                                              \
        m, p, (void *)(h), f                                                                       \
    }
const struct route api_routes[] = {
    R("GET", "/healthz", api_healthz, ROUTE_PUBLIC),
    R("GET", "/readyz", api_readyz, ROUTE_PUBLIC),
    R("GET", "/metrics", api_metrics, ROUTE_ADMIN),
    R("POST", "/uploads", upload_create, 0),
    R("POST", "/uploads/batch", upload_batch, 0),
    R("GET", "/uploads/{id}", upload_status, 0),
    R("DELETE", "/uploads/{id}", upload_abort, 0),
    R("POST", "/uploads/{id}/chunks/urls", upload_part_urls, 0),
    R("PUT", "/uploads/{id}/chunks/{n}", upload_part_redirect, ROUTE_BODYLESS),
    R("POST", "/uploads/{id}/complete", upload_complete, 0),
    R("POST", "/uploads/{id}/proof", upload_proof, 0),
    R("GET", "/images", image_list, ROUTE_READ),
    R("GET", "/images/{id}", image_get, ROUTE_READ),
    R("PATCH", "/images/{id}", image_patch, 0),
    R("DELETE", "/images/{id}", image_delete, 0),
    R("GET", "/images/{id}/metadata", image_metadata, ROUTE_READ),
    R("GET", "/images/{id}/variants/{variant_type}", image_variant, ROUTE_READ),
    R("POST", "/images/{id}/restore", image_restore, 0),
    R("POST", "/images/{id}/shares", image_share, 0),
    R("DELETE", "/images/{id}/shares/{user_id}", image_unshare, 0),
    R("GET", "/shared", image_shared_with_me, ROUTE_READ),
    R("POST", "/internal/images/{id}/cleanup", image_cleanup, ROUTE_ADMIN),
    R("POST", "/albums", album_create, 0),
    R("GET", "/albums", album_list, ROUTE_READ),
    R("GET", "/albums/{id}", album_get, ROUTE_READ),
    R("PATCH", "/albums/{id}", album_patch, 0),
    R("DELETE", "/albums/{id}", album_delete, 0),
    R("POST", "/albums/{id}/items", album_items_add, 0),
    R("DELETE", "/albums/{id}/items", album_items_remove, 0),
    R("POST", "/albums/{id}/members", album_member_put, 0),
    R("DELETE", "/albums/{id}/members/{user_id}", album_member_remove, 0),
    R("GET", "/sync", sync_get, ROUTE_READ),
    R("GET", "/sync/stream", sync_stream, ROUTE_STREAM_AUTH),
    R("POST", "/sync/stream-ticket", ticket_issue, 0),
    R("POST", "/internal/sync/prune", sync_prune, ROUTE_ADMIN),
    /* webhooks */
    R("POST", "/internal/webhooks", webhook_create, ROUTE_ADMIN),
    R("GET", "/internal/webhooks", webhook_list, ROUTE_ADMIN),
    R("GET", "/internal/webhooks/{id}", webhook_get, ROUTE_ADMIN),
    R("PATCH", "/internal/webhooks/{id}", webhook_patch, ROUTE_ADMIN),
    R("DELETE", "/internal/webhooks/{id}", webhook_delete, ROUTE_ADMIN),
    R("POST", "/internal/webhooks/{id}/ping", webhook_ping, ROUTE_ADMIN),
    R("POST", "/internal/webhooks/{id}/replay", webhook_replay, ROUTE_ADMIN),
    R("GET", "/internal/webhooks/{id}/deliveries", webhook_deliveries, ROUTE_ADMIN),
    /* quotas and usage (quota.c) */
    R("GET", "/me/usage", quota_usage_get, ROUTE_READ),
    R("PUT", "/internal/users/{id}/quota", quota_put, ROUTE_ADMIN),
    /* public links (links.c); {token} routes are logged as their pattern (observe.c) */
    R("POST", "/images/{id}/links", link_create_image, 0),
    R("POST", "/albums/{id}/links", link_create_album, 0),
    R("GET", "/links", link_list, ROUTE_READ),
    R("DELETE", "/links/{id}", link_revoke, 0),
    R("GET", "/s/{token}", link_open, ROUTE_PUBLIC),
    R("POST", "/s/{token}/unlock", link_unlock, ROUTE_PUBLIC),
};
const size_t api_routes_count = ARRAY_LEN(api_routes);

void api_error(struct api_call *c, int status, const char *code, const char *msg)
{
    http_respond_error(c->req, status, code, msg);
}

pg_conn *api_db(struct api_call *c)
{
    char err[ERR_MAX];

    if (c->db)
        return c->db;
    if (c->read && c->api->pg_read && (c->db = ryw_read_db(c)))
        return c->db;
    c->db = pg_acquire(c->api->pg, DB_ACQUIRE_TIMEOUT, err);
    if (!c->db) {
        log_warn(c->rid, "db_unavailable", err);
        api_error(c, 503, "database_unavailable", "the metadata database is unavailable");
    }
    return c->db;
}

void api_db_fail(struct api_call *c, const char *what, const char *err)
{
    int lost = c->db && pg_conn_lost(c->db);

    api_count(c->api, "pixplane_db_errors_total", "", 1);
    log_error(c->rid, "db_error", err, "statement", what, "sqlstate",
              c->db ? pg_sqlstate(c->db) : "");
    if (lost)
        api_error(c, 503, "database_unavailable", "the metadata database is unavailable");
    else
        api_error(c, 500, "internal", "database error");
}

void api_s3_fail(struct api_call *c, const char *what, const char *err)
{
    char labels[96];

    snprintf(labels, sizeof labels, "operation=\"%s\"", what);
    api_count(c->api, "pixplane_s3_errors_total", labels, 1);
    log_error(c->rid, "s3_error", err, "operation", what);
    api_error(c, 503, "storage_unavailable", "object storage is unavailable");
}

PGresult *api_exec(struct api_call *c, const char *stmt, int n, const char *const *p)
{
    char err[ERR_MAX];
    PGresult *r;

    if (!api_db(c))
        return NULL;
    if (!(r = pg_exec(c->db, stmt, n, p, err)))
        api_db_fail(c, stmt, err);
    return r;
}

void api_retry_after(struct api_call *c, double retry, const char *code, const char *msg)
{
    char secs[16];

    snprintf(secs, sizeof secs, "%d", (int)retry + 1);
    if (http_resp_header(c->req, "Retry-After", secs) < 0)
        log_warn(c->rid, "http", "could not add Retry-After");
    api_error(c, 429, code, msg);
}

cJSON *api_body(struct api_call *c)
{
    const char *msg = NULL;
    size_t len;
    const char *body = http_req_body(c->req, &len);
    cJSON *o = json_parse_object(body ? body : "", body ? len : 0, &msg);

    if (!o)
        api_error(c, 400, "bad_request", msg ? msg : "malformed JSON");
    return o;
}

int api_valid_name(const char *s, size_t max)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t n = strlen(s);

    if (n == 0 || n > max)
        return 0;
    while (*p) {
        size_t len = json_utf8_seqlen(p, n - (size_t)(p - (const unsigned char *)s));
        if (len == 0 || (len == 1 && (*p < 0x20 || *p == 0x7f)))
            return 0;
        if (len == 2 && p[0] == 0xc2 && p[1] < 0xa0)
            return 0; /* C1 controls */
        p += len;
    }
    return 1;
}

const char *api_param_uuid(struct api_call *c, const char *name)
{
    const char *v = route_param(&c->params, name);

    if (v && util_is_uuid(v))
        return v;
    api_error(c, 404, "not_found", "no such resource");
    return NULL;
}

static int unauthorized(struct api_call *c, const char *code, const char *why)
{
    if (http_resp_header(c->req, "WWW-Authenticate", "Bearer") < 0)
        log_warn(c->rid, "http", "could not add WWW-Authenticate");
    api_error(c, 401, code, why);
    return -1;
}

/* A stream ticket (?ticket=) stands for the token it was issued to; sent with a bearer
 * token, both must name the same user. */
static int authenticate_ticket(struct api_call *c, const char *bearer, const char *ticket)
{
    struct auth_claims other;
    const char *why = NULL;

    if (ticket_redeem(c, ticket, &c->user, &why) < 0)
        return why ? unauthorized(c, why, "the stream ticket is unknown, used or expired") : -1;
    if (bearer && (auth_cache_verify(c->t->auth, c->api->jwt_key, c->api->jwt_keylen, bearer,
                                     time(NULL), &other, &why) < 0 ||
                   strcmp(other.sub, c->user.sub) != 0))
        return unauthorized(c, "invalid_ticket", "the stream ticket is another user's");
    return 0;
}

/* The bearer token; on the event stream also a ticket, or ?token= if sse-query-token. */
static int authenticate(struct api_call *c, int stream)
{
    const char *tok = auth_bearer(http_req_header(c->req, "Authorization"));
    const char *why = "missing bearer token";
    char q[1024];

    if (stream && http_req_query_param(c->req, "ticket", q, sizeof q) == 1)
        return authenticate_ticket(c, tok, q);
    if (!tok && stream && c->api->cfg->sse_query_token &&
        http_req_query_param(c->req, "token", q, sizeof q) == 1)
        tok = q;
    if (tok && auth_cache_verify(c->t->auth, c->api->jwt_key, c->api->jwt_keylen, tok, time(NULL),
                                 &c->user, &why) == 0)
        return 0;
    return unauthorized(c, "unauthorized", why);
}

/* Token bucket per user; answers 429 with Retry-After when empty. */
static int rate_limited(struct api_call *c)
{
    double retry = 0;

    if (ratelimit_take(c->api->rl, c->user.sub, util_now_mono(), &retry))
        return 0;
    api_count(c->api, "pixplane_ratelimited_total", "", 1);
    api_retry_after(c, retry, "rate_limited", "too many requests; retry later");
    return 1;
}

/* Runs the route's handler. A write (any method but GET and HEAD) is bracketed for the
 * image caches: the caller's cached reads are neither served nor filled while it runs, and
 * are stale after (an admin's, everyone's), so a client always reads its own writes. */
static void run_handler(struct api_call *c, const struct route *r)
{
    const char *m = http_req_method(c->req);
    int write = (r->flags & ROUTE_PUBLIC) == 0 && strcmp(m, "GET") && strcmp(m, "HEAD");

    if ((r->flags & ROUTE_READ) && ryw_read_begin(c) < 0)
        return;
    if (write) {
        imgcache_write_begin(c->api->gens, c->user.sub);
        ryw_write_begin(c);
    }
    ((api_handler)r->handler)(c);
    pg_release(c->db);
    c->db = NULL;
    if (write && c->user.admin)
        imgcache_changed(c->api->gens, "*");
    if (write)
        imgcache_write_end(c->api->gens, c->user.sub);
}

/* A path with no route for its method: OPTIONS is a preflight, anything else 404 / 405. */
static void no_route(struct api_call *c, int status, const char *allow)
{
    if (status == 405 && !strcmp(http_req_method(c->req), "OPTIONS"))
        return cors_preflight(c->api->cors, c->req, allow);
    if (status == 405 && http_resp_header(c->req, "Allow", allow) < 0)
        status = 500;
    api_error(c, status, status == 405 ? "method_not_allowed" : "not_found",
              status == 405 ? "method not allowed" : "no such route");
}

static void dispatch(http_req *req, void *tctx, void *ud)
{
    struct api_call c = {.api = ud, .t = tctx, .req = req, .rid = http_req_id(req)};
    char allow[64] = "";
    int status = 404;
    const struct route *r;

    if (webapp_serve(c.api->web, req, http_req_path(req)))
        return;
    if (cors_headers(c.api->cors, req) < 0)
        return api_error(&c, 500, "internal", "could not build the answer");
    r = router_match(api_routes, api_routes_count, http_req_method(req), http_req_path(req),
                     &c.params, allow, sizeof allow, &status);
    if (!r)
        return no_route(&c, status, allow);
    http_req_set_tag(req, r->pattern);
    if (!(r->flags & ROUTE_PUBLIC) && authenticate(&c, r->flags & ROUTE_STREAM_AUTH) < 0)
        goto out;
    if (!(r->flags & ROUTE_PUBLIC) && rate_limited(&c))
        goto out;
    if ((r->flags & ROUTE_ADMIN) && !c.user.admin) {
        api_error(&c, 403, "forbidden", "admin token required");
        goto out;
    }
    run_handler(&c, r);
out:
    pg_release(c.db); /* a ticket's redemption may have taken one */
}

static int bodyless(const char *method, const char *path)
{
    struct route_params p;
    int status;
    const struct route *r =
        router_match(api_routes, api_routes_count, method, path, &p, NULL, 0, &status);

    return r && (r->flags & ROUTE_BODYLESS);
}

static void *tctx_new(void *ud)
{
    struct api *api = ud;
    struct api_tctx *t = calloc(1, sizeof *t);

    if (!t)
        fatal("startup", "out of memory");
    t->api = api;
    t->s3 = s3_client_new(&api->s3cfg);
    t->auth = auth_cache_new(AUTH_CACHE_SLOTS);
    t->imgs = api->cfg->image_cache > 0
                  ? imgcache_new(api->gens, (size_t)api->cfg->image_cache, IMG_CACHE_TTL)
                  : NULL;
    if (!t->s3 || !t->auth || (!t->imgs && api->cfg->image_cache > 0))
        fatal("startup", "cannot create the S3 client or token cache");
    return t;
}

static void tctx_free(void *p)
{
    struct api_tctx *t = p;

    if (!t)
        return;
    s3_client_free(t->s3);
    auth_cache_free(t->auth);
    imgcache_free(t->imgs);
    curl_easy_cleanup(t->hook);
    free(t);
}

static void s3cfg_fill(struct api *api)
{
    const struct api_config *cfg = api->cfg;

    api->s3cfg = s3_config_from_store(&cfg->store);
    api->s3cfg.public_endpoint = cfg->s3_public_endpoint[0] ? cfg->s3_public_endpoint : NULL;
}

static void on_housekeeping(struct ev_loop *loop, ev_timer *w, int revents)
{
    upload_housekeeping(w->data);
}

static void on_verify_sweep(struct ev_loop *loop, ev_timer *w, int revents)
{
    upload_verify_sweep(w->data);
}

/* The SSRF policy of webhook endpoint urls; 0, or -1 with err naming the setting. */
static int webhook_policy(struct api *api, char *err)
{
    char why[ERR_MAX] = "";

    if ((api->webhook_ssrf = ssrf_policy_new(api->cfg->webhook_allow_addrs, why)))
        return 0;
    err_set(err, "webhook-allow-addrs (PIXPLANE_WEBHOOK_ALLOW_ADDRS): %s", why);
    return -1;
}

static void on_held_sweep(struct ev_loop *loop, ev_timer *w, int revents)
{
    upload_held_sweep(w->data);
}

/* DATABASE_READ_URL: a pool of read-only connections named pixplane-api-read, and the
 * per-user write positions that decide when a read may use it. 0, or -1 with err. */
static int read_pool(struct api *api, const struct pg_connopts *primary, char *err)
{
    struct pg_connopts o = *primary;

    if (!api->cfg->database_read_url[0])
        return 0;
    o.application = "pixplane-api-read";
    o.options = "-c default_transaction_read_only=on";
    api->pg_read = pg_pool_new(api->cfg->database_read_url, &o, (int)api->cfg->db_read_pool,
                               api_stmts, api_stmts_count);
    api->ryw = ryw_new();
    if (!api->pg_read || !api->ryw)
        return err_set(err, "cannot create the read pool"), -1;
    log_info(NULL, "read_pool", "reads may use database-read-url");
    return 0;
}

static void timer_start(struct api *api, ev_timer *t, void (*cb)(struct ev_loop *, ev_timer *, int),
                        double every)
{
    ev_timer_init(t, cb, 1.0, every);
    t->data = api;
    ev_timer_start(api->loop, t);
}

int api_init(struct api *api, char *err)
{
    const struct api_config *cfg = api->cfg;
    struct http_limits lim = {.max_body_bytes = (size_t)cfg->max_body,
                              .body_timeout = cfg->body_timeout,
                              .min_body_rate = (double)cfg->min_body_rate,
                              .max_conns_per_addr = (int)cfg->max_conns_per_addr};
    char host[128];
    int port;

    if (strlen(cfg->jwt_secret) < AUTH_MIN_SECRET)
        return err_set(err, "jwt-secret (PIXPLANE_JWT_SECRET) must be at least %d bytes",
                       AUTH_MIN_SECRET),
               -1;
    if (util_split_hostport(cfg->listen, host, sizeof host, &port) < 0)
        return err_set(err, "bad listen address '%s'", cfg->listen), -1;
#ifdef PIX_TEST_HOOKS
    const double min_ttl = 1; /* expiry tests need URLs that die within seconds */
#else
    const double min_ttl = 60;
#endif
    if (cfg->download_url_ttl < min_ttl || cfg->download_url_ttl > 600)
        return err_set(err, "download-url-ttl must be 60 to 600 seconds"), -1;
    api->rl = ratelimit_new((double)cfg->rate_limit, (double)cfg->rate_burst);
    api->link_rl = ratelimit_new(1.0 / cfg->link_unlock_refill, (double)cfg->link_unlock_attempts);
    if (!api->rl || !api->link_rl)
        return err_set(err, "out of memory"), -1;
    if (prehook_config_check(cfg, err) < 0)
        return -1;
    if (!(api->cors = cors_new(cfg->cors_origins, err)))
        return -1;
    if (webhook_policy(api, err) < 0)
        return -1;
    if (!(api->web = webapp_load(cfg->web_dir, err)) && err[0])
        return -1;
    log_info(NULL, "web_pages", api->web ? "serving the browser pages at /app/" : "no pages",
             "web_dir", cfg->web_dir);
    api->jwt_key = (const unsigned char *)cfg->jwt_secret;
    api->jwt_keylen = strlen(cfg->jwt_secret);
    s3cfg_fill(api);
    const struct pg_connopts po = {.statement_timeout = cfg->store.db_statement_timeout};
    api->pg =
        pg_pool_new(cfg->store.database_url, &po, (int)cfg->db_pool, api_stmts, api_stmts_count);
    if (read_pool(api, &po, err) < 0)
        return -1;
    if (!(api->gens = imgcache_gens_new())) /* before the pools: their threads use it */
        return err_set(err, "out of memory"), -1;
    api->workers = pool_new((int)cfg->workers, 4096, tctx_new, tctx_free, api);
    api->jobs = pool_new((int)cfg->verify_jobs, 1024, tctx_new, tctx_free, api);
    api->stream_pool = pool_new((int)cfg->sse_workers, 4096, tctx_new, tctx_free, api);
    api->held = finalize_held_new(HELD_LEASES_MAX);
    if (!api->pg || !api->workers || !api->jobs || !api->stream_pool || !api->held)
        return err_set(err, "cannot create pools"), -1;
    api->http = http_server_new(api->loop, &lim, api->workers, dispatch, api);
    if (!api->http || !(api->streams = stream_hub_new(api)) || api_metrics_init(api) < 0)
        return err_set(err, "cannot create HTTP server"), -1;
    http_server_set_observer(api->http, api_observe, api);
    http_server_set_bodyless(api->http, bodyless);
    timer_start(api, &api->housekeeping, on_housekeeping, HOUSEKEEPING_SECS);
    timer_start(api, &api->verify_sweep, on_verify_sweep, VERIFY_SWEEP_SECS(cfg->verify_lease));
    timer_start(api, &api->held_sweep, on_held_sweep, 1.0);
    if (api_ops_start(api, err) < 0)
        return -1;
    return http_server_listen(api->http, host, port, err);
}

void api_fini(struct api *api)
{
    opshttp_stop(api->ops); /* first: it renders from the pools and the metrics */
    api->ops = NULL;
    ev_timer_stop(api->loop, &api->housekeeping);
    ev_timer_stop(api->loop, &api->verify_sweep);
    ev_timer_stop(api->loop, &api->held_sweep);
    pool_free(api->workers); /* finishes queued requests first */
    pool_free(api->jobs);
    pool_free(api->stream_pool); /* its last results wait in the hub, freed with it */
    api->workers = api->jobs = api->stream_pool = NULL;
    http_server_free(api->http); /* first: closing its streams calls the hub back */
    api->http = NULL;
    stream_hub_free(api->streams);
    api->streams = NULL;
    imgcache_gens_free(api->gens);
    api->gens = NULL;
    finalize_held_free(api->held);
    api->held = NULL;
    pg_pool_free(api->pg);
    api->pg = NULL;
    pg_pool_free(api->pg_read);
    api->pg_read = NULL;
    ryw_free(api->ryw);
    api->ryw = NULL;
    ratelimit_free(api->rl);
    api->rl = NULL;
    ratelimit_free(api->link_rl);
    api->link_rl = NULL;
    cors_free(api->cors);
    api->cors = NULL;
    ssrf_policy_free(api->webhook_ssrf);
    api->webhook_ssrf = NULL;
    webapp_free(api->web);
    api->web = NULL;
    metrics_free(api->metrics);
    api->metrics = NULL;
}
