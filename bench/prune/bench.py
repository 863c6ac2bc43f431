"""Prune of one day of change log, two ways on the same rows (PRUNE_BENCH_ROWS, 3,000,000,
generated in SQL with the NOTIFY trigger off): DROP of the day's partition through
pix_log_prune (what the reconciler's `partitions` sweep and /internal/sync/prune do) vs the
pre-016 `DELETE FROM change_log WHERE created_at < ...` on an unpartitioned copy with the
old indexes, followed by the VACUUM that makes the space reusable. Each step starts right
after a CHECKPOINT, once no autovacuum works in the database (an old day's pages: with
full_page_writes on, every first touch writes a full-page image; the server's setting is
printed). WAL: pg_current_wal_lsn() difference (cluster-wide: other sessions on a shared
server add to it) and the statement's own WAL from EXPLAIN (ANALYZE, WAL). Also the sync
query's plan over the partitioned table (index-bound: one index scan per partition)."""
import json
import os
import subprocess
import sys
import time
import urllib.parse

import psycopg2

BUILD = sys.argv[1] if len(sys.argv) > 1 else "build"
ROWS = int(os.environ.get("PRUNE_BENCH_ROWS", "3000000"))
DB = os.environ.get("PRUNE_BENCH_DB", "pixbench_prune")
AGE = 40  # days back: past the default 30-day retention
CHUNK = 20000


def url_for(db):
    u = urllib.parse.urlsplit(os.environ["DATABASE_URL"])
    return urllib.parse.urlunsplit(u._replace(path="/" + db))


def connect(url):
    c = psycopg2.connect(url)
    c.autocommit = True
    return c


def q(cur, sql, *args):
    cur.execute(sql, args or None)
    return cur.fetchall() if cur.description else None


