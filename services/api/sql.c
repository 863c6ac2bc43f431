/* sql: every statement the API prepares, by name. Kept in one table so each connection
 * prepares them once and a reader sees the whole data access surface in one place. */
#include "albums.h"
#include "api.h"
#include "finalize.h"
#include "webhooks.h"
#include "quota.h"

#define SESSION_COLS UPLOAD_ROW_COLS

#define IMAGE_COLS API_IMAGE_COLS

/* Change-log rows for the image's audience (migrations/010_albums.sql): the owner, the
 * users it is shared with unless private, the owners and members of albums holding it; u
 * is a CTE of (image_id, ...). */
#define CHANGE_FOR_ALL(kind)                                                                       \
    " INSERT INTO change_log (user_id, image_id, kind) SELECT x, u.image_id, '" kind "'"           \
    " FROM u, image_audience(u.image_id) x"

/* Album owners and members (x) an album-item change reaches ($1 the album). */
#define ALBUM_ITEM_CHANGE(rows, kind)                                                              \
    " INSERT INTO change_log (user_id, album_id, image_id, kind) SELECT x, $1, " rows              \
    ".image_id, '" kind "' FROM " rows ", album_audience($1) x"
/* The caller ($2) owns album $1 or contributes to it. */
#define ALBUM_WRITER                                                                               \
    " album_id = $1 AND (owner_id = $2 OR EXISTS (SELECT 1 FROM album_members m"                   \
    " WHERE m.album_id = $1 AND m.user_id = $2 AND m.role = 'contributor'))"
/* The albums user $1 owns or is a member of. */
#define ALBUMS_OF_USER                                                                             \
    " (SELECT album_id FROM albums WHERE owner_id = $1 UNION ALL SELECT album_id"                  \
    " FROM album_members WHERE user_id = $1)"
/* Quota admission of one session of $4 bytes for user $2 (unless $10 replays an
 * Idempotency-Key): the user's usage row locked (creates queue there, each seeing the
 * reservations before it), the kind refused if it does not fit, and a rate-limited
 * quota.exceeded event ($21 seconds apart) when refused. Ends with a comma. */
#define QUOTA_ADMIT_ONE                                                                            \
    " q AS MATERIALIZED (SELECT * FROM quota_lock($2, $19::bigint, $20::bigint)"                   \
    " WHERE NOT EXISTS (SELECT 1 FROM upload_sessions WHERE owner_id = $2"                         \
    " AND idempotency_key = nullif($10, ''))),"                                                    \
    " k AS MATERIALIZED (SELECT q.*, quota_kind(bytes_used, reserved_bytes, max_bytes, images,"    \
    " reserved_images, max_images, $4::bigint, 1) AS kind FROM q),"                                \
    " ev AS MATERIALIZED (SELECT quota_refused($2, kind, CASE kind WHEN 'bytes'"                   \
    " THEN bytes_used + reserved_bytes ELSE images + reserved_images END, CASE kind"               \
    " WHEN 'bytes' THEN max_bytes ELSE max_images END, CASE kind WHEN 'bytes' THEN $4::bigint"     \
    " ELSE 1 END, $21::float8) FROM k WHERE kind IS NOT NULL),"
#define QUOTA_FITS "NOT EXISTS (SELECT 1 FROM k WHERE kind IS NOT NULL)"
/* The quota columns of session_batch's rows other than 'caps'. */
#define BATCH_NO_QUOTA                                                                             \
    " NULL::bigint, NULL::bigint, NULL::bigint, NULL::bigint, NULL::bigint, NULL::bigint,"         \
    " NULL::bigint, NULL::bigint, NULL::bigint"
#define ZERO_UUID "'00000000-0000-0000-0000-000000000000'::uuid"

/* Public links (links.c, migrations/012_links.sql). A link l is live while it has not
 * expired, has views left and (an image's) its image is active. */
#define LINK_LIVE                                                                                  \
    " ((l.expires_at IS NULL OR l.expires_at > now()) AND (l.max_views IS NULL"                    \
    " OR l.views < l.max_views) AND (l.image_id IS NULL OR EXISTS (SELECT 1 FROM images li"        \
    " WHERE li.image_id = l.image_id AND li.status = 'active')))"
/* l's expiry as RFC 3339 ('' never) and its creation time. */
#define LINK_EXPIRES                                                                               \
    " coalesce(to_char(l.expires_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), '')"
#define LINK_CREATED " to_char(l.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"
/* The live link whose token's hash is $1 (hex): id, password hash ('' none),
 * allow_download, image id, album id ('' for the other), expiry ('' never). */
#define LINK_BY_TOKEN                                                                              \
    " l.link_id, coalesce(l.password_hash, '') AS password_hash, l.allow_download,"                \
    " coalesce(l.image_id::text, ''), coalesce(l.album_id::text, '')," LINK_EXPIRES                \
    " FROM public_links l WHERE l.token_hash = decode($1, 'hex') AND" LINK_LIVE
/* What anyone with a link sees of image i (blobs b): never its owner or location. */
#define LINK_ITEM_COLS                                                                             \
    " i.image_id, i.name, i.size, i.mime_type,"                                                    \
    " to_char(i.taken_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'),"                \
    " coalesce(b.storage_path, ''), coalesce((SELECT json_agg(json_build_array(v.variant_type,"    \
    " v.storage_path, v.mime_type) ORDER BY v.variant_type) FROM image_variants v"                 \
    " WHERE v.content_hash = i.content_hash AND v.status = 'ready'), '[]')::text"

