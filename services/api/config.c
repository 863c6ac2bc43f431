/* config: the API service's configuration table (flags, environment variables, defaults,
 * help). `pixplane-api --help` prints it; docs/configuration.md is generated from it. */
#include "api.h"
#include "conf.h"

struct api_config api_cfg;

#define C(field) (&api_cfg.field)

const struct conf_opt api_conf[] = {
    {"listen", "PIXPLANE_LISTEN", CONF_STR, C(listen), "127.0.0.1:8080",
     "address:port the HTTP API listens on"},
    {"ops-listen", "PIXPLANE_OPS_LISTEN", CONF_STR, C(ops_listen), "",
     "address:port of the operations listener: /metrics, /healthz and /readyz without "
     "authentication, for Prometheus and probes; keep it off the public network (empty: "
     "none; the public /metrics needs an admin token either way)"},
    CONF_OPT_DATABASE(C),
    CONF_OPTS_S3(C),
    {"db-pool", "PIXPLANE_DB_POOL", CONF_INT, C(db_pool), "16", "PostgreSQL connections kept open"},
    {"workers", "PIXPLANE_WORKERS", CONF_INT, C(workers), "16",
     "request handler threads (blocking database and storage calls run there)"},
    {"s3-public-endpoint", "S3_PUBLIC_ENDPOINT", CONF_STR, C(s3_public_endpoint), "",
     "S3 endpoint put in presigned URLs for clients (default: s3-endpoint)"},
    {"jwt-secret", "PIXPLANE_JWT_SECRET", CONF_STR, C(jwt_secret), "",
     "HS256 key that signs bearer tokens (required, at least 32 bytes)"},
    CONF_OPT_LOG_LEVEL(C),
    {"max-file-size", "PIXPLANE_MAX_FILE_SIZE", CONF_SIZE, C(max_file_size), "50GiB",
     "largest accepted upload (larger: 413)"},
    {"chunk-size", "PIXPLANE_CHUNK_SIZE", CONF_SIZE, C(chunk_size), "8MiB",
     "preferred chunk (multipart part) size"},
    {"min-chunk-size", "PIXPLANE_MIN_CHUNK_SIZE", CONF_SIZE, C(min_chunk_size), "5MiB",
     "smallest chunk size (S3's minimum part size)"},
    {"max-chunks", "PIXPLANE_MAX_CHUNKS", CONF_INT, C(max_chunks), "10000",
     "most chunks per upload (S3 allows 10,000 parts)"},
    {"session-ttl", "PIXPLANE_SESSION_TTL", CONF_SECS, C(session_ttl), "24h",
     "how long an upload session stays open"},
    {"part-url-ttl", "PIXPLANE_PART_URL_TTL", CONF_SECS, C(part_url_ttl), "10m",
     "validity of presigned chunk upload URLs"},
    {"complete-lease", "PIXPLANE_COMPLETE_LEASE", CONF_SECS, C(complete_lease), "15m",
     "how long one completer owns a session before a retry may take over"},
    {"complete-wait", "PIXPLANE_COMPLETE_WAIT", CONF_SECS, C(complete_wait), "30s",
     "how long a repeated complete waits for the first one's result"},
    {"verify-async-threshold", "PIXPLANE_VERIFY_ASYNC_THRESHOLD", CONF_SIZE,
     C(verify_async_threshold), "1GiB",
     "uploads at least this large are verified in the background (complete answers 202)"},
    {"verify-jobs", "PIXPLANE_VERIFY_JOBS", CONF_INT, C(verify_jobs), "2",
     "background verification threads"},
    {"pop-bank", "PIXPLANE_POP_BANK", CONF_INT, C(pop_bank), "4",
     "one-time dedup challenges prepared per content while it is verified (0-64; 0: every "
     "proof reads storage)"},
    {"pop-budget", "PIXPLANE_POP_BUDGET", CONF_INT, C(pop_budget), "3",
     "dedup challenges a user may be issued for one declared sha256 before uploading is the "
     "only way (0-100; 0: no dedup without upload)"},
    {"pop-budget-refill", "PIXPLANE_POP_BUDGET_REFILL", CONF_SECS, C(pop_budget_refill), "6h",
     "time for one unit of a user's per-content challenge budget to come back"},
    {"dedup-threshold", "PIXPLANE_DEDUP_THRESHOLD", CONF_INT, C(dedup_threshold), "4",
     "randomised threshold: dedup without upload starts once a per-content random number of "
     "copies, uniform in 2..N, exists (1-1000; 1: from the first copy)"},
    {"upload-topic", "PIXPLANE_UPLOAD_TOPIC", CONF_STR, C(upload_topic), "image-uploaded",
     "Kafka topic for upload-completed events (written to the outbox)"},
    {"download-url-ttl", "PIXPLANE_DOWNLOAD_URL_TTL", CONF_SECS, C(download_url_ttl), "300s",
     "validity of presigned download URLs (60-600 s; clients may ask within that range)"},
    {"retention", "PIXPLANE_RETENTION", CONF_SECS, C(retention), "30d",
     "how long a soft-deleted image can be restored"},
    {"variant-types", "PIXPLANE_VARIANT_TYPES", CONF_STR, C(variant_types),
     "thumbnail_small,thumbnail_large,preview", "variant types clients may ask for"},
    {"rate-limit", "PIXPLANE_RATE_LIMIT", CONF_INT, C(rate_limit), "50",
     "requests per second per user (token bucket refill; 0 disables)"},
    {"rate-burst", "PIXPLANE_RATE_BURST", CONF_INT, C(rate_burst), "100",
     "token bucket size per user"},
    {"page-size", "PIXPLANE_PAGE_SIZE", CONF_INT, C(page_size), "50",
     "default page size of listings, 1-200 (clients may ask up to 200)"},
    {"sync-retention", "PIXPLANE_SYNC_RETENTION", CONF_SECS, C(sync_retention), "30d",
     "change-log retention; older cursors answer 410 full_resync_required"},
    {"sse-heartbeat", "PIXPLANE_SSE_HEARTBEAT", CONF_SECS, C(sse_heartbeat), "15s",
     "interval of heartbeat comments on /sync/stream"},
    {"access-log", "PIXPLANE_ACCESS_LOG", CONF_BOOL, C(access_log), "true",
     "log one JSON line per HTTP request"},
    {"max-body", "PIXPLANE_MAX_BODY", CONF_SIZE, C(max_body), "1MiB",
     "largest request body (larger: 413)"},
    {"drain-timeout", "PIXPLANE_DRAIN_TIMEOUT", CONF_SECS, C(drain_timeout), "20s",
     "on SIGTERM, how long in-flight requests may take before exit"},
};
const size_t api_conf_count = ARRAY_LEN(api_conf);
