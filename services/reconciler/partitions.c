/* partitions: keeps change_log and outbox partitioned by day: creates the days ahead (and
 * days whose rows fell into the DEFAULT partition), drops whole days past their retention. */
#include <string.h>

#include "rec.h"

/* One day to create: (table, day, partition name) of the partitions_missing page. */
static void add_one(struct rec *r, const PGresult *plan, int i)
{
    const char *p[2] = {pg_val(plan, i, 0), pg_val(plan, i, 1)};
    const char *name = pg_val(plan, i, 2);
    char err[ERR_MAX];
    PGresult *res;

    if (r->cfg->dry_run)
        return rec_did(r, "add_partition", name, "day", p[1], NULL);
    if (!(res = rec_exec(r, "partition_add", 2, p, err)))
        return rec_failed(r, "add_partition", name, err);
    if (!PQgetisnull(res, 0, 0)) /* NULL: another add covered the day meanwhile */
        rec_did(r, "add_partition", name, "day", p[1], "moved_from_default", pg_val(res, 0, 0),
                NULL);
    PQclear(res);
}

/* One partition past retention: (table, partition, upper bound, unsent rows). */
static void drop_one(struct rec *r, const PGresult *plan, int i)
{
    const char *part = pg_val(plan, i, 1), *until = pg_val(plan, i, 2);
    const char *p[1] = {part};
    char err[ERR_MAX];
    PGresult *res;

    if (pg_val(plan, i, 3)[0] == 't')
        return rec_unrepaired(r, "outbox_unsent", part, "undelivered rows: kept past retention");
    if (r->cfg->dry_run)
        return rec_did(r, "drop_partition", part, "until", until, NULL);
    if (!(res = rec_exec(r, "partition_drop", 1, p, err)))
        return rec_failed(r, "drop_partition", part, err);
    if (!strcmp(pg_val(res, 0, 0), "dropped"))
        rec_did(r, "drop_partition", part, "until", until, "rows", pg_val(res, 0, 1), NULL);
    else
        rec_unrepaired(r, "outbox_unsent", part, "undelivered rows: kept past retention");
    PQclear(res);
}

/* Runs a plan statement and hands each row to fn. 0, or -1 with err. */
static int each_row(struct rec *r, const char *stmt, int n, const char *const *p,
                    void (*fn)(struct rec *, const PGresult *, int), char *err)
{
    PGresult *res;

    if (rec_stopping(r, err) || !(res = rec_exec(r, stmt, n, p, err)))
        return -1;
    rec_examined(r, PQntuples(res));
    for (int i = 0; i < PQntuples(res) && !*r->stop; i++)
        fn(r, res, i);
    PQclear(res);
    return 0;
}

int sweep_partitions(struct rec *r, char *err)
{
    char ahead[24], sync_keep[32], outbox_keep[32];
    const char *pa[1] = {ahead};
    const char *pd[2] = {sync_keep, outbox_keep};

    snprintf(ahead, sizeof ahead, "%ld", r->cfg->partitions_ahead);
    rec_secs(sync_keep, r->cfg->sync_retention);
    rec_secs(outbox_keep, r->cfg->outbox_retention);
    if (each_row(r, "partitions_missing", 1, pa, add_one, err) < 0)
        return -1;
    return each_row(r, "partitions_expired", 2, pd, drop_one, err);
}
