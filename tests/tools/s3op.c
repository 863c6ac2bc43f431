/* s3op: operator and test tool on common/s3 for the bucket named by the S3_* environment:
 * multipart calls, HEAD/GET/PUT/DELETE/COPY, listings (JSON lines), hashing and presigned URLs. */
#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "conf.h"
#include "pop.h"
#include "s3.h"

#define S3OP_NOTFOUND_EXIT 3

struct opts {
    int page_size;
    long expires;
    long long when;
    const char *content_type;
    const char *resp_type;
    const char *resp_disposition;
};

typedef int (*cmd_fn)(s3_client *c, const struct opts *o, char **args, int n, char *err);

struct cmd {
    const char *name;
    int min, max; /* argument count */
    cmd_fn fn;
    const char *usage;
};

static const struct cmd *find_cmd(const char *name);

static long long num(const char *s, long long lo, long long hi, const char *what)
{
    char *e;
    long long v = strtoll(s, &e, 10);
    if (!*s || *e || v < lo || v > hi) {
        fprintf(stderr, "s3op: bad %s: %s\n", what, s);
        exit(2);
    }
    return v;
}

static const char *env_or(const char *name, const char *def)
{
    const char *v = getenv(name);
    return v && *v ? v : def;
}

/* ---- output */

static void emit(cJSON *o)
{
    char *s = o ? cJSON_PrintUnformatted(o) : NULL;
    if (s)
        printf("%s\n", s);
    free(s);
    cJSON_Delete(o);
}

static int print_part(const struct s3_part *p)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "part", p->number);
    cJSON_AddNumberToObject(o, "size", (double)p->size);
    cJSON_AddStringToObject(o, "etag", p->etag);
    emit(o);
    return 0;
}

static int print_upload(const char *key, const char *upload_id, time_t initiated, void *ud)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "key", key);
    cJSON_AddStringToObject(o, "upload_id", upload_id);
    cJSON_AddNumberToObject(o, "initiated", (double)initiated);
    emit(o);
    return 0;
}

static int print_object(const char *key, long long size, time_t last_modified, void *ud)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "key", key);
    cJSON_AddNumberToObject(o, "size", (double)size);
    cJSON_AddNumberToObject(o, "last_modified", (double)last_modified);
    emit(o);
    return 0;
}

/* ---- commands */

static int cmd_bucket(s3_client *c, const struct opts *o, char **a, int n, char *err)
{
    return s3_head_bucket(c, err);
}

static int cmd_create(s3_client *c, const struct opts *o, char **a, int n, char *err)
{
    char id[1024];
    int rc = s3_create_multipart(c, a[0], o->content_type, id, sizeof(id), err);
    if (rc == S3_OK)
        printf("%s\n", id);
    return rc;
}

static int cmd_parts(s3_client *c, const struct opts *o, char **a, int n, char *err)
{
    struct s3_part *parts;
    int np;
    int rc = s3_list_parts(c, a[0], a[1], &parts, &np, err);
    for (int i = 0; rc == S3_OK && i < np; i++)
        print_part(&parts[i]);
    if (rc == S3_OK)
        free(parts);
    return rc;
}

/* "N=ETAG" arguments into parts; -1 if one is malformed. */
static int parse_parts(char **a, int n, struct s3_part *parts, char *err)
{
    for (int i = 0; i < n; i++) {
        char *eq = strchr(a[i], '=');
        if (!eq || (size_t)snprintf(parts[i].etag, sizeof(parts[i].etag), "%s", eq + 1) >=
                       sizeof(parts[i].etag)) {
            err_set(err, "part must be N=ETAG: %s", a[i]);
            return -1;
        }
        *eq = '\0';
        parts[i].number = (int)num(a[i], 1, 10000, "part number");
        parts[i].size = 0;
    }
    return 0;
}

