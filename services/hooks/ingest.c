/* ingest: the consumer loop: takes integration events from Kafka in batches, stores each
 * event and its deliveries in one transaction per batch, and commits the batch's offsets
 * only after that transaction committed (a crash in between: the batch comes again and adds
 * nothing). A batch whose transaction fails is kept and stored again after a backoff. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hooks.h"
#include "log.h"

#define POLL_MS 100
#define MAX_PARTS 256

struct ingest {
    struct hooks *h;
    kafka_consumer *c;
    struct kafka_msg **msgs;
    size_t n;
    size_t poison; /* index + 1 of a message the database refused as data: skipped */
    double backoff;
};

static void batch_clear(struct ingest *in)
{
    for (size_t i = 0; i < in->n; i++)
        kafka_msg_free(in->msgs[i]);
    in->n = 0;
    in->poison = 0;
}

static void skip_invalid(struct ingest *in, const struct kafka_msg *m, const char *why)
{
    STAT_ADD(in->h, events_invalid, 1);
    log_warn(NULL, "event_invalid", why, "topic", m->topic);
}

/* Stores one message (1: new event, 0: seen before or skipped), or -1 (transaction lost). */
static int store_one(struct ingest *in, pg_conn *db, const struct kafka_msg *m, char *err)
{
    struct hooks_event ev;
    char why[ERR_MAX] = "", key[129];
    PGresult *r;

    if (hooks_event_parse(m->value, m->value_len, &ev, why) < 0 || !m->key_len ||
        m->key_len >= sizeof key || memchr(m->key, '\0', m->key_len)) {
        skip_invalid(in, m, why[0] ? why : "event: no usable key");
        return 0;
    }
    snprintf(key, sizeof key, "%.*s", (int)m->key_len, m->key);
    const char *p[] = {ev.id, ev.type, key, m->value, ev.occurred_at};
    if (!(r = pg_exec(db, "event_store", 5, p, err)))
        return -1;
    long long stored = pg_i64(r, 0, 0), fanned = pg_i64(r, 0, 1);
    PQclear(r);
    STAT_ADD(in->h, fanned_out, fanned);
    if (!stored)
        STAT_ADD(in->h, events_seen, 1);
    return stored > 0;
}

/* The batch in one transaction. 0, or -1 with err (rolled back: nothing stored). */
static int store_batch(struct ingest *in, char *err)
{
    pg_conn *db = pg_acquire(in->h->pg, 10, err);
    long stored = 0;
    int rc;

    if (!db || pg_tx_begin(db, err) < 0)
        goto fail;
    for (size_t i = 0; i < in->n; i++) {
        if (i + 1 == in->poison) {
            skip_invalid(in, in->msgs[i], "event: refused by the database as data");
            continue;
        }
        if ((rc = store_one(in, db, in->msgs[i], err)) < 0) {
            /* class 22, data exception (e.g. a \u0000 jsonb refuses): skipped next time */
            if (strncmp(pg_sqlstate(db), "22", 2) == 0)
                in->poison = i + 1;
            goto fail;
        }
        stored += rc;
    }
    if (pg_tx_commit(db, err) < 0)
        goto fail;
    pg_release(db);
    STAT_ADD(in->h, events_stored, stored);
    return 0;
fail:
    pg_release(db); /* rolls back */
    return -1;
}

/* The next offset of every partition in the batch (messages arrive in offset order). */
static size_t batch_offsets(const struct ingest *in, struct kafka_tp *tps)
{
    size_t n = 0, j;

    for (size_t i = 0; i < in->n; i++) {
        const struct kafka_msg *m = in->msgs[i];
        for (j = 0; j < n; j++)
            if (tps[j].partition == m->partition && strcmp(tps[j].topic, m->topic) == 0)
                break;
        if (j == n && n == MAX_PARTS)
            continue; /* not committed now: a later batch commits past it */
        if (j == n)
            n++;
        tps[j] = (struct kafka_tp){m->topic, m->partition, m->offset + 1};
    }
    return n;
}

static void commit_batch(struct ingest *in, int async)
{
    struct kafka_tp tps[MAX_PARTS];
    char err[ERR_MAX] = "";
    size_t n = batch_offsets(in, tps);

    STAT_ADD(in->h, commits, 1);
    if (n && kafka_commit(in->c, tps, n, async, err) < 0) {
        STAT_ADD(in->h, commit_errors, 1);
        log_warn(NULL, "commit_failed", err);
    }
}

