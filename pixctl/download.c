/* download: `pixctl download` and `pixctl thumb`, and the verified download machinery
 * (temporary file, SHA-256 on the way, Range resume, rename into place) that sync uses. */
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backoff.h"
#include "client.h"
#include "dl.h"
#include "fsx.h"
#include "json.h"
#include "naming.h"
#include "progress.h"

#define ERRBODY_MAX 1024
#define DL_BUFFER (512L * 1024)

struct dl_state {
    CURL *k;
    int fd, checked, write_errno;
    long status;
    long long have;
    EVP_MD_CTX *md;
    char errbody[ERRBODY_MAX];
    size_t errlen;
    struct progress pg;
};

const char *dl_jstr(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

    return cJSON_IsString(v) ? v->valuestring : "";
}

long long dl_jnum(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

    return json_count(v);
}

/* Starts the file over (the server ignored our Range). */
static int restart(struct dl_state *d)
{
    if (ftruncate(d->fd, 0) < 0 || lseek(d->fd, 0, SEEK_SET) < 0)
        return -1;
    d->have = 0;
    return EVP_DigestInit_ex(d->md, EVP_sha256(), NULL) == 1 ? 0 : -1;
}

static size_t write_cb(char *p, size_t size, size_t n, void *ud)
{
    struct dl_state *d = ud;
    size_t len = size * n;

    if (!d->checked) {
        d->checked = 1;
        curl_easy_getinfo(d->k, CURLINFO_RESPONSE_CODE, &d->status);
        if (d->status == 200 && d->have > 0 && restart(d) < 0)
            return d->write_errno = errno, 0;
    }
    if (d->status != 200 && d->status != 206) {
        size_t room = ERRBODY_MAX - 1 - d->errlen;
        memcpy(d->errbody + d->errlen, p, len < room ? len : room);
        d->errlen += len < room ? len : room;
        d->errbody[d->errlen] = '\0';
        return len;
    }
    if (fsx_write_all(d->fd, p, len) < 0)
        return d->write_errno = errno, 0;
    EVP_DigestUpdate(d->md, p, len);
    d->have += (long long)len;
    progress_update(&d->pg, d->have, util_now_mono());
    return len;
}

/* One GET of url from d->have on. PIX_OK when the body is complete; *retry says whether a
 * failure is worth another attempt (and *fresh_url whether the URL was refused). */
static int attempt(struct pix *px, struct dl_state *d, const char *url, int *retry, int *fresh_url,
                   char *err)
{
    char range[48], curl_err[CURL_ERROR_SIZE] = "";
    CURLcode rc;

    *retry = *fresh_url = 0;
    d->checked = 0, d->status = 0, d->errlen = 0, d->errbody[0] = '\0';
    curl_easy_reset(d->k);
    client_transfer_opts(px->api, d->k);
    curl_easy_setopt(d->k, CURLOPT_URL, url);
    curl_easy_setopt(d->k, CURLOPT_WRITEFUNCTION, write_cb);
    curl_easy_setopt(d->k, CURLOPT_WRITEDATA, d);
    curl_easy_setopt(d->k, CURLOPT_BUFFERSIZE, DL_BUFFER);
    curl_easy_setopt(d->k, CURLOPT_ERRORBUFFER, curl_err);
    if (d->have > 0) {
        snprintf(range, sizeof range, "%lld-", d->have);
        curl_easy_setopt(d->k, CURLOPT_RANGE, range);
    }
    rc = curl_easy_perform(d->k);
    if (d->write_errno)
        return err_set(err, "write: %s", strerror(d->write_errno)), PIX_EIO;
    if (rc != CURLE_OK && (!d->checked || d->status == 200 || d->status == 206)) {
        *retry = 1;
        err_set(err, "download: %s", curl_err[0] ? curl_err : curl_easy_strerror(rc));
        return client_curl_exit(rc);
    }
    if (d->status == 200 || d->status == 206)
        return PIX_OK;
    if (d->status == 416)
        return restart(d) < 0 ? PIX_EIO : (*retry = 1, PIX_EAPI);
    *retry = d->status >= 500 || d->status == 403 || d->status == 408 || d->status == 429;
    *fresh_url = d->status == 403;
    err_set(err, "storage answered HTTP %ld to the download", d->status);
    return PIX_EAPI;
}

