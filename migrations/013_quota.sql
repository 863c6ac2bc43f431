-- Quotas and usage (issue 19): per-user counters kept exact by triggers on images and
-- upload_sessions (every path: API, worker, reconciler), admin overrides of the configured
-- limits, and the admission functions POST /uploads and /uploads/batch call with the user's
-- usage row locked, so concurrent creates cannot overshoot a quota together.
--
-- Accounting (README "Quotas and usage"): logical bytes, images.size of every image that
-- is 'verifying', 'active' or 'deleted' (trash counts until purged; dedup counts fully per
-- image); 'failed' images count nothing; variants are not counted. An open session
-- ('uploading' / 'completing') reserves its declared size and one image until it completes
-- (the reservation becomes the image), is aborted, fails or expires.

CREATE TABLE user_usage (
    user_id           text PRIMARY KEY,
    bytes_used        bigint NOT NULL DEFAULT 0,
    images            bigint NOT NULL DEFAULT 0,
    trash_bytes       bigint NOT NULL DEFAULT 0,
    trash_images      bigint NOT NULL DEFAULT 0,
    reserved_bytes    bigint NOT NULL DEFAULT 0,
    reserved_images   bigint NOT NULL DEFAULT 0,
    -- admin overrides (NULL: the configured default; 0: unlimited)
    max_bytes         bigint CHECK (max_bytes >= 0),
    max_images        bigint CHECK (max_images >= 0),
    -- the last quota.exceeded event (one per user per event interval)
    exceeded_event_at timestamptz,
    updated_at        timestamptz NOT NULL DEFAULT now()
);

-- What an image counts: bytes, images, trash bytes, trash images.
CREATE FUNCTION quota_image_counts(p_status text, p_size bigint, OUT b bigint, OUT n bigint,
                                   OUT tb bigint, OUT tn bigint)
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN p_status IN ('verifying', 'active', 'deleted') THEN p_size ELSE 0 END,
           CASE WHEN p_status IN ('verifying', 'active', 'deleted') THEN 1 ELSE 0 END,
           CASE WHEN p_status = 'deleted' THEN p_size ELSE 0 END,
           CASE WHEN p_status = 'deleted' THEN 1 ELSE 0 END
$$;

-- Adds a delta to a user's counters (the row is made on first use).
CREATE FUNCTION quota_add(p_user text, p_b bigint, p_n bigint, p_tb bigint, p_tn bigint,
                          p_rb bigint, p_rn bigint) RETURNS void
LANGUAGE sql AS $$
    INSERT INTO user_usage AS u (user_id, bytes_used, images, trash_bytes, trash_images,
                                 reserved_bytes, reserved_images)
    VALUES (p_user, p_b, p_n, p_tb, p_tn, p_rb, p_rn)
    ON CONFLICT (user_id) DO UPDATE
    SET bytes_used = u.bytes_used + p_b, images = u.images + p_n,
        trash_bytes = u.trash_bytes + p_tb, trash_images = u.trash_images + p_tn,
        reserved_bytes = u.reserved_bytes + p_rb, reserved_images = u.reserved_images + p_rn,
        updated_at = now()
$$;

CREATE FUNCTION quota_images_trg() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    o record;
    n record;
BEGIN
    IF TG_OP <> 'INSERT' THEN
        o := quota_image_counts(OLD.status, OLD.size);
        PERFORM quota_add(OLD.owner_id, -o.b, -o.n, -o.tb, -o.tn, 0, 0);
    END IF;
    IF TG_OP <> 'DELETE' THEN
        n := quota_image_counts(NEW.status, NEW.size);
        PERFORM quota_add(NEW.owner_id, n.b, n.n, n.tb, n.tn, 0, 0);
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER images_quota AFTER INSERT OR DELETE ON images
    FOR EACH ROW EXECUTE FUNCTION quota_images_trg();
-- (not on other columns: the worker's capture updates and renames do not count)
CREATE TRIGGER images_quota_upd AFTER UPDATE OF status, size, owner_id ON images
    FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status OR OLD.size <> NEW.size
                       OR OLD.owner_id <> NEW.owner_id)
    EXECUTE FUNCTION quota_images_trg();

-- An open session reserves its declared size and one image.
CREATE FUNCTION quota_sessions_trg() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND (OLD.status, OLD.file_size, OLD.owner_id)
                            = (NEW.status, NEW.file_size, NEW.owner_id) THEN
        RETURN NULL;
    END IF;
    IF TG_OP <> 'INSERT' AND OLD.status IN ('uploading', 'completing') THEN
        PERFORM quota_add(OLD.owner_id, 0, 0, 0, 0, -OLD.file_size, -1);
    END IF;
    IF TG_OP <> 'DELETE' AND NEW.status IN ('uploading', 'completing') THEN
        PERFORM quota_add(NEW.owner_id, 0, 0, 0, 0, NEW.file_size, 1);
    END IF;
    RETURN NULL;
END $$;

-- (an update of these columns is a status change: the function adds nothing otherwise)
CREATE TRIGGER sessions_quota
    AFTER INSERT OR DELETE OR UPDATE OF status, file_size, owner_id ON upload_sessions
    FOR EACH ROW EXECUTE FUNCTION quota_sessions_trg();

