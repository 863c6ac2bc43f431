# pixplane-reconciler against the real PostgreSQL and radosgw: every anomaly of issue 6 is
# made for real (the API killed at fault points, or direct SQL / S3 calls), one --once pass
# repairs it, a second pass finds nothing, and tests/integration/invariants.py holds after
# each scenario. The module works in a database and a bucket of its own on the stack's
# servers: the reconciler acts on everything it sees, and other tests' data is not its to
# repair. Grace periods are shortened with flags; retention, expiry and leases are made to
# have run out by moving timestamps in SQL.
import hashlib
import json
import os
import signal
import subprocess
import time
import urllib.parse
import uuid

import pytest
import requests

import invariants
from conftest import API_BIN, BUILD, ApiProcess, Client, assert_sanitizer_clean, sql, user_id

REC_BIN = os.path.join(BUILD, "pixplane-reconciler")
GRACE = 3  # --orphan-grace and --multipart-grace in these tests
# Uploads here never reach a relay: their outbox rows must not count as stuck meanwhile.
SHORT = ["--session-ttl", "1s", "--complete-lease", "2s", "--orphan-grace", "%ds" % GRACE,
         "--multipart-grace", "%ds" % GRACE, "--audit-every", "0", "--outbox-stuck", "45m"]
KIB = 1024


def hooks(binary):
    out = subprocess.run([binary, "--help"], capture_output=True, text=True, timeout=10)
    return "test hooks" in out.stdout


def past_grace():
    time.sleep(GRACE + 1.5)  # S3 times have one-second resolution


class Env:
    """A database and a bucket of this module's own, on the stack's servers."""

    def __init__(self, s3):
        tag = uuid.uuid4().hex[:10]
        base = urllib.parse.urlsplit(os.environ["DATABASE_URL"])
        self.dbname = "pixrec_" + tag
        self.url = urllib.parse.urlunsplit(base._replace(path="/" + self.dbname))
        self.bucket = "pixrec-" + tag
        self.s3 = s3
        # the sweeps' multipart cases need small multipart uploads (test_one_put_staging
        # covers one-PUT uploads)
        self.vars = {"DATABASE_URL": self.url, "S3_BUCKET": self.bucket, "PIXPLANE_ONE_PUT": "0"}
        sql("CREATE DATABASE %s" % self.dbname)
        s3.create_bucket(Bucket=self.bucket)
        subprocess.run([API_BIN, "migrate"], env={**os.environ, **self.vars}, check=True,
                       capture_output=True, timeout=120)

    def q(self, query):
        return sql(query, url=self.url)

    def v(self, query):
        rows = self.q(query)
        return rows[0][0] if rows else None

    def exists(self, key):
        return invariants._exists(self.s3, self.bucket, key)

    def put(self, key, body=b"x"):
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=body)

    def uploads(self, key=None):
        got = invariants._uploads(self.s3, self.bucket, "blobs/")
        return [(k, u) for k, u, _ in got if key is None or k == key]

    def invariants(self, grace=GRACE):
        invariants.assert_ok(self.url, self.s3, self.bucket, grace=grace)

    def drop(self):
        for key, uid in self.uploads():
            self.s3.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=uid)
        for prefix in ("blobs/", "variants/", ""):
            for key, _ in invariants._objects(self.s3, self.bucket, prefix):
                self.s3.delete_object(Bucket=self.bucket, Key=key)
        self.s3.delete_bucket(Bucket=self.bucket)
        sql("DROP DATABASE IF EXISTS %s WITH (FORCE)" % self.dbname)


@pytest.fixture(scope="module")
def env(stack, s3):
    if not os.path.exists(REC_BIN):
        pytest.skip("pixplane-reconciler not built")
    e = Env(s3)
    yield e
    e.drop()


@pytest.fixture(scope="module")
def api(env):
    p = ApiProcess(env.vars)
    yield p
    p.stop()


@pytest.fixture
def client(api):
    return Client(api.url, api.token(user_id("rec")))


class Run:
    def __init__(self, rc, stdout, stderr):
        assert_sanitizer_clean(stderr)
        self.rc = rc
        self.stderr = stderr
        self.report = json.loads(stdout) if stdout.strip() else None
        self.lines = [json.loads(l) for l in stderr.splitlines() if l.startswith("{")]
        self.actions = [l for l in self.lines if l.get("event") == "reconcile_action"]
        self.targets = {(a["sweep"], a["action"], a["target"]) for a in self.actions}
        self.failures = [l for l in self.lines if l.get("event") == "reconcile_failed"]

    def did(self, sweep, action):
        return {a["target"] for a in self.actions if a["sweep"] == sweep and a["action"] == action}

    def detail(self, action, target):
        return next(a for a in self.actions if a["action"] == action and a["target"] == target)

    def __repr__(self):
        return "Run(rc=%s, report=%s, stderr=%s)" % (self.rc, self.report, self.stderr[-3000:])


def reconcile(env, *args, extra_env=None, timeout=180):
    p = subprocess.run([REC_BIN, "--once", "--report", "json", *SHORT, *args],
                       env={**os.environ, **env.vars, **(extra_env or {})},
                       capture_output=True, text=True, timeout=timeout)
    return Run(p.returncode, p.stdout, p.stderr)


