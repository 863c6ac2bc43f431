/* sync: `pixctl sync DIR [--watch]`: mirrors the user's images into DIR from the /sync delta
 * feed. Downloads land in DIR/.pixplane/tmp and are renamed into place only once verified;
 * the index and then the cursor are saved after the changes they cover, so a sync killed at
 * any point carries on where it was and never leaves a partial file under a final name. */
#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backoff.h"
#include "client.h"
#include "dl.h"
#include "fsx.h"
#include "hash.h"
#include "naming.h"
#include "progress.h"
#include "sidx.h"
#include "sse.h"
#include "sync.h"

#define META SYNC_META
#define TMP_REL SYNC_TMP_REL
#define CURSOR_MAX SYNC_CURSOR_MAX
#define PAGE_LIMIT 200
#define MAX_PAGES 1000000
#define STREAM_IDLE 90L /* seconds without a byte (heartbeats included): reconnect */
#define RECONNECT_BASE 1.0
#define RECONNECT_CAP 30.0
#define STREAM_GOOD 30.0 /* a stream that lasted this long resets the backoff */
#define SETTLE 0.5       /* --two-way --watch: quiet time after a local change before a pass */

/* ---- paths and notes ---- */

/* a/b into out (cut if too long: callers' paths are far below PATH_MAX). */
static void pjoin(char *out, size_t n, const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);

    if (la >= n)
        la = n - 1;
    memcpy(out, a, la);
    if (la + 1 < n)
        out[la++] = '/';
    if (lb > n - 1 - la)
        lb = n - 1 - la;
    memcpy(out + la, b, lb);
    out[la + lb] = '\0';
}

void sync_abs(const struct syncer *s, const char *local, char *out, size_t n)
{
    pjoin(out, n, s->dir, local);
}

int sync_in_tmp(const char *local)
{
    return !strncmp(local, TMP_REL, strlen(TMP_REL));
}

cJSON *sync_action_new(const char *what, const char *id, const char *path)
{
    cJSON *o = cJSON_CreateObject();

    cJSON_AddStringToObject(o, "action", what);
    cJSON_AddStringToObject(o, "image_id", id);
    cJSON_AddStringToObject(o, "path", path);
    return o;
}

void sync_print(cJSON *o)
{
    char *t = cJSON_PrintUnformatted(o);

    if (t)
        printf("%s\n", t);
    fflush(stdout);
    free(t);
    cJSON_Delete(o);
}

void sync_action(const struct syncer *s, const char *what, const char *id, const char *path,
                 const char *from)
{
    if (s->px->cfg->json) {
        cJSON *o = sync_action_new(what, id, path);
        if (from)
            cJSON_AddStringToObject(o, "from", from);
        sync_print(o);
    } else if (from) {
        pix_note(s->px, "%s %s -> %s", what, from, path);
    } else {
        pix_note(s->px, "%s %s", what, path);
    }
}

/* ---- index and cursor on disk ---- */

int sync_save_index(struct syncer *s, char *err)
{
    return sidx_save(s->index_path, &s->idx, err) < 0 ? PIX_EIO : PIX_OK;
}

int sync_save_cursor(struct syncer *s, const char *cursor, char *err)
{
    char line[CURSOR_MAX + 2];

    snprintf(line, sizeof line, "%s\n", cursor);
    if (fsx_write_atomic(s->cursor_path, line, strlen(line), 1, err) < 0)
        return PIX_EIO;
    snprintf(s->cursor, sizeof s->cursor, "%s", cursor);
    return PIX_OK;
}

static int load_cursor(struct syncer *s, char *err)
{
    size_t len;
    char *t = fsx_read_file(s->cursor_path, CURSOR_MAX, &len, err);

    if (!t) {
        snprintf(s->cursor, sizeof s->cursor, "0");
        return errno == ENOENT ? PIX_OK : PIX_EIO;
    }
    t[strcspn(t, "\r\n")] = '\0';
    snprintf(s->cursor, sizeof s->cursor, "%s", *t ? t : "0");
    free(t);
    return PIX_OK;
}

/* Removes what a killed run left in tmp/: partial downloads and files the index does not
 * point at. */
