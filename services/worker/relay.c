/* relay: the outbox relay thread. One relay in the fleet is active (it holds a PostgreSQL
 * advisory lock on its own connection); it publishes unsent outbox rows in id order with the
 * idempotent producer and marks a row sent only after Kafka confirmed its delivery. */
#include <libpq-fe.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "worker.h"

/* Advisory lock key of the active relay: "pixrelay" as a big-endian bigint. */
#define RELAY_LOCK_KEY "8100137837525754233"

struct relay {
    struct worker *w;
    kafka_producer *producer;
    PGconn *db;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int stop;   /* set by relay_stop; read with __atomic (the relay thread polls it) */
    int leader; /* written by the relay thread only; read elsewhere with __atomic */
    double backoff;
};

struct row {
    long long id;
    const char *topic, *key, *payload;
    struct kafka_delivery d;
};

/* Sleeps up to secs, or until relay_stop. */
static void relay_sleep(struct relay *r, double secs)
{
    struct timespec ts;

    util_deadline(&ts, secs);
    pthread_mutex_lock(&r->mu);
    while (!__atomic_load_n(&r->stop, __ATOMIC_RELAXED) &&
           pthread_cond_timedwait(&r->cv, &r->mu, &ts) == 0)
        ;
    pthread_mutex_unlock(&r->mu);
}

static void relay_disconnect(struct relay *r, const char *why)
{
    if (r->leader)
        log_warn(NULL, "relay_standby", why);
    __atomic_store_n(&r->leader, 0, __ATOMIC_RELAXED);
    PQfinish(r->db);
    r->db = NULL;
}

static const struct pg_connopts relay_connopts = {.application = "pixplane-relay",
                                                  .connect_timeout = "5"};

/* Connects (keepalives on: a dead server must not leave us "leader" for long). */
static int relay_connect(struct relay *r)
{
    char err[ERR_MAX];

    r->db = pg_connect(r->w->cfg->store.database_url, &relay_connopts, err);
    if (r->db)
        return 0;
    log_warn(NULL, "relay_db_unavailable", err);
    return -1;
}

static PGresult *relay_exec(struct relay *r, const char *sql, int n, const char *const *p)
{
    PGresult *res = PQexecParams(r->db, sql, n, NULL, p, NULL, NULL, 0);
    ExecStatusType st = PQresultStatus(res);

    if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK)
        return res;
    log_warn(NULL, "relay_sql_failed", PQresultErrorMessage(res));
    PQclear(res);
    if (PQstatus(r->db) != CONNECTION_OK)
        relay_disconnect(r, "lost the database connection (and with it the relay lock)");
    return NULL;
}

static int relay_try_lead(struct relay *r)
{
    PGresult *res = relay_exec(r, "SELECT pg_try_advisory_lock(" RELAY_LOCK_KEY ")", 0, NULL);

    if (!res)
        return 0;
    __atomic_store_n(&r->leader, strcmp(PQgetvalue(res, 0, 0), "t") == 0, __ATOMIC_RELAXED);
    PQclear(res);
    if (r->leader)
        log_info(NULL, "relay_active", "this process is the active outbox relay");
    return r->leader;
}

/* "{1,2,3}" of the rows whose delivery ended as want_failed says. */
static int id_array(buf *b, const struct row *rows, size_t n, int want_failed)
{
    size_t k = 0;

    if (buf_puts(b, "{") < 0)
        return -1;
    for (size_t i = 0; i < n; i++)
        if (rows[i].d.failed == want_failed &&
            buf_printf(b, "%s%lld", k++ ? "," : "", rows[i].id) < 0)
            return -1;
    return buf_puts(b, "}") < 0 ? -1 : (int)k;
}

/* Records the outcome of a batch; 0 or -1 (database trouble). */
static int relay_mark(struct relay *r, const struct row *rows, size_t n, const char *error)
{
    buf sent = {0}, failed = {0};
    int ns = id_array(&sent, rows, n, 0), nf = id_array(&failed, rows, n, 1), rc = 0;
    PGresult *res;

    if (ns < 0 || nf < 0)
        rc = -1;
    if (rc == 0 && ns > 0) {
        const char *p[] = {sent.data};
        res = relay_exec(r, "UPDATE outbox SET sent_at = now() WHERE id = ANY($1::bigint[])", 1, p);
        rc = res ? 0 : -1;
        PQclear(res);
        if (res) /* counted once the rows say so: a failed mark sends them again */
            STAT_ADD(r->w, relay_sent, ns);
    }
    if (rc == 0 && nf > 0) {
        const char *p[] = {failed.data, error};
        res = relay_exec(r,
                         "UPDATE outbox SET attempts = attempts + 1, last_error = $2"
                         " WHERE id = ANY($1::bigint[])",
                         2, p);
        rc = res ? 0 : -1;
        PQclear(res);
        if (res)
            STAT_ADD(r->w, relay_failed, nf);
    }
    buf_free(&sent);
    buf_free(&failed);
    return rc;
}

/* Produces every row, then waits for all delivery reports (bounded: each message gets one
 * within the delivery timeout). On stop the rest is purged so no report is left pending. */
