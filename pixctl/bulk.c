/* bulk: `pixctl upload -r DIR...` and `pixctl upload --from-list FILE`: a bulk import as a
 * bounded pipeline. The main thread walks, looks files up in the import index, hashes what
 * it must and opens sessions BATCH_MAX at a time with POST /uploads/batch (idempotency keys
 * from path, size, mtime and sha256, so a rerun after a kill gets the same sessions back);
 * --files workers answer dedup challenges, send chunks and complete. One progress line for
 * the whole import on stderr, one result per file on stdout, a summary at the end. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backoff.h"
#include "client.h"
#include "fsx.h"
#include "hash.h"
#include "iidx.h"
#include "json.h"
#include "mime.h"
#include "progress.h"
#include "tstamp.h"
#include "upload.h"
#include "walk.h"

#define BATCH_MAX 100 /* items per POST /uploads/batch (the server takes up to 500) */
#define BATCH_TRIES 6 /* rounds for an item refused with 429 (open-session caps) */
#define FAIL_LIST 20  /* failures the summary names */
#define LIST_PAGE 200 /* images per GET /images page */
#define LIST_PAGES 100000
#define DRAW_EVERY 0.1  /* seconds between redraws of the progress bar */
#define PLAIN_EVERY 5.0 /* seconds between plain progress lines */
#define INDEX_FILE "import-index"
#define EXAMINE_IGNORE (-1) /* examine(): not an image, not an error */

enum bstatus { B_UPLOADED, B_DEDUP, B_SKIPPED, B_FAILED, B_NSTATUS };

static const char *const status_name[] = {"uploaded", "deduplicated", "skipped", "failed"};

/* One file on its way through the import. */
struct bjob {
    char arg[PATH_MAX]; /* as walked or listed */
    struct upload_item it;
    char mime[32];
    char reason[128]; /* skipped: why */
    char idem[96];
    char gone_id[64]; /* the image the index names, no longer in the library */
    cJSON *session;   /* the batch's answer, for the worker */
    int tries;        /* batch rounds refused with 429 */
    int indexed;      /* the index already says this (nothing to write) */
    int matched;      /* skipped for its content: image_id is another file's */
    char kind;        /* what the index said (IIDX_*), 0 if nothing */
    int rc;
    char err[ERR_MAX];
    struct upload_result res;
};

struct bulk;

struct bworker {
    struct bulk *b;
    struct pix px; /* its own API client */
    pthread_t t;
    int started;
};

struct bulk {
    struct pix *px;
    const struct pixctl_config *cfg;
    struct pixctl_config wcfg; /* the workers': quiet (the import draws its own progress) */
    int listed;                /* --from-list: every line is meant as an image */
    iidx *idx;                 /* under mu */
    int idx_fd, idx_dirty;
    char idx_path[PATH_MAX], state[PATH_MAX];
    iidx_set *have_id, *have_sha, *run_sha; /* the main thread's */
    /* jobs with sessions, for the workers */
    pthread_mutex_t mu;
    pthread_cond_t cv_work, cv_main;
    struct bjob **q;
    int qcap, qhead, qlen, busy, closing;
    struct bworker *w;
    int nw;
    /* the batch being assembled */
    struct bjob *pend[BATCH_MAX];
    int npend;
    /* counts, under mu */
    long long files_total, bytes_total, files_done, bytes_done, bytes_sent;
    int count[B_NSTATUS], ignored, worst, nfails;
    char (*fails)[ERR_MAX + 64];
    double t0, last_draw;
    int mode, width, drawn;
};

/* ---- progress and results (under mu) ---- */

static int term_width(void)
{
    struct winsize ws;

    if (ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 20)
        return ws.ws_col;
    return 80;
}

