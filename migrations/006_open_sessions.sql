-- Per-user caps on open upload sessions and the bytes they declare (issue 13): the API
-- counts a user's open sessions at each POST /uploads, through this partial index only.
CREATE INDEX upload_sessions_open ON upload_sessions (owner_id) INCLUDE (file_size, expires_at)
    WHERE status IN ('uploading', 'completing', 'verifying');
