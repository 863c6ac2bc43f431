/* auth: JWT HS256 bearer tokens (RFC 7519) signed and checked with OpenSSL HMAC-SHA256.
 * Only alg HS256 is accepted; exp is required and strict, nbf/iat tolerate clock skew. */
#include <limits.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "auth.h"
#include "json.h"

#define AUTH_TOKEN_MAX 8192
/* exp has no leeway: a token is valid while now < exp. A fresh token's nbf/iat may lie up
 * to this many seconds in the future, for clock skew between the instances of a service. */
#define AUTH_SKEW 30
#define AUTH_SIG_LEN 43 /* base64url of 32 bytes, no padding */
#define AUTH_MAX_TIME 9007199254740991LL

static const char auth_header[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";

int auth_valid_sub(const char *sub)
{
    size_t n;

    if (sub == NULL)
        return 0;
    for (n = 0; sub[n] != '\0'; n++) {
        char c = sub[n];
        int ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                 c == '.' || c == '_' || c == '@' || c == '-';
        if (!ok || n >= AUTH_SUB_MAX)
            return 0;
    }
    return n > 0;
}

const char *auth_bearer(const char *header)
{
    const char *p = header;

    if (p == NULL)
        return NULL;
    while (*p == ' ' || *p == '\t')
        p++;
    if (strncasecmp(p, "Bearer", 6) != 0 || (p[6] != ' ' && p[6] != '\t'))
        return NULL;
    p += 6;
    while (*p == ' ' || *p == '\t')
        p++;
    /* Trailing blanks are left in place (header is const); auth_verify ignores them. */
    return *p != '\0' ? p : NULL;
}

/* base64url of HMAC-SHA256(key, data); malloc'd or NULL. */
static char *hmac_b64(const unsigned char *key, size_t keylen, const char *data, size_t n)
{
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int maclen = 0;

    if (key == NULL || keylen == 0 || keylen > INT_MAX)
        return NULL;
    if (HMAC(EVP_sha256(), key, (int)keylen, (const unsigned char *)data, n, mac, &maclen) == NULL)
        return NULL;
    return util_b64url_encode(mac, maclen);
}

static int is_b64url(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_'))
            return 0;
    }
    return 1;
}

/* A base64url segment holding a JSON object, or NULL. */
static cJSON *decode_object(const char *seg, size_t n)
{
    unsigned char *raw = NULL;
    size_t rawlen = 0;
    const char *jerr;
    cJSON *o;

    if (util_b64url_decode(seg, n, &raw, &rawlen) < 0)
        return NULL;
    o = json_parse_object((const char *)raw, rawlen, &jerr);
    free(raw);
    return o;
}

static int check_header(const char *seg, size_t n, const char **err)
{
    cJSON *h = decode_object(seg, n);
    const char *alg = NULL, *typ = NULL, *jerr;
    int rc = -1, r;

    *err = "malformed";
    if (h == NULL)
        return -1;
    if (json_get_str(h, "alg", &alg, &jerr) != 1 || strcmp(alg, "HS256") != 0) {
        *err = "unsupported_alg";
        goto fail;
    }
    r = json_get_str(h, "typ", &typ, &jerr);
    if (r < 0 || (r == 1 && strcasecmp(typ, "JWT") != 0))
        goto fail;
    if (cJSON_GetObjectItemCaseSensitive(h, "crit") != NULL)
        goto fail; /* none understood */
    rc = 0;
fail:
    cJSON_Delete(h);
    return rc;
}

/* Compares the signature segment with our own, in constant time. */
static int check_sig(const unsigned char *key, size_t keylen, const char *input, size_t n,
                     const char *sig, size_t siglen)
{
    char *mine;
    int ok;

    if (siglen != AUTH_SIG_LEN)
        return -1;
    mine = hmac_b64(key, keylen, input, n);
    if (mine == NULL)
        return -1;
    ok = strlen(mine) == AUTH_SIG_LEN && util_streq_ct(mine, sig, AUTH_SIG_LEN);
    free(mine);
    return ok ? 0 : -1;
}

/* Optional integral time claim: 0 absent or fine, -1 (malformed) or -2 (in the future). */
static int check_time(const cJSON *p, const char *key, time_t now)
{
    long long t;
    const char *jerr;
    int r = json_get_i64(p, key, &t, &jerr);

    if (r < 0)
        return -1;
    if (r == 1 && t > (long long)now + AUTH_SKEW)
        return -2;
    return 0;
}

static int check_claims(const cJSON *p, time_t now, struct auth_claims *c, const char **err)
{
    const char *sub = NULL, *jerr;
    long long exp = 0;
    int r, nbf, iat;

    if (json_get_str(p, "sub", &sub, &jerr) != 1 || !auth_valid_sub(sub)) {
        *err = "missing_sub";
        return -1;
    }
    r = json_get_i64(p, "exp", &exp, &jerr);
    *err = r == 0 ? "missing_exp" : "malformed";
    if (r != 1)
        return -1;
    nbf = check_time(p, "nbf", now);
    iat = check_time(p, "iat", now);
    if (nbf == -1 || iat == -1 || json_get_bool(p, "adm", &c->admin, &jerr) < 0)
        return -1;
    *err = "not_yet_valid";
    if (nbf == -2 || iat == -2)
        return -1;
    *err = "expired";
    if (exp <= (long long)now)
        return -1;
    snprintf(c->sub, sizeof c->sub, "%s", sub);
    c->exp = (time_t)exp;
    return 0;
}

