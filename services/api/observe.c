/* observe: the API's metrics (Prometheus text on GET /metrics) and its access log, fed by
 * the HTTP server's response observer with the matched route as the label. */
#include <stdio.h>
#include <string.h>

#include "api.h"
#include "log.h"
#include "metrics.h"
#include "opshttp.h"
#include "stream.h"

static const struct {
    const char *name;
    enum metric_type type;
    const char *help;
} families[] = {
    {"pixplane_http_requests_total", METRIC_COUNTER, "HTTP responses by route, method, status"},
    {"pixplane_http_request_duration_seconds", METRIC_HISTOGRAM,
     "time from request head to response, by route"},
    {"pixplane_http_inflight_requests", METRIC_GAUGE, "requests received and not answered"},
    {"pixplane_upload_bytes_total", METRIC_COUNTER, "bytes of completed uploads stored"},
    {"pixplane_uploads_completed_total", METRIC_COUNTER, "uploads committed, by kind"},
    {"pixplane_dedup_hits_total", METRIC_COUNTER, "uploads that found their content stored"},
    {"pixplane_db_errors_total", METRIC_COUNTER, "failed PostgreSQL statements"},
    {"pixplane_s3_errors_total", METRIC_COUNTER, "failed S3 operations, by operation"},
    {"pixplane_outbox_backlog", METRIC_GAUGE, "outbox events not yet delivered to Kafka"},
    {"pixplane_sse_streams", METRIC_GAUGE, "open /sync/stream connections"},
    {"pixplane_sse_deltas_total", METRIC_COUNTER,
     "stream deltas computed (one per user and distinct cursor, shared by its streams)"},
    {"pixplane_sse_refused_total", METRIC_COUNTER, "streams refused by a cap, by reason"},
    {"pixplane_ratelimited_total", METRIC_COUNTER, "requests refused by the rate limit"},
    {"pixplane_quota_refusals_total", METRIC_COUNTER,
     "upload sessions refused by a quota, by kind (bytes, images)"},
    {"pixplane_pre_upload_hook_total", METRIC_COUNTER,
     "pre-upload hook calls, by result (allowed, refused, failed_open, failed_closed)"},
    {"pixplane_db_reads_total", METRIC_COUNTER,
     "reads of ROUTE_READ routes when database-read-url is set, by pool (read, primary) and "
     "why a read went to the primary (replay_behind, read_pool_unavailable)"},
};

int api_metrics_init(struct api *api)
{
    if (!(api->metrics = metrics_new()))
        return -1;
    for (size_t i = 0; i < ARRAY_LEN(families); i++)
        if (metrics_declare(api->metrics, families[i].name, families[i].type, families[i].help) < 0)
            return -1;
    return 0;
}

/* The path as logged: a public link's token is a secret, so routes with a {token} are
 * logged as their pattern and any other path with /s/ (unmatched) as "/s/...". */
static const char *logged_path(http_req *r, const char *route)
{
    const char *path = http_req_path(r);

    if (strstr(route, "{token}"))
        return route;
    if (strstr(path, "/s/") || !strcmp(path, "/s"))
        return "/s/...";
    return path;
}

/* Response observer (any thread): counters, latency and one access-log line. */
void api_observe(http_req *r, int status, void *ud)
{
    struct api *api = ud;
    const char *route = http_req_tag(r) ? http_req_tag(r) : "unmatched";
    double secs = util_now_mono() - http_req_start(r);
    char labels[256], st[8], ms[24];

    snprintf(labels, sizeof labels, "route=\"%s\",method=\"%s\",status=\"%d\"", route,
             http_req_method(r), status);
    metrics_add(api->metrics, "pixplane_http_requests_total", labels, 1);
    snprintf(labels, sizeof labels, "route=\"%s\"", route);
    metrics_observe(api->metrics, "pixplane_http_request_duration_seconds", labels, secs);
    if (!api->cfg->access_log)
        return;
    snprintf(st, sizeof st, "%d", status);
    snprintf(ms, sizeof ms, "%.3f", secs * 1000);
    /* the path only: query strings can carry tokens and signatures */
    log_info(http_req_id(r), "http_request", "", "method", http_req_method(r), "path",
             logged_path(r, route), "route", route, "status", st, "ms", ms);
}

void api_count(struct api *api, const char *name, const char *labels, double v)
{
    metrics_add(api->metrics, name, labels ? labels : "", v);
}

/* Samples the gauges and renders every family into out. scraping: the scrape itself is an
 * API request in flight (not counted). 0 or -1. */
static int render(struct api *api, int scraping, buf *out)
{
    char err[ERR_MAX];
    pg_conn *db = pg_acquire(api->pg, 0.5, err);
    PGresult *r;

    metrics_set(api->metrics, "pixplane_http_inflight_requests", "",
                http_server_inflight(api->http) - scraping);
    metrics_set(api->metrics, "pixplane_sse_streams", "", (double)stream_hub_count(api->streams));
    if (db && (r = pg_exec(db, "outbox_backlog", 0, NULL, err))) {
        metrics_set(api->metrics, "pixplane_outbox_backlog", "", (double)pg_i64(r, 0, 0));
        PQclear(r);
    }
    pg_release(db);
    return metrics_render(api->metrics, out);
}

/* GET /metrics on the public listener: admin token only (the figures are operational, and
 * counters such as dedup hits must not be watched by users). */
void api_metrics(struct api_call *c)
{
    buf out = {0};

    if (render(c->api, 1, &out) < 0)
        api_error(c, 500, "internal", "out of memory");
    else
        http_respond(c->req, 200, "text/plain; version=0.0.4", out.data, out.len);
    buf_free(&out);
}

/* The operations listener (PIXPLANE_OPS_LISTEN), on its own thread, for Prometheus. */
static int ops_render(buf *out, void *ud)
{
    return render(ud, 0, out);
}

static int ops_ready(void *ud)
{
    const struct api *api = ud;

    return !api->draining;
}

int api_ops_start(struct api *api, char *err)
{
    if (!api->cfg->ops_listen[0])
        return 0;
    api->ops = opshttp_start(api->cfg->ops_listen, ops_render, ops_ready, api, err);
    return api->ops ? 0 : -1;
}
