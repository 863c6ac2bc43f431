# The webhook admin API (issue 19) against the real stack: the CRUD round trip with failure
# figures and re-enabling, admin only, the SSRF guard at registration and update (refused
# before any connection: a receiver on 127.0.0.1 sees nothing; admitted by the allow-list),
# the rows a ping and a replay write (checked in SQL), the delivery listing, bad input.
import base64
import datetime
import json
import os
import random
import re
import socket
import subprocess
import threading
import uuid

import pytest

from conftest import API_BIN, Client, free_port, sql, sql_value, start_api

PUBLIC_URL = "https://93.184.215.14/hooks"  # a public literal: no DNS, never contacted
TS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")
TYPES = ["image.created", "image.verified", "image.failed", "variant.ready", "image.deleted",
         "image.restored", "image.purged", "share.created", "link.created", "quota.exceeded"]


class Receiver:
    """A TCP listener on 127.0.0.1 that counts every connection made to it."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self.stop = threading.Event()
        self.t = threading.Thread(target=self.run, daemon=True)
        self.t.start()

    def run(self):
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            self.connections += 1
            conn.close()

    def close(self):
        self.stop.set()
        self.t.join(5)
        self.sock.close()


@pytest.fixture(scope="module")
def receiver():
    r = Receiver()
    yield r
    r.close()


CREATED = []  # endpoint ids this module registered: deleted when it ends, with their pings
EVENTS = []  # webhook_events rows it wrote


@pytest.fixture(scope="module", autouse=True)
def cleanup(stack):
    yield
    for i in range(0, len(CREATED), 500):
        ids = "','".join(CREATED[i:i + 500])
        sql("DELETE FROM webhook_events WHERE type = 'webhook.ping' AND msg_key IN ('%s')" % ids)
        sql("DELETE FROM webhook_endpoints WHERE endpoint_id IN ('%s')" % ids)
    for i in range(0, len(EVENTS), 500):
        sql("DELETE FROM webhook_events WHERE event_id IN ('%s')" % "','".join(EVENTS[i:i + 500]))


def admin_of(p):
    return Client(p.url, p.token("hook-admin", admin=True))


@pytest.fixture(scope="module")
def guarded(stack):
    """The production default: an empty allow-list."""
    p = start_api(PIXPLANE_WEBHOOK_ALLOW_ADDRS="", PIXPLANE_WEBHOOK_ENDPOINTS="10000")
    yield p
    p.stop()


@pytest.fixture(scope="module")
def admin(guarded):
    return admin_of(guarded)


@pytest.fixture(scope="module")
def local(stack):
    """A test setup: loopback admitted, small replay cap."""
    p = start_api(PIXPLANE_WEBHOOK_ALLOW_ADDRS="127.0.0.0/8", PIXPLANE_WEBHOOK_REPLAY_MAX="3",
                  PIXPLANE_WEBHOOK_ENDPOINTS="10000")
    yield p
    p.stop()


def create(cl, url=PUBLIC_URL, events=("image.created",), **kw):
    body = dict({"url": url, "events": list(events)}, **kw)
    st, doc = cl.call("POST", "/internal/webhooks", body)
    assert st == 201, (st, doc)
    CREATED.append(doc["endpoint_id"])
    return doc


def secret_bytes(secret):
    assert secret.startswith("whsec_"), secret
    return base64.b64decode(secret[6:], validate=True)


# ---- the round trip ----

def test_create_get_list_patch_delete(admin):
    ep = create(admin, events=["image.created", "variant.ready"], description="my backend")
    eid = ep["endpoint_id"]
    assert len(secret_bytes(ep["secret"])) == 32
    assert ep["url"] == PUBLIC_URL and ep["events"] == ["image.created", "variant.ready"]
    assert ep["enabled"] is True and ep["description"] == "my backend"
    assert ep["failures"] == 0 and ep["pending_deliveries"] == 0
    for k in ("last_error", "last_failure_at", "last_success_at", "disabled_at",
              "disabled_reason"):
        assert ep[k] is None, k
    st, got = admin.call("GET", "/internal/webhooks/" + eid)
    assert st == 200 and "secret" not in got
    assert got == {k: v for k, v in ep.items() if k != "secret"}
    assert sql_value("SELECT secret FROM webhook_endpoints WHERE endpoint_id = '%s'"
                     % eid) == ep["secret"]

    st, got = admin.call("PATCH", "/internal/webhooks/" + eid,
                         {"url": PUBLIC_URL + "/v2", "events": ["*"], "description": ""})
    assert st == 200 and "secret" not in got, got
    assert (got["url"], got["events"], got["description"]) == (PUBLIC_URL + "/v2", ["*"], "")
    st, got = admin.call("PATCH", "/internal/webhooks/" + eid, {"rotate_secret": True})
    assert st == 200 and got["secret"] != ep["secret"] and len(secret_bytes(got["secret"])) == 32
    mine = "whsec_" + base64.b64encode(os.urandom(24)).decode()
    st, got = admin.call("PATCH", "/internal/webhooks/" + eid, {"secret": mine})
    assert st == 200 and got["secret"] == mine

    st, got = admin.call("DELETE", "/internal/webhooks/" + eid)
    assert st == 204
    assert admin.call("GET", "/internal/webhooks/" + eid)[0] == 404
    assert admin.call("DELETE", "/internal/webhooks/" + eid)[0] == 404
    assert admin.call("PATCH", "/internal/webhooks/" + eid, {"enabled": True})[0] == 404


def test_given_secret_kept(admin):
    s = "whsec_" + base64.b64encode(os.urandom(64)).decode()
    ep = create(admin, secret=s)
    assert ep["secret"] == s


def test_disable_and_reenable_resets_failures(admin):
    eid = create(admin)["endpoint_id"]
    st, got = admin.call("PATCH", "/internal/webhooks/" + eid, {"enabled": False})
    assert st == 200 and got["enabled"] is False and got["disabled_at"], got
    assert got["disabled_reason"] == "disabled by an admin"
    # as pixplane-hooks leaves an endpoint that kept failing
    sql("UPDATE webhook_endpoints SET failures = 12, last_error = 'HTTP 500',"
        " last_failure_at = now(), disabled_reason = 'failing for 24 h'"
        " WHERE endpoint_id = '%s'" % eid)
    st, got = admin.call("GET", "/internal/webhooks/" + eid)
    assert (got["failures"], got["last_error"], got["disabled_reason"]) == \
        (12, "HTTP 500", "failing for 24 h")
    assert got["last_failure_at"] and got["enabled"] is False
    st, got = admin.call("PATCH", "/internal/webhooks/" + eid, {"enabled": True})
    assert st == 200 and got["enabled"] is True and got["failures"] == 0, got
    assert got["disabled_at"] is None and got["disabled_reason"] is None
    assert got["last_error"] == "HTTP 500"  # history stays visible


def test_list_pages(admin):
    ids = {create(admin)["endpoint_id"] for _ in range(3)}
    seen, cursor, pages = [], None, 0
    while pages < 100:
        path = "/internal/webhooks?limit=2" + ("&cursor=" + cursor if cursor else "")
        st, doc = admin.call("GET", path)
        assert st == 200 and len(doc["endpoints"]) <= 2, doc
        assert all("secret" not in e for e in doc["endpoints"])
        seen += [e["endpoint_id"] for e in doc["endpoints"]]
        pages += 1
        cursor = doc["next_cursor"]
        if not cursor:
            break
    assert ids <= set(seen) and len(seen) == len(set(seen))
    assert admin.call("GET", "/internal/webhooks?cursor=bm9wZQ")[0] == 400
    assert admin.call("GET", "/internal/webhooks?limit=0")[0] == 400


# ---- who may ----

ROUTES = [("POST", "/internal/webhooks"), ("GET", "/internal/webhooks"),
          ("GET", "/internal/webhooks/{}"), ("PATCH", "/internal/webhooks/{}"),
          ("DELETE", "/internal/webhooks/{}"), ("POST", "/internal/webhooks/{}/ping"),
          ("POST", "/internal/webhooks/{}/replay"), ("GET", "/internal/webhooks/{}/deliveries")]


@pytest.mark.parametrize("method,path", ROUTES)
def test_admin_only(guarded, admin, method, path):
    eid = create(admin)["endpoint_id"]
    body = {"url": PUBLIC_URL, "events": ["*"]} if method != "GET" else None
    user = Client(guarded.url, guarded.token("not-an-admin"))
    st, doc = user.call(method, path.format(eid), body)
    assert st == 403 and doc["error"]["code"] == "forbidden", (st, doc)
    st, doc = Client(guarded.url, "").call(method, path.format(eid), body)
    assert st == 401, (st, doc)
    assert sql_value("SELECT count(*) FROM webhook_endpoints WHERE endpoint_id = '%s'"
                     " AND url = '%s' AND events = '{image.created}'" % (eid, PUBLIC_URL)) == "1"
    assert sql_value("SELECT count(*) FROM webhook_deliveries WHERE endpoint_id = '%s'"
                     % eid) == "0"


# ---- the SSRF guard ----

def loopback_name():
    """This machine's name if it resolves to loopback only (an /etc/hosts entry)."""
    name = socket.gethostname()
    try:
        addrs = {a[4][0] for a in socket.getaddrinfo(name, 80)}
    except socket.gaierror:
        return None
    return name if addrs and all(a.startswith("127.") or a == "::1" for a in addrs) else None


