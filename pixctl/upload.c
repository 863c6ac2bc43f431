/* upload: `pixctl upload FILE...`: hash first (dedup proof of possession when the server has
 * the content) or while sending, send the missing chunks in parallel, complete (the server
 * verifies now or in the background), with a resume state file so a killed run carries on. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backoff.h"
#include "client.h"
#include "feed.h"
#include "fsx.h"
#include "hash.h"
#include "json.h"
#include "mime.h"
#include "plan.h"
#include "progress.h"
#include "state.h"
#include "tstamp.h"
#include "upload.h"
#include "xfer.h"

#define SAVE_EVERY 1.0    /* seconds between state file updates while chunks finish */
#define COMPLETE_ROUNDS 3 /* complete answered chunks_missing: resend and retry this often */
#define POLL_MIN 0.5
#define POLL_MAX 1.0
#define REASK_AFTER 30.0    /* a session this long in 'completing': ask complete again */
#define COMPLETE_ASKS 500   /* bounds the complete calls of one upload (about 4 h of re-asks) */
#define URL_MARGIN_MAX 60.0 /* stop using a URL this long before it expires */
#define FEED_SPARE 2        /* chunk buffers read ahead beyond --parallel when streaming */
#define FEED_MEM_MAX (1LL << 30) /* ... within this much memory (at least 2 buffers) */

/* What the server said of the content: verified (the session is completed), or committed
 * and still being verified in the background. */
enum { UP_PENDING, UP_VERIFYING, UP_VERIFIED };

struct up {
    struct pix *px;
    const char *arg; /* the path as given */
    int fd;
    struct file_ident file;
    char mime[128], name[256];
    char state_file[PATH_MAX];
    struct upload_state st; /* st.session_id[0] once a session exists */
    double last_save, t0, xfer_secs, hash_secs, complete_secs;
    struct progress pg;
    long long base_bytes; /* bytes the server had before this run */
    /* result */
    char image_id[64], session_id[37];
    long long chunk_size;
    int chunk_count, dedup, proof, resumed, chunks_present;
    int stream;   /* hash while uploading: the session was created without a sha256 */
    int verified; /* UP_* */
    struct feed *feed;
    struct xfer_stats xs;
};

/* ---- the file ---- */

static int pick_mime(struct up *u, char *err)
{
    const char *m = mime_from_name(u->arg);
    unsigned char head[MIME_SNIFF_BYTES];
    ssize_t n;

    if (u->px->cfg->mime_type && *u->px->cfg->mime_type) {
        snprintf(u->mime, sizeof u->mime, "%s", u->px->cfg->mime_type);
        return PIX_OK;
    }
    if (!m && (n = pread(u->fd, head, sizeof head, 0)) > 0)
        m = mime_sniff(head, (size_t)n);
    if (!m)
        return err_set(err, "cannot tell the image type; pass --mime-type"), PIX_EUSAGE;
    snprintf(u->mime, sizeof u->mime, "%s", m);
    return PIX_OK;
}

static int open_file(struct up *u, char *err)
{
    struct stat sb;
    char abs[PATH_MAX];

    if ((u->fd = open(u->arg, O_RDONLY | O_CLOEXEC)) < 0)
        return err_set(err, "%s", strerror(errno)), PIX_EIO;
    if (fstat(u->fd, &sb) < 0)
        return err_set(err, "%s", strerror(errno)), PIX_EIO;
    if (S_ISDIR(sb.st_mode)) {
        err_set(err, "is a directory (-r imports a directory)");
        return PIX_EUSAGE;
    }
    if (!S_ISREG(sb.st_mode))
        return err_set(err, "not a regular file"), PIX_EIO;
    if (sb.st_size == 0)
        return err_set(err, "the file is empty"), PIX_EUSAGE;
    if (!realpath(u->arg, abs))
        return err_set(err, "%s", strerror(errno)), PIX_EIO;
    snprintf(u->file.path, sizeof u->file.path, "%s", abs);
    u->file.size = sb.st_size;
    u->file.mtime_sec = sb.st_mtim.tv_sec, u->file.mtime_nsec = sb.st_mtim.tv_nsec;
    u->file.dev = sb.st_dev, u->file.ino = sb.st_ino;
    snprintf(u->name, sizeof u->name, "%s",
             u->px->cfg->name && *u->px->cfg->name ? u->px->cfg->name : fsx_basename(abs));
    return pick_mime(u, err);
}

static void hash_tick(void *ud, long long done)
{
    struct up *u = ud;

    progress_update(&u->pg, done, util_now_mono());
}

