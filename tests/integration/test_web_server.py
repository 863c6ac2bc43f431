"""The API's side of browser uploads (issue 16): CORS, the pages at /app/, and single-use
stream tickets for EventSource. The browser itself is driven in test_web_upload.py and
test_web_gallery.py."""
import hashlib
import os
import threading
import time

import requests

from conftest import API_BIN, ApiProcess, Client, sql, user_id

ORIGIN = "https://photos.example.com"


def preflight(api, path, origin, method="POST", headers="authorization,content-type"):
    return requests.options(api.url + path, timeout=10, headers={
        "Origin": origin, "Access-Control-Request-Method": method,
        "Access-Control-Request-Headers": headers})


def test_cors_preflights_and_answers(stack, tmp_path):
    api = ApiProcess({"PIXPLANE_CORS_ORIGINS": ORIGIN + ", http://127.0.0.1:1234"})
    try:
        r = preflight(api, "/uploads", ORIGIN)
        assert r.status_code == 204, r.text
        assert r.headers["Access-Control-Allow-Origin"] == ORIGIN
        assert r.headers["Access-Control-Allow-Methods"] == "POST"
        allowed = {h.strip().lower() for h in r.headers["Access-Control-Allow-Headers"].split(",")}
        assert {"authorization", "content-type", "idempotency-key"} <= allowed
        assert int(r.headers["Access-Control-Max-Age"]) > 0
        assert "Origin" in r.headers["Vary"]
        # exactly the methods the route takes
        r = preflight(api, "/images/00000000-0000-0000-0000-000000000001", ORIGIN, "PATCH")
        assert r.status_code == 204
        assert r.headers["Access-Control-Allow-Methods"] == "GET, PATCH, DELETE"
        # a method the route does not take: no grant (the browser refuses)
        r = preflight(api, "/uploads", ORIGIN, "DELETE")
        assert r.status_code == 204 and "Access-Control-Allow-Methods" not in r.headers
        # another origin: no CORS headers at all
        for o in ("https://evil.example.com", "https://photos.example.com.evil.io", "null"):
            r = preflight(api, "/uploads", o)
            assert r.status_code == 204
            assert not [h for h in r.headers if h.lower().startswith("access-control-")], o
        # an unknown path is still 404
        assert preflight(api, "/nope", ORIGIN).status_code == 404

        tok = api.token(user_id("cors"))
        h = {"Authorization": "Bearer " + tok, "Origin": ORIGIN}
        r = requests.post(api.url + "/uploads", json={"file_name": "a.jpg", "file_size": 10,
                                                      "mime_type": "image/jpeg"},
                          headers=h, timeout=10)
        assert r.status_code == 201
        assert r.headers["Access-Control-Allow-Origin"] == ORIGIN
        exposed = {x.strip() for x in r.headers["Access-Control-Expose-Headers"].split(",")}
        assert {"Retry-After", "X-Request-Id", "Location"} <= exposed
        # errors carry them too (a page must read the JSON error)
        r = requests.get(api.url + "/images", headers={"Origin": ORIGIN}, timeout=10)
        assert r.status_code == 401 and r.headers["Access-Control-Allow-Origin"] == ORIGIN
        r = requests.get(api.url + "/images", timeout=10,
                         headers={"Authorization": "Bearer " + tok, "Origin": "https://x.org"})
        assert r.status_code == 200 and "Access-Control-Allow-Origin" not in r.headers
    finally:
        api.stop()


def test_no_cors_by_default(stack):
    api = ApiProcess()
    try:
        r = preflight(api, "/uploads", ORIGIN)
        assert r.status_code == 204 and r.headers["Allow"] == "POST, OPTIONS"
        assert not [h for h in r.headers if h.lower().startswith("access-control-")]
        r = requests.get(api.url + "/healthz", headers={"Origin": ORIGIN}, timeout=10)
        assert "Access-Control-Allow-Origin" not in r.headers and "Vary" not in r.headers
    finally:
        api.stop()