def refused_urls(port):
    urls = ["http://10.0.0.1/", "http://169.254.169.254/latest/", "http://[::1]:%d/" % port,
            "http://localhost:%d/" % port, "http://127.0.0.1:%d/" % port,
            "http://0x7f.1:%d/" % port, "http://2130706433:%d/" % port,
            "http://127.1:%d/" % port, "http://0177.0.0.1:%d/" % port,
            "http://[::ffff:127.0.0.1]:%d/" % port, "http://[::ffff:a9fe:a9fe]/",
            "http://192.168.1.1/", "http://172.16.0.1/", "http://100.64.0.1/",
            "http://[fd00::1]/", "http://[fe80::1]/", "http://0.0.0.0:%d/" % port]
    name = loopback_name()
    if name:
        urls.append("http://%s:%d/" % (name, port))
    return urls


def test_refused_before_any_connection(admin, receiver):
    urls = refused_urls(receiver.port)
    assert loopback_name(), "the test expects this machine's name to resolve to 127.0.0.1"
    eid = create(admin)["endpoint_id"]
    before = int(sql_value("SELECT count(*) FROM webhook_endpoints"))
    for url in urls:
        st, doc = admin.call("POST", "/internal/webhooks", {"url": url, "events": ["*"]})
        assert st == 400 and doc["error"]["code"] == "url_forbidden", (url, st, doc)
        st, doc = admin.call("PATCH", "/internal/webhooks/" + eid, {"url": url})
        assert st == 400 and doc["error"]["code"] == "url_forbidden", (url, st, doc)
    assert int(sql_value("SELECT count(*) FROM webhook_endpoints")) == before
    assert sql_value("SELECT url FROM webhook_endpoints WHERE endpoint_id = '%s'"
                     % eid) == PUBLIC_URL
    assert receiver.connections == 0


