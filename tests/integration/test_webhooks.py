# Webhooks end to end (issue 19): uploads and changes through the real API -> event triggers
# -> outbox -> relay (pixplane-worker) -> Kafka (own broker process) -> pixplane-hooks ->
# a receiver on 127.0.0.1 in this test, which checks every Standard Webhooks signature.
# Own database, own broker, own API, worker and hooks processes; the stack's radosgw.
# Endpoints are rows inserted in SQL (the admin route /internal/webhooks is another part).
import base64
import hashlib
import hmac
import json
import os
import re
import signal
import subprocess
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from conftest import BUILD, free_port
from test_worker import Worker, jpeg_with_nonce, upload, wait_until
from test_worker import ws  # noqa: F401 (own database, broker and API for the module)

HOOKS_BIN = os.path.join(BUILD, "pixplane-hooks")
VARIANT_COUNT = 3  # the worker's default variant table


class Receiver:
    """An HTTP receiver on 127.0.0.1: verifies every request's signature with the secret of
    its path (/ep/<name>), records it, and answers each path's configured status after its
    configured delay. stop() closes the port (connections refused); start() reopens it."""

    def __init__(self):
        self.port = free_port()
        self.lock = threading.Lock()
        self.secrets, self.status, self.delay = {}, {}, {}
        self.got = []  # dicts: path, id, type, key, body, ts, sig_ok, at
        self.server = None
        self.start()

    def url(self, name):
        return "http://127.0.0.1:%d/ep/%s" % (self.port, name)

    def start(self):
        rec = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                rec.record(self.path, self.headers, body)
                time.sleep(rec.delay.get(self.path, 0))
                code = rec.status.get(self.path, 200)
                self.send_response(code)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *a):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

    def record(self, path, headers, body):
        secret = self.secrets.get(path)
        doc = json.loads(body)
        ok = secret is not None and verify(secret, headers, body) and doc["id"] == headers[
            "webhook-id"]
        with self.lock:
            self.got.append({"path": path, "id": headers["webhook-id"], "type": doc["type"],
                             "key": doc["data"].get("image_id"), "sig_ok": ok,
                             "at": time.time(), "body": body})

    def of(self, path):
        with self.lock:
            return [g for g in self.got if g["path"] == path]


def verify(secret, headers, body):
    """The Standard Webhooks check, written from the specification: HMAC-SHA256 with the
    base64-decoded secret over "<webhook-id>.<webhook-timestamp>.<body>", any v1 entry."""
    key = base64.b64decode(secret[len("whsec_"):])
    msg_id, ts = headers["webhook-id"], headers["webhook-timestamp"]
    if not re.fullmatch(r"[0-9]+", ts) or abs(time.time() - int(ts)) > 300:
        return False
    want = base64.b64encode(hmac.new(key, ("%s.%s." % (msg_id, ts)).encode() + body,
                                     hashlib.sha256).digest()).decode()
    sigs = [s[3:] for s in headers["webhook-signature"].split() if s.startswith("v1,")]
    return any(hmac.compare_digest(want, s) for s in sigs)


class Hooks(Worker):
    """A pixplane-hooks process (the Worker helper's log, stop and kill, another binary)."""

    def __init__(self, ws, **env):
        Worker.count += 1
        self.log_path = os.path.join(ws.top, "hooks-%d.log" % Worker.count)
        self.log = open(self.log_path, "wb")
        self.ops = "127.0.0.1:%d" % free_port()
        e = dict(os.environ)
        e.update({"DATABASE_URL": ws.dburl, "KAFKA_BOOTSTRAP": ws.broker.bootstrap,
                  "PIXPLANE_HOOKS_GROUP": ws.group + "-hooks", "PIXPLANE_STATS_INTERVAL": "0",
                  "PIXPLANE_HOOKS_LISTEN": self.ops, "PIXPLANE_SHUTDOWN_TIMEOUT": "5s",
                  "PIXPLANE_WEBHOOK_ALLOW_ADDRS": "127.0.0.0/8,::1/128",
                  "PIXPLANE_WEBHOOK_RETRY_BACKOFF": "300ms",
                  "PIXPLANE_WEBHOOK_RETRY_BACKOFF_MAX": "2s", "PIXPLANE_HOOKS_POLL": "100ms",
                  "PIXPLANE_HOOKS_UPKEEP_INTERVAL": "1s"})
        e.update({k: str(v) for k, v in env.items()})
        self.proc = subprocess.Popen([HOOKS_BIN], env=e, stdout=self.log, stderr=self.log)
        self.peak_rss_kb = 0
        self.killed = self.stopped = False

    def metric(self, name):
        text = requests.get("http://%s/metrics" % self.ops, timeout=5).text
        m = re.search(r"^%s (\S+)$" % re.escape(name), text, re.M)
        return float(m.group(1)) if m else None


