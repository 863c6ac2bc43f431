-- Albums (issue 18): an owner's named groups of images, shared with members who view or
-- also contribute their own images. Album changes reach every member's devices through
-- the change log (rows carrying album_id); images reached through an album are readable by
-- its owner and members while active.

CREATE TABLE albums (
    album_id       uuid PRIMARY KEY,
    owner_id       text NOT NULL REFERENCES users (user_id),
    name           text NOT NULL,
    cover_image_id uuid REFERENCES images (image_id) ON DELETE SET NULL,
    sort           text NOT NULL DEFAULT 'taken_at' CHECK (sort IN ('taken_at', 'position')),
    show_location  boolean NOT NULL DEFAULT false,
    created_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
    updated_at     timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX albums_owner ON albums (owner_id, album_id);

-- Rows stay while their image is soft-deleted (it comes back on restore); a purge cascades.
CREATE TABLE album_items (
    album_id   uuid NOT NULL REFERENCES albums (album_id) ON DELETE CASCADE,
    image_id   uuid NOT NULL REFERENCES images (image_id) ON DELETE CASCADE,
    position   bigint NOT NULL,
    added_by   text NOT NULL,
    added_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (album_id, image_id)
);
CREATE INDEX album_items_image ON album_items (image_id);
CREATE INDEX album_items_position ON album_items (album_id, position, image_id);

CREATE TABLE album_members (
    album_id   uuid NOT NULL REFERENCES albums (album_id) ON DELETE CASCADE,
    user_id    text NOT NULL CHECK (user_id ~ '^[A-Za-z0-9._@-]{1,128}$'),
    role       text NOT NULL CHECK (role IN ('viewer', 'contributor')),
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (album_id, user_id)
);
CREATE INDEX album_members_user ON album_members (user_id, album_id);

-- A change row names an image, an album, or both (an album item).
ALTER TABLE change_log ADD COLUMN album_id uuid;
ALTER TABLE change_log ALTER COLUMN image_id DROP NOT NULL;
ALTER TABLE change_log ADD CONSTRAINT change_log_names_something
    CHECK (image_id IS NOT NULL OR album_id IS NOT NULL);

-- Who sees album `alb`: its owner and its members.
CREATE FUNCTION album_audience(alb uuid) RETURNS SETOF text LANGUAGE sql STABLE AS $$
    SELECT owner_id FROM albums WHERE album_id = alb
    UNION SELECT user_id FROM album_members WHERE album_id = alb
$$;

-- May `viewer` reach image `img` through an album (its owner or a member of one holding
-- it)? The image's status is the caller's to check.
CREATE FUNCTION image_in_viewers_album(img uuid, viewer text) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT EXISTS (SELECT 1 FROM album_items ai JOIN albums a ON a.album_id = ai.album_id
                   WHERE ai.image_id = img AND (a.owner_id = viewer
                   OR EXISTS (SELECT 1 FROM album_members m WHERE m.album_id = a.album_id
                              AND m.user_id = viewer)))
$$;

CREATE OR REPLACE FUNCTION capture_gps_visible(img uuid, owner text, viewer text)
RETURNS boolean LANGUAGE sql STABLE AS $$
    SELECT owner = viewer
        OR EXISTS (SELECT 1 FROM image_shares s
                   WHERE s.image_id = img AND s.user_id = viewer AND s.show_location)
        OR EXISTS (SELECT 1 FROM album_items ai JOIN albums a ON a.album_id = ai.album_id
                   WHERE ai.image_id = img AND a.show_location AND (a.owner_id = viewer
                   OR EXISTS (SELECT 1 FROM album_members m WHERE m.album_id = a.album_id
                              AND m.user_id = viewer)))
$$;

-- The owner, the users it is shared with unless private, and the owners and members of
-- the albums holding it.
CREATE OR REPLACE FUNCTION image_audience(img uuid) RETURNS SETOF text LANGUAGE sql STABLE AS $$
    SELECT owner_id FROM images WHERE image_id = img
    UNION SELECT s.user_id FROM image_shares s JOIN images i ON i.image_id = s.image_id
          WHERE s.image_id = img AND i.visibility <> 'private'
    UNION SELECT a.owner_id FROM album_items ai JOIN albums a ON a.album_id = ai.album_id
          WHERE ai.image_id = img
    UNION SELECT m.user_id FROM album_items ai JOIN album_members m ON m.album_id = ai.album_id
          WHERE ai.image_id = img
$$;