def test_allow_list_admits_loopback(local, receiver):
    cl = admin_of(local)
    url = "http://127.0.0.1:%d/hook" % receiver.port
    ep = create(cl, url=url)
    assert ep["url"] == url
    name = loopback_name()
    if name:
        assert cl.call("PATCH", "/internal/webhooks/" + ep["endpoint_id"],
                       {"url": "http://%s:%d/" % (name, receiver.port)})[0] == 200
    # still refused: not in the list
    st, doc = cl.call("POST", "/internal/webhooks", {"url": "http://10.0.0.1/", "events": ["*"]})
    assert st == 400 and doc["error"]["code"] == "url_forbidden"
    st, _ = cl.call("POST", "/internal/webhooks/%s/ping" % ep["endpoint_id"])
    assert st == 202
    assert receiver.connections == 0  # the API never connects: pixplane-hooks delivers


@pytest.mark.parametrize("url", ["ftp://example.com/", "not a url", "/relative/path",
                                 "http://user:pw@93.184.215.14/", "http:///nohost",
                                 "http://no-such-host.invalid/", "",
                                 "https://93.184.215.14/" + "a" * 2030])
def test_malformed_urls(admin, url):
    st, doc = admin.call("POST", "/internal/webhooks", {"url": url, "events": ["*"]})
    assert st == 400 and doc["error"]["code"] == "url_invalid", (url, st, doc)


