"""Reads from standbys with read-your-writes (issue 20, must-show 2). A pg_auto_failover
formation of its own (minio-dev/pg-ha: primary and synchronous secondary); APIs with the
multi-host read-write DATABASE_URL and the prefer-standby DATABASE_READ_URL. Read queries run
on the standby (its pg_stat_activity shows pixplane-api-read running them); with replay paused
on the standby, a client still reads every write it was acknowledged, with the
Pixplane-Read-After header echoed and, on the same instance, without it; sync returns the
writes, its cursors never go backwards and no delta skips a change, also when a page is asked
of an instance whose reads would land on the paused standby."""
import base64
import os
import shutil
import subprocess
import time

import pytest
import requests

from conftest import ApiProcess, Client, sql, user_id
from test_failover import API_BIN, Formation

HEADER = "Pixplane-Read-After"
READ_APP = "pixplane-api-read"


def node_url(port):
    return "postgresql://pixplane@127.0.0.1:%s/pixplane" % port


def lsn(text):
    hi, lo = text.split("/")
    return int(hi, 16) << 32 | int(lo, 16)


@pytest.fixture(scope="module")
def ha(stack):
    missing = [what for what, ok in ((API_BIN, os.access(API_BIN, os.X_OK)),
                                     ("pg_autoctl", shutil.which("pg_autoctl"))) if not ok]
    if missing:
        pytest.skip("needs %s (make; postgresql-15-auto-failover)" % ", ".join(missing))
    f, apis = Formation(), []
    try:
        f.start()
        subprocess.check_output([API_BIN, "migrate"], env=dict(os.environ, DATABASE_URL=f.url),
                                timeout=120, stderr=subprocess.STDOUT)
        primary = f.primary()
        nodes = [line.split()[1] for line in f.run("state", f.dir).splitlines()]
        standby = next(p for p in nodes if p != primary)
        over = {"DATABASE_URL": f.url, "DATABASE_READ_URL": f.read_url,
                "PIXPLANE_READ_WAIT": "200ms"}
        apis.append(ApiProcess(over, log_path=os.path.join(f.dir, "api-a.log")))
        apis.append(ApiProcess(over, log_path=os.path.join(f.dir, "api-b.log")))
        yield f, node_url(primary), node_url(standby), apis[0], apis[1]
    finally:
        for a in apis:
            a.stop()
        f.destroy()


def call(c, method, path, body=None, after=None):
    """(status, json, Pixplane-Read-After of the answer) of one request by client c."""
    h = {HEADER: after} if after else {}
    r = c.s.request(method, c.base + path, json=body, headers=h, timeout=60,
                    allow_redirects=False)
    return r.status_code, (r.json() if r.content else None), r.headers.get(HEADER)


def upload(c, data, name):
    """An upload whose complete answer carries the write position: (image_id, position)."""
    sess = c.start(data, name=name)
    c.put_chunks(sess, data, list(range(sess["chunk_count"])))
    st, doc, after = call(c, "POST", "/uploads/%s/complete" % sess["upload_session_id"])
    assert st == 200, (st, doc)
    assert after and lsn(after) > 0, "complete answered without %s" % HEADER
    return doc["image_id"], after


def reads_counted(api, pool):
    """pixplane_db_reads_total for pool (read, primary) from the API's /metrics."""
    text = requests.get(api.ops_url + "/metrics", timeout=10).text
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("pixplane_db_reads_total{") and 'pool="%s"' % pool in line)


def replayed(url):
    return lsn(sql("SELECT pg_last_wal_replay_lsn()", url=url)[0][0])


def wait_replay(standby, primary, timeout=30):
    """Until the standby replayed everything the primary wrote so far (bounded)."""
    target = lsn(sql("SELECT pg_current_wal_lsn()", url=primary)[0][0])
    deadline = time.monotonic() + timeout
    for _ in range(int(timeout / 0.05)):
        if replayed(standby) >= target or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert replayed(standby) >= target, "the standby did not catch up"


def cursor_pos(cursor):
    """A change-mode cursor's (txid, seq); a snapshot cursor's (watermark - 1, -1)."""
    raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    kind, a, b = raw.split(".", 2)
    return (int(a), int(b)) if kind == "c" else (int(a) - 1, -1)


class Device:
    """A device following /sync: every change once, cursors never going backwards."""

    def __init__(self):
        self.cursor, self.images, self.positions = None, {}, []

    def page(self, c, after=None, limit=100):
        q = "/sync?limit=%d" % limit + ("&since=" + self.cursor if self.cursor else "")
        st, doc, _ = call(c, "GET", q, after=after)
        assert st == 200, (st, doc)
        for e in doc["added"] + doc["updated"]:
            self.images[e["image_id"]] = e["name"]
        for e in doc["deleted"]:
            self.images.pop(e["image_id"], None)
        pos = cursor_pos(doc["cursor"])
        assert not self.positions or pos >= self.positions[-1], "sync cursor went backwards"
        self.positions.append(pos)
        self.cursor = doc["cursor"]
        return doc

    def sync(self, c, after=None, limit=100):
        for _ in range(100):
            if not self.page(c, after, limit)["has_more"]:
                return
        raise AssertionError("sync did not finish")


def read_queries(url):
    return [q for (q,) in sql("SELECT query FROM pg_stat_activity WHERE application_name = '%s'"
                              % READ_APP, url=url)]