static int fetch(struct pix *px, const struct dl_src *src, struct dl_state *d, char *err)
{
    int rc = PIX_EAPI, retry = 0, fresh = 0;

    for (int i = 0; i < px->cfg->retries; i++) {
        char *url = NULL;
        if (i > 0 && !(fresh && i == 1) &&
            backoff_sleep(backoff_delay(i - 1, 0.5, 20, backoff_random())) < 0)
            return err_set(err, "interrupted"), PIX_EINTR;
        if ((rc = src->get_url(px, src->ud, &url, err)) != PIX_OK)
            return rc;
        rc = attempt(px, d, url, &retry, &fresh, err);
        free(url);
        if (rc == PIX_OK || rc == PIX_EINTR || rc == PIX_EIO || !retry)
            return rc;
    }
    return rc;
}

static int open_tmp(const char *dir, const char *prefix, char tmp[PATH_MAX], char *err)
{
    mode_t um = umask(0);
    int fd;

    umask(um);
    if (snprintf(tmp, PATH_MAX, "%s/%.180s-XXXXXX", dir, prefix) >= PATH_MAX)
        return err_set(err, "path too long"), -1;
    if ((fd = mkostemp(tmp, O_CLOEXEC)) < 0)
        return err_set(err, "cannot create a file in %s: %s", dir, strerror(errno)), -1;
    if (fchmod(fd, 0666 & ~um) < 0) { /* mkstemp makes 0600 */
        err_set(err, "%s: %s", tmp, strerror(errno));
        close(fd), unlink(tmp);
        return -1;
    }
    return fd;
}

static int finish(struct dl_state *d, const char *expect_sha, long long size, struct dl_result *res,
                  char *err)
{
    unsigned char md[32];
    char *ct = NULL;

    if (EVP_DigestFinal_ex(d->md, md, NULL) != 1)
        return err_set(err, "sha256 failed"), PIX_EIO;
    util_hex(md, 32, res->sha256);
    res->bytes = d->have;
    curl_easy_getinfo(d->k, CURLINFO_CONTENT_TYPE, &ct);
    snprintf(res->content_type, sizeof res->content_type, "%s", ct ? ct : "");
    if (expect_sha && strcasecmp(expect_sha, res->sha256))
        return err_set(err, "sha256 mismatch: expected %.64s, got %s", expect_sha, res->sha256),
               PIX_EVERIFY;
    if (expect_sha && size >= 0 && size != d->have)
        return err_set(err, "size mismatch: expected %lld bytes, got %lld", size, d->have),
               PIX_EVERIFY;
    if (fsync(d->fd) < 0)
        return err_set(err, "fsync: %s", strerror(errno)), PIX_EIO;
    return PIX_OK;
}

int dl_to_tmp(struct pix *px, const struct dl_src *src, const char *dir, const char *prefix,
              const char *expect_sha, long long size, char tmp[PATH_MAX], struct dl_result *res,
              char *err)
{
    struct dl_state d = {.fd = -1};
    int rc = PIX_EIO;

    memset(res, 0, sizeof *res);
    if ((d.fd = open_tmp(dir, prefix, tmp, err)) < 0)
        return PIX_EIO;
    d.k = curl_easy_init();
    d.md = EVP_MD_CTX_new();
    if (!d.k || !d.md || EVP_DigestInit_ex(d.md, EVP_sha256(), NULL) != 1) {
        err_set(err, "out of memory");
        goto done;
    }
    progress_start(&d.pg, src->progress, "download", src->label, size > 0 ? size : 0, 0,
                   util_now_mono());
    rc = fetch(px, src, &d, err);
    progress_end(&d.pg, util_now_mono());
    if (rc == PIX_OK)
        rc = finish(&d, expect_sha, size, res, err);
done:
    if (d.k)
        curl_easy_cleanup(d.k);
    EVP_MD_CTX_free(d.md);
    if (close(d.fd) < 0 && rc == PIX_OK)
        rc = PIX_EIO, err_set(err, "close: %s", strerror(errno));
    if (rc != PIX_OK)
        unlink(tmp);
    return rc;
}

