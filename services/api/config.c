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
    CONF_OPTS_STORE(C),
    {"db-pool", "PIXPLANE_DB_POOL", CONF_INT, C(db_pool), "8", "PostgreSQL connections kept open",
     1, 1000},
    {"workers", "PIXPLANE_WORKERS", CONF_INT, C(workers), "8",
     "request handler threads (blocking database and storage calls run there; more threads "
     "than the cores can serve only add latency: bench/api/run get)",
     1, 1024},
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
    {"verify-async-threshold", "PIXPLANE_VERIFY_ASYNC_THRESHOLD", CONF_SIZE,
     C(verify_async_threshold), "8MiB",
     "uploads at least this large are verified in the background: complete answers 202 with "
     "the image 'verifying' (smaller ones are verified before complete answers)"},
    {"one-put", "PIXPLANE_ONE_PUT", CONF_BOOL, C(one_put), "true",
     "an upload of one chunk takes one presigned PUT (no multipart upload); false: every "
     "upload is a multipart upload"},
    {"verify-lease", "PIXPLANE_VERIFY_LEASE", CONF_SECS, C(verify_lease), "30s",
     "a background verification holds its session this long, renewed while it runs; after a "
     "crash or restart another process takes it over once it runs out"},
    {"verify-jobs", "PIXPLANE_VERIFY_JOBS", CONF_INT, C(verify_jobs), "2",
     "background verification threads"},
    {"pop-bank", "PIXPLANE_POP_BANK", CONF_INT, C(pop_bank), "4",
     "one-time dedup challenges prepared per content while it is verified (0-64; 0: every "
     "proof reads storage)",
     0, 64},
    {"pop-budget", "PIXPLANE_POP_BUDGET", CONF_INT, C(pop_budget), "3",
     "dedup challenges a user may be issued for one declared sha256 before uploading is the "
     "only way (0-100; 0: no dedup without upload)",
     0, 100},
    {"pop-budget-refill", "PIXPLANE_POP_BUDGET_REFILL", CONF_SECS, C(pop_budget_refill), "6h",
     "time for one unit of a user's per-content challenge budget to come back", 1, 0},
    {"dedup-threshold", "PIXPLANE_DEDUP_THRESHOLD", CONF_INT, C(dedup_threshold), "4",
     "randomised threshold: dedup without upload starts once a per-content random number of "
     "copies, uniform in 2..N, exists (1-1000; 1: from the first copy)",
     1, 1000},
    {"upload-topic", "PIXPLANE_UPLOAD_TOPIC", CONF_STR, C(upload_topic), "image-uploaded",
     "Kafka topic for upload-completed events (written to the outbox)"},
    {"download-url-ttl", "PIXPLANE_DOWNLOAD_URL_TTL", CONF_SECS, C(download_url_ttl), "300s",
     "validity of presigned download URLs (60-600 s; clients may ask within that range)"},
    {"retention", "PIXPLANE_RETENTION", CONF_SECS, C(retention), "30d",
     "how long a soft-deleted image can be restored"},
    {"variant-types", "PIXPLANE_VARIANT_TYPES", CONF_STR, C(variant_types),
     "thumbnail_small,thumbnail_large,preview", "variant types clients may ask for"},
    {"image-cache", "PIXPLANE_IMAGE_CACHE", CONF_INT, C(image_cache), "256",
     "image rows each request worker keeps for repeated reads (0: off); a change-log "
     "notification or a write by the owner or reader retires them",
     0, 1000000},
    {"rate-limit", "PIXPLANE_RATE_LIMIT", CONF_INT, C(rate_limit), "50",
     "requests per second per user (token bucket refill; 0 disables)"},
    {"rate-burst", "PIXPLANE_RATE_BURST", CONF_INT, C(rate_burst), "100",
     "token bucket size per user"},
    {"page-size", "PIXPLANE_PAGE_SIZE", CONF_INT, C(page_size), "50",
     "default page size of listings, 1-200 (clients may ask up to 200)", 1, 200},
    {"shares-per-image", "PIXPLANE_SHARES_PER_IMAGE", CONF_INT, C(shares_per_image), "100",
     "users one image can be shared with (1-10000; more: 409 share_limit_reached)", 1, 10000},
    {"shares-per-user", "PIXPLANE_SHARES_PER_USER", CONF_INT, C(shares_per_user), "10000",
     "shares one owner can hold over all images (1-1000000)", 1, 1000000},
    {"albums-per-user", "PIXPLANE_ALBUMS_PER_USER", CONF_INT, C(albums_per_user), "1000",
     "albums one user may own (1-100000; more: 409 album_limit_reached)", 1, 100000},
    {"album-items", "PIXPLANE_ALBUM_ITEMS", CONF_INT, C(album_items), "10000",
     "items one album may hold (1-100000; more: 409 album_full); an album's deletion writes "
     "a change-log row per item and member",
     1, 100000},
    {"album-members", "PIXPLANE_ALBUM_MEMBERS", CONF_INT, C(album_members), "50",
     "members one album may have (1-1000; more: 409 member_limit_reached); every album change "
     "writes a change-log row per member",
     1, 1000},
    {"album-ids-per-request", "PIXPLANE_ALBUM_IDS_PER_REQUEST", CONF_INT, C(album_ids_per_request),
     "500",
     "image ids one album request may name (items added or removed, order; more: 413 "
     "too_many_items)",
     1, 10000},
    {"batch-max-items", "PIXPLANE_BATCH_MAX_ITEMS", CONF_INT, C(batch_max_items), "500",
     "items one POST /uploads/batch may carry (more: 413 too_many_items)", 1, 5000},
    {"sessions-per-user", "PIXPLANE_SESSIONS_PER_USER", CONF_INT, C(sessions_per_user), "500",
     "open upload sessions one user may hold (more: 429 too_many_open_sessions)", 1, 1000000},
    {"inflight-bytes-per-user", "PIXPLANE_INFLIGHT_BYTES_PER_USER", CONF_SIZE,
     C(inflight_bytes_per_user), "200GiB",
     "bytes one user's open upload sessions may declare in all (more: 429 "
     "inflight_bytes_exceeded)"},
    {"sync-retention", "PIXPLANE_SYNC_RETENTION", CONF_SECS, C(sync_retention), "30d",
     "change-log retention; older cursors answer 410 full_resync_required"},
    {"sse-heartbeat", "PIXPLANE_SSE_HEARTBEAT", CONF_SECS, C(sse_heartbeat), "15s",
     "interval of heartbeat comments on /sync/stream"},
    {"sse-streams-per-user", "PIXPLANE_SSE_STREAMS_PER_USER", CONF_INT, C(sse_streams_per_user),
     "8", "open /sync/stream connections per user (more: 429 too_many_streams)", 1, 1000},
    {"sse-max-streams", "PIXPLANE_SSE_MAX_STREAMS", CONF_INT, C(sse_max_streams), "10000",
     "open /sync/stream connections in all (more: 503 streams_unavailable)", 1, 1000000},
    {"sse-workers", "PIXPLANE_SSE_WORKERS", CONF_INT, C(sse_workers), "2",
     "threads computing stream deltas, apart from the request workers (one job per user and "
     "change, shared by that user's streams)",
     1, 64},
    {"stream-ticket-ttl", "PIXPLANE_STREAM_TICKET_TTL", CONF_SECS, C(stream_ticket_ttl), "60s",
     "validity of a single-use /sync/stream ticket (POST /sync/stream-ticket), 1-60 s", 1, 60},
    {"sse-query-token", "PIXPLANE_SSE_QUERY_TOKEN", CONF_BOOL, C(sse_query_token), "false",
     "also accept a bearer token as /sync/stream?token= (old clients; the token then sits in "
     "URLs, browser history and proxies' logs: prefer stream tickets)"},
    {"cors-origins", "PIXPLANE_CORS_ORIGINS", CONF_STR, C(cors_origins), "",
     "comma-separated origins (https://app.example.com) whose pages may call the API from a "
     "browser; empty: same-origin only"},
    {"web-dir", "PIXPLANE_WEB_DIR", CONF_STR, C(web_dir), "web/dist",
     "the built browser pages (make web), served at /app/; off when the folder is absent"},
    {"access-log", "PIXPLANE_ACCESS_LOG", CONF_BOOL, C(access_log), "true",
     "log one JSON line per HTTP request"},
    {"max-body", "PIXPLANE_MAX_BODY", CONF_SIZE, C(max_body), "1MiB",
     "largest request body (larger: 413)"},
    {"body-timeout", "PIXPLANE_BODY_TIMEOUT", CONF_SECS, C(body_timeout), "30s",
     "a request body that makes no progress this long gets 408", 0.1, 3600},
    {"min-body-rate", "PIXPLANE_MIN_BODY_RATE", CONF_SIZE, C(min_body_rate), "4KiB",
     "bytes/s a request body must average: it is due body-timeout + its length / this after "
     "the head (late: 408)",
     1, 1e12},
    {"max-conns-per-addr", "PIXPLANE_MAX_CONNS_PER_ADDR", CONF_INT, C(max_conns_per_addr), "256",
     "open connections per client address (more: 429 and close; 0: no cap; behind a proxy "
     "every client shares its address)",
     0, 1000000},
    {"drain-timeout", "PIXPLANE_DRAIN_TIMEOUT", CONF_SECS, C(drain_timeout), "20s",
     "on SIGTERM, how long in-flight requests may take before exit"},
    /* webhooks */
    {"webhook-allow-addrs", "PIXPLANE_WEBHOOK_ALLOW_ADDRS", CONF_STR, C(webhook_allow_addrs), "",
     "comma-separated CIDRs (127.0.0.0/8,::1/128) a webhook endpoint may resolve to although "
     "not public; empty: endpoints resolving to loopback, private, link-local or metadata "
     "addresses are refused (400 url_forbidden)"},
    {"webhook-endpoints", "PIXPLANE_WEBHOOK_ENDPOINTS", CONF_INT, C(webhook_endpoints), "100",
     "webhook endpoints that may be registered (1-10000; more: 409 endpoint_limit_reached)", 1,
     10000},
    {"webhook-replay-range", "PIXPLANE_WEBHOOK_REPLAY_RANGE", CONF_SECS, C(webhook_replay_range),
     "7d", "longest time range one webhook replay may cover (1 s to 366 d)", 1, 31622400},
    {"webhook-replay-max", "PIXPLANE_WEBHOOK_REPLAY_MAX", CONF_INT, C(webhook_replay_max), "10000",
     "events one webhook replay may queue (more: 413 too_many_events)", 1, 1000000},
    /* quotas and usage (quota.c) */
    {"quota-bytes", "PIXPLANE_QUOTA_BYTES", CONF_SIZE, C(quota_bytes), "0",
     "default per-user quota on logical bytes (images, trash included, plus open upload "
     "sessions' declared sizes; more: 403 quota_exceeded); 0: unlimited. PUT "
     "/internal/users/{id}/quota overrides it per user"},
    {"quota-images", "PIXPLANE_QUOTA_IMAGES", CONF_INT, C(quota_images), "0",
     "default per-user quota on images (trash included, plus open upload sessions); 0: "
     "unlimited",
     0, 1e12},
    {"quota-event-interval", "PIXPLANE_QUOTA_EVENT_INTERVAL", CONF_SECS, C(quota_event_interval),
     "60s", "at most one quota.exceeded event per user this often (refusals keep answering 403)", 0,
     86400},
    {"pre-upload-hook-url", "PIXPLANE_PRE_UPLOAD_HOOK_URL", CONF_STR, C(pre_upload_hook_url), "",
     "http(s) URL POSTed {user_id, file_name, size, mime_type, ...} before each upload session "
     "is created (POST /uploads, each batch item); 2xx allows, 4xx {reason} refuses (403 "
     "upload_refused); empty: off"},
    {"pre-upload-hook-timeout", "PIXPLANE_PRE_UPLOAD_HOOK_TIMEOUT", CONF_SECS,
     C(pre_upload_hook_timeout), "2s",
     "how long the pre-upload hook may take (connection included) before it counts as failed", 0.05,
     60},
    {"pre-upload-hook-fail", "PIXPLANE_PRE_UPLOAD_HOOK_FAIL", CONF_STR, C(pre_upload_hook_fail),
     "closed",
     "when the pre-upload hook times out, cannot be reached or answers 5xx: closed refuses "
     "the upload (503 hook_unavailable), open lets it through"},
    /* public links (links.c) */
    {"public-url", "PIXPLANE_PUBLIC_URL", CONF_STR, C(public_url), "",
     "base URL clients reach the API at (https://photos.example.com), put in the url of public "
     "links (<public-url>/s/<token>); empty: http:// and the request's Host"},
    {"link-max-ttl", "PIXPLANE_LINK_MAX_TTL", CONF_SECS, C(link_max_ttl), "90d",
     "longest expires_in a public link may ask for (the default is 7 days, or this if "
     "shorter)",
     1, 0},
    {"link-allow-forever", "PIXPLANE_LINK_ALLOW_FOREVER", CONF_BOOL, C(link_allow_forever), "false",
     "allow public links that never expire (expires_in null or 0); false: 400 "
     "forever_not_allowed"},
    {"links-per-user", "PIXPLANE_LINKS_PER_USER", CONF_INT, C(links_per_user), "1000",
     "public links one user may hold, expired ones included until revoked (1-1000000; more: 409 "
     "link_limit_reached)",
     1, 1000000},
    {"link-ticket-ttl", "PIXPLANE_LINK_TICKET_TTL", CONF_SECS, C(link_ticket_ttl), "15m",
     "validity of the access ticket POST /s/{token}/unlock gives for a password link "
     "(1 s - 24 h)",
     1, 86400},
    {"link-unlock-attempts", "PIXPLANE_LINK_UNLOCK_ATTEMPTS", CONF_INT, C(link_unlock_attempts),
     "10",
     "password attempts in a burst, per link (counted in PostgreSQL for all API instances "
     "together) and per client address (counted by each instance; behind a proxy every "
     "client shares its address) (1-1000; more: 429 with Retry-After)",
     1, 1000},
    {"link-unlock-refill", "PIXPLANE_LINK_UNLOCK_REFILL", CONF_SECS, C(link_unlock_refill), "1m",
     "time for one spent password attempt to come back", 0.001, 86400},
    /* reads from standbys with read-your-writes (ryw.c) */
    {"database-read-url", "DATABASE_READ_URL", CONF_STR, C(database_read_url), "",
     "PostgreSQL URI for listings, metadata reads and /sync, e.g. a standby or a multi-host URL "
     "with target_session_attrs=prefer-standby (empty: reads use database-url). A read the "
     "standby has not replayed far enough for (the caller's own writes, its sync cursor) waits "
     "read-wait, then goes to the primary"},
    {"db-read-pool", "PIXPLANE_DB_READ_POOL", CONF_INT, C(db_read_pool), "8",
     "connections kept open to database-read-url", 1, 1000},
    {"read-wait", "PIXPLANE_READ_WAIT", CONF_SECS, C(read_wait), "200ms",
     "how long a read waits for the standby to replay the caller's last write before it goes "
     "to the primary (0: at once)",
     0, 10},
};
const size_t api_conf_count = ARRAY_LEN(api_conf);
