/* upkeep: the delivery thread's periodic chores: the backlog and disabled-endpoint gauges,
 * and the prune of finished deliveries and unreferenced events past the retention. */
#include <stdio.h>
#include <stdlib.h>

#include "hooks.h"
#include "log.h"

#define PRUNE_BATCH "5000"

static void gauges(struct hooks *h, pg_conn *db)
{
    char err[ERR_MAX] = "";
    PGresult *r = pg_exec(db, "backlog", 0, NULL, err);

    if (!r) {
        log_warn(NULL, "upkeep_failed", err);
        return;
    }
    metrics_set(h->m, "pixplane_hooks_pending", "", (double)pg_i64(r, 0, 0));
    metrics_set(h->m, "pixplane_hooks_pending_due", "", (double)pg_i64(r, 0, 1));
    metrics_set(h->m, "pixplane_hooks_pending_oldest_seconds", "", atof(pg_val(r, 0, 2)));
    metrics_set(h->m, "pixplane_hooks_endpoints_disabled", "", (double)pg_i64(r, 0, 3));
    PQclear(r);
}

/* One batch of one table; rows removed, or -1. */
static long prune(struct hooks *h, pg_conn *db, const char *stmt)
{
    char err[ERR_MAX] = "", keep[32];
    const char *p[] = {keep, PRUNE_BATCH};
    PGresult *r;
    long n;

    snprintf(keep, sizeof keep, "%.0f", h->cfg->retention);
    if (!(r = pg_exec(db, stmt, 2, p, err))) {
        log_warn(NULL, "prune_failed", err, "statement", stmt);
        return -1;
    }
    n = atol(PQcmdTuples(r));
    PQclear(r);
    return n;
}

void hooks_upkeep(struct hooks *h)
{
    char err[ERR_MAX] = "", nd[24], ne[24];
    pg_conn *db = pg_acquire(h->pg, 5, err);
    long d, e;

    if (!db) {
        log_warn(NULL, "upkeep_failed", err);
        return;
    }
    gauges(h, db);
    d = prune(h, db, "prune_deliveries");
    e = d < 0 ? -1 : prune(h, db, "prune_events");
    pg_release(db);
    if (d > 0 || e > 0) {
        STAT_ADD(h, pruned, (d > 0 ? d : 0) + (e > 0 ? e : 0));
        snprintf(nd, sizeof nd, "%ld", d);
        snprintf(ne, sizeof ne, "%ld", e);
        log_info(NULL, "pruned", "removed rows past the retention", "deliveries", nd, "events", ne);
    }
}