static void clean_tmp(struct syncer *s)
{
    DIR *d = opendir(s->tmpdir);
    struct dirent *de;
    char local[PATH_MAX], path[PATH_MAX * 2];

    while (d && (de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        snprintf(local, sizeof local, TMP_REL "%s", de->d_name);
        if (!strncmp(de->d_name, "part-", 5) || !sidx_find_local(&s->idx, local)) {
            pjoin(path, sizeof path, s->tmpdir, de->d_name);
            unlink(path);
        }
    }
    if (d)
        closedir(d);
}

static int sync_open(struct syncer *s, const char *dir, char *err)
{
    char meta[PATH_MAX + 16], lock[PATH_MAX + 32];

    snprintf(s->dir, sizeof s->dir, "%s", dir);
    snprintf(meta, sizeof meta, "%s/" META, dir);
    snprintf(s->tmpdir, sizeof s->tmpdir, "%s/" TMP_REL, dir);
    s->tmpdir[strlen(s->tmpdir) - 1] = '\0';
    pjoin(s->index_path, sizeof s->index_path, meta, "index");
    pjoin(s->cursor_path, sizeof s->cursor_path, meta, "cursor");
    pjoin(lock, sizeof lock, meta, "lock");
    if (fsx_mkdir_p(s->tmpdir, 0755, err) < 0)
        return PIX_EIO;
    if ((s->lockfd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0644)) < 0)
        return err_set(err, "%s: %s", lock, strerror(errno)), PIX_EIO;
    if (flock(s->lockfd, LOCK_EX | LOCK_NB) < 0)
        return err_set(err, "another pixctl sync is using %s", dir), PIX_EIO;
    if (sidx_load(s->index_path, &s->idx, err) < 0 || load_cursor(s, err) != PIX_OK)
        return PIX_EIO;
    clean_tmp(s);
    return PIX_OK;
}

/* ---- content: adopt an identical file or download ---- */

static int has_content(struct syncer *s, const struct sidx_entry *e)
{
    char path[PATH_MAX * 2];
    struct stat st;

    if (!e->local[0] || e->need)
        return 0;
    sync_abs(s, e->local, path, sizeof path);
    return lstat(path, &st) == 0 && S_ISREG(st.st_mode) && st.st_size == e->size;
}

