/* linkauth: random link tokens stored as SHA-256, scrypt password hashes (OpenSSL 3's
 * EVP_KDF "SCRYPT"), and HMAC unlock tickets that need no storage. */
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "linkauth.h"

#define SCRYPT_LOG2N 15
#define SCRYPT_R 8
#define SCRYPT_P 1
#define SCRYPT_MAXMEM (256ULL << 20) /* bounds what a stored hash may ask for */
#define SALT_BYTES 16
#define HASH_BYTES 32
#define TICKET_RAW (16 + 8 + 32) /* link id, expiry, MAC */
#define TICKET_LABEL "pixplane link ticket v1"

static int b64url_char(char ch)
{
    return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
           ch == '-' || ch == '_';
}

int linkauth_token_new(char out[LINK_TOKEN_LEN + 1])
{
    unsigned char raw[LINK_TOKEN_BYTES];
    char *s;

    if (util_random(raw, sizeof raw) < 0 || !(s = util_b64url_encode(raw, sizeof raw)))
        return -1;
    util_strlcpy(out, LINK_TOKEN_LEN + 1, s);
    free(s);
    return strlen(out) == LINK_TOKEN_LEN ? 0 : -1;
}

int linkauth_token_hash(const char *token, char hex[65])
{
    unsigned char md[32];
    unsigned int n = 0;

    if (strlen(token) != LINK_TOKEN_LEN)
        return -1;
    for (const char *p = token; *p; p++)
        if (!b64url_char(*p))
            return -1;
    if (!EVP_Digest(token, LINK_TOKEN_LEN, md, &n, EVP_sha256(), NULL) || n != sizeof md)
        return -1;
    util_hex(md, sizeof md, hex);
    return 0;
}

/* scrypt(pw, salt) with N = 2^log2n into out (HASH_BYTES). 0 or -1. */
static int scrypt(const char *pw, size_t len, const unsigned char *salt, unsigned log2n, unsigned r,
                  unsigned p, unsigned char *out)
{
    uint64_t n = (uint64_t)1 << log2n, maxmem = SCRYPT_MAXMEM;
    uint32_t r32 = r, p32 = p;
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_PASSWORD, (void *)pw, len),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)salt, SALT_BYTES),
        OSSL_PARAM_construct_uint64(OSSL_KDF_PARAM_SCRYPT_N, &n),
        OSSL_PARAM_construct_uint32(OSSL_KDF_PARAM_SCRYPT_R, &r32),
        OSSL_PARAM_construct_uint32(OSSL_KDF_PARAM_SCRYPT_P, &p32),
        OSSL_PARAM_construct_uint64(OSSL_KDF_PARAM_SCRYPT_MAXMEM, &maxmem),
        OSSL_PARAM_construct_end()};
    EVP_KDF *kdf = EVP_KDF_fetch(NULL, "SCRYPT", NULL);
    EVP_KDF_CTX *ctx = kdf ? EVP_KDF_CTX_new(kdf) : NULL;
    int rc = ctx && EVP_KDF_derive(ctx, out, HASH_BYTES, params) == 1 ? 0 : -1;

    EVP_KDF_CTX_free(ctx);
    EVP_KDF_free(kdf);
    return rc;
}

int linkauth_password_hash(const char *pw, size_t len, char out[LINK_PWHASH_MAX], char *err)
{
    unsigned char salt[SALT_BYTES], hash[HASH_BYTES];
    char *s = NULL, *h = NULL;
    int rc = -1;

    if (util_random(salt, sizeof salt) < 0) {
        err_set(err, "the RNG failed");
        goto fail;
    }
    if (scrypt(pw, len, salt, SCRYPT_LOG2N, SCRYPT_R, SCRYPT_P, hash) < 0) {
        err_set(err, "scrypt failed");
        goto fail;
    }
    if (!(s = util_b64url_encode(salt, sizeof salt)) ||
        !(h = util_b64url_encode(hash, sizeof hash))) {
        err_set(err, "out of memory");
        goto fail;
    }
    snprintf(out, LINK_PWHASH_MAX, "scrypt$%d$%d$%d$%s$%s", SCRYPT_LOG2N, SCRYPT_R, SCRYPT_P, s, h);
    rc = 0;
fail:
    free(s);
    free(h);
    OPENSSL_cleanse(hash, sizeof hash);
    return rc;
}

