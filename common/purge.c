/* purge: hard delete of soft-deleted images and unreferenced blobs in one transaction each,
 * leaving tombstones for the objects; shared by the API's cleanup route and the reconciler. */
#include "purge.h"

#include <stdlib.h>
#include <string.h>

#define SQL_IMAGE_PURGE                                                                            \
    "DELETE FROM images WHERE image_id = $1 AND status = 'deleted' RETURNING content_hash"
#define SQL_BLOB_UNREF                                                                             \
    "UPDATE blobs SET ref_count = ref_count - 1, updated_at = now() WHERE content_hash = $1"       \
    " RETURNING ref_count"
/* Takes the blob row's lock; statements after it see every transaction that touched it. */
#define SQL_BLOB_LOCK "SELECT ref_count FROM blobs WHERE content_hash = $1 FOR UPDATE"
#define SQL_BLOB_USED "SELECT EXISTS (SELECT 1 FROM images WHERE content_hash = $1)"
/* Every path of the dropped blob, whether or not its tombstone was already there. */
#define SQL_BLOB_PURGE                                                                             \
    "WITH v AS (DELETE FROM image_variants WHERE content_hash = $1 RETURNING 1),"                  \
    " d AS (DELETE FROM blobs WHERE content_hash = $1 AND ref_count = 0"                           \
    " RETURNING storage_path, 'variants/' || content_hash || '/' || blob_id || '/' AS prefix),"    \
    " g AS (INSERT INTO gc_objects (storage_path, reason)"                                         \
    " SELECT storage_path, 'blob' FROM d UNION ALL SELECT prefix, 'variants' FROM d"               \
    " ON CONFLICT (storage_path) DO NOTHING)"                                                      \
    " SELECT storage_path FROM d UNION ALL SELECT prefix FROM d"

/* Runs one statement with one parameter; the result or NULL with err. */
static PGresult *query1(pg_conn *db, const char *sql, const char *arg, char *err)
{
    const char *p[1] = {arg};

    return pg_query(db, sql, 1, p, err);
}

/* Drops the blob row (if still at zero references) and its variant rows; records the
 * tombstones in out. Inside the caller's transaction. 0 or -1. */
static int drop_blob(pg_conn *db, struct purge_result *out, char *err)
{
    PGresult *r = query1(db, SQL_BLOB_PURGE, out->hash, err);

    if (!r)
        return -1;
    out->blob_gone = PQntuples(r) > 0;
    for (int i = 0; i < PQntuples(r) && out->npaths < PURGE_PATHS; i++)
        util_strlcpy(out->paths[out->npaths++], sizeof out->paths[0], pg_val(r, i, 0));
    PQclear(r);
    return 0;
}

/* Commits, with the fault points the crash tests stop at. 0 or -1. */
static int commit(pg_conn *db, char *err)
{
    FAULT_POINT("cleanup_before_commit");
    if (pg_tx_commit(db, err) < 0)
        return -1;
    FAULT_POINT("cleanup_after_commit");
    return 0;
}

int purge_image(pg_conn *db, const char *image_id, struct purge_result *out, char *err)
{
    PGresult *r = NULL;
    int refs;

    memset(out, 0, sizeof *out);
    if (pg_tx_begin(db, err) < 0 || !(r = query1(db, SQL_IMAGE_PURGE, image_id, err)))
        goto fail;
    if (PQntuples(r) == 0) {
        PQclear(r);
        pg_tx_rollback(db);
        return 0;
    }
    util_strlcpy(out->hash, sizeof out->hash, pg_val(r, 0, 0));
    PQclear(r);
    if (!(r = query1(db, SQL_BLOB_UNREF, out->hash, err)))
        goto fail;
    refs = PQntuples(r) == 1 ? atoi(pg_val(r, 0, 0)) : -1;
    PQclear(r);
    r = NULL;
    if ((refs == 0 && drop_blob(db, out, err) < 0) || commit(db, err) < 0)
        goto fail;
    return 1;
fail:
    PQclear(r);
    pg_tx_rollback(db);
    return -1;
}

/* Under the row lock: 1 if the blob is still unreferenced, 0 if not (*drift: images point
 * at it although ref_count says 0), -1 with err. */
static int still_unused(pg_conn *db, const char *hash, int *drift, char *err)
{
    PGresult *r = query1(db, SQL_BLOB_LOCK, hash, err);
    int zero, used;

    if (!r)
        return -1;
    zero = PQntuples(r) == 1 && atoi(pg_val(r, 0, 0)) == 0;
    PQclear(r);
    if (!zero)
        return 0;
    if (!(r = query1(db, SQL_BLOB_USED, hash, err)))
        return -1;
    used = pg_val(r, 0, 0)[0] == 't';
    PQclear(r);
    *drift = used;
    return !used;
}

int purge_blob(pg_conn *db, const char *hash, struct purge_result *out, int *drift, char *err)
{
    int rc;

    memset(out, 0, sizeof *out);
    *drift = 0;
    util_strlcpy(out->hash, sizeof out->hash, hash);
    if (pg_tx_begin(db, err) < 0)
        return -1;
    if ((rc = still_unused(db, hash, drift, err)) <= 0) {
        pg_tx_rollback(db);
        return rc;
    }
    if (drop_blob(db, out, err) < 0 || commit(db, err) < 0) {
        pg_tx_rollback(db);
        return -1;
    }
    return out->blob_gone;
}

int purge_paths(const struct purge_result *out, const char *paths[PURGE_PATHS])
{
    for (int i = 0; i < out->npaths; i++)
        paths[i] = out->paths[i];
    return out->npaths;
}
