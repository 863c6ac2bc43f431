# common/s3 + common/sigv4 against the live radosgw (env from minio-dev/run/env), through
# tests/tools/presign and tests/tools/s3op, with plain HTTP for presigned URLs and boto3 as
# the independent checker: presigned PUT/GET and their tampered, expired and wrong-method
# variants, the multipart cycle, HEAD, Range, copy, delete, and paginated listings.
import hashlib
import json
import os
import subprocess
import sys
import time
import urllib.parse
import uuid

import pytest
import requests

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.path.join(ROOT, os.environ.get("PIXPLANE_BUILD", "build"))
PRESIGN = os.path.join(BUILD, "tools", "presign")
S3OP = os.path.join(BUILD, "tools", "s3op")
MIB = 1024 * 1024
NOT_FOUND = 3  # s3op's exit status for S3_NOTFOUND

if not os.environ.get("S3_ENDPOINT"):
    pytest.skip("S3_ENDPOINT is not set: source minio-dev/run/env (minio-dev/up starts radosgw)",
                allow_module_level=True)

ENDPOINT = os.environ["S3_ENDPOINT"]
BUCKET = os.environ.get("S3_BUCKET", "pixplane")
REGION = os.environ.get("S3_REGION", "us-east-1")
AK = os.environ.get("S3_ACCESS_KEY", "")
SK = os.environ.get("S3_SECRET_KEY", "")
PREFIX = "test-s3-%s/" % uuid.uuid4().hex[:10]

# Keys that need care in paths and signatures.
ODD_KEYS = ["with space.jpg", "ünïcødé/照片 1.heic", "plus+sign", "tilde~x", "eq=uals",
            "deep/a/b/c/", "amp&lt<gt>", "pct%41", "\U0001F4F7"]


@pytest.fixture(scope="module", autouse=True)
def tools_built():
    for t in (PRESIGN, S3OP):
        if not os.access(t, os.X_OK):
            pytest.fail("%s is not built (make %s)" % (t, os.path.relpath(t, ROOT)))


@pytest.fixture(scope="module")
def boto():
    import boto3
    from botocore.config import Config

    return boto3.client("s3", endpoint_url=ENDPOINT, region_name=REGION, aws_access_key_id=AK,
                        aws_secret_access_key=SK,
                        config=Config(s3={"addressing_style": "path"},
                                      retries={"max_attempts": 2}))


@pytest.fixture(scope="module", autouse=True)
def cleanup(boto):
    yield
    for page in boto.get_paginator("list_multipart_uploads").paginate(Bucket=BUCKET,
                                                                      Prefix=PREFIX):
        for u in page.get("Uploads", []):
            boto.abort_multipart_upload(Bucket=BUCKET, Key=u["Key"], UploadId=u["UploadId"])
    for page in boto.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=PREFIX):
        for o in page.get("Contents", []):
            boto.delete_object(Bucket=BUCKET, Key=o["Key"])


def s3op(*args, data=None, env=None, ok=(0,)):
    e = dict(os.environ)
    e.update(env or {})
    r = subprocess.run([S3OP] + [str(a) for a in args], input=data, capture_output=True, env=e,
                       timeout=300)
    assert r.returncode in ok, "s3op %s -> %d: %s" % (args, r.returncode, r.stderr.decode())
    # Under `make asan` an expected failure status must not hide a sanitizer report.
    assert b"Sanitizer" not in r.stderr and b"runtime error:" not in r.stderr, r.stderr.decode()
    return r


def s3op_json(*args, **kw):
    return [json.loads(line) for line in s3op(*args, **kw).stdout.decode().splitlines()]


def presign(method, key, when=None, expires=300, query=(), secret=SK, base=ENDPOINT):
    cmd = [PRESIGN, "--access", AK, "--secret", secret, "--region", REGION, "--base", base,
           "--bucket", BUCKET, "--path-style", "1", "--method", method, "--key", key,
           "--time", str(int(time.time()) if when is None else when), "--expires", str(expires)]
    for k, v in query:
        cmd += ["--query", "%s=%s" % (k, v)]
    return subprocess.check_output(cmd, text=True).strip()


def get_bytes(boto, key):
    return boto.get_object(Bucket=BUCKET, Key=key)["Body"].read()


def exists(boto, key):
    try:
        boto.head_object(Bucket=BUCKET, Key=key)
        return True
    except boto.exceptions.ClientError as e:
        if e.response["Error"]["Code"] in ("404", "NoSuchKey", "NotFound"):
            return False
        raise


