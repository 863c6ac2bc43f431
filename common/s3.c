/* s3: S3 client on reused libcurl handles (keep-alive): SigV4 header-signed requests, streaming
 * and parallel ranged GETs, multipart calls, paginated listings, and presigned URLs. */
#include "s3.h"

#include <curl/curl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define S3_BUFFERSIZE (512L * 1024)     /* libcurl receive and send buffers */
#define S3_BODY_MAX (64u * 1024 * 1024) /* cap on a buffered (not streamed) response */
#define S3_MAX_PART 10000
#define S3_CONNECT_TIMEOUT 5.0 /* seconds */

struct s3_client {
    char *base;        /* request base: "scheme://host[:port]" or "scheme://bucket.host..." */
    char *pub_base;    /* the same for presigned URLs */
    char *bucket_path; /* "/bucket" path-style, "" virtual-hosted */
    char *bucket;
    long timeout_ms;
    long stall_secs;
    long connect_timeout_ms;
    int page_size; /* max-keys / max-parts / max-uploads, 0 = server default */
    int verify_streams;
    long long verify_range;
    sigv4_signer *signer;
    CURL *curl;
    CURLM *multi;                          /* s3_get_ranges: NULL until first used */
    struct s3_slot *slots[S3_STREAMS_MAX]; /* its streams, kept with their connections */
    int nslots;
    char curl_err[CURL_ERROR_SIZE];
    int status;        /* HTTP status of the last response, 0 if none */
    char code[64];     /* S3 error Code of the last response, "" if none */
    char message[160]; /* S3 error Message */
    char etag[72];     /* ETag header of the last response */
    char last_modified[64];
    buf body;  /* buffered response body */
    buf path;  /* raw path of the current request */
    buf ppath; /* raw path of the current presigned URL */
    buf url;
    buf auth;
};

/* One request. headers are signed and sent. */
struct s3_req {
    const char *method;
    const char *key; /* NULL: the bucket itself */
    const struct sigv4_kv *query;
    size_t nq;
    const struct sigv4_kv *headers;
    size_t nh;
    const void *body;
    size_t body_len;
    s3_sink sink; /* 2xx body goes here instead of the buffer */
    void *ud;
    int ranged;  /* Range was sent: only 206 may reach the sink */
    int long_op; /* may take long with little traffic: no total timeout, the stall limit */
};

/* Per-transfer state handed to the libcurl callbacks: the client's own transfer, or one
 * stream of s3_get_ranges. */
struct s3_xfer {
    const struct s3_req *r;
    CURL *k;        /* the easy handle running it */
    char *curl_err; /* its error buffer, CURL_ERROR_SIZE bytes */
    buf *body;      /* where a body not for the sink goes */
    size_t sent;
    const char *why; /* set when a callback aborted the transfer */
    int status;      /* of the response being received */
    char etag[72];
    char last_modified[64];
    char content_range[80];
};

/* One stream of s3_get_ranges. Its handle (and connection) outlives the call. */
struct s3_slot {
    CURL *k;
    char curl_err[CURL_ERROR_SIZE];
    struct s3_ranges *g; /* the call it serves */
    struct s3_xfer x;
    struct s3_req r;
    struct sigv4_kv h[1]; /* the signed Range header */
    char range[64];
    struct curl_slist *hdrs;
    buf errbody;
    char *mem;     /* the range's bytes while an earlier range is being delivered */
    size_t held;   /* bytes in mem */
    long long idx; /* the range it holds (while busy) */
    long long off, len, got, total; /* total: Content-Range's, -1 until seen */
    int busy;                       /* holds range idx until it is delivered */
    int added;                      /* in the multi handle */
    int done;                       /* every byte of the range arrived */
};

/* One s3_get_ranges call. Ranges are started and delivered in order; `next` is the one being
 * delivered (its bytes go straight to the sink). */
struct s3_ranges {
    s3_client *c;
    const char *key;
    long long size, range_len, nranges, started, next;
    int streams;
    s3_sink sink;
    void *ud;
};

static void s3_slot_free(struct s3_slot *s);

static char *s3_base_for(const char *endpoint, const char *bucket, int path_style)
{
    buf b = {0}, n = {0};
    char err[ERR_MAX];
    if (sigv4_normalize_base(&n, endpoint, err) < 0)
        goto fail;
    if (path_style)
        return n.data;
    const char *host = strstr(n.data, "://") + 3;
    if (buf_printf(&b, "%.*s%s.%s", (int)(host - n.data), n.data, bucket, host) < 0)
        goto fail;
    buf_free(&n);
    return b.data;
fail:
    buf_free(&n);
    buf_free(&b);
    return NULL;
}

static long s3_ms(double secs)
{
    return secs > 0 ? (long)(secs * 1000 + 0.5) : 0;
}

