/* xfer: the chunk upload engine: a libcurl multi handle with `parallel` reusable easy
 * handles (kept-alive connections), bodies streamed from the file by pread at each chunk's
 * offset, per-chunk retry with exponential backoff and jitter, URL refresh on expiry or 403. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backoff.h"
#include "xfer.h"

#define URL_BATCH 64
#define RESP_KEEP 1024
#define POLL_MS 100

struct slot {
    CURL *k;
    struct xfer_chunk *c; /* NULL when idle */
    int fd;
    long long pos;
    int read_errno;
    char resp[RESP_KEEP];
    size_t resp_len;
    char errbuf[CURL_ERROR_SIZE];
};

struct run {
    const client *api;
    CURLM *m;
    struct slot *slots;
    struct curl_slist *hdrs;
    struct xfer_chunk *chunks;
    int n, left, batch;
    int streak; /* failed attempts since a chunk was last stored */
    long long done_bytes;
    const struct xfer_opts *o;
    const struct xfer_ops *ops;
    struct xfer_stats *st;
};

static size_t read_cb(char *dst, size_t size, size_t nitems, void *ud)
{
    struct slot *s = ud;
    long long left = s->c->len - s->pos;
    size_t want = size * nitems;
    ssize_t r;

    if (pix_interrupted)
        return CURL_READFUNC_ABORT;
    if (left <= 0)
        return 0;
    if ((long long)want > left)
        want = (size_t)left;
    if (s->c->buf) {
        memcpy(dst, s->c->buf + s->pos, want);
        s->pos += (long long)want;
        return want;
    }
    do
        r = pread(s->fd, dst, want, s->c->off + s->pos);
    while (r < 0 && errno == EINTR && !pix_interrupted);
    if (r <= 0) {
        s->read_errno = r < 0 ? errno : ENODATA; /* ENODATA: the file got shorter */
        return CURL_READFUNC_ABORT;
    }
    s->pos += r;
    return (size_t)r;
}

/* libcurl rewinds the body when it must resend it (e.g. on a fresh connection). */
static int seek_cb(void *ud, curl_off_t off, int origin)
{
    struct slot *s = ud;

    if (origin != SEEK_SET || off < 0 || off > s->c->len)
        return CURL_SEEKFUNC_CANTSEEK;
    s->pos = off;
    return CURL_SEEKFUNC_OK;
}

static size_t resp_cb(char *p, size_t size, size_t n, void *ud)
{
    struct slot *s = ud;
    size_t len = size * n, room = RESP_KEEP - 1 - s->resp_len;

    if (len < room)
        room = len;
    memcpy(s->resp + s->resp_len, p, room);
    s->resp_len += room;
    s->resp[s->resp_len] = '\0';
    return len;
}

