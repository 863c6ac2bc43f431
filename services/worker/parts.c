/* parts: bookkeeping of the assigned partitions on the consumer thread: waiting messages in
 * offset order, the one in flight, and the offset that is safe to commit. */
#include <stdlib.h>
#include <string.h>

#include "worker.h"

struct part *parts_find(struct parts *ps, const char *topic, int32_t partition)
{
    for (size_t i = 0; i < ps->n; i++)
        if (ps->v[i].partition == partition && strcmp(ps->v[i].topic, topic) == 0)
            return &ps->v[i];
    return NULL;
}

static void part_clear(struct parts *ps, struct part *p)
{
    for (size_t i = 0; i < p->qlen; i++)
        kafka_msg_free(p->q[(p->qhead + i) % p->qcap]);
    ps->buffered -= p->qlen + (p->inflight ? 1 : 0);
    free(p->q);
    free(p->topic);
}

struct part *parts_assign(struct parts *ps, const char *topic, int32_t partition)
{
    struct part *p = parts_find(ps, topic, partition);
    char *t;

    if (p) { /* assigned again without a revoke in between: forget the old job */
        p->gen = ++ps->next_gen;
        if (p->inflight)
            ps->buffered--;
        p->inflight = NULL;
        p->stalled = 0;
        return p;
    }
    if (ps->n == ps->cap) {
        size_t cap = ps->cap ? ps->cap * 2 : 8;
        struct part *v = realloc(ps->v, cap * sizeof *v);
        if (!v)
            return NULL;
        ps->v = v;
        ps->cap = cap;
    }
    if (!(t = strdup(topic)))
        return NULL;
    p = &ps->v[ps->n++];
    memset(p, 0, sizeof *p);
    p->topic = t;
    p->partition = partition;
    p->gen = ++ps->next_gen;
    p->done_next = p->committed = -1;
    return p;
}

void parts_revoke(struct parts *ps, const char *topic, int32_t partition)
{
    struct part *p = parts_find(ps, topic, partition);
    size_t i;

    if (!p)
        return;
    part_clear(ps, p);
    i = (size_t)(p - ps->v);
    memmove(&ps->v[i], &ps->v[i + 1], (ps->n - i - 1) * sizeof *p);
    ps->n--;
    ps->rr = 0;
}

static int part_grow(struct part *p)
{
    size_t cap = p->qcap ? p->qcap * 2 : 16;
    struct kafka_msg **q = malloc(cap * sizeof *q);

    if (!q)
        return -1;
    for (size_t i = 0; i < p->qlen; i++)
        q[i] = p->q[(p->qhead + i) % p->qcap];
    free(p->q);
    p->q = q;
    p->qcap = cap;
    p->qhead = 0;
    return 0;
}

int parts_push(struct parts *ps, struct kafka_msg *m)
{
    struct part *p = parts_find(ps, m->topic, m->partition);

    if (!p || (p->qlen == p->qcap && part_grow(p) < 0)) {
        kafka_msg_free(m);
        return -1;
    }
    p->q[(p->qhead + p->qlen) % p->qcap] = m;
    p->qlen++;
    ps->buffered++;
    return 0;
}

struct part *parts_next(struct parts *ps, struct kafka_msg **m)
{
    for (size_t k = 0; k < ps->n; k++) {
        struct part *p = &ps->v[(ps->rr + k) % ps->n];

        if (p->inflight || p->stalled || !p->qlen)
            continue;
        *m = p->q[p->qhead];
        p->qhead = (p->qhead + 1) % p->qcap;
        p->qlen--;
        ps->rr = (size_t)(p - ps->v) + 1;
        return p;
    }
    return NULL;
}

void parts_done(struct parts *ps, const char *topic, int32_t partition, unsigned gen,
                int64_t offset, int ok)
{
    struct part *p = parts_find(ps, topic, partition);

    if (!p || p->gen != gen)
        return; /* revoked (or reassigned) since: its new owner redoes the work */
    p->inflight = NULL;
    ps->buffered--;
    if (!ok)
        p->stalled = 1;
    else if (offset + 1 > p->done_next)
        p->done_next = offset + 1;
}

size_t parts_pending_commits(struct parts *ps, struct kafka_tp *tps, size_t max)
{
    size_t n = 0;

    for (size_t i = 0; i < ps->n && n < max; i++)
        if (ps->v[i].done_next > ps->v[i].committed)
            tps[n++] = (struct kafka_tp){ps->v[i].topic, ps->v[i].partition, ps->v[i].done_next};
    return n;
}

void parts_committed(struct parts *ps, const struct kafka_tp *tps, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        struct part *p = parts_find(ps, tps[i].topic, tps[i].partition);
        if (p && tps[i].offset > p->committed)
            p->committed = tps[i].offset;
    }
}

size_t parts_inflight(const struct parts *ps)
{
    size_t n = 0;

    for (size_t i = 0; i < ps->n; i++)
        n += ps->v[i].inflight != NULL;
    return n;
}

void parts_free(struct parts *ps)
{
    for (size_t i = 0; i < ps->n; i++)
        part_clear(ps, &ps->v[i]);
    free(ps->v);
    memset(ps, 0, sizeof *ps);
}
