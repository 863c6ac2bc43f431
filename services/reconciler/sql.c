/* sql: every statement the reconciler prepares, by name, one group per sweep. Each list
 * query is keyset-paginated over a (partial) index so a sweep costs what its work costs. */
#include "finalize.h"
#include "rec.h"

#define LIVE "('uploading', 'completing', 'verifying')"

/* capture: content in use, older than $2 seconds, without capture metadata and without an
 * unsent event, with the oldest of its active images; at most $1. */
#define CAPTURE_MISSING                                                                            \
    "SELECT m.content_hash, m.storage_path, i.image_id, i.owner_id, i.size, i.mime_type,"          \
    " i.created_at FROM (SELECT b.content_hash, b.storage_path FROM blobs b"                       \
    " WHERE b.ref_count > 0 AND b.created_at < now() - make_interval(secs => $2)"                  \
    " AND NOT EXISTS (SELECT 1 FROM blob_capture c WHERE c.content_hash = b.content_hash)"         \
    " AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.sent_at IS NULL"                              \
    " AND o.msg_key = b.content_hash) AND EXISTS (SELECT 1 FROM images a"                          \
    " WHERE a.content_hash = b.content_hash AND a.status = 'active')"                              \
    " ORDER BY b.content_hash LIMIT $1) m CROSS JOIN LATERAL (SELECT * FROM images i"              \
    " WHERE i.content_hash = m.content_hash AND i.status = 'active'"                               \
    " ORDER BY i.created_at, i.image_id LIMIT 1) i"