static void slot_start(struct run *r, struct slot *s, struct xfer_chunk *c)
{
    CURL *k = s->k;

    s->c = c, s->pos = 0, s->read_errno = 0, s->resp_len = 0;
    s->resp[0] = s->errbuf[0] = '\0';
    c->state = XC_ACTIVE;
    curl_easy_reset(k); /* keeps the connection */
    client_transfer_opts(r->api, k);
    curl_easy_setopt(k, CURLOPT_URL, c->url);
    curl_easy_setopt(k, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(k, CURLOPT_INFILESIZE_LARGE, (curl_off_t)c->len);
    curl_easy_setopt(k, CURLOPT_READFUNCTION, read_cb);
    curl_easy_setopt(k, CURLOPT_READDATA, s);
    curl_easy_setopt(k, CURLOPT_SEEKFUNCTION, seek_cb);
    curl_easy_setopt(k, CURLOPT_SEEKDATA, s);
    curl_easy_setopt(k, CURLOPT_WRITEFUNCTION, resp_cb);
    curl_easy_setopt(k, CURLOPT_WRITEDATA, s);
    curl_easy_setopt(k, CURLOPT_HTTPHEADER, r->hdrs);
    curl_easy_setopt(k, CURLOPT_UPLOAD_BUFFERSIZE, r->o->buffer);
    curl_easy_setopt(k, CURLOPT_ERRORBUFFER, s->errbuf);
    curl_easy_setopt(k, CURLOPT_PRIVATE, s);
    curl_multi_add_handle(r->m, k);
}

/* Is c's data at hand (always, unless ops->ready says otherwise)? 1, 0, or -1 with *rc. */
static int data_ready(struct run *r, struct xfer_chunk *c, int *rc, char *err)
{
    int ok;

    if (!r->ops->ready)
        return 1;
    ok = r->ops->ready(r->ops->ud, c, err);
    if (ok == 0 || ok == 1)
        return ok;
    *rc = ok;
    return -1;
}

/* The next chunk due for a try with its data at hand, lowest number first; *wake gets the
 * earliest later time. NULL with *rc set when the data cannot be had. */
static struct xfer_chunk *next_ready(struct run *r, double now, double *wake, int *rc, char *err)
{
    for (int i = 0; i < r->n; i++) {
        struct xfer_chunk *c = &r->chunks[i];
        if (c->state != XC_PENDING)
            continue;
        if (c->not_before > now) {
            if (c->not_before < *wake)
                *wake = c->not_before;
            continue;
        }
        int ok = data_ready(r, c, rc, err);
        if (ok != 0)
            return ok > 0 ? c : NULL;
    }
    return NULL;
}

static int url_ok(const struct xfer_chunk *c, double now)
{
    return c->url && now < c->url_deadline;
}

/* Asks for URLs for c and the next pending chunks without a valid one. */
static int fetch_urls(struct run *r, struct xfer_chunk *c, double now, char *err)
{
    struct xfer_chunk *batch[URL_BATCH];
    int k = 0, rc;

    batch[k++] = c;
    for (int i = 0; i < r->n && k < URL_BATCH; i++) {
        struct xfer_chunk *o = &r->chunks[i];
        if (o != c && o->state == XC_PENDING && !url_ok(o, now))
            batch[k++] = o;
    }
    for (int i = 0; i < k; i++)
        free(batch[i]->url), batch[i]->url = NULL;
    r->batch++;
    r->st->url_requests++;
    if ((rc = r->ops->get_urls(r->ops->ud, batch, k, err)) != PIX_OK)
        return rc;
    for (int i = 0; i < k; i++) {
        if (!batch[i]->url)
            return err_set(err, "no URL for chunk %d", batch[i]->n), PIX_EAPI;
        batch[i]->url_batch = r->batch;
    }
    return PIX_OK;
}

/* The <Code> of an S3 XML error body, or "". */
static void s3_code(const char *body, char *out, size_t n)
{
    const char *a = strstr(body, "<Code>"), *b = a ? strstr(a, "</Code>") : NULL;

    if (a && b && b - a - 6 < (long)n)
        snprintf(out, n, "%.*s", (int)(b - a - 6), a + 6);
    else
        snprintf(out, n, "%s", "");
}

/* Drops the URLs of c's batch: one expired, the rest expire together. */
static void drop_batch(struct run *r, int batch)
{
    for (int i = 0; i < r->n; i++) {
        struct xfer_chunk *c = &r->chunks[i];
        if (c->url_batch == batch && c->state != XC_ACTIVE)
            free(c->url), c->url = NULL;
    }
}

/* Failures in a row, across all chunks, after which storage is deemed unreachable: bounds
 * the whole upload's time, not just each chunk's. */
static int streak_max(const struct run *r)
{
    int m = 2 * r->o->parallel;

    return m > r->o->max_attempts ? m : r->o->max_attempts;
}

/* A failed attempt of s's chunk: schedule a retry or return the permanent error. */
static int failed(struct run *r, struct slot *s, CURLcode res, long status, char *err)
{
    struct xfer_chunk *c = s->c;
    char code[64], why[320];
    int permanent;

    if (pix_interrupted)
        return err_set(err, "interrupted"), PIX_EINTR;
    if (s->read_errno == ENODATA)
        return err_set(err, "the file got shorter during the upload (chunk %d)", c->n), PIX_EIO;
    if (s->read_errno)
        return err_set(err, "reading chunk %d: %s", c->n, strerror(s->read_errno)), PIX_EIO;
    s3_code(s->resp, code, sizeof code);
    if (res != CURLE_OK)
        snprintf(why, sizeof why, "%s", s->errbuf[0] ? s->errbuf : curl_easy_strerror(res));
    else
        snprintf(why, sizeof why, "storage answered HTTP %ld%s%s", status, code[0] ? " " : "",
                 code);
    permanent = res == CURLE_OK && status >= 400 && status < 500 && status != 403 &&
                status != 408 && status != 429 && strcmp(code, "RequestTimeout") != 0;
    c->attempts++;
    r->streak++;
    if (permanent || c->attempts >= r->o->max_attempts || r->streak >= streak_max(r)) {
        err_set(err, "chunk %d: %s%s", c->n, why, permanent ? "" : " (giving up)");
        return res == CURLE_OK ? PIX_EAPI : PIX_ENET;
    }
    r->st->retries++;
    c->state = XC_PENDING;
    c->not_before = util_now_mono() + backoff_delay(c->attempts - 1, r->o->backoff_base,
                                                    r->o->backoff_cap, backoff_random());
    if (status == 403) { /* most likely an expired URL: ask again, at once the first time */
        drop_batch(r, c->url_batch);
        free(c->url), c->url = NULL;
        if (c->attempts == 1)
            c->not_before = 0;
    }
    if (r->o->verbose)
        fprintf(stderr, "pixctl: chunk %d: %s; retry %d in %.1fs\n", c->n, why, c->attempts,
                c->not_before ? c->not_before - util_now_mono() : 0.0);
    return PIX_OK;
}

static int finished(struct run *r, CURLMsg *msg, char *err)
{
    struct slot *s = NULL;
    long status = 0;
    int rc = PIX_OK;

    curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&s);
    curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &status);
    curl_multi_remove_handle(r->m, msg->easy_handle);
    if (msg->data.result == CURLE_OK && status >= 200 && status < 300) {
        s->c->state = XC_DONE;
        r->streak = 0;
        free(s->c->url), s->c->url = NULL;
        r->left--;
        r->done_bytes += s->c->len;
        r->st->chunks_sent++;
        r->st->bytes_sent += s->c->len;
        r->ops->chunk_done(r->ops->ud, s->c);
        s->c->buf = NULL; /* chunk_done may have let it go */
    } else {
        rc = failed(r, s, msg->data.result, status, err);
    }
    s->c = NULL;
    return rc;
}

