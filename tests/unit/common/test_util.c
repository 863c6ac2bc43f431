/* test_util: buffers, hex and base64url round trips (including rejection of bad input),
 * UUID shape, RFC 3339 formatting and the UTF-8 name rules used by the API. */
#include <setjmp.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "util.h"

static void test_buf(void **state)
{
    buf b = {0};

    assert_int_equal(buf_puts(&b, "abc"), 0);
    assert_int_equal(buf_printf(&b, "-%d-", 42), 0);
    for (int i = 0; i < 1000; i++)
        assert_int_equal(buf_append(&b, "x", 1), 0);
    assert_int_equal(b.len, 1007);
    assert_memory_equal(b.data, "abc-42-x", 8);
    assert_int_equal(b.data[b.len], '\0');
    buf_reset(&b);
    assert_int_equal(b.len, 0);
    assert_string_equal(b.data, "");
    buf_free(&b);
    buf_free(&b);
    buf_free(NULL);
}

static void test_hex(void **state)
{
    unsigned char in[4] = {0x00, 0xab, 0x10, 0xff}, out[4];
    char hex[9];

    util_hex(in, 4, hex);
    assert_string_equal(hex, "00ab10ff");
    assert_int_equal(util_unhex("00AB10ff", out, 4), 0);
    assert_memory_equal(in, out, 4);
    assert_int_equal(util_unhex("00ab10f", out, 4), -1);
    assert_int_equal(util_unhex("00ab10ffaa", out, 4), -1);
    assert_int_equal(util_unhex("zzab10ff", out, 4), -1);
}

static void test_b64url(void **state)
{
    const char *cases[][2] = {{"", ""},        {"f", "Zg"},        {"fo", "Zm8"},
                              {"foo", "Zm9v"}, {"foob", "Zm9vYg"}, {"\xfb\xff", "-_8"}};
    unsigned char *out;
    size_t n;

    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        char *enc = util_b64url_encode((const unsigned char *)cases[i][0], strlen(cases[i][0]));
        assert_string_equal(enc, cases[i][1]);
        assert_int_equal(util_b64url_decode(enc, strlen(enc), &out, &n), 0);
        assert_int_equal(n, strlen(cases[i][0]));
        assert_memory_equal(out, cases[i][0], n);
        free(out);
        free(enc);
    }
    assert_int_equal(util_b64url_decode("Zm9v+A", 6, &out, &n), -1); /* not url alphabet */
    assert_int_equal(util_b64url_decode("Z", 1, &out, &n), -1);
    assert_int_equal(util_b64url_decode("Zh", 2, &out, &n), -1); /* non-canonical bits */
    assert_int_equal(util_b64url_decode("Zg==", 4, &out, &n), 0);
    free(out);
}

static void test_uuid(void **state)
{
    char a[37], b[37];

    assert_int_equal(util_uuid(a), 0);
    assert_int_equal(util_uuid(b), 0);
    assert_true(util_is_uuid(a));
    assert_string_not_equal(a, b);
    assert_int_equal(a[14], '4');
    assert_false(util_is_uuid("not-a-uuid"));
    assert_false(util_is_uuid("00000000-0000-4000-8000-00000000000"));
    assert_false(util_is_uuid("00000000-0000-4000-8000-0000000000000"));
    assert_false(util_is_uuid("00000000-0000-4000-8000-00000000000A"));
    assert_true(util_is_uuid("00000000-0000-4000-8000-000000000000"));
}

/* WAL positions as PostgreSQL prints them, ordered as it orders them. */
static void test_lsn_parse(void **state)
{
    uint64_t a = 1, b = 0;

    assert_int_equal(util_lsn_parse("0/0", &a), 0);
    assert_true(a == 0);
    assert_int_equal(util_lsn_parse("16/B374D848", &a), 0);
    assert_true(a == (0x16ull << 32 | 0xB374D848ull));
    assert_int_equal(util_lsn_parse("17/0", &b), 0);
    assert_true(b > a);
    assert_int_equal(util_lsn_parse("FFFFFFFF/ffffffff", &b), 0);
    assert_true(b == UINT64_MAX);
    assert_int_equal(util_lsn_parse("", &a), -1);
    assert_int_equal(util_lsn_parse("16", &a), -1);
    assert_int_equal(util_lsn_parse("/1", &a), -1);
    assert_int_equal(util_lsn_parse("1/", &a), -1);
    assert_int_equal(util_lsn_parse("1/2 ", &a), -1);
    assert_int_equal(util_lsn_parse("-1/2", &a), -1);
    assert_int_equal(util_lsn_parse("100000000/0", &a), -1);
    assert_int_equal(util_lsn_parse("1/2/3", &a), -1);
    assert_int_equal(util_lsn_parse(NULL, &a), -1);
}

