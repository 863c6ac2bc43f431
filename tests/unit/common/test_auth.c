/* Unit tests for common/auth.c: JWT HS256 sign/verify against tokens built independently
 * here, every rejection path, the RFC 7515 A.1 vector, auth_bearer and auth_valid_sub. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "auth.h"

#define NOW ((time_t)1795860000) /* 2026-11-28T08:40:00Z */
#define HS256 "{\"alg\":\"HS256\",\"typ\":\"JWT\"}"

static const unsigned char key[] = "k3y-for-tests-0123456789abcdefgh";
static const unsigned char other_key[] = "another-key-0123456789abcdefghij";
#define KEYLEN (sizeof key - 1)

static char *b64(const char *s)
{
    char *r = util_b64url_encode((const unsigned char *)s, strlen(s));
    assert_non_null(r);
    return r;
}

/* b64(hdr).b64(payload).sig, sig being HMAC-SHA256 with k, or the literal sig if k is NULL. */
static char *mk(const char *hdr, const char *payload, const unsigned char *k, const char *sig)
{
    char *h = b64(hdr), *p = b64(payload), *in = NULL, *tok = NULL, *s;
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int ml = 0;

    assert_true(asprintf(&in, "%s.%s", h, p) > 0);
    if (k != NULL) {
        assert_non_null(HMAC(EVP_sha256(), k, (int)strlen((const char *)k),
                             (const unsigned char *)in, strlen(in), mac, &ml));
        s = util_b64url_encode(mac, ml);
    } else {
        s = strdup(sig);
    }
    assert_true(asprintf(&tok, "%s.%s", in, s) > 0);
    free(h);
    free(p);
    free(in);
    free(s);
    return tok;
}

/* A payload for sub "u1" expiring at NOW + exp_in, with extra members appended. */
static char *claims(long exp_in, const char *extra)
{
    char *s = NULL;

    assert_true(asprintf(&s, "{\"sub\":\"u1\",\"exp\":%lld%s}", (long long)NOW + exp_in, extra) >
                0);
    return s;
}

static void expect_err(const char *tok, time_t now, const char *want)
{
    struct auth_claims c;
    const char *err = NULL;

    memset(&c, 'x', sizeof c);
    if (auth_verify(key, KEYLEN, tok, now, &c, &err) != -1)
        fail_msg("accepted: %s", tok);
    if (err == NULL || strcmp(err, want) != 0)
        fail_msg("token %s: got %s, want %s", tok, err ? err : "(null)", want);
    assert_string_equal(c.sub, ""); /* out is cleared on failure */
}

/* Builds hdr/payload signed with key and expects err (or success if want is NULL). */
static void expect_signed(const char *hdr, const char *payload, const char *want)
{
    char *tok = mk(hdr, payload, key, NULL);
    struct auth_claims c;
    const char *err = NULL;

    if (want != NULL)
        expect_err(tok, NOW, want);
    else if (auth_verify(key, KEYLEN, tok, NOW, &c, &err) != 0)
        fail_msg("rejected (%s): %s", err, payload);
    free(tok);
}

static void test_sign_verify(void **state)
{
    char *tok = auth_sign(key, KEYLEN, "alice@example.com", 1, NOW, 3600);
    struct auth_claims c;
    const char *err = NULL;

    assert_non_null(tok);
    assert_true(strncmp(tok, "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.", 37) == 0);
    assert_int_equal(auth_verify(key, KEYLEN, tok, NOW, &c, &err), 0);
    assert_string_equal(c.sub, "alice@example.com");
    assert_int_equal(c.admin, 1);
    assert_int_equal(c.exp, NOW + 3600);
    assert_int_equal(auth_verify(key, KEYLEN, tok, NOW + 3599, &c, &err), 0);
    expect_err(tok, NOW + 3600, "expired"); /* no leeway on exp */
    expect_err(tok, NOW + 86400, "expired");
    free(tok);

    tok = auth_sign(key, KEYLEN, "bob", 0, NOW, 60);
    assert_non_null(tok);
    assert_int_equal(auth_verify(key, KEYLEN, tok, NOW, &c, &err), 0);
    assert_string_equal(c.sub, "bob");
    assert_int_equal(c.admin, 0);
    free(tok);
}