def test_bad_cors_origin_stops_startup(stack, tmp_path):
    import subprocess
    env = dict(os.environ, PIXPLANE_CORS_ORIGINS="https://ok.example.com,https://x.org/path",
               PIXPLANE_LISTEN="127.0.0.1:1")
    p = subprocess.run([API_BIN], env=env, capture_output=True, text=True, timeout=30)
    assert p.returncode != 0 and "cors-origins" in p.stderr + p.stdout


def test_pages_served_from_memory(stack, tmp_path):
    d = tmp_path / "dist"
    d.mkdir()
    (d / "index.html").write_text("<!doctype html><title>up</title>")
    (d / "gallery.html").write_text("<!doctype html><title>gal</title>")
    (d / "index.js").write_text("console.log('x')")
    (d / ".hidden").write_text("secret")
    (tmp_path / "outside.txt").write_text("outside")
    api = ApiProcess({"PIXPLANE_WEB_DIR": str(d)})
    try:
        r = requests.get(api.url + "/app", allow_redirects=False, timeout=10)
        assert r.status_code == 301 and r.headers["Location"] == "/app/"
        r = requests.get(api.url + "/app/", timeout=10)
        assert r.status_code == 200 and "<title>up</title>" in r.text
        assert r.headers["Content-Type"].startswith("text/html")
        csp = r.headers["Content-Security-Policy"]
        assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert r.headers["X-Content-Type-Options"] == "nosniff"
        etag = r.headers["ETag"]
        r = requests.get(api.url + "/app/", headers={"If-None-Match": etag}, timeout=10)
        assert r.status_code == 304 and r.content == b""
        r = requests.get(api.url + "/app/index.js", timeout=10)
        assert r.headers["Content-Type"].startswith("text/javascript") and r.text == "console.log('x')"
        r = requests.head(api.url + "/app/gallery.html", timeout=10)
        assert r.status_code == 200 and r.content == b""
        for bad in ("/app/.hidden", "/app/../outside.txt", "/app/%2e%2e/outside.txt",
                    "/app/x/../../outside.txt", "/app/nope.html", "/app/sub/index.html"):
            r = requests.get(api.url + bad, timeout=10)
            assert r.status_code == 404 and "outside" not in r.text and "secret" not in r.text, bad
        assert requests.post(api.url + "/app/", timeout=10).status_code == 405
        # the API is unaffected
        assert requests.get(api.url + "/healthz", timeout=10).status_code == 200
    finally:
        api.stop()
    api = ApiProcess({"PIXPLANE_WEB_DIR": str(tmp_path / "absent")})
    try:
        assert requests.get(api.url + "/app/", timeout=10).status_code == 404
    finally:
        api.stop()


def stream_status(api, query, headers=None):
    r = requests.get(api.url + "/sync/stream" + query, headers=headers or {}, timeout=10,
                     stream=True)
    first = b""
    if r.status_code == 200:
        for chunk in r.iter_content(chunk_size=1):
            first += chunk
            if b"\n\n" in first:
                break
    else:
        first = r.content
    r.close()
    return r.status_code, first


