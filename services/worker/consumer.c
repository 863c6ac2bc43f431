/* consumer: the consumer thread's loop: fetch events, hand each partition's next event to
 * the processing pool (one at a time per partition, so order and the commit position are
 * simple), commit offsets of finished events, and drain cleanly on rebalance and SIGTERM. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "worker.h"

#define POLL_MS 50
#define MAX_COMMIT 256

/* Moves finished jobs from the pool's list into the partition table. */
static void collect_done(struct worker *w)
{
    struct job *j, *next;

    pthread_mutex_lock(&w->mu);
    j = w->done_head;
    w->done_head = NULL;
    pthread_mutex_unlock(&w->mu);
    for (; j; j = next) {
        next = j->next;
        parts_done(&w->parts, j->msg->topic, j->msg->partition, j->gen, j->msg->offset,
                   j->result == JOB_DONE);
        if (j->result == JOB_DONE)
            STAT_ADD(w, events_done, 1);
        w->running--;
        kafka_msg_free(j->msg);
        free(j);
    }
}

/* Waits up to secs for a job to finish (or returns at once if one has). */
static void wait_done(struct worker *w, double secs)
{
    struct timespec ts;

    util_deadline(&ts, secs);
    pthread_mutex_lock(&w->mu);
    if (!w->done_head)
        pthread_cond_timedwait(&w->cv, &w->mu, &ts);
    pthread_mutex_unlock(&w->mu);
}

static void dispatch(struct worker *w)
{
    struct kafka_msg *m;
    struct part *p;
    struct job *j;

    while (!__atomic_load_n(&w->stopping, __ATOMIC_RELAXED) &&
           w->running < (size_t)w->cfg->threads && (p = parts_next(&w->parts, &m))) {
        if ((j = calloc(1, sizeof *j))) {
            j->w = w;
            j->msg = m;
            j->gen = p->gen;
            j->started = util_now_mono();
            p->inflight = j; /* before the pool may run (and finish) it */
            w->running++;
            if (pool_submit(w->jobs, process_job, j) == 0)
                continue;
            p->inflight = NULL;
            w->running--;
            free(j);
        }
        /* cannot happen with running < threads; stall rather than skip the event */
        log_error(NULL, "dispatch_failed", "cannot hand an event to the pool", "topic", m->topic);
        kafka_msg_free(m);
        p->stalled = 1;
        w->parts.buffered--;
    }
}

/* all=1: every partition with a done offset (the final, synchronous commit). */
static void commit(struct worker *w, kafka_consumer *c, int async, int all)
{
    struct kafka_tp tps[MAX_COMMIT];
    char err[ERR_MAX] = "";
    size_t n;

    if (all)
        for (size_t i = 0; i < w->parts.n; i++)
            if (w->parts.v[i].done_next >= 0)
                w->parts.v[i].committed = -1;
    if (!(n = parts_pending_commits(&w->parts, tps, MAX_COMMIT)))
        return;
    STAT_ADD(w, commits, 1);
    if (kafka_commit(c, tps, n, async, err) < 0) {
        STAT_ADD(w, commit_errors, 1);
        log_warn(NULL, "commit_failed", err);
        return;
    }
    parts_committed(&w->parts, tps, n);
}

static int tps_busy(struct worker *w, const struct kafka_tp *tps, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        struct part *p = parts_find(&w->parts, tps[i].topic, tps[i].partition);
        if (p && p->inflight)
            return 1;
    }
    return 0;
}

static void log_tps(const char *event, const char *msg, const struct kafka_tp *tps, size_t n)
{
    buf b = {0};

    for (size_t i = 0; i < n; i++)
        if (buf_printf(&b, "%s%s/%d", i ? "," : "", tps[i].topic, (int)tps[i].partition) < 0)
            break;
    log_info(NULL, event, msg, "partitions", b.data ? b.data : "");
    buf_free(&b);
}

/* Rebalance hook (consumer thread). On revoke the partitions' in-flight events finish (no
 * more retries), what is done is committed, and their queued events are dropped. */