def test_bad_allow_list_refused_at_start(stack):
    env = dict(os.environ, PIXPLANE_LISTEN="127.0.0.1:%d" % free_port(),
               PIXPLANE_WEBHOOK_ALLOW_ADDRS="127.0.0.0/33")
    out = subprocess.run([API_BIN], env=env, capture_output=True, text=True, timeout=30)
    assert out.returncode != 0 and "PIXPLANE_WEBHOOK_ALLOW_ADDRS" in out.stdout + out.stderr


# ---- ping ----

def test_ping_writes_an_event_and_a_delivery(admin):
    eid = create(admin)["endpoint_id"]
    st, doc = admin.call("POST", "/internal/webhooks/%s/ping" % eid)
    assert st == 202 and set(doc) == {"event_id", "delivery_id"}, doc
    (typ, key, payload, occurred), = sql(
        "SELECT type, msg_key, payload::text, to_char(occurred_at AT TIME ZONE 'UTC',"
        " 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') FROM webhook_events WHERE event_id = '%s'"
        % doc["event_id"])
    assert (typ, key) == ("webhook.ping", eid)
    p = json.loads(payload)
    assert p == {"version": 1, "id": doc["event_id"], "type": "webhook.ping",
                 "occurred_at": occurred, "data": {"endpoint_id": eid}}, p
    assert TS.match(p["occurred_at"])
    # the stack's pixplane-hooks may have tried it already (nothing listens there): the
    # attempt count is its business
    rows = sql("SELECT delivery_id, event_id, msg_key, replay, status"
               " FROM webhook_deliveries WHERE endpoint_id = '%s'" % eid)
    assert rows == [[str(doc["delivery_id"]), doc["event_id"], eid, "f", "pending"]]
    assert admin.call("GET", "/internal/webhooks/" + eid)[1]["pending_deliveries"] == 1
    st, d = admin.call("GET", "/internal/webhooks/%s/deliveries" % eid)
    assert st == 200 and d["next_cursor"] is None
    (one,) = d["deliveries"]
    assert one["delivery_id"] == doc["delivery_id"] and one["event_type"] == "webhook.ping"
    assert (one["status"], one["replay"]) == ("pending", False)


def test_ping_refused_when_disabled_or_unknown(admin):
    eid = create(admin)["endpoint_id"]
    assert admin.call("PATCH", "/internal/webhooks/" + eid, {"enabled": False})[0] == 200
    st, doc = admin.call("POST", "/internal/webhooks/%s/ping" % eid)
    assert st == 409 and doc["error"]["code"] == "endpoint_disabled"
    assert sql_value("SELECT count(*) FROM webhook_deliveries WHERE endpoint_id = '%s'"
                     % eid) == "0"
    st, doc = admin.call("POST", "/internal/webhooks/%s/ping" % uuid.uuid4())
    assert st == 404 and doc["error"]["code"] == "not_found"


# ---- replay ----

def iso(t):
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def window():
    """A start time no other run of this test uses (a random second of 2001-2008)."""
    return datetime.datetime(2001, 1, 1) + datetime.timedelta(
        seconds=random.randrange(250_000_000))


def add_event(typ, at, key=None):
    eid = str(uuid.uuid4())
    key = key or str(uuid.uuid4())
    payload = {"version": 1, "id": eid, "type": typ, "occurred_at": iso(at),
               "data": {"image_id": key}}
    sql("INSERT INTO webhook_events (event_id, type, msg_key, payload, occurred_at)"
        " VALUES ('%s', '%s', '%s', '%s', '%s+00')" % (eid, typ, key, json.dumps(payload),
                                                        at.isoformat()))
    EVENTS.append(eid)
    return eid