static void draw(struct bulk *b, int force)
{
    double now = util_now_mono();
    long long total = b->files_total;
    char line[512];

    if (b->mode == PROGRESS_NONE)
        return;
    if (!force && now - b->last_draw < (b->mode == PROGRESS_BAR ? DRAW_EVERY : PLAIN_EVERY))
        return;
    b->last_draw = now;
    if (total >= 0 && total < b->files_done)
        total = b->files_done;
    progress_render_import(line, sizeof line, b->files_done, total, b->bytes_done,
                           total >= 0 ? b->bytes_total : 0, now - b->t0,
                           b->mode == PROGRESS_BAR ? b->width : 0);
    if (b->mode == PROGRESS_BAR)
        fprintf(stderr, "\r%s\033[K", line);
    else
        fprintf(stderr, "%s\n", line);
    b->drawn = 1;
    fflush(stderr);
}

static void clear_bar(struct bulk *b)
{
    if (b->mode == PROGRESS_BAR && b->drawn) {
        fprintf(stderr, "\r\033[K");
        b->drawn = 0;
    }
}

static void print_json(const struct bjob *j, int st)
{
    cJSON *o = cJSON_CreateObject();
    char *s;

    cJSON_AddStringToObject(o, "file", j->arg);
    cJSON_AddStringToObject(o, "status", status_name[st]);
    if (j->res.image_id[0])
        cJSON_AddStringToObject(o, "image_id", j->res.image_id);
    cJSON_AddStringToObject(o, "sha256", j->it.file.sha256);
    cJSON_AddNumberToObject(o, "size", (double)j->it.file.size);
    cJSON_AddNumberToObject(o, "bytes_sent", (double)j->res.bytes_sent);
    cJSON_AddBoolToObject(o, "deduplicated", j->res.dedup || j->res.proof);
    if (st == B_SKIPPED)
        cJSON_AddStringToObject(o, "reason", j->reason);
    if (st == B_FAILED) {
        cJSON_AddNumberToObject(o, "exit_code", j->rc);
        cJSON_AddStringToObject(o, "error", j->err);
    }
    if ((s = cJSON_PrintUnformatted(o)))
        printf("%s\n", s);
    free(s);
    cJSON_Delete(o);
}

/* Records a finished file in the index (memory and the appended file). */
static void index_job(struct bulk *b, const struct bjob *j)
{
    struct iidx_entry e;
    char line[PATH_MAX + 256];
    int n;

    if (j->indexed || !j->res.image_id[0] || !j->it.file.sha256[0])
        return;
    iidx_entry_of(&j->it.file, j->res.image_id, j->matched ? IIDX_MATCHED : IIDX_IMPORTED, &e);
    if (iidx_put(b->idx, &e) < 0)
        return;
    b->idx_dirty = 1;
    n = iidx_format(&e, line, sizeof line);
    if (n > 0 && b->idx_fd >= 0 && fsx_write_all(b->idx_fd, line, (size_t)n) < 0) {
        close(b->idx_fd);
        b->idx_fd = -1; /* the rewrite at the end still saves it */
    }
}

static void note_failure(struct bulk *b, const struct bjob *j)
{
    clear_bar(b);
    pix_errorf("upload %s: %s", j->arg, j->err);
    if (b->nfails < FAIL_LIST)
        snprintf(b->fails[b->nfails], sizeof b->fails[0], "%.*s: %s", 60, j->arg, j->err);
    b->nfails++;
    b->worst = pix_worst(b->worst, j->rc);
}

/* A file is done (st: B_*): counted, indexed, printed; j is freed. Takes mu. */
static void job_finish(struct bulk *b, struct bjob *j, int st)
{
    pthread_mutex_lock(&b->mu);
    b->count[st]++;
    b->files_done++;
    b->bytes_done += j->it.file.size;
    b->bytes_sent += j->res.bytes_sent;
    if (st == B_FAILED)
        note_failure(b, j);
    else
        index_job(b, j);
    if (b->cfg->json)
        print_json(j, st);
    else if (st != B_FAILED)
        printf("%s  %s\n", j->res.image_id[0] ? j->res.image_id : "-", j->arg);
    fflush(stdout);
    draw(b, 0);
    pthread_mutex_unlock(&b->mu);
    cJSON_Delete(j->session);
    free(j);
}

static void job_fail(struct bulk *b, struct bjob *j, int rc, const char *msg)
{
    j->rc = rc;
    if (msg != j->err)
        snprintf(j->err, sizeof j->err, "%s", msg);
    job_finish(b, j, B_FAILED);
}

