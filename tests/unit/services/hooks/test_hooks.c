/* Unit tests for services/hooks: the Standard Webhooks signature (the specification's own
 * example) and the integration-event envelope the intake accepts or skips. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "hooks.h"

#define SECRET "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

static void test_sign_reference_vector(void **state)
{
    const char *body = "{\"test\": 2432232314}";
    char sig[HOOKS_SIG_MAX], err[ERR_MAX] = "";

    assert_int_equal(hooks_sign(SECRET, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body,
                                strlen(body), sig, err),
                     0);
    assert_string_equal(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
}

static void test_sign_bad_secrets(void **state)
{
    const char *bad[] = {
        "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",       "whsec_", "whsec_abc", "whsec_ab!d", "whsec_====",
        "whsec_MfKQ9r8GKYqr TwjUPD8ILPZIo2LaLaSw"};
    char sig[HOOKS_SIG_MAX], err[ERR_MAX];

    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        err[0] = '\0';
        assert_int_equal(hooks_sign(bad[i], "id", 1, "{}", 2, sig, err), -1);
        assert_non_null(strstr(err, "secret_invalid"));
    }
}

static void test_sign_padded_secret(void **state)
{
    /* 16 bytes of key: base64 with "==" padding must give a 16-byte key, not 18 */
    char a[HOOKS_SIG_MAX], b[HOOKS_SIG_MAX], err[ERR_MAX] = "";

    assert_int_equal(hooks_sign("whsec_AAECAwQFBgcICQoLDA0ODw==", "i", 7, "x", 1, a, err), 0);
    /* HMAC pads short keys with zeros, so compare with a different key instead */
    assert_int_equal(hooks_sign("whsec_AAECAwQFBgcICQoLDA0ODxA=", "i", 7, "x", 1, b, err), 0);
    assert_string_not_equal(a, b);
    assert_int_equal(strlen(a), 47);
}

static int parse(const char *s, struct hooks_event *ev, char *err)
{
    return hooks_event_parse(s, strlen(s), ev, err);
}

static void test_event_as_pix_event_writes_it(void **state)
{
    const char *p = "{\"id\": \"5b0c9d4e-2f3a-4b5c-8d6e-7f8091a2b3c4\", \"data\": {\"image_id\":"
                    " \"x\"}, \"type\": \"image.created\", \"version\": 1, \"occurred_at\":"
                    " \"2026-12-03T08:00:00.123456Z\"}";
    struct hooks_event ev;
    char err[ERR_MAX] = "";

    assert_int_equal(parse(p, &ev, err), 0);
    assert_string_equal(ev.id, "5b0c9d4e-2f3a-4b5c-8d6e-7f8091a2b3c4");
    assert_string_equal(ev.type, "image.created");
    assert_string_equal(ev.occurred_at, "2026-12-03T08:00:00.123456Z");
}

static void test_event_rejects(void **state)
{
    const char *bad[] = {
        "",
        "[]",
        "{\"version\": 1}",
        /* image.uploaded (the worker's topic) is not an integration event */
        "{\"version\": 1, \"type\": \"image.uploaded\", \"image_id\": \"x\"}",
        "{\"version\": 2, \"id\": \"5b0c9d4e-2f3a-4b5c-8d6e-7f8091a2b3c4\", \"type\": \"a\","
        " \"occurred_at\": \"2026-12-03T08:00:00Z\", \"data\": {}}",
        "{\"version\": 1, \"id\": \"nope\", \"type\": \"a\","
        " \"occurred_at\": \"2026-12-03T08:00:00Z\", \"data\": {}}",
        "{\"version\": 1, \"id\": \"5b0c9d4e-2f3a-4b5c-8d6e-7f8091a2b3c4\", \"type\": \"\","
        " \"occurred_at\": \"2026-12-03T08:00:00Z\", \"data\": {}}",
        "{\"version\": 1, \"id\": \"5b0c9d4e-2f3a-4b5c-8d6e-7f8091a2b3c4\", \"type\": \"a\","
        " \"occurred_at\": \"yesterday\", \"data\": {}}",
        "{\"version\": 1, \"id\": \"5b0c9d4e-2f3a-4b5c-8d6e-7f8091a2b3c4\", \"type\": \"a\","
        " \"occurred_at\": \"2026-12-03T08:00:00Z\", \"data\": 3}",
    };
    struct hooks_event ev;
    char err[ERR_MAX];

    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        err[0] = '\0';
        assert_int_equal(parse(bad[i], &ev, err), -1);
        assert_true(err[0] != '\0');
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sign_reference_vector),
        cmocka_unit_test(test_sign_bad_secrets),
        cmocka_unit_test(test_sign_padded_secret),
        cmocka_unit_test(test_event_as_pix_event_writes_it),
        cmocka_unit_test(test_event_rejects),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
