"""PostgreSQL failover under load (issue 20, must-show 1). A pg_auto_failover formation of its
own (minio-dev/pg-ha: monitor, primary, synchronous secondary), its own broker, and an API,
a worker and a reconciler daemon on the formation's multi-host URL. 100 uploads and reads
run from 12 threads; the primary's keeper and postgres are killed with SIGKILL meanwhile;
the secondary is promoted. Every upload acknowledged with 2xx is then present with its
bytes, the three processes carried on without a restart, /readyz reported the outage and
the recovery, and the worker and the reconciler did work on the new primary."""
import concurrent.futures as cf
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time

import pytest
import requests

from conftest import BUILD, ROOT, ApiProcess, free_port, user_id
from test_worker import BROKER_BIN, WORKER_BIN, Broker, Worker, jpeg_with_nonce, wait_until

PG_HA = os.path.join(ROOT, "minio-dev", "pg-ha")
API_BIN = os.path.join(BUILD, "pixplane-api")
REC_BIN = os.path.join(BUILD, "pixplane-reconciler")
UPLOADS = 100
THREADS = 12
KILL_AFTER = 30  # acknowledged uploads before the primary dies
RETRY_FOR = 90.0  # seconds a client keeps retrying one step


class Formation:
    """minio-dev/pg-ha in a temporary directory."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="pixtest-ha-")

    def run(self, *args, timeout=240):
        out = subprocess.run([PG_HA, *args], capture_output=True, text=True, timeout=timeout)
        assert out.returncode == 0, "pg-ha %s: %s" % (" ".join(args), out.stderr[-2000:])
        return out.stdout.strip()

    def start(self):
        urls = dict(line.split("=", 1) for line in self.run("start", self.dir).splitlines())
        self.url, self.read_url = urls["DATABASE_URL"], urls["DATABASE_READ_URL"]

    def primary(self):
        return self.run("primary", self.dir)

    def destroy(self):
        try:
            self.run("destroy", self.dir)
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)


class Env:
    """What Worker needs of a stack: a database URL, a broker, a group and a directory."""

    def __init__(self, top, dburl, broker):
        self.top, self.dburl, self.broker = top, dburl, broker
        self.group = "pixplane-worker-ha-" + os.path.basename(top)[-8:]


class Readiness(threading.Thread):
    """Polls GET url every 100 ms and keeps (time, status); 0 for no answer."""

    def __init__(self, url):
        super().__init__(daemon=True)
        self.url, self.seen, self.done = url, [], threading.Event()

    def run(self):
        for _ in range(6000):
            if self.done.is_set():
                return
            try:
                st = requests.get(self.url, timeout=2).status_code
            except requests.RequestException:
                st = 0
            self.seen.append((time.monotonic(), st))
            time.sleep(0.1)


def retried(step, what, errors):
    """step() -> (ok, value); retried on failure for RETRY_FOR seconds (bounded count)."""
    deadline = time.monotonic() + RETRY_FOR
    for _ in range(int(RETRY_FOR / 0.2) + 1):
        began = time.monotonic()
        try:
            ok, v = step()
        except requests.RequestException as e:
            ok, v = False, repr(e)
        if ok:
            return v, began
        errors.append((time.monotonic(), what, str(v)[:200]))
        if time.monotonic() > deadline:
            break
        time.sleep(0.2)
    raise AssertionError("%s kept failing: %s" % (what, errors[-1]))


def upload_one(base, token, data, errors):
    """One upload as a careful client makes it: each step retried until it succeeds; returns
    (image_id, when the complete that succeeded was sent, when it was acknowledged)."""
    s = requests.Session()
    s.headers["Authorization"] = "Bearer " + token
    body = {"file_name": "ha.jpg", "file_size": len(data), "mime_type": "image/jpeg"}

    def start():
        r = s.post(base + "/uploads", json=body, timeout=30)
        return r.status_code == 201, (r.json() if r.status_code == 201 else r.text)
    sess, _ = retried(start, "start", errors)
    sid = sess["upload_session_id"]
    if sess.get("chunk_count", 1):
        def urls():
            r = s.post(base + "/uploads/%s/chunks/urls" % sid, json={"chunk_numbers": [0]},
                       timeout=30)
            return r.status_code == 200, (r.json() if r.status_code == 200 else r.text)
        url = retried(urls, "urls", errors)[0]["urls"][0]["url"]
        put = requests.put(url, data=data, timeout=60)
        assert put.status_code == 200, put.text[:300]

    def complete():
        r = s.post(base + "/uploads/%s/complete" % sid, timeout=60)
        return r.status_code == 200, (r.json() if r.status_code == 200 else r.text)
    doc, began = retried(complete, "complete", errors)
    return doc["image_id"], began, time.monotonic()


@pytest.fixture
def ha(stack):
    for b in (API_BIN, WORKER_BIN, BROKER_BIN, REC_BIN):
        if not os.access(b, os.X_OK):
            pytest.skip("%s not built" % b)
    if not shutil.which("pg_autoctl"):
        pytest.skip("pg_autoctl not installed (postgresql-15-auto-failover)")
    f = Formation()
    top = tempfile.mkdtemp(prefix="pixtest-failover-")
    procs = []
    try:
        f.start()
        env = dict(os.environ, DATABASE_URL=f.url)
        subprocess.run([API_BIN, "migrate"], env=env, check=True, timeout=120,
                       capture_output=True)
        broker = Broker(top, brokers=1)
        procs.append(broker)
        yield f, top, broker
    finally:
        for p in procs:
            p.stop()
        f.destroy()
        shutil.rmtree(top, ignore_errors=True)


def test_failover_under_load(ha):
    f, top, broker = ha
    api = ApiProcess({"DATABASE_URL": f.url, "PIXPLANE_DB_POOL": "16"},
                     log_path=os.path.join(top, "api.log"))
    worker = Worker(Env(top, f.url, broker))
    rec_port = free_port()
    rec_log = open(os.path.join(top, "reconciler.log"), "wb")
    rec = subprocess.Popen([REC_BIN], stdout=rec_log, stderr=rec_log, env=dict(
        os.environ, DATABASE_URL=f.url, PIXPLANE_RECONCILE_INTERVAL="2s",
        PIXPLANE_RECONCILER_LISTEN="127.0.0.1:%d" % rec_port))
    ready = Readiness(api.url + "/readyz")
    ready.start()
    try:
        run_load_and_kill(f, api, worker, rec, rec_port, ready)
    finally:
        ready.done.set()
        rec.terminate()
        rec.wait(30)
        rec_log.close()
        worker.stop()
        api.stop()


def run_load_and_kill(f, api, worker, rec, rec_port, ready):
    token = api.token(user_id("ha"))
    base = small_jpeg(os.path.dirname(api.log_path))
    datas = [jpeg_with_nonce(base) for _ in range(UPLOADS)]
    errors, acked, reads = [], {}, []
    old = f.primary()
    killed_at = None
    with cf.ThreadPoolExecutor(THREADS) as pool:
        futs = {pool.submit(upload_one, api.url, token, d, errors): d for d in datas}
        for fut in cf.as_completed(futs, timeout=400):
            image_id, sent, at = fut.result()
            acked[image_id] = (hashlib.sha256(futs[fut]).hexdigest(), sent, at)
            if len(acked) % 3 == 0:  # reads interleaved with the uploads
                reads.append(pool.submit(read_back, api, token, image_id, errors))
            if killed_at is None and len(acked) >= KILL_AFTER:
                f.run("kill", f.dir, old)
                killed_at = time.monotonic()
    assert killed_at is not None and len(acked) == UPLOADS
    new = wait_until(lambda: (lambda p: p if p and p != old else None)(f.primary()), 60,
                     "the secondary's promotion")
    after = sorted(at for _, sent, at in acked.values() if sent > killed_at)
    assert after, "no upload completed after the kill"
    first_ok = after[0] - killed_at  # the first complete sent after the kill to succeed
    during = [e for e in errors if e[0] > killed_at]
    released = api_events(api, "unclaim_retried")
    print("failover: primary %s -> %s; first complete sent after the kill acknowledged %.1f s "
          "after it; %d client errors meanwhile (%s); %d completion leases released late"
          % (old, new, first_ok, len(during), sorted({e[1] for e in during}), released))
    print("FAILOVER_JSON " + json.dumps({  # bench/failover/run collects these
        "first_complete_after_kill_s": round(first_ok, 2), "client_errors": len(during),
        "error_kinds": sorted({e[1] for e in during}), "leases_released_late": released}))

    for fut in reads:
        fut.result(timeout=120)
    for image_id, (sha, _, _) in acked.items():  # every acknowledged upload, with its bytes
        assert read_back(api, token, image_id, errors) == sha
    for name, p in (("api", api.proc), ("worker", worker.proc), ("reconciler", rec)):
        assert p.poll() is None, "%s exited during the failover" % name
    codes = [st for t, st in ready.seen if t > killed_at]
    assert 503 in codes, "/readyz never reported the outage: %s" % codes[:50]
    last_bad = max(i for i, st in enumerate(codes) if st != 200)
    assert 200 in codes[last_bad + 1:], "/readyz did not recover"
    check_workers_carry_on(api, token, worker, rec_port, base, errors)


def api_events(api, name):
    with open(api.log_path, "rb") as f:
        return sum(1 for line in f if b'"event":"%s"' % name.encode() in line)


def small_jpeg(top):
    path = os.path.join(top, "base.jpg")
    subprocess.run(["vips", "gaussnoise", path + "[Q=80]", "320", "240"], check=True, timeout=60)
    with open(path, "rb") as fh:
        return fh.read()


def read_back(api, token, image_id, errors):
    """GET /images/{id} and the original's bytes (retried like the uploads): their sha256."""
    h = {"Authorization": "Bearer " + token}

    def get():
        r = requests.get(api.url + "/images/%s" % image_id, headers=h, timeout=30)
        return r.status_code == 200, (r.json() if r.status_code == 200 else r.text)
    doc, _ = retried(get, "read", errors)
    body = requests.get(doc["download_url"], timeout=60)
    assert body.status_code == 200
    return hashlib.sha256(body.content).hexdigest()


def check_workers_carry_on(api, token, worker, rec_port, base, errors):
    """On the new primary: a fresh upload gets its thumbnails (worker and relay reconnected)
    and the reconciler finishes passes and answers ready."""
    image_id = upload_one(api.url, token, jpeg_with_nonce(base), errors)[0]
    h = {"Authorization": "Bearer " + token}

    def variants_ready():
        r = requests.get(api.url + "/images/%s/metadata" % image_id, headers=h, timeout=10)
        vs = r.json().get("variants", []) if r.status_code == 200 else []
        return vs and all(v.get("status") == "ready" for v in vs)
    wait_until(variants_ready, 90, "thumbnails of an upload made after the failover", 0.5)
    wait_until(lambda: requests.get("http://127.0.0.1:%d/readyz" % rec_port,
                                    timeout=2).status_code == 200, 60, "reconciler ready")