static void job_skip(struct bulk *b, struct bjob *j, const char *image_id, const char *why)
{
    if (image_id != j->res.image_id)
        snprintf(j->res.image_id, sizeof j->res.image_id, "%s", image_id);
    snprintf(j->reason, sizeof j->reason, "%s", why);
    job_finish(b, j, B_SKIPPED);
}

/* ---- the workers ---- */

static struct bjob *job_take(struct bulk *b)
{
    struct bjob *j = NULL;

    pthread_mutex_lock(&b->mu);
    while (!b->qlen && !b->closing)
        pthread_cond_wait(&b->cv_work, &b->mu);
    if (b->qlen) {
        j = b->q[b->qhead];
        b->qhead = (b->qhead + 1) % b->qcap;
        b->qlen--;
        b->busy++;
        pthread_cond_broadcast(&b->cv_main);
    }
    pthread_mutex_unlock(&b->mu);
    return j;
}

static void job_done(struct bulk *b)
{
    pthread_mutex_lock(&b->mu);
    b->busy--;
    pthread_cond_broadcast(&b->cv_main);
    pthread_mutex_unlock(&b->mu);
}

static void *worker_main(void *arg)
{
    struct bworker *w = arg;
    struct bjob *j;

    while ((j = job_take(w->b))) {
        if (pix_interrupted) { /* not begun: dropped, the rerun carries on */
            cJSON_Delete(j->session);
            free(j);
            job_done(w->b);
            continue;
        }
        j->rc = upload_session_file(&w->px, &j->it, j->session, &j->res, j->err);
        if (j->rc != PIX_OK)
            job_finish(w->b, j, B_FAILED);
        else
            job_finish(w->b, j, j->res.proof ? B_DEDUP : B_UPLOADED);
        job_done(w->b);
    }
    return NULL;
}

/* Hands j to the workers, waiting while the queue is full. */
static void queue_push(struct bulk *b, struct bjob *j)
{
    pthread_mutex_lock(&b->mu);
    while (b->qlen == b->qcap)
        pthread_cond_wait(&b->cv_main, &b->mu);
    b->q[(b->qhead + b->qlen) % b->qcap] = j;
    b->qlen++;
    pthread_cond_signal(&b->cv_work);
    pthread_mutex_unlock(&b->mu);
}

/* Waits until the workers have finished every job handed to them. */
static void queue_drain(struct bulk *b)
{
    pthread_mutex_lock(&b->mu);
    while (b->qlen || b->busy)
        pthread_cond_wait(&b->cv_main, &b->mu);
    pthread_mutex_unlock(&b->mu);
}

static int workers_start(struct bulk *b, char *err)
{
    b->nw = (int)b->cfg->files;
    b->qcap = BATCH_MAX;
    b->q = calloc((size_t)b->qcap, sizeof *b->q);
    b->w = calloc((size_t)b->nw, sizeof *b->w);
    if (!b->q || !b->w) {
        err_set(err, "out of memory");
        return PIX_EIO;
    }
    for (int i = 0; i < b->nw; i++) {
        struct bworker *w = &b->w[i];
        w->b = b;
        w->px.cfg = &b->wcfg;
        if (!(w->px.api = client_new(&b->wcfg, err)))
            return PIX_EUSAGE;
        if (pthread_create(&w->t, NULL, worker_main, w) != 0) {
            err_set(err, "cannot start a thread");
            return PIX_EIO;
        }
        w->started = 1;
    }
    return PIX_OK;
}

static void workers_stop(struct bulk *b)
{
    if (b->closing)
        return;
    pthread_mutex_lock(&b->mu);
    b->closing = 1;
    pthread_cond_broadcast(&b->cv_work);
    pthread_mutex_unlock(&b->mu);
    for (int i = 0; b->w && i < b->nw; i++) {
        if (b->w[i].started)
            pthread_join(b->w[i].t, NULL);
        client_free(b->w[i].px.api);
    }
}

/* ---- what the server and the index already have ---- */