def test_reads_run_on_the_standby(ha):
    _, primary, standby, a, _ = ha
    c = Client(a.url, a.token(user_id("reader")))
    before = reads_counted(a, "read")
    for path, shows in (("/sync", "album_items"), ("/images?limit=5", "FROM images")):
        for _ in range(5):
            assert call(c, "GET", path)[0] == 200
        queries = read_queries(standby)  # each connection's last statement
        assert any(shows in q for q in queries), (path, queries)
    assert reads_counted(a, "read") >= before + 10
    on_primary = sql("SELECT count(*) FROM pg_stat_activity WHERE application_name = '%s'"
                     % READ_APP, url=primary)[0][0]
    assert on_primary == "0", "read connections went to the primary"


def test_read_your_writes_while_replay_is_paused(ha):
    _, primary, standby, a, b = ha
    user = user_id("ryw")
    ca, cb = Client(a.url, a.token(user)), Client(b.url, b.token(user))
    keep, _ = upload(ca, os.urandom(400), "keep.jpg")
    gone, _ = upload(ca, os.urandom(400), "gone.jpg")
    dev = Device()
    dev.sync(ca)
    assert set(dev.images) == {keep, gone}
    wait_replay(standby, primary)
    sql("SELECT pg_wal_replay_pause()", url=standby)
    try:
        paused_reads(ca, cb, primary, standby, a, dev, keep, gone)
    finally:
        sql("SELECT pg_wal_replay_resume()", url=standby)
    wait_replay(standby, primary)
    st, doc, _ = call(cb, "GET", "/images?limit=50")  # no header, the other instance: caught up
    assert st == 200 and {i["name"] for i in doc["images"]} == {"kept.jpg", "new.jpg"}
    dev.sync(cb)
    assert dev.images == {keep: "kept.jpg", dev_new(doc): "new.jpg"}


def dev_new(listing):
    return next(i["image_id"] for i in listing["images"] if i["name"] == "new.jpg")


def paused_reads(ca, cb, primary, standby, a, dev, keep, gone):
    new, after = upload(ca, os.urandom(500), "new.jpg")
    st, _, after2 = call(ca, "PATCH", "/images/%s" % keep, {"name": "kept.jpg"})
    assert st == 200 and after2 and lsn(after2) >= lsn(after)
    st, _, after3 = call(ca, "DELETE", "/images/%s" % gone)
    assert st in (200, 204) and after3 and lsn(after3) >= lsn(after2)
    assert replayed(standby) < lsn(after), "replay is not paused"
    assert sql("SELECT name FROM images WHERE image_id = '%s'" % keep, url=standby) == [
        ["keep.jpg"]], "the standby already shows the rename"
    behind = reads_counted(a, "primary")
    want = {"kept.jpg", "new.jpg"}
    # the instance that acknowledged the writes: with the header and without it
    for hdr in (after3, None):
        st, doc, _ = call(ca, "GET", "/images?limit=50", after=hdr)
        assert st == 200 and {i["name"] for i in doc["images"]} == want, (hdr, doc)
        st, doc, _ = call(ca, "GET", "/images/%s" % new, after=hdr)
        assert st == 200, (hdr, st, doc)
        st, doc, _ = call(ca, "GET", "/images/%s/metadata" % keep, after=hdr)
        assert st == 200 and doc["name"] == "kept.jpg", (hdr, doc)
        assert call(ca, "GET", "/images/%s/metadata" % gone, after=hdr)[0] == 404
    assert reads_counted(a, "primary") >= behind + 8
    # another instance never acknowledged them: the echoed header is what it goes by
    st, doc, _ = call(cb, "GET", "/images?limit=50", after=after3)
    assert st == 200 and {i["name"] for i in doc["images"]} == want, doc
    st, doc, _ = call(cb, "GET", "/images?limit=50")
    assert st == 200 and {i["name"] for i in doc["images"]} == {"keep.jpg", "gone.jpg"}, (
        "without the header the other instance should read the paused standby", doc)
    paused_sync(ca, cb, dev, keep, gone, new, after3)


def paused_sync(ca, cb, dev, keep, gone, new, after):
    # the other instance, no header: the paused standby has nothing new; the cursor stays
    stale = Device()
    stale.cursor, stale.images, stale.positions = dev.cursor, dict(dev.images), list(
        dev.positions)
    doc = stale.page(cb)
    assert doc["added"] == doc["updated"] == doc["deleted"] == [] and not doc["has_more"]
    assert doc["cursor"] == dev.cursor or cursor_pos(doc["cursor"]) == dev.positions[-1]
    # the writer syncs: with the header on either instance, without it on the writer's
    for c, hdr in ((cb, after), (ca, None)):
        d = Device()
        d.cursor, d.images, d.positions = dev.cursor, dict(dev.images), list(dev.positions)
        d.sync(c, after=hdr)
        assert d.images == {keep: "kept.jpg", new: "new.jpg"}, (hdr, d.images)
    dev.sync(ca)
    # a fresh device pages a snapshot one image at a time, asking the other instance
    # (no header) after the first page: no page may come from the paused standby's state
    fresh = Device()
    fresh.page(ca, limit=1)
    fresh.sync(cb, limit=1)
    assert fresh.images == {keep: "kept.jpg", new: "new.jpg"}, fresh.images
