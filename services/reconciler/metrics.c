/* metrics: counters over the daemon's passes, served as Prometheus text on GET /metrics and
 * as liveness on GET /healthz by a small HTTP server on a thread of its own. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"
#include "log.h"
#include "rec.h"

struct rec_metrics {
    pthread_mutex_t mu;
    struct rec_counts total[REC_NSWEEPS];
    long sweep_failures[REC_NSWEEPS];
    long passes, failed_passes;
    long last_actions, last_unrepaired;
    double last_seconds;
    time_t last_end;
    int leader;
};

struct rec_http {
    struct ev_loop *loop;
    ev_async quit;
    pool *workers;
    http_server *server;
    rec_metrics *m;
    pthread_t thread;
};

rec_metrics *rec_metrics_new(void)
{
    rec_metrics *m = calloc(1, sizeof *m);

    if (m)
        pthread_mutex_init(&m->mu, NULL);
    return m;
}

void rec_metrics_free(rec_metrics *m)
{
    if (!m)
        return;
    pthread_mutex_destroy(&m->mu);
    free(m);
}

void rec_metrics_add(rec_metrics *m, const struct rec_report *rep)
{
    int failed = 0;

    pthread_mutex_lock(&m->mu);
    m->last_actions = m->last_unrepaired = 0;
    for (int i = 0; i < REC_NSWEEPS; i++) {
        const struct rec_counts *c = &rep->sweep[i];
        m->total[i].examined += c->examined, m->total[i].actions += c->actions;
        m->total[i].errors += c->errors, m->total[i].seconds += c->seconds;
        m->last_actions += c->actions, m->last_unrepaired += c->unrepaired;
        m->sweep_failures[i] += c->state == REC_FAILED;
        failed |= c->state == REC_FAILED;
    }
    m->passes++, m->failed_passes += failed;
    m->last_seconds = rep->seconds, m->last_end = time(NULL);
    pthread_mutex_unlock(&m->mu);
}

void rec_metrics_leader(rec_metrics *m, int leader)
{
    pthread_mutex_lock(&m->mu);
    m->leader = leader;
    pthread_mutex_unlock(&m->mu);
}

/* One counter family with a value per sweep. */
static int family(buf *b, const rec_metrics *m, const char *name, const char *help, int what)
{
    int rc = buf_printf(b, "# HELP %s %s\n# TYPE %s counter\n", name, help, name);

    for (int i = 0; i < REC_NSWEEPS && rc == 0; i++) {
        const struct rec_counts *c = &m->total[i];
        double v = what == 0   ? (double)c->examined
                   : what == 1 ? (double)c->actions
                   : what == 2 ? (double)c->errors
                   : what == 3 ? (double)m->sweep_failures[i]
                               : c->seconds;
        rc = buf_printf(b, "%s{sweep=\"%s\"} %.6g\n", name, rec_sweep_name(i), v);
    }
    return rc;
}

static int render(buf *b, rec_metrics *m)
{
    int rc;

    pthread_mutex_lock(&m->mu);
    rc = family(b, m, "pixplane_reconciler_examined_total", "candidates looked at", 0);
    rc = rc ? rc : family(b, m, "pixplane_reconciler_actions_total", "repairs made", 1);
    rc = rc ? rc : family(b, m, "pixplane_reconciler_errors_total", "repairs that failed", 2);
    rc = rc ? rc : family(b, m, "pixplane_reconciler_sweep_failures_total", "sweeps stopped", 3);
    rc = rc ? rc : family(b, m, "pixplane_reconciler_sweep_seconds_total", "time in sweeps", 4);
    rc = rc ? rc
            : buf_printf(b,
                         "# TYPE pixplane_reconciler_passes_total counter\n"
                         "pixplane_reconciler_passes_total %ld\n"
                         "# TYPE pixplane_reconciler_failed_passes_total counter\n"
                         "pixplane_reconciler_failed_passes_total %ld\n"
                         "# TYPE pixplane_reconciler_last_pass_actions gauge\n"
                         "pixplane_reconciler_last_pass_actions %ld\n"
                         "# TYPE pixplane_reconciler_last_pass_unrepaired gauge\n"
                         "pixplane_reconciler_last_pass_unrepaired %ld\n"
                         "# TYPE pixplane_reconciler_last_pass_seconds gauge\n"
                         "pixplane_reconciler_last_pass_seconds %.3f\n"
                         "# TYPE pixplane_reconciler_last_pass_end_timestamp_seconds gauge\n"
                         "pixplane_reconciler_last_pass_end_timestamp_seconds %lld\n"
                         "# TYPE pixplane_reconciler_leader gauge\n"
                         "pixplane_reconciler_leader %d\n",
                         m->passes, m->failed_passes, m->last_actions, m->last_unrepaired,
                         m->last_seconds, (long long)m->last_end, m->leader);
    pthread_mutex_unlock(&m->mu);
    return rc;
}

