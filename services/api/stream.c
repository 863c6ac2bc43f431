/* stream: GET /sync/stream, Server-Sent Events on the API's event loop. A listener thread
 * LISTENs for change-log notifications; the loop marks that user dirty and one job on the
 * stream pool computes the delta of each distinct cursor among that user's streams, shared
 * by all of them, so no change is ever skipped and a user's N streams cost one query. */
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "api.h"
#include "imgcache.h"
#include "log.h"
#include "stream.h"
#include "sync.h"

#define TICK_SECS 0.25
#define RETRY_SECS 5.0     /* after a notification (or a delta held back), keep polling this long */
#define RETRY_WAIT_MAX 2.0 /* those polls back off from TICK_SECS, doubling, up to this */
#define DELTA_LIMIT 200
#define LISTEN_PING_SECS 10.0 /* a quiet LISTEN connection is checked this often */
#define LISTEN_PING_WAIT 5.0  /* and dropped if it does not answer within this */
#define USER_BUCKETS 1024

/* One stream. Loop thread, except user and exp (set before it is shared). */
struct sse {
    struct sse *next; /* in its user's list */
    struct sse_user *u;
    struct stream_hub *hub;
    http_stream *hs;
    char user[AUTH_SUB_MAX + 1];
    char cursor[128];
    time_t exp; /* the token's expiry: the stream ends then */
    int sent_any;
    double last_send;
};

/* A user's open streams and their shared polling. Loop thread. */
struct sse_user {
    struct sse_user *next; /* in its hash bucket */
    unsigned long id;      /* this incarnation: results of an older one are dropped */
    char user[AUTH_SUB_MAX + 1];
    struct sse *streams;
    int busy, dirty;
    double retry_until, next_poll, wait;
};

/* A user's open-stream count for the caps, taken on a request worker (under the hub's mu)
 * before the stream is answered, given back by on_close. */
struct quota {
    struct quota *next;
    int n;
    char user[AUTH_SUB_MAX + 1];
};

/* The delta from one cursor, computed on the stream pool. */
struct delta {
    char in[128], out[128];
    char *event; /* "id/event/data" text, also when the delta is empty */
    int empty, more, expired, failed;
    int held; /* empty, and entries past it are held back by an open transaction */
};

/* Pool → loop: a user's deltas. */
struct result {
    struct result *next;
    unsigned long uid;
    char user[AUTH_SUB_MAX + 1];
    int n;
    struct delta d[];
};

struct stream_hub {
    struct api *api;
    struct sse_user *users[USER_BUCKETS];
    unsigned long next_id;
    long count; /* open streams: changed on the loop, read by /metrics (atomic) */
    ev_async wake;
    ev_timer tick;
    pthread_mutex_t mu; /* guards the queues, the quotas and stop */
    struct result *results;
    char **notified; /* notified user ids ("*" = everyone) */
    size_t nnotified, capnotified;
    struct quota *quotas[USER_BUCKETS];
    long reserved; /* streams counted in quotas */
    int stop;
    pthread_t listener;
    int listener_started;
};

static unsigned user_bucket(const char *user)
{
    uint32_t h = 2166136261u; /* FNV-1a */

    for (; *user; user++)
        h = (h ^ (unsigned char)*user) * 16777619u;
    return h % USER_BUCKETS;
}

/* ---- listener thread ---- */

static void push_user(struct stream_hub *h, const char *user)
{
    char *u = strdup(user);

    imgcache_changed(h->api->gens, user); /* at once, before the loop hears of it */

    pthread_mutex_lock(&h->mu);
    if (u && h->nnotified == h->capnotified) {
        size_t cap = h->capnotified ? h->capnotified * 2 : 64;
        char **n = realloc(h->notified, cap * sizeof *n);
        if (n)
            h->notified = n, h->capnotified = cap;
    }
    if (u && h->nnotified < h->capnotified)
        h->notified[h->nnotified++] = u, u = NULL;
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
    imgcache_set_live(h->api->gens, 1);
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
            imgcache_set_live(h->api->gens, 0); /* changes go unheard until reconnected */
            PQfinish(c);
            continue;
        }
        for (int waited = 0; waited < backoff_ms && !stopping(h); waited += 50)
            usleep(50000);
        backoff_ms = backoff_ms < 5000 ? backoff_ms * 2 : 5000;
    }
    return NULL;
}

/* ---- the caps, on request workers ---- */

