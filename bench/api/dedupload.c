/* dedupload: a C client for bench/api/dedup.py, so the client's own cost stays out of the
 * latency: T threads, each with one keep-alive connection, run tasks (user, content seed)
 * read from stdin: POST /uploads (plain, or with sha256 and then the proof), back to back or
 * paced to a fleet-wide rate. Prints one latency in microseconds per line. Loopback only. */
#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth.h"
#include "util.h"

#define SIZE (256 * 1024)
#define MAXTASKS 100000

struct task {
    char user[64];
    long seed;
    double lat_us;
};

static struct task tasks[MAXTASKS];
static int ntasks, nthreads, dedup;
static double gap; /* seconds between one thread's operations (0: back to back) */
static const char *base, *secret;

static double now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The content bench/api/dedup.py stored for this seed (same construction). */
static void content(long seed, unsigned char *out)
{
    unsigned char h[32];
    char s[64];
    size_t n = 0;

    snprintf(s, sizeof s, "pixplane-bench-dedup-%ld", seed);
    EVP_Digest(s, strlen(s), h, NULL, EVP_sha256(), NULL);
    while (n < SIZE) {
        EVP_Digest(h, 32, h, NULL, EVP_sha256(), NULL);
        for (int i = 0; i < 64 && n < SIZE; i++, n += 32)
            memcpy(out + n, h, 32);
    }
}

static size_t sink(char *p, size_t sz, size_t n, void *ud)
{
    return buf_append(ud, p, sz * n) < 0 ? 0 : sz * n;
}

/* POSTs body; returns the parsed answer (NULL on failure) and its status in *st. */
static cJSON *post(CURL *c, const char *path, const char *tok, const char *body, long *st)
{
    char url[512], auth[1024];
    struct curl_slist *h = NULL;
    buf b = {0};
    cJSON *j = NULL;

    snprintf(url, sizeof url, "%s%s", base, path);
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", tok);
    h = curl_slist_append(h, auth);
    h = curl_slist_append(h, "Content-Type: application/json");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sink);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    if (curl_easy_perform(c) == CURLE_OK && buf_append(&b, "", 1) == 0) {
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, st);
        j = cJSON_Parse(b.data);
    }
    curl_slist_free_all(h);
    buf_free(&b);
    return j;
}

static void proof(const unsigned char *data, const cJSON *ch, char hex[65])
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    const cJSON *r;
    unsigned char out[32];
    const char *nonce = cJSON_GetObjectItem(ch, "nonce")->valuestring;

    EVP_DigestInit_ex(md, EVP_sha256(), NULL);
    EVP_DigestUpdate(md, nonce, strlen(nonce));
    cJSON_ArrayForEach(r, cJSON_GetObjectItem(ch, "ranges"))
    {
        long long off = (long long)cJSON_GetObjectItem(r, "offset")->valuedouble;
        long long len = (long long)cJSON_GetObjectItem(r, "length")->valuedouble;
        EVP_DigestUpdate(md, data + off, (size_t)len);
    }
    EVP_DigestFinal_ex(md, out, NULL);
    EVP_MD_CTX_free(md);
    util_hex(out, 32, hex);
}

/* One operation; 0 or -1. */
static int run_task(CURL *c, struct task *t, unsigned char *data)
{
    char *tok = auth_sign((const unsigned char *)secret, strlen(secret), t->user, 0, time(NULL),
                          3600);
    char body[512], sha[65], path[96], hex[65];
    unsigned char md[32];
    cJSON *s = NULL, *p = NULL;
    long st = 0;
    int rc = -1;
    double t0;

    content(t->seed, data);
    EVP_Digest(data, SIZE, md, NULL, EVP_sha256(), NULL);
    util_hex(md, 32, sha);
    snprintf(body, sizeof body,
             "{\"file_name\":\"p.jpg\",\"file_size\":%d,\"mime_type\":\"image/jpeg\"%s%s%s}", SIZE,
             dedup ? ",\"sha256\":\"" : "", dedup ? sha : "", dedup ? "\"" : "");
    t0 = now();
    s = post(c, "/uploads", tok, body, &st);
    if (!s || st != 201)
        goto done;
    if (dedup) {
        proof(data, cJSON_GetObjectItem(s, "dedup_challenge"), hex);
        snprintf(path, sizeof path, "/uploads/%s/proof",
                 cJSON_GetObjectItem(s, "upload_session_id")->valuestring);
        snprintf(body, sizeof body, "{\"proof\":\"%s\"}", hex);
        p = post(c, path, tok, body, &st);
        if (!p || st != 200)
            goto done;
    }
    t->lat_us = (now() - t0) * 1e6;
    rc = 0;
done:
    if (rc < 0)
        fprintf(stderr, "dedupload: %s failed with %ld\n", t->user, st);
    cJSON_Delete(s);
    cJSON_Delete(p);
    free(tok);
    return rc;
}

static void *thread_main(void *arg)
{
    long id = (long)arg;
    CURL *c = curl_easy_init();
    unsigned char *data = malloc(SIZE);
    double start = now() + (double)id * gap / nthreads; /* staggered: even arrivals */
    long *fails = calloc(1, sizeof *fails);

    for (int i = (int)id, k = 0; i < ntasks; i += nthreads, k++) {
        while (gap > 0 && now() < start + k * gap)
            nanosleep(&(struct timespec){0, 200000}, NULL);
        if (run_task(c, &tasks[i], data) < 0)
            (*fails)++;
    }
    free(data);
    curl_easy_cleanup(c);
    return fails;
}

int main(int argc, char **argv)
{
    pthread_t th[256];
    long fails = 0;

    if (argc != 5 || !(secret = getenv("PIXPLANE_JWT_SECRET"))) {
        fprintf(stderr, "usage: dedupload URL plain|dedup THREADS RATE < tasks\n");
        return 2;
    }
    base = argv[1];
    dedup = strcmp(argv[2], "dedup") == 0;
    nthreads = atoi(argv[3]);
    gap = atof(argv[4]) > 0 ? nthreads / atof(argv[4]) : 0;
    while (ntasks < MAXTASKS &&
           scanf("%63s %ld", tasks[ntasks].user, &tasks[ntasks].seed) == 2)
        ntasks++;
    if (nthreads < 1 || nthreads > 256)
        return 2;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    for (long i = 0; i < nthreads; i++)
        pthread_create(&th[i], NULL, thread_main, (void *)i);
    for (int i = 0; i < nthreads; i++) {
        void *f;
        pthread_join(th[i], &f);
        fails += *(long *)f;
        free(f);
    }
    for (int i = 0; i < ntasks; i++)
        if (tasks[i].lat_us > 0)
            printf("%.1f\n", tasks[i].lat_us);
    curl_global_cleanup();
    return fails ? 1 : 0;
}
