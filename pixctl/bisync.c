/* bisync: `pixctl sync DIR --two-way`: a three-way merge of the folder, the server and the
 * index (what both held at the last sync): each side's changes reach the other, changes on
 * both become documented conflicts, and nothing is lost. The server's changes are recorded
 * in the index before the cursor moves, so a pass killed anywhere is merged again next run;
 * uploads carry idempotency keys, so a rerun finds the images a killed pass made. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "backoff.h"
#include "client.h"
#include "dl.h"
#include "fsx.h"
#include "hash.h"
#include "mime.h"
#include "naming.h"
#include "sync.h"
#include "tstamp.h"
#include "upload.h"

#define MAX_PAGES 1000000
#define SAVE_EVERY 1.0 /* seconds between index saves while a pass makes changes */
#define BATCH_TRIES 8  /* a session refused for the caps (429) is asked for again */
#define DEL_MAX 50     /* the deletion guard: at most this many, */
#define DEL_PERCENT 10 /* or this share of the files if fewer, */
#define DEL_MIN 5      /* but at least this many */
#define CONFLICT_TRIES 100

enum lstate { L_SAME, L_NONE, L_EDIT, L_RENAME, L_GONE, L_BUSY };
enum { S_EDIT = 1, S_RENAME = 2, S_GONE = 4, S_NEW = 8 };
enum { UP_CHANGED = -1 }; /* upload(): the file changed since the scan */

/* A file found directly in DIR. */
struct lfile {
    char name[NAMING_MAX + 1];
    long long size, mtime_ns;
    unsigned long long ino;
    char sha[65]; /* "" until read */
    int busy;     /* changed while it was read: left for the next pass */
    int claimed;  /* an index entry holds it */
};

/* What one index entry's pass has to merge. */
struct step {
    char id[64];
    int l;    /* enum lstate */
    int srv;  /* S_* bits */
    int f;    /* the local file (lfile index), -1 none */
    int pair; /* deleted on the server with a new image of its name (an edit made
               * elsewhere): that image's step + 1, else 0 */
    int paired;
};

struct two {
    char me[256];       /* our user id: the token's sub */
    char folder_id[37]; /* this folder's identity in idempotency keys */
    char host[64];
    struct lfile *f;
    int nf;
    struct step *st;
    int nst;
    int busy_new; /* a file no entry holds is changing: deletions wait */
    int uploaded, replaced, rrenamed, rdeleted, restored, conflicts, skipped;
    double saved_at;
};

/* ---- output ---- */

/* One action: a JSON object on stdout with --json, else a note. k/v: one optional extra
 * member (k NULL: none). */
static void say(const struct syncer *s, const char *what, const char *id, const char *path,
                const char *k, const char *v)
{
    if (s->px->cfg->json) {
        cJSON *o = sync_action_new(what, id, path);
        if (k)
            cJSON_AddStringToObject(o, k, v);
        sync_print(o);
    } else if (k) {
        pix_note(s->px, "%s %s (%s %s)", what, path, k, v);
    } else {
        pix_note(s->px, "%s %s", what, path);
    }
}

static void conflict(const struct syncer *s, const char *kind, const char *id, const char *path,
                     const char *copy)
{
    struct two *t = s->two;

    t->conflicts++;
    if (s->px->cfg->json) {
        cJSON *o = sync_action_new("conflict", id, path);
        cJSON_AddStringToObject(o, "kind", kind);
        if (copy)
            cJSON_AddStringToObject(o, "copy", copy);
        sync_print(o);
    } else if (copy) {
        pix_note(s->px, "conflict (%s) %s: your version is %s", kind, path, copy);
    } else {
        pix_note(s->px, "conflict (%s) %s", kind, path);
    }
}

void bisync_summary(const struct syncer *s)
{
    const struct two *t = s->two;

    if (!t)
        return;
    if (s->px->cfg->json) {
        printf("{\"action\":\"synced\",\"cursor\":\"%s\",\"files\":%d,\"added\":%d,\"updated\":%d,"
               "\"removed\":%d,\"renamed\":%d,\"uploaded\":%d,\"replaced\":%d,"
               "\"remote_renamed\":%d,\"remote_deleted\":%d,\"remote_restored\":%d,"
               "\"conflicts\":%d,\"skipped\":%d}\n",
               s->cursor, s->idx.n, s->added, s->updated, s->removed, s->renamed, t->uploaded,
               t->replaced, t->rrenamed, t->rdeleted, t->restored, t->conflicts, t->skipped);
        fflush(stdout);
        return;
    }
    pix_note(s->px,
             "sync %s: %d files; from the server %d added, %d updated, %d removed, %d renamed; "
             "to the server %d uploaded, %d replaced, %d renamed, %d deleted, %d restored; "
             "%d conflicts, %d skipped",
             s->dir, s->idx.n, s->added, s->updated, s->removed, s->renamed, t->uploaded,
             t->replaced, t->rrenamed, t->rdeleted, t->restored, t->conflicts, t->skipped);
}

/* ---- set-up ---- */

/* The token's sub (a JWT's payload), or "" if it is not a JWT. */
static void token_sub(const char *tok, char *out, size_t n)
{
    const char *a = strchr(tok, '.'), *b = a ? strchr(a + 1, '.') : NULL;
    unsigned char *raw = NULL;
    size_t len;
    cJSON *o;

    out[0] = '\0';
    if (!b || util_b64url_decode(a + 1, (size_t)(b - a - 1), &raw, &len) < 0)
        return;
    if ((o = cJSON_ParseWithLength((const char *)raw, len)))
        snprintf(out, n, "%s", dl_jstr(o, "sub"));
    cJSON_Delete(o);
    free(raw);
}

