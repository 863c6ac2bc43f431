# Logs that prune in O(1) (issue 20, must-show 4): change_log and outbox partitioned by day.
# A prune drops whole partitions (gone from pg_inherits and pg_class); a cursor from a dropped
# range answers 410 while newer cursors keep working and see every later change; outbox days
# with unsent rows survive their retention; inserts land in the DEFAULT partition when
# maintenance never ran and move out when the reconciler adds the day. A database of this
# module's own (freshly migrated: no legacy partition) on the stack's server.
import json
import os
import subprocess
import time
import urllib.parse
import uuid

import pytest

from conftest import (API_BIN, BUILD, ApiProcess, Client, assert_sanitizer_clean, sql,
                      user_id)

REC_BIN = os.path.join(BUILD, "pixplane-reconciler")


class Db:
    def __init__(self):
        self.name = "pixpart_" + uuid.uuid4().hex[:10]
        base = urllib.parse.urlsplit(os.environ["DATABASE_URL"])
        self.url = urllib.parse.urlunsplit(base._replace(path="/" + self.name))
        sql("CREATE DATABASE %s" % self.name)
        subprocess.run([API_BIN, "migrate"], env={**os.environ, "DATABASE_URL": self.url},
                       check=True, capture_output=True, timeout=120)

    def q(self, query):
        return sql(query, url=self.url)

    def v(self, query):
        rows = self.q(query)
        return rows[0][0] if rows else None

    def partitions(self, table):
        """Partition names per pg_inherits (the catalog, not our own function)."""
        return {r[0] for r in self.q("SELECT inhrelid::regclass::text FROM pg_inherits"
                                     " WHERE inhparent = '%s'::regclass" % table)}

    def exists(self, rel):
        return self.v("SELECT count(*) FROM pg_class WHERE relname = '%s'" % rel) == "1"

    def day(self, offset):
        """The partition name suffix of today + offset days (UTC)."""
        return self.v("SELECT to_char((now() AT TIME ZONE 'UTC')::date + %d, 'YYYYMMDD')"
                      % offset)

    def add_day(self, table, offset):
        return self.v("SELECT pix_log_partition_add('%s', (now() AT TIME ZONE 'UTC')::date + %d)"
                      % (table, offset))


@pytest.fixture(scope="module")
def db(stack):
    d = Db()
    yield d
    sql("DROP DATABASE IF EXISTS %s WITH (FORCE)" % d.name)


def reconcile(db, *args, extra=None):
    p = subprocess.run([REC_BIN, "--once", "--report", "json", "--only", "partitions", *args],
                       env={**os.environ, "DATABASE_URL": db.url, **(extra or {})},
                       capture_output=True, text=True, timeout=120)
    assert_sanitizer_clean(p.stderr)
    lines = [json.loads(l) for l in p.stderr.splitlines() if l.startswith("{")]
    return p.returncode, json.loads(p.stdout), lines


def actions(lines, action):
    return {l["target"]: l for l in lines
            if l.get("event") == "reconcile_action" and l["action"] == action}


def sync_until(c, cursor, want, timeout=30):
    """Syncs from cursor until every id in want was delivered (the sync horizon may wait
    for other transactions on the shared server); returns (delivered ids, last cursor)."""
    got, deadline = set(), time.monotonic() + timeout
    for _ in range(200):
        st, doc = c.call("GET", "/sync?limit=100" + ("&since=" + cursor if cursor else ""))
        assert st == 200, (st, doc)
        cursor = doc["cursor"]
        got |= {e["image_id"] for k in ("added", "updated", "deleted") for e in doc[k]}
        if want <= got and not doc["has_more"]:
            return got, cursor
        assert time.monotonic() < deadline, "sync did not deliver %s" % (want - got)
        time.sleep(0.2)
    raise AssertionError("sync did not finish")


def test_migration_layout(db):
    """A fresh database: a week of days ahead and a DEFAULT partition per log; ids keep
    their identity; the NOTIFY trigger and the indexes are on every partition."""
    for t in ("change_log", "outbox"):
        want = {"%s_p%s" % (t, db.day(d)) for d in range(8)} | {t + "_default"}
        assert db.partitions(t) == want
    assert db.v("SELECT count(*) FROM pg_trigger WHERE tgname = 'change_log_notify'") == "10"
    assert db.v("SELECT count(*) FROM pg_indexes WHERE tablename = 'outbox_default'") == "2"


