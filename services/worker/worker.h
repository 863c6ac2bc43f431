/* worker: the thumbnail worker's shared state, configuration, variant table, counters and
 * the interfaces between its parts (relay, consumer loop, event processing, libvips). */
#ifndef PIX_WORKER_H
#define PIX_WORKER_H

#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "conf.h"
#include "kafka.h"
#include "pg.h"
#include "pool.h"
#include "s3.h"
#include "util.h"

/* ---- configuration (config.c) ---- */

struct worker_config {
    char *listen; /* /healthz, /readyz, /metrics; "" = none */
    struct conf_store store;
    char *kafka_bootstrap;
    char *kafka_options;
    char *upload_topic;
    char *dlq_topic;
    char *group;
    long threads;
    char *variants;
    long webp_quality;
    long webp_effort;
    long jpeg_quality;
    long max_pixels;
    long long max_input_size;
    long long read_block;
    long max_attempts;
    double retry_backoff;
    double retry_backoff_max;
    double session_timeout;
    double heartbeat_interval;
    long max_buffered;
    int relay;
    long relay_batch;
    double relay_poll;
    double relay_delivery_timeout;
    double relay_standby_retry;
    double shutdown_timeout;
    long vips_concurrency;
    double stats_interval;
    char *log_level;
};

extern struct worker_config worker_cfg;
extern const struct conf_opt worker_conf[];
extern const size_t worker_conf_count;

/* ---- variant table (config.c) ---- */

#define VARIANT_MAX 16
#define VARIANT_NAME_MAX 32

enum variant_format { VARIANT_WEBP, VARIANT_JPEG };

struct variant {
    char name[VARIANT_NAME_MAX + 1];
    int box; /* fits in box x box, never enlarged */
    enum variant_format format;
    int quality;
    int effort; /* WebP encoder effort 0..6 (libvips' default 4) */
};

/* Parses "name:box[:webp|jpeg[:quality]],..." into v (sorted by box, largest first); WebP
 * variants get effort 4 (set .effort afterwards to change it). Returns the count, or -1. */
int variants_parse(const char *spec, int webp_q, int jpeg_q, struct variant *v, size_t max,
                   char *err) PIX_WUR;
const char *variant_mime(const struct variant *v);
const char *variant_ext(const struct variant *v);
/* "variants/<content_hash>/<blob_id>/<name>.<ext>" appended to out. 0 or -1. */
int variant_key(buf *out, const char *content_hash, long long blob_id,
                const struct variant *v) PIX_WUR;

/* ---- events (event.c) ---- */

/* image.uploaded, version 1 (see README.md). */
struct upload_event {
    char image_id[37];
    char owner_id[129];
    char content_hash[65];
    char mime_type[128];
    long long size;
};

int event_parse(const char *json, size_t len, struct upload_event *ev, char *err) PIX_WUR;

/* ---- counters ---- */

struct worker_stats {
    long events;           /* messages taken from Kafka */
    long events_done;      /* messages whose offset may be committed */
    long events_invalid;   /* not a version-1 image.uploaded: dead-lettered */
    long variants_built;   /* variant rows that became ready */
    long variants_skipped; /* already ready/failed when the event came (replays, duplicates) */
    long variants_failed;  /* marked failed */
    long blobs_gone;       /* content purged before or during the build */
    long retries;          /* attempts that failed transiently */
    long dlq;              /* events produced to the dead-letter topic */
    long commits;          /* offset commits sent */
    long commit_errors;
    long relay_sent;   /* outbox rows delivered and marked sent */
    long relay_failed; /* outbox rows whose delivery failed (retried later) */
    long relay_batches;
    long captures_stored;      /* blob_capture rows written */
    long capture_field_errors; /* fields present but unreadable in them */
};

#define STAT_ADD(w, field, n) __atomic_add_fetch(&(w)->stats.field, (n), __ATOMIC_RELAXED)
#define STAT_GET(w, field) __atomic_load_n(&(w)->stats.field, __ATOMIC_RELAXED)

/* stats.c: the counters in Prometheus text (the ops listener's /metrics). */
int worker_render_metrics(buf *out, void *ud);

/* ---- partition bookkeeping (parts.c) ---- */

struct job;