/* DIR/.pixplane/folder-id: made once, names this folder in idempotency keys. */
static int folder_id(struct syncer *s, struct two *t, char *err)
{
    char path[PATH_MAX + 32], line[40];
    size_t len;
    char *text;

    snprintf(path, sizeof path, "%s/" SYNC_META "/folder-id", s->dir);
    if ((text = fsx_read_file(path, 64, &len, err))) {
        snprintf(t->folder_id, sizeof t->folder_id, "%.36s", text);
        free(text);
        if (util_is_uuid(t->folder_id))
            return PIX_OK;
    }
    if (util_uuid(t->folder_id) < 0)
        return err_set(err, "no randomness"), PIX_EIO;
    snprintf(line, sizeof line, "%s\n", t->folder_id);
    return fsx_write_atomic(path, line, strlen(line), 1, err) < 0 ? PIX_EIO : PIX_OK;
}

int bisync_open(struct syncer *s, char *err)
{
    struct two *t = calloc(1, sizeof *t);
    int rc;

    if (!t)
        return err_set(err, "out of memory"), PIX_EIO;
    s->two = t;
    s->pass = bisync_pass;
    token_sub(s->px->cfg->token, t->me, sizeof t->me);
    if (gethostname(t->host, sizeof t->host) < 0 || !t->host[0])
        snprintf(t->host, sizeof t->host, "unknown");
    t->host[sizeof t->host - 1] = '\0';
    t->host[strcspn(t->host, ".()/\\")] = '\0';
    if ((rc = folder_id(s, t, err)) != PIX_OK)
        return rc;
    if (!s->px->cfg->watch)
        return PIX_OK;
    s->wfd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (s->wfd < 0 || inotify_add_watch(s->wfd, s->dir,
                                        IN_CLOSE_WRITE | IN_MOVED_FROM | IN_MOVED_TO | IN_DELETE |
                                            IN_CREATE | IN_ATTRIB) < 0)
        return err_set(err, "inotify %s: %s", s->dir, strerror(errno)), PIX_EIO;
    return PIX_OK;
}

void bisync_close(struct syncer *s)
{
    struct two *t = s->two;

    if (s->wfd >= 0)
        close(s->wfd);
    s->wfd = -1;
    if (!t)
        return;
    free(t->f);
    free(t->st);
    free(t);
    s->two = NULL;
}

/* ---- which local files take part ---- */

static int ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);

    return a >= b && !strcmp(s + a - b, suffix);
}

/* Hidden, temporary and swap files, and --exclude globs. */
static int ignored(const struct syncer *s, const char *name)
{
    static const char *const tails[] = {"~", ".swp", ".swx", ".tmp", ".part", ".crdownload"};
    const char *ex = s->px->cfg->exclude;
    char glob[NAMING_MAX + 1];

    if (name[0] == '.' || !strncmp(name, "~$", 2) || (name[0] == '#' && ends_with(name, "#")))
        return 1;
    for (size_t i = 0; i < ARRAY_LEN(tails); i++)
        if (ends_with(name, tails[i]))
            return 1;
    while (ex && *ex) {
        size_t len = strcspn(ex, "\n");
        snprintf(glob, sizeof glob, "%.*s", (int)len, ex);
        if (*glob && fnmatch(glob, name, 0) == 0)
            return 1;
        ex += len + (ex[len] == '\n');
    }
    return 0;
}

static long long stat_ns(const struct stat *st)
{
    return (long long)st->st_mtim.tv_sec * 1000000000LL + st->st_mtim.tv_nsec;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(((const struct lfile *)a)->name, ((const struct lfile *)b)->name);
}

static int add_file(struct two *t, int *cap, const char *name, const struct stat *st)
{
    struct lfile *f;

    if (t->nf == *cap) {
        int n = *cap ? *cap * 2 : 256;
        void *p = realloc(t->f, sizeof *t->f * (size_t)n);
        if (!p)
            return -1;
        t->f = p, *cap = n;
    }
    f = &t->f[t->nf++];
    memset(f, 0, sizeof *f);
    snprintf(f->name, sizeof f->name, "%s", name);
    f->size = st->st_size;
    f->mtime_ns = stat_ns(st);
    f->ino = (unsigned long long)st->st_ino;
    return 0;
}

/* The regular files directly in DIR that sync, sorted by name. A name the server would not
 * give back unchanged (control characters) is left alone. */
static int scan(struct syncer *s, struct two *t, char *err)
{
    DIR *d = opendir(s->dir);
    struct dirent *de;
    char path[PATH_MAX * 2], safe[NAMING_MAX + 1];
    struct stat st;
    int cap = 0;

    t->nf = 0;
    if (!d)
        return err_set(err, "%s: %s", s->dir, strerror(errno)), PIX_EIO;
    while ((de = readdir(d))) {
        if (ignored(s, de->d_name))
            continue;
        naming_sanitize(de->d_name, safe, sizeof safe);
        sync_abs(s, de->d_name, path, sizeof path);
        if (strcmp(safe, de->d_name) || lstat(path, &st) < 0 || !S_ISREG(st.st_mode))
            continue;
        if (add_file(t, &cap, de->d_name, &st) < 0) {
            closedir(d);
            return err_set(err, "out of memory"), PIX_EIO;
        }
    }
    closedir(d);
    if (t->nf)
        qsort(t->f, (size_t)t->nf, sizeof *t->f, by_name);
    return PIX_OK;
}

static struct lfile *find_file(struct two *t, const char *name)
{
    struct lfile key;

    if (strlen(name) >= sizeof key.name)
        return NULL;
    snprintf(key.name, sizeof key.name, "%s", name);
    return t->nf ? bsearch(&key, t->f, (size_t)t->nf, sizeof *t->f, by_name) : NULL;
}

/* Reads f for its sha256; f->busy if it changed meanwhile (or vanished). */
static int read_file(struct syncer *s, struct lfile *f, char *err)
{
    char path[PATH_MAX * 2];
    struct stat a, b;
    long long n = 0;
    int fd, rc;

    sync_abs(s, f->name, path, sizeof path);
    if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0)
        return f->busy = 1, PIX_OK;
    rc = fstat(fd, &a) < 0 ? PIX_EIO : hash_file(fd, f->sha, &n, NULL, NULL, err);
    if (rc == PIX_OK && fstat(fd, &b) < 0)
        rc = PIX_EIO;
    close(fd);
    if (rc == PIX_EINTR)
        return rc;
    if (rc != PIX_OK || a.st_size != f->size || stat_ns(&a) != f->mtime_ns || a.st_ino != f->ino ||
        b.st_size != a.st_size || stat_ns(&b) != stat_ns(&a) || n != a.st_size)
        f->busy = 1, f->sha[0] = '\0';
    return PIX_OK;
}

