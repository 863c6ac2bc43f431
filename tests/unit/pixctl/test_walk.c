/* test_walk: directory walks (hidden entries, the excluded directory, nested levels,
 * symlinked directories not followed, files as roots), list lines, the image type
 * filters and the import progress line. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "mime.h"
#include "progress.h"
#include "walk.h"

static char root[64];

static void touch(const char *rel)
{
    char p[256];
    FILE *f;

    snprintf(p, sizeof p, "%s/%s", root, rel);
    f = fopen(p, "w");
    assert_non_null(f);
    fputs("x", f);
    fclose(f);
}

static void mkd(const char *rel)
{
    char p[256];

    snprintf(p, sizeof p, "%s/%s", root, rel);
    assert_int_equal(mkdir(p, 0700), 0);
}

static int setup(void **unused)
{
    char p[256], q[256];

    snprintf(root, sizeof root, "/tmp/test_walk.XXXXXX");
    assert_non_null(mkdtemp(root));
    mkd("a");
    mkd("a/b");
    mkd(".hidden");
    mkd("state");
    touch("top.jpg");
    touch("a/one.jpg");
    touch("a/b/two.png");
    touch("a/.dot.jpg");
    touch(".hidden/no.jpg");
    touch("state/no.jpg");
    snprintf(p, sizeof p, "%s/a", root);
    snprintf(q, sizeof q, "%s/link", root);
    assert_int_equal(symlink(p, q), 0); /* a directory symlink: not followed */
    return 0;
}

static int teardown(void **unused)
{
    char cmd[128];

    snprintf(cmd, sizeof cmd, "rm -rf %s", root);
    return system(cmd) == 0 ? 0 : -1;
}

/* The walked paths relative to root, sorted, joined by ' '. */
static void walk_all(walk *w, char *out, size_t n)
{
    char path[4096], err[ERR_MAX], got[16][256];
    int k = 0, rc;

    while ((rc = walk_next(w, path, sizeof path, err)) != 0) {
        assert_int_equal(rc, 1);
        assert_true(k < 16);
        snprintf(got[k++], sizeof got[0], "%s", path + strlen(root) + 1);
    }
    qsort(got, (size_t)k, sizeof got[0], (int (*)(const void *, const void *))strcmp);
    out[0] = '\0';
    for (int i = 0; i < k; i++)
        snprintf(out + strlen(out), n - strlen(out), "%s%s", i ? " " : "", got[i]);
}

static void test_walk_dir(void **unused)
{
    char excl[256], err[ERR_MAX], got[1024], *roots[1] = {root};
    walk *w;

    snprintf(excl, sizeof excl, "%s/state", root);
    w = walk_roots(roots, 1, excl, err);
    assert_non_null(w);
    walk_all(w, got, sizeof got);
    assert_string_equal(got, "a/b/two.png a/one.jpg top.jpg");
    walk_free(w);
    w = walk_roots(roots, 1, NULL, err);
    walk_all(w, got, sizeof got);
    assert_string_equal(got, "a/b/two.png a/one.jpg state/no.jpg top.jpg");
    walk_free(w);
}

static void test_walk_roots_mixed(void **unused)
{
    char d[256], f[256], err[ERR_MAX], got[1024], *roots[2] = {d, f};
    walk *w;

    snprintf(d, sizeof d, "%s/a/b", root);
    snprintf(f, sizeof f, "%s/top.jpg", root);
    w = walk_roots(roots, 2, NULL, err);
    walk_all(w, got, sizeof got);
    assert_string_equal(got, "a/b/two.png top.jpg");
    walk_free(w);
}

static void test_walk_list(void **unused)
{
    char list[256], path[4096], err[ERR_MAX];
    FILE *f;
    walk *w;

    snprintf(list, sizeof list, "%s/list.txt", root);
    f = fopen(list, "w");
    fputs("  /x/one.jpg \r\n\n# a comment\n/x/two words.jpg\n/x/last.jpg", f);
    fclose(f);
    w = walk_list(list, err);
    assert_non_null(w);
    assert_int_equal(walk_next(w, path, sizeof path, err), 1);
    assert_string_equal(path, "/x/one.jpg");
    assert_int_equal(walk_next(w, path, sizeof path, err), 1);
    assert_string_equal(path, "/x/two words.jpg");
    assert_int_equal(walk_next(w, path, sizeof path, err), 1);
    assert_string_equal(path, "/x/last.jpg");
    assert_int_equal(walk_next(w, path, sizeof path, err), 0);
    walk_free(w);
    unlink(list);
    assert_null(walk_list("/nonexistent/list", err));
}

static void test_filters(void **unused)
{
    char out[64];
    const unsigned char jpg[] = {0xff, 0xd8, 0xff, 0xe0}, png[] = "\x89PNG\r\n\x1a\n";

    assert_true(walk_hidden(".DS_Store"));
    assert_true(walk_hidden(".."));
    assert_false(walk_hidden("a.jpg"));
    assert_string_equal(mime_from_name("/x/IMG.JPG"), "image/jpeg");
    assert_string_equal(mime_from_name("a.heic"), "image/heic");
    assert_null(mime_from_name("/x.jpg/readme"));
    assert_null(mime_from_name("notes.txt"));
    assert_string_equal(mime_sniff(jpg, sizeof jpg), "image/jpeg");
    assert_string_equal(mime_sniff(png, 8), "image/png");
    assert_null(mime_sniff((const unsigned char *)"hello", 5));
    assert_true(mime_importable("image/jpeg"));
    assert_false(mime_importable("image/svg+xml"));
    assert_false(mime_importable("image/bmp"));
    assert_false(mime_importable(NULL));
    assert_int_equal(walk_join("/a/", "b", out, sizeof out), 0);
    assert_string_equal(out, "/a/b");
    assert_int_equal(walk_join("/a", "b", out, 4), -1);
}

static void test_import_line(void **unused)
{
    char line[256];

    progress_render_import(line, sizeof line, 50, 200, 10 << 20, 40 << 20, 10, 0);
    assert_string_equal(line,
                        "import 50/200 files  10.0 MiB/40.0 MiB  1.0 MiB/s  5.0 files/s  ETA 0:30");
    progress_render_import(line, sizeof line, 7, -1, 2048, 0, 0, 0);
    assert_string_equal(line, "import 7 files  2.0 KiB  0 B/s  0.0 files/s");
    assert_int_equal(progress_render_import(line, sizeof line, 50, 200, 1, 2, 10, 30), 29);
    assert_int_equal(strlen(line), 29);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_walk_dir),    cmocka_unit_test(test_walk_roots_mixed),
        cmocka_unit_test(test_walk_list),   cmocka_unit_test(test_filters),
        cmocka_unit_test(test_import_line),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
