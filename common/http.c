/* http: HTTP/1.1 server. The libev loop thread accepts, parses (http-parser) and writes;
 * complete requests run on the worker pool and come back through a locked queue + ev_async. */
#include "http.h"

#include <errno.h>
#include <fcntl.h>
#include <http_parser.h>
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "json.h"
#include "log.h"

#define HTTP_IN_CAP 16384    /* read buffer; unparsed bytes never exceed it */
#define HTTP_MAX_HEADERS 64  /* more header lines: 431 */
#define HTTP_KEEP_CAP 65536  /* request buffers larger than this are freed between requests */
#define HTTP_LINGER_SECS 2.0 /* after an error response: drain input this long, then close */
#define HTTP_LINGER_MAX (1u << 20)
#define HTTP_ACCEPT_BATCH 64
#define HTTP_BACKLOG 4096
#define HTTP_ADDR_BUCKETS 1024       /* client-address count table */
#define HTTP_BATCH 64                /* requests handed to the pool per lock round */
#define HTTP_STREAM_MAX (256u << 10) /* default unsent bytes a stream may hold */

static const char continue_line[] = "HTTP/1.1 100 Continue\r\n\r\n";

/* CS_HEAD also covers a fresh connection before its first byte (begun == 0). CS_CLOSED:
 * closed, watchers stopped, waiting in the server's reap list for the loop's prepare step
 * to run its on_close and free it; nothing else may change its state. */
enum conn_state {
    CS_IDLE,
    CS_HEAD,
    CS_BODY,
    CS_WORKER,
    CS_WRITING,
    CS_LINGER,
    CS_STREAM,
    CS_CLOSED
};

static const char *const conn_state_names[] = {
    [CS_IDLE] = "idle",     [CS_HEAD] = "head",       [CS_BODY] = "body",
    [CS_WORKER] = "worker", [CS_WRITING] = "writing", [CS_LINGER] = "linger",
    [CS_STREAM] = "stream", [CS_CLOSED] = "closed",
};

/* The hand-back queue. Outlives the server while requests are still on workers. */
struct http_hub {
    pthread_mutex_t mu;
    http_req *head, *tail; /* answered, waiting for the loop */
    int outstanding;       /* handed to the pool and not yet taken back by the loop */
    int dead;              /* server freed: responders free their request themselves */
    int draining;          /* stop_accepting called: answers say Connection: close */
    ev_async async;
    struct ev_loop *loop;
    http_handler_fn fn;
    void *ud;
    http_observer_fn observe;
    void *oud;
};

struct hdr_ent {
    uint32_t name, value; /* offsets into http_req.head */
};

struct http_req {
    struct http_conn *conn; /* loop thread only; NULL once the connection is gone */
    struct http_hub *hub;
    http_req *next; /* in the server's dispatch batch, then in the hub's answered queue */
    buf head;       /* url, header names and values, decoded path, query: NUL-separated */
    struct hdr_ent hdrs[HTTP_MAX_HEADERS];
    int nhdrs;
    int piece; /* what head ends with: 0 url, 1 header name, 2 header value */
    uint32_t path_off, query_off;
    buf body;
    buf rhdrs; /* response header lines from http_resp_header */
    buf out;   /* response head */
    buf obody; /* response body */
    const char *method;
    char id[65];
    char peer[48]; /* the client address (set once per connection) */
    double start;
    int keep_alive, is_head, on_worker, failed;
    const char *tag;         /* http_req_set_tag */
    http_observer_fn before; /* http_req_before_respond, once */
    void *before_arg;
    http_stream_fn sopen, sclose; /* set by http_respond_stream */
    void *sud;
    size_t smax;
};

struct http_conn {
    http_server *s;
    struct http_conn *prev, *next;
    struct http_conn *reap_next; /* in the server's reap list once CS_CLOSED */
    int fd;
    enum conn_state state;
    ev_io rio, wio;
    ev_timer tmr;
    http_parser parser;
    http_req *req;  /* one per connection, reused: requests are answered one at a time */
    int err_status; /* set by a parser callback that rejects the request */
    int msg_done;   /* parser paused on a complete request */
    int begun;      /* bytes of the current request seen */
    int eof, rd_off, linger;
    int opened;       /* a stream whose on_open ran: on_close is owed */
    size_t cont_left; /* bytes of "100 Continue" still to write */
    size_t wpos;      /* response bytes written, head then body */
    size_t lingered;
    double body_due;         /* monotonic (loop) time the body must be in by */
    struct addr_count *peer; /* the client address's count; NULL if not counted */
    size_t in_len;
    char in[HTTP_IN_CAP];
};

/* Open connections per client address (IPv4 as v4-mapped IPv6), for max_conns_per_addr. */
struct addr_count {
    struct addr_count *next;
    unsigned char addr[16];
    int n;
};

struct http_server {
    struct ev_loop *loop;
    struct http_limits lim;
    pool *workers;
    struct http_hub *hub;
    int lfd, port, draining, nconns;
    ev_io aio;
    ev_timer aretry;
    struct http_conn *conns;
    struct http_conn *reap;       /* closed connections the prepare step frees */
    http_req *batch, *batch_tail; /* complete requests not yet handed to the pool */
    ev_prepare prep;              /* hands the batch over before the loop blocks */
    http_bodyless_fn bodyless;
    uint64_t rng;
    struct addr_count *addrs[HTTP_ADDR_BUCKETS];
};

static int conn_parse(struct http_conn *c);
static int conn_flush(struct http_conn *c);

/* ---- small helpers ---- */

static void limits_fill(struct http_limits *l, const struct http_limits *in)
{
    if (in)
        *l = *in;
    if (!l->max_header_bytes)
        l->max_header_bytes = 16384;
    if (!l->max_body_bytes)
        l->max_body_bytes = 1 << 20;
    if (l->header_timeout <= 0)
        l->header_timeout = 10;
    if (l->body_timeout <= 0)
        l->body_timeout = 30;
    if (l->idle_timeout <= 0)
        l->idle_timeout = 60;
    if (l->max_connections <= 0)
        l->max_connections = 10000;
    if (l->min_body_rate <= 0)
        l->min_body_rate = 4096;
}

