/* pool: fixed worker threads pulling tasks from a bounded FIFO ring under one mutex; each
 * thread builds its own context with init and tears it down with fini. */
#include "pool.h"

#include <pthread.h>
#include <signal.h>
#include <stdlib.h>

#define POOL_DEFAULT_QUEUE 1024 /* used when max_queue is 0 */

struct task {
    pool_task_fn fn;
    void *arg;
};

struct pool {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct task *ring;
    size_t cap, head, count;
    int running, idle, stopping, nthreads;
    pthread_t *threads;
    pool_init_fn init;
    pool_fini_fn fini;
    void *ud;
};

/* Adaptive (briefly spinning) mutex: the lock is held for a few instructions only. */
int pool_mutex_init(pthread_mutex_t *mu)
{
    pthread_mutexattr_t a;
    int rc;

    pthread_mutexattr_init(&a);
    pthread_mutexattr_settype(&a, PTHREAD_MUTEX_ADAPTIVE_NP);
    rc = pthread_mutex_init(mu, &a);
    pthread_mutexattr_destroy(&a);
    return rc;
}

static void *pool_main(void *arg)
{
    pool *p = arg;
    void *tctx = p->init ? p->init(p->ud) : NULL;
    struct task t;

    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (!p->count && !p->stopping) {
            p->idle++;
            pthread_cond_wait(&p->cv, &p->mu);
            p->idle--;
        }
        if (!p->count)
            break; /* stopping and drained */
        t = p->ring[p->head];
        p->head = (p->head + 1) % p->cap;
        p->count--;
        p->running++;
        pthread_mutex_unlock(&p->mu);
        t.fn(t.arg, tctx);
        pthread_mutex_lock(&p->mu);
        p->running--;
    }
    pthread_mutex_unlock(&p->mu);
    if (p->fini)
        p->fini(tctx);
    return NULL;
}

/* Stops and joins the first n threads, then frees p. */
static void pool_destroy(pool *p, int n)
{
    pthread_mutex_lock(&p->mu);
    p->stopping = 1;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < n; i++)
        pthread_join(p->threads[i], NULL);
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
    free(p->threads);
    free(p->ring);
    free(p);
}

/* Workers start with every signal blocked so signals reach the loop thread only. */
static int pool_spawn(pool *p)
{
    sigset_t all, old;
    int i;

    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    for (i = 0; i < p->nthreads; i++)
        if (pthread_create(&p->threads[i], NULL, pool_main, p) != 0)
            break;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return i;
}

pool *pool_new(int nthreads, size_t max_queue, pool_init_fn init, pool_fini_fn fini, void *ud)
{
    pool *p;
    int started;

    if (nthreads < 1 || !(p = calloc(1, sizeof *p)))
        return NULL;
    p->cap = max_queue ? max_queue : POOL_DEFAULT_QUEUE;
    p->nthreads = nthreads;
    p->init = init;
    p->fini = fini;
    p->ud = ud;
    p->ring = calloc(p->cap, sizeof *p->ring);
    p->threads = calloc((size_t)nthreads, sizeof *p->threads);
    if (!p->ring || !p->threads || pool_mutex_init(&p->mu) != 0)
        goto fail;
    if (pthread_cond_init(&p->cv, NULL) != 0) {
        pthread_mutex_destroy(&p->mu);
        goto fail;
    }
    started = pool_spawn(p);
    if (started < nthreads) {
        pool_destroy(p, started);
        return NULL;
    }
    return p;
fail:
    free(p->ring);
    free(p->threads);
    free(p);
    return NULL;
}

int pool_submit(pool *p, pool_task_fn fn, void *arg)
{
    int rc = -1, wake = 0;

    pthread_mutex_lock(&p->mu);
    if (!p->stopping && p->count < p->cap) {
        p->ring[(p->head + p->count) % p->cap] = (struct task){fn, arg};
        p->count++;
        wake = p->idle > 0;
        rc = 0;
    }
    pthread_mutex_unlock(&p->mu);
    if (wake) /* after unlocking, so the woken worker does not block on mu at once */
        pthread_cond_signal(&p->cv);
    return rc;
}

size_t pool_submit_batch(pool *p, pool_task_fn fn, void *const *args, size_t n)
{
    size_t k = 0;
    int wake;

    pthread_mutex_lock(&p->mu);
    for (; !p->stopping && k < n && p->count < p->cap; k++, p->count++)
        p->ring[(p->head + p->count) % p->cap] = (struct task){fn, args[k]};
    wake = (size_t)p->idle < k ? p->idle : (int)k;
    pthread_mutex_unlock(&p->mu);
    while (wake-- > 0)
        pthread_cond_signal(&p->cv);
    return k;
}

size_t pool_pending(pool *p)
{
    size_t n;

    pthread_mutex_lock(&p->mu);
    n = p->count + (size_t)p->running;
    pthread_mutex_unlock(&p->mu);
    return n;
}

void pool_free(pool *p)
{
    if (p)
        pool_destroy(p, p->nthreads);
}