/* ---- the server's side: the feed recorded in the index ---- */

static const char *item_id(const cJSON *it)
{
    return *dl_jstr(it, "image_id") ? dl_jstr(it, "image_id") : dl_jstr(it, "id");
}

static int valid_item(const char *id, const char *sha, long long size)
{
    return util_is_uuid(id) && strlen(sha) == 64 && strspn(sha, "0123456789abcdef") == 64 &&
           size >= 0;
}

/* An added or updated image: its state goes into srv_* (merged later). Images still
 * verifying wait; one that failed verification is ours: its file is simply new again. */
static int record_image(struct syncer *s, const cJSON *it, char *err)
{
    struct two *t = s->two;
    const char *id = item_id(it), *sha = dl_jstr(it, "sha256"), *name = dl_jstr(it, "name");
    const char *status = dl_jstr(it, "status"), *owner = dl_jstr(it, "owner_id");
    struct sidx_entry *e = sidx_find(&s->idx, id);

    if (!strcmp(status, "verifying"))
        return PIX_OK;
    if (!strcmp(status, "failed") || !strcmp(status, "deleted")) {
        if (e && !strcmp(status, "failed"))
            sidx_remove(&s->idx, e);
        else if (e)
            e->srv = SIDX_SRV_GONE;
        return PIX_OK;
    }
    if (!valid_item(id, sha, dl_jnum(it, "size")))
        return err_set(err, "the sync feed has an entry without a valid id, sha256 or size"),
               PIX_EAPI;
    if (!e && !(e = sidx_add(&s->idx, id)))
        return err_set(err, "out of memory"), PIX_EIO;
    e->srv = SIDX_SRV_PRESENT;
    snprintf(e->srv_sha256, sizeof e->srv_sha256, "%s", sha);
    snprintf(e->srv_name, sizeof e->srv_name, "%s", *name ? name : id);
    e->srv_size = dl_jnum(it, "size");
    e->foreign = t->me[0] && *owner && strcmp(owner, t->me);
    e->seen = 1;
    return PIX_OK;
}

static int record_page(struct syncer *s, const cJSON *page, char *err)
{
    const char *lists[] = {"added", "updated"};
    const cJSON *it;
    int rc = PIX_OK;

    cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(page, "deleted"))
    {
        struct sidx_entry *e =
            sidx_find(&s->idx, cJSON_IsString(it) ? it->valuestring : item_id(it));
        if (e && !e->sha256[0])
            sidx_remove(&s->idx, e); /* never merged: nothing to keep */
        else if (e)
            e->srv = SIDX_SRV_GONE;
    }
    for (size_t k = 0; k < ARRAY_LEN(lists); k++)
        cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(page, lists[k])) if (rc == PIX_OK)
            rc = record_image(s, it, err);
    return rc;
}

/* After a full listing: what it did not mention is gone from the server. */
static void record_unseen(struct syncer *s)
{
    for (int i = s->idx.n - 1; i >= 0; i--) {
        struct sidx_entry *e = &s->idx.e[i];
        if (e->seen)
            continue;
        if (e->sha256[0])
            e->srv = SIDX_SRV_GONE;
        else
            sidx_remove(&s->idx, e);
    }
}

/* Records every server change since the cursor in the index, saving index then cursor
 * after each page: the changes wait there until they are merged. */
static int record(struct syncer *s, char *err)
{
    char since[SYNC_CURSOR_MAX];
    int full = !strcmp(s->cursor, "0"), rc = PIX_OK;

    snprintf(since, sizeof since, "%s", s->cursor);
    for (int i = 0; i < s->idx.n; i++)
        s->idx.e[i].seen = 0;
    for (int pages = 0; pages < MAX_PAGES && rc == PIX_OK; pages++) {
        cJSON *page = NULL;
        int more;
        if ((rc = sync_fetch(s, since, sizeof since, &full, &page, err)) != PIX_OK)
            break;
        rc = record_page(s, page, err);
        rc = sync_page_end(page, since, sizeof since, &more, rc, err);
        if (rc != PIX_OK || (!more && full))
            break;
        if (full) /* "not listed" needs the whole listing: the cursor moves at its end */
            continue;
        if ((rc = sync_save_index(s, err)) == PIX_OK && strcmp(since, s->cursor))
            rc = sync_save_cursor(s, since, err);
        if (!more)
            return rc;
    }
    if (rc != PIX_OK)
        return rc;
    record_unseen(s); /* a full listing, complete: only now is "not listed" known */
    if ((rc = sync_save_index(s, err)) == PIX_OK)
        rc = sync_save_cursor(s, since, err);
    return rc;
}

/* ---- the local side: what changed since the index ---- */

static int srv_bits(const struct sidx_entry *e)
{
    if (e->srv == SIDX_SRV_GONE)
        return S_GONE;
    if (e->srv != SIDX_SRV_PRESENT)
        return 0;
    if (!e->sha256[0])
        return S_NEW;
    return (strcmp(e->srv_sha256, e->sha256) ? S_EDIT : 0) |
           (strcmp(e->srv_name, e->name) ? S_RENAME : 0);
}

static int same_stat(const struct sidx_entry *e, const struct lfile *f)
{
    return e->mtime_ns && e->mtime_ns == f->mtime_ns && e->ino == f->ino && e->size == f->size;
}

static void keep_stat(struct sidx_entry *e, const struct lfile *f)
{
    e->mtime_ns = f->mtime_ns;
    e->ino = f->ino;
}