static uint64_t rng_next(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static int id_ok(const char *v)
{
    size_t n = 0;

    if (!v)
        return 0;
    for (; v[n]; n++) {
        char ch = v[n];
        int ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
                 ch == '.' || ch == '_' || ch == '-';
        if (!ok || n >= 64)
            return 0;
    }
    return n > 0;
}

static int hexdig(int ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/* Decodes one character at *p (advancing it): %XX, '+' as space if plus; -1 on a bad
 * escape or %00. */
static int pct_next(const char **p, const char *end, int plus)
{
    const char *s = *p;
    int hi, lo;

    if (*s != '%') {
        *p = s + 1;
        return plus && *s == '+' ? ' ' : (unsigned char)*s;
    }
    if (end - s < 3 || (hi = hexdig(s[1])) < 0 || (lo = hexdig(s[2])) < 0 || !(hi | lo))
        return -1;
    *p = s + 3;
    return hi << 4 | lo;
}

/* Decodes [s, end) into out (NUL-terminated, at most outlen bytes). Length or -1 (bad
 * escape), -2 (does not fit). */
static long pct_decode(const char *s, const char *end, int plus, char *out, size_t outlen)
{
    size_t n = 0;

    while (s < end) {
        int ch = pct_next(&s, end, plus);
        if (ch < 0)
            return -1;
        if (n + 1 >= outlen)
            return -2;
        out[n++] = (char)ch;
    }
    if (outlen)
        out[n] = '\0';
    return (long)n;
}

static const char *http_date(void)
{
    static __thread time_t last;
    static __thread char date[40];
    time_t now = time(NULL);
    struct tm tm;

    if (now != last) { /* IMF-fixdate, locale-independent */
        static const char days[] = "SunMonTueWedThuFriSat";
        static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
        gmtime_r(&now, &tm);
        snprintf(date, sizeof date, "%.3s, %02d %.3s %04d %02d:%02d:%02d GMT",
                 days + 3 * tm.tm_wday, tm.tm_mday, months + 3 * tm.tm_mon, tm.tm_year + 1900,
                 tm.tm_hour, tm.tm_min, tm.tm_sec);
        last = now;
    }
    return date;
}

const char *http_status_text(int status)
{
    static const struct {
        short code;
        const char *text;
    } texts[] = {
        {100, "Continue"},
        {200, "OK"},
        {201, "Created"},
        {202, "Accepted"},
        {204, "No Content"},
        {206, "Partial Content"},
        {301, "Moved Permanently"},
        {302, "Found"},
        {304, "Not Modified"},
        {400, "Bad Request"},
        {401, "Unauthorized"},
        {403, "Forbidden"},
        {404, "Not Found"},
        {405, "Method Not Allowed"},
        {408, "Request Timeout"},
        {409, "Conflict"},
        {410, "Gone"},
        {411, "Length Required"},
        {412, "Precondition Failed"},
        {413, "Payload Too Large"},
        {415, "Unsupported Media Type"},
        {416, "Range Not Satisfiable"},
        {417, "Expectation Failed"},
        {422, "Unprocessable Entity"},
        {429, "Too Many Requests"},
        {431, "Request Header Fields Too Large"},
        {500, "Internal Server Error"},
        {501, "Not Implemented"},
        {502, "Bad Gateway"},
        {503, "Service Unavailable"},
        {504, "Gateway Timeout"},
    };

    for (size_t i = 0; i < ARRAY_LEN(texts); i++)
        if (texts[i].code == status)
            return texts[i].text;
    return status < 400 ? "OK" : status < 500 ? "Client Error" : "Server Error";
}

/* ---- requests ---- */

static http_req *req_new(struct http_hub *hub)
{
    http_req *r = calloc(1, sizeof *r);

    if (r)
        r->hub = hub;
    return r;
}

static void req_free(http_req *r)
{
    if (!r)
        return;
    buf_free(&r->head);
    buf_free(&r->body);
    buf_free(&r->rhdrs);
    buf_free(&r->out);
    buf_free(&r->obody);
    free(r);
}

static void buf_recycle(buf *b)
{
    if (b->cap > HTTP_KEEP_CAP)
        buf_free(b);
    else
        buf_reset(b);
}

static void req_reset(http_req *r)
{
    buf_recycle(&r->head);
    buf_recycle(&r->body);
    buf_recycle(&r->rhdrs);
    buf_recycle(&r->out);
    buf_recycle(&r->obody);
    r->nhdrs = r->piece = 0;
    r->path_off = r->query_off = 0;
    r->method = NULL;
    r->id[0] = '\0';
    r->keep_alive = r->is_head = r->failed = 0;
    r->sopen = r->sclose = NULL;
    r->tag = NULL;
    r->before = NULL;
    r->before_arg = NULL;
    r->sud = NULL;
}

static void req_gen_id(http_server *s, http_req *r)
{
    uint64_t v = rng_next(&s->rng);
    unsigned char b[8];

    for (int i = 0; i < 8; i++)
        b[i] = (unsigned char)(v >> (8 * i));
    util_hex(b, sizeof b, r->id);
}

static char *put_str(char *p, const char *str)
{
    size_t n = strlen(str);

    memcpy(p, str, n);
    return p + n;
}

static char *put_num(char *p, size_t v)
{
    char t[24];
    int i = 0;

    do
        t[i++] = (char)('0' + v % 10);
    while (v /= 10);
    while (i)
        *p++ = t[--i];
    return p;
}

/* Builds the whole response into r->out (head) and r->obody, with memcpy rather than
 * printf: this runs once per request. 0 or -1 (out of memory). */
static int resp_build(http_req *r, int status, const char *ctype, const char *body, size_t len)
{
    int nobody = status < 200 || status == 204 || status == 304;
    const char *text = http_status_text(status), *date = http_date();
    size_t need = 160 + strlen(text) + strlen(date) + strlen(r->id) + (ctype ? strlen(ctype) : 0) +
                  r->rhdrs.len;
    char *p;

    buf_reset(&r->out);
    buf_reset(&r->obody);
    if (buf_reserve(&r->out, need) < 0)
        return -1;
    p = put_str(r->out.data, "HTTP/1.1 ");
    p = put_num(p, (size_t)status);
    p = put_str(put_str(put_str(p, " "), text), "\r\nDate: ");
    p = put_str(put_str(put_str(p, date), "\r\nX-Request-Id: "), r->id);
    p = put_str(p, r->keep_alive ? "\r\nConnection: keep-alive\r\n" : "\r\nConnection: close\r\n");
    if (!nobody)
        p = put_str(put_num(put_str(p, "Content-Length: "), len), "\r\n");
    if (!nobody && ctype)
        p = put_str(put_str(put_str(p, "Content-Type: "), ctype), "\r\n");
    memcpy(p, r->rhdrs.data ? r->rhdrs.data : "", r->rhdrs.len);
    p = put_str(p + r->rhdrs.len, "\r\n");
    *p = '\0';
    r->out.len = (size_t)(p - r->out.data);
    if (!nobody && !r->is_head && len && buf_append(&r->obody, body, len) < 0)
        return -1;
    return 0;
}

/* ---- hub: answered requests back to the loop ---- */

/* Adaptive (briefly spinning) mutex: the lock is held for a few instructions only. */
/* Removes the Content-Length line resp_build wrote (stream responses have none). */
static void strip_length(buf *out)
{
    char *p = strstr(out->data, "Content-Length: ");
    char *e = p ? strstr(p, "\r\n") : NULL;

    if (!e)
        return;
    e += 2;
    memmove(p, e, out->len - (size_t)(e - out->data) + 1);
    out->len -= (size_t)(e - p);
}

static struct http_hub *hub_new(struct ev_loop *loop, http_handler_fn fn, void *ud)
{
    struct http_hub *h = calloc(1, sizeof *h);

    if (!h)
        return NULL;
    if (pool_mutex_init(&h->mu) != 0) {
        free(h);
        return NULL;
    }
    h->loop = loop;
    h->fn = fn;
    h->ud = ud;
    return h;
}

static void hub_free(struct http_hub *h)
{
    pthread_mutex_destroy(&h->mu);
    free(h);
}

/* Any thread: queues an answered request for the loop, or drops it if the server is gone. */
static void hub_deliver(http_req *r)
{
    struct http_hub *h = r->hub;
    int last;

    pthread_mutex_lock(&h->mu);
    if (!h->dead) {
        r->next = NULL;
        if (h->tail)
            h->tail->next = r;
        else
            h->head = r;
        h->tail = r;
        ev_async_send(h->loop, &h->async);
        pthread_mutex_unlock(&h->mu);
        return;
    }
    last = --h->outstanding == 0;
    pthread_mutex_unlock(&h->mu);
    req_free(r);
    if (last)
        hub_free(h);
}

static http_req *hub_take(struct http_hub *h)
{
    http_req *list;

    pthread_mutex_lock(&h->mu);
    list = h->head;
    h->head = h->tail = NULL;
    pthread_mutex_unlock(&h->mu);
    return list;
}

/* Loop thread, from http_server_free: later responders free their own requests. */
static void hub_shutdown(struct http_hub *h)
{
    http_req *list, *next;
    int last;

    pthread_mutex_lock(&h->mu); /* under mu: ev_async_send is too, and h may go at unlock */
    __atomic_store_n(&h->dead, 1, __ATOMIC_RELEASE);
    ev_async_stop(h->loop, &h->async);
    list = h->head;
    h->head = h->tail = NULL;
    for (http_req *r = list; r; r = r->next)
        h->outstanding--;
    last = h->outstanding == 0;
    pthread_mutex_unlock(&h->mu);
    for (; list; list = next) {
        next = list->next;
        req_free(list);
    }
    if (last)
        hub_free(h);
}

/* Pool thread: runs the handler (skipped once the server is gone). */
static void http_task(void *arg, void *tctx)
{
    http_req *r = arg;
    struct http_hub *h = r->hub;

    if (__atomic_load_n(&h->dead, __ATOMIC_ACQUIRE)) {
        hub_deliver(r);
        return;
    }
    h->fn(r, tctx, h->ud);
}

/* ---- connections: lifetime, timers, reading switch ---- */

static void timer_set(struct http_conn *c, double secs)
{
    c->tmr.repeat = secs;
    ev_timer_again(c->s->loop, &c->tmr);
}

/* While a body is read: body_timeout without progress, and never past the body's due time
 * (a body trickled a byte at a time cannot hold the connection for ever). */
static void body_timer(struct http_conn *c)
{
    double left = c->body_due - ev_now(c->s->loop);

    if (left > c->s->lim.body_timeout)
        left = c->s->lim.body_timeout;
    timer_set(c, left > 0.001 ? left : 0.001);
}

static void read_off(struct http_conn *c)
{
    if (!c->rd_off) {
        ev_io_stop(c->s->loop, &c->rio);
        c->rd_off = 1;
    }
}

static void read_on(struct http_conn *c)
{
    if (c->rd_off && !c->eof) {
        ev_io_start(c->s->loop, &c->rio);
        c->rd_off = 0;
    }
}

/* Every state change goes through here (a closed connection never changes again). */
static void conn_state_set(struct http_conn *c, enum conn_state st)
{
    if (c->state == CS_CLOSED)
        fatal("http_state", "connection fd %d: %s after closed", c->fd, conn_state_names[st]);
    if (log_enabled(LOG_DEBUG)) {
        char fd[16];
        snprintf(fd, sizeof fd, "%d", c->fd);
        log_debug(c->req->id[0] ? c->req->id : NULL, "http_state", "connection state", "fd", fd,
                  "from", conn_state_names[c->state], "to", conn_state_names[st]);
    }
    c->state = st;
}

static int conn_closed(const struct http_conn *c)
{
    return c->state == CS_CLOSED;
}

/* A stream's owner gets its on_close exactly once; hs is NULL if it never opened. */
static void req_stream_release(http_req *r, http_stream *hs)
{
    http_stream_fn fn = r->sclose;

    r->sclose = NULL;
    if (fn)
        fn(hs, r->sud);
}

/* Closes c for the peer and marks it: the loop's prepare step frees it (conn_reap), so a
 * caller holding c or the stream's owner object never sees it freed under its feet. */
static void conn_close(struct http_conn *c)
{
    http_server *s = c->s;

    if (conn_closed(c))
        return;
    ev_io_stop(s->loop, &c->rio);
    ev_io_stop(s->loop, &c->wio);
    ev_timer_stop(s->loop, &c->tmr);
    shutdown(c->fd, SHUT_RDWR);
    conn_state_set(c, CS_CLOSED);
    c->reap_next = s->reap;
    s->reap = c;
    ev_prepare_start(s->loop, &s->prep);
}

/* ---- connections per client address ---- */

/* The client address of an accepted socket as 16 bytes (IPv4 v4-mapped); 0 if it has none. */
static int addr_key(const struct sockaddr_storage *sa, unsigned char key[16])
{
    if (sa->ss_family == AF_INET6) {
        memcpy(key, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
        return 1;
    }
    if (sa->ss_family != AF_INET)
        return 0;
    memset(key, 0, 10);
    key[10] = key[11] = 0xff;
    memcpy(key + 12, &((const struct sockaddr_in *)sa)->sin_addr, 4);
    return 1;
}

static unsigned addr_bucket(const unsigned char key[16])
{
    uint32_t h = 2166136261u; /* FNV-1a */

    for (int i = 0; i < 16; i++)
        h = (h ^ key[i]) * 16777619u;
    return h % HTTP_ADDR_BUCKETS;
}

/* Counts one more connection from key: its entry, or NULL when the address is at its cap
 * (*full set) or out of memory. */
static struct addr_count *addr_take(http_server *s, const unsigned char key[16], int *full)
{
    struct addr_count **b = &s->addrs[addr_bucket(key)], *e = *b;

    while (e && memcmp(e->addr, key, 16))
        e = e->next;
    *full = e && e->n >= s->lim.max_conns_per_addr;
    if (*full)
        return NULL;
    if (!e) {
        if (!(e = calloc(1, sizeof *e)))
            return NULL;
        memcpy(e->addr, key, 16);
        e->next = *b;
        *b = e;
    }
    e->n++;
    return e;
}

static void addr_release(http_server *s, struct addr_count *e)
{
    struct addr_count **b;

    if (!e || --e->n > 0)
        return;
    for (b = &s->addrs[addr_bucket(e->addr)]; *b != e; b = &(*b)->next)
        ;
    *b = e->next;
    free(e);
}

/* Frees a closed connection; its stream owner's on_close runs first. */
static void conn_reap(struct http_conn *c)
{
    http_server *s = c->s;

    if (c->opened)
        req_stream_release(c->req, c);
    addr_release(s, c->peer);
    close(c->fd);
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    s->nconns--;
    if (c->req->on_worker) {
        c->req->conn = NULL; /* freed when its answer reaches the loop */
    } else {
        req_stream_release(c->req, NULL);
        req_free(c->req);
    }
    free(c);
}

static void server_reap(http_server *s)
{
    while (s->reap) {
        struct http_conn *c = s->reap;
        s->reap = c->reap_next;
        conn_reap(c);
    }
}

/* Sends a JSON error made by the server itself, then lingers and closes. */
static int conn_fail(struct http_conn *c, int status)
{
    static const struct {
        int status;
        const char *code, *msg;
    } errs[] = {
        {400, "bad_request", "malformed request"},
        {408, "request_timeout", "request not received in time"},
        {413, "payload_too_large", "request body too large"},
        {417, "expectation_failed", "unsupported Expect header"},
        {431, "header_too_large", "request head too large"},
        {503, "unavailable", "server busy, retry later"},
    };
    const char *code = "internal", *msg = "internal error";
    http_req *r = c->req;
    char *body;

    if (conn_closed(c))
        return -1;
    for (size_t i = 0; i < ARRAY_LEN(errs); i++)
        if (errs[i].status == status)
            code = errs[i].code, msg = errs[i].msg;
    if (!r->id[0])
        req_gen_id(c->s, r);
    r->keep_alive = 0;
    body = json_error_body(code, msg);
    if (!body || resp_build(r, status, "application/json", body, strlen(body)) < 0) {
        free(body);
        conn_close(c);
        return -1;
    }
    free(body);
    ev_timer_stop(c->s->loop, &c->tmr);
    c->linger = 1;
    conn_state_set(c, CS_WRITING);
    c->wpos = 0;
    return conn_flush(c);
}

/* After an error response: half-close, read and discard for a while so the client sees the
 * response instead of a reset, then close. */
static int conn_linger(struct http_conn *c)
{
    if (c->eof) {
        conn_close(c);
        return -1;
    }
    shutdown(c->fd, SHUT_WR);
    conn_state_set(c, CS_LINGER);
    c->in_len = 0;
    c->lingered = 0;
    read_on(c);
    timer_set(c, HTTP_LINGER_SECS);
    return 0;
}

/* A response is fully written: next request (maybe already buffered), or close. */
static int conn_done(struct http_conn *c)
{
    if (c->linger)
        return conn_linger(c);
    if (!c->req->keep_alive || (c->eof && !c->in_len)) {
        conn_close(c);
        return -1;
    }
    req_reset(c->req);
    c->msg_done = c->begun = 0;
    conn_state_set(c, CS_IDLE);
    http_parser_pause(&c->parser, 0);
    if (c->s->draining && !c->in_len) {
        conn_close(c);
        return -1;
    }
    timer_set(c, c->s->lim.idle_timeout);
    read_on(c);
    return c->in_len ? conn_parse(c) : 0;
}

/* Writes pending output: "100 Continue", then the response. 0, or -1 if c was closed. */
static int conn_flush(struct http_conn *c)
{
    http_req *r = c->req;
    int out = c->state == CS_WRITING || c->state == CS_STREAM;
    size_t hl = out ? r->out.len : 0;
    size_t total = hl + (out ? r->obody.len : 0);
    struct iovec iov[3];
    struct msghdr m = {.msg_iov = iov};
    ssize_t n;

    if (conn_closed(c))
        return -1;
    if (c->cont_left)
        iov[m.msg_iovlen++] = (struct iovec){
            (char *)continue_line + sizeof continue_line - 1 - c->cont_left, c->cont_left};
    if (c->wpos < hl)
        iov[m.msg_iovlen++] = (struct iovec){r->out.data + c->wpos, hl - c->wpos};
    if (total > hl && c->wpos < total) {
        size_t off = c->wpos > hl ? c->wpos - hl : 0;
        iov[m.msg_iovlen++] = (struct iovec){r->obody.data + off, total - hl - off};
    }
    if (!m.msg_iovlen)
        goto done;
    n = sendmsg(c->fd, &m, MSG_NOSIGNAL);
    if (n < 0 && errno != EAGAIN && errno != EINTR) {
        conn_close(c);
        return -1;
    }
    if (n > 0) {
        size_t k = (size_t)n < c->cont_left ? (size_t)n : c->cont_left;
        c->cont_left -= k;
        c->wpos += (size_t)n - k;
    }
    if (c->cont_left || c->wpos < total) {
        ev_io_start(c->s->loop, &c->wio);
        if (c->state == CS_WRITING)
            timer_set(c, c->s->lim.body_timeout);
        return 0;
    }
done:
    ev_io_stop(c->s->loop, &c->wio);
    if (c->state == CS_STREAM) { /* all sent: start the buffers over */
        buf_reset(&r->out);
        buf_reset(&r->obody);
        c->wpos = 0;
    }
    return c->state == CS_WRITING ? conn_done(c) : 0;
}

/* A complete request: queue it for the pool; on_prepare hands the batch over. */
static int conn_dispatch(struct http_conn *c)
{
    http_server *s = c->s;
    http_req *r = c->req;

    if (c->cont_left == sizeof continue_line - 1)
        c->cont_left = 0; /* the body came without waiting: 100 is pointless now */
    if (c->cont_left && conn_flush(c) < 0)
        return -1;
    ev_timer_stop(s->loop, &c->tmr);
    conn_state_set(c, CS_WORKER);
    if (c->parser.upgrade || s->draining)
        r->keep_alive = 0;
    r->conn = c;
    r->on_worker = 1;
    s->hub->outstanding++;
    r->next = NULL;
    if (s->batch_tail)
        s->batch_tail->next = r;
    else
        s->batch = r;
    s->batch_tail = r;
    ev_prepare_start(s->loop, &s->prep);
    return 0;
}

/* Takes a request back that never reached a worker: 503 (pool full), or just free it. */
static void batch_reject(http_server *s, http_req *r, int status)
{
    s->hub->outstanding--;
    r->on_worker = 0;
    if (r->conn)
        (void)conn_fail(r->conn, status); /* a closed one is freed by its reap */
    else
        req_free(r);
}

static void on_prepare(struct ev_loop *loop, ev_prepare *w, int revents)
{
    http_server *s = w->data;
    void *args[HTTP_BATCH];
    size_t n, k;

    ev_prepare_stop(loop, w);
    server_reap(s);
    while (s->batch) {
        for (n = 0; s->batch && n < HTTP_BATCH;) {
            http_req *r = s->batch;
            s->batch = r->next;
            if (r->conn && !conn_closed(r->conn))
                args[n++] = r;
            else
                batch_reject(s, r, 503); /* client already gone: nothing is sent */
        }
        if (!s->batch)
            s->batch_tail = NULL;
        k = pool_submit_batch(s->workers, http_task, args, n);
        while (k < n)
            batch_reject(s, args[k++], 503);
    }
}

/* Loop thread: an answer arrived for r. */
static void resp_arrived(http_req *r)
{
    struct http_conn *c = r->conn;

    r->on_worker = 0;
    if (!c) {
        req_stream_release(r, NULL);
        req_free(r);
        return;
    }
    if (conn_closed(c))
        return; /* its reap frees r */
    if (r->failed) {
        conn_close(c);
        return;
    }
    c->wpos = 0;
    if (r->sopen) {
        conn_state_set(c, CS_STREAM);
        ev_timer_stop(c->s->loop, &c->tmr);
        c->opened = 1;
        c->lingered = 0;
        r->sopen(c, r->sud);
        if (conn_flush(c) == 0 && c->eof)
            conn_close(c);
        return;
    }
    conn_state_set(c, CS_WRITING);
    (void)conn_flush(c);
}

static void on_async(struct ev_loop *loop, ev_async *w, int revents)
{
    struct http_hub *h = w->data;
    http_req *r = hub_take(h), *next;

    for (; r; r = next) {
        next = r->next;
        h->outstanding--;
        resp_arrived(r);
    }
}

/* ---- parser callbacks (loop thread); -1 with c->err_status rejects the request ---- */

static int head_add(struct http_conn *c, const char *at, size_t len)
{
    http_req *r = c->req;

    if (r->head.len + len > c->s->lim.max_header_bytes) {
        c->err_status = 431;
        return -1;
    }
    if (buf_append(&r->head, at, len) < 0) {
        c->err_status = 503;
        return -1;
    }
    return 0;
}

static int cb_begin(http_parser *p)
{
    struct http_conn *c = p->data;

    c->begun = 1;
    if (c->state == CS_IDLE) {
        conn_state_set(c, CS_HEAD);
        timer_set(c, c->s->lim.header_timeout);
    }
    return 0;
}

static int cb_url(http_parser *p, const char *at, size_t len)
{
    return head_add(p->data, at, len);
}

static int cb_field(http_parser *p, const char *at, size_t len)
{
    struct http_conn *c = p->data;
    http_req *r = c->req;

    if (r->piece != 1) {
        if (head_add(c, "", 1) < 0) /* ends the url or the previous value */
            return -1;
        if (r->nhdrs == HTTP_MAX_HEADERS) {
            c->err_status = 431;
            return -1;
        }
        r->hdrs[r->nhdrs++].name = (uint32_t)r->head.len;
        r->piece = 1;
    }
    return head_add(c, at, len);
}

static int cb_value(http_parser *p, const char *at, size_t len)
{
    struct http_conn *c = p->data;
    http_req *r = c->req;

    if (r->piece == 1) {
        if (head_add(c, "", 1) < 0)
            return -1;
        r->hdrs[r->nhdrs - 1].value = (uint32_t)r->head.len;
        r->piece = 2;
    }
    return head_add(c, at, len);
}

/* Splits the url (at offset 0 of head) into the decoded path and the raw query, both
 * appended to head. 0 or -1 (malformed). */
static int req_split_url(http_req *r, int is_connect)
{
    size_t len = strlen(r->head.data), po = 0, pl = 0, qo = 0, ql = 0;
    struct http_parser_url u;
    char *out;
    long n = 1;

    http_parser_url_init(&u);
    if (len > UINT16_MAX || http_parser_parse_url(r->head.data, len, is_connect, &u) != 0)
        return -1;
    if (u.field_set & (1 << UF_PATH))
        po = u.field_data[UF_PATH].off, pl = u.field_data[UF_PATH].len;
    if (u.field_set & (1 << UF_QUERY))
        qo = u.field_data[UF_QUERY].off, ql = u.field_data[UF_QUERY].len;
    if (buf_reserve(&r->head, pl + ql + 3) < 0)
        return -1;
    r->path_off = (uint32_t)r->head.len;
    out = r->head.data + r->head.len;
    if (pl)
        n = pct_decode(r->head.data + po, r->head.data + po + pl, 0, out, pl + 1);
    else
        memcpy(out, "/", 2);
    if (n < 0)
        return -1;
    r->head.len += (size_t)n + 1;
    r->query_off = (uint32_t)r->head.len;
    memcpy(r->head.data + r->head.len, r->head.data + qo, ql);
    r->head.len += ql;
    r->head.data[r->head.len] = '\0';
    return 0;
}

/* Ends the last url/name/value piece of the head. */
static int head_finish(struct http_conn *c)
{
    http_req *r = c->req;

    if (head_add(c, "", 1) < 0)
        return -1;
    if (r->piece == 1) { /* a name whose value callback never came */
        r->hdrs[r->nhdrs - 1].value = (uint32_t)r->head.len;
        return head_add(c, "", 1);
    }
    return 0;
}

/* Limits and Expect, once the head is in: 413/417 now, or 100 Continue queued. */
static int head_checks(struct http_conn *c, http_parser *p)
{
    http_req *r = c->req;
    const char *expect = http_req_header(r, "Expect");
    int has_len = !(p->flags & F_CHUNKED) && p->content_length != UINT64_MAX;
    int has_body = (p->flags & F_CHUNKED) || (has_len && p->content_length > 0);

    if (has_body && c->s->bodyless && c->s->bodyless(r->method, http_req_path(r))) {
        r->keep_alive = 0; /* the body is never read: answer, discard a while, close */
        c->linger = 1;
        return 1; /* http-parser: no body */
    }
    if (has_len && p->content_length > c->s->lim.max_body_bytes) {
        c->err_status = 413;
        return -1;
    }
    if (expect && strcasecmp(expect, "100-continue") != 0) {
        c->err_status = 417;
        return -1;
    }
    if (expect && has_body && p->http_major == 1 && p->http_minor >= 1)
        c->cont_left = sizeof continue_line - 1;
    if (has_body) {
        double len = has_len ? (double)p->content_length : (double)c->s->lim.max_body_bytes;
        conn_state_set(c, CS_BODY);
        c->body_due = ev_now(c->s->loop) + c->s->lim.body_timeout + len / c->s->lim.min_body_rate;
        body_timer(c);
    }
    return 0;
}

static int cb_headers(http_parser *p)
{
    struct http_conn *c = p->data;
    http_req *r = c->req;
    const char *rid;

    if (head_finish(c) < 0)
        return -1;
    if (p->http_major != 1 || req_split_url(r, p->method == HTTP_CONNECT) < 0) {
        c->err_status = 400;
        return -1;
    }
    r->method = http_method_str((enum http_method)p->method);
    r->is_head = p->method == HTTP_HEAD;
    r->keep_alive = http_should_keep_alive(p);
    r->start = util_now_mono();
    rid = http_req_header(r, "X-Request-Id");
    if (id_ok(rid))
        memcpy(r->id, rid, strlen(rid) + 1);
    else
        req_gen_id(c->s, r);
    return head_checks(c, p);
}

static int cb_body(http_parser *p, const char *at, size_t len)
{
    struct http_conn *c = p->data;
    http_req *r = c->req;

    if (r->body.len + len > c->s->lim.max_body_bytes) {
        c->err_status = 413;
        return -1;
    }
    if (buf_append(&r->body, at, len) < 0) {
        c->err_status = 503;
        return -1;
    }
    return 0;
}

static int cb_complete(http_parser *p)
{
    struct http_conn *c = p->data;

    c->msg_done = 1;
    http_parser_pause(p, 1); /* one request at a time: answers stay in order */
    return 0;
}

static const http_parser_settings parser_settings = {
    .on_message_begin = cb_begin,
    .on_url = cb_url,
    .on_header_field = cb_field,
    .on_header_value = cb_value,
    .on_headers_complete = cb_headers,
    .on_body = cb_body,
    .on_message_complete = cb_complete,
};

/* ---- connection I/O ---- */

/* Parses buffered input up to the end of one request. 0, or -1 if c was closed. */
static int conn_parse(struct http_conn *c)
{
    size_t n = http_parser_execute(&c->parser, &parser_settings, c->in, c->in_len);
    enum http_errno e = HTTP_PARSER_ERRNO(&c->parser);

    c->in_len -= n;
    memmove(c->in, c->in + n, c->in_len);
    if (e != HPE_OK && e != HPE_PAUSED)
        return conn_fail(c, c->err_status ? c->err_status : e == HPE_HEADER_OVERFLOW ? 431 : 400);
    if (c->msg_done)
        return conn_dispatch(c);
    if (c->eof) { /* half a request and the client is gone */
        conn_close(c);
        return -1;
    }
    return c->cont_left ? conn_flush(c) : 0;
}

static int conn_eof(struct http_conn *c)
{
    c->eof = 1;
    read_off(c);
    if (c->state == CS_WORKER || c->state == CS_WRITING)
        return 0; /* answer, then close */
    conn_close(c);
    return -1;
}

/* Discards input after an error response until EOF, a cap, or the linger timer. */
static void conn_drain(struct http_conn *c)
{
    ssize_t n = read(c->fd, c->in, sizeof c->in);

    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n > 0 && (c->lingered += (size_t)n) < HTTP_LINGER_MAX)
        return;
    conn_close(c);
}

static void on_read(struct ev_loop *loop, ev_io *w, int revents)
{
    struct http_conn *c = w->data;
    ssize_t n;

    if (c->state == CS_LINGER || c->state == CS_STREAM) {
        conn_drain(c); /* a stream's client has nothing more to say: EOF closes it */
        return;
    }
    if (c->in_len == sizeof c->in) { /* a zero-byte read would look like EOF */
        read_off(c);
        return;
    }
    n = read(c->fd, c->in + c->in_len, sizeof c->in - c->in_len);
    if (n < 0) {
        if (errno != EAGAIN && errno != EINTR)
            conn_close(c);
        return;
    }
    if (n == 0) {
        (void)conn_eof(c);
        return;
    }
    c->in_len += (size_t)n;
    if (c->state == CS_BODY)
        body_timer(c); /* progress, up to the body's deadline */
    if (c->state == CS_WORKER || c->state == CS_WRITING) {
        if (c->in_len == sizeof c->in)
            read_off(c); /* pipelined input waits; resumed by conn_done */
        return;
    }
    (void)conn_parse(c);
}

static void on_write(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)conn_flush(w->data);
}

static void on_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct http_conn *c = w->data;

    ev_timer_stop(loop, w);
    if ((c->state == CS_HEAD && c->begun) || c->state == CS_BODY)
        (void)conn_fail(c, 408);
    else
        conn_close(c); /* idle, silent new connection, stalled writer, linger over */
}