static void test_independent_token(void **state)
{
    char *p = claims(100, ",\"iat\":1795860000,\"adm\":false"), *tok = mk(HS256, p, key, NULL);
    struct auth_claims c;
    const char *err = NULL;

    assert_int_equal(auth_verify(key, KEYLEN, tok, NOW, &c, &err), 0);
    assert_string_equal(c.sub, "u1");
    assert_int_equal(c.admin, 0);
    free(tok);
    /* typ is optional and case-insensitive; other header members are ignored. */
    expect_signed("{\"alg\":\"HS256\"}", p, NULL);
    expect_signed("{\"typ\":\"jwt\",\"alg\":\"HS256\",\"kid\":\"k1\"}", p, NULL);
    free(p);
}

static void test_rfc7515_vector(void **state)
{
    static const char tok[] =
        "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9."
        "eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0"
        "cnVlfQ.dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    static const char jwk_k[] =
        "AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow";
    unsigned char *k = NULL;
    size_t klen = 0;
    struct auth_claims c;
    const char *err = NULL;
    char bad[sizeof tok];

    assert_int_equal(util_b64url_decode(jwk_k, strlen(jwk_k), &k, &klen), 0);
    /* The signature checks out; the payload then fails on our claims (no sub). */
    assert_int_equal(auth_verify(k, klen, tok, 1300819379, &c, &err), -1);
    assert_string_equal(err, "missing_sub");
    memcpy(bad, tok, sizeof tok);
    bad[sizeof tok - 2] = bad[sizeof tok - 2] == 'A' ? 'B' : 'A';
    assert_int_equal(auth_verify(k, klen, bad, 1300819379, &c, &err), -1);
    assert_string_equal(err, "bad_signature");
    free(k);
}

static void test_bad_signature(void **state)
{
    char *p = claims(100, ""), *good = mk(HS256, p, key, NULL), *tok;
    size_t n = strlen(good);
    struct auth_claims c;
    const char *err;

    /* wrong key */
    tok = mk(HS256, p, other_key, NULL);
    expect_err(tok, NOW, "bad_signature");
    assert_int_equal(auth_verify(other_key, KEYLEN, tok, NOW, &c, &err), 0);
    free(tok);
    /* the verifier's key is wrong */
    assert_int_equal(auth_verify(other_key, KEYLEN, good, NOW, &c, &err), -1);
    assert_string_equal(err, "bad_signature");
    /* every single-character change of the signature */
    tok = strdup(good);
    for (size_t i = n - 43; i < n; i++) {
        char o = tok[i];
        tok[i] = o == 'A' ? 'B' : 'A';
        expect_err(tok, NOW, "bad_signature");
        tok[i] = o;
    }
    /* truncated, extended, padded, empty signature */
    tok[n - 1] = '\0';
    expect_err(tok, NOW, "bad_signature");
    free(tok);
    assert_true(asprintf(&tok, "%sA", good) > 0);
    expect_err(tok, NOW, "bad_signature");
    free(tok);
    assert_true(asprintf(&tok, "%s=", good) > 0);
    expect_err(tok, NOW, "malformed");
    free(tok);
    tok = mk(HS256, p, NULL, "");
    expect_err(tok, NOW, "bad_signature");
    free(tok);
    /* no key at all */
    assert_int_equal(auth_verify(NULL, 0, good, NOW, &c, &err), -1);
    assert_string_equal(err, "bad_signature");
    free(good);
    free(p);
}

static void test_tampered_payload(void **state)
{
    char *p = claims(100, ""), *good = mk(HS256, p, key, NULL);
    char *evil = claims(100, ",\"adm\":true"), *evil64 = b64(evil), *tok = NULL;
    const char *d1 = strchr(good, '.'), *d2 = strrchr(good, '.');

    /* original header and signature around a different payload */
    assert_true(asprintf(&tok, "%.*s.%s%s", (int)(d1 - good), good, evil64, d2) > 0);
    expect_err(tok, NOW, "bad_signature");
    free(tok);
    free(evil64);
    free(evil);
    /* a later expiry */
    evil = claims(100000, "");
    evil64 = b64(evil);
    assert_true(asprintf(&tok, "%.*s.%s%s", (int)(d1 - good), good, evil64, d2) > 0);
    expect_err(tok, NOW, "bad_signature");
    free(tok);
    free(evil64);
    free(evil);
    expect_signed(HS256, p, NULL); /* the original is accepted */
    free(good);
    free(p);
}