/* Completes with the parts given as N=ETAG, or with every part ListParts reports. */
static int cmd_complete(s3_client *c, const struct opts *o, char **a, int n, char *err)
{
    struct s3_part *parts = NULL;
    int np = n - 2, rc = S3_ERR;
    if (np > 0) {
        parts = calloc((size_t)np, sizeof(*parts));
        if (!parts || parse_parts(a + 2, np, parts, err) < 0)
            goto done;
    } else if ((rc = s3_list_parts(c, a[0], a[1], &parts, &np, err)) != S3_OK) {
        goto done;
    }
    rc = s3_complete_multipart(c, a[0], a[1], parts, np, err);
done:
    free(parts);
    return rc;
}

static int cmd_abort(s3_client *c, const struct opts *o, char **a, int n, char *err)
{
    return s3_abort_multipart(c, a[0], a[1], err);
}

static int cmd_head(s3_client *c, const struct opts *o, char **a, int n, char *err)
{
    struct s3_object obj;
    int rc = s3_head_object(c, a[0], &obj, err);
    if (rc != S3_OK)
        return rc;
    cJSON *j = cJSON_CreateObject();
    cJSON_AddNumberToObject(j, "size", (double)obj.size);
    cJSON_AddStringToObject(j, "etag", obj.etag);
    cJSON_AddNumberToObject(j, "last_modified", (double)obj.last_modified);
    emit(j);
    return S3_OK;
}

/* Optional OFFSET [LEN] after the key. */
static void range_args(char **a, int n, long long *off, long long *len)
{
    *off = n > 1 ? num(a[1], 0, (1LL << 62), "offset") : 0;
    *len = n > 2 ? num(a[2], -1, (1LL << 62), "length") : -1;
}

static int sink_stdout(const void *data, size_t len, void *ud)
{
    return fwrite(data, 1, len, stdout) == len ? 0 : -1;
}

static int cmd_get(s3_client *c, const struct opts *o, char **a, int n, char *err)
{
    long long off, len;
    range_args(a, n, &off, &len);
    int rc = s3_get_object(c, a[0], off, len, sink_stdout, NULL, err);
    if (fflush(stdout) != 0 && rc == S3_OK) {
        err_set(err, "writing stdout failed");
        rc = S3_ERR;
    }
    return rc;
}

struct hasher {
    EVP_MD_CTX *md;
    long long bytes;
    char *server_hex; /* set by the server's pass instead of md */
};

static int sink_sha256(const void *data, size_t len, void *ud)
{
    struct hasher *h = ud;
    h->bytes += (long long)len;
    return EVP_DigestUpdate(h->md, data, len) ? 0 : -1;
}

/* What a hashing command reads: [off, off+len) by one streamed GET, or (streams > 0) the
 * object's `size` bytes through s3_get_ranges. */
struct hash_read {
    const char *key;
    long long off, len, size, range;
    int streams;
    int server; /* the server's own pass (pop_hash_object: the configured parallel read,
                 * hashed on a second thread for large objects) */
};

static int hash_read(s3_client *c, const struct hash_read *rd, struct hasher *h, char *err)
{
    char hex[65];
    int rc;

    if (!h->md || !EVP_DigestInit_ex(h->md, EVP_sha256(), NULL))
        return S3_ERR;
    if (rd->server) { /* pop_hash_object hashes: h keeps its hex */
        if ((rc = pop_hash_object(c, rd->key, rd->size, NULL, NULL, hex, err)) != S3_OK)
            return rc;
        h->bytes = rd->size;
        h->server_hex = strdup(hex);
        return h->server_hex ? S3_OK : S3_ERR;
    }
    if (rd->streams > 0)
        return s3_get_ranges(c, rd->key, rd->size, rd->streams, rd->range, sink_sha256, h, err);
    return s3_get_object(c, rd->key, rd->off, rd->len, sink_sha256, h, err);
}