static void handle(http_req *req, void *tctx, void *ud)
{
    struct rec_http *h = ud;
    const char *path = http_req_path(req);
    buf b = {0};

    if (strcmp(http_req_method(req), "GET"))
        return http_respond_error(req, 405, "method_not_allowed", "GET only");
    if (!strcmp(path, "/healthz"))
        return http_respond(req, 200, "application/json", "{\"status\":\"ok\"}", 15);
    if (strcmp(path, "/metrics"))
        return http_respond_error(req, 404, "not_found", "try /metrics or /healthz");
    if (render(&b, h->m) < 0)
        http_respond_error(req, 500, "internal", "out of memory");
    else
        http_respond(req, 200, "text/plain; version=0.0.4", b.data, b.len);
    buf_free(&b);
}

static void on_quit(struct ev_loop *loop, ev_async *w, int revents)
{
    ev_break(loop, EVBREAK_ALL);
}

static void *serve(void *arg)
{
    struct rec_http *h = arg;

    ev_run(h->loop, 0);
    return NULL;
}

static int split_listen(const char *listen, char *host, size_t hostlen, int *port)
{
    const char *colon = strrchr(listen, ':');
    char *end;
    long p;

    if (!colon || (size_t)(colon - listen) >= hostlen)
        return -1;
    memcpy(host, listen, (size_t)(colon - listen));
    host[colon - listen] = '\0';
    p = strtol(colon + 1, &end, 10);
    if (*end || p < 0 || p > 65535)
        return -1;
    *port = (int)p;
    return 0;
}

/* Everything but the thread; the caller frees h on failure with rec_http_stop. */
static int http_setup(struct rec_http *h, const char *listen, char *err)
{
    struct http_limits lim = {.max_connections = 64};
    char host[128];
    int port;

    if (split_listen(listen, host, sizeof host, &port) < 0)
        return err_set(err, "bad listen address '%s'", listen), -1;
    if (!(h->loop = ev_loop_new(EVFLAG_AUTO)) || !(h->workers = pool_new(1, 64, NULL, NULL, h)) ||
        !(h->server = http_server_new(h->loop, &lim, h->workers, handle, h)))
        return err_set(err, "cannot create the metrics server"), -1;
    ev_async_init(&h->quit, on_quit);
    ev_async_start(h->loop, &h->quit);
    return http_server_listen(h->server, host, port, err);
}

rec_http *rec_http_start(const char *listen, rec_metrics *m, char *err)
{
    struct rec_http *h = calloc(1, sizeof *h);

    if (!h)
        return err_set(err, "out of memory"), NULL;
    h->m = m;
    if (http_setup(h, listen, err) < 0 || pthread_create(&h->thread, NULL, serve, h) != 0) {
        if (!err[0])
            err_set(err, "cannot start the metrics thread");
        pool_free(h->workers);
        http_server_free(h->server);
        if (h->loop)
            ev_loop_destroy(h->loop);
        free(h);
        return NULL;
    }
    return h;
}

void rec_http_stop(rec_http *h)
{
    if (!h)
        return;
    ev_async_send(h->loop, &h->quit);
    pthread_join(h->thread, NULL);
    pool_free(h->workers); /* finishes requests in flight first */
    http_server_free(h->server);
    ev_async_stop(h->loop, &h->quit);
    ev_loop_destroy(h->loop);
    free(h);
}
