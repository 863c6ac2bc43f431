/* Unit tests for common/log.c: JSON shape, escaping, level filter, truncation, one line per
 * event under concurrency, and fatal(). stderr is captured by dup2 onto a temp file. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cjson/cJSON.h>
#include "log.h"

static FILE *cap_file;
static int cap_saved = -1;

/* Between cap_begin and cap_end stderr goes to a temp file: no cmocka asserts in there. */
static void cap_begin(void)
{
    fflush(stderr);
    cap_file = tmpfile();
    assert_non_null(cap_file);
    cap_saved = dup(STDERR_FILENO);
    assert_true(cap_saved >= 0);
    assert_true(dup2(fileno(cap_file), STDERR_FILENO) >= 0);
}

/* Restores stderr; returns everything written meanwhile (malloc'd). */
static char *cap_end(void)
{
    long n;
    char *s;

    fflush(stderr);
    dup2(cap_saved, STDERR_FILENO);
    close(cap_saved);
    n = ftell(cap_file);
    s = malloc((size_t)n + 1);
    assert_non_null(s);
    rewind(cap_file);
    assert_int_equal(fread(s, 1, (size_t)n, cap_file), (size_t)n);
    s[n] = '\0';
    fclose(cap_file);
    return s;
}

static size_t count_char(const char *s, char c)
{
    size_t n = 0;

    for (; *s; s++)
        n += *s == c;
    return n;
}

/* Exactly one line, valid JSON object; returns it parsed. */
static cJSON *one_line(const char *out)
{
    size_t n = strlen(out);
    cJSON *o;

    assert_true(n > 1);
    assert_int_equal(count_char(out, '\n'), 1);
    assert_int_equal(out[n - 1], '\n');
    for (size_t i = 0; i + 1 < n; i++)
        assert_true((unsigned char)out[i] >= 0x20 && out[i] != 0x7f);
    o = cJSON_ParseWithLength(out, n);
    assert_non_null(o);
    assert_true(cJSON_IsObject(o));
    return o;
}

static const char *field(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static void test_shape(void **state)
{
    char *out;
    cJSON *o;
    const char *ts;

    log_init("api", "debug");
    cap_begin();
    log_info("rid-1", "upload_done", "stored", "bucket", "b1", "bytes", "42");
    out = cap_end();
    assert_true(strncmp(out, "{\"ts\":\"", 7) == 0);
    o = one_line(out);
    ts = field(o, "ts");
    assert_non_null(ts);
    assert_int_equal(strlen(ts), 24); /* 2026-11-28T10:00:00.123Z */
    assert_true(ts[4] == '-' && ts[10] == 'T' && ts[19] == '.' && ts[23] == 'Z');
    assert_string_equal(field(o, "level"), "info");
    assert_string_equal(field(o, "service"), "api");
    assert_string_equal(field(o, "event"), "upload_done");
    assert_string_equal(field(o, "request_id"), "rid-1");
    assert_string_equal(field(o, "msg"), "stored");
    assert_string_equal(field(o, "bucket"), "b1");
    assert_string_equal(field(o, "bytes"), "42");
    assert_null(cJSON_GetObjectItem(o, "truncated"));
    cJSON_Delete(o);
    free(out);
}

static void test_no_request_id(void **state)
{
    char *out;
    cJSON *o;

    log_init("api", "info");
    cap_begin();
    log_warn(NULL, "ev", "m");
    out = cap_end();
    o = one_line(out);
    assert_null(cJSON_GetObjectItem(o, "request_id"));
    assert_string_equal(field(o, "level"), "warn");
    assert_string_equal(field(o, "msg"), "m");
    cJSON_Delete(o);
    free(out);
}

static void test_escaping(void **state)
{
    const char *in =
        "q\"b\\n\nt\tr\rc\x01\x1f\x7f"
        " e\xc3\xa9 g\xf0\x9f\x98\x80 bad\xff over\xc0\xaf sur\xed\xa0\x80 cut\xe2\x82";
    const char *want = "q\"b\\n\nt\tr\rc\x01\x1f\x7f"
                       " e\xc3\xa9 g\xf0\x9f\x98\x80 bad\xef\xbf\xbd over\xef\xbf\xbd\xef\xbf\xbd"
                       " sur\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd cut\xef\xbf\xbd\xef\xbf\xbd";
    char *out;
    cJSON *o;

    log_init("api", "info");
    cap_begin();
    log_error("r\"id", "k\ney", in, "we\"ird\\key", in);
    out = cap_end();
    o = one_line(out);
    assert_non_null(strstr(out, "\\u0001"));
    assert_non_null(strstr(out, "\\u007f"));
    assert_string_equal(field(o, "msg"), want);
    assert_string_equal(field(o, "we\"ird\\key"), want);
    assert_string_equal(field(o, "event"), "k\ney");
    assert_string_equal(field(o, "request_id"), "r\"id");
    cJSON_Delete(o);
    free(out);
}

static void test_level_filter(void **state)
{
    char *out;

    log_init("api", "warn");
    assert_false(log_enabled(LOG_DEBUG));
    assert_false(log_enabled(LOG_INFO));
    assert_true(log_enabled(LOG_WARN));
    assert_true(log_enabled(LOG_ERROR));
    cap_begin();
    log_debug(NULL, "d", "no");
    log_info(NULL, "i", "no");
    log_warn(NULL, "w", "yes");
    log_error(NULL, "e", "yes");
    out = cap_end();
    assert_int_equal(count_char(out, '\n'), 2);
    assert_null(strstr(out, "\"no\""));
    free(out);

    log_init(NULL, "ERROR");
    cap_begin();
    log_warn(NULL, "w", "no");
    out = cap_end();
    assert_string_equal(out, "");
    free(out);
}

static void test_bad_level(void **state)
{
    char *out;
    cJSON *o;

    cap_begin();
    log_init("api", "loud");
    out = cap_end();
    o = one_line(out);
    assert_string_equal(field(o, "event"), "log_level_invalid");
    assert_string_equal(field(o, "level"), "warn");
    assert_true(log_enabled(LOG_INFO));
    assert_false(log_enabled(LOG_DEBUG));
    cJSON_Delete(o);
    free(out);
}

static void test_truncation(void **state)
{
    size_t big = 20000;
    char *v = malloc(big + 1), *out;
    const char *m;
    cJSON *o;

    assert_non_null(v);
    memset(v, 'x', big);
    v[big] = '\0';
    log_init("api", "info");
    cap_begin();
    log_info(NULL, "big", v, "a", v, "b", v, "c", v, "d", v, "e", v);
    out = cap_end();
    assert_true(strlen(out) <= 8192);
    o = one_line(out);
    m = field(o, "msg");
    assert_non_null(m);
    assert_true(strlen(m) >= 2000 && strlen(m) < big);
    assert_string_equal(m + strlen(m) - 3, "...");
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(o, "truncated")));
    assert_non_null(field(o, "a"));
    assert_null(cJSON_GetObjectItem(o, "e"));
    cJSON_Delete(o);
    free(out);

    /* Escapes are never cut in half: 5000 control chars (6 bytes escaped each). */
    memset(v, '\x01', 5000);
    v[5000] = '\0';
    cap_begin();
    log_info(NULL, "ctl", v);
    out = cap_end();
    o = one_line(out);
    cJSON_Delete(o);
    free(out);
    free(v);
}