/* Stores and commits the batch. 0, or -1 (kept for another try). */
static int flush(struct ingest *in, int async)
{
    char err[ERR_MAX] = "";

    if (!in->n)
        return 0;
    if (store_batch(in, err) < 0) {
        STAT_ADD(in->h, store_errors, 1);
        log_warn(NULL, "store_failed", err);
        return -1;
    }
    commit_batch(in, async);
    batch_clear(in);
    deliver_wake(in->h->deliver);
    return 0;
}

/* Partitions taken away: what is stored is committed first; a batch that cannot be stored
 * is dropped (not committed: the partitions' next owner reads it again). */
static void on_rebalance(int assigned, int lost, const struct kafka_tp *tps, size_t n, void *ud)
{
    struct ingest *in = ud;

    log_info(NULL, assigned ? "partitions_assigned" : "partitions_revoked",
             assigned ? "partitions assigned" : "partitions revoked");
    if (assigned)
        return;
    if (lost || flush(in, 0) < 0)
        batch_clear(in);
}

static void sleep_secs(double secs)
{
    struct timespec ts = {(time_t)secs, (long)((secs - (time_t)secs) * 1e9)};

    nanosleep(&ts, NULL);
}

/* A full batch, or whatever came before the queue ran dry: store it. */
static void step(struct ingest *in, double *last_err)
{
    struct kafka_msg *m = NULL;
    char err[ERR_MAX] = "";
    int rc = 0;

    if (in->n < (size_t)in->h->cfg->ingest_batch) /* full (a failed store): no more */
        rc = kafka_consumer_poll(in->c, in->n ? 0 : POLL_MS, &m, err);
    if (rc > 0) {
        STAT_ADD(in->h, events, 1);
        in->msgs[in->n++] = m;
        if (in->n < (size_t)in->h->cfg->ingest_batch)
            return;
    } else if (rc < 0 && util_now_mono() - *last_err > 5) {
        *last_err = util_now_mono();
        log_warn(NULL, "consumer_error", err);
    }
    if (flush(in, 1) == 0) {
        in->backoff = 0;
        return;
    }
    in->backoff = in->backoff ? in->backoff * 2 : 0.2;
    if (in->backoff > 5)
        in->backoff = 5;
    sleep_secs(in->backoff);
}

static void maybe_log_stats(struct hooks *h, double *last)
{
    double now = util_now_mono();

    if (h->cfg->stats_interval > 0 && now - *last >= h->cfg->stats_interval) {
        *last = now;
        hooks_log_stats(h, "stats");
    }
}

int hooks_ingest(struct hooks *h, volatile sig_atomic_t *stop, char *err)
{
    const char *topics[] = {h->cfg->events_topic};
    struct ingest in = {.h = h};
    struct kafka_consumer_opts co = {
        .group = h->cfg->group,
        .topics = topics,
        .ntopics = 1,
        .session_timeout = h->cfg->session_timeout,
        .heartbeat_interval = h->cfg->heartbeat_interval,
        .fetch_queue_kbytes = 4096,
        .on_rebalance = on_rebalance,
        .ud = &in,
    };
    double last_stats = util_now_mono(), last_err = 0;

    if (!(in.msgs = calloc((size_t)h->cfg->ingest_batch, sizeof *in.msgs)) ||
        !(in.c = kafka_consumer_new(&h->kopts, &co, err))) {
        if (!err[0])
            err_set(err, "out of memory");
        free(in.msgs);
        return -1;
    }
    log_info(NULL, "consuming", "consumer started", "topic", h->cfg->events_topic, "group",
             h->cfg->group);
    while (!*stop) {
        step(&in, &last_err);
        maybe_log_stats(h, &last_stats);
    }
    log_info(NULL, "draining", "signal received: storing what was taken, leaving the group");
    if (flush(&in, 0) < 0)
        batch_clear(&in);      /* not committed: read again by the group */
    kafka_consumer_free(in.c); /* leaves the group; the revoke hook has nothing left */
    free(in.msgs);
    return 0;
}
