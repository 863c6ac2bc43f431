/* ratelimit: token buckets per key in 64 mutex-guarded shards of chained hash tables;
 * a shard that grows past its cap sheds buckets that are full again (idle keys). */
#include "ratelimit.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define RL_SHARDS 64
#define RL_SLOTS 1024
#define RL_SHARD_CAP 4096

struct bucket {
    struct bucket *next;
    double tokens, last;
    char key[];
};

struct shard {
    pthread_mutex_t mu;
    struct bucket *slot[RL_SLOTS];
    long count;
};

struct ratelimit {
    double rate, burst;
    struct shard shards[RL_SHARDS];
};

static unsigned long hash(const char *s)
{
    unsigned long h = 1469598103934665603UL; /* FNV-1a */

    while (*s)
        h = (h ^ (unsigned char)*s++) * 1099511628211UL;
    return h;
}

ratelimit *ratelimit_new(double rate, double burst)
{
    ratelimit *rl = calloc(1, sizeof *rl);

    if (!rl)
        return NULL;
    rl->rate = rate;
    rl->burst = burst < 1 ? 1 : burst;
    for (int i = 0; i < RL_SHARDS; i++)
        pthread_mutex_init(&rl->shards[i].mu, NULL);
    return rl;
}

void ratelimit_free(ratelimit *rl)
{
    if (!rl)
        return;
    for (int i = 0; i < RL_SHARDS; i++) {
        for (int j = 0; j < RL_SLOTS; j++) {
            struct bucket *b = rl->shards[i].slot[j], *next;
            for (; b; b = next)
                next = b->next, free(b);
        }
        pthread_mutex_destroy(&rl->shards[i].mu);
    }
    free(rl);
}

static double refill(const ratelimit *rl, const struct bucket *b, double now)
{
    double t = b->tokens + (now - b->last) * rl->rate;

    return t > rl->burst ? rl->burst : t;
}

/* Drops buckets that are full again: forgetting them changes nothing. */
static void shed(ratelimit *rl, struct shard *sh, double now)
{
    for (int j = 0; j < RL_SLOTS; j++) {
        struct bucket **pp = &sh->slot[j];
        while (*pp) {
            struct bucket *b = *pp;
            if (refill(rl, b, now) >= rl->burst) {
                *pp = b->next;
                free(b);
                sh->count--;
            } else {
                pp = &b->next;
            }
        }
    }
}

static struct bucket *find(ratelimit *rl, struct shard *sh, unsigned long h, const char *key,
                           double now)
{
    struct bucket **slot = &sh->slot[(h / RL_SHARDS) % RL_SLOTS], *b;
    size_t n = strlen(key);

    for (b = *slot; b; b = b->next)
        if (strcmp(b->key, key) == 0)
            return b;
    if (sh->count >= RL_SHARD_CAP)
        shed(rl, sh, now);
    if (!(b = malloc(sizeof *b + n + 1)))
        return NULL;
    memcpy(b->key, key, n + 1);
    b->tokens = rl->burst;
    b->last = now;
    b->next = *slot;
    *slot = b;
    sh->count++;
    return b;
}

int ratelimit_take(ratelimit *rl, const char *key, double now, double *retry_after)
{
    unsigned long h;
    struct shard *sh;
    struct bucket *b;
    int ok = 1;

    if (!rl || rl->rate <= 0)
        return 1;
    h = hash(key);
    sh = &rl->shards[h % RL_SHARDS];
    pthread_mutex_lock(&sh->mu);
    b = find(rl, sh, h, key, now);
    if (b) {
        b->tokens = refill(rl, b, now);
        b->last = now;
        ok = b->tokens >= 1;
        if (ok)
            b->tokens -= 1;
        else if (retry_after)
            *retry_after = (1 - b->tokens) / rl->rate;
    }
    pthread_mutex_unlock(&sh->mu);
    return ok; /* out of memory: fail open */
}

long ratelimit_size(ratelimit *rl)
{
    long n = 0;

    for (int i = 0; i < RL_SHARDS; i++) {
        pthread_mutex_lock(&rl->shards[i].mu);
        n += rl->shards[i].count;
        pthread_mutex_unlock(&rl->shards[i].mu);
    }
    return n;
}
