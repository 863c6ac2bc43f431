# The thumbnail pipeline end to end: upload through the real API -> outbox -> relay (inside
# pixplane-worker) -> Kafka (the mock-cluster broker process) -> worker -> libvips -> radosgw
# objects + image_variants rows + change_log. The module runs its own broker process (so
# outages can be injected without disturbing anyone) and its own database on the stack's
# PostgreSQL server; radosgw is the shared one (content is random, keys never collide).
import hashlib
import json
import os
import random
import re
import shutil
import signal
import struct
import subprocess
import tempfile
import time
import urllib.parse
import uuid

import pytest
import requests

from conftest import (BUILD, ROOT, ApiProcess, Client, assert_sanitizer_clean, object_exists,
                      report_tail, sql, user_id)

WORKER_BIN = os.path.join(BUILD, "pixplane-worker")
BROKER_BIN = os.path.join(BUILD, "pixplane-mock-kafka")
API_BIN = os.path.join(BUILD, "pixplane-api")
MAKE_IMAGES = os.path.join(ROOT, "tests", "fixtures", "make-images.sh")
BUCKET = os.environ.get("S3_BUCKET", "pixplane")
VARIANTS = {"thumbnail_small": 256, "thumbnail_large": 1024, "preview": 2048}
TOPICS = "image-uploaded:4,image-uploaded-dlq:1,pixplane-events:4"


def wait_until(pred, timeout, what, interval=0.2):
    """Polls pred (bounded in time and count) until it returns a truthy value."""
    deadline = time.monotonic() + timeout
    for _ in range(int(timeout / interval) + 2):
        v = pred()
        if v:
            return v
        if time.monotonic() >= deadline:
            break
        time.sleep(interval)
    raise AssertionError("timed out after %.0fs waiting for %s" % (timeout, what))


class Broker:
    """The Kafka broker program (librdkafka mock cluster served over TCP)."""

    def __init__(self, top, brokers=3):
        self.bootstrap_file = os.path.join(top, "bootstrap")
        self.control = os.path.join(top, "control")
        self.log = open(os.path.join(top, "broker.log"), "wb")
        self.proc = subprocess.Popen(
            [BROKER_BIN, "--brokers", str(brokers), "--topics", TOPICS, "--bootstrap-file",
             self.bootstrap_file, "--control-file", self.control],
            stdout=self.log, stderr=self.log, start_new_session=True)
        self.bootstrap = wait_until(self._read_bootstrap, 20, "broker bootstrap file")
        self.seq = 0

    def _read_bootstrap(self):
        try:
            with open(self.bootstrap_file) as f:
                return f.read().strip()
        except FileNotFoundError:
            return None

    def command(self, line):
        """Runs a control command and waits until the broker applied it."""
        self.seq += 1
        with open(self.control, "a") as f:
            f.write(line + "\n")

        def applied():
            try:
                with open(self.control + ".state") as f:
                    first = f.readline().split()
                return len(first) == 2 and int(first[1]) >= self.seq
            except (FileNotFoundError, ValueError):
                return False
        wait_until(applied, 10, "broker command %r" % line, 0.05)

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