const struct pg_stmt rec_stmts[] = {
    FINALIZE_STMTS,
    POP_STMTS,
    /* half_committed: leases that ran out, then the take-over */
    {"leased_list",
     "SELECT " UPLOAD_ROW_COLS ", lease_until::text AS lease_key FROM upload_sessions"
     " WHERE status IN ('completing', 'verifying')"
     " AND lease_until < now() - make_interval(secs => $1)"
     " AND (lease_until, upload_session_id) > ($2::timestamptz, $3::uuid)"
     " ORDER BY lease_until, upload_session_id LIMIT $4"},
    {"lease_take",
     "UPDATE upload_sessions SET lease_token = $2,"
     " lease_until = now() + make_interval(secs => $3), updated_at = now()"
     " WHERE upload_session_id = $1 AND status IN ('completing', 'verifying')"
     " AND lease_until < now() - make_interval(secs => $4) RETURNING " UPLOAD_ROW_COLS},
    {"lease_expire", "UPDATE upload_sessions SET status = 'expired', lease_token = NULL,"
                     " lease_until = NULL, updated_at = now()"
                     " WHERE upload_session_id = $1 AND lease_token = $2 RETURNING 1"},
    /* expired_sessions */
    {"expired_list", "SELECT upload_session_id, coalesce(s3_upload_id, ''), object_key, "
                     "expires_at::text AS expires_key,"
                     " EXISTS (SELECT 1 FROM blobs b WHERE b.storage_path = object_key)"
                     " FROM upload_sessions WHERE status = 'uploading'"
                     " AND expires_at < now() - make_interval(secs => $1)"
                     " AND (expires_at, upload_session_id) > ($2::timestamptz, $3::uuid)"
                     " ORDER BY expires_at, upload_session_id LIMIT $4"},
    {"expired_mark",
     "UPDATE upload_sessions SET status = 'expired', updated_at = now()"
     " WHERE upload_session_id = ANY($1::uuid[]) AND status = 'uploading'"
     " AND expires_at < now() - make_interval(secs => $2) RETURNING upload_session_id"},
    /* orphan_multipart: which of the listed uploads belong to a live session (1-based) */
    {"multipart_live",
     "SELECT k.i FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS k(key, uid, i)"
     " WHERE EXISTS (SELECT 1 FROM upload_sessions s WHERE s.object_key = k.key"
     " AND s.s3_upload_id = k.uid AND s.status IN " LIVE ")"},
    /* orphan_objects: which of the listed keys nothing refers to (1-based) */
    {"blobs_orphans", "SELECT k.i FROM unnest($1::text[]) WITH ORDINALITY AS k(key, i)"
                      " WHERE NOT EXISTS (SELECT 1 FROM blobs b WHERE b.storage_path = k.key)"
                      " AND NOT EXISTS (SELECT 1 FROM upload_sessions s WHERE s.object_key = k.key"
                      " AND s.status IN " LIVE ")"
                      " AND NOT EXISTS (SELECT 1 FROM gc_objects g WHERE g.storage_path = k.key)"},
    /* one-PUT staging objects (common/finalize.h) of sessions no longer open */
    {"staging_orphans",
     "SELECT k.i FROM unnest($1::text[]) WITH ORDINALITY AS k(key, i)"
     " WHERE NOT EXISTS (SELECT 1 FROM upload_sessions s"
     " WHERE s.object_key = 'blobs/' || split_part(k.key, '/', 2)"
     " AND s.status IN " LIVE ")"
     " AND NOT EXISTS (SELECT 1 FROM gc_objects g WHERE g.storage_path = k.key)"},
    {"variants_orphans",
     "SELECT k.i FROM unnest($1::text[]) WITH ORDINALITY AS k(key, i)"
     " WHERE NOT EXISTS (SELECT 1 FROM blobs b WHERE b.content_hash = split_part(k.key, '/', 2)"
     " AND b.blob_id::text = split_part(k.key, '/', 3))"
     " AND NOT EXISTS (SELECT 1 FROM gc_objects g WHERE g.storage_path = k.key"
     " OR g.storage_path = 'variants/' || split_part(k.key, '/', 2) || '/'"
     " || split_part(k.key, '/', 3) || '/')"},
    /* refcount */
    {"refcount_batch", "SELECT b.content_hash, b.ref_count,"
                       " (SELECT count(*) FROM images i WHERE i.content_hash = b.content_hash)"
                       " FROM blobs b WHERE b.content_hash > $1 ORDER BY b.content_hash LIMIT $2"},
    {"blob_lock", "SELECT ref_count FROM blobs WHERE content_hash = $1 FOR UPDATE"},
    /* after blob_lock, in a statement of its own: it sees every writer of the row */
    {"refcount_fix", "UPDATE blobs b SET ref_count = c.n, updated_at = now()"
                     " FROM (SELECT count(*)::int AS n FROM images WHERE content_hash = $1) c"
                     " WHERE b.content_hash = $1 AND b.ref_count <> c.n RETURNING b.ref_count"},
    /* usage (migrations/013_quota.sql): each user's counters, stored then actual */
    {"usage_batch",
     "SELECT x.user_id, concat_ws(',', coalesce(u.bytes_used, 0), coalesce(u.images, 0),"
     " coalesce(u.trash_bytes, 0), coalesce(u.trash_images, 0), coalesce(u.reserved_bytes, 0),"
     " coalesce(u.reserved_images, 0)), concat_ws(',', a.bytes_used, a.images, a.trash_bytes,"
     " a.trash_images, a.reserved_bytes, a.reserved_images)"
     " FROM users x LEFT JOIN user_usage u ON u.user_id = x.user_id,"
     " quota_actual(x.user_id) a WHERE x.user_id > $1 ORDER BY x.user_id LIMIT $2"},
    {"usage_lock", "WITH i AS (INSERT INTO user_usage (user_id) VALUES ($1) ON CONFLICT DO NOTHING)"
                   " SELECT 1"},
    {"usage_lock_row",
     "SELECT concat_ws(',', bytes_used, images, trash_bytes, trash_images, reserved_bytes,"
     " reserved_images) FROM user_usage WHERE user_id = $1 FOR UPDATE"},
    /* after usage_lock_row, in a statement of its own: it sees every writer of the row */
    {"usage_fix",
     "UPDATE user_usage u SET bytes_used = a.bytes_used, images = a.images,"
     " trash_bytes = a.trash_bytes, trash_images = a.trash_images,"
     " reserved_bytes = a.reserved_bytes, reserved_images = a.reserved_images, updated_at = now()"
     " FROM quota_actual($1) a WHERE u.user_id = $1 AND (u.bytes_used, u.images, u.trash_bytes,"
     " u.trash_images, u.reserved_bytes, u.reserved_images) IS DISTINCT FROM (a.bytes_used,"
     " a.images, a.trash_bytes, a.trash_images, a.reserved_bytes, a.reserved_images)"
     " RETURNING concat_ws(',', u.bytes_used, u.images, u.trash_bytes, u.trash_images,"
     " u.reserved_bytes, u.reserved_images)"},
    /* retention */
    {"tombstones_list", "SELECT storage_path FROM gc_objects WHERE storage_path > $1"
                        " ORDER BY storage_path LIMIT $2"},
    {"trash_list",
     "SELECT image_id, deleted_at::text AS deleted_key FROM images WHERE status = 'deleted'"
     " AND deleted_at < now() - make_interval(secs => $1)"
     " AND (deleted_at, image_id) > ($2::timestamptz, $3::uuid)"
     " ORDER BY deleted_at, image_id LIMIT $4"},
    /* images that failed verification (no content: their object went by tombstone) */
    {"failed_list",
     "SELECT image_id, updated_at::text AS updated_key FROM images WHERE status = 'failed'"
     " AND updated_at < now() - make_interval(secs => $1)"
     " AND (updated_at, image_id) > ($2::timestamptz, $3::uuid)"
     " ORDER BY updated_at, image_id LIMIT $4"},
    {"failed_drop",
     "WITH u AS (DELETE FROM images WHERE image_id = $1 AND status = 'failed'"
     " RETURNING image_id, owner_id), c AS (INSERT INTO change_log (user_id, image_id, kind)"
     " SELECT owner_id, image_id, 'deleted' FROM u) SELECT count(*) FROM u"},
    {"blob_used", "SELECT EXISTS (SELECT 1 FROM images WHERE content_hash = $1)"},
    {"unreferenced_list",
     "SELECT content_hash, updated_at::text AS updated_key FROM blobs WHERE ref_count = 0"
     " AND (updated_at, content_hash) > ($1::timestamptz, $2)"
     " ORDER BY updated_at, content_hash LIMIT $3"},
    /* stuck */
    {"outbox_stuck", "SELECT id, attempts, resets, coalesce(last_error, '') FROM outbox"
                     " WHERE sent_at IS NULL AND created_at < now() - make_interval(secs => $1)"
                     " AND (reset_at IS NULL OR reset_at < now() - make_interval(secs => $1))"
                     " AND id > $2 ORDER BY id LIMIT $3"},
    {"outbox_reset", "UPDATE outbox SET attempts = 0, resets = resets + 1, reset_at = now()"
                     " WHERE id = $1 AND sent_at IS NULL AND resets < $2 RETURNING resets"},
    {"variants_stuck", "SELECT content_hash, variant_type, requeues FROM image_variants"
                       " WHERE status <> 'ready' AND updated_at < now() - make_interval(secs => $1)"
                       " AND (content_hash, variant_type) > ($2, $3)"
                       " ORDER BY content_hash, variant_type LIMIT $4"},
    /* One transaction: the variants back to pending and a fresh event for the content. */
    {"variants_requeue",
     "WITH img AS (SELECT i.image_id, i.owner_id, i.size, i.mime_type, i.created_at,"
     " b.storage_path FROM images i JOIN blobs b ON b.content_hash = i.content_hash"
     " WHERE i.content_hash = $1 ORDER BY (i.status = 'active') DESC, i.created_at LIMIT 1),"
     " v AS (UPDATE image_variants SET status = 'pending', attempts = 0, error = NULL,"
     " requeues = requeues + 1, updated_at = now() WHERE content_hash = $1"
     " AND status <> 'ready' AND requeues < $2"
     " AND updated_at < now() - make_interval(secs => $3)"
     " AND EXISTS (SELECT 1 FROM img) RETURNING variant_type),"
     " o AS (INSERT INTO outbox (topic, msg_key, payload) SELECT $4, $1,"
     " jsonb_build_object('version', 1, 'type', 'image.uploaded', 'image_id', image_id,"
     " 'owner_id', owner_id, 'content_hash', $1::text, 'storage_path', storage_path,"
     " 'size', size, 'mime_type', mime_type, 'occurred_at', created_at, 'requeued', true)"
     " FROM img WHERE EXISTS (SELECT 1 FROM v) RETURNING id)"
     " SELECT (SELECT string_agg(variant_type, ',' ORDER BY variant_type) FROM v),"
     " (SELECT id FROM o), EXISTS (SELECT 1 FROM img)"},
    /* capture: the dry run's list, and the real run's enqueue (the event complete writes) */
    {"capture_missing", "SELECT content_hash, NULL, image_id FROM (" CAPTURE_MISSING ") m"},
    {"capture_enqueue",
     "WITH m AS (" CAPTURE_MISSING "), o AS (INSERT INTO outbox (topic, msg_key, payload)"
     " SELECT $3, content_hash, jsonb_build_object('version', 1, 'type', 'image.uploaded',"
     " 'image_id', image_id, 'owner_id', owner_id, 'content_hash', content_hash,"
     " 'storage_path', storage_path, 'size', size, 'mime_type', mime_type,"
     " 'occurred_at', created_at) FROM m RETURNING id, msg_key)"
     " SELECT m.content_hash, o.id, m.image_id FROM m JOIN o ON o.msg_key = m.content_hash"
     " ORDER BY 1"},
    /* partitions: days (today .. today + $1, and days with rows in a DEFAULT partition)
     * that no partition covers; then partitions entirely older than their table's
     * retention ($1 change_log, $2 outbox), with whether an outbox one holds unsent rows */
    {"partitions_missing",
     "WITH t(parent) AS (VALUES ('change_log'), ('outbox')), want AS (SELECT t.parent,"
     " d::date AS day FROM t CROSS JOIN generate_series((now() AT TIME ZONE 'UTC')::date"
     "::timestamp, (now() AT TIME ZONE 'UTC')::date::timestamp + make_interval(days => $1),"
     " '1 day') d UNION SELECT 'change_log', (created_at AT TIME ZONE 'UTC')::date"
     " FROM change_log_default UNION SELECT 'outbox', (created_at AT TIME ZONE 'UTC')::date"
     " FROM outbox_default)"
     " SELECT w.parent, w.day::text, format('%s_p%s', w.parent, to_char(w.day, 'YYYYMMDD'))"
     " FROM want w WHERE NOT EXISTS (SELECT 1 FROM pix_log_partitions(w.parent::regclass) p"
     " WHERE p.lo < (w.day + 1)::timestamp AT TIME ZONE 'UTC'"
     " AND p.hi > w.day::timestamp AT TIME ZONE 'UTC') ORDER BY 1, 2"},
    {"partitions_expired",
     "SELECT t.parent, p.part::text, p.hi::text, t.parent = 'outbox' AND EXISTS (SELECT 1"
     " FROM outbox o WHERE o.sent_at IS NULL AND o.created_at >= p.lo AND o.created_at < p.hi)"
     " FROM (VALUES ('change_log', $1::float8), ('outbox', $2::float8)) t(parent, keep)"
     " CROSS JOIN LATERAL pix_log_partitions(t.parent::regclass) p"
     " WHERE p.hi <= now() - make_interval(secs => t.keep) ORDER BY 1, p.hi"},
    {"partition_add", "SELECT pix_log_partition_add($1::regclass, $2::date)"},
    {"partition_drop", "SELECT status, rows FROM pix_log_partition_drop($1::regclass)"},
    /* audits: due unless a full pass completed within $2 seconds */
    {"audit_due", "SELECT NOT EXISTS (SELECT 1 FROM reconciler_state WHERE sweep = $1"
                  " AND last_run > now() - make_interval(secs => $2))"},
    {"audit_done", "INSERT INTO reconciler_state (sweep, last_run) VALUES ($1, now())"
                   " ON CONFLICT (sweep) DO UPDATE SET last_run = excluded.last_run"},
};
const size_t rec_stmts_count = ARRAY_LEN(rec_stmts);