/* Counts one more stream for user: 0, or 429/503 when a cap is reached. */
static int quota_take(struct stream_hub *h, const char *user)
{
    const struct api_config *cfg = h->api->cfg;
    struct quota **b = &h->quotas[user_bucket(user)], *q;
    int rc = 0;

    pthread_mutex_lock(&h->mu);
    for (q = *b; q && strcmp(q->user, user); q = q->next)
        ;
    if (h->reserved >= cfg->sse_max_streams)
        rc = 503;
    else if (q && q->n >= cfg->sse_streams_per_user)
        rc = 429;
    else if (!q && !(q = calloc(1, sizeof *q)))
        rc = 503;
    else if (!q->user[0]) {
        util_strlcpy(q->user, sizeof q->user, user);
        q->next = *b;
        *b = q;
    }
    if (rc == 0)
        q->n++, h->reserved++;
    pthread_mutex_unlock(&h->mu);
    return rc;
}

static void quota_give(struct stream_hub *h, const char *user)
{
    struct quota **pp = &h->quotas[user_bucket(user)], *q;

    pthread_mutex_lock(&h->mu);
    while (*pp && strcmp((*pp)->user, user))
        pp = &(*pp)->next;
    if ((q = *pp)) {
        h->reserved--;
        if (--q->n == 0)
            *pp = q->next, free(q);
    }
    pthread_mutex_unlock(&h->mu);
}

/* ---- deltas on the stream pool ---- */

struct job {
    struct stream_hub *hub;
    unsigned long uid;
    char user[AUTH_SUB_MAX + 1];
    int n;
    char cursors[][128]; /* distinct, "" = fresh (from now on) */
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

/* One cursor's delta on the call's connection into d. */
static void delta_compute(struct api_call *c, const char *cursor, struct delta *d)
{
    struct sync_cursor cur;
    char err[ERR_MAX] = "";
    cJSON *o = NULL;
    int rc = -1;

    util_strlcpy(d->in, sizeof d->in, cursor);
    if (sync_cursor_decode(cursor, &cur) == 0)
        rc = cur.fresh ? sync_cursor_now(c, &cur, err) : 0; /* no Last-Event-ID: from now */
    if (rc == 0)
        rc = sync_delta(c, &cur, DELTA_LIMIT, &o, err);
    d->expired = rc > 0;
    d->failed = rc < 0;
    if (rc != 0)
        return;
    util_strlcpy(d->out, sizeof d->out, cJSON_GetStringValue(cJSON_GetObjectItem(o, "cursor")));
    d->more = cJSON_IsTrue(cJSON_GetObjectItem(o, "has_more"));
    d->empty = delta_empty(o);
    d->held = d->empty && !d->more && sync_held(c, &cur, err) > 0;
    d->event = format_event(d->out, o);
    d->failed = !d->event;
    cJSON_Delete(o);
}

static void job_run(void *arg, void *tctx)
{
    struct job *j = arg;
    struct stream_hub *h = j->hub;
    struct api_call c = {.api = h->api, .t = tctx, .rid = "sse"};
    struct result *res = calloc(1, sizeof *res + (size_t)j->n * sizeof res->d[0]);
    char err[ERR_MAX] = "";

    if (res) {
        res->uid = j->uid;
        res->n = j->n;
        util_strlcpy(res->user, sizeof res->user, j->user);
        util_strlcpy(c.user.sub, sizeof c.user.sub, j->user);
        c.db = pg_acquire(c.api->pg, 2.0, err);
        for (int i = 0; i < j->n; i++) {
            res->d[i].failed = 1;
            if (c.db)
                delta_compute(&c, j->cursors[i], &res->d[i]);
        }
        pg_release(c.db);
        api_count(h->api, "pixplane_sse_deltas_total", "", j->n);
        pthread_mutex_lock(&h->mu);
        res->next = h->results;
        h->results = res;
        pthread_mutex_unlock(&h->mu);
        ev_async_send(h->api->loop, &h->wake);
    }
    free(j);
}

/* ---- loop thread ---- */

static struct sse_user *user_find(struct stream_hub *h, const char *user)
{
    struct sse_user *u = h->users[user_bucket(user)];