/* Entry e against its file f (claimed): same, edited or busy. */
static int compare(struct syncer *s, struct sidx_entry *e, struct lfile *f, int *l, char *err)
{
    int rc;

    f->claimed = 1;
    if (same_stat(e, f) && !f->sha[0])
        return *l = L_SAME, PIX_OK;
    if (!f->sha[0] && !f->busy && (rc = read_file(s, f, err)) != PIX_OK)
        return rc;
    if (f->busy)
        *l = L_BUSY;
    else if (!strcmp(f->sha, e->sha256) && f->size == e->size)
        *l = L_SAME, keep_stat(e, f);
    else
        *l = L_EDIT;
    return PIX_OK;
}

static int access_ok(const struct syncer *s, const char *local)
{
    char path[PATH_MAX * 2];
    struct stat st;

    sync_abs(s, local, path, sizeof path);
    return lstat(path, &st) == 0;
}

static int add_step(struct two *t, const struct sidx_entry *e, int l, int f)
{
    struct step *p = &t->st[t->nst++];

    snprintf(p->id, sizeof p->id, "%s", e->id);
    p->l = l;
    p->srv = srv_bits(e);
    p->f = f;
    return 0;
}

/* Each entry against the file under its name. */
static int classify(struct syncer *s, struct two *t, char *err)
{
    int rc;

    free(t->st);
    t->nst = 0;
    if (!(t->st = calloc((size_t)(s->idx.n ? s->idx.n : 1), sizeof *t->st)))
        return err_set(err, "out of memory"), PIX_EIO;
    for (int i = 0; i < s->idx.n && !pix_interrupted; i++) {
        struct sidx_entry *e = &s->idx.e[i];
        struct lfile *f = NULL;
        int l = L_NONE;
        if (e->local[0] && !sync_in_tmp(e->local) && ignored(s, e->local)) {
            l = access_ok(s, e->local) ? L_SAME : L_NONE; /* a name we do not watch */
        } else if (e->local[0] && !sync_in_tmp(e->local)) {
            l = L_GONE;
            if ((f = find_file(t, e->local)) && (rc = compare(s, e, f, &l, err)) != PIX_OK)
                return rc;
        }
        add_step(t, e, l, f ? (int)(f - t->f) : -1);
    }
    return pix_interrupted ? (err_set(err, "interrupted"), PIX_EINTR) : PIX_OK;
}

/* A missing file moved under another name: the same inode (by_inode), else the same
 * content. A moved file whose content changed too is an edit under the new name. */
static int find_moves(struct syncer *s, struct two *t, int by_inode, char *err)
{
    int rc;

    for (int i = 0; i < t->nst; i++) {
        struct step *p = &t->st[i];
        struct sidx_entry *e = p->l == L_GONE ? sidx_find(&s->idx, p->id) : NULL;
        for (int k = 0; e && p->l == L_GONE && k < t->nf; k++) {
            struct lfile *f = &t->f[k];
            if (f->claimed || f->busy || (by_inode && f->ino != e->ino) ||
                (!by_inode && (!f->sha[0] || strcmp(f->sha, e->sha256))))
                continue;
            if ((rc = compare(s, e, f, &p->l, err)) != PIX_OK)
                return rc;
            p->l = p->l == L_SAME ? L_RENAME : p->l;
            p->f = k;
        }
    }
    return PIX_OK;
}

/* Reads the files no entry holds (images only); one still changing holds deletions back. */
static int read_new(struct syncer *s, struct two *t, char *err)
{
    char path[PATH_MAX * 2];
    int rc;

    for (int k = 0; k < t->nf && !pix_interrupted; k++) {
        struct lfile *f = &t->f[k];
        if (f->claimed || f->sha[0] || f->busy)
            continue;
        sync_abs(s, f->name, path, sizeof path);
        if (!mime_importable(mime_of_file(path))) {
            f->claimed = 2; /* not an image: not ours to sync */
            continue;
        }
        if ((rc = read_file(s, f, err)) != PIX_OK)
            return rc;
    }
    for (int k = 0; k < t->nf; k++)
        t->busy_new |= !t->f[k].claimed && t->f[k].busy;
    return pix_interrupted ? (err_set(err, "interrupted"), PIX_EINTR) : PIX_OK;
}

/* An edit made elsewhere reaches us as a deletion plus a new image of the same name:
 * paired, the two merge as one edit (a local edit against it is an edit/edit conflict). */
static void pair_replacements(struct syncer *s, struct two *t)
{
    for (int i = 0; i < t->nst; i++) {
        const struct sidx_entry *e = &s->idx.e[i]; /* steps follow the index until merging */
        for (int j = 0; (t->st[i].srv & S_GONE) && !t->st[i].pair && j < t->nst; j++)
            if (t->st[j].srv == S_NEW && !t->st[j].paired && !strcmp(s->idx.e[j].srv_name, e->name))
                t->st[i].pair = j + 1, t->st[j].paired = 1;
    }
}

/* A new server image whose file is already here (same name, same content), as after a
 * killed pass or when two folders start from the same files: taken, not uploaded again. */
static void adopt_new(struct syncer *s, struct two *t)
{
    char want[NAMING_MAX + 1];

    for (int i = 0; i < t->nst; i++) {
        struct step *p = &t->st[i];
        struct sidx_entry *e;
        struct lfile *f;
        if (p->srv != S_NEW || p->l != L_NONE || !(e = sidx_find(&s->idx, p->id)))
            continue;
        naming_sanitize(e->srv_name, want, sizeof want);
        if (!(f = find_file(t, want)) || f->claimed || !f->sha[0] || strcmp(f->sha, e->srv_sha256))
            continue;
        f->claimed = 1;
        snprintf(e->local, sizeof e->local, "%s", f->name);
        snprintf(e->sha256, sizeof e->sha256, "%s", e->srv_sha256);
        keep_stat(e, f);
        e->size = f->size;
        p->l = L_SAME;
        p->f = (int)(f - t->f);
    }
}

/* ---- the deletion guard ---- */

