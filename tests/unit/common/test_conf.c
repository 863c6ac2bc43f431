/* Unit tests for common/conf.c: precedence default < env < flag, every type and suffix,
 * flag forms, errors, --help, positional arguments, usage alignment and Markdown output. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "conf.h"

static struct {
    char *listen;
    char *secret;
    long port;
    int debug;
    long long max_body;
    double timeout;
} cfg;

static const struct conf_opt opts[] = {
    {"listen", "PIXT_LISTEN", CONF_STR, &cfg.listen, "0.0.0.0", "address to listen on"},
    {"secret", "PIXT_SECRET", CONF_STR, &cfg.secret, NULL, "shared secret | keep it safe"},
    {"port", "PIXT_PORT", CONF_INT, &cfg.port, "8080", "TCP port"},
    {"debug", "PIXT_DEBUG", CONF_BOOL, &cfg.debug, "false", "verbose logs"},
    {"max-body", "PIXT_MAX_BODY", CONF_SIZE, &cfg.max_body, "1MiB", "request body limit"},
    {"timeout", NULL, CONF_SECS, &cfg.timeout, "30s", "request timeout"},
};
#define NOPTS ARRAY_LEN(opts)

static const char *const envs[] = {"PIXT_LISTEN", "PIXT_SECRET", "PIXT_PORT", "PIXT_DEBUG",
                                   "PIXT_MAX_BODY"};

static int setup(void **state)
{
    for (size_t i = 0; i < ARRAY_LEN(envs); i++)
        unsetenv(envs[i]);
    memset(&cfg, 0, sizeof cfg);
    return 0;
}

static int teardown(void **state)
{
    conf_free(opts, NOPTS);
    return 0;
}

/* conf_load on a NULL-terminated argument list (argv[0] "prog" is added). */
static int load(char *err, char ***rest, int *nrest, const char *first, ...)
{
    static char *av[32];
    int ac = 0;
    va_list ap;
    const char *a;

    av[ac++] = "prog";
    va_start(ap, first);
    for (a = first; a != NULL && ac < 31; a = va_arg(ap, const char *))
        av[ac++] = (char *)a;
    va_end(ap);
    av[ac] = NULL;
    err[0] = '\0';
    return conf_load(opts, NOPTS, ac, av, rest, nrest, err);
}
#define LOAD(err, ...) load(err, NULL, NULL, __VA_ARGS__, (char *)NULL)

static void test_defaults(void **state)
{
    char err[ERR_MAX];

    assert_int_equal(load(err, NULL, NULL, (char *)NULL), 0);
    assert_string_equal(cfg.listen, "0.0.0.0");
    assert_non_null(cfg.secret);
    assert_string_equal(cfg.secret, "");
    assert_int_equal(cfg.port, 8080);
    assert_int_equal(cfg.debug, 0);
    assert_int_equal(cfg.max_body, 1048576);
    assert_true(cfg.timeout == 30.0);
}

static void test_env_over_default(void **state)
{
    char err[ERR_MAX];

    setenv("PIXT_LISTEN", "127.0.0.1", 1);
    setenv("PIXT_PORT", "9090", 1);
    setenv("PIXT_DEBUG", "yes", 1);
    setenv("PIXT_MAX_BODY", "2G", 1);
    assert_int_equal(LOAD(err, NULL), 0);
    assert_string_equal(cfg.listen, "127.0.0.1");
    assert_int_equal(cfg.port, 9090);
    assert_int_equal(cfg.debug, 1);
    assert_int_equal(cfg.max_body, 2LL << 30);
}

static void test_flag_over_env(void **state)
{
    char err[ERR_MAX];

    setenv("PIXT_LISTEN", "127.0.0.1", 1);
    setenv("PIXT_SECRET", "from-env", 1);
    setenv("PIXT_PORT", "9090", 1);
    setenv("PIXT_DEBUG", "on", 1);
    setenv("PIXT_MAX_BODY", "2G", 1);
    assert_int_equal(LOAD(err, "--listen=::1", "--secret", "from-flag", "--port", "7070",
                          "--no-debug", "--max-body=512", "--timeout", "1.5m"),
                     0);
    assert_string_equal(cfg.listen, "::1");
    assert_string_equal(cfg.secret, "from-flag");
    assert_int_equal(cfg.port, 7070);
    assert_int_equal(cfg.debug, 0);
    assert_int_equal(cfg.max_body, 512);
    assert_true(cfg.timeout == 90.0);
}