static void take_page(struct bulk *b, const cJSON *o)
{
    const cJSON *it;

    cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(o, "images"))
    {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(it, "image_id");
        const cJSON *sha = cJSON_GetObjectItemCaseSensitive(it, "sha256");

        if (!cJSON_IsString(id))
            continue;
        if (iidx_set_put(b->have_id, id->valuestring, "") < 0)
            continue;
        if (cJSON_IsString(sha))
            (void)iidx_set_put(b->have_sha, sha->valuestring, id->valuestring);
    }
}

/* Lists the caller's images (active and verifying): their ids and content hashes. */
static int list_images(struct bulk *b, char *err)
{
    char path[512], cursor[256] = "";
    int rc = PIX_OK;

    for (int page = 0; page < LIST_PAGES && rc == PIX_OK && !pix_interrupted; page++) {
        cJSON *o = NULL;
        const cJSON *next;
        char *esc = client_escape(b->px->api, cursor);

        snprintf(path, sizeof path, "/images?limit=%d%s%s", LIST_PAGE, cursor[0] ? "&cursor=" : "",
                 cursor[0] && esc ? esc : "");
        curl_free(esc);
        if ((rc = client_json(b->px->api, "GET", path, NULL, CLIENT_RETRY, &o, NULL, err)))
            break;
        take_page(b, o);
        next = cJSON_GetObjectItemCaseSensitive(o, "next_cursor");
        if (!cJSON_IsString(next) || !*next->valuestring || !strcmp(next->valuestring, cursor)) {
            cJSON_Delete(o);
            break;
        }
        snprintf(cursor, sizeof cursor, "%s", next->valuestring);
        cJSON_Delete(o);
    }
    return rc;
}

