# Presigned URLs from our SigV4 code (tests/tools/presign) against botocore's
# generate_presigned_url at a fixed clock, with botocore's pure-Python signer and, when
# python3-awscrt is installed, the CRT signer botocore prefers: same URL, same signature.
import contextlib
import datetime
import functools
import importlib
import os
import subprocess
import urllib.parse
from unittest import mock

import pytest

botocore = pytest.importorskip("botocore")
import botocore.auth  # noqa: E402
import botocore.session  # noqa: E402
from botocore.config import Config  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.path.join(ROOT, os.environ.get("PIXPLANE_BUILD", "build"))
PRESIGN = os.path.join(BUILD, "tools", "presign")

AK = "AKIAIOSFODNN7EXAMPLE"
SK = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"

KEYS = [
    "test.txt",
    "a b.jpg",
    "dir/sub/ünïcødé 照片.jpg",
    "a+b=c~d",
    "x/y/z/",
    "two  spaces and\ttab",
    "!$&'()*,;:@",
    "?#[]%25",
    "emoji/\U0001F4F7.heic",
    "uploads/2026/02/05/0b5c7f0e-2c5b-4f59-9d36-2a8f1c1e9d11",
]

# (endpoint, path style, region)
ENDPOINTS = [
    ("http://127.0.0.1:7480", True, "us-east-1"),
    ("http://localhost:9000", True, "us-east-1"),
    ("https://s3.eu-west-1.amazonaws.com", True, "eu-west-1"),
    ("https://s3.amazonaws.com", False, "us-east-1"),
    ("https://s3.eu-west-1.amazonaws.com", False, "eu-west-1"),
    ("http://s3.example.test:9000", False, "us-east-1"),
]

WHEN = [1369353600, 1770285600, 1770335999]  # 2013-05-24T00:00:00Z, 2026-02-05 10:00, 23:59:59


def signers():
    out = [pytest.param(botocore.auth.S3SigV4QueryAuth, id="python")]
    try:
        from botocore.crt.auth import CrtS3SigV4QueryAuth
        out.append(pytest.param(CrtS3SigV4QueryAuth, id="crt"))
    except ImportError:
        pass
    return out


@functools.lru_cache(maxsize=None)
def botocore_client(endpoint, path_style, region):
    return botocore.session.get_session().create_client(
        "s3", endpoint_url=endpoint, region_name=region, aws_access_key_id=AK,
        aws_secret_access_key=SK,
        config=Config(signature_version="s3v4",
                      s3={"addressing_style": "path" if path_style else "virtual"}))


def botocore_url(signer, endpoint, path_style, region, op, params, when, expires):
    """generate_presigned_url with the given signer class and a frozen clock."""
    client = botocore_client(endpoint, path_style, region)
    frozen = datetime.datetime.utcfromtimestamp(when)
    with contextlib.ExitStack() as stack:
        stack.enter_context(mock.patch.dict(botocore.auth.AUTH_TYPE_MAPS, {"s3v4-query": signer}))
        for mod in ("botocore.auth", "botocore.crt.auth"):
            try:
                importlib.import_module(mod)
            except ImportError:
                continue
            m = stack.enter_context(mock.patch(mod + ".datetime"))
            m.datetime.utcnow.return_value = frozen
            m.timezone = datetime.timezone
        return client.generate_presigned_url(op, Params=params, ExpiresIn=expires)


def our_url(endpoint, path_style, region, method, bucket, key, when, expires, query=()):
    cmd = [PRESIGN, "--access", AK, "--secret", SK, "--region", region, "--base", endpoint,
           "--method", method, "--key", key, "--time", str(when), "--expires", str(expires)]
    if bucket is not None:
        cmd += ["--bucket", bucket, "--path-style", "1" if path_style else "0"]
    for k, v in query:
        cmd += ["--query", "%s=%s" % (k, v)]
    return subprocess.check_output(cmd, text=True).strip()


def split(url):
    """(scheme://host/path, sorted raw query items): only the order of parameters may differ."""
    base, _, query = url.partition("?")
    return base, sorted(query.split("&"))


def signature(url):
    return urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)["X-Amz-Signature"][0]


