/* test_sigv4: SigV4 against AWS's documented S3 examples (presigned GET, header-signed GET,
 * PUT, ?lifecycle, ListObjects), the URI encoder, canonical query order and input checks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sigv4.h"

#define AK "AKIAIOSFODNN7EXAMPLE"
#define SK "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
#define T20130524 ((time_t)1369353600) /* 2013-05-24T00:00:00Z */
#define EMPTY_SHA "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define AWS_BASE "https://examplebucket.s3.amazonaws.com"
#define CRED "Credential=" AK "/20130524/us-east-1/s3/aws4_request, "

static sigv4_signer *new_signer(void)
{
    sigv4_signer *s = sigv4_signer_new(AK, SK, "us-east-1", "s3");
    assert_non_null(s);
    return s;
}

static void test_presign_aws_example(void **state)
{
    sigv4_signer *s = new_signer();
    buf out = {0};
    char err[ERR_MAX] = "";
    assert_int_equal(
        sigv4_presign(s, "GET", AWS_BASE, "/test.txt", NULL, 0, T20130524, 86400, &out, err), 0);
    assert_string_equal(out.data, AWS_BASE
                        "/test.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256"
                        "&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1"
                        "%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z"
                        "&X-Amz-Expires=86400&X-Amz-SignedHeaders=host"
                        "&X-Amz-Signature="
                        "aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404");
    buf_free(&out);
    sigv4_signer_free(s);
}

/* Signs one request of the AWS examples and compares the Authorization header. */
static void check_header_example(const char *method, const char *path, const struct sigv4_kv *q,
                                 size_t nq, const struct sigv4_kv *h, size_t nh,
                                 const char *payload, const char *want)
{
    sigv4_signer *s = new_signer();
    buf auth = {0};
    char date[17], err[ERR_MAX] = "";
    int rc = sigv4_sign_headers(s, method, AWS_BASE, path, q, nq, h, nh, payload, T20130524, &auth,
                                date, err);
    assert_int_equal(rc, 0);
    assert_string_equal(date, "20130524T000000Z");
    assert_string_equal(auth.data, want);
    buf_free(&auth);
    sigv4_signer_free(s);
}

