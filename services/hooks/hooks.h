/* hooks: the webhook delivery service's shared state, configuration, counters and the
 * interfaces between its parts (event intake from Kafka, delivery loop, signing, upkeep). */
#ifndef PIX_HOOKS_H
#define PIX_HOOKS_H

#include <signal.h>
#include <stddef.h>

#include "conf.h"
#include "kafka.h"
#include "metrics.h"
#include "opshttp.h"
#include "pg.h"
#include "ssrf.h"
#include "util.h"

/* ---- configuration (config.c) ---- */

struct hooks_config {
    char *listen; /* /healthz, /readyz, /metrics; "" = none */
    char *database_url;
    double db_statement_timeout;
    char *kafka_bootstrap;
    char *kafka_options;
    char *events_topic;
    char *group;
    double session_timeout;
    double heartbeat_interval;
    long ingest_batch;
    long concurrency;
    double timeout;
    char *allow_addrs;
    double max_age;
    double retry_backoff;
    double retry_backoff_max;
    long disable_failures;
    double disable_after;
    double poll;
    double retention;
    double upkeep_interval;
    double shutdown_timeout;
    double stats_interval;
    char *log_level;
};

extern struct hooks_config hooks_cfg;
extern const struct conf_opt hooks_conf[];
extern const size_t hooks_conf_count;

/* ---- events (event.c) ---- */

/* One integration event as pix_event writes it: {"version":1,"id","type","occurred_at",
 * "data"}: the fields the service files it by. */
struct hooks_event {
    char id[37];
    char type[65];
    char occurred_at[40];
};

/* 0, or -1 with err: not a version-1 integration event (the caller skips it). */
int hooks_event_parse(const char *json, size_t len, struct hooks_event *ev, char *err) PIX_WUR;

/* ---- signing (sign.c) ---- */

/* "v1," + base64 of HMAC-SHA256 over 43 bytes at most: room for the header value. */
#define HOOKS_SIG_MAX 64

/* Standard Webhooks: HMAC-SHA256(base64-decoded secret after "whsec_",
 * "<msg_id>.<timestamp>.<body>"), as "v1,<base64>". 0, or -1 with err (malformed secret). */
int hooks_sign(const char *secret, const char *msg_id, long long timestamp, const char *body,
               size_t body_len, char out[HOOKS_SIG_MAX], char *err) PIX_WUR;

/* ---- counters (stats.c) ---- */

struct hooks_stats {
    long events;          /* messages taken from Kafka */
    long events_stored;   /* new events stored (and fanned out) */
    long events_seen;     /* already stored: a redelivered message */
    long events_invalid;  /* not a version-1 integration event: skipped */
    long fanned_out;      /* deliveries created by the fan-out */
    long commits;         /* offset commits sent */
    long commit_errors;   /* failed offset commits */
    long store_errors;    /* batches whose transaction failed (retried) */
    long delivered;       /* attempts answered 2xx */
    long attempts_failed; /* attempts that failed (retried later, or given up) */
    long failed;          /* deliveries given up (older than max-age) */
    long refused;         /* attempts the address guard refused before connecting */
    long disabled;        /* endpoints this process disabled */
    long pruned;          /* rows removed past the retention */
};

#define STAT_ADD(h, field, n) __atomic_add_fetch(&(h)->stats.field, (n), __ATOMIC_RELAXED)
#define STAT_GET(h, field) __atomic_load_n(&(h)->stats.field, __ATOMIC_RELAXED)

/* ---- the process ---- */

struct deliver;

struct hooks {
    const struct hooks_config *cfg;
    struct kafka_opts kopts;
    pg_pool *pg;
    ssrf_policy *ssrf;
    metrics *m; /* histograms and gauges; the counters are in stats */
    struct deliver *deliver;
    opshttp *ops;
    struct hooks_stats stats;
};

/* sql.c */
extern const struct pg_stmt hooks_stmts[];
extern const size_t hooks_stmts_count;

/* stats.c */
int hooks_metrics_init(struct hooks *h, char *err) PIX_WUR;
int hooks_render_metrics(buf *out, void *ud);
void hooks_log_stats(struct hooks *h, const char *event);

/* ingest.c: the consumer loop (main thread) until *stop: stores each event and its
 * deliveries in one transaction per batch, then commits the batch's offsets. */
int hooks_ingest(struct hooks *h, volatile sig_atomic_t *stop, char *err) PIX_WUR;

/* deliver.c: the delivery thread (claims due deliveries, sends them with libcurl multi). */
struct deliver *deliver_start(struct hooks *h, char *err);
/* Wakes the delivery loop: new deliveries were committed. Thread-safe, NULL-safe. */
void deliver_wake(struct deliver *d);
/* Stops taking work, lets transfers in flight finish (bounded), joins. NULL-safe. */
void deliver_stop(struct deliver *d);

/* upkeep.c: prunes past the retention and refreshes the backlog gauges (delivery thread). */
void hooks_upkeep(struct hooks *h);

#endif
