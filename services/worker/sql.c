/* sql: every statement the worker's processing threads prepare, by name (the relay runs its
 * few on its own leader connection, see relay.c). */
#include "worker.h"

const struct pg_stmt worker_stmts[] = {
    {"blob_get", "SELECT blob_id, storage_path, size FROM blobs WHERE content_hash = $1"},
    /* One more attempt on every variant still pending (rows created on first sight);
     * ready and failed ones are not returned: nothing to do for them. */
    {"variants_claim", "INSERT INTO image_variants (content_hash, variant_type, attempts)"
                       " SELECT $1, t, 1 FROM unnest($2::text[]) t"
                       " ON CONFLICT (content_hash, variant_type) DO UPDATE"
                       " SET attempts = image_variants.attempts + 1, updated_at = now()"
                       " WHERE image_variants.status = 'pending'"
                       " RETURNING variant_type, attempts"},
    {"variants_note",
     "UPDATE image_variants SET error = $3, updated_at = now()"
     " WHERE content_hash = $1 AND variant_type = ANY($2::text[]) AND status = 'pending'"},
    {"variants_fail",
     "UPDATE image_variants SET status = 'failed', error = $3, updated_at = now()"
     " WHERE content_hash = $1 AND variant_type = ANY($2::text[]) AND status = 'pending'"},
    /* After the variant rows: holds off a purge of this blob generation until commit. */
    {"blob_lock", "SELECT blob_id FROM blobs WHERE content_hash = $1 FOR KEY SHARE"},
    {"variant_ready",
     "INSERT INTO image_variants (content_hash, variant_type, status, storage_path, mime_type,"
     " width, height, size) VALUES ($1, $2, 'ready', $3, $4, $5, $6, $7)"
     " ON CONFLICT (content_hash, variant_type) DO UPDATE SET status = 'ready',"
     " storage_path = excluded.storage_path, mime_type = excluded.mime_type,"
     " width = excluded.width, height = excluded.height, size = excluded.size, error = NULL,"
     " updated_at = now() WHERE image_variants.status <> 'ready' RETURNING 1"},
    /* Every image on the content, for its audience (owner, shares, albums). */
    {"variant_changes",
     "INSERT INTO change_log (user_id, image_id, kind)"
     " SELECT x, i.image_id, 'variant_ready' FROM images i, image_audience(i.image_id) x"
     " WHERE i.content_hash = $1"},
};
const size_t worker_stmts_count = ARRAY_LEN(worker_stmts);