def test_replay_queues_the_subscribed_events_in_order(admin):
    t0 = window()
    ep = create(admin, events=["image.created", "image.deleted"])["endpoint_id"]
    sec = datetime.timedelta(seconds=1)
    want = [add_event("image.created", t0),                      # at from: included
            add_event("image.deleted", t0 + 5 * sec, key="k1"),
            add_event("image.created", t0 + 5 * sec, key="k1"),  # same time: by event_id
            add_event("image.created", t0 + 59 * sec)]
    add_event("variant.ready", t0 + 10 * sec)                    # not subscribed
    add_event("image.created", t0 - sec)                         # before
    add_event("image.created", t0 + 60 * sec)                    # at to: excluded
    EVENTS.append(str(uuid.uuid4()))
    sql("INSERT INTO webhook_events (event_id, type, msg_key, payload, occurred_at)"
        " VALUES ('%s', 'webhook.ping', 'x', '{}', '%s+00')" % (EVENTS[-1], t0 + sec))
    want = [want[0]] + sorted(want[1:3]) + [want[3]]
    st, doc = admin.call("POST", "/internal/webhooks/%s/replay" % ep,
                         {"from": iso(t0), "to": iso(t0 + 60 * sec)})
    assert st == 202 and doc == {"replayed": 4}, (st, doc)
    rows = sql("SELECT d.event_id, d.msg_key = e.msg_key, d.replay, d.status FROM"
               " webhook_deliveries d JOIN webhook_events e USING (event_id)"
               " WHERE d.endpoint_id = '%s' ORDER BY d.delivery_id" % ep)
    assert [r[0] for r in rows] == want
    assert all(r[1:] == ["t", "t", "pending"] for r in rows), rows
    # again: replays may repeat (each is its own delivery, same webhook-id = event_id)
    st, doc = admin.call("POST", "/internal/webhooks/%s/replay" % ep,
                         {"from": iso(t0), "to": iso(t0 + 60 * sec)})
    assert st == 202 and doc == {"replayed": 4}
    # every type with *, pings aside
    star = create(admin, events=["*"])["endpoint_id"]
    st, doc = admin.call("POST", "/internal/webhooks/%s/replay" % star,
                         {"from": iso(t0 - sec), "to": iso(t0 + 61 * sec)})
    assert st == 202 and doc == {"replayed": 7}, doc


def test_replay_bounds(admin, local):
    eid = create(admin)["endpoint_id"]
    path = "/internal/webhooks/%s/replay" % eid
    t0 = window()
    for body in ({"from": iso(t0), "to": iso(t0)},
                 {"from": iso(t0), "to": iso(t0 - datetime.timedelta(seconds=1))},
                 {"from": iso(t0), "to": iso(t0 + datetime.timedelta(days=7, seconds=1))}):
        st, doc = admin.call("POST", path, body)
        assert st == 400 and doc["error"]["code"] == "bad_request", (body, st, doc)
    assert admin.call("POST", path, {"from": iso(t0), "to": iso(t0 + datetime.timedelta(
        days=7))}) == (202, {"replayed": 0})
    # PIXPLANE_WEBHOOK_REPLAY_MAX=3 on `local`: 4 events are refused whole
    cl = admin_of(local)
    ep = create(cl, url="http://127.0.0.1:9/", events=["*"])["endpoint_id"]
    for i in range(4):
        add_event("image.created", t0 + datetime.timedelta(seconds=i))
    body = {"from": iso(t0), "to": iso(t0 + datetime.timedelta(minutes=1))}
    st, doc = cl.call("POST", "/internal/webhooks/%s/replay" % ep, body)
    assert st == 413 and doc["error"]["code"] == "too_many_events", (st, doc)
    assert sql_value("SELECT count(*) FROM webhook_deliveries WHERE endpoint_id = '%s'"
                     % ep) == "0"
    body["to"] = iso(t0 + datetime.timedelta(seconds=3))
    assert cl.call("POST", "/internal/webhooks/%s/replay" % ep, body) == (202, {"replayed": 3})
    st, doc = cl.call("POST", "/internal/webhooks/%s/replay" % uuid.uuid4(), body)
    assert st == 404


