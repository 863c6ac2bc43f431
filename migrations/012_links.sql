-- Public links (issue 19): an owner's image or album shared with anyone who holds the
-- link's token, with an expiry, an optional password and an optional view budget. The
-- token is never stored: only its SHA-256 (looked up, then compared in constant time).
-- A link to an image works while the image is active (a deleted one's link works again on
-- restore); purging the image, deleting the album or revoking the link drops the row.
CREATE TABLE public_links (
    link_id        uuid PRIMARY KEY,
    token_hash     bytea NOT NULL UNIQUE CHECK (length(token_hash) = 32),
    owner_id       text NOT NULL REFERENCES users (user_id),
    image_id       uuid REFERENCES images (image_id) ON DELETE CASCADE,
    album_id       uuid REFERENCES albums (album_id) ON DELETE CASCADE,
    expires_at     timestamptz, -- NULL: never (only when PIXPLANE_LINK_ALLOW_FOREVER)
    password_hash  text, -- "scrypt$<log2 N>$<r>$<p>$<salt>$<hash>", NULL: none
    allow_download boolean NOT NULL DEFAULT true,
    max_views      bigint CHECK (max_views > 0),
    views          bigint NOT NULL DEFAULT 0,
    created_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
    CHECK ((image_id IS NULL) <> (album_id IS NULL))
);
CREATE INDEX public_links_owner ON public_links (owner_id, created_at DESC, link_id DESC);
CREATE INDEX public_links_image ON public_links (image_id) WHERE image_id IS NOT NULL;
CREATE INDEX public_links_album ON public_links (album_id) WHERE album_id IS NOT NULL;
