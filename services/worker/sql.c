/* sql: every statement the worker's processing threads prepare, by name (the relay runs its
 * few on its own leader connection, see relay.c). */
#include "worker.h"

const struct pg_stmt worker_stmts[] = {
    /* with the version of the content's stored capture metadata (0: none yet) */
    {"blob_get",
     "SELECT blob_id, storage_path, size, coalesce((SELECT extractor FROM"
     " blob_capture c WHERE c.content_hash = $1), 0) FROM blobs WHERE content_hash = $1"},
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
    /* Capture metadata, in one transaction: the blob's row lock first (a complete of the same
     * content upserts that row, so the two serialize: see the images_taken_at trigger),
     * then in a statement of its own (a fresh snapshot: every image committed before the
     * lock) the row, the images' timeline key and the change-log fan-out (none when the
     * row holds nothing to show, e.g. an unreadable file: no device would see a change). */
    {"capture_lock", "SELECT 1 FROM blobs WHERE content_hash = $1 FOR UPDATE"},
    {"capture_store",
     "WITH c AS (INSERT INTO blob_capture (content_hash, taken_local, taken_offset, taken_at,"
     " width, height, orientation, format, color_space, make, model, lens, f_number,"
     " exposure_time, iso, focal_length, gps_lat, gps_lon, gps_alt, errors, extractor)"
     " VALUES ($1, $2, $3, $4::timestamptz, $5::int, $6::int, $7::smallint, $8, $9, $10, $11,"
     " $12, $13::float8, $14::float8, $15::int, $16::float8, $17::float8, $18::float8,"
     " $19::float8, $20::text[], $21::smallint) ON CONFLICT (content_hash) DO UPDATE SET"
     " taken_local = excluded.taken_local, taken_offset = excluded.taken_offset,"
     " taken_at = excluded.taken_at, width = excluded.width, height = excluded.height,"
     " orientation = excluded.orientation, format = excluded.format,"
     " color_space = excluded.color_space, make = excluded.make, model = excluded.model,"
     " lens = excluded.lens, f_number = excluded.f_number,"
     " exposure_time = excluded.exposure_time, iso = excluded.iso,"
     " focal_length = excluded.focal_length, gps_lat = excluded.gps_lat,"
     " gps_lon = excluded.gps_lon, gps_alt = excluded.gps_alt, errors = excluded.errors,"
     " extractor = excluded.extractor, extracted_at = now()"
     " WHERE blob_capture.extractor < excluded.extractor RETURNING taken_at,"
     " num_nonnulls(taken_local, width, height, orientation, format, color_space, make,"
     " model, lens, f_number, exposure_time, iso, focal_length, gps_lat) > 0 AS shown),"
     " u AS (UPDATE images i SET taken_at = coalesce(c.taken_at, i.file_modified_at,"
     " i.created_at) FROM c WHERE i.content_hash = $1 AND i.taken_at IS DISTINCT FROM"
     " coalesce(c.taken_at, i.file_modified_at, i.created_at) RETURNING 1),"
     " l AS (INSERT INTO change_log (user_id, image_id, kind)"
     " SELECT a.user_id, i.image_id, 'capture' FROM images i"
     " CROSS JOIN LATERAL image_audience(i.image_id) AS a(user_id)"
     " WHERE i.content_hash = $1 AND EXISTS (SELECT 1 FROM c WHERE shown) RETURNING 1)"
     " SELECT (SELECT count(*) FROM c), (SELECT count(*) FROM u), (SELECT count(*) FROM l)"},
};
const size_t worker_stmts_count = ARRAY_LEN(worker_stmts);
