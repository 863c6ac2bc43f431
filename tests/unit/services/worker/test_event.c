/* Unit tests for services/worker/event.c: the version-1 image.uploaded event as the API's
 * outbox writes it, and the malformed ones that must be dead-lettered, not retried. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "worker.h"

#define HASH "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static int parse(const char *s, struct upload_event *ev, char *err)
{
    return event_parse(s, strlen(s), ev, err);
}

static void test_outbox_payload(void **state)
{
    /* as PostgreSQL renders the jsonb built by the API's image_insert statement */
    const char *p = "{\"size\": 1234, \"type\": \"image.uploaded\", \"version\": 1, "
                    "\"image_id\": \"5b0c9d4e-2f3a-4b5c-8d6e-7f8091a2b3c4\", \"owner_id\": "
                    "\"alice\", \"mime_type\": \"image/jpeg\", \"occurred_at\": "
                    "\"2026-02-05T10:00:00.123+00:00\", \"content_hash\": \"" HASH "\", "
                    "\"storage_path\": \"uploads/x/y\"}";
    struct upload_event ev;
    char err[ERR_MAX] = "";

    assert_int_equal(parse(p, &ev, err), 0);
    assert_string_equal(ev.content_hash, HASH);
    assert_string_equal(ev.image_id, "5b0c9d4e-2f3a-4b5c-8d6e-7f8091a2b3c4");
    assert_string_equal(ev.owner_id, "alice");
    assert_string_equal(ev.mime_type, "image/jpeg");
    assert_int_equal(ev.size, 1234);
}

static void test_rejects(void **state)
{
    static const char *const bad[] = {
        "",
        "not json",
        "[]",
        "{}",
        "{\"version\":2,\"type\":\"image.uploaded\",\"image_id\":\"i\",\"owner_id\":\"o\","
        "\"content_hash\":\"" HASH "\"}",
        "{\"version\":1,\"type\":\"image.deleted\",\"image_id\":\"i\",\"owner_id\":\"o\","
        "\"content_hash\":\"" HASH "\"}",
        "{\"version\":1,\"type\":\"image.uploaded\",\"image_id\":\"i\",\"owner_id\":\"o\"}",
        "{\"version\":1,\"type\":\"image.uploaded\",\"image_id\":\"i\",\"owner_id\":\"o\","
        "\"content_hash\":\"0123\"}",
        "{\"version\":1,\"type\":\"image.uploaded\",\"image_id\":\"i\",\"owner_id\":\"o\","
        "\"content_hash\":\""
        "0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef"
        "\"}",
        "{\"version\":1,\"type\":\"image.uploaded\",\"image_id\":7,\"owner_id\":\"o\","
        "\"content_hash\":\"" HASH "\"}",
        "{\"version\":\"1\",\"type\":\"image.uploaded\",\"image_id\":\"i\",\"owner_id\":\"o\","
        "\"content_hash\":\"" HASH "\"}",
    };
    struct upload_event ev;
    char err[ERR_MAX];

    for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
        err[0] = '\0';
        assert_int_equal(parse(bad[i], &ev, err), -1);
        assert_true(err[0] != '\0');
    }
}

static void test_optional_fields(void **state)
{
    struct upload_event ev;
    char err[ERR_MAX] = "";

    assert_int_equal(parse("{\"version\":1,\"type\":\"image.uploaded\",\"image_id\":\"i\","
                           "\"owner_id\":\"o\",\"content_hash\":\"" HASH "\"}",
                           &ev, err),
                     0);
    assert_int_equal(ev.size, -1);
    assert_string_equal(ev.mime_type, "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_outbox_payload),
        cmocka_unit_test(test_rejects),
        cmocka_unit_test(test_optional_fields),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
