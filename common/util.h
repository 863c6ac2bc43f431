/* util: small shared helpers: buffers, hex/base64url, random ids, time formatting.
 * Nothing here allocates behind the caller's back except the buf_ functions. */
#ifndef PIX_UTIL_H
#define PIX_UTIL_H

#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define PIX_WUR __attribute__((warn_unused_result))
#define PIX_PRINTF(a, b) __attribute__((format(printf, a, b)))
#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define PIX_STR_(x) #x
#define PIX_STR(x) PIX_STR_(x) /* a macro's value as a string literal */

/* Modules hand errors back in a caller-owned buffer of ERR_MAX bytes (may be NULL). */
#define ERR_MAX 256
void err_set(char *err, const char *fmt, ...) PIX_PRINTF(2, 3);

/* Growable byte buffer, always NUL-terminated after buf_* calls. */
typedef struct buf {
    char *data;
    size_t len;
    size_t cap;
} buf;

int buf_reserve(buf *b, size_t extra) PIX_WUR;
int buf_append(buf *b, const void *p, size_t n) PIX_WUR;
int buf_puts(buf *b, const char *s) PIX_WUR;
int buf_printf(buf *b, const char *fmt, ...) PIX_PRINTF(2, 3) PIX_WUR;
int buf_vprintf(buf *b, const char *fmt, va_list ap) PIX_WUR;
void buf_reset(buf *b);
void buf_free(buf *b);

/* Copies src (NULL: "") into dst of n bytes, truncating; always NUL-terminates. */
void util_strlcpy(char *dst, size_t n, const char *src);

/* Splits "host:port" (port 0..65535) into host (hostlen bytes) and *port. 0 or -1. */
int util_split_hostport(const char *s, char *host, size_t hostlen, int *port) PIX_WUR;

/* Lower-case hex of n bytes into out (2n+1 bytes). */
void util_hex(const unsigned char *in, size_t n, char *out);
/* Parses exactly 2n hex chars; 0 or -1. */
int util_unhex(const char *hex, unsigned char *out, size_t n) PIX_WUR;
/* base64url without padding. Returns malloc'd string or NULL. */
char *util_b64url_encode(const unsigned char *in, size_t n);
/* Decodes base64url (padding optional); *out malloc'd. 0 or -1. */
int util_b64url_decode(const char *in, size_t len, unsigned char **out, size_t *outlen) PIX_WUR;
/* Standard (not URL-safe) base64 with padding, as Standard Webhooks secrets carry it: a
 * malloc'd buffer (*n bytes), or NULL on malformed input. */
unsigned char *util_b64_decode(const char *in, size_t len, size_t *n);

/* Random UUID v4 (lower-case, 36 chars + NUL). 0 or -1 if the CSPRNG fails. */
int util_uuid(char out[37]) PIX_WUR;
/* True if s is a canonical lower-case UUID string. */
int util_is_uuid(const char *s);
/* A PostgreSQL WAL position as text ("16/B374D848": two groups of 1-8 hex digits) into *out,
 * ordered as the server orders them. 0, or -1 if s is none. */
int util_lsn_parse(const char *s, uint64_t *out) PIX_WUR;
/* Random bytes from the CSPRNG. */
int util_random(void *out, size_t n) PIX_WUR;

/* RFC 3339 UTC with seconds ("2026-02-05T10:00:00Z"), 21 bytes. */
void util_rfc3339(time_t t, char out[21]);
/* True if s is an RFC 3339 date-time: "YYYY-MM-DDTHH:MM:SS[.frac](Z|+HH:MM|-HH:MM)" with
 * fields in range (year 0001-9999; a day past its month's end is left to the reader). */
int util_rfc3339_valid(const char *s);
/* Monotonic clock in seconds. */
double util_now_mono(void);
/* Timed condition waits run on the monotonic clock: a step of the wall clock neither
 * stretches nor cuts them. util_cond_init makes such a condition variable (0 or an
 * errno); util_deadline gives the absolute time secs (>= 0) from now to pass to
 * pthread_cond_timedwait on it. */
int util_cond_init(pthread_cond_t *cv) PIX_WUR;
void util_deadline(struct timespec *ts, double secs);
/* Fault points for crash tests: in builds with -DPIX_TEST_HOOKS, FAULT_POINT("name") ends
 * the process at once (as SIGKILL would) when the environment has PIXPLANE_FAULT=name. */
/* Fail points reach error paths no real run can be made to take (an allocation failing):
 * in those builds FAIL_POINT("name") is true when the environment has PIXPLANE_FAIL=name,
 * and the code takes its failure branch. Elsewhere it is a constant 0. */
#ifdef PIX_TEST_HOOKS
void util_fault_point(const char *name);
int util_fail_point(const char *name);
#define FAULT_POINT(name) util_fault_point(name)
#define FAIL_POINT(name) util_fail_point(name)
#else
#define FAULT_POINT(name) ((void)0)
#define FAIL_POINT(name) 0
#endif

/* Constant-time comparison of n bytes; 1 if equal. */
int util_streq_ct(const char *a, const char *b, size_t n);

#endif