/* One assigned partition: messages waiting in offset order, at most one in flight (a
 * partition is processed in order, so its committed offset is simply "last done + 1"). */
struct part {
    char *topic;
    int32_t partition;
    unsigned gen; /* changes on every assignment: completions of older jobs are ignored */
    struct kafka_msg **q;
    size_t qhead, qlen, qcap;
    struct job *inflight;
    int stalled;       /* a job was abandoned: nothing after it may run or be committed */
    int64_t done_next; /* next offset to commit, -1 until something is done */
    int64_t committed; /* what was last committed, -1 none */
};

struct parts {
    struct part *v;
    size_t n, cap;
    size_t rr;       /* round-robin cursor for dispatch */
    size_t buffered; /* messages queued or in flight, over all partitions */
    unsigned next_gen;
};

struct part *parts_find(struct parts *ps, const char *topic, int32_t partition);
/* Adds (or resets) a partition; NULL on allocation failure. */
struct part *parts_assign(struct parts *ps, const char *topic, int32_t partition);
/* Forgets a partition and frees its waiting messages (an in-flight job is left alone). */
void parts_revoke(struct parts *ps, const char *topic, int32_t partition);
/* Queues m on its partition (takes ownership). 0, or -1 if the partition is not assigned
 * or on allocation failure (m is freed either way on -1). */
int parts_push(struct parts *ps, struct kafka_msg *m);
/* A partition with waiting messages and nothing in flight (round robin), or NULL. Pops its
 * next message into *m. */
struct part *parts_next(struct parts *ps, struct kafka_msg **m);
/* Records that the message at offset finished on partition (if gen still matches); ok=0:
 * it was abandoned, so the partition stalls (its offset stays where it is). */
void parts_done(struct parts *ps, const char *topic, int32_t partition, unsigned gen,
                int64_t offset, int ok);
/* Fills tps (up to max) with partitions whose done offset moved past the committed one;
 * parts_committed() then records them. Returns the count. */
size_t parts_pending_commits(struct parts *ps, struct kafka_tp *tps, size_t max);
void parts_committed(struct parts *ps, const struct kafka_tp *tps, size_t n);
size_t parts_inflight(const struct parts *ps);
void parts_free(struct parts *ps);

/* ---- the process ---- */

struct relay;

struct worker {
    const struct worker_config *cfg;
    struct variant variants[VARIANT_MAX];
    size_t nvariants;
    struct s3_config s3cfg;
    struct kafka_opts kopts;
    pg_pool *pg;
    pool *jobs;
    kafka_producer *dlq; /* dead-letter producer (the relay has its own) */
    kafka_consumer *consumer;
    struct relay *relay;
    volatile int stopping; /* SIGTERM: take no new work, cut retry waits short */
    volatile int aborting; /* shutdown deadline near: reads fail, in-flight builds abandon */
    struct parts parts;    /* consumer thread only */
    pthread_mutex_t mu;    /* guards done_head */
    pthread_cond_t cv;
    struct job *done_head;
    size_t running; /* jobs handed to the pool and not yet collected (consumer thread) */
    struct worker_stats stats;
    struct opshttp *ops;
};

/* Per pool-thread context. */
struct worker_tctx {
    struct worker *w;
    s3_client *s3;
};

enum job_result { JOB_DONE, JOB_ABANDONED };

struct job {
    struct worker *w;
    struct kafka_msg *msg;
    unsigned gen;
    volatile int revoked; /* partition taken away: finish the current step, no retries */
    enum job_result result;
    double started;
    struct job *next;
};

/* sql.c */
extern const struct pg_stmt worker_stmts[];
extern const size_t worker_stmts_count;

/* process.c: runs one event on a pool thread (the pool task function). */
void process_job(void *arg, void *tctx);

/* consumer.c */
int worker_consume(struct worker *w, volatile sig_atomic_t *stop, char *err) PIX_WUR;

/* relay.c: the outbox relay thread (leader-elected through an advisory lock). */
struct relay *relay_start(struct worker *w, char *err);
void relay_stop(struct relay *r); /* NULL-safe; joins */
int relay_is_leader(const struct relay *r);

/* stats */
void worker_log_stats(struct worker *w, const char *event);

#endif
