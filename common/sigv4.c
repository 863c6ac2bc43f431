/* sigv4: AWS Signature Version 4 on OpenSSL 3: presigned query URLs and Authorization headers.
 * The signing key is derived once per UTC day and cached, so a signature costs one SHA-256. */
#include "sigv4.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <ctype.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define SIGV4_ALGO "AWS4-HMAC-SHA256"
#define SIGV4_UNSIGNED "UNSIGNED-PAYLOAD"
#define SIGV4_MAX_EXPIRES 604800L
#define SIGV4_MAX_ENTS 40  /* query parameters or headers in one signature */
#define SIGV4_BASE_MAX 320 /* "https://" + host + ":port" */
#define SIGV4_SCOPE_MAX 160

struct sigv4_signer {
    char *access_key;
    char *secret; /* "AWS4" + secret key */
    char *region;
    char *service;
    char key_day[9]; /* yyyymmdd of the cached signing key, "" if none */
    unsigned char key[32];
    EVP_MAC *mac;
    EVP_MAC_CTX *hmac;
    EVP_MD *sha256;
    EVP_MD_CTX *md;
    buf canon;   /* canonical request, reused */
    buf scratch; /* encoded names and values, reused */
};

/* One encoded name/value pair: offsets into a scratch buffer. */
struct sigv4_ent {
    size_t k, kl, v, vl;
};

/* What a signature is computed over, once the canonical request is in s->canon. */
struct sigv4_time {
    char day[9];
    char amz_date[17];
};

static const char sigv4_hexdig[] = "0123456789ABCDEF";

static int sigv4_unreserved(unsigned char ch)
{
    return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
           ch == '-' || ch == '_' || ch == '.' || ch == '~';
}

int sigv4_uri_encode(buf *out, const char *s, size_t len, int keep_slash)
{
    if (len > (SIZE_MAX - 1) / 3 || buf_reserve(out, len * 3 + 1) < 0)
        return -1;
    char *p = out->data + out->len;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (sigv4_unreserved(ch) || (ch == '/' && keep_slash)) {
            *p++ = (char)ch;
        } else {
            *p++ = '%';
            *p++ = sigv4_hexdig[ch >> 4];
            *p++ = sigv4_hexdig[ch & 15];
        }
    }
    *p = '\0';
    out->len = (size_t)(p - out->data);
    return 0;
}

static char *sigv4_strdup_prefixed(const char *prefix, const char *s)
{
    size_t a = strlen(prefix), b = strlen(s);
    char *p = malloc(a + b + 1);
    if (!p)
        return NULL;
    memcpy(p, prefix, a);
    memcpy(p + a, s, b + 1);
    return p;
}

static int sigv4_crypto_init(sigv4_signer *s)
{
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0),
        OSSL_PARAM_construct_end(),
    };
    s->mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    s->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
    if (!s->mac || !s->sha256)
        return -1;
    s->hmac = EVP_MAC_CTX_new(s->mac);
    s->md = EVP_MD_CTX_new();
    if (!s->hmac || !s->md)
        return -1;
    return EVP_MAC_CTX_set_params(s->hmac, params) ? 0 : -1;
}

sigv4_signer *sigv4_signer_new(const char *access_key, const char *secret_key, const char *region,
                               const char *service)
{
    if (!access_key || !secret_key || !region || !service)
        return NULL;
    /* The credential scope must fit in a fixed buffer; real values are far shorter. */
    if (strlen(access_key) + strlen(region) + strlen(service) > SIGV4_SCOPE_MAX - 32)
        return NULL;
    sigv4_signer *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->access_key = strdup(access_key);
    s->secret = sigv4_strdup_prefixed("AWS4", secret_key);
    s->region = strdup(region);
    s->service = strdup(service);
    if (!s->access_key || !s->secret || !s->region || !s->service)
        goto fail;
    if (sigv4_crypto_init(s) < 0)
        goto fail;
    return s;
fail:
    sigv4_signer_free(s);
    return NULL;
}