static void relay_publish(struct relay *r, struct row *rows, size_t n, char *first_err)
{
    struct kafka_delivery **ds = calloc(n, sizeof *ds);
    char err[ERR_MAX] = "";

    for (size_t i = 0; i < n; i++) {
        if (kafka_produce(r->producer, rows[i].topic, rows[i].key, strlen(rows[i].key),
                          rows[i].payload, strlen(rows[i].payload), NULL, 0, &rows[i].d, err) < 0) {
            rows[i].d.failed = 1;
            snprintf(rows[i].d.error, sizeof rows[i].d.error, "%.*s",
                     (int)sizeof rows[i].d.error - 1, err);
            rows[i].d.done = 1;
        }
    }
    if (!ds) { /* cannot wait per record: wait for the whole queue */
        while (kafka_producer_outq(r->producer) > 0 && !r->stop)
            kafka_producer_poll(r->producer, 100);
    } else {
        for (size_t i = 0; i < n; i++)
            ds[i] = &rows[i].d;
        if (kafka_wait(r->producer, ds, n, r->w->cfg->relay_delivery_timeout + 5, &r->stop)) {
            kafka_producer_purge(r->producer);
            if (kafka_wait(r->producer, ds, n, 30, NULL))
                fatal("relay_stuck", "delivery reports missing after purge");
        }
    }
    free(ds);
    for (size_t i = 0; i < n; i++)
        if (rows[i].d.failed && !first_err[0])
            snprintf(first_err, ERR_MAX, "%s", rows[i].d.error);
}

/* One batch. Returns rows read (a full batch means: go again at once), or -1. */
static int relay_batch(struct relay *r)
{
    char limit[24], first_err[ERR_MAX] = "";
    const char *p[] = {limit};
    struct row *rows;
    PGresult *res;
    int n, rc = 0;

    snprintf(limit, sizeof limit, "%ld", r->w->cfg->relay_batch);
    res = relay_exec(r,
                     "SELECT id, topic, msg_key, payload::text FROM outbox"
                     " WHERE sent_at IS NULL ORDER BY id LIMIT $1",
                     1, p);
    if (!res)
        return -1;
    if ((n = PQntuples(res)) == 0 || !(rows = calloc((size_t)n, sizeof *rows))) {
        PQclear(res);
        return n ? -1 : 0;
    }
    for (int i = 0; i < n; i++)
        rows[i] = (struct row){strtoll(PQgetvalue(res, i, 0), NULL, 10),
                               PQgetvalue(res, i, 1),
                               PQgetvalue(res, i, 2),
                               PQgetvalue(res, i, 3),
                               {0}};
    relay_publish(r, rows, (size_t)n, first_err);
    STAT_ADD(r->w, relay_batches, 1);
    if (relay_mark(r, rows, (size_t)n, first_err) < 0)
        rc = -1;
    else if (first_err[0])
        log_warn(NULL, "relay_delivery_failed", first_err);
    free(rows);
    PQclear(res);
    return rc < 0 || first_err[0] ? -1 : n;
}

/* A fatal producer error (idempotence broken) makes the client unusable: start a new one.
 * Rows it did not deliver are still unsent and go out again. */
static int relay_renew_producer(struct relay *r)
{
    char err[ERR_MAX] = "";
    kafka_producer *p;

    if (!kafka_producer_fatal(r->producer, err))
        return 0;
    log_error(NULL, "relay_producer_reset", err);
    if (!(p = kafka_producer_new(&r->w->kopts, r->w->cfg->relay_delivery_timeout, err))) {
        log_error(NULL, "relay_producer_failed", err);
        return -1;
    }
    kafka_producer_free(r->producer, 0);
    r->producer = p;
    return 0;
}

static void relay_step(struct relay *r)
{
    const struct worker_config *cfg = r->w->cfg;
    int n;

    if (!r->db && relay_connect(r) < 0) {
        relay_sleep(r, cfg->relay_standby_retry);
        return;
    }
    if (!r->leader && !relay_try_lead(r)) {
        relay_sleep(r, cfg->relay_standby_retry);
        return;
    }
    if (relay_renew_producer(r) < 0 || (n = relay_batch(r)) < 0) {
        r->backoff = r->backoff ? r->backoff * 2 : 0.5;
        if (r->backoff > 10)
            r->backoff = 10;
        relay_sleep(r, r->backoff);
        return;
    }
    r->backoff = 0;
    if (n < cfg->relay_batch)
        relay_sleep(r, cfg->relay_poll);
}

static void *relay_main(void *arg)
{
    struct relay *r = arg;

    while (!__atomic_load_n(&r->stop, __ATOMIC_RELAXED))
        relay_step(r);
    if (r->db)
        relay_disconnect(r, "relay stopping");
    return NULL;
}

struct relay *relay_start(struct worker *w, char *err)
{
    struct relay *r = calloc(1, sizeof *r);
    sigset_t all, old;
    int rc;

    if (!r) {
        err_set(err, "out of memory");
        return NULL;
    }
    r->w = w;
    if (!(r->producer = kafka_producer_new(&w->kopts, w->cfg->relay_delivery_timeout, err))) {
        free(r);
        return NULL;
    }
    pthread_mutex_init(&r->mu, NULL);
    if (util_cond_init(&r->cv) != 0) {
        err_set(err, "cannot make the relay's condition variable");
        kafka_producer_free(r->producer, 0);
        pthread_mutex_destroy(&r->mu);
        free(r);
        return NULL;
    }
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    rc = pthread_create(&r->thread, NULL, relay_main, r);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        err_set(err, "cannot start the relay thread");
        kafka_producer_free(r->producer, 0);
        pthread_cond_destroy(&r->cv);
        pthread_mutex_destroy(&r->mu);
        free(r);
        return NULL;
    }
    return r;
}

void relay_stop(struct relay *r)
{
    if (!r)
        return;
    pthread_mutex_lock(&r->mu);
    __atomic_store_n(&r->stop, 1, __ATOMIC_RELAXED);
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
    pthread_join(r->thread, NULL);
    kafka_producer_free(r->producer, 5);
    pthread_cond_destroy(&r->cv);
    pthread_mutex_destroy(&r->mu);
    free(r);
}

int relay_is_leader(const struct relay *r)
{
    return r && __atomic_load_n(&r->leader, __ATOMIC_RELAXED);
}