const struct pg_stmt api_stmts[] = {
    FINALIZE_STMTS,
    POP_STMTS,
    QUOTA_STMTS,
    {"ping", "SELECT 1"},
    /* Stream tickets (ticket.c): $1 hex SHA-256 of the ticket, $4 the token's expiry (epoch
     * seconds), $5 the ticket's lifetime; none while the user holds $6 live ones. A ticket
     * is spent by the DELETE that redeems it. */
    {"ticket_issue",
     "INSERT INTO stream_tickets (ticket_hash, user_id, admin, token_exp, expires_at)"
     " SELECT decode($1, 'hex'), $2, $3::boolean, to_timestamp($4::float8),"
     " now() + make_interval(secs => $5::float8) WHERE (SELECT count(*) FROM stream_tickets"
     " WHERE user_id = $2 AND expires_at > now()) < $6::int RETURNING 1"},
    {"ticket_redeem",
     "DELETE FROM stream_tickets WHERE ticket_hash = decode($1, 'hex') AND expires_at > now()"
     " RETURNING user_id, admin, extract(epoch FROM token_exp)::bigint"},
    {"ticket_prune",
     "DELETE FROM stream_tickets WHERE ctid = ANY (ARRAY (SELECT ctid FROM stream_tickets"
     " WHERE expires_at < now() LIMIT 5000))"},
    {"outbox_backlog", "SELECT count(*) FROM outbox WHERE sent_at IS NULL"},
    /* A budget that has refilled completely is the same as no row: forget it. */
    {"pop_budget_prune",
     "DELETE FROM pop_budget WHERE ctid = ANY (ARRAY (SELECT ctid FROM pop_budget"
     " WHERE updated_at < now() - make_interval(secs => $1::float8) LIMIT 5000))"},
    {"blob_get", "SELECT storage_path, size FROM blobs WHERE content_hash = $1"},
    /* POST /uploads in one round trip: the user on first sight, then, when the client
     * declared a sha256 and offers a challenge ($12 nonce, $13 ranges, $14 decoy answer),
     * one unit of the (user, hash) budget ($15 size, $16 seconds per unit); if there was one
     * and the content is stored with that size and has reached its random threshold of
     * copies ($17), a challenge from its bank replaces the offered one, else the offered
     * one stays: answered from storage if the content is eligible (its bank is dry), a decoy
     * otherwise. The same work whether or not the content exists (common/pop.h). A replayed
     * Idempotency-Key spends nothing and inserts nothing. The quota ($19 default bytes, $20
     * default images, $21 event interval): see QUOTA_ADMIT_ONE; a refused create spends and
     * inserts nothing. Returns one row: the session (NULL: a replay or refused), the content's
     * bank is dry (queue a refill), the quota kind refused (NULL: admitted) and the usage. */
    {"session_create",
     "WITH u AS (INSERT INTO users (user_id) VALUES ($2) ON CONFLICT DO NOTHING)," QUOTA_ADMIT_ONE
     " b AS (INSERT INTO pop_budget AS t (user_id, content_hash, tokens)"
     " SELECT $2, $6, $15::float8 - 1 WHERE $12 <> '' AND NOT EXISTS (SELECT 1"
     " FROM upload_sessions WHERE owner_id = $2 AND idempotency_key = nullif($10, ''))"
     " AND " QUOTA_FITS " ON CONFLICT (user_id, content_hash) DO UPDATE"
     " SET tokens = least($15::float8, t.tokens"
     " + extract(epoch FROM now() - t.updated_at) / $16::float8) - 1, updated_at = now()"
     " WHERE least($15::float8, t.tokens"
     " + extract(epoch FROM now() - t.updated_at) / $16::float8) >= 1 RETURNING 1),"
     " e AS (SELECT content_hash FROM blobs WHERE content_hash = $6 AND size = $4::bigint"
     " AND ref_count >= CASE WHEN $17::int <= 1 THEN 1"
     " ELSE 2 + floor(pop_salt * ($17::int - 1)) END AND EXISTS (SELECT 1 FROM b)),"
     " c AS (DELETE FROM pop_bank WHERE id = (SELECT id FROM pop_bank"
     " WHERE content_hash = (SELECT content_hash FROM e) ORDER BY id LIMIT 1"
     " FOR UPDATE SKIP LOCKED) RETURNING nonce, ranges, answer),"
     " s AS (INSERT INTO upload_sessions (upload_session_id, owner_id, file_name, file_size,"
     " mime_type, declared_sha256, chunk_size, chunk_count, object_key, idempotency_key,"
     " pop_nonce, pop_ranges, pop_answer, expires_at, file_modified_at)"
     " SELECT $1, $2, $3, $4, $5, nullif($6, ''), $7, $8, $9, nullif($10, ''),"
     " CASE WHEN EXISTS (SELECT 1 FROM b) THEN coalesce((SELECT nonce FROM c), $12) END,"
     " CASE WHEN EXISTS (SELECT 1 FROM b)"
     " THEN coalesce((SELECT ranges FROM c), nullif($13, '')::jsonb) END,"
     " CASE WHEN EXISTS (SELECT 1 FROM c) THEN (SELECT answer FROM c)"
     " WHEN EXISTS (SELECT 1 FROM e) OR NOT EXISTS (SELECT 1 FROM b) THEN NULL ELSE $14 END,"
     " now() + make_interval(secs => $11), nullif($18, '')::timestamptz WHERE " QUOTA_FITS
     " ON CONFLICT (owner_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING"
     " RETURNING " SESSION_COLS ")"
     " SELECT s.*, EXISTS (SELECT 1 FROM e) AND NOT EXISTS (SELECT 1 FROM c), k.kind,"
     " k.bytes_used, k.images, k.trash_bytes, k.trash_images, k.reserved_bytes,"
     " k.reserved_images, k.max_bytes, k.max_images, (SELECT count(*) FROM ev)"
     " FROM (SELECT 1) one LEFT JOIN s ON true LEFT JOIN k ON true"},
    /* POST /uploads/batch in one round trip ($2: the checked items as a JSON array, each
     * with its ordinal, new session id, plan and offered challenge). Items whose
     * idempotency_key names one of the caller's sessions are replays (nothing spent or
     * inserted). The others are admitted in order while the caller's open sessions stay
     * within $3 and their declared bytes within $4; each distinct declared sha256 spends one
     * budget unit and gets a challenge as in session_create (the first item with it).
     * Returns the new sessions (kind 'new') and the replayed ones ('replay'), each with its
     * item's ordinal, and one 'caps' row: the open count and bytes before, so the caller can tell
     * who was refused. After the session columns: declared sha256, kind, ordinal, count, bytes, and
     * whether the content's bank is dry (queue a refill), then (caps row) the quota usage
     * read under the user's usage row lock (quota_lock; $9 default bytes, $10 images): items
     * are admitted in order while they also fit the quota, and the first refused by it
     * writes a quota.exceeded event at most every $11 seconds. */
    {"session_batch",
     "WITH u AS (INSERT INTO users (user_id) VALUES ($1) ON CONFLICT DO NOTHING),"
     " i AS (SELECT * FROM jsonb_to_recordset($2::jsonb) AS x(ord int, id uuid, name text,"
     " size bigint, mime text, sha text, csz bigint, ccnt int, okey text, idem text,"
     " nonce text, ranges text, answer text, fmod timestamptz)),"
     " r AS (SELECT i.ord, x.upload_session_id AS rsid FROM i JOIN upload_sessions x"
     " ON x.owner_id = $1 AND x.idempotency_key = i.idem),"
     " cur AS (SELECT count(*) AS n, coalesce(sum(file_size), 0) AS bytes FROM upload_sessions"
     " WHERE owner_id = $1 AND status IN ('uploading', 'completing', 'verifying')"
     " AND expires_at > now()),"
     " q AS MATERIALIZED (SELECT * FROM quota_lock($1, $9::bigint, $10::bigint)),"
     " iw AS (SELECT i.*, cur.n + row_number() OVER w AS cnt,"
     " cur.bytes + sum(i.size) OVER w AS total, (sum(i.size) OVER w)::bigint AS qsum,"
     " quota_kind(q.bytes_used, q.reserved_bytes, q.max_bytes, q.images, q.reserved_images,"
     " q.max_images, (sum(i.size) OVER w)::bigint, row_number() OVER w) AS qkind FROM i, cur, q"
     " WHERE NOT EXISTS (SELECT 1 FROM r WHERE r.ord = i.ord) WINDOW w AS (ORDER BY i.ord)),"
     " a AS (SELECT * FROM iw WHERE cnt <= $3::bigint AND total <= $4::bigint AND qkind IS NULL),"
     " ev AS MATERIALIZED (SELECT quota_refused($1, x.qkind, CASE x.qkind WHEN 'bytes'"
     " THEN q.bytes_used + q.reserved_bytes + x.qsum - x.size ELSE q.images + q.reserved_images"
     " + x.cnt - cur.n - 1 END, CASE x.qkind WHEN 'bytes' THEN q.max_bytes ELSE q.max_images"
     " END, CASE x.qkind WHEN 'bytes' THEN x.size ELSE 1 END, $11::float8)"
     " FROM (SELECT * FROM iw WHERE qkind IS NOT NULL AND cnt <= $3::bigint"
     " AND total <= $4::bigint ORDER BY ord LIMIT 1) x, q, cur),"
     " h AS (SELECT DISTINCT ON (sha) ord, sha, size FROM a WHERE sha IS NOT NULL"
     " AND nonce <> '' ORDER BY sha, ord),"
     " b AS (INSERT INTO pop_budget AS t (user_id, content_hash, tokens)"
     " SELECT $1, sha, $5::float8 - 1 FROM h ON CONFLICT (user_id, content_hash) DO UPDATE"
     " SET tokens = least($5::float8, t.tokens"
     " + extract(epoch FROM now() - t.updated_at) / $6::float8) - 1, updated_at = now()"
     " WHERE least($5::float8, t.tokens"
     " + extract(epoch FROM now() - t.updated_at) / $6::float8) >= 1 RETURNING content_hash),"
     " hb AS (SELECT h.* FROM h JOIN b ON b.content_hash = h.sha),"
     " e AS (SELECT hb.ord, bl.content_hash FROM hb JOIN blobs bl ON bl.content_hash = hb.sha"
     " AND bl.size = hb.size AND bl.ref_count >= CASE WHEN $7::int <= 1 THEN 1"
     " ELSE 2 + floor(bl.pop_salt * ($7::int - 1)) END),"
     " c AS (DELETE FROM pop_bank WHERE id IN (SELECT k.id FROM e CROSS JOIN LATERAL"
     " (SELECT id FROM pop_bank WHERE content_hash = e.content_hash ORDER BY id LIMIT 1"
     " FOR UPDATE SKIP LOCKED) k) RETURNING content_hash, nonce, ranges, answer),"
     " s AS (INSERT INTO upload_sessions (upload_session_id, owner_id, file_name, file_size,"
     " mime_type, declared_sha256, chunk_size, chunk_count, object_key, idempotency_key,"
     " pop_nonce, pop_ranges, pop_answer, expires_at, file_modified_at)"
     " SELECT a.id, $1, a.name, a.size, a.mime, a.sha, a.csz, a.ccnt, a.okey, a.idem,"
     " CASE WHEN hb.ord IS NOT NULL THEN coalesce(c.nonce, a.nonce) END,"
     " CASE WHEN hb.ord IS NOT NULL THEN coalesce(c.ranges, a.ranges::jsonb) END,"
     " CASE WHEN c.nonce IS NOT NULL THEN c.answer"
     " WHEN e.ord IS NOT NULL OR hb.ord IS NULL THEN NULL ELSE a.answer END,"
     " now() + make_interval(secs => $8::float8), a.fmod"
     " FROM a LEFT JOIN hb ON hb.ord = a.ord LEFT JOIN e ON e.ord = a.ord"
     " LEFT JOIN c ON c.content_hash = e.content_hash"
     " ON CONFLICT (owner_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING"
     " RETURNING " SESSION_COLS ", declared_sha256)"
     " SELECT s.*, 'new'::text, a.ord, NULL::bigint, NULL::numeric,"
     " EXISTS (SELECT 1 FROM e WHERE e.content_hash = s.declared_sha256)"
     " AND NOT EXISTS (SELECT 1 FROM c WHERE c.content_hash = s.declared_sha256)," BATCH_NO_QUOTA
     " FROM s JOIN a ON a.id = s.upload_session_id"
     " UNION ALL SELECT " SESSION_COLS
     ", declared_sha256, 'replay', r.ord, NULL, NULL, false," BATCH_NO_QUOTA
     " FROM r JOIN upload_sessions ON upload_session_id = r.rsid"
     " UNION ALL SELECT " SESSION_COLS ", declared_sha256, 'caps', NULL, cur.n, cur.bytes, false,"
     " q.bytes_used, q.images, q.trash_bytes, q.trash_images, q.reserved_bytes,"
     " q.reserved_images, q.max_bytes, q.max_images, (SELECT count(*) FROM ev)"
     " FROM cur CROSS JOIN q LEFT JOIN upload_sessions ON false"},
    /* The caller's open sessions and the bytes they declare (the caps of POST /uploads),
     * and whether an Idempotency-Key $2 names one of theirs (a replay is never refused). */
    {"sessions_open",
     "SELECT count(*), coalesce(sum(file_size), 0), EXISTS (SELECT 1 FROM upload_sessions"
     " WHERE owner_id = $1 AND idempotency_key = nullif($2, ''))"
     " FROM upload_sessions WHERE owner_id = $1"
     " AND status IN ('uploading', 'completing', 'verifying') AND expires_at > now()"},
    {"session_by_idem",
     "SELECT " SESSION_COLS " FROM upload_sessions WHERE owner_id = $1 AND idempotency_key = $2"},
    {"session_get",
     "SELECT " SESSION_COLS " FROM upload_sessions WHERE upload_session_id = $1 AND owner_id = $2"},
    {"session_set_upload_id",
     "UPDATE upload_sessions SET s3_upload_id = $3, updated_at = now()"
     " WHERE upload_session_id = $1 AND owner_id = $2 AND s3_upload_id IS NULL"
     " AND status = 'uploading' RETURNING s3_upload_id"},
    {"session_claim", "UPDATE upload_sessions SET status = 'completing', lease_token = $3,"
                      " lease_until = now() + make_interval(secs => $4), updated_at = now()"
                      " WHERE upload_session_id = $1 AND owner_id = $2 AND expires_at > now()"
                      " AND (status = 'uploading' OR (status IN ('completing', 'verifying')"
                      " AND lease_until < now())) RETURNING " SESSION_COLS},
    /* complete's late sha256: kept unless one was declared; says whether they agree */
    {"session_declare",
     "UPDATE upload_sessions SET declared_sha256 = coalesce(declared_sha256, $3),"
     " updated_at = now() WHERE upload_session_id = $1 AND owner_id = $2 AND status = 'uploading'"
     " RETURNING declared_sha256 = $3"},
    /* The verify sweep: pending images whose verification lease ran out, at most $2. */
    {"verify_take", "UPDATE upload_sessions SET lease_token = gen_random_uuid(),"
                    " lease_until = now() + make_interval(secs => $1::float8), updated_at = now()"
                    " WHERE upload_session_id IN (SELECT upload_session_id FROM upload_sessions"
                    " WHERE status = 'verifying' AND image_id IS NOT NULL AND lease_until < now()"
                    " ORDER BY lease_until LIMIT $2::int FOR UPDATE SKIP LOCKED)"
                    " AND status = 'verifying' AND lease_until < now() RETURNING " SESSION_COLS},
    {"session_abort", "UPDATE upload_sessions SET status = 'aborted', updated_at = now()"
                      " WHERE upload_session_id = $1 AND owner_id = $2 AND status = 'uploading'"
                      " RETURNING coalesce(s3_upload_id, ''), object_key"},
    /* A proof: consumes the session's challenge and, when the proof equals the prepared
     * answer, takes the completion lease in the same statement. Returns the row, then:
     * right, an answer was prepared, and the challenge (for an answer read from storage). */
    {"session_prove",
     "WITH o AS (SELECT upload_session_id AS sid, pop_nonce AS o_nonce, pop_ranges AS o_ranges,"
     " pop_answer AS o_answer, pop_answer = $3 AS o_right FROM upload_sessions"
     " WHERE upload_session_id = $1 AND owner_id = $2 AND status = 'uploading'"
     " AND pop_nonce IS NOT NULL AND expires_at > now() FOR UPDATE)"
     " UPDATE upload_sessions SET pop_nonce = NULL, pop_ranges = NULL, pop_answer = NULL,"
     " updated_at = now(), status = CASE WHEN o_right THEN 'completing' ELSE status END,"
     " lease_token = CASE WHEN o_right THEN $4::uuid END,"
     " lease_until = CASE WHEN o_right THEN now() + make_interval(secs => $5::float8) END"
     " FROM o WHERE upload_session_id = sid RETURNING " SESSION_COLS ","
     " coalesce(o_right, false), o_answer IS NOT NULL, o_nonce, o_ranges::text"},
    {"chunks_record",
     "INSERT INTO upload_chunks (upload_session_id, chunk_number, size, etag)"
     " SELECT $1, (e->>'n')::int, (e->>'size')::bigint, e->>'etag'"
     " FROM jsonb_array_elements($2::jsonb) e"
     " ON CONFLICT (upload_session_id, chunk_number)"
     " DO UPDATE SET size = excluded.size, etag = excluded.etag, verified_at = now()"},
    /* sync.c */
    {"sync_changes", "SELECT l.txid::text, l.seq, l.image_id, l.kind, l.album_id FROM change_log l"
                     " WHERE l.user_id = $1 AND (l.txid, l.seq) > ($2::xid8, $3::bigint)"
                     " AND l.txid < pg_snapshot_xmin(pg_current_snapshot())"
                     " ORDER BY l.txid, l.seq LIMIT $4"},
    {"sync_watermark", "SELECT pg_snapshot_xmin(pg_current_snapshot())::text"},
    /* committed entries past a cursor that the horizon still holds back */
    {"sync_held", "SELECT EXISTS (SELECT 1 FROM change_log WHERE user_id = $3"
                  " AND (txid, seq) > ($1::xid8, $2::bigint))"},
    {"sync_expired", "SELECT ($1::xid8, $2::bigint) < (txid, seq) FROM sync_horizon"},
    /* visible: active and the caller's or shared with them, or the caller's own image
     * still verifying or failed (its devices follow it through verification) */
    {"sync_states",
     "SELECT " IMAGE_COLS ", (i.status = 'active' AND (i.owner_id = $2"
     " OR (i.visibility <> 'private' AND EXISTS (SELECT 1 FROM image_shares s"
     " WHERE s.image_id = i.image_id AND s.user_id = $2))"
     " OR image_in_viewers_album(i.image_id, $2)))"
     " OR (i.owner_id = $2 AND i.status IN ('verifying', 'failed')),"
     " coalesce((SELECT json_object_agg(v.variant_type, v.status) FROM image_variants v"
     " WHERE v.content_hash = i.content_hash), '{}'), image_capture(i, $2)"
     " FROM images i WHERE i.image_id = ANY($1::uuid[])"},
    /* the caller's own, shared and album images after $2 (each branch sorted and cut) */
    {"sync_snapshot",
     "WITH ids AS ((SELECT image_id FROM images WHERE owner_id = $1 AND status = 'active'"
     " AND image_id > $2 ORDER BY image_id LIMIT $3)"
     " UNION (SELECT s.image_id FROM image_shares s JOIN images i ON i.image_id = s.image_id"
     " WHERE s.user_id = $1 AND i.status = 'active' AND i.visibility <> 'private'"
     " AND i.image_id > $2 ORDER BY 1 LIMIT $3)"
     " UNION (SELECT DISTINCT ai.image_id FROM album_items ai JOIN images i"
     " ON i.image_id = ai.image_id WHERE ai.album_id IN" ALBUMS_OF_USER
     " AND i.status = 'active' AND ai.image_id > $2 ORDER BY 1 LIMIT $3))"
     " SELECT " IMAGE_COLS ", true, coalesce((SELECT json_object_agg(v.variant_type,"
     " v.status) FROM image_variants v WHERE v.content_hash = i.content_hash), '{}'),"
     " image_capture(i, $1) FROM ids JOIN images i ON i.image_id = ids.image_id"
     " ORDER BY 1 LIMIT $3"},
    /* Snapshot of the caller's albums after ($2, $3): each album as (album, zero uuid),
     * then its items (album, image), in that order. */
    {"sync_snapshot_albums",
     "WITH v AS" ALBUMS_OF_USER " SELECT x.album_id, x.image_id FROM (SELECT album_id,"
     " " ZERO_UUID " AS image_id FROM v UNION ALL SELECT ai.album_id, ai.image_id FROM v"
     " JOIN album_items ai ON ai.album_id = v.album_id) x"
     " WHERE (x.album_id, x.image_id) > ($2::uuid, $3::uuid) ORDER BY 1, 2 LIMIT $4"},
    {"sync_album_states",
     "SELECT " ALBUM_COLS("$2") " FROM albums a"
                                " WHERE a.album_id = ANY($1::uuid[]) AND" ALBUM_VISIBLE("$2")},
    /* The (album, image) pairs of $1, $2 that are items of albums $3 sees. */
    {"sync_item_states",
     "SELECT ai.album_id, ai.image_id FROM unnest($1::uuid[], $2::uuid[]) p(album_id, image_id)"
     " JOIN album_items ai ON ai.album_id = p.album_id AND ai.image_id = p.image_id"
     " JOIN albums a ON a.album_id = ai.album_id WHERE" ALBUM_VISIBLE("$3")},
    /* drops the change-log partitions entirely older than $1 seconds (migration 016) */
    {"sync_prune", "SELECT coalesce(sum(rows), 0), count(*) FROM pix_log_prune('change_log',"
                   " make_interval(secs => $1)) WHERE status = 'dropped'"},

    /* ryw.c: the primary's position after a write; a read server's replay and horizon */
    {"ryw_written", "SELECT pg_current_wal_lsn()::text"},
    {"ryw_replayed", "SELECT pg_is_in_recovery(),"
                     " (coalesce(pg_last_wal_replay_lsn(), '0/0') - '0/0')::text,"
                     " pg_snapshot_xmin(pg_current_snapshot())::text"},

    /* images.c */
    {"image_read", "SELECT " IMAGE_COLS ", coalesce(b.storage_path, ''),"
                   " coalesce(i.deleted_at > now() - make_interval(secs => $3), false)"
                   " FROM images i LEFT JOIN blobs b ON b.content_hash = i.content_hash"
                   " WHERE i.image_id = $1 AND (i.owner_id = $2 OR (i.status = 'active'"
                   " AND (i.visibility = 'public' OR (i.visibility = 'shared' AND EXISTS (SELECT 1"
                   " FROM image_shares s WHERE s.image_id = i.image_id AND s.user_id = $2))"
                   " OR image_in_viewers_album(i.image_id, $2))))"},
    {"variant_get",
     "SELECT status, coalesce(storage_path, ''), coalesce(mime_type, ''), coalesce(error, '')"
     " FROM image_variants WHERE content_hash = $1 AND variant_type = $2"},
    /* GET /images/{id}/metadata: the capture object for the caller ($2), then one row per
     * variant row of the content (NULL variant columns when there is none). */
    {"image_details",
     "SELECT d.cap::text, v.variant_type, v.status FROM (SELECT image_capture(i, $2) AS cap,"
     " i.content_hash FROM images i WHERE i.image_id = $1) d"
     " LEFT JOIN image_variants v ON v.content_hash = d.content_hash"},
    /* No cursor ($3, $4 NULL): from the top. coalesce, not "IS NULL OR": the cursor stays
     * an index condition in a generic plan, so a deep page costs what the first does. */
    {"image_list", "SELECT " IMAGE_COLS ", i.created_at::text FROM images i"
                   " WHERE i.owner_id = $1 AND i.status = ANY (string_to_array($2, ','))"
                   " AND (i.created_at, i.image_id) < (coalesce($3::timestamptz, 'infinity'),"
                   " coalesce($4::uuid, 'ffffffff-ffff-ffff-ffff-ffffffffffff'))"
                   " ORDER BY i.created_at DESC, i.image_id DESC LIMIT $5"},
    /* The timeline: by capture time (images_owner_taken), newest or oldest first, from the
     * position after the cursor ($3, $4: the top sentinel when none), within
     * [$6, $7). No OR with NULL: the bounds stay index conditions in a generic plan. */
    {"image_list_taken", "SELECT " IMAGE_COLS ", i.taken_at::text FROM images i"
                         " WHERE i.owner_id = $1 AND i.status = ANY (string_to_array($2, ','))"
                         " AND (i.taken_at, i.image_id) < ($3::timestamptz, $4::uuid)"
                         " AND i.taken_at >= $6::timestamptz AND i.taken_at < $7::timestamptz"
                         " ORDER BY i.taken_at DESC, i.image_id DESC LIMIT $5"},
    {"image_list_taken_asc", "SELECT " IMAGE_COLS ", i.taken_at::text FROM images i"
                             " WHERE i.owner_id = $1 AND i.status = ANY (string_to_array($2, ','))"
                             " AND (i.taken_at, i.image_id) > ($3::timestamptz, $4::uuid)"
                             " AND i.taken_at >= $6::timestamptz AND i.taken_at < $7::timestamptz"
                             " ORDER BY i.taken_at, i.image_id LIMIT $5"},
    {"image_list_shared",
     "SELECT " IMAGE_COLS ", s.created_at::text FROM image_shares s"
     " JOIN images i ON i.image_id = s.image_id"
     " WHERE s.user_id = $1 AND i.status = $2 AND i.visibility <> 'private'"
     " AND (s.created_at, s.image_id) < (coalesce($3::timestamptz, 'infinity'),"
     " coalesce($4::uuid, 'ffffffff-ffff-ffff-ffff-ffffffffffff'))"
     " ORDER BY s.created_at DESC, s.image_id DESC LIMIT $5"},
    {"image_patch",
     "WITH old AS (SELECT image_id, visibility FROM images WHERE image_id = $1"
     " AND owner_id = $2 AND status = 'active' FOR UPDATE),"
     " u AS (UPDATE images i SET name = coalesce($3, i.name),"
     " visibility = coalesce($4, i.visibility), updated_at = clock_timestamp() FROM old"
     " WHERE i.image_id = old.image_id"
     " RETURNING i.image_id, i.owner_id, i.visibility AS vis, old.visibility AS old_vis),"
     " c AS (INSERT INTO change_log (user_id, image_id, kind)"
     " SELECT owner_id, image_id, 'updated' FROM u UNION ALL SELECT s.user_id, u.image_id,"
     " CASE WHEN u.vis = 'private' THEN 'deleted' WHEN u.old_vis = 'private' THEN 'added'"
     " ELSE 'updated' END FROM u JOIN image_shares s ON s.image_id = u.image_id"
     " WHERE NOT (u.vis = 'private' AND u.old_vis = 'private')"
     " UNION ALL SELECT x, u.image_id, 'updated' FROM u, image_audience(u.image_id) x"
     " WHERE x <> u.owner_id AND NOT EXISTS (SELECT 1 FROM image_shares s"
     " WHERE s.image_id = u.image_id AND s.user_id = x))"
     " SELECT count(*) FROM u"},
    {"image_soft_delete", "WITH u AS (UPDATE images SET status = 'deleted', deleted_at = now(),"
                          " updated_at = clock_timestamp() WHERE image_id = $1 AND owner_id = $2"
                          " AND status = 'active' RETURNING image_id, owner_id, visibility),"
                          " c AS (" CHANGE_FOR_ALL("deleted") ") SELECT count(*) FROM u"},
    {"image_restore", "WITH u AS (UPDATE images SET status = 'active', deleted_at = NULL,"
                      " updated_at = clock_timestamp() WHERE image_id = $1 AND owner_id = $2"
                      " AND status = 'deleted' AND deleted_at > now() - make_interval(secs => $3)"
                      " RETURNING image_id, owner_id, visibility),"
                      " c AS (" CHANGE_FOR_ALL("restored") ") SELECT count(*) FROM u"},
    /* Within the caps ($4 users per image, $5 shares per owner; re-sharing is always
     * fine): 1 shared, 0 no such active image of the owner, -2 a cap was reached. $6
     * show_location ('true'/'false'; '': false for a new share, unchanged for a re-share). */
    {"image_share",
     "WITH ok AS (SELECT EXISTS (SELECT 1 FROM image_shares WHERE image_id = $1"
     " AND user_id = $3) OR ((SELECT count(*) FROM image_shares WHERE image_id = $1) < $4::int"
     " AND (SELECT count(*) FROM image_shares s JOIN images i ON i.image_id = s.image_id"
     " WHERE i.owner_id = $2) < $5::int) AS ok),"
     " img AS (UPDATE images SET visibility = CASE WHEN visibility = 'private'"
     " THEN 'shared' ELSE visibility END WHERE image_id = $1 AND owner_id = $2"
     " AND status = 'active' AND (SELECT ok FROM ok) RETURNING image_id),"
     " s AS (INSERT INTO image_shares (image_id, user_id, show_location)"
     " SELECT image_id, $3, coalesce(nullif($6, '')::boolean, false) FROM img"
     " ON CONFLICT (image_id, user_id) DO UPDATE SET show_location = excluded.show_location"
     " WHERE nullif($6, '') IS NOT NULL"
     " AND image_shares.show_location <> excluded.show_location"
     " RETURNING image_id, user_id, xmax = 0 AS fresh),"
     " c AS (INSERT INTO change_log (user_id, image_id, kind)"
     " SELECT user_id, image_id, CASE WHEN fresh THEN 'added' ELSE 'updated' END FROM s)"
     " SELECT CASE WHEN NOT (SELECT ok FROM ok) AND EXISTS (SELECT 1 FROM images"
     " WHERE image_id = $1 AND owner_id = $2 AND status = 'active') THEN -2"
     " ELSE (SELECT count(*) FROM img) END"},
    {"image_unshare",
     "WITH img AS (SELECT image_id, status FROM images WHERE image_id = $1 AND owner_id = $2),"
     " d AS (DELETE FROM image_shares s USING img WHERE s.image_id = img.image_id"
     " AND s.user_id = $3 RETURNING s.image_id, s.user_id, img.status),"
     " c AS (INSERT INTO change_log (user_id, image_id, kind)"
     " SELECT user_id, image_id, 'deleted' FROM d WHERE status = 'active')"
     " SELECT count(*) FROM img"},
    {"image_is_active", "SELECT count(*) FROM images WHERE image_id = $1"},
    {"image_error", "SELECT coalesce(error_code, ''), coalesce(error_message, '')"
                    " FROM upload_sessions WHERE image_id = $1 LIMIT 1"},
    /* A failed image goes at once (it holds no content); its devices hear of it. */
    {"image_drop_failed",
     "WITH u AS (DELETE FROM images WHERE image_id = $1 AND owner_id = $2 AND status = 'failed'"
     " RETURNING image_id, owner_id), c AS (INSERT INTO change_log (user_id, image_id, kind)"
     " SELECT owner_id, image_id, 'deleted' FROM u) SELECT count(*) FROM u"},

    /* albums.c */
    {"album_create",
     "WITH u AS (INSERT INTO users (user_id) VALUES ($2) ON CONFLICT DO NOTHING),"
     " a AS (INSERT INTO albums (album_id, owner_id, name, sort) SELECT $1, $2, $3, $4"
     " WHERE (SELECT count(*) FROM albums WHERE owner_id = $2) < $5::int RETURNING *),"
     " c AS (INSERT INTO change_log (user_id, album_id, kind) SELECT owner_id, album_id, 'album'"
     " FROM a) SELECT " ALBUM_COLS("$2") " FROM a"},
    {"album_get", "SELECT " ALBUM_COLS("$2") " FROM albums a WHERE a.album_id = $1"
                                             " AND" ALBUM_VISIBLE("$2")},
    {"album_list", "SELECT " ALBUM_COLS(
                       "$1") ", a.created_at::text AS cursor_key FROM albums a"
                             " WHERE a.album_id IN" ALBUMS_OF_USER " AND ($2::timestamptz IS NULL"
                             " OR (a.created_at, a.album_id) < ($2::timestamptz, $3::uuid))"
                             " ORDER BY a.created_at DESC, a.album_id DESC LIMIT $4"},
    /* An album's active images after the cursor ($2, $3), newest capture first / by position. */
    {"album_items_taken_at",
     "SELECT " IMAGE_COLS ", ai.added_by, i.taken_at::text AS cursor_key FROM album_items ai"
     " JOIN images i ON i.image_id = ai.image_id WHERE ai.album_id = $1 AND i.status = 'active'"
     " AND ($2::timestamptz IS NULL OR (i.taken_at, i.image_id) < ($2::timestamptz, $3::uuid))"
     " ORDER BY i.taken_at DESC, i.image_id DESC LIMIT $4"},
    {"album_items_position",
     "SELECT " IMAGE_COLS ", ai.added_by, ai.position::text AS cursor_key FROM album_items ai"
     " JOIN images i ON i.image_id = ai.image_id WHERE ai.album_id = $1 AND i.status = 'active'"
     " AND ($2::bigint IS NULL OR (ai.position, ai.image_id) > ($2::bigint, $3::uuid))"
     " ORDER BY ai.position, ai.image_id LIMIT $4"},
    /* The owner's change: $3 name, $4 cover ('' none), $5 sort, $6 show_location (NULL:
     * kept), $7 order (ids first, the rest after in their order). 1 done, 0 no such album
     * of the owner, -1 the cover or an ordered id is not an item (or repeats). A change of
     * show_location changes the capture its audience sees of the items of others. */
    {"album_patch",
     "WITH a AS (SELECT album_id, show_location FROM albums WHERE album_id = $1"
     " AND owner_id = $2 FOR UPDATE),"
     " o AS (SELECT x::uuid AS image_id, n FROM unnest($7::text[]) WITH ORDINALITY t(x, n)),"
     " bad AS (SELECT (SELECT count(*) FROM o) <> (SELECT count(DISTINCT ai.image_id) FROM o"
     " JOIN album_items ai ON ai.album_id = $1 AND ai.image_id = o.image_id)"
     " OR (nullif($4, '') IS NOT NULL AND NOT EXISTS (SELECT 1 FROM album_items"
     " WHERE album_id = $1 AND image_id = nullif($4, '')::uuid)) AS bad),"
     " u AS (UPDATE albums SET name = coalesce($3, name), cover_image_id = CASE WHEN $4 IS NULL"
     " THEN cover_image_id ELSE nullif($4, '')::uuid END, sort = coalesce($5, sort),"
     " show_location = coalesce($6::boolean, show_location), updated_at = clock_timestamp()"
     " WHERE album_id = (SELECT album_id FROM a) AND NOT (SELECT bad FROM bad)"
     " RETURNING album_id),"
     " r AS (SELECT ai.image_id, row_number() OVER (ORDER BY o.n NULLS LAST, ai.position,"
     " ai.image_id) AS pos FROM album_items ai LEFT JOIN o ON o.image_id = ai.image_id"
     " WHERE ai.album_id = $1 AND $7 IS NOT NULL AND EXISTS (SELECT 1 FROM u)),"
     " p AS (UPDATE album_items ai SET position = r.pos FROM r WHERE ai.album_id = $1"
     " AND ai.image_id = r.image_id AND ai.position <> r.pos),"
     " c AS (INSERT INTO change_log (user_id, album_id, kind) SELECT x, u.album_id, 'album'"
     " FROM u, album_audience(u.album_id) x),"
     " g AS (INSERT INTO change_log (user_id, image_id, kind) SELECT x, i.image_id, 'updated'"
     " FROM a JOIN album_items ai ON ai.album_id = a.album_id JOIN images i"
     " ON i.image_id = ai.image_id, album_audience(a.album_id) x WHERE EXISTS (SELECT 1 FROM u)"
     " AND $6 IS NOT NULL AND $6::boolean <> a.show_location AND x <> i.owner_id)"
     " SELECT CASE WHEN NOT EXISTS (SELECT 1 FROM a) THEN 0"
     " WHEN (SELECT bad FROM bad) THEN -1 ELSE 1 END"},
    /* The album goes (its items and members with it); its audience hears, and loses the
     * images they saw only through it (rows for everyone but each image's owner). */
    {"album_delete",
     "WITH a AS (SELECT album_id FROM albums WHERE album_id = $1 AND owner_id = $2 FOR UPDATE),"
     " aud AS (SELECT x FROM a, album_audience(a.album_id) x),"
     " it AS (SELECT ai.image_id, i.owner_id FROM a JOIN album_items ai"
     " ON ai.album_id = a.album_id JOIN images i ON i.image_id = ai.image_id),"
     " d AS (DELETE FROM albums WHERE album_id = (SELECT album_id FROM a) RETURNING album_id),"
     " c AS (INSERT INTO change_log (user_id, album_id, image_id, kind)"
     " SELECT aud.x, d.album_id, NULL::uuid, 'album' FROM d, aud"
     " UNION ALL SELECT aud.x, d.album_id, it.image_id, 'item_removed' FROM d, aud, it"
     " WHERE aud.x <> it.owner_id) SELECT count(*) FROM d"},
    /* $3 ids (text[]) of the caller's active images into album $1 (the caller its owner or
     * a contributor), at most $4 items in all. Returns: added, the caller may add, the
     * items fit, the ids that are not the caller's active images (nothing added then). */
    {"album_items_add",
     "WITH a AS (SELECT album_id FROM albums WHERE" ALBUM_WRITER " FOR UPDATE),"
     " ids AS (SELECT x::uuid AS image_id, min(n) AS n FROM unnest($3::text[])"
     " WITH ORDINALITY t(x, n) GROUP BY 1),"
     " bad AS (SELECT ids.image_id FROM ids WHERE NOT EXISTS (SELECT 1 FROM images i"
     " WHERE i.image_id = ids.image_id AND i.owner_id = $2 AND i.status = 'active')),"
     " new AS (SELECT ids.* FROM ids WHERE NOT EXISTS (SELECT 1 FROM album_items ai"
     " WHERE ai.album_id = $1 AND ai.image_id = ids.image_id)),"
     " ok AS (SELECT (SELECT count(*) FROM album_items WHERE album_id = $1)"
     " + (SELECT count(*) FROM new) <= $4::int AS fits),"
     " ins AS (INSERT INTO album_items (album_id, image_id, position, added_by)"
     " SELECT a.album_id, new.image_id, (SELECT coalesce(max(position), 0) FROM album_items"
     " WHERE album_id = $1) + row_number() OVER (ORDER BY new.n), $2 FROM a, new"
     " WHERE NOT EXISTS (SELECT 1 FROM bad) AND (SELECT fits FROM ok)"
     " ON CONFLICT DO NOTHING RETURNING image_id),"
     " u AS (UPDATE albums SET updated_at = clock_timestamp() WHERE album_id = $1"
     " AND EXISTS (SELECT 1 FROM ins)),"
     " c AS (" ALBUM_ITEM_CHANGE(
         "ins", "item_added") ")"
                              " SELECT (SELECT count(*) FROM ins), EXISTS (SELECT 1 FROM a), "
                              "(SELECT fits FROM ok),"
                              " coalesce((SELECT string_agg(image_id::text, ',') FROM bad), '')"},
    /* $3 ids out of album $1: the owner's any, a contributor's only those they added.
     * Returns: removed, the caller may remove, ids the contributor may not remove (then
     * nothing is removed). A removed cover is cleared. */
    {"album_items_remove",
     "WITH a AS (SELECT album_id, owner_id = $2 AS owner FROM albums WHERE" ALBUM_WRITER
     " FOR UPDATE), ids AS (SELECT DISTINCT x::uuid AS image_id FROM unnest($3::text[]) x),"
     " f AS (SELECT count(*) AS n FROM album_items ai JOIN ids ON ids.image_id = ai.image_id"
     " WHERE ai.album_id = $1 AND ai.added_by <> $2"
     " AND NOT coalesce((SELECT owner FROM a), false)),"
     " d AS (DELETE FROM album_items ai USING ids, a WHERE ai.album_id = a.album_id"
     " AND ai.image_id = ids.image_id AND (SELECT n FROM f) = 0 RETURNING ai.image_id),"
     " u AS (UPDATE albums SET updated_at = clock_timestamp(), cover_image_id = CASE"
     " WHEN cover_image_id IN (SELECT image_id FROM d) THEN NULL ELSE cover_image_id END"
     " WHERE album_id = $1 AND EXISTS (SELECT 1 FROM d)),"
     " c AS (" ALBUM_ITEM_CHANGE("d", "item_removed") ")"
                                                      " SELECT (SELECT count(*) FROM d), EXISTS "
                                                      "(SELECT 1 FROM a), (SELECT n FROM f)"},
    /* Member $3 with role $4 (a new one within $5 per album): 1 done, 0 no such album of
     * the owner, -2 the cap was reached. A new member hears of every item. */
    {"album_member_put",
     "WITH a AS (SELECT album_id FROM albums WHERE album_id = $1 AND owner_id = $2 FOR UPDATE),"
     " old AS (SELECT role FROM album_members WHERE album_id = $1 AND user_id = $3),"
     " ok AS (SELECT EXISTS (SELECT 1 FROM old) OR (SELECT count(*) FROM album_members"
     " WHERE album_id = $1) < $5::int AS ok),"
     " m AS (INSERT INTO album_members (album_id, user_id, role) SELECT album_id, $3, $4 FROM a"
     " WHERE (SELECT ok FROM ok) ON CONFLICT (album_id, user_id) DO UPDATE"
     " SET role = excluded.role RETURNING album_id),"
     " c AS (INSERT INTO change_log (user_id, album_id, image_id, kind)"
     " SELECT aud.x, m.album_id, NULL::uuid, 'album' FROM m,"
     " (SELECT album_audience($1) AS x UNION SELECT $3) aud"
     " UNION ALL SELECT $3, m.album_id, ai.image_id, 'item_added' FROM m JOIN album_items ai"
     " ON ai.album_id = m.album_id WHERE NOT EXISTS (SELECT 1 FROM old))"
     " SELECT CASE WHEN NOT EXISTS (SELECT 1 FROM a) THEN 0"
     " WHEN NOT (SELECT ok FROM ok) THEN -2 ELSE 1 END"},
    /* Member $3 out of album $1, by its owner or by themself ($2): rows removed. The
     * member hears of every item they lose. */
    {"album_member_remove",
     "WITH a AS (SELECT album_id FROM albums WHERE album_id = $1 AND (owner_id = $2"
     " OR ($3 = $2 AND EXISTS (SELECT 1 FROM album_members m WHERE m.album_id = $1"
     " AND m.user_id = $2))) FOR UPDATE),"
     " d AS (DELETE FROM album_members m USING a WHERE m.album_id = a.album_id"
     " AND m.user_id = $3 RETURNING m.album_id, m.user_id),"
     " c AS (INSERT INTO change_log (user_id, album_id, image_id, kind)"
     " SELECT x, d.album_id, NULL::uuid, 'album' FROM d, album_audience($1) x"
     " UNION ALL SELECT d.user_id, d.album_id, ai.image_id, 'item_removed' FROM d"
     " JOIN album_items ai ON ai.album_id = d.album_id)"
     " SELECT count(*) FROM d"},
    /* webhooks.c (migrations/014_webhooks.sql). An endpoint as WEBHOOK_COLS; $n limits. */
    {"webhook_create",
     "INSERT INTO webhook_endpoints AS e (endpoint_id, url, events, secret, description)"
     " SELECT $1::uuid, $2, $3::text[], $4, $5"
     " WHERE (SELECT count(*) FROM webhook_endpoints) < $6::int RETURNING " WEBHOOK_COLS},
    {"webhook_get", "SELECT " WEBHOOK_COLS " FROM webhook_endpoints e WHERE e.endpoint_id = $1"},
    /* Page after (created_at $1, id $2), $3 rows; the cursor key last. */
    {"webhook_list",
     "SELECT " WEBHOOK_COLS ", e.created_at::text FROM webhook_endpoints e"
     " WHERE $1::timestamptz IS NULL OR (e.created_at, e.endpoint_id) > ($1::timestamptz, $2::uuid)"
     " ORDER BY e.created_at, e.endpoint_id LIMIT $3::int"},
    /* NULL: unchanged. enabled $6 true re-enables and forgets the failure count; false
     * disables (as an admin's decision). */
    {"webhook_patch",
     "UPDATE webhook_endpoints e SET url = coalesce($2, e.url),"
     " events = coalesce($3::text[], e.events), description = coalesce($4, e.description),"
     " secret = coalesce($5, e.secret), enabled = coalesce($6::boolean, e.enabled),"
     " disabled_at = CASE WHEN $6::boolean THEN NULL WHEN NOT $6::boolean"
     " THEN coalesce(e.disabled_at, clock_timestamp()) ELSE e.disabled_at END,"
     " disabled_reason = CASE WHEN $6::boolean THEN NULL WHEN NOT $6::boolean"
     " THEN coalesce(e.disabled_reason, 'disabled by an admin') ELSE e.disabled_reason END,"
     " failures = CASE WHEN $6::boolean THEN 0 ELSE e.failures END,"
     " updated_at = clock_timestamp() WHERE e.endpoint_id = $1 RETURNING " WEBHOOK_COLS},
    {"webhook_delete", "WITH d AS (DELETE FROM webhook_endpoints WHERE endpoint_id = $1"
                       " RETURNING 1) SELECT count(*) FROM d"},
    /* A webhook.ping event $2 for enabled endpoint $1 (key: the endpoint), in pix_event's
     * shape, and its one delivery: (endpoint exists, enabled, delivery_id or NULL). */
    {"webhook_ping",
     "WITH ep AS (SELECT endpoint_id, enabled FROM webhook_endpoints WHERE endpoint_id = $1),"
     " t AS (SELECT clock_timestamp() AS at),"
     " ev AS (INSERT INTO webhook_events (event_id, type, msg_key, payload, occurred_at)"
     " SELECT $2::uuid, 'webhook.ping', ep.endpoint_id::text, jsonb_build_object('version', 1,"
     " 'id', $2::uuid, 'type', 'webhook.ping', 'occurred_at', to_char(t.at AT TIME ZONE 'UTC',"
     " 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), 'data', jsonb_build_object('endpoint_id',"
     " ep.endpoint_id)), t.at FROM ep, t WHERE ep.enabled RETURNING event_id, msg_key),"
     " d AS (INSERT INTO webhook_deliveries (endpoint_id, event_id, msg_key)"
     " SELECT $1, event_id, msg_key FROM ev RETURNING delivery_id)"
     " SELECT (SELECT count(*) FROM ep), (SELECT enabled FROM ep), (SELECT delivery_id FROM d)"},
    /* Replay deliveries to endpoint $1 of the events it subscribes to that occurred in
     * [$2, $3) (at most $4 seconds, pings aside), in (occurred_at, event_id) order; none
     * if more than $5: (endpoint exists, range ok, events (up to $5 + 1), replayed). */
    {"webhook_replay",
     "WITH ep AS (SELECT endpoint_id, events FROM webhook_endpoints WHERE endpoint_id = $1),"
     " ok AS (SELECT $3::timestamptz > $2::timestamptz AND $3::timestamptz - $2::timestamptz"
     " <= make_interval(secs => $4::float8) AS ok),"
     " ev AS (SELECT w.event_id, w.msg_key, w.occurred_at FROM webhook_events w, ep, ok"
     " WHERE ok.ok AND w.occurred_at >= $2::timestamptz AND w.occurred_at < $3::timestamptz"
     " AND w.type <> 'webhook.ping' AND (w.type = ANY (ep.events) OR '*' = ANY (ep.events))"
     " ORDER BY w.occurred_at, w.event_id LIMIT $5::int + 1),"
     " n AS (SELECT count(*) AS n FROM ev),"
     " d AS (INSERT INTO webhook_deliveries (endpoint_id, event_id, msg_key, replay)"
     " SELECT $1, event_id, msg_key, true FROM ev WHERE (SELECT n FROM n) <= $5::int"
     " ORDER BY occurred_at, event_id RETURNING 1)"
     " SELECT (SELECT count(*) FROM ep), (SELECT ok FROM ok), (SELECT n FROM n),"
     " (SELECT count(*) FROM d)"},
    /* Endpoint $4's deliveries, newest first, after (delivery_id $1, event $2), $3 rows,
     * status $5 (NULL: any). */
    /* clang-format off */
    {"webhook_deliveries",
     "SELECT d.delivery_id::text, d.event_id, w.type, d.msg_key, d.replay, d.status, d.attempts,"
     " CASE WHEN d.status = 'pending' THEN " API_IMAGE_TS_MS("d.next_attempt_at") " END,"
     " d.last_status, d.last_error, " API_IMAGE_TS_MS("d.created_at") ","
     " " API_IMAGE_TS_MS("d.delivered_at") " FROM webhook_deliveries d JOIN webhook_events w"
     " ON w.event_id = d.event_id WHERE d.endpoint_id = $4::uuid"
     " AND ($5::text IS NULL OR d.status = $5::text)"
     " AND (d.delivery_id, d.event_id) < (coalesce($1::bigint, 9223372036854775807),"
     " coalesce($2::uuid, 'ffffffff-ffff-ffff-ffff-ffffffffffff'))"
     " ORDER BY d.delivery_id DESC LIMIT $3::int"},
    /* clang-format on */

    /* links.c */
    /* $1 link, $2 owner, $3 'image' or 'album', $4 its id (the owner's; an active image),
     * $5 token hash (hex), $6 seconds to expiry ('': never), $7 password hash, $8
     * allow_download, $9 max_views, $10 links per owner. Returns 1 made, 0 no such item of
     * the owner, -2 the cap; the expiry; the link.created events written (in this
     * transaction). */
    {"link_create",
     "WITH t AS (SELECT image_id, NULL::uuid AS album_id FROM images WHERE $3 = 'image'"
     " AND image_id = $4::uuid AND owner_id = $2 AND status = 'active' UNION ALL"
     " SELECT NULL::uuid, album_id FROM albums WHERE $3 = 'album' AND album_id = $4::uuid"
     " AND owner_id = $2),"
     " ok AS (SELECT (SELECT count(*) FROM public_links WHERE owner_id = $2) < $10::int AS ok),"
     " n AS (INSERT INTO public_links (link_id, token_hash, owner_id, image_id, album_id,"
     " expires_at, password_hash, allow_download, max_views) SELECT $1, decode($5, 'hex'), $2,"
     " t.image_id, t.album_id, now() + make_interval(secs => nullif($6, '')::float8), $7,"
     " $8::boolean, $9::bigint FROM t WHERE (SELECT ok FROM ok) RETURNING *),"
     " x AS (SELECT l.*," LINK_EXPIRES " AS exp FROM n l),"
     " e AS (SELECT pix_event('link.created', coalesce(x.image_id, x.album_id)::text,"
     " jsonb_strip_nulls(jsonb_build_object('link_id', x.link_id, 'owner_id', x.owner_id,"
     " 'image_id', x.image_id, 'album_id', x.album_id))"
     " || jsonb_build_object('expires_at', nullif(x.exp, ''), 'allow_download',"
     " x.allow_download, 'has_password', x.password_hash IS NOT NULL)) FROM x)"
     " SELECT CASE WHEN NOT EXISTS (SELECT 1 FROM t) THEN 0 WHEN NOT (SELECT ok FROM ok)"
     " THEN -2 ELSE 1 END, coalesce((SELECT exp FROM x), ''), (SELECT count(*) FROM e)"},
    /* The owner's links, newest first, after the cursor ($2, $3). */
    {"link_list", "SELECT l.link_id, CASE WHEN l.image_id IS NULL THEN 'album' ELSE 'image' END,"
                  " coalesce(l.image_id, l.album_id)," LINK_EXPIRES ", l.password_hash IS NOT NULL,"
                  " l.allow_download, coalesce(l.max_views::text, ''), l.views," LINK_CREATED ","
                  " CASE WHEN l.expires_at <= now() THEN 'expired' WHEN l.views >= l.max_views"
                  " THEN 'used_up' WHEN NOT" LINK_LIVE " THEN 'unavailable' ELSE 'active' END,"
                  " l.created_at::text AS cursor_key FROM public_links l WHERE l.owner_id = $1"
                  " AND (l.created_at, l.link_id) < (coalesce($2::timestamptz, 'infinity'),"
                  " coalesce($3::uuid, 'ffffffff-ffff-ffff-ffff-ffffffffffff'))"
                  " ORDER BY l.created_at DESC, l.link_id DESC LIMIT $4"},
    {"link_revoke", "DELETE FROM public_links WHERE link_id = $1 AND owner_id = $2"},
    /* A live link by its token's hash (hex): see LINK_BY_TOKEN. */
    {"link_resolve", "SELECT" LINK_BY_TOKEN},
    /* POST /s/{token}/unlock in one round trip: link_resolve's columns, then, for a password
     * link, one attempt of its budget shared by every API instance ($2 attempts, one back
     * every $3 seconds; migrations/018_global_limits.sql): 0 taken, else the seconds until
     * one is back. */
    {"link_unlock_resolve", "SELECT x.*, CASE WHEN x.password_hash = '' THEN 0"
                            " ELSE link_unlock_take(x.link_id, $2::int, $3::float8) END"
                            " FROM (SELECT" LINK_BY_TOKEN ") x"},
    /* One view of live link $1 (counted, within max_views) and its image; no row: gone. */
    {"link_view_image",
     "WITH v AS (UPDATE public_links l SET views = l.views + 1 WHERE l.link_id = $1"
     " AND l.image_id IS NOT NULL AND" LINK_LIVE " RETURNING l.image_id)"
     " SELECT" LINK_ITEM_COLS " FROM v JOIN images i ON i.image_id = v.image_id"
     " LEFT JOIN blobs b ON b.content_hash = i.content_hash"},
    /* One view of live link $1 and its album: id, name, the owner's active items (a
     * contributor's images are theirs to share, not the owner's). Every page is a view: a
     * cursor is not a credential, so a used-up link serves no page. */
    {"link_view_album",
     "WITH v AS (UPDATE public_links l SET views = l.views + 1 WHERE l.link_id = $1"
     " AND l.album_id IS NOT NULL AND" LINK_LIVE " RETURNING l.album_id)"
     " SELECT a.album_id, a.name, (SELECT count(*) FROM album_items ai JOIN images i"
     " ON i.image_id = ai.image_id WHERE ai.album_id = a.album_id AND i.status = 'active'"
     " AND i.owner_id = a.owner_id) FROM v JOIN albums a ON a.album_id = v.album_id"},
    /* Album $1's active items of its owner, newest capture first, after the cursor ($2, $3). */
    {"link_album_items",
     "SELECT" LINK_ITEM_COLS ", i.taken_at::text AS cursor_key FROM album_items ai"
     " JOIN albums a ON a.album_id = ai.album_id JOIN images i ON i.image_id = ai.image_id"
     " AND i.owner_id = a.owner_id LEFT JOIN blobs b"
     " ON b.content_hash = i.content_hash WHERE ai.album_id = $1 AND i.status = 'active'"
     " AND ($2::timestamptz IS NULL OR (i.taken_at, i.image_id) < ($2::timestamptz, $3::uuid))"
     " ORDER BY i.taken_at DESC, i.image_id DESC LIMIT $4"},
};
const size_t api_stmts_count = ARRAY_LEN(api_stmts);
