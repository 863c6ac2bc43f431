-- Dedup without upload, v2 (common/pop.h): banks of one-time proof-of-possession challenges
-- answered while the server streams the content, a challenge budget per (user, content),
-- and a per-blob random threshold before dedup without upload starts.

-- One-time challenges for a blob, with their answers (secret: never sent to clients). A
-- challenge is deleted when it is issued, so none is used twice.
CREATE TABLE pop_bank (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    content_hash text NOT NULL REFERENCES blobs (content_hash) ON DELETE CASCADE,
    nonce        text NOT NULL,
    ranges       jsonb NOT NULL,
    answer       text NOT NULL CHECK (answer ~ '^[0-9a-f]{64}$'),
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX pop_bank_blob ON pop_bank (content_hash, id);

-- Challenges issued per (user, declared content hash), stored or not: a token bucket.
-- content_hash is a claim, so no foreign key.
CREATE TABLE pop_budget (
    user_id      text NOT NULL,
    content_hash text NOT NULL,
    tokens       double precision NOT NULL,
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, content_hash)
);
CREATE INDEX pop_budget_updated ON pop_budget (updated_at);

-- pop_salt fixes each blob's random threshold: with PIXPLANE_DEDUP_THRESHOLD = N >= 2, dedup
-- without upload needs 2 + floor(pop_salt * (N - 1)) existing copies, uniform in 2..N;
-- the volatile default rewrites blobs once, giving rows from before v2 their own salt.
-- pop_refill_at: the last refill of the blob's bank (one at a time, at most once a minute).
ALTER TABLE blobs ADD COLUMN pop_salt double precision NOT NULL DEFAULT random(),
                  ADD COLUMN pop_refill_at timestamptz;

-- The expected answer of the session's challenge: a bank answer, a random value for a decoy,
-- or NULL when the bank was dry (computed from storage when the proof arrives).
ALTER TABLE upload_sessions ADD COLUMN pop_answer text;

-- `deduplicated` as the client is told: a proof of possession, or the owner already had the
-- content. The `deduplicated` column stays the storage truth (the object was not kept).
ALTER TABLE upload_sessions ADD COLUMN deduplicated_own boolean;
