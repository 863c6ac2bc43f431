/* conf: loads a declarative option table from defaults, then environment variables, then
 * command-line flags; prints it as --help text or as the Markdown configuration reference. */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "conf.h"
#include "log.h"

/* Flag values are echoed in error messages clipped to this many bytes. */
#define CONF_ECHO_MAX 64

static const char *type_name(enum conf_type t)
{
    switch (t) {
    case CONF_STR:
        return "string";
    case CONF_INT:
        return "int";
    case CONF_BOOL:
        return "bool";
    case CONF_SIZE:
        return "size";
    case CONF_SECS:
        return "duration";
    case CONF_LIST:
        return "list";
    }
    return "?";
}

static const char *type_expect(enum conf_type t)
{
    switch (t) {
    case CONF_INT:
        return "an integer";
    case CONF_BOOL:
        return "a boolean (true/false, yes/no, on/off, 1/0)";
    case CONF_SIZE:
        return "a size in bytes with an optional suffix K, M, G or T (e.g. 64KiB)";
    case CONF_SECS:
        return "a non-negative duration in seconds or with ms, s, m, h, d";
    default:
        return "a string";
    }
}

static int parse_int(const char *s, long *out)
{
    const char *d = (*s == '-' || *s == '+') ? s + 1 : s;
    char *end;
    long v;

    if (!isdigit((unsigned char)*d))
        return -1;
    errno = 0;
    v = strtol(s, &end, 10);
    if (errno != 0 || *end != '\0')
        return -1;
    *out = v;
    return 0;
}

int conf_parse_bool(const char *s, int *out)
{
    static const char *const yes[] = {"true", "1", "yes", "on"};
    static const char *const no[] = {"false", "0", "no", "off"};

    if (s == NULL)
        return -1;
    for (size_t i = 0; i < ARRAY_LEN(yes); i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *out = 1;
            return 0;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *out = 0;
            return 0;
        }
    }
    return -1;
}

/* Binary shift for a size suffix (case-insensitive), or -1. */
static int size_shift(const char *suf)
{
    static const struct {
        const char *s;
        int shift;
    } t[] = {{"", 0},     {"b", 0},  {"k", 10},  {"kb", 10},  {"kib", 10}, {"m", 20},  {"mb", 20},
             {"mib", 20}, {"g", 30}, {"gb", 30}, {"gib", 30}, {"t", 40},   {"tb", 40}, {"tib", 40}};

    for (size_t i = 0; i < ARRAY_LEN(t); i++)
        if (strcasecmp(suf, t[i].s) == 0)
            return t[i].shift;
    return -1;
}

int conf_parse_size(const char *s, long long *out)
{
    long long v = 0;
    int shift;

    if (s == NULL || !isdigit((unsigned char)*s))
        return -1;
    for (; isdigit((unsigned char)*s); s++) {
        if (v > (LLONG_MAX - (*s - '0')) / 10)
            return -1;
        v = v * 10 + (*s - '0');
    }
    shift = size_shift(s);
    if (shift < 0 || v > (LLONG_MAX >> shift))
        return -1;
    *out = v << shift;
    return 0;
}

/* Seconds per unit for a duration suffix (case-sensitive), or -1. */
static double secs_unit(const char *suf)
{
    static const struct {
        const char *s;
        double mult;
    } t[] = {{"", 1}, {"ms", 0.001}, {"s", 1}, {"m", 60}, {"h", 3600}, {"d", 86400}};

    for (size_t i = 0; i < ARRAY_LEN(t); i++)
        if (strcmp(suf, t[i].s) == 0)
            return t[i].mult;
    return -1;
}

int conf_parse_secs(const char *s, double *out)
{
    char num[64];
    size_t n = 0, digits = 0;
    double unit, v;

    if (s == NULL)
        return -1;
    while (isdigit((unsigned char)s[n]) || (s[n] == '.' && !memchr(s, '.', n))) {
        digits += isdigit((unsigned char)s[n]) != 0;
        n++;
    }
    if (digits == 0 || n >= sizeof num)
        return -1;
    memcpy(num, s, n);
    num[n] = '\0';
    unit = secs_unit(s + n);
    if (unit < 0)
        return -1;
    v = strtod(num, NULL) * unit;
    if (!isfinite(v))
        return -1;
    *out = v;
    return 0;
}

