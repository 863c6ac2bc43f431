/* api: the pixplane API service's shared state, per-request context and the helpers every
 * handler uses (auth, database, JSON bodies, errors). */
#ifndef PIX_API_H
#define PIX_API_H

#include <cjson/cJSON.h>
#include <ev.h>
#include <signal.h>

#include "auth.h"
#include "conf.h"
#include "finalize.h"
#include "http.h"
#include "pg.h"
#include "metrics.h"
#include "pool.h"
#include "ratelimit.h"
#include "router.h"
#include "s3.h"
#include "util.h"

struct api_config {
    char *listen;
    char *ops_listen;
    struct conf_store store;
    long db_pool;
    long workers;
    char *s3_public_endpoint;
    char *jwt_secret;
    char *log_level;
    long long max_file_size;
    long long chunk_size;
    long long min_chunk_size;
    long max_chunks;
    double session_ttl;
    double part_url_ttl;
    double complete_lease;
    long long verify_async_threshold;
    double verify_lease;
    int one_put;
    long verify_jobs;
    long pop_bank;
    long pop_budget;
    double pop_budget_refill;
    long dedup_threshold;
    char *upload_topic;
    double download_url_ttl;
    long image_cache;
    double retention;
    char *variant_types;
    long rate_limit;
    long rate_burst;
    long page_size;
    long shares_per_image;
    long shares_per_user;
    long albums_per_user;
    long album_items;
    long album_members;
    long album_ids_per_request;
    long sessions_per_user;
    long batch_max_items;
    long long inflight_bytes_per_user;
    double sync_retention;
    double sse_heartbeat;
    long sse_streams_per_user;
    long sse_max_streams;
    long sse_workers;
    double stream_ticket_ttl;
    int sse_query_token;
    char *cors_origins;
    char *web_dir;
    int access_log;
    long long max_body;
    double body_timeout;
    long long min_body_rate;
    long max_conns_per_addr;
    double drain_timeout;
    /* webhooks.c */
    char *webhook_allow_addrs;
    long webhook_endpoints;
    double webhook_replay_range;
    long webhook_replay_max;
    /* quotas and the pre-upload hook (quota.c, prehook.c) */
    long long quota_bytes;
    long quota_images;
    double quota_event_interval;
    char *pre_upload_hook_url;
    double pre_upload_hook_timeout;
    char *pre_upload_hook_fail;
    /* public links (links.c) */
    char *public_url;
    double link_max_ttl;
    int link_allow_forever;
    long links_per_user;
    double link_ticket_ttl;
    long link_unlock_attempts;
    double link_unlock_refill;
    /* reads from standbys (ryw.c) */
    char *database_read_url;
    long db_read_pool;
    double read_wait;
};

extern struct api_config api_cfg; /* filled from api_conf */
extern const struct conf_opt api_conf[];
extern const size_t api_conf_count;

struct api {
    const struct api_config *cfg;
    struct ev_loop *loop;
    struct s3_config s3cfg;
    pg_pool *pg;
    pool *workers;
    pool *jobs;        /* background work that outlives its request (large verifications) */
    pool *stream_pool; /* SSE deltas: a budget of their own, never the request workers' */
    http_server *http;
    ratelimit *rl;
    ratelimit *link_rl; /* password attempts on public links, per link and per address */
    struct stream_hub *streams;
    struct imgcache_gens *gens; /* change stamps for the workers' image caches */
    metrics *metrics;
    struct cors *cors;  /* PIXPLANE_CORS_ORIGINS */
    struct webapp *web; /* the browser pages at /app/ (NULL: off) */
    const unsigned char *jwt_key;
    size_t jwt_keylen;
    volatile sig_atomic_t draining;
    struct opshttp *ops;   /* PIXPLANE_OPS_LISTEN: /metrics, /healthz, /readyz, no auth */
    ev_timer housekeeping; /* periodic background chores (upload_housekeeping) */
    int housekeeping_busy; /* a chore is queued or running (atomic) */
    ev_timer verify_sweep; /* pending images whose verification lease ran out */
    int verify_sweep_busy; /* a sweep is queued or running (atomic) */
    int verifications;     /* verifications queued or running (atomic) */
    struct ssrf_policy *webhook_ssrf; /* which endpoint urls may be registered */
    finalize_held *held; /* completion leases a database outage kept (upload_held_sweep) */
    ev_timer held_sweep; /* every second while there are any */
    int held_busy;       /* a release pass is queued or running (atomic) */
    int unlocks;         /* link passwords being hashed or checked (scrypt; atomic) */
    int read_waits;      /* reads napping for a standby to replay (ryw.c; atomic) */
    pg_pool *pg_read;    /* DATABASE_READ_URL (NULL: reads use pg) */
    struct ryw *ryw;     /* the write positions acknowledged here, per user (ryw.h) */
};