static int index_open(struct bulk *b, char *err)
{
    if (walk_join(b->state, INDEX_FILE, b->idx_path, sizeof b->idx_path) < 0) {
        err_set(err, "state path too long");
        return PIX_EUSAGE;
    }
    if (!(b->idx = iidx_new()) || iidx_load(b->idx, b->idx_path, err) < 0)
        return PIX_EIO;
    b->idx_fd = open(b->idx_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (b->idx_fd < 0) {
        err_set(err, "%s: %s", b->idx_path, strerror(errno));
        return PIX_EIO;
    }
    return PIX_OK;
}

/* ---- one file: classify, look up, hash ---- */

static void ident_of(struct file_ident *f, const struct stat *sb)
{
    f->size = sb->st_size;
    f->mtime_sec = sb->st_mtim.tv_sec;
    f->mtime_nsec = sb->st_mtim.tv_nsec;
    f->dev = sb->st_dev;
    f->ino = sb->st_ino;
}

/* Fills j's file identity and type: PIX_OK, EXAMINE_IGNORE when the file is not an image
 * to import (while walking), or an exit code with j->err. */
static int examine(struct bulk *b, struct bjob *j)
{
    const char *m;
    struct stat sb;

    if (stat(j->arg, &sb) < 0) {
        err_set(j->err, "%s", strerror(errno));
        return PIX_EIO;
    }
    if (!S_ISREG(sb.st_mode)) {
        err_set(j->err, "not a regular file");
        return b->listed ? PIX_EIO : EXAMINE_IGNORE;
    }
    m = mime_of_file(j->arg);
    if (!m && b->cfg->mime_type && *b->cfg->mime_type)
        m = b->cfg->mime_type;
    if (!mime_importable(m)) {
        err_set(j->err, "not an image type the server stores");
        return b->listed ? PIX_EUSAGE : EXAMINE_IGNORE;
    }
    if (sb.st_size == 0) {
        err_set(j->err, "the file is empty");
        return PIX_EUSAGE;
    }
    snprintf(j->mime, sizeof j->mime, "%s", m);
    if (j->arg[0] == '/' && !b->listed)
        snprintf(j->it.file.path, sizeof j->it.file.path, "%s", j->arg);
    else if (!realpath(j->arg, j->it.file.path)) {
        err_set(j->err, "%s", strerror(errno));
        return PIX_EIO;
    }
    ident_of(&j->it.file, &sb);
    return PIX_OK;
}

/* What the index says of j's file: 1 with its sha256 (and image id) in j when it is
 * unchanged since it was imported. */
static int index_lookup(struct bulk *b, struct bjob *j)
{
    const struct iidx_entry *e;
    int fresh = 0;

    pthread_mutex_lock(&b->mu);
    e = iidx_find(b->idx, j->it.file.path);
    if (e && iidx_fresh(e, &j->it.file)) {
        snprintf(j->it.file.sha256, sizeof j->it.file.sha256, "%s", e->sha256);
        snprintf(j->res.image_id, sizeof j->res.image_id, "%s", e->image_id);
        j->kind = e->kind;
        fresh = 1;
    }
    pthread_mutex_unlock(&b->mu);
    return fresh;
}

/* Skips j (reported and freed, *gone set) if the library or this import already has its
 * content, unless --allow-duplicates. */
static void dedup_check(struct bulk *b, struct bjob *j, int *gone)
{
    const char *have = iidx_set_get(b->have_sha, j->it.file.sha256);

    *gone = 0;
    if (b->cfg->allow_duplicates)
        return;
    if (have) {
        *gone = 1;
        j->matched = 1;
        job_skip(b, j, have, "the same content is already in your library");
        return;
    }
    if (iidx_set_put(b->run_sha, j->it.file.sha256, "") == 0) {
        *gone = 1;
        job_skip(b, j, "", "the same content as another file of this import");
    }
}

static int hash_job(struct bjob *j)
{
    long long n = 0;
    int fd = open(j->arg, O_RDONLY | O_CLOEXEC), rc;

    if (fd < 0) {
        err_set(j->err, "%s", strerror(errno));
        return PIX_EIO;
    }
    rc = hash_file(fd, j->it.file.sha256, &n, NULL, NULL, j->err);
    close(fd);
    if (rc == PIX_OK && n != j->it.file.size) {
        err_set(j->err, "the file changed while it was read");
        rc = PIX_EIO;
    }
    return rc;
}

/* The idempotency key of j's session: the same file (path, size, mtime) with the same
 * content asks for the same session, however often the import runs; once the image it made
 * has left the library (deleted), a new one. */
static void make_idem(struct bjob *j)
{
    char text[PATH_MAX + 160], hex[65];
    const struct file_ident *f = &j->it.file;

    snprintf(text, sizeof text, "pixctl-import\n%s\n%lld\n%lld.%09lld\n%s\n%s", f->path, f->size,
             f->mtime_sec, f->mtime_nsec, f->sha256, j->gone_id);
    hash_string(text, hex);
    snprintf(j->idem, sizeof j->idem, "pixctl-import-%s", hex);
}

/* ---- sessions in batches ---- */

static cJSON *batch_body(struct bjob **jobs, int n)
{
    cJSON *body = cJSON_CreateObject(), *items = cJSON_AddArrayToObject(body, "items");

    for (int i = 0; i < n; i++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "file_name", fsx_basename(jobs[i]->it.file.path));
        cJSON_AddNumberToObject(o, "file_size", (double)jobs[i]->it.file.size);
        cJSON_AddStringToObject(o, "mime_type", jobs[i]->mime);
        cJSON_AddStringToObject(o, "sha256", jobs[i]->it.file.sha256);
        cJSON_AddStringToObject(o, "idempotency_key", jobs[i]->idem);
        tstamp_add_mtime(o, jobs[i]->it.file.mtime_sec, jobs[i]->it.file.mtime_nsec);
        cJSON_AddItemToArray(items, o);
    }
    return body;
}

