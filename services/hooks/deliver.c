/* deliver: the delivery thread: claims due deliveries (FOR UPDATE SKIP LOCKED, leased for
 * the request's timeout), POSTs each signed event with libcurl multi (at most `concurrency`
 * at once, every connection judged by the address guard first), and records the outcome:
 * delivered, retried after an exponential backoff with jitter, or given up past max-age. */
#include <arpa/inet.h>
#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hooks.h"
#include "log.h"

#define LEASE_MARGIN 5.0 /* seconds a claimed delivery stays leased beyond the timeout */

struct slot {
    CURL *easy;
    struct curl_slist *hdrs;
    char *body;
    char delivery_id[24], event_id[37], endpoint_id[37];
    long attempts;
    double occurred, started;
    char curl_err[CURL_ERROR_SIZE];
};

struct deliver {
    struct hooks *h;
    CURLM *multi;
    pthread_t thread;
    int stop;  /* __atomic */
    int woken; /* __atomic: claim at once */
    struct slot *slots;
    size_t busy;
    double next_claim, next_upkeep;
};

static size_t discard(char *p, size_t size, size_t n, void *ud)
{
    return size * n; /* the receiver's answer body is not kept */
}

static void slot_free(struct deliver *d, struct slot *s)
{
    if (s->easy) {
        curl_multi_remove_handle(d->multi, s->easy);
        curl_easy_cleanup(s->easy);
        d->busy--;
    }
    curl_slist_free_all(s->hdrs);
    free(s->body);
    memset(s, 0, sizeof *s);
}

/* Backoff of the n-th failed attempt: base x 2^(n-1), capped, then "equal jitter" (half
 * fixed, half random) so retries of many deliveries spread out. */
static double backoff(const struct hooks_config *c, long attempts)
{
    double b = c->retry_backoff;
    unsigned r = 0;

    for (long i = 1; i < attempts && b < c->retry_backoff_max; i++)
        b *= 2;
    if (b > c->retry_backoff_max)
        b = c->retry_backoff_max;
    if (util_random(&r, sizeof r) < 0)
        r = (unsigned)rand();
    return b / 2 + b / 2 * ((double)r / 4294967295.0);
}

static void metric_result(struct deliver *d, const struct slot *s, const char *result)
{
    char labels[48];

    snprintf(labels, sizeof labels, "result=\"%s\"", result);
    metrics_observe(d->h->m, "pixplane_hooks_request_seconds", labels,
                    util_now_mono() - s->started);
}

static void record_ok(struct deliver *d, struct slot *s, long status)
{
    char err[ERR_MAX] = "", st[16];
    const char *p[] = {s->delivery_id, st};
    struct timespec now;
    pg_conn *db = pg_acquire(d->h->pg, 10, err);
    PGresult *r = NULL;

    snprintf(st, sizeof st, "%ld", status);
    if (!db || !(r = pg_exec(db, "delivery_ok", 2, p, err)))
        log_warn(NULL, "record_failed", err, "delivery_id", s->delivery_id);
    PQclear(r);
    pg_release(db);
    STAT_ADD(d->h, delivered, 1);
    metric_result(d, s, "delivered");
    clock_gettime(CLOCK_REALTIME, &now);
    metrics_observe(d->h->m, "pixplane_hooks_event_lag_seconds", "",
                    (double)now.tv_sec + now.tv_nsec / 1e9 - s->occurred);
}

static void log_outcome(struct deliver *d, const struct slot *s, int gave_up, int disabled,
                        const char *error)
{
    if (gave_up) {
        STAT_ADD(d->h, failed, 1);
        log_warn(NULL, "delivery_failed", "delivery given up: older than max-age", "delivery_id",
                 s->delivery_id, "event_id", s->event_id, "endpoint_id", s->endpoint_id, "error",
                 error);
    }
    if (disabled) {
        STAT_ADD(d->h, disabled, 1);
        log_warn(NULL, "endpoint_disabled", "endpoint disabled: it keeps failing", "endpoint_id",
                 s->endpoint_id, "error", error);
    }
}