@pytest.fixture(scope="module", autouse=True)
def hooks_built():
    if not os.access(HOOKS_BIN, os.X_OK):
        pytest.skip("%s not built" % HOOKS_BIN)


@pytest.fixture(scope="module")
def base_jpeg(ws):
    p = os.path.join(ws.top, "base.jpg")
    subprocess.run(["convert", "-size", "320x240", "plasma:fractal", "-quality", "85", p],
                   check=True, timeout=60)
    with open(p, "rb") as f:
        return f.read()


@pytest.fixture(scope="module")
def relay(ws):
    """One worker for the module: the outbox relay (and the variants)."""
    w = Worker(ws, PIXPLANE_RELAY_DELIVERY_TIMEOUT="3s")
    yield w
    w.stop()


@pytest.fixture
def procs(ws):
    """Starts pixplane-hooks processes; every one still running must stop with exit 0."""
    started = []

    def start(**env):
        h = Hooks(ws, **env)
        started.append(h)
        return h
    yield start
    for h in started:
        if not (h.killed or h.stopped):
            h.stop()


@pytest.fixture
def rx(ws):
    r = Receiver()
    yield r
    r.stop()
    ws.sql("DELETE FROM webhook_endpoints")  # no test's endpoint outlives it


def endpoint(ws, rx, name, events=("*",), url=None):
    secret = "whsec_" + base64.b64encode(os.urandom(24)).decode()
    rx.secrets["/ep/" + name] = secret
    return ws.value("INSERT INTO webhook_endpoints (endpoint_id, url, events, secret) VALUES"
                    " (gen_random_uuid(), '%s', ARRAY[%s], '%s') RETURNING endpoint_id"
                    % (url or rx.url(name), ",".join("'%s'" % e for e in events), secret))


def expected_order(ws, image_ids):
    """Each image's events in the order their transactions wrote them (outbox order)."""
    ids = ",".join("'%s'" % i for i in image_ids)
    out = {i: [] for i in image_ids}
    for key, eid in ws.sql("SELECT msg_key, payload->>'id' FROM outbox WHERE topic ="
                           " 'pixplane-events' AND msg_key IN (%s) ORDER BY id" % ids):
        out[key].append(eid)
    return out


def first_receipts(rx, path):
    seen, order = set(), {}
    for g in rx.of(path):
        if g["id"] not in seen:
            seen.add(g["id"])
            order.setdefault(g["key"], []).append(g["id"])
    return order


def variants_ready(ws, image_ids):
    ids = ",".join("'%s'" % i for i in image_ids)
    return ws.value("SELECT count(*) FROM image_variants v JOIN images i USING (content_hash)"
                    " WHERE i.image_id IN (%s) AND v.status = 'ready'" % ids) == str(
        VARIANT_COUNT * len(image_ids))


def changes(ws, c, image_ids):
    """After the variants: share, delete, restore each image (one transaction each)."""
    wait_until(lambda: variants_ready(ws, image_ids), 90, "variants ready")
    for i in image_ids:
        for method, path, body in (("POST", "/images/%s/shares" % i, {"user_id": "bob"}),
                                   ("DELETE", "/images/%s" % i, None),
                                   ("POST", "/images/%s/restore" % i, None)):
            st, doc = c.call(method, path, body)
            assert st in (200, 201, 204), (method, path, st, doc)


EVENTS_PER_IMAGE = ["image.created", "image.verified"] + ["variant.ready"] * VARIANT_COUNT + [
    "share.created", "image.deleted", "image.restored"]


def all_arrived(rx, path, want):
    got = first_receipts(rx, path)
    return all(len(got.get(k, [])) >= len(v) for k, v in want.items())


def check_order_and_signatures(ws, rx, path, image_ids):
    want = expected_order(ws, image_ids)
    for i in image_ids:
        types = [json.loads(ws.value("SELECT payload::text FROM outbox WHERE payload->>'id' ="
                                     " '%s'" % e))["type"] for e in want[i]]
        assert types == EVENTS_PER_IMAGE, types
    got = first_receipts(rx, path)
    for i in image_ids:
        assert got[i] == want[i], (i, got[i], want[i])  # per-image order kept
    bad = [g for g in rx.of(path) if not g["sig_ok"]]
    assert not bad, bad[:3]