static void test_bool_forms(void **state)
{
    char err[ERR_MAX];

    assert_int_equal(LOAD(err, "--debug"), 0);
    assert_int_equal(cfg.debug, 1);
    conf_free(opts, NOPTS);
    assert_int_equal(LOAD(err, "--debug=off"), 0);
    assert_int_equal(cfg.debug, 0);
    conf_free(opts, NOPTS);
    assert_int_equal(LOAD(err, "--debug=TRUE"), 0);
    assert_int_equal(cfg.debug, 1);
    conf_free(opts, NOPTS);
    setenv("PIXT_DEBUG", "1", 1);
    assert_int_equal(LOAD(err, "--no-debug"), 0);
    assert_int_equal(cfg.debug, 0);
    conf_free(opts, NOPTS);
    /* A bare bool does not swallow the next argument. */
    assert_int_equal(LOAD(err, "--debug", "--port", "1"), 0);
    assert_int_equal(cfg.debug, 1);
    assert_int_equal(cfg.port, 1);
}

static void test_last_flag_wins_no_leak(void **state)
{
    char err[ERR_MAX];

    setenv("PIXT_SECRET", "e", 1);
    assert_int_equal(LOAD(err, "--secret=a", "--secret=b", "--secret", "c"), 0);
    assert_string_equal(cfg.secret, "c");
    conf_free(opts, NOPTS);
    assert_null(cfg.secret);
    assert_null(cfg.listen);
    conf_free(opts, NOPTS); /* twice is fine */
}

/* CONF_LIST: every repeat of the flag adds a line, after the environment's value. */
static void test_list_adds(void **state)
{
    char *list = NULL, err[ERR_MAX] = "";
    const struct conf_opt t[] = {{"exclude", "PIXT_EXCLUDE", CONF_LIST, &list, "", "globs"}};
    char *av[] = {"prog", "--exclude", "*.raw", "--exclude=*.tmp", NULL};

    assert_int_equal(conf_load(t, 1, 1, av, NULL, NULL, err), 0);
    assert_string_equal(list, "");
    conf_free(t, 1);
    setenv("PIXT_EXCLUDE", "*.bak", 1);
    assert_int_equal(conf_load(t, 1, 4, av, NULL, NULL, err), 0);
    assert_string_equal(list, "*.bak\n*.raw\n*.tmp");
    conf_free(t, 1);
    assert_null(list);
    unsetenv("PIXT_EXCLUDE");
}

static void test_parse_size(void **state)
{
    static const struct {
        const char *s;
        long long v;
    } ok[] = {{"0", 0},
              {"512", 512},
              {"1B", 1},
              {"1K", 1024},
              {"1KB", 1024},
              {"1KiB", 1024},
              {"2k", 2048},
              {"3M", 3LL << 20},
              {"3MB", 3LL << 20},
              {"3MiB", 3LL << 20},
              {"4G", 4LL << 30},
              {"4GB", 4LL << 30},
              {"4GiB", 4LL << 30},
              {"5T", 5LL << 40},
              {"5TB", 5LL << 40},
              {"5TiB", 5LL << 40},
              {"8388607T", 8388607LL << 40},
              {"9223372036854775807", 9223372036854775807LL}};
    static const char *const bad[] = {"",
                                      "-1",
                                      "+1",
                                      "1.5K",
                                      "K",
                                      "1KX",
                                      " 1",
                                      "1 K",
                                      "1P",
                                      "8388608T",
                                      "9223372036854775808",
                                      "99999999999999999999999",
                                      "0x10",
                                      "1e3",
                                      "1Ki",
                                      "8589934592G"};
    long long v;

    for (size_t i = 0; i < ARRAY_LEN(ok); i++) {
        v = -1;
        assert_int_equal(conf_parse_size(ok[i].s, &v), 0);
        assert_int_equal(v, ok[i].v);
    }
    for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
        v = 77;
        if (conf_parse_size(bad[i], &v) != -1)
            fail_msg("accepted size '%s'", bad[i]);
        assert_int_equal(v, 77);
    }
}