/* Prints the SHA-256 of what rd reads (nothing buffered beyond the ranges), size and speed. */
static int hash_print(s3_client *c, const struct hash_read *rd, char *err)
{
    struct hasher h = {EVP_MD_CTX_new(), 0};
    unsigned char md[32];
    char hex[65];
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int rc = hash_read(c, rd, &h, err);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (rc == S3_OK && (h.server_hex || EVP_DigestFinal_ex(h.md, md, NULL))) {
        double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
        if (h.server_hex)
            snprintf(hex, sizeof(hex), "%s", h.server_hex);
        else
            util_hex(md, sizeof(md), hex);
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "sha256", hex);
        cJSON_AddNumberToObject(j, "size", (double)h.bytes);
        cJSON_AddNumberToObject(j, "seconds", secs);
        cJSON_AddNumberToObject(j, "mib_per_s", secs > 0 ? (double)h.bytes / 1048576.0 / secs : 0);
        emit(j);
    }
    EVP_MD_CTX_free(h.md);
    free(h.server_hex);
    return rc;
}

/* SHA-256 of the object streamed by one GET. */
static int cmd_sha256(s3_client *c, const struct opts *o, char **a, int n, char *err)
{
    struct hash_read rd = {.key = a[0]};
    range_args(a, n, &rd.off, &rd.len);
    return hash_print(c, &rd, err);
}

/* verify KEY [STREAMS [RANGE [SIZE]]]: SHA-256 read as the server verifies (s3_get_ranges).
 * STREAMS and RANGE default to PIXPLANE_VERIFY_STREAMS / PIXPLANE_VERIFY_RANGE (or the
 * built-in defaults); SIZE, the size to expect, to what HEAD says. */
static int cmd_verify(s3_client *c, const struct opts *o, char **a, int n, char *err)
{
    struct hash_read rd = {.key = a[0], .size = -1};
    struct s3_object obj;
    int rc;
    const char *streams = n > 1 ? a[1] : env_or("PIXPLANE_VERIFY_STREAMS", NULL);
    const char *range = n > 2 ? a[2] : env_or("PIXPLANE_VERIFY_RANGE", NULL);
    rd.server = n < 2; /* no STREAMS given: exactly the server's pass */
    rd.streams = streams ? (int)num(streams, 1, S3_STREAMS_MAX, "streams") : CONF_VERIFY_STREAMS;
    rd.range = (long long)CONF_VERIFY_RANGE_MIB << 20;
    if (range && (conf_parse_size(range, &rd.range) < 0 || rd.range < 1)) {
        fprintf(stderr, "s3op: bad range: %s\n", range);
        exit(2);
    }
    if (n > 3)
        rd.size = num(a[3], 0, (1LL << 62), "size");
    else if ((rc = s3_head_object(c, a[0], &obj, err)) != S3_OK)
        return rc;
    else
        rd.size = obj.size;
    return hash_print(c, &rd, err);
}

/* PUT KEY with the body read from stdin (kept in memory: for small objects). */
static int cmd_put(s3_client *c, const struct opts *o, char **a, int n, char *err)
{
    buf body = {0};
    char chunk[65536];
    size_t got;
    int rc = S3_ERR;
    while ((got = fread(chunk, 1, sizeof(chunk), stdin)) > 0) {
        if (buf_append(&body, chunk, got) < 0)
            goto done;
    }
    if (ferror(stdin)) {
        err_set(err, "reading stdin failed");
        goto done;
    }
    rc = s3_put_object(c, a[0], body.data ? body.data : "", body.len, o->content_type, err);
done:
    buf_free(&body);
    return rc;
}

static int cmd_ls(s3_client *c, const struct opts *o, char **a, int n, char *err)
{
    return s3_list_objects(c, n ? a[0] : "", print_object, NULL, err);
}

static int cmd_uploads(s3_client *c, const struct opts *o, char **a, int n, char *err)
{
    return s3_list_multipart_uploads(c, n ? a[0] : "", print_upload, NULL, err);
}

static int cmd_rm(s3_client *c, const struct opts *o, char **a, int n, char *err)
{
    return s3_delete_object(c, a[0], err);
}

static int cmd_cp(s3_client *c, const struct opts *o, char **a, int n, char *err)
{
    return s3_copy_object(c, a[0], a[1], err);
}