/* Per worker-thread context. */
struct api_tctx {
    struct api *api;
    s3_client *s3;
    auth_cache *auth;      /* verified tokens this thread has seen */
    struct imgcache *imgs; /* image rows this thread read (imgcache.h) */
    void *hook;            /* the pre-upload hook's curl handle, kept for its connection */
};

/* One request being handled on a worker thread. */
struct api_call {
    struct api *api;
    struct api_tctx *t;
    http_req *req;
    const char *rid;
    struct auth_claims user;
    struct route_params params;
    pg_conn *db;
    int read;          /* a ROUTE_READ route: api_db may take a standby connection */
    int on_standby;    /* db came from the read pool */
    uint64_t after;    /* the write position the read must reflect (Pixplane-Read-After) */
    uint64_t read_xid; /* a sync snapshot's watermark the read's server must have passed */
};

typedef void (*api_handler)(struct api_call *c);

/* ROUTE_STREAM_AUTH: also a stream ticket (?ticket=; EventSource cannot set headers) */
/* ROUTE_BODYLESS: answered from the head alone; a body (the chunk bytes) is never read */
/* ROUTE_READ: only reads; may run on a standby that reflects the caller's writes (ryw.h) */
enum route_flags {
    ROUTE_PUBLIC = 1,
    ROUTE_ADMIN = 2,
    ROUTE_STREAM_AUTH = 4,
    ROUTE_BODYLESS = 8,
    ROUTE_READ = 16
};

extern const struct route api_routes[];
extern const size_t api_routes_count;

/* server.c */
int api_init(struct api *api, char *err) PIX_WUR;
void api_fini(struct api *api);
/* The database connection for this call, acquired on first use; on failure answers 503
 * and returns NULL (the handler just returns). */
pg_conn *api_db(struct api_call *c);
/* Answers 503 (database unavailable) or 500 for a failed statement, and logs it. */
void api_db_fail(struct api_call *c, const char *what, const char *err);
void api_s3_fail(struct api_call *c, const char *what, const char *err);
void api_error(struct api_call *c, int status, const char *code, const char *msg);
/* Runs a prepared statement on the call's connection: the result, or NULL answered (503
 * database unavailable, 500 a failed statement). */
PGresult *api_exec(struct api_call *c, const char *stmt, int n, const char *const *p);
/* Answers 429 code/msg with Retry-After: the whole seconds after retry (> 0). */
void api_retry_after(struct api_call *c, double retry, const char *code, const char *msg);
/* Parsed JSON object body, or NULL after answering 400. Free with cJSON_Delete. */
cJSON *api_body(struct api_call *c);
/* A user-visible name: 1..max bytes of valid UTF-8 without control characters. */
int api_valid_name(const char *s, size_t max);
/* Route parameter `name` if it is a canonical UUID, else answers 404 and returns NULL. */
const char *api_param_uuid(struct api_call *c, const char *name);
/* Statements of every module, prepared on each connection. */
extern const struct pg_stmt api_stmts[];
extern const size_t api_stmts_count;

/* An image as the caller may see it (columns of API_IMAGE_COLS). */
struct api_img {
    char id[37], owner[AUTH_SUB_MAX + 1], name[256], mime[128], hash[65], visibility[16];
    char status[16], created[32], updated[32], taken[32], path[512];
    long long size;
    int owner_is_caller, in_retention;
};
/* Columns api_img_from_row reads (images aliased i). */
#define API_IMAGE_TS(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"
#define API_IMAGE_TS_MS(col)                                                                       \
    "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"
