/* test_backoff: retry delays grow exponentially, stay within [d/2, d] for any jitter, never
 * exceed the cap, and the jitter source is uniform-ish in [0, 1). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "backoff.h"

static void test_bounds(void **unused)
{
    const double base = 0.5, cap = 20;

    for (int a = 0; a < 70; a++) {
        double d = base * (double)(1ULL << (a < 62 ? a : 62));
        if (d > cap)
            d = cap;
        for (int k = 0; k <= 100; k++) {
            double r = k / 100.0 * 0.999999, v = backoff_delay(a, base, cap, r);
            assert_true(v >= d / 2 - 1e-9);
            assert_true(v <= d + 1e-9);
            assert_true(v <= cap);
        }
        assert_true(backoff_delay(a, base, cap, 0) >= d / 2 - 1e-9);
    }
}

static void test_growth(void **unused)
{
    /* the smallest delay of attempt a+1 is the largest of attempt a, until the cap */
    for (int a = 0; a < 4; a++)
        assert_true(backoff_delay(a + 1, 0.25, 60, 0) >= backoff_delay(a, 0.25, 60, 0.999) - 1e-9);
    assert_true(backoff_delay(0, 1, 30, 0.5) == 0.75);
    assert_true(backoff_delay(3, 1, 30, 0) == 4);
    assert_true(backoff_delay(10, 1, 30, 0.999999) <= 30);
    assert_true(backoff_delay(10, 1, 30, 0) == 15);
}

static void test_odd_input(void **unused)
{
    assert_true(backoff_delay(-3, 1, 10, 0.5) == backoff_delay(0, 1, 10, 0.5));
    assert_true(backoff_delay(5, 1, 10, -1) == 5); /* r clamped to 0 */
    assert_true(backoff_delay(5, 1, 10, 7) <= 10); /* r clamped below 1 */
    assert_true(backoff_delay(1000000, 1, 10, 0.5) <= 10);
}

static void test_random(void **unused)
{
    double lo = 1, hi = 0, sum = 0;

    for (int i = 0; i < 10000; i++) {
        double r = backoff_random();
        assert_true(r >= 0 && r < 1);
        lo = r < lo ? r : lo, hi = r > hi ? r : hi, sum += r;
    }
    assert_true(lo < 0.01 && hi > 0.99);
    assert_true(sum / 10000 > 0.45 && sum / 10000 < 0.55);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bounds),
        cmocka_unit_test(test_growth),
        cmocka_unit_test(test_odd_input),
        cmocka_unit_test(test_random),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
