/* log: JSON-lines logger on stderr. Each line is built in a fixed stack buffer (no heap)
 * and written with one write(2) under a mutex, so lines never interleave. */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include "json.h"
#include "log.h"

#define LOG_LINE_MAX 8192  /* whole line, newline included */
#define LOG_VALUE_MAX 2048 /* escaped bytes of one key or value before "..." */
/* Room kept back for ,"truncated":true}\n so a clipped line is still one valid object. */
#define LOG_TAIL 32

struct line {
    char b[LOG_LINE_MAX];
    size_t len;
    int over; /* the last append did not fit */
};

static char log_service[64] = "pixplane";
static enum log_level log_min = LOG_INFO;
static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;
static const char *const level_names[] = {"debug", "info", "warn", "error"};

static int parse_level(const char *s, enum log_level *out)
{
    for (size_t i = 0; i < ARRAY_LEN(level_names); i++) {
        if (strcasecmp(s, level_names[i]) == 0) {
            *out = (enum log_level)i;
            return 0;
        }
    }
    if (strcasecmp(s, "warning") == 0) {
        *out = LOG_WARN;
        return 0;
    }
    return -1;
}

void log_init(const char *service, const char *level)
{
    int bad;

    if (service != NULL && *service != '\0')
        snprintf(log_service, sizeof log_service, "%s", service);
    bad = level != NULL && *level != '\0' && parse_level(level, &log_min) < 0;
    if (bad) {
        log_min = LOG_INFO;
        log_warn(NULL, "log_level_invalid", "unknown log level, using info", "level", level);
    }
}

int log_enabled(enum log_level lvl)
{
    return lvl >= log_min;
}

static void put(struct line *l, const void *p, size_t n)
{
    if (l->over || l->len + n > LOG_LINE_MAX - LOG_TAIL) {
        l->over = 1;
        return;
    }
    memcpy(l->b + l->len, p, n);
    l->len += n;
}

/* The JSON form of the UTF-8 sequence (or invalid byte) at s into out; returns its length
 * and sets *used to the input bytes it covers. */
static size_t escape_one(const unsigned char *s, size_t n, char out[8], size_t *used)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char c = s[0];
    size_t l;

    *used = 1;
    if (c == '"' || c == '\\')
        return (size_t)snprintf(out, 8, "\\%c", c);
    if (c == '\n')
        return (size_t)snprintf(out, 8, "\\n");
    if (c == '\r')
        return (size_t)snprintf(out, 8, "\\r");
    if (c == '\t')
        return (size_t)snprintf(out, 8, "\\t");
    if (c < 0x20 || c == 0x7f)
        return (size_t)snprintf(out, 8, "\\u00%c%c", hex[c >> 4], hex[c & 15]);
    l = json_utf8_seqlen(s, n);
    if (l == 0) {
        memcpy(out, "\xef\xbf\xbd", 3); /* U+FFFD */
        return 3;
    }
    memcpy(out, s, l);
    *used = l;
    return l;
}

/* Appends s as a JSON string, clipping it with "..." past LOG_VALUE_MAX escaped bytes. */
static void put_str(struct line *l, const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t n = strlen(s), i = 0, done = 0, used, k;
    char e[8];

    put(l, "\"", 1);
    while (i < n) {
        k = escape_one(p + i, n - i, e, &used);
        if (done + k > LOG_VALUE_MAX) {
            put(l, "...", 3);
            break;
        }
        put(l, e, k);
        done += k;
        i += used;
    }
    put(l, "\"", 1);
}

/* Appends ,"k":"v" (v NULL: null) or rolls back entirely if it does not fit. */
static int put_pair(struct line *l, const char *k, const char *v)
{
    size_t mark = l->len;

    if (mark > 1)
        put(l, ",", 1);
    put_str(l, k);
    put(l, ":", 1);
    if (v != NULL)
        put_str(l, v);
    else
        put(l, "null", 4);
    if (!l->over)
        return 0;
    l->len = mark;
    return -1;
}

static void put_ts(struct line *l)
{
    struct timespec ts;
    struct tm tm;
    char s[32];
    size_t n;

    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    n = strftime(s, sizeof s, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(s + n, sizeof s - n, ".%03ldZ", ts.tv_nsec / 1000000);
    put_pair(l, "ts", s);
}

static void write_all(const char *p, size_t n)
{
    ssize_t w;

    pthread_mutex_lock(&log_mu);
    while (n > 0) {
        w = write(STDERR_FILENO, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            break;
        p += w;
        n -= (size_t)w;
    }
    pthread_mutex_unlock(&log_mu);
}

/* Closes the object (flagging a clipped line) and writes it. */
static void finish(struct line *l)
{
    static const char trunc[] = ",\"truncated\":true";

    if (l->over) {
        memcpy(l->b + l->len, trunc, sizeof trunc - 1);
        l->len += sizeof trunc - 1;
    }
    memcpy(l->b + l->len, "}\n", 2);
    l->len += 2;
    write_all(l->b, l->len);
}

static void log_v(enum log_level lvl, const char *rid, const char *event, const char *msg,
                  va_list ap)
{
    struct line l;
    const char *k, *v;
    int full;

    l.len = 0;
    l.over = 0;
    put(&l, "{", 1);
    put_ts(&l);
    put_pair(&l, "level", level_names[lvl]);
    put_pair(&l, "service", log_service);
    put_pair(&l, "event", event ? event : "");
    if (rid != NULL)
        put_pair(&l, "request_id", rid);
    full = put_pair(&l, "msg", msg ? msg : "") < 0;
    /* A NULL value ends the list too, so an odd argument count never reads past the end. */
    while (!full && (k = va_arg(ap, const char *)) != NULL) {
        v = va_arg(ap, const char *);
        full = put_pair(&l, k, v) < 0;
        if (v == NULL)
            break;
    }
    finish(&l);
}

void log_kv(enum log_level lvl, const char *rid, const char *event, const char *msg, ...)
{
    va_list ap;

    if ((unsigned)lvl > LOG_ERROR)
        lvl = LOG_ERROR;
    if (!log_enabled(lvl))
        return;
    va_start(ap, msg);
    log_v(lvl, rid, event, msg, ap);
    va_end(ap);
}

void fatal(const char *event, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    log_kv(LOG_ERROR, NULL, event, msg, (char *)NULL);
    exit(1);
}