static void test_alg(void **state)
{
    char *p = claims(100, ""), *good = mk(HS256, p, key, NULL), *tok;
    static const char *const hdrs[] = {
        "{\"alg\":\"none\",\"typ\":\"JWT\"}",
        "{\"alg\":\"HS512\",\"typ\":\"JWT\"}",
        "{\"alg\":\"RS256\"}",
        "{\"alg\":\"hs256\"}",
        "{\"typ\":\"JWT\"}",
        "{\"alg\":256}",
        "{\"alg\":null}",
        "{\"alg\":\"HS256 \"}",
        "{\"alg\":\"\"}",
    };

    for (size_t i = 0; i < ARRAY_LEN(hdrs); i++) {
        /* with our own valid HS256 signature, with an empty one, and with the key's HMAC */
        tok = mk(hdrs[i], p, NULL, strrchr(good, '.') + 1);
        expect_err(tok, NOW, "unsupported_alg");
        free(tok);
        tok = mk(hdrs[i], p, NULL, "");
        expect_err(tok, NOW, "unsupported_alg");
        free(tok);
        tok = mk(hdrs[i], p, key, NULL);
        expect_err(tok, NOW, "unsupported_alg");
        free(tok);
    }
    /* alg none without a signature segment at all */
    tok = mk("{\"alg\":\"none\"}", p, NULL, "");
    tok[strlen(tok) - 1] = '\0';
    expect_err(tok, NOW, "malformed");
    free(tok);
    free(good);
    free(p);
}

static void test_malformed(void **state)
{
    char *p = claims(100, ""), *good = mk(HS256, p, key, NULL), *tok = NULL;
    const char *d1 = strchr(good, '.');
    static const char *const bad[] = {"",        ".",    "..",   "...",     "a.b",
                                      "a.b.c.d", ".b.c", "a..c", "a b.c.d", "\x80.b.c"};
    struct auth_claims c;
    const char *err;

    for (size_t i = 0; i < ARRAY_LEN(bad); i++)
        expect_err(bad[i], NOW, "malformed");
    assert_int_equal(auth_verify(key, KEYLEN, NULL, NOW, &c, &err), -1);
    assert_string_equal(err, "malformed");
    /* two segments of a valid token */
    tok = strndup(good, (size_t)(strrchr(good, '.') - good));
    expect_err(tok, NOW, "malformed");
    free(tok);
    /* four segments */
    assert_true(asprintf(&tok, "%s.%s", good, "x") > 0);
    expect_err(tok, NOW, "malformed");
    free(tok);
    /* bad base64 in header and payload: '+', '/', '=' are not base64url */
    tok = strdup(good);
    tok[2] = '+';
    expect_err(tok, NOW, "malformed");
    tok[2] = good[2];
    tok[d1 - good + 3] = '/';
    expect_err(tok, NOW, "malformed");
    free(tok);
    /* header not JSON / not an object */
    tok = mk("{alg:HS256}", p, key, NULL);
    expect_err(tok, NOW, "malformed");
    free(tok);
    tok = mk("[\"HS256\"]", p, key, NULL);
    expect_err(tok, NOW, "malformed");
    free(tok);
    /* signed payload that is not JSON, or not an object */
    expect_signed(HS256, "not json", "malformed");
    expect_signed(HS256, "[1,2]", "malformed");
    expect_signed(HS256, "{\"sub\":\"u1\",\"exp\":9999999999", "malformed");
    /* unknown typ or a crit header */
    expect_signed("{\"alg\":\"HS256\",\"typ\":\"JWE\"}", p, "malformed");
    expect_signed("{\"alg\":\"HS256\",\"typ\":1}", p, "malformed");
    expect_signed("{\"alg\":\"HS256\",\"crit\":[\"exp\"]}", p, "malformed");
    /* an oversized token is refused before any work */
    tok = calloc(1, 10000);
    memset(tok, 'a', 9999);
    tok[10] = tok[20] = '.';
    expect_err(tok, NOW, "malformed");
    free(tok);
    free(good);
    free(p);
}