def with_query(url, **changes):
    """url with some query parameters replaced (values unencoded)."""
    parts = urllib.parse.urlsplit(url)
    q = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    q = [(k, changes.get(k, v)) for k, v in q]
    return urllib.parse.urlunsplit(parts._replace(
        query=urllib.parse.urlencode(q, quote_via=urllib.parse.quote, safe="~")))


# ---- presigned URLs


def test_presigned_put_and_get(boto):
    key = PREFIX + "presigned/put me.bin"
    data = os.urandom(100_000)
    r = requests.put(presign("PUT", key), data=data, timeout=30)
    assert r.status_code == 200, r.text
    assert get_bytes(boto, key) == data
    r = requests.get(presign("GET", key), timeout=30)
    assert r.status_code == 200 and r.content == data
    assert r.headers["ETag"] == boto.head_object(Bucket=BUCKET, Key=key)["ETag"]


@pytest.mark.parametrize("key", ODD_KEYS)
def test_odd_keys_roundtrip(boto, key):
    """Our path encoding names the same object boto3 does, both ways."""
    key = PREFIX + "odd/" + key
    data = key.encode() * 3
    r = requests.put(presign("PUT", key), data=data, timeout=30)
    assert r.status_code == 200, r.text
    assert get_bytes(boto, key) == data
    head = s3op_json("head", key)[0]
    assert head["size"] == len(data)
    assert head["etag"] == '"%s"' % hashlib.md5(data).hexdigest()
    assert s3op("get", key).stdout == data
    assert key in [o["key"] for o in s3op_json("ls", PREFIX + "odd/")]
    s3op("rm", key)
    assert not exists(boto, key)


def test_tampered_expired_and_wrong_method_urls_are_refused(boto):
    key = PREFIX + "presigned/guarded.bin"
    data = b"x" * 1000
    url = presign("PUT", key, expires=300)
    sig = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)["X-Amz-Signature"][0]
    flipped = sig[:-1] + ("0" if sig[-1] != "0" else "1")
    other_key = url.replace(urllib.parse.quote(key.split("/")[-1]), "other.bin", 1)
    assert other_key != url
    refused = {
        "signature": with_query(url, **{"X-Amz-Signature": flipped}),
        "key": other_key,
        "expires": with_query(url, **{"X-Amz-Expires": "3600"}),
        "expired": presign("PUT", key, when=int(time.time()) - 120, expires=60),
        "secret": presign("PUT", key, secret=SK + "x"),
    }
    for what, bad in refused.items():
        r = requests.put(bad, data=data, timeout=30)
        assert r.status_code == 403, (what, r.status_code, r.text[:300])
    assert not exists(boto, key) and not exists(boto, PREFIX + "presigned/other.bin")
    # another method with a PUT URL, and PUT with a GET URL
    assert requests.put(url, data=data, timeout=30).status_code == 200
    for method in ("GET", "DELETE", "HEAD"):
        assert requests.request(method, url, timeout=30).status_code == 403, method
    assert requests.put(presign("GET", key), data=b"y", timeout=30).status_code == 403
    assert get_bytes(boto, key) == data


def test_presign_get_response_overrides_and_public_endpoint(boto):
    key = PREFIX + "presigned/photo.jpg"
    boto.put_object(Bucket=BUCKET, Key=key, Body=b"\xff\xd8jpeg")
    # The public endpoint is another name for the same server: the URL is signed for it.
    public = ENDPOINT.replace("127.0.0.1", "localhost")
    url = s3op("--response-content-type", "image/jpeg", "--response-content-disposition",
               'attachment; filename="a b.jpg"', "presign", "get", key,
               env={"S3_PUBLIC_ENDPOINT": public}).stdout.decode().strip()
    assert url.startswith(public + "/")
    r = requests.get(url, timeout=30)
    assert r.status_code == 200 and r.content == b"\xff\xd8jpeg"
    assert r.headers["Content-Type"] == "image/jpeg"
    assert r.headers["Content-Disposition"] == 'attachment; filename="a b.jpg"'


# ---- multipart


def part_url(key, upload_id, n, length):
    return s3op("presign", "part", key, upload_id, n, length).stdout.decode().strip()


def put_part(key, upload_id, n, body):
    url = part_url(key, upload_id, n, len(body))
    q = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)
    assert q["partNumber"] == [str(n)] and q["uploadId"] == [upload_id]
    r = requests.put(url, data=body, timeout=120)
    assert r.status_code == 200, r.text
    return r.headers["ETag"]


