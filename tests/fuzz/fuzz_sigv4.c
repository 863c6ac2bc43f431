/* fuzz_sigv4: SigV4 presigned URLs and header signatures (common/sigv4.c) compared with an
 * independent implementation written here from the AWS rules; any difference aborts. */
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "sigv4.h"

/* Input: a stream of choices and length-prefixed strings (see struct src). The first byte picks
 * the mode: 0-4 presign, 5-7 header signing, 8 sigv4_uri_encode and sigv4_canonical_query on
 * raw strings, 9 sigv4_normalize_base on a raw string. Keys, region, paths, query parameters,
 * headers and the time all come from the input. */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FAIL(...)                                                                                  \
    do {                                                                                           \
        fprintf(stderr, "fuzz_sigv4: mismatch: " __VA_ARGS__);                                     \
        fputc('\n', stderr);                                                                       \
        abort();                                                                                   \
    } while (0)

#define MAX_KV 8
#define SIGV4_MAX_EXPIRES 604800L
#define SIGV4_MAX_TIME 253402300799LL /* 9999-12-31T23:59:59Z */

/* ---- input ---- */

struct src {
    const uint8_t *p;
    size_t n;
};

static unsigned take(struct src *s)
{
    if (!s->n)
        return 0;
    s->n--;
    return *s->p++;
}

static unsigned long long take_u64(struct src *s, int bytes)
{
    unsigned long long v = 0;

    while (bytes-- > 0)
        v = v << 8 | take(s);
    return v;
}

/* A string of up to max bytes (length byte first). NUL bytes become 'x' (C strings); with an
 * alphabet, each byte picks a character of it. malloc'd. */
static char *take_str(struct src *s, size_t max, const char *alphabet)
{
    size_t len = take(s) % (max + 1), al = alphabet ? strlen(alphabet) : 0, i;
    char *o = malloc(len + 1);

    if (!o)
        abort();
    for (i = 0; i < len && s->n; i++) {
        unsigned c = take(s);
        o[i] = alphabet ? alphabet[c % al] : (char)(c ? c : 'x');
    }
    o[i] = '\0';
    return o;
}

/* ---- the reference: AWS Signature Version 4 as documented ---- */

typedef struct {
    char *d;
    size_t len, cap;
} str;

static void put(str *b, const char *p, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        b->cap = (b->len + n + 1) * 2;
        b->d = realloc(b->d, b->cap);
        if (!b->d)
            abort();
    }
    memcpy(b->d + b->len, p, n);
    b->len += n;
    b->d[b->len] = '\0';
}

static void puts_(str *b, const char *s)
{
    put(b, s, strlen(s));
}

/* URI-encode every byte except A-Z a-z 0-9 - _ . ~ (and '/' when the path keeps it). */
static void ref_encode(str *b, const char *s, int keep_slash)
{
    static const char hex[] = "0123456789ABCDEF";

    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '_' || c == '.' || c == '~' || (c == '/' && keep_slash)) {
            put(b, (const char *)&c, 1);
        } else {
            char e[3] = {'%', hex[c >> 4], hex[c & 15]};
            put(b, e, 3);
        }
    }
}

static char *encoded(const char *s)
{
    str b = {0};

    ref_encode(&b, s, 0);
    if (!b.d)
        puts_(&b, "");
    return b.d;
}

struct pair {
    char *k, *v; /* encoded (query) or lower-cased name and trimmed value (headers) */
};

static int pair_cmp(const void *a, const void *b)
{
    const struct pair *x = a, *y = b;
    int c = strcmp(x->k, y->k);

    return c ? c : strcmp(x->v, y->v);
}

/* Canonical query: every name and value encoded, sorted by name then value, k=v joined by &. */
static void ref_query(str *out, const struct sigv4_kv *q, size_t n)
{
    struct pair p[MAX_KV + 8];

    for (size_t i = 0; i < n; i++) {
        p[i].k = encoded(q[i].key);
        p[i].v = encoded(q[i].value ? q[i].value : "");
    }
    qsort(p, n, sizeof p[0], pair_cmp);
    for (size_t i = 0; i < n; i++) {
        if (i)
            puts_(out, "&");
        puts_(out, p[i].k);
        puts_(out, "=");
        puts_(out, p[i].v);
        free(p[i].k);
        free(p[i].v);
    }
    if (!out->d)
        puts_(out, "");
}

