/* client: the API client on one reused libcurl easy handle: JSON in and out, bearer token,
 * error bodies turned into one-line messages, retries with backoff for idempotent calls. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "backoff.h"
#include "client.h"
#include "json.h"

#define RESP_MAX (16 * 1024 * 1024)
#define RETRY_BASE 0.5
#define RETRY_CAP 20.0
#define RETRY_AFTER_MAX 60.0
#define SLOW_TIMEOUT 600.0
#define STALL_BYTES_PER_SEC 1024L          /* slower than this for --timeout: stalled */
#define READ_AFTER "Pixplane-Read-After"   /* a write's position; echoed (docs/standby-reads.md) */
#define READ_AFTER_LEN (sizeof READ_AFTER) /* with the colon */

struct client {
    char *base, *auth;
    CURL *curl;
    double timeout, connect_timeout;
    int retries, verbose;
    char curl_err[CURL_ERROR_SIZE];
    uint64_t read_after;     /* the latest write position an answer carried (0: none) */
    char read_after_hdr[64]; /* "Pixplane-Read-After: <it>", sent with every call */
};

struct body_sink {
    buf b;
    int overflow;
    double retry_after;
    char read_after[32]; /* Pixplane-Read-After of the answer */
};

client *client_new(const struct pixctl_config *cfg, char *err)
{
    client *c = calloc(1, sizeof *c);
    size_t n;

    if (!c || !(c->base = strdup(cfg->api_url)) || !(c->curl = curl_easy_init()) ||
        asprintf(&c->auth, "Authorization: Bearer %s", cfg->token) < 0) {
        if (c)
            c->auth = NULL;
        client_free(c);
        return err_set(err, "out of memory"), NULL;
    }
    n = strlen(c->base);
    while (n > 0 && c->base[n - 1] == '/')
        c->base[--n] = '\0';
    if (strncmp(c->base, "http://", 7) && strncmp(c->base, "https://", 8)) {
        err_set(err, "--api-url must start with http:// or https://");
        client_free(c);
        return NULL;
    }
    c->timeout = cfg->timeout, c->connect_timeout = cfg->connect_timeout;
    c->retries = (int)cfg->retries, c->verbose = cfg->verbose;
    return c;
}

void client_free(client *c)
{
    if (!c)
        return;
    if (c->curl)
        curl_easy_cleanup(c->curl);
    free(c->base);
    free(c->auth);
    free(c);
}

const char *client_base(const client *c)
{
    return c->base;
}

const char *client_auth_header(const client *c)
{
    return c->auth;
}

char *client_escape(client *c, const char *s)
{
    return curl_easy_escape(c->curl, s, 0);
}

static int xferinfo_cb(void *ud, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
    return pix_interrupted ? 1 : 0;
}

