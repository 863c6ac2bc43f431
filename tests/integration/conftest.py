# Shared fixtures for integration tests against the real local stack (PostgreSQL,
# radosgw, the Kafka broker) that `minio-dev/up` started and described in minio-dev/run/env.
import hashlib
import json
import os
import signal
import socket
import subprocess
import time
import uuid

import pytest
import requests

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.path.join(ROOT, os.environ.get("PIXPLANE_BUILD", "build"))
API_BIN = os.path.join(BUILD, "pixplane-api")
MIB = 1024 * 1024


def need_env(*names):
    missing = [n for n in names if not os.environ.get(n)]
    if missing:
        pytest.skip("stack not up (missing %s); run minio-dev/up" % ", ".join(missing))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url, timeout=20.0, want=200):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            r = requests.get(url, timeout=2)
            if r.status_code == want:
                return r
            last = r.status_code
        except requests.RequestException as e:
            last = e
        time.sleep(0.1)
    raise AssertionError("%s did not answer %d in %.0fs (last: %s)" % (url, want, timeout, last))


# What a sanitized build (ASan + UBSan in build-test, TSan in build-tsan) prints on a finding.
SAN_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
               "WARNING: ThreadSanitizer")


def report_tail(text, size=8000):
    """What to show of a process's log: its first sanitizer report if there is one (a report
    printed at exit is followed by shutdown lines that would push it out), else the end."""
    at = [text.find(m) for m in SAN_MARKERS if m in text]
    return text[min(at):min(at) + size] if at else text[-size:]


def assert_sanitizer_clean(text):
    assert not any(m in text for m in SAN_MARKERS), report_tail(text)


class ApiProcess:
    """A pixplane-api process on a free port; stopped with SIGTERM, must exit 0."""

    def __init__(self, env_overrides=None, log_path=None):
        self.port = free_port()
        self.url = "http://127.0.0.1:%d" % self.port
        self.ops_port = free_port()
        self.ops_url = "http://127.0.0.1:%d" % self.ops_port  # /metrics without a token
        self.env = dict(os.environ)
        self.env["PIXPLANE_LISTEN"] = "127.0.0.1:%d" % self.port
        self.env["PIXPLANE_OPS_LISTEN"] = "127.0.0.1:%d" % self.ops_port
        self.env.setdefault("PIXPLANE_RATE_LIMIT", "0")  # tests that measure limits set it
        self.env.update({k: str(v) for k, v in (env_overrides or {}).items()})
        self.log_path = log_path or "/tmp/pixplane-api-test-%d.log" % self.port
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen([API_BIN], env=self.env, stdout=self.log, stderr=self.log)
        wait_http(self.url + "/healthz")

    def token(self, user, admin=False, ttl=3600):
        return make_token(user, admin, ttl, self.env["PIXPLANE_JWT_SECRET"])

    def stop(self, timeout=30):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                rc = self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError("pixplane-api did not stop on SIGTERM")
        else:
            rc = self.proc.returncode
        self.log.close()
        assert rc == 0, "pixplane-api exited %s; log %s" % (rc, self.log_path)
        with open(self.log_path, "rb") as f:
            text = f.read().decode("utf-8", "replace")
        assert_sanitizer_clean(text)


def make_token(user, admin=False, ttl=3600, secret=None):
    cmd = [API_BIN, "token", "--user", user, "--ttl", str(ttl)]
    if admin:
        cmd.append("--admin")
    env = dict(os.environ)
    if secret:
        env["PIXPLANE_JWT_SECRET"] = secret
    return subprocess.check_output(cmd, env=env, text=True).strip()


@pytest.fixture(scope="session")
def stack():
    need_env("DATABASE_URL", "S3_ENDPOINT", "S3_BUCKET", "PIXPLANE_JWT_SECRET")
    return os.environ


@pytest.fixture(scope="module")
def api(stack):
    p = ApiProcess()
    yield p
    p.stop()


def start_api(**overrides):
    return ApiProcess(overrides)


def sql(query, *args, url=None):
    """Runs SQL with psql; returns rows as lists of strings."""
    cmd = ["psql", url or os.environ["DATABASE_URL"], "-X", "-q", "-At", "-F", "\t",
           "-v", "ON_ERROR_STOP=1", "-c", query]
    out = subprocess.check_output(cmd, text=True, timeout=30)
    return [line.split("\t") for line in out.splitlines() if line]


def sql_value(query, url=None):
    rows = sql(query, url=url)
    return rows[0][0] if rows else None


