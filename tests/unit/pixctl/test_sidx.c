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

/* The two-way fields (local file identity, the server's state not yet merged) come back,
 * and an index written by an older pixctl (v1: five fields) still loads. */
static void test_two_way_fields_and_v1(void **unused)
{
    struct sidx a = {0}, b = {0};
    char *text, err[ERR_MAX];
    struct sidx_entry *e = sidx_add(&a, "id-2");

    e->mtime_ns = 1764720000123456789LL;
    e->ino = 18446744073709551000ULL;
    e->foreign = 1;
    e->srv = SIDX_SRV_PRESENT;
    snprintf(e->srv_sha256, sizeof e->srv_sha256, "%064d", 7);
    e->srv_size = 42;
    snprintf(e->srv_name, sizeof e->srv_name, "new name.jpg");
    text = sidx_format(&a);
    assert_int_equal(sidx_parse(text, &b, err), 0);
    assert_int_equal(b.e[0].mtime_ns, e->mtime_ns);
    assert_true(b.e[0].ino == e->ino);
    assert_int_equal(b.e[0].foreign, 1);
    assert_int_equal(b.e[0].srv, SIDX_SRV_PRESENT);
    assert_string_equal(b.e[0].srv_sha256, e->srv_sha256);
    assert_int_equal(b.e[0].srv_size, 42);
    assert_string_equal(b.e[0].srv_name, "new name.jpg");
    assert_string_equal(b.e[0].sha256, ""); /* not merged yet: no base */
    free(text);
    assert_int_equal(sidx_parse("# pixplane sync index v1\nid-3\tabc\t5\tx.jpg\tX.jpg\n", &b, err),
                     0);
    assert_int_equal(b.n, 1);
    assert_string_equal(b.e[0].local, "x.jpg");
    assert_string_equal(b.e[0].name, "X.jpg");
    assert_int_equal(b.e[0].srv, SIDX_SRV_NONE);
    assert_int_equal(b.e[0].mtime_ns, 0);
    assert_int_equal(sidx_parse("id-4\tabc\t5\t1\t2\t0\tx\tX\t3\t\t0\t\n", &b, err), -1);
    sidx_free(&a);
    sidx_free(&b);
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
        cmocka_unit_test(test_round_trip),    cmocka_unit_test(test_two_way_fields_and_v1),
        cmocka_unit_test(test_find_remove),   cmocka_unit_test(test_save_load),
        cmocka_unit_test(test_tabs_in_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
