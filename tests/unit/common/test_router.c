/* Unit tests for common/router.c: literal and {param} matches, 404 versus 405 with the
 * Allow list, trailing slashes, empty and over-long segments, route_param. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>
#include "router.h"

static int h_list, h_create, h_get, h_put, h_chunk, h_root;

static const struct route table[] = {
    {"GET", "/", &h_root, 0},
    {"GET", "/uploads", &h_list, 1},
    {"POST", "/uploads", &h_create, 2},
    {"GET", "/uploads/{id}", &h_get, 3},
    {"PUT", "/uploads/{id}", &h_put, 4},
    {"GET", "/uploads/{id}/chunks/{n}", &h_chunk, 5},
    {"DELETE", "/uploads/{id}/chunks/{n}", &h_chunk, 6},
    {"PUT", "/uploads/{id}/chunks/{n}", &h_chunk, 7},
};

static const struct route *match(const char *method, const char *path, struct route_params *p,
                                 char *allow, size_t allow_len, int *status)
{
    return router_match(table, sizeof table / sizeof table[0], method, path, p, allow, allow_len,
                        status);
}

static void test_literal(void **state)
{
    struct route_params p;
    int status = 0;
    const struct route *r = match("GET", "/uploads", &p, NULL, 0, &status);

    assert_non_null(r);
    assert_ptr_equal(r->handler, &h_list);
    assert_int_equal(p.n, 0);
    r = match("POST", "/uploads", &p, NULL, 0, &status);
    assert_ptr_equal(r->handler, &h_create);
    assert_int_equal(r->flags, 2);
    assert_ptr_equal(match("GET", "/", &p, NULL, 0, &status)->handler, &h_root);
}

static void test_params(void **state)
{
    struct route_params p;
    int status = 0;
    const struct route *r = match("GET", "/uploads/abc-123/chunks/7", &p, NULL, 0, &status);

    assert_non_null(r);
    assert_int_equal(r->flags, 5);
    assert_int_equal(p.n, 2);
    assert_string_equal(route_param(&p, "id"), "abc-123");
    assert_string_equal(route_param(&p, "n"), "7");
    assert_null(route_param(&p, "i"));
    assert_null(route_param(&p, "idx"));
    assert_null(route_param(&p, "missing"));
    r = match("PUT", "/uploads/x", &p, NULL, 0, &status);
    assert_int_equal(r->flags, 4);
    assert_string_equal(route_param(&p, "id"), "x");
}

static void test_404(void **state)
{
    struct route_params p;
    char allow[64] = "junk";
    int status = 0;

    assert_null(match("GET", "/nope", &p, allow, sizeof allow, &status));
    assert_int_equal(status, 404);
    assert_string_equal(allow, "");
    assert_null(match("GET", "/uploads/a/chunks", &p, allow, sizeof allow, &status));
    assert_int_equal(status, 404);
    assert_null(match("GET", "/uploads/a/chunks/1/extra", &p, allow, sizeof allow, &status));
    assert_int_equal(status, 404);
    assert_null(match("GET", "", &p, allow, sizeof allow, &status));
    assert_int_equal(status, 404);
}

static void test_405_allow(void **state)
{
    char allow[64];
    int status = 0;

    assert_null(match("DELETE", "/uploads", NULL, allow, sizeof allow, &status));
    assert_int_equal(status, 405);
    assert_string_equal(allow, "GET, POST");
    assert_null(match("POST", "/uploads/a/chunks/1", NULL, allow, sizeof allow, &status));
    assert_int_equal(status, 405);
    assert_string_equal(allow, "GET, DELETE, PUT");
    /* methods are case-sensitive */
    assert_null(match("get", "/uploads", NULL, allow, sizeof allow, &status));
    assert_int_equal(status, 405);
}

static void test_allow_small_buffer(void **state)
{
    char allow[9];
    int status = 0;

    assert_null(match("POST", "/uploads/a/chunks/1", NULL, allow, sizeof allow, &status));
    assert_int_equal(status, 405);
    assert_string_equal(allow, "GET"); /* "GET, DELETE" does not fit: stays well-formed */
    assert_null(match("POST", "/uploads/a/chunks/1", NULL, NULL, 0, &status));
    assert_int_equal(status, 405);
}

static void test_trailing_slash_and_empty_segments(void **state)
{
    int status = 0;

    assert_null(match("GET", "/uploads/", NULL, NULL, 0, &status));
    assert_int_equal(status, 404);
    assert_null(match("GET", "/uploads/a/", NULL, NULL, 0, &status));
    assert_int_equal(status, 404);
    assert_null(match("GET", "/uploads//chunks/1", NULL, NULL, 0, &status));
    assert_int_equal(status, 404);
    assert_null(match("GET", "//uploads", NULL, NULL, 0, &status));
    assert_int_equal(status, 404);
    assert_null(match("GET", "/uploadsx", NULL, NULL, 0, &status));
    assert_int_equal(status, 404);
}

static void test_long_segment(void **state)
{
    char path[2 * ROUTE_PARAM_MAX];
    struct route_params p;
    int status = 0;

    memcpy(path, "/uploads/", 9);
    memset(path + 9, 'a', ROUTE_PARAM_MAX - 1);
    path[9 + ROUTE_PARAM_MAX - 1] = '\0';
    assert_non_null(match("GET", path, &p, NULL, 0, &status)); /* 159 bytes: fits */
    assert_int_equal(strlen(route_param(&p, "id")), ROUTE_PARAM_MAX - 1);
    memset(path + 9, 'a', ROUTE_PARAM_MAX);
    path[9 + ROUTE_PARAM_MAX] = '\0';
    assert_null(match("GET", path, &p, NULL, 0, &status));
    assert_int_equal(status, 404);
}

static void test_too_many_params(void **state)
{
    static const struct route t[] = {{"GET", "/{a}/{b}/{c}/{d}/{e}", NULL, 0},
                                     {"GET", "/{a}/{b}/{c}/{d}", NULL, 1}};
    struct route_params p;
    int status = 0;
    const struct route *r = router_match(t, 2, "GET", "/1/2/3/4/5", &p, NULL, 0, &status);

    assert_null(r);
    assert_int_equal(status, 404);
    r = router_match(t, 2, "GET", "/1/2/3/4", &p, NULL, 0, &status);
    assert_non_null(r);
    assert_int_equal(p.n, 4);
    assert_string_equal(route_param(&p, "d"), "4");
}

static void test_first_match_wins(void **state)
{
    static const struct route t[] = {{"GET", "/a/me", NULL, 1}, {"GET", "/a/{id}", NULL, 2}};
    struct route_params p;
    int status = 0;

    assert_int_equal(router_match(t, 2, "GET", "/a/me", &p, NULL, 0, &status)->flags, 1);
    assert_int_equal(router_match(t, 2, "GET", "/a/you", &p, NULL, 0, &status)->flags, 2);
    assert_string_equal(route_param(&p, "id"), "you");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_literal),
        cmocka_unit_test(test_params),
        cmocka_unit_test(test_404),
        cmocka_unit_test(test_405_allow),
        cmocka_unit_test(test_allow_small_buffer),
        cmocka_unit_test(test_trailing_slash_and_empty_segments),
        cmocka_unit_test(test_long_segment),
        cmocka_unit_test(test_too_many_params),
        cmocka_unit_test(test_first_match_wins),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
