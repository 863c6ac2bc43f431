/* imgcache: per-worker caches of image rows for GET /images/{id} and its siblings, served
 * only while no change about the image's owner or the caller has happened since the read. */
#include <stdlib.h>
#include <string.h>

#include "imgcache.h"

#define GEN_SLOTS 4096 /* users hash to slots; sharing one only costs extra misses */

struct gen_slot {
    unsigned long stamp; /* the last change about the users of this slot */
    int writing;         /* write requests in flight by them */
};

struct imgcache_gens {
    unsigned long clock; /* every change takes the next value */
    unsigned long all;   /* the last change about everyone */
    int live;            /* change notifications are being heard */
    struct gen_slot slot[GEN_SLOTS];
};

struct entry {
    char id[37];
    char caller[AUTH_SUB_MAX + 1];
    unsigned long stamp;
    double filled;
    struct api_img m;
};

struct imgcache {
    imgcache_gens *g;
    size_t n;
    double ttl;
    struct entry *e;
};

static uint32_t fnv(const char *a, const char *b)
{
    uint32_t h = 2166136261u;

    for (; *a; a++)
        h = (h ^ (unsigned char)*a) * 16777619u;
    h = (h ^ 0xff) * 16777619u;
    for (; b && *b; b++)
        h = (h ^ (unsigned char)*b) * 16777619u;
    return h;
}

static struct gen_slot *slot_of(const imgcache_gens *g, const char *user)
{
    return (struct gen_slot *)&g->slot[fnv(user, NULL) % GEN_SLOTS];
}

imgcache_gens *imgcache_gens_new(void)
{
    return calloc(1, sizeof(struct imgcache_gens));
}

void imgcache_gens_free(imgcache_gens *g)
{
    free(g);
}

static unsigned long tick(imgcache_gens *g)
{
    return __atomic_add_fetch(&g->clock, 1, __ATOMIC_SEQ_CST);
}

/* Raises *at to v (stamps only move forward, whatever order the writers come in). */
static void raise_to(unsigned long *at, unsigned long v)
{
    unsigned long cur = __atomic_load_n(at, __ATOMIC_SEQ_CST);

    while (cur < v &&
           !__atomic_compare_exchange_n(at, &cur, v, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST))
        ;
}

void imgcache_changed(imgcache_gens *g, const char *user)
{
    unsigned long t;

    if (!g)
        return;
    t = tick(g);
    if (!strcmp(user, "*"))
        raise_to(&g->all, t);
    else
        raise_to(&slot_of(g, user)->stamp, t);
}

void imgcache_write_begin(imgcache_gens *g, const char *user)
{
    if (!g)
        return;
    __atomic_add_fetch(&slot_of(g, user)->writing, 1, __ATOMIC_SEQ_CST);
    imgcache_changed(g, user);
}

void imgcache_write_end(imgcache_gens *g, const char *user)
{
    if (!g)
        return;
    imgcache_changed(g, user); /* before the count drops: no fill from before slips in */
    __atomic_sub_fetch(&slot_of(g, user)->writing, 1, __ATOMIC_SEQ_CST);
}

void imgcache_set_live(imgcache_gens *g, int live)
{
    if (!g)
        return;
    imgcache_changed(g, "*");
    __atomic_store_n(&g->live, live, __ATOMIC_SEQ_CST);
}

unsigned long imgcache_stamp(const imgcache_gens *g)
{
    return !g ? 0 : __atomic_load_n(&g->clock, __ATOMIC_SEQ_CST);
}

/* Nothing about owner or caller changed after stamp, and neither is writing now. */
static int unchanged(const imgcache_gens *g, const char *owner, const char *caller,
                     unsigned long stamp)
{
    const struct gen_slot *so = slot_of(g, owner), *sc = slot_of(g, caller);

    return __atomic_load_n(&g->live, __ATOMIC_SEQ_CST) &&
           __atomic_load_n(&g->all, __ATOMIC_SEQ_CST) <= stamp &&
           __atomic_load_n(&so->stamp, __ATOMIC_SEQ_CST) <= stamp &&
           __atomic_load_n(&sc->stamp, __ATOMIC_SEQ_CST) <= stamp &&
           !__atomic_load_n(&so->writing, __ATOMIC_SEQ_CST) &&
           !__atomic_load_n(&sc->writing, __ATOMIC_SEQ_CST);
}

imgcache *imgcache_new(imgcache_gens *g, size_t slots, double ttl)
{
    imgcache *c = calloc(1, sizeof *c);

    if (!c || !g || !slots || !(c->e = calloc(slots, sizeof *c->e))) {
        free(c);
        return NULL;
    }
    c->g = g;
    c->n = slots;
    c->ttl = ttl;
    return c;
}

void imgcache_free(imgcache *c)
{
    if (!c)
        return;
    free(c->e);
    free(c);
}

int imgcache_get(imgcache *c, const char *image_id, const char *caller, double now,
                 struct api_img *m)
{
    struct entry *e = c ? &c->e[fnv(image_id, caller) % c->n] : NULL;

    if (!e || !e->id[0] || strcmp(e->id, image_id) || strcmp(e->caller, caller) ||
        now - e->filled > c->ttl || !unchanged(c->g, e->m.owner, caller, e->stamp))
        return 0;
    *m = e->m;
    return 1;
}

void imgcache_put(imgcache *c, const char *caller, const struct api_img *m, unsigned long stamp,
                  double now)
{
    struct entry *e;

    if (!c || strlen(caller) > AUTH_SUB_MAX)
        return;
    e = &c->e[fnv(m->id, caller) % c->n];
    if (!strcmp(e->id, m->id) && !strcmp(e->caller, caller))
        e->id[0] = '\0'; /* what was kept is older than this read */
    if (strcmp(m->status, "active") || !unchanged(c->g, m->owner, caller, stamp))
        return;
    util_strlcpy(e->id, sizeof e->id, m->id);
    util_strlcpy(e->caller, sizeof e->caller, caller);
    e->stamp = stamp;
    e->filled = now;
    e->m = *m;
}
