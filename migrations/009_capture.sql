-- Capture metadata (issue 18): when, where and with what a photo was taken, read once per
-- content by the worker from the original's EXIF and shared by every image of that content.
-- Variants stay stripped; this table is the only place location lives.

CREATE TABLE blob_capture (
    content_hash  text PRIMARY KEY REFERENCES blobs (content_hash) ON DELETE CASCADE,
    -- The camera's clock as written ('YYYY-MM-DDTHH:MM:SS[.fff]') and its UTC offset
    -- ('+02:00'; NULL: the zone is unknown). taken_at is that instant, or, with no offset,
    -- the clock time read as UTC (an ordering key, flagged as zone-unknown by the API).
    taken_local   text,
    taken_offset  text,
    taken_at      timestamptz,
    width         integer,  -- after orientation
    height        integer,
    orientation   smallint, -- EXIF 1..8
    format        text,     -- jpeg, heif, avif, png, webp, tiff, gif
    color_space   text,     -- libvips interpretation: srgb, cmyk, b-w, rgb16, ...
    make          text,
    model         text,
    lens          text,
    f_number      double precision,
    exposure_time double precision, -- seconds
    iso           integer,
    focal_length  double precision, -- mm
    gps_lat       double precision, -- degrees, south negative
    gps_lon       double precision, -- degrees, west negative
    gps_alt       double precision, -- metres, below sea level negative
    errors        text[] NOT NULL DEFAULT '{}', -- fields present but unreadable
    extractor     smallint NOT NULL DEFAULT 1,  -- version of the worker's reader
    extracted_at  timestamptz NOT NULL DEFAULT now()
);

-- The client's word for when the file was last modified (pixctl: the file's mtime), the
-- fallback capture time of content without one.
ALTER TABLE upload_sessions ADD COLUMN file_modified_at timestamptz;
ALTER TABLE images ADD COLUMN file_modified_at timestamptz;

-- The timeline's key: the content's capture time, else the file's modification time, else
-- the upload time. Set by the trigger below when an image gets its content and by the
-- worker when it reads the content's capture time.
ALTER TABLE images ADD COLUMN taken_at timestamptz;
UPDATE images SET taken_at = created_at;
ALTER TABLE images ALTER COLUMN taken_at SET NOT NULL;
CREATE INDEX images_owner_taken ON images (owner_id, taken_at DESC, image_id DESC);

-- A volatile function: its query takes a fresh snapshot, so a capture committed while this
-- statement waited on the blob's row lock (the worker's writer holds it) is seen.
CREATE FUNCTION images_taken_at() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.taken_at := coalesce((SELECT c.taken_at FROM blob_capture c
                              WHERE c.content_hash = NEW.content_hash),
                             NEW.file_modified_at, NEW.created_at);
    RETURN NEW;
END
$$;

CREATE TRIGGER images_taken_at BEFORE INSERT OR UPDATE OF content_hash, file_modified_at
    ON images FOR EACH ROW EXECUTE FUNCTION images_taken_at();

-- Location is the owner's: a share shows it only when the owner says so.
ALTER TABLE image_shares ADD COLUMN show_location boolean NOT NULL DEFAULT false;

-- May `viewer` see the location of image `img` (owned by `owner`)? Later migrations widen
-- this (albums) with CREATE OR REPLACE.
CREATE FUNCTION capture_gps_visible(img uuid, owner text, viewer text) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT owner = viewer OR EXISTS (SELECT 1 FROM image_shares s
                                     WHERE s.image_id = img AND s.user_id = viewer
                                     AND s.show_location)
$$;

-- The API's "capture" object of an image for `viewer` (see docs/openapi.yaml).
CREATE FUNCTION image_capture(i images, viewer text) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object(
        'status', CASE WHEN i.content_hash IS NULL OR c.content_hash IS NULL THEN 'pending'
                       ELSE 'done' END,
        'taken_at', to_char(i.taken_at AT TIME ZONE 'UTC',
                            'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
        'time_source', CASE WHEN c.taken_at IS NOT NULL THEN 'exif'
                            WHEN i.file_modified_at IS NOT NULL THEN 'file_modified'
                            ELSE 'upload' END,
        'taken_at_local', c.taken_local,
        'offset', c.taken_offset,
        'time_zone_known', c.taken_at IS NULL OR c.taken_offset IS NOT NULL,
        'file_modified_at', to_char(i.file_modified_at AT TIME ZONE 'UTC',
                                    'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
        'width', c.width, 'height', c.height, 'orientation', c.orientation,
        'format', c.format, 'color_space', c.color_space,
        'make', c.make, 'model', c.model, 'lens', c.lens,
        'f_number', c.f_number, 'exposure_time', c.exposure_time, 'iso', c.iso,
        'focal_length', c.focal_length,
        'gps', CASE WHEN c.gps_lat IS NOT NULL
                     AND capture_gps_visible(i.image_id, i.owner_id, viewer)
                    THEN jsonb_build_object('latitude', c.gps_lat, 'longitude', c.gps_lon,
                                            'altitude', c.gps_alt) END,
        'errors', coalesce(to_jsonb(c.errors), '[]'::jsonb))
    FROM (SELECT 1) one LEFT JOIN blob_capture c ON c.content_hash = i.content_hash
$$;

-- Who hears of a change to image `img` (its change-log fan-out): the owner and, unless the
-- image is private, the users it is shared with. Later migrations widen it (albums).
CREATE FUNCTION image_audience(img uuid) RETURNS SETOF text LANGUAGE sql STABLE AS $$
    SELECT owner_id FROM images WHERE image_id = img
    UNION SELECT s.user_id FROM image_shares s JOIN images i ON i.image_id = s.image_id
          WHERE s.image_id = img AND i.visibility <> 'private'
$$;