def test_signed_events_arrive_in_order_with_ids_only(ws, relay, procs, rx, base_jpeg):
    h = procs()
    endpoint(ws, rx, "all")
    endpoint(ws, rx, "deleted_only", events=("image.deleted",))
    c = ws.client("wh")
    ids = [upload(c, jpeg_with_nonce(base_jpeg))[0] for _ in range(3)]
    changes(ws, c, ids)
    want = expected_order(ws, ids)
    wait_until(lambda: all_arrived(rx, "/ep/all", want), 60, "every event at the receiver")
    check_order_and_signatures(ws, rx, "/ep/all", ids)
    # a subscription to one type gets that type only
    wait_until(lambda: len(rx.of("/ep/deleted_only")) >= 3, 30, "image.deleted deliveries")
    assert {g["type"] for g in rx.of("/ep/deleted_only")} == {"image.deleted"}
    # versioned payloads with ids, never URLs or storage paths
    for g in rx.of("/ep/all"):
        doc = json.loads(g["body"])
        assert doc["version"] == 1 and set(doc) == {"version", "id", "type", "occurred_at",
                                                    "data"}
        assert not re.search(rb"https?://|uploads/|variants/", g["body"]), g["body"]
    wait_until(lambda: h.metric("pixplane_hooks_pending") == 0, 10, "backlog gauge at 0")
    assert h.metric('pixplane_hooks_deliveries_total{result="delivered"}') >= 24
    lag = ws.sql("SELECT percentile_cont(ARRAY[0.5, 0.99]) WITHIN GROUP (ORDER BY"
                 " extract(epoch FROM d.delivered_at - e.occurred_at)) FROM webhook_deliveries d"
                 " JOIN webhook_events e USING (event_id)")
    print("commit->delivered p50/p99 (s): %s" % lag[0][0])


def test_receiver_down_30s_then_up_every_event_in_order(ws, relay, procs, rx, base_jpeg):
    procs()
    ep = endpoint(ws, rx, "flaky")
    rx.stop()
    t_down = time.monotonic()
    c = ws.client("wh")
    ids = [upload(c, jpeg_with_nonce(base_jpeg))[0] for _ in range(4)]
    changes(ws, c, ids)
    wait_until(lambda: int(ws.value("SELECT count(*) FROM webhook_deliveries WHERE endpoint_id"
                                    " = '%s' AND attempts >= 2 AND last_error <> ''" % ep)) > 0,
               30, "failed attempts recorded")
    time.sleep(max(0, 30 - (time.monotonic() - t_down)))
    failing = ws.sql("SELECT failures, last_error, enabled FROM webhook_endpoints"
                     " WHERE endpoint_id = '%s'" % ep)[0]
    assert int(failing[0]) > 0 and failing[1] and failing[2] == "t", failing
    assert rx.of("/ep/flaky") == []
    rx.start()
    want = expected_order(ws, ids)
    wait_until(lambda: all_arrived(rx, "/ep/flaky", want), 60, "every event after the outage")
    check_order_and_signatures(ws, rx, "/ep/flaky", ids)
    wait_until(lambda: ws.value("SELECT count(*) FROM webhook_deliveries WHERE endpoint_id ="
                                " '%s' AND status <> 'delivered'" % ep) == "0", 20,
               "deliveries marked delivered")
    assert ws.value("SELECT failures FROM webhook_endpoints WHERE endpoint_id = '%s'" % ep) == "0"


def test_kafka_down_during_uploads_delays_and_loses_nothing(ws, relay, procs, rx, base_jpeg):
    procs()
    endpoint(ws, rx, "k")
    c = ws.client("wh")
    ws.broker.command("alldown")
    try:
        ids = [upload(c, jpeg_with_nonce(base_jpeg))[0] for _ in range(6)]
        keys = ",".join("'%s'" % i for i in ids)
        time.sleep(5)
        assert int(ws.value("SELECT count(*) FROM outbox WHERE topic = 'pixplane-events' AND"
                            " msg_key IN (%s) AND sent_at IS NULL" % keys)) >= 12
        assert not [g for g in rx.of("/ep/k") if g["key"] in ids]
    finally:
        ws.broker.command("allup")
    wait_until(lambda: all_arrived(rx, "/ep/k", expected_order(ws, ids)) and
               variants_ready(ws, ids), 120, "events after Kafka is back")
    got, want = first_receipts(rx, "/ep/k"), expected_order(ws, ids)
    for i in ids:
        assert got[i] == want[i][:len(got[i])] and len(got[i]) == len(want[i])
    assert all(g["sig_ok"] for g in rx.of("/ep/k"))