/* One item's answer: to the workers (201), back to *retry (429), or failed. */
static void take_item(struct bulk *b, struct bjob *j, cJSON *item, struct bjob **retry, int *nr)
{
    long long st = json_count(cJSON_GetObjectItemCaseSensitive(item, "status_code"));
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(item, "error");
    const cJSON *code = cJSON_GetObjectItemCaseSensitive(e, "code");
    const cJSON *msg = cJSON_GetObjectItemCaseSensitive(e, "message");

    if (st == 201 && (j->session = cJSON_DetachItemFromObjectCaseSensitive(item, "session"))) {
        queue_push(b, j);
        return;
    }
    if (st == 429 && ++j->tries < BATCH_TRIES) {
        retry[(*nr)++] = j;
        return;
    }
    err_set(j->err, "HTTP %lld %s: %s", st, cJSON_IsString(code) ? code->valuestring : "error",
            cJSON_IsString(msg) ? msg->valuestring : "the batch refused this file");
    job_fail(b, j, PIX_EAPI, j->err);
}

/* Opens sessions for jobs[0..n) and hands them on; those refused for the caps go into
 * retry. An answer of 413 (more items than the server takes) splits the batch. */
static void post_batch(struct bulk *b, struct bjob **jobs, int n, struct bjob **retry, int *nr)
{
    cJSON *body = batch_body(jobs, n), *items;
    struct client_resp r = {0};
    char err[ERR_MAX];
    int rc = client_call(b->px->api, "POST", "/uploads/batch", body, NULL, CLIENT_RETRY, &r, err);
    int k = 0;

    cJSON_Delete(body);
    if (rc == PIX_OK && r.status == 413 && n > 1) {
        client_resp_free(&r);
        post_batch(b, jobs, n / 2, retry, nr);
        post_batch(b, jobs + n / 2, n - n / 2, retry, nr);
        return;
    }
    if (rc == PIX_OK && r.status != 200)
        rc = client_error(&r, err);
    items = rc == PIX_OK ? cJSON_GetObjectItemCaseSensitive(r.json, "items") : NULL;
    if (rc == PIX_OK && cJSON_GetArraySize(items) != n) {
        err_set(err, "the API answered the batch with %d items for %d", cJSON_GetArraySize(items),
                n);
        rc = PIX_EAPI;
    }
    for (cJSON *it = items ? items->child : NULL; rc == PIX_OK && it; it = it->next, k++)
        take_item(b, jobs[k], it, retry, nr);
    for (; k < n; k++)
        job_fail(b, jobs[k], rc, err);
    client_resp_free(&r);
}

/* Opens sessions for jobs[0..n), trying items refused for the caps again once the
 * sessions handed on so far are done. */
static void open_sessions(struct bulk *b, struct bjob **jobs, int n)
{
    struct bjob *retry[BATCH_MAX];
    int nr = 0;

    post_batch(b, jobs, n, retry, &nr);
    for (int round = 1; nr && !pix_interrupted; round++) {
        struct bjob *again[BATCH_MAX];
        int na = nr;

        memcpy(again, retry, sizeof(struct bjob *) * (size_t)nr);
        nr = 0;
        queue_drain(b);
        if (backoff_sleep(backoff_delay(round, 0.5, 10, backoff_random())) < 0)
            break;
        post_batch(b, again, na, retry, &nr);
    }
    for (int i = 0; i < nr; i++)
        job_fail(b, retry[i], PIX_EINTR, "interrupted");
}

/* Hashes the pending files that need it, skips known content, opens the rest's sessions.
 * Interrupted, the files not begun are dropped unreported. */
static void flush(struct bulk *b)
{
    struct bjob *go[BATCH_MAX];
    int n = 0, gone, rc;

    for (int i = 0; i < b->npend; i++) {
        struct bjob *j = b->pend[i];

        if (pix_interrupted) {
            free(j);
            continue;
        }
        if (!j->it.file.sha256[0] && (rc = hash_job(j)) != PIX_OK) {
            job_fail(b, j, rc, j->err);
            continue;
        }
        dedup_check(b, j, &gone);
        if (gone)
            continue;
        make_idem(j);
        go[n++] = j;
    }
    b->npend = 0;
    if (n)
        open_sessions(b, go, n);
}

