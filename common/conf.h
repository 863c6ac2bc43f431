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
};

struct conf_opt {
    const char *name; /* flag name: --name */
    const char *env;  /* environment variable, or NULL */
    enum conf_type type;
    void *target;
    const char *def; /* default as text, or NULL (empty string / 0) */
    const char *help;
};

/* Options every service shares, for tables whose target macro is C(field) over a config
 * struct with fields database_url, s3_endpoint, s3_bucket, s3_region, s3_access_key,
 * s3_secret_key, s3_path_style and log_level. One definition keeps names and defaults equal. */
#define CONF_OPT_DATABASE(C)                                                                       \
    {                                                                                              \
        "database-url", "DATABASE_URL", CONF_STR, C(database_url),                                 \
            "postgresql://pixplane@127.0.0.1:5432/pixplane", "PostgreSQL connection URI"           \
    }
#define CONF_OPTS_S3(C)                                                                             \
    {"s3-endpoint",  "S3_ENDPOINT",           CONF_STR,                                             \
     C(s3_endpoint), "http://127.0.0.1:9000", "S3 endpoint the service talks to"},                  \
        {"s3-bucket",  "S3_BUCKET", CONF_STR,                                                       \
         C(s3_bucket), "pixplane",  "bucket holding all objects"},                                  \
        {"s3-region", "S3_REGION", CONF_STR, C(s3_region), "us-east-1", "SigV4 signing region"},    \
        {"s3-access-key", "S3_ACCESS_KEY", CONF_STR, C(s3_access_key), "", "S3 access key id"},     \
        {"s3-secret-key", "S3_SECRET_KEY", CONF_STR, C(s3_secret_key), "", "S3 secret access key"}, \
    {                                                                                               \
        "s3-path-style", "S3_PATH_STYLE", CONF_BOOL, C(s3_path_style), "true",                      \
            "path-style URLs (MinIO, radosgw); false for virtual-hosted (AWS)"                      \
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
/* Frees CONF_STR targets. */
void conf_free(const struct conf_opt *opts, size_t n);

/* Parsers, exposed for tests and other modules. 0 or -1. */
int conf_parse_size(const char *s, long long *out) PIX_WUR;
int conf_parse_secs(const char *s, double *out) PIX_WUR;
int conf_parse_bool(const char *s, int *out) PIX_WUR;

#endif
