/* pixplane-reconciler: finds and repairs what crashes leave between PostgreSQL and object
 * storage. main: arguments, configuration, start-up, one pass or the daemon loop, cleanup. */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "opshttp.h"
#include "rec.h"

#define STANDBY_POLL 10.0 /* seconds between lock attempts of a standby, at most */

static volatile sig_atomic_t g_stop;

static void on_signal(int sig)
{
    g_stop = sig;
}

static void usage(FILE *out)
{
    fprintf(out,
            "usage: pixplane-reconciler [flags]            daemon: a pass every --interval\n"
            "       pixplane-reconciler --once [flags]     one pass; exit 0 clean, 1 repaired,\n"
            "                                              2 error (--dry-run: would repair)\n"
            "       pixplane-reconciler config-doc         print the configuration reference\n\n");
    conf_usage(rec_conf, rec_conf_count, "pixplane-reconciler", out);
#ifdef PIX_TEST_HOOKS
    fprintf(out, "\nbuilt with test hooks (PIXPLANE_FAULT fault points)\n");
#endif
}

/* Sleeps up to secs, waking early on a signal. */
static void nap(double secs)
{
    struct timespec ts = {0, 100 * 1000 * 1000};

    for (double t = 0; t < secs && !g_stop; t += 0.1)
        nanosleep(&ts, NULL);
}

static int run_once(struct rec *r)
{
    char err[ERR_MAX] = "";
    int rc = rec_lock_take(r, err);

    if (rc < 0) {
        log_error(NULL, "lock_failed", err);
        return 2;
    }
    if (rc == 0) {
        log_info(NULL, "lock_busy", "another reconciler holds the lock; nothing to do");
        memset(&r->rep, 0, sizeof r->rep);
        rec_report_print(&r->rep, !strcmp(r->cfg->report, "json"), stdout);
        return 0;
    }
    rec_run(r);
    rec_lock_drop(r);
    rec_report_print(&r->rep, !strcmp(r->cfg->report, "json"), stdout);
    return rec_exit_code(&r->rep);
}

/* One daemon step: lead (take the lock) or stand by, then a pass if leading. */
static void daemon_step(struct rec *r, rec_metrics *m, int *leader)
{
    char err[ERR_MAX] = "";
    int rc = *leader ? 1 : rec_lock_take(r, err);

    if (rc <= 0) {
        if (rc < 0)
            log_warn(NULL, "lock_failed", err);
        else if (!*leader)
            log_info(NULL, "standby", "another reconciler holds the lock; waiting");
        return nap(r->cfg->interval < STANDBY_POLL ? r->cfg->interval : STANDBY_POLL);
    }
    if (!*leader)
        log_info(NULL, "leading", "holding the reconciler lock");
    *leader = 1;
    rec_metrics_leader(m, 1);
    rec_run(r);
    rec_metrics_add(m, &r->rep);
    rec_report_log(&r->rep);
    if (rec_stopping(r, err) && !g_stop) { /* the lock connection died: stand by again */
        log_warn(NULL, "lock_lost", err);
        rec_lock_drop(r);
        *leader = 0;
        rec_metrics_leader(m, 0);
    }
    nap(r->cfg->interval);
}

static int run_daemon(struct rec *r)
{
    char err[ERR_MAX] = "";
    rec_metrics *m = rec_metrics_new();
    opshttp *h = NULL;
    int leader = 0;

    if (!m || (r->cfg->listen[0] && !(h = opshttp_start(r->cfg->listen, rec_metrics_render,
                                                        rec_metrics_ready, m, err)))) {
        log_error(NULL, "startup_failed", err[0] ? err : "out of memory");
        rec_metrics_free(m);
        return 2;
    }
    log_info(NULL, "started", "pixplane-reconciler daemon", "listen", r->cfg->listen);
    while (!g_stop)
        daemon_step(r, m, &leader);
    log_info(NULL, "stopped", "pixplane-reconciler stopped");
    opshttp_stop(h);
    rec_metrics_free(m);
    return 0;
}

static int run(void)
{
    static struct rec r;
    struct sigaction sa = {.sa_handler = on_signal};
    char err[ERR_MAX] = "";
    int rc;

    signal(SIGPIPE, SIG_IGN);
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    if (rec_config_check(&rec_cfg, err) < 0 || rec_init(&r, &rec_cfg, &g_stop, err) < 0) {
        log_error(NULL, "startup_failed", err);
        rec_fini(&r);
        return 2;
    }
    rc = rec_cfg.once ? run_once(&r) : run_daemon(&r);
    rec_fini(&r);
    return rc;
}

int main(int argc, char **argv)
{
    const char *cmd = argc > 1 && argv[1][0] != '-' ? argv[1] : "run";
    int first = argc > 1 && argv[1][0] != '-' ? 2 : 1;
    char err[ERR_MAX] = "";
    int rc =
        conf_load(rec_conf, rec_conf_count, argc - first + 1, argv + first - 1, NULL, NULL, err);

    if (rc == 1) {
        usage(stdout);
        conf_free(rec_conf, rec_conf_count);
        return 0;
    }
    if (rc < 0) {
        fprintf(stderr, "pixplane-reconciler: %s (see --help)\n", err);
        conf_free(rec_conf, rec_conf_count);
        return 2;
    }
    log_init("reconciler", rec_cfg.log_level);
    if (strcmp(cmd, "run") == 0)
        rc = run();
    else if (strcmp(cmd, "config-doc") == 0)
        conf_markdown(rec_conf, rec_conf_count, "pixplane-reconciler", stdout), rc = 0;
    else
        usage(stderr), rc = 2;
    conf_free(rec_conf, rec_conf_count);
    return rc;
}
