-- Indexes found by bench/scale at 10,000,000 images (issue 20). A device's first /sync
-- (sync_snapshot) pages through its user's active images in image_id order; with only the
-- (owner, time) indexes a user with 100,000 images had all of them read and sorted for
-- each page of 100. This index serves each page as one range scan from the cursor.
-- At that size the build takes about a minute with writes to images blocked: on a live
-- database create it first with CREATE INDEX CONCURRENTLY (same name); this is then a no-op.
CREATE INDEX IF NOT EXISTS images_owner_active_id ON images (owner_id, image_id)
    WHERE status = 'active';