def converged(env, *args):
    """A second pass: nothing to repair, nothing failing; then the invariants."""
    again = reconcile(env, *args)
    assert again.rc == 0 and not again.actions and not again.failures, again
    env.invariants()
    return again


def session_row(env, sid, cols="status"):
    return env.q("SELECT %s FROM upload_sessions WHERE upload_session_id = '%s'" % (cols, sid))[0]


def upload_id(env, sid):
    return env.v("SELECT s3_upload_id FROM upload_sessions WHERE upload_session_id = '%s'" % sid)


def assemble(env, sid):
    """Completes the session's multipart upload in storage only (as the API does first)."""
    key, uid = "blobs/" + sid, upload_id(env, sid)
    parts = env.s3.list_parts(Bucket=env.bucket, Key=key, UploadId=uid)["Parts"]
    env.s3.complete_multipart_upload(
        Bucket=env.bucket, Key=key, UploadId=uid,
        MultipartUpload={"Parts": [{"PartNumber": p["PartNumber"], "ETag": p["ETag"]}
                                   for p in parts]})


def started(c, data, declare=False):
    sess = c.start(data, declare=declare)
    c.put_chunks(sess, data, list(range(sess["chunk_count"])))
    return sess["upload_session_id"]


def crash_complete(env, c, sid, fault):
    """Kills the API at a fault point of complete (real), or, in a build without test hooks,
    leaves the same state by hand. Returns True if the API really died there."""
    if hooks(API_BIN):
        crashing = ApiProcess({**env.vars, "PIXPLANE_FAULT": fault})
        cc = Client(crashing.url, c.s.headers["Authorization"].split()[1])
        with pytest.raises(requests.ConnectionError):
            cc.complete(sid)
        assert crashing.proc.wait(10) == 137
        crashing.log.close()
        return True
    if fault == "complete_after_s3":
        assemble(env, sid)
        env.q("UPDATE upload_sessions SET status = 'completing', lease_token = gen_random_uuid(),"
              " lease_until = now() + interval '15 minutes' WHERE upload_session_id = '%s'" % sid)
    else:  # complete_after_commit: committed, the duplicate's staging object still there
        st, doc = c.complete(sid)
        assert st == 200 and doc["deduplicated"], doc
        env.put("blobs/" + sid, b"left behind")
    return False


def table_digest(env):
    """Row count and content checksum of every table: a dry run must leave all unchanged."""
    tables = [r[0] for r in env.q("SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
                                  " ORDER BY 1")]
    return {t: env.q("SELECT count(*), md5(coalesce(string_agg(x::text, '|' ORDER BY x::text),"
                     " '')) FROM %s x" % t)[0] for t in tables}


def bucket_digest(env):
    objs = {}
    for page in env.s3.get_paginator("list_objects_v2").paginate(Bucket=env.bucket):
        objs.update({o["Key"]: (o["ETag"], o["Size"]) for o in page.get("Contents", [])})
    return objs, sorted(env.uploads())


# ---- 1. expired upload sessions ----

def test_expired_sessions(env, client):
    data = os.urandom(64 * KIB)
    with_parts = started(client, data)                       # multipart upload with a part
    bare = client.start(data)["upload_session_id"]           # no multipart upload yet
    assembled = started(client, data)                        # completed in storage only
    assemble(env, assembled)
    live = client.start(data)["upload_session_id"]           # not expired: left alone
    mine = [with_parts, bare, assembled]
    env.q("UPDATE upload_sessions SET expires_at = now() - interval '1 day'"
          " WHERE upload_session_id IN ('%s')" % "', '".join(mine))
    run = reconcile(env)
    assert run.rc == 1 and not run.failures, run
    assert run.did("expired_sessions", "expire_session") == set(mine), run
    assert run.detail("expire_session", with_parts)["multipart"] == "aborted"
    assert run.detail("expire_session", bare)["multipart"] == "none"
    assert run.detail("expire_session", assembled)["staging"] == "deleted"
    for sid in mine:
        assert session_row(env, sid) == ["expired"]
    assert not env.uploads("blobs/" + with_parts)
    assert not env.exists("blobs/" + assembled)
    assert session_row(env, live) == ["uploading"]
    st, doc = client.call("GET", "/uploads/%s" % with_parts)
    assert st == 200 and doc["status"] == "expired"
    converged(env)


# ---- 2. multipart uploads without a live session ----

