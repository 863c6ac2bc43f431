/* config: the webhook delivery service's configuration table (flags, environment, defaults,
 * help); docs/configuration.md is generated from it. */
#include "hooks.h"

struct hooks_config hooks_cfg;

#define C(field) (&hooks_cfg.field)

const struct conf_opt hooks_conf[] = {
    {"listen", "PIXPLANE_HOOKS_LISTEN", CONF_STR, C(listen), "",
     "address:port for /healthz, /readyz and /metrics (empty: no listener)"},
    {"database-url", "DATABASE_URL", CONF_STR, C(database_url),
     "postgresql://pixplane@127.0.0.1:5432/pixplane", "PostgreSQL connection URI"},
    {"db-statement-timeout", "PIXPLANE_DB_STATEMENT_TIMEOUT", CONF_SECS, C(db_statement_timeout),
     "30s", "statement_timeout of the pooled PostgreSQL connections (0: none)", 0, 86400},
    CONF_OPTS_KAFKA(C),
    {"events-topic", "PIXPLANE_EVENTS_TOPIC", CONF_STR, C(events_topic), "pixplane-events",
     "topic of the integration events (pix_event, relayed from the outbox)"},
    {"group", "PIXPLANE_HOOKS_GROUP", CONF_STR, C(group), "pixplane-hooks",
     "Kafka consumer group id"},
    CONF_OPTS_KAFKA_GROUP(C),
    {"ingest-batch", "PIXPLANE_HOOKS_INGEST_BATCH", CONF_INT, C(ingest_batch), "500",
     "events stored per transaction (their offsets are committed after it)", 1, 100000},
    {"concurrency", "PIXPLANE_WEBHOOK_CONCURRENCY", CONF_INT, C(concurrency), "32",
     "deliveries in flight at once (one HTTP request each)", 1, 4096},
    {"timeout", "PIXPLANE_WEBHOOK_TIMEOUT", CONF_SECS, C(timeout), "10s",
     "longest delivery request, connection included (then it counts as failed)", 0.1, 600},
    {"allow-addrs", "PIXPLANE_WEBHOOK_ALLOW_ADDRS", CONF_STR, C(allow_addrs), "",
     "CIDRs endpoints may reach although not public (\"127.0.0.0/8,::1/128\"); empty: none"},
    {"max-age", "PIXPLANE_WEBHOOK_MAX_AGE", CONF_SECS, C(max_age), "24h",
     "a delivery still failing this long after it was created is given up (status failed)", 1, 0},
    {"retry-backoff", "PIXPLANE_WEBHOOK_RETRY_BACKOFF", CONF_SECS, C(retry_backoff), "5s",
     "wait after a delivery's first failed attempt (doubles each time, with jitter)", 0.01, 0},
    {"retry-backoff-max", "PIXPLANE_WEBHOOK_RETRY_BACKOFF_MAX", CONF_SECS, C(retry_backoff_max),
     "1h", "longest wait between two attempts of a delivery", 0.01, 0},
    {"disable-failures", "PIXPLANE_WEBHOOK_DISABLE_FAILURES", CONF_INT, C(disable_failures), "20",
     "consecutive failed attempts after which an endpoint may be disabled", 1, 0},
    {"disable-after", "PIXPLANE_WEBHOOK_DISABLE_AFTER", CONF_SECS, C(disable_after), "12h",
     "... once it has also had no success (nor admin change) for this long", 0, 0},
    {"poll", "PIXPLANE_HOOKS_POLL", CONF_SECS, C(poll), "250ms",
     "how often an idle delivery loop looks for due deliveries (retries, pings, replays)", 0.01,
     60},
    {"retention", "PIXPLANE_WEBHOOK_RETENTION", CONF_SECS, C(retention), "7d",
     "finished deliveries and consumed events are kept this long (replay reaches this far)", 60, 0},
    {"upkeep-interval", "PIXPLANE_HOOKS_UPKEEP_INTERVAL", CONF_SECS, C(upkeep_interval), "10s",
     "how often the backlog gauges are refreshed and old rows pruned", 0.1, 3600},
    {"shutdown-timeout", "PIXPLANE_SHUTDOWN_TIMEOUT", CONF_SECS, C(shutdown_timeout), "20s",
     "on SIGTERM, how long deliveries in flight may take (then they are retried elsewhere)"},
    {"stats-interval", "PIXPLANE_STATS_INTERVAL", CONF_SECS, C(stats_interval), "60s",
     "how often counters are logged (0: only at exit)"},
    CONF_OPT_LOG_LEVEL(C),
};
const size_t hooks_conf_count = ARRAY_LEN(hooks_conf);