int dl_image_url(struct pix *px, void *ud, char **url, char *err)
{
    char path[160];
    cJSON *o = NULL;
    int rc;

    snprintf(path, sizeof path, "/images/%s", (const char *)ud);
    if ((rc = client_json(px->api, "GET", path, NULL, CLIENT_RETRY, &o, NULL, err)) != PIX_OK)
        return rc;
    *url = *dl_jstr(o, "download_url") ? strdup(dl_jstr(o, "download_url")) : NULL;
    cJSON_Delete(o);
    return *url ? PIX_OK : (err_set(err, "the API gave no download_url"), PIX_EAPI);
}

int dl_metadata(struct pix *px, const char *id, cJSON **meta, char *err)
{
    char path[160];
    char *esc = client_escape(px->api, id);
    int rc;

    if (!esc)
        return err_set(err, "out of memory"), PIX_EIO;
    snprintf(path, sizeof path, "/images/%.100s/metadata", esc);
    curl_free(esc);
    rc = client_json(px->api, "GET", path, NULL, CLIENT_RETRY, meta, NULL, err);
    if (rc == PIX_OK && !*meta)
        return err_set(err, "empty metadata"), PIX_EAPI;
    return rc;
}

/* ---- the commands ---- */

static int progress_mode(const struct pix *px)
{
    return px->cfg->quiet ? PROGRESS_NONE : px->tty ? PROGRESS_BAR : PROGRESS_PLAIN;
}

/* Where to write: -o PATH (a directory: PATH/NAME), else ./NAME. */
static void target_path(const struct pix *px, const char *fname, char *out, size_t n)
{
    const char *o = px->cfg->output;
    struct stat st;

    if (!o || !*o)
        snprintf(out, n, "%s", fname);
    else if (stat(o, &st) == 0 && S_ISDIR(st.st_mode))
        snprintf(out, n, "%s/%s", o, fname);
    else
        snprintf(out, n, "%s", o);
}

/* The directory the output goes to (for the temporary file). */
static void target_dir(const struct pix *px, char *out, size_t n)
{
    const char *o = px->cfg->output;
    struct stat st;

    if (!o || !*o)
        snprintf(out, n, ".");
    else if (stat(o, &st) == 0 && S_ISDIR(st.st_mode))
        snprintf(out, n, "%s", o);
    else
        fsx_dirname(o, out, n);
}

/* Downloads src to a temporary file beside path, then renames it to path. */
static int save_as(struct pix *px, const struct dl_src *src, const char *path,
                   const char *expect_sha, long long size, struct dl_result *res, char *err)
{
    char dir[PATH_MAX], tmp[PATH_MAX], prefix[200];
    int rc;

    fsx_dirname(path, dir, sizeof dir);
    snprintf(prefix, sizeof prefix, ".%.120s.pixctl", fsx_basename(path));
    if ((rc = dl_to_tmp(px, src, dir, prefix, expect_sha, size, tmp, res, err)) != PIX_OK)
        return rc;
    if (rename(tmp, path) < 0) {
        err_set(err, "cannot rename to %s: %s", path, strerror(errno));
        unlink(tmp);
        return PIX_EIO;
    }
    return PIX_OK;
}

static void print_saved(const struct pix *px, const char *id, const char *path,
                        const struct dl_result *res, int verified)
{
    if (px->cfg->json) {
        cJSON *o = cJSON_CreateObject();
        char *s;
        cJSON_AddStringToObject(o, "image_id", id);
        cJSON_AddStringToObject(o, "path", path);
        cJSON_AddNumberToObject(o, "size", (double)res->bytes);
        cJSON_AddStringToObject(o, "sha256", res->sha256);
        cJSON_AddBoolToObject(o, "verified", verified);
        if ((s = cJSON_PrintUnformatted(o)))
            printf("%s\n", s);
        free(s);
        cJSON_Delete(o);
    } else {
        printf("%s\n", path);
    }
    fflush(stdout);
}