def test_part_url_signs_its_length(boto):
    """A part URL carries the part's length among its signed headers: storage refuses a
    body of any other length (403) and keeps nothing of it; the exact length goes through,
    and a second PUT on the same URL replaces the part (storage cannot grow by reuse)."""
    key = PREFIX + "multipart/exact length.bin"
    upload_id = s3op("create", key).stdout.decode().strip()
    try:
        url = part_url(key, upload_id, 1, 1000)
        q = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)
        assert q["X-Amz-SignedHeaders"] == ["content-length;host"]
        for size in (999, 1001, 10 * MIB, 0):
            r = requests.put(url, data=os.urandom(size), timeout=60)
            assert r.status_code == 403, (size, r.status_code, r.text[:200])
        assert boto.list_parts(Bucket=BUCKET, Key=key, UploadId=upload_id).get("Parts", []) == []
        for _ in range(2):
            r = requests.put(url, data=os.urandom(1000), timeout=60)
            assert r.status_code == 200, r.text
        parts = boto.list_parts(Bucket=BUCKET, Key=key, UploadId=upload_id)["Parts"]
        assert [(p["PartNumber"], p["Size"]) for p in parts] == [(1, 1000)]
    finally:
        boto.abort_multipart_upload(Bucket=BUCKET, Key=key, UploadId=upload_id)


def test_multipart_cycle(boto):
    key = PREFIX + "multipart/big file ü.bin"
    sizes = [5 * MIB, 5 * MIB + 17, 123_457]
    parts = [os.urandom(s) for s in sizes]
    upload_id = s3op("--content-type", "application/x-test", "create", key).stdout.decode().strip()
    assert upload_id
    etags = [put_part(key, upload_id, n, body) for n, body in enumerate(parts, 1)]

    for page in ("1000", "2", "1"):  # one page, two pages, three pages
        listed = s3op_json("--page-size", page, "parts", key, upload_id)
        assert [(p["part"], p["size"], p["etag"]) for p in listed] == \
            list(zip([1, 2, 3], sizes, etags))
    theirs = boto.list_parts(Bucket=BUCKET, Key=key, UploadId=upload_id)["Parts"]
    assert [p["ETag"] for p in theirs] == etags

    s3op("complete", key, upload_id)
    data = b"".join(parts)
    assert s3op("get", key).stdout == data
    got = s3op_json("sha256", key)[0]
    assert got["sha256"] == hashlib.sha256(data).hexdigest() and got["size"] == len(data)
    head = boto.head_object(Bucket=BUCKET, Key=key)
    assert head["ContentLength"] == len(data) and head["ETag"].endswith('-3"')
    assert head["ContentType"] == "application/x-test"
    assert s3op_json("head", key)[0]["etag"] == head["ETag"]
    # the upload is gone once completed
    s3op("parts", key, upload_id, ok=(NOT_FOUND,))


def test_abort_then_not_found(boto):
    key = PREFIX + "multipart/aborted.bin"
    upload_id = s3op("create", key).stdout.decode().strip()
    put_part(key, upload_id, 1, b"a" * 1000)
    assert len(s3op_json("parts", key, upload_id)) == 1
    etag = s3op_json("parts", key, upload_id)[0]["etag"]
    s3op("abort", key, upload_id)
    # AWS says NoSuchUpload, radosgw NoSuchKey: both are "not found".
    r = s3op("parts", key, upload_id, ok=(NOT_FOUND,))
    assert b"404" in r.stderr
    s3op("abort", key, upload_id, ok=(NOT_FOUND,))
    s3op("abort", key, "2~no-such-upload-id", ok=(NOT_FOUND,))
    # Complete of an aborted upload: AWS 404 NoSuchUpload, radosgw 500 InternalError.
    s3op("complete", key, upload_id, "1=%s" % etag, ok=(NOT_FOUND,))
    assert all(u["UploadId"] != upload_id for u in
               boto.list_multipart_uploads(Bucket=BUCKET, Prefix=key).get("Uploads", []))
    assert not exists(boto, key)


def test_complete_with_wrong_etag_fails(boto):
    key = PREFIX + "multipart/wrong-etag.bin"
    upload_id = s3op("create", key).stdout.decode().strip()
    etag = put_part(key, upload_id, 1, b"b" * 1000)
    r = s3op("complete", key, upload_id, '1="%s"' % ("0" * 32), ok=(1,))
    assert b"InvalidPart" in r.stderr
    assert not exists(boto, key)
    s3op("complete", key, upload_id, "1=%s" % etag)
    assert get_bytes(boto, key) == b"b" * 1000