/* A failed attempt: status 0 when there was no HTTP answer. */
static void record_failure(struct deliver *d, struct slot *s, long status, const char *error)
{
    const struct hooks_config *c = d->h->cfg;
    char err[ERR_MAX] = "", st[16], wait[32], age[32], nfail[24], after[32];
    const char *p[] = {s->delivery_id, status ? st : NULL, error, wait, age, nfail, after};
    pg_conn *db = pg_acquire(d->h->pg, 10, err);
    PGresult *r = NULL;

    snprintf(st, sizeof st, "%ld", status);
    snprintf(wait, sizeof wait, "%.3f", backoff(c, s->attempts));
    snprintf(age, sizeof age, "%.3f", c->max_age);
    snprintf(nfail, sizeof nfail, "%ld", c->disable_failures);
    snprintf(after, sizeof after, "%.3f", c->disable_after);
    if (!db || !(r = pg_exec(db, "delivery_failed", 7, p, err))) {
        log_warn(NULL, "record_failed", err, "delivery_id", s->delivery_id);
    } else {
        log_outcome(d, s, strcmp(pg_val(r, 0, 0), "t") == 0, strcmp(pg_val(r, 0, 1), "t") == 0,
                    error);
    }
    PQclear(r);
    pg_release(db);
    STAT_ADD(d->h, attempts_failed, 1);
    metric_result(d, s, status ? "http_error" : "no_answer");
}

static void finish(struct deliver *d, struct slot *s, CURLcode cc)
{
    long status = 0;
    char error[CURL_ERROR_SIZE + 64];

    curl_easy_getinfo(s->easy, CURLINFO_RESPONSE_CODE, &status);
    if (cc == CURLE_OK && status >= 200 && status < 300) {
        record_ok(d, s, status);
    } else {
        if (cc == CURLE_OK)
            snprintf(error, sizeof error, "HTTP %ld", status);
        else
            snprintf(error, sizeof error, "%s: %s", curl_easy_strerror(cc),
                     s->curl_err[0] ? s->curl_err : "no detail");
        record_failure(d, s, cc == CURLE_OK ? status : 0, error);
    }
    slot_free(d, s);
    /* this may have unblocked the next of its chain: claim at once, in batches while busy */
    if (d->busy * 2 <= (size_t)d->h->cfg->concurrency)
        d->next_claim = 0;
}

/* The address guard judges every connection; an endpoint whose host is an address literal
 * is judged here too, so the refusal is named in last_error (no DNS: never blocks). */
static int literal_refused(const struct deliver *d, const char *url, char *err)
{
    CURLU *u = curl_url();
    char *host = NULL;
    int refused = 0;

    if (u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK) {
        struct sockaddr_in6 a6 = {.sin6_family = AF_INET6};
        struct sockaddr_in a4 = {.sin_family = AF_INET};
        size_t n = strlen(host);
        if (n > 2 && host[0] == '[') {
            host[n - 1] = '\0';
            if (inet_pton(AF_INET6, host + 1, &a6.sin6_addr) == 1)
                refused = !ssrf_addr_allowed(d->h->ssrf, (struct sockaddr *)&a6);
        } else if (inet_pton(AF_INET, host, &a4.sin_addr) == 1) {
            refused = !ssrf_addr_allowed(d->h->ssrf, (struct sockaddr *)&a4);
        }
        if (refused)
            err_set(err, "url_forbidden: %s is not a public address (refused before connecting)",
                    host + (host[0] == '['));
    }
    curl_free(host);
    curl_url_cleanup(u);
    return refused;
}

static int add_header(struct slot *s, const char *name, const char *value)
{
    char line[256];
    struct curl_slist *l;

    snprintf(line, sizeof line, "%s: %s", name, value);
    if (!(l = curl_slist_append(s->hdrs, line)))
        return -1;
    s->hdrs = l;
    return 0;
}

