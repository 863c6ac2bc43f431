/* test_plan: chunk arithmetic: counts, offsets and lengths cover every byte exactly once,
 * and the missing-chunk set is what a resumed upload sends. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>

#include "plan.h"

#define MIB (1024LL * 1024)

static void test_count(void **unused)
{
    assert_int_equal(plan_count(1, 8 * MIB), 1);
    assert_int_equal(plan_count(8 * MIB, 8 * MIB), 1);
    assert_int_equal(plan_count(8 * MIB + 1, 8 * MIB), 2);
    assert_int_equal(plan_count(300 * MIB, 8 * MIB), 38);
    assert_int_equal(plan_count(50LL * 1000 * 1000 * 1000, 5 * MIB), 9537);
    assert_int_equal(plan_count(0, 8 * MIB), 0);
    assert_int_equal(plan_count(5, 0), 0);
}

static void test_cover(void **unused)
{
    const long long sizes[] = {1, 5 * MIB - 1, 8 * MIB, 8 * MIB + 1, 300 * MIB + 12345};

    for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++) {
        long long size = sizes[k], cs = 8 * MIB, next = 0;
        int n = plan_count(size, cs);
        for (int i = 0; i < n; i++) {
            assert_int_equal(plan_offset(cs, i), next);
            assert_true(plan_length(size, cs, i) > 0);
            assert_true(plan_length(size, cs, i) <= cs);
            if (i < n - 1)
                assert_int_equal(plan_length(size, cs, i), cs);
            next += plan_length(size, cs, i);
        }
        assert_int_equal(next, size);
        assert_int_equal(plan_length(size, cs, n), 0);
        assert_int_equal(plan_length(size, cs, -1), 0);
    }
}

static void test_missing(void **unused)
{
    int have[] = {0, 2, 2, 7, -1, 99, 5}, out[8];
    int n = plan_missing(8, have, 7, out);

    assert_int_equal(n, 4);
    assert_int_equal(out[0], 1);
    assert_int_equal(out[1], 3);
    assert_int_equal(out[2], 4);
    assert_int_equal(out[3], 6);
    assert_int_equal(plan_missing(3, NULL, 0, out), 3);
    int all[] = {2, 1, 0};
    assert_int_equal(plan_missing(3, all, 3, out), 0);
}

static void test_check(void **unused)
{
    assert_int_equal(plan_check(300 * MIB, 8 * MIB, 38), 0);
    assert_int_equal(plan_check(300 * MIB, 8 * MIB, 37), -1);
    assert_int_equal(plan_check(300 * MIB, 0, 38), -1);
    assert_int_equal(plan_check(0, 8 * MIB, 1), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_count),
        cmocka_unit_test(test_cover),
        cmocka_unit_test(test_missing),
        cmocka_unit_test(test_check),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