def test_prune_drops_partitions_old_cursor_410_newer_cursors_see_everything(db):
    api = ApiProcess({"DATABASE_URL": db.url, "PIXPLANE_SYNC_RETENTION": "2d"})
    try:
        uid = user_id("part")
        c = Client(api.url, api.token(uid))
        admin = Client(api.url, api.token("ops", admin=True))
        x = c.upload(os.urandom(300))[1]["image_id"]
        _, old = sync_until(c, None, {x})
        y = c.upload(os.urandom(300))[1]["image_id"]
        _, mid = sync_until(c, old, {y})
        # x's and y's changes become five days old: the row moves to that day's partition
        assert db.add_day("change_log", -5) == "0"
        gone = "change_log_p" + db.day(-5)
        db.q("UPDATE change_log SET created_at = created_at - interval '5 days'"
             " WHERE user_id = '%s'" % uid)
        assert db.v("SELECT count(*) FROM %s" % gone) == db.v(
            "SELECT count(*) FROM change_log WHERE user_id = '%s'" % uid) != "0"
        z = c.upload(os.urandom(300))[1]["image_id"]
        before = db.partitions("change_log")
        st, doc = admin.call("POST", "/internal/sync/prune")
        assert st == 200 and doc["partitions"] == 1 and doc["pruned"] >= 2, doc
        assert db.partitions("change_log") == before - {gone}
        assert not db.exists(gone)
        st, doc = c.call("GET", "/sync?since=" + old)
        assert st == 410 and doc["error"]["code"] == "full_resync_required", doc
        # mid saw everything the dropped day held: it keeps working and misses nothing
        w = c.upload(os.urandom(300))[1]["image_id"]
        got, _ = sync_until(c, mid, {z, w})
        assert got == {z, w}
        got, _ = sync_until(c, None, {x, y, z, w})  # a full resync has every image
        assert got == {x, y, z, w}
        st, doc = admin.call("POST", "/internal/sync/prune")  # nothing left to drop
        assert st == 200 and doc == {"pruned": 0, "partitions": 0}, doc
    finally:
        api.stop()


def test_inserts_work_without_maintenance_and_move_out(db):
    """Today's partitions dropped (as if maintenance never created them): uploads and
    events still commit (into the DEFAULT partition); the reconciler adds the day and moves
    the rows; sync sees the upload throughout."""
    today = db.day(0)
    db.q("DROP TABLE change_log_p%s; DROP TABLE outbox_p%s" % (today, today))
    api = ApiProcess({"DATABASE_URL": db.url})
    try:
        c = Client(api.url, api.token(user_id("nomaint")))
        img = c.upload(os.urandom(300))[1]["image_id"]
        assert db.v("SELECT count(*) FROM change_log_default WHERE image_id = '%s'" % img) == "1"
        assert int(db.v("SELECT count(*) FROM outbox_default")) >= 1
        rc, rep, lines = reconcile(db, "--dry-run")
        assert rc == 1 and rep["sweeps"]["partitions"]["actions"] == 2, (rep, lines)
        assert db.exists("change_log_default") and not db.exists("change_log_p" + today)
        rc, rep, lines = reconcile(db)
        added = actions(lines, "add_partition")
        assert rc == 1 and set(added) == {"change_log_p" + today, "outbox_p" + today}, lines
        assert int(added["change_log_p" + today]["moved_from_default"]) >= 1
        assert db.v("SELECT count(*) FROM change_log_default") == "0"
        assert db.v("SELECT count(*) FROM outbox_default") == "0"
        assert db.v("SELECT tableoid::regclass FROM change_log WHERE image_id = '%s'"
                    % img) == "change_log_p" + today
        got, _ = sync_until(c, None, {img})
        assert img in got
        rc, rep, _ = reconcile(db)  # converged
        assert rc == 0 and rep["sweeps"]["partitions"]["actions"] == 0, rep
    finally:
        api.stop()


def test_outbox_partition_with_unsent_rows_survives(db):
    """Outbox days past retention: the one all sent is dropped, the one with an unsent row
    is kept and reported until the row is sent. A dry run drops nothing."""
    sent, unsent = "outbox_p" + db.day(-10), "outbox_p" + db.day(-11)
    db.add_day("outbox", -10)
    db.add_day("outbox", -11)
    db.q("INSERT INTO outbox (topic, msg_key, payload, created_at, sent_at)"
         " SELECT 't', 'k' || g, '{}', now() - interval '10 days', now()"
         " FROM generate_series(1, 20) g;"
         " INSERT INTO outbox (topic, msg_key, payload, created_at, sent_at)"
         " SELECT 't', 'k' || g, '{}', now() - interval '11 days',"
         " CASE WHEN g > 1 THEN now() END FROM generate_series(1, 20) g")
    assert int(db.v("SELECT count(*) FROM " + unsent)) == 20
    rc, rep, lines = reconcile(db, "--dry-run", extra={"PIXPLANE_OUTBOX_RETENTION": "7d"})
    assert set(actions(lines, "drop_partition")) == {sent}, lines
    assert rep["sweeps"]["partitions"]["unrepaired"] == 1
    assert db.exists(sent) and db.exists(unsent)
    rc, rep, lines = reconcile(db, extra={"PIXPLANE_OUTBOX_RETENTION": "7d"})
    assert set(actions(lines, "drop_partition")) == {sent}, lines
    assert rep["sweeps"]["partitions"]["unrepaired"] == 1
    assert not db.exists(sent) and sent not in db.partitions("outbox")
    assert unsent in db.partitions("outbox")
    assert [l["target"] for l in lines if l.get("problem") == "outbox_unsent"] == [unsent]
    db.q("UPDATE outbox SET sent_at = now() WHERE sent_at IS NULL")
    rc, rep, lines = reconcile(db, extra={"PIXPLANE_OUTBOX_RETENTION": "7d"})
    assert set(actions(lines, "drop_partition")) == {unsent}, lines
    assert not db.exists(unsent)
