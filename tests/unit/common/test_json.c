/* Unit tests for common/json.c: object-only parsing, typed getters (absent, null, wrong
 * type, integer range), error bodies with awkward strings, and the UTF-8 validator. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>
#include "json.h"

static cJSON *parse(const char *s, const char **err)
{
    *err = NULL;
    return json_parse_object(s, strlen(s), err);
}

static void test_parse_object(void **state)
{
    static const char *const ok[] = {"{}", " {\"a\":1} \n", "{\"a\":{\"b\":[1,2]}}\r\n\t"};
    const char *err;
    cJSON *o;

    for (size_t i = 0; i < ARRAY_LEN(ok); i++) {
        o = parse(ok[i], &err);
        assert_non_null(o);
        cJSON_Delete(o);
    }
    /* The length bounds the body: nothing past it is read. */
    o = json_parse_object("{\"a\":1}garbage", 7, &err);
    assert_non_null(o);
    cJSON_Delete(o);
}

/* Issue 14 #10: "abc\u0000.exe" would be stored as "abc"; refused instead. An escaped
 * backslash followed by "u0000" is text, and other escapes stay fine. */
static void test_nul_escape_refused(void **state)
{
    static const char *const nul[] = {"{\"n\":\"abc\\u0000.exe\"}", "{\"\\u0000\":1}",
                                      "{\"a\":[\"x\\\\\\u0000\"]}", "{\"n\":\"\\u00000\"}"};
    static const char *const fine[] = {"{\"n\":\"a\\\\u0000\"}", "{\"n\":\"\\u0001\\u00e9\"}"};
    const char *err;
    cJSON *o;

    for (size_t i = 0; i < ARRAY_LEN(nul); i++) {
        assert_null(parse(nul[i], &err));
        assert_string_equal(err, "strings must not contain U+0000");
    }
    for (size_t i = 0; i < ARRAY_LEN(fine); i++) {
        o = parse(fine[i], &err);
        assert_non_null(o);
        cJSON_Delete(o);
    }
}

/* Found by fuzzing (fuzz_json_bodies): "\u.000" was read by cJSON as U+0000, and bytes
 * that are not UTF-8 reached PostgreSQL (a 500). Both are refused before parsing. */
static void test_body_text_refused(void **state)
{
    static const struct {
        const char *body;
        size_t len;
        const char *err;
    } bad[] = {
        {"{\"n\":\"abc\\u.000.exe\"}", 0, "malformed JSON"},
        {"{\"n\":\"\\u12\"}", 0, "malformed JSON"},
        {"{\"n\":\"\\u\"}", 0, "malformed JSON"},
        {"{\"proof\":\"\xff\xfe\"}", 0, "the body must be UTF-8 text"},
        {"{\"n\":\"\xc0\xaf\"}", 0, "the body must be UTF-8 text"},
        {"{\"n\":\"\xed\xa0\x80\"}", 0, "the body must be UTF-8 text"},
        {"{\"n\":\"a\0b\"}", 10, "malformed JSON"},
    };
    const char *err;
    cJSON *o;

    for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
        size_t len = bad[i].len ? bad[i].len : strlen(bad[i].body);
        assert_null(json_parse_object(bad[i].body, len, &err));
        assert_string_equal(err, bad[i].err);
    }
    o = parse("{\"n\":\"\\uD83D\\uDCF7 \xf0\x9f\x93\xb7 \\u00E9\"}", &err);
    assert_non_null(o);
    assert_string_equal(cJSON_GetObjectItem(o, "n")->valuestring,
                        "\xf0\x9f\x93\xb7 \xf0\x9f\x93\xb7 \xc3\xa9");
    cJSON_Delete(o);
}

static void test_parse_errors(void **state)
{
    static const char *const malformed[] = {"",     "{",    "{\"a\":}", "{} x",
                                            "{}{}", "nope", "{'a':1}",  "{\"a\":1,}"};
    static const char *const not_object[] = {"[]", "[{}]", "1", "\"s\"", "null", "true"};
    const char *err;
    char *deep;

    for (size_t i = 0; i < ARRAY_LEN(malformed); i++) {
        assert_null(parse(malformed[i], &err));
        assert_string_equal(err, "malformed JSON");
    }
    for (size_t i = 0; i < ARRAY_LEN(not_object); i++) {
        assert_null(parse(not_object[i], &err));
        assert_string_equal(err, "expected a JSON object");
    }
    assert_null(json_parse_object(NULL, 0, &err));
    assert_string_equal(err, "malformed JSON");
    assert_null(json_parse_object("{}\0{}", 5, &err));
    assert_string_equal(err, "malformed JSON");

    /* Nesting past cJSON's limit is refused, not a crash. */
    deep = malloc(20002);
    assert_non_null(deep);
    deep[0] = '{';
    memcpy(deep + 1, "\"a\":", 4);
    memset(deep + 5, '[', 9000);
    memset(deep + 9005, ']', 9000);
    memcpy(deep + 18005, "}", 2);
    assert_null(parse(deep, &err));
    assert_string_equal(err, "malformed JSON");
    free(deep);
}