void sigv4_signer_free(sigv4_signer *s)
{
    if (!s)
        return;
    if (s->secret)
        OPENSSL_cleanse(s->secret, strlen(s->secret));
    OPENSSL_cleanse(s->key, sizeof(s->key));
    free(s->access_key);
    free(s->secret);
    free(s->region);
    free(s->service);
    EVP_MAC_CTX_free(s->hmac);
    EVP_MAC_free(s->mac);
    EVP_MD_CTX_free(s->md);
    EVP_MD_free(s->sha256);
    buf_free(&s->canon);
    buf_free(&s->scratch);
    free(s);
}

static int sigv4_hmac(sigv4_signer *s, const unsigned char *key, size_t klen, const char *msg,
                      size_t mlen, unsigned char out[32])
{
    size_t n = 0;
    if (!EVP_MAC_init(s->hmac, key, klen, NULL) ||
        !EVP_MAC_update(s->hmac, (const unsigned char *)msg, mlen) ||
        !EVP_MAC_final(s->hmac, out, &n, 32))
        return -1;
    return n == 32 ? 0 : -1;
}

static int sigv4_sha256(sigv4_signer *s, const void *data, size_t len, unsigned char out[32])
{
    unsigned int n = 0;
    if (!EVP_DigestInit_ex(s->md, s->sha256, NULL) || !EVP_DigestUpdate(s->md, data, len) ||
        !EVP_DigestFinal_ex(s->md, out, &n))
        return -1;
    return n == 32 ? 0 : -1;
}

int sigv4_sha256_hex(const void *data, size_t len, char out[65])
{
    unsigned char md[32];
    unsigned int n = 0;
    if (!EVP_Digest(data, len, md, &n, EVP_sha256(), NULL) || n != 32)
        return -1;
    util_hex(md, sizeof(md), out);
    return 0;
}

/* kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, day), region), service), "aws4_request"),
 * recomputed only when the day changes. */
static int sigv4_signing_key(sigv4_signer *s, const char day[9])
{
    unsigned char k[32];
    if (strcmp(s->key_day, day) == 0)
        return 0;
    s->key_day[0] = '\0';
    if (sigv4_hmac(s, (const unsigned char *)s->secret, strlen(s->secret), day, 8, k) < 0 ||
        sigv4_hmac(s, k, 32, s->region, strlen(s->region), k) < 0 ||
        sigv4_hmac(s, k, 32, s->service, strlen(s->service), k) < 0 ||
        sigv4_hmac(s, k, 32, "aws4_request", 12, s->key) < 0)
        return -1;
    OPENSSL_cleanse(k, sizeof(k));
    memcpy(s->key_day, day, 9);
    return 0;
}

/* Appends the NULL-terminated strings to b (printf costs more than the hashing here). */
static __attribute__((sentinel)) int sigv4_cat(buf *b, ...)
{
    va_list ap;
    const char *p;
    int rc = 0;
    va_start(ap, b);
    while (rc == 0 && (p = va_arg(ap, const char *)) != NULL)
        rc = buf_append(b, p, strlen(p));
    va_end(ap);
    return rc;
}

/* The same into dst of cap bytes: the length, or -1 if it does not fit. */
static __attribute__((sentinel)) int sigv4_join(char *dst, size_t cap, ...)
{
    va_list ap;
    const char *p;
    size_t n = 0, l;
    va_start(ap, cap);
    while ((p = va_arg(ap, const char *)) != NULL && n < cap) {
        l = strlen(p);
        if (l >= cap - n) {
            n = cap;
        } else {
            memcpy(dst + n, p, l);
            n += l;
        }
    }
    va_end(ap);
    if (n >= cap)
        return -1;
    dst[n] = '\0';
    return (int)n;
}

static void sigv4_digits(char *p, unsigned v, int n)
{
    while (n-- > 0) {
        p[n] = (char)('0' + v % 10);
        v /= 10;
    }
}

/* Decimal v into out (11 bytes). */
static void sigv4_utoa(char out[11], unsigned v)
{
    int n = 1;
    for (unsigned x = v; x >= 10; x /= 10)
        n++;
    sigv4_digits(out, v, n);
    out[n] = '\0';
}

