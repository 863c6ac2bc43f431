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
        EXECUTE format('LOCK TABLE ONLY %s IN ACCESS EXCLUSIVE MODE', parent);
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
    EXECUTE format('LOCK TABLE ONLY %s IN ACCESS EXCLUSIVE MODE', parent);
    IF parent = 'outbox'::regclass THEN
        EXECUTE format('SELECT EXISTS (SELECT 1 FROM %s WHERE sent_at IS NULL)', part)
            INTO unsent;
    ELSIF parent = 'change_log'::regclass THEN
        EXECUTE format('SELECT txid, seq FROM %s WHERE kind <> '''' ORDER BY txid DESC,'
                       ' seq DESC LIMIT 1', part) INTO t, s;
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

-- Moves table tbl out of the way as tbl_legacy: no primary key (the partitioned one's comes
-- with the attach), its indexes and identity sequence renamed after it.
CREATE FUNCTION pix_log_retire(tbl text, id_col text) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    legacy text := tbl || '_legacy';
    idx text;
BEGIN
    EXECUTE format('ALTER TABLE %I RENAME TO %I', tbl, legacy);
    EXECUTE format('ALTER TABLE %I DROP CONSTRAINT %I', legacy, tbl || '_pkey');
    EXECUTE format('ALTER SEQUENCE %s RENAME TO %I', pg_get_serial_sequence(legacy, id_col),
                   format('%s_%s_seq', legacy, id_col));
    FOR idx IN SELECT indexrelid::regclass::text FROM pg_index
               WHERE indrelid = legacy::regclass LOOP
        EXECUTE format('ALTER INDEX %I RENAME TO %I', idx,
                       legacy || substr(idx, length(tbl) + 1));
    END LOOP;
END
$$;

-- Makes tbl_legacy a partition of the new partitioned tbl: up to the end of the day of its
-- newest row (or today), then the days after it up to a week ahead, and the DEFAULT. The
-- new identity goes on from the old sequence (ids stay monotonic).
CREATE FUNCTION pix_log_adopt(tbl text, id_col text) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    legacy text := tbl || '_legacy';
    next_id bigint := nextval(pg_get_serial_sequence(legacy, id_col));
    today date := (now() AT TIME ZONE 'UTC')::date;
    first date;
    last date;
BEGIN
    EXECUTE format('ALTER TABLE %I ALTER COLUMN %I DROP IDENTITY', legacy, id_col);
    EXECUTE format('ALTER TABLE %I ALTER COLUMN %I RESTART WITH %s', tbl, id_col, next_id);
    EXECUTE format('SELECT (min(created_at) AT TIME ZONE ''UTC'')::date,'
                   ' (max(created_at) AT TIME ZONE ''UTC'')::date FROM %I', legacy)
        INTO first, last;
    IF first IS NULL THEN
        EXECUTE format('DROP TABLE %I', legacy);
        last := today - 1;
    ELSE
        last := greatest(last, today);
        EXECUTE format('ALTER TABLE %I ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)', tbl,
                       legacy, first::timestamp AT TIME ZONE 'UTC',
                       (last + 1)::timestamp AT TIME ZONE 'UTC');
    END IF;
    FOR d IN 1..(today + 7 - last) LOOP
        PERFORM pix_log_partition_add(tbl::regclass, last + d);
    END LOOP;
    EXECUTE format('CREATE TABLE %I PARTITION OF %I DEFAULT', tbl || '_default', tbl);
END
$$;

SELECT pix_log_retire('change_log', 'seq'), pix_log_retire('outbox', 'id');
DROP INDEX change_log_legacy_created; -- pruning drops partitions now
DROP TRIGGER change_log_notify ON change_log_legacy; -- the partitioned table's takes over

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
-- a device's changes in cursor order (sync); every position in order (a dropped partition's
-- newest position becomes the sync horizon without a scan). change_log_pos is partial on a
-- predicate only pix_log_partition_drop states: a user's sync can never be planned on it (a
-- stale estimate of the rows past a cursor would otherwise pick it and filter every other
-- user's changes since the cursor, seen at 10,000 rows in bench/scale).
CREATE INDEX change_log_user_pos ON change_log (user_id, txid, seq);
CREATE INDEX change_log_pos ON change_log (txid, seq) WHERE kind <> '';
CREATE TRIGGER change_log_notify AFTER INSERT ON change_log
    FOR EACH ROW EXECUTE FUNCTION change_log_notify();

-- The columns of 001 and 004, in their order.
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

SELECT pix_log_adopt('change_log', 'seq'), pix_log_adopt('outbox', 'id');
DROP FUNCTION pix_log_retire(text, text);
DROP FUNCTION pix_log_adopt(text, text);
