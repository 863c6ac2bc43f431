-- Asynchronous verification (issue 15): complete makes the image at once, 'verifying' until
-- the server has hashed its bytes, then 'active' (pointing at a blob) or 'failed'. An image
-- that is not verified points at no blob: nothing unverified is ever a dedup target, a
-- proof's content or another user's image. Its bytes are the session's object meanwhile.
ALTER TABLE images DROP CONSTRAINT images_status_check;
ALTER TABLE images ADD CONSTRAINT images_status_check
    CHECK (status IN ('verifying', 'active', 'deleted', 'failed'));
ALTER TABLE images ALTER COLUMN content_hash DROP NOT NULL;
ALTER TABLE images ADD CONSTRAINT images_verified_content
    CHECK ((content_hash IS NULL) = (status IN ('verifying', 'failed')));

-- Failed images past the trash retention, oldest first (the reconciler's retention sweep).
CREATE INDEX images_failed ON images (updated_at, image_id) WHERE status = 'failed';