static const char doc[] = "{\"s\":\"v\",\"n\":null,\"i\":42,\"neg\":-7,\"f\":1.5,\"one\":1.0,"
                          "\"e\":1e300,\"max\":9007199254740991,\"big\":9007199254740992,"
                          "\"min\":-9007199254740991,\"t\":true,\"b\":false,\"arr\":[],"
                          "\"obj\":{},\"str5\":\"5\",\"S\":\"upper\"}";

static void test_get_str(void **state)
{
    const char *err = NULL, *v = "unchanged";
    cJSON *o = parse(doc, &err);

    assert_non_null(o);
    assert_int_equal(json_get_str(o, "s", &v, &err), 1);
    assert_string_equal(v, "v");
    v = "unchanged";
    assert_int_equal(json_get_str(o, "absent", &v, &err), 0);
    assert_int_equal(json_get_str(o, "n", &v, &err), 0);
    assert_int_equal(json_get_str(o, "S", &v, &err), 1); /* keys are case-sensitive */
    assert_string_equal(v, "upper");
    v = "unchanged";
    static const char *const wrong[] = {"i", "t", "arr", "obj"};
    for (size_t i = 0; i < ARRAY_LEN(wrong); i++) {
        err = NULL;
        assert_int_equal(json_get_str(o, wrong[i], &v, &err), -1);
        assert_string_equal(err, "expected a string");
        assert_string_equal(v, "unchanged");
    }
    assert_int_equal(json_get_str(NULL, "s", &v, &err), 0);
    assert_int_equal(json_get_str(cJSON_GetObjectItem(o, "arr"), "s", &v, &err), 0);
    cJSON_Delete(o);
}

static void test_get_i64(void **state)
{
    const char *err = NULL;
    long long v = 0;
    cJSON *o = parse(doc, &err);

    assert_non_null(o);
    assert_int_equal(json_get_i64(o, "i", &v, &err), 1);
    assert_int_equal(v, 42);
    assert_int_equal(json_get_i64(o, "neg", &v, &err), 1);
    assert_int_equal(v, -7);
    assert_int_equal(json_get_i64(o, "one", &v, &err), 1);
    assert_int_equal(v, 1);
    assert_int_equal(json_get_i64(o, "max", &v, &err), 1);
    assert_int_equal(v, 9007199254740991LL);
    assert_int_equal(json_get_i64(o, "min", &v, &err), 1);
    assert_int_equal(v, -9007199254740991LL);
    assert_int_equal(json_get_i64(o, "absent", &v, &err), 0);
    assert_int_equal(json_get_i64(o, "n", &v, &err), 0);
    v = 5;
    assert_int_equal(json_get_i64(o, "f", &v, &err), -1);
    assert_string_equal(err, "expected an integer");
    assert_int_equal(json_get_i64(o, "e", &v, &err), -1);
    assert_string_equal(err, "integer out of range");
    assert_int_equal(json_get_i64(o, "big", &v, &err), -1);
    assert_string_equal(err, "integer out of range");
    assert_int_equal(json_get_i64(o, "str5", &v, &err), -1);
    assert_string_equal(err, "expected an integer");
    assert_int_equal(json_get_i64(o, "t", &v, &err), -1);
    assert_int_equal(json_get_i64(o, "arr", &v, &err), -1);
    assert_int_equal(v, 5);
    cJSON_Delete(o);
}

