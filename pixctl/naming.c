/* naming: makes server-side image names safe as local file names and assigns collision-free
 * names deterministically (the smallest id keeps the plain name, others get an id suffix). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "naming.h"

#define EXT_MAX 16
#define TAG_SHORT 8

size_t naming_ext_at(const char *name)
{
    size_t n = strlen(name);
    const char *dot = strrchr(name, '.');

    if (!dot || dot == name || n - (size_t)(dot - name) > EXT_MAX + 1 || dot[1] == '\0')
        return n;
    for (const char *p = dot + 1; *p; p++)
        if (*p == ' ')
            return n;
    return (size_t)(dot - name);
}

/* Length of the longest prefix of s (len bytes) that is at most max bytes and does not end
 * inside a UTF-8 sequence. */
static size_t utf8_cut(const char *s, size_t len, size_t max)
{
    if (len <= max)
        return len;
    while (max > 0 && ((unsigned char)s[max] & 0xc0) == 0x80)
        max--;
    return max;
}

/* stem (stem_len bytes) + middle + ext into out, the stem cut so it all fits NAMING_MAX. */
static void join(const char *stem, size_t stem_len, const char *middle, const char *ext, char *out,
                 size_t n)
{
    size_t fixed = strlen(middle) + strlen(ext), room = fixed < NAMING_MAX ? NAMING_MAX - fixed : 0;

    stem_len = utf8_cut(stem, stem_len, room);
    snprintf(out, n, "%.*s%s%s", (int)stem_len, stem, middle, ext);
}

void naming_sanitize(const char *name, char *out, size_t n)
{
    size_t len = strlen(name), at;
    char *tmp = malloc(len + 3), *p = tmp;

    if (!tmp || n == 0) {
        if (n)
            snprintf(out, n, "_");
        free(tmp);
        return;
    }
    if (len == 0 || !strcmp(name, ".") || !strcmp(name, "..") || !strncmp(name, ".pixplane", 9))
        *p++ = '_';
    for (const unsigned char *s = (const unsigned char *)name; *s; s++)
        *p++ = (char)(*s == '/' || *s == '\\' || *s < 0x20 || *s == 0x7f ? '_' : *s);
    *p = '\0';
    at = naming_ext_at(tmp);
    join(tmp, at, "", tmp + at, out, n);
    free(tmp);
}

void naming_suffixed(const char *name, const char *tag, char *out, size_t n)
{
    size_t at = naming_ext_at(name);
    char middle[128];

    snprintf(middle, sizeof middle, " (%s)", tag);
    join(name, at, middle, name + at, out, n);
}

/* ---- a small string set for the names handed out ---- */

struct strset {
    const char **slot;
    size_t cap;
};

static uint64_t fnv(const char *s)
{
    uint64_t h = 1469598103934665603ULL;

    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

static int set_has(const struct strset *s, const char *k)
{
    for (size_t i = fnv(k) % s->cap; s->slot[i]; i = (i + 1) % s->cap)
        if (!strcmp(s->slot[i], k))
            return 1;
    return 0;
}

static void set_add(struct strset *s, const char *k)
{
    size_t i = fnv(k) % s->cap;

    while (s->slot[i])
        i = (i + 1) % s->cap;
    s->slot[i] = k;
}

/* ---- assignment ---- */

static struct naming_entry *sort_base;

static int by_name_id(const void *a, const void *b)
{
    const struct naming_entry *x = &sort_base[*(const int *)a], *y = &sort_base[*(const int *)b];
    int c = strcmp(x->out, y->out);

    return c ? c : strcmp(x->id, y->id);
}

static int usable(const char *f, const struct strset *used, naming_taken_fn taken, void *ud)
{
    return !set_has(used, f) && !(taken && taken(ud, f));
}

/* Entry e lost its plain name: "STEM (id8).EXT", else "STEM (id).EXT". */
static void assign_suffixed(struct naming_entry *e, struct strset *used, naming_taken_fn taken,
                            void *ud)
{
    char base[NAMING_MAX + 1], tag[TAG_SHORT + 1];

    snprintf(base, sizeof base, "%s", e->out);
    snprintf(tag, sizeof tag, "%s", e->id);
    naming_suffixed(base, tag, e->out, sizeof e->out);
    if (!usable(e->out, used, taken, ud))
        naming_suffixed(base, e->id, e->out, sizeof e->out);
    set_add(used, e->out);
}

int naming_assign(struct naming_entry *e, int n, naming_taken_fn taken, void *ud)
{
    struct strset used = {NULL, (size_t)n * 2 + 16};
    int *idx = malloc(sizeof(int) * (size_t)(n > 0 ? n : 1));
    unsigned char *won = calloc((size_t)(n > 0 ? n : 1), 1);

    used.slot = calloc(used.cap, sizeof *used.slot);
    if (!idx || !won || !used.slot) {
        free(idx), free(won), free(used.slot);
        return -1;
    }
    for (int i = 0; i < n; i++) {
        naming_sanitize(e[i].name, e[i].out, sizeof e[i].out);
        idx[i] = i;
    }
    sort_base = e;
    qsort(idx, (size_t)n, sizeof *idx, by_name_id);
    for (int k = 0; k < n; k++) { /* plain names first, so a suffix never takes one */
        struct naming_entry *x = &e[idx[k]];
        if ((k == 0 || strcmp(e[idx[k - 1]].out, x->out)) && usable(x->out, &used, taken, ud))
            set_add(&used, x->out), won[idx[k]] = 1;
    }
    for (int k = 0; k < n; k++)
        if (!won[idx[k]])
            assign_suffixed(&e[idx[k]], &used, taken, ud);
    free(idx), free(won), free(used.slot);
    return 0;
}
