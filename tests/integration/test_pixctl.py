# pixctl, the reference client, against a real API, PostgreSQL and radosgw: upload and
# download round trip, resume after SIGKILL sending only the missing chunks (counted by the
# server and at storage's door), a dropped chunk PUT retried, dedup by proof of possession
# (no bytes sent), a changed file restarting cleanly, and sync once the server has /sync.
import collections
import hashlib
import json
import os
import re
import signal
import socket
import subprocess
import threading
import time
import urllib.parse

import pytest
import requests

from conftest import BUILD, MIB, Client, start_api, user_id
from s3door import S3Door

PIXCTL = os.path.join(BUILD, "pixctl")


@pytest.fixture(scope="module")
def door(stack):
    if not os.path.exists(PIXCTL):
        pytest.skip("pixctl not built (%s)" % PIXCTL)
    d = S3Door(os.environ["S3_ENDPOINT"])
    yield d
    d.close()


@pytest.fixture(scope="module")
def papi(door):
    """An API whose presigned URLs point at the door."""
    p = start_api(S3_PUBLIC_ENDPOINT=door.url, PIXPLANE_PART_URL_TTL="10m")
    yield p
    p.stop()


class Pixctl:
    def __init__(self, api, tmp_path, user=None):
        self.api = api
        self.user = user or user_id("px")
        self.token = api.token(self.user)
        self.home = tmp_path / ("home-" + self.user)
        self.state = self.home / "state"
        self.state.mkdir(parents=True, exist_ok=True)
        self.client = Client(api.url, self.token)

    def env(self, **extra):
        e = dict(os.environ)
        e.update(HOME=str(self.home), PIXPLANE_API_URL=self.api.url, PIXPLANE_TOKEN=self.token,
                 PIXPLANE_STATE_DIR=str(self.state), PIXCTL_RETRIES="6")
        e.pop("PIXPLANE_CONFIG", None)
        e.update({k: str(v) for k, v in extra.items()})
        return e

    def run(self, *args, timeout=300, ok=True, **extra):
        p = subprocess.run([PIXCTL] + [str(a) for a in args], env=self.env(**extra),
                           capture_output=True, text=True, timeout=timeout)
        assert "Sanitizer" not in p.stderr and "runtime error:" not in p.stderr, p.stderr[-4000:]
        if ok:
            assert p.returncode == 0, (args, p.returncode, p.stderr[-3000:])
        return p

    def spawn(self, *args, **extra):
        return subprocess.Popen([PIXCTL] + [str(a) for a in args], env=self.env(**extra),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def upload_json(self, *args, **kw):
        p = self.run("upload", "--json", *args, **kw)
        docs = [json.loads(line) for line in p.stdout.splitlines() if line.strip()]
        assert docs, p.stderr
        return docs if len(docs) > 1 else docs[0]

    def state_doc(self, timeout=30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            files = [f for f in os.listdir(self.state) if f.endswith(".json")]
            if files:
                with open(self.state / files[0]) as f:
                    try:
                        return json.load(f)
                    except ValueError:
                        pass
            time.sleep(0.05)
        raise AssertionError("no resume state file appeared")

    def session(self, sid):
        st, doc = self.client.call("GET", "/uploads/%s" % sid)
        assert st == 200, (st, doc)
        return doc


def write_random(path, size):
    h = hashlib.sha256()
    with open(path, "wb") as f:
        left = size
        while left:
            b = os.urandom(min(left, 4 * MIB))
            h.update(b)
            f.write(b)
            left -= len(b)
    return h.hexdigest()


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for b in iter(lambda: f.read(4 * MIB), b""):
            h.update(b)
    return h.hexdigest()


def has_route(api, method, path):
    c = Client(api.url, api.token(user_id("probe")))
    st, doc = c.call(method, path)
    return not (st in (404, 405) and doc and "route" in doc.get("error", {}).get("message", ""))


def wait_uploaded(px, sid, at_least, total, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done = px.session(sid)["uploaded_chunks"]
        if len(done) >= at_least:
            return done
        time.sleep(0.1)
    raise AssertionError("fewer than %d of %d chunks uploaded in %ds" % (at_least, total, timeout))


def kill_mid_upload(px, door, src, at_least, total, *flags):
    """Starts `pixctl upload` at 8 MiB/s through the door, one chunk at a time, and
    SIGKILLs it once the server holds at_least of its total chunks. Returns the session."""
    door.rate = 8 * MIB
    try:
        proc = px.spawn("upload", "--json", "--parallel", "1", *flags, src)
        sid = px.state_doc()["upload_session_id"]
        wait_uploaded(px, sid, at_least, total)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        door.rate = None
    return sid


def test_help_and_usage_errors(tmp_path, stack):
    if not os.path.exists(PIXCTL):
        pytest.skip("pixctl not built")
    p = subprocess.run([PIXCTL, "--help"], capture_output=True, text=True, timeout=10)
    assert p.returncode == 0 and "Exit codes" in p.stdout and "upload" in p.stdout
    p = subprocess.run([PIXCTL, "upload", "--help"], capture_output=True, text=True, timeout=10)
    assert p.returncode == 0 and "--parallel" in p.stdout
    env = dict(os.environ, HOME=str(tmp_path), PIXPLANE_TOKEN="t")
    for args in (["nope"], ["upload"], ["ls", "--variant", "x"], ["upload", "--parallel", "0", "f"]):
        p = subprocess.run([PIXCTL] + args, capture_output=True, text=True, timeout=10, env=env)
        assert p.returncode == 1, (args, p.returncode, p.stderr)
        assert len(p.stderr.strip().splitlines()) == 1 and p.stderr.startswith("pixctl: ")
    # the config file sits under the environment, which sits under flags
    cfg = tmp_path / "cfg"
    cfg.write_text("# test\napi-url = http://127.0.0.1:9\ntoken = fromfile\nparallel = 0\n")
    env = dict(os.environ, HOME=str(tmp_path), PIXPLANE_CONFIG=str(cfg))
    env.pop("PIXPLANE_TOKEN", None)
    env.pop("PIXPLANE_API_URL", None)  # the stack's env would sit above the file
    p = subprocess.run([PIXCTL, "upload", "x.jpg"], capture_output=True, text=True, timeout=10,
                       env=env)
    assert p.returncode == 1 and "--parallel" in p.stderr
    env["PIXCTL_PARALLEL"] = "2"
    p = subprocess.run([PIXCTL, "upload", str(cfg)], capture_output=True, text=True, timeout=10,
                       env=env)
    assert p.returncode == 1 and "image type" in p.stderr  # reached the file: config accepted
    (tmp_path / "x.jpg").write_bytes(b"\xff\xd8\xff" + b"0" * 100)
    p = subprocess.run([PIXCTL, "upload", "--connect-timeout", "1s", "--retries", "1",
                        str(tmp_path / "x.jpg")], capture_output=True, text=True, timeout=30,
                       env=env)
    assert p.returncode == 3, (p.returncode, p.stderr)  # port 9: network error


def test_upload_then_download_round_trip(papi, door, tmp_path):
    px = Pixctl(papi, tmp_path)
    src = tmp_path / "round trip.jpg"
    digest = write_random(src, 20 * MIB + 12345)
    door.reset()
    doc = px.upload_json(src)
    assert doc["status"] == "completed" and doc["sha256"] == digest
    assert doc["chunks_sent"] == doc["chunks_total"] == 3 and doc["proof"] is False
    assert door.total_puts() == 3
    assert not os.listdir(px.state), "the resume state is removed after success"
    p = px.run("upload", src)  # plain output: the image id alone (a dedup this time)
    assert re.fullmatch(r"[0-9a-f-]{36}\n", p.stdout), p.stdout
    if not has_route(papi, "GET", "/images/%s" % doc["image_id"]):
        pytest.skip("GET /images/{id} is not served yet")
    out = tmp_path / "out"
    out.mkdir()
    p = px.run("download", doc["image_id"], "-o", out)
    path = p.stdout.strip()
    assert path == str(out / "round trip.jpg")
    assert sha256_file(path) == digest
    assert [f for f in os.listdir(out)] == ["round trip.jpg"]  # no temporary file left
    info = json.loads(px.run("info", "--json", doc["image_id"]).stdout)
    assert info["sha256"] == digest and info["size"] == os.path.getsize(src)


def test_sigkill_then_resume_sends_only_missing_chunks(papi, door, tmp_path):
    px = Pixctl(papi, tmp_path)
    src = tmp_path / "big.jpg"
    digest = write_random(src, 300 * MIB)
    door.rate = 40 * MIB  # about 8 s for the whole file: room to kill it part-way
    try:
        proc = px.spawn("upload", "--json", "--parallel", "2", src)
        sid = px.state_doc()["upload_session_id"]
        total = px.session(sid)["chunk_count"]
        wait_uploaded(px, sid, 4, total)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        door.rate = None
    time.sleep(1)  # let storage settle parts whose bodies had fully arrived
    before = px.session(sid)["uploaded_chunks"]
    assert 4 <= len(before) < total, (len(before), total)
    door.reset()
    doc = px.upload_json(src)
    assert doc["status"] == "completed" and doc["sha256"] == digest, doc
    assert doc["resumed"] is True and doc["upload_session_id"] == sid
    assert doc["chunks_total"] == total
    assert doc["chunks_present"] == len(before)
    assert doc["chunks_sent"] == total - len(before)
    # storage's door saw exactly the missing parts, once each
    missing = sorted(set(range(total)) - set(before))
    assert sorted(n - 1 for n in door.puts) == missing
    assert all(v == 1 for v in door.puts.values()), door.puts
    # pixctl returns once the server has the commit; the check may still run (issue 15)
    deadline = time.monotonic() + 60
    while px.session(sid)["status"] == "verifying" and time.monotonic() < deadline:
        time.sleep(0.1)
    assert px.session(sid)["status"] == "completed"


def test_dropped_chunk_put_is_retried(papi, door, tmp_path):
    px = Pixctl(papi, tmp_path)
    src = tmp_path / "retry.jpg"
    digest = write_random(src, 3 * 8 * MIB + 99)
    door.reset()
    door.drop_next = 2
    doc = px.upload_json(src, "--parallel", "2")
    assert door.dropped == 2 and door.drop_next == 0
    assert doc["status"] == "completed" and doc["sha256"] == digest
    assert doc["retries"] == 2, doc
    # only the failed chunks were sent again: every part stored exactly once
    assert sorted(door.puts) == [1, 2, 3, 4] and all(v == 1 for v in door.puts.values())


def test_expired_urls_are_refreshed(door, tmp_path, stack):
    api = start_api(S3_PUBLIC_ENDPOINT=door.url, PIXPLANE_PART_URL_TTL="3s")
    try:
        px = Pixctl(api, tmp_path)
        src = tmp_path / "slow.jpg"
        digest = write_random(src, 4 * 8 * MIB)
        door.reset()
        door.forbid_next = 1  # storage says the URL expired: ask for a fresh one, resend
        door.rate = 8 * MIB   # about 1 s a chunk, one at a time: later URLs near expiry
        doc = px.upload_json(src, "--parallel", "1")
    finally:
        door.rate = None
        door.forbid_next = 0
        api.stop()
    assert doc["status"] == "completed" and doc["sha256"] == digest
    # the forced 403 costs one retry; a URL that really expires on a slow machine (3 s TTL)
    # may cost another, refreshed the same way
    assert 1 <= doc["retries"] <= 3 and doc["url_requests"] >= 3, doc
    assert sorted(door.puts) == [1, 2, 3, 4] and all(v == 1 for v in door.puts.values())


def test_dedup_by_proof_sends_no_bytes(papi, door, tmp_path):
    first = Pixctl(papi, tmp_path)
    src = tmp_path / "shared.jpg"
    digest = write_random(src, 9 * MIB)
    a = first.upload_json(src, "--wait")  # verified: only then a dedup target (issue 15)
    assert a["proof"] is False and a["chunks_sent"] == 2
    second = Pixctl(papi, tmp_path)
    door.reset()
    b = second.upload_json(src)
    assert b["status"] == "completed" and b["proof"] is True and b["deduplicated"] is True
    assert b["chunks_sent"] == 0 and b["bytes_sent"] == 0
    assert door.total_puts() == 0
    assert b["image_id"] != a["image_id"] and b["sha256"] == digest


def test_changed_file_restarts_cleanly(papi, door, tmp_path):
    px = Pixctl(papi, tmp_path)
    src = tmp_path / "changing.jpg"
    write_random(src, 6 * 8 * MIB)
    sid = kill_mid_upload(px, door, src, 1, 6)
    with open(src, "r+b") as f:  # same size, new content and mtime
        f.seek(5)
        f.write(b"changed")
    digest = sha256_file(src)
    doc = px.upload_json(src)
    assert doc["sha256"] == digest and doc["status"] == "completed"
    assert doc["resumed"] is False and doc["chunks_present"] == 0 and doc["chunks_sent"] == 6
    assert doc["upload_session_id"] != sid
    assert px.session(sid)["status"] == "aborted"  # the stale session was let go


def test_aborted_session_restarts(papi, door, tmp_path):
    px = Pixctl(papi, tmp_path)
    src = tmp_path / "aborted.jpg"
    digest = write_random(src, 4 * 8 * MIB)
    sid = kill_mid_upload(px, door, src, 1, 4)
    st, _ = px.client.call("DELETE", "/uploads/%s" % sid)
    assert st == 200
    doc = px.upload_json(src)
    assert doc["sha256"] == digest and doc["resumed"] is False
    assert doc["upload_session_id"] != sid and doc["chunks_sent"] == 4


def test_sigint_stops_cleanly_and_resumes(papi, door, tmp_path):
    px = Pixctl(papi, tmp_path)
    src = tmp_path / "interrupted.jpg"
    digest = write_random(src, 5 * 8 * MIB)
    door.rate = 8 * MIB
    try:
        proc = px.spawn("upload", "--json", "--parallel", "1", src)
        sid = px.state_doc()["upload_session_id"]
        wait_uploaded(px, sid, 1, 5)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        door.rate = None
    assert proc.returncode == 130, (proc.returncode, err)
    assert json.loads(out)["status"] == "failed"
    state = px.state_doc()
    assert state["upload_session_id"] == sid and state["done"]
    doc = px.upload_json(src)
    assert doc["resumed"] is True and doc["sha256"] == digest
    assert doc["chunks_present"] + doc["chunks_sent"] == 5


# ---- verification state and hash-while-upload (issue 15) ----

def needs_test_hooks():
    from test_images import has_test_hooks
    if not has_test_hooks():
        pytest.skip("built without test hooks (make test / make asan build them)")


def test_upload_says_verified_and_ls_info_show_the_state(papi, tmp_path):
    px = Pixctl(papi, tmp_path)
    src = tmp_path / "state.jpg"
    write_random(src, 3 * MIB)
    p = px.run("upload", src)
    image = p.stdout.strip()
    assert re.search(r"state\.jpg: verified %s" % image, p.stderr), p.stderr
    doc = px.upload_json(src, "--name", "again.jpg")
    assert doc["state"] == "verified" and doc["hash"] == "first", doc
    rows = [line.split() for line in px.run("ls").stdout.splitlines()]
    assert [image, "active"] in [[r[0], r[4]] for r in rows], rows
    info = px.run("info", image).stdout
    assert re.search(r"^status: +active$", info, re.M), info


@pytest.mark.parametrize("mode,size", [("first", 70 * MIB), ("stream", 9 * MIB)])
def test_wait_exits_nonzero_when_verification_fails(papi, tmp_path, mode, size):
    """A wrong sha256 (fail point), declared at creation (hash first) or sent with complete
    (streamed): the background verification fails and --wait exits 5 with the server's
    error code. Above the verification threshold."""
    needs_test_hooks()
    px = Pixctl(papi, tmp_path)
    src = tmp_path / ("liar-%s.jpg" % mode)
    write_random(src, size)
    p = px.run("upload", "--wait", "--hash", mode, src, ok=False,
               PIXPLANE_FAIL="pixctl_wrong_sha256")
    assert p.returncode == 5, (p.returncode, p.stderr[-2000:])
    assert "sha256_mismatch" in p.stderr, p.stderr[-2000:]
    assert not os.listdir(px.state), "a failed upload leaves no resume state"


def test_streamed_upload_declares_the_right_hash(papi, door, tmp_path):
    px = Pixctl(papi, tmp_path)
    src = tmp_path / "streamed.jpg"
    digest = write_random(src, 4 * 8 * MIB + 4321)
    door.reset()
    doc = px.upload_json(src, "--hash", "stream", "--parallel", "3", "--wait")
    assert doc["hash"] == "stream" and doc["sha256"] == digest, doc
    assert doc["status"] == "completed" and doc["chunks_sent"] == 5 and door.total_puts() == 5
    assert px.session(doc["upload_session_id"]).get("sha256") in (None, digest)  # new: given
    info = json.loads(px.run("info", "--json", doc["image_id"]).stdout)
    assert info["sha256"] == digest == sha256_file(src)


def test_auto_streams_large_files(papi, tmp_path):
    px = Pixctl(papi, tmp_path)
    src = tmp_path / "auto.jpg"
    digest = write_random(src, 9 * MIB)
    doc = px.upload_json(src, "--hash-first-below", "8MiB", "--wait")  # a verified blob
    assert doc["hash"] == "stream" and doc["sha256"] == digest
    doc = px.upload_json(src, "--hash-first-below", "10MiB")
    assert doc["hash"] == "first" and doc["proof"] is True  # hashed first: dedup, no bytes


def test_streamed_upload_killed_then_resumed_has_the_right_hash(papi, door, tmp_path):
    px = Pixctl(papi, tmp_path)
    src = tmp_path / "streamed-kill.jpg"
    digest = write_random(src, 8 * 8 * MIB + 77)
    sid = kill_mid_upload(px, door, src, 2, 9, "--hash", "stream")
    time.sleep(1)
    before = px.session(sid)["uploaded_chunks"]
    assert 2 <= len(before) < 9, before
    assert not px.state_doc()["sha256"], "a streamed session is saved without a hash"
    door.reset()
    doc = px.upload_json(src, "--hash", "first", "--wait")  # the saved state decides: streamed
    assert doc["hash"] == "stream" and doc["resumed"] is True and doc["upload_session_id"] == sid
    assert doc["sha256"] == digest and doc["chunks_sent"] == 9 - len(before), doc
    assert sorted(n - 1 for n in door.puts) == sorted(set(range(9)) - set(before))
    assert px.session(sid).get("sha256") in (None, digest)
    info = json.loads(px.run("info", "--json", doc["image_id"]).stdout)
    assert info["sha256"] == digest


def test_upload_returns_verifying_then_wait_says_verified(papi, tmp_path):
    px = Pixctl(papi, tmp_path)
    src = tmp_path / "big-verifying.jpg"
    digest = write_random(src, 300 * MIB)
    doc = px.upload_json(src, "--hash", "stream")
    assert doc["state"] == "verifying" and doc["image_id"], doc
    rows = {r.split()[0]: r.split()[4] for r in px.run("ls").stdout.splitlines()}
    assert rows[doc["image_id"]] in ("verifying", "active"), rows
    src2 = tmp_path / "big-verified.jpg"
    digest = write_random(src2, 300 * MIB)
    doc = px.upload_json(src2, "--wait")
    assert doc["state"] == "verified" and doc["sha256"] == digest, doc
    info = px.run("info", doc["image_id"]).stdout
    assert re.search(r"^status: +active$", info, re.M), info


# ---- sync (issue 7's routes) ----

def tree(d):
    out = {}
    for name in sorted(os.listdir(d)):
        if name == ".pixplane":
            continue
        out[name] = sha256_file(os.path.join(d, name))
    return out


def test_sync_two_folders_converge(papi, tmp_path):
    if not has_route(papi, "GET", "/sync"):
        pytest.skip("GET /sync is not served yet")
    user = user_id("sync")
    writer = Pixctl(papi, tmp_path, user)
    dev1, dev2 = tmp_path / "dev1", tmp_path / "dev2"
    files = {}
    for i, name in enumerate(["a.jpg", "b.jpg", "a.jpg"]):  # a name collision on purpose
        p = tmp_path / ("src%d" % i)
        p.mkdir()
        f = p / name
        files[f] = write_random(f, MIB + i)
    ids = [d["image_id"] for d in writer.upload_json(*files)]
    writer.run("sync", dev1)
    assert sorted(tree(dev1).values()) == sorted(files.values())
    writer.run("rename", ids[1], "renamed.jpg")
    writer.run("rm", ids[0])
    writer.run("sync", dev1)
    writer.run("sync", dev2)
    assert tree(dev1) == tree(dev2)
    assert "renamed.jpg" in tree(dev2) and len(tree(dev2)) == 2
    assert "a.jpg" in tree(dev2)  # the collision went away with the delete
    assert not os.listdir(dev1 / ".pixplane" / "tmp")


def test_sync_killed_mid_download_leaves_no_partial_file(papi, door, tmp_path):
    if not has_route(papi, "GET", "/sync"):
        pytest.skip("GET /sync is not served yet")
    px = Pixctl(papi, tmp_path)
    src = tmp_path / "large.jpg"
    digest = write_random(src, 40 * MIB)
    px.upload_json(src)
    dev = tmp_path / "dev"
    door.rate = 4 * MIB
    try:
        proc = px.spawn("sync", dev)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            tmpd = dev / ".pixplane" / "tmp"
            if tmpd.exists() and any(os.path.getsize(tmpd / f) > 0 for f in os.listdir(tmpd)):
                break
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        door.rate = None
    assert tree(dev) == {}  # nothing under a final name
    px.run("sync", dev)
    assert tree(dev) == {"large.jpg": digest}
    assert not os.listdir(dev / ".pixplane" / "tmp")


def wait_for(pred, timeout=15, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.05)
    raise AssertionError("timed out waiting for " + what)


def test_sync_watch_follows_changes(papi, tmp_path):
    if not has_route(papi, "GET", "/sync"):  # (probing the stream itself would not return)
        pytest.skip("GET /sync is not served yet")
    px = Pixctl(papi, tmp_path)
    dev = tmp_path / "watched"
    proc = px.spawn("sync", "--watch", "--json", dev)
    try:
        wait_for(lambda: (dev / ".pixplane" / "cursor").exists(), what="the first pull")
        src = tmp_path / "live.jpg"
        digest = write_random(src, 100000)
        t0 = time.monotonic()
        iid = px.upload_json(src)["image_id"]
        wait_for(lambda: "live.jpg" in tree(dev), what="the upload to arrive")
        assert time.monotonic() - t0 < 10
        assert tree(dev) == {"live.jpg": digest}
        px.run("rename", iid, "moved.jpg")
        wait_for(lambda: list(tree(dev)) == ["moved.jpg"], what="the rename")
        px.run("rm", iid)
        wait_for(lambda: tree(dev) == {}, what="the delete")
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    actions = [json.loads(line)["action"] for line in out.splitlines() if line.strip()]
    assert actions == ["added", "renamed", "removed", "synced"], (actions, err)
