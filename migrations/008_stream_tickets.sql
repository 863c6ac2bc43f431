-- Single-use tickets that open one /sync/stream (issue 16): a browser's EventSource cannot
-- send an Authorization header, and a long-lived token in a URL ends up in logs and history.
-- Only the SHA-256 of a ticket is stored. A ticket carries its user, whether the token was
-- an admin's, and that token's expiry (the stream ends then, as with the token itself).
CREATE TABLE stream_tickets (
    ticket_hash bytea PRIMARY KEY,
    user_id     text NOT NULL,
    admin       boolean NOT NULL,
    token_exp   timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL
);
CREATE INDEX stream_tickets_expires ON stream_tickets (expires_at);
CREATE INDEX stream_tickets_user ON stream_tickets (user_id, expires_at);