static void hex(const unsigned char *m, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        sprintf(out + 2 * i, "%02x", m[i]);
}

static void sha256_hex(const char *s, size_t n, char out[65])
{
    unsigned char md[32];
    unsigned int ml = 0;

    if (!EVP_Digest(s, n, md, &ml, EVP_sha256(), NULL) || ml != 32)
        abort();
    hex(md, 32, out);
}

static void hmac(const unsigned char *k, size_t kl, const char *m, unsigned char out[32])
{
    unsigned int ml = 0;

    if (!HMAC(EVP_sha256(), k, (int)kl, (const unsigned char *)m, strlen(m), out, &ml) || ml != 32)
        abort();
}

struct cred {
    const char *ak, *secret, *region, *service;
};

/* amz_date and day with gmtime_r (the signer has its own calendar arithmetic). */
static void ref_time(long long now, char amz[17], char day[9])
{
    time_t t = (time_t)now;
    struct tm tm;

    if (!gmtime_r(&t, &tm) || !strftime(amz, 17, "%Y%m%dT%H%M%SZ", &tm))
        abort();
    memcpy(day, amz, 8);
    day[8] = '\0';
}

/* Signature (hex) of canonical request canon. */
static void ref_signature(const struct cred *c, const char *amz, const char *day, const char *canon,
                          char sig[65])
{
    char ch[65], *k0, *sts;
    unsigned char k[32], s[32];

    sha256_hex(canon, strlen(canon), ch);
    if (asprintf(&sts, "AWS4-HMAC-SHA256\n%s\n%s/%s/%s/aws4_request\n%s", amz, day, c->region,
                 c->service, ch) < 0 ||
        asprintf(&k0, "AWS4%s", c->secret) < 0)
        abort();
    hmac((const unsigned char *)k0, strlen(k0), day, k);
    hmac(k, 32, c->region, k);
    hmac(k, 32, c->service, k);
    hmac(k, 32, "aws4_request", k);
    hmac(k, 32, sts, s);
    hex(s, 32, sig);
    free(sts);
    free(k0);
}

/* "scheme://host[:port]" lower-cased, one trailing '/' and the scheme's default port dropped;
 * for bases this harness builds (valid by construction). */
static char *ref_base(const char *base)
{
    char *b = strdup(base), *host;
    size_t n = strlen(b);
    int tls;

    if (!b)
        abort();
    for (size_t i = 0; i < n; i++)
        b[i] = (char)(b[i] >= 'A' && b[i] <= 'Z' ? b[i] + 32 : b[i]);
    if (n && b[n - 1] == '/')
        b[--n] = '\0';
    tls = !strncmp(b, "https://", 8);
    host = b + (tls ? 8 : 7);
    char *colon = strrchr(host, ':');
    if (colon && colon > host && !strcmp(colon + 1, tls ? "443" : "80"))
        *colon = '\0';
    return b;
}

static void ref_uri(str *c, const char *path)
{
    if (!*path)
        puts_(c, "/");
    else
        ref_encode(c, path, 1);
}

static int ref_key_ok(const struct sigv4_kv *q, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!*q[i].key || !strcasecmp(q[i].key, "X-Amz-Signature"))
            return 0;
    return 1;
}