static void test_parse_secs(void **state)
{
    static const struct {
        const char *s;
        double v;
    } ok[] = {{"0", 0},     {"30", 30},      {"1.5", 1.5},   {".5", 0.5},
              {"2.", 2},    {"250ms", 0.25}, {"2s", 2},      {"5m", 300},
              {"1h", 3600}, {"2d", 172800},  {"0.5h", 1800}, {"1500ms", 1.5}};
    static const char *const bad[] = {"",    "-1",  "-1s", "+1",  "1x", "1.2.3", "h",   ".",  "1e3",
                                      "inf", "nan", " 1",  "1 s", "1H", "1sec",  "5mm", "0x1"};
    double v;

    for (size_t i = 0; i < ARRAY_LEN(ok); i++) {
        v = -1;
        assert_int_equal(conf_parse_secs(ok[i].s, &v), 0);
        if (v != ok[i].v)
            fail_msg("'%s' gave %g", ok[i].s, v);
    }
    for (size_t i = 0; i < ARRAY_LEN(bad); i++)
        if (conf_parse_secs(bad[i], &v) != -1)
            fail_msg("accepted duration '%s'", bad[i]);
}

static void test_parse_bool(void **state)
{
    static const char *const yes[] = {"true", "TRUE", "1", "yes", "Yes", "on", "ON"};
    static const char *const no[] = {"false", "False", "0", "no", "NO", "off", "Off"};
    static const char *const bad[] = {"", "maybe", "2", "y", "n", "truee", " true"};
    int v;

    for (size_t i = 0; i < ARRAY_LEN(yes); i++) {
        v = 0;
        assert_int_equal(conf_parse_bool(yes[i], &v), 0);
        assert_int_equal(v, 1);
    }
    for (size_t i = 0; i < ARRAY_LEN(no); i++) {
        v = 1;
        assert_int_equal(conf_parse_bool(no[i], &v), 0);
        assert_int_equal(v, 0);
    }
    for (size_t i = 0; i < ARRAY_LEN(bad); i++)
        assert_int_equal(conf_parse_bool(bad[i], &v), -1);
}

static void test_int_values(void **state)
{
    char err[ERR_MAX];

    assert_int_equal(LOAD(err, "--port=-5"), 0);
    assert_int_equal(cfg.port, -5);
    conf_free(opts, NOPTS);
    assert_int_equal(LOAD(err, "--port", "+12"), 0);
    assert_int_equal(cfg.port, 12);
    conf_free(opts, NOPTS);
    assert_int_equal(LOAD(err, "--port=99999999999999999999"), -1);
    assert_non_null(strstr(err, "--port"));
    assert_int_equal(LOAD(err, "--port=12x"), -1);
    assert_int_equal(LOAD(err, "--port="), -1);
    assert_int_equal(LOAD(err, "--port= 1"), -1);
}

/* The table's ranges hold for every source; the message names the option and the range. */
static const struct conf_opt bounded[] = {
    {"port", "PIXT_PORT", CONF_INT, &cfg.port, "8080", "TCP port", 1, 65535},
    {"timeout", NULL, CONF_SECS, &cfg.timeout, "30s", "request timeout", 0.5, 0},
    {"max-body", NULL, CONF_SIZE, &cfg.max_body, "1MiB", "body limit", 1024, 1 << 30},
};

static int load_bounded(char *err, const char *a, const char *b)
{
    char *argv[] = {"prog", (char *)a, (char *)b, NULL};
    int argc = b ? 3 : a ? 2 : 1;

    return conf_load(bounded, ARRAY_LEN(bounded), argc, argv, NULL, NULL, err);
}

static void test_bounds(void **state)
{
    char err[ERR_MAX];

    assert_int_equal(load_bounded(err, "--port=65535", "--timeout=500ms"), 0);
    assert_int_equal(cfg.port, 65535);
    assert_int_equal(load_bounded(err, "--port=0", NULL), -1);
    assert_string_equal(err, "--port (PIXT_PORT) must be 1..65535, not 0");
    setenv("PIXT_PORT", "65536", 1);
    assert_int_equal(load_bounded(err, NULL, NULL), -1);
    assert_string_equal(err, "--port (PIXT_PORT) must be 1..65535, not 65536");
    unsetenv("PIXT_PORT");
    assert_int_equal(load_bounded(err, "--timeout=100ms", NULL), -1);
    assert_string_equal(err, "--timeout (flag only) must be at least 0.5, not 0.1");
    assert_int_equal(load_bounded(err, "--timeout=1d", NULL), 0); /* no upper bound */
    assert_int_equal(load_bounded(err, "--max-body=2GiB", NULL), -1);
    assert_non_null(strstr(err, "--max-body (flag only) must be 1024..1073741824, not 2147483648"));
}