static void test_header_get_object(void **state)
{
    const struct sigv4_kv h[] = {{"Range", "bytes=0-9"}};
    check_header_example("GET", "/test.txt", NULL, 0, h, 1, EMPTY_SHA,
                         "AWS4-HMAC-SHA256 " CRED
                         "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, Signature="
                         "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
}

static void test_header_put_object(void **state)
{
    const char body[] = "Welcome to Amazon S3.";
    char sha[65];
    const struct sigv4_kv h[] = {{"x-amz-storage-class", "REDUCED_REDUNDANCY"},
                                 {"Date", "Fri, 24 May 2013 00:00:00 GMT"}};
    assert_int_equal(sigv4_sha256_hex(body, strlen(body), sha), 0);
    assert_string_equal(sha, "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072");
    check_header_example("PUT", "/test$file.text", NULL, 0, h, 2, sha,
                         "AWS4-HMAC-SHA256 " CRED
                         "SignedHeaders=date;host;x-amz-content-sha256;x-amz-date;"
                         "x-amz-storage-class, Signature="
                         "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd");
}

static void test_header_get_lifecycle(void **state)
{
    const struct sigv4_kv q[] = {{"lifecycle", NULL}};
    check_header_example("GET", "/", q, 1, NULL, 0, EMPTY_SHA,
                         "AWS4-HMAC-SHA256 " CRED
                         "SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature="
                         "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543");
}

static void test_header_list_objects(void **state)
{
    const struct sigv4_kv q[] = {{"prefix", "J"}, {"max-keys", "2"}};
    check_header_example("GET", "/", q, 2, NULL, 0, EMPTY_SHA,
                         "AWS4-HMAC-SHA256 " CRED
                         "SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature="
                         "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7");
}

static void check_encode(const char *in, int keep_slash, const char *want)
{
    buf b = {0};
    assert_int_equal(sigv4_uri_encode(&b, in, strlen(in), keep_slash), 0);
    assert_string_equal(b.data, want);
    buf_free(&b);
}

static void test_uri_encode(void **state)
{
    check_encode("AZaz09-_.~", 0, "AZaz09-_.~");
    check_encode("a b+c=d/e", 1, "a%20b%2Bc%3Dd/e");
    check_encode("a b+c=d/e", 0, "a%20b%2Bc%3Dd%2Fe");
    check_encode("\xc3\xa9t\xc3\xa9 \xf0\x9f\x93\xb7", 1, "%C3%A9t%C3%A9%20%F0%9F%93%B7");
    check_encode("%*!'()&?#:@,;$[]", 0, "%25%2A%21%27%28%29%26%3F%23%3A%40%2C%3B%24%5B%5D");
    check_encode("", 0, "");
    buf b = {0};
    assert_int_equal(sigv4_uri_encode(&b, "a\0b", 3, 0), 0);
    assert_int_equal(b.len, 5);
    assert_memory_equal(b.data, "a%00b", 6);
    buf_free(&b);
}

static void test_canonical_query(void **state)
{
    /* Sorted by encoded name (byte order: upper case first), then by value; names that are
     * prefixes of others come first whatever '=' would sort like. */
    const struct sigv4_kv q[] = {{"b", "2"},  {"a-b", "x"},    {"a", "z y"},  {"a", "y"},
                                 {"B", NULL}, {"uploads", ""}, {"k", "a/b+c"}};
    buf b = {0};
    char err[ERR_MAX] = "";
    assert_int_equal(sigv4_canonical_query(&b, q, ARRAY_LEN(q), err), 0);
    assert_string_equal(b.data, "B=&a=y&a=z%20y&a-b=x&b=2&k=a%2Fb%2Bc&uploads=");
    buf_free(&b);
    assert_int_equal(sigv4_canonical_query(&b, NULL, 0, err), 0);
    assert_true(b.len == 0);
    buf_free(&b);
}

/* Presigns GET /k at T20130524 for base and returns the URL (caller frees). */
static char *presign_base(sigv4_signer *s, const char *base, char *err)
{
    buf out = {0};
    if (sigv4_presign(s, "GET", base, "/k", NULL, 0, T20130524, 60, &out, err) < 0) {
        buf_free(&out);
        return NULL;
    }
    return out.data;
}

static void test_host_normalisation(void **state)
{
    sigv4_signer *s = new_signer();
    char err[ERR_MAX] = "";
    char *a = presign_base(s, "http://example.com", err);
    char *b = presign_base(s, "HTTP://Example.COM:80/", err);
    char *c = presign_base(s, "http://example.com:8080", err);
    char *d = presign_base(s, "https://example.com:443", err);
    char *e = presign_base(s, "https://example.com:80", err);
    assert_non_null(a), assert_non_null(b), assert_non_null(c), assert_non_null(d);
    assert_non_null(e);
    assert_string_equal(a, b);
    assert_true(strncmp(c, "http://example.com:8080/k?", 26) == 0);
    assert_true(strncmp(d, "https://example.com/k?", 22) == 0);
    assert_true(strncmp(e, "https://example.com:80/k?", 25) == 0);
    assert_string_not_equal(strstr(a, "Signature="), strstr(c, "Signature="));
    free(a), free(b), free(c), free(d), free(e);
    const char *bad[] = {"example.com", "ftp://x",    "http://", "http://a/b",
                         "http://u@h",  "http://h?x", NULL};
    for (int i = 0; i < (int)ARRAY_LEN(bad); i++) {
        err[0] = '\0';
        assert_null(presign_base(s, bad[i], err));
        assert_true(err[0] != '\0');
    }
    sigv4_signer_free(s);
}

static void test_presign_checks(void **state)
{
    sigv4_signer *s = new_signer();
    buf out = {0};
    char err[ERR_MAX];
    const struct sigv4_kv sig[] = {{"X-Amz-Signature", "x"}};
    assert_int_equal(sigv4_presign(s, "GET", AWS_BASE, "/k", NULL, 0, 0, 0, &out, err), -1);
    assert_int_equal(sigv4_presign(s, "GET", AWS_BASE, "/k", NULL, 0, 0, 604801, &out, err), -1);
    assert_int_equal(sigv4_presign(s, "get", AWS_BASE, "/k", NULL, 0, 0, 60, &out, err), -1);
    assert_int_equal(sigv4_presign(s, "GET", AWS_BASE, "k", NULL, 0, 0, 60, &out, err), -1);
    assert_int_equal(sigv4_presign(s, "GET", AWS_BASE, "/k", sig, 1, 0, 60, &out, err), -1);
    assert_int_equal(sigv4_presign(s, "GET", AWS_BASE, "/k", NULL, 0, -1, 60, &out, err), -1);
    assert_true(out.len == 0);
    assert_int_equal(sigv4_presign(s, "GET", AWS_BASE, "/k", NULL, 0, 0, 604800, &out, err), 0);
    assert_non_null(strstr(out.data, "X-Amz-Date=19700101T000000Z&X-Amz-Expires=604800&"));
    /* An empty path signs as "/". */
    buf_reset(&out);
    assert_int_equal(sigv4_presign(s, "GET", AWS_BASE, "", NULL, 0, 0, 60, &out, err), 0);
    assert_true(strncmp(out.data, AWS_BASE "/?X-Amz-", strlen(AWS_BASE) + 8) == 0);
    buf_free(&out);
    sigv4_signer_free(s);
}

/* Parameter order does not matter; extra parameters sort among the X-Amz ones. */
static void test_presign_query_order(void **state)
{
    sigv4_signer *s = new_signer();
    buf a = {0}, b = {0};
    char err[ERR_MAX];
    const struct sigv4_kv q1[] = {{"uploadId", "2~x y"}, {"partNumber", "7"}};
    const struct sigv4_kv q2[] = {{"partNumber", "7"}, {"uploadId", "2~x y"}};
    assert_int_equal(sigv4_presign(s, "PUT", "http://127.0.0.1:7480", "/b/a b/c+d=e~", q1, 2,
                                   T20130524, 900, &a, err),
                     0);
    assert_int_equal(sigv4_presign(s, "PUT", "http://127.0.0.1:7480", "/b/a b/c+d=e~", q2, 2,
                                   T20130524, 900, &b, err),
                     0);
    assert_string_equal(a.data, b.data);
    assert_true(strncmp(a.data, "http://127.0.0.1:7480/b/a%20b/c%2Bd%3De~?X-Amz-Algorithm=", 57) ==
                0);
    assert_non_null(strstr(a.data, "&X-Amz-SignedHeaders=host&partNumber=7&uploadId=2~x%20y"
                                   "&X-Amz-Signature="));
    buf_free(&a);
    buf_free(&b);
    sigv4_signer_free(s);
}

/* The cached signing key follows the date: a long-lived signer agrees with fresh ones. */
static void test_key_cache_by_day(void **state)
{
    const time_t days[] = {T20130524, T20130524 + 86399, T20130524 + 86400, T20130524 + 5,
                           T20130524 + 86400 * 400};
    sigv4_signer *s = new_signer();
    char err[ERR_MAX];
    for (size_t i = 0; i < ARRAY_LEN(days); i++) {
        sigv4_signer *fresh = new_signer();
        buf a = {0}, b = {0};
        assert_int_equal(sigv4_presign(s, "GET", AWS_BASE, "/x", NULL, 0, days[i], 60, &a, err), 0);
        assert_int_equal(sigv4_presign(fresh, "GET", AWS_BASE, "/x", NULL, 0, days[i], 60, &b, err),
                         0);
        assert_string_equal(a.data, b.data);
        buf_free(&a);
        buf_free(&b);
        sigv4_signer_free(fresh);
    }
    sigv4_signer_free(s);
}

/* X-Amz-Date agrees with gmtime over 1970..9999 (leap years, century rules). */
static void test_date_format(void **state)
{
    sigv4_signer *s = new_signer();
    buf out = {0};
    char err[ERR_MAX], want[32], *p;
    const time_t fixed[] = {0, 951782400 /* 2000-02-29 */, 4107542400 /* 2100-03-01 */,
                            253402300799 /* 9999-12-31T23:59:59Z */};
    for (long long t = 0; t <= 253402300799LL + 7777777; t += 7777777) {
        time_t now = t > 253402300799LL ? fixed[t % ARRAY_LEN(fixed)] : (time_t)t;
        struct tm tm;
        gmtime_r(&now, &tm);
        strftime(want, sizeof(want), "X-Amz-Date=%Y%m%dT%H%M%SZ&", &tm);
        buf_reset(&out);
        assert_int_equal(sigv4_presign(s, "GET", AWS_BASE, "/k", NULL, 0, now, 60, &out, err), 0);
        p = strstr(out.data, "X-Amz-Date=");
        assert_non_null(p);
        assert_memory_equal(p, want, strlen(want));
    }
    for (size_t i = 0; i < ARRAY_LEN(fixed); i++) {
        struct tm tm;
        gmtime_r(&fixed[i], &tm);
        strftime(want, sizeof(want), "X-Amz-Date=%Y%m%dT%H%M%SZ&", &tm);
        buf_reset(&out);
        assert_int_equal(sigv4_presign(s, "GET", AWS_BASE, "/k", NULL, 0, fixed[i], 60, &out, err),
                         0);
        assert_non_null(strstr(out.data, want));
    }
    buf_reset(&out);
    assert_int_equal(sigv4_presign(s, "GET", AWS_BASE, "/k", NULL, 0, 253402300800, 60, &out, err),
                     -1);
    buf_free(&out);
    sigv4_signer_free(s);
}

static void test_header_checks(void **state)
{
    sigv4_signer *s = new_signer();
    buf auth = {0};
    char date[17], err[ERR_MAX];
    const struct sigv4_kv dup[] = {{"X-Amz-Meta-A", "1"}, {"x-amz-meta-a", "2"}};
    const struct sigv4_kv std[] = {{"Host", "evil"}};
    const struct sigv4_kv crlf[] = {{"x-amz-meta-a", "1\r\nx: y"}};
    const struct sigv4_kv ws[] = {{"X-Amz-Meta-A", "  a   b \t c  "}};
    assert_int_equal(sigv4_sign_headers(s, "GET", AWS_BASE, "/k", NULL, 0, dup, 2, EMPTY_SHA, 0,
                                        &auth, date, err),
                     -1);
    assert_int_equal(sigv4_sign_headers(s, "GET", AWS_BASE, "/k", NULL, 0, std, 1, EMPTY_SHA, 0,
                                        &auth, date, err),
                     -1);
    assert_int_equal(sigv4_sign_headers(s, "GET", AWS_BASE, "/k", NULL, 0, crlf, 1, EMPTY_SHA, 0,
                                        &auth, date, err),
                     -1);
    assert_int_equal(
        sigv4_sign_headers(s, "GET", AWS_BASE, "/k", NULL, 0, NULL, 0, "abc", 0, &auth, date, err),
        -1);
    assert_int_equal(sigv4_sign_headers(s, "GET", AWS_BASE, "/k", NULL, 0, ws, 1,
                                        "UNSIGNED-PAYLOAD", 0, &auth, date, err),
                     0);
    assert_non_null(strstr(auth.data, "SignedHeaders=host;x-amz-content-sha256;x-amz-date;"
                                      "x-amz-meta-a, Signature="));
    buf_free(&auth);
    sigv4_signer_free(s);
}

static void test_sha256_hex(void **state)
{
    char hex[65];
    assert_int_equal(sigv4_sha256_hex("", 0, hex), 0);
    assert_string_equal(hex, EMPTY_SHA);
    assert_int_equal(sigv4_sha256_hex("abc", 3, hex), 0);
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

static void test_signer_new_checks(void **state)
{
    char long_key[200];
    memset(long_key, 'A', sizeof(long_key) - 1);
    long_key[sizeof(long_key) - 1] = '\0';
    assert_null(sigv4_signer_new(NULL, SK, "us-east-1", "s3"));
    assert_null(sigv4_signer_new(long_key, SK, "us-east-1", "s3"));
    sigv4_signer_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_presign_aws_example), cmocka_unit_test(test_header_get_object),
        cmocka_unit_test(test_header_put_object),   cmocka_unit_test(test_header_get_lifecycle),
        cmocka_unit_test(test_header_list_objects), cmocka_unit_test(test_uri_encode),
        cmocka_unit_test(test_canonical_query),     cmocka_unit_test(test_host_normalisation),
        cmocka_unit_test(test_presign_checks),      cmocka_unit_test(test_presign_query_order),
        cmocka_unit_test(test_key_cache_by_day),    cmocka_unit_test(test_date_format),
        cmocka_unit_test(test_header_checks),       cmocka_unit_test(test_sha256_hex),
        cmocka_unit_test(test_signer_new_checks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
