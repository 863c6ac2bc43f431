/* test_webhooks: the pure parts of the webhook admin API: which event types an endpoint may
 * subscribe to, the events[] literal, what a Standard Webhooks secret is, generated ones. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <openssl/evp.h>
#include <string.h>

#include "webhooks.h"

static void test_known_types(void **state)
{
    /* issue 19's list, as its text has it */
    char types[] = "image.created image.verified image.failed variant.ready image.deleted "
                   "image.restored image.purged share.created link.created quota.exceeded *";
    const char *bad[] = {"",   "image.uploaded", "webhook.ping", "Image.created", "image.created ",
                         "**", "image.*",        "image"};
    int n = 0;

    for (char *save = NULL, *t = strtok_r(types, " ", &save); t; t = strtok_r(NULL, " ", &save))
        n += webhook_event_known(t);
    assert_int_equal(n, 11);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_false(webhook_event_known(bad[i]));
}

/* The literal of events (JSON text), or NULL with msg when refused. */
static char *literal(const char *json, const char **msg)
{
    cJSON *a = cJSON_Parse(json);
    buf out = {0};
    char *r;

    assert_non_null(a);
    *msg = NULL;
    r = webhook_events_literal(a, &out, msg) == 0 ? strdup(out.data) : NULL;
    assert_true(r ? *msg == NULL : *msg != NULL);
    buf_free(&out);
    cJSON_Delete(a);
    return r;
}

static void test_events_literal(void **state)
{
    const char *msg;
    char *s = literal("[\"image.created\",\"*\",\"quota.exceeded\"]", &msg);
    const char *bad[] = {"[]",
                         "{}",
                         "\"image.created\"",
                         "[1]",
                         "[null]",
                         "[\"nope\"]",
                         "[\"image.created\",\"image.created\"]",
                         "[\"*\",\"a\",\"*\"]",
                         "[\"a\\\"b\"]",
                         "[\"*\",\"image.created\",\"image.verified\",\"image.failed\","
                         "\"variant.ready\",\"image.deleted\",\"image.restored\","
                         "\"image.purged\",\"share.created\",\"link.created\","
                         "\"quota.exceeded\",\"*\",\"*\",\"*\",\"*\",\"*\",\"*\"]"};

    assert_string_equal(s, "{\"image.created\",\"*\",\"quota.exceeded\"}");
    free(s);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        s = literal(bad[i], &msg);
        if (s)
            fail_msg("accepted %s", bad[i]);
    }
}

static void test_secret_valid(void **state)
{
    const char *good[] = {
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",             /* 24 bytes */
        "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD",             /* 24 bytes, + */
        "whsec_a2tra2tra2tra2tra2tra2tra2tra2tra2tra2tra2s=", /* 35 bytes, = */

    };
    const char *bad[] = {
        "",
        "whsec_",
        "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",       /* no prefix */
        "WHSEC_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", /* prefix case */
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaS",  /* not a multiple of 4 */
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLa==", /* 22 bytes */
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLa-_", /* base64url, not base64 */
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2La=aSw", /* padding inside */
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaL===", /* three pads */
        "whsec_MfKQ9r8GKYqrTwjU PD8ILPZIo2LaLaSw",
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n",
    };
    char big[6 + 92 + 1] = "whsec_";

    memset(big + 6, 'A', 92); /* 69 bytes */
    big[sizeof big - 1] = '\0';
    assert_false(webhook_secret_valid(big));
    big[6 + 88] = '\0'; /* 66 bytes */
    assert_false(webhook_secret_valid(big));
    big[6 + 86] = '=';
    big[6 + 87] = '='; /* 64 bytes */
    assert_true(webhook_secret_valid(big));
    assert_true(strlen(big) < WEBHOOK_SECRET_MAX);
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        assert_true(webhook_secret_valid(good[i]));
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (webhook_secret_valid(bad[i]))
            fail_msg("accepted '%s'", bad[i]);
}

static void test_secret_new(void **state)
{
    char a[WEBHOOK_SECRET_MAX], b[WEBHOOK_SECRET_MAX];
    unsigned char raw[64];

    assert_int_equal(webhook_secret_new(a), 0);
    assert_int_equal(webhook_secret_new(b), 0);
    assert_true(webhook_secret_valid(a));
    assert_string_not_equal(a, b);
    assert_int_equal(strlen(a), 6 + 44);
    /* decodes to WEBHOOK_SECRET_BYTES (EVP_DecodeBlock counts the pad as a zero byte) */
    assert_int_equal(EVP_DecodeBlock(raw, (const unsigned char *)a + 6, 44),
                     WEBHOOK_SECRET_BYTES + 1);
    assert_int_equal(a[strlen(a) - 1], '=');
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known_types),
        cmocka_unit_test(test_events_literal),
        cmocka_unit_test(test_secret_valid),
        cmocka_unit_test(test_secret_new),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
