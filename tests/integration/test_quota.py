# Quotas and usage (issue 19) against the real stack: per-user byte and image quotas
# enforced at POST /uploads and /uploads/batch with reservations (16 concurrent creates
# against room for 10: exactly 10), GET /me/usage exact through uploads, dedup, delete,
# restore, purge, abort and expiry, the admin override, the quota.exceeded event, the
# reconciler repairing injected drift, and the optional pre-upload hook with a local receiver.
import concurrent.futures as cf
import http.server
import json
import os
import subprocess
import threading
import time

import pytest

from conftest import BUILD, Client, assert_sanitizer_clean, sql, sql_value, start_api, user_id

REC_BIN = os.path.join(BUILD, "pixplane-reconciler")
SIZE = 1000


def blob(tag, size=SIZE):
    return (tag.encode() * (size // len(tag) + 1))[:size]


@pytest.fixture(scope="module")
def qapi(stack):
    p = start_api(PIXPLANE_QUOTA_EVENT_INTERVAL="60s")
    yield p
    p.stop()


def new_user(api, admin_client=None, **limits):
    u = user_id("q")
    c = Client(api.url, api.token(u))
    if limits:
        st, doc = admin(api).call("PUT", "/internal/users/%s/quota" % u, limits)
        assert st == 200, (st, doc)
    return u, c


def admin(api):
    return Client(api.url, api.token("quota-admin", admin=True))


def usage(c):
    st, doc = c.call("GET", "/me/usage")
    assert st == 200, (st, doc)
    return doc


def start_body(data, name="p.jpg", declare=False):
    body = {"file_name": name, "file_size": len(data), "mime_type": "image/jpeg"}
    if declare:
        import hashlib
        body["sha256"] = hashlib.sha256(data).hexdigest()
    return body


def finish(c, sess, data):
    c.put_chunks(sess, data, [0])
    st, doc = c.complete_settled(sess["upload_session_id"])
    assert st == 200, (st, doc)
    return doc


def assert_counts(c, **want):
    u = usage(c)
    assert {k: u[k] for k in want} == want, u


def events(user):
    rows = sql("SELECT payload::text FROM outbox WHERE msg_key = '%s'"
               " AND payload->>'type' = 'quota.exceeded' ORDER BY id" % user)
    return [json.loads(r[0]) for r in rows]


# ---- must show 2: concurrency ----

def test_16_concurrent_creates_against_room_for_10(qapi):
    u, c = new_user(qapi, max_bytes=10 * SIZE)
    datas = [blob("c%02d-" % i) for i in range(16)]

    def create(d):
        return c.call("POST", "/uploads", start_body(d))

    with cf.ThreadPoolExecutor(16) as ex:
        results = list(ex.map(create, datas))
    ok = [(d, doc) for d, (st, doc) in zip(datas, results) if st == 201]
    refused = [doc for st, doc in results if st != 201]
    assert len(ok) == 10, [st for st, _ in results]
    assert len(refused) == 6
    for doc in refused:
        e = doc["error"]
        assert e["code"] == "quota_exceeded" and e["kind"] == "bytes", doc
        assert e["limit"] == 10 * SIZE and e["used"] == 10 * SIZE and e["requested"] == SIZE
        assert e["usage"]["reserved_bytes"] == 10 * SIZE and e["usage"]["max_bytes"] == 10 * SIZE
    assert_counts(c, bytes_used=0, images=0, reserved_bytes=10 * SIZE, reserved_images=10)
    with cf.ThreadPoolExecutor(4) as ex:
        list(ex.map(lambda x: finish(c, x[1], x[0]), ok))
    assert_counts(c, bytes_used=10 * SIZE, images=10, trash_bytes=0, reserved_bytes=0,
                  reserved_images=0, max_bytes=10 * SIZE, max_images=None)
    # one event for the six refusals (at most one per user per interval)
    ev = events(u)
    assert len(ev) == 1, ev
    d = ev[0]["data"]
    assert ev[0]["version"] == 1
    assert d == {"user_id": u, "kind": "bytes", "used": 10 * SIZE, "limit": 10 * SIZE,
                 "requested": SIZE}, d


# ---- accounting ----

def test_usage_through_dedup_delete_restore_purge(qapi):
    u, c = new_user(qapi)
    other_u, other = new_user(qapi)
    data = blob("dedup-%s-" % u, 3000)
    _, a = c.upload(data, declare=True)
    _, b = c.upload(data, declare=True)  # the same content twice: counts twice (logical)
    _, o = other.upload(data, declare=True)  # and fully for another owner
    assert b["deduplicated"] is True
    assert_counts(c, bytes_used=6000, images=2, trash_bytes=0, trash_images=0)
    assert_counts(other, bytes_used=3000, images=1)
    st, _ = c.call("DELETE", "/images/%s" % a["image_id"])
    assert st in (200, 204)
    assert_counts(c, bytes_used=6000, images=2, trash_bytes=3000, trash_images=1)
    st, _ = c.call("POST", "/images/%s/restore" % a["image_id"])
    assert st == 200
    assert_counts(c, bytes_used=6000, images=2, trash_bytes=0, trash_images=0)
    st, _ = c.call("DELETE", "/images/%s" % b["image_id"])
    st, doc = admin(qapi).call("POST", "/internal/images/%s/cleanup" % b["image_id"])
    assert st == 200, doc
    assert_counts(c, bytes_used=3000, images=1, trash_bytes=0, trash_images=0)
    assert_counts(other, bytes_used=3000, images=1)


def test_abort_and_expiry_release_reservations(qapi):
    u, c = new_user(qapi, max_images=2)
    d1, d2, d3 = blob("ab1"), blob("ab2"), blob("ab3")
    s1 = c.start(d1)
    s2 = c.start(d2)
    st, doc = c.call("POST", "/uploads", start_body(d3))
    assert st == 403 and doc["error"]["kind"] == "images", doc
    assert doc["error"]["limit"] == 2 and doc["error"]["used"] == 2
    st, _ = c.call("DELETE", "/uploads/%s" % s1["upload_session_id"])
    assert st in (200, 204)
    assert_counts(c, reserved_images=1, reserved_bytes=SIZE)
    s3 = c.start(d3)
    # s2 runs out: its reservation no longer counts, before the reconciler closes it
    sql("UPDATE upload_sessions SET expires_at = now() - interval '1 s'"
        " WHERE upload_session_id = '%s'" % s2["upload_session_id"])
    assert_counts(c, reserved_images=1, reserved_bytes=SIZE)
    finish(c, s3, d3)
    assert_counts(c, images=1, reserved_images=0, bytes_used=SIZE)
    c.upload(blob("ab4"))
    st, doc = c.call("POST", "/uploads", start_body(blob("ab5")))
    assert st == 403 and doc["error"]["code"] == "quota_exceeded", doc
    # the session sweep closing s2 leaves the counters exact
    sql("UPDATE upload_sessions SET status = 'expired' WHERE upload_session_id = '%s'"
        % s2["upload_session_id"])
    assert_counts(c, images=2, reserved_images=0, reserved_bytes=0)


def test_trash_counts_until_purged(qapi):
    u, c = new_user(qapi, max_bytes=2 * SIZE)
    _, a = c.upload(blob("t1"))
    c.upload(blob("t2"))
    c.call("DELETE", "/images/%s" % a["image_id"])
    st, doc = c.call("POST", "/uploads", start_body(blob("t3")))
    assert st == 403 and doc["error"]["usage"]["trash_bytes"] == SIZE, doc
    st, _ = admin(qapi).call("POST", "/internal/images/%s/cleanup" % a["image_id"])
    assert st == 200
    c.upload(blob("t3"))
    assert_counts(c, bytes_used=2 * SIZE, images=2, trash_bytes=0)


def test_failed_verification_counts_nothing(qapi):
    u, c = new_user(qapi)
    data = blob("fail")
    sess = c.start(data)
    c.put_chunks(sess, data, [0])
    # a declared sha256 that the bytes do not match: the session fails at complete
    sql("UPDATE upload_sessions SET declared_sha256 = repeat('0', 64)"
        " WHERE upload_session_id = '%s'" % sess["upload_session_id"])
    st, doc = c.complete_settled(sess["upload_session_id"])
    assert st == 422, (st, doc)
    assert_counts(c, bytes_used=0, images=0, reserved_bytes=0, reserved_images=0)


def test_verifying_image_counts_from_complete(qapi):
    u, c = new_user(qapi)
    big = 8 * 1024 * 1024  # PIXPLANE_VERIFY_ASYNC_THRESHOLD: verified in the background
    data = blob("verifying-%s-" % u, big)
    sess = c.start(data)
    c.put_chunks(sess, data, list(range(sess["chunk_count"])))
    st, doc = c.complete(sess["upload_session_id"])
    assert st in (200, 202), (st, doc)
    assert_counts(c, bytes_used=big, images=1, reserved_bytes=0, reserved_images=0)
    st, doc = c.complete_settled(sess["upload_session_id"])
    assert st == 200, (st, doc)
    assert_counts(c, bytes_used=big, images=1, reserved_bytes=0, reserved_images=0)


def test_default_quota_from_config(stack):
    p = start_api(PIXPLANE_QUOTA_IMAGES="1", PIXPLANE_QUOTA_BYTES="1MiB")
    try:
        u, c = new_user(p)
        assert_counts(c, max_images=1, max_bytes=1024 * 1024)
        c.upload(blob("d1"))
        st, doc = c.call("POST", "/uploads", start_body(blob("d2")))
        assert st == 403 and doc["error"]["kind"] == "images", doc
        # an override lifts it for one user; null goes back to the default
        st, doc = admin(p).call("PUT", "/internal/users/%s/quota" % u,
                                {"max_images": 0, "max_bytes": None})
        assert st == 200 and doc["max_images"] is None and doc["max_bytes"] == 1024 * 1024, doc
        assert doc["images"] == 1 and doc["bytes_used"] == SIZE
        c.upload(blob("d2"))
        st, doc = admin(p).call("PUT", "/internal/users/%s/quota" % u,
                                {"max_images": None, "max_bytes": None})
        assert st == 200 and doc["max_images"] == 1, doc
        st, doc = c.call("POST", "/uploads", start_body(blob("d3")))
        assert st == 403, doc
    finally:
        p.stop()


def test_admin_override_creates_the_user(qapi):
    u = user_id("fresh")
    st, doc = admin(qapi).call("PUT", "/internal/users/%s/quota" % u,
                               {"max_bytes": 5000, "max_images": 7})
    assert st == 200, doc
    assert doc == {"bytes_used": 0, "images": 0, "trash_bytes": 0, "trash_images": 0,
                   "reserved_bytes": 0, "reserved_images": 0, "max_bytes": 5000,
                   "max_images": 7}, doc
    assert sql_value("SELECT count(*) FROM users WHERE user_id = '%s'" % u) == "1"


def test_batch_items_admitted_while_they_fit(qapi):
    u, c = new_user(qapi, max_bytes=3 * SIZE)
    c.start(blob("b0"))
    items = [start_body(blob("b%d" % i)) for i in range(1, 5)]
    st, doc = c.call("POST", "/uploads/batch", {"items": items})
    assert st == 200, doc
    codes = [x["status_code"] for x in doc["items"]]
    assert codes == [201, 201, 403, 403], doc
    e = doc["items"][2]["error"]
    assert e["code"] == "quota_exceeded" and e["kind"] == "bytes" and e["limit"] == 3 * SIZE
    assert_counts(c, reserved_bytes=3 * SIZE, reserved_images=3)
    assert len(events(u)) == 1


# ---- the reconciler ----

def test_reconciler_repairs_injected_drift(qapi):
    if not os.path.exists(REC_BIN):
        pytest.skip("pixplane-reconciler not built")
    u, c = new_user(qapi)
    c.upload(blob("r1"))
    _, b = c.upload(blob("r2"))
    c.call("DELETE", "/images/%s" % b["image_id"])
    c.start(blob("r3"))
    want = usage(c)
    sql("UPDATE user_usage SET bytes_used = 99, images = 42, trash_bytes = 0,"
        " reserved_images = 7 WHERE user_id = '%s'" % u)
    assert usage(c)["images"] == 42

    def run(*args):
        p = subprocess.run([REC_BIN, "--once", "--report", "json", "--only", "usage", *args],
                           env=dict(os.environ), capture_output=True, text=True, timeout=120)
        assert_sanitizer_clean(p.stderr)
        lines = [json.loads(l) for l in p.stderr.splitlines() if l.startswith("{")]
        acts = [l for l in lines if l.get("event") == "reconcile_action" and l["target"] == u]
        return p, acts

    p, acts = run("--dry-run")
    assert [a["action"] for a in acts] == ["fix_usage"], p.stderr[-2000:]
    assert usage(c)["images"] == 42  # a dry run changes nothing
    p, acts = run()
    assert [a["action"] for a in acts] == ["fix_usage"], p.stderr[-2000:]
    assert acts[0]["to"] == "%d,2,%d,1,%d,1" % (2 * SIZE, SIZE, SIZE), acts
    report = json.loads(p.stdout)
    assert "usage" in json.dumps(report)
    assert usage(c) == want
    p, acts = run()
    assert acts == [] and p.returncode == 0, p.stderr[-2000:]


# ---- bad input ----

def test_bad_input(qapi):
    u, c = new_user(qapi)
    a = admin(qapi)
    path = "/internal/users/%s/quota" % u
    st, doc = c.call("PUT", path, {"max_bytes": 1})
    assert st == 403, doc  # not an admin
    for body in ({"max_bytes": -1}, {"max_bytes": "10"}, {"max_images": 1.5},
                 {"max_bytes": 1e300}, {"max_images": True}, {"max_bytes": [1]}):
        st, doc = a.call("PUT", path, body)
        assert st == 400 and doc["error"]["code"] == "bad_request", (body, st, doc)
    st, doc = a.call("PUT", path, raw=b"{not json", headers={"Content-Type": "application/json"})
    assert st == 400 and doc["error"]["code"] == "bad_request", doc
    st, doc = a.call("PUT", path, raw=b"[1]", headers={"Content-Type": "application/json"})
    assert st == 400, doc
    st, doc = a.call("PUT", "/internal/users/bad%20id!/quota", {"max_bytes": 1})
    assert st == 400 and doc["error"]["code"] == "bad_request", doc
    st, doc = a.call("PUT", "/internal/users/%s/quota" % ("x" * 129), {"max_bytes": 1})
    assert st == 400, doc
    assert_counts(c, max_bytes=None, max_images=None)  # nothing stored by the refusals
    st, doc = Client(qapi.url, "nope").call("GET", "/me/usage")
    assert st == 401, doc


# ---- the pre-upload hook ----

class Receiver:
    """A local hook receiver on 127.0.0.1: answers by mode, records every request."""

    def __init__(self):
        self.mode = "allow"
        self.calls = []
        outer = self

        class H(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                outer.calls.append(json.loads(self.rfile.read(n)))
                if outer.mode == "slow":
                    time.sleep(1.5)
                if outer.mode == "pause":
                    time.sleep(0.25)
                status, body = {"allow": (204, b""), "pause": (204, b""),
                                "refuse": (422, b'{"reason": "flagged by moderation"}'),
                                "fail": (500, b"boom"), "slow": (200, b"")}[outer.mode]
                try:
                    self.send_response(status)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the API gave up at its timeout (the slow mode)

            def log_message(self, *a):
                pass

        self.srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = "http://127.0.0.1:%d/hook" % self.srv.server_address[1]
        self.t = threading.Thread(target=self.srv.serve_forever, daemon=True)
        self.t.start()

    def close(self):
        self.srv.shutdown()
        self.srv.server_close()


@pytest.fixture(scope="module")
def receiver():
    r = Receiver()
    yield r
    r.close()


def test_hook_allows_and_refuses(stack, receiver):
    p = start_api(PIXPLANE_PRE_UPLOAD_HOOK_URL=receiver.url)
    try:
        u, c = new_user(p)
        receiver.mode, receiver.calls[:] = "allow", []
        data = blob("hook1")
        c.upload(data, declare=True)
        call = receiver.calls[0]
        assert call["user_id"] == u and call["file_name"] == "photo.jpg"
        assert call["size"] == SIZE and call["mime_type"] == "image/jpeg"
        assert len(call["content_hash"]) == 64
        receiver.mode = "refuse"
        st, doc = c.call("POST", "/uploads", start_body(blob("hook2")))
        assert st == 403 and doc["error"] == {"code": "upload_refused",
                                              "message": "flagged by moderation"}, doc
        st, doc = c.call("POST", "/uploads/batch", {"items": [start_body(blob("hook3"))]})
        assert st == 200 and doc["items"][0]["error"]["code"] == "upload_refused", doc
        assert_counts(c, images=1, reserved_images=0)
        receiver.mode = "fail"  # 5xx with the default fail=closed
        st, doc = c.call("POST", "/uploads", start_body(blob("hook4")))
        assert st == 503 and doc["error"]["code"] == "hook_unavailable", doc
    finally:
        p.stop()


@pytest.mark.parametrize("fail", ["open", "closed"])
def test_hook_timeout(stack, receiver, fail):
    p = start_api(PIXPLANE_PRE_UPLOAD_HOOK_URL=receiver.url, PIXPLANE_PRE_UPLOAD_HOOK_FAIL=fail,
                  PIXPLANE_PRE_UPLOAD_HOOK_TIMEOUT="300ms")
    try:
        u, c = new_user(p)
        receiver.mode = "slow"
        t0 = time.monotonic()
        st, doc = c.call("POST", "/uploads", start_body(blob("slow")))
        assert time.monotonic() - t0 < 1.4  # the timeout, not the receiver, ended the call
        if fail == "open":
            assert st == 201, doc
        else:
            assert st == 503 and doc["error"]["code"] == "hook_unavailable", doc
    finally:
        receiver.mode = "allow"
        p.stop()


def test_hook_time_is_one_budget_per_batch(stack, receiver):
    """Each call answers within the timeout, but a batch's calls share one: a batch of 12
    cannot hold a request worker 12 timeouts long. Items past the budget fail closed."""
    p = start_api(PIXPLANE_PRE_UPLOAD_HOOK_URL=receiver.url,
                  PIXPLANE_PRE_UPLOAD_HOOK_TIMEOUT="600ms")
    try:
        u, c = new_user(p)
        receiver.mode, receiver.calls[:] = "pause", []  # 0.25 s per call
        t0 = time.monotonic()
        st, doc = c.call("POST", "/uploads/batch",
                         {"items": [start_body(blob("budget%d" % i)) for i in range(12)]})
        took = time.monotonic() - t0
        assert st == 200, doc
        codes = [x.get("error", {}).get("code") for x in doc["items"]]
        assert took < 2.0, took  # 12 x 0.25 s = 3 s if every item were called
        assert 1 <= len(receiver.calls) <= 3, len(receiver.calls)
        assert codes[0] is None and codes.count(None) <= len(receiver.calls), codes
        assert codes.count("hook_unavailable") >= 9, codes
    finally:
        receiver.mode = "allow"
        p.stop()


def test_hook_unreachable_and_bad_config(stack):
    # a port nobody listens on: a connection error, failed closed
    from conftest import free_port
    p = start_api(PIXPLANE_PRE_UPLOAD_HOOK_URL="http://127.0.0.1:%d/" % free_port())
    try:
        u, c = new_user(p)
        st, doc = c.call("POST", "/uploads", start_body(blob("unreach")))
        assert st == 503 and doc["error"]["code"] == "hook_unavailable", doc
    finally:
        p.stop()
    api_bin = os.path.join(BUILD, "pixplane-api")
    for k, v in (("PIXPLANE_PRE_UPLOAD_HOOK_FAIL", "maybe"),
                 ("PIXPLANE_PRE_UPLOAD_HOOK_URL", "ftp://127.0.0.1/")):
        r = subprocess.run([api_bin], env={**os.environ, k: v, "PIXPLANE_LISTEN": "127.0.0.1:1"},
                           capture_output=True, text=True, timeout=30)
        assert r.returncode != 0 and "pre-upload-hook" in r.stderr + r.stdout, r


def test_pixctl_usage(qapi):
    u, c = new_user(qapi, max_images=5)
    c.upload(blob("px1"))
    env = {**os.environ, "PIXPLANE_API_URL": qapi.url, "PIXPLANE_TOKEN": qapi.token(u),
           "PIXPLANE_CONFIG": "/dev/null"}
    pixctl = os.path.join(BUILD, "pixctl")
    out = subprocess.run([pixctl, "usage"], env=env, capture_output=True, text=True,
                         timeout=30)
    assert out.returncode == 0, out
    lines = dict(l.split(None, 1) for l in out.stdout.splitlines())
    assert lines["bytes_used"] == str(SIZE) and lines["images"] == "1", out.stdout
    assert lines["max_images"] == "5" and lines["max_bytes"] == "unlimited", out.stdout
    out = subprocess.run([pixctl, "usage", "--json"], env=env, capture_output=True, text=True,
                         timeout=30)
    assert out.returncode == 0 and json.loads(out.stdout) == usage(c), out
