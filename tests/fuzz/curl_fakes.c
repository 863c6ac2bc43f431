/* curl_fakes: libcurl's easy transfer calls defined inside a harness binary (they take
 * precedence over libcurl's), so the real S3 and API clients run on scripted fuzzed answers. */
/* #included first by fuzz_s3_xml.c and fuzz_pixctl.c (before any curl.h, hence this define). */
#define CURL_DISABLE_TYPECHECK 1
#include <curl/curl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* Input format of a script: answers separated by a line "=====". An answer that starts with
 * "HTTP/" has a head (status line and header lines, up to a blank line) and then its body;
 * any other answer is the body of a 200. When the script runs out, transfers fail as if the
 * connection were refused. */
#define FAKE_SEP "\n=====\n"
#define FAKE_MAX 64

struct fake_answer {
    long status;
    const char *head; /* header lines after the status line, '\n' separated */
    size_t headlen;
    const char *body;
    size_t bodylen;
    long long content_length; /* from a Content-Length header, else -1 */
};

static struct {
    struct fake_answer a[FAKE_MAX];
    int n, next;
    long status; /* of the last answer, for CURLINFO_RESPONSE_CODE */
    long long content_length;
    int performed;
    curl_write_callback write_fn, header_fn;
    void *write_data, *header_data;
} fake;

static const char *fake_memmem(const char *h, size_t hl, const char *n)
{
    return memmem(h, hl, n, strlen(n));
}

/* Decimal digits at p (blanks skipped, at most 15, none past end). */
static long long fake_number(const char *p, const char *end)
{
    long long v = 0;

    while (p < end && *p == ' ')
        p++;
    for (int i = 0; p < end && *p >= '0' && *p <= '9' && i < 15; i++)
        v = v * 10 + (*p++ - '0');
    return v;
}

/* Splits text (which must outlive the transfers) into answers. */
static void fake_script(const char *text, size_t len)
{
    memset(&fake, 0, sizeof fake);
    while (fake.n < FAKE_MAX) {
        const char *sep = fake_memmem(text, len, FAKE_SEP);
        size_t n = sep ? (size_t)(sep - text) : len;
        struct fake_answer *a = &fake.a[fake.n++];
        a->status = 200;
        a->body = text;
        a->bodylen = n;
        a->content_length = -1;
        if (n > 9 && !memcmp(text, "HTTP/", 5)) {
            const char *sp = memchr(text, ' ', n), *eol = memchr(text, '\n', n);
            const char *end = fake_memmem(text, n, "\n\n");
            if (sp && (!eol || sp < eol))
                a->status = fake_number(sp + 1, text + n) % 1000;
            a->head = eol ? eol + 1 : text + n;
            a->headlen = end && eol && end >= eol ? (size_t)(end - eol) : 0;
            a->body = end ? end + 2 : text + n;
            a->bodylen = (size_t)(text + n - a->body);
            const char *cl = fake_memmem(a->head, a->headlen, "Content-Length:");
            if (cl)
                a->content_length = fake_number(cl + 15, a->head + a->headlen);
        }
        if (!sep)
            break;
        text = sep + strlen(FAKE_SEP);
        len -= n + strlen(FAKE_SEP);
    }
}

/* Hands one header line (CRLF added) to the header callback in an exact-size buffer: libcurl
 * does not promise a terminating NUL. 0, or -1 if the callback refused it. */
static int fake_header(const char *p, size_t n)
{
    char *line = malloc(n + 2);
    size_t rc = n + 2;

    if (!line)
        abort();
    memcpy(line, p, n);
    memcpy(line + n, "\r\n", 2);
    if (fake.header_fn)
        rc = fake.header_fn(line, 1, n + 2, fake.header_data);
    free(line);
    return rc == n + 2 ? 0 : -1;
}

/* The body in pieces of at most 1000 bytes, each in an exact-size buffer. */
static int fake_body(const char *p, size_t n)
{
    while (n > 0) {
        size_t k = n < 1000 ? n : 1000, rc = k;
        char *piece = malloc(k);
        if (!piece)
            abort();
        memcpy(piece, p, k);
        if (fake.write_fn)
            rc = fake.write_fn(piece, 1, k, fake.write_data);
        free(piece);
        if (rc != k)
            return -1;
        p += k, n -= k;
    }
    return 0;
}

CURLcode curl_easy_setopt(CURL *k, CURLoption opt, ...)
{
    va_list ap;

    va_start(ap, opt);
    switch (opt) {
    case CURLOPT_WRITEFUNCTION:
        fake.write_fn = va_arg(ap, curl_write_callback);
        break;
    case CURLOPT_WRITEDATA:
        fake.write_data = va_arg(ap, void *);
        break;
    case CURLOPT_HEADERFUNCTION:
        fake.header_fn = va_arg(ap, curl_write_callback);
        break;
    case CURLOPT_HEADERDATA:
        fake.header_data = va_arg(ap, void *);
        break;
    default:
        break;
    }
    va_end(ap);
    return CURLE_OK;
}

CURLcode curl_easy_perform(CURL *k)
{
    struct fake_answer *a;
    char status[64];
    int n;

    fake.performed++;
    fake.status = 0;
    fake.content_length = -1;
    if (fake.next >= fake.n)
        return CURLE_COULDNT_CONNECT;
    a = &fake.a[fake.next++];
    n = snprintf(status, sizeof status, "HTTP/1.1 %03ld Fuzzed", a->status);
    fake.status = a->status;
    fake.content_length = a->content_length;
    if (fake_header(status, (size_t)n) < 0)
        return CURLE_WRITE_ERROR;
    for (const char *p = a->head, *end = p ? p + a->headlen : NULL; p && p < end;) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end;
        /* a status line comes only first (interim 1xx answers are not scripted) */
        if ((le - p < 5 || memcmp(p, "HTTP/", 5)) &&
            fake_header(p, (size_t)(le - p - (le > p && le[-1] == '\r'))) < 0)
            return CURLE_WRITE_ERROR;
        p = nl ? nl + 1 : end;
    }
    if (fake_header("", 0) < 0 || fake_body(a->body, a->bodylen) < 0)
        return CURLE_WRITE_ERROR;
    return CURLE_OK;
}

CURLcode curl_easy_getinfo(CURL *k, CURLINFO info, ...)
{
    va_list ap;

    va_start(ap, info);
    if (info == CURLINFO_RESPONSE_CODE)
        *va_arg(ap, long *) = fake.status;
    else if (info == CURLINFO_CONTENT_LENGTH_DOWNLOAD_T)
        *va_arg(ap, curl_off_t *) = (curl_off_t)fake.content_length;
    else if ((info & CURLINFO_TYPEMASK) == CURLINFO_STRING)
        *va_arg(ap, char **) = NULL;
    else if ((info & CURLINFO_TYPEMASK) == CURLINFO_LONG)
        *va_arg(ap, long *) = 0;
    else if ((info & CURLINFO_TYPEMASK) == CURLINFO_DOUBLE)
        *va_arg(ap, double *) = 0;
    else if ((info & CURLINFO_TYPEMASK) == CURLINFO_OFF_T)
        *va_arg(ap, curl_off_t *) = 0;
    va_end(ap);
    return CURLE_OK;
}