/* 1 if DIR/fname is a regular file no entry holds whose content is e's. */
static int same_content(struct syncer *s, const struct sidx_entry *e, const char *fname)
{
    char path[PATH_MAX * 2], hex[65], err[ERR_MAX];
    struct stat st;
    long long n;
    int fd, ok;

    sync_abs(s, fname, path, sizeof path);
    if (sidx_find_local(&s->idx, fname) || lstat(path, &st) < 0 || !S_ISREG(st.st_mode) ||
        st.st_size != e->size || (fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
        return 0;
    ok = hash_file(fd, hex, &n, NULL, NULL, err) == PIX_OK && !strcmp(hex, e->sha256);
    close(fd);
    return ok;
}

/* A killed run may have placed e's file without recording it: take it if it is there. */
static int adopt(struct syncer *s, struct sidx_entry *e)
{
    char plain[NAMING_MAX + 1], cand[NAMING_MAX + 1], tag[9];

    naming_sanitize(e->name, plain, sizeof plain);
    snprintf(tag, sizeof tag, "%.8s", e->id);
    for (int i = 0; i < 3; i++) {
        if (i == 0)
            snprintf(cand, sizeof cand, "%s", plain);
        if (i == 1)
            naming_suffixed(plain, tag, cand, sizeof cand);
        if (i == 2)
            naming_suffixed(plain, e->id, cand, sizeof cand);
        if (same_content(s, e, cand)) {
            snprintf(e->local, sizeof e->local, "%s", cand);
            return 1;
        }
    }
    return 0;
}

/* Downloads e into tmp/<id>, verified; the stale file it replaces is removed. */
static int fetch(struct syncer *s, struct sidx_entry *e, char *err)
{
    struct pix *px = s->px;
    struct dl_src src = {dl_image_url, e->id, e->name, px->tty && !px->cfg->quiet ? 2 : 0};
    char tmp[PATH_MAX], prefix[96], staged[PATH_MAX], old[PATH_MAX * 2];
    struct dl_result res;
    int rc;

    snprintf(prefix, sizeof prefix, "part-%.64s", e->id);
    rc = dl_to_tmp(px, &src, s->tmpdir, prefix, e->sha256, e->size, tmp, &res, err);
    if (rc != PIX_OK)
        return rc;
    pjoin(staged, sizeof staged, s->tmpdir, e->id);
    if (rename(tmp, staged) < 0) {
        err_set(err, "rename %s: %s", tmp, strerror(errno));
        unlink(tmp);
        return PIX_EIO;
    }
    if (e->local[0] && !sync_in_tmp(e->local)) {
        sync_abs(s, e->local, old, sizeof old);
        unlink(old);
    }
    snprintf(e->local, sizeof e->local, TMP_REL "%s", e->id);
    e->fetched = e->need ? 2 : 1;
    e->need = 0;
    s->downloads++;
    return PIX_OK;
}

static void note_failure(struct syncer *s, const struct sidx_entry *e, int rc, const char *err)
{
    pix_errorf("sync: %s (%s): %s", e->name, e->id, err);
    if (s->dl_rc == PIX_OK) {
        s->dl_rc = rc;
        snprintf(s->dl_err, sizeof s->dl_err, "%s", err);
    }
}

/* Makes every entry have its content somewhere (in place, adopted, or staged). */
static int ensure_content(struct syncer *s, char *err)
{
    for (int i = 0; i < s->idx.n && !pix_interrupted; i++) {
        struct sidx_entry *e = &s->idx.e[i];
        int rc;
        if (e->hold || has_content(s, e) || (!e->need && adopt(s, e)))
            continue;
        rc = fetch(s, e, err);
        if (rc == PIX_EINTR || rc == PIX_EIO)
            return rc;
        if (rc != PIX_OK)
            note_failure(s, e, rc, err); /* try the others; retried next pass */
    }
    return pix_interrupted ? (err_set(err, "interrupted"), PIX_EINTR) : PIX_OK;
}

/* ---- names ---- */

static int taken(void *ud, const char *fname)
{
    struct syncer *s = ud;
    char path[PATH_MAX * 2];
    struct stat st;

    sync_abs(s, fname, path, sizeof path);
    return lstat(path, &st) == 0 && !sidx_find_local(&s->idx, fname);
}

/* Moves files whose name must change out of the way (into tmp/), so swaps cannot clash. */
static int park(struct syncer *s, struct sidx_entry *e, const char *want, char *err)
{
    char from[PATH_MAX * 2], to[PATH_MAX];

    if (e->hold || !e->local[0] || sync_in_tmp(e->local) || !strcmp(e->local, want))
        return 0;
    sync_abs(s, e->local, from, sizeof from);
    pjoin(to, sizeof to, s->tmpdir, e->id);
    if (rename(from, to) < 0)
        return err_set(err, "rename %s: %s", from, strerror(errno)), -1;
    snprintf(e->local, sizeof e->local, TMP_REL "%s", e->id);
    return 1;
}

static int move_noreplace(const char *from, const char *to)
{
    struct stat st;

    if (renameat2(AT_FDCWD, from, AT_FDCWD, to, RENAME_NOREPLACE) == 0)
        return 0;
    if (errno != EINVAL && errno != ENOSYS)
        return -1;
    if (lstat(to, &st) == 0)
        return errno = EEXIST, -1; /* no RENAME_NOREPLACE here */
    return rename(from, to);
}

/* Moves e's staged file to DIR/want, never over a file that appeared meanwhile. */
static int place(struct syncer *s, struct sidx_entry *e, const char *want, const char *was,
                 char *err)
{
    char from[PATH_MAX * 2], to[PATH_MAX * 2], alt[NAMING_MAX + 1];
    const char *name = want;
    int r;

    sync_abs(s, e->local, from, sizeof from);
    sync_abs(s, want, to, sizeof to);
    if ((r = move_noreplace(from, to)) < 0 && errno == EEXIST) {
        naming_suffixed(want, e->id, alt, sizeof alt);
        name = alt;
        sync_abs(s, name, to, sizeof to);
        r = move_noreplace(from, to);
    }
    if (r < 0)
        return err_set(err, "cannot place %s: %s", to, strerror(errno)), PIX_EIO;
    snprintf(e->local, sizeof e->local, "%s", name);
    if (e->fetched)
        sidx_note_stat(e, to);
    if (e->fetched == 1)
        s->added++, sync_action(s, "added", e->id, name, NULL);
    if (e->fetched == 2)
        s->updated++, sync_action(s, "updated", e->id, name, NULL);
    if (!e->fetched && was[0] && strcmp(was, name))
        s->renamed++, sync_action(s, "renamed", e->id, name, was);
    e->fetched = 0;
    return PIX_OK;
}

/* The names every entry with content should have (naming_assign). */
static struct naming_entry *desired_names(struct syncer *s)
{
    struct naming_entry *ne = calloc((size_t)(s->idx.n ? s->idx.n : 1), sizeof *ne);

    if (!ne)
        return NULL;
    for (int i = 0; i < s->idx.n; i++) {
        ne[i].id = s->idx.e[i].id;
        ne[i].name = s->idx.e[i].name;
    }
    if (naming_assign(ne, s->idx.n, taken, s) < 0) {
        free(ne);
        return NULL;
    }
    return ne;
}

/* Renames files to their assigned names: out of the way into tmp/ first (index saved),
 * then into place, so two files swapping names never overwrite each other. */
static int arrange(struct syncer *s, char *err)
{
    struct naming_entry *ne = desired_names(s);
    char(*was)[NAMING_MAX + 64] = calloc((size_t)(s->idx.n ? s->idx.n : 1), sizeof *was);
    int rc = PIX_OK, parked = 0;

    if (!ne || !was) {
        free(ne), free(was);
        return err_set(err, "out of memory"), PIX_EIO;
    }
    for (int i = 0; i < s->idx.n && rc == PIX_OK; i++) {
        struct sidx_entry *e = &s->idx.e[i];
        if (!sync_in_tmp(e->local))
            snprintf(was[i], sizeof was[i], "%s", e->local);
        int r = park(s, e, ne[i].out, err);
        if (r < 0)
            rc = PIX_EIO;
        parked += r > 0;
    }
    if (rc == PIX_OK && parked)
        rc = sync_save_index(s, err);
    for (int i = 0; i < s->idx.n && rc == PIX_OK; i++)
        if (sync_in_tmp(s->idx.e[i].local))
            rc = place(s, &s->idx.e[i], ne[i].out, was[i], err);
    free(ne);
    free(was);
    return rc;
}

int sync_reconcile(struct syncer *s, char *err)
{
    int rc = ensure_content(s, err);

    if (rc == PIX_OK)
        rc = arrange(s, err);
    if (rc == PIX_OK || rc == PIX_EINTR) {
        char e2[ERR_MAX];
        if (sync_save_index(s, e2) != PIX_OK && rc == PIX_OK)
            rc = PIX_EIO, snprintf(err, ERR_MAX, "%s", e2);
    }
    return rc;
}

/* ---- applying the delta feed ---- */

static const char *entry_id(const cJSON *it)
{
    if (cJSON_IsString(it))
        return it->valuestring;
    return *dl_jstr(it, "id") ? dl_jstr(it, "id") : dl_jstr(it, "image_id");
}

void sync_remove_entry(struct syncer *s, struct sidx_entry *e)
{
    char path[PATH_MAX * 2];

    if (e->local[0]) {
        sync_abs(s, e->local, path, sizeof path);
        if (unlink(path) == 0 && !sync_in_tmp(e->local))
            s->removed++, sync_action(s, "removed", e->id, e->local, NULL);
    }
    sidx_remove(&s->idx, e);
}

/* Records an added or updated image in the index (content is fetched by reconcile). */
static int upsert(struct syncer *s, const cJSON *it, char *err)
{
    const char *id = entry_id(it), *sha = dl_jstr(it, "sha256"), *name = dl_jstr(it, "name");
    const char *status = dl_jstr(it, "status");
    struct sidx_entry *e;

    /* the owner's images still verifying (or failed) have no content to mirror yet */
    if (*status && strcmp(status, "active")) {
        if ((e = sidx_find(&s->idx, id)))
            sync_remove_entry(s, e);
        return PIX_OK;
    }

    /* the index is line-based text: what goes in must be what the API promises (a UUID
     * and 64 hex digits); fuzz_pixctl found an id with a newline breaking the index */
    if (!util_is_uuid(id) || strlen(sha) != 64 || strspn(sha, "0123456789abcdef") != 64 ||
        dl_jnum(it, "size") < 0)
        return err_set(err, "the sync feed has an entry without a valid id, sha256 or size"),
               PIX_EAPI;
    if (!(e = sidx_find(&s->idx, id)) && !(e = sidx_add(&s->idx, id)))
        return err_set(err, "out of memory (or a malformed id)"), PIX_EIO;
    if (strcmp(e->sha256, sha))
        e->need = e->sha256[0] != '\0';
    snprintf(e->sha256, sizeof e->sha256, "%s", sha);
    snprintf(e->name, sizeof e->name, "%s", *name ? name : id);
    e->size = dl_jnum(it, "size");
    e->seen = 1;
    return PIX_OK;
}

static int apply(struct syncer *s, const cJSON *page, char *err)
{
    const char *lists[] = {"added", "updated"};
    const cJSON *it;
    int rc = PIX_OK;

    cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(page, "deleted"))
    {
        struct sidx_entry *e = sidx_find(&s->idx, entry_id(it));
        if (e)
            sync_remove_entry(s, e);
    }
    for (size_t k = 0; k < ARRAY_LEN(lists) && rc == PIX_OK; k++)
        cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(page, lists[k])) if (rc == PIX_OK)
            rc = upsert(s, it, err);
    return rc == PIX_OK ? sync_reconcile(s, err) : rc;
}

