# Multi-device sync against real PostgreSQL: devices converge under concurrent writers,
# a transaction that commits late is never skipped, paging gives each change once,
# SSE pushes within a second and resumes with Last-Event-ID, expired cursors get 410.
import concurrent.futures as cf
import os
import random
import socket
import subprocess
import threading
import time
import urllib.parse

import requests

from conftest import ApiProcess, Client, sql, sql_value, user_id


class Device:
    """A device's local mirror of the user's images, fed only by /sync deltas."""

    def __init__(self, client):
        self.c = client
        self.cursor = None
        self.images = {}
        self.pages = 0

    def apply(self, doc):
        seen = set()
        for kind in ("added", "updated", "deleted"):
            for e in doc[kind]:
                assert e["image_id"] not in seen, "image twice in one response: %s" % e
                seen.add(e["image_id"])
                if kind == "deleted":
                    self.images.pop(e["image_id"], None)
                else:
                    ready = sorted(k for k, v in e["variants"].items() if v == "ready")
                    self.images[e["image_id"]] = (e["name"], e["visibility"], tuple(ready))

    def sync(self, limit=100, max_pages=200):
        for _ in range(max_pages):
            q = "/sync?limit=%d" % limit
            if self.cursor:
                q += "&since=" + self.cursor
            st, doc = self.c.call("GET", q)
            assert st == 200, (st, doc)
            self.apply(doc)
            self.pages += 1
            self.cursor = doc["cursor"]
            if not doc["has_more"]:
                return doc
        raise AssertionError("sync did not finish")


def truth(c):
    """What the server says the user can see now."""
    out = {}
    for path in ("/images?limit=200", "/shared?limit=200"):
        cursor = None
        for _ in range(100):
            st, doc = c.call("GET", path + ("&cursor=" + cursor if cursor else ""))
            assert st == 200
            for x in doc["images"]:
                st, m = c.call("GET", "/images/%s/metadata" % x["image_id"])
                # devices hear of variants becoming ready (not of failures)
                variants = tuple(sorted(v["variant_type"] for v in m["variants"]
                                        if v["status"] == "ready"))
                out[x["image_id"]] = (x["name"], x["visibility"], variants)
            cursor = doc["next_cursor"]
            if not cursor:
                break
    return out


def mark_variant_ready(image_id, vtype):
    """What the thumbnail worker commits: a ready variant and a change for every image on
    that content (owners and share recipients)."""
    sql("WITH h AS (SELECT content_hash FROM images WHERE image_id = '{i}'),"
        " v AS (INSERT INTO image_variants (content_hash, variant_type, status, storage_path,"
        " mime_type) SELECT content_hash, '{t}', 'ready', 'variants/x/' || content_hash ||"
        " '/{t}.webp', 'image/webp' FROM h ON CONFLICT (content_hash, variant_type) DO UPDATE"
        " SET status = 'ready' RETURNING content_hash)"
        " INSERT INTO change_log (user_id, image_id, kind)"
        " SELECT i.owner_id, i.image_id, 'variant_ready' FROM images i JOIN v USING (content_hash)"
        " UNION ALL SELECT s.user_id, i.image_id, 'variant_ready' FROM images i"
        " JOIN v USING (content_hash) JOIN image_shares s ON s.image_id = i.image_id"
        .format(i=image_id, t=vtype))