static int guard(struct syncer *s, struct two *t, char *err)
{
    const struct pixctl_config *cfg = s->px->cfg;
    int dels = 0, placed = 0;
    long limit = cfg->max_delete;

    if (cfg->force)
        return PIX_OK;
    for (int i = 0; i < t->nst; i++) {
        struct sidx_entry *e = &s->idx.e[i]; /* steps follow the index until merging */
        placed += e->local[0] && !sync_in_tmp(e->local);
        dels += t->st[i].l == L_GONE && !t->st[i].srv && !e->foreign && !t->busy_new;
    }
    if (placed && !t->nf)
        return err_set(err,
                       "%s has no files but %d were synced (unmounted?); nothing was "
                       "changed (--force deletes them on the server)",
                       s->dir, placed),
               PIX_EUSAGE;
    if (limit < 0) {
        limit = s->idx.n * DEL_PERCENT / 100;
        limit = limit < DEL_MIN ? DEL_MIN : limit > DEL_MAX ? DEL_MAX : limit;
    }
    if (dels > limit)
        return err_set(err,
                       "this pass would delete %d images on the server (limit %ld); "
                       "nothing was changed: rerun with --max-delete %d or --force",
                       dels, limit, dels),
               PIX_EUSAGE;
    return PIX_OK;
}

/* ---- calls to the server ---- */

/* method /images/{id}[suffix] with body: PIX_OK (2xx), 1 when the image is not there (404),
 * else an exit code with err. */
static int image_call(struct syncer *s, const char *method, const char *id, const char *suffix,
                      const cJSON *body, char *err)
{
    char path[160];
    struct client_resp r = {0};
    int rc;

    snprintf(path, sizeof path, "/images/%s%s", id, suffix);
    rc = client_call(s->px->api, method, path, body, NULL, CLIENT_RETRY, &r, err);
    if (rc == PIX_OK && r.status == 404)
        rc = 1;
    else if (rc == PIX_OK && (r.status < 200 || r.status > 299))
        rc = client_error(&r, err);
    client_resp_free(&r);
    return rc;
}

static int rename_image(struct syncer *s, const char *id, const char *name, char *err)
{
    cJSON *body = cJSON_CreateObject();
    int rc;

    cJSON_AddStringToObject(body, "name", name);
    rc = image_call(s, "PATCH", id, "", body, err);
    cJSON_Delete(body);
    return rc;
}

/* The key of f's upload session: this folder, the file (name, size, mtime, inode) and its
 * content. A rerun after a kill asks for the same session and gets its image back. */
static void idem_key(const struct two *t, const struct lfile *f, char out[80])
{
    char text[NAMING_MAX + 256], hex[65];

    snprintf(text, sizeof text, "pixctl-sync\n%s\n%s\n%lld\n%lld\n%llu\n%s", t->folder_id, f->name,
             f->size, f->mtime_ns, f->ino, f->sha);
    hash_string(text, hex);
    snprintf(out, 80, "pixctl-sync-%s", hex);
}

/* POST /uploads/batch with f alone: its session (a replay after a kill), waiting while the
 * caps refuse it (429). */
static int open_session(struct syncer *s, const struct lfile *f, const char *name, const char *mime,
                        cJSON **session, char *err)
{
    cJSON *body = cJSON_CreateObject(), *items = cJSON_AddArrayToObject(body, "items");
    cJSON *o = cJSON_CreateObject();
    char key[80];
    int rc = PIX_EAPI;

    idem_key(s->two, f, key);
    cJSON_AddStringToObject(o, "file_name", name);
    cJSON_AddNumberToObject(o, "file_size", (double)f->size);
    cJSON_AddStringToObject(o, "mime_type", mime);
    cJSON_AddStringToObject(o, "sha256", f->sha);
    cJSON_AddStringToObject(o, "idempotency_key", key);
    tstamp_add_mtime(o, f->mtime_ns / 1000000000LL, f->mtime_ns % 1000000000LL);
    cJSON_AddItemToArray(items, o);
    for (int tries = 0; tries < BATCH_TRIES && !pix_interrupted; tries++) {
        cJSON *out = NULL, *item;
        long long code;
        rc = client_json(s->px->api, "POST", "/uploads/batch", body, CLIENT_RETRY, &out, NULL, err);
        item = rc == PIX_OK ? cJSON_GetArrayItem(cJSON_GetObjectItem(out, "items"), 0) : NULL;
        code = dl_jnum(item, "status_code");
        if (code == 201 && (*session = cJSON_DetachItemFromObjectCaseSensitive(item, "session")))
            rc = PIX_OK;
        else if (rc == PIX_OK)
            rc = PIX_EAPI, err_set(err, "HTTP %lld %s: %s", code,
                                   dl_jstr(cJSON_GetObjectItem(item, "error"), "code"),
                                   dl_jstr(cJSON_GetObjectItem(item, "error"), "message"));
        cJSON_Delete(out);
        if (code != 429 || backoff_sleep(backoff_delay(tries, 0.5, 10, backoff_random())) < 0)
            break;
    }
    cJSON_Delete(body);
    return rc;
}

/* 1 if f is no longer what the scan saw. */
static int changed(const struct syncer *s, const struct lfile *f)
{
    char path[PATH_MAX * 2];
    struct stat st;

    sync_abs(s, f->name, path, sizeof path);
    return lstat(path, &st) < 0 || st.st_size != f->size || stat_ns(&st) != f->mtime_ns ||
           st.st_ino != f->ino;
}

/* Uploads f as a new image called name: PIX_OK with its id in id, UP_CHANGED if the file
 * changed since the scan (the next pass takes it), else an exit code with err. */