def test_orphan_multipart(env, client):
    data = os.urandom(64 * KIB)
    live = started(client, data)
    live_key, live_uid = "blobs/" + live, upload_id(env, live)
    stray = env.s3.create_multipart_upload(Bucket=env.bucket, Key=live_key)["UploadId"]
    nobody = "blobs/%s" % uuid.uuid4()
    env.s3.create_multipart_upload(Bucket=env.bucket, Key=nobody)
    aborted = started(client, data)  # aborted in the database; the S3 abort never happened
    env.q("UPDATE upload_sessions SET status = 'aborted' WHERE upload_session_id = '%s'" % aborted)
    past_grace()
    young = "blobs/%s" % uuid.uuid4()
    young_uid = env.s3.create_multipart_upload(Bucket=env.bucket, Key=young)["UploadId"]
    run = reconcile(env)
    assert run.rc == 1 and not run.failures, run
    assert run.did("orphan_multipart", "abort_multipart") == {live_key, nobody,
                                                              "blobs/" + aborted}, run
    assert run.detail("abort_multipart", live_key)["upload_id"] == stray
    assert env.uploads(live_key) == [(live_key, live_uid)]  # the session's own upload stays
    assert not env.uploads(nobody) and not env.uploads("blobs/" + aborted)
    assert env.uploads(young) == [(young, young_uid)]      # younger than the grace period
    env.s3.abort_multipart_upload(Bucket=env.bucket, Key=young, UploadId=young_uid)
    converged(env)
    st, doc = client.complete(live)  # the live upload still completes
    assert st == 200, doc


def test_one_put_staging(env):
    """One-PUT uploads (common/finalize.h): an expired session's staging object goes with
    it, and a staging object nothing open refers to (a PUT after the session completed) is
    an orphan once past the grace period."""
    api = ApiProcess({**env.vars, "PIXPLANE_ONE_PUT": "1"})
    try:
        c = Client(api.url, api.token(user_id("one")))
        data = os.urandom(64 * KIB)
        sid = c.start(data)["upload_session_id"]
        assert requests.put(c.urls(sid, [0])[0], data=data, timeout=30).status_code == 200
        assert env.exists("staging/" + sid) and not env.uploads("blobs/" + sid)
        done = c.start(data)["upload_session_id"]
        url = c.urls(done, [0])[0]
        assert requests.put(url, data=data, timeout=30).status_code == 200
        st, doc = c.complete(done)
        assert st == 200, doc
        deadline = time.monotonic() + 10  # the staging object goes after the answer
        while env.exists("staging/" + done) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not env.exists("staging/" + done) and env.exists("blobs/" + done)
        assert requests.put(url, data=data, timeout=30).status_code == 200  # a late PUT
    finally:
        api.stop()
    env.q("UPDATE upload_sessions SET expires_at = now() - interval '1 day'"
          " WHERE upload_session_id = '%s'" % sid)
    past_grace()
    run = reconcile(env)
    assert run.rc == 1 and not run.failures, run
    assert sid in run.did("expired_sessions", "expire_session"), run
    assert not env.exists("staging/" + sid)
    assert "staging/" + done in run.did("orphan_objects", "delete_object"), run
    assert not env.exists("staging/" + done) and env.exists("blobs/" + done)
    converged(env)


# ---- 3. half-committed uploads ----

def test_half_committed(env, api, client):
    data, known = os.urandom(80 * KIB), os.urandom(70 * KIB)
    client.upload(known)
    fresh = started(client, data)                        # new content: commit
    dup = started(client, known)                         # known content: commit as duplicate
    wrong = started(client, os.urandom(60 * KIB), declare="0" * 64)  # sha256 lie: fail
    for sid in (fresh, dup, wrong):
        crash_complete(env, client, sid, "complete_after_s3")
        assert session_row(env, sid) == ["completing"]
    parts = started(client, os.urandom(50 * KIB))        # claimed, never assembled: reopen
    env.q("UPDATE upload_sessions SET status = 'verifying', lease_token = gen_random_uuid()"
          " WHERE upload_session_id = '%s'" % parts)
    stale = started(client, os.urandom(30 * KIB))        # not assembled, past expiry: close
    env.q("UPDATE upload_sessions SET status = 'completing', lease_token = gen_random_uuid(),"
          " lease_until = now() - interval '1 hour', expires_at = now() - interval '1 day'"
          " WHERE upload_session_id = '%s'" % stale)
    held = started(client, os.urandom(40 * KIB))         # lease still valid: left alone
    env.q("UPDATE upload_sessions SET status = 'completing', lease_token = gen_random_uuid(),"
          " lease_until = now() + interval '10 minutes' WHERE upload_session_id = '%s'" % held)
    env.q("UPDATE upload_sessions SET lease_until = now() - interval '1 hour'"
          " WHERE upload_session_id IN ('%s', '%s', '%s', '%s')" % (fresh, dup, wrong, parts))
    run = reconcile(env)
    assert run.rc == 1 and not run.failures, run
    assert run.did("half_committed", "finalize") == {fresh, dup, wrong}, run
    assert run.did("half_committed", "reopen") == {parts}, run
    assert run.did("half_committed", "expire_session") == {stale}, run
    assert run.detail("expire_session", stale)["multipart"] == "aborted"
    assert session_row(env, stale) == ["expired"] and not env.uploads("blobs/" + stale)
    assert run.detail("finalize", fresh)["outcome"] == "committed"
    assert run.detail("finalize", dup)["deduplicated"] == "true"
    assert run.detail("finalize", wrong)["outcome"] == "sha256_mismatch"
    h = hashlib.sha256(data).hexdigest()
    assert env.q("SELECT storage_path, ref_count FROM blobs WHERE content_hash = '%s'" % h) == \
        [["blobs/" + fresh, "1"]]
    image = session_row(env, fresh, "status, image_id")
    assert image[0] == "completed"
    assert env.v("SELECT count(*) FROM outbox WHERE payload->>'image_id' = '%s'" % image[1]) == "1"
    assert env.v("SELECT ref_count FROM blobs WHERE content_hash = '%s'"
                 % hashlib.sha256(known).hexdigest()) == "2"
    assert not env.exists("blobs/" + dup) and not env.exists("blobs/" + wrong)
    assert session_row(env, wrong, "status, error_code") == ["failed", "sha256_mismatch"]
    assert session_row(env, parts, "status, coalesce(lease_token::text, '')") == ["uploading", ""]
    assert session_row(env, held) == ["completing"]
    st, doc = client.complete(parts)  # the client's retry of complete goes through
    assert st == 200, doc
    st, doc = client.complete(fresh)  # and a retry of the repaired one sees its image
    assert st == 200 and doc["image_id"] == image[1], doc
    env.q("UPDATE upload_sessions SET status = 'uploading', lease_token = NULL,"
          " lease_until = NULL WHERE upload_session_id = '%s'" % held)
    converged(env)


