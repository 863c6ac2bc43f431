/* conf: declarative configuration tables read from defaults, then environment variables,
 * then command-line flags (--name=value or --name value); --help prints the table. */
#ifndef PIX_CONF_H
#define PIX_CONF_H

#include <stdio.h>
#include "util.h"

enum conf_type {
    CONF_STR,  /* char **: malloc'd copy (free with conf_free) */
    CONF_INT,  /* long * */
    CONF_BOOL, /* int *: true/false/1/0/yes/no/on/off */
    CONF_SIZE, /* long long *: bytes, suffixes K M G T (binary: KiB...) */
    CONF_SECS, /* double *: seconds, suffixes ms s m h d */
    CONF_LIST, /* char **: like CONF_STR, but each repeat of the flag adds a line */
};

struct conf_opt {
    const char *name; /* flag name: --name */
    const char *env;  /* environment variable, or NULL */
    enum conf_type type;
    void *target;
    const char *def; /* default as text, or NULL (empty string / 0) */
    const char *help;
    /* CONF_INT, CONF_SIZE, CONF_SECS: the accepted range, checked once everything is read:
     * at least min, and at most max when max > min. Both 0 (omitted): any value. */
    double min, max;
};

/* Where every service keeps its data: PostgreSQL and S3, one struct embedded as `store` in
 * each service's configuration and filled by CONF_OPTS_STORE, so names, defaults and
 * checks are the same everywhere (s3_config_from_store builds the S3 client's settings). */
struct conf_store {
    char *database_url;
    char *s3_endpoint;
    char *s3_bucket;
    char *s3_region;
    char *s3_access_key;
    char *s3_secret_key;
    int s3_path_style;
    double s3_timeout;           /* one S3 request, streamed reads and completions aside */
    double s3_stall_timeout;     /* any S3 transfer below 1 KiB/s this long is aborted */
    long verify_streams;         /* concurrent ranged GETs of one verification read */
    long long verify_range;      /* bytes per ranged GET of a verification read */
    double db_statement_timeout; /* statement_timeout of the pooled connections */
};

/* Defaults of the verification read's parallelism, chosen by `bench/api/run verify-read sweep`
 * on radosgw (also what an s3_client uses when its config leaves them 0). */
#define CONF_VERIFY_STREAMS 4
#define CONF_VERIFY_RANGE_MIB 16

/* The store's options, for tables whose target macro is C(field) over a config struct with
 * a `store` member; and the log level, for one with a log_level field. */
#define CONF_OPTS_STORE(C)                                                                         \
    {"database-url",                                                                               \
     "DATABASE_URL",                                                                               \
     CONF_STR,                                                                                     \
     C(store.database_url),                                                                        \
     "postgresql://pixplane@127.0.0.1:5432/pixplane",                                              \
     "PostgreSQL connection URI"},                                                                 \
        {"s3-endpoint",        "S3_ENDPOINT",           CONF_STR,                                  \
         C(store.s3_endpoint), "http://127.0.0.1:9000", "S3 endpoint the service talks to"},       \
        {"s3-bucket",        "S3_BUCKET", CONF_STR,                                                \
         C(store.s3_bucket), "pixplane",  "bucket holding all objects"},                           \
        {"s3-region",        "S3_REGION", CONF_STR,                                                \
         C(store.s3_region), "us-east-1", "SigV4 signing region"},                                 \
        {"s3-access-key",   "S3_ACCESS_KEY", CONF_STR, C(store.s3_access_key), "",                 \
         "S3 access key id"},                                                                      \
        {"s3-secret-key",       "S3_SECRET_KEY", CONF_STR, C(store.s3_secret_key), "",             \
         "S3 secret access key"},                                                                  \
        {"s3-path-style", "S3_PATH_STYLE",                                                         \
         CONF_BOOL,       C(store.s3_path_style),                                                  \
         "true",          "path-style URLs (MinIO, radosgw); false for virtual-hosted (AWS)"},     \
        {"s3-timeout",                                                                             \
         "S3_TIMEOUT",                                                                             \
         CONF_SECS,                                                                                \
         C(store.s3_timeout),                                                                      \
         "30s",                                                                                    \
         "longest S3 request (streamed reads and multipart completion are bounded by the stall "   \
         "timeout instead)",                                                                       \
         1,                                                                                        \
         3600},                                                                                    \
        {"s3-stall-timeout",                                                                       \
         "S3_STALL_TIMEOUT",                                                                       \
         CONF_SECS,                                                                                \
         C(store.s3_stall_timeout),                                                                \
         "15s",                                                                                    \
         "an S3 transfer moving under 1 KiB/s for this long is aborted",                           \
         1,                                                                                        \
         3600},                                                                                    \
        {"verify-streams",                                                                         \
         "PIXPLANE_VERIFY_STREAMS",                                                                \
         CONF_INT,                                                                                 \
         C(store.verify_streams),                                                                  \
         PIX_STR(CONF_VERIFY_STREAMS),                                                             \
         "concurrent ranged GETs reading an object back to verify its SHA-256 (1: one stream)",    \
         1,                                                                                        \
         64},                                                                                      \
        {"verify-range",                                                                           \
         "PIXPLANE_VERIFY_RANGE",                                                                  \
         CONF_SIZE,                                                                                \
         C(store.verify_range),                                                                    \
         PIX_STR(CONF_VERIFY_RANGE_MIB) "MiB",                                                     \
         "bytes per ranged GET of a verification read (memory: streams x range per read)",         \
         65536,                                                                                    \
         1073741824},                                                                              \
    {                                                                                              \
        "db-statement-timeout", "PIXPLANE_DB_STATEMENT_TIMEOUT", CONF_SECS,                        \
            C(store.db_statement_timeout), "30s",                                                  \
            "statement_timeout of the pooled PostgreSQL connections (0: none)", 0, 86400           \
    }
