/* test_sync_cursor: /sync cursors survive encoding in each mode (change log, snapshot of
 * images, snapshot of albums and their items) and anything else is refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "sync.h"

#define ALBUM "0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0"
#define ITEM "00000000-0000-0000-0000-000000000000"

/* Encodes in, decodes it into out; the text must fit the 128-byte buffers of its users. */
static void roundtrip(const struct sync_cursor *in, struct sync_cursor *out)
{
    char *text = sync_cursor_encode(in);

    assert_non_null(text);
    assert_true(strlen(text) < 128);
    assert_int_equal(sync_cursor_decode(text, out), 0);
    free(text);
}

static void test_change_cursor(void **state)
{
    struct sync_cursor in = {.txid = 123456789, .seq = INT64_MAX}, out;

    roundtrip(&in, &out);
    assert_false(out.snapshot);
    assert_int_equal(out.txid, 123456789);
    assert_int_equal(out.seq, INT64_MAX);
}

static void test_image_snapshot_cursor(void **state)
{
    struct sync_cursor in = {.snapshot = 1, .txid = 42, .after = ALBUM}, out;

    roundtrip(&in, &out);
    assert_true(out.snapshot);
    assert_false(out.albums);
    assert_string_equal(out.after, ALBUM);
}

static void test_album_snapshot_cursor(void **state)
{
    struct sync_cursor in = {.snapshot = 1, .albums = 1, .txid = UINT64_MAX / 2}, out;

    strcpy(in.after, ALBUM);
    strcpy(in.after_item, ITEM);
    roundtrip(&in, &out);
    assert_true(out.snapshot && out.albums);
    assert_int_equal(out.txid, UINT64_MAX / 2);
    assert_string_equal(out.after, ALBUM);
    assert_string_equal(out.after_item, ITEM);
}

static void test_refuses_others(void **state)
{
    static const char *const bad[] = {
        "YS4xLnp6",                                         /* a.1.zz */
        "YS4xLjBmMWUyZDNjNGI1YTQ5Njg4Nzc2YTViNGMzZDJlMWYw", /* a.1.<one id only> */
        "eC4xLjI",                                          /* x.1.2 */
        "bonjour",
    };
    struct sync_cursor out;

    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(sync_cursor_decode(bad[i], &out), -1);
    assert_int_equal(sync_cursor_decode("0", &out), 0);
    assert_true(out.snapshot && out.fresh && !out.albums);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_change_cursor),
        cmocka_unit_test(test_image_snapshot_cursor),
        cmocka_unit_test(test_album_snapshot_cursor),
        cmocka_unit_test(test_refuses_others),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