# ---- 4. orphaned objects ----

def test_orphan_objects(env, api, client):
    data = os.urandom(90 * KIB)
    _, first = client.upload(data)
    h = first["sha256"]
    path, blob_id = env.q("SELECT storage_path, blob_id FROM blobs WHERE content_hash = '%s'"
                          % h)[0]
    dup = started(client, data)
    real = crash_complete(env, client, dup, "complete_after_commit")
    assert session_row(env, dup, "status, deduplicated") == ["completed", "t"]
    assert env.exists("blobs/" + dup), "the duplicate's staging object should be left behind"
    keep = "variants/%s/%s/preview.webp" % (h, blob_id)
    stale = "variants/%s/%d/preview.webp" % (h, int(blob_id) + 1000)  # an older blob generation
    nohash = "variants/%s/7/thumbnail_small.webp" % hashlib.sha256(os.urandom(8)).hexdigest()
    for key in (keep, stale, nohash):
        env.put(key)
    failed = started(client, os.urandom(50 * KIB))
    assemble(env, failed)
    env.q("UPDATE upload_sessions SET status = 'failed' WHERE upload_session_id = '%s'" % failed)
    uploading = started(client, os.urandom(50 * KIB))   # assembled, session still live: kept
    assemble(env, uploading)
    tomb = "blobs/%s" % uuid.uuid4()                    # tombstoned: gc's, not an orphan
    env.put(tomb)
    env.q("INSERT INTO gc_objects (storage_path, reason) VALUES ('%s', 'test')" % tomb)
    past_grace()
    young = "blobs/%s" % uuid.uuid4()
    env.put(young)
    run = reconcile(env)
    assert run.rc == 1 and not run.failures, run
    assert run.did("orphan_objects", "delete_object") == {"blobs/" + dup, stale, nohash,
                                                          "blobs/" + failed}, (real, run)
    assert run.did("retention", "settle_tombstone") == {tomb}
    for key in ("blobs/" + dup, stale, nohash, "blobs/" + failed, tomb):
        assert not env.exists(key), key
    for key in (path, keep, "blobs/" + uploading, young):
        assert env.exists(key), key
    env.s3.delete_object(Bucket=env.bucket, Key=young)
    converged(env)
    env.q("UPDATE upload_sessions SET status = 'aborted' WHERE upload_session_id = '%s'"
          % uploading)
    env.s3.delete_object(Bucket=env.bucket, Key="blobs/" + uploading)


def test_orphans_over_many_pages_and_batches(env):
    # repairs run while a listing page is being read: the pages must all be seen
    keys = {"blobs/%s" % uuid.uuid4() for _ in range(23)} | \
        {"variants/%s/1/x.webp" % hashlib.sha256(os.urandom(8)).hexdigest() for _ in range(9)}
    for key in keys:
        env.put(key)
    past_grace()
    for workers in ("1", "4"):
        dry = reconcile(env, "--only", "orphan_objects", "--dry-run", "--s3-page-size", "5",
                        "--batch", "3", "--s3-workers", workers)
        assert dry.did("orphan_objects", "delete_object") == keys, dry
    run = reconcile(env, "--only", "orphan_objects,orphan_multipart", "--s3-page-size", "5",
                    "--batch", "3", "--s3-workers", "1")
    assert run.rc == 1 and run.did("orphan_objects", "delete_object") == keys, run
    seen = run.report["sweeps"]["orphan_objects"]["examined"]
    assert seen == dry.report["sweeps"]["orphan_objects"]["examined"] >= len(keys)
    assert not any(env.exists(k) for k in keys)
    converged(env)


# ---- 5. retention and the shared hard-delete path ----