static void test_time(void **state)
{
    char ts[21];

    util_rfc3339(0, ts);
    assert_string_equal(ts, "1970-01-01T00:00:00Z");
    util_rfc3339(1770285600, ts);
    assert_string_equal(ts, "2026-02-05T10:00:00Z");
    assert_true(util_now_mono() > 0);
    assert_true(util_streq_ct("abc", "abc", 3));
    assert_false(util_streq_ct("abc", "abd", 3));
}

static void test_rfc3339_valid(void **state)
{
    static const char *const good[] = {"2021-07-04T12:34:56Z", "2021-07-04t12:34:56.123z",
                                       "0001-01-01T00:00:00+00:00", "9999-12-31T23:59:60-23:59",
                                       "2021-07-04T12:34:56.1234567+02:00"};
    static const char *const bad[] = {"",
                                      "2021-07-04",
                                      "2021-07-04T12:34Z",
                                      "2021-13-04T12:34:56Z",
                                      "2021-07-04T24:00:00Z",
                                      "2021-07-04T12:34:56",
                                      "2021-07-04T12:34:56.Z",
                                      "2021-07-04T12:34:56+2:00",
                                      "2021-07-04T12:34:56Zjunk",
                                      "0000-07-04T12:34:56Z",
                                      "2021-07-04 12:34:56Z",
                                      "2021-07-04T12:34:56+02:00x"};
    (void)state;
    for (size_t i = 0; i < sizeof good / sizeof *good; i++)
        assert_true(util_rfc3339_valid(good[i]));
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        assert_false(util_rfc3339_valid(bad[i]));
}

static void test_split_hostport(void **state)
{
    char host[16];
    int port = -1;

    assert_int_equal(util_split_hostport("127.0.0.1:8080", host, sizeof host, &port), 0);
    assert_string_equal(host, "127.0.0.1");
    assert_int_equal(port, 8080);
    assert_int_equal(util_split_hostport("0.0.0.0:0", host, sizeof host, &port), 0);
    assert_int_equal(port, 0);
    assert_int_equal(util_split_hostport("nohost", host, sizeof host, &port), -1);
    assert_int_equal(util_split_hostport("h:", host, sizeof host, &port), -1);
    assert_int_equal(util_split_hostport("h:70000", host, sizeof host, &port), -1);
    assert_int_equal(util_split_hostport("h:80x", host, sizeof host, &port), -1);
    assert_int_equal(util_split_hostport("a-very-long-host-name:1", host, sizeof host, &port), -1);
}

static void test_err_set(void **state)
{
    char err[ERR_MAX];
    char big[600];

    err_set(err, "x=%d", 5);
    assert_string_equal(err, "x=5");
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    err_set(err, "%s", big);
    assert_int_equal(strlen(err), ERR_MAX - 1);
    err_set(NULL, "ignored");
}

/* Timed waits run on the monotonic clock: a deadline from util_deadline on a condition
 * variable from util_cond_init times out after the interval (a cond on the wall clock
 * would see a deadline decades in the past and return at once). */
static void test_cond_monotonic(void **state)
{
    pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    pthread_cond_t cv;
    struct timespec ts, now;
    double t0, waited;
    int rc;

    assert_int_equal(util_cond_init(&cv), 0);
    util_deadline(&ts, 0.2);
    clock_gettime(CLOCK_MONOTONIC, &now);
    assert_true(ts.tv_sec - now.tv_sec <= 1 && ts.tv_nsec < 1000000000L);
    t0 = util_now_mono();
    pthread_mutex_lock(&mu);
    do
        rc = pthread_cond_timedwait(&cv, &mu, &ts);
    while (rc == 0);
    pthread_mutex_unlock(&mu);
    waited = util_now_mono() - t0;
    assert_int_equal(rc, ETIMEDOUT);
    assert_true(waited >= 0.19 && waited < 5.0);
    util_deadline(&ts, 0); /* now: already passed */
    pthread_mutex_lock(&mu);
    assert_int_equal(pthread_cond_timedwait(&cv, &mu, &ts), ETIMEDOUT);
    pthread_mutex_unlock(&mu);
    pthread_cond_destroy(&cv);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_buf),
        cmocka_unit_test(test_hex),
        cmocka_unit_test(test_rfc3339_valid),
        cmocka_unit_test(test_b64url),
        cmocka_unit_test(test_uuid),
        cmocka_unit_test(test_time),
        cmocka_unit_test(test_err_set),
        cmocka_unit_test(test_split_hostport),
        cmocka_unit_test(test_cond_monotonic),
        cmocka_unit_test(test_lsn_parse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