/* Takes one walked or listed path into the pipeline. */
static void take_path(struct bulk *b, const char *arg)
{
    struct bjob *j = calloc(1, sizeof *j);
    int rc;

    if (!j) {
        pthread_mutex_lock(&b->mu);
        b->worst = pix_worst(b->worst, PIX_EIO);
        pthread_mutex_unlock(&b->mu);
        pix_errorf("upload %s: out of memory", arg);
        return;
    }
    snprintf(j->arg, sizeof j->arg, "%s", arg);
    j->it.arg = j->arg;
    j->it.mime = j->mime;
    if ((rc = examine(b, j)) == EXAMINE_IGNORE) {
        b->ignored++;
        free(j);
        return;
    }
    if (rc != PIX_OK) {
        job_fail(b, j, rc, j->err);
        return;
    }
    if (index_lookup(b, j) && iidx_set_get(b->have_id, j->res.image_id) &&
        (j->kind == IIDX_IMPORTED || !b->cfg->allow_duplicates)) {
        j->indexed = 1;
        j->matched = j->kind == IIDX_MATCHED;
        job_skip(b, j, j->res.image_id,
                 j->matched ? "the same content is already in your library" : "already imported");
        return;
    }
    if (j->kind == IIDX_IMPORTED && !iidx_set_get(b->have_id, j->res.image_id))
        snprintf(j->gone_id, sizeof j->gone_id, "%s", j->res.image_id);
    j->res.image_id[0] = '\0';
    b->pend[b->npend++] = j;
    if (b->npend == BATCH_MAX)
        flush(b);
}

/* ---- the import ---- */

/* Counts the files and bytes the import will likely take (by extension), for the
 * progress line. -1 files when the list is standard input. */
static void precount(struct bulk *b, int argc, char **argv)
{
    char path[PATH_MAX], err[ERR_MAX];
    walk *w;
    int rc;

    b->files_total = -1;
    if (b->listed && !strcmp(b->cfg->from_list, "-"))
        return;
    w = b->listed ? walk_list(b->cfg->from_list, err) : walk_roots(argv, argc, b->state, err);
    if (!w)
        return;
    b->files_total = 0;
    while ((rc = walk_next(w, path, sizeof path, err)) >= 0 && !pix_interrupted) {
        struct stat sb;
        if (rc == 0)
            break;
        if (rc == 1 && (b->listed || mime_importable(mime_from_name(path))) &&
            stat(path, &sb) == 0) {
            b->files_total++;
            b->bytes_total += sb.st_size;
        }
    }
    walk_free(w);
}

static int run_walk(struct bulk *b, int argc, char **argv, char *err)
{
    char path[PATH_MAX], werr[ERR_MAX];
    walk *w = b->listed ? walk_list(b->cfg->from_list, err) : walk_roots(argv, argc, b->state, err);
    int rc;

    if (!w)
        return PIX_EUSAGE;
    while (!pix_interrupted && (rc = walk_next(w, path, sizeof path, werr)) != 0) {
        if (rc == 1) {
            take_path(b, path);
            continue;
        }
        pthread_mutex_lock(&b->mu);
        clear_bar(b);
        pix_errorf("upload: %s", werr);
        b->worst = pix_worst(b->worst, PIX_EIO);
        pthread_mutex_unlock(&b->mu);
    }
    if (b->npend)
        flush(b);
    walk_free(w);
    return PIX_OK;
}

static void summary(struct bulk *b)
{
    double secs = util_now_mono() - b->t0;
    char sent[24];

    progress_fmt_bytes((double)b->bytes_sent, sent, sizeof sent);
    if (b->cfg->json) {
        printf("{\"summary\":true,\"files\":%lld,\"uploaded\":%d,\"deduplicated\":%d,"
               "\"skipped\":%d,\"failed\":%d,\"ignored\":%d,\"bytes_sent\":%lld,"
               "\"seconds\":%.3f,\"exit_code\":%d}\n",
               b->files_done, b->count[B_UPLOADED], b->count[B_DEDUP], b->count[B_SKIPPED],
               b->count[B_FAILED], b->ignored, b->bytes_sent, secs, b->worst);
        fflush(stdout);
    }
    clear_bar(b);
    if (b->cfg->quiet)
        return;
    fprintf(stderr,
            "import: %lld files in %.1fs (%.1f files/s): %d uploaded (%s sent), %d "
            "deduplicated, %d skipped, %d failed; %d ignored (not images)\n",
            b->files_done, secs, secs > 0 ? (double)b->files_done / secs : 0, b->count[B_UPLOADED],
            sent, b->count[B_DEDUP], b->count[B_SKIPPED], b->count[B_FAILED], b->ignored);
    for (int i = 0; i < b->nfails && i < FAIL_LIST; i++)
        fprintf(stderr, "  failed: %s\n", b->fails[i]);
    if (b->nfails > FAIL_LIST)
        fprintf(stderr, "  ... and %d more failures\n", b->nfails - FAIL_LIST);
}

