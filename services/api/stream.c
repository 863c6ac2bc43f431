/* stream: GET /sync/stream, Server-Sent Events on the API's event loop. A listener thread
 * LISTENs for change-log notifications; the loop marks that user's streams dirty and a
 * worker computes each stream's delta from its own cursor, so no change is ever skipped. */
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api.h"
#include "log.h"
#include "stream.h"
#include "sync.h"

#define TICK_SECS 0.25
#define RETRY_SECS 5.0 /* after a notification, keep polling this long for a blocked commit */
#define DELTA_LIMIT 200
#define LISTEN_PING_SECS 10.0 /* a quiet LISTEN connection is checked this often */
#define LISTEN_PING_WAIT 5.0  /* and dropped if it does not answer within this */

struct sse {
    struct sse *next;
    struct stream_hub *hub;
    http_stream *hs;
    unsigned long id;
    char user[AUTH_SUB_MAX + 1];
    char cursor[128];
    int dirty, busy, sent_any;
    double retry_until, last_send;
};

/* Worker → loop: a computed delta for stream `id`. */
struct result {
    struct result *next;
    unsigned long id;
    char cursor[128];
    char *event; /* NULL: nothing to send */
    int more, expired;
};

struct stream_hub {
    struct api *api;
    struct sse *streams;
    unsigned long next_id;
    long count;
    ev_async wake;
    ev_timer tick;
    pthread_mutex_t mu; /* guards the two queues below and stop */
    struct result *results;
    char **users; /* notified user ids ("*" = everyone) */
    size_t nusers, capusers;
    int stop;
    pthread_t listener;
    int listener_started;
};

/* ---- listener thread ---- */

static void push_user(struct stream_hub *h, const char *user)
{
    char *u = strdup(user);

    pthread_mutex_lock(&h->mu);
    if (u && h->nusers == h->capusers) {
        size_t cap = h->capusers ? h->capusers * 2 : 64;
        char **n = realloc(h->users, cap * sizeof *n);
        if (n)
            h->users = n, h->capusers = cap;
    }
    if (u && h->nusers < h->capusers)
        h->users[h->nusers++] = u, u = NULL;
    pthread_mutex_unlock(&h->mu);
    free(u);
    ev_async_send(h->api->loop, &h->wake);
}

static int stopping(struct stream_hub *h)
{
    int s;

    pthread_mutex_lock(&h->mu);
    s = h->stop;
    pthread_mutex_unlock(&h->mu);
    return s;
}

static PGconn *listen_connect(struct stream_hub *h)
{
    static const struct pg_connopts o = {.application = "pixplane-api-listen"};
    char err[ERR_MAX];
    PGconn *c = pg_connect(h->api->cfg->store.database_url, &o, err);
    PGresult *r = c ? PQexec(c, "LISTEN pixplane_changes") : NULL;

    if (!r || PQresultStatus(r) != PGRES_COMMAND_OK) {
        log_warn(NULL, "sse_listen_failed", c ? PQerrorMessage(c) : err);
        PQclear(r);
        PQfinish(c);
        return NULL;
    }
    PQclear(r);
    push_user(h, "*"); /* notifications may have been missed while disconnected */
    return c;
}

/* Reads what arrived: notifications are pushed, a ping's answer is consumed. 0, or -1 if
 * the connection failed. */
static int listen_read(struct stream_hub *h, PGconn *c, int *ping_out)
{
    PGnotify *n;
    PGresult *r;

    if (!PQconsumeInput(c))
        return -1;
    while ((n = PQnotifies(c))) {
        push_user(h, n->extra);
        PQfreemem(n);
    }
    while (*ping_out && !PQisBusy(c)) {
        int ok;
        if (!(r = PQgetResult(c))) {
            *ping_out = 0; /* answered */
            break;
        }
        ok = PQresultStatus(r) == PGRES_TUPLES_OK;
        PQclear(r);
        if (!ok)
            return -1;
    }
    return PQstatus(c) == CONNECTION_OK ? 0 : -1;
}

/* Waits for notifications on c until it fails, stops answering, or the hub stops. A quiet
 * connection is pinged (SELECT 1) every LISTEN_PING_SECS: a server that does not answer
 * within LISTEN_PING_WAIT (a half-open connection, a hung backend) is left for a new one. */
static void listen_run(struct stream_hub *h, PGconn *c)
{
    struct pollfd pfd = {.fd = PQsocket(c), .events = POLLIN};
    double quiet_since = util_now_mono(), ping_sent = 0;
    int ping_out = 0;

    while (!stopping(h)) {
        double now;
        if (poll(&pfd, 1, 200) < 0 || (pfd.revents && listen_read(h, c, &ping_out) < 0))
            return;
        now = util_now_mono();
        if (pfd.revents && !ping_out)
            quiet_since = now;
        if (ping_out && now - ping_sent > LISTEN_PING_WAIT) {
            log_warn(NULL, "sse_listen_stalled", "the LISTEN connection stopped answering");
            return;
        }
        if (!ping_out && now - quiet_since > LISTEN_PING_SECS) {
            if (!PQsendQuery(c, "SELECT 1"))
                return;
            ping_out = 1;
            ping_sent = quiet_since = now;
        }
    }
}

