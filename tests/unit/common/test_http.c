/* Unit tests for common/http.c: the connection state machine driven over a socketpair
 * (pipelining, the linger byte cap, stream close by the client, close during send). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>
#include "http.h"
#include "util.h"

struct srv {
    struct ev_loop *loop;
    pool *workers;
    http_server *http;
    ev_async quit;
    pthread_t thread;
    int client;
};

/* Stream owner object; on_close frees it. Counters are read by the test thread. */
struct owner {
    int in_open, closes_seen;
};
static int opens, closes, bad;

static void on_open_hello(http_stream *s, void *ud)
{
    struct owner *o = ud;

    o->in_open = 1;
    __atomic_add_fetch(&opens, 1, __ATOMIC_SEQ_CST);
    if (http_stream_send(s, "data: hello\n\n", 13) != 0)
        __atomic_store_n(&bad, 1, __ATOMIC_SEQ_CST);
    o->in_open = 0;
}

/* Overflows the stream's cap: the send closes it, and both s and o must stay usable. */
static void on_open_overflow(http_stream *s, void *ud)
{
    struct owner *o = ud;
    char big[256];

    memset(big, 'x', sizeof big);
    o->in_open = 1;
    __atomic_add_fetch(&opens, 1, __ATOMIC_SEQ_CST);
    if (http_stream_send(s, big, sizeof big) != -1 || http_stream_send(s, "y", 1) != -1)
        __atomic_store_n(&bad, 1, __ATOMIC_SEQ_CST);
    http_stream_close(s); /* a second close: harmless */
    (void)http_stream_header(s, "Host");
    o->in_open = 0;
}

static void on_close(http_stream *s, void *ud)
{
    struct owner *o = ud;

    if (o->in_open || o->closes_seen++)
        __atomic_store_n(&bad, 1, __ATOMIC_SEQ_CST); /* under a caller's feet, or twice */
    __atomic_add_fetch(&closes, 1, __ATOMIC_SEQ_CST);
    free(o);
}

static void handler(http_req *req, void *tctx, void *ud)
{
    const char *path = http_req_path(req);
    struct owner *o;

    if (strncmp(path, "/stream", 7) != 0) {
        http_respond(req, 200, "text/plain", path, strlen(path));
        return;
    }
    o = calloc(1, sizeof *o);
    if (!o) {
        http_respond_error(req, 503, "unavailable", "out of memory");
        return;
    }
    http_respond_stream(req, "text/event-stream", 64,
                        strcmp(path, "/stream-overflow") ? on_open_hello : on_open_overflow,
                        on_close, o);
}

static void on_quit(struct ev_loop *loop, ev_async *w, int revents)
{
    ev_break(loop, EVBREAK_ALL);
}

static void *loop_main(void *arg)
{
    struct srv *s = arg;

    ev_run(s->loop, 0);
    return NULL;
}

