/* rec: the reconciler's shared state: configuration, the run context every sweep works in,
 * counters and reports, and the interfaces between its parts (sweeps, run, metrics). */
#ifndef PIX_REC_H
#define PIX_REC_H

#include <signal.h>
#include <stdio.h>
#include <stddef.h>
#include <time.h>

#include "conf.h"
#include "pg.h"
#include "s3.h"
#include "util.h"

/* ---- configuration (config.c) ---- */

struct rec_config {
    struct conf_store store;
    char *upload_topic;
    char *log_level;
    int once;
    int dry_run;
    char *only;
    char *report;
    double interval;
    char *listen;
    long batch;
    double session_ttl;
    double complete_lease;
    double retention;
    double expired_grace;
    double lease_grace;
    double multipart_grace;
    double orphan_grace;
    double audit_every;
    double outbox_stuck;
    double variant_stuck;
    long requeue_max;
    long capture_batch;
    double capture_grace;
    long partitions_ahead;
    double sync_retention;
    double outbox_retention;
    long s3_workers;
    long s3_page_size;
};

extern struct rec_config rec_cfg;
extern const struct conf_opt rec_conf[];
extern const size_t rec_conf_count;

/* Limits, and the rule that nothing younger than an upload can legitimately be is ever
 * deleted (orphan-grace >= session-ttl + complete-lease). 0 or -1 with err. */
int rec_config_check(const struct rec_config *c, char *err) PIX_WUR;

/* ---- sweeps, in the order a run takes them ---- */

enum rec_sweep_id {
    REC_HALF_COMMITTED,   /* leases run out on 'completing'/'verifying' sessions */
    REC_EXPIRED_SESSIONS, /* 'uploading' past expires_at */
    REC_ORPHAN_MULTIPART, /* multipart uploads under blobs/ without a live session */
    REC_REFCOUNT,         /* audit: ref_count against image rows */
    REC_RETENTION,        /* tombstones, images past retention, unreferenced blobs */
    REC_ORPHAN_OBJECTS,   /* audit: objects under blobs/ and variants/ without a row */
    REC_STUCK,            /* outbox rows and variants that do not progress */
    REC_CAPTURE,          /* audit: content without capture metadata: an event for the worker */
    REC_USAGE,            /* audit: users' usage counters against their images and sessions */
    REC_PARTITIONS,       /* change_log and outbox: days ahead created, expired days dropped */
    REC_NSWEEPS
};

const char *rec_sweep_name(int id);
/* Bit set of the sweeps named in a comma-separated list ("" or NULL: all). -1 if a name
 * is unknown (err says which). */
long rec_sweeps_parse(const char *list, char *err);

struct rec_counts {
    long examined;   /* candidates looked at */
    long actions;    /* repairs made (dry run: repairs a real run would make) */
    long errors;     /* repairs that failed; the next run tries again */
    long unrepaired; /* problems left for a human (at a cap, drift that blocks a purge) */
    double seconds;
    int state; /* REC_SKIPPED, REC_NOT_DUE, REC_DONE, REC_FAILED */
};

enum { REC_SKIPPED, REC_NOT_DUE, REC_DONE, REC_FAILED };

struct rec_report {
    struct rec_counts sweep[REC_NSWEEPS];
    int dry_run;
    int locked; /* 1: ran holding the lock; 0: another reconciler holds it */
    double seconds;
    time_t started;
};

struct rec_fanout;

struct rec {
    const struct rec_config *cfg;
    pg_pool *pg;
    pg_conn *db; /* for the length of a run */
    struct s3_config s3cfg;
    s3_client *s3;
    s3_client *lister;      /* listings only: repairs run while a listing's page is parsed */
    struct rec_fanout *fan; /* threads for storage calls (NULL: in line) */
    PGconn *lock;           /* holds the advisory lock while connected */
    double lock_checked;
    long only;   /* sweeps to run (bit per rec_sweep_id) */
    long forced; /* named by --only: audits run whatever their schedule */
    volatile sig_atomic_t *stop;
    int cur;  /* the sweep running */
    int more; /* the running audit stopped at its cap: it stays due */
    struct rec_report rep;
    char (*dry_zero)[65]; /* dry run: blobs the refcount sweep would set to 0 */
    size_t ndry_zero, cap_dry_zero;
};

/* Every sweep: 0 when it went through (single repairs may have failed and are counted),
 * -1 with err when it had to stop (database or storage unavailable, run stopping). */
int sweep_half_committed(struct rec *r, char *err) PIX_WUR;
int sweep_expired_sessions(struct rec *r, char *err) PIX_WUR;
int sweep_orphan_multipart(struct rec *r, char *err) PIX_WUR;
int sweep_refcount(struct rec *r, char *err) PIX_WUR;
int sweep_retention(struct rec *r, char *err) PIX_WUR;
int sweep_orphan_objects(struct rec *r, char *err) PIX_WUR;
int sweep_stuck(struct rec *r, char *err) PIX_WUR;
int sweep_capture(struct rec *r, char *err) PIX_WUR;
int sweep_usage(struct rec *r, char *err) PIX_WUR;
int sweep_partitions(struct rec *r, char *err) PIX_WUR;

