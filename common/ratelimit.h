/* ratelimit: per-key token buckets (a rate per second and a burst) kept in memory, sharded
 * by key so threads rarely contend; buckets that refilled completely are forgotten. */
#ifndef PIX_RATELIMIT_H
#define PIX_RATELIMIT_H

#include "util.h"

typedef struct ratelimit ratelimit;

/* rate <= 0 disables limiting (every take succeeds). */
ratelimit *ratelimit_new(double rate, double burst);
void ratelimit_free(ratelimit *rl); /* NULL-safe */
/* 1: allowed, a token taken. 0: refused; *retry_after = seconds until a token is due. */
int ratelimit_take(ratelimit *rl, const char *key, double now, double *retry_after);
/* Buckets currently remembered (for tests and metrics). */
long ratelimit_size(ratelimit *rl);

#endif
