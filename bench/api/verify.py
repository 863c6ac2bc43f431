# Driver for `bench/api/run verify-read [sweep] [compare]`: how fast the server's verification
# read (s3_get_ranges through `s3op verify`) hashes one object of 1 GiB + 7 on the stack's
# radosgw. sweep: streams x range size (the table the PIXPLANE_VERIFY_* defaults were chosen
# from); compare: the defaults vs `curl -s <presigned GET> | sha256sum`, interleaved, with the
# storage's parallel ceiling (4 ranged curls to /dev/null at once) for scale. Medians; JSON
# lines. Every loop is bounded in count.
import json
import os
import statistics
import subprocess
import sys
import time

ROOT = os.getcwd()
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
from conftest import MIB, put_repeated  # noqa: E402

BUILD = sys.argv[1]
S3OP = os.path.join(BUILD, "tools", "s3op")
SIZE = 1024 * MIB + 7
KEY = "bench/verify-read-%d" % os.getpid()
STREAMS = [1, 2, 4, 6, 8]
RANGES_MIB = [4, 8, 16, 32]
SWEEP_REPS = int(os.environ.get("VERIFY_SWEEP_REPS", "2"))
RUNS = int(os.environ.get("VERIFY_RUNS", "5"))


def emit(**kw):
    print(json.dumps(kw), flush=True)


def s3_client():
    import boto3
    from botocore.config import Config
    return boto3.client(
        "s3", endpoint_url=os.environ["S3_ENDPOINT"], region_name=os.environ["S3_REGION"],
        aws_access_key_id=os.environ["S3_ACCESS_KEY"],
        aws_secret_access_key=os.environ["S3_SECRET_KEY"],
        config=Config(s3={"addressing_style": "path"}))


def s3op_mib_s(want, *args):
    """MiB/s of `s3op verify KEY [STREAMS RANGE]`, timed around the whole process."""
    t0 = time.monotonic()
    out = subprocess.check_output([S3OP, "verify", KEY] + [str(a) for a in args], timeout=600)
    secs = time.monotonic() - t0
    assert json.loads(out)["sha256"] == want
    return SIZE / MIB / secs


def curl_mib_s(want):
    url = subprocess.check_output([S3OP, "presign", "get", KEY], text=True).strip()
    t0 = time.monotonic()
    out = subprocess.check_output("curl -sf '%s' | sha256sum" % url, shell=True, text=True,
                                  timeout=600)
    secs = time.monotonic() - t0
    assert out.split()[0] == want
    return SIZE / MIB / secs


def ceiling_mib_s(streams=4):
    """The storage's own parallel ceiling: `streams` curls of equal ranges to /dev/null at once
    (no hashing, no ordering)."""
    url = subprocess.check_output([S3OP, "presign", "get", KEY], text=True).strip()
    cuts = [SIZE * i // streams for i in range(streams + 1)]
    t0 = time.monotonic()
    procs = [subprocess.Popen(["curl", "-sf", "-r", "%d-%d" % (a, b - 1), "-o", "/dev/null", url])
             for a, b in zip(cuts, cuts[1:])]
    assert all(p.wait(600) == 0 for p in procs)
    return SIZE / MIB / (time.monotonic() - t0)


def sweep(want):
    """Every (streams, range) cell SWEEP_REPS times, the cells interleaved within each pass."""
    got = {}
    for _ in range(SWEEP_REPS):
        for r in RANGES_MIB:
            for s in STREAMS:
                got.setdefault((s, r), []).append(s3op_mib_s(want, s, "%dMiB" % r))
    for (s, r), v in sorted(got.items()):
        emit(bench="verify_read_sweep", streams=s, range_mib=r, mib_s=round(statistics.median(v)),
             runs=[round(x) for x in v])
    print("# verify read MiB/s (median of %d), rows: streams, columns: range MiB" % SWEEP_REPS,
          file=sys.stderr)
    print("# streams " + " ".join("%6d" % r for r in RANGES_MIB), file=sys.stderr)
    for s in STREAMS:
        print("# %7d " % s + " ".join("%6.0f" % statistics.median(got[(s, r)])
                                      for r in RANGES_MIB), file=sys.stderr)


def compare(want):
    """The defaults (no STREAMS/RANGE: PIXPLANE_VERIFY_* or built in) against curl | sha256sum,
    alternating, RUNS each."""
    env_streams = os.environ.get("PIXPLANE_VERIFY_STREAMS", "default")
    env_range = os.environ.get("PIXPLANE_VERIFY_RANGE", "default")
    ours, peer, ceiling = [], [], []
    for _ in range(RUNS):
        ours.append(s3op_mib_s(want))
        peer.append(curl_mib_s(want))
        ceiling.append(ceiling_mib_s())
    o, p, c = (statistics.median(v) for v in (ours, peer, ceiling))
    emit(bench="verify_read_vs_curl", size_bytes=SIZE, streams=env_streams, range=env_range,
         s3op_verify_mib_s=round(o), curl_sha256sum_mib_s=round(p), ratio=round(o / p, 2),
         s3op_runs=[round(x) for x in ours], curl_runs=[round(x) for x in peer],
         ceiling_4_curls_devnull_mib_s=round(c), ceiling_runs=[round(x) for x in ceiling],
         of_ceiling=round(o / c, 2))


def main():
    which = sys.argv[2:] or ["sweep", "compare"]
    s3 = s3_client()
    want = put_repeated(s3, KEY, SIZE, seed=KEY.encode())
    try:
        if "sweep" in which:
            sweep(want)
        if "compare" in which:
            compare(want)
    finally:
        s3.delete_object(Bucket=os.environ["S3_BUCKET"], Key=KEY)


if __name__ == "__main__":
    main()
