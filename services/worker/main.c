/* pixplane-worker: builds image variants from image.uploaded events and relays the outbox
 * to Kafka. main: arguments, configuration, start-up, the consumer loop, clean shutdown. */
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "opshttp.h"
#include "thumb.h"
#include "worker.h"

static volatile sig_atomic_t g_stop;

static void on_signal(int sig)
{
    g_stop = sig;
}

static void usage(FILE *out)
{
    fprintf(out, "usage: pixplane-worker [flags]      consume image.uploaded, build variants,\n"
                 "                                    relay the outbox\n"
                 "       pixplane-worker config-doc   print the configuration reference\n\n");
    conf_usage(worker_conf, worker_conf_count, "pixplane-worker", out);
}

static void *tctx_init(void *ud)
{
    struct worker *w = ud;
    struct worker_tctx *t = calloc(1, sizeof *t);

    if (!t || !(t->s3 = s3_client_new(&w->s3cfg)))
        fatal("startup_failed", "cannot create an S3 client");
    t->w = w;
    return t;
}

static void tctx_fini(void *p)
{
    struct worker_tctx *t = p;

    s3_client_free(t->s3);
    free(t);
}

static int check_config(const struct worker_config *c, char *err)
{
    if (c->max_buffered < c->threads) /* ranges: in the configuration table */
        err_set(err, "max-buffered must be at least threads");
    else
        return 0;
    return -1;
}

static int worker_init(struct worker *w, const char *argv0, char *err)
{
    const struct worker_config *c = &worker_cfg;
    int n;

    w->cfg = c;
    if (check_config(c, err) < 0 ||
        (n = variants_parse(c->variants, (int)c->webp_quality, (int)c->jpeg_quality, w->variants,
                            VARIANT_MAX, err)) < 0)
        return -1;
    w->nvariants = (size_t)n;
    for (size_t i = 0; i < w->nvariants; i++)
        w->variants[i].effort = (int)c->webp_effort;
    w->s3cfg = s3_config_from_store(&c->store);
    w->kopts = (struct kafka_opts){
        .bootstrap = c->kafka_bootstrap, .client_id = "pixplane-worker", .extra = c->kafka_options};
    if (thumb_init(argv0, (int)c->vips_concurrency) < 0) {
        err_set(err, "libvips did not start");
        return -1;
    }
    pthread_mutex_init(&w->mu, NULL);
    if (util_cond_init(&w->cv) != 0) {
        err_set(err, "cannot make the worker's condition variable");
        return -1;
    }
    const struct pg_connopts po = {.statement_timeout = c->store.db_statement_timeout};
    if (!(w->pg = pg_pool_new(c->store.database_url, &po, (int)c->threads + 1, worker_stmts,
                              worker_stmts_count))) {
        err_set(err, "cannot create the database pool");
        return -1;
    }
    if (!(w->dlq = kafka_producer_new(&w->kopts, 30, err)))
        return -1;
    if (c->relay && !(w->relay = relay_start(w, err)))
        return -1;
    if (!(w->jobs = pool_new((int)c->threads, (size_t)c->threads * 2, tctx_init, tctx_fini, w))) {
        err_set(err, "cannot start processing threads");
        return -1;
    }
    return 0;
}

/* Everything started is stopped; the pool is already idle unless jobs overran the deadline. */
static void worker_fini(struct worker *w)
{
    pool_free(w->jobs);
    relay_stop(w->relay);
    kafka_producer_free(w->dlq, 5);
    pg_pool_free(w->pg);
    parts_free(&w->parts);
    pthread_cond_destroy(&w->cv);
    pthread_mutex_destroy(&w->mu);
    thumb_shutdown();
}

static int run(const char *argv0)
{
    static struct worker w;
    char err[ERR_MAX] = "", threads[16];
    struct sigaction sa = {.sa_handler = on_signal};

    signal(SIGPIPE, SIG_IGN);
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    if (worker_init(&w, argv0, err) < 0)
        fatal("startup_failed", "%s", err);
    if (worker_cfg.listen[0] &&
        !(w.ops = opshttp_start(worker_cfg.listen, worker_render_metrics, NULL, &w, err)))
        fatal("startup_failed", "%s", err);
    snprintf(threads, sizeof threads, "%ld", worker_cfg.threads);
    log_info(NULL, "started", "pixplane-worker ready", "group", worker_cfg.group, "threads",
             threads, "variants", worker_cfg.variants);
    if (worker_consume(&w, &g_stop, err) < 0)
        fatal("startup_failed", "%s", err);
    if (w.running > 0) {
        /* a job overran the deadline inside libvips or a network call: its offset is not
         * committed, so it runs again elsewhere; do not wait for it */
        log_error(NULL, "stop_abandoned", "exiting with images still in progress");
        relay_stop(w.relay);
        w.relay = NULL; /* freed: the stats below must not ask it (found by TSan) */
        worker_log_stats(&w, "stopped");
        _exit(0);
    }
    worker_log_stats(&w, "stopped");
    opshttp_stop(w.ops);
    worker_fini(&w);
    return 0;
}

int main(int argc, char **argv)
{
    const struct conf_program prog = {worker_conf, worker_conf_count,     "pixplane-worker",
                                      "worker",    &worker_cfg.log_level, usage,
                                      run};

    mallopt(M_ARENA_MAX, 2); /* many threads, large short-lived buffers: keep RSS bounded */
    return conf_main(&prog, argc, argv);
}