static int upload(struct syncer *s, const struct lfile *f, const char *name, char id[64], char *err)
{
    struct upload_item it = {.arg = NULL};
    struct upload_result res;
    cJSON *session = NULL;
    const char *mime;
    int rc;

    sync_abs(s, f->name, it.file.path, sizeof it.file.path);
    if (!(mime = mime_of_file(it.file.path)))
        return err_set(err, "%s: not an image", f->name), PIX_EIO;
    it.arg = it.file.path;
    it.mime = mime;
    it.file.size = f->size;
    it.file.mtime_sec = f->mtime_ns / 1000000000LL;
    it.file.mtime_nsec = f->mtime_ns % 1000000000LL;
    it.file.ino = f->ino;
    snprintf(it.file.sha256, sizeof it.file.sha256, "%s", f->sha);
    if ((rc = open_session(s, f, name, mime, &session, err)) == PIX_OK)
        rc = upload_session_file(s->px, &it, session, &res, err);
    cJSON_Delete(session);
    if (rc == PIX_EIO && changed(s, f))
        return UP_CHANGED;
    if (rc == PIX_OK && !util_is_uuid(res.image_id))
        rc = PIX_EAPI, err_set(err, "the upload of %s made no image", f->name);
    if (rc == PIX_OK)
        snprintf(id, 64, "%s", res.image_id);
    return rc;
}

/* The entry of an image this pass uploaded from f (the feed may have listed it already). */
static int take_upload(struct syncer *s, const struct lfile *f, const char *id, const char *name)
{
    struct sidx_entry *e = sidx_find(&s->idx, id);

    if (!e && !(e = sidx_add(&s->idx, id)))
        return -1;
    snprintf(e->sha256, sizeof e->sha256, "%s", f->sha);
    snprintf(e->name, sizeof e->name, "%s", name);
    snprintf(e->local, sizeof e->local, "%s", f->name);
    e->size = f->size;
    keep_stat(e, f);
    e->srv = SIDX_SRV_NONE;
    e->foreign = 0;
    return 0;
}

/* Saves the index at most every SAVE_EVERY seconds (idempotency covers what is lost). */
static int checkpoint(struct syncer *s, char *err)
{
    struct two *t = s->two;

    if (util_now_mono() - t->saved_at < SAVE_EVERY)
        return PIX_OK;
    t->saved_at = util_now_mono();
    return sync_save_index(s, err);
}

/* A file changing while this pass looked: left as it is, for the next pass. */
static int skip(struct syncer *s, struct sidx_entry *e, const struct lfile *f)
{
    struct two *t = s->two;

    if (e)
        e->hold = 1;
    t->skipped++;
    say(s, "skipped", e ? e->id : "", f ? f->name : e->local, "reason", "changing");
    return PIX_OK;
}

/* ---- merging one entry ---- */

/* "STEM (conflict HOST DATE[ N]).EXT", free in the folder and the index. */
static void conflict_name(struct syncer *s, const char *name, char *out, size_t n)
{
    struct two *t = s->two;
    char tag[128], day[16], path[PATH_MAX * 2];
    time_t now = time(NULL);
    struct tm tm;
    struct stat st;

    localtime_r(&now, &tm);
    strftime(day, sizeof day, "%Y-%m-%d", &tm);
    for (int k = 1; k <= CONFLICT_TRIES; k++) {
        if (k == 1)
            snprintf(tag, sizeof tag, "conflict %s %s", t->host, day);
        else
            snprintf(tag, sizeof tag, "conflict %s %s %d", t->host, day, k);
        naming_suffixed(name, tag, out, n);
        sync_abs(s, out, path, sizeof path);
        if (lstat(path, &st) < 0 && !sidx_find_local(&s->idx, out))
            return;
    }
}

/* The server's state becomes the entry's (downloaded or renamed by sync_reconcile). */
static void take_server(struct syncer *s, struct sidx_entry *e)
{
    if (e->srv == SIDX_SRV_GONE) {
        sync_remove_entry(s, e);
        return;
    }
    if (e->srv != SIDX_SRV_PRESENT)
        return;
    if (strcmp(e->sha256, e->srv_sha256))
        e->need = e->sha256[0] != '\0';
    snprintf(e->sha256, sizeof e->sha256, "%s", e->srv_sha256);
    snprintf(e->name, sizeof e->name, "%s", e->srv_name);
    e->size = e->srv_size;
    e->srv = SIDX_SRV_NONE;
}

/* The file is gone here: deleted on the server too, unless the server changed it (then it
 * comes back). */
static int local_gone(struct syncer *s, struct step *p, char *err)
{
    struct two *t = s->two;
    struct sidx_entry *e = sidx_find(&s->idx, p->id);
    char was[NAMING_MAX + 64];
    int rc;

    snprintf(was, sizeof was, "%s", e->local);
    if (p->srv & S_GONE) {
        if (p->pair)
            conflict(s, "delete/edit", e->id, was, NULL);
        sidx_remove(&s->idx, e);
        return PIX_OK;
    }
    if (p->srv) {
        conflict(s, p->srv & S_EDIT ? "delete/edit" : "delete/rename", e->id, was, NULL);
        e->local[0] = '\0';
        take_server(s, e);
        return PIX_OK;
    }
    if ((rc = image_call(s, "DELETE", p->id, "", NULL, err)) < 0 || rc > 1)
        return rc;
    if (rc != 1) {
        t->rdeleted++;
        say(s, "remote-deleted", p->id, was, NULL, NULL);
    }
    sidx_remove(&s->idx, e);
    return checkpoint(s, err);
}

/* Renamed here, replaced on the server (an edit made elsewhere): the new image takes our
 * name and its content replaces the file's. */
static int renamed_replaced(struct syncer *s, struct step *p, struct lfile *f, char *err)
{
    struct two *t = s->two;
    struct sidx_entry *e = sidx_find(&s->idx, p->id);
    struct sidx_entry *r = sidx_find(&s->idx, t->st[p->pair - 1].id);
    char rid[64];
    int rc;

    if (!r)
        return PIX_OK;
    snprintf(rid, sizeof rid, "%s", r->id);
    if ((rc = rename_image(s, rid, f->name, err)) != PIX_OK)
        return rc == 1 ? (err_set(err, "%s: the image is gone; run again", f->name), PIX_EAPI) : rc;
    t->rrenamed++;
    say(s, "remote-renamed", rid, f->name, "from", r->srv_name[0] ? r->srv_name : r->name);
    e->local[0] = '\0'; /* the old image is in the trash already */
    take_server(s, e);
    r = sidx_find(&s->idx, rid);
    take_server(s, r);
    snprintf(r->name, sizeof r->name, "%s", f->name);
    snprintf(r->local, sizeof r->local, "%s", f->name);
    r->need = 1;
    return checkpoint(s, err);
}