/* After a full listing: whatever it did not mention is gone from the server. */
static int drop_unseen(struct syncer *s, char *err)
{
    for (int i = s->idx.n - 1; i >= 0; i--)
        if (!s->idx.e[i].seen)
            sync_remove_entry(s, &s->idx.e[i]);
    return sync_reconcile(s, err);
}

void sync_page_cursor(const cJSON *page, char *out, size_t n)
{
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(page, "cursor");

    if (cJSON_IsString(c))
        snprintf(out, n, "%s", c->valuestring);
    else if (cJSON_IsNumber(c))
        snprintf(out, n, "%.0f", c->valuedouble);
    else
        snprintf(out, n, "%s", "");
}

int sync_fetch(struct syncer *s, char *since, size_t n, int *full, cJSON **page, char *err)
{
    int rc = sync_get_page(s, since, page, err);

    if (rc != 1)
        return rc;
    if (!*full) {
        pix_note(s->px, "sync: the cursor is too old; resyncing everything");
        *full = 1;
        snprintf(since, n, "0");
        rc = sync_get_page(s, since, page, err);
    }
    return rc == 1 ? (err_set(err, "the server refuses a full resync (410)"), PIX_EAPI) : rc;
}

int sync_page_end(cJSON *page, char *since, size_t n, int *more, int rc, char *err)
{
    sync_page_cursor(page, since, n);
    *more = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(page, "has_more"));
    cJSON_Delete(page);
    if (rc == PIX_OK && !since[0])
        rc = PIX_EAPI, err_set(err, "the sync feed gave no cursor");
    return rc;
}