static int conn_new(http_server *s, int fd)
{
    struct http_conn *c = calloc(1, sizeof *c);
    int one = 1;

    if (!c || !(c->req = req_new(s->hub))) {
        free(c);
        return -1;
    }
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    c->s = s;
    c->fd = fd;
    http_parser_init(&c->parser, HTTP_REQUEST);
    c->parser.data = c;
    ev_io_init(&c->rio, on_read, fd, EV_READ);
    ev_io_init(&c->wio, on_write, fd, EV_WRITE);
    ev_init(&c->tmr, on_timer);
    c->rio.data = c->wio.data = c->tmr.data = c;
    c->next = s->conns;
    if (s->conns)
        s->conns->prev = c;
    s->conns = c;
    s->nconns++;
    c->state = CS_HEAD; /* the initial state, not a change */
    ev_io_start(s->loop, &c->rio);
    timer_set(c, s->lim.header_timeout);
    return 0;
}

/* ---- listener ---- */

/* Over max_connections (503) or the address's cap (429): a best-effort answer without
 * allocating anything, then close. */
static void reject_busy(http_server *s, int fd, int per_addr)
{
    char id[17], msg[512];
    unsigned char b[8];
    uint64_t v = rng_next(&s->rng);
    static const char all[] =
        "{\"error\":{\"code\":\"unavailable\",\"message\":\"too many connections\"}}";
    static const char mine[] = "{\"error\":{\"code\":\"too_many_connections\",\"message\":"
                               "\"too many connections from this address\"}}";
    int n;

    for (int i = 0; i < 8; i++)
        b[i] = (unsigned char)(v >> (8 * i));
    util_hex(b, sizeof b, id);
    n = snprintf(msg, sizeof msg,
                 "HTTP/1.1 %s\r\nDate: %s\r\nX-Request-Id: %s\r\n"
                 "Connection: close\r\nContent-Length: %zu\r\nContent-Type: application/json"
                 "\r\n\r\n%s",
                 per_addr ? "429 Too Many Requests" : "503 Service Unavailable", http_date(), id,
                 per_addr ? sizeof mine - 1 : sizeof all - 1, per_addr ? mine : all);
    if (n > 0 && (size_t)n < sizeof msg)
        (void)send(fd, msg, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT);
    close(fd);
}

