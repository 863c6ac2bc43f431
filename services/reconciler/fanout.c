/* fanout: the storage calls of one page (aborts, deletes) on a few threads with an S3 client
 * each, so a sweep moves at the store's concurrency rather than one round trip at a time. */
#include <pthread.h>
#include <stdlib.h>

#include "pool.h"
#include "rec.h"

struct rec_fanout {
    pool *workers;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    size_t left;
};

struct job {
    struct rec_fanout *f;
    struct rec *r;
    rec_task_fn fn;
    void *item;
};

static void *worker_init(void *ud)
{
    return s3_client_new(ud); /* NULL: that thread's tasks fail and are counted */
}

static void worker_fini(void *tctx)
{
    s3_client_free(tctx);
}

static void run_job(void *arg, void *tctx)
{
    struct job *j = arg;

    if (tctx)
        j->fn(j->r, tctx, j->item);
    else
        rec_failed(j->r, "storage_call", "-", "no S3 client on this thread");
    pthread_mutex_lock(&j->f->mu);
    if (--j->f->left == 0)
        pthread_cond_signal(&j->f->cv);
    pthread_mutex_unlock(&j->f->mu);
}

struct rec_fanout *rec_fanout_new(int threads, struct s3_config *s3cfg)
{
    struct rec_fanout *f = calloc(1, sizeof *f);

    if (!f)
        return NULL;
    pthread_mutex_init(&f->mu, NULL);
    pthread_cond_init(&f->cv, NULL);
    if (!(f->workers = pool_new(threads, 10000, worker_init, worker_fini, s3cfg))) {
        rec_fanout_free(f);
        return NULL;
    }
    return f;
}

void rec_fanout_free(struct rec_fanout *f)
{
    if (!f)
        return;
    pool_free(f->workers);
    pthread_cond_destroy(&f->cv);
    pthread_mutex_destroy(&f->mu);
    free(f);
}

void rec_fanout(struct rec *r, rec_task_fn fn, void *items, size_t size, size_t n)
{
    struct rec_fanout *f = r->fan;
    struct job *jobs = f && n > 1 ? calloc(n, sizeof *jobs) : NULL;
    void **args = jobs ? calloc(n, sizeof *args) : NULL;
    size_t queued = 0;

    if (!args) { /* one item, no threads, or no memory: in line */
        for (size_t i = 0; i < n; i++)
            fn(r, r->s3, (char *)items + i * size);
        free(jobs);
        return;
    }
    f->left = n;
    for (size_t i = 0; i < n; i++) {
        jobs[i] = (struct job){f, r, fn, (char *)items + i * size};
        args[i] = &jobs[i];
    }
    queued = pool_submit_batch(f->workers, run_job, args, n);
    for (size_t i = queued; i < n; i++) /* the queue was full: this thread helps */
        run_job(&jobs[i], r->s3);
    pthread_mutex_lock(&f->mu);
    while (f->left > 0)
        pthread_cond_wait(&f->cv, &f->mu);
    pthread_mutex_unlock(&f->mu);
    free(args);
    free(jobs);
}
