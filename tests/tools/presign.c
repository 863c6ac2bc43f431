/* presign: prints one SigV4 presigned URL made by common/s3 (with --bucket) or common/sigv4
 * (raw path), for tests that compare it with botocore's; --bench N times N presigns. */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "s3.h"
#include "sigv4.h"

#define PRESIGN_MAX_QUERY 16

struct opts {
    const char *access, *secret, *region, *base, *method, *key, *bucket;
    long long when;
    long expires;
    int path_style;
    long bench;
    struct sigv4_kv query[PRESIGN_MAX_QUERY];
    size_t nq;
};

static void usage(void)
{
    fprintf(stderr,
            "usage: presign --access K --secret S --base URL --key KEY [--region R]\n"
            "               [--method GET] [--time EPOCH] [--expires 3600]\n"
            "               [--bucket B [--path-style 0|1]] [--query k=v]... [--bench N]\n"
            "Without --bucket the URL path is /KEY; with it, the key lives in bucket B\n"
            "(path-style base/B/KEY or virtual-hosted B.host/KEY). Prints the URL; --bench N\n"
            "signs N URLs and prints the cost per URL on stderr.\n");
    exit(2);
}

static long long num_arg(const char *s, long long lo, long long hi)
{
    char *e;
    long long v = strtoll(s, &e, 10);
    if (!*s || *e || v < lo || v > hi)
        usage();
    return v;
}

static void add_query(struct opts *o, char *kv)
{
    char *eq = strchr(kv, '=');
    if (o->nq == PRESIGN_MAX_QUERY || !eq || eq == kv)
        usage();
    *eq = '\0';
    o->query[o->nq++] = (struct sigv4_kv){kv, eq + 1};
}

static void parse_args(int argc, char **argv, struct opts *o)
{
    const struct {
        const char *flag;
        const char **target;
    } strs[] = {{"--access", &o->access}, {"--secret", &o->secret}, {"--region", &o->region},
                {"--base", &o->base},     {"--method", &o->method}, {"--key", &o->key},
                {"--bucket", &o->bucket}};
    for (int i = 1; i < argc; i += 2) {
        const char *f = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        size_t j = 0;
        if (!v)
            usage();
        while (j < ARRAY_LEN(strs) && strcmp(f, strs[j].flag) != 0)
            j++;
        if (j < ARRAY_LEN(strs))
            *strs[j].target = v;
        else if (strcmp(f, "--time") == 0)
            o->when = num_arg(v, 0, 253402300799LL);
        else if (strcmp(f, "--expires") == 0)
            o->expires = (long)num_arg(v, 0, 1L << 30);
        else if (strcmp(f, "--path-style") == 0)
            o->path_style = (int)num_arg(v, 0, 1);
        else if (strcmp(f, "--bench") == 0)
            o->bench = (long)num_arg(v, 1, 1L << 30);
        else if (strcmp(f, "--query") == 0)
            add_query(o, argv[i + 1]);
        else
            usage();
    }
    if (!o->access || !o->secret || !o->base || !o->key)
        usage();
}

/* The signer behind one URL: an s3 client for a bucket, or a bare SigV4 signer. */
struct signer {
    s3_client *s3;
    sigv4_signer *raw;
    char *path;
};

static int signer_open(struct signer *s, const struct opts *o)
{
    if (o->bucket) {
        struct s3_config cfg = {.endpoint = o->base,
                                .bucket = o->bucket,
                                .region = o->region,
                                .access_key = o->access,
                                .secret_key = o->secret,
                                .path_style = o->path_style};
        s->s3 = s3_client_new(&cfg);
        return s->s3 ? 0 : -1;
    }
    s->raw = sigv4_signer_new(o->access, o->secret, o->region, "s3");
    s->path = malloc(strlen(o->key) + 2);
    if (!s->raw || !s->path)
        return -1;
    sprintf(s->path, "/%s", o->key);
    return 0;
}

static void signer_close(struct signer *s)
{
    s3_client_free(s->s3);
    sigv4_signer_free(s->raw);
    free(s->path);
}

static int sign_one(struct signer *s, const struct opts *o, buf *out, char *err)
{
    if (s->s3)
        return s3_presign(s->s3, o->method, o->key, o->query, o->nq, (time_t)o->when, o->expires,
                          out, err);
    return sigv4_presign(s->raw, o->method, o->base, s->path, o->query, o->nq, (time_t)o->when,
                         o->expires, out, err);
}

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int bench(struct signer *s, const struct opts *o, buf *out, char *err)
{
    double t0 = now_ns();
    for (long i = 0; i < o->bench; i++) {
        buf_reset(out);
        if (sign_one(s, o, out, err) < 0)
            return -1;
    }
    double ns = (now_ns() - t0) / (double)o->bench;
    fprintf(stderr, "presign: %ld URLs, %.0f ns per URL (%zu bytes each)\n", o->bench, ns,
            out->len);
    return 0;
}

int main(int argc, char **argv)
{
    struct opts o = {.region = "us-east-1", .method = "GET", .expires = 3600, .path_style = 1};
    struct signer s = {0};
    buf out = {0};
    char err[ERR_MAX] = "";
    int rc = 1;
    o.when = (long long)time(NULL);
    parse_args(argc, argv, &o);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    if (signer_open(&s, &o) < 0) {
        fprintf(stderr, "presign: bad configuration (base URL, bucket or keys)\n");
        goto done;
    }
    if ((o.bench ? bench(&s, &o, &out, err) : sign_one(&s, &o, &out, err)) < 0) {
        fprintf(stderr, "presign: %s\n", err);
        goto done;
    }
    printf("%s\n", out.data);
    rc = 0;
done:
    buf_free(&out);
    signer_close(&s);
    curl_global_cleanup();
    return rc;
}
