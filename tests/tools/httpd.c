/* httpd: a small server on the http, pool and router modules for the integration tests:
 * GET /hello, POST /echo, GET /sleep?ms=N, GET /id; SIGTERM drains and exits 0. */
#include <ev.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "http.h"
#include "log.h"
#include "pool.h"
#include "router.h"

typedef void (*route_fn)(http_req *req);

struct app {
    struct ev_loop *loop;
    http_server *http;
    ev_timer drain;
    double drain_secs; /* --drain: how long SIGTERM waits for answers in flight */
    double deadline;
};

static void hello(http_req *req)
{
    http_respond(req, 200, "text/plain", "hello\n", 6);
}

static void echo(http_req *req)
{
    size_t len;
    const char *body = http_req_body(req, &len);

    http_respond(req, 200, "application/octet-stream", body, len);
}

static void sleep_ms(http_req *req)
{
    char v[16], msg[64];
    int ms = 0;

    if (http_req_query_param(req, "ms", v, sizeof v) == 1)
        ms = atoi(v);
    if (ms < 0 || ms > 30000) {
        http_respond_error(req, 400, "bad_request", "ms out of range");
        return;
    }
    usleep((useconds_t)ms * 1000);
    snprintf(msg, sizeof msg, "slept %d\n", ms);
    http_respond(req, 200, "text/plain", msg, strlen(msg));
}

static void show_id(http_req *req)
{
    const char *id = http_req_id(req);

    http_respond(req, 200, "text/plain", id, strlen(id));
}

static const struct route routes[] = {
    {"GET", "/hello", (void *)hello, 0},
    {"POST", "/echo", (void *)echo, 0},
    {"GET", "/sleep", (void *)sleep_ms, 0},
    {"GET", "/id", (void *)show_id, 0},
};

static void handle(http_req *req, void *tctx, void *ud)
{
    char allow[64];
    int status = 404;
    const struct route *r = router_match(routes, ARRAY_LEN(routes), http_req_method(req),
                                         http_req_path(req), NULL, allow, sizeof allow, &status);

    if (r) {
        ((route_fn)r->handler)(req);
        return;
    }
    if (status == 405 && http_resp_header(req, "Allow", allow) < 0)
        status = 500;
    http_respond_error(req, status, status == 405 ? "method_not_allowed" : "not_found",
                       status == 405 ? "method not allowed" : "no such route");
}

static void on_drain(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct app *a = w->data;

    if (http_server_inflight(a->http) == 0 || ev_now(loop) > a->deadline)
        ev_break(loop, EVBREAK_ALL);
}

static void on_signal(struct ev_loop *loop, ev_signal *w, int revents)
{
    struct app *a = w->data;

    if (ev_is_active(&a->drain))
        return;
    http_server_stop_accepting(a->http);
    a->deadline = ev_now(loop) + a->drain_secs;
    ev_timer_init(&a->drain, on_drain, 0., 0.01);
    a->drain.data = a;
    ev_timer_start(loop, &a->drain);
}

static void usage(void)
{
    fprintf(stderr, "usage: httpd --port N [--workers N] [--max-body N] [--max-header N] "
                    "[--header-timeout S] [--body-timeout S] [--min-body-rate B] "
                    "[--idle-timeout S] [--drain S] [--max-conns-per-addr N]\n");
    exit(2);
}

static void parse_args(int argc, char **argv, int *port, int *workers, struct http_limits *lim,
                       double *drain)
{
    static const struct option opts[] = {
        {"port", required_argument, NULL, 'p'},
        {"workers", required_argument, NULL, 'w'},
        {"max-body", required_argument, NULL, 'b'},
        {"max-header", required_argument, NULL, 'h'},
        {"header-timeout", required_argument, NULL, 't'},
        {"body-timeout", required_argument, NULL, 'B'},
        {"min-body-rate", required_argument, NULL, 'r'},
        {"max-conns-per-addr", required_argument, NULL, 'a'},
        {"idle-timeout", required_argument, NULL, 'i'},
        {"drain", required_argument, NULL, 'd'},
        {NULL, 0, NULL, 0},
    };
    int ch;

    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (ch) {
        case 'p':
            *port = atoi(optarg);
            break;
        case 'w':
            *workers = atoi(optarg);
            break;
        case 'b':
            lim->max_body_bytes = strtoul(optarg, NULL, 10);
            break;
        case 'h':
            lim->max_header_bytes = strtoul(optarg, NULL, 10);
            break;
        case 't':
            lim->header_timeout = atof(optarg);
            break;
        case 'B':
            lim->body_timeout = atof(optarg);
            break;
        case 'r':
            lim->min_body_rate = atof(optarg);
            break;
        case 'a':
            lim->max_conns_per_addr = atoi(optarg);
            break;
        case 'i':
            lim->idle_timeout = atof(optarg);
            break;
        case 'd':
            *drain = atof(optarg);
            break;
        default:
            usage();
        }
    }
    if (*port < 0 || *workers < 1)
        usage();
}

int main(int argc, char **argv)
{
    struct app a = {.loop = ev_default_loop(0), .drain_secs = 10};
    struct http_limits lim = {0};
    int port = -1, workers = 4;
    char err[ERR_MAX] = "";
    ev_signal sterm, sint;
    pool *p;

    parse_args(argc, argv, &port, &workers, &lim, &a.drain_secs);
    log_init("httpd", "warn");
    signal(SIGPIPE, SIG_IGN);
    p = pool_new(workers, 4096, NULL, NULL, NULL);
    a.http = p ? http_server_new(a.loop, &lim, p, handle, &a) : NULL;
    if (!a.http || http_server_listen(a.http, "127.0.0.1", port, err) < 0)
        fatal("startup_failed", "%s", err[0] ? err : "cannot create server");
    ev_signal_init(&sterm, on_signal, SIGTERM);
    ev_signal_init(&sint, on_signal, SIGINT);
    sterm.data = sint.data = &a;
    ev_signal_start(a.loop, &sterm);
    ev_signal_start(a.loop, &sint);
    printf("listening %d\n", http_server_port(a.http));
    fflush(stdout);
    ev_run(a.loop, 0);
    ev_signal_stop(a.loop, &sterm);
    ev_signal_stop(a.loop, &sint);
    ev_timer_stop(a.loop, &a.drain);
    http_server_free(a.http); /* before the pool: answers still on workers are dropped */
    pool_free(p);
    ev_loop_destroy(a.loop);
    return 0;
}