static int start_idle(struct run *r, double now, double *wake, char *err)
{
    for (int i = 0; i < r->o->parallel; i++) {
        struct slot *s = &r->slots[i];
        struct xfer_chunk *c;
        int rc;

        if (s->c)
            continue;
        rc = PIX_OK;
        if (!(c = next_ready(r, now, wake, &rc, err)))
            return rc;
        if (!url_ok(c, now) && (rc = fetch_urls(r, c, now, err)) != PIX_OK)
            return rc;
        slot_start(r, s, c);
    }
    return PIX_OK;
}

static void report(struct run *r)
{
    long long b = r->done_bytes;

    for (int i = 0; i < r->o->parallel; i++)
        if (r->slots[i].c)
            b += r->slots[i].pos;
    r->ops->progress(r->ops->ud, b);
}

/* Waits up to ms for the transfers or the data source's wake fd (then drained). */
static void wait_io(struct run *r, int ms)
{
    struct curl_waitfd w = {.fd = r->ops->wake_fd, .events = CURL_WAIT_POLLIN};
    uint64_t v;
    ssize_t got;

    if (r->ops->wake_fd < 0) {
        curl_multi_poll(r->m, NULL, 0, ms, NULL);
        return;
    }
    curl_multi_poll(r->m, &w, 1, ms, NULL);
    if (w.revents) {
        got = read(r->ops->wake_fd, &v, sizeof v); /* EAGAIN: already drained */
        (void)got;
    }
}

static int loop(struct run *r, char *err)
{
    int rc = PIX_OK, running, q;

    while (r->left > 0 && rc == PIX_OK) {
        double now = util_now_mono(), wake = now + 1;
        int active = 0, ms;
        CURLMsg *msg;

        if (pix_interrupted)
            return err_set(err, "interrupted"), PIX_EINTR;
        if ((rc = start_idle(r, now, &wake, err)) != PIX_OK)
            break;
        curl_multi_perform(r->m, &running);
        while (rc == PIX_OK && (msg = curl_multi_info_read(r->m, &q)))
            if (msg->msg == CURLMSG_DONE)
                rc = finished(r, msg, err);
        report(r);
        for (int i = 0; i < r->o->parallel; i++)
            active += r->slots[i].c != NULL;
        ms = active ? POLL_MS : (int)((wake - util_now_mono()) * 1000) + 1;
        if (ms > POLL_MS)
            ms = POLL_MS;
        if (ms > 0 && rc == PIX_OK && r->left > 0)
            wait_io(r, ms);
    }
    return rc;
}

int xfer_run(const client *api, int fd, struct xfer_chunk *chunks, int n, const struct xfer_opts *o,
             const struct xfer_ops *ops, struct xfer_stats *st, char *err)
{
    struct run r = {.api = api, .chunks = chunks, .n = n, .o = o, .ops = ops, .st = st};
    int rc = PIX_EIO;

    for (int i = 0; i < n; i++)
        r.left += chunks[i].state != XC_DONE;
    r.m = curl_multi_init();
    r.slots = calloc((size_t)o->parallel, sizeof *r.slots);
    r.hdrs = curl_slist_append(NULL, "Expect:");
    if (!r.m || !r.slots || !r.hdrs) {
        err_set(err, "out of memory");
        goto done;
    }
    for (int i = 0; i < o->parallel; i++) {
        r.slots[i].fd = fd;
        if (!(r.slots[i].k = curl_easy_init())) {
            err_set(err, "out of memory");
            goto done;
        }
    }
    rc = loop(&r, err);
done:
    for (int i = 0; r.slots && i < o->parallel; i++) {
        if (r.slots[i].c)
            r.slots[i].c->state = XC_PENDING;
        if (r.slots[i].k && r.slots[i].c)
            curl_multi_remove_handle(r.m, r.slots[i].k);
        if (r.slots[i].k)
            curl_easy_cleanup(r.slots[i].k);
    }
    for (int i = 0; i < n; i++)
        free(chunks[i].url), chunks[i].url = NULL;
    free(r.slots);
    curl_slist_free_all(r.hdrs);
    if (r.m)
        curl_multi_cleanup(r.m);
    return rc;
}
