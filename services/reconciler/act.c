/* act: how a sweep reports what it does: one JSON line and one count per repair (or, in a
 * dry run, per repair it would make), failures and unrepairable problems, stop checks. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "rec.h"

#define DETAILS 3
#define LOCK_CHECK_EVERY 5.0 /* seconds between checks that the lock connection lives */

void rec_did(struct rec *r, const char *action, const char *target, ...)
{
    const char *kv[2 * DETAILS] = {0};
    va_list ap;

    va_start(ap, target);
    for (int i = 0; i < 2 * DETAILS; i += 2) {
        if (!(kv[i] = va_arg(ap, const char *)))
            break;
        kv[i + 1] = va_arg(ap, const char *);
    }
    va_end(ap);
    __atomic_add_fetch(&r->rep.sweep[r->cur].actions, 1, __ATOMIC_RELAXED);
    log_info(NULL, "reconcile_action", r->cfg->dry_run ? "would repair" : "repaired", "sweep",
             rec_sweep_name(r->cur), "action", action, "target", target, "dry_run",
             r->cfg->dry_run ? "true" : "false", kv[0], kv[1], kv[2], kv[3], kv[4], kv[5]);
}

void rec_failed(struct rec *r, const char *action, const char *target, const char *err)
{
    __atomic_add_fetch(&r->rep.sweep[r->cur].errors, 1, __ATOMIC_RELAXED);
    log_warn(NULL, "reconcile_failed", err, "sweep", rec_sweep_name(r->cur), "action", action,
             "target", target);
}

void rec_unrepaired(struct rec *r, const char *what, const char *target, const char *why)
{
    __atomic_add_fetch(&r->rep.sweep[r->cur].unrepaired, 1, __ATOMIC_RELAXED);
    log_warn(NULL, "reconcile_unrepaired", why, "sweep", rec_sweep_name(r->cur), "problem", what,
             "target", target);
}

void rec_examined(struct rec *r, long n)
{
    __atomic_add_fetch(&r->rep.sweep[r->cur].examined, n, __ATOMIC_RELAXED);
}

/* 1 while the lock connection answers (checked at most every LOCK_CHECK_EVERY seconds). */
static int lock_alive(struct rec *r)
{
    double now = util_now_mono();
    PGresult *res;
    int ok;

    if (!r->lock || PQstatus(r->lock) != CONNECTION_OK)
        return 0;
    if (now - r->lock_checked < LOCK_CHECK_EVERY)
        return 1;
    res = PQexec(r->lock, "SELECT 1");
    ok = PQresultStatus(res) == PGRES_TUPLES_OK;
    PQclear(res);
    r->lock_checked = now;
    return ok;
}

int rec_stopping(struct rec *r, char *err)
{
    if (*r->stop)
        return err_set(err, "stopping on a signal"), 1;
    if (!lock_alive(r))
        return err_set(err, "lost the lock connection: another reconciler may run now"), 1;
    return 0;
}

PGresult *rec_exec(struct rec *r, const char *stmt, int n, const char *const *p, char *err)
{
    return pg_exec(r->db, stmt, n, p, err);
}

int rec_array_add(buf *b, const char *s)
{
    int rc = buf_puts(b, b->len > 1 ? ",\"" : "\"");

    for (; *s && rc == 0; s++)
        rc = (*s == '"' || *s == '\\') ? buf_printf(b, "\\%c", *s) : buf_append(b, s, 1);
    return rc ? rc : buf_puts(b, "\"");
}

void rec_dry_zero_add(struct rec *r, const char *hash)
{
    if (r->ndry_zero == r->cap_dry_zero) {
        size_t cap = r->cap_dry_zero ? r->cap_dry_zero * 2 : 64;
        char(*v)[65] = realloc(r->dry_zero, cap * sizeof *v);
        if (!v) {
            log_warn(NULL, "dry_run_incomplete", "out of memory: a blob purge goes unreported",
                     "content_hash", hash);
            return;
        }
        r->dry_zero = v, r->cap_dry_zero = cap;
    }
    util_strlcpy(r->dry_zero[r->ndry_zero++], 65, hash);
}

void rec_secs(char out[32], double secs)
{
    snprintf(out, 32, "%.3f", secs);
}

int rec_pages(struct rec *r, struct rec_pager *pg, char *err)
{
    const char *p[8];
    char lim[16];
    PGresult *res;
    int np = 0, n;

    snprintf(lim, sizeof lim, "%ld", r->cfg->batch);
    for (int i = 0; i < pg->nfixed; i++)
        p[np++] = pg->fixed[i];
    for (int i = 0; i < pg->nkeys; i++)
        p[np++] = pg->keys[i];
    p[np++] = lim;
    do {
        if (rec_stopping(r, err) || !(res = rec_exec(r, pg->stmt, np, p, err)))
            return -1;
        n = PQntuples(res);
        rec_examined(r, n);
        for (int i = 0; i < pg->nkeys && n > 0; i++)
            util_strlcpy(pg->keys[i], sizeof pg->keys[i], pg_val(res, n - 1, pg->key_cols[i]));
        if (n > 0 && pg->fn(r, res, pg->ud, err) < 0) {
            PQclear(res);
            return -1;
        }
        PQclear(res);
    } while (n == r->cfg->batch);
    return 0;
}