/* GET /sync?since=... : PIX_OK with the page, or 1 when the cursor is too old (410). */
int sync_get_page(struct syncer *s, const char *since, cJSON **page, char *err)
{
    char *esc = client_escape(s->px->api, since), path[CURSOR_MAX * 3 + 64];
    struct client_resp r;
    int rc;

    if (!esc)
        return err_set(err, "out of memory"), PIX_EIO;
    snprintf(path, sizeof path, "/sync?since=%s&limit=%d", esc, PAGE_LIMIT);
    curl_free(esc);
    if ((rc = client_call(s->px->api, "GET", path, NULL, NULL, CLIENT_RETRY, &r, err)) != PIX_OK)
        return rc;
    if (r.status == 410) {
        client_resp_free(&r);
        return 1;
    }
    if (r.status != 200 || !r.json) {
        rc = client_error(&r, err);
        client_resp_free(&r);
        return rc;
    }
    *page = r.json;
    return PIX_OK;
}

/* Every image in the index has its file: the changes so far are applied. */
static int all_present(const struct syncer *s)
{
    for (int i = 0; i < s->idx.n; i++)
        if (!s->idx.e[i].local[0] || s->idx.e[i].need || sync_in_tmp(s->idx.e[i].local))
            return 0;
    return 1;
}

/* Pulls every change since the saved cursor (all of them from 0 for a full resync). The
 * cursor is saved only once the changes it covers are on disk. */