/* The address of sa as text into out ("" if it has none); IPv4-mapped IPv6 as IPv4. */
static void peer_text(const struct sockaddr_storage *sa, char *out, size_t len)
{
    const struct sockaddr_in6 *v6 = (const struct sockaddr_in6 *)sa;

    out[0] = '\0';
    if (sa->ss_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, out, (socklen_t)len);
    else if (sa->ss_family == AF_INET6 && IN6_IS_ADDR_V4MAPPED(&v6->sin6_addr))
        inet_ntop(AF_INET, v6->sin6_addr.s6_addr + 12, out, (socklen_t)len);
    else if (sa->ss_family == AF_INET6)
        inet_ntop(AF_INET6, &v6->sin6_addr, out, (socklen_t)len);
}

/* A new connection from sa: served, or refused over a cap. */
static void accepted(http_server *s, int fd, const struct sockaddr_storage *sa)
{
    struct addr_count *peer = NULL;
    unsigned char key[16];
    int full = 0;

    if (s->nconns >= s->lim.max_connections)
        return reject_busy(s, fd, 0);
    if (s->lim.max_conns_per_addr > 0 && addr_key(sa, key) && !(peer = addr_take(s, key, &full)))
        return full ? reject_busy(s, fd, 1) : (void)close(fd);
    if (conn_new(s, fd) < 0) {
        addr_release(s, peer);
        close(fd);
        return;
    }
    s->conns->peer = peer; /* conn_new put it first */
    peer_text(sa, s->conns->req->peer, sizeof s->conns->req->peer);
}