void client_transfer_opts(const client *c, CURL *k)
{
    curl_easy_setopt(k, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(k, CURLOPT_CONNECTTIMEOUT_MS, (long)(c->connect_timeout * 1000));
    curl_easy_setopt(k, CURLOPT_LOW_SPEED_LIMIT, STALL_BYTES_PER_SEC);
    curl_easy_setopt(k, CURLOPT_LOW_SPEED_TIME, (long)(c->timeout > 1 ? c->timeout : 1));
    curl_easy_setopt(k, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(k, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(k, CURLOPT_XFERINFOFUNCTION, xferinfo_cb);
    curl_easy_setopt(k, CURLOPT_PROTOCOLS_STR, "http,https");
}

static size_t write_cb(char *p, size_t size, size_t n, void *ud)
{
    struct body_sink *s = ud;

    if (s->b.len + size * n > RESP_MAX) {
        s->overflow = 1;
        return 0;
    }
    return buf_append(&s->b, p, size * n) == 0 ? size * n : 0;
}

/* A header line's value (p, n: after the colon, not NUL-terminated) without the blanks
 * around it into out ("" if it does not fit). */
static void header_value(const char *p, size_t n, char *out, size_t outlen)
{
    while (n && (*p == ' ' || *p == '\t'))
        p++, n--;
    while (n && strchr(" \t\r\n", p[n - 1]))
        n--;
    snprintf(out, outlen, "%.*s", n < outlen ? (int)n : 0, p);
}

static size_t header_cb(char *p, size_t size, size_t n, void *ud)
{
    struct body_sink *s = ud;
    size_t len = size * n;

    if (len > 12 && !strncasecmp(p, "Retry-After:", 12))
        s->retry_after = atof(p + 12);
    if (len > READ_AFTER_LEN && !strncasecmp(p, READ_AFTER ":", READ_AFTER_LEN))
        header_value(p + READ_AFTER_LEN, len - READ_AFTER_LEN, s->read_after, sizeof s->read_after);
    return len;
}

/* Keeps the answer's write position if it is the latest: later reads echo it, so they see
 * the writes pixctl made even when the API reads from a standby. */
static void keep_read_after(client *c, const char *text)
{
    uint64_t lsn;

    if (util_lsn_parse(text, &lsn) < 0 || lsn <= c->read_after)
        return;
    c->read_after = lsn;
    snprintf(c->read_after_hdr, sizeof c->read_after_hdr, READ_AFTER ": %s", text);
}

int client_curl_exit(CURLcode rc)
{
    return rc == CURLE_ABORTED_BY_CALLBACK && pix_interrupted ? PIX_EINTR : PIX_ENET;
}

/* Fills code/message from an error body {"error":{"code","message"}}. */
static void parse_error(struct client_resp *r)
{
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(r->json, "error"), *v;

    if (!cJSON_IsObject(e))
        return;
    if (cJSON_IsString(v = cJSON_GetObjectItemCaseSensitive(e, "code")))
        snprintf(r->code, sizeof r->code, "%s", v->valuestring);
    if (cJSON_IsString(v = cJSON_GetObjectItemCaseSensitive(e, "message")))
        snprintf(r->message, sizeof r->message, "%s", v->valuestring);
}

static struct curl_slist *headers(const client *c, int has_body, const char *idem)
{
    struct curl_slist *h = NULL, *t;
    char line[200];

    if (!(h = curl_slist_append(h, c->auth)))
        return NULL;
    t = curl_slist_append(h, "Accept: application/json");
    if (t && has_body)
        t = curl_slist_append(h, "Content-Type: application/json");
    if (t)
        t = curl_slist_append(h, "Expect:");
    if (t && idem) {
        snprintf(line, sizeof line, "Idempotency-Key: %s", idem);
        t = curl_slist_append(h, line);
    }
    if (t && c->read_after)
        t = curl_slist_append(h, c->read_after_hdr);
    if (!t)
        curl_slist_free_all(h);
    return t ? h : NULL;
}

/* One attempt. PIX_OK with r filled, or PIX_ENET/PIX_EINTR. */
static int attempt(client *c, const char *method, const char *url, const char *body,
                   struct curl_slist *h, int flags, struct client_resp *r, char *err)
{
    struct body_sink s = {0};
    CURL *k = c->curl;
    CURLcode rc;
    const char *e = NULL;
    double t0 = util_now_mono();

    curl_easy_reset(k);
    client_transfer_opts(c, k);
    if (flags & CLIENT_SLOW)
        curl_easy_setopt(k, CURLOPT_LOW_SPEED_TIME, 0L);
    curl_easy_setopt(k, CURLOPT_URL, url);
    curl_easy_setopt(k, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(k, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(
        k, CURLOPT_TIMEOUT_MS,
        (long)(((flags & CLIENT_SLOW) && c->timeout < SLOW_TIMEOUT ? SLOW_TIMEOUT : c->timeout) *
               1000));
    curl_easy_setopt(k, CURLOPT_ERRORBUFFER, c->curl_err);
    curl_easy_setopt(k, CURLOPT_WRITEFUNCTION, write_cb);
    curl_easy_setopt(k, CURLOPT_WRITEDATA, &s);
    curl_easy_setopt(k, CURLOPT_HEADERFUNCTION, header_cb);
    curl_easy_setopt(k, CURLOPT_HEADERDATA, &s);
    if (body)
        curl_easy_setopt(k, CURLOPT_POSTFIELDS, body);
    if (!strcmp(method, "HEAD"))
        curl_easy_setopt(k, CURLOPT_NOBODY, 1L);
    c->curl_err[0] = '\0';
    rc = curl_easy_perform(k);
    if (rc != CURLE_OK) {
        err_set(err, "%s %s: %s", method, url,
                s.overflow       ? "response too large"
                : c->curl_err[0] ? c->curl_err
                                 : curl_easy_strerror(rc));
        buf_free(&s.b);
        return client_curl_exit(rc);
    }
    curl_easy_getinfo(k, CURLINFO_RESPONSE_CODE, &r->status);
    r->retry_after = s.retry_after;
    keep_read_after(c, s.read_after);
    if (s.b.len)
        r->json = json_parse_object(s.b.data, s.b.len, &e);
    if (r->status >= 400)
        parse_error(r);
    if (c->verbose)
        fprintf(stderr, "pixctl: %s %s -> %ld (%.0f ms)\n", method, url, r->status,
                (util_now_mono() - t0) * 1000);
    buf_free(&s.b);
    return PIX_OK;
}

static int retryable_status(long st)
{
    return st == 429 || st == 502 || st == 503 || st == 504;
}

int client_call(client *c, const char *method, const char *path, const cJSON *body,
                const char *idem, int flags, struct client_resp *r, char *err)
{
    char *url = NULL, *text = body ? cJSON_PrintUnformatted(body) : NULL;
    struct curl_slist *h = headers(c, body != NULL, idem);
    int rc = PIX_ENET, tries = (flags & CLIENT_RETRY) ? c->retries : 1;

    memset(r, 0, sizeof *r);
    if (!h || (body && !text) || asprintf(&url, "%s%s", c->base, path) < 0) {
        url = NULL;
        err_set(err, "out of memory");
        goto done;
    }
    for (int i = 0; i < tries; i++) {
        double wait;
        client_resp_free(r);
        rc = attempt(c, method, url, text, h, flags, r, err);
        if (rc == PIX_EINTR || (rc == PIX_OK && !retryable_status(r->status)))
            break;
        if (i + 1 >= tries)
            break;
        wait = backoff_delay(i, RETRY_BASE, RETRY_CAP, backoff_random());
        if (rc == PIX_OK && r->retry_after > 0)
            wait = r->retry_after < RETRY_AFTER_MAX ? r->retry_after : RETRY_AFTER_MAX;
        if (c->verbose)
            fprintf(stderr, "pixctl: retrying %s %s in %.1fs\n", method, path, wait);
        if (backoff_sleep(wait) < 0) {
            rc = PIX_EINTR, err_set(err, "interrupted");
            break;
        }
    }
done:
    curl_slist_free_all(h);
    free(text);
    free(url);
    return rc;
}

int client_error(const struct client_resp *r, char *err)
{
    if (r->code[0])
        err_set(err, "HTTP %ld %s: %s", r->status, r->code, r->message);
    else
        err_set(err, "HTTP %ld from the API", r->status);
    return PIX_EAPI;
}

int client_json(client *c, const char *method, const char *path, const cJSON *body, int flags,
                cJSON **out, long *status, char *err)
{
    struct client_resp r;
    int rc = client_call(c, method, path, body, NULL, flags, &r, err);

    if (status)
        *status = rc == PIX_OK ? r.status : 0;
    if (out)
        *out = NULL;
    if (rc != PIX_OK)
        return rc;
    if (r.status < 200 || r.status > 299) {
        rc = client_error(&r, err);
        client_resp_free(&r);
        return rc;
    }
    if (out)
        *out = r.json, r.json = NULL;
    client_resp_free(&r);
    return PIX_OK;
}

void client_resp_free(struct client_resp *r)
{
    if (!r)
        return;
    cJSON_Delete(r->json);
    r->json = NULL;
}
