/* opshttp: an ev loop, one handler thread and the common HTTP server, on a thread of their
 * own; the service's counters are rendered by its callback at each scrape. */
#include "opshttp.h"

#include <ev.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"

struct opshttp {
    struct ev_loop *loop;
    ev_async quit;
    pool *workers;
    http_server *server;
    opshttp_render_fn render;
    opshttp_ready_fn ready;
    void *ud;
    pthread_t thread;
    int started;
};

static void handle(http_req *req, void *tctx, void *arg)
{
    struct opshttp *h = arg;
    const char *path = http_req_path(req);
    int ok;
    buf b = {0};

    if (strcmp(http_req_method(req), "GET"))
        return http_respond_error(req, 405, "method_not_allowed", "GET only");
    if (!strcmp(path, "/healthz"))
        return http_respond(req, 200, "application/json", "{\"status\":\"ok\"}", 15);
    if (!strcmp(path, "/readyz")) {
        ok = !h->ready || h->ready(h->ud);
        return http_respond(req, ok ? 200 : 503, "application/json",
                            ok ? "{\"status\":\"ready\"}" : "{\"status\":\"unready\"}",
                            ok ? 18 : 20);
    }
    if (strcmp(path, "/metrics"))
        return http_respond_error(req, 404, "not_found", "try /metrics, /healthz or /readyz");
    if (h->render(&b, h->ud) < 0)
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
    struct opshttp *h = arg;

    ev_run(h->loop, 0);
    return NULL;
}

static int setup(struct opshttp *h, const char *listen, char *err)
{
    struct http_limits lim = {.max_connections = 64};
    char host[128];
    int port;

    if (util_split_hostport(listen, host, sizeof host, &port) < 0)
        return err_set(err, "bad listen address '%s'", listen), -1;
    if (!(h->loop = ev_loop_new(EVFLAG_AUTO)) || !(h->workers = pool_new(1, 64, NULL, NULL, h)) ||
        !(h->server = http_server_new(h->loop, &lim, h->workers, handle, h)))
        return err_set(err, "cannot create the metrics server"), -1;
    ev_async_init(&h->quit, on_quit);
    ev_async_start(h->loop, &h->quit);
    return http_server_listen(h->server, host, port, err);
}

opshttp *opshttp_start(const char *listen, opshttp_render_fn render, opshttp_ready_fn ready,
                       void *ud, char *err)
{
    struct opshttp *h = calloc(1, sizeof *h);

    if (!h)
        return err_set(err, "out of memory"), NULL;
    h->render = render, h->ready = ready, h->ud = ud;
    if (setup(h, listen, err) == 0 && pthread_create(&h->thread, NULL, serve, h) == 0) {
        h->started = 1;
        return h;
    }
    if (!err[0])
        err_set(err, "cannot start the metrics thread");
    opshttp_stop(h);
    return NULL;
}

int opshttp_port(const opshttp *h)
{
    return http_server_port(h->server);
}

void opshttp_stop(opshttp *h)
{
    if (!h)
        return;
    if (h->started) {
        ev_async_send(h->loop, &h->quit);
        pthread_join(h->thread, NULL);
    }
    pool_free(h->workers); /* answers requests in flight first */
    http_server_free(h->server);
    if (h->loop) {
        ev_async_stop(h->loop, &h->quit);
        ev_loop_destroy(h->loop);
    }
    free(h);
}
