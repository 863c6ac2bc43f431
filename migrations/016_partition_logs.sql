-- Logs that prune in O(1) (issue 20): change_log and outbox become range-partitioned by
-- created_at, one partition per UTC day, so retention drops whole partitions instead of
-- deleting rows. The reconciler's `partitions` sweep keeps days ahead and drops expired days
-- with the functions below (plain PostgreSQL: no extension, so CloudNativePG and RDS alike).
--
-- Rows of a day with no partition land in the DEFAULT partition: an insert never fails when
-- maintenance has not run. Adding the day later moves them out (a DEFAULT holding rows of a
-- new partition's range would refuse it); the DEFAULT is scanned on every add, so it is kept
-- empty and is never dropped. Existing rows stay where they are: the old table is attached
-- as one "legacy" partition up to the end of today (no copy), dropped whole like any day.
-- Ids stay monotonic: the new identities start after the old sequences.

-- The partitions of a log table with their bounds (lo and hi NULL: the DEFAULT partition).
CREATE FUNCTION pix_log_partitions(parent regclass)
RETURNS TABLE (part regclass, lo timestamptz, hi timestamptz) LANGUAGE sql STABLE AS $$
    SELECT c.oid::regclass, substring(b FROM 'FROM \(''([^'']+)''\)')::timestamptz,
           substring(b FROM 'TO \(''([^'']+)''\)')::timestamptz
    FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
    CROSS JOIN LATERAL pg_get_expr(c.relpartbound, c.oid) b
    WHERE i.inhparent = parent ORDER BY 3 NULLS LAST, 1
$$;

-- Creates the partition of one UTC day, named <parent>_pYYYYMMDD; rows of that day in the
-- DEFAULT partition move into it, in this transaction. Returns the rows moved, or NULL when
-- a partition already covers (part of) the day.
CREATE FUNCTION pix_log_partition_add(parent regclass, day date) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    d_lo timestamptz := day::timestamp AT TIME ZONE 'UTC';
    d_hi timestamptz := (day + 1)::timestamp AT TIME ZONE 'UTC';
    name text := format('%s_p%s', parent, to_char(day, 'YYYYMMDD'));
    dflt regclass := to_regclass(format('%s_default', parent));
    stray boolean := false;
    moved bigint := 0;
BEGIN
    IF EXISTS (SELECT 1 FROM pix_log_partitions(parent) p
               WHERE p.lo < d_hi AND p.hi > d_lo) THEN
        RETURN NULL;
    END IF;
    PERFORM set_config('lock_timeout', '5s', true);
    EXECUTE format('CREATE TABLE %I (LIKE %s INCLUDING DEFAULTS INCLUDING CONSTRAINTS)', name, parent);
    IF dflt IS NOT NULL THEN
        EXECUTE format('SELECT EXISTS (SELECT 1 FROM %s WHERE created_at >= $1'
                       ' AND created_at < $2)', dflt) INTO stray USING d_lo, d_hi;
    END IF;
    IF stray THEN -- readers must not see the rows in neither place
        EXECUTE format('LOCK TABLE %s IN ACCESS EXCLUSIVE MODE', parent);
        EXECUTE format('WITH m AS (DELETE FROM %s WHERE created_at >= $1 AND created_at < $2'
                       ' RETURNING *) INSERT INTO %I SELECT * FROM m', dflt, name)
            USING d_lo, d_hi;
        GET DIAGNOSTICS moved = ROW_COUNT;
    END IF;
    EXECUTE format('ALTER TABLE %s ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)',
                   parent, name, d_lo, d_hi);
    RETURN moved;
END
$$;

-- Drops one partition of a log table (the caller decided it is past retention). status:
-- 'dropped', or 'unsent' for an outbox partition that still holds undelivered rows (kept).
-- Dropping change-log rows moves the sync horizon up to the newest position dropped (in
-- the same transaction), so a cursor below it answers 410 full_resync_required. rows: from
-- the table statistics when autovacuum has counted them (no scan), else counted.
CREATE FUNCTION pix_log_partition_drop(part regclass, OUT status text, OUT rows bigint)
LANGUAGE plpgsql AS $$
DECLARE
    parent regclass := (SELECT inhparent FROM pg_inherits WHERE inhrelid = part);
    unsent boolean := false;
    t xid8;
    s bigint;
BEGIN
    SELECT CASE WHEN c.reltuples >= 0 THEN c.reltuples::bigint END INTO rows
    FROM pg_class c WHERE c.oid = part;
    IF rows IS NULL THEN
        EXECUTE format('SELECT count(*) FROM %s', part) INTO rows;
    END IF;
    PERFORM set_config('lock_timeout', '5s', true);
    EXECUTE format('LOCK TABLE %s IN ACCESS EXCLUSIVE MODE', parent);
    IF parent = 'outbox'::regclass THEN
        EXECUTE format('SELECT EXISTS (SELECT 1 FROM %s WHERE sent_at IS NULL)', part)
            INTO unsent;
    ELSIF parent = 'change_log'::regclass THEN
        EXECUTE format('SELECT txid, seq FROM %s ORDER BY txid DESC, seq DESC LIMIT 1', part)
            INTO t, s;
        UPDATE sync_horizon h SET txid = t, seq = s, pruned_at = now()
        WHERE t IS NOT NULL AND (t, s) > (h.txid, h.seq);
    END IF;
    IF unsent THEN
        status := 'unsent';
        RETURN;
    END IF;
    EXECUTE format('DROP TABLE %s', part);
    status := 'dropped';
END
$$;

-- Drops every partition of parent whose whole range is older than keep (outbox partitions
-- with unsent rows stay): one row per partition looked at.
CREATE FUNCTION pix_log_prune(parent regclass, keep interval)
RETURNS TABLE (part text, status text, rows bigint) LANGUAGE plpgsql AS $$
DECLARE
    p regclass;
BEGIN
    FOR p IN SELECT x.part FROM pix_log_partitions(parent) x WHERE x.hi <= now() - keep LOOP
        part := p::text;
        SELECT d.status, d.rows INTO status, rows FROM pix_log_partition_drop(p) d;
        RETURN NEXT;
    END LOOP;
END
$$;

-- Turns table tbl (already renamed to tbl_legacy, its identity's next value in next_id) into
-- a partitioned copy of parent_ddl: the legacy table as the partition up to the end of the
-- day of its newest row (or today), days after it up to a week ahead, and the DEFAULT.
CREATE FUNCTION pix_log_adopt(tbl text, next_id bigint) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    legacy regclass := format('%s_legacy', tbl)::regclass;
    today date := (now() AT TIME ZONE 'UTC')::date;
    first date;
    last date;
BEGIN
    EXECUTE format('SELECT (min(created_at) AT TIME ZONE ''UTC'')::date,'
                   ' (max(created_at) AT TIME ZONE ''UTC'')::date FROM %s', legacy)
        INTO first, last;
    EXECUTE format('ALTER TABLE %I ALTER COLUMN %I RESTART WITH %s', tbl,
                   CASE tbl WHEN 'outbox' THEN 'id' ELSE 'seq' END, next_id);
    IF first IS NULL THEN
        EXECUTE format('DROP TABLE %s', legacy);
        last := today - 1;
    ELSE
        last := greatest(last, today);
        EXECUTE format('ALTER TABLE %I ATTACH PARTITION %s FOR VALUES FROM (%L) TO (%L)', tbl,
                       legacy, first::timestamp AT TIME ZONE 'UTC',
                       (last + 1)::timestamp AT TIME ZONE 'UTC');
    END IF;
    FOR d IN 1..(today + 7 - last) LOOP
        PERFORM pix_log_partition_add(tbl::regclass, last + d);
    END LOOP;
    EXECUTE format('CREATE TABLE %I PARTITION OF %I DEFAULT', tbl || '_default', tbl);
END
$$;

-- ---- change_log ----
DO $$
DECLARE
    next_id bigint := nextval(pg_get_serial_sequence('change_log', 'seq'));
BEGIN
    ALTER TABLE change_log RENAME TO change_log_legacy;
    ALTER TABLE change_log_legacy DROP CONSTRAINT change_log_pkey;
    ALTER TABLE change_log_legacy ALTER COLUMN seq DROP IDENTITY;
    ALTER INDEX change_log_user_pos RENAME TO change_log_legacy_user_pos;
    DROP INDEX change_log_created; -- pruning drops partitions now
    DROP TRIGGER change_log_notify ON change_log_legacy;
    CREATE TABLE change_log (
        seq        bigint GENERATED ALWAYS AS IDENTITY,
        txid       xid8 NOT NULL DEFAULT pg_current_xact_id(),
        user_id    text NOT NULL,
        image_id   uuid,
        kind       text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        album_id   uuid,
        CONSTRAINT change_log_names_something CHECK (image_id IS NOT NULL OR album_id IS NOT NULL),
        PRIMARY KEY (seq, created_at)
    ) PARTITION BY RANGE (created_at);
    -- a device's changes in cursor order (sync); every position in order (a dropped
    -- partition's newest position becomes the sync horizon without a scan)
    CREATE INDEX change_log_user_pos ON change_log (user_id, txid, seq);
    CREATE INDEX change_log_pos ON change_log (txid, seq);
    CREATE TRIGGER change_log_notify AFTER INSERT ON change_log
        FOR EACH ROW EXECUTE FUNCTION change_log_notify();
    PERFORM pix_log_adopt('change_log', next_id);
END
$$;

-- ---- outbox ----
DO $$
DECLARE
    next_id bigint := nextval(pg_get_serial_sequence('outbox', 'id'));
BEGIN
    ALTER TABLE outbox RENAME TO outbox_legacy;
    ALTER TABLE outbox_legacy DROP CONSTRAINT outbox_pkey;
    ALTER TABLE outbox_legacy ALTER COLUMN id DROP IDENTITY;
    ALTER INDEX outbox_pending RENAME TO outbox_legacy_pending;
    CREATE TABLE outbox (
        id         bigint GENERATED ALWAYS AS IDENTITY,
        topic      text NOT NULL,
        msg_key    text NOT NULL,
        payload    jsonb NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        sent_at    timestamptz,
        attempts   integer NOT NULL DEFAULT 0,
        last_error text,
        resets     integer NOT NULL DEFAULT 0,
        reset_at   timestamptz,
        PRIMARY KEY (id, created_at)
    ) PARTITION BY RANGE (created_at);
    -- the relay's queue (and whether a partition still holds unsent rows)
    CREATE INDEX outbox_pending ON outbox (id) WHERE sent_at IS NULL;
    PERFORM pix_log_adopt('outbox', next_id);
END
$$;

DROP FUNCTION pix_log_adopt(text, bigint);