static void on_accept_retry(struct ev_loop *loop, ev_timer *w, int revents)
{
    http_server *s = w->data;

    if (s->lfd >= 0)
        ev_io_start(loop, &s->aio);
}

static void on_accept(struct ev_loop *loop, ev_io *w, int revents)
{
    http_server *s = w->data;

    for (int i = 0; i < HTTP_ACCEPT_BATCH; i++) {
        struct sockaddr_storage sa;
        socklen_t salen = sizeof sa;
        int fd = accept4(s->lfd, (struct sockaddr *)&sa, &salen, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                log_warn(NULL, "http_accept", strerror(errno));
                ev_io_stop(loop, &s->aio); /* retry shortly instead of spinning */
                ev_timer_set(&s->aretry, 0.1, 0.);
                ev_timer_start(loop, &s->aretry);
            }
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            return;
        }
        accepted(s, fd, &sa);
    }
}

static int listen_fd(const struct addrinfo *ai, char *err)
{
    int one = 1,
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);

    if (fd < 0) {
        err_set(err, "socket: %s", strerror(errno));
        return -1;
    }
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
        bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, HTTP_BACKLOG) < 0) {
        err_set(err, "bind/listen: %s", strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

static int local_port(int fd)
{
    union {
        struct sockaddr sa;
        struct sockaddr_in in;
        struct sockaddr_in6 in6;
        struct sockaddr_storage ss;
    } u;
    socklen_t sl = sizeof u;

    memset(&u, 0, sizeof u);
    if (getsockname(fd, &u.sa, &sl) < 0)
        return -1;
    return ntohs(u.sa.sa_family == AF_INET6 ? u.in6.sin6_port : u.in.sin_port);
}

/* ---- server API ---- */

http_server *http_server_new(struct ev_loop *loop, const struct http_limits *lim, pool *workers,
                             http_handler_fn fn, void *ud)
{
    http_server *s;

    if (!loop || !workers || !fn || !(s = calloc(1, sizeof *s)))
        return NULL;
    if (!(s->hub = hub_new(loop, fn, ud))) {
        free(s);
        return NULL;
    }
    s->loop = loop;
    s->workers = workers;
    s->lfd = -1;
    limits_fill(&s->lim, lim);
    if (s->lim.max_header_bytes > 80 * 1024) /* http-parser's own cap; process-wide */
        http_parser_set_max_header_size((uint32_t)s->lim.max_header_bytes + 1024);
    if (util_random(&s->rng, sizeof s->rng) < 0)
        s->rng = (uint64_t)time(NULL) ^ (uint64_t)(uintptr_t)s;
    ev_async_init(&s->hub->async, on_async);
    s->hub->async.data = s->hub;
    ev_async_start(loop, &s->hub->async);
    ev_init(&s->aretry, on_accept_retry);
    s->aretry.data = s;
    ev_prepare_init(&s->prep, on_prepare);
    s->prep.data = s;
    return s;
}

int http_server_listen(http_server *s, const char *host, int port, char *err)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    char portstr[16];
    int rc;

    if (s->lfd >= 0 || s->draining) {
        err_set(err, "http server already listening");
        return -1;
    }
    snprintf(portstr, sizeof portstr, "%d", port);
    rc = getaddrinfo(host && *host ? host : NULL, portstr, &hints, &res);
    if (rc != 0) {
        err_set(err, "resolve %s: %s", host ? host : "*", gai_strerror(rc));
        return -1;
    }
    for (struct addrinfo *ai = res; ai && s->lfd < 0; ai = ai->ai_next)
        s->lfd = listen_fd(ai, err);
    freeaddrinfo(res);
    if (s->lfd < 0)
        return -1;
    s->port = local_port(s->lfd);
    ev_io_init(&s->aio, on_accept, s->lfd, EV_READ);
    s->aio.data = s;
    ev_io_start(s->loop, &s->aio);
    return 0;
}

int http_server_adopt(http_server *s, int fd)
{
    int fl = fcntl(fd, F_GETFL);

    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0 || conn_new(s, fd) < 0) {
        close(fd);
        return -1;
    }
    return 0;
}