static void *listener_main(void *arg)
{
    struct stream_hub *h = arg;
    int backoff_ms = 100;

    while (!stopping(h)) {
        PGconn *c = listen_connect(h);
        if (c) {
            backoff_ms = 100;
            listen_run(h, c);
            PQfinish(c);
            continue;
        }
        for (int waited = 0; waited < backoff_ms && !stopping(h); waited += 50)
            usleep(50000);
        backoff_ms = backoff_ms < 5000 ? backoff_ms * 2 : 5000;
    }
    return NULL;
}

/* ---- deltas on worker threads ---- */

struct job {
    struct stream_hub *hub;
    unsigned long id;
    int first;
    char user[AUTH_SUB_MAX + 1];
    char cursor[128];
};

static char *format_event(const char *cursor, cJSON *delta)
{
    char *data = cJSON_PrintUnformatted(delta);
    buf b = {0};

    if (data && buf_printf(&b, "id: %s\nevent: sync\ndata: %s\n\n", cursor, data) < 0)
        buf_free(&b);
    free(data);
    return b.data;
}

static int delta_empty(cJSON *d)
{
    return !cJSON_GetArraySize(cJSON_GetObjectItem(d, "added")) &&
           !cJSON_GetArraySize(cJSON_GetObjectItem(d, "updated")) &&
           !cJSON_GetArraySize(cJSON_GetObjectItem(d, "deleted"));
}

static void job_compute(struct job *j, struct api_tctx *t, struct result *res, int first)
{
    struct api_call c = {.api = j->hub->api, .t = t, .rid = "sse"};
    struct sync_cursor cur;
    char err[ERR_MAX] = "";
    cJSON *d = NULL;
    int rc;

    util_strlcpy(c.user.sub, sizeof c.user.sub, j->user);
    if (sync_cursor_decode(j->cursor, &cur) < 0 || !(c.db = pg_acquire(c.api->pg, 2.0, err)))
        return;
    rc = cur.fresh ? sync_cursor_now(&c, &cur, err) : 0; /* no Last-Event-ID: from now on */
    if (rc == 0)
        rc = sync_delta(&c, &cur, DELTA_LIMIT, &d, err);
    pg_release(c.db);
    res->expired = rc > 0;
    if (rc != 0)
        return;
    util_strlcpy(res->cursor, sizeof res->cursor,
                 cJSON_GetStringValue(cJSON_GetObjectItem(d, "cursor")));
    res->more = cJSON_IsTrue(cJSON_GetObjectItem(d, "has_more"));
    if (first || !delta_empty(d))
        res->event = format_event(res->cursor, d);
    cJSON_Delete(d);
}

static void job_run(void *arg, void *tctx)
{
    struct job *j = arg;
    struct stream_hub *h = j->hub;
    struct result *res = calloc(1, sizeof *res);

    if (res) {
        res->id = j->id;
        job_compute(j, tctx, res, j->first);
        pthread_mutex_lock(&h->mu);
        res->next = h->results;
        h->results = res;
        pthread_mutex_unlock(&h->mu);
        ev_async_send(h->api->loop, &h->wake);
    }
    free(j);
}

/* ---- loop thread ---- */

static struct sse *find(struct stream_hub *h, unsigned long id)
{
    struct sse *s = h->streams;

    while (s && s->id != id)
        s = s->next;
    return s;
}

static void schedule(struct stream_hub *h, struct sse *s)
{
    struct job *j;

    if (s->busy || !(j = calloc(1, sizeof *j)))
        return;
    j->hub = h;
    j->id = s->id;
    util_strlcpy(j->user, sizeof j->user, s->user);
    util_strlcpy(j->cursor, sizeof j->cursor, s->cursor); /* "" (fresh) or Last-Event-ID */
    j->first = !s->sent_any;
    if (pool_submit(h->api->workers, job_run, j) < 0) {
        free(j);
        return;
    }
    s->busy = 1;
    s->dirty = 0;
}

static void apply_result(struct stream_hub *h, struct result *res)
{
    struct sse *s = find(h, res->id);

    if (!s)
        return;
    s->busy = 0;
    if (res->expired) {
        static const char ev[] = "event: error\ndata: {\"error\":{\"code\":"
                                 "\"full_resync_required\"}}\n\n";
        (void)http_stream_send(s->hs, ev, sizeof ev - 1); /* then the client resyncs */
        http_stream_close(s->hs); /* s stays valid: on_close runs in the loop's prepare */
        return;
    }
    if (res->cursor[0])
        util_strlcpy(s->cursor, sizeof s->cursor, res->cursor);
    if (res->more)
        s->dirty = 1;
    if (res->event) {
        s->sent_any = 1;
        s->last_send = ev_now(h->api->loop);
        (void)http_stream_send(s->hs, res->event, strlen(res->event)); /* may close hs */
    }
}