static void test_claims(void **state)
{
    char p[512], longsub[AUTH_SUB_MAX + 2];
    long long e = (long long)NOW + 100;

    /* sub missing or invalid */
    snprintf(p, sizeof p, "{\"exp\":%lld}", e);
    expect_signed(HS256, p, "missing_sub");
    static const char *const subs[] = {"\"\"", "\"a b\"", "\"a/b\"", "\"\\u00e9\"",
                                       "42",   "null",    "true",    "[\"u1\"]"};
    for (size_t i = 0; i < ARRAY_LEN(subs); i++) {
        snprintf(p, sizeof p, "{\"sub\":%s,\"exp\":%lld}", subs[i], e);
        expect_signed(HS256, p, "missing_sub");
    }
    memset(longsub, 'a', sizeof longsub - 1);
    longsub[sizeof longsub - 1] = '\0';
    snprintf(p, sizeof p, "{\"sub\":\"%s\",\"exp\":%lld}", longsub, e);
    expect_signed(HS256, p, "missing_sub");
    longsub[AUTH_SUB_MAX] = '\0';
    snprintf(p, sizeof p, "{\"sub\":\"%s\",\"exp\":%lld}", longsub, e);
    expect_signed(HS256, p, NULL);
    /* "SUB" is not "sub" */
    snprintf(p, sizeof p, "{\"SUB\":\"u1\",\"exp\":%lld}", e);
    expect_signed(HS256, p, "missing_sub");

    /* exp missing, null, or not an integer */
    expect_signed(HS256, "{\"sub\":\"u1\"}", "missing_exp");
    expect_signed(HS256, "{\"sub\":\"u1\",\"exp\":null}", "missing_exp");
    expect_signed(HS256, "{\"sub\":\"u1\",\"exp\":\"9999999999\"}", "malformed");
    expect_signed(HS256, "{\"sub\":\"u1\",\"exp\":9999999999.5}", "malformed");
    expect_signed(HS256, "{\"sub\":\"u1\",\"exp\":1e300}", "malformed");
    snprintf(p, sizeof p, "{\"sub\":\"u1\",\"exp\":%lld}", (long long)NOW);
    expect_signed(HS256, p, "expired");
    snprintf(p, sizeof p, "{\"sub\":\"u1\",\"exp\":%lld}", (long long)NOW + 1);
    expect_signed(HS256, p, NULL);
}

static void test_time_claims(void **state)
{
    char *p;
    static const struct {
        const char *extra;
        const char *want;
    } t[] = {
        {",\"nbf\":1795860030", NULL},            /* within 30 s of skew */
        {",\"nbf\":1795860031", "not_yet_valid"}, /* beyond it */
        {",\"iat\":1795860030", NULL},
        {",\"iat\":1795860031", "not_yet_valid"},
        {",\"iat\":1700000000,\"nbf\":1700000000", NULL},
        {",\"nbf\":\"now\"", "malformed"},
        {",\"iat\":1.5", "malformed"},
        {",\"adm\":true", NULL},
        {",\"adm\":\"true\"", "malformed"},
        {",\"adm\":1", "malformed"},
        {",\"adm\":null", NULL},
    };

    for (size_t i = 0; i < ARRAY_LEN(t); i++) {
        p = claims(100, t[i].extra);
        expect_signed(HS256, p, t[i].want);
        free(p);
    }
}

static void test_trailing_blanks(void **state)
{
    char *good = auth_sign(key, KEYLEN, "u1", 0, NOW, 60), *tok = NULL;
    struct auth_claims c;
    const char *err;

    assert_true(asprintf(&tok, "%s  \t", good) > 0);
    assert_int_equal(auth_verify(key, KEYLEN, tok, NOW, &c, &err), 0);
    free(tok);
    assert_true(asprintf(&tok, " %s", good) > 0);
    expect_err(tok, NOW, "malformed");
    free(tok);
    assert_true(asprintf(&tok, "%s x", good) > 0);
    expect_err(tok, NOW, "malformed"); /* only trailing blanks are ignored */
    free(tok);
    free(good);
}

static void test_sign_rejects(void **state)
{
    assert_null(auth_sign(key, KEYLEN, "", 0, NOW, 60));
    assert_null(auth_sign(key, KEYLEN, "a b", 0, NOW, 60));
    assert_null(auth_sign(key, KEYLEN, NULL, 0, NOW, 60));
    assert_null(auth_sign(key, KEYLEN, "u1", 0, NOW, 0));
    assert_null(auth_sign(key, KEYLEN, "u1", 0, NOW, -5));
    assert_null(auth_sign(NULL, 0, "u1", 0, NOW, 60));
}

