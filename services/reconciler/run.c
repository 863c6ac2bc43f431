/* run: one reconciler pass. The advisory lock (on a connection of its own) keeps passes of
 * two reconcilers from overlapping; the sweeps run in a fixed order, audits on a schedule. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "rec.h"

/* Advisory lock key: "pixrecon" as a big-endian int64. */
#define REC_LOCK_KEY "8100137837525167982"

static const struct {
    const char *name;
    int (*fn)(struct rec *r, char *err);
    int audit; /* a full pass over a table or the bucket: runs every audit-every */
} sweeps[REC_NSWEEPS] = {
    [REC_HALF_COMMITTED] = {"half_committed", sweep_half_committed, 0},
    [REC_EXPIRED_SESSIONS] = {"expired_sessions", sweep_expired_sessions, 0},
    [REC_ORPHAN_MULTIPART] = {"orphan_multipart", sweep_orphan_multipart, 0},
    [REC_REFCOUNT] = {"refcount", sweep_refcount, 1},
    [REC_RETENTION] = {"retention", sweep_retention, 0},
    [REC_ORPHAN_OBJECTS] = {"orphan_objects", sweep_orphan_objects, 1},
    [REC_STUCK] = {"stuck", sweep_stuck, 0},
    [REC_CAPTURE] = {"capture", sweep_capture, 1},
    [REC_USAGE] = {"usage", sweep_usage, 1},
    [REC_PARTITIONS] = {"partitions", sweep_partitions, 0},
};

const char *rec_sweep_name(int id)
{
    return id >= 0 && id < REC_NSWEEPS ? sweeps[id].name : "?";
}

long rec_sweeps_parse(const char *list, char *err)
{
    long set = 0;
    const char *s = list ? list : "";

    if (!*s)
        return (1L << REC_NSWEEPS) - 1;
    while (*s) {
        size_t n = strcspn(s, ",");
        int i = 0;
        while (i < REC_NSWEEPS && (strlen(sweeps[i].name) != n || strncmp(sweeps[i].name, s, n)))
            i++;
        if (i == REC_NSWEEPS)
            return err_set(err, "unknown sweep '%.*s' in --only", (int)(n > 64 ? 64 : n), s), -1;
        set |= 1L << i;
        s += n + (s[n] == ',');
    }
    return set;
}

int rec_init(struct rec *r, const struct rec_config *cfg, volatile sig_atomic_t *stop, char *err)
{
    const struct s3_config s3 = s3_config_from_store(&cfg->store);

    memset(r, 0, sizeof *r);
    r->cfg = cfg, r->stop = stop;
    r->only = rec_sweeps_parse(cfg->only, err);
    r->forced = cfg->only[0] ? r->only : 0;
    if (r->only < 0)
        return -1;
    r->s3cfg = s3;
    /* a dry run's connections refuse writes: what it must not do, the database will not
     * do; in the connection options, so every reconnect of the pool keeps it */
    const struct pg_connopts po = {.options =
                                       cfg->dry_run ? "-c default_transaction_read_only=on" : NULL,
                                   .statement_timeout = cfg->store.db_statement_timeout};
    if (!(r->pg = pg_pool_new(cfg->store.database_url, &po, 1, rec_stmts, rec_stmts_count)) ||
        !(r->s3 = s3_client_new(&r->s3cfg)) || !(r->lister = s3_client_new(&r->s3cfg)))
        return err_set(err, "out of memory"), -1;
    s3_set_page_size(r->lister, (int)cfg->s3_page_size);
    if (cfg->s3_workers > 1 && !(r->fan = rec_fanout_new((int)cfg->s3_workers, &r->s3cfg)))
        return err_set(err, "cannot start the storage threads"), -1;
    return 0;
}

void rec_fini(struct rec *r)
{
    rec_lock_drop(r);
    rec_fanout_free(r->fan);
    s3_client_free(r->s3);
    s3_client_free(r->lister);
    pg_pool_free(r->pg);
    free(r->dry_zero);
    r->s3 = r->lister = NULL, r->pg = NULL, r->dry_zero = NULL, r->fan = NULL;
}