static int hash(struct up *u, char *err)
{
    long long n = 0;
    int rc;

    progress_start(&u->pg, u->px->tty && !u->px->cfg->quiet ? PROGRESS_BAR : PROGRESS_NONE, "hash",
                   fsx_basename(u->arg), u->file.size, 0, util_now_mono());
    rc = hash_file(u->fd, u->file.sha256, &n, hash_tick, u, err);
    progress_end(&u->pg, util_now_mono());
    if (rc == PIX_OK && n != u->file.size)
        return err_set(err, "the file changed while it was read"), PIX_EIO;
    return rc;
}

/* The content hash is known. In test builds PIXPLANE_FAIL=pixctl_wrong_sha256 makes it a
 * wrong one, declared to the server, which must then fail the upload. */
static void hash_known(struct up *u)
{
    if (FAIL_POINT("pixctl_wrong_sha256"))
        u->file.sha256[0] = u->file.sha256[0] == '0' ? '1' : '0';
}

/* ---- resume state ---- */

int upload_state_dir(const struct pixctl_config *cfg, char *out, size_t n, char *err)
{
    const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");

    if (cfg->state_dir && *cfg->state_dir)
        snprintf(out, n, "%s", cfg->state_dir);
    else if (xdg && *xdg)
        snprintf(out, n, "%s/pixplane/uploads", xdg);
    else if (home && *home)
        snprintf(out, n, "%s/.cache/pixplane/uploads", home);
    else
        return err_set(err, "no HOME: set --state-dir"), PIX_EUSAGE;
    return fsx_mkdir_p(out, 0700, err) < 0 ? PIX_EIO : PIX_OK;
}

static void save_state(struct up *u, int force)
{
    char err[ERR_MAX];
    double now = util_now_mono();

    if (!u->state_file[0] || !u->st.session_id[0] || (!force && now - u->last_save < SAVE_EVERY))
        return;
    u->last_save = now;
    if (state_save(u->state_file, &u->st, err) < 0)
        pix_note(u->px, "warning: cannot save resume state: %s", err);
}

static void drop_state(struct up *u)
{
    if (u->state_file[0] && unlink(u->state_file) < 0 && errno != ENOENT)
        pix_note(u->px, "warning: cannot remove %s: %s", u->state_file, strerror(errno));
    state_clear(&u->st);
    memset(&u->st, 0, sizeof u->st);
}

/* Best effort: abort a session we no longer want (the server frees its parts). */
static void abort_session(struct up *u, const char *id)
{
    char path[96], err[ERR_MAX];
    struct client_resp r;

    snprintf(path, sizeof path, "/uploads/%s", id);
    if (client_call(u->px->api, "DELETE", path, NULL, NULL, 0, &r, err) == PIX_OK)
        client_resp_free(&r);
}

/* ---- session answers ---- */

static const char *jstr(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

    return cJSON_IsString(v) ? v->valuestring : "";
}

static long long jnum(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

    return json_count(v);
}

/* Takes id, chunk layout from a session object into u->st. */
static int adopt_session(struct up *u, const cJSON *s, char *err)
{
    const char *id = jstr(s, "upload_session_id");
    long long cs = jnum(s, "chunk_size"), cc = jnum(s, "chunk_count");

    if (!util_is_uuid(id) || plan_check(u->file.size, cs, (int)cc) < 0)
        return err_set(err, "the API answered a malformed upload session"), PIX_EAPI;
    if (!u->st.done || u->st.chunk_count != (int)cc) {
        if (state_alloc(&u->st, (int)cc) < 0)
            return err_set(err, "out of memory"), PIX_EIO;
    }
    snprintf(u->st.session_id, sizeof u->st.session_id, "%s", id);
    u->st.chunk_size = cs;
    u->st.file = u->file;
    snprintf(u->session_id, sizeof u->session_id, "%s", id);
    u->chunk_size = cs, u->chunk_count = (int)cc;
    snprintf(u->st.api_url, sizeof u->st.api_url, "%s", client_base(u->px->api));
    return PIX_OK;
}

static void take_image(struct up *u, const cJSON *o)
{
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(o, "deduplicated");

    snprintf(u->image_id, sizeof u->image_id, "%s", jstr(o, "image_id"));
    u->dedup = cJSON_IsTrue(d);
    if (!u->file.sha256[0] && strlen(jstr(o, "sha256")) == 64) /* streamed, not hashed here */
        snprintf(u->file.sha256, sizeof u->file.sha256, "%s", jstr(o, "sha256"));
}

/* Marks the chunks the server lists in uploaded_chunks as done. */
static void take_uploaded(struct up *u, const cJSON *s)
{
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(s, "uploaded_chunks"), *it;

    memset(u->st.done, 0, (size_t)u->st.chunk_count);
    cJSON_ArrayForEach(it, a)
    {
        long long n = json_count(it);
        if (n >= 0 && n < u->st.chunk_count)
            u->st.done[n] = 1;
    }
}

/* ---- resume ---- */

