/* test_iidx: the import index (line round trip, lookups and replacement over growth,
 * freshness, save/load with a torn last line) and the key sets. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "iidx.h"

static void entry(struct iidx_entry *e, char *path, int i)
{
    memset(e, 0, sizeof *e);
    e->path = path;
    e->size = 1000 + i;
    e->mtime_sec = 1700000000 + i;
    e->mtime_nsec = 123456789;
    e->dev = 64768;
    e->ino = 9000 + (unsigned)i;
    e->kind = i % 2 ? IIDX_IMPORTED : IIDX_MATCHED;
    snprintf(e->sha256, sizeof e->sha256, "%064x", i);
    snprintf(e->image_id, sizeof e->image_id, "00000000-0000-4000-8000-%012d", i);
}

static void test_line_round_trip(void **unused)
{
    struct iidx_entry a, b;
    char path[] = "/photos/2024/a b.jpg", line[512];
    int n;

    entry(&a, path, 7);
    n = iidx_format(&a, line, sizeof line);
    assert_true(n > 0 && line[n - 1] == '\n');
    line[n - 1] = '\0';
    assert_int_equal(iidx_parse(line, &b), 0);
    assert_string_equal(b.path, path);
    assert_string_equal(b.sha256, a.sha256);
    assert_string_equal(b.image_id, a.image_id);
    assert_true(b.size == a.size && b.mtime_sec == a.mtime_sec && b.mtime_nsec == a.mtime_nsec);
    assert_true(b.dev == a.dev && b.ino == a.ino && b.kind == IIDX_IMPORTED);
}

static void test_bad_lines(void **unused)
{
    struct iidx_entry a, b;
    char tab[] = "/x/a\tb.jpg", nl[] = "/x/a\nb.jpg", line[512];
    char torn[] = "0000000000000000000000000000000000000000000000000000000000000001\tid\t10";
    char rel[] = "0000000000000000000000000000000000000000000000000000000000000001\tid\ti\t10"
                 "\t1\t2\t3\t4\tx.jpg";
    char badsha[] = "XYZ\tid\ti\t10\t1\t2\t3\t4\t/x.jpg";
    char badkind[] = "0000000000000000000000000000000000000000000000000000000000000001\tid\tq\t10"
                     "\t1\t2\t3\t4\t/x.jpg";

    entry(&a, tab, 1);
    assert_int_equal(iidx_format(&a, line, sizeof line), -1);
    entry(&a, nl, 1);
    assert_int_equal(iidx_format(&a, line, sizeof line), -1);
    assert_int_equal(iidx_parse(torn, &b), -1);
    assert_int_equal(iidx_parse(rel, &b), -1);
    assert_int_equal(iidx_parse(badsha, &b), -1);
    assert_int_equal(iidx_parse(badkind, &b), -1);
}

static void test_find_put_grow(void **unused)
{
    iidx *x = iidx_new();
    struct iidx_entry e;
    char path[64];

    for (int i = 0; i < 5000; i++) {
        snprintf(path, sizeof path, "/lib/%d/img%d.jpg", i % 37, i);
        entry(&e, path, i);
        assert_int_equal(iidx_put(x, &e), 0);
    }
    assert_int_equal(iidx_count(x), 5000);
    snprintf(path, sizeof path, "/lib/%d/img%d.jpg", 4321 % 37, 4321);
    assert_non_null(iidx_find(x, path));
    assert_int_equal(iidx_find(x, path)->size, 1000 + 4321);
    entry(&e, path, 1); /* replaces */
    assert_int_equal(iidx_put(x, &e), 0);
    assert_int_equal(iidx_count(x), 5000);
    assert_int_equal(iidx_find(x, path)->size, 1001);
    assert_null(iidx_find(x, "/lib/none.jpg"));
    iidx_free(x);
}

static void test_fresh(void **unused)
{
    struct iidx_entry e;
    struct file_ident f;
    char path[] = "/a.jpg";

    entry(&e, path, 3);
    memset(&f, 0, sizeof f);
    f.size = e.size, f.mtime_sec = e.mtime_sec, f.mtime_nsec = e.mtime_nsec;
    f.dev = e.dev, f.ino = e.ino;
    assert_true(iidx_fresh(&e, &f));
    f.mtime_nsec++;
    assert_false(iidx_fresh(&e, &f));
    f.mtime_nsec--, f.ino++;
    assert_false(iidx_fresh(&e, &f));
    f.ino--, f.size++;
    assert_false(iidx_fresh(&e, &f));
}

static void test_save_load_torn(void **unused)
{
    char dir[] = "/tmp/test_iidx.XXXXXX", file[128], err[ERR_MAX], p1[] = "/p/1.jpg",
         p2[] = "/p/2.jpg";
    iidx *x = iidx_new(), *y = iidx_new();
    struct iidx_entry e;
    FILE *f;

    assert_non_null(mkdtemp(dir));
    snprintf(file, sizeof file, "%s/import-index", dir);
    assert_int_equal(iidx_load(x, file, err), 0); /* missing: empty */
    entry(&e, p1, 1);
    assert_int_equal(iidx_put(x, &e), 0);
    entry(&e, p2, 2);
    assert_int_equal(iidx_put(x, &e), 0);
    assert_int_equal(iidx_save(x, file, err), 0);
    f = fopen(file, "a");
    fputs("00000000000000000000000000000000000000000000000000000000000000ff\tid\t5", f);
    fclose(f);
    assert_int_equal(iidx_load(y, file, err), 0);
    assert_int_equal(iidx_count(y), 2);
    assert_string_equal(iidx_find(y, p2)->image_id, "00000000-0000-4000-8000-000000000002");
    unlink(file);
    rmdir(dir);
    iidx_free(x);
    iidx_free(y);
}

static void test_sets(void **unused)
{
    iidx_set *s = iidx_set_new();
    char key[80], long_key[80];

    for (int i = 0; i < 3000; i++) {
        snprintf(key, sizeof key, "%064x", i);
        assert_int_equal(iidx_set_put(s, key, i % 2 ? "img" : ""), 1);
    }
    snprintf(key, sizeof key, "%064x", 17);
    assert_int_equal(iidx_set_put(s, key, "other"), 0);
    assert_string_equal(iidx_set_get(s, key), "img");
    snprintf(key, sizeof key, "%064x", 18);
    assert_string_equal(iidx_set_get(s, key), "");
    assert_null(iidx_set_get(s, "nope"));
    assert_int_equal(iidx_set_count(s), 3000);
    memset(long_key, 'a', 70);
    long_key[70] = '\0';
    assert_int_equal(iidx_set_put(s, long_key, ""), -1);
    iidx_set_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_line_round_trip), cmocka_unit_test(test_bad_lines),
        cmocka_unit_test(test_find_put_grow),   cmocka_unit_test(test_fresh),
        cmocka_unit_test(test_save_load_torn),  cmocka_unit_test(test_sets),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