/* The lock's own connection, with keepalives: a dead server must not leave it held. */
static PGconn *lock_connect(const char *url, char *err)
{
    char why[ERR_MAX];
    static const struct pg_connopts lock = {.application = "pixplane-reconciler",
                                            .connect_timeout = "10"};
    PGconn *c = pg_connect(url, &lock, why);

    if (!c)
        err_set(err, "lock connection: %s", why);
    return c;
}

int rec_lock_take(struct rec *r, char *err)
{
    PGresult *res;
    int got;

    if (!r->lock && !(r->lock = lock_connect(r->cfg->store.database_url, err)))
        return -1;
    res = PQexec(r->lock, "SELECT pg_try_advisory_lock(" REC_LOCK_KEY ")");
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        err_set(err, "advisory lock: %s", PQerrorMessage(r->lock));
        PQclear(res);
        rec_lock_drop(r);
        return -1;
    }
    got = PQgetvalue(res, 0, 0)[0] == 't';
    PQclear(res);
    r->lock_checked = util_now_mono();
    return got;
}

void rec_lock_drop(struct rec *r)
{
    /* a session lock goes with its session, but only once the server noticed: unlock first */
    if (r->lock && PQstatus(r->lock) == CONNECTION_OK)
        PQclear(PQexec(r->lock, "SELECT pg_advisory_unlock_all()"));
    PQfinish(r->lock);
    r->lock = NULL;
}

/* Audits run when named in --only, or when the last full pass is older than audit-every. */
static int due(struct rec *r, int id, char *err)
{
    char every[32];
    const char *p[2] = {sweeps[id].name, every};
    PGresult *res;
    int yes;

    if (!sweeps[id].audit || (r->forced & (1L << id)) || r->cfg->audit_every <= 0)
        return 1;
    rec_secs(every, r->cfg->audit_every);
    if (!(res = rec_exec(r, "audit_due", 2, p, err)))
        return -1;
    yes = pg_val(res, 0, 0)[0] == 't';
    PQclear(res);
    return yes;
}

static void audit_done(struct rec *r, int id)
{
    const char *p[1] = {sweeps[id].name};
    char err[ERR_MAX];
    PGresult *res;

    if (!sweeps[id].audit || r->cfg->dry_run)
        return;
    if (!(res = rec_exec(r, "audit_done", 1, p, err)))
        log_warn(NULL, "audit_record_failed", err, "sweep", sweeps[id].name);
    PQclear(res);
}

static void run_sweep(struct rec *r, int id)
{
    struct rec_counts *c = &r->rep.sweep[id];
    double t0 = util_now_mono();
    char err[ERR_MAX] = "";
    int rc = due(r, id, err);

    r->cur = id;
    r->more = 0;
    if (rc == 0) {
        c->state = REC_NOT_DUE;
        return;
    }
    if (rc > 0)
        rc = sweeps[id].fn(r, err);
    c->seconds = util_now_mono() - t0;
    c->state = rc < 0 ? REC_FAILED : REC_DONE;
    if (rc < 0)
        log_error(NULL, "sweep_failed", err, "sweep", sweeps[id].name);
    else if (!r->more) /* stopped at its cap: due again on the next pass */
        audit_done(r, id);
}

void rec_run(struct rec *r)
{
    double t0 = util_now_mono();
    char err[ERR_MAX];

    memset(&r->rep, 0, sizeof r->rep);
    r->rep.dry_run = r->cfg->dry_run, r->rep.locked = 1, r->rep.started = time(NULL);
    r->ndry_zero = 0;
    if (!(r->db = pg_acquire(r->pg, 10, err))) {
        log_error(NULL, "db_unavailable", err);
        for (int i = 0; i < REC_NSWEEPS; i++)
            r->rep.sweep[i].state = (r->only & (1L << i)) ? REC_FAILED : REC_SKIPPED;
        return;
    }
    for (int i = 0; i < REC_NSWEEPS && !*r->stop; i++)
        if (r->only & (1L << i))
            run_sweep(r, i);
    pg_release(r->db);
    r->db = NULL;
    r->rep.seconds = util_now_mono() - t0;
}

int rec_exit_code(const struct rec_report *rep)
{
    long actions = 0;

    for (int i = 0; i < REC_NSWEEPS; i++) {
        if (rep->sweep[i].state == REC_FAILED || rep->sweep[i].errors > 0)
            return 2;
        actions += rep->sweep[i].actions;
    }
    return actions > 0 ? 1 : 0;
}
