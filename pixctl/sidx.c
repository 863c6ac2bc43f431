/* sidx: reading and writing the sync index, a tab-separated text file replaced atomically,
 * mapping image ids to local file names, content hashes and sizes. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fsx.h"
#include "sidx.h"

#define SIDX_HEADER "# pixplane sync index v2"
#define SIDX_FIELDS 12
#define SIDX_MAX (256 * 1024 * 1024)

/* s with tabs and newlines as spaces (they cannot appear in names the API accepts). */
static void put_field(buf *b, const char *s, int *fail)
{
    for (; *s && !*fail; s++)
        if (buf_append(b, *s == '\t' || *s == '\n' || *s == '\r' ? " " : s, 1) < 0)
            *fail = 1;
}

char *sidx_format(const struct sidx *x)
{
    buf b = {0};
    int fail = buf_puts(&b, SIDX_HEADER "\n") < 0;

    for (int i = 0; i < x->n && !fail; i++) {
        const struct sidx_entry *e = &x->e[i];
        fail = buf_printf(&b, "%s\t%s\t%lld\t%lld\t%llu\t%d\t", e->id, e->sha256, e->size,
                          e->mtime_ns, e->ino, e->foreign) < 0;
        put_field(&b, e->local, &fail);
        fail = fail || buf_puts(&b, "\t") < 0;
        put_field(&b, e->name, &fail);
        fail = fail || buf_printf(&b, "\t%d\t%s\t%lld\t", e->srv, e->srv_sha256, e->srv_size) < 0;
        put_field(&b, e->srv_name, &fail);
        fail = fail || buf_puts(&b, "\n") < 0;
    }
    if (fail) {
        buf_free(&b);
        return NULL;
    }
    return b.data ? b.data : strdup("");
}

static int copy_field(char *dst, size_t n, const char *src)
{
    if (strlen(src) >= n)
        return -1;
    memcpy(dst, src, strlen(src) + 1);
    return 0;
}

static int num_field(const char *s, long long *out)
{
    char *end;

    errno = 0;
    *out = strtoll(s, &end, 10);
    return *s && !*end && !errno && *out >= 0 ? 0 : -1;
}

/* The v2 fields after the first three (f as split by parse_line). */
static int parse_v2(char **f, struct sidx_entry *e)
{
    long long foreign, srv;
    char *end;

    errno = 0;
    e->ino = strtoull(f[4], &end, 10);
    if (!*f[4] || *end || errno || *f[4] == '-')
        return -1;
    if (num_field(f[3], &e->mtime_ns) < 0 || num_field(f[5], &foreign) < 0 ||
        num_field(f[8], &srv) < 0 || srv > SIDX_SRV_GONE || num_field(f[10], &e->srv_size) < 0 ||
        copy_field(e->local, sizeof e->local, f[6]) < 0 ||
        copy_field(e->name, sizeof e->name, f[7]) < 0 ||
        copy_field(e->srv_sha256, sizeof e->srv_sha256, f[9]) < 0 ||
        copy_field(e->srv_name, sizeof e->srv_name, f[11]) < 0)
        return -1;
    e->foreign = foreign != 0;
    e->srv = (int)srv;
    return 0;
}

/* One line, v1 "id sha size local name" or v2 (sidx_format), modified in place. */
static int parse_line(char *line, struct sidx *x)
{
    char *f[SIDX_FIELDS];
    struct sidx_entry *e;
    int k = 0;

    for (char *p = line; p && k < SIDX_FIELDS; k++) {
        f[k] = p;
        if ((p = strchr(p, '\t')))
            *p++ = '\0';
    }
    if ((k != 5 && k != SIDX_FIELDS) || !*f[0] || !(e = sidx_add(x, f[0])))
        return -1;
    if (num_field(f[2], &e->size) < 0 || copy_field(e->sha256, sizeof e->sha256, f[1]) < 0)
        return -1;
    if (k == SIDX_FIELDS)
        return parse_v2(f, e);
    if (copy_field(e->local, sizeof e->local, f[3]) < 0 ||
        copy_field(e->name, sizeof e->name, f[4]) < 0)
        return -1;
    return 0;
}

int sidx_parse(const char *text, struct sidx *x, char *err)
{
    char *copy = strdup(text), *line, *save = NULL;
    int lineno = 0;

    x->n = 0;
    if (!copy)
        return err_set(err, "out of memory"), -1;
    for (line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        lineno++;
        if (line[0] == '#')
            continue;
        if (parse_line(line, x) < 0) {
            err_set(err, "sync index line %d is malformed", lineno);
            free(copy);
            return -1;
        }
    }
    free(copy);
    return 0;
}

int sidx_load(const char *path, struct sidx *x, char *err)
{
    size_t len;
    char *text = fsx_read_file(path, SIDX_MAX, &len, err);
    int rc;

    x->n = 0;
    if (!text)
        return errno == ENOENT ? 0 : -1;
    rc = sidx_parse(text, x, err);
    free(text);
    return rc;
}

int sidx_save(const char *path, const struct sidx *x, char *err)
{
    char *text = sidx_format(x);
    int rc;

    if (!text)
        return err_set(err, "out of memory"), -1;
    rc = fsx_write_atomic(path, text, strlen(text), 0, err);
    free(text);
    return rc;
}

struct sidx_entry *sidx_find(struct sidx *x, const char *id)
{
    for (int i = 0; i < x->n; i++)
        if (!strcmp(x->e[i].id, id))
            return &x->e[i];
    return NULL;
}

struct sidx_entry *sidx_find_local(struct sidx *x, const char *local)
{
    for (int i = 0; i < x->n; i++)
        if (x->e[i].local[0] && !strcmp(x->e[i].local, local))
            return &x->e[i];
    return NULL;
}

struct sidx_entry *sidx_add(struct sidx *x, const char *id)
{
    struct sidx_entry *e;

    if (strlen(id) >= sizeof x->e[0].id)
        return NULL;
    if (x->n == x->cap) {
        int cap = x->cap ? x->cap * 2 : 64;
        void *p = realloc(x->e, sizeof *x->e * (size_t)cap);
        if (!p)
            return NULL;
        x->e = p, x->cap = cap;
    }
    e = &x->e[x->n++];
    memset(e, 0, sizeof *e);
    memcpy(e->id, id, strlen(id) + 1);
    return e;
}

void sidx_remove(struct sidx *x, struct sidx_entry *e)
{
    int i = (int)(e - x->e);

    if (i < 0 || i >= x->n)
        return;
    memmove(&x->e[i], &x->e[i + 1], sizeof *e * (size_t)(x->n - i - 1));
    x->n--;
}

void sidx_note_stat(struct sidx_entry *e, const char *path)
{
    struct stat st;

    if (lstat(path, &st) < 0 || !S_ISREG(st.st_mode))
        return;
    e->mtime_ns = (long long)st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec;
    e->ino = (unsigned long long)st.st_ino;
}

void sidx_free(struct sidx *x)
{
    if (!x)
        return;
    free(x->e);
    x->e = NULL;
    x->n = x->cap = 0;
}