/* Kafka clients: the brokers and extra librdkafka settings; a consumer group's timing. */
#define CONF_OPTS_KAFKA(C)                                                                         \
    {"kafka-bootstrap",  "KAFKA_BOOTSTRAP", CONF_STR,                                              \
     C(kafka_bootstrap), "127.0.0.1:9092",  "Kafka bootstrap servers (host:port,...)"},            \
    {                                                                                              \
        "kafka-options", "PIXPLANE_KAFKA_OPTIONS", CONF_STR, C(kafka_options), "",                 \
            "extra librdkafka settings for every client, \"key=value,key=value\" (security, "      \
            "tuning)"                                                                              \
    }
#define CONF_OPTS_KAFKA_GROUP(C)                                                                   \
    {"session-timeout",                                                                            \
     "PIXPLANE_KAFKA_SESSION_TIMEOUT",                                                             \
     CONF_SECS,                                                                                    \
     C(session_timeout),                                                                           \
     "6s",                                                                                         \
     "consumer group session.timeout.ms"},                                                         \
    {                                                                                              \
        "heartbeat-interval", "PIXPLANE_KAFKA_HEARTBEAT", CONF_SECS, C(heartbeat_interval), "1s",  \
            "consumer group heartbeat.interval.ms"                                                 \
    }

#define CONF_OPT_LOG_LEVEL(C)                                                                      \
    {                                                                                              \
        "log-level", "PIXPLANE_LOG_LEVEL", CONF_STR, C(log_level), "info",                         \
            "debug, info, warn or error"                                                           \
    }

/* Applies defaults, then env, then flags from argv[1..argc) (argv[0] is the program or
 * subcommand name, as getopt has it). Non-flag arguments are left in
 * *rest (argv pointers, count in *nrest; rest may be NULL to refuse them).
 * Returns 0, -1 with err (ERR_MAX bytes) set, or 1 if --help was given. */
int conf_load(const struct conf_opt *opts, size_t n, int argc, char **argv, char ***rest,
              int *nrest, char *err) PIX_WUR;
void conf_usage(const struct conf_opt *opts, size_t n, const char *prog, FILE *out);
/* Markdown reference (docs/configuration.md). */
void conf_markdown(const struct conf_opt *opts, size_t n, const char *title, FILE *out);
/* A service program's main: its table, names, usage text and run function. */
struct conf_program {
    const struct conf_opt *opts;
    size_t n;
    const char *prog;       /* "pixplane-worker": messages and the reference's title */
    const char *service;    /* the log's service field */
    char *const *log_level; /* the table's log-level target, read after loading */
    void (*usage)(FILE *out);
    int (*run)(const char *argv0);
};

/* Loads the configuration from argv (after an optional command word), then: --help prints
 * the usage (0); "config-doc" prints the reference (0); "run", the default, starts the log
 * and returns run(argv[0]); anything else is a usage error (2), as is a bad option. */
int conf_main(const struct conf_program *p, int argc, char **argv);

/* Frees CONF_STR targets. */
void conf_free(const struct conf_opt *opts, size_t n);

/* Parsers, exposed for tests and other modules. 0 or -1. */
int conf_parse_size(const char *s, long long *out) PIX_WUR;
int conf_parse_secs(const char *s, double *out) PIX_WUR;
int conf_parse_bool(const char *s, int *out) PIX_WUR;

#endif