/* Signed headers of this attempt; 0, or -1 with err. */
static int sign_headers(struct slot *s, const char *secret, char *err)
{
    char sig[HOOKS_SIG_MAX], ts[24];
    long long now = (long long)time(NULL);

    snprintf(ts, sizeof ts, "%lld", now);
    if (hooks_sign(secret, s->event_id, now, s->body, strlen(s->body), sig, err) < 0)
        return -1;
    if (add_header(s, "Content-Type", "application/json") < 0 ||
        add_header(s, "webhook-id", s->event_id) < 0 ||
        add_header(s, "webhook-timestamp", ts) < 0 || add_header(s, "webhook-signature", sig) < 0 ||
        add_header(s, "Expect", "") < 0) {
        err_set(err, "out of memory");
        return -1;
    }
    return 0;
}

static void easy_setup(struct deliver *d, struct slot *s, const char *url)
{
    long ms = (long)(d->h->cfg->timeout * 1000);

    curl_easy_setopt(s->easy, CURLOPT_URL, url);
    curl_easy_setopt(s->easy, CURLOPT_POSTFIELDS, s->body);
    curl_easy_setopt(s->easy, CURLOPT_HTTPHEADER, s->hdrs);
    curl_easy_setopt(s->easy, CURLOPT_USERAGENT, "pixplane-webhooks/1");
    curl_easy_setopt(s->easy, CURLOPT_ERRORBUFFER, s->curl_err);
    curl_easy_setopt(s->easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(s->easy, CURLOPT_TIMEOUT_MS, ms);
    curl_easy_setopt(s->easy, CURLOPT_CONNECTTIMEOUT_MS, ms);
    curl_easy_setopt(s->easy, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(s->easy, CURLOPT_PRIVATE, s);
    ssrf_curl_guard(s->easy, d->h->ssrf);
}

/* One claimed row into a transfer; a request that cannot start is recorded as failed. */
static void start_one(struct deliver *d, struct slot *s, const PGresult *r, int i)
{
    char err[ERR_MAX] = "";
    const char *url = pg_val(r, i, 3);

    util_strlcpy(s->delivery_id, sizeof s->delivery_id, pg_val(r, i, 0));
    util_strlcpy(s->event_id, sizeof s->event_id, pg_val(r, i, 1));
    util_strlcpy(s->endpoint_id, sizeof s->endpoint_id, pg_val(r, i, 2));
    s->attempts = (long)pg_i64(r, i, 6);
    s->occurred = strtod(pg_val(r, i, 7), NULL);
    s->started = util_now_mono();
    if (!(s->body = strdup(pg_val(r, i, 5))) || sign_headers(s, pg_val(r, i, 4), err) < 0 ||
        literal_refused(d, url, err) || !(s->easy = curl_easy_init())) {
        if (!err[0])
            err_set(err, "cannot start the request (out of memory)");
        if (strncmp(err, "url_forbidden", 13) == 0)
            STAT_ADD(d->h, refused, 1);
        record_failure(d, s, 0, err);
        slot_free(d, s);
        return;
    }
    easy_setup(d, s, url);
    d->busy++;
    if (curl_multi_add_handle(d->multi, s->easy) != CURLM_OK)
        finish(d, s, CURLE_FAILED_INIT);
}

/* Claims up to the free slots. Returns rows claimed, -1 on database trouble. */
static int claim(struct deliver *d)
{
    const struct hooks_config *c = d->h->cfg;
    char err[ERR_MAX] = "", lim[24], lease[32];
    const char *p[] = {lim, lease};
    size_t free_slots = (size_t)c->concurrency - d->busy, k = 0;
    pg_conn *db = pg_acquire(d->h->pg, 10, err);
    PGresult *r = NULL;
    int n;

    snprintf(lim, sizeof lim, "%zu", free_slots);
    snprintf(lease, sizeof lease, "%.3f", c->timeout + LEASE_MARGIN);
    if (!db || !(r = pg_exec(db, "deliveries_claim", 2, p, err))) {
        log_warn(NULL, "claim_failed", err);
        pg_release(db);
        return -1;
    }
    pg_release(db);
    n = PQntuples(r);
    for (int i = 0; i < n; i++) {
        while (d->slots[k].body)
            k++;
        start_one(d, &d->slots[k], r, i);
    }
    PQclear(r);
    return n;
}

static void reap(struct deliver *d)
{
    CURLMsg *msg;
    int left;
    struct slot *s;

    while ((msg = curl_multi_info_read(d->multi, &left)))
        if (msg->msg == CURLMSG_DONE &&
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&s) == CURLE_OK)
            finish(d, s, msg->data.result);
}

static void maybe_claim(struct deliver *d, double now)
{
    size_t free_slots = (size_t)d->h->cfg->concurrency - d->busy;
    int n;

    if (__atomic_exchange_n(&d->woken, 0, __ATOMIC_ACQ_REL))
        d->next_claim = now;
    if (!free_slots || now < d->next_claim)
        return;
    n = claim(d);
    /* all asked for came: more may be due at once; else wait for the poll or a wake-up */
    d->next_claim = n == (int)free_slots ? now : now + d->h->cfg->poll;
}

/* How long to wait for sockets: until the next claim is due, at most 100 ms (transfers and
 * deliver_wake interrupt the wait). */
static int wait_ms(const struct deliver *d)
{
    double wait = d->next_claim - util_now_mono();

    if (__atomic_load_n(&d->stop, __ATOMIC_ACQUIRE) || d->busy >= (size_t)d->h->cfg->concurrency ||
        wait >= 0.1)
        return 100;
    return wait <= 0 ? 0 : (int)(wait * 1000);
}

static void *deliver_main(void *arg)
{
    struct deliver *d = arg;
    double deadline = 0, now;
    int running;

    for (;;) {
        now = util_now_mono();
        if (__atomic_load_n(&d->stop, __ATOMIC_ACQUIRE)) {
            if (!deadline)
                deadline = now + d->h->cfg->shutdown_timeout;
            if (!d->busy || now >= deadline)
                break;
        } else {
            maybe_claim(d, now);
        }
        if (now >= d->next_upkeep) {
            d->next_upkeep = now + d->h->cfg->upkeep_interval;
            hooks_upkeep(d->h);
        }
        curl_multi_perform(d->multi, &running);
        reap(d);
        curl_multi_poll(d->multi, NULL, 0, wait_ms(d), NULL);
    }
    if (d->busy)
        log_warn(NULL, "deliveries_abandoned",
                 "stopping with deliveries in flight: their lease"
                 " runs out and they are sent again");
    for (long i = 0; i < d->h->cfg->concurrency; i++)
        slot_free(d, &d->slots[i]);
    return NULL;
}

struct deliver *deliver_start(struct hooks *h, char *err)
{
    struct deliver *d = calloc(1, sizeof *d);
    sigset_t all, old;
    int rc;

    if (!d || !(d->slots = calloc((size_t)h->cfg->concurrency, sizeof *d->slots)) ||
        !(d->multi = curl_multi_init())) {
        err_set(err, "out of memory");
        goto fail;
    }
    d->h = h;
    curl_multi_setopt(d->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, h->cfg->concurrency);
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    rc = pthread_create(&d->thread, NULL, deliver_main, d);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc == 0)
        return d;
    err_set(err, "cannot start the delivery thread");
fail:
    if (d) {
        curl_multi_cleanup(d->multi);
        free(d->slots);
    }
    free(d);
    return NULL;
}

void deliver_wake(struct deliver *d)
{
    if (!d)
        return;
    __atomic_store_n(&d->woken, 1, __ATOMIC_RELEASE);
    curl_multi_wakeup(d->multi);
}

void deliver_stop(struct deliver *d)
{
    if (!d)
        return;
    __atomic_store_n(&d->stop, 1, __ATOMIC_RELEASE);
    curl_multi_wakeup(d->multi);
    pthread_join(d->thread, NULL);
    curl_multi_cleanup(d->multi);
    free(d->slots);
    free(d);
}