static void on_rebalance(int assigned, int lost, const struct kafka_tp *tps, size_t n, void *ud)
{
    struct worker *w = ud;
    double deadline =
        util_now_mono() +
        (__atomic_load_n(&w->stopping, __ATOMIC_RELAXED) ? 0 : w->cfg->shutdown_timeout);
    kafka_consumer *c = w->consumer;

    if (assigned) {
        for (size_t i = 0; i < n; i++)
            if (!parts_assign(&w->parts, tps[i].topic, tps[i].partition))
                fatal("out_of_memory", "cannot track partition %d", (int)tps[i].partition);
        log_tps("partitions_assigned", "partitions assigned", tps, n);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        struct part *p = parts_find(&w->parts, tps[i].topic, tps[i].partition);
        if (p && p->inflight)
            __atomic_store_n(&p->inflight->revoked, 1, __ATOMIC_RELAXED);
    }
    collect_done(w);
    while (tps_busy(w, tps, n) && util_now_mono() < deadline) {
        wait_done(w, 0.05);
        collect_done(w);
    }
    if (!lost && c)
        commit(w, c, 0, 1);
    for (size_t i = 0; i < n; i++)
        parts_revoke(&w->parts, tps[i].topic, tps[i].partition);
    log_tps("partitions_revoked", lost ? "partitions lost" : "partitions revoked", tps, n);
}

/* SIGTERM: no new events; in-flight ones get most of the deadline to finish, then their
 * reads are made to fail so they abandon (their offsets are not committed). */
static void drain(struct worker *w, kafka_consumer *c)
{
    double start = util_now_mono(), total = w->cfg->shutdown_timeout;

    __atomic_store_n(&w->stopping, 1, __ATOMIC_RELAXED);
    collect_done(w);
    while (w->running > 0 && util_now_mono() - start < total) {
        if (!__atomic_load_n(&w->aborting, __ATOMIC_RELAXED) &&
            util_now_mono() - start >= total * 0.75) {
            log_warn(NULL, "abandoning", "shutdown deadline near: abandoning in-flight images");
            __atomic_store_n(&w->aborting, 1, __ATOMIC_RELAXED);
        }
        wait_done(w, 0.05);
        collect_done(w);
        commit(w, c, 1, 0);
    }
    commit(w, c, 0, 1);
}

static void maybe_log_stats(struct worker *w, double *last)
{
    double now = util_now_mono();

    if (w->cfg->stats_interval > 0 && now - *last >= w->cfg->stats_interval) {
        *last = now;
        worker_log_stats(w, "stats");
    }
}

static void poll_once(struct worker *w, kafka_consumer *c, double *last_err)
{
    struct kafka_msg *m = NULL;
    char err[ERR_MAX] = "";
    int rc = kafka_consumer_poll(c, POLL_MS, &m, err);

    if (rc > 0) {
        STAT_ADD(w, events, 1);
        if (parts_push(&w->parts, m) < 0)
            log_warn(NULL, "event_dropped", "event for a partition not assigned here");
    } else if (rc < 0 && util_now_mono() - *last_err > 5) {
        *last_err = util_now_mono();
        log_warn(NULL, "consumer_error", err);
    }
}

int worker_consume(struct worker *w, volatile sig_atomic_t *stop, char *err)
{
    const char *topics[] = {w->cfg->upload_topic};
    struct kafka_consumer_opts co = {
        .group = w->cfg->group,
        .topics = topics,
        .ntopics = 1,
        .session_timeout = w->cfg->session_timeout,
        .heartbeat_interval = w->cfg->heartbeat_interval,
        .fetch_queue_kbytes = 1024,
        .on_rebalance = on_rebalance,
        .ud = w,
    };
    double last_stats = util_now_mono(), last_err = 0;

    if (!(w->consumer = kafka_consumer_new(&w->kopts, &co, err)))
        return -1;
    log_info(NULL, "consuming", "consumer started", "topic", w->cfg->upload_topic, "group",
             w->cfg->group);
    while (!*stop) {
        collect_done(w);
        dispatch(w);
        commit(w, w->consumer, 1, 0);
        maybe_log_stats(w, &last_stats);
        if (w->parts.buffered >= (size_t)w->cfg->max_buffered)
            wait_done(w, POLL_MS / 1000.0);
        else
            poll_once(w, w->consumer, &last_err);
    }
    log_info(NULL, "draining", "signal received, draining");
    drain(w, w->consumer);
    kafka_consumer_free(w->consumer); /* leaves the group; revoke hook commits again */
    w->consumer = NULL;
    collect_done(w);
    return 0;
}