static int pull(struct syncer *s, char *err)
{
    char since[CURSOR_MAX];
    int full = !strcmp(s->cursor, "0"), rc = PIX_OK;

    snprintf(since, sizeof since, "%s", s->cursor);
    for (int i = 0; i < s->idx.n; i++)
        s->idx.e[i].seen = 0;
    s->dl_rc = PIX_OK;
    for (int pages = 0; pages < MAX_PAGES && rc == PIX_OK; pages++) {
        cJSON *page = NULL;
        int more;
        if ((rc = sync_fetch(s, since, sizeof since, &full, &page, err)) != PIX_OK)
            break;
        rc = apply(s, page, err);
        rc = sync_page_end(page, since, sizeof since, &more, rc, err);
        if (rc == PIX_OK && !full && all_present(s))
            rc = sync_save_cursor(s, since, err);
        if (!more)
            break;
    }
    if (rc == PIX_OK && full)
        rc = drop_unseen(s, err);
    if (rc != PIX_OK)
        return rc;
    if (!all_present(s))
        return snprintf(err, ERR_MAX, "%.200s (the cursor stays; run again)",
                        s->dl_rc != PIX_OK ? s->dl_err : "some files are missing"),
               s->dl_rc != PIX_OK ? s->dl_rc : PIX_EIO;
    return strcmp(s->cursor, since) ? sync_save_cursor(s, since, err) : PIX_OK;
}

/* ---- --watch: the event stream ---- */

struct stream {
    struct syncer *s;
    struct sse sse;
    CURL *k;
    long status;
    int checked, events;
    char errbody[512];
    size_t errlen;
};

static void on_event(void *ud, const char *type, const char *data, const char *id)
{
    struct stream *st = ud;

    st->events++;
}

static size_t stream_write(char *p, size_t size, size_t n, void *ud)
{
    struct stream *st = ud;
    size_t len = size * n;

    if (!st->checked) {
        st->checked = 1;
        curl_easy_getinfo(st->k, CURLINFO_RESPONSE_CODE, &st->status);
    }
    if (st->status != 200) {
        size_t room = sizeof st->errbody - 1 - st->errlen;
        memcpy(st->errbody + st->errlen, p, len < room ? len : room);
        st->errlen += len < room ? len : room;
        st->errbody[st->errlen] = '\0';
        return len;
    }
    return sse_feed(&st->sse, p, len) == 0 ? len : 0;
}

static struct curl_slist *stream_headers(struct stream *st)
{
    struct syncer *s = st->s;
    const char *last = strcmp(s->cursor, "0") ? s->cursor : st->sse.last_id;
    struct curl_slist *h = curl_slist_append(NULL, client_auth_header(s->px->api));
    char line[SSE_ID_MAX + CURSOR_MAX + 32];

    if (h)
        h = curl_slist_append(h, "Accept: text/event-stream");
    if (h)
        h = curl_slist_append(h, "Cache-Control: no-cache");
    if (h && *last) {
        snprintf(line, sizeof line, "Last-Event-ID: %s", last);
        h = curl_slist_append(h, line);
    }
    return h;
}

/* Pulls after events (and every --poll-interval) until the stream ends. PIX_OK when it
 * ended and is worth reconnecting, an exit code otherwise. */
static int stream_loop(struct stream *st, CURLM *m, char *err)
{
    double last_pull = util_now_mono(), local_at = 0;
    struct curl_waitfd wait = {.fd = st->s->wfd, .events = CURL_WAIT_POLLIN};
    int running = 1, q, rc = PIX_OK;
    CURLMsg *msg;

    while (running && !pix_interrupted) {
        curl_multi_perform(m, &running);
        while ((msg = curl_multi_info_read(m, &q)))
            if (msg->msg == CURLMSG_DONE && msg->data.result != CURLE_OK)
                err_set(err, "%s", curl_easy_strerror(msg->data.result));
        if (st->checked && st->status != 200) {
            err_set(err, "event stream: HTTP %ld", st->status);
            if (st->status >= 400 && st->status < 500 && st->status != 408 && st->status != 429)
                return PIX_EAPI;
            return PIX_OK;
        }
        if (st->s->wfd >= 0 && bisync_drain_events(st->s))
            local_at = util_now_mono();
        if (st->events || util_now_mono() - last_pull >= st->s->px->cfg->poll_interval ||
            (local_at > 0 && util_now_mono() - local_at >= SETTLE)) {
            char perr[ERR_MAX];
            st->events = 0;
            local_at = 0;
            last_pull = util_now_mono();
            if ((rc = st->s->pass(st->s, perr)) == PIX_EINTR)
                return rc;
            if (rc != PIX_OK)
                pix_errorf("sync: %s", perr);
        }
        if (running)
            curl_multi_poll(m, &wait, st->s->wfd >= 0, local_at > 0 ? 100 : 1000, NULL);
    }
    return pix_interrupted ? PIX_EINTR : PIX_OK;
}