def test_stream_ticket_once_expiry_and_owner(stack):
    api = ApiProcess({"PIXPLANE_STREAM_TICKET_TTL": "2"})
    try:
        alice, bob = user_id("tka"), user_id("tkb")
        ta, tb = api.token(alice), api.token(bob)
        ca = Client(api.url, ta)
        st, doc = ca.call("POST", "/sync/stream-ticket")
        assert st == 201 and doc["expires_in"] == 2 and len(doc["ticket"]) >= 43
        ticket = doc["ticket"]
        st, first = stream_status(api, "?ticket=" + ticket)
        assert st == 200 and b"event: sync" in first
        # single use
        st, body = stream_status(api, "?ticket=" + ticket)
        assert st == 401 and b"invalid_ticket" in body
        # expires
        ticket = ca.call("POST", "/sync/stream-ticket")[1]["ticket"]
        time.sleep(2.5)
        assert stream_status(api, "?ticket=" + ticket)[0] == 401
        # bound to its user: another user's token with it is refused, and spends it
        ticket = ca.call("POST", "/sync/stream-ticket")[1]["ticket"]
        st, body = stream_status(api, "?ticket=" + ticket, {"Authorization": "Bearer " + tb})
        assert st == 401 and b"invalid_ticket" in body
        assert stream_status(api, "?ticket=" + ticket)[0] == 401
        # forged / garbage tickets
        for t in ("x", "A" * 43, "A" * 500):
            assert stream_status(api, "?ticket=" + t)[0] == 401
        # no ticket: a long-lived ?token= is refused unless sse-query-token is on
        assert stream_status(api, "?token=" + ta)[0] == 401
        assert requests.post(api.url + "/sync/stream-ticket", timeout=10).status_code == 401
        # only its hash is stored
        ticket = ca.call("POST", "/sync/stream-ticket")[1]["ticket"]
        rows = sql("SELECT encode(ticket_hash, 'hex'), user_id FROM stream_tickets"
                   " WHERE user_id = '%s'" % alice)
        assert [hashlib.sha256(ticket.encode()).hexdigest(), alice] in rows
        assert not [r for r in rows if ticket in "".join(r)]
    finally:
        api.stop()
    api = ApiProcess({"PIXPLANE_SSE_QUERY_TOKEN": "true"})
    try:
        assert stream_status(api, "?token=" + api.token(user_id("qt")))[0] == 200
    finally:
        api.stop()


def test_ticket_stream_sees_the_users_changes_from_a_cursor(stack):
    """A ticket stream is the user's stream: changes arrive, and ?since= resumes like
    Last-Event-ID (EventSource cannot send it on a fresh connection)."""
    api = ApiProcess()
    try:
        u = user_id("tks")
        c = Client(api.url, api.token(u))
        _, d1 = c.upload(os.urandom(1000))
        st, delta = c.call("GET", "/sync?since=0")
        cursor = delta["cursor"]
        _, d2 = c.upload(os.urandom(1000))
        ticket = c.call("POST", "/sync/stream-ticket")[1]["ticket"]
        st, first = stream_status(api, "?ticket=%s&since=%s" % (ticket, cursor))
        assert st == 200
        assert d2["image_id"].encode() in first and d1["image_id"].encode() not in first
        ticket = c.call("POST", "/sync/stream-ticket")[1]["ticket"]
        assert stream_status(api, "?ticket=%s&since=bogus" % ticket)[0] == 400
        # the same ticket, many times at once: exactly one stream
        ticket = c.call("POST", "/sync/stream-ticket")[1]["ticket"]
        got = []
        ts = [threading.Thread(target=lambda: got.append(stream_status(api, "?ticket=" + ticket)[0]))
              for _ in range(8)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(30)
        assert sorted(got) == [200] + [401] * 7
    finally:
        api.stop()


def test_unused_tickets_are_capped_per_user(stack):
    """Tickets are rows: one user cannot pile them up (4 live ones per stream they may open),
    and that cap is theirs alone."""
    api = ApiProcess({"PIXPLANE_SSE_STREAMS_PER_USER": "1"})
    try:
        a = Client(api.url, api.token(user_id("tkc")))
        got = [a.call("POST", "/sync/stream-ticket")[0] for _ in range(6)]
        assert got == [201] * 4 + [429] * 2
        st, doc = a.call("POST", "/sync/stream-ticket")
        assert st == 429 and doc["error"]["code"] == "too_many_tickets"
        b = Client(api.url, api.token(user_id("tkd")))
        assert b.call("POST", "/sync/stream-ticket")[0] == 201
    finally:
        api.stop()
