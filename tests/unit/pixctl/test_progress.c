/* test_progress: byte, ETA and rate formatting, and progress lines that fit the terminal
 * width with and without a bar. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "progress.h"

#define MIB (1024.0 * 1024)

static void bytes_is(double b, const char *want)
{
    char out[32];

    progress_fmt_bytes(b, out, sizeof out);
    assert_string_equal(out, want);
}

static void eta_is(double s, const char *want)
{
    char out[32];

    progress_fmt_eta(s, out, sizeof out);
    assert_string_equal(out, want);
}

static void test_bytes(void **unused)
{
    bytes_is(0, "0 B");
    bytes_is(1023, "1023 B");
    bytes_is(1024, "1.0 KiB");
    bytes_is(1536, "1.5 KiB");
    bytes_is(300 * MIB, "300.0 MiB");
    bytes_is(1024 * MIB, "1.0 GiB");
    bytes_is(50e9, "46.6 GiB");
    bytes_is(-5, "0 B");
}

static void test_eta(void **unused)
{
    eta_is(0, "0:00");
    eta_is(5.4, "0:05");
    eta_is(59.6, "1:00");
    eta_is(754, "12:34");
    eta_is(3723, "1:02:03");
    eta_is(-1, "--:--");
    eta_is(1e12, "--:--");
    eta_is(0.0 / 0.0, "--:--");
}

static void test_ema(void **unused)
{
    assert_true(progress_ema(-1, 100, 1, 2) == 100);
    double r = progress_ema(100, 200, 2, 2);
    assert_true(r > 100 && r < 200);
    assert_true(progress_ema(100, 200, 1000, 2) > 199.9);
}

static void test_plain_line(void **unused)
{
    char line[256];

    progress_render(line, sizeof line, "upload", "a.jpg", (long long)(150 * MIB),
                    (long long)(300 * MIB), 50 * MIB, 0);
    assert_string_equal(line, "upload a.jpg:  50%  150.0 MiB/300.0 MiB  50.0 MiB/s  ETA 0:03");
    progress_render(line, sizeof line, "upload", "a.jpg", 0, 100, -1, 0);
    assert_non_null(strstr(line, "  0%"));
    assert_non_null(strstr(line, "ETA --:--"));
}

static void test_bar_widths(void **unused)
{
    char line[512];

    for (int w = 20; w <= 200; w += 7) {
        int n =
            progress_render(line, sizeof line, "upload", "a-rather-long-file-name-0123456789.jpg",
                            (long long)(10 * MIB), (long long)(40 * MIB), 5 * MIB, w);
        assert_true(n < w);
        assert_int_equal((int)strlen(line), n);
    }
    progress_render(line, sizeof line, "upload", "a.jpg", 40, 40, 1, 120);
    assert_non_null(strstr(line, "[########################################]"));
    assert_non_null(strstr(line, "100%"));
    progress_render(line, sizeof line, "upload", "a.jpg", 0, 40, 1, 120);
    assert_non_null(strstr(line, "[........................................]"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bytes),      cmocka_unit_test(test_eta),
        cmocka_unit_test(test_ema),        cmocka_unit_test(test_plain_line),
        cmocka_unit_test(test_bar_widths),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