static void test_get_bool(void **state)
{
    const char *err = NULL;
    int v = -1;
    cJSON *o = parse(doc, &err);

    assert_non_null(o);
    assert_int_equal(json_get_bool(o, "t", &v, &err), 1);
    assert_int_equal(v, 1);
    assert_int_equal(json_get_bool(o, "b", &v, &err), 1);
    assert_int_equal(v, 0);
    assert_int_equal(json_get_bool(o, "absent", &v, &err), 0);
    assert_int_equal(json_get_bool(o, "n", &v, &err), 0);
    v = 7;
    assert_int_equal(json_get_bool(o, "i", &v, &err), -1);
    assert_string_equal(err, "expected a boolean");
    assert_int_equal(json_get_bool(o, "s", &v, &err), -1);
    assert_int_equal(json_get_bool(o, "obj", &v, &err), -1);
    assert_int_equal(v, 7);
    cJSON_Delete(o);
}

static void test_print(void **state)
{
    const char *err;
    cJSON *o = parse(" { \"a\" : [ 1 , \"x\" ] } ", &err);
    char *s = json_print(o);

    assert_string_equal(s, "{\"a\":[1,\"x\"]}");
    free(s);
    cJSON_Delete(o);
    assert_null(json_print(NULL));
}

static void test_error_body(void **state)
{
    const char *err, *code = NULL, *msg = NULL;
    char *s = json_error_body("bad_request", "plain");
    cJSON *o, *e;

    assert_string_equal(s, "{\"error\":{\"code\":\"bad_request\",\"message\":\"plain\"}}");
    free(s);

    s = json_error_body("x", "q\"b\\s</script>\n\x01 caf\xc3\xa9 \xff");
    assert_null(strchr(s, '\n'));
    assert_null(strchr(s, '\x01'));
    o = parse(s, &err);
    assert_non_null(o);
    e = cJSON_GetObjectItemCaseSensitive(o, "error");
    assert_int_equal(json_get_str(e, "code", &code, &err), 1);
    assert_int_equal(json_get_str(e, "message", &msg, &err), 1);
    assert_string_equal(code, "x");
    assert_string_equal(msg, "q\"b\\s</script>\n\x01 caf\xc3\xa9 \xef\xbf\xbd");
    cJSON_Delete(o);
    free(s);

    s = json_error_body(NULL, NULL);
    assert_string_equal(s, "{\"error\":{\"code\":\"\",\"message\":\"\"}}");
    free(s);
}

static void test_utf8(void **state)
{
    static const struct {
        const char *s;
        size_t n;
    } t[] = {
        {"a", 1},
        {"\x7f", 1},
        {"\xc2\x80", 2},
        {"\xdf\xbf", 2},
        {"\xe0\xa0\x80", 3},
        {"\xed\x9f\xbf", 3},
        {"\xee\x80\x80", 3},
        {"\xef\xbf\xbf", 3},
        {"\xf0\x90\x80\x80", 4},
        {"\xf4\x8f\xbf\xbf", 4},
        {"\x80", 0},             /* stray continuation */
        {"\xc0\x80", 0},         /* overlong NUL */
        {"\xc1\xbf", 0},         /* overlong */
        {"\xe0\x9f\xbf", 0},     /* overlong */
        {"\xed\xa0\x80", 0},     /* surrogate */
        {"\xed\xbf\xbf", 0},     /* surrogate */
        {"\xf0\x8f\xbf\xbf", 0}, /* overlong */
        {"\xf4\x90\x80\x80", 0}, /* > U+10FFFF */
        {"\xf5\x80\x80\x80", 0},
        {"\xff", 0},
        {"\xc3", 0},     /* truncated */
        {"\xe2\x82", 0}, /* truncated */
        {"\xc3\x41", 0}, /* bad continuation */
    };

    for (size_t i = 0; i < ARRAY_LEN(t); i++) {
        size_t got = json_utf8_seqlen((const unsigned char *)t[i].s, strlen(t[i].s));
        if (got != t[i].n)
            fail_msg("case %zu: got %zu want %zu", i, got, t[i].n);
    }
    assert_int_equal(json_utf8_seqlen((const unsigned char *)"\xe2\x82\xac", 2), 0);
    assert_int_equal(json_utf8_seqlen((const unsigned char *)"", 0), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_object),
        cmocka_unit_test(test_parse_errors),
        cmocka_unit_test(test_nul_escape_refused),
        cmocka_unit_test(test_body_text_refused),
        cmocka_unit_test(test_get_str),
        cmocka_unit_test(test_get_i64),
        cmocka_unit_test(test_get_bool),
        cmocka_unit_test(test_print),
        cmocka_unit_test(test_error_body),
        cmocka_unit_test(test_utf8),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