/* b64url text of exactly n bytes into out. 0 or -1. */
static int decode_exact(const char *text, unsigned char *out, size_t n)
{
    unsigned char *raw = NULL;
    size_t got = 0;
    int rc = util_b64url_decode(text, strlen(text), &raw, &got) == 0 && got == n ? 0 : -1;

    if (rc == 0)
        memcpy(out, raw, n);
    free(raw);
    return rc;
}

int linkauth_password_verify(const char *pw, size_t len, const char *stored)
{
    unsigned log2n, r, p;
    char salt_b64[32], hash_b64[48];
    unsigned char salt[SALT_BYTES], want[HASH_BYTES], got[HASH_BYTES];
    int end = 0, rc;

    if (sscanf(stored, "scrypt$%2u$%2u$%1u$%31[A-Za-z0-9_-]$%47[A-Za-z0-9_-]%n", &log2n, &r, &p,
               salt_b64, hash_b64, &end) != 5 ||
        stored[end] != '\0')
        return -1;
    if (log2n < 10 || log2n > 20 || r < 1 || r > 16 || p < 1 || p > 4 ||
        decode_exact(salt_b64, salt, sizeof salt) < 0 ||
        decode_exact(hash_b64, want, sizeof want) < 0)
        return -1;
    if (scrypt(pw, len, salt, log2n, r, p, got) < 0)
        return -1;
    rc = CRYPTO_memcmp(got, want, sizeof got) == 0;
    OPENSSL_cleanse(got, sizeof got);
    return rc;
}

/* The ticket's MAC over its first 24 bytes, with a key derived from the server secret. */
static int ticket_mac(const unsigned char *secret, size_t secretlen, const unsigned char *raw,
                      unsigned char mac[32])
{
    unsigned char key[32];
    unsigned int n = 0, m = 0;
    int ok = HMAC(EVP_sha256(), secret, (int)secretlen, (const unsigned char *)TICKET_LABEL,
                  sizeof TICKET_LABEL - 1, key, &n) &&
             HMAC(EVP_sha256(), key, (int)n, raw, 24, mac, &m) && m == 32;

    OPENSSL_cleanse(key, sizeof key);
    return ok ? 0 : -1;
}

/* The 16 bytes of a canonical UUID. 0 or -1. */
static int uuid_bytes(const char *id, unsigned char out[16])
{
    char hex[33];
    size_t n = 0;

    if (!util_is_uuid(id))
        return -1;
    for (const char *p = id; *p; p++)
        if (*p != '-')
            hex[n++] = *p;
    hex[n] = '\0';
    return util_unhex(hex, out, 16);
}

int linkauth_ticket_make(const unsigned char *secret, size_t secretlen, const char *link_id,
                         time_t exp, char out[LINK_TICKET_MAX])
{
    unsigned char raw[TICKET_RAW];
    uint64_t e = (uint64_t)exp;
    char *s;

    if (uuid_bytes(link_id, raw) < 0)
        return -1;
    for (int i = 0; i < 8; i++)
        raw[16 + i] = (unsigned char)(e >> (56 - 8 * i));
    if (ticket_mac(secret, secretlen, raw, raw + 24) < 0 ||
        !(s = util_b64url_encode(raw, sizeof raw)))
        return -1;
    util_strlcpy(out, LINK_TICKET_MAX, s);
    free(s);
    return 0;
}

int linkauth_ticket_valid(const unsigned char *secret, size_t secretlen, const char *ticket,
                          const char *link_id, time_t now)
{
    unsigned char raw[TICKET_RAW], id[16], mac[32];
    uint64_t e = 0;

    if (strlen(ticket) >= LINK_TICKET_MAX || decode_exact(ticket, raw, sizeof raw) < 0 ||
        uuid_bytes(link_id, id) < 0 || ticket_mac(secret, secretlen, raw, mac) < 0)
        return 0;
    if (CRYPTO_memcmp(mac, raw + 24, sizeof mac) != 0 || memcmp(raw, id, 16) != 0)
        return 0;
    for (int i = 0; i < 8; i++)
        e = e << 8 | raw[16 + i];
    return e > (uint64_t)now;
}