static void test_null_value(void **state)
{
    char *out;
    cJSON *o;

    log_init("api", "info");
    cap_begin();
    log_info(NULL, "ev", "m", "k", (char *)NULL, "after", "x");
    out = cap_end();
    o = one_line(out);
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(o, "k")));
    assert_null(cJSON_GetObjectItem(o, "after"));
    cJSON_Delete(o);
    free(out);
}

#define THREADS 8
#define LINES 200

static void *writer(void *arg)
{
    char v[2001], id[16];

    memset(v, 'a' + (int)(intptr_t)arg, sizeof v - 1);
    v[sizeof v - 1] = '\0';
    snprintf(id, sizeof id, "%d", (int)(intptr_t)arg);
    for (int i = 0; i < LINES; i++)
        log_info(id, "spam", v, "pad", v);
    return NULL;
}

static void test_threads_no_interleave(void **state)
{
    pthread_t t[THREADS];
    char *out, *line, *save = NULL;
    int n = 0;

    log_init("api", "info");
    cap_begin();
    for (intptr_t i = 0; i < THREADS; i++)
        pthread_create(&t[i], NULL, writer, (void *)i);
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    out = cap_end();
    for (line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        cJSON *o = cJSON_Parse(line);
        const char *id, *m;
        char set[2];
        assert_non_null(o);
        id = field(o, "request_id");
        m = field(o, "msg");
        assert_non_null(id);
        assert_non_null(m);
        assert_int_equal(m[0], 'a' + atoi(id));
        set[0] = m[0];
        set[1] = '\0';
        assert_int_equal(strspn(m, set), strlen(m));
        cJSON_Delete(o);
        n++;
    }
    assert_int_equal(n, THREADS * LINES);
    free(out);
}

static void test_fatal(void **state)
{
    FILE *f = tmpfile();
    int st;
    pid_t pid;
    char text[1024];
    size_t n;
    cJSON *o;

    assert_non_null(f);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(fileno(f), STDERR_FILENO);
        log_init("api", "error");
        fatal("startup_failed", "cannot bind %s:%d", "0.0.0.0", 80);
    }
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 1);
    rewind(f);
    n = fread(text, 1, sizeof text - 1, f);
    text[n] = '\0';
    fclose(f);
    o = one_line(text);
    assert_string_equal(field(o, "level"), "error");
    assert_string_equal(field(o, "event"), "startup_failed");
    assert_string_equal(field(o, "msg"), "cannot bind 0.0.0.0:80");
    cJSON_Delete(o);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shape),      cmocka_unit_test(test_no_request_id),
        cmocka_unit_test(test_escaping),   cmocka_unit_test(test_level_filter),
        cmocka_unit_test(test_bad_level),  cmocka_unit_test(test_truncation),
        cmocka_unit_test(test_null_value), cmocka_unit_test(test_threads_no_interleave),
        cmocka_unit_test(test_fatal),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