def test_failed_images_go_after_retention(env, api):
    """An image that failed verification (issue 15) holds no content; past the retention
    the reconciler drops it, and its owner's devices hear of it."""
    c = Client(api.url, api.token(user_id("rf")))
    data = os.urandom(20 * KIB)
    ids = []
    for _ in range(2):
        sid = started(c, data, declare="ef" * 32)
        st, doc = c.complete(sid)
        assert st == 422 and doc["error"]["code"] == "sha256_mismatch", doc
        ids.append(env.v("SELECT image_id FROM upload_sessions WHERE upload_session_id = '%s'"
                         % sid))
    assert ids == [None, None]  # verified before complete answered: no image was ever made
    big = os.urandom(9 * 1024 * KIB)  # verified in the background: a failed image
    sid = started(c, big, declare="ef" * 32)
    st, doc = c.complete(sid)
    assert st == 202, doc
    deadline = time.monotonic() + 60
    while session_row(env, sid) != ["failed"] and time.monotonic() < deadline:
        time.sleep(0.1)
    old, young = doc["image_id"], None
    sid2 = started(c, big, declare="ee" * 32)
    st, doc2 = c.complete(sid2)
    young = doc2["image_id"]
    while session_row(env, sid2) != ["failed"] and time.monotonic() < deadline:
        time.sleep(0.1)
    assert env.v("SELECT count(*) FROM images WHERE status = 'failed' AND image_id IN"
                 " ('%s', '%s')" % (old, young)) == "2"
    env.q("UPDATE images SET updated_at = now() - interval '31 days'"
          " WHERE image_id = '%s'" % old)
    dry = reconcile(env, "--dry-run", "--only", "retention")
    assert old in dry.did("retention", "drop_failed_image"), dry
    run = reconcile(env, "--only", "retention")
    assert run.did("retention", "drop_failed_image") == {old}, run
    assert env.v("SELECT string_agg(image_id::text, ',') FROM images WHERE image_id IN"
                 " ('%s', '%s')" % (old, young)) == young
    assert env.v("SELECT kind FROM change_log WHERE image_id = '%s' ORDER BY seq DESC LIMIT 1"
                 % old) == "deleted"


def test_retention(env, api):
    a = Client(api.url, api.token(user_id("ra")))
    b = Client(api.url, api.token(user_id("rb")))
    data = os.urandom(40 * KIB)
    _, ia = a.upload(data)
    _, ib = b.upload(data)
    h = ia["sha256"]
    path, blob_id = env.q("SELECT storage_path, blob_id FROM blobs WHERE content_hash = '%s'"
                          % h)[0]
    vkey = "variants/%s/%s/preview.webp" % (h, blob_id)
    env.put(vkey)
    env.q("INSERT INTO image_variants (content_hash, variant_type, status, storage_path)"
          " VALUES ('%s', 'preview', 'ready', '%s')" % (h, vkey))
    _, recent = a.upload(os.urandom(30 * KIB))
    for c, img in ((a, ia), (b, ib), (a, recent)):
        assert c.call("DELETE", "/images/%s" % img["image_id"])[0] == 200
    env.q("UPDATE images SET deleted_at = now() - interval '31 days'"
          " WHERE image_id IN ('%s', '%s')" % (ia["image_id"], ib["image_id"]))
    # a cleanup killed after its commit leaves tombstones for the reconciler
    _, z = a.upload(os.urandom(20 * KIB))
    zpath = env.v("SELECT storage_path FROM blobs WHERE content_hash = '%s'" % z["sha256"])
    a.call("DELETE", "/images/%s" % z["image_id"])
    if hooks(API_BIN):
        crashing = ApiProcess({**env.vars, "PIXPLANE_FAULT": "cleanup_after_commit"})
        admin = Client(crashing.url, crashing.token("ops", admin=True))
        with pytest.raises(requests.ConnectionError):
            admin.call("POST", "/internal/images/%s/cleanup" % z["image_id"])
        assert crashing.proc.wait(10) == 137
        crashing.log.close()
    else:
        env.q("UPDATE images SET deleted_at = now() - interval '31 days'"
              " WHERE image_id = '%s'" % z["image_id"])
    run = reconcile(env)
    assert run.rc == 1 and not run.failures, run
    purged = run.did("retention", "purge_image")
    assert {ia["image_id"], ib["image_id"]} <= purged and recent["image_id"] not in purged, run
    assert {run.detail("purge_image", i)["blob_deleted"] for i in (ia["image_id"],
                                                                    ib["image_id"])} == \
        {"true", "false"}
    assert env.v("SELECT count(*) FROM blobs WHERE content_hash = '%s'" % h) == "0"
    assert env.v("SELECT count(*) FROM image_variants WHERE content_hash = '%s'" % h) == "0"
    assert env.v("SELECT count(*) FROM gc_objects") == "0"
    for key in (path, vkey, zpath):
        assert not env.exists(key), key
    assert env.v("SELECT status FROM images WHERE image_id = '%s'" % recent["image_id"]) == \
        "deleted"
    converged(env)


# ---- 6. ref_count drift ----

