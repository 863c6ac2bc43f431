/* webapp: serves the built browser pages at /app/ from memory (GET and HEAD, ETag and 304,
 * a strict Content-Security-Policy); files are read once, so requests touch no disk. */
#include <dirent.h>
#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "webapp.h"

#define WEBAPP_MAX_FILES 256
#define WEBAPP_MAX_BYTES (64L << 20) /* all files together */

/* Scripts only from this origin (WebAssembly for the hasher), no framing, no plugins.
 * Images and connections may go to object storage (signed URLs) and, for an integrator's
 * cross-origin API, to another origin. */
#define WEBAPP_CSP                                                                                 \
    "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self' 'unsafe-inline'; " \
    "img-src 'self' blob: data: http: https:; connect-src 'self' http: https:; "                   \
    "worker-src 'self' blob:; frame-ancestors 'none'; base-uri 'none'; object-src 'none'; "        \
    "form-action 'none'"

struct wfile {
    char *name;
    char *data;
    size_t len;
    const char *type;
    char etag[24];
};

struct webapp {
    int n;
    struct wfile f[WEBAPP_MAX_FILES];
};

static const char *type_of(const char *name)
{
    static const char *const map[][2] = {
        {".html", "text/html; charset=utf-8"},
        {".js", "text/javascript; charset=utf-8"},
        {".css", "text/css; charset=utf-8"},
        {".map", "application/json"},
        {".svg", "image/svg+xml"},
        {".png", "image/png"},
        {".ico", "image/x-icon"},
        {".wasm", "application/wasm"},
        {".json", "application/json"},
        {".txt", "text/plain; charset=utf-8"},
    };
    const char *dot = strrchr(name, '.');
    size_t i;

    for (i = 0; dot && i < ARRAY_LEN(map); i++)
        if (!strcmp(dot, map[i][0]))
            return map[i][1];
    return "application/octet-stream";
}

static int read_all(const char *path, char **out, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    struct stat st;
    char *data = NULL;

    if (!fp || fstat(fileno(fp), &st) < 0 || st.st_size > WEBAPP_MAX_BYTES)
        goto fail;
    if (!(data = malloc((size_t)st.st_size + 1)) ||
        fread(data, 1, (size_t)st.st_size, fp) != (size_t)st.st_size)
        goto fail;
    fclose(fp);
    *out = data;
    *len = (size_t)st.st_size;
    return 0;
fail:
    free(data);
    if (fp)
        fclose(fp);
    return -1;
}

/* A strong validator: the first 8 bytes of the content's SHA-256. */
static void etag_of(struct wfile *f)
{
    unsigned char md[32];
    char hex[17];
    unsigned int mdlen = 0;

    if (!EVP_Digest(f->data, f->len, md, &mdlen, EVP_sha256(), NULL))
        memset(md, 0, sizeof md);
    util_hex(md, 8, hex);
    snprintf(f->etag, sizeof f->etag, "\"%s\"", hex);
}

static int add_file(webapp *w, const char *dir, const char *name, size_t *total, char *err)
{
    char path[4096];
    struct wfile *f = &w->f[w->n];

    snprintf(path, sizeof path, "%s/%s", dir, name);
    if (w->n == WEBAPP_MAX_FILES)
        return err_set(err, "web-dir: more than %d files", WEBAPP_MAX_FILES), -1;
    if (read_all(path, &f->data, &f->len) < 0)
        return err_set(err, "web-dir: cannot read %s", path), -1;
    w->n++; /* from here webapp_free frees it */
    if (!(f->name = strdup(name)))
        return err_set(err, "out of memory"), -1;
    if ((*total += f->len) > WEBAPP_MAX_BYTES)
        return err_set(err, "web-dir: over %ld bytes in all", WEBAPP_MAX_BYTES), -1;
    f->type = type_of(name);
    etag_of(f);
    return 0;
}

webapp *webapp_load(const char *dir, char *err)
{
    webapp *w = NULL;
    DIR *d = dir && *dir ? opendir(dir) : NULL;
    struct dirent *e;
    size_t total = 0;

    if (!d) {
        if (!dir || !*dir || errno == ENOENT)
            err_set(err, "%s", "");
        else
            err_set(err, "web-dir %s: %s", dir, strerror(errno));
        return NULL;
    }
    if (!(w = calloc(1, sizeof *w))) {
        err_set(err, "out of memory");
        goto fail;
    }
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.' || (e->d_type != DT_REG && e->d_type != DT_UNKNOWN))
            continue;
        if (add_file(w, dir, e->d_name, &total, err) < 0)
            goto fail;
    }
    closedir(d);
    return w;
fail:
    closedir(d);
    webapp_free(w);
    return NULL;
}

void webapp_free(webapp *w)
{
    int i;

    if (!w)
        return;
    for (i = 0; i < w->n; i++) {
        free(w->f[i].name);
        free(w->f[i].data);
    }
    free(w);
}

int webapp_files(const webapp *w)
{
    return w ? w->n : 0;
}

static const struct wfile *find(const webapp *w, const char *name)
{
    int i;

    for (i = 0; w && i < w->n; i++)
        if (!strcmp(w->f[i].name, name))
            return &w->f[i];
    return NULL;
}

static void respond_file(http_req *r, const struct wfile *f)
{
    const char *inm = http_req_header(r, "If-None-Match");
    int fresh = inm && strstr(inm, f->etag) != NULL;

    if (http_resp_header(r, "ETag", f->etag) < 0 ||
        http_resp_header(r, "Cache-Control", "no-cache") < 0 ||
        http_resp_header(r, "X-Content-Type-Options", "nosniff") < 0 ||
        http_resp_header(r, "Referrer-Policy", "no-referrer") < 0 ||
        (!strncmp(f->type, "text/html", 9) &&
         (http_resp_header(r, "Content-Security-Policy", WEBAPP_CSP) < 0 ||
          http_resp_header(r, "X-Frame-Options", "DENY") < 0)))
        return http_respond_error(r, 500, "internal", "could not build the answer");
    if (fresh)
        return http_respond(r, 304, NULL, NULL, 0);
    http_respond(r, 200, f->type, f->data, f->len);
}

int webapp_serve(const webapp *w, http_req *r, const char *path)
{
    const char *m = http_req_method(r);
    size_t plen = strlen(WEBAPP_PREFIX);
    const char *name = path + plen + 1;
    const struct wfile *f;

    if (!w || strncmp(path, WEBAPP_PREFIX, plen) || (path[plen] && path[plen] != '/'))
        return 0;
    if (strcmp(m, "GET") && strcmp(m, "HEAD")) {
        if (http_resp_header(r, "Allow", "GET, HEAD") < 0)
            return http_respond_error(r, 500, "internal", "could not build the answer"), 1;
        return http_respond_error(r, 405, "method_not_allowed", "method not allowed"), 1;
    }
    if (!path[plen]) {
        if (http_resp_header(r, "Location", WEBAPP_PREFIX "/") < 0)
            return http_respond_error(r, 500, "internal", "could not build the answer"), 1;
        return http_respond(r, 301, NULL, NULL, 0), 1;
    }
    f = find(w, *name ? name : "index.html");
    if (!f || strchr(name, '/'))
        return http_respond_error(r, 404, "not_found", "no such page"), 1;
    respond_file(r, f);
    return 1;
}