static void srv_start(struct srv *s)
{
    struct http_limits lim = {.max_body_bytes = 1024};
    struct timeval tv = {.tv_sec = 5};
    int sv[2];

    opens = closes = bad = 0;
    s->loop = ev_loop_new(0);
    s->workers = pool_new(1, 16, NULL, NULL, NULL);
    assert_non_null(s->workers);
    s->http = http_server_new(s->loop, &lim, s->workers, handler, NULL);
    assert_non_null(s->http);
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    assert_int_equal(http_server_adopt(s->http, sv[0]), 0);
    s->client = sv[1];
    (void)setsockopt(s->client, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    (void)setsockopt(s->client, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    ev_async_init(&s->quit, on_quit);
    ev_async_start(s->loop, &s->quit);
    assert_int_equal(pthread_create(&s->thread, NULL, loop_main, s), 0);
}

static void srv_stop(struct srv *s)
{
    ev_async_send(s->loop, &s->quit);
    pthread_join(s->thread, NULL);
    pool_free(s->workers); /* answers already given are queued for the loop */
    http_server_free(s->http);
    ev_async_stop(s->loop, &s->quit);
    ev_loop_destroy(s->loop);
    close(s->client);
    assert_int_equal(__atomic_load_n(&bad, __ATOMIC_SEQ_CST), 0);
    assert_int_equal(opens, closes);
}

/* Reads until EOF, error, or `until` appears; returns what was read (caller frees). */
static char *read_until(int fd, const char *until)
{
    size_t len = 0, cap = 1 << 16;
    char *b = calloc(1, cap + 1);
    ssize_t n;

    assert_non_null(b);
    while (len < cap && (n = read(fd, b + len, cap - len)) > 0) {
        len += (size_t)n;
        b[len] = '\0';
        if (until && strstr(b, until))
            break;
    }
    return b;
}

/* Sends req whole, then reads as read_until does. */
static char *exchange(struct srv *s, const char *req, const char *until)
{
    assert_int_equal(write(s->client, req, strlen(req)), (ssize_t)strlen(req));
    return read_until(s->client, until);
}

/* Waits (bounded) until on_close ran once. */
static void expect_one_close(void)
{
    for (int i = 0; i < 500 && __atomic_load_n(&closes, __ATOMIC_SEQ_CST) < 1; i++)
        usleep(10000);
    assert_int_equal(__atomic_load_n(&closes, __ATOMIC_SEQ_CST), 1);
}

static void test_pipelining_answers_in_order(void **state)
{
    static const char two[] = "GET /first HTTP/1.1\r\nHost: t\r\n\r\n"
                              "GET /second HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
    struct srv s;
    char *out, *a, *b;

    srv_start(&s);
    assert_int_equal(write(s.client, two, sizeof two - 1), (ssize_t)(sizeof two - 1));
    out = read_until(s.client, NULL); /* the second asks to close: EOF ends it */
    a = strstr(out, "\r\n\r\n/first");
    b = strstr(out, "\r\n\r\n/second");
    assert_non_null(a);
    assert_non_null(b);
    assert_true(a < b);
    free(out);
    srv_stop(&s);
}

/* After an error answer the server discards input for a while, but at most
 * HTTP_LINGER_MAX (1 MiB) bytes: a client pushing more is cut off, not drained. */
static void test_linger_byte_cap_applies(void **state)
{
    static const char big[] = "POST /x HTTP/1.1\r\nHost: t\r\nContent-Length: 100000\r\n\r\n";
    size_t sent = 0, limit = 8u << 20;
    char chunk[16384];
    struct srv s;
    char *out;
    ssize_t n = 0;

    srv_start(&s);
    assert_int_equal(write(s.client, big, sizeof big - 1), (ssize_t)(sizeof big - 1));
    out = read_until(s.client, "payload_too_large");
    assert_non_null(strstr(out, "413"));
    free(out);
    memset(chunk, 'z', sizeof chunk);
    while (sent < limit && (n = send(s.client, chunk, sizeof chunk, MSG_NOSIGNAL)) > 0)
        sent += (size_t)n;
    assert_true(n < 0);
    assert_true(errno == EPIPE || errno == ECONNRESET);
    assert_true(sent < limit);
    srv_stop(&s);
}

static void test_stream_closed_by_client(void **state)
{
    static const char req[] = "GET /stream HTTP/1.1\r\nHost: t\r\n\r\n";
    struct srv s;
    char *out;

    srv_start(&s);
    out = exchange(&s, req, "data: hello\n\n");
    assert_non_null(strstr(out, "text/event-stream"));
    assert_non_null(strstr(out, "data: hello"));
    free(out);
    shutdown(s.client, SHUT_WR);
    expect_one_close();
    srv_stop(&s);
}

/* The send that overflows closes the stream; on_close still runs once, after on_open. */
static void test_stream_close_during_send(void **state)
{
    static const char req[] = "GET /stream-overflow HTTP/1.1\r\nHost: t\r\n\r\n";
    struct srv s;
    char *out;

    srv_start(&s);
    out = exchange(&s, req, NULL); /* EOF: the server closed it */
    assert_null(strstr(out, "xxxx"));
    free(out);
    expect_one_close();
    srv_stop(&s);
}

/* An open stream at shutdown: http_server_free runs its on_close. */
static void test_stream_open_at_free(void **state)
{
    static const char req[] = "GET /stream HTTP/1.1\r\nHost: t\r\n\r\n";
    struct srv s;

    srv_start(&s);
    free(exchange(&s, req, "data: hello\n\n"));
    srv_stop(&s); /* asserts opens == closes */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pipelining_answers_in_order),
        cmocka_unit_test(test_linger_byte_cap_applies),
        cmocka_unit_test(test_stream_closed_by_client),
        cmocka_unit_test(test_stream_close_during_send),
        cmocka_unit_test(test_stream_open_at_free),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