def test_refcount_drift(env, client):
    imgs = {}
    for name in ("high", "lost", "zero"):
        _, doc = client.upload(os.urandom(30 * KIB))
        imgs[name] = doc
    hh, hl, hz = (imgs[n]["sha256"] for n in ("high", "lost", "zero"))
    lost_path = env.v("SELECT storage_path FROM blobs WHERE content_hash = '%s'" % hl)
    env.q("UPDATE blobs SET ref_count = 4 WHERE content_hash = '%s'" % hh)
    env.q("DELETE FROM images WHERE image_id = '%s'" % imgs["lost"]["image_id"])
    env.q("UPDATE blobs SET ref_count = 0 WHERE content_hash = '%s'" % hz)
    # without the audit, a blob at 0 references that images still use is never purged
    only = reconcile(env, "--only", "retention")
    assert only.rc == 0 and not only.actions and only.report["unrepaired"] == 1, only
    assert env.v("SELECT count(*) FROM blobs WHERE content_hash = '%s'" % hz) == "1"
    run = reconcile(env)
    assert run.rc == 1 and not run.failures, run
    assert run.did("refcount", "fix_refcount") == {hh, hl, hz}, run
    got = {h: (run.detail("fix_refcount", h)["from"], run.detail("fix_refcount", h)["to"])
           for h in (hh, hl, hz)}
    assert got == {hh: ("4", "1"), hl: ("1", "0"), hz: ("0", "1")}
    assert run.did("retention", "purge_blob") == {hl}
    order = [(a["sweep"], a["target"]) for a in run.actions]
    assert order.index(("refcount", hl)) < order.index(("retention", hl))
    assert not env.exists(lost_path)
    assert env.v("SELECT ref_count FROM blobs WHERE content_hash = '%s'" % hz) == "1"
    assert client.call("GET", "/images/%s" % imgs["zero"]["image_id"])[0] == 200
    converged(env)


# ---- 7. stuck work ----

def test_stuck_work(env):
    owner, topic = user_id("stuck"), "image-uploaded"
    env.q("INSERT INTO users (user_id) VALUES ('%s')" % owner)
    contents = []
    for _ in range(2):
        body = os.urandom(1000)
        h = hashlib.sha256(body).hexdigest()
        key = "blobs/%s" % uuid.uuid4()
        env.put(key, body)
        env.q("INSERT INTO blobs (content_hash, storage_path, size, ref_count)"
              " VALUES ('%s', '%s', 1000, 1);"
              " INSERT INTO images (image_id, owner_id, content_hash, name, size, mime_type)"
              " VALUES (gen_random_uuid(), '%s', '%s', 'x.jpg', 1000, 'image/jpeg')"
              % (h, key, owner, h))
        contents.append(h)
    stuck, fine = contents
    env.q("INSERT INTO image_variants (content_hash, variant_type, status, attempts, requeues,"
          " updated_at) VALUES ('{s}', 'thumbnail_small', 'failed', 5, 0, now() - interval '3h'),"
          " ('{s}', 'preview', 'pending', 2, 1, now() - interval '3h'),"
          " ('{s}', 'thumbnail_large', 'failed', 5, 3, now() - interval '3h'),"
          " ('{f}', 'preview', 'ready', 1, 0, now() - interval '3h'),"
          " ('{f}', 'thumbnail_small', 'pending', 1, 0, now())".format(s=stuck, f=fine))
    ids = [r[0] for r in env.q(
        "INSERT INTO outbox (topic, msg_key, payload, created_at, attempts, resets) VALUES"
        " ('{t}', 'a', '{{}}', now() - interval '1h', 7, 0),"
        " ('{t}', 'b', '{{}}', now() - interval '1h', 9, 3),"
        " ('{t}', 'c', '{{}}', now(), 0, 0) RETURNING id".format(t=topic))]
    run = reconcile(env, "--only", "stuck")
    assert run.rc == 1 and not run.failures, run
    assert run.did("stuck", "requeue_variants") == {stuck}, run
    assert run.detail("requeue_variants", stuck)["variants"] == "preview,thumbnail_small"
    assert run.did("stuck", "reset_outbox") == {ids[0]}
    assert run.report["unrepaired"] == 2  # outbox row and variant at the requeue cap
    rows = env.q("SELECT variant_type, status, attempts, requeues, updated_at > now() - "
                 "interval '1 minute' FROM image_variants WHERE content_hash = '%s'"
                 " ORDER BY 1" % stuck)
    assert rows == [["preview", "pending", "0", "2", "t"],
                    ["thumbnail_large", "failed", "5", "3", "f"],
                    ["thumbnail_small", "pending", "0", "1", "t"]], rows
    event = env.q("SELECT payload->>'type', payload->>'requeued', topic FROM outbox"
                  " WHERE msg_key = '%s'" % stuck)
    assert event == [["image.uploaded", "true", topic]]
    assert env.q("SELECT attempts, resets, reset_at IS NOT NULL FROM outbox WHERE id IN"
                 " (%s) ORDER BY id" % ", ".join(ids)) == [["0", "1", "t"], ["9", "3", "f"],
                                                         ["0", "0", "f"]]
    again = reconcile(env, "--only", "stuck")
    assert again.rc == 0 and not again.actions, again
    env.q("DELETE FROM outbox WHERE id IN (%s)" % ", ".join(ids))
    env.q("UPDATE image_variants SET status = 'ready' WHERE content_hash IN ('%s', '%s')"
          % (stuck, fine))
    converged(env)


