/* pixplane-hooks: delivers integration events (Kafka topic pixplane-events) to the webhook
 * endpoints integrators register. main: arguments, configuration, start-up, the consumer
 * loop, clean shutdown. */
#include <curl/curl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "hooks.h"
#include "log.h"

static volatile sig_atomic_t g_stop;

static void on_signal(int sig)
{
    g_stop = sig;
}

static void usage(FILE *out)
{
    fprintf(out, "usage: pixplane-hooks [flags]      consume integration events, deliver\n"
                 "                                   them to webhook endpoints\n"
                 "       pixplane-hooks config-doc   print the configuration reference\n\n");
    conf_usage(hooks_conf, hooks_conf_count, "pixplane-hooks", out);
}

static int hooks_init(struct hooks *h, char *err)
{
    const struct hooks_config *c = &hooks_cfg;
    const struct pg_connopts po = {.statement_timeout = c->db_statement_timeout};

    h->cfg = c;
    if (c->retry_backoff_max < c->retry_backoff) {
        err_set(err, "retry-backoff-max must be at least retry-backoff");
        return -1;
    }
    if (!(h->ssrf = ssrf_policy_new(c->allow_addrs, err)) || hooks_metrics_init(h, err) < 0)
        return -1;
    h->kopts = (struct kafka_opts){
        .bootstrap = c->kafka_bootstrap, .client_id = "pixplane-hooks", .extra = c->kafka_options};
    /* the consumer, the delivery loop, its upkeep (same thread) and a spare */
    if (!(h->pg = pg_pool_new(c->database_url, &po, 3, hooks_stmts, hooks_stmts_count))) {
        err_set(err, "cannot create the database pool");
        return -1;
    }
    if (!(h->deliver = deliver_start(h, err)))
        return -1;
    return 0;
}

static void hooks_fini(struct hooks *h)
{
    deliver_stop(h->deliver);
    pg_pool_free(h->pg);
    metrics_free(h->m);
    ssrf_policy_free(h->ssrf);
}

static int run(const char *argv0)
{
    static struct hooks h;
    char err[ERR_MAX] = "", conc[16];
    struct sigaction sa = {.sa_handler = on_signal};

    signal(SIGPIPE, SIG_IGN);
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        fatal("startup_failed", "libcurl did not start");
    if (hooks_init(&h, err) < 0)
        fatal("startup_failed", "%s", err);
    if (hooks_cfg.listen[0] &&
        !(h.ops = opshttp_start(hooks_cfg.listen, hooks_render_metrics, NULL, &h, err)))
        fatal("startup_failed", "%s", err);
    snprintf(conc, sizeof conc, "%ld", hooks_cfg.concurrency);
    log_info(NULL, "started", "pixplane-hooks ready", "group", hooks_cfg.group, "topic",
             hooks_cfg.events_topic, "concurrency", conc, "allow_addrs", hooks_cfg.allow_addrs);
    if (hooks_ingest(&h, &g_stop, err) < 0)
        fatal("startup_failed", "%s", err);
    deliver_stop(h.deliver); /* deliveries in flight finish (bounded) */
    h.deliver = NULL;
    hooks_log_stats(&h, "stopped");
    opshttp_stop(h.ops);
    hooks_fini(&h);
    curl_global_cleanup();
    return 0;
}

int main(int argc, char **argv)
{
    const struct conf_program prog = {
        hooks_conf, hooks_conf_count, "pixplane-hooks", "hooks", &hooks_cfg.log_level, usage, run};

    return conf_main(&prog, argc, argv);
}