@pytest.fixture(scope="session")
def s3():
    """An independent S3 client (boto3) to check what is really in the bucket."""
    need_env("S3_ENDPOINT")
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3", endpoint_url=os.environ["S3_ENDPOINT"], region_name=os.environ["S3_REGION"],
        aws_access_key_id=os.environ["S3_ACCESS_KEY"],
        aws_secret_access_key=os.environ["S3_SECRET_KEY"],
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 2}))


def put_repeated(s3, key, size, seed=b"pixplane", part=16 * MIB):
    """Stores `size` bytes of one pseudo-random MiB repeated (cheap to make and to hash: no
    large object in memory) at key, by multipart above one part, 4 parts at a time. Returns
    the content's sha256 hex."""
    import concurrent.futures as cf

    full = hashlib.shake_256(seed).digest(MIB) * (part // MIB)  # every part starts on a block
    lens = [min(part, size - off) for off in range(0, size, part)] or [0]
    bucket = os.environ["S3_BUCKET"]
    h = hashlib.sha256()
    for n in lens:
        h.update(full[:n])
    if len(lens) == 1:
        s3.put_object(Bucket=bucket, Key=key, Body=full[:size])
        return h.hexdigest()
    uid = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]

    def put(i):
        r = s3.upload_part(Bucket=bucket, Key=key, UploadId=uid, PartNumber=i + 1,
                           Body=full[:lens[i]])
        return {"PartNumber": i + 1, "ETag": r["ETag"]}

    with cf.ThreadPoolExecutor(4) as ex:
        parts = list(ex.map(put, range(len(lens))))
    s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=uid,
                                 MultipartUpload={"Parts": parts})
    return h.hexdigest()


def object_exists(s3, key):
    try:
        s3.head_object(Bucket=os.environ["S3_BUCKET"], Key=key)
        return True
    except s3.exceptions.ClientError as e:
        if e.response["Error"]["Code"] in ("404", "NoSuchKey", "NotFound"):
            return False
        raise


class Client:
    """A minimal pixplane client: the same calls pixctl makes."""

    def __init__(self, base, token):
        self.base = base
        self.s = requests.Session()
        self.s.headers["Authorization"] = "Bearer " + token

    def call(self, method, path, body=None, headers=None, raw=None):
        r = self.s.request(method, self.base + path, json=body, data=raw, headers=headers,
                           timeout=120, allow_redirects=False)
        try:
            doc = r.json()
        except ValueError:
            doc = None
        return r.status_code, doc

    def start(self, data, name="photo.jpg", mime="image/jpeg", declare=False, headers=None):
        body = {"file_name": name, "file_size": len(data), "mime_type": mime}
        if declare:
            body["sha256"] = hashlib.sha256(data).hexdigest() if declare is True else declare
        st, doc = self.call("POST", "/uploads", body, headers=headers)
        assert st == 201, (st, doc)
        return doc

    def urls(self, sid, chunks):
        st, doc = self.call("POST", "/uploads/%s/chunks/urls" % sid, {"chunk_numbers": chunks})
        assert st == 200, (st, doc)
        return {u["chunk_number"]: u["url"] for u in doc["urls"]}

    def put_chunks(self, sess, data, chunks):
        size = sess["chunk_size"]
        urls = self.urls(sess["upload_session_id"], chunks)
        for n in chunks:
            r = requests.put(urls[n], data=data[n * size:(n + 1) * size], timeout=120)
            assert r.status_code == 200, (r.status_code, r.text[:300])

    def complete(self, sid):
        return self.call("POST", "/uploads/%s/complete" % sid)

    def complete_settled(self, sid, timeout=120):
        """complete, asked again while another request completes or verifies it (202)."""
        deadline = time.monotonic() + timeout
        st, doc = self.complete(sid)
        while st == 202 and time.monotonic() < deadline:
            time.sleep(0.05)
            st, doc = self.complete(sid)
        return st, doc

    def upload(self, data, **kw):
        sess = self.start(data, **kw)
        self.put_chunks(sess, data, list(range(sess["chunk_count"])))
        st, doc = self.complete_settled(sess["upload_session_id"])
        assert st == 200, (st, doc)
        return sess, doc


def user_id(prefix="u"):
    return "%s-%s" % (prefix, uuid.uuid4().hex[:12])


@pytest.fixture
def client(api):
    return Client(api.url, api.token(user_id()))


def jdump(x):
    return json.dumps(x, indent=1)[:2000]