static void test_bearer(void **state)
{
    assert_string_equal(auth_bearer("Bearer abc.def.ghi"), "abc.def.ghi");
    assert_string_equal(auth_bearer("bearer abc"), "abc");
    assert_string_equal(auth_bearer("BEARER   abc"), "abc");
    assert_string_equal(auth_bearer("  Bearer\tabc"), "abc");
    assert_string_equal(auth_bearer("Bearer abc  "), "abc  "); /* auth_verify ignores them */
    assert_null(auth_bearer(NULL));
    assert_null(auth_bearer(""));
    assert_null(auth_bearer("Bearer"));
    assert_null(auth_bearer("Bearer "));
    assert_null(auth_bearer("Bearer    "));
    assert_null(auth_bearer("Bearerabc"));
    assert_null(auth_bearer("Basic dXNlcjpwYXNz"));
    assert_null(auth_bearer("Token abc"));
    assert_null(auth_bearer("abc"));
}

static void test_valid_sub(void **state)
{
    char s[AUTH_SUB_MAX + 2];

    assert_true(auth_valid_sub("a"));
    assert_true(auth_valid_sub("user.name_1@example-host.com"));
    assert_true(auth_valid_sub("ABCxyz019"));
    assert_false(auth_valid_sub(NULL));
    assert_false(auth_valid_sub(""));
    assert_false(auth_valid_sub("a b"));
    assert_false(auth_valid_sub("a/b"));
    assert_false(auth_valid_sub("a+b"));
    assert_false(auth_valid_sub("caf\xc3\xa9"));
    assert_false(auth_valid_sub("a\n"));
    memset(s, 'x', AUTH_SUB_MAX);
    s[AUTH_SUB_MAX] = '\0';
    assert_true(auth_valid_sub(s));
    s[AUTH_SUB_MAX] = 'x';
    s[AUTH_SUB_MAX + 1] = '\0';
    assert_false(auth_valid_sub(s));
}

/* The verified-token cache: the same token is answered from it (even under a key that
 * would now refuse it, which shows no HMAC ran), never past exp; any other token is
 * verified, so a forged one sharing a slot is still refused and evicts nothing good. */
static void test_cache(void **state)
{
    auth_cache *c = auth_cache_new(1); /* one slot: every token collides */
    struct auth_claims cl;
    const char *why = NULL;
    char *a = auth_sign(key, KEYLEN, "alice", 0, NOW, 60);
    char *b = auth_sign(key, KEYLEN, "bob", 1, NOW, 600);
    char *forged = strdup(a);

    assert_non_null(c);
    assert_non_null(a);
    assert_non_null(b);
    forged[strlen(forged) - 2] ^= 1;
    assert_int_equal(auth_cache_verify(c, key, KEYLEN, a, NOW, &cl, &why), 0);
    assert_string_equal(cl.sub, "alice");
    memset(&cl, 0, sizeof cl);
    assert_int_equal(auth_cache_verify(c, other_key, KEYLEN, a, NOW + 1, &cl, &why), 0);
    assert_string_equal(cl.sub, "alice"); /* from the cache */
    assert_int_equal(auth_cache_verify(c, key, KEYLEN, forged, NOW, &cl, &why), -1);
    assert_string_equal(why, "bad_signature");
    assert_int_equal(auth_cache_verify(c, other_key, KEYLEN, a, NOW + 2, &cl, &why), 0);
    why = NULL; /* expired: verified again, and refused */
    assert_int_equal(auth_cache_verify(c, key, KEYLEN, a, NOW + 60, &cl, &why), -1);
    assert_string_equal(why, "expired");
    assert_int_equal(auth_cache_verify(c, key, KEYLEN, b, NOW, &cl, &why), 0); /* evicts a */
    assert_true(cl.admin);
    assert_int_equal(auth_cache_verify(c, other_key, KEYLEN, a, NOW + 1, &cl, &why), -1);
    assert_int_equal(auth_cache_verify(NULL, key, KEYLEN, b, NOW, &cl, &why), 0);
    assert_null(auth_cache_new(0));
    auth_cache_free(NULL);
    auth_cache_free(c);
    free(a);
    free(b);
    free(forged);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sign_verify),      cmocka_unit_test(test_independent_token),
        cmocka_unit_test(test_rfc7515_vector),   cmocka_unit_test(test_bad_signature),
        cmocka_unit_test(test_tampered_payload), cmocka_unit_test(test_alg),
        cmocka_unit_test(test_malformed),        cmocka_unit_test(test_claims),
        cmocka_unit_test(test_time_claims),      cmocka_unit_test(test_trailing_blanks),
        cmocka_unit_test(test_sign_rejects),     cmocka_unit_test(test_bearer),
        cmocka_unit_test(test_valid_sub),        cmocka_unit_test(test_cache),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