enum { RESUME_NONE, RESUME_UPLOAD, RESUME_COMPLETE, RESUME_DONE };

/* How to carry on from a session's status (RESUME_*). */
static int resume_how(struct up *u, const cJSON *s)
{
    const char *status = jstr(s, "status");

    if (!strcmp(status, "uploading")) {
        take_uploaded(u, s);
        return RESUME_UPLOAD;
    }
    if (!strcmp(status, "completing") || !strcmp(status, "verifying"))
        return RESUME_COMPLETE;
    if (!strcmp(status, "completed")) {
        take_image(u, s);
        return RESUME_DONE;
    }
    return RESUME_NONE; /* expired, aborted, failed */
}

/* Looks at the saved session: how to carry on (RESUME_*) in *how, or an exit code. */
static int try_resume(struct up *u, int *how, char *err)
{
    struct upload_state old;
    struct client_resp r;
    char path[96], lerr[ERR_MAX], status[32] = "not found";
    int rc = state_load(u->state_file, &old, lerr);

    *how = RESUME_NONE;
    if (rc <= 0) {
        if (rc < 0)
            pix_note(u->px, "%s: ignoring unreadable resume state (%s)", u->arg, lerr);
        return PIX_OK;
    }
    if (!state_same_file(&old.file, &u->file) || strcmp(old.api_url, client_base(u->px->api))) {
        pix_note(u->px, "%s: changed since the interrupted upload; starting over", u->arg);
        abort_session(u, old.session_id);
        state_clear(&old);
        drop_state(u);
        return PIX_OK;
    }
    snprintf(path, sizeof path, "/uploads/%s", old.session_id);
    u->st = old;
    if ((rc = client_call(u->px->api, "GET", path, NULL, NULL, CLIENT_RETRY, &r, err)) != PIX_OK)
        return rc;
    if (r.status != 200 && r.status != 404 && r.status != 410) {
        rc = client_error(&r, err);
        client_resp_free(&r);
        return rc;
    }
    if (r.status == 200 && adopt_session(u, r.json, lerr) == PIX_OK) {
        snprintf(status, sizeof status, "%s", jstr(r.json, "status"));
        *how = resume_how(u, r.json);
    }
    client_resp_free(&r);
    if (*how == RESUME_NONE) {
        pix_note(u->px, "%s: the interrupted upload session is %s; starting over", u->arg, status);
        drop_state(u);
        return PIX_OK;
    }
    u->resumed = 1;
    return PIX_OK;
}

/* ---- start and dedup proof ---- */

static int parse_ranges(const cJSON *ch, long long **off, long long **len, int *n)
{
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(ch, "ranges"), *it;
    int k = 0, size = cJSON_IsArray(a) ? cJSON_GetArraySize(a) : -1;

    if (size < 0 || size > 1024)
        return -1;
    *off = calloc((size_t)size + 1, sizeof **off);
    *len = calloc((size_t)size + 1, sizeof **len);
    if (!*off || !*len)
        return -1;
    cJSON_ArrayForEach(it, a)
    {
        (*off)[k] = jnum(it, "offset"), (*len)[k] = jnum(it, "length");
        if ((*off)[k] < 0 || (*len)[k] < 0)
            return -1;
        k++;
    }
    *n = k;
    return 0;
}

/* Answers the dedup challenge. PIX_OK with u->image_id set when accepted, PIX_OK without
 * when refused (then the bytes are uploaded), else an exit code. */
static int prove(struct up *u, const cJSON *ch, char *err)
{
    long long *off = NULL, *len = NULL;
    const char *nonce = jstr(ch, "nonce");
    char hex[65], path[96];
    cJSON *body = NULL;
    struct client_resp r = {0};
    int n = 0, rc;

    if (!*nonce || parse_ranges(ch, &off, &len, &n) < 0) {
        rc = PIX_OK; /* a challenge we cannot read: just upload */
        goto done;
    }
    if ((rc = hash_proof(u->fd, nonce, off, len, n, hex, err)) != PIX_OK)
        goto done;
    body = cJSON_CreateObject();
    cJSON_AddStringToObject(body, "proof", hex);
    snprintf(path, sizeof path, "/uploads/%s/proof", u->st.session_id);
    if ((rc = client_call(u->px->api, "POST", path, body, NULL, 0, &r, err)) != PIX_OK)
        goto done;
    if (r.status == 200 && *jstr(r.json, "image_id")) {
        take_image(u, r.json);
        u->proof = 1;
    } else if (r.status == 403 || r.status == 409) {
        pix_note(u->px, "%s: no dedup (%s); uploading the content", u->arg, r.code);
    } else {
        rc = client_error(&r, err);
    }
done:
    client_resp_free(&r);
    cJSON_Delete(body);
    free(off);
    free(len);
    return rc;
}

