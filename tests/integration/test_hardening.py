# Regression tests for defects found by reading (issue 14), each against a real API process:
# configuration bounds checked at start-up (#6 page size, #12 JWT secret length), names that
# are not well-formed UTF-8 or carry control characters or U+0000 (#9, #10), and the MIME
# allow-list of formats the worker reads (#13). Bad input is a 400/415 and stores nothing.
import json
import os
import signal
import subprocess
import time
import uuid

import pytest

from conftest import API_BIN, ApiProcess, Client, free_port, sql_value, start_api, user_id


def start_fails(**env):
    e = dict(os.environ, PIXPLANE_LISTEN="127.0.0.1:%d" % free_port(), **env)
    out = subprocess.run([API_BIN], env=e, capture_output=True, text=True, timeout=30)
    return out.returncode, out.stdout + out.stderr


@pytest.mark.parametrize("env,says", [
    ({"PIXPLANE_PAGE_SIZE": "0"}, "page-size"),
    ({"PIXPLANE_PAGE_SIZE": "201"}, "page-size"),
    ({"PIXPLANE_JWT_SECRET": "x" * 31}, "jwt-secret"),
    ({"PIXPLANE_JWT_SECRET": "k"}, "jwt-secret"),
])
def test_bad_configuration_refused_at_start(stack, env, says):
    rc, out = start_fails(**env)
    assert rc != 0 and says in out, out[-2000:]


def test_token_command_needs_a_long_secret(stack):
    env = dict(os.environ, PIXPLANE_JWT_SECRET="short")
    out = subprocess.run([API_BIN, "token", "--user", "alice"], env=env, capture_output=True,
                         text=True, timeout=10)
    assert out.returncode != 0 and "32" in out.stderr


BAD_NAMES = {
    "overlong 3-byte": b"a\xe0\x80\xafb.jpg",
    "overlong 4-byte": b"a\xf0\x80\x80\xafb.jpg",
    "surrogate": b"a\xed\xa0\x80b.jpg",
    "above U+10FFFF": b"a\xf4\x90\x80\x80b.jpg",
    "lead byte F5": b"a\xf5\x80\x80\x80b.jpg",
    "truncated": b"a\xe2\x82",
    "C0 control": b"a\\u0007b.jpg",
    "C1 control": b"a\xc2\x85b.jpg",
    "DEL": b"a\x7fb.jpg",
    "embedded NUL": b"abc\\u0000.exe",
}


def raw_create(cl, name_bytes, mime=b"image/jpeg"):
    body = (b'{"file_name":"' + name_bytes + b'","file_size":10,"mime_type":"' + mime + b'"}')
    return cl.call("POST", "/uploads", raw=body, headers={"Content-Type": "application/json"})


@pytest.mark.parametrize("what", sorted(BAD_NAMES))
def test_bad_names_are_400_and_store_nothing(api, what):
    user = user_id("utf")
    cl = Client(api.url, api.token(user))
    st, doc = raw_create(cl, BAD_NAMES[what])
    assert st == 400 and doc["error"]["code"] == "bad_request", (st, doc)
    assert sql_value("SELECT count(*) FROM upload_sessions WHERE owner_id = '%s'" % user) == "0"


def test_bad_names_in_patch(api):
    cl = Client(api.url, api.token(user_id("patch")))
    _, doc = cl.upload(os.urandom(2000), name="ok.jpg")
    img = doc["image_id"]
    for what, name in sorted(BAD_NAMES.items()):
        body = b'{"name":"' + name + b'"}'
        st, err = cl.call("PATCH", "/images/%s" % img, raw=body,
                          headers={"Content-Type": "application/json"})
        assert st == 400, (what, st, err)
    st, meta = cl.call("GET", "/images/%s/metadata" % img)
    assert st == 200 and meta["name"] == "ok.jpg", meta


def test_good_names_still_work(api):
    cl = Client(api.url, api.token(user_id("names")))
    for name in ("фото 📷.jpg", "日本語.png", "a" * 255, "e\u0301.jpg"):
        st, doc = cl.call("POST", "/uploads", {"file_name": name, "file_size": 10,
                                               "mime_type": "image/jpeg"})
        assert st == 201 and doc["file_name"] == name, (name, st, doc)


@pytest.mark.parametrize("mime,status", [
    ("image/jpeg", 201), ("IMAGE/PNG", 201), ("image/heic", 201), ("image/avif", 201),
    ("image/webp", 201), ("image/svg+xml", 415), ("image/x-icon", 415), ("image/bmp", 415),
    ("image/", 415), ("image/jpeg; charset=x", 415),
])
def test_mime_allow_list(api, mime, status):
    cl = Client(api.url, api.token(user_id("mime")))
    st, doc = cl.call("POST", "/uploads", {"file_name": "x", "file_size": 10, "mime_type": mime})
    assert st == status, (mime, st, doc)
    if status == 201:
        assert doc["mime_type"] == mime.lower()
    else:
        assert doc["error"]["code"] == "unsupported_media_type"


def share(cl, img, user):
    return cl.call("POST", "/images/%s/shares" % img, {"user_id": user})