static void test_errors(void **state)
{
    char err[ERR_MAX];

    assert_int_equal(LOAD(err, "--bogus=1"), -1);
    assert_string_equal(err, "unknown flag --bogus");
    assert_null(cfg.listen); /* freed again on failure */
    assert_int_equal(LOAD(err, "-x"), -1);
    assert_string_equal(err, "unknown flag -x");
    assert_int_equal(LOAD(err, "--no-port"), -1);
    assert_string_equal(err, "unknown flag --no-port");
    assert_int_equal(LOAD(err, "--no-debug=1"), -1);
    assert_string_equal(err, "flag --no-debug takes no value");
    assert_int_equal(LOAD(err, "--port"), -1);
    assert_string_equal(err, "flag --port requires a value");
    assert_int_equal(LOAD(err, "--port", "abc"), -1);
    assert_non_null(strstr(err, "'abc'"));
    assert_non_null(strstr(err, "--port (command line)"));
    assert_int_equal(LOAD(err, "--debug=maybe"), -1);
    assert_non_null(strstr(err, "--debug (command line)"));
    assert_int_equal(LOAD(err, "--max-body=1.5G"), -1);
    assert_non_null(strstr(err, "--max-body"));
    assert_int_equal(LOAD(err, "--timeout=-1"), -1);
    assert_non_null(strstr(err, "--timeout"));

    setenv("PIXT_MAX_BODY", "lots", 1);
    assert_int_equal(LOAD(err, "--listen=x"), -1);
    assert_string_equal(err, "bad value 'lots' for PIXT_MAX_BODY (environment, option "
                             "--max-body): expected a size in bytes with an optional suffix "
                             "K, M, G or T (e.g. 64KiB)");
    assert_null(cfg.listen);
    unsetenv("PIXT_MAX_BODY");
    setenv("PIXT_PORT", "", 1); /* set but empty is a bad number, not "unset" */
    assert_int_equal(LOAD(err, NULL), -1);
    assert_non_null(strstr(err, "PIXT_PORT"));
}

static void test_bad_default(void **state)
{
    long n;
    const struct conf_opt bad[] = {
        {"listen", NULL, CONF_STR, &cfg.listen, "x", "a"},
        {"n", NULL, CONF_INT, &n, "ten", "a number"},
        {"secret", NULL, CONF_STR, &cfg.secret, "y", "b"},
    };
    char *argv[] = {"prog", NULL};
    char err[ERR_MAX];

    cfg.secret = (char *)"not freed: defaults overwrite";
    assert_int_equal(conf_load(bad, ARRAY_LEN(bad), 1, argv, NULL, NULL, err), -1);
    assert_string_equal(err, "bad default 'ten' for --n: expected an integer");
    assert_null(cfg.listen);
    assert_null(cfg.secret);
}

static void test_help(void **state)
{
    char err[ERR_MAX];
    char **rest = NULL;
    int nrest = -1;

    assert_int_equal(LOAD(err, "--help"), 1);
    assert_null(cfg.listen); /* nothing loaded, nothing to free */
    assert_int_equal(LOAD(err, "--port=1", "-h"), 1);
    assert_int_equal(LOAD(err, "--bogus", "--help"), 1);
    assert_int_equal(load(err, &rest, &nrest, "--", "--help", (char *)NULL), 0);
    assert_int_equal(nrest, 1);
    assert_string_equal(rest[0], "--help");
}