#define API_IMAGE_COLS                                                                             \
    "i.image_id, i.owner_id, i.name, i.size, i.mime_type, i.content_hash, i.visibility,"           \
    " i.status, " API_IMAGE_TS("i.created_at") ", " API_IMAGE_TS(                                  \
        "i.updated_at") ", " API_IMAGE_TS_MS("i.taken_at")
#define API_IMAGE_NCOLS 11 /* the first column after API_IMAGE_COLS */

/* images.c */
void api_img_from_row(const PGresult *r, int row, struct api_img *m);
cJSON *api_img_json(const struct api_img *m);
void image_get(struct api_call *c);
void image_metadata(struct api_call *c);
void image_patch(struct api_call *c);
void image_list(struct api_call *c);
void image_variant(struct api_call *c);
void image_share(struct api_call *c);
void image_unshare(struct api_call *c);
void image_shared_with_me(struct api_call *c);
void image_delete(struct api_call *c);
void image_restore(struct api_call *c);
void image_cleanup(struct api_call *c);
/* Content-Disposition "attachment" naming the file name (ASCII and RFC 6266 UTF-8) into
 * out. 0 or -1. */
int api_disposition(const char *name, buf *out) PIX_WUR;
/* Listing pages: an opaque keyset cursor of "[mark]<key as text>|<id>" (malloc'd; the
 * mark, 0 for none, tells the listings apart), ?cursor= of a listing with that mark decoded
 * into key and id (0, both empty when absent; -1 answered 400), ?limit= (1..200, default
 * page-size; -1 answered). */
char *api_cursor_make(char mark, const char *key, const char *id);
int api_cursor_parse(struct api_call *c, char mark, char *key, size_t keylen, char *id) PIX_WUR;
long api_page_limit(struct api_call *c);

/* sync.c */
void sync_get(struct api_call *c);
void sync_prune(struct api_call *c);
void sync_stream(struct api_call *c);

/* observe.c */
int api_metrics_init(struct api *api) PIX_WUR;
void api_observe(http_req *r, int status, void *ud);
void api_count(struct api *api, const char *name, const char *labels, double v);
void api_metrics(struct api_call *c);
/* Starts the operations listener if ops-listen is set. 0, or -1 with err. */
int api_ops_start(struct api *api, char *err) PIX_WUR;

/* health.c */
void api_healthz(struct api_call *c);
void api_readyz(struct api_call *c);

/* upload.c */
struct upload_plan {
    long long chunk_size;
    int chunk_count;
};
/* Chunk size: `preferred`, never below `min`, raised (in whole MiB) until the count fits
 * in max_chunks. -1 if size is not in 1..(max part size * max_chunks). */
int upload_plan(long long size, long long preferred, long long min, long max_chunks,
                struct upload_plan *out) PIX_WUR;
void upload_create(struct api_call *c);
void upload_batch(struct api_call *c); /* batch.c */
void upload_status(struct api_call *c);
void upload_part_urls(struct api_call *c);
void upload_part_redirect(struct api_call *c);
void upload_complete(struct api_call *c);
void upload_proof(struct api_call *c);
void upload_abort(struct api_call *c);
/* On the loop, every HOUSEKEEPING_SECS: queues the upload chores on the background pool
 * (forgetting challenge budgets that have refilled completely), one at a time. */
void upload_housekeeping(struct api *api);
/* On the loop, every VERIFY_SWEEP_SECS(lease): queues the sweep that takes over the
 * verification of pending images whose lease ran out (after a crash or restart). */
void upload_verify_sweep(struct api *api);
void upload_held_sweep(struct api *api);
#define VERIFY_SWEEP_SECS(lease) ((lease) / 3 < 1 ? 1.0 : (lease) / 3 > 10 ? 10.0 : (lease) / 3)
#define HOUSEKEEPING_SECS 60.0
#define HELD_LEASES_MAX 4096 /* completion leases kept for release after an outage */

#endif