/* ---- actions (act.c) ---- */

/* One repair, or in a dry run one repair a real run would make: one JSON line (event
 * reconcile_action: sweep, action, target, dry_run, then up to three detail key/value
 * pairs, NULL-terminated) and one count. */
void rec_did(struct rec *r, const char *action, const char *target, ...) __attribute__((sentinel));
/* A repair that failed (left for the next run): a warning line and an error count. */
void rec_failed(struct rec *r, const char *action, const char *target, const char *err);
/* A problem the reconciler will not repair: a warning line, counted as unrepaired. */
void rec_unrepaired(struct rec *r, const char *what, const char *target, const char *why);
void rec_examined(struct rec *r, long n);
/* Between batches: 1 (err set) if the run must stop: a signal, or the lock was lost. */
int rec_stopping(struct rec *r, char *err);
/* Runs a prepared statement of rec_stmts; NULL with err on failure. */
PGresult *rec_exec(struct rec *r, const char *stmt, int n, const char *const *p, char *err);
/* Appends s to a PostgreSQL array literal under construction ("{" first, "}" at the end). */
int rec_array_add(buf *b, const char *s) PIX_WUR;
/* Dry run: remembers a blob the refcount sweep would set to zero. */
void rec_dry_zero_add(struct rec *r, const char *hash);

/* A keyset-paginated list statement: parameters are fixed[0..nfixed), then the keyset
 * (nkeys values, starting at keys[] and then taken from columns key_cols of each page's
 * last row), then the page size (cfg->batch). fn gets each page; -1 from it stops. */
typedef int (*rec_page_fn)(struct rec *r, const PGresult *page, void *ud, char *err);
struct rec_pager {
    const char *stmt;
    int nfixed;
    const char *fixed[3];
    int nkeys;
    int key_cols[3];
    char keys[3][256];
    rec_page_fn fn;
    void *ud;
};
/* Pages through the statement until a short page. 0, or -1 with err. */
int rec_pages(struct rec *r, struct rec_pager *pg, char *err) PIX_WUR;
/* Seconds as a statement parameter. */
void rec_secs(char out[32], double secs);

/* ---- storage calls in parallel (fanout.c) ---- */

/* One storage task on item (a worker thread's own S3 client; no database calls: the run's
 * connection is not shared). Reports with rec_did / rec_failed, which are thread-safe. */
typedef void (*rec_task_fn)(struct rec *r, s3_client *s3, void *item);
struct rec_fanout *rec_fanout_new(int threads, struct s3_config *s3cfg);
void rec_fanout_free(struct rec_fanout *f); /* NULL-safe */
/* Runs fn on each of the n items (size bytes apart) and returns when all are done. */
void rec_fanout(struct rec *r, rec_task_fn fn, void *items, size_t size, size_t n);

/* ---- the statements (sql.c) ---- */

extern const struct pg_stmt rec_stmts[];
extern const size_t rec_stmts_count;

/* ---- runs (run.c) ---- */

/* Connects the pool, the storage client and the lock connection. 0 or -1 with err. */
int rec_init(struct rec *r, const struct rec_config *cfg, volatile sig_atomic_t *stop,
             char *err) PIX_WUR;
void rec_fini(struct rec *r);
/* Takes the advisory lock (session-level, on its own connection): 1 taken, 0 another
 * reconciler holds it, -1 with err. */
int rec_lock_take(struct rec *r, char *err) PIX_WUR;
void rec_lock_drop(struct rec *r);
/* One pass of every selected sweep under the lock; fills r->rep. */
void rec_run(struct rec *r);
/* 0 clean, 1 repaired (dry run: would repair) something, 2 an error. */
int rec_exit_code(const struct rec_report *rep);

/* ---- reports and metrics (report.c, metrics.c) ---- */

void rec_report_print(const struct rec_report *rep, int json, FILE *out);
/* One summary log line (daemon mode). */
void rec_report_log(const struct rec_report *rep);

typedef struct rec_metrics rec_metrics;
rec_metrics *rec_metrics_new(void);
void rec_metrics_free(rec_metrics *m); /* NULL-safe */
void rec_metrics_add(rec_metrics *m, const struct rec_report *rep);
void rec_metrics_leader(rec_metrics *m, int leader);
/* For common/opshttp: the Prometheus text of m; ready (1) unless the last pass had a
 * sweep fail (database or storage unreachable). */
int rec_metrics_render(buf *out, void *m);
int rec_metrics_ready(void *m);

#endif