# ---- dry run ----

def test_dry_run_changes_nothing_and_predicts_the_real_run(env, api, client):
    data = os.urandom(60 * KIB)
    expired = started(client, data)
    env.q("UPDATE upload_sessions SET expires_at = now() - interval '1 day'"
          " WHERE upload_session_id = '%s'" % expired)
    env.s3.create_multipart_upload(Bucket=env.bucket, Key="blobs/%s" % uuid.uuid4())
    reopen = started(client, os.urandom(20 * KIB))
    env.q("UPDATE upload_sessions SET status = 'completing', lease_token = gen_random_uuid(),"
          " lease_until = now() - interval '1 hour' WHERE upload_session_id = '%s'" % reopen)
    finalize = started(client, os.urandom(20 * KIB))
    crash_complete(env, client, finalize, "complete_after_s3")
    env.q("UPDATE upload_sessions SET lease_until = now() - interval '1 hour'"
          " WHERE upload_session_id = '%s'" % finalize)
    env.put("blobs/%s" % uuid.uuid4())
    _, old = client.upload(os.urandom(20 * KIB))
    client.call("DELETE", "/images/%s" % old["image_id"])
    env.q("UPDATE images SET deleted_at = now() - interval '40 days'"
          " WHERE image_id = '%s'" % old["image_id"])
    _, drift = client.upload(os.urandom(20 * KIB))
    env.q("UPDATE blobs SET ref_count = 3 WHERE content_hash = '%s'" % drift["sha256"])
    _, gone = client.upload(os.urandom(20 * KIB))
    env.q("DELETE FROM images WHERE image_id = '%s'" % gone["image_id"])  # drift to zero
    env.q("INSERT INTO image_variants (content_hash, variant_type, status, updated_at)"
          " VALUES ('%s', 'preview', 'failed', now() - interval '1 day')" % drift["sha256"])
    past_grace()
    tables, bucket = table_digest(env), bucket_digest(env)
    # the database itself refuses writes for the dry run: proof that it made none
    dry = reconcile(env, "--dry-run", extra_env={"PGOPTIONS": "-c default_transaction_read_only=on"})
    assert dry.rc == 1 and not dry.failures, dry
    assert table_digest(env) == tables
    assert bucket_digest(env) == bucket
    assert {s for s, _, _ in dry.targets} == {"expired_sessions", "orphan_multipart",
                                               "half_committed", "orphan_objects", "retention",
                                               "refcount", "stuck"}, dry
    real = reconcile(env)
    assert real.rc == 1 and not real.failures, real
    assert real.targets == dry.targets, (sorted(dry.targets ^ real.targets), real)
    assert all(a["dry_run"] == "true" for a in dry.actions)
    env.q("UPDATE image_variants SET status = 'ready'")
    converged(env)


# ---- two reconcilers at once ----