static int stream_once(struct syncer *s, char *err)
{
    struct stream st = {.s = s};
    struct curl_slist *h;
    char url[PATH_MAX];
    CURLM *m = curl_multi_init();
    int rc = PIX_EIO;

    sse_init(&st.sse, on_event, &st);
    st.k = curl_easy_init();
    h = stream_headers(&st);
    if (!m || !st.k || !h) {
        err_set(err, "out of memory");
        goto done;
    }
    snprintf(url, sizeof url, "%s/sync/stream", client_base(s->px->api));
    client_transfer_opts(s->px->api, st.k);
    curl_easy_setopt(st.k, CURLOPT_URL, url);
    curl_easy_setopt(st.k, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(st.k, CURLOPT_WRITEFUNCTION, stream_write);
    curl_easy_setopt(st.k, CURLOPT_WRITEDATA, &st);
    curl_easy_setopt(st.k, CURLOPT_LOW_SPEED_LIMIT, 1L); /* heartbeats are a few bytes */
    curl_easy_setopt(st.k, CURLOPT_LOW_SPEED_TIME, STREAM_IDLE);
    curl_multi_add_handle(m, st.k);
    err_set(err, "the server closed the event stream");
    rc = stream_loop(&st, m, err);
    curl_multi_remove_handle(m, st.k);
done:
    if (st.k)
        curl_easy_cleanup(st.k);
    if (m)
        curl_multi_cleanup(m);
    curl_slist_free_all(h);
    sse_free(&st.sse);
    return rc;
}

static int watch(struct syncer *s, char *err)
{
    int attempt = 0;

    pix_note(s->px, "sync: watching for changes (Ctrl-C to stop)");
    while (!pix_interrupted) {
        double t0 = util_now_mono(), wait;
        int rc = stream_once(s, err);
        if (rc == PIX_EINTR || pix_interrupted)
            break;
        if (rc != PIX_OK)
            return rc;
        if (util_now_mono() - t0 > STREAM_GOOD)
            attempt = 0;
        wait = backoff_delay(attempt++, RECONNECT_BASE, RECONNECT_CAP, backoff_random());
        pix_note(s->px, "sync: %s; reconnecting in %.1fs", err, wait);
        if (backoff_sleep(wait) < 0)
            break;
        if ((rc = s->pass(s, err)) == PIX_EINTR)
            break;
        if (rc != PIX_OK)
            pix_errorf("sync: %s", err);
    }
    return PIX_OK; /* stopping a watch with a signal is the normal way to end it */
}

static void summary(const struct syncer *s)
{
    if (s->px->cfg->json) {
        printf("{\"action\":\"synced\",\"cursor\":\"%s\",\"files\":%d,\"added\":%d,"
               "\"updated\":%d,\"removed\":%d,\"renamed\":%d}\n",
               s->cursor, s->idx.n, s->added, s->updated, s->removed, s->renamed);
        fflush(stdout);
    } else {
        pix_note(s->px, "sync %s: %d file%s; %d added, %d updated, %d removed, %d renamed", s->dir,
                 s->idx.n, s->idx.n == 1 ? "" : "s", s->added, s->updated, s->removed, s->renamed);
    }
}

int cmd_sync(struct pix *px, int argc, char **argv)
{
    struct syncer s = {.px = px, .lockfd = -1, .pass = pull, .wfd = -1};
    char err[ERR_MAX] = "";
    int rc = sync_open(&s, argv[0], err);

    if (rc == PIX_OK && px->cfg->two_way)
        rc = bisync_open(&s, err);
    if (rc == PIX_OK) {
        rc = s.pass(&s, err);
        if (rc != PIX_OK && rc != PIX_EINTR && px->cfg->watch) {
            pix_errorf("sync %s: %s", argv[0], err); /* keep watching: the next pass retries */
            rc = PIX_OK;
        }
        if (rc == PIX_OK && px->cfg->watch)
            rc = watch(&s, err);
    }
    if (rc == PIX_OK || (rc == PIX_EINTR && px->cfg->watch)) {
        if (px->cfg->two_way)
            bisync_summary(&s);
        else
            summary(&s);
        rc = PIX_OK;
    } else {
        pix_errorf("sync %s: %s", argv[0], err);
    }
    bisync_close(&s);
    if (s.lockfd >= 0)
        close(s.lockfd);
    sidx_free(&s.idx);
    (void)argc;
    return rc;
}
