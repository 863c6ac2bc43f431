/* test_sidx: the sync index: text round trip, atomic save/load, lookups, removal, and
 * rejection of a damaged file. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "fsx.h"
#include "sidx.h"

static void fill(struct sidx *x, int n)
{
    for (int i = 0; i < n; i++) {
        struct sidx_entry *e;
        char id[40];
        snprintf(id, sizeof id, "00000000-0000-4000-8000-%012d", i);
        e = sidx_add(x, id);
        assert_non_null(e);
        snprintf(e->sha256, sizeof e->sha256, "%064x", i);
        e->size = 1000LL * i;
        snprintf(e->name, sizeof e->name, "photo %d.jpg", i % 3);
        snprintf(e->local, sizeof e->local, i % 5 ? "photo %d.jpg" : "", i);
    }
}

static void test_round_trip(void **unused)
{
    struct sidx a = {0}, b = {0};
    char *text, err[ERR_MAX];

    fill(&a, 200);
    text = sidx_format(&a);
    assert_non_null(text);
    assert_int_equal(sidx_parse(text, &b, err), 0);
    assert_int_equal(b.n, 200);
    for (int i = 0; i < 200; i++) {
        assert_string_equal(a.e[i].id, b.e[i].id);
        assert_string_equal(a.e[i].sha256, b.e[i].sha256);
        assert_int_equal(a.e[i].size, b.e[i].size);
        assert_string_equal(a.e[i].name, b.e[i].name);
        assert_string_equal(a.e[i].local, b.e[i].local);
    }
    free(text);
    sidx_free(&a);
    sidx_free(&b);
    sidx_free(NULL);
}

static void test_find_remove(void **unused)
{
    struct sidx x = {0};

    fill(&x, 10);
    assert_non_null(sidx_find(&x, "00000000-0000-4000-8000-000000000003"));
    assert_null(sidx_find(&x, "nope"));
    assert_non_null(sidx_find_local(&x, "photo 3.jpg"));
    assert_null(sidx_find_local(&x, "")); /* unplaced entries hold no file */
    sidx_remove(&x, sidx_find(&x, "00000000-0000-4000-8000-000000000003"));
    assert_int_equal(x.n, 9);
    assert_null(sidx_find(&x, "00000000-0000-4000-8000-000000000003"));
    assert_non_null(sidx_find(&x, "00000000-0000-4000-8000-000000000009"));
    sidx_free(&x);
}

static void test_save_load(void **unused)
{
    char dir[] = "/tmp/pixctl-test-sidx-XXXXXX", path[256], err[ERR_MAX];
    struct sidx a = {0}, b = {0};

    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/index", dir);
    assert_int_equal(sidx_load(path, &b, err), 0);
    assert_int_equal(b.n, 0);
    fill(&a, 3);
    assert_int_equal(sidx_save(path, &a, err), 0);
    assert_int_equal(sidx_load(path, &b, err), 0);
    assert_int_equal(b.n, 3);
    assert_int_equal(fsx_write_atomic(path, "x\ty\n", 4, 0, err), 0);
    assert_int_equal(sidx_load(path, &b, err), -1);
    unlink(path);
    rmdir(dir);
    sidx_free(&a);
    sidx_free(&b);
}

static void test_tabs_in_names(void **unused)
{
    struct sidx a = {0}, b = {0};
    char *text, err[ERR_MAX];
    struct sidx_entry *e = sidx_add(&a, "id-1");

    snprintf(e->name, sizeof e->name, "a\tb\nc");
    text = sidx_format(&a);
    assert_int_equal(sidx_parse(text, &b, err), 0);
    assert_string_equal(b.e[0].name, "a b c");
    free(text);
    sidx_free(&a);
    sidx_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_find_remove),
        cmocka_unit_test(test_save_load),
        cmocka_unit_test(test_tabs_in_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