    while (u && strcmp(u->user, user))
        u = u->next;
    return u;
}

/* Hands the user's distinct cursors to the stream pool as one job. */
static void schedule(struct stream_hub *h, struct sse_user *u, double now)
{
    int n = 0, max = 0;
    struct job *j;

    for (struct sse *s = u->streams; s; s = s->next)
        max++;
    if (u->busy || !max || !(j = calloc(1, sizeof *j + (size_t)max * sizeof j->cursors[0])))
        return;
    for (struct sse *s = u->streams; s; s = s->next) {
        int k = 0;
        while (k < n && strcmp(j->cursors[k], s->cursor))
            k++;
        if (k == n)
            util_strlcpy(j->cursors[n++], sizeof j->cursors[0], s->cursor);
    }
    j->hub = h, j->uid = u->id, j->n = n;
    util_strlcpy(j->user, sizeof j->user, u->user);
    if (pool_submit(h->api->stream_pool, job_run, j) < 0) {
        free(j); /* the pool is full: the user stays dirty for the next tick */
        return;
    }
    u->busy = 1;
    u->dirty = 0;
    u->next_poll = now + u->wait;
    u->wait = u->wait * 2 < RETRY_WAIT_MAX ? u->wait * 2 : RETRY_WAIT_MAX;
}

/* Sends an error event and ends the stream (s stays valid until the loop's prepare). */
static void end_stream(struct sse *s, const char *ev, size_t len)
{
    (void)http_stream_send(s->hs, ev, len);
    http_stream_close(s->hs);
}

static void apply_delta(struct sse_user *u, struct sse *s, const struct delta *d, double now)
{
    static const char resync[] = "event: error\ndata: {\"error\":{\"code\":"
                                 "\"full_resync_required\"}}\n\n";

    if (d->expired)
        return end_stream(s, resync, sizeof resync - 1); /* then the client resyncs */
    if (d->failed) {
        u->dirty = 1; /* tried again at the next tick */
        return;
    }
    util_strlcpy(s->cursor, sizeof s->cursor, d->out);
    u->dirty |= d->more;
    if (d->held && u->retry_until < now + RETRY_SECS)
        u->retry_until = now + RETRY_SECS; /* keep polling (backed off) until it commits */
    if (d->empty && s->sent_any)
        return;
    s->sent_any = 1;
    s->last_send = now;
    (void)http_stream_send(s->hs, d->event, strlen(d->event)); /* may close hs */
}

static void apply_result(struct stream_hub *h, struct result *res, double now)
{
    struct sse_user *u = user_find(h, res->user);

    if (!u || u->id != res->uid)
        return; /* its streams are gone */
    u->busy = 0;
    for (struct sse *s = u->streams; s; s = s->next) {
        int k = 0;
        while (k < res->n && strcmp(res->d[k].in, s->cursor))
            k++;
        if (k < res->n)
            apply_delta(u, s, &res->d[k], now);
        else
            u->dirty = 1; /* opened while the job ran */
    }
}

static void notify(struct sse_user *u, double now)
{
    u->dirty = 1;
    u->retry_until = now + RETRY_SECS;
    u->wait = TICK_SECS;
}

static void mark_dirty(struct stream_hub *h, const char *user, double now)
{
    struct sse_user *u;

    if (strcmp(user, "*")) {
        if ((u = user_find(h, user)))
            notify(u, now);
        return;
    }
    for (int b = 0; b < USER_BUCKETS; b++)
        for (u = h->users[b]; u; u = u->next)
            notify(u, now);
}

static void on_wake(struct ev_loop *loop, ev_async *w, int revents)
{
    struct stream_hub *h = w->data;
    struct result *res, *next;
    char **users;
    size_t n;

    pthread_mutex_lock(&h->mu);
    res = h->results, users = h->notified, n = h->nnotified;
    h->results = NULL, h->notified = NULL, h->nnotified = h->capnotified = 0;
    pthread_mutex_unlock(&h->mu);
    for (; res; res = next) {
        next = res->next;
        apply_result(h, res, ev_now(loop));
        for (int i = 0; i < res->n; i++)
            free(res->d[i].event);
        free(res);
    }
    for (size_t i = 0; i < n; i++) {
        mark_dirty(h, users[i], ev_now(loop));
        free(users[i]);
    }
    free(users);
    for (int b = 0; b < USER_BUCKETS; b++)
        for (struct sse_user *u = h->users[b]; u; u = u->next)
            if (u->dirty)
                schedule(h, u, ev_now(loop));
}

/* A user's streams: token expiry and heartbeats. */
static void tick_streams(struct stream_hub *h, struct sse_user *u, double now, time_t wall)
{
    static const char expired[] = "event: error\ndata: {\"error\":{\"code\":\"token_expired\","
                                  "\"message\":\"reconnect with a fresh token\"}}\n\n";

    for (struct sse *s = u->streams; s; s = s->next) {
        if (s->exp && wall >= s->exp)
            end_stream(s, expired, sizeof expired - 1);
        else if (now - s->last_send >= h->api->cfg->sse_heartbeat) {
            s->last_send = now;
            (void)http_stream_send(s->hs, ": ping\n\n", 8);
        }
    }
}

/* Heartbeats, token expiry, and the backed-off re-polls after a notification (its commit
 * may not be visible to a gap-free cursor yet). */
static void on_tick(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct stream_hub *h = w->data;
    double now = ev_now(loop);
    time_t wall = time(NULL);

    for (int b = 0; b < USER_BUCKETS; b++)
        for (struct sse_user *u = h->users[b]; u; u = u->next) {
            tick_streams(h, u, now, wall);
            if (!u->busy && (u->dirty || (now < u->retry_until && now >= u->next_poll)))
                schedule(h, u, now);
        }
}

static void on_open(http_stream *hs, void *ud)
{
    struct sse *s = ud;
    struct stream_hub *h = s->hub;
    struct sse_user *u = user_find(h, s->user);
    unsigned b = user_bucket(s->user);

    if (!u && !(u = calloc(1, sizeof *u))) {
        http_stream_close(hs); /* on_close frees s */
        return;
    }
    if (!u->user[0]) {
        util_strlcpy(u->user, sizeof u->user, s->user);
        u->id = ++h->next_id;
        u->wait = TICK_SECS;
        u->next = h->users[b];
        h->users[b] = u;
    }
    s->hs = hs;
    s->u = u;
    s->last_send = ev_now(h->api->loop);
    s->next = u->streams;
    u->streams = s;
    __atomic_add_fetch(&h->count, 1, __ATOMIC_RELAXED);
    u->dirty = 1;
    schedule(h, u, ev_now(h->api->loop));
}

static void user_unlink(struct stream_hub *h, struct sse_user *u)
{
    struct sse_user **pp = &h->users[user_bucket(u->user)];

    while (*pp != u)
        pp = &(*pp)->next;
    *pp = u->next;
    free(u);
}

static void on_close(http_stream *hs, void *ud)
{
    struct sse *s = ud, **pp;
    struct stream_hub *h = s->hub;

    if (s->u) { /* NULL: never opened */
        for (pp = &s->u->streams; *pp != s; pp = &(*pp)->next)
            ;
        *pp = s->next;
        __atomic_sub_fetch(&h->count, 1, __ATOMIC_RELAXED);
        if (!s->u->streams)
            user_unlink(h, s->u); /* a running job's result is then dropped */
    }
    quota_give(h, s->user);
    free(s);
}

void sync_stream(struct api_call *c)
{
    const char *last = http_req_header(c->req, "Last-Event-ID");
    struct stream_hub *h = c->api->streams;
    struct sync_cursor cur;
    struct sse *s;
    char msg[128], since[128];
    int cap;

    if (!last && http_req_query_param(c->req, "since", since, sizeof since) == 1)
        last = since; /* EventSource cannot set Last-Event-ID on a new connection */
    if (last && sync_cursor_decode(last, &cur) < 0)
        return api_error(c, 400, "bad_cursor", "Last-Event-ID is not a cursor we issued");
    if ((cap = quota_take(h, c->user.sub)) != 0)
        api_count(c->api, "pixplane_sse_refused_total",
                  cap == 429 ? "reason=\"per_user\"" : "reason=\"total\"", 1);
    if (cap == 429) {
        snprintf(msg, sizeof msg, "at most %ld open event streams per user",
                 c->api->cfg->sse_streams_per_user);
        return api_error(c, 429, "too_many_streams", msg);
    }
    if (cap)
        return api_error(c, 503, "streams_unavailable", "the server holds all the streams it can");
    if (!(s = calloc(1, sizeof *s))) {
        quota_give(h, c->user.sub);
        return api_error(c, 503, "unavailable", "out of memory");
    }
    s->hub = h;
    s->exp = c->user.exp;
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
    if (!api->loop)
        return h; /* no loop (the fuzz harnesses): caps and registry only, nothing heard */
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
    for (int b = 0; h && b < USER_BUCKETS; b++)
        for (struct sse_user *u = h->users[b]; u; u = u->next)
            for (struct sse *s = u->streams; s; s = s->next)
                http_stream_close(s->hs); /* on_close unlinks it, from the loop's prepare */
}

long stream_hub_count(const struct stream_hub *h)
{
    return h ? __atomic_load_n(&h->count, __ATOMIC_RELAXED)
             : 0; /* /metrics reads it off the loop */
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
    if (h->count || h->reserved)
        fatal("stream_hub_free", "%ld streams still open: free the http server first", h->count);
    if (h->api->loop) {
        ev_async_stop(h->api->loop, &h->wake);
        ev_timer_stop(h->api->loop, &h->tick);
    }
    for (res = h->results; res; res = next) {
        next = res->next;
        for (int i = 0; i < res->n; i++)
            free(res->d[i].event);
        free(res);
    }
    for (size_t i = 0; i < h->nnotified; i++)
        free(h->notified[i]);
    free(h->notified);
    pthread_mutex_destroy(&h->mu);
    free(h);
}