/* presign get KEY | presign put KEY | presign part KEY UPLOADID N LENGTH */
static int cmd_presign(s3_client *c, const struct opts *o, char **a, int n, char *err)
{
    buf url = {0};
    int rc = -1;
    time_t now = (time_t)o->when;
    if (strcmp(a[0], "get") == 0 && n == 2)
        rc = s3_presign_get(c, a[1], o->resp_type, o->resp_disposition, now, o->expires, &url, err);
    else if (strcmp(a[0], "put") == 0 && n == 2)
        rc = s3_presign_put(c, a[1], now, o->expires, &url, err);
    else if (strcmp(a[0], "part") == 0 && n == 5)
        rc = s3_presign_part(c, a[1], a[2], (int)num(a[3], 1, 10000, "part number"),
                             num(a[4], 0, 5LL << 30, "length"), now, o->expires, &url, err);
    else
        err_set(err, "usage: %s", find_cmd("presign")->usage);
    if (rc == 0)
        printf("%s\n", url.data);
    buf_free(&url);
    return rc == 0 ? S3_OK : S3_ERR;
}

static const struct cmd cmds[] = {
    {"bucket", 0, 0, cmd_bucket, "bucket                       HEAD the bucket"},
    {"create", 1, 1, cmd_create,
     "create KEY                   start a multipart upload, print its id"},
    {"parts", 2, 2, cmd_parts, "parts KEY UPLOADID           ListParts (all pages), JSON lines"},
    {"complete", 2, 10002, cmd_complete,
     "complete KEY UPLOADID [N=ETAG]...  complete (default: every listed part)"},
    {"abort", 2, 2, cmd_abort, "abort KEY UPLOADID           abort a multipart upload"},
    {"head", 1, 1, cmd_head, "head KEY                     size, etag, last_modified as JSON"},
    {"get", 1, 3, cmd_get, "get KEY [OFFSET [LEN]]       object bytes to stdout (streamed)"},
    {"sha256", 1, 3, cmd_sha256, "sha256 KEY [OFFSET [LEN]]    SHA-256 of the streamed object"},
    {"verify", 1, 4, cmd_verify,
     "verify KEY [STREAMS [RANGE [SIZE]]]  SHA-256 by parallel ranged GETs, as the server "
     "verifies"},
    {"put", 1, 1, cmd_put, "put KEY < FILE               PUT stdin as the object"},
    {"ls", 0, 1, cmd_ls, "ls [PREFIX]                  ListObjectsV2 (all pages), JSON lines"},
    {"uploads", 0, 1, cmd_uploads, "uploads [PREFIX]             ListMultipartUploads, JSON lines"},
    {"rm", 1, 1, cmd_rm, "rm KEY                       delete (a missing key is fine)"},
    {"cp", 2, 2, cmd_cp, "cp SRC DST                   server-side copy"},
    {"presign", 2, 5, cmd_presign,
     "presign get|put KEY | presign part KEY UPLOADID N LENGTH   presigned URL"},
};

static const struct cmd *find_cmd(const char *name)
{
    for (size_t i = 0; i < ARRAY_LEN(cmds); i++) {
        if (strcmp(cmds[i].name, name) == 0)
            return &cmds[i];
    }
    return NULL;
}

static void usage(void)
{
    fprintf(stderr, "usage: s3op [options] COMMAND ARGS\ncommands:\n");
    for (size_t i = 0; i < ARRAY_LEN(cmds); i++)
        fprintf(stderr, "  %s\n", cmds[i].usage);
    fprintf(stderr,
            "options: --page-size N (listing pages, default server's), --expires SECS (3600),\n"
            "  --time EPOCH (presign clock), --content-type CT (create, put),\n"
            "  --response-content-type CT, --response-content-disposition CD (presign get)\n"
            "environment: S3_ENDPOINT S3_BUCKET S3_ACCESS_KEY S3_SECRET_KEY (required),\n"
            "  S3_REGION (us-east-1), S3_PATH_STYLE (1), S3_PUBLIC_ENDPOINT, S3_TIMEOUT (secs),\n"
            "  S3_STALL_TIMEOUT (secs), PIXPLANE_VERIFY_STREAMS, PIXPLANE_VERIFY_RANGE (verify)\n"
            "exit: 0 ok, 1 error, 2 usage, 3 not found\n");
    exit(2);
}