-- A user's usage and effective limits (p_def_*: the configured defaults, 0 unlimited; a
-- NULL limit is unlimited). Reservations of 'uploading' sessions past expires_at are left
-- out: they can no longer complete (the reconciler's session sweep then closes them).
CREATE FUNCTION quota_usage(p_user text, p_def_bytes bigint, p_def_images bigint,
                            OUT bytes_used bigint, OUT images bigint, OUT trash_bytes bigint,
                            OUT trash_images bigint, OUT reserved_bytes bigint,
                            OUT reserved_images bigint, OUT max_bytes bigint,
                            OUT max_images bigint, OUT exceeded_event_at timestamptz)
LANGUAGE sql STABLE AS $$
    WITH x AS (SELECT coalesce(sum(file_size), 0)::bigint AS b, count(*) AS n
               FROM upload_sessions WHERE owner_id = p_user AND status = 'uploading'
               AND expires_at <= now())
    SELECT coalesce(u.bytes_used, 0), coalesce(u.images, 0), coalesce(u.trash_bytes, 0),
           coalesce(u.trash_images, 0), greatest(coalesce(u.reserved_bytes, 0) - x.b, 0),
           greatest(coalesce(u.reserved_images, 0) - x.n, 0),
           nullif(coalesce(u.max_bytes, p_def_bytes), 0),
           nullif(coalesce(u.max_images, p_def_images), 0), u.exceeded_event_at
    FROM x LEFT JOIN user_usage u ON u.user_id = p_user
$$;

-- Locks the user's usage row (made if missing) for the admission of new sessions and
-- returns the usage as quota_usage does, read after the lock: the creates of one user
-- queue here, each seeing the reservations of those before it.
CREATE FUNCTION quota_lock(p_user text, p_def_bytes bigint, p_def_images bigint)
RETURNS TABLE (bytes_used bigint, images bigint, trash_bytes bigint, trash_images bigint,
               reserved_bytes bigint, reserved_images bigint, max_bytes bigint,
               max_images bigint, exceeded_event_at timestamptz)
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO user_usage AS u (user_id) VALUES (p_user) ON CONFLICT DO NOTHING;
    PERFORM 1 FROM user_usage u WHERE u.user_id = p_user FOR UPDATE;
    RETURN QUERY SELECT * FROM quota_usage(p_user, p_def_bytes, p_def_images);
END $$;

-- Why p_bytes more bytes and p_images more images do not fit (usage and limits as
-- quota_usage returns them): 'bytes', 'images' or NULL (they fit).
CREATE FUNCTION quota_kind(p_used bigint, p_reserved bigint, p_max bigint, p_n bigint,
                           p_nreserved bigint, p_nmax bigint, p_bytes bigint, p_images bigint)
RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN p_max IS NOT NULL AND p_used + p_reserved + p_bytes > p_max THEN 'bytes'
                WHEN p_nmax IS NOT NULL AND p_n + p_nreserved + p_images > p_nmax
                THEN 'images' END
$$;

-- A refused upload: writes quota.exceeded unless one was written for this user less than
-- p_every seconds ago (the usage row is locked by quota_lock, so a client loop writes one
-- event per interval). Returns whether an event was written.
CREATE FUNCTION quota_refused(p_user text, p_kind text, p_used bigint, p_limit bigint,
                              p_requested bigint, p_every float8) RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE user_usage SET exceeded_event_at = now() WHERE user_id = p_user
        AND (exceeded_event_at IS NULL
             OR exceeded_event_at <= now() - make_interval(secs => p_every));
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    PERFORM pix_event('quota.exceeded', p_user,
                      jsonb_build_object('user_id', p_user, 'kind', p_kind, 'used', p_used,
                                         'limit', p_limit, 'requested', p_requested));
    RETURN true;
END $$;

-- A user's counters as the images and open sessions say (the reconciler's audit).
CREATE FUNCTION quota_actual(p_user text, OUT bytes_used bigint, OUT images bigint,
                             OUT trash_bytes bigint, OUT trash_images bigint,
                             OUT reserved_bytes bigint, OUT reserved_images bigint)
LANGUAGE sql STABLE AS $$
    SELECT coalesce(sum(c.b), 0)::bigint, coalesce(sum(c.n), 0)::bigint,
           coalesce(sum(c.tb), 0)::bigint, coalesce(sum(c.tn), 0)::bigint,
           (SELECT coalesce(sum(file_size), 0)::bigint FROM upload_sessions
            WHERE owner_id = p_user AND status IN ('uploading', 'completing')),
           (SELECT count(*) FROM upload_sessions
            WHERE owner_id = p_user AND status IN ('uploading', 'completing'))
    FROM images i, quota_image_counts(i.status, i.size) c WHERE i.owner_id = p_user
$$;

-- Counters for what exists already.
INSERT INTO user_usage (user_id, bytes_used, images, trash_bytes, trash_images,
                        reserved_bytes, reserved_images)
SELECT x.user_id, a.* FROM users x, quota_actual(x.user_id) a;
