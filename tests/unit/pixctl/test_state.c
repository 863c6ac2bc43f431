/* test_state: the upload resume file: JSON round trip, atomic save and load, missing and
 * corrupt files, and what counts as "the same file". */
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
#include "state.h"

static void fill(struct upload_state *s)
{
    memset(s, 0, sizeof *s);
    snprintf(s->file.path, sizeof s->file.path, "/home/u/photos/big \"one\".jpg");
    s->file.size = 300LL * 1024 * 1024 + 7;
    s->file.mtime_sec = 1764320000, s->file.mtime_nsec = 123456789;
    s->file.dev = 18446744073709551615ULL, s->file.ino = 9007199254740993ULL;
    snprintf(s->file.sha256, sizeof s->file.sha256, "%064d", 7);
    snprintf(s->api_url, sizeof s->api_url, "http://127.0.0.1:8080");
    snprintf(s->session_id, sizeof s->session_id, "0b8e2c36-5f4e-4d0c-9a7e-3f1f2a6b9c01");
    s->chunk_size = 8 * 1024 * 1024;
    assert_int_equal(state_alloc(s, 38), 0);
    s->done[0] = s->done[5] = s->done[37] = 1;
}

static void assert_same(const struct upload_state *a, const struct upload_state *b)
{
    assert_true(state_same_file(&a->file, &b->file));
    assert_string_equal(a->api_url, b->api_url);
    assert_string_equal(a->session_id, b->session_id);
    assert_int_equal(a->chunk_size, b->chunk_size);
    assert_int_equal(a->chunk_count, b->chunk_count);
    assert_memory_equal(a->done, b->done, (size_t)a->chunk_count);
}

static void test_round_trip(void **unused)
{
    struct upload_state a, b;
    char *text;

    fill(&a);
    text = state_to_json(&a);
    assert_non_null(text);
    assert_int_equal(state_from_json(text, strlen(text), &b, NULL), 0);
    assert_same(&a, &b);
    assert_int_equal(state_count_done(&b), 3);
    free(text);
    state_clear(&a);
    state_clear(&b);
    state_clear(NULL);
}

/* A streamed upload (hashed while it is sent) is saved without a hash and reads back so. */
static void test_round_trip_unhashed(void **unused)
{
    struct upload_state a, b;
    char *text;

    fill(&a);
    a.file.sha256[0] = '\0';
    text = state_to_json(&a);
    assert_non_null(text);
    assert_int_equal(state_from_json(text, strlen(text), &b, NULL), 0);
    assert_string_equal(b.file.sha256, "");
    assert_same(&a, &b);
    free(text);
    state_clear(&a);
    state_clear(&b);
}

static void test_save_load(void **unused)
{
    char dir[] = "/tmp/pixctl-test-state-XXXXXX", path[4200], err[ERR_MAX];
    struct upload_state a, b;

    assert_non_null(mkdtemp(dir));
    fill(&a);
    assert_int_equal(state_path(dir, a.file.path, path, sizeof path), 0);
    assert_int_equal(state_load(path, &b, err), 0); /* not there yet */
    assert_int_equal(state_save(path, &a, err), 0);
    assert_int_equal(state_load(path, &b, err), 1);
    assert_same(&a, &b);
    state_clear(&b);
    a.done[1] = 1; /* replaced atomically */
    assert_int_equal(state_save(path, &a, err), 0);
    assert_int_equal(state_load(path, &b, err), 1);
    assert_int_equal(state_count_done(&b), 4);
    state_clear(&b);
    assert_int_equal(fsx_write_atomic(path, "{\"version\":1", 12, 0, err), 0);
    assert_int_equal(state_load(path, &b, err), -1);
    assert_int_equal(fsx_write_atomic(path, "{\"version\":1,\"path\":\"/x\"}", 25, 0, err), 0);
    assert_int_equal(state_load(path, &b, err), -1);
    assert_null(b.done);
    unlink(path);
    rmdir(dir);
    state_clear(&a);
}

static void test_bad_done(void **unused)
{
    struct upload_state a, b;
    char *text, *p;

    fill(&a);
    text = state_to_json(&a);
    p = strstr(text, "37]");
    assert_non_null(p);
    p[0] = '9', p[1] = '9'; /* chunk 99 of 38 */
    assert_int_equal(state_from_json(text, strlen(text), &b, NULL), -1);
    free(text);
    state_clear(&a);
}

static void test_same_file(void **unused)
{
    struct upload_state a, b;

    fill(&a);
    fill(&b);
    assert_true(state_same_file(&a.file, &b.file));
    b.file.mtime_nsec++;
    assert_false(state_same_file(&a.file, &b.file));
    state_clear(&b);
    fill(&b);
    b.file.size--;
    assert_false(state_same_file(&a.file, &b.file));
    state_clear(&b);
    fill(&b);
    b.file.sha256[10] = 'f';
    assert_false(state_same_file(&a.file, &b.file));
    state_clear(&b);
    fill(&b);
    b.file.ino++;
    assert_false(state_same_file(&a.file, &b.file));
    state_clear(&a);
    state_clear(&b);
}

static void test_path(void **unused)
{
    char p1[200], p2[200], tiny[10];

    assert_int_equal(state_path("/s", "/a/b.jpg", p1, sizeof p1), 0);
    assert_int_equal(state_path("/s", "/a/c.jpg", p2, sizeof p2), 0);
    assert_int_equal(strlen(p1), strlen("/s/") + 64 + strlen(".json"));
    assert_string_not_equal(p1, p2);
    assert_int_equal(state_path("/s", "/a/b.jpg", tiny, sizeof tiny), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip), cmocka_unit_test(test_save_load),
        cmocka_unit_test(test_bad_done),   cmocka_unit_test(test_same_file),
        cmocka_unit_test(test_path),       cmocka_unit_test(test_round_trip_unhashed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
