/* test_ratelimit: bursts are allowed up to the burst size, then refused with a correct
 * Retry-After; refill follows the rate; keys are independent; idle buckets are shed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <cmocka.h>

#include "ratelimit.h"

static void test_burst_then_refuse(void **state)
{
    ratelimit *rl = ratelimit_new(10, 5);
    double retry = 0;

    for (int i = 0; i < 5; i++)
        assert_int_equal(ratelimit_take(rl, "alice", 100.0, &retry), 1);
    assert_int_equal(ratelimit_take(rl, "alice", 100.0, &retry), 0);
    assert_true(retry > 0.099 && retry < 0.101);
    assert_int_equal(ratelimit_take(rl, "bob", 100.0, &retry), 1);    /* others unaffected */
    assert_int_equal(ratelimit_take(rl, "alice", 100.15, &retry), 1); /* refilled 1.5 */
    assert_int_equal(ratelimit_take(rl, "alice", 100.15, &retry), 0);
    assert_int_equal(ratelimit_take(rl, "alice", 200.0, &retry), 1); /* capped at burst */
    for (int i = 0; i < 4; i++)
        assert_int_equal(ratelimit_take(rl, "alice", 200.0, &retry), 1);
    assert_int_equal(ratelimit_take(rl, "alice", 200.0, &retry), 0);
    ratelimit_free(rl);
}

static void test_disabled_and_null(void **state)
{
    ratelimit *rl = ratelimit_new(0, 1);

    for (int i = 0; i < 100; i++)
        assert_int_equal(ratelimit_take(rl, "x", 1.0, NULL), 1);
    ratelimit_free(rl);
    ratelimit_free(NULL);
}

static void test_shedding_keeps_memory_bounded(void **state)
{
    ratelimit *rl = ratelimit_new(100, 2);
    char key[32];

    for (int i = 0; i < 1000000; i++) {
        snprintf(key, sizeof key, "user-%d", i);
        assert_int_equal(ratelimit_take(rl, key, 1000.0 + i, NULL), 1);
    }
    assert_true(ratelimit_size(rl) <= 64 * 4096);
    ratelimit_free(rl);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_burst_then_refuse),
        cmocka_unit_test(test_disabled_and_null),
        cmocka_unit_test(test_shedding_keeps_memory_bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