int cmd_download(struct pix *px, int argc, char **argv)
{
    const char *id = argv[0];
    char err[ERR_MAX], fname[NAMING_MAX + 1], path[PATH_MAX];
    struct dl_src src = {dl_image_url, (void *)id, id, progress_mode(px)};
    struct dl_result res;
    cJSON *meta = NULL;
    int rc = dl_metadata(px, id, &meta, err);

    if (rc == PIX_OK) {
        naming_sanitize(*dl_jstr(meta, "name") ? dl_jstr(meta, "name") : id, fname, sizeof fname);
        target_path(px, fname, path, sizeof path);
        src.label = fname;
        if (!*dl_jstr(meta, "sha256"))
            rc = PIX_EAPI, err_set(err, "the metadata has no sha256 to verify against");
        else
            rc = save_as(px, &src, path, dl_jstr(meta, "sha256"), dl_jnum(meta, "size"), &res, err);
    }
    if (rc == PIX_OK)
        print_saved(px, id, path, &res, 1);
    else
        pix_errorf("download %s: %s", id, err);
    cJSON_Delete(meta);
    return rc;
}

struct variant_src {
    const char *id, *variant;
    double deadline;
};

/* The variant's signed URL, waiting while the server answers 202 (still being made). */
static int variant_url(struct pix *px, void *ud, char **url, char *err)
{
    struct variant_src *v = ud;
    char path[256];

    snprintf(path, sizeof path, "/images/%s/variants/%s", v->id, v->variant);
    for (int i = 0;; i++) {
        struct client_resp r;
        int rc = client_call(px->api, "GET", path, NULL, NULL, CLIENT_RETRY, &r, err);
        if (rc != PIX_OK)
            return rc;
        if (r.status == 200 && *dl_jstr(r.json, "download_url")) {
            *url = strdup(dl_jstr(r.json, "download_url"));
            client_resp_free(&r);
            return *url ? PIX_OK : (err_set(err, "out of memory"), PIX_EIO);
        }
        rc = r.status == 202 ? PIX_OK : client_error(&r, err);
        client_resp_free(&r);
        if (rc != PIX_OK)
            return rc;
        if (util_now_mono() >= v->deadline)
            return err_set(err, "variant %s is still being made (waited --wait)", v->variant),
                   PIX_EAPI;
        if (i == 0)
            pix_note(px, "%s: waiting for the %s variant", v->id, v->variant);
        if (backoff_sleep(1.0) < 0)
            return err_set(err, "interrupted"), PIX_EINTR;
    }
}

static const char *ext_for(const char *content_type)
{
    static const struct {
        const char *ct, *ext;
    } t[] = {{"image/jpeg", ".jpg"},  {"image/png", ".png"}, {"image/webp", ".webp"},
             {"image/avif", ".avif"}, {"image/gif", ".gif"}, {"image/heic", ".heic"}};

    for (size_t i = 0; i < ARRAY_LEN(t); i++)
        if (!strncasecmp(content_type, t[i].ct, strlen(t[i].ct)))
            return t[i].ext;
    return "";
}

int cmd_thumb(struct pix *px, int argc, char **argv)
{
    struct variant_src v = {argv[0], px->cfg->variant, util_now_mono() + px->cfg->wait};
    struct dl_src src = {variant_url, &v, argv[0], progress_mode(px)};
    char err[ERR_MAX], fname[NAMING_MAX + 1], stem[NAMING_MAX + 1], path[PATH_MAX], tmp[PATH_MAX],
        dir[PATH_MAX];
    struct dl_result res;
    cJSON *meta = NULL;
    int rc = dl_metadata(px, v.id, &meta, err);

    if (rc == PIX_OK) {
        naming_sanitize(*dl_jstr(meta, "name") ? dl_jstr(meta, "name") : v.id, stem, sizeof stem);
        stem[naming_ext_at(stem)] = '\0';
        target_dir(px, dir, sizeof dir);
        rc = dl_to_tmp(px, &src, dir, ".pixctl-thumb", NULL, -1, tmp, &res, err);
    }
    if (rc == PIX_OK) {
        snprintf(fname, sizeof fname, "%.180s.%.40s%s", stem, v.variant, ext_for(res.content_type));
        target_path(px, fname, path, sizeof path);
        if (rename(tmp, path) < 0) {
            rc = PIX_EIO, err_set(err, "cannot rename to %s: %s", path, strerror(errno));
            unlink(tmp);
        }
    }
    if (rc == PIX_OK)
        print_saved(px, v.id, path, &res, 0);
    else
        pix_errorf("thumb %s: %s", v.id, err);
    cJSON_Delete(meta);
    return rc;
}
