/* metrics: counters over the daemon's passes, rendered as Prometheus text for /metrics (the
 * listener is common/opshttp); ready while the last pass had no sweep fail. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "log.h"
#include "rec.h"

struct rec_metrics {
    pthread_mutex_t mu;
    struct rec_counts total[REC_NSWEEPS];
    long sweep_failures[REC_NSWEEPS];
    long passes, failed_passes;
    long last_actions, last_unrepaired;
    double last_seconds;
    time_t last_end;
    int leader, last_failed;
};

rec_metrics *rec_metrics_new(void)
{
    rec_metrics *m = calloc(1, sizeof *m);

    if (m)
        pthread_mutex_init(&m->mu, NULL);
    return m;
}

void rec_metrics_free(rec_metrics *m)
{
    if (!m)
        return;
    pthread_mutex_destroy(&m->mu);
    free(m);
}

void rec_metrics_add(rec_metrics *m, const struct rec_report *rep)
{
    int failed = 0;

    pthread_mutex_lock(&m->mu);
    m->last_actions = m->last_unrepaired = 0;
    for (int i = 0; i < REC_NSWEEPS; i++) {
        const struct rec_counts *c = &rep->sweep[i];
        m->total[i].examined += c->examined, m->total[i].actions += c->actions;
        m->total[i].errors += c->errors, m->total[i].seconds += c->seconds;
        m->last_actions += c->actions, m->last_unrepaired += c->unrepaired;
        m->sweep_failures[i] += c->state == REC_FAILED;
        failed |= c->state == REC_FAILED;
    }
    m->passes++, m->failed_passes += failed, m->last_failed = failed;
    m->last_seconds = rep->seconds, m->last_end = time(NULL);
    pthread_mutex_unlock(&m->mu);
}

void rec_metrics_leader(rec_metrics *m, int leader)
{
    pthread_mutex_lock(&m->mu);
    m->leader = leader;
    pthread_mutex_unlock(&m->mu);
}

/* One counter family with a value per sweep. */
static int family(buf *b, const rec_metrics *m, const char *name, const char *help, int what)
{
    int rc = buf_printf(b, "# HELP %s %s\n# TYPE %s counter\n", name, help, name);

    for (int i = 0; i < REC_NSWEEPS && rc == 0; i++) {
        const struct rec_counts *c = &m->total[i];
        double v = what == 0   ? (double)c->examined
                   : what == 1 ? (double)c->actions
                   : what == 2 ? (double)c->errors
                   : what == 3 ? (double)m->sweep_failures[i]
                               : c->seconds;
        rc = buf_printf(b, "%s{sweep=\"%s\"} %.6g\n", name, rec_sweep_name(i), v);
    }
    return rc;
}

int rec_metrics_render(buf *b, void *ud)
{
    rec_metrics *m = ud;
    int rc;

    pthread_mutex_lock(&m->mu);
    rc = family(b, m, "pixplane_reconciler_examined_total", "candidates looked at", 0);
    rc = rc ? rc : family(b, m, "pixplane_reconciler_actions_total", "repairs made", 1);
    rc = rc ? rc : family(b, m, "pixplane_reconciler_errors_total", "repairs that failed", 2);
    rc = rc ? rc : family(b, m, "pixplane_reconciler_sweep_failures_total", "sweeps stopped", 3);
    rc = rc ? rc : family(b, m, "pixplane_reconciler_sweep_seconds_total", "time in sweeps", 4);
    rc = rc ? rc
            : buf_printf(b,
                         "# TYPE pixplane_reconciler_passes_total counter\n"
                         "pixplane_reconciler_passes_total %ld\n"
                         "# TYPE pixplane_reconciler_failed_passes_total counter\n"
                         "pixplane_reconciler_failed_passes_total %ld\n"
                         "# TYPE pixplane_reconciler_last_pass_actions gauge\n"
                         "pixplane_reconciler_last_pass_actions %ld\n"
                         "# TYPE pixplane_reconciler_last_pass_unrepaired gauge\n"
                         "pixplane_reconciler_last_pass_unrepaired %ld\n"
                         "# TYPE pixplane_reconciler_last_pass_seconds gauge\n"
                         "pixplane_reconciler_last_pass_seconds %.3f\n"
                         "# TYPE pixplane_reconciler_last_pass_end_timestamp_seconds gauge\n"
                         "pixplane_reconciler_last_pass_end_timestamp_seconds %lld\n"
                         "# TYPE pixplane_reconciler_leader gauge\n"
                         "pixplane_reconciler_leader %d\n",
                         m->passes, m->failed_passes, m->last_actions, m->last_unrepaired,
                         m->last_seconds, (long long)m->last_end, m->leader);
    pthread_mutex_unlock(&m->mu);
    return rc;
}

int rec_metrics_ready(void *ud)
{
    rec_metrics *m = ud;
    int ok;

    pthread_mutex_lock(&m->mu);
    ok = !m->last_failed;
    pthread_mutex_unlock(&m->mu);
    return ok;
}