static int start_session(struct up *u, char *err)
{
    cJSON *body = cJSON_CreateObject();
    struct client_resp r = {0};
    const cJSON *ch;
    char idem[37];
    int rc;

    cJSON_AddStringToObject(body, "file_name", u->name);
    cJSON_AddNumberToObject(body, "file_size", (double)u->file.size);
    cJSON_AddStringToObject(body, "mime_type", u->mime);
    if (!u->stream) /* streaming: the hash goes with complete */
        cJSON_AddStringToObject(body, "sha256", u->file.sha256);
    tstamp_add_mtime(body, u->file.mtime_sec, u->file.mtime_nsec);
    if (util_uuid(idem) < 0) {
        rc = PIX_EIO, err_set(err, "no randomness");
        goto done;
    }
    rc = client_call(u->px->api, "POST", "/uploads", body, idem, CLIENT_RETRY, &r, err);
    if (rc != PIX_OK)
        goto done;
    if (r.status != 201 && r.status != 200) {
        rc = client_error(&r, err);
        goto done;
    }
    if ((rc = adopt_session(u, r.json, err)) != PIX_OK)
        goto done;
    save_state(u, 1);
    ch = cJSON_GetObjectItemCaseSensitive(r.json, "dedup_challenge");
    if (cJSON_IsObject(ch))
        rc = prove(u, ch, err);
done:
    client_resp_free(&r);
    cJSON_Delete(body);
    return rc;
}

/* ---- chunks ---- */

static int get_urls(void *ud, struct xfer_chunk **chunks, int n, char *err)
{
    struct up *u = ud;
    cJSON *body = cJSON_CreateObject(), *nums = cJSON_AddArrayToObject(body, "chunk_numbers");
    cJSON *resp = NULL, *it;
    char path[96];
    double now = util_now_mono(), ttl, margin;
    int rc;

    for (int i = 0; i < n; i++)
        cJSON_AddItemToArray(nums, cJSON_CreateNumber(chunks[i]->n));
    snprintf(path, sizeof path, "/uploads/%s/chunks/urls", u->st.session_id);
    rc = client_json(u->px->api, "POST", path, body, CLIENT_RETRY, &resp, NULL, err);
    cJSON_Delete(body);
    if (rc != PIX_OK)
        return rc;
    ttl = (double)jnum(resp, "expires_in");
    margin = ttl / 4 < URL_MARGIN_MAX ? ttl / 4 : URL_MARGIN_MAX;
    cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(resp, "urls"))
    {
        long long num = jnum(it, "chunk_number");
        const char *url = jstr(it, "url");
        for (int i = 0; i < n && *url; i++) {
            if (chunks[i]->n != num)
                continue;
            free(chunks[i]->url);
            chunks[i]->url = strdup(url);
            chunks[i]->url_deadline = now + (ttl > 0 ? ttl - margin : 60);
        }
    }
    cJSON_Delete(resp);
    return PIX_OK;
}

static void chunk_done(void *ud, const struct xfer_chunk *c)
{
    struct up *u = ud;

    u->st.done[c->n] = 1;
    if (u->feed)
        feed_release(u->feed, c->n);
    save_state(u, 0);
}

static int chunk_ready(void *ud, struct xfer_chunk *c, char *err)
{
    struct up *u = ud;

    return feed_ready(u->feed, c, err);
}

static void xfer_progress(void *ud, long long bytes)
{
    struct up *u = ud;

    progress_update(&u->pg, u->base_bytes + bytes, util_now_mono());
}

/* Sends the chunks not marked done in u->st. */
static int send_missing(struct up *u, char *err)
{
    const struct pixctl_config *cfg = u->px->cfg;
    struct xfer_opts o = {.parallel = (int)cfg->parallel,
                          .max_attempts = (int)cfg->retries,
                          .verbose = cfg->verbose,
                          .buffer = (long)cfg->upload_buffer,
                          .backoff_base = 0.5,
                          .backoff_cap = 20};
    struct xfer_ops ops = {get_urls,
                           chunk_done,
                           xfer_progress,
                           u,
                           u->feed ? chunk_ready : NULL,
                           u->feed ? feed_wake_fd(u->feed) : -1};
    struct xfer_chunk *chunks = calloc((size_t)u->st.chunk_count, sizeof *chunks);
    int n = 0, rc, mode = cfg->quiet ? PROGRESS_NONE : u->px->tty ? PROGRESS_BAR : PROGRESS_PLAIN;

    if (!chunks)
        return err_set(err, "out of memory"), PIX_EIO;
    u->base_bytes = 0;
    for (int i = 0; i < u->st.chunk_count; i++) {
        long long len = plan_length(u->file.size, u->st.chunk_size, i);
        if (u->st.done[i]) {
            u->base_bytes += len;
            continue;
        }
        chunks[n].n = i, chunks[n].len = len;
        chunks[n].off = plan_offset(u->st.chunk_size, i);
        n++;
    }
    progress_start(&u->pg, mode, "upload", fsx_basename(u->arg), u->file.size, u->base_bytes,
                   util_now_mono());
    rc = n ? xfer_run(u->px->api, u->fd, chunks, n, &o, &ops, &u->xs, err) : PIX_OK;
    progress_end(&u->pg, util_now_mono());
    u->xfer_secs += util_now_mono() - u->pg.start;
    save_state(u, 1);
    free(chunks);
    return rc;
}