# ---- deliveries ----

def test_deliveries_listing(admin):
    eid = create(admin)["endpoint_id"]
    ids = [admin.call("POST", "/internal/webhooks/%s/ping" % eid)[1]["delivery_id"]
           for _ in range(5)]
    sql("UPDATE webhook_deliveries SET status = 'failed', attempts = 9, last_status = 503,"
        " last_error = 'HTTP 503' WHERE delivery_id = %d" % ids[1])
    seen, cursor, pages = [], None, 0
    while pages < 10:
        st, doc = admin.call("GET", "/internal/webhooks/%s/deliveries?limit=2%s"
                             % (eid, "&cursor=" + cursor if cursor else ""))
        assert st == 200, doc
        seen += [d["delivery_id"] for d in doc["deliveries"]]
        pages += 1
        cursor = doc["next_cursor"]
        if not cursor:
            break
    assert seen == ids[::-1] and pages == 3
    st, doc = admin.call("GET", "/internal/webhooks/%s/deliveries?status=failed" % eid)
    (f,) = doc["deliveries"]
    assert (f["delivery_id"], f["status"], f["attempts"], f["last_status"], f["last_error"],
            f["next_attempt_at"]) == (ids[1], "failed", 9, 503, "HTTP 503", None)
    assert admin.call("GET", "/internal/webhooks/%s/deliveries?status=lost" % eid)[0] == 400
    assert admin.call("GET", "/internal/webhooks/%s/deliveries?cursor=Zm9v" % eid)[0] == 400
    st, doc = admin.call("GET", "/internal/webhooks/%s/deliveries" % uuid.uuid4())
    assert st == 404 and doc["error"]["code"] == "not_found"


# ---- bad input ----

def b64(n):
    return base64.b64encode(b"k" * n).decode()


BAD_CREATE = [
    ({"events": ["*"]}, "bad_request"),
    ({"url": 5, "events": ["*"]}, "bad_request"),
    ({"url": PUBLIC_URL}, "bad_request"),
    ({"url": PUBLIC_URL, "events": "image.created"}, "bad_request"),
    ({"url": PUBLIC_URL, "events": []}, "bad_request"),
    ({"url": PUBLIC_URL, "events": ["image.uploaded"]}, "bad_request"),
    ({"url": PUBLIC_URL, "events": ["webhook.ping"]}, "bad_request"),
    ({"url": PUBLIC_URL, "events": [1]}, "bad_request"),
    ({"url": PUBLIC_URL, "events": [None]}, "bad_request"),
    ({"url": PUBLIC_URL, "events": ["image.created", "image.created"]}, "bad_request"),
    ({"url": PUBLIC_URL, "events": TYPES + ["*"] * 7}, "bad_request"),
    ({"url": PUBLIC_URL, "events": ["*"], "description": "d" * 1025}, "bad_request"),
    ({"url": PUBLIC_URL, "events": ["*"], "description": 5}, "bad_request"),
    ({"url": PUBLIC_URL, "events": ["*"], "description": "a\nb"}, "bad_request"),
    ({"url": PUBLIC_URL, "events": ["*"], "secret": "abc"}, "bad_request"),
    ({"url": PUBLIC_URL, "events": ["*"], "secret": b64(24)}, "bad_request"),
    ({"url": PUBLIC_URL, "events": ["*"], "secret": "whsec_" + b64(23)}, "bad_request"),
    ({"url": PUBLIC_URL, "events": ["*"], "secret": "whsec_" + b64(65)}, "bad_request"),
    ({"url": PUBLIC_URL, "events": ["*"], "secret": "whsec_" + b64(32)[:-1]}, "bad_request"),
    ({"url": PUBLIC_URL, "events": ["*"], "secret": "whsec_" + "!" * 44}, "bad_request"),
    ({"url": PUBLIC_URL, "events": ["*"], "secret": 7}, "bad_request"),
    ({"url": PUBLIC_URL + "/" + "x" * 2048, "events": ["*"]}, "url_invalid"),
]


