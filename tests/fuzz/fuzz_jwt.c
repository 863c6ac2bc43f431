/* fuzz_jwt: JWT HS256 verification (common/auth.c) on raw tokens and bearer headers, and on
 * tokens this harness signs around fuzzed headers and claims, so the claims checks run too. */
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "auth.h"
#include "json.h"

/* Input: byte 0 picks the mode, the rest is its material.
 *   0 raw token (also as an Authorization header value)
 *   1 fuzzed claims, standard header, signed with the key
 *   2 fuzzed header and claims (split at the first '\n'), signed with the key
 *   3 fuzzed token verified with a key that did not sign it
 *   4 auth_sign round trip: sub, admin flag and ttl from the input */
enum { M_RAW, M_CLAIMS, M_BOTH, M_OTHER_KEY, M_SIGN, M_COUNT };

#define NOW ((time_t)1767225600) /* 2026-01-01T00:00:00Z */
#define STD_HEADER "{\"alg\":\"HS256\",\"typ\":\"JWT\"}"

static const unsigned char key[] = "pixplane-fuzz-jwt-secret-0123456789abcdef";
static const unsigned char other_key[] = "another-fuzz-jwt-secret-0123456789abcdefg";
#define KEYLEN (sizeof key - 1)

/* b64url(header) "." b64url(payload) "." b64url(HMAC-SHA256(key, first two)), malloc'd. */
static char *sign_token(const uint8_t *hdr, size_t hl, const uint8_t *pl, size_t pll)
{
    char *h = util_b64url_encode(hdr, hl), *p = util_b64url_encode(pl, pll), *in, *s, *tok;
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int ml = 0;

    if (!h || !p || asprintf(&in, "%s.%s", h, p) < 0)
        abort();
    if (!HMAC(EVP_sha256(), key, (int)KEYLEN, (const unsigned char *)in, strlen(in), mac, &ml))
        abort();
    s = util_b64url_encode(mac, ml);
    if (!s || asprintf(&tok, "%s.%s", in, s) < 0)
        abort();
    free(h), free(p), free(in), free(s);
    return tok;
}

/* What every verification must leave: claims only on success, a reason on failure. */
static void check_result(int rc, const struct auth_claims *c, const char *err)
{
    CHECK(rc == 0 || rc == -1, "auth_verify returns 0 or -1");
    CHECK(err != NULL, "a reason is always set");
    if (rc == 0) {
        CHECK(auth_valid_sub(c->sub), "an accepted token has a valid sub");
        CHECK(c->exp > NOW, "an accepted token has not expired");
        CHECK(c->admin == 0 || c->admin == 1, "adm is a boolean");
    } else {
        CHECK(c->sub[0] == '\0' && c->exp == 0 && c->admin == 0, "no claims on failure");
    }
}

static int verify(const unsigned char *k, size_t kl, const char *tok, struct auth_claims *c,
                  const char **err)
{
    int rc;

    *err = NULL;
    rc = auth_verify(k, kl, tok, NOW, c, err);
    check_result(rc, c, *err);
    return rc;
}

static void raw(const uint8_t *p, size_t n)
{
    char *tok = cstr(p, n);
    const char *err, *b;
    struct auth_claims c;
    int rc = verify(key, KEYLEN, tok, &c, &err);

    /* A token that verifies still verifies after "Bearer " and with trailing blanks. */
    b = auth_bearer(tok);
    if (b) {
        CHECK(b >= tok && b < tok + strlen(tok) && *b != ' ' && *b != '\t', "bearer points in");
        (void)verify(key, KEYLEN, b, &c, &err);
    }
    if (rc == 0 && n < 4096) {
        char hdr[4200];
        snprintf(hdr, sizeof hdr, "Bearer  %s \t", tok);
        b = auth_bearer(hdr);
        CHECK(b != NULL && verify(key, KEYLEN, b, &c, &err) == 0, "bearer form verifies too");
    }
    free(tok);
}

static void signed_token(const uint8_t *hdr, size_t hl, const uint8_t *pl, size_t pll, int std)
{
    char *tok = sign_token(hdr, hl, pl, pll);
    const char *err;
    struct auth_claims c;
    int rc = verify(key, KEYLEN, tok, &c, &err);

    CHECK(rc == 0 || strcmp(err, "bad_signature") != 0, "a token we signed is never bad_signature");
    if (std)
        CHECK(rc == 0 || strcmp(err, "unsupported_alg") != 0, "HS256 header is supported");
    if (rc == 0) {
        const char *jerr, *sub = NULL;
        cJSON *o = json_parse_object((const char *)pl, pll, &jerr);
        CHECK(o != NULL, "accepted claims are a JSON object");
        CHECK(json_get_str(o, "sub", &sub, &jerr) == 1 && strcmp(sub, c.sub) == 0, "sub kept");
        cJSON_Delete(o);
        /* the same token with another key, or one byte of the signature changed, is refused */
        CHECK(verify(other_key, sizeof other_key - 1, tok, &c, &err) < 0, "other key refused");
        size_t n = strlen(tok);
        tok[n - 2] = tok[n - 2] == 'A' ? 'B' : 'A';
        CHECK(verify(key, KEYLEN, tok, &c, &err) < 0 && !strcmp(err, "bad_signature"),
              "altered signature refused");
    }
    free(tok);
}

static void roundtrip(const uint8_t *p, size_t n)
{
    const char *err;
    struct auth_claims c;
    long ttl;
    int admin;
    char *sub, *tok;

    if (n < 2)
        return;
    admin = p[0] & 1;
    ttl = (long)(p[1] % 200) * 97 + 1;
    sub = cstr(p + 2, n - 2);
    tok = auth_sign(key, KEYLEN, sub, admin, NOW, ttl);
    CHECK((tok != NULL) == (auth_valid_sub(sub) != 0), "signs exactly the valid subs");
    if (tok) {
        CHECK(verify(key, KEYLEN, tok, &c, &err) == 0, "a fresh token verifies");
        CHECK(!strcmp(c.sub, sub) && c.admin == admin && c.exp == NOW + ttl, "claims kept");
        CHECK(auth_verify(key, KEYLEN, tok, NOW + ttl, &c, &err) < 0 && !strcmp(err, "expired"),
              "expires at exp");
        CHECK(auth_verify(key, KEYLEN, tok, NOW - 31, &c, &err) < 0 &&
                  !strcmp(err, "not_yet_valid"),
              "iat beyond the skew is not yet valid");
    }
    free(tok);
    free(sub);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *p = data + 1, *nl;
    size_t n = size ? size - 1 : 0;
    char *tok;
    const char *err;
    struct auth_claims c;

    if (size == 0)
        return 0;
    switch (data[0] % M_COUNT) {
    case M_RAW:
        raw(p, n);
        break;
    case M_CLAIMS:
        signed_token((const uint8_t *)STD_HEADER, sizeof STD_HEADER - 1, p, n, 1);
        break;
    case M_BOTH:
        nl = memchr(p, '\n', n);
        if (nl)
            signed_token(p, (size_t)(nl - p), nl + 1, n - (size_t)(nl - p) - 1, 0);
        break;
    case M_OTHER_KEY:
        tok = cstr(p, n);
        (void)verify(other_key, sizeof other_key - 1, tok, &c, &err);
        free(tok);
        break;
    case M_SIGN:
        roundtrip(p, n);
        break;
    }
    return 0;
}