def test_devices_converge_under_concurrent_writers(api):
    uid = user_id("sync")
    c = Client(api.url, api.token(uid))
    friend = Client(api.url, api.token(user_id("friend")))
    d1, d2 = Device(Client(api.url, api.token(uid))), Device(Client(api.url, api.token(uid)))
    d1.sync()
    rnd = random.Random(7)
    live, deleted, lock = [], [], threading.Lock()

    def op(i):
        r = rnd.random()
        with lock:
            pick = rnd.choice(live) if live else None
            gone = rnd.choice(deleted) if deleted else None
        if r < 0.3 or pick is None:
            who = friend if r < 0.05 else c
            _, doc = who.upload(os.urandom(300 + i), name="img-%d.jpg" % i)
            if who is friend:
                friend.call("POST", "/images/%s/shares" % doc["image_id"], {"user_id": uid})
            else:
                with lock:
                    live.append(doc["image_id"])
        elif r < 0.55:
            c.call("PATCH", "/images/%s" % pick, {"name": "renamed-%d.jpg" % i})
        elif r < 0.65:
            c.call("PATCH", "/images/%s" % pick,
                   {"visibility": rnd.choice(["private", "shared", "public"])})
        elif r < 0.8:
            if c.call("DELETE", "/images/%s" % pick)[0] == 200:
                with lock:
                    live.remove(pick) if pick in live else None
                    deleted.append(pick)
        elif r < 0.9 and gone:
            if c.call("POST", "/images/%s/restore" % gone)[0] == 200:
                with lock:
                    deleted.remove(gone) if gone in deleted else None
                    live.append(gone)
        else:
            mark_variant_ready(pick, rnd.choice(["thumbnail_small", "preview"]))
        if i % 25 == 0:
            d1.sync(limit=rnd.choice([5, 13, 100]))

    with cf.ThreadPoolExecutor(4) as ex:
        list(ex.map(op, range(300)))
    d1.sync(limit=7)
    d2.sync(limit=11)
    want = truth(c)
    assert len(want) > 10
    assert d1.images == want
    assert d2.images == want


