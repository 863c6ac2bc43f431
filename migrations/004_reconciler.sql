-- Reconciler (services/reconciler): partial indexes so that each sweep costs what its work
-- costs, not what the tables hold; requeue caps for stuck outbox rows and variants; and the
-- time each audit sweep (a full pass over a table or the bucket) last completed.

-- The sweeps page through their candidates by keyset (timestamp, id): an index on both
-- columns makes each page a range scan, even when many rows share one timestamp.
-- Expired sessions: still 'uploading' past expires_at.
CREATE INDEX upload_sessions_expiring ON upload_sessions (expires_at, upload_session_id)
    WHERE status = 'uploading';
-- Half-committed uploads: sessions whose completion lease ran out.
CREATE INDEX upload_sessions_leased ON upload_sessions (lease_until, upload_session_id)
    WHERE status IN ('completing', 'verifying');
-- Images in the trash, oldest first (the purge past retention).
CREATE INDEX images_trash_purge ON images (deleted_at, image_id) WHERE status = 'deleted';

-- Stuck variants, taken content by content.
CREATE INDEX image_variants_unfinished_content ON image_variants (content_hash, variant_type)
    WHERE status <> 'ready';

-- How often the reconciler reset a stuck outbox row, and when it last did.
ALTER TABLE outbox ADD COLUMN resets integer NOT NULL DEFAULT 0,
                   ADD COLUMN reset_at timestamptz;

-- How often the reconciler requeued a variant that stayed pending or failed too long.
ALTER TABLE image_variants ADD COLUMN requeues integer NOT NULL DEFAULT 0;

-- When each audit sweep (refcount, orphan_objects) last completed a full pass.
CREATE TABLE reconciler_state (
    sweep    text PRIMARY KEY,
    last_run timestamptz NOT NULL
);