static int setup(struct bulk *b, int argc, char **argv, char *err)
{
    char dir[PATH_MAX];
    int rc;

    if (!b->listed && argc == 0) {
        err_set(err, "usage: pixctl upload -r DIR... or --from-list FILE");
        return PIX_EUSAGE;
    }
    if (b->listed && argc > 0) {
        err_set(err, "--from-list takes no other paths");
        return PIX_EUSAGE;
    }
    if ((rc = upload_state_dir(b->cfg, dir, sizeof dir, err)) != PIX_OK)
        return rc;
    if (!realpath(dir, b->state)) {
        err_set(err, "%s: %s", dir, strerror(errno));
        return PIX_EIO;
    }
    if ((rc = index_open(b, err)) != PIX_OK)
        return rc;
    b->have_id = iidx_set_new();
    b->have_sha = iidx_set_new();
    b->run_sha = iidx_set_new();
    b->fails = calloc(FAIL_LIST, sizeof *b->fails);
    if (!b->have_id || !b->have_sha || !b->run_sha || !b->fails) {
        err_set(err, "out of memory");
        return PIX_EIO;
    }
    if ((rc = list_images(b, err)) != PIX_OK)
        return rc;
    precount(b, argc, argv);
    return workers_start(b, err);
}

static void teardown(struct bulk *b)
{
    char err[ERR_MAX];

    if (b->idx && b->idx_dirty && iidx_save(b->idx, b->idx_path, err) < 0)
        pix_errorf("warning: cannot save the import index: %s", err);
    if (b->idx_fd >= 0)
        close(b->idx_fd);
    iidx_free(b->idx);
    iidx_set_free(b->have_id);
    iidx_set_free(b->have_sha);
    iidx_set_free(b->run_sha);
    free(b->fails);
    free(b->q);
    free(b->w);
    pthread_mutex_destroy(&b->mu);
    pthread_cond_destroy(&b->cv_work);
    pthread_cond_destroy(&b->cv_main);
}

int cmd_upload_bulk(struct pix *px, int argc, char **argv)
{
    struct bulk *b = calloc(1, sizeof *b);
    char err[ERR_MAX] = "";
    int rc;

    if (!b)
        return PIX_EIO;
    b->px = px;
    b->cfg = px->cfg;
    b->wcfg = *px->cfg;
    b->wcfg.quiet = 1;
    b->listed = px->cfg->from_list && *px->cfg->from_list;
    b->idx_fd = -1;
    b->mode = px->cfg->quiet ? PROGRESS_NONE : px->tty ? PROGRESS_BAR : PROGRESS_PLAIN;
    b->width = b->mode == PROGRESS_BAR ? term_width() : 0;
    b->t0 = util_now_mono();
    b->last_draw = b->t0;
    pthread_mutex_init(&b->mu, NULL);
    if (util_cond_init(&b->cv_work) < 0 || util_cond_init(&b->cv_main) < 0) {
        free(b);
        return PIX_EIO;
    }
    rc = setup(b, argc, argv, err);
    if (rc == PIX_OK)
        rc = run_walk(b, argc, argv, err);
    if (rc == PIX_OK)
        queue_drain(b);
    workers_stop(b);
    if (rc != PIX_OK)
        pix_errorf("upload: %s", err);
    else
        summary(b);
    teardown(b);
    rc = pix_worst(rc, b->worst);
    free(b);
    return pix_interrupted && rc == PIX_OK ? PIX_EINTR : rc;
}