/* Leading --flag VALUE options; returns the index of the command. */
static int parse_opts(int argc, char **argv, struct opts *o)
{
    int i = 1;
    for (; i + 1 < argc && strncmp(argv[i], "--", 2) == 0; i += 2) {
        const char *f = argv[i], *v = argv[i + 1];
        if (strcmp(f, "--page-size") == 0)
            o->page_size = (int)num(v, 1, 1000, "page size");
        else if (strcmp(f, "--expires") == 0)
            o->expires = (long)num(v, 1, 604800, "expires");
        else if (strcmp(f, "--time") == 0)
            o->when = num(v, 0, 253402300799LL, "time");
        else if (strcmp(f, "--content-type") == 0)
            o->content_type = v;
        else if (strcmp(f, "--response-content-type") == 0)
            o->resp_type = v;
        else if (strcmp(f, "--response-content-disposition") == 0)
            o->resp_disposition = v;
        else
            usage();
    }
    if (i >= argc || strncmp(argv[i], "--", 2) == 0)
        usage();
    return i;
}

static s3_client *client_from_env(void)
{
    struct s3_config cfg = {
        .endpoint = env_or("S3_ENDPOINT", NULL),
        .public_endpoint = env_or("S3_PUBLIC_ENDPOINT", NULL),
        .bucket = env_or("S3_BUCKET", NULL),
        .region = env_or("S3_REGION", "us-east-1"),
        .access_key = env_or("S3_ACCESS_KEY", NULL),
        .secret_key = env_or("S3_SECRET_KEY", NULL),
        .path_style = strcmp(env_or("S3_PATH_STYLE", "1"), "0") != 0,
        .timeout = atof(env_or("S3_TIMEOUT", "0")),
        .stall_timeout = atof(env_or("S3_STALL_TIMEOUT", "0")),
        .connect_timeout = 10,
        .verify_streams = atoi(env_or("PIXPLANE_VERIFY_STREAMS", "0")),
    };
    const char *range = env_or("PIXPLANE_VERIFY_RANGE", NULL);
    if (range && conf_parse_size(range, &cfg.verify_range) < 0) {
        fprintf(stderr, "s3op: bad PIXPLANE_VERIFY_RANGE: %s\n", range);
        exit(2);
    }
    if (!cfg.endpoint || !cfg.bucket || !cfg.access_key || !cfg.secret_key) {
        fprintf(stderr, "s3op: set S3_ENDPOINT, S3_BUCKET, S3_ACCESS_KEY and S3_SECRET_KEY\n");
        exit(2);
    }
    return s3_client_new(&cfg);
}

int main(int argc, char **argv)
{
    struct opts o = {.expires = 3600, .when = (long long)time(NULL)};
    char err[ERR_MAX] = "";
    int i = parse_opts(argc, argv, &o), n = argc - i - 1;
    const struct cmd *cmd = find_cmd(argv[i]);
    if (!cmd || n < cmd->min || n > cmd->max)
        usage();
    curl_global_init(CURL_GLOBAL_DEFAULT);
    s3_client *c = client_from_env();
    if (!c) {
        fprintf(stderr, "s3op: bad S3 configuration (endpoint must be http(s)://host[:port])\n");
        curl_global_cleanup();
        return 2;
    }
    s3_set_page_size(c, o.page_size);
    int rc = cmd->fn(c, &o, argv + i + 1, n, err);
    if (rc != S3_OK)
        fprintf(stderr, "s3op: %s: %s\n", cmd->name, err[0] ? err : "failed");
    s3_client_free(c);
    curl_global_cleanup();
    return rc == S3_OK ? 0 : rc == S3_NOTFOUND ? S3OP_NOTFOUND_EXIT : 1;
}
