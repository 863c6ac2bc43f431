/* iidx: the import index and key sets, both open-addressing hash tables over an array of
 * entries (linear probing, at most half full). */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fsx.h"
#include "iidx.h"

#define HEADER                                                                                     \
    "# pixctl import index 1: sha256 image_id kind size mtime_sec mtime_nsec dev ino path\n"
#define INDEX_MAX (1LL << 31) /* bytes of an index file read at most */

/* The slot table: slot[i] is an entry number + 1, 0 if empty. */
struct tab {
    int *slot;
    size_t cap; /* a power of two, or 0 */
};

typedef uint64_t (*tab_hash_fn)(const void *ctx, int i);
typedef int (*tab_eq_fn)(const void *ctx, int i, const char *key);

struct iidx {
    struct iidx_entry *e;
    int n, cap;
    struct tab t;
};

struct kv {
    char key[IIDX_KEY_MAX + 1];
    char val[IIDX_VAL_MAX + 1];
};

struct iidx_set {
    struct kv *e;
    int n, cap;
    struct tab t;
};

static uint64_t fnv(const char *s)
{
    uint64_t h = 1469598103934665603ULL;

    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

/* Where key is, or the empty slot where it would go. */
static size_t tab_find(const struct tab *t, const char *key, tab_eq_fn eq, const void *ctx)
{
    size_t i = (size_t)fnv(key) & (t->cap - 1);

    while (t->slot[i] && !eq(ctx, t->slot[i] - 1, key))
        i = (i + 1) & (t->cap - 1);
    return i;
}

/* Makes room for n entries (rehashing the entries 0..n-1). 0 or -1. */
static int tab_room(struct tab *t, int n, tab_hash_fn hash, const void *ctx)
{
    size_t cap = t->cap ? t->cap : 64;
    int *slot;

    while ((size_t)n * 2 > cap)
        cap *= 2;
    if (cap == t->cap)
        return 0;
    if (!(slot = calloc(cap, sizeof *slot)))
        return -1;
    for (int k = 0; k < n - 1; k++) {
        size_t i = (size_t)hash(ctx, k) & (cap - 1);
        while (slot[i])
            i = (i + 1) & (cap - 1);
        slot[i] = k + 1;
    }
    free(t->slot);
    t->slot = slot;
    t->cap = cap;
    return 0;
}

/* Grows an entry array to hold n. 0 or -1. */
static int grow(void **arr, int *cap, int n, size_t size)
{
    int ncap = *cap ? *cap * 2 : 64;
    void *p;

    if (n <= *cap)
        return 0;
    if (!(p = realloc(*arr, (size_t)ncap * size)))
        return -1;
    *arr = p;
    *cap = ncap;
    return 0;
}

/* ---- the index ---- */

static uint64_t ix_hash(const void *ctx, int i)
{
    const iidx *x = ctx;

    return fnv(x->e[i].path);
}

static int ix_eq(const void *ctx, int i, const char *key)
{
    const iidx *x = ctx;

    return !strcmp(x->e[i].path, key);
}

iidx *iidx_new(void)
{
    return calloc(1, sizeof(iidx));
}

void iidx_free(iidx *x)
{
    if (!x)
        return;
    for (int i = 0; i < x->n; i++)
        free(x->e[i].path);
    free(x->e);
    free(x->t.slot);
    free(x);
}

int iidx_count(const iidx *x)
{
    return x->n;
}

const struct iidx_entry *iidx_find(const iidx *x, const char *path)
{
    size_t i;

    if (!x->n)
        return NULL;
    i = tab_find(&x->t, path, ix_eq, x);
    return x->t.slot[i] ? &x->e[x->t.slot[i] - 1] : NULL;
}

int iidx_put(iidx *x, const struct iidx_entry *e)
{
    struct iidx_entry *have = (struct iidx_entry *)iidx_find(x, e->path);
    char *path = strdup(e->path);
    size_t i;

    if (!path)
        return -1;
    if (have) {
        free(have->path);
        *have = *e;
        have->path = path;
        return 0;
    }
    if (grow((void **)&x->e, &x->cap, x->n + 1, sizeof *x->e) < 0) {
        free(path);
        return -1;
    }
    x->e[x->n] = *e;
    x->e[x->n].path = path;
    x->n++;
    if (tab_room(&x->t, x->n, ix_hash, x) < 0) {
        x->n--;
        free(path);
        return -1;
    }
    i = tab_find(&x->t, path, ix_eq, x);
    x->t.slot[i] = x->n;
    return 0;
}

int iidx_format(const struct iidx_entry *e, char *out, size_t n)
{
    int w;

    if (strpbrk(e->path, "\t\r\n"))
        return -1;
    w = snprintf(out, n, "%s\t%s\t%c\t%lld\t%lld\t%lld\t%llu\t%llu\t%s\n", e->sha256, e->image_id,
                 e->kind, e->size, e->mtime_sec, e->mtime_nsec, e->dev, e->ino, e->path);
    return w < 0 || (size_t)w >= n ? -1 : w;
}

static int is_hex64(const char *s)
{
    size_t n = strspn(s, "0123456789abcdef");

    return n == 64 && !s[n];
}

int iidx_parse(char *line, struct iidx_entry *e)
{
    char *f[9], *save = NULL, *p = line;
    int k = 0;

    memset(e, 0, sizeof *e);
    for (; k < 8 && (f[k] = strtok_r(p, "\t", &save)); k++)
        p = NULL;
    if (k < 8 || !(f[8] = strtok_r(NULL, "", &save)) || f[8][0] != '/')
        return -1;
    if (!is_hex64(f[0]) || strlen(f[1]) > IIDX_VAL_MAX || strlen(f[2]) != 1)
        return -1;
    if (f[2][0] != IIDX_IMPORTED && f[2][0] != IIDX_MATCHED)
        return -1;
    snprintf(e->sha256, sizeof e->sha256, "%s", f[0]);
    snprintf(e->image_id, sizeof e->image_id, "%s", f[1]);
    e->kind = f[2][0];
    if (sscanf(f[3], "%lld", &e->size) != 1 || sscanf(f[4], "%lld", &e->mtime_sec) != 1 ||
        sscanf(f[5], "%lld", &e->mtime_nsec) != 1 || sscanf(f[6], "%llu", &e->dev) != 1 ||
        sscanf(f[7], "%llu", &e->ino) != 1 || e->size <= 0)
        return -1;
    e->path = f[8];
    return 0;
}

int iidx_load(iidx *x, const char *path, char *err)
{
    size_t len;
    char *text = fsx_read_file(path, INDEX_MAX, &len, err), *line, *nl;
    struct iidx_entry e;
    int rc = 0;

    if (!text)
        return errno == ENOENT ? 0 : -1;
    for (line = text; rc == 0 && (nl = strchr(line, '\n')); line = nl + 1) {
        *nl = '\0';
        if (line[0] != '#' && iidx_parse(line, &e) == 0 && iidx_put(x, &e) < 0) {
            err_set(err, "out of memory");
            rc = -1;
        }
    }
    free(text);
    return rc;
}

int iidx_save(const iidx *x, const char *path, char *err)
{
    buf b = {0};
    char line[PATH_MAX + 256];
    int rc = buf_puts(&b, HEADER);

    for (int i = 0; rc == 0 && i < x->n; i++) {
        int n = iidx_format(&x->e[i], line, sizeof line);
        if (n > 0)
            rc = buf_append(&b, line, (size_t)n);
    }
    if (rc < 0)
        err_set(err, "out of memory");
    else
        rc = fsx_write_atomic(path, b.data ? b.data : "", b.len, 1, err);
    buf_free(&b);
    return rc;
}

int iidx_fresh(const struct iidx_entry *e, const struct file_ident *f)
{
    return e->size == f->size && e->mtime_sec == f->mtime_sec && e->mtime_nsec == f->mtime_nsec &&
           e->dev == f->dev && e->ino == f->ino;
}

void iidx_entry_of(const struct file_ident *f, const char *image_id, char kind,
                   struct iidx_entry *e)
{
    memset(e, 0, sizeof *e);
    e->kind = kind;
    e->path = (char *)f->path;
    e->size = f->size;
    e->mtime_sec = f->mtime_sec;
    e->mtime_nsec = f->mtime_nsec;
    e->dev = f->dev;
    e->ino = f->ino;
    snprintf(e->sha256, sizeof e->sha256, "%s", f->sha256);
    snprintf(e->image_id, sizeof e->image_id, "%s", image_id);
}

/* ---- key sets ---- */

static uint64_t kv_hash(const void *ctx, int i)
{
    const iidx_set *s = ctx;

    return fnv(s->e[i].key);
}

static int kv_eq(const void *ctx, int i, const char *key)
{
    const iidx_set *s = ctx;

    return !strcmp(s->e[i].key, key);
}

iidx_set *iidx_set_new(void)
{
    return calloc(1, sizeof(iidx_set));
}

void iidx_set_free(iidx_set *s)
{
    if (!s)
        return;
    free(s->e);
    free(s->t.slot);
    free(s);
}

int iidx_set_count(const iidx_set *s)
{
    return s->n;
}

const char *iidx_set_get(const iidx_set *s, const char *key)
{
    size_t i;

    if (!s->n)
        return NULL;
    i = tab_find(&s->t, key, kv_eq, s);
    return s->t.slot[i] ? s->e[s->t.slot[i] - 1].val : NULL;
}

int iidx_set_put(iidx_set *s, const char *key, const char *val)
{
    size_t i;

    if (strlen(key) > IIDX_KEY_MAX || strlen(val) > IIDX_VAL_MAX)
        return -1;
    if (iidx_set_get(s, key))
        return 0;
    if (grow((void **)&s->e, &s->cap, s->n + 1, sizeof *s->e) < 0)
        return -1;
    snprintf(s->e[s->n].key, sizeof s->e[s->n].key, "%s", key);
    snprintf(s->e[s->n].val, sizeof s->e[s->n].val, "%s", val);
    s->n++;
    if (tab_room(&s->t, s->n, kv_hash, s) < 0) {
        s->n--;
        return -1;
    }
    i = tab_find(&s->t, key, kv_eq, s);
    s->t.slot[i] = s->n;
    return 1;
}