/* Hash while uploading: the feed reads and hashes the whole file once, in order, while the
 * missing chunks go out from its buffers ((--parallel + FEED_SPARE) x chunk size). */
static int send_streamed(struct up *u, char *err)
{
    long long fit = FEED_MEM_MAX / u->st.chunk_size;
    int nbuf = (int)u->px->cfg->parallel + FEED_SPARE, rc;
    double t;

    if (nbuf > fit)
        nbuf = fit < 2 ? 2 : (int)fit;
    if (!(u->feed = feed_start(u->fd, u->file.size, u->st.chunk_size, u->st.done, nbuf, err)))
        return PIX_EIO;
    rc = send_missing(u, err);
    t = util_now_mono();
    if (rc == PIX_OK && (rc = feed_finish(u->feed, u->file.sha256, err)) == PIX_OK)
        hash_known(u);
    u->hash_secs += util_now_mono() - t; /* the hashing the transfer did not hide */
    feed_free(u->feed);
    u->feed = NULL;
    return rc;
}

/* Sends what the server lacks. A streamed upload whose complete was already asked for
 * (resumed in 'completing'/'verifying') hashes the file to send its sha256 again. */
static int send_content(struct up *u, int how, char *err)
{
    int rc;

    if (how != RESUME_COMPLETE)
        return u->stream ? send_streamed(u, err) : send_missing(u, err);
    if (!u->stream)
        return PIX_OK;
    if ((rc = hash(u, err)) == PIX_OK)
        hash_known(u);
    return rc;
}

/* ---- complete ---- */

/* complete answered 409 chunks_missing: un-mark the chunks it lists. 1 if any. */
static int take_missing(struct up *u, const cJSON *o)
{
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(o, "error"), *it;
    int any = 0;

    cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(e, "missing_chunks"))
    {
        long long n = json_count(it);
        if (n >= 0 && n < u->st.chunk_count)
            u->st.done[n] = 0, any = 1;
    }
    return any;
}

static int verify_failed(struct up *u, const char *code, const char *msg, char *err)
{
    drop_state(u);
    err_set(err,
            "the server rejected the upload: %s: %s (was the file modified during the "
            "upload?)",
            code, msg);
    return PIX_EVERIFY;
}

/* Done with complete: verified, or committed and verifying while the caller does not --wait. */
static int settled(const struct up *u)
{
    return u->verified == UP_VERIFIED || (u->verified == UP_VERIFYING && !u->px->cfg->upload_wait);
}

/* A session answer ('completed', or 'verifying' with its image id) into u. */
static void take_status(struct up *u, const cJSON *s)
{
    const char *status = jstr(s, "status");

    if (!strcmp(status, "completed")) {
        take_image(u, s);
        u->verified = UP_VERIFIED;
    } else if (!strcmp(status, "verifying") && *jstr(s, "image_id")) {
        take_image(u, s);
        u->verified = UP_VERIFYING;
    }
}

/* Polls GET /uploads/{id} while the server completes or verifies the upload: PIX_OK once
 * settled(), or with *again set when complete must be asked again (the session is back to
 * 'uploading', or has sat in 'completing' or 'verifying' for REASK_AFTER: its completer may
 * have died, and a new complete takes the lease over once it runs out). */
static int poll_verify(struct up *u, double deadline, int *again, char *err)
{
    double wait = POLL_MIN, reask = util_now_mono() + REASK_AFTER;
    char path[96];
    int rc = PIX_OK;

    snprintf(path, sizeof path, "/uploads/%s", u->st.session_id);
    pix_note(u->px, "%s: the server is verifying the upload", u->arg);
    while (rc == PIX_OK && !settled(u) && !*again && util_now_mono() < deadline) {
        cJSON *s = NULL;
        if (backoff_sleep(wait) < 0)
            return err_set(err, "interrupted"), PIX_EINTR;
        wait = wait * 1.5 < POLL_MAX ? wait * 1.5 : POLL_MAX;
        rc = client_json(u->px->api, "GET", path, NULL, CLIENT_RETRY, &s, NULL, err);
        if (rc != PIX_OK)
            return rc;
        const char *status = jstr(s, "status");
        take_status(u, s);
        if (!settled(u) && !strcmp(status, "failed"))
            rc = verify_failed(u, jstr(cJSON_GetObjectItemCaseSensitive(s, "error"), "code"),
                               jstr(cJSON_GetObjectItemCaseSensitive(s, "error"), "message"), err);
        else if (!settled(u) && (!strcmp(status, "uploading") || util_now_mono() >= reask))
            *again = 1; /* still completing or verifying: ask again (a dead lease passes on) */
        cJSON_Delete(s);
    }
    if (rc == PIX_OK && !settled(u) && !*again) {
        err_set(err, "the server did not finish verifying in --verify-timeout; run again to "
                     "keep waiting");
        rc = PIX_EAPI;
    }
    return rc;
}