int http_server_port(const http_server *s)
{
    return s->port;
}

void http_server_stop_accepting(http_server *s)
{
    struct http_conn *c, *next;

    if (!s || s->draining)
        return;
    s->draining = 1;
    __atomic_store_n(&s->hub->draining, 1, __ATOMIC_RELAXED);
    ev_io_stop(s->loop, &s->aio);
    ev_timer_stop(s->loop, &s->aretry);
    if (s->lfd >= 0)
        close(s->lfd);
    s->lfd = -1;
    for (c = s->conns; c; c = next) { /* idle keep-alive connections go now */
        next = c->next;
        if ((c->state == CS_IDLE || (c->state == CS_HEAD && !c->begun)) && !c->in_len)
            conn_close(c);
    }
}

int http_server_inflight(const http_server *s)
{
    return s ? s->hub->outstanding : 0;
}

int http_server_connections(const http_server *s)
{
    return s ? s->nconns : 0;
}

void http_server_free(http_server *s)
{
    if (!s)
        return;
    http_server_stop_accepting(s);
    for (struct http_conn *c = s->conns; c; c = c->next)
        conn_close(c);
    server_reap(s);
    ev_prepare_stop(s->loop, &s->prep);
    while (s->batch) { /* all detached now: just freed */
        http_req *r = s->batch;
        s->batch = r->next;
        batch_reject(s, r, 0);
    }
    hub_shutdown(s->hub);
    free(s);
}