/* amz_date "YYYYMMDDTHHMMSSZ" and day "YYYYMMDD" of now, without gmtime's locking: the
 * civil-from-days conversion (proleptic Gregorian, days since 1970-01-01). */
static int sigv4_time_fmt(time_t now, struct sigv4_time *t, char *err)
{
    if (now < 0 || (long long)now > 253402300799LL) { /* 9999-12-31T23:59:59Z */
        err_set(err, "sigv4: time %lld out of range", (long long)now);
        return -1;
    }
    unsigned secs = (unsigned)(now % 86400), z = (unsigned)(now / 86400) + 719468;
    unsigned era = z / 146097, doe = z - era * 146097;
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100), mp = (5 * doy + 2) / 153;
    unsigned d = doy - (153 * mp + 2) / 5 + 1, m = mp < 10 ? mp + 3 : mp - 9;
    unsigned y = yoe + era * 400 + (m <= 2);
    sigv4_digits(t->amz_date, y, 4);
    sigv4_digits(t->amz_date + 4, m, 2);
    sigv4_digits(t->amz_date + 6, d, 2);
    t->amz_date[8] = 'T';
    sigv4_digits(t->amz_date + 9, secs / 3600, 2);
    sigv4_digits(t->amz_date + 11, secs / 60 % 60, 2);
    sigv4_digits(t->amz_date + 13, secs % 60, 2);
    memcpy(t->amz_date + 15, "Z", 2);
    memcpy(t->day, t->amz_date, 8);
    t->day[8] = '\0';
    return 0;
}

/* Normalises base into out as "scheme://host[:port]": scheme and host lower-cased, the
 * scheme's default port and one trailing '/' dropped. *host points at the authority. */
static int sigv4_base_norm(const char *base, char out[SIGV4_BASE_MAX], const char **host, char *err)
{
    int tls = base && strncasecmp(base, "https://", 8) == 0;
    size_t skip = tls ? 8 : 7, n;
    const char *defport = tls ? ":443" : ":80";
    if (!tls && !(base && strncasecmp(base, "http://", 7) == 0)) {
        err_set(err, "sigv4: base URL must start with http:// or https://");
        return -1;
    }
    n = strlen(base);
    if (n > skip && base[n - 1] == '/')
        n--;
    if (n <= skip || n >= SIGV4_BASE_MAX || strcspn(base + skip, "/?#@ \t\r\n") < n - skip) {
        err_set(err, "sigv4: base URL must be scheme://host[:port]");
        return -1;
    }
    for (size_t i = 0; i < n; i++)
        out[i] = (char)tolower((unsigned char)base[i]);
    size_t dl = strlen(defport);
    if (n - skip > dl && memcmp(out + n - dl, defport, dl) == 0)
        n -= dl;
    out[n] = '\0';
    *host = out + skip;
    return 0;
}

int sigv4_normalize_base(buf *out, const char *base, char *err)
{
    char nbase[SIGV4_BASE_MAX];
    const char *host;
    if (sigv4_base_norm(base, nbase, &host, err) < 0)
        return -1;
    if (buf_puts(out, nbase) < 0) {
        err_set(err, "sigv4: out of memory");
        return -1;
    }
    return 0;
}

/* Appends the canonical URI of a raw path: each segment URI-encoded once, "/" if empty. */
static int sigv4_canon_uri(buf *out, const char *path, char *err)
{
    if (!path || !*path)
        return buf_puts(out, "/");
    if (path[0] != '/') {
        err_set(err, "sigv4: path must start with '/'");
        return -1;
    }
    return sigv4_uri_encode(out, path, strlen(path), 1);
}

static int sigv4_ent_cmp(const buf *sb, const struct sigv4_ent *a, const struct sigv4_ent *b)
{
    size_t n = a->kl < b->kl ? a->kl : b->kl;
    int c = memcmp(sb->data + a->k, sb->data + b->k, n);
    if (c || a->kl != b->kl)
        return c ? c : (a->kl < b->kl ? -1 : 1);
    n = a->vl < b->vl ? a->vl : b->vl;
    c = memcmp(sb->data + a->v, sb->data + b->v, n);
    if (c || a->vl != b->vl)
        return c ? c : (a->vl < b->vl ? -1 : 1);
    return 0;
}