/* Renamed here, deleted on the server: the rename wins, the image comes back. PIX_OK, 1
 * when it is purged (the file is then simply new), else an exit code. */
static int restore(struct syncer *s, struct step *p, struct lfile *f, char *err)
{
    struct two *t = s->two;
    struct sidx_entry *e = sidx_find(&s->idx, p->id);
    int rc = image_call(s, "POST", p->id, "/restore", NULL, err);

    if (rc == 1) {
        sidx_remove(&s->idx, e);
        f->claimed = 0;
        return 1;
    }
    if (rc != PIX_OK)
        return rc;
    conflict(s, "rename/delete", p->id, f->name, NULL);
    t->restored++;
    say(s, "remote-restored", p->id, f->name, NULL, NULL);
    e->srv = SIDX_SRV_NONE;
    return PIX_OK;
}

/* Renamed here (f is the file under its new name). */
static int local_renamed(struct syncer *s, struct step *p, struct lfile *f, char *err)
{
    struct two *t = s->two;
    struct sidx_entry *e = sidx_find(&s->idx, p->id);
    char was[NAMING_MAX + 64], want[NAMING_MAX + 1];
    int rc = PIX_OK;

    snprintf(was, sizeof was, "%s", e->local);
    snprintf(e->local, sizeof e->local, "%s", f->name);
    keep_stat(e, f);
    naming_sanitize(e->srv_name, want, sizeof want);
    if ((p->srv & S_RENAME) && strcmp(want, f->name)) { /* two renames: the server's wins */
        conflict(s, "rename/rename", e->id, f->name, NULL);
        take_server(s, e);
        return PIX_OK;
    }
    if (p->pair)
        return renamed_replaced(s, p, f, err);
    if ((p->srv & S_GONE) && (rc = restore(s, p, f, err)) != PIX_OK)
        return rc == 1 ? PIX_OK : rc;
    if (!(p->srv & S_RENAME) && (rc = rename_image(s, p->id, f->name, err)) == 1 &&
        !(p->srv & S_GONE)) { /* deleted after the feed was read */
        if ((rc = restore(s, p, f, err)) != PIX_OK)
            return rc == 1 ? PIX_OK : rc;
        rc = rename_image(s, p->id, f->name, err);
    }
    if (rc != PIX_OK)
        return rc == 1 ? (err_set(err, "%s: the image is gone; run again", f->name), PIX_EAPI) : rc;
    if (!(p->srv & S_RENAME)) {
        t->rrenamed++;
        say(s, "remote-renamed", p->id, f->name, "from", was);
    }
    take_server(s, e); /* new content from the server comes under the new name */
    if (!(p->srv & S_RENAME))
        snprintf(e->name, sizeof e->name, "%s", f->name);
    return checkpoint(s, err);
}

/* Edited here (f holds the new content, maybe under a new name): a new image replaces the
 * old one, which goes to the trash; if the server changed the content too, the server's
 * version keeps the name and ours becomes the conflict copy. */
static int local_edited(struct syncer *s, struct step *p, struct lfile *f, char *err)
{
    struct two *t = s->two;
    struct sidx_entry *e = sidx_find(&s->idx, p->id), *r = NULL;
    char name[NAMING_MAX + 1], id[64], old[64];
    const char *theirs = (p->srv & S_EDIT) ? e->srv_sha256 : NULL;
    int both, copy, rc;

    if (p->pair && (r = sidx_find(&s->idx, t->st[p->pair - 1].id)))
        theirs = r->srv_sha256;
    if (theirs && !strcmp(theirs, f->sha)) { /* the same new content on both sides */
        struct sidx_entry *keep = r ? r : e;
        snprintf(keep->local, sizeof keep->local, "%s", f->name);
        keep_stat(keep, f);
        take_server(s, keep);
        if (r) { /* the deleted one is ours no more */
            e->local[0] = '\0';
            take_server(s, e);
        }
        return PIX_OK;
    }
    both = theirs != NULL;
    copy = both || e->foreign;
    snprintf(old, sizeof old, "%s", e->id);
    if (copy)
        conflict_name(s, f->name, name, sizeof name);
    else
        snprintf(name, sizeof name, "%s", (p->srv & S_RENAME) ? e->srv_name : f->name);
    if ((rc = upload(s, f, name, id, err)) == UP_CHANGED)
        return skip(s, e, f);
    if (rc != PIX_OK)
        return rc;
    if (copy) {
        conflict(s, both ? "edit/edit" : "edit/read-only", old, f->name, name);
        e->local[0] = '\0'; /* the server's version is downloaded again */
        take_server(s, e);
    } else if (p->srv & S_GONE) {
        conflict(s, "edit/delete", old, f->name, NULL);
        sidx_remove(&s->idx, e);
    } else {
        if ((rc = image_call(s, "DELETE", old, "", NULL, err)) > 1)
            return rc;
        sidx_remove(&s->idx, e);
    }
    if (take_upload(s, f, id, name) < 0)
        return err_set(err, "out of memory"), PIX_EIO;
    if (copy || (p->srv & S_GONE))
        t->uploaded++, say(s, "uploaded", id, name, NULL, NULL);
    else
        t->replaced++, say(s, "replaced", id, f->name, "replaces", old);
    return checkpoint(s, err);
}

/* Another user's image, shared with us: read-only here. A deletion or rename is undone; an
 * edit is kept as our own conflict copy. */
static int foreign(struct syncer *s, struct step *p, struct lfile *f, char *err)
{
    struct sidx_entry *e = sidx_find(&s->idx, p->id);

    if (p->l == L_EDIT)
        return local_edited(s, p, f, err);
    if (p->l == L_GONE)
        e->local[0] = '\0';
    if (p->l == L_RENAME)
        snprintf(e->local, sizeof e->local, "%s", f->name);
    take_server(s, e);
    return PIX_OK;
}