/* complete's body: {"sha256"} once the hash is known (a streamed upload declares it here;
 * the server fails the upload if the bytes differ), else none. */
static cJSON *complete_body(const struct up *u)
{
    cJSON *b;

    if (!u->file.sha256[0])
        return NULL;
    b = cJSON_CreateObject();
    cJSON_AddStringToObject(b, "sha256", u->file.sha256);
    return b;
}

/* complete answered 200 or 202: settled, or poll until it is. */
static int took_answer(struct up *u, const struct client_resp *r, double deadline, int *again,
                       char *err)
{
    take_status(u, r->json);
    if (r->status == 200 && u->verified != UP_VERIFIED)
        return err_set(err, "the API answered complete without its status"), PIX_EAPI;
    if (settled(u))
        return PIX_OK;
    return poll_verify(u, deadline, again, err);
}

/* POST complete once: PIX_OK once settled(), or *again set when chunks must be resent
 * (*resend) or complete asked again. 200: verified; 202 with an image id: committed and
 * verifying; 202 without (an older server): poll. */
static int complete_once(struct up *u, double deadline, int *again, int *resend, char *err)
{
    struct client_resp r;
    cJSON *body = complete_body(u);
    char path[96];
    int rc;

    *again = *resend = 0;
    snprintf(path, sizeof path, "/uploads/%s/complete", u->st.session_id);
    rc = client_call(u->px->api, "POST", path, body, NULL, CLIENT_RETRY | CLIENT_SLOW, &r, err);
    cJSON_Delete(body);
    if (rc != PIX_OK)
        return rc;
    if (r.status == 200 || r.status == 202)
        rc = took_answer(u, &r, deadline, again, err);
    else if (r.status == 409 && !strcmp(r.code, "chunks_missing") && take_missing(u, r.json))
        *again = *resend = 1;
    else if (r.status == 422)
        rc = verify_failed(u, r.code, r.message, err);
    else
        rc = client_error(&r, err);
    client_resp_free(&r);
    return rc;
}

static int complete(struct up *u, char *err)
{
    double deadline = util_now_mono() + u->px->cfg->verify_timeout;
    int rounds = 0;

    for (int asks = 0; asks < COMPLETE_ASKS; asks++) {
        int again, resend, rc;
        if (u->px->tty && !u->px->cfg->quiet)
            fprintf(stderr, "\rcompleting %s (the server checks its SHA-256)\033[K",
                    fsx_basename(u->arg));
        rc = complete_once(u, deadline, &again, &resend, err);
        if (u->px->tty && !u->px->cfg->quiet)
            fprintf(stderr, "\r\033[K");
        if (rc != PIX_OK || !again)
            return rc;
        if (!resend)
            continue;
        if (rounds++ == COMPLETE_ROUNDS)
            return err_set(err, "chunks keep going missing on the server"), PIX_EAPI;
        pix_note(u->px, "%s: the server is missing chunks; sending them again", u->arg);
        save_state(u, 1);
        if ((rc = send_missing(u, err)) != PIX_OK)
            return rc;
    }
    return err_set(err, "the server did not complete the upload; run again to resume"), PIX_EAPI;
}

/* ---- one file ---- */

/* Hash first or stream? A resumed upload keeps the way it began (its saved state has the
 * sha256 when it was hashed first); else --hash, auto by --hash-first-below. */
static int pick_stream(struct up *u)
{
    const struct pixctl_config *cfg = u->px->cfg;
    struct upload_state old;
    char lerr[ERR_MAX];
    int stream;

    if (cfg->resume && state_load(u->state_file, &old, lerr) > 0) {
        stream = !old.file.sha256[0];
        state_clear(&old);
        return stream;
    }
    if (!strcmp(cfg->hash_mode, "auto"))
        return u->file.size >= cfg->hash_first_below;
    return !strcmp(cfg->hash_mode, "stream");
}