/* ---- request accessors (valid until the response is sent) ---- */

const char *http_req_method(const http_req *r)
{
    return r->method;
}

const char *http_req_path(const http_req *r)
{
    return r->head.data + r->path_off;
}

const char *http_req_query(const http_req *r)
{
    return r->head.data + r->query_off;
}

/* True if the encoded key [k, end) decodes to name. */
static int key_eq(const char *k, const char *end, const char *name)
{
    while (k < end) {
        int ch = pct_next(&k, end, 1);
        if (ch < 0 || ch != (unsigned char)*name++)
            return 0;
    }
    return *name == '\0';
}

int http_req_query_param(const http_req *r, const char *name, char *out, size_t outlen)
{
    const char *q = http_req_query(r);

    while (*q) {
        const char *amp = strchr(q, '&'), *end = amp ? amp : q + strlen(q);
        const char *eq = memchr(q, '=', (size_t)(end - q)), *kend = eq ? eq : end;
        if (key_eq(q, kend, name)) {
            long n = pct_decode(eq ? eq + 1 : end, end, 1, out, outlen);
            return n < 0 ? -1 : 1;
        }
        q = amp ? amp + 1 : end;
    }
    return 0;
}

const char *http_req_header(const http_req *r, const char *name)
{
    for (int i = 0; i < r->nhdrs; i++)
        if (strcasecmp(r->head.data + r->hdrs[i].name, name) == 0)
            return r->head.data + r->hdrs[i].value;
    return NULL;
}