/* Insertion sort: a signature has a handful of entries. */
static void sigv4_ent_sort(const buf *sb, struct sigv4_ent *e, size_t n)
{
    for (size_t i = 1; i < n; i++) {
        struct sigv4_ent x = e[i];
        size_t j = i;
        for (; j > 0 && sigv4_ent_cmp(sb, &e[j - 1], &x) > 0; j--)
            e[j] = e[j - 1];
        e[j] = x;
    }
}

/* Encodes the query pairs into sb and records them in e[*n...]. */
static int sigv4_query_add(buf *sb, struct sigv4_ent *e, size_t *n, const struct sigv4_kv *q,
                           size_t nq, char *err)
{
    for (size_t i = 0; i < nq; i++) {
        const char *k = q[i].key ? q[i].key : "", *v = q[i].value ? q[i].value : "";
        struct sigv4_ent *x = &e[*n];
        if (*n == SIGV4_MAX_ENTS || !*k || strcasecmp(k, "X-Amz-Signature") == 0) {
            err_set(err, "sigv4: too many, empty or reserved query parameters");
            return -1;
        }
        x->k = sb->len;
        if (sigv4_uri_encode(sb, k, strlen(k), 0) < 0)
            goto fail;
        x->kl = sb->len - x->k;
        x->v = sb->len;
        if (sigv4_uri_encode(sb, v, strlen(v), 0) < 0)
            goto fail;
        x->vl = sb->len - x->v;
        (*n)++;
    }
    return 0;
fail:
    err_set(err, "sigv4: out of memory");
    return -1;
}

/* Appends "k=v&k=v" in canonical (sorted) order. */
static int sigv4_query_write(buf *out, const buf *sb, struct sigv4_ent *e, size_t n)
{
    sigv4_ent_sort(sb, e, n);
    for (size_t i = 0; i < n; i++) {
        if ((i && buf_append(out, "&", 1) < 0) || buf_append(out, sb->data + e[i].k, e[i].kl) < 0 ||
            buf_append(out, "=", 1) < 0 || buf_append(out, sb->data + e[i].v, e[i].vl) < 0)
            return -1;
    }
    return 0;
}

int sigv4_canonical_query(buf *out, const struct sigv4_kv *query, size_t nq, char *err)
{
    struct sigv4_ent e[SIGV4_MAX_ENTS];
    buf sb = {0};
    size_t n = 0;
    if (sigv4_query_add(&sb, e, &n, query, nq, err) < 0)
        goto fail;
    if (sigv4_query_write(out, &sb, e, n) < 0) {
        err_set(err, "sigv4: out of memory");
        goto fail;
    }
    buf_free(&sb);
    return 0;
fail:
    buf_free(&sb);
    return -1;
}

/* Hashes s->canon into the string to sign and HMACs it with the day's key: hex into sig. */
static int sigv4_finish(sigv4_signer *s, const struct sigv4_time *t, char sig[65], char *err)
{
    unsigned char md[32];
    char hex[65], sts[256];
    if (sigv4_sha256(s, s->canon.data, s->canon.len, md) < 0)
        goto fail;
    util_hex(md, sizeof(md), hex);
    int n = sigv4_join(sts, sizeof(sts), SIGV4_ALGO "\n", t->amz_date, "\n", t->day, "/", s->region,
                       "/", s->service, "/aws4_request\n", hex, (char *)NULL);
    if (n < 0)
        goto fail;
    if (sigv4_signing_key(s, t->day) < 0 || sigv4_hmac(s, s->key, 32, sts, (size_t)n, md) < 0)
        goto fail;
    util_hex(md, sizeof(md), sig);
    return 0;
fail:
    err_set(err, "sigv4: OpenSSL failure while signing");
    return -1;
}