/* A CONF_LIST value: s, or the lines so far and s as one more. */
static int list_add(char **target, const char *s, int fresh)
{
    const char *old = fresh || !*target ? "" : *target;
    size_t lo = strlen(old), ls = strlen(s);
    char *copy = malloc(lo + ls + 2);

    if (!copy)
        return -1;
    memcpy(copy, old, lo);
    if (lo && ls)
        copy[lo++] = '\n';
    memcpy(copy + lo, s, ls + 1);
    if (!fresh)
        free(*target);
    *target = copy;
    return 0;
}

/* Parses s into o's target. For CONF_STR the previous value is freed unless fresh is set
 * (the defaults step, where the target may not hold a pointer yet). */
static int set_value(const struct conf_opt *o, const char *s, int fresh)
{
    char *copy;

    switch (o->type) {
    case CONF_STR:
        if ((copy = strdup(s)) == NULL)
            return -1;
        if (!fresh)
            free(*(char **)o->target);
        *(char **)o->target = copy;
        return 0;
    case CONF_LIST:
        return list_add(o->target, s, fresh);
    case CONF_INT:
        return parse_int(s, o->target);
    case CONF_BOOL:
        return conf_parse_bool(s, o->target);
    case CONF_SIZE:
        return conf_parse_size(s, o->target);
    case CONF_SECS:
        return conf_parse_secs(s, o->target);
    }
    return -1;
}

static int apply_defaults(const struct conf_opt *opts, size_t n, char *err)
{
    size_t i;

    for (i = 0; i < n; i++) /* so conf_free is safe whenever a later default fails */
        if (opts[i].type == CONF_STR || opts[i].type == CONF_LIST)
            *(char **)opts[i].target = NULL;
    for (i = 0; i < n; i++) {
        const struct conf_opt *o = &opts[i];
        const char *def =
            o->def && *o->def ? o->def : (o->type == CONF_STR || o->type == CONF_LIST ? "" : "0");

        if (set_value(o, def, 1) < 0) {
            err_set(err, "bad default '%.*s' for --%s: expected %s", CONF_ECHO_MAX, def, o->name,
                    type_expect(o->type));
            return -1;
        }
    }
    return 0;
}

static int apply_env(const struct conf_opt *opts, size_t n, char *err)
{
    for (size_t i = 0; i < n; i++) {
        const struct conf_opt *o = &opts[i];
        const char *v = o->env ? getenv(o->env) : NULL;

        if (v == NULL)
            continue;
        if (set_value(o, v, 0) < 0) {
            err_set(err, "bad value '%.*s' for %s (environment, option --%s): expected %s",
                    CONF_ECHO_MAX, v, o->env, o->name, type_expect(o->type));
            return -1;
        }
    }
    return 0;
}

static const struct conf_opt *find_opt(const struct conf_opt *opts, size_t n, const char *name,
                                       size_t len)
{
    for (size_t i = 0; i < n; i++)
        if (strlen(opts[i].name) == len && strncmp(opts[i].name, name, len) == 0)
            return &opts[i];
    return NULL;
}

static int set_flag(const struct conf_opt *o, const char *v, char *err)
{
    if (set_value(o, v, 0) == 0)
        return 0;
    err_set(err, "bad value '%.*s' for --%s (command line): expected %s", CONF_ECHO_MAX, v, o->name,
            type_expect(o->type));
    return -1;
}

/* Handles argv[*i], a "--name[=value]" flag; may consume argv[*i + 1] as its value. */
static int do_flag(const struct conf_opt *opts, size_t n, int argc, char **argv, int *i, char *err)
{
    const char *arg = argv[*i], *name = arg + 2, *eq = strchr(name, '=');
    size_t len = eq ? (size_t)(eq - name) : strlen(name);
    const struct conf_opt *o = find_opt(opts, n, name, len);

    if (o == NULL && len > 3 && strncmp(name, "no-", 3) == 0) {
        o = find_opt(opts, n, name + 3, len - 3);
        if (o != NULL && o->type == CONF_BOOL && eq == NULL)
            return set_flag(o, "false", err);
        if (o != NULL && o->type == CONF_BOOL) {
            err_set(err, "flag --%.*s takes no value", (int)len, name);
            return -1;
        }
        o = NULL;
    }
    if (o == NULL) {
        err_set(err, "unknown flag --%.*s", (int)(len > 64 ? 64 : len), name);
        return -1;
    }
    if (eq != NULL)
        return set_flag(o, eq + 1, err);
    if (o->type == CONF_BOOL)
        return set_flag(o, "true", err);
    if (*i + 1 >= argc) {
        err_set(err, "flag --%s requires a value", o->name);
        return -1;
    }
    return set_flag(o, argv[++*i], err);
}