static int merge_step(struct syncer *s, struct step *p, char *err)
{
    struct two *t = s->two;
    struct sidx_entry *e = sidx_find(&s->idx, p->id);
    struct lfile *f = p->f >= 0 ? &t->f[p->f] : NULL;

    if (!e)
        return PIX_OK;
    e->hold = 0;
    if (p->l == L_GONE && t->busy_new)
        p->l = L_BUSY; /* it may have moved to a file still being written */
    if (p->l == L_BUSY)
        return skip(s, e, f);
    if (e->foreign && p->l != L_SAME && p->l != L_NONE)
        return foreign(s, p, f, err);
    switch (p->l) {
    case L_GONE:
        return local_gone(s, p, err);
    case L_RENAME:
        return local_renamed(s, p, f, err);
    case L_EDIT:
        return local_edited(s, p, f, err);
    default:
        take_server(s, e);
        return PIX_OK;
    }
}

/* Files no entry holds: new images. */
static int upload_new(struct syncer *s, char *err)
{
    struct two *t = s->two;
    char id[64];
    int rc;

    for (int k = 0; k < t->nf && !pix_interrupted; k++) {
        struct lfile *f = &t->f[k];
        if (f->claimed)
            continue;
        if (f->busy || !f->sha[0] || (rc = upload(s, f, f->name, id, err)) == UP_CHANGED) {
            skip(s, NULL, f);
            continue;
        }
        if (rc != PIX_OK)
            return rc;
        if (take_upload(s, f, id, f->name) < 0)
            return err_set(err, "out of memory"), PIX_EIO;
        f->claimed = 1;
        t->uploaded++;
        say(s, "uploaded", id, f->name, NULL, NULL);
        if ((rc = checkpoint(s, err)) != PIX_OK)
            return rc;
    }
    return pix_interrupted ? (err_set(err, "interrupted"), PIX_EINTR) : PIX_OK;
}

/* Files changed here are left alone by sync_reconcile until their step is merged. */
static void hold(struct syncer *s, struct two *t)
{
    for (int i = 0; i < t->nst; i++)
        s->idx.e[i].hold = t->st[i].l != L_SAME && t->st[i].l != L_NONE;
}

/* Everything the scan found, before anything changes: the folder's changes and the guard. */
static int survey(struct syncer *s, struct two *t, char *err)
{
    int rc;

    t->busy_new = 0;
    if ((rc = scan(s, t, err)) != PIX_OK || (rc = classify(s, t, err)) != PIX_OK)
        return rc;
    if ((rc = find_moves(s, t, 1, err)) != PIX_OK || (rc = read_new(s, t, err)) != PIX_OK)
        return rc;
    if ((rc = find_moves(s, t, 0, err)) != PIX_OK)
        return rc;
    pair_replacements(s, t);
    adopt_new(s, t);
    return guard(s, t, err);
}

/* Names that collided got `NAME (ID-PREFIX).EXT` here (the same in every folder): our own
 * images take that name on the server too, so every side shows the same names. */
static int align_names(struct syncer *s, char *err)
{
    char safe[NAMING_MAX + 1];
    int rc;

    for (int i = 0; i < s->idx.n; i++) {
        struct sidx_entry *e = &s->idx.e[i];
        naming_sanitize(e->name, safe, sizeof safe);
        if (e->foreign || e->hold || !e->local[0] || sync_in_tmp(e->local) ||
            strcmp(safe, e->name) || !strcmp(e->local, e->name))
            continue;
        if ((rc = rename_image(s, e->id, e->local, err)) > 1 || rc < 0)
            return rc;
        ((struct two *)s->two)->rrenamed++;
        say(s, "remote-renamed", e->id, e->local, "from", e->name);
        snprintf(e->name, sizeof e->name, "%.*s", NAMING_MAX, e->local);
    }
    return PIX_OK;
}

/* Changes this run made on the server so far. */
static int writes(const struct two *t)
{
    return t->uploaded + t->replaced + t->rrenamed + t->rdeleted + t->restored + t->conflicts;
}

int bisync_pass(struct syncer *s, char *err)
{
    struct two *t = s->two;
    int rc, wrote;

    s->dl_rc = PIX_OK;
    if ((rc = record(s, err)) != PIX_OK || (rc = survey(s, t, err)) != PIX_OK)
        return rc;
    wrote = writes(t);
    t->saved_at = util_now_mono();
    hold(s, t);
    for (int i = 0; i < t->nst && rc == PIX_OK && !pix_interrupted; i++)
        if (t->st[i].l != L_SAME || t->st[i].srv)
            rc = merge_step(s, &t->st[i], err);
    if (rc == PIX_OK)
        rc = upload_new(s, err);
    if (rc == PIX_OK || rc == PIX_EINTR) {
        char e2[ERR_MAX];
        int r2 = sync_reconcile(s, rc == PIX_OK ? err : e2);
        rc = rc == PIX_OK ? r2 : rc;
    }
    if (rc == PIX_OK && (rc = align_names(s, err)) == PIX_OK)
        rc = sync_save_index(s, err);
    /* the feed shows a device only the deletions of images it was told about: move the
     * cursor past this pass's own changes, so a deletion of what it uploaded is seen */
    if (rc == PIX_OK && writes(t) != wrote)
        rc = record(s, err);
    if (rc == PIX_OK && s->dl_rc != PIX_OK)
        return snprintf(err, ERR_MAX, "%.200s (run again)", s->dl_err), s->dl_rc;
    return rc == PIX_OK && pix_interrupted ? (err_set(err, "interrupted"), PIX_EINTR) : rc;
}

int bisync_drain_events(struct syncer *s)
{
    char ev_buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
    int any = 0;
    ssize_t n;

    while ((n = read(s->wfd, ev_buf, sizeof ev_buf)) > 0)
        for (char *p = ev_buf; p < ev_buf + n;) {
            const struct inotify_event *ev = (const struct inotify_event *)p;
            if (ev->len && !ignored(s, ev->name))
                any = 1;
            p += sizeof *ev + ev->len;
        }
    return any;
}