def test_list_multipart_uploads_paginated(boto):
    prefix = PREFIX + "uploads/"
    keys = [prefix + k for k in ("a", "a", "b c", "d/ü", "e+f")]
    ids = [s3op("create", k).stdout.decode().strip() for k in keys]
    want = sorted(zip(keys, ids))
    for page in ("1000", "2", "1"):
        got = s3op_json("--page-size", page, "uploads", prefix)
        assert sorted((u["key"], u["upload_id"]) for u in got) == want, page
        assert all(abs(u["initiated"] - time.time()) < 600 for u in got)
    theirs = boto.list_multipart_uploads(Bucket=BUCKET, Prefix=prefix)["Uploads"]
    assert sorted((u["Key"], u["UploadId"]) for u in theirs) == want
    for k, i in zip(keys, ids):
        s3op("abort", k, i)
    assert s3op_json("uploads", prefix) == []


# ---- objects


def test_head_range_copy_delete(boto):
    key, dst = PREFIX + "obj/source one.bin", PREFIX + "obj/copy+of=one.bin"
    data = os.urandom(300_000)
    s3op("--content-type", "application/octet-stream", "put", key, data=data)
    head = s3op_json("head", key)[0]
    theirs = boto.head_object(Bucket=BUCKET, Key=key)
    assert head["size"] == len(data) and head["etag"] == theirs["ETag"]
    assert head["etag"] == '"%s"' % hashlib.md5(data).hexdigest()
    assert abs(head["last_modified"] - theirs["LastModified"].timestamp()) < 1

    assert s3op("get", key, 10, 100).stdout == data[10:110]
    assert s3op("get", key, 299_990).stdout == data[299_990:]
    assert s3op("get", key, 0, 1).stdout == data[:1]
    assert s3op("get", key, 299_000, 5000).stdout == data[299_000:]  # clipped at the end
    got = s3op_json("sha256", key, 1000, 2000)[0]
    assert got["sha256"] == hashlib.sha256(data[1000:3000]).hexdigest()

    s3op("cp", key, dst)
    assert get_bytes(boto, dst) == data
    s3op("rm", key)
    assert not exists(boto, key)
    s3op("rm", key)  # deleting a missing key is fine
    s3op("head", key, ok=(NOT_FOUND,))
    s3op("get", key, ok=(NOT_FOUND,))
    s3op("cp", key, dst, ok=(NOT_FOUND,))
    assert get_bytes(boto, dst) == data


def test_list_objects_paginated(boto):
    prefix = PREFIX + "list/"
    names = ["a", "b c", "d+e", "f&g", "h<i>", "ü", "z/deep/key"]
    for i, n in enumerate(names):
        boto.put_object(Bucket=BUCKET, Key=prefix + n, Body=b"x" * i)
    for page in ("1000", "3", "1"):
        got = s3op_json("--page-size", page, "ls", prefix)
        assert [(o["key"], o["size"]) for o in got] == \
            sorted((prefix + n, i) for i, n in enumerate(names)), page
    theirs = boto.list_objects_v2(Bucket=BUCKET, Prefix=prefix)["Contents"]
    assert [o["Key"] for o in theirs] == [o["key"] for o in got]
    assert [int(o["LastModified"].timestamp()) for o in theirs] == \
        [o["last_modified"] for o in got]
    assert s3op_json("ls", prefix + "nothing-here/") == []


def test_streaming_get_does_not_buffer_the_object(boto):
    """sha256 of a 64 MiB object in a process that never holds it: max RSS far below."""
    key = PREFIX + "stream/big.bin"
    data = os.urandom(64 * MIB)
    boto.put_object(Bucket=BUCKET, Key=key, Body=data)
    probe = ("import json, resource, subprocess, sys\n"
             "out = subprocess.run(sys.argv[1:], check=True, capture_output=True).stdout\n"
             "rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss\n"
             "print(json.dumps({'out': json.loads(out), 'rss_kib': rss}))\n")
    r = subprocess.run([sys.executable, "-c", probe, S3OP, "sha256", key], capture_output=True,
                       text=True, check=True, timeout=300)
    doc = json.loads(r.stdout)
    assert doc["out"]["sha256"] == hashlib.sha256(data).hexdigest()
    assert doc["out"]["size"] == len(data)
    assert doc["rss_kib"] < 40 * 1024, doc


def test_bucket_and_bad_credentials():
    s3op("bucket")
    r = s3op("ls", PREFIX, env={"S3_SECRET_KEY": SK + "x"}, ok=(1,))
    assert b"403" in r.stderr and b"SignatureDoesNotMatch" in r.stderr
    r = s3op("head", "k", env={"S3_BUCKET": "no-such-bucket-" + uuid.uuid4().hex[:8]},
             ok=(NOT_FOUND, 1))
    r = s3op("ls", "", env={"S3_BUCKET": "no-such-bucket-" + uuid.uuid4().hex[:8]}, ok=(1,))
    assert b"NoSuchBucket" in r.stderr
