/* util: growable buffers, hex and base64url codecs, CSPRNG ids and time formatting
 * shared by every module. */
#include "util.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void err_set(char *err, const char *fmt, ...)
{
    va_list ap;

    if (!err)
        return;
    va_start(ap, fmt);
    vsnprintf(err, ERR_MAX, fmt, ap);
    va_end(ap);
}

int buf_reserve(buf *b, size_t extra)
{
    size_t need = b->len + extra + 1, cap = b->cap ? b->cap : 64;
    char *p;

    if (need < b->len)
        return -1;
    if (need <= b->cap)
        return 0;
    while (cap < need)
        cap *= 2;
    p = realloc(b->data, cap);
    if (!p)
        return -1;
    b->data = p;
    b->cap = cap;
    return 0;
}

int buf_append(buf *b, const void *p, size_t n)
{
    if (buf_reserve(b, n) < 0)
        return -1;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

int buf_puts(buf *b, const char *s)
{
    return buf_append(b, s, strlen(s));
}

int buf_vprintf(buf *b, const char *fmt, va_list ap)
{
    va_list ap2;
    int n;

    va_copy(ap2, ap);
    n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (n < 0 || buf_reserve(b, (size_t)n) < 0)
        return -1;
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
    return 0;
}

int buf_printf(buf *b, const char *fmt, ...)
{
    va_list ap;
    int rc;

    va_start(ap, fmt);
    rc = buf_vprintf(b, fmt, ap);
    va_end(ap);
    return rc;
}

void buf_reset(buf *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

void buf_free(buf *b)
{
    if (!b)
        return;
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

void util_strlcpy(char *dst, size_t n, const char *src)
{
    snprintf(dst, n, "%s", src ? src : "");
}

int util_split_hostport(const char *s, char *host, size_t hostlen, int *port)
{
    const char *colon = strrchr(s, ':');
    char *end;
    long p;

    if (!colon || (size_t)(colon - s) >= hostlen)
        return -1;
    memcpy(host, s, (size_t)(colon - s));
    host[colon - s] = '\0';
    p = strtol(colon + 1, &end, 10);
    if (colon[1] == '\0' || *end || p < 0 || p > 65535)
        return -1;
    *port = (int)p;
    return 0;
}

void util_hex(const unsigned char *in, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";

    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * n] = '\0';
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int util_unhex(const char *hex, unsigned char *out, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int hi = hexval(hex[2 * i]), lo = hi < 0 ? -1 : hexval(hex[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return -1;
        out[i] = (unsigned char)(hi << 4 | lo);
    }
    return hex[2 * n] == '\0' ? 0 : -1;
}

static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

char *util_b64url_encode(const unsigned char *in, size_t n)
{
    char *out = malloc(n / 3 * 4 + 5), *p = out;
    size_t i;

    if (!out)
        return NULL;
    for (i = 0; i + 2 < n; i += 3) {
        unsigned v = (unsigned)in[i] << 16 | (unsigned)in[i + 1] << 8 | in[i + 2];
        *p++ = b64url[v >> 18];
        *p++ = b64url[(v >> 12) & 63];
        *p++ = b64url[(v >> 6) & 63];
        *p++ = b64url[v & 63];
    }
    if (n - i == 1) {
        *p++ = b64url[in[i] >> 2];
        *p++ = b64url[(in[i] & 3) << 4];
    } else if (n - i == 2) {
        unsigned v = (unsigned)in[i] << 8 | in[i + 1];
        *p++ = b64url[v >> 10];
        *p++ = b64url[(v >> 4) & 63];
        *p++ = b64url[(v & 15) << 2];
    }
    *p = '\0';
    return out;
}

static int b64val(char c)
{
    const char *p = c ? strchr(b64url, c) : NULL;
    return p ? (int)(p - b64url) : -1;
}

unsigned char *util_b64_decode(const char *in, size_t len, size_t *n)
{
    unsigned char *out;
    int got;
    size_t pad = 0;

    if (len == 0 || len % 4 != 0)
        return NULL;
    while (pad < 2 && in[len - 1 - pad] == '=')
        pad++;
    if (strspn(in, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/") != len - pad)
        return NULL;
    if (!(out = malloc(len / 4 * 3 + 1)))
        return NULL;
    got = EVP_DecodeBlock(out, (const unsigned char *)in, (int)len);
    if (got < 0 || (size_t)got < pad) {
        free(out);
        return NULL;
    }
    *n = (size_t)got - pad; /* EVP_DecodeBlock counts the padding as zero bytes */
    return out;
}

int util_b64url_decode(const char *in, size_t len, unsigned char **out, size_t *outlen)
{
    unsigned char *o;
    unsigned acc = 0;
    size_t n = 0;
    int bits = 0;

    while (len > 0 && in[len - 1] == '=')
        len--;
    if (len % 4 == 1 || !(o = malloc(len / 4 * 3 + 3)))
        return -1;
    for (size_t i = 0; i < len; i++) {
        int v = b64val(in[i]);
        if (v < 0)
            goto fail;
        acc = (acc << 6) | (unsigned)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            o[n++] = (unsigned char)(acc >> bits);
        }
    }
    if (bits && (acc & ((1u << bits) - 1)))
        goto fail; /* non-canonical trailing bits */
    *out = o;
    *outlen = n;
    return 0;
fail:
    free(o);
    return -1;
}

int util_random(void *out, size_t n)
{
    return RAND_bytes(out, (int)n) == 1 ? 0 : -1;
}

int util_uuid(char out[37])
{
    unsigned char r[16];

    if (util_random(r, sizeof r) < 0)
        return -1;
    r[6] = (unsigned char)((r[6] & 0x0f) | 0x40);
    r[8] = (unsigned char)((r[8] & 0x3f) | 0x80);
    snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", r[0],
             r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10], r[11], r[12], r[13],
             r[14], r[15]);
    return 0;
}

int util_is_uuid(const char *s)
{
    for (int i = 0; i < 36; i++) {
        int dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash ? s[i] != '-' : !((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    }
    return s[36] == '\0';
}

/* 1-8 hex digits ending at stop. 0 or -1. */
static int hex32(const char *s, char stop, uint64_t *out)
{
    size_t n = strspn(s, "0123456789abcdefABCDEF");

    if (n < 1 || n > 8 || s[n] != stop)
        return -1;
    *out = strtoull(s, NULL, 16);
    return 0;
}

int util_lsn_parse(const char *s, uint64_t *out)
{
    const char *slash = s ? strchr(s, '/') : NULL;
    uint64_t hi, lo;

    if (!slash || hex32(s, '/', &hi) < 0 || hex32(slash + 1, '\0', &lo) < 0)
        return -1;
    *out = hi << 32 | lo;
    return 0;
}

void util_rfc3339(time_t t, char out[21])
{
    struct tm tm;

    gmtime_r(&t, &tm);
    strftime(out, 21, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* n digits at s as a number in lo..hi; -1 if not. */
static int digits(const char *s, int n, int lo, int hi)
{
    int v = 0;

    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v >= lo && v <= hi ? v : -1;
}

int util_rfc3339_valid(const char *s)
{
    static const char sep[] = "--T::"; /* after year, month, day, hour, minute */
    static const int width[] = {4, 2, 2, 2, 2, 2}, lo[] = {1, 1, 1, 0, 0, 0},
                     hi[] = {9999, 12, 31, 23, 59, 60};

    for (int f = 0; f < 6; f++) {
        if (digits(s, width[f], lo[f], hi[f]) < 0)
            return 0;
        s += width[f];
        if (f < 5 && *s != sep[f] && !(f == 2 && *s == 't'))
            return 0;
        s += f < 5;
    }
    if (*s == '.' && (s[1] < '0' || s[1] > '9'))
        return 0;
    if (*s == '.')
        for (s++; *s >= '0' && *s <= '9'; s++)
            ;
    if (*s == 'Z' || *s == 'z')
        return s[1] == '\0';
    return (*s == '+' || *s == '-') && digits(s + 1, 2, 0, 23) >= 0 && s[3] == ':' &&
           digits(s + 4, 2, 0, 59) >= 0 && s[6] == '\0';
}

double util_now_mono(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int util_cond_init(pthread_cond_t *cv)
{
    pthread_condattr_t ca;
    int rc = pthread_condattr_init(&ca);

    if (rc != 0)
        return rc;
    rc = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    if (rc == 0)
        rc = pthread_cond_init(cv, &ca);
    pthread_condattr_destroy(&ca);
    return rc;
}

void util_deadline(struct timespec *ts, double secs)
{
    double whole = (double)(time_t)secs;

    clock_gettime(CLOCK_MONOTONIC, ts);
    if (!(secs > 0))
        return;
    ts->tv_sec += (time_t)whole;
    ts->tv_nsec += (long)((secs - whole) * 1e9);
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

#ifdef PIX_TEST_HOOKS
void util_fault_point(const char *name)
{
    const char *want = getenv("PIXPLANE_FAULT");

    if (want && strcmp(want, name) == 0) {
        fprintf(stderr, "fault point %s: exiting\n", name);
        _exit(137);
    }
}

int util_fail_point(const char *name)
{
    const char *want = getenv("PIXPLANE_FAIL");

    return want && strcmp(want, name) == 0;
}
#endif

int util_streq_ct(const char *a, const char *b, size_t n)
{
    return CRYPTO_memcmp(a, b, n) == 0;
}