/* Opens the file, finds its resume state, and hashes it unless it is to be streamed. */
static int prepare(struct up *u, char *err)
{
    char dir[PATH_MAX];
    double t;
    int rc;

    if ((rc = open_file(u, err)) != PIX_OK)
        return rc;
    if ((rc = upload_state_dir(u->px->cfg, dir, sizeof dir, err)) != PIX_OK)
        return rc;
    if (state_path(dir, u->file.path, u->state_file, sizeof u->state_file) < 0)
        return err_set(err, "state path too long"), PIX_EUSAGE;
    if ((u->stream = pick_stream(u)))
        return PIX_OK;
    t = util_now_mono();
    if ((rc = hash(u, err)) == PIX_OK)
        hash_known(u);
    u->hash_secs = util_now_mono() - t;
    return rc;
}

static int upload_file(struct up *u, char *err)
{
    int rc, how = RESUME_NONE;
    double t;

    if ((rc = prepare(u, err)) != PIX_OK)
        return rc;
    if (u->px->cfg->resume && (rc = try_resume(u, &how, err)) != PIX_OK)
        return rc;
    if (how == RESUME_NONE && (rc = start_session(u, err)) != PIX_OK)
        return rc;
    u->chunks_present = state_count_done(&u->st);
    if (how == RESUME_UPLOAD)
        pix_note(u->px, "%s: resuming: %d of %d chunks already on the server", u->arg,
                 u->chunks_present, u->st.chunk_count);
    if (u->image_id[0]) /* already completed, or proved: the server computed its hash */
        u->verified = UP_VERIFIED;
    if (!u->image_id[0] && (rc = send_content(u, how, err)) != PIX_OK)
        return rc;
    t = util_now_mono();
    if (!u->image_id[0] && (rc = complete(u, err)) != PIX_OK)
        return rc;
    u->complete_secs = util_now_mono() - t;
    drop_state(u);
    return PIX_OK;
}

/* ---- one file of a bulk import ---- */

/* Opens it->arg and checks it is still the file that was hashed. */
static int bulk_open(struct up *u, const struct upload_item *it, char *err)
{
    struct stat sb;

    if ((u->fd = open(u->arg, O_RDONLY | O_CLOEXEC)) < 0) {
        err_set(err, "%s", strerror(errno));
        return PIX_EIO;
    }
    if (fstat(u->fd, &sb) < 0) {
        err_set(err, "%s", strerror(errno));
        return PIX_EIO;
    }
    if (sb.st_size != it->file.size || sb.st_mtim.tv_sec != it->file.mtime_sec ||
        sb.st_mtim.tv_nsec != it->file.mtime_nsec || sb.st_ino != it->file.ino) {
        err_set(err, "the file changed while it was imported");
        return PIX_EIO;
    }
    u->file = it->file;
    snprintf(u->mime, sizeof u->mime, "%s", it->mime);
    snprintf(u->name, sizeof u->name, "%s", fsx_basename(it->file.path));
    return PIX_OK;
}

/* Takes the batch's session and decides how to carry on (RESUME_*): a new or replayed
 * session still uploading answers its challenge; a dead one is replaced. */
static int bulk_session(struct up *u, const cJSON *s, int *how, char *err)
{
    const cJSON *ch = cJSON_GetObjectItemCaseSensitive(s, "dedup_challenge");
    int rc;

    *how = RESUME_NONE;
    if (s && (rc = adopt_session(u, s, err)) != PIX_OK)
        return rc;
    if (s)
        *how = resume_how(u, s);
    if (*how == RESUME_NONE)
        return start_session(u, err); /* none, or dead (expired, aborted, failed) */
    if (*how == RESUME_UPLOAD && cJSON_IsObject(ch))
        return prove(u, ch, err);
    return PIX_OK;
}

int upload_session_file(struct pix *px, const struct upload_item *it, const cJSON *session,
                        struct upload_result *res, char *err)
{
    struct up u = {.px = px, .arg = it->arg, .fd = -1, .t0 = util_now_mono()};
    int how = RESUME_NONE, rc = bulk_open(&u, it, err);

    if (rc == PIX_OK)
        rc = bulk_session(&u, session, &how, err);
    if (rc == PIX_OK && !u.image_id[0])
        rc = send_content(&u, how, err);
    if (rc == PIX_OK && !u.image_id[0])
        rc = complete(&u, err);
    memset(res, 0, sizeof *res);
    snprintf(res->image_id, sizeof res->image_id, "%s", u.image_id);
    snprintf(res->session_id, sizeof res->session_id, "%s", u.session_id);
    res->dedup = u.dedup;
    res->proof = u.proof;
    res->bytes_sent = u.xs.bytes_sent;
    if (u.fd >= 0)
        close(u.fd);
    state_clear(&u.st);
    return rc;
}

/* "verified" (the server has checked the content) or "verifying" (committed, checked in
 * the background). */