/* Flags in argv[1..argc); positional arguments are packed into argv[1..1+k). */
static int apply_flags(const struct conf_opt *opts, size_t n, int argc, char **argv, int *k,
                       char *err)
{
    int i, ended = 0;

    *k = 1;
    for (i = 1; i < argc; i++) {
        const char *a = argv[i];

        if (!ended && strcmp(a, "--") == 0) {
            ended = 1;
        } else if (!ended && strncmp(a, "--", 2) == 0) {
            if (do_flag(opts, n, argc, argv, &i, err) < 0)
                return -1;
        } else if (!ended && a[0] == '-' && a[1] != '\0') {
            err_set(err, "unknown flag %.*s", CONF_ECHO_MAX, a);
            return -1;
        } else {
            argv[(*k)++] = argv[i];
        }
    }
    return 0;
}

static double num_value(const struct conf_opt *o)
{
    switch (o->type) {
    case CONF_INT:
        return (double)*(long *)o->target;
    case CONF_SIZE:
        return (double)*(long long *)o->target;
    case CONF_SECS:
        return *(double *)o->target;
    default:
        return 0;
    }
}

/* The table's ranges, on the values finally in effect. */
static int check_bounds(const struct conf_opt *opts, size_t n, char *err)
{
    for (size_t i = 0; i < n; i++) {
        const struct conf_opt *o = &opts[i];
        double v = num_value(o);
        int upper = o->max > o->min;
        char range[64];

        if (!(o->min || o->max) || (v >= o->min && (!upper || v <= o->max)))
            continue;
        if (upper)
            snprintf(range, sizeof range, "%.15g..%.15g", o->min, o->max);
        else
            snprintf(range, sizeof range, "at least %.15g", o->min);
        err_set(err, "--%s (%s) must be %s, not %.15g", o->name, o->env ? o->env : "flag only",
                range, v);
        return -1;
    }
    return 0;
}

static int wants_help(int argc, char **argv)
{
    for (int i = 1; i < argc && strcmp(argv[i], "--") != 0; i++)
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
            return 1;
    return 0;
}

/* argv[0] is the program name; flags start at argv[1]. Positional arguments are moved to
 * the front of argv[1..], so *rest points into argv and needs no freeing. On any return
 * but 0 the CONF_STR targets are freed again (NULL). The defaults step overwrites targets
 * without freeing them: call conf_free before loading the same table twice. */
int conf_load(const struct conf_opt *opts, size_t n, int argc, char **argv, char ***rest,
              int *nrest, char *err)
{
    int k = 1;

    if (wants_help(argc, argv))
        return 1;
    if (apply_defaults(opts, n, err) < 0)
        goto fail;
    if (apply_env(opts, n, err) < 0)
        goto fail;
    if (argc > 1 && apply_flags(opts, n, argc, argv, &k, err) < 0)
        goto fail;
    if (check_bounds(opts, n, err) < 0)
        goto fail;
    if (k > 1 && rest == NULL) {
        err_set(err, "unexpected argument '%.*s'", CONF_ECHO_MAX, argv[1]);
        goto fail;
    }
    if (rest != NULL)
        *rest = argc > 0 ? argv + 1 : argv;
    if (nrest != NULL)
        *nrest = k - 1;
    return 0;
fail:
    conf_free(opts, n);
    return -1;
}

void conf_free(const struct conf_opt *opts, size_t n)
{
    for (size_t i = 0; opts != NULL && i < n; i++) {
        if (opts[i].type != CONF_STR && opts[i].type != CONF_LIST)
            continue;
        free(*(char **)opts[i].target);
        *(char **)opts[i].target = NULL;
    }
}

/* The default as shown to users: an empty string is "" and an unset number is 0. */
static const char *default_text(const struct conf_opt *o)
{
    if (o->def != NULL && *o->def != '\0')
        return o->def;
    switch (o->type) {
    case CONF_STR:
    case CONF_LIST:
        return "\"\"";
    case CONF_BOOL:
        return "false";
    default:
        return "0";
    }
}

static void flag_text(const struct conf_opt *o, char *out, size_t size)
{
    snprintf(out, size, "--%s%s", o->type == CONF_BOOL ? "[no-]" : "", o->name);
}

static int width(int cur, const char *s)
{
    int l = (int)strlen(s);
    return l > cur ? l : cur;
}

