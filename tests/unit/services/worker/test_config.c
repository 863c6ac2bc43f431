/* Unit tests for services/worker/config.c: the variant table syntax (defaults, formats,
 * qualities, order, rejects), object keys and MIME types. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "worker.h"

static void test_default_table(void **state)
{
    struct variant v[VARIANT_MAX];
    char err[ERR_MAX] = "";
    int n = variants_parse("thumbnail_small:256,thumbnail_large:1024,preview:2048", 80, 85, v,
                           VARIANT_MAX, err);

    assert_int_equal(n, 3);
    /* largest first: the one decoded from the original */
    assert_string_equal(v[0].name, "preview");
    assert_int_equal(v[0].box, 2048);
    assert_string_equal(v[1].name, "thumbnail_large");
    assert_string_equal(v[2].name, "thumbnail_small");
    for (int i = 0; i < 3; i++) {
        assert_int_equal(v[i].format, VARIANT_WEBP);
        assert_int_equal(v[i].quality, 80);
        assert_string_equal(variant_mime(&v[i]), "image/webp");
    }
}

static void test_formats_and_quality(void **state)
{
    struct variant v[VARIANT_MAX];
    char err[ERR_MAX] = "";
    int n =
        variants_parse(" a:100:jpeg , b:200:webp:60,c:300:jpeg:95", 80, 85, v, VARIANT_MAX, err);

    assert_int_equal(n, 3);
    assert_string_equal(v[0].name, "c");
    assert_int_equal(v[0].format, VARIANT_JPEG);
    assert_int_equal(v[0].quality, 95);
    assert_string_equal(v[1].name, "b");
    assert_int_equal(v[1].quality, 60);
    assert_string_equal(v[2].name, "a"); /* spaces around items are ignored */
    assert_int_equal(v[2].quality, 85);
    assert_string_equal(variant_ext(&v[2]), "jpg");
}

static void test_rejects(void **state)
{
    static const char *const bad[] = {
        "",
        "a",
        "a:",
        "a:15",
        "a:8193",
        "A:256",
        "a-b:256",
        "a:256:gif",
        "a:256:webp:0",
        "a:256:webp:101",
        "a:256:webp:80:x",
        "a:256,a:512",
        "a:x",
        "abcdefghijklmnopqrstuvwxyz0123456:256",
    };
    struct variant v[VARIANT_MAX];
    char err[ERR_MAX];

    for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
        err[0] = '\0';
        assert_int_equal(variants_parse(bad[i], 80, 85, v, VARIANT_MAX, err), -1);
        assert_true(err[0] != '\0');
    }
    /* more than the table holds */
    assert_int_equal(variants_parse("a:100,b:100,c:100", 80, 85, v, 2, err), -1);
}

static void test_key(void **state)
{
    struct variant v = {"thumbnail_small", 256, VARIANT_WEBP, 80, 4};
    buf b = {0};
    const char *h = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    assert_int_equal(variant_key(&b, h, 42, &v), 0);
    assert_string_equal(b.data, "variants/0123456789abcdef0123456789abcdef0123456789abcdef"
                                "0123456789abcdef/42/thumbnail_small.webp");
    buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_default_table),
        cmocka_unit_test(test_formats_and_quality),
        cmocka_unit_test(test_rejects),
        cmocka_unit_test(test_key),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