def test_two_reconcilers_do_no_double_work(env, client):
    data = os.urandom(30 * KIB)
    sids = [client.start(data)["upload_session_id"] for _ in range(40)]
    for sid in sids[:20]:
        client.urls(sid, [0])  # a multipart upload to abort for half of them
    env.q("UPDATE upload_sessions SET expires_at = now() - interval '1 day'"
          " WHERE upload_session_id IN ('%s')" % "', '".join(sids))
    orphans = {"blobs/%s" % uuid.uuid4() for _ in range(30)}
    for key in orphans:
        env.put(key)
    past_grace()
    procs = [subprocess.Popen([REC_BIN, "--once", "--report", "json", "--batch", "7", *SHORT],
                              env={**os.environ, **env.vars}, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    runs = []
    for p in procs:
        out, err = p.communicate(timeout=180)
        runs.append(Run(p.returncode, out, err))
    assert all(r.rc in (0, 1) and not r.failures for r in runs), runs
    acted = [t for r in runs for t in (
        (a["sweep"], a["action"], a["target"]) for a in r.actions)]
    assert len(acted) == len(set(acted)), "some repair was made twice"
    assert {t for s, a, t in acted if a == "expire_session"} == set(sids)
    assert {t for s, a, t in acted if a == "delete_object"} == orphans
    busy = [r for r in runs if any(l.get("event") == "lock_busy" for l in r.lines)]
    assert len(busy) == 1 or any(not r.actions for r in runs), runs
    for sid in sids:
        assert session_row(env, sid) == ["expired"]
    converged(env)


def test_daemon_metrics_and_standby(env):
    ports = [free_port() for _ in range(2)]
    procs = [subprocess.Popen([REC_BIN, *SHORT, "--interval", "1s", "--listen",
                               "127.0.0.1:%d" % port], env={**os.environ, **env.vars},
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
             for port in ports]
    try:
        leaders = []
        for port in ports:
            base = "http://127.0.0.1:%d" % port
            deadline = time.monotonic() + 20
            while True:
                try:
                    if requests.get(base + "/healthz", timeout=2).status_code == 200:
                        break
                except requests.RequestException:
                    pass
                assert time.monotonic() < deadline, "daemon /healthz did not answer"
                time.sleep(0.1)
        time.sleep(2.5)
        for port in ports:
            assert requests.get("http://127.0.0.1:%d/readyz" % port, timeout=5).status_code == 200
            text = requests.get("http://127.0.0.1:%d/metrics" % port, timeout=5).text
            metrics = dict(l.rsplit(" ", 1) for l in text.splitlines() if not l.startswith("#"))
            leaders.append(metrics["pixplane_reconciler_leader"])
            if metrics["pixplane_reconciler_leader"] == "1":
                assert int(metrics["pixplane_reconciler_passes_total"]) >= 2
                assert 'pixplane_reconciler_actions_total{sweep="retention"}' in metrics
        assert sorted(leaders) == ["0", "1"], leaders
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        errs = [p.communicate(timeout=30)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], errs
    assert sum("\"standby\"" in e for e in errs) == 1, errs


def free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---- killed mid-sweep ----

def test_killed_mid_sweep_converges(env, client):
    data = os.urandom(20 * KIB)
    sids = [client.start(data)["upload_session_id"] for _ in range(120)]
    for sid in sids:
        client.urls(sid, [0])
    env.q("UPDATE upload_sessions SET expires_at = now() - interval '1 day'"
          " WHERE upload_session_id IN ('%s')" % "', '".join(sids))
    past_grace()
    p = subprocess.Popen([REC_BIN, "--once", "--batch", "40", *SHORT],
                         env={**os.environ, **env.vars}, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, text=True)
    done = 0
    for line in p.stderr:
        done += "\"expire_session\"" in line
        if done == 50:  # the middle of the second batch: marked expired, storage half done
            p.send_signal(signal.SIGKILL)
            break
    p.wait(30)
    p.stderr.close()
    assert p.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    open_ = {r[0] for r in env.q("SELECT upload_session_id FROM upload_sessions WHERE"
                                 " upload_session_id IN ('%s') AND status = 'uploading'"
                                 % "', '".join(sids))}
    left = {k for k, _ in env.uploads()} & {"blobs/" + s for s in sids}
    assert left, "nothing left for the next run"
    assert left - {"blobs/" + s for s in open_}, "no session was marked and left uncleaned"
    run = reconcile(env)
    assert run.rc == 1 and not run.failures, run
    # sessions not yet marked are expired now; uploads of those marked but not yet cleaned
    # are multipart uploads without a live session
    assert run.did("orphan_multipart", "abort_multipart") | \
        {"blobs/" + s for s in run.did("expired_sessions", "expire_session")} >= left
    assert {k for k, _ in env.uploads()} & {"blobs/" + s for s in sids} == set()
    assert env.v("SELECT count(*) FROM upload_sessions WHERE upload_session_id IN ('%s')"
                 " AND status <> 'expired'" % "', '".join(sids)) == "0"
    converged(env)


@pytest.mark.parametrize("fault", ["expire_after_mark", "cleanup_before_commit",
                                   "cleanup_after_commit", "complete_after_commit"])
def test_killed_at_fault_point_converges(env, api, client, fault):
    if not hooks(REC_BIN):
        pytest.skip("pixplane-reconciler built without test hooks")
    data = os.urandom(25 * KIB)
    if fault == "expire_after_mark":
        sid = started(client, data)
        env.q("UPDATE upload_sessions SET expires_at = now() - interval '1 day'"
              " WHERE upload_session_id = '%s'" % sid)
        past_grace()
        key = "blobs/" + sid
    elif fault.startswith("cleanup"):
        _, img = client.upload(data)
        key = env.v("SELECT storage_path FROM blobs WHERE content_hash = '%s'" % img["sha256"])
        client.call("DELETE", "/images/%s" % img["image_id"])
        env.q("UPDATE images SET deleted_at = now() - interval '40 days'"
              " WHERE image_id = '%s'" % img["image_id"])
    else:  # the reconciler's own finalize of a duplicate dies before removing the staging copy
        client.upload(data)
        sid = started(client, data)
        env.q("UPDATE upload_sessions SET status = 'completing', lease_token = gen_random_uuid(),"
              " lease_until = now() - interval '1 hour' WHERE upload_session_id = '%s'" % sid)
        assemble(env, sid)
        key = "blobs/" + sid
    crashed = reconcile(env, extra_env={"PIXPLANE_FAULT": fault})
    assert crashed.rc == 137, crashed
    env.invariants(grace=3600)  # nothing points at a missing object, even right after
    if fault == "cleanup_after_commit":
        assert env.v("SELECT count(*) FROM gc_objects WHERE storage_path = '%s'" % key) == "1"
    past_grace()
    run = reconcile(env)
    assert run.rc == 1 and not run.failures, run
    assert not env.exists(key) and not env.uploads(key)
    converged(env)


def test_bad_configuration_exits_2(env):
    def rc(*args):
        return subprocess.run([REC_BIN, "--once", *args], env={**os.environ, **env.vars},
                              capture_output=True, text=True, timeout=30).returncode
    assert rc("--orphan-grace", "1h") == 2          # shorter than session-ttl + lease
    assert rc(*SHORT, "--only", "bogus") == 2
    assert rc(*SHORT, "--report", "yaml") == 2
    assert rc(*SHORT, "--help") == 0