class Worker:
    """A pixplane-worker process; stop() sends SIGTERM and requires exit 0 in time."""

    count = 0

    def __init__(self, ws, **env):
        Worker.count += 1
        self.log_path = os.path.join(ws.top, "worker-%d.log" % Worker.count)
        self.log = open(self.log_path, "wb")
        e = dict(os.environ)
        e.update({"DATABASE_URL": ws.dburl, "KAFKA_BOOTSTRAP": ws.broker.bootstrap,
                  "PIXPLANE_WORKER_GROUP": ws.group, "PIXPLANE_STATS_INTERVAL": "0",
                  "PIXPLANE_RELAY_STANDBY_RETRY": "1s", "PIXPLANE_SHUTDOWN_TIMEOUT": "15s"})
        e.update({k: str(v) for k, v in env.items()})
        self.proc = subprocess.Popen([WORKER_BIN], env=e, stdout=self.log, stderr=self.log)
        self.peak_rss_kb = 0
        self.killed = self.stopped = False

    def sample_rss(self):
        try:
            with open("/proc/%d/status" % self.proc.pid) as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        self.peak_rss_kb = max(self.peak_rss_kb, int(line.split()[1]))
        except FileNotFoundError:
            pass
        return self.peak_rss_kb

    def events(self, name=None):
        out = []
        with open(self.log_path, "rb") as f:
            for raw in f:
                try:
                    ev = json.loads(raw)
                except ValueError:
                    continue
                if name is None or ev.get("event") == name:
                    out.append(ev)
        return out

    def text(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def stop(self, timeout=30):
        self.sample_rss()
        self.stopped = True
        t0 = time.monotonic()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                rc = self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError("worker did not stop on SIGTERM; log %s" % self.log_path)
        else:
            rc = self.proc.returncode
        self.log.close()
        text = self.text()
        assert rc == 0, "worker exited %s; log %s\n%s" % (rc, self.log_path, report_tail(text))
        assert_sanitizer_clean(text)
        return time.monotonic() - t0

    def kill(self):
        self.sample_rss()
        self.killed = True
        self.proc.kill()
        self.proc.wait()
        self.log.close()


class WorkerStack:
    """Own database + own broker + own API; the stack's radosgw."""

    def __init__(self):
        self.top = tempfile.mkdtemp(prefix="pixtest-worker-")
        self.group = "pixplane-worker-test-%s" % uuid.uuid4().hex[:8]
        base = urllib.parse.urlsplit(os.environ["DATABASE_URL"])
        self.dbname = "pixw_%s" % uuid.uuid4().hex[:10]
        self.dburl = urllib.parse.urlunsplit(base._replace(path="/" + self.dbname))
        self.admin_url = os.environ["DATABASE_URL"]
        self.broker = None
        self.api = None

    def start(self):
        try:
            sql("CREATE DATABASE %s" % self.dbname, url=self.admin_url)
        except subprocess.CalledProcessError:
            pytest.skip("cannot CREATE DATABASE on the stack's server (needs CREATEDB)")
        env = dict(os.environ, DATABASE_URL=self.dburl)
        subprocess.run([API_BIN, "migrate"], env=env, check=True, timeout=60,
                       stdout=subprocess.DEVNULL)
        self.broker = Broker(self.top)
        self.api = ApiProcess({"DATABASE_URL": self.dburl, "PIXPLANE_UPLOAD_TOPIC":
                               "image-uploaded"}, os.path.join(self.top, "api.log"))

    def stop(self):
        if self.api:
            self.api.stop()
        if self.broker:
            self.broker.stop()
        try:
            sql("DROP DATABASE IF EXISTS %s WITH (FORCE)" % self.dbname, url=self.admin_url)
        except subprocess.CalledProcessError:
            pass
        if not os.environ.get("PIXPLANE_KEEP_TEST_LOGS"):
            shutil.rmtree(self.top, ignore_errors=True)

    def sql(self, q):
        return sql(q, url=self.dburl)

    def value(self, q):
        rows = self.sql(q)
        return rows[0][0] if rows else None

    def client(self, prefix="w"):
        return Client(self.api.url, self.api.token(user_id(prefix)))


@pytest.fixture(scope="module")
def ws(stack):
    for b in (WORKER_BIN, BROKER_BIN, API_BIN):
        if not os.access(b, os.X_OK):
            pytest.skip("%s not built" % b)
    w = WorkerStack()
    try:
        w.start()
        yield w
    finally:
        w.stop()


@pytest.fixture
def workers(ws):
    """Starts workers on demand; every one still running is stopped (exit 0) at the end."""
    started = []

    def start(**env):
        w = Worker(ws, **env)
        started.append(w)
        return w
    yield start
    errors = []
    for w in started:
        if w.killed or w.stopped:
            continue
        try:
            w.stop()  # also catches a worker that died by itself (exit code, sanitizers)
        except AssertionError as e:
            errors.append(str(e))
    assert not errors, errors


def sanitized():
    """Sanitized builds (ASan/UBSan in make asan, TSan in make tsan) use several times the
    memory; bounds are relaxed there."""
    with open(WORKER_BIN, "rb") as f:
        data = f.read()
    return b"__asan_init" in data or b"__tsan_init" in data


# ---- images ----

def jpeg_with_nonce(base):
    """The same picture with a random COM segment after SOI: new content, same pixels."""
    nonce = os.urandom(16).hex().encode()
    return base[:2] + b"\xff\xfe" + struct.pack(">H", len(nonce) + 2) + nonce + base[2:]


@pytest.fixture(scope="module")
def images(ws):
    d = os.path.join(ws.top, "images")
    out = subprocess.run([MAKE_IMAGES, d, "--large"], check=True, timeout=300,
                         capture_output=True, text=True).stdout
    expect = {}
    for line in out.splitlines():
        name, what = line.split("\t")
        expect[name] = what
    bases = {}
    for size in ("640x480", "3000x2000"):
        p = os.path.join(d, "base-%s.jpg" % size)
        subprocess.run(["convert", "-size", size, "plasma:fractal", "-quality", "85", p],
                       check=True, timeout=120)
        with open(p, "rb") as f:
            bases[size] = f.read()
    return {"dir": d, "expect": expect, "bases": bases}


MIME = {".jpg": "image/jpeg", ".png": "image/png", ".gif": "image/gif", ".heic": "image/heic",
        ".avif": "image/avif", ".webp": "image/webp", ".tif": "image/tiff"}


def upload(client, data, name="photo.jpg"):
    mime = MIME.get(os.path.splitext(name)[1], "image/jpeg")
    _, doc = client.upload(data, name=name, mime=mime)
    return doc["image_id"], hashlib.sha256(data).hexdigest()


def variant_rows(ws, h):
    rows = ws.sql("SELECT variant_type, status, coalesce(storage_path,''), coalesce(width,0),"
                  " coalesce(height,0), coalesce(size,0), coalesce(mime_type,''),"
                  " coalesce(error,''), attempts FROM image_variants"
                  " WHERE content_hash = '%s' ORDER BY variant_type" % h)
    return {r[0]: {"status": r[1], "path": r[2], "w": int(r[3]), "h": int(r[4]),
                   "size": int(r[5]), "mime": r[6], "error": r[7], "attempts": int(r[8])}
            for r in rows}


def all_final(ws, hashes):
    """True when every hash has all variants ready or failed."""
    hs = ",".join("'%s'" % h for h in hashes)
    n = int(ws.value("SELECT count(*) FROM image_variants WHERE content_hash IN (%s)"
                     " AND status IN ('ready', 'failed')" % hs))
    return n == len(hashes) * len(VARIANTS)


def list_keys(s3, prefix):
    keys, token = [], None
    for _ in range(100):
        kw = {"Bucket": BUCKET, "Prefix": prefix}
        if token:
            kw["ContinuationToken"] = token
        r = s3.list_objects_v2(**kw)
        keys += [o["Key"] for o in r.get("Contents", [])]
        if not r.get("IsTruncated"):
            break
        token = r["NextContinuationToken"]
    return keys


def image_info(s3, key, top):
    """(width, height, fields) of an object, read by the libvips CLI (an independent reader)."""
    body = s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
    p = os.path.join(top, "check-" + uuid.uuid4().hex + os.path.splitext(key)[1])
    with open(p, "wb") as f:
        f.write(body)
    try:
        out = subprocess.run(["vipsheader", "-a", p], check=True, timeout=30,
                             capture_output=True, text=True).stdout
    finally:
        os.unlink(p)
    fields = dict(l.split(": ", 1) for l in out.splitlines()[1:] if ": " in l)
    return int(fields["width"]), int(fields["height"]), fields, body


def check_ready_variants(ws, s3, h, small_wh=None, blob_id=None):
    rows = variant_rows(ws, h)
    assert set(rows) == set(VARIANTS), rows
    blob_id = blob_id or ws.value("SELECT blob_id FROM blobs WHERE content_hash = '%s'" % h)
    for name, box in VARIANTS.items():
        r = rows[name]
        assert r["status"] == "ready", (name, r)
        assert r["path"] == "variants/%s/%s/%s.webp" % (h, blob_id, name), r
        assert r["mime"] == "image/webp"
        w, ht, fields, body = image_info(s3, r["path"], ws.top)
        assert body[:4] == b"RIFF" and body[8:12] == b"WEBP"
        assert (w, ht) == (r["w"], r["h"]) and len(body) == r["size"]
        assert max(w, ht) <= box
        assert not any(k.startswith("exif") or k in ("xmp-data", "icc-profile-data")
                       for k in fields), fields  # metadata stripped (no GPS, no EXIF)
    if small_wh:
        s = rows["thumbnail_small"]
        assert "%dx%d" % (s["w"], s["h"]) == small_wh, s
    assert sorted(list_keys(s3, "variants/%s/" % h)) == sorted(r["path"] for r in rows.values())
    return rows


# ---- must show ----

def test_upload_makes_all_variants(ws, workers, images, s3):
    w = workers()
    c = ws.client()
    data = jpeg_with_nonce(images["bases"]["640x480"])
    t0 = time.monotonic()
    image_id, h = upload(c, data)
    wait_until(lambda: all_final(ws, [h]), 60, "variants of one upload")
    latency = time.monotonic() - t0
    rows = check_ready_variants(ws, s3, h, small_wh="256x192")
    assert rows["preview"]["w"] == 640  # never enlarged
    # the event went out through the relay and is marked sent
    assert ws.value("SELECT count(*) FROM outbox WHERE msg_key = '%s' AND sent_at IS NOT NULL"
                    % h) == "1"
    # devices learn about it: a change-log entry for the owner's image
    owner = ws.value("SELECT owner_id FROM images WHERE image_id = '%s'" % image_id)
    assert ws.value("SELECT count(*) FROM change_log WHERE image_id = '%s' AND user_id = '%s'"
                    " AND kind = 'variant_ready'" % (image_id, owner)) == "1"
    # the API serves it: a presigned URL to a WebP that fits the 256 px box
    r = c.s.get(c.base + "/images/%s/variants/thumbnail_small" % image_id, timeout=30)
    assert r.status_code == 200, (r.status_code, r.text[:300])
    doc = r.json()
    assert doc["variant"] == "thumbnail_small"
    body = requests.get(doc["download_url"], timeout=30)
    assert body.status_code == 200 and body.content[:4] == b"RIFF"
    p = os.path.join(ws.top, "served-%s.webp" % image_id)
    with open(p, "wb") as f:
        f.write(body.content)
    wh = subprocess.run(["vipsheader", "-f", "width", p], check=True, capture_output=True,
                        text=True).stdout.strip(), \
        subprocess.run(["vipsheader", "-f", "height", p], check=True, capture_output=True,
                       text=True).stdout.strip()
    assert wh == ("256", "192"), wh
    print("upload->variants latency %.2fs" % latency)
    assert len(w.events("relay_active")) == 1


def test_kafka_down_10s_50_uploads_nothing_lost(ws, workers, images, s3):
    w = workers()
    c = ws.client()
    base = images["bases"]["640x480"]
    _, warm = upload(c, jpeg_with_nonce(base))
    wait_until(lambda: all_final(ws, [warm]), 60, "pipeline warm before the outage")
    ws.broker.command("alldown")
    down_at = time.monotonic()
    hashes = []
    try:
        for _ in range(50):
            hashes.append(upload(c, jpeg_with_nonce(base))[1])
        uploads_took = time.monotonic() - down_at
        time.sleep(max(0.0, 10 - uploads_took))  # down for at least 10 s
        outage = time.monotonic() - down_at
        # nothing was built during the outage, every event is still in the outbox
        assert not all_final(ws, hashes[:1])
    finally:
        ws.broker.command("allup")
    print("outage %.1fs, 50 uploads took %.1fs" % (outage, uploads_took))
    wait_until(lambda: all_final(ws, hashes), 180, "variants of 50 uploads after the outage",
               1.0)
    for h in hashes:
        rows = variant_rows(ws, h)
        assert all(r["status"] == "ready" for r in rows.values()), (h, rows)
    hs = ",".join("'%s'" % h for h in hashes)
    assert ws.value("SELECT count(*) FROM outbox WHERE msg_key IN (%s) AND sent_at IS NULL"
                    % hs) == "0"
    assert int(ws.value("SELECT count(DISTINCT content_hash) FROM image_variants"
                        " WHERE content_hash IN (%s) AND status = 'ready'" % hs)) == 50
    for h in random.sample(hashes, 5):
        check_ready_variants(ws, s3, h)


def test_worker_sigkill_mid_batch_restart_finishes(ws, workers, images, s3):
    base = images["bases"]["3000x2000"]
    c = ws.client()
    w1 = workers(PIXPLANE_WORKER_THREADS="1")
    wait_until(lambda: w1.events("partitions_assigned"), 30, "first worker joins")
    ids, hashes = [], []
    for _ in range(16):
        i, h = upload(c, jpeg_with_nonce(base))
        ids.append(i)
        hashes.append(h)
    hs = ",".join("'%s'" % h for h in hashes)

    def some_done():
        n = int(ws.value("SELECT count(DISTINCT content_hash) FROM image_variants WHERE"
                         " content_hash IN (%s) AND status = 'ready'" % hs))
        return n if n >= 2 else None
    done_before = wait_until(some_done, 120, "a few images done")
    w1.kill()
    assert done_before < len(hashes), "batch finished before the kill; make images larger"
    w2 = workers()
    wait_until(lambda: all_final(ws, hashes), 240, "restarted worker finishes", 1.0)
    for h in hashes:
        check_ready_variants(ws, s3, h)  # exactly one row and one object per variant
    # one variant_ready entry per image: nothing was committed twice
    counts = ws.sql("SELECT count(*) FROM change_log WHERE kind = 'variant_ready' AND image_id"
                    " IN (%s) GROUP BY image_id" % ",".join("'%s'" % i for i in ids))
    assert sorted(int(r[0]) for r in counts) == [1] * len(ids), counts
    assert w2.stop() < 20


def test_real_world_inputs(ws, workers, images, s3):
    w = workers()
    c = ws.client()
    expect, d = images["expect"], images["dir"]
    hashes = {}
    for name in expect:
        with open(os.path.join(d, name), "rb") as f:
            hashes[name] = upload(c, f.read(), name=name)[1]
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and not all_final(ws, list(hashes.values())):
        w.sample_rss()
        time.sleep(0.1)
    assert all_final(ws, list(hashes.values())), {n: variant_rows(ws, h)
                                                  for n, h in hashes.items()}
    for name, what in expect.items():
        h = hashes[name]
        if what.startswith("ok"):
            check_ready_variants(ws, s3, h, small_wh=what.split()[1])
        else:
            rows = variant_rows(ws, h)
            assert all(r["status"] == "failed" and r["error"] for r in rows.values()), rows
            assert all(r["attempts"] == 1 for r in rows.values()), rows  # no retries
            assert list_keys(s3, "variants/%s/" % h) == []
    errors = {n: variant_rows(ws, hashes[n])["preview"]["error"]
              for n, what in expect.items() if what == "failed"}
    assert "too large" in errors["bomb.png"] and "50000x50000" in errors["bomb.png"], errors
    assert "not a supported image" in errors["text.jpg"], errors
    rss_mb = w.sample_rss() / 1024
    print("worker peak RSS %.1f MB over the real-world set (with a 50 MP JPEG)" % rss_mb)
    assert rss_mb < (1024 if sanitized() else 200), rss_mb


def test_duplicate_content_two_users_variants_once(ws, workers, images, s3):
    w = workers()
    data = jpeg_with_nonce(images["bases"]["640x480"])
    a, b = ws.client("a"), ws.client("b")
    ia, h = upload(a, data)
    wait_until(lambda: all_final(ws, [h]), 60, "variants of the first upload")
    ib, h2 = upload(b, data)
    assert h2 == h
    wait_until(lambda: ws.value("SELECT count(*) FROM outbox WHERE msg_key = '%s'"
                                " AND sent_at IS NOT NULL" % h) == "2", 30, "second event sent")
    wait_until(lambda: [e for e in w.events("variants_skipped") if e.get("content_hash") == h],
               30, "second event handled")
    w.stop()
    ready = [e for e in w.events("variants_ready") if e.get("content_hash") == h]
    assert len(ready) == 1, ready  # built once; the second event found them ready
    check_ready_variants(ws, s3, h)
    stats = w.events("stopped")[-1]
    assert int(stats["variants_built"]) == 3 and int(stats["variants_skipped"]) >= 3, stats


# ---- more behaviour ----

def test_relay_retries_batches_kafka_refused(ws, workers, images):
    """Kafka down longer than the relay's delivery timeout: the batch fails, its rows stay
    unsent with attempts and last_error, and go out once Kafka is back."""
    w = workers(PIXPLANE_RELAY_DELIVERY_TIMEOUT="2s")
    c = ws.client()
    _, warm = upload(c, jpeg_with_nonce(images["bases"]["640x480"]))
    wait_until(lambda: all_final(ws, [warm]), 60, "pipeline warm")
    ws.broker.command("alldown")
    try:
        hashes = [upload(c, jpeg_with_nonce(images["bases"]["640x480"]))[1] for _ in range(3)]
        hs = ",".join("'%s'" % h for h in hashes)
        wait_until(lambda: ws.value("SELECT count(*) FROM outbox WHERE msg_key IN (%s) AND"
                                    " sent_at IS NULL AND attempts >= 1 AND last_error <> ''"
                                    % hs) == "3", 30, "failed batch recorded on the rows")
    finally:
        ws.broker.command("allup")
    wait_until(lambda: all_final(ws, hashes), 90, "variants after Kafka is back")
    assert ws.value("SELECT count(*) FROM outbox WHERE msg_key IN (%s) AND sent_at IS NULL"
                    % hs) == "0"
    assert w.events("relay_delivery_failed")


def test_relay_sent_counts_only_marked_rows(ws, workers, images):
    """Kafka takes the batch but marking its rows sent fails: the rows are not counted as
    sent (they go out again), and relay_sent counts only rows the database marked."""
    ws.sql("CREATE OR REPLACE FUNCTION test_refuse_sent() RETURNS trigger LANGUAGE plpgsql AS"
           " $$BEGIN IF NEW.sent_at IS NOT NULL THEN RAISE EXCEPTION 'refused by test'; END IF;"
           " RETURN NEW; END$$;"
           "CREATE TRIGGER test_refuse_sent BEFORE UPDATE ON outbox FOR EACH ROW"
           " EXECUTE FUNCTION test_refuse_sent()")
    try:
        w = workers()
        c = ws.client()
        _, h = upload(c, jpeg_with_nonce(images["bases"]["640x480"]))
        wait_until(lambda: [e for e in w.events("relay_sql_failed")
                            if "refused by test" in e.get("msg", "")], 30, "marking refused")
        w.stop()
        stats = w.events("stopped")[-1]
        assert int(stats["relay_sent"]) == 0, stats
        assert ws.value("SELECT count(*) FROM outbox WHERE msg_key = '%s'"
                        " AND sent_at IS NULL" % h) == "1"
    finally:
        ws.sql("DROP TRIGGER IF EXISTS test_refuse_sent ON outbox;"
               " DROP FUNCTION IF EXISTS test_refuse_sent()")
    w2 = workers()
    wait_until(lambda: all_final(ws, [h]), 60, "variants once marking works again")
    w2.stop()
    assert int(w2.events("stopped")[-1]["relay_sent"]) >= 1


def test_dead_letter_after_max_attempts(ws, workers, images, s3):
    """The original vanished from storage (a broken invariant): every attempt fails, so after
    max-attempts the variants are failed and the event is dead-lettered, offset committed."""
    c = ws.client()
    data = jpeg_with_nonce(images["bases"]["640x480"])
    _, h = upload(c, data)
    path = ws.value("SELECT storage_path FROM blobs WHERE content_hash = '%s'" % h)
    s3.delete_object(Bucket=BUCKET, Key=path)
    w = workers(PIXPLANE_MAX_ATTEMPTS="3", PIXPLANE_RETRY_BACKOFF="200ms")
    wait_until(lambda: all_final(ws, [h]), 90, "variants failed after retries")
    rows = variant_rows(ws, h)
    assert all(r["status"] == "failed" and r["attempts"] == 3 for r in rows.values()), rows
    assert "gave up after 3 attempts" in rows["preview"]["error"], rows
    dl = [e for e in w.events("dead_lettered") if e.get("topic") == "image-uploaded-dlq"]
    assert len(dl) == 1, dl
    assert len(w.events("attempt_failed")) >= 3


def test_purged_content_is_done_without_variants(ws, workers, images, s3):
    """Delete vs variant build: the content was purged before the event was handled."""
    c = ws.client()
    data = jpeg_with_nonce(images["bases"]["640x480"])
    image_id, h = upload(c, data)
    ws.sql("BEGIN; DELETE FROM image_variants WHERE content_hash = '%s';"
           " DELETE FROM images WHERE image_id = '%s';"
           " DELETE FROM blobs WHERE content_hash = '%s'; COMMIT;" % (h, image_id, h))
    w = workers()
    wait_until(lambda: [e for e in w.events("blob_gone") if e.get("content_hash") == h], 60,
               "worker treats the purged content as done")
    assert ws.value("SELECT count(*) FROM image_variants WHERE content_hash = '%s'" % h) == "0"
    assert list_keys(s3, "variants/%s/" % h) == []


def test_one_active_relay_and_failover(ws, workers, images):
    w1 = workers()
    wait_until(lambda: w1.events("relay_active"), 20, "first relay active")
    w2 = workers()
    time.sleep(3)  # several standby retries
    assert w2.events("relay_active") == []
    w1.stop()
    wait_until(lambda: w2.events("relay_active"), 20, "standby takes over")
    c = ws.client()
    _, h = upload(c, jpeg_with_nonce(images["bases"]["640x480"]))
    wait_until(lambda: all_final(ws, [h]), 60, "variants after failover")


def test_sigterm_mid_work_exits_zero_and_next_worker_finishes(ws, workers, images):
    base = images["bases"]["3000x2000"]
    c = ws.client()
    hashes = [upload(c, jpeg_with_nonce(base))[1] for _ in range(8)]
    w1 = workers(PIXPLANE_SHUTDOWN_TIMEOUT="8s")
    hs = ",".join("'%s'" % h for h in hashes)
    wait_until(lambda: int(ws.value("SELECT count(*) FROM image_variants WHERE content_hash"
                                    " IN (%s) AND status = 'ready'" % hs)) > 0, 120,
               "work in progress")
    took = w1.stop()
    assert took < 12, took
    w2 = workers()
    wait_until(lambda: all_final(ws, hashes), 240, "next worker finishes", 1.0)
    assert all(r["status"] == "ready" for h in hashes for r in variant_rows(ws, h).values())
