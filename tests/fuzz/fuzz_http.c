/* Fuzz harness: bytes from a client through the real HTTP connection state machine
 * (common/http.c over a socketpair: heads, chunked bodies, pipelining, Expect, streams). */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fuzz.h"
#include "http.h"
#include "log.h"
#include "util.h"

#define MAX_INPUT (64u << 10)
#define MAX_TURNS 2000

static struct ev_loop *loop;
static pool *workers;
static http_server *srv;
static ev_timer guard;

static void on_open(http_stream *s, void *ud)
{
    if (http_stream_send(s, "data: a\n\n", 9) == 0 && *(char *)ud == 'c')
        http_stream_close(s);
}

static void on_close(http_stream *s, void *ud)
{
    free(ud);
}

/* Answers by path: a stream, an echo of what was parsed, or an error. */
static void handler(http_req *req, void *tctx, void *ud)
{
    const char *path = http_req_path(req);
    char out[256], *mode;
    size_t blen = 0;

    (void)http_req_body(req, &blen);
    if (!strncmp(path, "/stream", 7) && (mode = malloc(1))) {
        *mode = path[7] == 'c' ? 'c' : 'o';
        http_respond_stream(req, "text/event-stream", 64, on_open, on_close, mode);
        return;
    }
    if (!strcmp(path, "/error")) {
        http_respond_error(req, 422, "bad", "fuzz");
        return;
    }
    snprintf(out, sizeof out, "%s %s ?%s %zu %s", http_req_method(req), path, http_req_query(req),
             blen, http_req_header(req, "X-A") ? "a" : "-");
    if (http_resp_header(req, "X-Echo", "1") < 0)
        return http_respond_error(req, 503, "unavailable", "header");
    http_respond(req, 200, "text/plain", out, strlen(out));
}

static int bodyless(const char *method, const char *path)
{
    return !strcmp(path, "/redirect");
}

static void on_guard(struct ev_loop *l, ev_timer *w, int revents) {}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    struct http_limits lim = {.max_header_bytes = 4096, .max_body_bytes = 8192};

    log_init("fuzz_http", "error");
    loop = ev_loop_new(0);
    workers = pool_new(1, 1024, NULL, NULL, NULL);
    srv = http_server_new(loop, &lim, workers, handler, NULL);
    if (!loop || !workers || !srv)
        abort();
    http_server_set_bodyless(srv, bodyless);
    ev_timer_init(&guard, on_guard, 0.005, 0.005);
    ev_timer_start(loop, &guard);
    return 0;
}

/* Reads what the server sent; 1 at EOF (the server closed), else 0. */
static int drain(int fd)
{
    char buf[16384];
    ssize_t n;

    while ((n = read(fd, buf, sizeof buf)) > 0)
        ;
    return n == 0 || (n < 0 && errno != EAGAIN);
}

/* The input is split into writes: each piece is preceded by its length byte (0: the rest). */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int sv[2], eof = 0, turns = 0;
    size_t off = 0;

    if (size > MAX_INPUT || socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
        return 0;
    if (fcntl(sv[1], F_SETFL, O_NONBLOCK) < 0 || http_server_adopt(srv, sv[0]) < 0) {
        close(sv[1]);
        return 0;
    }
    while (off < size && !eof) {
        size_t piece = data[off] ? data[off] : size;
        off++;
        if (piece > size - off)
            piece = size - off;
        if (piece && write(sv[1], data + off, piece) < 0 && errno != EAGAIN)
            break;
        off += piece;
        ev_run(loop, EVRUN_NOWAIT);
        eof = drain(sv[1]);
    }
    shutdown(sv[1], SHUT_WR); /* the client is done: every path must end in a close */
    while (!eof && turns++ < MAX_TURNS) {
        ev_run(loop, turns % 4 ? EVRUN_NOWAIT : EVRUN_ONCE); /* ONCE: a worker's answer */
        eof = drain(sv[1]);
    }
    close(sv[1]);
    for (turns = 0; http_server_connections(srv) > 0 && turns < MAX_TURNS; turns++)
        ev_run(loop, turns % 4 == 3 ? EVRUN_ONCE : EVRUN_NOWAIT); /* prepare reaps */
    if (http_server_connections(srv) > 0)
        abort(); /* a connection the client left is still open: a leak or a hang */
    return 0;
}