@pytest.mark.parametrize("body,code", BAD_CREATE)
def test_bad_create(admin, body, code):
    before = sql_value("SELECT count(*) FROM webhook_endpoints")
    st, doc = admin.call("POST", "/internal/webhooks", body)
    assert st == 400 and doc["error"]["code"] == code and doc["error"]["message"], (st, doc)
    assert sql_value("SELECT count(*) FROM webhook_endpoints") == before


@pytest.mark.parametrize("raw", [b"{", b"[]", b"\"x\"", b"", b"{\"url\": }", b"\xff\xfe"])
def test_malformed_json(admin, raw):
    eid = create(admin)["endpoint_id"]
    for path in ("/internal/webhooks", "/internal/webhooks/%s/replay" % eid):
        st, doc = admin.call("POST", path, raw=raw, headers={"Content-Type": "application/json"})
        assert st == 400 and doc["error"]["code"] == "bad_request", (path, raw, st, doc)
    st, doc = admin.call("PATCH", "/internal/webhooks/" + eid, raw=raw,
                         headers={"Content-Type": "application/json"})
    assert st == 400 and doc["error"]["code"] == "bad_request", (raw, st, doc)


@pytest.mark.parametrize("body", [{}, {"enabled": "yes"}, {"enabled": 1},
                                  {"rotate_secret": "true"}, {"events": []},
                                  {"events": ["nope"]}, {"url": 1}, {"description": ["x"]},
                                  {"secret": "whsec_"}, {"rotate_secret": True,
                                                         "secret": "whsec_" + b64(24)},
                                  {"rotate_secret": False}])
def test_bad_patch(admin, body):
    ep = create(admin)
    st, doc = admin.call("PATCH", "/internal/webhooks/" + ep["endpoint_id"], body)
    assert st == 400 and doc["error"]["code"] == "bad_request", (body, st, doc)
    assert sql("SELECT url, events::text, secret, enabled FROM webhook_endpoints"
               " WHERE endpoint_id = '%s'" % ep["endpoint_id"]) == \
        [[PUBLIC_URL, "{image.created}", ep["secret"], "t"]]


@pytest.mark.parametrize("body", [{}, {"from": "2001-01-01T00:00:00Z"},
                                  {"from": "yesterday", "to": "2001-01-01T00:00:00Z"},
                                  {"from": 5, "to": "2001-01-01T00:00:00Z"},
                                  {"from": "2001-02-31T00:00:00Z", "to": "2001-03-01T00:00:00Z"},
                                  {"from": "2001-01-01 00:00:00", "to": "2001-01-02T00:00:00Z"}])
def test_bad_replay(admin, body):
    eid = create(admin)["endpoint_id"]
    st, doc = admin.call("POST", "/internal/webhooks/%s/replay" % eid, body)
    assert st == 400 and doc["error"]["code"] == "bad_request", (body, st, doc)


@pytest.mark.parametrize("method,path", ROUTES[2:])
@pytest.mark.parametrize("eid", ["not-a-uuid", str(uuid.uuid4()), "%s-x" % uuid.uuid4()])
def test_unknown_or_malformed_ids(admin, method, path, eid):
    body = {"from": "2001-01-01T00:00:00Z", "to": "2001-01-01T01:00:00Z"} \
        if path.endswith("replay") else {"enabled": True} if method == "PATCH" else None
    st, doc = admin.call(method, path.format(eid), body)
    assert st == 404 and doc["error"]["code"] == "not_found", (method, path, st, doc)


def test_endpoint_cap(stack):
    n = int(sql_value("SELECT count(*) FROM webhook_endpoints"))
    if n + 1 > 10000:
        pytest.skip("the database holds 10000 endpoints already")
    p = start_api(PIXPLANE_WEBHOOK_ENDPOINTS=str(n + 1))
    try:
        cl = admin_of(p)
        eid = create(cl)["endpoint_id"]
        st, doc = cl.call("POST", "/internal/webhooks", {"url": PUBLIC_URL, "events": ["*"]})
        assert st == 409 and doc["error"]["code"] == "endpoint_limit_reached", (st, doc)
        assert cl.call("DELETE", "/internal/webhooks/" + eid)[0] == 204
        create(cl)
    finally:
        p.stop()
