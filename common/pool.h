/* pool: a fixed set of worker threads with a bounded FIFO of tasks. Each thread owns a
 * context made by init (a PostgreSQL connection, an S3 client, ...), passed to every task. */
#ifndef PIX_POOL_H
#define PIX_POOL_H

#include <pthread.h>
#include <stddef.h>
#include "util.h"

typedef struct pool pool;
typedef void *(*pool_init_fn)(void *ud);  /* runs on each worker thread at start */
typedef void (*pool_fini_fn)(void *tctx); /* runs on each worker thread at exit */
typedef void (*pool_task_fn)(void *arg, void *tctx);

pool *pool_new(int nthreads, size_t max_queue, pool_init_fn init, pool_fini_fn fini, void *ud);
/* 0, or -1 if the queue is full or the pool is shutting down. */
int pool_submit(pool *p, pool_task_fn fn, void *arg) PIX_WUR;
/* Queues args[0..n) as tasks fn(args[i]) under one lock and wakes up to n idle workers;
 * returns how many were queued (a prefix of args): the rest did not fit. */
size_t pool_submit_batch(pool *p, pool_task_fn fn, void *const *args, size_t n) PIX_WUR;
/* Tasks queued or running. */
size_t pool_pending(pool *p);
/* An adaptive (briefly spinning) mutex, for locks held a few instructions. 0 or errno. */
int pool_mutex_init(pthread_mutex_t *mu);

/* Finishes queued tasks, joins threads, frees. NULL-safe. */
void pool_free(pool *p);

#endif