void conf_usage(const struct conf_opt *opts, size_t n, const char *prog, FILE *out)
{
    int wf = (int)strlen("-h, --help"), we = 3, wt = 4, wd = 7;
    char flag[128];
    size_t i;

    for (i = 0; i < n; i++) {
        flag_text(&opts[i], flag, sizeof flag);
        wf = width(wf, flag);
        we = width(we, opts[i].env ? opts[i].env : "-");
        wt = width(wt, type_name(opts[i].type));
        wd = width(wd, default_text(&opts[i]));
    }
    fprintf(out, "Usage: %s [options]\n\nOptions (flag > environment > default):\n",
            prog ? prog : "program");
    fprintf(out, "  %-*s  %-*s  %-*s  %-*s  %s\n", wf, "FLAG", we, "ENV", wt, "TYPE", wd, "DEFAULT",
            "DESCRIPTION");
    for (i = 0; i < n; i++) {
        flag_text(&opts[i], flag, sizeof flag);
        fprintf(out, "  %-*s  %-*s  %-*s  %-*s  %s\n", wf, flag, we,
                opts[i].env ? opts[i].env : "-", wt, type_name(opts[i].type), wd,
                default_text(&opts[i]), opts[i].help ? opts[i].help : "");
    }
    fprintf(out, "  %-*s  %-*s  %-*s  %-*s  %s\n", wf, "-h, --help", we, "", wt, "", wd, "",
            "show this help and exit");
}

/* Writes s as a Markdown table cell; as a code span when code is set and s has no
 * backtick. Pipes are escaped and newlines become spaces. */
static void md_cell(FILE *out, const char *s, int code)
{
    int span = code && strchr(s, '`') == NULL;

    fputs(span ? " `" : " ", out);
    for (; *s; s++) {
        if (*s == '|' || (!span && (*s == '`' || *s == '\\')))
            fputc('\\', out);
        fputc(*s == '\n' || *s == '\r' ? ' ' : *s, out);
    }
    fputs(span ? "` |" : " |", out);
}

void conf_markdown(const struct conf_opt *opts, size_t n, const char *title, FILE *out)
{
    char flag[128];

    if (title != NULL)
        fprintf(out, "# %s\n\n", title);
    fputs("| Flag | Environment | Type | Default | Description |\n"
          "| --- | --- | --- | --- | --- |\n",
          out);
    for (size_t i = 0; i < n; i++) {
        flag_text(&opts[i], flag, sizeof flag);
        fputc('|', out);
        md_cell(out, flag, 1);
        md_cell(out, opts[i].env ? opts[i].env : "-", opts[i].env != NULL);
        md_cell(out, type_name(opts[i].type), 0);
        md_cell(out, default_text(&opts[i]), 1);
        md_cell(out, opts[i].help ? opts[i].help : "", 0);
        fputc('\n', out);
    }
    fputs("\nA flag overrides the environment variable, which overrides the default.\n"
          "Flags are written `--name=value` or `--name value`; a bool is also set with\n"
          "`--name` and cleared with `--no-name`, and takes true/false, yes/no, on/off, 1/0.\n"
          "A size is a byte count with an optional binary suffix: `K`, `KB`, `KiB` (1024),\n"
          "`M`, `G`, `T` likewise. A duration is in seconds, or takes a suffix `ms`, `s`,\n"
          "`m`, `h` or `d`.\n",
          out);
}

int conf_main(const struct conf_program *p, int argc, char **argv)
{
    const char *cmd = argc > 1 && argv[1][0] != '-' ? argv[1] : "run";
    int first = argc > 1 && argv[1][0] != '-' ? 2 : 1;
    char err[ERR_MAX] = "";
    int rc = conf_load(p->opts, p->n, argc - first + 1, argv + first - 1, NULL, NULL, err);

    if (rc == 1) {
        p->usage(stdout);
        rc = 0;
    } else if (rc < 0) {
        fprintf(stderr, "%s: %s (see --help)\n", p->prog, err);
        rc = 2;
    } else if (strcmp(cmd, "run") == 0) {
        log_init(p->service, *p->log_level);
        rc = p->run(argv[0]);
    } else if (strcmp(cmd, "config-doc") == 0) {
        conf_markdown(p->opts, p->n, p->prog, stdout);
    } else {
        p->usage(stderr);
        rc = 2;
    }
    conf_free(p->opts, p->n);
    return rc;
}
