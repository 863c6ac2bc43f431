/* cli: pixctl's command table, option table (flags > environment > config file > defaults),
 * the `key = value` config file and the --help texts. */
#ifndef PIXCTL_CLI_H
#define PIXCTL_CLI_H

#include "conf.h"
#include "pixctl.h"

struct pix_command {
    const char *name;
    pix_cmd_fn fn;
    unsigned bit;           /* which options apply: see the table in cli.c */
    const char *usage;      /* arguments, e.g. "ID [-o PATH]" */
    const char *summary;    /* one line for `pixctl --help` */
    const char *help;       /* paragraph for `pixctl CMD --help` */
    int min_args, max_args; /* max_args -1: unlimited */
};

/* A parsed command line. */
struct cli {
    const struct pix_command *cmd;
    char **av;   /* owned copy of argv (short flags rewritten) */
    char **args; /* positional arguments after the command (point into av) */
    int nargs;
    struct conf_opt *table; /* options of this command (owned) */
    size_t ntable;
};

/* What cli_parse decided: run the command, or stop with an exit code (help printed: 0). */
enum { CLI_RUN = -1 };

/* Parses argv into cfg and out. Returns CLI_RUN, or an exit code after printing help
 * (PIX_OK) or leaving a message in err (PIX_EUSAGE). */
int cli_parse(int argc, char **argv, struct pixctl_config *cfg, struct cli *out, char *err);
void cli_free(struct cli *c, struct pixctl_config *cfg);

/* One config-file line, modified in place: 1 with *key and *val set, 0 for a blank line or
 * a comment, -1 if malformed. Keys are flag names ('_' is read as '-'); values may be
 * quoted with "" or ''. */
int cli_conf_line(char *line, char **key, char **val);

#endif