static void mark_dirty(struct stream_hub *h, const char *user, double now)
{
    for (struct sse *s = h->streams; s; s = s->next)
        if (!strcmp(user, "*") || !strcmp(user, s->user))
            s->dirty = 1, s->retry_until = now + RETRY_SECS;
}

static void on_wake(struct ev_loop *loop, ev_async *w, int revents)
{
    struct stream_hub *h = w->data;
    struct result *res, *next;
    char **users;
    size_t n;

    pthread_mutex_lock(&h->mu);
    res = h->results, users = h->users, n = h->nusers;
    h->results = NULL, h->users = NULL, h->nusers = h->capusers = 0;
    pthread_mutex_unlock(&h->mu);
    for (; res; res = next) {
        next = res->next;
        apply_result(h, res);
        free(res->event);
        free(res);
    }
    for (size_t i = 0; i < n; i++) {
        mark_dirty(h, users[i], ev_now(loop));
        free(users[i]);
    }
    free(users);
    for (struct sse *s = h->streams; s; s = s->next)
        if (s->dirty)
            schedule(h, s);
}

/* Heartbeats, and re-polls after a notification whose commit was not yet visible. */
static void on_tick(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct stream_hub *h = w->data;
    double now = ev_now(loop), beat = h->api->cfg->sse_heartbeat;
    struct sse *s, *next;

    for (s = h->streams; s; s = next) {
        next = s->next;
        if (!s->busy && (s->dirty || now < s->retry_until))
            schedule(h, s);
        else if (now - s->last_send >= beat) {
            s->last_send = now;
            (void)http_stream_send(s->hs, ": ping\n\n", 8);
        }
    }
}

static void on_open(http_stream *hs, void *ud)
{
    struct sse *s = ud;
    struct stream_hub *h = s->hub;

    s->hs = hs;
    s->id = ++h->next_id;
    s->last_send = ev_now(h->api->loop);
    s->next = h->streams;
    h->streams = s;
    h->count++;
    schedule(h, s);
}

static void on_close(http_stream *hs, void *ud)
{
    struct sse *s = ud, **pp;
    struct stream_hub *h = s->hub;

    for (pp = &h->streams; *pp && *pp != s; pp = &(*pp)->next) /* hs NULL: never opened */
        ;
    if (*pp) {
        *pp = s->next;
        h->count--;
    }
    free(s);
}

void sync_stream(struct api_call *c)
{
    const char *last = http_req_header(c->req, "Last-Event-ID");
    struct sync_cursor cur;
    struct sse *s;

    if (last && sync_cursor_decode(last, &cur) < 0)
        return api_error(c, 400, "bad_cursor", "Last-Event-ID is not a cursor we issued");
    if (!(s = calloc(1, sizeof *s)))
        return api_error(c, 503, "unavailable", "out of memory");
    s->hub = c->api->streams;
    util_strlcpy(s->user, sizeof s->user, c->user.sub);
    util_strlcpy(s->cursor, sizeof s->cursor, last);
    http_respond_stream(c->req, "text/event-stream", 0, on_open, on_close, s);
}

struct stream_hub *stream_hub_new(struct api *api)
{
    struct stream_hub *h = calloc(1, sizeof *h);

    if (!h)
        return NULL;
    h->api = api;
    pthread_mutex_init(&h->mu, NULL);
    ev_async_init(&h->wake, on_wake);
    h->wake.data = h;
    ev_async_start(api->loop, &h->wake);
    ev_timer_init(&h->tick, on_tick, TICK_SECS, TICK_SECS);
    h->tick.data = h;
    ev_timer_start(api->loop, &h->tick);
    h->listener_started = pthread_create(&h->listener, NULL, listener_main, h) == 0;
    return h;
}

void stream_hub_close_all(struct stream_hub *h)
{
    for (struct sse *s = h ? h->streams : NULL; s; s = s->next)
        http_stream_close(s->hs); /* on_close unlinks it, from the loop's prepare */
}

long stream_hub_count(const struct stream_hub *h)
{
    return h ? h->count : 0;
}

void stream_hub_free(struct stream_hub *h)
{
    struct result *res, *next;

    if (!h)
        return;
    pthread_mutex_lock(&h->mu);
    h->stop = 1;
    pthread_mutex_unlock(&h->mu);
    if (h->listener_started)
        pthread_join(h->listener, NULL);
    if (h->streams)
        fatal("stream_hub_free", "%ld streams still open: free the http server first", h->count);
    ev_async_stop(h->api->loop, &h->wake);
    ev_timer_stop(h->api->loop, &h->tick);
    for (res = h->results; res; res = next)
        next = res->next, free(res->event), free(res);
    for (size_t i = 0; i < h->nusers; i++)
        free(h->users[i]);
    free(h->users);
    pthread_mutex_destroy(&h->mu);
    free(h);
}
