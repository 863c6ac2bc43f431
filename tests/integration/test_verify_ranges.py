# Verification at storage speed (issue 15): `s3op verify` reads an object through
# s3_get_ranges (parallel signed ranged GETs, delivered in order) as the server's verification
# does. The same SHA-256 as one streamed GET and as hashlib, for sizes the ranges do not
# divide and for more streams than ranges; a wrong expected size is an error, never a hash.
import json
import os
import subprocess
import uuid

import pytest

from conftest import BUILD, MIB, need_env, put_repeated

S3OP = os.path.join(BUILD, "tools", "s3op")
GIB = 1024 * MIB
NOT_FOUND = 3  # s3op's exit status for S3_NOTFOUND


def s3op(*args, timeout=180):
    return subprocess.run([S3OP] + [str(a) for a in args], capture_output=True, timeout=timeout)


def sha(*args):
    r = s3op(*args)
    assert r.returncode == 0, "s3op %s -> %d: %s" % (args, r.returncode, r.stderr.decode())
    return json.loads(r.stdout)


@pytest.fixture(scope="module")
def objects(s3):
    """key, size and sha256 of each object under test (1 GiB + 7 is made of a repeated MiB)."""
    need_env("S3_ENDPOINT", "S3_BUCKET")
    prefix = "test-verify-%s/" % uuid.uuid4().hex[:8]
    made = {}
    for size in (0, 1, 5 * MIB + 1, GIB + 7):
        key = prefix + str(size)
        made[size] = (key, put_repeated(s3, key, size, seed=prefix.encode()))
    yield made
    for key, _ in made.values():
        s3.delete_object(Bucket=os.environ["S3_BUCKET"], Key=key)


# (size, streams, range): ranges that do not divide the size, streams > ranges, one stream.
CASES = [
    (0, 4, 8 * MIB),
    (1, 1, 1),
    (1, 4, 3),  # one range, four streams
    (5 * MIB + 1, 1, MIB),  # six ranges, one stream, the last one byte
    (5 * MIB + 1, 3, MIB + 3),
    (5 * MIB + 1, 8, 2 * MIB),  # three ranges, eight streams
    (5 * MIB + 1, 6, 777777),
    (GIB + 7, 0, 0),  # the built-in defaults (the last range is 7 bytes)
    (GIB + 7, 6, 5 * MIB + 1),
    (GIB + 7, 8, 16 * MIB - 1),
]


@pytest.mark.parametrize("size,streams,rng", CASES)
def test_parallel_hash_matches(objects, size, streams, rng):
    key, want = objects[size]
    args = ("verify", key, streams, rng) if streams else ("verify", key)
    got = sha(*args)
    assert got["sha256"] == want and got["size"] == size


@pytest.mark.parametrize("size", [1, 5 * MIB + 1, GIB + 7])
def test_single_stream_matches(objects, size):
    """One streamed GET (the old path) agrees with hashlib, hence with the parallel read."""
    key, want = objects[size]
    assert sha("sha256", key)["sha256"] == want


@pytest.mark.parametrize("size,claimed,streams,rng", [
    (5 * MIB + 1, 5 * MIB, 4, MIB),  # the object is longer than claimed
    (5 * MIB + 1, 5 * MIB + 2, 4, MIB),  # shorter: its last range is past the end
    (5 * MIB + 1, 5 * MIB + 2, 1, 8 * MIB),  # shorter, one range
    (5 * MIB + 1, 1, 2, MIB),
    (1, 0, 4, MIB),  # HEAD says it is not empty
    (0, 1, 4, MIB),  # empty, claimed 1 byte
    (GIB + 7, GIB + 8, 4, 8 * MIB),
    (GIB + 7, GIB + 6, 4, 8 * MIB),
])
def test_wrong_size_is_an_error(objects, size, claimed, streams, rng):
    key, _ = objects[size]
    r = s3op("verify", key, streams, rng, claimed)
    assert r.returncode == 1 and not r.stdout, (r.returncode, r.stdout, r.stderr)
    assert b"not %d" % claimed in r.stderr or b"shorter than" in r.stderr, r.stderr


def test_missing_object(objects):
    key, _ = objects[1]
    assert s3op("verify", key + "-gone", 4, MIB, 10).returncode == NOT_FOUND
    assert s3op("verify", key + "-gone").returncode == NOT_FOUND