def test_out_of_order_commit_is_not_skipped(api):
    uid = user_id("ooo")
    c = Client(api.url, api.token(uid))
    _, a = c.upload(os.urandom(500), name="a.jpg")
    _, b = c.upload(os.urandom(500), name="b.jpg")
    dev = Device(Client(api.url, api.token(uid)))
    dev.sync()
    # a writer takes its position first (its change-log row and xid) and commits last
    held = subprocess.Popen(["psql", os.environ["DATABASE_URL"], "-X", "-q", "-At", "-v",
                             "ON_ERROR_STOP=1"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    held.stdin.write("BEGIN;\nUPDATE images SET name = 'late.jpg', updated_at = now()"
                     " WHERE image_id = '%s';\nINSERT INTO change_log (user_id, image_id, kind)"
                     " VALUES ('%s', '%s', 'updated');\nSELECT 'held';\n" % (a["image_id"], uid,
                                                                           a["image_id"]))
    held.stdin.flush()
    assert held.stdout.readline().strip() == "held"
    try:
        # a later transaction commits first, and the device syncs in between
        assert c.call("PATCH", "/images/%s" % b["image_id"], {"name": "early.jpg"})[0] == 200
        dev.sync()
        assert dev.images[a["image_id"]][0] == "a.jpg"
    finally:
        held.stdin.write("COMMIT;\n")
        held.stdin.close()
        assert held.wait(30) == 0, held.stderr.read()
    dev.sync()
    assert dev.images[a["image_id"]][0] == "late.jpg"
    assert dev.images[b["image_id"]][0] == "early.jpg"


def test_paging_gives_each_change_once(api):
    uid = user_id("page")
    c = Client(api.url, api.token(uid))
    _, first = c.upload(os.urandom(700), name="seed.jpg")
    dev = Device(Client(api.url, api.token(uid)))
    dev.sync()
    # 999 more images on the same content, committed the way the API commits them
    sql("WITH ids AS (SELECT gen_random_uuid() AS id, g FROM generate_series(1, 999) g),"
        " i AS (INSERT INTO images (image_id, owner_id, content_hash, name, size, mime_type)"
        " SELECT id, '{u}', '{h}', 'bulk-' || g || '.jpg', 700, 'image/jpeg' FROM ids"
        " RETURNING image_id),"
        " b AS (UPDATE blobs SET ref_count = ref_count + 999 WHERE content_hash = '{h}')"
        " INSERT INTO change_log (user_id, image_id, kind) SELECT '{u}', image_id, 'added' FROM i"
        .format(u=uid, h=first["sha256"]))
    got = []
    cursor = dev.cursor
    for _ in range(100):
        st, doc = dev.c.call("GET", "/sync?limit=37&since=" + cursor)
        assert st == 200
        assert len(doc["added"]) <= 37 and not doc["updated"] and not doc["deleted"]
        got += [x["image_id"] for x in doc["added"]]
        cursor = doc["cursor"]
        if not doc["has_more"]:
            break
    assert len(got) == 999 and len(set(got)) == 999
    # a fresh device pages through the snapshot: all 1,000, each once
    fresh = Device(Client(api.url, api.token(uid)))
    fresh.sync(limit=37)
    assert len(fresh.images) == 1000 and fresh.pages == 28
    st, doc = fresh.c.call("GET", "/sync?since=" + fresh.cursor)
    assert doc["added"] == [] and doc["has_more"] is False


def test_bad_cursor_and_limit(client):
    for q in ("since=garbage", "since=eC4xLjI", "since=cy45Lm5vdC1hLXV1aWQ", "limit=0", "limit=1001", "limit=x"):
        st, doc = client.call("GET", "/sync?" + q)
        assert st == 400, (q, st, doc)
    anon = requests.get(client.base + "/sync", timeout=10)
    assert anon.status_code == 401


def sse_connect(url, token, last_id=None, timeout=10):
    u = urllib.parse.urlsplit(url)
    s = socket.create_connection((u.hostname, u.port), timeout=timeout)
    hdr = "GET /sync/stream HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n" % token
    if last_id:
        hdr += "Last-Event-ID: %s\r\n" % last_id
    s.sendall((hdr + "\r\n").encode())
    return s


class SSEReader:
    def __init__(self, sock):
        self.sock = sock
        self.buf = b""
        self.head = None

    def _fill(self, deadline):
        self.sock.settimeout(max(0.05, deadline - time.monotonic()))
        try:
            chunk = self.sock.recv(65536)
        except socket.timeout:
            return False
        if not chunk:
            raise EOFError("stream closed")
        self.buf += chunk
        return True

    def headers(self, timeout=10):
        deadline = time.monotonic() + timeout
        while b"\r\n\r\n" not in self.buf and time.monotonic() < deadline:
            self._fill(deadline)
        head, _, self.buf = self.buf.partition(b"\r\n\r\n")
        self.head = head.decode()
        return self.head

    def event(self, timeout=5):
        """The next event (dict with id, event, data) or None on timeout; comments skipped."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            while b"\n\n" in self.buf:
                block, _, self.buf = self.buf.partition(b"\n\n")
                ev = {}
                for line in block.decode().split("\n"):
                    if line.startswith(":") or ":" not in line:
                        continue
                    k, _, v = line.partition(":")
                    ev[k] = ev.get(k, "") + v.lstrip(" ")
                if ev:
                    return ev
            self._fill(deadline)
        return None


def test_sse_push_resume_and_isolation(api):
    import json
    uid, other = user_id("sse"), user_id("sse-other")
    c = Client(api.url, api.token(uid))
    o = Client(api.url, api.token(other))
    s = SSEReader(sse_connect(api.url, api.token(uid)))
    head = s.headers()
    assert " 200 " in head.split("\r\n")[0] and "text/event-stream" in head
    first = s.event(5)  # the catch-up event for a fresh stream
    assert first and first.get("event") == "sync"
    t0 = time.monotonic()
    _, doc = c.upload(os.urandom(400), name="pushed.jpg")
    ev = s.event(5)
    elapsed = time.monotonic() - t0
    assert ev is not None, "no event"
    data = json.loads(ev["data"])
    assert [x["image_id"] for x in data["added"]] == [doc["image_id"]]
    # within a second of the commit (the upload itself includes the S3 round trips)
    assert elapsed < 3.0, elapsed
    last_id = ev["id"]
    # another user's change never arrives
    o.upload(os.urandom(400), name="not-yours.jpg")
    assert s.event(1.5) is None
    s.sock.close()
    # changes while disconnected are delivered on resume
    c.call("PATCH", "/images/%s" % doc["image_id"], {"name": "offline-rename.jpg"})
    _, doc2 = c.upload(os.urandom(400), name="offline.jpg")
    s2 = SSEReader(sse_connect(api.url, api.token(uid), last_id=last_id))
    s2.headers()
    seen = {}
    for _ in range(5):
        ev = s2.event(3)
        if ev is None:
            break
        d = json.loads(ev["data"])
        for x in d["added"] + d["updated"]:
            seen[x["image_id"]] = x["name"]
        if len(seen) == 2:
            break
    assert seen == {doc["image_id"]: "offline-rename.jpg", doc2["image_id"]: "offline.jpg"}
    s2.sock.close()


def test_sse_push_waits_out_a_long_transaction(api):
    """The horizon is cluster-wide: a writing transaction that began before a change holds it
    back, here in another database for longer than the hub's 5 s of re-polls after the
    notification. The change is pushed once that transaction ends, with no other change to
    wake the stream (the hub keeps polling while entries past the cursor are held back)."""
    import json
    uid = user_id("sse-held")
    c = Client(api.url, api.token(uid))
    s = SSEReader(sse_connect(api.url, api.token(uid)))
    s.headers()
    assert s.event(5).get("event") == "sync"  # the catch-up event
    _, doc = c.upload(os.urandom(400), name="before.jpg")
    ev = s.event(30)
    assert ev and [x["name"] for x in json.loads(ev["data"])["added"]] == ["before.jpg"], ev
    held = subprocess.Popen(["psql", os.environ["DATABASE_URL"].rsplit("/", 1)[0] + "/postgres",
                             "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    held.stdin.write("BEGIN;\nSELECT pg_current_xact_id() IS NOT NULL;\n")
    held.stdin.flush()
    assert held.stdout.readline().strip() == "t"  # it has an xid: it holds the horizon
    try:
        assert c.call("PATCH", "/images/%s" % doc["image_id"], {"name": "held.jpg"})[0] == 200
        assert s.event(8) is None, "pushed past an open transaction that began before it"
    finally:
        held.stdin.write("ROLLBACK;\n")
        held.stdin.close()
        assert held.wait(30) == 0, held.stderr.read()
    ev = s.event(5)
    assert ev is not None, "the held change was not pushed after the transaction ended"
    assert [x["name"] for x in json.loads(ev["data"])["updated"]] == ["held.jpg"]
    s.sock.close()


def test_expired_cursor_gets_410(stack):
    api = ApiProcess({"PIXPLANE_SYNC_RETENTION": "1s"})
    try:
        uid = user_id("old")
        c = Client(api.url, api.token(uid))
        admin = Client(api.url, api.token("ops", admin=True))
        dev = Device(Client(api.url, api.token(uid)))
        c.upload(os.urandom(100))
        dev.sync()
        old = dev.cursor
        c.upload(os.urandom(100))
        # retention drops whole days (change_log is partitioned by day, migration 016): the
        # user's changes move to a day of their own ten years back, which the prune drops
        sql("SELECT pix_log_partition_add('change_log',"
            " (now() AT TIME ZONE 'UTC')::date - 3650)")
        sql("UPDATE change_log SET created_at = created_at - interval '3650 days'"
            " WHERE user_id = '%s'" % uid)
        time.sleep(1.5)
        st, doc = admin.call("POST", "/internal/sync/prune")
        assert st == 200 and doc["pruned"] >= 2 and doc["partitions"] >= 1, doc
        st, doc = dev.c.call("GET", "/sync?since=" + old)
        assert st == 410 and doc["error"]["code"] == "full_resync_required", doc
        st, doc = dev.c.call("GET", "/sync?since=0")  # a full resync still works
        assert st == 200 and len(doc["added"]) == 2
    finally:
        api.stop()
