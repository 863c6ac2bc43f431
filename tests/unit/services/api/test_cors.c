/* test_cors: parsing PIXPLANE_CORS_ORIGINS (what is an origin, what is refused) and exact,
 * case-insensitive origin matching with no prefix or suffix tricks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "cors.h"

static void test_empty_allows_nothing(void **state)
{
    char err[ERR_MAX] = "";
    cors *c = cors_new("", err);

    assert_non_null(c);
    assert_false(cors_allowed(c, "http://127.0.0.1:8080"));
    assert_false(cors_allowed(c, NULL));
    assert_false(cors_allowed(NULL, "http://127.0.0.1:8080"));
    cors_free(c);
    cors_free(NULL);
}

static void test_list_matches_exactly(void **state)
{
    char err[ERR_MAX] = "";
    cors *c = cors_new(" https://photos.example.com ,http://127.0.0.1:8080,, ", err);

    assert_non_null(c);
    assert_true(cors_allowed(c, "https://photos.example.com"));
    assert_true(cors_allowed(c, "HTTPS://Photos.Example.com"));
    assert_true(cors_allowed(c, "http://127.0.0.1:8080"));
    assert_false(cors_allowed(c, "https://photos.example.com.evil.io"));
    assert_false(cors_allowed(c, "https://photos.example.co"));
    assert_false(cors_allowed(c, "http://photos.example.com"));
    assert_false(cors_allowed(c, "http://127.0.0.1:80"));
    assert_false(cors_allowed(c, "null"));
    assert_false(cors_allowed(c, ""));
    cors_free(c);
}

static void test_malformed_origins_are_refused(void **state)
{
    const char *bad[] = {"*",
                         "photos.example.com",
                         "https://x.org/",
                         "https://x.org/app",
                         "ftp://x.org",
                         "https://",
                         "https://a b.org",
                         "https://u@x.org",
                         "https://x.org?q",
                         "https://x.org#f"};

    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char err[ERR_MAX] = "";
        cors *c = cors_new(bad[i], err);

        assert_null(c);
        assert_non_null(strstr(err, "cors-origins"));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty_allows_nothing),
        cmocka_unit_test(test_list_matches_exactly),
        cmocka_unit_test(test_malformed_origins_are_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