static const char *state_name(const struct up *u)
{
    return u->verified == UP_VERIFIED ? "verified" : "verifying";
}

static void print_json(const struct up *u, int rc, const char *err)
{
    cJSON *o = cJSON_CreateObject();
    double secs = util_now_mono() - u->t0;
    char *s;

    cJSON_AddStringToObject(o, "file", u->arg);
    cJSON_AddStringToObject(o, "status", rc == PIX_OK ? "completed" : "failed");
    if (rc == PIX_OK) {
        cJSON_AddStringToObject(o, "state", state_name(u));
        cJSON_AddStringToObject(o, "image_id", u->image_id);
        cJSON_AddBoolToObject(o, "deduplicated", u->dedup);
        cJSON_AddBoolToObject(o, "proof", u->proof);
    } else {
        cJSON_AddNumberToObject(o, "exit_code", rc);
        cJSON_AddStringToObject(o, "error", err);
    }
    cJSON_AddStringToObject(o, "sha256", u->file.sha256);
    cJSON_AddNumberToObject(o, "size", (double)u->file.size);
    cJSON_AddStringToObject(o, "upload_session_id", u->session_id);
    cJSON_AddStringToObject(o, "hash", u->stream ? "stream" : "first");
    cJSON_AddBoolToObject(o, "resumed", u->resumed);
    cJSON_AddNumberToObject(o, "chunk_size", (double)u->chunk_size);
    cJSON_AddNumberToObject(o, "chunks_total", u->chunk_count);
    cJSON_AddNumberToObject(o, "chunks_present", u->chunks_present);
    cJSON_AddNumberToObject(o, "chunks_sent", u->xs.chunks_sent);
    cJSON_AddNumberToObject(o, "bytes_sent", (double)u->xs.bytes_sent);
    cJSON_AddNumberToObject(o, "retries", u->xs.retries);
    cJSON_AddNumberToObject(o, "url_requests", u->xs.url_requests);
    cJSON_AddNumberToObject(o, "hash_seconds", u->hash_secs);
    cJSON_AddNumberToObject(o, "upload_seconds", u->xfer_secs);
    cJSON_AddNumberToObject(o, "complete_seconds", u->complete_secs);
    cJSON_AddNumberToObject(o, "seconds", secs);
    if ((s = cJSON_PrintUnformatted(o)))
        printf("%s\n", s);
    fflush(stdout);
    free(s);
    cJSON_Delete(o);
}

static void print_plain(const struct up *u, int nfiles)
{
    char b[24], r[24];
    double secs = util_now_mono() - u->t0;

    progress_fmt_bytes((double)u->xs.bytes_sent, b, sizeof b);
    progress_fmt_bytes(u->xfer_secs > 0 ? (double)u->xs.bytes_sent / u->xfer_secs : 0, r, sizeof r);
    if (u->proof)
        pix_note(u->px, "%s: already stored; possession proved, no bytes sent", u->arg);
    else
        pix_note(u->px, "%s: %d chunk%s (%s) sent in %.1fs at %s/s; done in %.1fs%s%s", u->arg,
                 u->xs.chunks_sent, u->xs.chunks_sent == 1 ? "" : "s", b, u->xfer_secs, r, secs,
                 u->chunks_present ? " (resumed)" : "", u->dedup ? " (deduplicated)" : "");
    pix_note(u->px, "%s: %s %s", u->arg, state_name(u), u->image_id);
    if (nfiles == 1)
        printf("%s\n", u->image_id);
    else
        printf("%s  %s\n", u->image_id, u->arg);
    fflush(stdout);
}

int cmd_upload(struct pix *px, int argc, char **argv)
{
    int worst = PIX_OK;

    if (px->cfg->recursive || (px->cfg->from_list && *px->cfg->from_list))
        return cmd_upload_bulk(px, argc, argv);
    if (argc == 0) {
        pix_errorf("usage: pixctl upload FILE... (see pixctl upload --help)");
        return PIX_EUSAGE;
    }
    if (argc > 1 && px->cfg->name && *px->cfg->name)
        return pix_errorf("--name needs exactly one file"), PIX_EUSAGE;
    for (int i = 0; i < argc && !pix_interrupted; i++) {
        struct up u = {.px = px, .arg = argv[i], .fd = -1, .t0 = util_now_mono()};
        char err[ERR_MAX] = "";
        int rc = upload_file(&u, err);

        if (rc != PIX_OK)
            pix_errorf("upload %s: %s", u.arg, err);
        if (px->cfg->json)
            print_json(&u, rc, err);
        else if (rc == PIX_OK)
            print_plain(&u, argc);
        if (u.fd >= 0)
            close(u.fd);
        state_clear(&u.st);
        worst = pix_worst(worst, rc);
    }
    return pix_interrupted && worst == PIX_OK ? PIX_EINTR : worst;
}