/* Token length without trailing blanks (see auth_bearer); 0 if too long. */
static size_t token_len(const char *t)
{
    size_t n = strnlen(t, AUTH_TOKEN_MAX + 1);

    if (n > AUTH_TOKEN_MAX)
        return 0;
    while (n > 0 && (t[n - 1] == ' ' || t[n - 1] == '\t'))
        n--;
    return n;
}

/* Checks run in order: shape, header (alg), signature, and only then the payload. */
int auth_verify(const unsigned char *key, size_t keylen, const char *token, time_t now,
                struct auth_claims *out, const char **err)
{
    const char *d1, *d2;
    struct auth_claims c = {0};
    cJSON *payload = NULL;
    size_t n, hl, pl, sl; /* token, header, payload and signature lengths */

    memset(out, 0, sizeof *out);
    *err = "malformed";
    n = token ? token_len(token) : 0;
    if (n == 0 || (d1 = memchr(token, '.', n)) == NULL)
        return -1;
    hl = (size_t)(d1 - token);
    if ((d2 = memchr(d1 + 1, '.', n - hl - 1)) == NULL)
        return -1;
    pl = (size_t)(d2 - d1 - 1);
    sl = n - hl - pl - 2;
    if (hl == 0 || pl == 0 || memchr(d2 + 1, '.', sl) != NULL)
        return -1;
    if (!is_b64url(token, hl) || !is_b64url(d1 + 1, pl) || !is_b64url(d2 + 1, sl))
        return -1;
    if (check_header(token, hl, err) < 0)
        return -1;
    if (check_sig(key, keylen, token, hl + 1 + pl, d2 + 1, sl) < 0) {
        *err = "bad_signature";
        return -1;
    }
    *err = "malformed";
    payload = decode_object(d1 + 1, pl);
    if (payload == NULL || check_claims(payload, now, &c, err) < 0)
        goto fail;
    *out = c;
    cJSON_Delete(payload);
    return 0;
fail:
    cJSON_Delete(payload);
    return -1;
}

char *auth_sign(const unsigned char *key, size_t keylen, const char *sub, int admin, time_t now,
                long ttl)
{
    cJSON *p = NULL;
    char *pj = NULL, *h64 = NULL, *p64 = NULL, *sig = NULL, *tok = NULL;
    buf b = {0};

    if (!auth_valid_sub(sub) || ttl <= 0 || (long long)now > AUTH_MAX_TIME - ttl)
        return NULL;
    p = cJSON_CreateObject();
    if (p == NULL || !cJSON_AddStringToObject(p, "sub", sub) ||
        !cJSON_AddNumberToObject(p, "iat", (double)now) ||
        !cJSON_AddNumberToObject(p, "exp", (double)now + (double)ttl) ||
        (admin && !cJSON_AddTrueToObject(p, "adm")))
        goto fail;
    if ((pj = cJSON_PrintUnformatted(p)) == NULL)
        goto fail;
    h64 = util_b64url_encode((const unsigned char *)auth_header, sizeof auth_header - 1);
    p64 = util_b64url_encode((const unsigned char *)pj, strlen(pj));
    if (h64 == NULL || p64 == NULL || buf_printf(&b, "%s.%s", h64, p64) < 0)
        goto fail;
    if ((sig = hmac_b64(key, keylen, b.data, b.len)) == NULL)
        goto fail;
    if (buf_printf(&b, ".%s", sig) < 0)
        goto fail;
    tok = b.data;
    b.data = NULL;
fail:
    buf_free(&b);
    free(sig);
    free(p64);
    free(h64);
    free(pj);
    cJSON_Delete(p);
    return tok;
}

/* ---- verified-token cache ---- */

#define AUTH_CACHE_TOKEN_MAX 2048 /* longer tokens are verified every time */

struct auth_cache_ent {
    uint64_t hash;
    size_t len;
    char *token;
    struct auth_claims claims;
};

struct auth_cache {
    size_t n;
    struct auth_cache_ent *e;
};

auth_cache *auth_cache_new(size_t slots)
{
    auth_cache *c = calloc(1, sizeof *c);

    if (!c || !slots || !(c->e = calloc(slots, sizeof *c->e))) {
        free(c);
        return NULL;
    }
    c->n = slots;
    return c;
}

void auth_cache_free(auth_cache *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->n; i++)
        free(c->e[i].token);
    free(c->e);
    free(c);
}

static uint64_t auth_hash(const char *s, size_t n)
{
    uint64_t h = 14695981039346656037ull; /* FNV-1a */

    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return h;
}

int auth_cache_verify(auth_cache *c, const unsigned char *key, size_t keylen, const char *token,
                      time_t now, struct auth_claims *out, const char **err)
{
    size_t len = strlen(token);
    uint64_t h = auth_hash(token, len);
    struct auth_cache_ent *e = c ? &c->e[h % c->n] : NULL;
    char *copy;

    if (e && e->token && e->hash == h && e->len == len && now < e->claims.exp &&
        util_streq_ct(e->token, token, len)) {
        *out = e->claims;
        return 0;
    }
    if (auth_verify(key, keylen, token, now, out, err) < 0)
        return -1;
    if (e && len <= AUTH_CACHE_TOKEN_MAX && (copy = malloc(len + 1))) {
        memcpy(copy, token, len + 1);
        free(e->token);
        *e = (struct auth_cache_ent){.hash = h, .len = len, .token = copy, .claims = *out};
    }
    return 0;
}