def test_duplicate_after_kill9_carries_the_same_webhook_id(ws, relay, procs, rx, base_jpeg):
    rx.delay["/ep/slow"] = 1.5
    ep = endpoint(ws, rx, "slow", events=("image.created",))
    h1 = procs(PIXPLANE_WEBHOOK_TIMEOUT="3s")
    c = ws.client("wh")
    image_id = upload(c, jpeg_with_nonce(base_jpeg))[0]
    wait_until(lambda: rx.of("/ep/slow"), 30, "a request in progress")
    h1.kill()  # mid-request: the receiver answers a dead socket, the row stays leased
    first = rx.of("/ep/slow")[0]
    assert ws.value("SELECT status FROM webhook_deliveries WHERE endpoint_id = '%s'" % ep) == \
        "pending"
    procs(PIXPLANE_WEBHOOK_TIMEOUT="3s")
    wait_until(lambda: len(rx.of("/ep/slow")) >= 2, 40, "the delivery sent again")
    again = rx.of("/ep/slow")[1]
    assert again["id"] == first["id"] and again["key"] == image_id
    assert again["body"] == first["body"] and again["sig_ok"] and first["sig_ok"]
    wait_until(lambda: ws.value("SELECT status FROM webhook_deliveries WHERE endpoint_id = '%s'"
                                % ep) == "delivered", 20, "delivered")
    # a replay (as the admin route writes it) carries the same webhook-id as well
    ws.sql("INSERT INTO webhook_deliveries (endpoint_id, event_id, msg_key, replay) SELECT"
           " endpoint_id, event_id, msg_key, true FROM webhook_deliveries WHERE endpoint_id ="
           " '%s'" % ep)
    wait_until(lambda: len(rx.of("/ep/slow")) >= 3, 20, "the replay")
    assert rx.of("/ep/slow")[2]["id"] == first["id"] and rx.of("/ep/slow")[2]["sig_ok"]


def test_endpoint_that_keeps_failing_is_disabled(ws, relay, procs, rx, base_jpeg):
    rx.status["/ep/broken"] = 500
    ep = endpoint(ws, rx, "broken")
    ok = endpoint(ws, rx, "fine")
    h = procs(PIXPLANE_WEBHOOK_DISABLE_FAILURES="4", PIXPLANE_WEBHOOK_DISABLE_AFTER="2s")
    c = ws.client("wh")
    upload(c, jpeg_with_nonce(base_jpeg))
    wait_until(lambda: ws.value("SELECT enabled FROM webhook_endpoints WHERE endpoint_id ="
                                " '%s'" % ep) == "f", 60, "endpoint disabled")
    row = ws.sql("SELECT failures, last_error, disabled_at IS NOT NULL, disabled_reason,"
                 " last_failure_at IS NOT NULL FROM webhook_endpoints WHERE endpoint_id = '%s'"
                 % ep)[0]
    assert int(row[0]) >= 4 and row[1] == "HTTP 500" and row[2] == "t" and row[4] == "t", row
    assert "consecutive failed attempts" in row[3] and "HTTP 500" in row[3], row
    n = len(rx.of("/ep/broken"))
    time.sleep(3)
    assert len(rx.of("/ep/broken")) == n  # nothing more is sent to it
    assert ws.value("SELECT enabled FROM webhook_endpoints WHERE endpoint_id = '%s'" % ok) == "t"
    assert h.events("endpoint_disabled")
    wait_until(lambda: h.metric("pixplane_hooks_endpoints_disabled") == 1, 10, "gauge")


def test_ssrf_private_and_metadata_addresses_never_connected(ws, relay, procs, rx, base_jpeg):
    """The production default (no allow-list): literal private/metadata addresses are refused
    before any connection, with the refusal in last_error; a host name resolving to loopback
    is refused by the guard at connect time (the receiver on 127.0.0.1 sees nothing)."""
    eps = {u: endpoint(ws, rx, "x", url=u) for u in (
        "http://10.0.0.1/hook", "http://169.254.169.254/latest/meta-data/",
        "http://[::ffff:169.254.169.254]/x", "http://localhost:%d/ep/guard" % rx.port)}
    h = procs(PIXPLANE_WEBHOOK_ALLOW_ADDRS="", PIXPLANE_WEBHOOK_TIMEOUT="20s")
    c = ws.client("wh")
    upload(c, jpeg_with_nonce(base_jpeg))
    t0 = time.monotonic()
    for u, ep in eps.items():
        wait_until(lambda: ws.value("SELECT last_error FROM webhook_endpoints WHERE endpoint_id"
                                    " = '%s'" % ep), 30, "an attempt to %s" % u)
    # refused at once, not after a connect timeout (20 s): no connection was tried
    assert time.monotonic() - t0 < 15
    for u, ep in eps.items():
        err = ws.value("SELECT last_error FROM webhook_endpoints WHERE endpoint_id = '%s'" % ep)
        if "localhost" in u:
            assert "connect" in err.lower(), err
        else:
            assert err.startswith("url_forbidden:") and "refused before connecting" in err, err
    assert rx.of("/ep/guard") == []
    assert h.metric("pixplane_hooks_refused_total") >= 3
