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
