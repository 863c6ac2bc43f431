/* photoload: the small-photo load of bench/upload/bench.py, in C so the client is not the
 * bottleneck: T threads, each with its own keep-alive connections, upload unique files of
 * SIZE bytes back to back for SECS seconds, either through the API's whole flow (POST
 * /uploads, POST chunks/urls, PUT, POST complete) or as raw presigned PUTs (URLs from
 * stdin, one a line). Prints one JSON line: uploads, failures, seconds. Loopback only. */
#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth.h"
#include "util.h"

#define MAXURLS 200000

static char **urls;
static int nurls, nthreads, flow;
static atomic_int next_url;
static long size;
static double secs, t_end;
static const char *base, *secret;

static double now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static size_t sink(char *p, size_t sz, size_t n, void *ud)
{
    return buf_append(ud, p, sz * n) < 0 ? 0 : sz * n;
}

/* One request: body (NULL: none) of len bytes, POST or PUT; the answer's JSON (NULL if
 * none) and status in *st. */
static cJSON *call(CURL *c, const char *method, const char *url, const char *tok, const void *body,
                   long len, long *st)
{
    char auth[1024];
    struct curl_slist *h = curl_slist_append(NULL, "Expect:");
    buf b = {0};
    cJSON *j = NULL;

    *st = 0;
    if (tok) {
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", tok);
        h = curl_slist_append(h, auth);
        h = curl_slist_append(h, "Content-Type: application/json");
    }
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body ? body : "");
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(body ? len : 0));
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sink);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    if (curl_easy_perform(c) == CURLE_OK) {
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, st);
        if (buf_append(&b, "", 1) == 0)
            j = cJSON_Parse(b.data);
    }
    curl_slist_free_all(h);
    buf_free(&b);
    return j;
}

static const char *jstr(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);

    return cJSON_IsString(v) ? v->valuestring : "";
}

/* The part URL of a session's one chunk into url. 0 or -1. */
static int part_url(CURL *api, const char *sid, const char *tok, char *url, size_t n)
{
    char u[512];
    const char *body = "{\"chunk_numbers\":[0]}";
    long st;
    cJSON *j, *a;
    int rc = -1;

    snprintf(u, sizeof u, "%s/uploads/%s/chunks/urls", base, sid);
    j = call(api, "POST", u, tok, body, (long)strlen(body), &st);
    a = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(j, "urls"), 0);
    if (st == 200 && *jstr(a, "url") && strlen(jstr(a, "url")) < n)
        rc = 0, snprintf(url, n, "%s", jstr(a, "url"));
    cJSON_Delete(j);
    return rc;
}

/* The API's whole flow for one file: 0 or -1. */
static int one_flow(CURL *api, CURL *s3, const char *tok, const unsigned char *data)
{
    char body[256], sid[64] = "", u[512], url[4096];
    long st;
    cJSON *j;

    snprintf(body, sizeof body,
             "{\"file_name\":\"p.jpg\",\"file_size\":%ld,\"mime_type\":\"image/jpeg\"}", size);
    snprintf(u, sizeof u, "%s/uploads", base);
    j = call(api, "POST", u, tok, body, (long)strlen(body), &st);
    if (st == 201)
        snprintf(sid, sizeof sid, "%s", jstr(j, "upload_session_id"));
    cJSON_Delete(j);
    if (!sid[0] || part_url(api, sid, tok, url, sizeof url) < 0)
        return -1;
    cJSON_Delete(call(s3, "PUT", url, NULL, data, size, &st));
    if (st != 200)
        return -1;
    snprintf(u, sizeof u, "%s/uploads/%s/complete", base, sid);
    cJSON_Delete(call(api, "POST", u, tok, NULL, 0, &st));
    return st == 200 || st == 202 ? 0 : -1;
}

static int one_raw(CURL *s3, const unsigned char *data)
{
    int i = atomic_fetch_add(&next_url, 1);
    long st;

    if (i >= nurls)
        return -1;
    cJSON_Delete(call(s3, "PUT", urls[i], NULL, data, size, &st));
    return st == 200 ? 0 : -1;
}

/* Unique content for every upload: a counter in the first bytes of random data. */
static void stamp(unsigned char *data, long id, long k)
{
    snprintf((char *)data, 48, "pixplane-photoload %ld %ld %.0f ", id, k, now() * 1e6);
}

static void *thread_main(void *arg)
{
    long id = (long)arg, *res = calloc(2, sizeof *res); /* ok, failed */
    CURL *api = curl_easy_init(), *s3 = curl_easy_init();
    unsigned char *data = malloc((size_t)size);
    char user[64], *tok;
    unsigned seed = (unsigned)id + 1;

    snprintf(user, sizeof user, "photoload-%ld-%ld", id, (long)time(NULL));
    tok = auth_sign((const unsigned char *)secret, strlen(secret), user, 0, time(NULL), 3600);
    for (long i = 0; i < size; i++)
        data[i] = (unsigned char)(rand_r(&seed) & 0xff);
    for (long k = 0; k < 1000000 && now() < t_end; k++) {
        stamp(data, id, k);
        res[(flow ? one_flow(api, s3, tok, data) : one_raw(s3, data)) == 0 ? 0 : 1]++;
    }
    free(tok);
    free(data);
    curl_easy_cleanup(api);
    curl_easy_cleanup(s3);
    return res;
}

static void read_urls(void)
{
    char line[4096];

    urls = calloc(MAXURLS, sizeof *urls);
    while (urls && nurls < MAXURLS && fgets(line, sizeof line, stdin)) {
        line[strcspn(line, "\n")] = '\0';
        if (line[0])
            urls[nurls++] = strdup(line);
    }
}

int main(int argc, char **argv)
{
    pthread_t th[256];
    long ok = 0, failed = 0;
    double t0;

    if (argc != 6 || !(secret = getenv("PIXPLANE_JWT_SECRET"))) {
        fprintf(stderr, "usage: photoload API_URL flow|raw THREADS SIZE SECS [< urls]\n");
        return 2;
    }
    base = argv[1], flow = !strcmp(argv[2], "flow"), nthreads = atoi(argv[3]);
    size = atol(argv[4]), secs = atof(argv[5]);
    if (nthreads < 1 || nthreads > 256 || size < 1 || secs <= 0 || secs > 600)
        return 2;
    if (!flow)
        read_urls();
    curl_global_init(CURL_GLOBAL_DEFAULT);
    t0 = now(), t_end = t0 + secs;
    for (long i = 0; i < nthreads; i++)
        pthread_create(&th[i], NULL, thread_main, (void *)i);
    for (int i = 0; i < nthreads; i++) {
        void *r;
        pthread_join(th[i], &r);
        ok += ((long *)r)[0], failed += ((long *)r)[1];
        free(r);
    }
    printf("{\"uploads\": %ld, \"failed\": %ld, \"seconds\": %.3f}\n", ok, failed, now() - t0);
    curl_global_cleanup();
    return 0;
}
