-- Integration events of images, variants and shares (issue 19): row triggers write them with
-- pix_event (011) in the transaction of the change, key = the image id, data = ids and plain
-- fields only (never a URL or a storage path). Consumed by pixplane-hooks (webhooks).
-- A bulk load may skip them: SET LOCAL pixplane.events = 'off' in its transaction.

CREATE FUNCTION pix_events_on() RETURNS boolean LANGUAGE sql STABLE AS $$
    SELECT coalesce(current_setting('pixplane.events', true), '') <> 'off'
$$;

CREATE FUNCTION image_event_data(i images) RETURNS jsonb LANGUAGE sql IMMUTABLE AS $$
    SELECT jsonb_build_object('image_id', i.image_id, 'owner_id', i.owner_id,
                              'content_hash', i.content_hash, 'size', i.size,
                              'mime_type', i.mime_type, 'status', i.status)
$$;

-- INSERT: image.created (then image.verified when it is born active: a dedup or a
-- synchronous verification); UPDATE of status: verified, failed, deleted, restored.
CREATE FUNCTION images_events() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    t text;
BEGIN
    IF NOT pix_events_on() THEN
        RETURN NULL;
    END IF;
    IF TG_OP = 'INSERT' THEN
        PERFORM pix_event('image.created', NEW.image_id::text, image_event_data(NEW));
        IF NEW.status = 'active' THEN
            PERFORM pix_event('image.verified', NEW.image_id::text, image_event_data(NEW));
        END IF;
        RETURN NULL;
    END IF;
    IF TG_OP = 'DELETE' THEN
        PERFORM pix_event('image.purged', OLD.image_id::text, image_event_data(OLD));
        RETURN NULL;
    END IF;
    t := CASE
        WHEN OLD.status = 'verifying' AND NEW.status = 'active' THEN 'image.verified'
        WHEN OLD.status = 'deleted' AND NEW.status = 'active' THEN 'image.restored'
        WHEN NEW.status = 'failed' THEN 'image.failed'
        WHEN NEW.status = 'deleted' THEN 'image.deleted'
    END;
    IF t IS NOT NULL THEN
        PERFORM pix_event(t, NEW.image_id::text, image_event_data(NEW));
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER images_events AFTER INSERT OR DELETE ON images
    FOR EACH ROW EXECUTE FUNCTION images_events();
CREATE TRIGGER images_events_status AFTER UPDATE OF status ON images
    FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status) EXECUTE FUNCTION images_events();

-- Variants belong to content: one variant.ready per image of that content (trash included:
-- a restore brings the image back with its variants).
CREATE FUNCTION variants_events() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NOT pix_events_on() THEN
        RETURN NULL;
    END IF;
    PERFORM pix_event('variant.ready', i.image_id::text,
                      jsonb_build_object('image_id', i.image_id, 'owner_id', i.owner_id,
                                         'content_hash', NEW.content_hash,
                                         'variant_type', NEW.variant_type,
                                         'mime_type', NEW.mime_type, 'width', NEW.width,
                                         'height', NEW.height, 'size', NEW.size))
    FROM images i WHERE i.content_hash = NEW.content_hash
    ORDER BY i.image_id;
    RETURN NULL;
END
$$;
CREATE TRIGGER variants_events AFTER INSERT ON image_variants
    FOR EACH ROW WHEN (NEW.status = 'ready') EXECUTE FUNCTION variants_events();
CREATE TRIGGER variants_events_ready AFTER UPDATE OF status ON image_variants
    FOR EACH ROW WHEN (NEW.status = 'ready' AND OLD.status <> 'ready')
    EXECUTE FUNCTION variants_events();

CREATE FUNCTION shares_events() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NOT pix_events_on() THEN
        RETURN NULL;
    END IF;
    PERFORM pix_event('share.created', NEW.image_id::text,
                      jsonb_build_object('image_id', NEW.image_id, 'owner_id', i.owner_id,
                                         'user_id', NEW.user_id))
    FROM images i WHERE i.image_id = NEW.image_id;
    RETURN NULL;
END
$$;
CREATE TRIGGER shares_events AFTER INSERT ON image_shares
    FOR EACH ROW EXECUTE FUNCTION shares_events();

-- Indexes 014 lacks, for pixplane-hooks' upkeep: finished deliveries by age (the prune past
-- the retention scans only those), and deliveries by event (the event prune's "still
-- referenced?" probe, and the ON DELETE CASCADE from webhook_events).
CREATE INDEX webhook_deliveries_done ON webhook_deliveries
    ((coalesce(delivered_at, next_attempt_at))) WHERE status <> 'pending';
CREATE INDEX webhook_deliveries_event ON webhook_deliveries (event_id);