static int sigv4_scope(const sigv4_signer *s, const struct sigv4_time *t,
                       char cred[SIGV4_SCOPE_MAX])
{
    return sigv4_join(cred, SIGV4_SCOPE_MAX, s->access_key, "/", t->day, "/", s->region, "/",
                      s->service, "/aws4_request", (char *)NULL) < 0
               ? -1
               : 0;
}

/* Canonical request of a presigned URL into s->canon; *uri and *qs are its offsets of the
 * canonical URI and query string (both reused in the URL). */
static int sigv4_presign_canon(sigv4_signer *s, const char *method, const char *hdrs,
                               const char *path, struct sigv4_ent *e, size_t n, size_t *uri,
                               size_t *qs, char *err)
{
    buf *c = &s->canon;
    buf_reset(c);
    if (buf_puts(c, method) < 0 || buf_puts(c, "\n") < 0)
        goto oom;
    *uri = c->len;
    if (sigv4_canon_uri(c, path, err) < 0)
        return -1;
    if (buf_puts(c, "\n") < 0)
        goto oom;
    *qs = c->len;
    if (sigv4_query_write(c, &s->scratch, e, n) < 0 ||
        sigv4_cat(c, "\n", hdrs, "\n" SIGV4_UNSIGNED, (char *)NULL) < 0)
        goto oom;
    return 0;
oom:
    err_set(err, "sigv4: out of memory");
    return -1;
}