const char *http_req_body(const http_req *r, size_t *len)
{
    if (len)
        *len = r->body.len;
    return r->body.data ? r->body.data : "";
}

const char *http_req_id(const http_req *r)
{
    return r->id;
}

const char *http_req_peer(const http_req *r)
{
    return r->peer;
}

double http_req_start(const http_req *r)
{
    return r->start;
}

/* ---- responses (any thread) ---- */

int http_resp_header(http_req *r, const char *name, const char *value)
{
    if (!name || !*name || !value || strpbrk(name, "\r\n: \t") || strpbrk(value, "\r\n"))
        return -1;
    return buf_printf(&r->rhdrs, "%s: %s\r\n", name, value);
}

void http_respond(http_req *r, int status, const char *content_type, const char *body, size_t len)
{
    http_observer_fn before = r->before;

    if (status < 100 || status > 999)
        status = 500;
    r->before = NULL;
    if (before)
        before(r, status, r->before_arg);
    if (r->hub->observe)
        r->hub->observe(r, status, r->hub->oud);
    if (__atomic_load_n(&r->hub->draining, __ATOMIC_RELAXED))
        r->keep_alive = 0;
    if (resp_build(r, status, content_type, body, len) < 0)
        r->failed = 1; /* out of memory: the loop closes the connection */
    hub_deliver(r);
}

void http_respond_json(http_req *r, int status, cJSON *body)
{
    char *s = body ? cJSON_PrintUnformatted(body) : NULL;

    cJSON_Delete(body);
    if (!s) {
        http_respond_error(r, 500, "internal", "cannot render response");
        return;
    }
    http_respond(r, status, "application/json", s, strlen(s));
    free(s);
}

void http_respond_error(http_req *r, int status, const char *code, const char *msg)
{
    static const char fallback[] = "{\"error\":{\"code\":\"internal\",\"message\":\"\"}}";
    char *s = json_error_body(code, msg);

    http_respond(r, status, "application/json", s ? s : fallback,
                 s ? strlen(s) : sizeof fallback - 1);
    free(s);
}

/* ---- streams: a response without length that the loop thread keeps writing to ---- */

void http_respond_stream(http_req *r, const char *content_type, size_t max_unsent,
                         http_stream_fn on_open, http_stream_fn on_close, void *ud)
{
    r->keep_alive = 0; /* the body ends when the connection does */
    r->sopen = on_open;
    r->sclose = on_close;
    r->sud = ud;
    r->smax = max_unsent ? max_unsent : HTTP_STREAM_MAX;
    if (r->hub->observe)
        r->hub->observe(r, 200, r->hub->oud);
    if (http_resp_header(r, "Cache-Control", "no-cache") < 0 ||
        resp_build(r, 200, content_type, NULL, 0) < 0)
        r->failed = 1;
    else if (r->out.len > 2) /* no Content-Length: the stream has no end but close */
        strip_length(&r->out);
    hub_deliver(r);
}

int http_stream_send(http_stream *c, const char *data, size_t len)
{
    http_req *r = c->req;

    if (conn_closed(c))
        return -1;
    if (r->obody.len + len > r->smax || buf_append(&r->obody, data, len) < 0) {
        conn_close(c); /* a reader this slow reconnects with Last-Event-ID */
        return -1;
    }
    return conn_flush(c);
}

void http_stream_close(http_stream *c)
{
    conn_close(c);
}

const char *http_stream_header(http_stream *c, const char *name)
{
    return http_req_header(c->req, name);
}

void http_server_set_observer(http_server *s, http_observer_fn fn, void *ud)
{
    s->hub->observe = fn;
    s->hub->oud = ud;
}

void http_req_before_respond(http_req *r, http_observer_fn fn, void *arg)
{
    r->before = fn;
    r->before_arg = arg;
}

void http_req_set_tag(http_req *r, const char *tag)
{
    r->tag = tag;
}

const char *http_req_tag(const http_req *r)
{
    return r->tag;
}

void http_server_set_bodyless(http_server *s, http_bodyless_fn fn)
{
    s->bodyless = fn;
}
