-- pixplane schema: users, content-addressed blobs with reference counts, user images,
-- variants, resumable upload sessions, and the outbox / change log / GC tombstones that
-- keep PostgreSQL and object storage consistent across crashes.

CREATE TABLE users (
    user_id    text PRIMARY KEY CHECK (user_id ~ '^[A-Za-z0-9._@-]{1,128}$'),
    email      text,
    status     text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'disabled')),
    created_at timestamptz NOT NULL DEFAULT now()
);

-- One row per distinct content. storage_path is the object that first carried these bytes
-- (uploads are never copied to be renamed); ref_count counts the image rows pointing here.
CREATE TABLE blobs (
    content_hash text PRIMARY KEY CHECK (content_hash ~ '^[0-9a-f]{64}$'),
    blob_id      bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
    storage_path text NOT NULL UNIQUE,
    size         bigint NOT NULL CHECK (size >= 0),
    ref_count    integer NOT NULL DEFAULT 0 CHECK (ref_count >= 0),
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);
-- Cleanup jobs: unreferenced blobs (normally purged in the transaction that drops the last
-- reference; a row here means drift or an interrupted purge).
CREATE INDEX blobs_unreferenced ON blobs (updated_at) WHERE ref_count = 0;

CREATE TABLE images (
    image_id          uuid PRIMARY KEY,
    owner_id          text NOT NULL REFERENCES users (user_id),
    content_hash      text NOT NULL REFERENCES blobs (content_hash),
    upload_session_id uuid UNIQUE,
    name              text NOT NULL,
    size              bigint NOT NULL CHECK (size >= 0),
    mime_type         text NOT NULL,
    visibility        text NOT NULL DEFAULT 'private'
                      CHECK (visibility IN ('private', 'shared', 'public')),
    status            text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'deleted')),
    created_at        timestamptz NOT NULL DEFAULT clock_timestamp(),
    updated_at        timestamptz NOT NULL DEFAULT clock_timestamp(),
    deleted_at        timestamptz,
    CHECK ((status = 'deleted') = (deleted_at IS NOT NULL))
);
CREATE INDEX images_owner_created ON images (owner_id, created_at DESC, image_id DESC);
CREATE INDEX images_content_hash ON images (content_hash);
CREATE INDEX images_trash ON images (status, deleted_at) WHERE status = 'deleted';

CREATE TABLE image_shares (
    image_id   uuid NOT NULL REFERENCES images (image_id) ON DELETE CASCADE,
    user_id    text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (image_id, user_id)
);
CREATE INDEX image_shares_user ON image_shares (user_id, created_at DESC);

-- Variants belong to content, not to images: one row per (content, variant type).
CREATE TABLE image_variants (
    content_hash text NOT NULL REFERENCES blobs (content_hash),
    variant_type text NOT NULL,
    status       text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'ready', 'failed')),
    storage_path text,
    mime_type    text,
    width        integer,
    height       integer,
    size         bigint,
    attempts     integer NOT NULL DEFAULT 0,
    error        text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (content_hash, variant_type)
);
CREATE INDEX image_variants_unfinished ON image_variants (updated_at) WHERE status <> 'ready';

-- A resumable upload. The multipart upload is created lazily (a proof of possession needs
-- none). 'completing' and 'verifying' are owned by one completer until lease_until.
CREATE TABLE upload_sessions (
    upload_session_id uuid PRIMARY KEY,
    owner_id          text NOT NULL REFERENCES users (user_id),
    file_name         text NOT NULL,
    file_size         bigint NOT NULL CHECK (file_size > 0),
    mime_type         text NOT NULL,
    declared_sha256   text CHECK (declared_sha256 ~ '^[0-9a-f]{64}$'),
    chunk_size        bigint NOT NULL CHECK (chunk_size > 0),
    chunk_count       integer NOT NULL CHECK (chunk_count BETWEEN 1 AND 10000),
    object_key        text NOT NULL UNIQUE,
    s3_upload_id      text,
    status            text NOT NULL DEFAULT 'uploading'
                      CHECK (status IN ('uploading', 'completing', 'verifying', 'completed',
                                        'aborted', 'expired', 'failed')),
    idempotency_key   text,
    pop_nonce         text,
    pop_ranges        jsonb,
    lease_token       uuid,
    lease_until       timestamptz,
    content_hash      text,
    image_id          uuid,
    deduplicated      boolean,
    error_code        text,
    error_message     text,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    expires_at        timestamptz NOT NULL
);
CREATE UNIQUE INDEX upload_sessions_idempotency ON upload_sessions (owner_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE INDEX upload_sessions_live ON upload_sessions (expires_at)
    WHERE status IN ('uploading', 'completing', 'verifying');
CREATE INDEX upload_sessions_owner ON upload_sessions (owner_id, created_at DESC);

-- Parts as verified by complete (storage stays the source of truth while uploading).
CREATE TABLE upload_chunks (
    upload_session_id uuid NOT NULL REFERENCES upload_sessions (upload_session_id)
                      ON DELETE CASCADE,
    chunk_number      integer NOT NULL CHECK (chunk_number >= 0),
    size              bigint NOT NULL,
    etag              text NOT NULL,
    verified_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (upload_session_id, chunk_number)
);

-- Transactional outbox: written in the transaction of the change, relayed to Kafka.
CREATE TABLE outbox (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    topic      text NOT NULL,
    msg_key    text NOT NULL,
    payload    jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    sent_at    timestamptz,
    attempts   integer NOT NULL DEFAULT 0,
    last_error text
);
CREATE INDEX outbox_pending ON outbox (id) WHERE sent_at IS NULL;

-- Per-user change log for device sync. txid orders entries by writing transaction so a
-- reader only hands out positions below the oldest transaction still in flight.
CREATE TABLE change_log (
    seq        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    txid       xid8 NOT NULL DEFAULT pg_current_xact_id(),
    user_id    text NOT NULL,
    image_id   uuid NOT NULL,
    kind       text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX change_log_user_pos ON change_log (user_id, txid, seq);
CREATE INDEX change_log_created ON change_log (created_at);

-- Objects a committed transaction made unreachable; deleted from storage afterwards and
-- then forgotten. A crash in between leaves the tombstone, so nothing is lost track of.
CREATE TABLE gc_objects (
    storage_path text PRIMARY KEY,
    reason       text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    attempts     integer NOT NULL DEFAULT 0,
    last_error   text
);