static int sigv4_method_ok(const char *method, char *err)
{
    if (method && *method && strspn(method, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") == strlen(method))
        return 0;
    err_set(err, "sigv4: bad HTTP method");
    return -1;
}

/* Appends a header value trimmed, with runs of spaces and tabs collapsed to one space. */
static int sigv4_header_value(buf *sb, const char *v)
{
    int space = 0;
    while (*v == ' ' || *v == '\t')
        v++;
    for (; *v; v++) {
        if (*v == ' ' || *v == '\t') {
            space = 1;
            continue;
        }
        if ((space && buf_append(sb, " ", 1) < 0) || buf_append(sb, v, 1) < 0)
            return -1;
        space = 0;
    }
    return 0;
}

/* Records the headers (names lower-cased, values trimmed) into sb and e[*n...]. */
static int sigv4_headers_add(buf *sb, struct sigv4_ent *e, size_t *n, const struct sigv4_kv *h,
                             size_t nh, char *err)
{
    for (size_t i = 0; i < nh; i++) {
        struct sigv4_ent *x = &e[*n];
        const char *k = h[i].key ? h[i].key : "";
        if (*n == SIGV4_MAX_ENTS || !*k || strcspn(k, ":\r\n \t") != strlen(k) ||
            (h[i].value && strpbrk(h[i].value, "\r\n"))) {
            err_set(err, "sigv4: too many or malformed headers");
            return -1;
        }
        x->k = sb->len;
        if (buf_puts(sb, k) < 0)
            goto oom;
        x->kl = sb->len - x->k;
        for (size_t j = x->k; j < sb->len; j++)
            sb->data[j] = (char)tolower((unsigned char)sb->data[j]);
        x->v = sb->len;
        if (sigv4_header_value(sb, h[i].value ? h[i].value : "") < 0)
            goto oom;
        x->vl = sb->len - x->v;
        (*n)++;
    }
    return 0;
oom:
    err_set(err, "sigv4: out of memory");
    return -1;
}

/* Appends "name:value\n" lines, a blank line and "a;b;c" (sorted; *sh is the offset of the
 * signed-header list). A name given twice is refused. */
static int sigv4_headers_write(buf *out, const buf *sb, struct sigv4_ent *e, size_t n, size_t *sh,
                               char *err)
{
    sigv4_ent_sort(sb, e, n);
    for (size_t i = 0; i < n; i++) {
        if (i && e[i].kl == e[i - 1].kl &&
            memcmp(sb->data + e[i].k, sb->data + e[i - 1].k, e[i].kl) == 0) {
            err_set(err, "sigv4: header %.*s given twice", (int)e[i].kl, sb->data + e[i].k);
            return -1;
        }
        if (buf_printf(out, "%.*s:%.*s\n", (int)e[i].kl, sb->data + e[i].k, (int)e[i].vl,
                       sb->data + e[i].v) < 0)
            goto oom;
    }
    if (buf_puts(out, "\n") < 0)
        goto oom;
    *sh = out->len;
    for (size_t i = 0; i < n; i++) {
        if ((i && buf_puts(out, ";") < 0) || buf_append(out, sb->data + e[i].k, e[i].kl) < 0)
            goto oom;
    }
    return 0;
oom:
    err_set(err, "sigv4: out of memory");
    return -1;
}

/* Canonical request of a header-signed request into s->canon; *sh is the offset of the
 * signed-header list in it. */
static int sigv4_headers_canon(sigv4_signer *s, const char *method, const char *path,
                               struct sigv4_ent *qe, size_t nqe, struct sigv4_ent *he, size_t nhe,
                               const char *payload, size_t *sh, char *err)
{
    buf *c = &s->canon;
    buf_reset(c);
    if (buf_puts(c, method) < 0 || buf_puts(c, "\n") < 0)
        goto oom;
    if (sigv4_canon_uri(c, path, err) < 0)
        return -1;
    if (buf_puts(c, "\n") < 0 || sigv4_query_write(c, &s->scratch, qe, nqe) < 0 ||
        buf_puts(c, "\n") < 0)
        goto oom;
    if (sigv4_headers_write(c, &s->scratch, he, nhe, sh, err) < 0)
        return -1;
    if (buf_puts(c, "\n") < 0 || buf_puts(c, payload) < 0)
        goto oom;
    return 0;
oom:
    err_set(err, "sigv4: out of memory");
    return -1;
}

static int sigv4_payload_ok(const char *p, char *err)
{
    if (p && (strcmp(p, SIGV4_UNSIGNED) == 0 ||
              (strlen(p) == 64 && strspn(p, "0123456789abcdef") == 64)))
        return 0;
    err_set(err, "sigv4: payload hash must be 64 lower-case hex digits or " SIGV4_UNSIGNED);
    return -1;
}

/* The signed headers of a presigned URL (host and the caller's): their canonical block
 * ("name:value" lines, a blank line, "a;b") into hb; *sh the offset of the name list. */
static int sigv4_presign_headers_block(sigv4_signer *s, const char *host,
                                       const struct sigv4_kv *headers, size_t nh, buf *hb,
                                       size_t *sh, char *err)
{
    const struct sigv4_kv hk = {"host", host};
    struct sigv4_ent he[SIGV4_MAX_ENTS];
    size_t nhe = 0;

    buf_reset(&s->scratch);
    if (sigv4_headers_add(&s->scratch, he, &nhe, headers, nh, err) < 0 ||
        sigv4_headers_add(&s->scratch, he, &nhe, &hk, 1, err) < 0)
        return -1;
    return sigv4_headers_write(hb, &s->scratch, he, nhe, sh, err);
}

int sigv4_presign(sigv4_signer *s, const char *method, const char *base, const char *path,
                  const struct sigv4_kv *query, size_t nq, time_t now, long expires, buf *out,
                  char *err)
{
    return sigv4_presign_headers(s, method, base, path, query, nq, NULL, 0, now, expires, out, err);
}

int sigv4_presign_headers(sigv4_signer *s, const char *method, const char *base, const char *path,
                          const struct sigv4_kv *query, size_t nq, const struct sigv4_kv *headers,
                          size_t nh, time_t now, long expires, buf *out, char *err)
{
    char nbase[SIGV4_BASE_MAX], cred[SIGV4_SCOPE_MAX], exp[11], sig[65];
    const char *host;
    struct sigv4_time t;
    struct sigv4_ent e[SIGV4_MAX_ENTS];
    size_t n = 0, uri, qs, sh;
    buf hb = {0};
    int rc = -1;

    if (expires < 1 || expires > SIGV4_MAX_EXPIRES) {
        err_set(err, "sigv4: expires must be 1..%ld seconds", SIGV4_MAX_EXPIRES);
        return -1;
    }
    if (sigv4_method_ok(method, err) < 0 || sigv4_base_norm(base, nbase, &host, err) < 0 ||
        sigv4_time_fmt(now, &t, err) < 0)
        return -1;
    if (sigv4_scope(s, &t, cred) < 0) {
        err_set(err, "sigv4: credential scope too long");
        return -1;
    }
    sigv4_utoa(exp, (unsigned)expires);
    if (sigv4_presign_headers_block(s, host, headers, nh, &hb, &sh, err) < 0)
        goto done;
    const struct sigv4_kv amz[] = {
        {"X-Amz-Algorithm", SIGV4_ALGO},
        {"X-Amz-Credential", cred},
        {"X-Amz-Date", t.amz_date},
        {"X-Amz-Expires", exp},
        {"X-Amz-SignedHeaders", hb.data + sh},
    };
    buf_reset(&s->scratch);
    if (sigv4_query_add(&s->scratch, e, &n, query, nq, err) < 0 ||
        sigv4_query_add(&s->scratch, e, &n, amz, ARRAY_LEN(amz), err) < 0 ||
        sigv4_presign_canon(s, method, hb.data, path, e, n, &uri, &qs, err) < 0 ||
        sigv4_finish(s, &t, sig, err) < 0)
        goto done;
    const char *c = s->canon.data;
    if (buf_puts(out, nbase) < 0 || buf_append(out, c + uri, qs - 1 - uri) < 0 ||
        buf_append(out, "?", 1) < 0 ||
        buf_append(out, c + qs, (size_t)(strchr(c + qs, '\n') - (c + qs))) < 0 ||
        sigv4_cat(out, "&X-Amz-Signature=", sig, (char *)NULL) < 0) {
        err_set(err, "sigv4: out of memory");
        goto done;
    }
    rc = 0;
done:
    buf_free(&hb);
    return rc;
}

int sigv4_sign_headers(sigv4_signer *s, const char *method, const char *base, const char *path,
                       const struct sigv4_kv *query, size_t nq, const struct sigv4_kv *headers,
                       size_t nh, const char *payload_sha256, time_t now, buf *authorization,
                       char amz_date[17], char *err)
{
    char nbase[SIGV4_BASE_MAX], cred[SIGV4_SCOPE_MAX], sig[65];
    const char *host;
    struct sigv4_time t;
    struct sigv4_ent qe[SIGV4_MAX_ENTS], he[SIGV4_MAX_ENTS];
    size_t nqe = 0, nhe = 0, sh;
    if (sigv4_method_ok(method, err) < 0 || sigv4_payload_ok(payload_sha256, err) < 0 ||
        sigv4_base_norm(base, nbase, &host, err) < 0 || sigv4_time_fmt(now, &t, err) < 0)
        return -1;
    if (sigv4_scope(s, &t, cred) < 0) {
        err_set(err, "sigv4: credential scope too long");
        return -1;
    }
    const struct sigv4_kv std[] = {
        {"host", host}, {"x-amz-content-sha256", payload_sha256}, {"x-amz-date", t.amz_date}};
    buf_reset(&s->scratch);
    if (sigv4_query_add(&s->scratch, qe, &nqe, query, nq, err) < 0 ||
        sigv4_headers_add(&s->scratch, he, &nhe, std, ARRAY_LEN(std), err) < 0 ||
        sigv4_headers_add(&s->scratch, he, &nhe, headers, nh, err) < 0 ||
        sigv4_headers_canon(s, method, path, qe, nqe, he, nhe, payload_sha256, &sh, err) < 0 ||
        sigv4_finish(s, &t, sig, err) < 0)
        return -1;
    const char *c = s->canon.data;
    if (buf_printf(authorization, SIGV4_ALGO " Credential=%s, SignedHeaders=%.*s, Signature=%s",
                   cred, (int)(strchr(c + sh, '\n') - (c + sh)), c + sh, sig) < 0) {
        err_set(err, "sigv4: out of memory");
        return -1;
    }
    memcpy(amz_date, t.amz_date, 17);
    return 0;
}