def quiet(cur):
    """Checkpoint, once no autovacuum works in this database (bounded): a drop would wait for
    it (an autovacuum blocking a lock gives way only after deadlock_timeout)."""
    for _ in range(120):
        if not q(cur, "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                      " AND backend_type = 'autovacuum worker'")[0][0]:
            break
        time.sleep(1)
    q(cur, "CHECKPOINT")


def measured(cur, name, sql):
    """Runs sql once under EXPLAIN (ANALYZE, WAL): seconds, WAL bytes (LSN diff), own WAL."""
    quiet(cur)
    lsn0 = q(cur, "SELECT pg_current_wal_lsn()")[0][0]
    t0 = time.perf_counter()
    plan = q(cur, "EXPLAIN (ANALYZE, WAL, TIMING OFF, FORMAT JSON) " + sql)[0][0][0]
    secs = time.perf_counter() - t0
    lsn_diff = q(cur, "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), %s)", lsn0)[0][0]
    own = plan["Plan"].get("WAL Bytes", 0)
    r = {"bench": "prune", "case": name, "rows": ROWS, "seconds": round(secs, 4),
         "wal_bytes_lsn_diff": int(lsn_diff), "wal_bytes_own": int(own)}
    print(json.dumps(r), flush=True)
    return r


def vacuum(cur):
    """VACUUM is a utility statement: no EXPLAIN; its WAL from the LSN difference only."""
    quiet(cur)
    lsn0 = q(cur, "SELECT pg_current_wal_lsn()")[0][0]
    t0 = time.perf_counter()
    q(cur, "VACUUM change_log_flat")
    secs = time.perf_counter() - t0
    lsn_diff = q(cur, "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), %s)", lsn0)[0][0]
    r = {"bench": "prune", "case": "vacuum after delete", "rows": ROWS,
         "seconds": round(secs, 4), "wal_bytes_lsn_diff": int(lsn_diff), "wal_bytes_own": None}
    print(json.dumps(r), flush=True)
    return r


def generate(cur):
    """In transactions of CHUNK rows: a long one would hold back every /sync on the server
    (its horizon is the cluster-wide oldest transaction)."""
    day = q(cur, "SELECT (now() AT TIME ZONE 'UTC')::date - %s", AGE)[0][0]
    q(cur, "SELECT pix_log_partition_add('change_log', %s)", day)
    q(cur, "CREATE TABLE change_log_flat (seq bigint PRIMARY KEY, txid xid8 NOT NULL,"
           " user_id text NOT NULL, image_id uuid, kind text NOT NULL,"
           " created_at timestamptz NOT NULL, album_id uuid)")
    q(cur, "CREATE INDEX ON change_log_flat (user_id, txid, seq)")
    q(cur, "CREATE INDEX ON change_log_flat (created_at)")
    q(cur, "ALTER TABLE change_log DISABLE TRIGGER change_log_notify")
    t0 = time.perf_counter()
    for lo in range(1, ROWS + 1, CHUNK):
        hi = min(lo + CHUNK - 1, ROWS)
        q(cur, "INSERT INTO change_log (seq, txid, user_id, image_id, kind, created_at)"
               " OVERRIDING SYSTEM VALUE SELECT g, (1000 + g / 10)::text::xid8,"
               " 'user-' || (g %% 10000), gen_random_uuid(), 'added',"
               " %s::timestamp AT TIME ZONE 'UTC' + make_interval(secs => g * 86399.0 / %s)"
               " FROM generate_series(%s, %s) g", day, ROWS, lo, hi)
        q(cur, "INSERT INTO change_log_flat SELECT seq, txid, user_id, image_id, kind,"
               " created_at, album_id FROM change_log WHERE seq BETWEEN %s AND %s", lo, hi)
    q(cur, "ALTER TABLE change_log ENABLE TRIGGER change_log_notify")
    q(cur, "VACUUM ANALYZE change_log_flat")
    q(cur, "VACUUM ANALYZE change_log")
    print(json.dumps({"bench": "prune", "generated_rows": ROWS, "day": str(day),
                      "seconds": round(time.perf_counter() - t0, 1),
                      "full_page_writes": q(cur, "SHOW full_page_writes")[0][0]}), flush=True)
    return day


def sync_plan(cur, day):
    """The sync statement over the partitioned table: on the day holding the rows it must be
    an index scan on the (user_id, txid, seq) index (the empty days may be anything)."""
    plan = q(cur, "EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) SELECT l.txid::text, l.seq, l.image_id,"
                  " l.kind, l.album_id FROM change_log l WHERE l.user_id = 'user-42'"
                  " AND (l.txid, l.seq) > ('0'::xid8, 0::bigint)"
                  " AND l.txid < pg_snapshot_xmin(pg_current_snapshot())"
                  " ORDER BY l.txid, l.seq LIMIT 100")
    text = "\n".join(r[0] for r in plan)
    part = "change_log_p" + day.strftime("%Y%m%d")
    lines = [line.strip().split(" (")[0] for line in text.splitlines()]
    at = next((i for i, line in enumerate(lines) if line.endswith(" on %s l_1" % part)), None)
    node = lines[at] if at is not None else ""
    if "Bitmap Heap" in node:  # the index scan under it
        node += " / " + next(line for line in lines[at:] if "Index Scan" in line)
    print(json.dumps({"bench": "prune", "sync_changes_on_the_full_day": node}), flush=True)
    print(text, file=sys.stderr)


def main():
    admin = connect(os.environ["DATABASE_URL"])
    q(admin.cursor(), "DROP DATABASE IF EXISTS %s WITH (FORCE)" % DB)
    q(admin.cursor(), "CREATE DATABASE %s" % DB)
    url = url_for(DB)
    subprocess.run([os.path.join(BUILD, "pixplane-api"), "migrate"], check=True,
                   env={**os.environ, "DATABASE_URL": url}, capture_output=True, timeout=300)
    try:
        c = connect(url)
        cur = c.cursor()
        sync_plan(cur, generate(cur))
        out = [measured(cur, "drop partition (pix_log_prune)",
                        "SELECT * FROM pix_log_prune('change_log', interval '30 days')"),
               measured(cur, "DELETE (before 016)", "DELETE FROM change_log_flat"
                        " WHERE created_at < now() - interval '30 days'"),
               vacuum(cur)]
        c.close()
        print("\n%-32s %10s %16s %14s" % ("prune of %d rows" % ROWS, "seconds", "WAL (LSN diff)",
                                           "WAL (own)"))
        for r in out:
            own = "-" if r["wal_bytes_own"] is None else "{:,}".format(r["wal_bytes_own"])
            print("%-32s %10.3f %16s %14s" % (r["case"], r["seconds"],
                                              "{:,}".format(r["wal_bytes_lsn_diff"]), own))
    finally:
        q(admin.cursor(), "DROP DATABASE IF EXISTS %s WITH (FORCE)" % DB)


if __name__ == "__main__":
    main()
