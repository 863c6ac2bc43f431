/* retention: the delete side. Settles tombstones left by interrupted purges, hard-deletes
 * images past retention and blobs nobody references, all through common/purge and gc. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gc.h"
#include "purge.h"
#include "rec.h"

#define TS_START "-infinity"
#define UUID_START "00000000-0000-0000-0000-000000000000"

/* Deletes the objects of the given tombstones now. 0, or -1 with err (left for later). */
static int drain(struct rec *r, const char *const *paths, int n, long *objects, char *err)
{
    struct gc_stats st = {0};

    if (gc_drain(r->db, r->s3, paths, n, n, &st, err) < 0)
        return -1;
    *objects = st.objects;
    if (st.failures)
        return err_set(err, "%ld object deletes failed; the tombstones stay", st.failures), -1;
    return 0;
}

static void settle_one(struct rec *r, const char *path)
{
    char err[ERR_MAX], objects[24];
    long n = 0;

    if (!r->cfg->dry_run && drain(r, &path, 1, &n, err) < 0)
        return rec_failed(r, "settle_tombstone", path, err);
    snprintf(objects, sizeof objects, "%ld", n);
    rec_did(r, "settle_tombstone", path, r->cfg->dry_run ? NULL : "objects", objects, NULL);
}

static int tombstone_page(struct rec *r, const PGresult *page, void *ud, char *err)
{
    for (int i = 0; i < PQntuples(page); i++)
        settle_one(r, pg_val(page, i, 0));
    return 0;
}

/* A purge committed: its tombstones are settled at once. */
static void purged(struct rec *r, const char *action, const char *target,
                   const struct purge_result *res)
{
    const char *paths[PURGE_PATHS];
    char err[ERR_MAX];
    long n = 0;

    if (res->npaths && drain(r, paths, purge_paths(res, paths), &n, err) < 0)
        rec_failed(r, "settle_tombstone", res->hash, err);
    rec_did(r, action, target, "content_hash", res->hash, "blob_deleted",
            res->blob_gone ? "true" : "false", NULL);
}

static int trash_page(struct rec *r, const PGresult *page, void *ud, char *err)
{
    struct purge_result res = {.npaths = 0};
    char perr[ERR_MAX];
    int rc;

    for (int i = 0; i < PQntuples(page); i++) {
        const char *id = pg_val(page, i, 0);
        if (r->cfg->dry_run) {
            rec_did(r, "purge_image", id, NULL);
            continue;
        }
        if ((rc = purge_image(r->db, id, &res, perr)) < 0)
            rec_failed(r, "purge_image", id, perr);
        else if (rc == 1)
            purged(r, "purge_image", id, &res);
    }
    return 0;
}

/* Failed images past retention go (their owner saw why; nothing else holds them). */
static int failed_page(struct rec *r, const PGresult *page, void *ud, char *err)
{
    char perr[ERR_MAX];

    for (int i = 0; i < PQntuples(page); i++) {
        const char *p[1] = {pg_val(page, i, 0)};
        PGresult *res = r->cfg->dry_run ? NULL : rec_exec(r, "failed_drop", 1, p, perr);
        if (!r->cfg->dry_run && !res)
            rec_failed(r, "drop_failed_image", p[0], perr);
        else if (r->cfg->dry_run || atoi(pg_val(res, 0, 0)) == 1)
            rec_did(r, "drop_failed_image", p[0], NULL);
        PQclear(res);
    }
    return 0;
}

/* Dry run: would purge_blob go through? -1 db error, 0 images point at it, 1 yes. */
static int dry_unused(struct rec *r, const char *hash, char *err)
{
    const char *p[1] = {hash};
    PGresult *res = rec_exec(r, "blob_used", 1, p, err);
    int used;

    if (!res)
        return -1;
    used = pg_val(res, 0, 0)[0] == 't';
    PQclear(res);
    return !used;
}

static void unreferenced_one(struct rec *r, const char *hash)
{
    struct purge_result res = {.npaths = 0};
    char err[ERR_MAX];
    int drift = 0;
    int rc =
        r->cfg->dry_run ? dry_unused(r, hash, err) : purge_blob(r->db, hash, &res, &drift, err);

    if (rc < 0)
        return rec_failed(r, "purge_blob", hash, err);
    if (r->cfg->dry_run && rc == 1)
        return rec_did(r, "purge_blob", hash, NULL);
    if (rc == 1)
        return purged(r, "purge_blob", hash, &res);
    /* ref_count 0 while images point at the blob: the refcount sweep's job (when it ran
     * in this dry run, it already reported the fix) */
    if ((drift || r->cfg->dry_run) && r->rep.sweep[REC_REFCOUNT].state != REC_DONE)
        rec_unrepaired(r, "refcount_drift", hash, "ref_count is 0 but images point at the blob");
}

static int unreferenced_page(struct rec *r, const PGresult *page, void *ud, char *err)
{
    for (int i = 0; i < PQntuples(page); i++)
        unreferenced_one(r, pg_val(page, i, 0));
    return 0;
}

int sweep_retention(struct rec *r, char *err)
{
    char ttl[32];
    struct rec_pager tomb = {
        .stmt = "tombstones_list", .nkeys = 1, .keys = {""}, .fn = tombstone_page};
    struct rec_pager trash = {.stmt = "trash_list",
                              .nfixed = 1,
                              .fixed = {ttl},
                              .nkeys = 2,
                              .key_cols = {1, 0},
                              .keys = {TS_START, UUID_START},
                              .fn = trash_page};
    struct rec_pager failed = {.stmt = "failed_list",
                               .nfixed = 1,
                               .fixed = {ttl},
                               .nkeys = 2,
                               .key_cols = {1, 0},
                               .keys = {TS_START, UUID_START},
                               .fn = failed_page};
    struct rec_pager unref = {.stmt = "unreferenced_list",
                              .nkeys = 2,
                              .key_cols = {1, 0},
                              .keys = {TS_START, ""},
                              .fn = unreferenced_page};

    rec_secs(ttl, r->cfg->retention);
    if (rec_pages(r, &tomb, err) < 0 || rec_pages(r, &trash, err) < 0 ||
        rec_pages(r, &failed, err) < 0 || rec_pages(r, &unref, err) < 0)
        return -1;
    for (size_t i = 0; i < r->ndry_zero; i++) /* dry run: what the refcount fixes set to 0 */
        rec_did(r, "purge_blob", r->dry_zero[i], NULL);
    return 0;
}
