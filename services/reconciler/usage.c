/* usage: the audit of users' quota counters (user_usage) against their images and open
 * sessions; a fix recounts under the usage row's lock, as the refcount audit does. */
#include <string.h>

#include "rec.h"

#define USAGE_TEXT 160 /* six counters, comma-separated */

/* Runs one statement of one row; its first value into out ("" if none). 0, or -1 with err. */
static int one_value(struct rec *r, const char *stmt, const char *user, char *out, char *err)
{
    const char *p[1] = {user};
    PGresult *res = rec_exec(r, stmt, 1, p, err);

    if (!res)
        return -1;
    util_strlcpy(out, USAGE_TEXT, PQntuples(res) == 1 ? pg_val(res, 0, 0) : "");
    PQclear(res);
    return 0;
}

/* Recounts one user's counters under their row lock. 1 fixed (from/to set), 0 already right,
 * -1 with err. */
static int fix_one(struct rec *r, const char *user, char *from, char *to, char *err)
{
    char ignored[USAGE_TEXT];

    if (pg_tx_begin(r->db, err) < 0 || one_value(r, "usage_lock", user, ignored, err) < 0 ||
        one_value(r, "usage_lock_row", user, from, err) < 0 ||
        one_value(r, "usage_fix", user, to, err) < 0)
        goto fail;
    if (pg_tx_commit(r->db, err) < 0)
        goto fail;
    return to[0] != 0;
fail:
    pg_tx_rollback(r->db);
    return -1;
}

static void check_one(struct rec *r, const PGresult *page, int i)
{
    const char *user = pg_val(page, i, 0);
    char from[USAGE_TEXT], to[USAGE_TEXT], err[ERR_MAX];
    int rc;

    if (!strcmp(pg_val(page, i, 1), pg_val(page, i, 2)))
        return;
    if (r->cfg->dry_run)
        return rec_did(r, "fix_usage", user, "from", pg_val(page, i, 1), "to", pg_val(page, i, 2),
                       NULL);
    if ((rc = fix_one(r, user, from, to, err)) < 0)
        return rec_failed(r, "fix_usage", user, err);
    if (rc == 1)
        rec_did(r, "fix_usage", user, "from", from, "to", to, NULL);
}

static int usage_page(struct rec *r, const PGresult *page, void *ud, char *err)
{
    (void)ud, (void)err;
    for (int i = 0; i < PQntuples(page); i++)
        check_one(r, page, i);
    return 0;
}

int sweep_usage(struct rec *r, char *err)
{
    struct rec_pager pg = {
        .stmt = "usage_batch", .nkeys = 1, .key_cols = {0}, .keys = {""}, .fn = usage_page};

    return rec_pages(r, &pg, err);
}