/* Bucket names go into a path or a host name unencoded: letters, digits, '.', '-', '_'. */
static int s3_bucket_ok(const char *b)
{
    size_t n = b ? strlen(b) : 0;
    return n > 0 && n <= 255 &&
           strspn(b, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_") == n;
}

struct s3_config s3_config_from_store(const struct conf_store *st)
{
    return (struct s3_config){.endpoint = st->s3_endpoint,
                              .bucket = st->s3_bucket,
                              .region = st->s3_region,
                              .access_key = st->s3_access_key,
                              .secret_key = st->s3_secret_key,
                              .path_style = st->s3_path_style,
                              .timeout = st->s3_timeout,
                              .stall_timeout = st->s3_stall_timeout,
                              .connect_timeout = S3_CONNECT_TIMEOUT,
                              .verify_streams = (int)st->verify_streams,
                              .verify_range = st->verify_range};
}

s3_client *s3_client_new(const struct s3_config *cfg)
{
    if (!cfg || !cfg->endpoint || !s3_bucket_ok(cfg->bucket) || !cfg->region || !cfg->access_key ||
        !cfg->secret_key)
        return NULL;
    s3_client *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    const char *pub =
        cfg->public_endpoint && *cfg->public_endpoint ? cfg->public_endpoint : cfg->endpoint;
    c->base = s3_base_for(cfg->endpoint, cfg->bucket, cfg->path_style);
    c->pub_base = s3_base_for(pub, cfg->bucket, cfg->path_style);
    c->bucket = strdup(cfg->bucket);
    c->bucket_path = malloc(strlen(cfg->bucket) + 2);
    c->signer = sigv4_signer_new(cfg->access_key, cfg->secret_key, cfg->region, "s3");
    c->curl = curl_easy_init();
    if (!c->base || !c->pub_base || !c->bucket || !c->bucket_path || !c->signer || !c->curl)
        goto fail;
    if (cfg->path_style)
        sprintf(c->bucket_path, "/%s", cfg->bucket);
    else
        c->bucket_path[0] = '\0';
    c->timeout_ms = s3_ms(cfg->timeout);
    c->connect_timeout_ms = s3_ms(cfg->connect_timeout);
    c->stall_secs = cfg->stall_timeout > 0 ? (long)ceil(cfg->stall_timeout) : 0;
    c->verify_streams = cfg->verify_streams > 0 ? cfg->verify_streams : CONF_VERIFY_STREAMS;
    c->verify_range = cfg->verify_range > 0 ? cfg->verify_range : CONF_VERIFY_RANGE_MIB << 20;
    return c;
fail:
    s3_client_free(c);
    return NULL;
}

void s3_client_free(s3_client *c)
{
    if (!c)
        return;
    if (c->curl)
        curl_easy_cleanup(c->curl);
    for (int i = 0; i < c->nslots; i++)
        s3_slot_free(c->slots[i]);
    if (c->multi)
        curl_multi_cleanup(c->multi);
    sigv4_signer_free(c->signer);
    free(c->base);
    free(c->pub_base);
    free(c->bucket_path);
    free(c->bucket);
    buf_free(&c->body);
    buf_free(&c->path);
    buf_free(&c->ppath);
    buf_free(&c->url);
    buf_free(&c->auth);
    free(c);
}

int s3_last_status(const s3_client *c)
{
    return c ? c->status : 0;
}

const char *s3_last_code(const s3_client *c)
{
    return c ? c->code : "";
}

void s3_set_page_size(s3_client *c, int n)
{
    c->page_size = n > 0 && n <= 1000 ? n : 0;
}

/* ---- XML: a small extractor for the flat S3 responses (no DTDs, CDATA or nesting of the
 * same element). Text never holds a raw '<', so a tag search cannot match inside a value. */

static int s3_utf8_put(buf *out, unsigned long cp)
{
    static const unsigned char lead[] = {0, 0x00, 0xC0, 0xE0, 0xF0};
    unsigned char u[4];
    size_t n = cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
    if (cp == 0 || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return -1;
    for (size_t i = n - 1; i > 0; i--, cp >>= 6)
        u[i] = (unsigned char)(0x80 | (cp & 0x3F));
    u[0] = (unsigned char)(lead[n] | cp);
    return buf_append(out, u, n);
}

/* Decodes one entity at p (just after '&', up to ';' before end) into out; *len its length. */
static int s3_xml_entity(buf *out, const char *p, const char *end, size_t *len)
{
    static const struct {
        const char *name;
        char ch;
    } named[] = {{"amp", '&'}, {"lt", '<'}, {"gt", '>'}, {"quot", '"'}, {"apos", '\''}};
    const char *semi = memchr(p, ';', (size_t)(end - p));
    if (!semi || semi - p > 10)
        return -1;
    *len = (size_t)(semi - p) + 1;
    for (size_t i = 0; i < ARRAY_LEN(named); i++) {
        if ((size_t)(semi - p) == strlen(named[i].name) && !memcmp(p, named[i].name, *len - 1))
            return buf_append(out, &named[i].ch, 1);
    }
    if (*p != '#' || semi - p < 2)
        return -1;
    char num[12], *e;
    int hex = p[1] == 'x' || p[1] == 'X';
    size_t digits = (size_t)(semi - p) - 1 - (size_t)hex;
    memcpy(num, p + 1 + hex, digits);
    num[digits] = '\0';
    if (!digits || strspn(num, hex ? "0123456789abcdefABCDEF" : "0123456789") != digits)
        return -1;
    unsigned long cp = strtoul(num, &e, hex ? 16 : 10);
    return s3_utf8_put(out, cp);
}

/* Appends the decoded text of [p, end) to out. 0 or -1 (bad entity, out of memory). */
static int s3_xml_text(buf *out, const char *p, const char *end)
{
    while (p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *stop = amp ? amp : end;
        size_t len;
        if (buf_append(out, p, (size_t)(stop - p)) < 0)
            return -1;
        if (!amp)
            break;
        if (s3_xml_entity(out, amp + 1, end, &len) < 0)
            return -1;
        p = amp + 1 + len;
    }
    return 0;
}

static int s3_xml_name_end(char ch)
{
    return ch == '>' || ch == '/' || ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n';
}

/* Finds the first element <tag> in [p, end): its content is [*vs, *ve). Returns the position
 * after its end tag, or NULL if there is none. <tag/> has empty content. */
static const char *s3_xml_find(const char *p, const char *end, const char *tag, const char **vs,
                               const char **ve)
{
    size_t n = strlen(tag);
    for (const char *q = p; (q = memchr(q, '<', (size_t)(end - q))) != NULL; q++) {
        if ((size_t)(end - q) < n + 2 || memcmp(q + 1, tag, n) || !s3_xml_name_end(q[1 + n]))
            continue;
        const char *gt = memchr(q + 1 + n, '>', (size_t)(end - q - 1 - n));
        if (!gt)
            return NULL;
        *vs = gt + 1;
        if (gt[-1] == '/')
            return *ve = gt + 1;
        for (const char *c = gt + 1; (c = memmem(c, (size_t)(end - c), "</", 2)) != NULL; c += 2) {
            if ((size_t)(end - c) < n + 3 || memcmp(c + 2, tag, n) || !s3_xml_name_end(c[2 + n]))
                continue;
            const char *cgt = memchr(c + 2 + n, '>', (size_t)(end - c - 2 - n));
            if (!cgt)
                return NULL;
            *ve = c;
            return cgt + 1;
        }
        return NULL;
    }
    return NULL;
}

/* Decoded text of the first <tag> in [p, end) into out (reset first).
 * 1 found, 0 absent, -1 malformed (a NUL in a value is: C strings would cut a marker short
 * and a listing would ask for the same page again; found by fuzz_s3_xml). */
static int s3_xml_get(const char *p, const char *end, const char *tag, buf *out)
{
    const char *vs, *ve;
    buf_reset(out);
    if (!s3_xml_find(p, end, tag, &vs, &ve))
        return 0;
    if (s3_xml_text(out, vs, ve) < 0 || (out->len && memchr(out->data, '\0', out->len)))
        return -1;
    if (!out->data && buf_puts(out, "") < 0)
        return -1;
    return 1;
}

/* The same into a fixed array; a value that does not fit is malformed. */
static int s3_xml_copy(const char *p, const char *end, const char *tag, char *out, size_t size)
{
    buf b = {0};
    int rc = s3_xml_get(p, end, tag, &b);
    out[0] = '\0';
    if (rc == 1 && b.len >= size)
        rc = -1;
    if (rc == 1)
        memcpy(out, b.data, b.len + 1);
    buf_free(&b);
    return rc;
}

static int s3_xml_true(const char *p, const char *end, const char *tag)
{
    char v[8];
    return s3_xml_copy(p, end, tag, v, sizeof(v)) == 1 && strcmp(v, "true") == 0;
}

/* "2009-10-12T17:50:30.000Z" to a time_t; 0 if unparsable. */
static time_t s3_parse_iso8601(const char *s)
{
    struct tm tm = {0};
    int n = 0;
    if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
               &tm.tm_min, &tm.tm_sec, &n) != 6 ||
        n != 19)
        return 0;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    time_t t = timegm(&tm);
    return t < 0 ? 0 : t;
}

static int s3_parse_ll(const char *s, long long *out)
{
    char *e;
    if (!*s)
        return -1;
    *out = strtoll(s, &e, 10);
    return *e || *out < 0 ? -1 : 0;
}

/* An <Error> document in the last body: Code and Message into the client. 1 if there is. */
static int s3_body_error(s3_client *c)
{
    const char *vs, *ve, *p = c->body.data, *end = p ? p + c->body.len : NULL;
    if (!p || !s3_xml_find(p, end, "Error", &vs, &ve))
        return 0;
    if (s3_xml_copy(vs, ve, "Code", c->code, sizeof(c->code)) != 1 || !c->code[0])
        snprintf(c->code, sizeof(c->code), "?");
    if (s3_xml_copy(vs, ve, "Message", c->message, sizeof(c->message)) != 1)
        c->message[0] = '\0';
    return 1;
}

