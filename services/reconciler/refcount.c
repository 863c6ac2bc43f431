/* refcount: the audit of blobs.ref_count against the image rows pointing at each blob; a fix
 * recounts under the blob row's lock and never purges (a blob at zero is retention's). */
#include <stdlib.h>
#include <string.h>

#include "rec.h"

/* Recomputes one blob's count under its row lock. 1 fixed (from/to set), 0 nothing to fix
 * (purged or already right), -1 with err. */
static int fix_one(struct rec *r, const char *hash, char from[16], char to[16], char *err)
{
    const char *p[1] = {hash};
    PGresult *res = NULL;
    int fixed = 0;

    if (pg_tx_begin(r->db, err) < 0 || !(res = rec_exec(r, "blob_lock", 1, p, err)))
        goto fail;
    if (PQntuples(res) == 1) {
        util_strlcpy(from, 16, pg_val(res, 0, 0));
        PQclear(res);
        if (!(res = rec_exec(r, "refcount_fix", 1, p, err)))
            goto fail;
        if ((fixed = PQntuples(res) == 1))
            util_strlcpy(to, 16, pg_val(res, 0, 0));
    }
    PQclear(res);
    res = NULL;
    if (pg_tx_commit(r->db, err) < 0)
        goto fail;
    return fixed;
fail:
    PQclear(res);
    pg_tx_rollback(r->db);
    return -1;
}

static void check_one(struct rec *r, const PGresult *page, int i)
{
    const char *hash = pg_val(page, i, 0);
    char from[16], to[16], err[ERR_MAX];
    int rc;

    if (!strcmp(pg_val(page, i, 1), pg_val(page, i, 2)))
        return;
    if (r->cfg->dry_run) {
        if (!strcmp(pg_val(page, i, 2), "0"))
            rec_dry_zero_add(r, hash);
        return rec_did(r, "fix_refcount", hash, "from", pg_val(page, i, 1), "to",
                       pg_val(page, i, 2), NULL);
    }
    if ((rc = fix_one(r, hash, from, to, err)) < 0)
        return rec_failed(r, "fix_refcount", hash, err);
    if (rc == 1)
        rec_did(r, "fix_refcount", hash, "from", from, "to", to, NULL);
}

static int refcount_page(struct rec *r, const PGresult *page, void *ud, char *err)
{
    for (int i = 0; i < PQntuples(page); i++)
        check_one(r, page, i);
    return 0;
}

int sweep_refcount(struct rec *r, char *err)
{
    struct rec_pager pg = {
        .stmt = "refcount_batch", .nkeys = 1, .key_cols = {0}, .keys = {""}, .fn = refcount_page};

    return rec_pages(r, &pg, err);
}
