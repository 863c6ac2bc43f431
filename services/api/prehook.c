/* prehook: calls the pre-upload hook with libcurl on the request worker thread; a 4xx with
 * {reason} refuses the upload, a failure is refused or let through by pre-upload-hook-fail. */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "log.h"
#include "prehook.h"

#define ANSWER_MAX 4096 /* the part of the hook's answer read: {reason} is short */

struct answer {
    char data[ANSWER_MAX + 1];
    size_t len;
};

static size_t on_data(char *p, size_t size, size_t n, void *ud)
{
    struct answer *a = ud;
    size_t len = size * n, room = ANSWER_MAX - a->len;

    if (len > room)
        len = room;
    memcpy(a->data + a->len, p, len);
    a->len += len;
    a->data[a->len] = 0;
    return size * n;
}

int prehook_config_check(const struct api_config *cfg, char *err)
{
    const char *u = cfg->pre_upload_hook_url;

    if (strcmp(cfg->pre_upload_hook_fail, "open") && strcmp(cfg->pre_upload_hook_fail, "closed"))
        return err_set(err, "pre-upload-hook-fail must be open or closed"), -1;
    if (u[0] && strncmp(u, "http://", 7) && strncmp(u, "https://", 8))
        return err_set(err, "pre-upload-hook-url must be an http:// or https:// URL"), -1;
    return 0;
}

static char *request_body(const char *user, const struct upload_req *q, const char *idem,
                          const char *rid)
{
    cJSON *o = cJSON_CreateObject();
    char *s;

    cJSON_AddStringToObject(o, "user_id", user);
    cJSON_AddStringToObject(o, "file_name", q->name);
    cJSON_AddNumberToObject(o, "size", (double)q->size);
    cJSON_AddStringToObject(o, "mime_type", q->mime_lc);
    if (q->sha256)
        cJSON_AddStringToObject(o, "content_hash", q->sha256);
    if (q->modified)
        cJSON_AddStringToObject(o, "file_modified_at", q->modified);
    if (idem)
        cJSON_AddStringToObject(o, "idempotency_key", idem);
    if (rid)
        cJSON_AddStringToObject(o, "request_id", rid);
    s = json_print(o);
    cJSON_Delete(o);
    return s;
}

/* The {reason} of a refusal if it is short printable text, else a default. */
static void take_reason(const struct answer *a, char reason[PREHOOK_REASON_MAX])
{
    const char *msg = NULL, *v = NULL;
    cJSON *o = json_parse_object(a->data, a->len, &msg);

    util_strlcpy(reason, PREHOOK_REASON_MAX, "refused by the pre-upload hook");
    if (o && json_get_str(o, "reason", &v, &msg) == 1 && api_valid_name(v, PREHOOK_REASON_MAX - 1))
        util_strlcpy(reason, PREHOOK_REASON_MAX, v);
    cJSON_Delete(o);
}

/* Where and how long: http(s) only, no redirects, the whole call within the timeout. */
static void hook_opts(CURL *k, const struct api_config *cfg, double secs)
{
    long ms = (long)(secs * 1000) > 0 ? (long)(secs * 1000) : 1;

    curl_easy_setopt(k, CURLOPT_URL, cfg->pre_upload_hook_url);
    curl_easy_setopt(k, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(k, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(k, CURLOPT_TIMEOUT_MS, ms);
    curl_easy_setopt(k, CURLOPT_CONNECTTIMEOUT_MS, ms);
}

/* POSTs body on the thread's handle k (reset: options go, its connection stays); the HTTP
 * status, or -1 with err (timeout, connection). */
static long post(CURL *k, const struct api_config *cfg, double secs, const char *body,
                 struct answer *a, char *err)
{
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    long status = -1;
    CURLcode rc;

    if (!k || !h) {
        err_set(err, "out of memory");
        goto done;
    }
    hook_opts(k, cfg, secs);
    curl_easy_setopt(k, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(k, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(k, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(k, CURLOPT_WRITEDATA, a);
    if ((rc = curl_easy_perform(k)) != CURLE_OK)
        err_set(err, "pre-upload hook: %s", curl_easy_strerror(rc));
    else
        curl_easy_getinfo(k, CURLINFO_RESPONSE_CODE, &status);
done:
    if (k)
        curl_easy_reset(k); /* no option may point at h or a afterwards */
    curl_slist_free_all(h);
    return status;
}

enum prehook_verdict prehook_call(struct api_tctx *t, const char *user, const struct upload_req *q,
                                  const char *idem, const char *rid, double secs,
                                  char reason[PREHOOK_REASON_MAX], char *err)
{
    const struct api_config *cfg = t->api->cfg;
    struct answer a = {.len = 0};
    char *body;
    long status;

    if (!cfg->pre_upload_hook_url[0])
        return PREHOOK_ALLOW;
    if (!(body = request_body(user, q, idem, rid)))
        return err_set(err, "out of memory"), PREHOOK_FAILED;
    if (!t->hook)
        t->hook = curl_easy_init();
    status = post(t->hook, cfg, secs, body, &a, err);
    free(body);
    if (status >= 200 && status < 300)
        return PREHOOK_ALLOW;
    if (status >= 400 && status < 500)
        return take_reason(&a, reason), PREHOOK_REFUSE;
    if (status >= 0)
        err_set(err, "pre-upload hook answered %ld", status);
    return PREHOOK_FAILED;
}

static void count(struct api *api, const char *result)
{
    char labels[48];

    snprintf(labels, sizeof labels, "result=\"%s\"", result);
    api_count(api, "pixplane_pre_upload_hook_total", labels, 1);
}

int prehook_admit(struct api_call *c, const struct upload_req *q, const char *idem,
                  char reason[PREHOOK_REASON_MAX], struct prehook_run *run, struct upload_err *e)
{
    const struct api_config *cfg = c->api->cfg;
    char err[ERR_MAX] = "";
    enum prehook_verdict v = PREHOOK_FAILED;
    int open = !strcmp(cfg->pre_upload_hook_fail, "open"), made = 0;
    double left;

    if (!cfg->pre_upload_hook_url[0])
        return 0;
    if (!run->until)
        run->until = util_now_mono() + cfg->pre_upload_hook_timeout;
    left = run->until - util_now_mono();
    if (!run->failed && left > 0.001) {
        v = prehook_call(c->t, c->user.sub, q, idem, c->rid, left, reason, err);
        made = 1;
    }
    if (v == PREHOOK_ALLOW)
        return count(c->api, "allowed"), 0;
    if (v == PREHOOK_REFUSE) {
        count(c->api, "refused");
        log_info(c->rid, "upload_refused", reason, "user_id", c->user.sub);
        *e = (struct upload_err){403, "upload_refused", reason};
        return -1;
    }
    if (made || !run->failed) { /* once per request: the rest of a batch is not called */
        count(c->api, open ? "failed_open" : "failed_closed");
        log_warn(c->rid, "pre_upload_hook_failed",
                 made ? err : "the request's hook time (pre-upload-hook-timeout) is spent", "fail",
                 cfg->pre_upload_hook_fail);
    }
    run->failed = 1;
    if (open)
        return 0;
    *e = (struct upload_err){503, "hook_unavailable",
                             "the pre-upload hook is unavailable; retry later"};
    return -1;
}