/* ---- libcurl transfer */

static size_t s3_read_cb(char *dst, size_t size, size_t n, void *ud)
{
    struct s3_xfer *x = ud;
    size_t left = x->r->body_len - x->sent, take = size * n < left ? size * n : left;
    if (take)
        memcpy(dst, (const char *)x->r->body + x->sent, take);
    x->sent += take;
    return take;
}

/* libcurl rewinds the body when it re-sends on a fresh connection. */
static int s3_seek_cb(void *ud, curl_off_t off, int origin)
{
    struct s3_xfer *x = ud;
    if (origin != SEEK_SET || off < 0 || (size_t)off > x->r->body_len)
        return CURL_SEEKFUNC_FAIL;
    x->sent = (size_t)off;
    return CURL_SEEKFUNC_OK;
}

static size_t s3_write_cb(char *p, size_t size, size_t n, void *ud)
{
    struct s3_xfer *x = ud;
    size_t len = size * n;
    if (x->r->sink && x->status / 100 == 2) {
        if (x->r->ranged && x->status != 206) {
            x->why = "server ignored Range";
            return 0;
        }
        if (x->r->sink(p, len, x->r->ud) != 0) {
            x->why = x->why ? x->why : "stopped by the sink";
            return 0;
        }
        return len;
    }
    if (x->body->len + len > S3_BODY_MAX) {
        x->why = "response body too large";
        return 0;
    }
    return buf_append(x->body, p, len) < 0 ? 0 : len;
}

/* Copies a header's value (trimmed) into out if the line is "name: value". */
static void s3_header_take(const char *line, size_t len, const char *name, char *out, size_t size)
{
    size_t n = strlen(name);
    if (len <= n || strncasecmp(line, name, n) || line[n] != ':')
        return;
    const char *v = line + n + 1, *e = line + len;
    while (v < e && (*v == ' ' || *v == '\t'))
        v++;
    while (e > v && (e[-1] == '\r' || e[-1] == '\n' || e[-1] == ' ' || e[-1] == '\t'))
        e--;
    if ((size_t)(e - v) >= size)
        e = v; /* too long to be real: keep none */
    memcpy(out, v, (size_t)(e - v));
    out[e - v] = '\0';
}

static size_t s3_header_cb(char *line, size_t size, size_t n, void *ud)
{
    struct s3_xfer *x = ud;
    size_t len = size * n;
    int status;
    if (len > 5 && memcmp(line, "HTTP/", 5) == 0) {
        /* A new response (after a 1xx too): forget what the previous one said. */
        if (sscanf(line, "HTTP/%*s %d", &status) == 1)
            x->status = status;
        x->etag[0] = x->last_modified[0] = x->content_range[0] = '\0';
        return len;
    }
    s3_header_take(line, len, "ETag", x->etag, sizeof(x->etag));
    s3_header_take(line, len, "Last-Modified", x->last_modified, sizeof(x->last_modified));
    s3_header_take(line, len, "Content-Range", x->content_range, sizeof(x->content_range));
    return len;
}

/* Builds c->path (raw) and c->url (encoded path, canonical query) for r. */
static int s3_req_url(s3_client *c, const struct s3_req *r, char *err)
{
    buf_reset(&c->path);
    buf_reset(&c->url);
    if (buf_puts(&c->path, c->bucket_path) < 0 ||
        (r->key && buf_printf(&c->path, "/%s", r->key) < 0) ||
        (!c->path.len && buf_puts(&c->path, "/") < 0) || buf_puts(&c->url, c->base) < 0 ||
        sigv4_uri_encode(&c->url, c->path.data, c->path.len, 1) < 0 ||
        (r->nq && buf_puts(&c->url, "?") < 0)) {
        err_set(err, "s3: out of memory");
        return -1;
    }
    return sigv4_canonical_query(&c->url, r->query, r->nq, err);
}

static int s3_slist_add(struct curl_slist **h, const char *name, const char *value)
{
    buf line = {0};
    struct curl_slist *t = NULL;
    if (buf_printf(&line, "%s: %s", name, value) == 0)
        t = curl_slist_append(*h, line.data);
    buf_free(&line);
    if (!t)
        return -1;
    *h = t;
    return 0;
}

/* Signs r and returns its header list (Authorization, x-amz-*, r's headers), or NULL. */
static struct curl_slist *s3_req_headers(s3_client *c, const struct s3_req *r, char *err)
{
    char sha[65], date[17];
    struct curl_slist *h = NULL;
    buf_reset(&c->auth);
    if (sigv4_sha256_hex(r->body ? r->body : "", r->body_len, sha) < 0) {
        err_set(err, "s3: OpenSSL failure");
        return NULL;
    }
    if (sigv4_sign_headers(c->signer, r->method, c->base, c->path.data, r->query, r->nq, r->headers,
                           r->nh, sha, time(NULL), &c->auth, date, err) < 0)
        return NULL;
    if (s3_slist_add(&h, "Authorization", c->auth.data) < 0 ||
        s3_slist_add(&h, "x-amz-date", date) < 0 ||
        s3_slist_add(&h, "x-amz-content-sha256", sha) < 0 || !(h = curl_slist_append(h, "Expect:")))
        goto oom;
    for (size_t i = 0; i < r->nh; i++) {
        if (s3_slist_add(&h, r->headers[i].key, r->headers[i].value) < 0)
            goto oom;
    }
    return h;
oom:
    curl_slist_free_all(h);
    err_set(err, "s3: out of memory");
    return NULL;
}

