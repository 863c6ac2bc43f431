-- Device sync: a NOTIFY per change-log row (payload: the user id) so API processes can
-- push to connected devices, and the horizon below which pruned positions answer 410.

CREATE TABLE sync_horizon (
    singleton  boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    txid       xid8 NOT NULL DEFAULT '0',
    seq        bigint NOT NULL DEFAULT 0,
    pruned_at  timestamptz
);
INSERT INTO sync_horizon DEFAULT VALUES;

CREATE FUNCTION change_log_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('pixplane_changes', NEW.user_id);
    RETURN NULL;
END
$$;

CREATE TRIGGER change_log_notify AFTER INSERT ON change_log
    FOR EACH ROW EXECUTE FUNCTION change_log_notify();
