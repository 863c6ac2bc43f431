/* test_upload: chunk planning for uploads from one byte to 50 GiB and beyond: chunk size
 * never below the minimum, never more than 10,000 chunks, every byte covered. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "api.h"

#define MIB (1024LL * 1024)
#define GIB (1024 * MIB)

static void check_plan(long long size)
{
    struct upload_plan p;

    assert_int_equal(upload_plan(size, 8 * MIB, 5 * MIB, 10000, &p), 0);
    assert_true(p.chunk_size >= 5 * MIB);
    assert_true(p.chunk_count >= 1 && p.chunk_count <= 10000);
    assert_true((long long)(p.chunk_count - 1) * p.chunk_size < size);
    assert_true((long long)p.chunk_count * p.chunk_size >= size);
}

static void test_small_files_one_chunk(void **state)
{
    struct upload_plan p;

    assert_int_equal(upload_plan(1, 8 * MIB, 5 * MIB, 10000, &p), 0);
    assert_int_equal(p.chunk_count, 1);
    assert_int_equal(p.chunk_size, 8 * MIB);
    assert_int_equal(upload_plan(8 * MIB, 8 * MIB, 5 * MIB, 10000, &p), 0);
    assert_int_equal(p.chunk_count, 1);
    assert_int_equal(upload_plan(8 * MIB + 1, 8 * MIB, 5 * MIB, 10000, &p), 0);
    assert_int_equal(p.chunk_count, 2);
}

static void test_fifty_gib(void **state)
{
    struct upload_plan p;

    assert_int_equal(upload_plan(50 * GIB, 8 * MIB, 5 * MIB, 10000, &p), 0);
    assert_int_equal(p.chunk_size, 8 * MIB);
    assert_int_equal(p.chunk_count, 6400);
    assert_int_equal(upload_plan(50 * 1000LL * 1000 * 1000, 8 * MIB, 5 * MIB, 10000, &p), 0);
    assert_int_equal(p.chunk_count, 5961);
    check_plan(50 * GIB - 1);
    check_plan(50 * GIB + 1);
}

static void test_raised_to_fit_max_chunks(void **state)
{
    struct upload_plan p;

    /* 100 GiB at 8 MiB would be 12,800 chunks: raised to whole MiB so that <= 10,000. */
    assert_int_equal(upload_plan(100 * GIB, 8 * MIB, 5 * MIB, 10000, &p), 0);
    assert_int_equal(p.chunk_size, 11 * MIB);
    assert_true(p.chunk_count <= 10000);
    /* a small preferred size is lifted to the minimum */
    assert_int_equal(upload_plan(100 * MIB, 1 * MIB, 5 * MIB, 10000, &p), 0);
    assert_int_equal(p.chunk_size, 5 * MIB);
    assert_int_equal(p.chunk_count, 20);
    for (long long s = 1; s < 200 * GIB; s = s * 3 + 7)
        check_plan(s);
}

static void test_rejects(void **state)
{
    struct upload_plan p;

    assert_int_equal(upload_plan(0, 8 * MIB, 5 * MIB, 10000, &p), -1);
    assert_int_equal(upload_plan(-5, 8 * MIB, 5 * MIB, 10000, &p), -1);
    /* beyond 10,000 parts of 5 GiB nothing fits */
    assert_int_equal(upload_plan(10000LL * 5 * GIB + 1, 8 * MIB, 5 * MIB, 10000, &p), -1);
    assert_int_equal(upload_plan(INT64_MAX, 8 * MIB, 5 * MIB, 10000, &p), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_small_files_one_chunk),
        cmocka_unit_test(test_fifty_gib),
        cmocka_unit_test(test_raised_to_fit_max_chunks),
        cmocka_unit_test(test_rejects),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
