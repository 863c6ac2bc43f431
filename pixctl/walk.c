/* walk: depth-first directory walks with one open directory per level (WALK_DEPTH_MAX
 * levels at most), plain files given as roots, and path lists read line by line. */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "walk.h"

struct frame {
    DIR *d;
    char path[PATH_MAX];
};

struct walk {
    char *const *roots;
    int nroots, next_root;
    char exclude[PATH_MAX];
    struct frame *st; /* WALK_DEPTH_MAX frames; depth in use */
    int depth;
    FILE *list; /* a list walk */
    int own_list;
    char *line;
    size_t line_cap;
};

int walk_hidden(const char *name)
{
    return name[0] == '.';
}

char *walk_list_line(char *line)
{
    size_t n;

    while (isspace((unsigned char)*line))
        line++;
    n = strlen(line);
    while (n && isspace((unsigned char)line[n - 1]))
        line[--n] = '\0';
    if (!n || line[0] == '#')
        return NULL;
    return line;
}

int walk_join(const char *dir, const char *name, char *out, size_t n)
{
    size_t dl = strlen(dir);
    int w;

    if (dl && dir[dl - 1] == '/')
        w = snprintf(out, n, "%s%s", dir, name);
    else
        w = snprintf(out, n, "%s/%s", dir, name);
    return w < 0 || (size_t)w >= n ? -1 : 0;
}

static walk *walk_alloc(void)
{
    walk *w = calloc(1, sizeof *w);

    if (w && !(w->st = calloc(WALK_DEPTH_MAX, sizeof *w->st))) {
        free(w);
        w = NULL;
    }
    return w;
}

walk *walk_roots(char *const *roots, int n, const char *exclude, char *err)
{
    walk *w = walk_alloc();

    if (!w) {
        err_set(err, "out of memory");
        return NULL;
    }
    w->roots = roots;
    w->nroots = n;
    if (exclude)
        snprintf(w->exclude, sizeof w->exclude, "%s", exclude);
    return w;
}

walk *walk_list(const char *list, char *err)
{
    walk *w = walk_alloc();

    if (!w) {
        err_set(err, "out of memory");
        return NULL;
    }
    if (!strcmp(list, "-")) {
        w->list = stdin;
        return w;
    }
    if (!(w->list = fopen(list, "re"))) {
        err_set(err, "%s: %s", list, strerror(errno));
        walk_free(w);
        return NULL;
    }
    w->own_list = 1;
    return w;
}

/* Enters directory path (made absolute). 0, or -1 with err. */
static int push_dir(walk *w, const char *path, char *err)
{
    struct frame *f;

    if (w->depth == WALK_DEPTH_MAX) {
        err_set(err, "%s: deeper than %d directories; skipped", path, WALK_DEPTH_MAX);
        return -1;
    }
    f = &w->st[w->depth];
    if (!realpath(path, f->path) || !(f->d = opendir(f->path))) {
        err_set(err, "%s: %s", path, strerror(errno));
        return -1;
    }
    w->depth++;
    return 0;
}

static void pop_dir(walk *w)
{
    w->depth--;
    closedir(w->st[w->depth].d);
    w->st[w->depth].d = NULL;
}

enum { K_FILE, K_DIR, K_SKIP };

/* What an entry of a walked directory is: a directory to enter, a symlink to a directory
 * (skipped: not followed), or anything else (yielded; a dangling symlink is reported when
 * it is opened). */
static int kind(const struct dirent *de, const char *path)
{
    struct stat sb;
    unsigned char t = de->d_type;

    if (t == DT_UNKNOWN && lstat(path, &sb) == 0)
        t = S_ISDIR(sb.st_mode) ? DT_DIR : S_ISLNK(sb.st_mode) ? DT_LNK : DT_REG;
    if (t == DT_DIR)
        return K_DIR;
    if (t == DT_LNK && stat(path, &sb) == 0 && S_ISDIR(sb.st_mode))
        return K_SKIP;
    return K_FILE;
}

/* The next entry of the innermost directory: 1 a file into out, 0 the directory is done,
 * 2 a subdirectory was entered, -1 with err. */
static int dir_step(walk *w, char *out, size_t n, char *err)
{
    struct frame *f = &w->st[w->depth - 1];
    struct dirent *de;
    char path[PATH_MAX];
    int k;

    errno = 0;
    if (!(de = readdir(f->d))) {
        int e = errno;

        if (e)
            err_set(err, "%s: %s", f->path, strerror(e));
        pop_dir(w);
        return e ? -1 : 0;
    }
    if (walk_hidden(de->d_name))
        return 2;
    if (walk_join(f->path, de->d_name, path, sizeof path) < 0) {
        err_set(err, "%s/%s: path too long", f->path, de->d_name);
        return -1;
    }
    k = kind(de, path);
    if (k == K_FILE) {
        snprintf(out, n, "%s", path);
        return 1;
    }
    if (k == K_SKIP || (w->exclude[0] && !strcmp(path, w->exclude)))
        return 2;
    return push_dir(w, path, err) < 0 ? -1 : 2;
}

/* The next root: 1 a file into out, 2 a directory entered, 0 none left, -1 with err. */
static int root_step(walk *w, char *out, size_t n, char *err)
{
    struct stat sb;
    const char *r;

    if (w->next_root == w->nroots)
        return 0;
    r = w->roots[w->next_root++];
    if (stat(r, &sb) == 0 && S_ISDIR(sb.st_mode))
        return push_dir(w, r, err) < 0 ? -1 : 2;
    snprintf(out, n, "%s", r);
    return 1;
}

static int list_step(walk *w, char *out, size_t n, char *err)
{
    char *p;

    while (getline(&w->line, &w->line_cap, w->list) >= 0) {
        if (!(p = walk_list_line(w->line)))
            continue;
        if (strlen(p) >= n) {
            err_set(err, "%.64s...: path too long", p);
            return -1;
        }
        snprintf(out, n, "%s", p);
        return 1;
    }
    if (ferror(w->list)) {
        err_set(err, "reading the list: %s", strerror(errno));
        return -1;
    }
    return 0;
}

int walk_next(walk *w, char *out, size_t n, char *err)
{
    int rc;

    if (w->list)
        return list_step(w, out, n, err);
    for (;;) {
        if (w->depth) {
            rc = dir_step(w, out, n, err);
            if (rc == 0 || rc == 2)
                continue; /* a directory done or entered */
            return rc;
        }
        if ((rc = root_step(w, out, n, err)) != 2)
            return rc;
    }
}

void walk_free(walk *w)
{
    if (!w)
        return;
    while (w->depth)
        pop_dir(w);
    if (w->own_list)
        fclose(w->list);
    free(w->line);
    free(w->st);
    free(w);
}