def test_share_caps(stack):
    # issue 14 #11: shares are bounded per image and per owner; never-seen ids are accepted
    api = ApiProcess({"PIXPLANE_SHARES_PER_IMAGE": "5", "PIXPLANE_SHARES_PER_USER": "7"})
    try:
        owner = user_id("sharer")
        cl = Client(api.url, api.token(owner))
        imgs = [cl.upload(os.urandom(1000 + i))[1]["image_id"] for i in range(2)]
        friends = [user_id("never-seen") for _ in range(6)]
        for f in friends[:5]:
            assert share(cl, imgs[0], f)[0] == 200
        st, doc = share(cl, imgs[0], friends[5])
        assert st == 409 and doc["error"]["code"] == "share_limit_reached", doc
        assert share(cl, imgs[0], friends[0])[0] == 200  # re-sharing is always fine
        # unsharing makes room again
        assert cl.call("DELETE", "/images/%s/shares/%s" % (imgs[0], friends[0]))[0] == 200
        assert share(cl, imgs[0], friends[5])[0] == 200
        # the owner's cap over all images: 5 + 2 = 7, then refused
        assert share(cl, imgs[1], friends[0])[0] == 200
        assert share(cl, imgs[1], friends[1])[0] == 200
        st, doc = share(cl, imgs[1], friends[2])
        assert st == 409 and doc["error"]["code"] == "share_limit_reached", doc
        assert sql_value("SELECT count(*) FROM image_shares s JOIN images i USING (image_id)"
                         " WHERE i.owner_id = '%s'" % owner) == "7"
        # a change now fans out to at most the cap, not without bound
        before = int(sql_value("SELECT count(*) FROM change_log WHERE image_id = '%s'" % imgs[0]))
        st, _ = cl.call("PATCH", "/images/%s" % imgs[0], {"name": "renamed.jpg"})
        assert st == 200
        after = int(sql_value("SELECT count(*) FROM change_log WHERE image_id = '%s'" % imgs[0]))
        assert after - before == 1 + 5
        # the other user sees it on first sign-in
        st, doc = Client(api.url, api.token(friends[5])).call("GET", "/shared")
        assert st == 200 and [i["image_id"] for i in doc["images"]] == [imgs[0]], doc
        # and a 404 stays a 404
        st, _ = share(cl, "00000000-0000-0000-0000-000000000000", friends[1])
        assert st == 404
    finally:
        api.stop()


def listen_backend(appname, other_than=0, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pid = sql_value("SELECT pid FROM pg_stat_activity WHERE application_name = '%s'"
                        " AND query LIKE 'LISTEN%%' AND pid <> %d" % (appname, other_than))
        if pid:
            return int(pid)
        time.sleep(0.2)
    raise AssertionError("no LISTEN connection named %s" % appname)


def test_sse_push_survives_a_hung_listen_connection(stack):
    """#2: the LISTEN connection's backend stops answering (SIGSTOP: as a half-open
    connection looks, keepalives still acknowledged). The API notices with its liveness
    ping, reconnects, and pushes the change that arrived meanwhile."""
    from test_sync import SSEReader, sse_connect
    appname = "listen-test-%s" % uuid.uuid4().hex[:8]
    url = os.environ["DATABASE_URL"]
    api = start_api(DATABASE_URL=url + ("&" if "?" in url else "?") + "application_name="
                    + appname)
    pid = None
    try:
        pid = listen_backend(appname)
        uid = user_id("hung")
        c = Client(api.url, api.token(uid))
        s = SSEReader(sse_connect(api.url, api.token(uid)))
        assert " 200 " in s.headers().split("\r\n")[0]
        assert s.event(5)  # the catch-up event
        os.kill(pid, signal.SIGSTOP)
        _, doc = c.upload(os.urandom(400), name="while-hung.jpg")
        ev, deadline = None, time.monotonic() + 40
        while ev is None and time.monotonic() < deadline:
            ev = s.event(2)
        assert ev is not None, "no push after the LISTEN connection hung"
        assert [x["image_id"] for x in json.loads(ev["data"])["added"]] == [doc["image_id"]]
        assert listen_backend(appname, other_than=pid)  # a new connection
        s.sock.close()
    finally:
        if pid:
            os.kill(pid, signal.SIGCONT)
        api.stop()


@pytest.mark.parametrize("point", ["sync_fold_alloc", "sync_classify_alloc"])
def test_sync_failure_says_why(stack, point):
    """#7: an allocation failing inside GET /sync (a test-build fail point) answers a JSON
    500, and the error line the API logs says why; before the fix both paths returned -1
    with err never written, and the log carried whatever the stack held."""
    from test_images import has_test_hooks
    if not has_test_hooks():
        pytest.skip("pixplane-api built without test hooks (make test / make asan build them)")
    api = ApiProcess({"PIXPLANE_FAIL": point})
    try:
        c = Client(api.url, api.token(user_id("oom")))
        st, doc = c.call("GET", "/sync")  # snapshot of nothing: no fail point on this path
        assert st == 200 and not doc["has_more"], doc
        c.upload(os.urandom(500), name="oom.jpg")
        st, doc = c.call("GET", "/sync?since=" + doc["cursor"])
        assert st == 500 and doc["error"]["code"] == "internal", (st, doc)
        st, doc = c.call("GET", "/healthz")
        assert st == 200
    finally:
        api.stop()
    with open(api.log_path, encoding="utf-8", errors="replace") as f:
        lines = [json.loads(x) for x in f if x.startswith("{")]
    fails = [x for x in lines if x.get("event") == "db_error" and x.get("statement") == "sync"]
    assert [x["msg"] for x in fails] == ["out of memory"], fails