static void s3_curl_method(CURL *k, const struct s3_req *r)
{
    if (strcmp(r->method, "HEAD") == 0) {
        curl_easy_setopt(k, CURLOPT_NOBODY, 1L);
    } else if (strcmp(r->method, "PUT") == 0 || strcmp(r->method, "POST") == 0) {
        curl_easy_setopt(k, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(k, CURLOPT_INFILESIZE_LARGE, (curl_off_t)r->body_len);
        curl_easy_setopt(k, CURLOPT_CUSTOMREQUEST, r->method);
    } else if (strcmp(r->method, "GET") != 0) {
        curl_easy_setopt(k, CURLOPT_CUSTOMREQUEST, r->method);
    }
}

/* Sets x->k up to run x->r on c->url (its connection and DNS cache survive the reset). */
static void s3_curl_setup(s3_client *c, struct s3_xfer *x, struct curl_slist *h)
{
    CURL *k = x->k;
    curl_easy_reset(k);
    x->curl_err[0] = '\0';
    curl_easy_setopt(k, CURLOPT_URL, c->url.data);
    curl_easy_setopt(k, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(k, CURLOPT_USERAGENT, "pixplane-s3/1");
    curl_easy_setopt(k, CURLOPT_ERRORBUFFER, x->curl_err);
    curl_easy_setopt(k, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(k, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(k, CURLOPT_BUFFERSIZE, S3_BUFFERSIZE);
    curl_easy_setopt(k, CURLOPT_UPLOAD_BUFFERSIZE, S3_BUFFERSIZE);
    curl_easy_setopt(k, CURLOPT_TCP_KEEPALIVE, 1L);
    /* a hung server or connection cannot hold the caller: streamed reads and completions
     * (long, but moving or kept alive) by the stall limit, everything else by both */
    curl_easy_setopt(k, CURLOPT_TIMEOUT_MS, x->r->sink || x->r->long_op ? 0L : c->timeout_ms);
    curl_easy_setopt(k, CURLOPT_LOW_SPEED_LIMIT, c->stall_secs ? 1024L : 0L);
    curl_easy_setopt(k, CURLOPT_LOW_SPEED_TIME, c->stall_secs);
    curl_easy_setopt(k, CURLOPT_CONNECTTIMEOUT_MS, c->connect_timeout_ms);
    curl_easy_setopt(k, CURLOPT_HEADERFUNCTION, s3_header_cb);
    curl_easy_setopt(k, CURLOPT_HEADERDATA, x);
    curl_easy_setopt(k, CURLOPT_WRITEFUNCTION, s3_write_cb);
    curl_easy_setopt(k, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(k, CURLOPT_READFUNCTION, s3_read_cb);
    curl_easy_setopt(k, CURLOPT_READDATA, x);
    curl_easy_setopt(k, CURLOPT_SEEKFUNCTION, s3_seek_cb);
    curl_easy_setopt(k, CURLOPT_SEEKDATA, x);
    s3_curl_method(k, x->r);
}

/* Maps a finished non-2xx response to S3_NOTFOUND (404, except a missing bucket, which is
 * a configuration error) or S3_ERR, with the S3 error Code and Message in err. */
static int s3_http_fail(s3_client *c, const struct s3_req *r, char *err)
{
    if (!s3_body_error(c) && c->status == 404)
        snprintf(c->code, sizeof(c->code), "NotFound");
    err_set(err, "s3: %s %s: HTTP %d %s%s%s", r->method, c->path.data, c->status, c->code,
            c->message[0] ? ": " : "", c->message);
    if (c->status == 404 && strcmp(c->code, "NoSuchBucket") != 0)
        return S3_NOTFOUND;
    return S3_ERR;
}

static void s3_last_reset(s3_client *c)
{
    c->status = 0;
    c->code[0] = c->message[0] = c->etag[0] = c->last_modified[0] = c->curl_err[0] = '\0';
    buf_reset(&c->body);
}

/* A transfer libcurl ended in error: why a callback stopped it, or libcurl's reason. */
static void s3_xfer_fail(s3_client *c, const struct s3_xfer *x, CURLcode rc, char *err)
{
    err_set(err, "s3: %s %s: %s", x->r->method, c->path.data,
            x->why           ? x->why
            : x->curl_err[0] ? x->curl_err
                             : curl_easy_strerror(rc));
}

/* Signs and runs r: S3_OK on 2xx (body in c->body unless streamed), else see s3_http_fail. */
static int s3_perform(s3_client *c, const struct s3_req *r, char *err)
{
    struct s3_xfer x = {.r = r, .k = c->curl, .curl_err = c->curl_err, .body = &c->body};
    struct curl_slist *h = NULL;
    long status = 0;
    s3_last_reset(c);
    if (s3_req_url(c, r, err) < 0 || !(h = s3_req_headers(c, r, err)))
        goto fail;
    s3_curl_setup(c, &x, h);
    CURLcode rc = curl_easy_perform(c->curl);
    curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &status);
    c->status = (int)status;
    memcpy(c->etag, x.etag, sizeof(c->etag));
    memcpy(c->last_modified, x.last_modified, sizeof(c->last_modified));
    if (rc != CURLE_OK) {
        s3_xfer_fail(c, &x, rc, err);
        goto fail;
    }
    curl_slist_free_all(h);
    return c->status / 100 == 2 ? S3_OK : s3_http_fail(c, r, err);
fail:
    curl_slist_free_all(h);
    return S3_ERR;
}

/* ---- bucket and object calls */

int s3_head_bucket(s3_client *c, char *err)
{
    struct s3_req r = {.method = "HEAD"};
    return s3_perform(c, &r, err);
}

int s3_head_object(s3_client *c, const char *key, struct s3_object *out, char *err)
{
    struct s3_req r = {.method = "HEAD", .key = key};
    curl_off_t len = -1;
    int rc = s3_perform(c, &r, err);
    if (rc != S3_OK || !out)
        return rc;
    curl_easy_getinfo(c->curl, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &len);
    out->size = (long long)len;
    snprintf(out->etag, sizeof(out->etag), "%s", c->etag);
    time_t t = c->last_modified[0] ? curl_getdate(c->last_modified, NULL) : 0;
    out->last_modified = t < 0 ? 0 : t;
    return S3_OK;
}

int s3_get_object(s3_client *c, const char *key, long long offset, long long len, s3_sink sink,
                  void *ud, char *err)
{
    char range[64];
    struct sigv4_kv h[] = {{"Range", range}};
    struct s3_req r = {.method = "GET", .key = key, .sink = sink, .ud = ud};
    if (offset < 0 || len < -1 || !sink) {
        err_set(err, "s3: bad range or no sink");
        return S3_ERR;
    }
    if (len == 0)
        return s3_head_object(c, key, NULL, err); /* nothing to read, but it exists */
    if (len > 0)
        snprintf(range, sizeof(range), "bytes=%lld-%lld", offset, offset + len - 1);
    else
        snprintf(range, sizeof(range), "bytes=%lld-", offset);
    if (offset > 0 || len > 0)
        r.headers = h, r.nh = 1, r.ranged = 1;
    return s3_perform(c, &r, err);
}

/* ---- parallel ranged reads */

static struct s3_slot *s3_slot_new(void)
{
    struct s3_slot *s = calloc(1, sizeof(*s));
    if (s && !(s->k = curl_easy_init())) {
        free(s);
        return NULL;
    }
    return s;
}

static void s3_slot_free(struct s3_slot *s)
{
    if (!s)
        return;
    curl_easy_cleanup(s->k);
    curl_slist_free_all(s->hdrs);
    buf_free(&s->errbody);
    free(s->mem);
    free(s);
}

/* Takes s's transfer out of the multi handle (a running one loses its connection). */
static void s3_slot_detach(s3_client *c, struct s3_slot *s)
{
    if (s->added)
        curl_multi_remove_handle(c->multi, s->k);
    s->added = 0;
    curl_slist_free_all(s->hdrs);
    s->hdrs = NULL;
}

/* The multi handle and `streams` slots, and c->url for the key. */
static int s3_ranges_init(struct s3_ranges *g, char *err)
{
    s3_client *c = g->c;
    struct s3_req r = {.method = "GET", .key = g->key};
    if (!c->multi && (c->multi = curl_multi_init()) != NULL)
        curl_multi_setopt(c->multi, CURLMOPT_MAXCONNECTS, (long)S3_STREAMS_MAX);
    while (c->multi && c->nslots < g->streams && (c->slots[c->nslots] = s3_slot_new()) != NULL)
        c->nslots++;
    if (!c->multi || c->nslots < g->streams) {
        err_set(err, "s3: out of memory");
        return S3_ERR;
    }
    return s3_req_url(c, &r, err) < 0 ? S3_ERR : S3_OK;
}

/* Hands bytes to the caller's sink. 0, or -1 if it refused them. */
static int s3_ranges_emit(struct s3_ranges *g, const void *data, size_t len)
{
    return len && g->sink(data, len, g->ud) != 0 ? -1 : 0;
}

/* The first body bytes of a range: its Content-Range must be the range asked for, of an
 * object of the expected size (an object longer or shorter than that stops here). */
static int s3_range_check(struct s3_slot *s)
{
    long long a, b, total;
    int end = 0;
    if (sscanf(s->x.content_range, "bytes %lld-%lld/%lld%n", &a, &b, &total, &end) != 3 ||
        s->x.content_range[end]) {
        s->x.why = "no usable Content-Range in the 206";
        return -1;
    }
    s->total = total;
    if (total != s->g->size) {
        s->x.why = "the object's size is not the expected one";
        return -1;
    }
    if (a != s->off || b != s->off + s->len - 1) {
        s->x.why = "Content-Range is not the range asked for";
        return -1;
    }
    return 0;
}

/* Sink of one range: straight to the caller's sink while it is the range being delivered,
 * else held in the slot's memory (one range at most). */
static int s3_slot_sink(const void *data, size_t len, void *ud)
{
    struct s3_slot *s = ud;
    struct s3_ranges *g = s->g;
    if (s->got == 0 && s3_range_check(s) < 0)
        return -1;
    if ((long long)len > s->len - s->got) {
        s->x.why = "more bytes than the range";
        return -1;
    }
    s->got += (long long)len;
    if (s->idx == g->next && !s->held)
        return s3_ranges_emit(g, data, len);
    if (!s->mem && !(s->mem = malloc((size_t)g->range_len))) {
        s->x.why = "out of memory";
        return -1;
    }
    memcpy(s->mem + s->held, data, len);
    s->held += len;
    return 0;
}

/* Starts the next range on slot s. */
static int s3_range_start(struct s3_ranges *g, struct s3_slot *s, char *err)
{
    s3_client *c = g->c;
    s->g = g;
    s->idx = g->started++;
    s->off = s->idx * g->range_len;
    s->len = g->size - s->off < g->range_len ? g->size - s->off : g->range_len;
    s->got = s->held = 0;
    s->total = -1;
    s->busy = 1;
    s->done = 0;
    snprintf(s->range, sizeof(s->range), "bytes=%lld-%lld", s->off, s->off + s->len - 1);
    s->h[0] = (struct sigv4_kv){"Range", s->range};
    s->r = (struct s3_req){.method = "GET",
                           .key = g->key,
                           .headers = s->h,
                           .nh = 1,
                           .sink = s3_slot_sink,
                           .ud = s,
                           .ranged = 1};
    buf_reset(&s->errbody);
    s->x = (struct s3_xfer){.r = &s->r, .k = s->k, .curl_err = s->curl_err, .body = &s->errbody};
    if (!(s->hdrs = s3_req_headers(c, &s->r, err)))
        return S3_ERR;
    s3_curl_setup(c, &s->x, s->hdrs);
    curl_easy_setopt(s->k, CURLOPT_PRIVATE, (void *)s);
    if (curl_multi_add_handle(c->multi, s->k) != CURLM_OK) {
        err_set(err, "s3: GET %s: cannot start a ranged transfer", c->path.data);
        return S3_ERR;
    }
    s->added = 1;
    return S3_OK;
}

/* Starts ranges, in order, on the idle slots. */
static int s3_ranges_fill(struct s3_ranges *g, char *err)
{
    for (int i = 0; i < g->streams && g->started < g->nranges; i++) {
        if (!g->c->slots[i]->busy && s3_range_start(g, g->c->slots[i], err) != S3_OK)
            return S3_ERR;
    }
    return S3_OK;
}

/* A range that did not arrive whole: the error, with the size mismatch named if seen. */
static int s3_range_fail(struct s3_ranges *g, struct s3_slot *s, CURLcode res, char *err)
{
    s3_client *c = g->c;
    c->status = s->x.status;
    if (s->total >= 0 && s->total != g->size) {
        err_set(err, "s3: GET %s: the object is %lld bytes, not %lld", c->path.data, s->total,
                g->size);
    } else if (res != CURLE_OK) {
        s3_xfer_fail(c, &s->x, res, err);
    } else if (s->x.status == 416) {
        err_set(err, "s3: GET %s: HTTP 416: the object is shorter than %lld bytes", c->path.data,
                g->size);
    } else if (s->x.status / 100 != 2) {
        buf tmp = c->body; /* the error document, for s3_http_fail */
        c->body = s->errbody;
        s->errbody = tmp;
        return s3_http_fail(c, &s->r, err);
    } else {
        err_set(err, "s3: GET %s: %s: HTTP %d with %lld of %lld bytes", c->path.data, s->range,
                s->x.status, s->got, s->len);
    }
    return S3_ERR;
}

/* Collects the transfers that ended: a whole range is done, anything else the call's error. */
static int s3_ranges_collect(struct s3_ranges *g, char *err)
{
    CURLMsg *m;
    int left, rc = S3_OK;
    while (rc == S3_OK && (m = curl_multi_info_read(g->c->multi, &left)) != NULL) {
        char *p = NULL;
        CURLcode res = m->data.result;
        if (m->msg != CURLMSG_DONE)
            continue;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, &p);
        struct s3_slot *s = (struct s3_slot *)p;
        s3_slot_detach(g->c, s);
        if (res == CURLE_OK && s->x.status == 206 && s->got == s->len)
            s->done = 1;
        else
            rc = s3_range_fail(g, s, res, err);
    }
    return rc;
}

static struct s3_slot *s3_slot_holding(struct s3_ranges *g, long long idx)
{
    for (int i = 0; i < g->streams; i++) {
        if (g->c->slots[i]->busy && g->c->slots[i]->idx == idx)
            return g->c->slots[i];
    }
    return NULL;
}

/* Delivers the finished ranges at the head in order, then what the new head holds so far
 * (its further bytes go straight to the sink). A delivered range frees its slot. */
static int s3_ranges_deliver(struct s3_ranges *g, char *err)
{
    struct s3_slot *s;
    for (int i = 0; i < g->streams && (s = s3_slot_holding(g, g->next)) != NULL; i++) {
        if (s3_ranges_emit(g, s->mem, s->held) < 0) {
            err_set(err, "s3: GET %s: stopped by the sink", g->c->path.data);
            return S3_ERR;
        }
        s->held = 0;
        if (!s->done)
            break;
        s->busy = 0;
        g->next++;
    }
    return S3_OK;
}

/* Runs the transfers until something ends, then collects and delivers. Every transfer ends
 * (whole, failed, or stalled past the stall timeout); a round with none running that
 * delivered nothing cannot happen, and is an error rather than a spin. */
static int s3_ranges_step(struct s3_ranges *g, char *err)
{
    long long before = g->next;
    int running = 0, rc;
    if (curl_multi_perform(g->c->multi, &running) != CURLM_OK) {
        err_set(err, "s3: GET %s: the transfers failed", g->c->path.data);
        return S3_ERR;
    }
    if ((rc = s3_ranges_collect(g, err)) != S3_OK || (rc = s3_ranges_deliver(g, err)) != S3_OK)
        return rc;
    if (!running && g->next == before && g->next < g->nranges) {
        err_set(err, "s3: GET %s: ranged reads stopped without an error", g->c->path.data);
        return S3_ERR;
    }
    if (running && curl_multi_poll(g->c->multi, NULL, 0, 1000, NULL) != CURLM_OK) {
        err_set(err, "s3: GET %s: waiting for the transfers failed", g->c->path.data);
        return S3_ERR;
    }
    return S3_OK;
}

/* The object must exist and be empty. */
static int s3_get_empty(s3_client *c, const char *key, char *err)
{
    struct s3_object obj;
    int rc = s3_head_object(c, key, &obj, err);
    if (rc == S3_OK && obj.size != 0) {
        err_set(err, "s3: HEAD %s: the object is %lld bytes, not 0", c->path.data, obj.size);
        rc = S3_ERR;
    }
    return rc;
}

int s3_get_ranges(s3_client *c, const char *key, long long size, int streams, long long range_len,
                  s3_sink sink, void *ud, char *err)
{
    struct s3_ranges g = {.c = c, .key = key, .size = size, .sink = sink, .ud = ud};
    int rc;
    if (size < 0 || !sink || !key) {
        err_set(err, "s3: bad size or no sink");
        return S3_ERR;
    }
    if (size == 0)
        return s3_get_empty(c, key, err);
    g.range_len = range_len > 0 ? range_len : c->verify_range;
    g.nranges = size / g.range_len + (size % g.range_len != 0);
    g.streams = streams > 0 ? streams : c->verify_streams;
    g.streams = g.streams > S3_STREAMS_MAX ? S3_STREAMS_MAX : g.streams;
    g.streams = g.streams > g.nranges ? (int)g.nranges : g.streams;
    s3_last_reset(c);
    rc = s3_ranges_init(&g, err);
    while (rc == S3_OK && g.next < g.nranges) /* bounded: see s3_ranges_step */
        if ((rc = s3_ranges_fill(&g, err)) == S3_OK)
            rc = s3_ranges_step(&g, err);
    for (int i = 0; i < g.streams && i < c->nslots; i++) {
        s3_slot_detach(c, c->slots[i]);
        c->slots[i]->busy = 0;
        free(c->slots[i]->mem);
        c->slots[i]->mem = NULL;
    }
    if (rc == S3_OK)
        c->status = 206;
    return rc;
}

static int s3_content_type_hdr(struct sigv4_kv *h, const char *content_type)
{
    if (!content_type || !*content_type)
        return 0;
    h->key = "Content-Type";
    h->value = content_type;
    return 1;
}

int s3_put_object(s3_client *c, const char *key, const void *data, size_t len,
                  const char *content_type, char *err)
{
    struct sigv4_kv h[1];
    struct s3_req r = {.method = "PUT", .key = key, .body = data, .body_len = len};
    r.headers = h;
    r.nh = (size_t)s3_content_type_hdr(h, content_type);
    return s3_perform(c, &r, err) == S3_OK ? S3_OK : S3_ERR;
}

int s3_delete_object(s3_client *c, const char *key, char *err)
{
    struct s3_req r = {.method = "DELETE", .key = key};
    int rc = s3_perform(c, &r, err);
    return rc == S3_NOTFOUND ? S3_OK : rc;
}

/* A 2xx whose body is an <Error> (Complete, Copy) failed after all. */
static int s3_check_body(s3_client *c, const struct s3_req *r, int rc, char *err)
{
    if (rc != S3_OK || !s3_body_error(c))
        return rc;
    err_set(err, "s3: %s %s: HTTP %d with error %s%s%s", r->method, c->path.data, c->status,
            c->code, c->message[0] ? ": " : "", c->message);
    return strcmp(c->code, "NoSuchUpload") == 0 ? S3_NOTFOUND : S3_ERR;
}

int s3_copy_object(s3_client *c, const char *src_key, const char *dst_key, char *err)
{
    buf src = {0};
    struct sigv4_kv h[] = {{"x-amz-copy-source", NULL}};
    struct s3_req r = {.method = "PUT", .key = dst_key, .headers = h, .nh = 1};
    if (buf_printf(&src, "/%s/", c->bucket) < 0 ||
        sigv4_uri_encode(&src, src_key, strlen(src_key), 1) < 0) {
        buf_free(&src);
        err_set(err, "s3: out of memory");
        return S3_ERR;
    }
    h[0].value = src.data;
    int rc = s3_check_body(c, &r, s3_perform(c, &r, err), err);
    buf_free(&src);
    return rc;
}

/* ---- multipart uploads */

int s3_create_multipart(s3_client *c, const char *key, const char *content_type, char *upload_id,
                        size_t upload_id_len, char *err)
{
    struct sigv4_kv q[] = {{"uploads", ""}}, h[1];
    struct s3_req r = {.method = "POST", .key = key, .query = q, .nq = 1, .headers = h};
    r.nh = (size_t)s3_content_type_hdr(h, content_type);
    if (s3_check_body(c, &r, s3_perform(c, &r, err), err) != S3_OK)
        return S3_ERR;
    const char *p = c->body.data ? c->body.data : "";
    if (s3_xml_copy(p, p + c->body.len, "UploadId", upload_id, upload_id_len) != 1 ||
        !upload_id[0]) {
        err_set(err, "s3: POST %s?uploads: no usable UploadId in the response", c->path.data);
        return S3_ERR;
    }
    return S3_OK;
}

static int s3_parts_check(const struct s3_part *parts, int nparts, char *err)
{
    if (nparts < 1 || nparts > S3_MAX_PART) {
        err_set(err, "s3: complete needs 1..%d parts", S3_MAX_PART);
        return -1;
    }
    for (int i = 0; i < nparts; i++) {
        if (parts[i].number < 1 || parts[i].number > S3_MAX_PART ||
            (i && parts[i].number <= parts[i - 1].number) || !parts[i].etag[0]) {
            err_set(err, "s3: complete: parts must be numbered 1..%d ascending, with ETags",
                    S3_MAX_PART);
            return -1;
        }
    }
    return 0;
}

/* Appends s with &, < and > escaped. */
static int s3_xml_escape(buf *out, const char *s)
{
    for (; *s; s++) {
        const char *e = *s == '&' ? "&amp;" : *s == '<' ? "&lt;" : *s == '>' ? "&gt;" : NULL;
        if (e ? buf_puts(out, e) < 0 : buf_append(out, s, 1) < 0)
            return -1;
    }
    return 0;
}

static int s3_complete_body(buf *b, const struct s3_part *parts, int nparts)
{
    if (buf_puts(b, "<CompleteMultipartUpload xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">") <
        0)
        return -1;
    for (int i = 0; i < nparts; i++) {
        if (buf_printf(b, "<Part><PartNumber>%d</PartNumber><ETag>", parts[i].number) < 0 ||
            s3_xml_escape(b, parts[i].etag) < 0 || buf_puts(b, "</ETag></Part>") < 0)
            return -1;
    }
    return buf_puts(b, "</CompleteMultipartUpload>");
}

/* A server error on Complete: if the upload no longer exists (radosgw answers 500
 * InternalError for an aborted upload where AWS says 404 NoSuchUpload), it is S3_NOTFOUND,
 * not a failure worth retrying. One ListParts page tells. */
static int s3_complete_gone(s3_client *c, const char *key, const char *upload_id, int rc, char *err)
{
    char why[ERR_MAX];
    struct sigv4_kv q[] = {{"max-parts", "1"}, {"uploadId", upload_id}};
    struct s3_req r = {.method = "GET", .key = key, .query = q, .nq = 2};
    snprintf(why, sizeof(why), "%s", err ? err : "");
    if (s3_perform(c, &r, NULL) != S3_NOTFOUND)
        return rc;
    err_set(err, "%s (the upload no longer exists)", why);
    return S3_NOTFOUND;
}

int s3_complete_multipart(s3_client *c, const char *key, const char *upload_id,
                          const struct s3_part *parts, int nparts, char *err)
{
    buf body = {0};
    struct sigv4_kv q[] = {{"uploadId", upload_id}}, h[] = {{"Content-Type", "application/xml"}};
    struct s3_req r = {
        .method = "POST", .key = key, .query = q, .nq = 1, .headers = h, .nh = 1, .long_op = 1};
    int rc = S3_ERR;
    if (s3_parts_check(parts, nparts, err) < 0)
        goto done;
    if (s3_complete_body(&body, parts, nparts) < 0) {
        err_set(err, "s3: out of memory");
        goto done;
    }
    r.body = body.data;
    r.body_len = body.len;
    /* S3 answers 200 at once and may report a failure in the body minutes later. */
    rc = s3_check_body(c, &r, s3_perform(c, &r, err), err);
    if (rc == S3_ERR && c->status >= 500)
        rc = s3_complete_gone(c, key, upload_id, rc, err);
done:
    buf_free(&body);
    return rc;
}

int s3_abort_multipart(s3_client *c, const char *key, const char *upload_id, char *err)
{
    struct sigv4_kv q[] = {{"uploadId", upload_id}};
    struct s3_req r = {.method = "DELETE", .key = key, .query = q, .nq = 1};
    return s3_perform(c, &r, err);
}

static int s3_parts_push(struct s3_part **parts, int *n, int *cap, const struct s3_part *p)
{
    if (*n == *cap) {
        int ncap = *cap ? *cap * 2 : 16;
        struct s3_part *np = realloc(*parts, (size_t)ncap * sizeof(*np));
        if (!np)
            return -1;
        *parts = np;
        *cap = ncap;
    }
    (*parts)[(*n)++] = *p;
    return 0;
}

/* Parses one <Part> of ListPartsResult. */
static int s3_part_parse(const char *p, const char *end, struct s3_part *out)
{
    char num[16], size[24];
    long long v;
    if (s3_xml_copy(p, end, "PartNumber", num, sizeof(num)) != 1 ||
        s3_xml_copy(p, end, "ETag", out->etag, sizeof(out->etag)) != 1 ||
        s3_xml_copy(p, end, "Size", size, sizeof(size)) != 1 || s3_parse_ll(num, &v) < 0 || v < 1 ||
        v > S3_MAX_PART || s3_parse_ll(size, &out->size) < 0)
        return -1;
    out->number = (int)v;
    return 0;
}

/* Adds the parts of one ListParts page; *next is the next marker ("" if the last page). */
static int s3_parts_page(s3_client *c, struct s3_part **parts, int *n, int *cap, char next[16])
{
    const char *vs, *ve, *p = c->body.data ? c->body.data : "", *end = p + c->body.len;
    struct s3_part part;
    while ((p = s3_xml_find(p, end, "Part", &vs, &ve)) != NULL) {
        if (s3_part_parse(vs, ve, &part) < 0 || s3_parts_push(parts, n, cap, &part) < 0)
            return -1;
    }
    p = c->body.data ? c->body.data : "";
    next[0] = '\0';
    if (s3_xml_true(p, end, "IsTruncated") &&
        s3_xml_copy(p, end, "NextPartNumberMarker", next, 16) != 1)
        return -1;
    return 0;
}

int s3_list_parts(s3_client *c, const char *key, const char *upload_id, struct s3_part **parts,
                  int *nparts, char *err)
{
    char marker[16] = "", next[16], max[16];
    struct sigv4_kv q[3] = {{"uploadId", upload_id}};
    struct s3_req r = {.method = "GET", .key = key, .query = q};
    int n = 0, cap = 0, rc;
    *parts = NULL;
    snprintf(max, sizeof(max), "%d", c->page_size);
    for (;;) {
        r.nq = 1;
        if (c->page_size > 0)
            q[r.nq++] = (struct sigv4_kv){"max-parts", max};
        if (marker[0])
            q[r.nq++] = (struct sigv4_kv){"part-number-marker", marker};
        if ((rc = s3_perform(c, &r, err)) != S3_OK)
            goto fail;
        rc = S3_ERR;
        if (s3_parts_page(c, parts, &n, &cap, next) < 0) {
            err_set(err, "s3: ListParts %s: malformed response", c->path.data);
            goto fail;
        }
        if (!next[0])
            break;
        if (atoi(next) <= atoi(marker)) {
            err_set(err, "s3: ListParts %s: pagination does not advance", c->path.data);
            goto fail;
        }
        memcpy(marker, next, sizeof(marker));
    }
    *nparts = n;
    return S3_OK;
fail:
    free(*parts);
    *parts = NULL;
    *nparts = 0;
    return rc;
}

/* ---- listings */

/* Calls cb for each <Upload> of one ListMultipartUploads page: 1 if cb stopped, -1 malformed. */
static int s3_uploads_page(s3_client *c, s3_upload_cb cb, void *ud)
{
    const char *vs, *ve, *p = c->body.data ? c->body.data : "", *end = p + c->body.len;
    buf key = {0}, id = {0}, when = {0};
    int rc = 0;
    while (rc == 0 && (p = s3_xml_find(p, end, "Upload", &vs, &ve)) != NULL) {
        if (s3_xml_get(vs, ve, "Key", &key) != 1 || s3_xml_get(vs, ve, "UploadId", &id) != 1 ||
            s3_xml_get(vs, ve, "Initiated", &when) < 0)
            rc = -1;
        else if (cb(key.data, id.data, s3_parse_iso8601(when.data ? when.data : ""), ud) != 0)
            rc = 1;
    }
    buf_free(&key);
    buf_free(&id);
    buf_free(&when);
    return rc;
}

/* The markers of the next page into km/um; 0 if there is none, 1 if there is, -1 if the
 * response is truncated without markers that move forward. */
static int s3_next_markers(s3_client *c, buf *km, buf *um)
{
    const char *p = c->body.data ? c->body.data : "", *end = p + c->body.len;
    buf nk = {0}, nu = {0};
    int rc = 1;
    if (!s3_xml_true(p, end, "IsTruncated"))
        rc = 0;
    else if (s3_xml_get(p, end, "NextKeyMarker", &nk) < 0 ||
             s3_xml_get(p, end, "NextUploadIdMarker", &nu) < 0 || !nk.len ||
             (km->len && strcmp(nk.data, km->data) == 0 &&
              strcmp(nu.data ? nu.data : "", um->data ? um->data : "") == 0))
        rc = -1;
    if (rc == 1) {
        buf_reset(km);
        buf_reset(um);
        if (buf_puts(km, nk.data) < 0 || buf_puts(um, nu.data ? nu.data : "") < 0)
            rc = -1;
    }
    buf_free(&nk);
    buf_free(&nu);
    return rc;
}

int s3_list_multipart_uploads(s3_client *c, const char *prefix, s3_upload_cb cb, void *ud,
                              char *err)
{
    buf km = {0}, um = {0};
    char max[16];
    struct sigv4_kv q[5] = {{"uploads", ""}, {"prefix", prefix ? prefix : ""}};
    struct s3_req r = {.method = "GET", .query = q};
    int rc, more;
    snprintf(max, sizeof(max), "%d", c->page_size);
    do {
        r.nq = 2;
        if (c->page_size > 0)
            q[r.nq++] = (struct sigv4_kv){"max-uploads", max};
        if (km.len)
            q[r.nq++] = (struct sigv4_kv){"key-marker", km.data};
        if (km.len && um.len)
            q[r.nq++] = (struct sigv4_kv){"upload-id-marker", um.data};
        if ((rc = s3_perform(c, &r, err)) != S3_OK)
            break;
        if ((more = s3_uploads_page(c, cb, ud)) == 0)
            more = s3_next_markers(c, &km, &um);
        else if (more == 1)
            more = 0; /* the callback stopped */
        if (more < 0) {
            err_set(err, "s3: ListMultipartUploads: malformed or non-advancing response");
            rc = S3_ERR;
        }
    } while (rc == S3_OK && more == 1);
    buf_free(&km);
    buf_free(&um);
    return rc == S3_NOTFOUND ? S3_ERR : rc;
}

/* Calls cb for each <Contents> of one ListObjectsV2 page: 1 if cb stopped, -1 malformed. */
static int s3_objects_page(s3_client *c, s3_object_cb cb, void *ud)
{
    const char *vs, *ve, *p = c->body.data ? c->body.data : "", *end = p + c->body.len;
    buf key = {0};
    char size[24], when[40];
    long long sz;
    int rc = 0;
    while (rc == 0 && (p = s3_xml_find(p, end, "Contents", &vs, &ve)) != NULL) {
        if (s3_xml_get(vs, ve, "Key", &key) != 1 ||
            s3_xml_copy(vs, ve, "Size", size, sizeof(size)) != 1 || s3_parse_ll(size, &sz) < 0 ||
            s3_xml_copy(vs, ve, "LastModified", when, sizeof(when)) < 0)
            rc = -1;
        else if (cb(key.data, sz, s3_parse_iso8601(when), ud) != 0)
            rc = 1;
    }
    buf_free(&key);
    return rc;
}

/* The continuation token of the next page into tok: 0 none, 1 there is one, -1 malformed. */
static int s3_next_token(s3_client *c, buf *tok)
{
    const char *p = c->body.data ? c->body.data : "", *end = p + c->body.len;
    buf next = {0};
    int rc = 1;
    if (!s3_xml_true(p, end, "IsTruncated"))
        return 0;
    if (s3_xml_get(p, end, "NextContinuationToken", &next) != 1 || !next.len ||
        (tok->len && strcmp(next.data, tok->data) == 0))
        rc = -1;
    buf_reset(tok);
    if (rc == 1 && buf_puts(tok, next.data) < 0)
        rc = -1;
    buf_free(&next);
    return rc;
}

int s3_list_objects(s3_client *c, const char *prefix, s3_object_cb cb, void *ud, char *err)
{
    buf tok = {0};
    char max[16];
    struct sigv4_kv q[4] = {{"list-type", "2"}, {"prefix", prefix ? prefix : ""}};
    struct s3_req r = {.method = "GET", .query = q};
    int rc, more;
    snprintf(max, sizeof(max), "%d", c->page_size);
    do {
        r.nq = 2;
        if (c->page_size > 0)
            q[r.nq++] = (struct sigv4_kv){"max-keys", max};
        if (tok.len)
            q[r.nq++] = (struct sigv4_kv){"continuation-token", tok.data};
        if ((rc = s3_perform(c, &r, err)) != S3_OK)
            break;
        if ((more = s3_objects_page(c, cb, ud)) == 0)
            more = s3_next_token(c, &tok);
        else if (more == 1)
            more = 0;
        if (more < 0) {
            err_set(err, "s3: ListObjectsV2: malformed or non-advancing response");
            rc = S3_ERR;
        }
    } while (rc == S3_OK && more == 1);
    buf_free(&tok);
    return rc == S3_NOTFOUND ? S3_ERR : rc;
}

/* ---- presigned URLs */

/* The presigned request's path, /bucket/key or /key, into c->ppath. */
static int s3_presign_path(s3_client *c, const char *key, char *err)
{
    if (!key || !*key) {
        err_set(err, "s3: presign needs a key");
        return -1;
    }
    buf_reset(&c->ppath);
    if (buf_puts(&c->ppath, c->bucket_path) < 0 || buf_puts(&c->ppath, "/") < 0 ||
        buf_puts(&c->ppath, key) < 0) {
        err_set(err, "s3: out of memory");
        return -1;
    }
    return 0;
}

int s3_presign(s3_client *c, const char *method, const char *key, const struct sigv4_kv *query,
               size_t nq, time_t now, long expires, buf *out, char *err)
{
    if (s3_presign_path(c, key, err) < 0)
        return -1;
    return sigv4_presign(c->signer, method, c->pub_base, c->ppath.data, query, nq, now, expires,
                         out, err);
}

/* A PUT whose signature binds its Content-Length (query q: a part's, or none). */
static int s3_presign_sized(s3_client *c, const char *key, const struct sigv4_kv *q, size_t nq,
                            long long length, time_t now, long expires, buf *out, char *err)
{
    char len[24];
    const struct sigv4_kv h[] = {{"content-length", len}};
    snprintf(len, sizeof(len), "%lld", length);
    if (s3_presign_path(c, key, err) < 0)
        return -1;
    return sigv4_presign_headers(c->signer, "PUT", c->pub_base, c->ppath.data, q, nq, h, 1, now,
                                 expires, out, err);
}

int s3_presign_part(s3_client *c, const char *key, const char *upload_id, int part_number,
                    long long length, time_t now, long expires, buf *out, char *err)
{
    char num[16];
    const struct sigv4_kv q[] = {{"partNumber", num}, {"uploadId", upload_id}};
    if (part_number < 1 || part_number > S3_MAX_PART || !upload_id || !*upload_id || length < 0) {
        err_set(err, "s3: part number must be 1..%d with an upload id and a length", S3_MAX_PART);
        return -1;
    }
    snprintf(num, sizeof(num), "%d", part_number);
    return s3_presign_sized(c, key, q, 2, length, now, expires, out, err);
}

int s3_presign_put_sized(s3_client *c, const char *key, long long length, time_t now, long expires,
                         buf *out, char *err)
{
    if (length < 0) {
        err_set(err, "s3: a sized PUT needs a length");
        return -1;
    }
    return s3_presign_sized(c, key, NULL, 0, length, now, expires, out, err);
}

int s3_presign_get(s3_client *c, const char *key, const char *response_content_type,
                   const char *response_content_disposition, time_t now, long expires, buf *out,
                   char *err)
{
    struct sigv4_kv q[2];
    size_t n = 0;
    if (response_content_type)
        q[n++] = (struct sigv4_kv){"response-content-type", response_content_type};
    if (response_content_disposition)
        q[n++] = (struct sigv4_kv){"response-content-disposition", response_content_disposition};
    return s3_presign(c, "GET", key, q, n, now, expires, out, err);
}

int s3_presign_put(s3_client *c, const char *key, time_t now, long expires, buf *out, char *err)
{
    return s3_presign(c, "PUT", key, NULL, 0, now, expires, out, err);
}