static void test_rest(void **state)
{
    char err[ERR_MAX];
    char **rest = NULL;
    int nrest = -1;

    assert_int_equal(load(err, &rest, &nrest, "a", "--port", "1", "b", "-", "--debug", "--",
                          "--port=2", "c", (char *)NULL),
                     0);
    assert_int_equal(cfg.port, 1);
    assert_int_equal(cfg.debug, 1);
    assert_int_equal(nrest, 5);
    assert_string_equal(rest[0], "a");
    assert_string_equal(rest[1], "b");
    assert_string_equal(rest[2], "-");
    assert_string_equal(rest[3], "--port=2");
    assert_string_equal(rest[4], "c");
    conf_free(opts, NOPTS);

    assert_int_equal(load(err, &rest, &nrest, (char *)NULL), 0);
    assert_int_equal(nrest, 0);
    conf_free(opts, NOPTS);

    assert_int_equal(LOAD(err, "--port=1", "stray"), -1);
    assert_string_equal(err, "unexpected argument 'stray'");
    assert_null(cfg.listen);
}

static char *render(int markdown)
{
    char *s = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&s, &n);

    assert_non_null(f);
    if (markdown)
        conf_markdown(opts, NOPTS, "Configuration", f);
    else
        conf_usage(opts, NOPTS, "pixplane-api", f);
    fclose(f);
    return s;
}

static void test_usage(void **state)
{
    char *u = render(0), *line, *save = NULL;
    const char *col = NULL;
    int rows = 0;
    long at = -1;

    assert_true(strncmp(u, "Usage: pixplane-api [options]\n", 30) == 0);
    for (line = strtok_r(u, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (strncmp(line, "  ", 2) != 0)
            continue;
        if (at < 0) { /* header row: every row's description starts in the same column */
            col = strstr(line, "DESCRIPTION");
            assert_non_null(col);
            at = col - line;
            assert_non_null(strstr(line, "ENV"));
            assert_non_null(strstr(line, "DEFAULT"));
            continue;
        }
        assert_true((long)strlen(line) > at);
        assert_true(line[at - 1] == ' ' && line[at] != ' ');
        rows++;
    }
    assert_int_equal(rows, NOPTS + 1);
    free(u);
    u = render(0);
    assert_non_null(strstr(u, "--[no-]debug"));
    assert_non_null(strstr(u, "PIXT_MAX_BODY"));
    assert_non_null(strstr(u, "duration"));
    assert_non_null(strstr(u, "1MiB"));
    assert_non_null(strstr(u, "-h, --help"));
    free(u);
}

static void test_markdown(void **state)
{
    static const char want[] =
        "# Configuration\n\n"
        "| Flag | Environment | Type | Default | Description |\n"
        "| --- | --- | --- | --- | --- |\n"
        "| `--listen` | `PIXT_LISTEN` | string | `0.0.0.0` | address to listen on |\n"
        "| `--secret` | `PIXT_SECRET` | string | `\"\"` | shared secret \\| keep it safe |\n"
        "| `--port` | `PIXT_PORT` | int | `8080` | TCP port |\n"
        "| `--[no-]debug` | `PIXT_DEBUG` | bool | `false` | verbose logs |\n"
        "| `--max-body` | `PIXT_MAX_BODY` | size | `1MiB` | request body limit |\n"
        "| `--timeout` | - | duration | `30s` | request timeout |\n\n";
    char *a = render(1), *b = render(1);

    assert_string_equal(a, b);
    if (strncmp(a, want, strlen(want)) != 0)
        fail_msg("markdown:\n%s", a);
    free(a);
    free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_defaults, setup, teardown),
        cmocka_unit_test_setup_teardown(test_env_over_default, setup, teardown),
        cmocka_unit_test_setup_teardown(test_flag_over_env, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bool_forms, setup, teardown),
        cmocka_unit_test_setup_teardown(test_last_flag_wins_no_leak, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_adds, setup, teardown),
        cmocka_unit_test_setup_teardown(test_parse_size, setup, teardown),
        cmocka_unit_test_setup_teardown(test_parse_secs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_parse_bool, setup, teardown),
        cmocka_unit_test_setup_teardown(test_int_values, setup, teardown),
        cmocka_unit_test_setup_teardown(test_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bounds, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_default, setup, teardown),
        cmocka_unit_test_setup_teardown(test_help, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rest, setup, teardown),
        cmocka_unit_test_setup_teardown(test_usage, setup, teardown),
        cmocka_unit_test_setup_teardown(test_markdown, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