@pytest.fixture(scope="module", autouse=True)
def presign_built():
    if not os.access(PRESIGN, os.X_OK):
        pytest.fail("%s is not built (make %s)" % (PRESIGN, os.path.relpath(PRESIGN, ROOT)))


def assert_same(ours, theirs):
    assert split(ours) == split(theirs), "\nours:     %s\nbotocore: %s" % (ours, theirs)
    assert signature(ours) == signature(theirs)


def test_aws_documented_example():
    """AWS's presigned GET example, through the CLI's raw (no bucket) mode."""
    url = our_url("https://examplebucket.s3.amazonaws.com", True, "us-east-1", "GET", None,
                  "test.txt", 1369353600, 86400)
    assert signature(url) == "aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"


@pytest.mark.parametrize("signer", signers())
@pytest.mark.parametrize("endpoint,path_style,region", ENDPOINTS)
@pytest.mark.parametrize("key", KEYS)
def test_get_and_put(signer, endpoint, path_style, region, key):
    for i, (op, method) in enumerate([("get_object", "GET"), ("put_object", "PUT")]):
        when, expires = WHEN[i % len(WHEN)], [900, 604800][i]
        theirs = botocore_url(signer, endpoint, path_style, region, op,
                              {"Bucket": "pixplane", "Key": key}, when, expires)
        ours = our_url(endpoint, path_style, region, method, "pixplane", key, when, expires)
        assert_same(ours, theirs)


@pytest.mark.parametrize("signer", signers())
@pytest.mark.parametrize("endpoint,path_style,region", ENDPOINTS)
def test_upload_part(signer, endpoint, path_style, region):
    for key in KEYS[:5]:
        for part, upload_id in [(1, "2~Ab_c-d.e"), (10000, "VXBsb2FkIElE+/= x~y")]:
            theirs = botocore_url(signer, endpoint, path_style, region, "upload_part",
                                  {"Bucket": "pixplane", "Key": key, "UploadId": upload_id,
                                   "PartNumber": part}, WHEN[2], 3600)
            ours = our_url(endpoint, path_style, region, "PUT", "pixplane", key, WHEN[2], 3600,
                           [("partNumber", part), ("uploadId", upload_id)])
            assert_same(ours, theirs)


@pytest.mark.parametrize("signer", signers())
@pytest.mark.parametrize("endpoint,path_style,region", ENDPOINTS[:1] + ENDPOINTS[3:4])
def test_get_response_overrides(signer, endpoint, path_style, region):
    params = {"Bucket": "pixplane", "Key": "a b/ü.jpg", "ResponseContentType": "image/jpeg",
              "ResponseContentDisposition": 'attachment; filename="x y+z.jpg"'}
    theirs = botocore_url(signer, endpoint, path_style, region, "get_object", params,
                          WHEN[1], 1)
    ours = our_url(endpoint, path_style, region, "GET", "pixplane", "a b/ü.jpg", WHEN[1], 1,
                   [("response-content-type", "image/jpeg"),
                    ("response-content-disposition", 'attachment; filename="x y+z.jpg"')])
    assert_same(ours, theirs)


@pytest.mark.parametrize("signer", signers())
def test_default_port_dropped(signer):
    """:80 for http and :443 for https are not part of the signed Host (nor of our URL)."""
    for endpoint, bare in [("http://127.0.0.1:80", "http://127.0.0.1"),
                           ("https://s3.amazonaws.com:443", "https://s3.amazonaws.com")]:
        theirs = botocore_url(signer, endpoint, True, "us-east-1", "get_object",
                              {"Bucket": "b", "Key": "k"}, WHEN[0], 60)
        ours = our_url(endpoint, True, "us-east-1", "GET", "b", "k", WHEN[0], 60)
        assert ours.startswith(bare + "/b/k?")
        assert signature(ours) == signature(theirs)


def test_cli_rejects_bad_expiry():
    for expires in (0, 604801):
        r = subprocess.run([PRESIGN, "--access", AK, "--secret", SK, "--base", "http://h",
                            "--key", "k", "--expires", str(expires)], capture_output=True)
        assert r.returncode != 0 and b"expires" in r.stderr