static int ref_method_ok(const char *m)
{
    return *m && strspn(m, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") == strlen(m);
}

/* The presigned URL, or NULL where the signer must refuse. */
static char *ref_presign(const struct cred *c, const char *method, const char *base,
                         const char *path, const struct sigv4_kv *q, size_t nq, long long now,
                         long expires, const char *clen)
{
    struct sigv4_kv all[MAX_KV + 5];
    char amz[17], day[9], credential[256], exp[24], sig[65], *nb, *host;
    str canon = {0}, qs = {0}, url = {0};

    if (expires < 1 || expires > SIGV4_MAX_EXPIRES || now < 0 || now > SIGV4_MAX_TIME ||
        !ref_method_ok(method) || (*path && *path != '/') || !ref_key_ok(q, nq))
        return NULL;
    ref_time(now, amz, day);
    snprintf(credential, sizeof credential, "%s/%s/%s/%s/aws4_request", c->ak, day, c->region,
             c->service);
    snprintf(exp, sizeof exp, "%ld", expires);
    memcpy(all, q, nq * sizeof *q);
    all[nq++] = (struct sigv4_kv){"X-Amz-Algorithm", "AWS4-HMAC-SHA256"};
    all[nq++] = (struct sigv4_kv){"X-Amz-Credential", credential};
    all[nq++] = (struct sigv4_kv){"X-Amz-Date", amz};
    all[nq++] = (struct sigv4_kv){"X-Amz-Expires", exp};
    all[nq++] = (struct sigv4_kv){"X-Amz-SignedHeaders", clen ? "content-length;host" : "host"};
    ref_query(&qs, all, nq);
    nb = ref_base(base);
    host = strstr(nb, "://") + 3;
    puts_(&canon, method);
    puts_(&canon, "\n");
    ref_uri(&canon, path);
    puts_(&canon, "\n");
    puts_(&canon, qs.d);
    if (clen) { /* a part URL: the length is signed too */
        puts_(&canon, "\ncontent-length:");
        puts_(&canon, clen);
    }
    puts_(&canon, "\nhost:");
    puts_(&canon, host);
    puts_(&canon,
          clen ? "\n\ncontent-length;host\nUNSIGNED-PAYLOAD" : "\n\nhost\nUNSIGNED-PAYLOAD");
    ref_signature(c, amz, day, canon.d, sig);
    puts_(&url, nb);
    ref_uri(&url, path);
    puts_(&url, "?");
    puts_(&url, qs.d);
    puts_(&url, "&X-Amz-Signature=");
    puts_(&url, sig);
    free(nb);
    free(canon.d);
    free(qs.d);
    return url.d;
}

/* Header value as signed: leading and trailing blanks dropped, inner runs as one space. */
static char *ref_trim(const char *v)
{
    str b = {0};
    int blank = 0;

    while (*v == ' ' || *v == '\t')
        v++;
    for (; *v; v++) {
        if (*v == ' ' || *v == '\t') {
            blank = 1;
            continue;
        }
        if (blank)
            puts_(&b, " ");
        put(&b, v, 1);
        blank = 0;
    }
    if (!b.d)
        puts_(&b, "");
    return b.d;
}

/* The Authorization value, or NULL where the signer must refuse. */
static char *ref_sign_headers(const struct cred *c, const char *method, const char *base,
                              const char *path, const struct sigv4_kv *q, size_t nq,
                              const struct sigv4_kv *h, size_t nh, const char *payload,
                              long long now, char amz[17])
{
    struct pair hp[MAX_KV + 3];
    char day[9], sig[65], *nb, *out;
    str canon = {0}, qs = {0}, signed_ = {0};
    size_t n = 0;

    if (now < 0 || now > SIGV4_MAX_TIME || !ref_method_ok(method) || (*path && *path != '/') ||
        !ref_key_ok(q, nq))
        return NULL;
    if (strcmp(payload, "UNSIGNED-PAYLOAD") &&
        (strlen(payload) != 64 || strspn(payload, "0123456789abcdef") != 64))
        return NULL;
    for (size_t i = 0; i < nh; i++)
        if (!*h[i].key || strcspn(h[i].key, ":\r\n \t") != strlen(h[i].key) ||
            strpbrk(h[i].value, "\r\n"))
            return NULL;
    ref_time(now, amz, day);
    nb = ref_base(base);
    const struct sigv4_kv std[] = {
        {"host", strstr(nb, "://") + 3}, {"x-amz-content-sha256", payload}, {"x-amz-date", amz}};
    for (size_t i = 0; i < 3 + nh; i++) {
        const struct sigv4_kv *kv = i < 3 ? &std[i] : &h[i - 3];
        hp[n].k = strdup(kv->key);
        if (!hp[n].k)
            abort();
        for (char *p = hp[n].k; *p; p++)
            *p = (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
        hp[n++].v = ref_trim(kv->value);
    }
    qsort(hp, n, sizeof hp[0], pair_cmp);
    for (size_t i = 1; i < n; i++) {
        if (!strcmp(hp[i].k, hp[i - 1].k)) { /* a header given twice cannot be signed */
            for (size_t j = 0; j < n; j++)
                free(hp[j].k), free(hp[j].v);
            free(nb);
            return NULL;
        }
    }
    ref_query(&qs, q, nq);
    puts_(&canon, method);
    puts_(&canon, "\n");
    ref_uri(&canon, path);
    puts_(&canon, "\n");
    puts_(&canon, qs.d);
    puts_(&canon, "\n");
    for (size_t i = 0; i < n; i++) {
        puts_(&canon, hp[i].k);
        puts_(&canon, ":");
        puts_(&canon, hp[i].v);
        puts_(&canon, "\n");
        if (i)
            puts_(&signed_, ";");
        puts_(&signed_, hp[i].k);
        free(hp[i].k);
        free(hp[i].v);
    }
    puts_(&canon, "\n");
    puts_(&canon, signed_.d);
    puts_(&canon, "\n");
    puts_(&canon, payload);
    ref_signature(c, amz, day, canon.d, sig);
    if (asprintf(&out,
                 "AWS4-HMAC-SHA256 Credential=%s/%s/%s/%s/aws4_request, SignedHeaders=%s, "
                 "Signature=%s",
                 c->ak, day, c->region, c->service, signed_.d, sig) < 0)
        abort();
    free(nb);
    free(canon.d);
    free(qs.d);
    free(signed_.d);
    return out;
}

/* ---- generating a request ---- */

#define HOST_CHARS "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-"

struct req {
    struct cred c;
    char *method, *base, *path, *payload;
    struct sigv4_kv q[MAX_KV], h[MAX_KV];
    size_t nq, nh;
    long long now;
    long expires;
};

static char *make_base(struct src *s)
{
    static const char *const schemes[] = {"http://", "https://", "HTTP://", "Https://"};
    static const char *const ports[] = {"", ":80", ":443", ":9000", ":7480", ":8080", ":080", ""};
    unsigned f = take(s);
    char *host = take_str(s, 40, HOST_CHARS), *b;

    if (!*host) {
        free(host);
        host = strdup("s3.example.com");
    }
    if (asprintf(&b, "%s%s%s%s", schemes[f & 3], host, ports[(f >> 2) & 7], f & 32 ? "/" : "") < 0)
        abort();
    free(host);
    return b;
}

static char *make_method(struct src *s)
{
    static const char *const m[] = {"GET", "PUT", "POST", "DELETE", "HEAD"};
    unsigned f = take(s);

    if (f < 250)
        return strdup(m[f % 5]);
    return take_str(s, 8, f == 255 ? NULL : "ABCDEFGHIJKLMNOPQRSTUVWXYZ");
}

static void make_req(struct src *s, struct req *r, int headers)
{
    unsigned f;

    memset(r, 0, sizeof *r);
    r->c.ak = take_str(s, 40, NULL);
    r->c.secret = take_str(s, 64, NULL);
    r->c.region = take_str(s, 30, NULL);
    f = take(s);
    r->c.service = f < 200 ? strdup("s3") : take_str(s, 10, NULL);
    r->method = make_method(s);
    r->base = make_base(s);
    f = take(s);
    if (f < 200) { /* "/" + raw bytes */
        char *rest = take_str(s, 120, NULL);
        if (asprintf(&r->path, "/%s", rest) < 0)
            abort();
        free(rest);
    } else {
        r->path = take_str(s, 20, NULL); /* "" or not starting with '/' */
    }
    r->nq = take(s) % (MAX_KV + 1);
    for (size_t i = 0; i < r->nq; i++) {
        f = take(s);
        r->q[i].key = f == 255 ? strdup("x-amz-signature") : take_str(s, 40, NULL);
        r->q[i].value = f & 1 ? NULL : take_str(s, 100, NULL);
    }
    r->now = (long long)(take_u64(s, 5) % (SIGV4_MAX_TIME + 1));
    f = take(s);
    r->expires = f == 255   ? 0
                 : f == 254 ? SIGV4_MAX_EXPIRES + 1
                            : (long)(take_u64(s, 3) % SIGV4_MAX_EXPIRES) + 1;
    if (!headers)
        return;
    r->nh = take(s) % (MAX_KV + 1);
    for (size_t i = 0; i < r->nh; i++) {
        f = take(s);
        r->h[i].key = take_str(s, 40, NULL);
        r->h[i].value = take_str(s, 100, NULL);
        if (f < 240) { /* mostly well-formed: a token name and a one-line value */
            for (char *c = (char *)r->h[i].key; *c; c++)
                if (strchr(":\r\n \t", *c))
                    *c = '-';
            for (char *c = (char *)r->h[i].value; *c; c++)
                if (*c == '\r' || *c == '\n')
                    *c = ' ';
        }
    }
    f = take(s);
    if (f < 128) {
        r->payload = strdup("UNSIGNED-PAYLOAD");
    } else {
        char *body = take_str(s, 64, NULL), h[65];
        sha256_hex(body, strlen(body), h);
        free(body);
        r->payload = f == 255 ? strdup("not-a-hash") : strdup(h);
    }
}

static void free_req(struct req *r)
{
    free((char *)r->c.ak), free((char *)r->c.secret), free((char *)r->c.region);
    free((char *)r->c.service), free(r->method), free(r->base), free(r->path), free(r->payload);
    for (size_t i = 0; i < r->nq; i++)
        free((char *)r->q[i].key), free((char *)r->q[i].value);
    for (size_t i = 0; i < r->nh; i++)
        free((char *)r->h[i].key), free((char *)r->h[i].value);
}

/* ---- the modes ---- */

/* The signer's presigned URL, through sigv4_presign or, with a header, sigv4_presign_headers. */
static int sign(sigv4_signer *g, const struct req *r, const struct sigv4_kv *h, buf *out, char *err)
{
    if (h)
        return sigv4_presign_headers(g, r->method, r->base, r->path, r->q, r->nq, h, 1,
                                     (time_t)r->now, r->expires, out, err);
    return sigv4_presign(g, r->method, r->base, r->path, r->q, r->nq, (time_t)r->now, r->expires,
                         out, err);
}

static void presign(struct src *s)
{
    struct req r;
    char err[256] = "";
    buf out = {0};
    sigv4_signer *g;
    char *want;
    int rc;

    make_req(s, &r, 0);
    g = sigv4_signer_new(r.c.ak, r.c.secret, r.c.region, r.c.service);
    if (!g)
        FAIL("signer_new refused short credentials");
    /* half the inputs sign a content-length, as part URLs do */
    char clen[24];
    const struct sigv4_kv lh = {"Content-Length", clen};
    int with_len = r.now & 1;
    snprintf(clen, sizeof clen, "%ld", r.expires * 7919L);
    want = ref_presign(&r.c, r.method, r.base, r.path, r.q, r.nq, r.now, r.expires,
                       with_len ? clen : NULL);
    rc = sign(g, &r, with_len ? &lh : NULL, &out, err);
    if ((rc == 0) != (want != NULL))
        FAIL("presign %s where the reference %s (%s)", rc ? "refused" : "signed",
             want ? "signs" : "refuses", err);
    if (want && strcmp(out.data, want))
        FAIL("presigned URL\n  signer:    %s\n  reference: %s", out.data, want);
    if (getenv("PIXFUZZ_VERBOSE"))
        fprintf(stderr, "presign: %s\n", want ? want : err);
    /* a second signature on the same signer (cached day key) is the same */
    if (want) {
        buf again = {0};
        if (sign(g, &r, with_len ? &lh : NULL, &again, err) < 0 || strcmp(again.data, out.data))
            FAIL("presign is not repeatable");
        buf_free(&again);
    }
    free(want);
    buf_free(&out);
    sigv4_signer_free(g);
    free_req(&r);
}

static void sign_headers(struct src *s)
{
    struct req r;
    char err[256] = "", date[17] = "", want_date[17] = "";
    buf auth = {0};
    sigv4_signer *g;
    char *want;
    int rc;

    make_req(s, &r, 1);
    g = sigv4_signer_new(r.c.ak, r.c.secret, r.c.region, r.c.service);
    if (!g)
        FAIL("signer_new refused short credentials");
    want = ref_sign_headers(&r.c, r.method, r.base, r.path, r.q, r.nq, r.h, r.nh, r.payload, r.now,
                            want_date);
    rc = sigv4_sign_headers(g, r.method, r.base, r.path, r.q, r.nq, r.h, r.nh, r.payload,
                            (time_t)r.now, &auth, date, err);
    if ((rc == 0) != (want != NULL))
        FAIL("sign_headers %s where the reference %s (%s)", rc ? "refused" : "signed",
             want ? "signs" : "refuses", err);
    if (want && (strcmp(auth.data, want) || strcmp(date, want_date)))
        FAIL("Authorization\n  signer:    %s\n  reference: %s", auth.data, want);
    if (getenv("PIXFUZZ_VERBOSE"))
        fprintf(stderr, "sign_headers: %s\n", want ? want : err);
    free(want);
    buf_free(&auth);
    sigv4_signer_free(g);
    free_req(&r);
}

static void encoders(struct src *s)
{
    char *a = take_str(s, 200, NULL), err[256];
    struct sigv4_kv q[MAX_KV];
    size_t nq = take(s) % (MAX_KV + 1);
    buf got = {0};
    str want = {0};

    for (int keep = 0; keep < 2; keep++) {
        buf_reset(&got);
        free(want.d);
        want = (str){0};
        if (sigv4_uri_encode(&got, a, strlen(a), keep) < 0)
            FAIL("uri_encode failed");
        ref_encode(&want, a, keep);
        if (strcmp(got.data, want.d ? want.d : ""))
            FAIL("uri_encode(%d)\n  signer:    %s\n  reference: %s", keep, got.data, want.d);
    }
    for (size_t i = 0; i < nq; i++) {
        q[i].key = take_str(s, 30, NULL);
        q[i].value = take(s) & 1 ? NULL : take_str(s, 30, NULL);
    }
    buf_reset(&got);
    free(want.d);
    want = (str){0};
    int rc = sigv4_canonical_query(&got, q, nq, err);
    if ((rc == 0) != ref_key_ok(q, nq))
        FAIL("canonical_query acceptance (%s)", err);
    if (rc == 0) {
        ref_query(&want, q, nq);
        if (strcmp(got.data ? got.data : "", want.d))
            FAIL("canonical query\n  signer:    %s\n  reference: %s", got.data, want.d);
    }
    char h1[65], h2[65];
    if (sigv4_sha256_hex(a, strlen(a), h1) < 0)
        FAIL("sha256_hex failed");
    sha256_hex(a, strlen(a), h2);
    if (strcmp(h1, h2))
        FAIL("sha256_hex");
    for (size_t i = 0; i < nq; i++)
        free((char *)q[i].key), free((char *)q[i].value);
    free(want.d);
    buf_free(&got);
    free(a);
}

/* Arbitrary bases: what is accepted is normalised; bases of the harness's own shape must be
 * accepted and give the reference's normal form. */
static void bases(struct src *s)
{
    unsigned f = take(s);
    char *b = f & 1 ? take_str(s, 400, NULL) : make_base(s), err[256];
    buf out = {0};
    int rc = sigv4_normalize_base(&out, b, err);

    if (!(f & 1)) {
        char *want = ref_base(b);
        if (rc < 0 && strlen(b) < 300)
            FAIL("normalize_base refused %s (%s)", b, err);
        if (rc == 0 && strcmp(out.data, want))
            FAIL("normalize_base(%s)\n  signer:    %s\n  reference: %s", b, out.data, want);
        free(want);
    } else if (rc == 0) {
        const char *host = strstr(out.data, "://");
        if ((strncmp(out.data, "http://", 7) && strncmp(out.data, "https://", 8)) || !host ||
            !host[3] || out.data[out.len - 1] == '/' || out.len >= 320 ||
            strcspn(host + 3, "/?#@ \t\r\nABCDEFGHIJKLMNOPQRSTUVWXYZ") != strlen(host + 3))
            FAIL("normalize_base accepted %s as %s", b, out.data);
    }
    buf_free(&out);
    free(b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct src s = {data, size};
    unsigned mode = take(&s) % 10;

    if (mode < 5)
        presign(&s);
    else if (mode < 8)
        sign_headers(&s);
    else if (mode == 8)
        encoders(&s);
    else
        bases(&s);
    return 0;
}
