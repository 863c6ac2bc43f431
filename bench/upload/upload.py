# Driver for bench/upload/run: pixctl's uploads against peers in the same run, on the full
# stack (its own API with the default verification threshold, the stack's worker, a
# reconciler daemon). Modes: `aws` (1 GiB: pixctl vs `aws s3 cp` with 8 MiB parts, without
# and with --wait), `photos` (1 MiB unique files from 16 clients for 20 s: the API's whole
# flow vs raw presigned PUTs), `modes` (pixctl --hash first vs stream on 1 GiB, page cache
# warm and cold). Prints JSON lines; every loop is bounded in count and time.
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "api"))
import bench  # noqa: E402  (start_api, start_reconciler, stop_all, token, emit)

import boto3  # noqa: E402
from botocore.config import Config  # noqa: E402

BUILD = sys.argv[1]
MIB = 1 << 20
RUNS = int(os.environ.get("BENCH_RUNS", "3"))
BIG = int(os.environ.get("BENCH_BIG_MIB", "1024")) * MIB
SEED_RATE = 200  # the seed's fleet average, uploads/s


def big_file(path):
    if not os.path.exists(path) or os.path.getsize(path) != BIG:
        with open(path, "wb") as f:
            for _ in range(BIG // (64 * MIB)):
                f.write(os.urandom(64 * MIB))
    return path


def restamp(path):
    """New content for each run (no dedup, no proof of possession): new first bytes."""
    with open(path, "r+b") as f:
        f.write(os.urandom(64))


def drop_caches():
    subprocess.run(["sync"], check=True)
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("3\n")


def pixctl(url, tok, path, *flags):
    env = dict(os.environ, PIXPLANE_API_URL=url, PIXPLANE_TOKEN=tok,
               PIXPLANE_STATE_DIR=tempfile.mkdtemp(prefix="pixbench-state-"))
    t0 = time.perf_counter()
    p = subprocess.run([os.path.join(BUILD, "pixctl"), "upload", "--json", "-q", *flags, path],
                       env=env, capture_output=True, text=True, timeout=1800)
    secs = time.perf_counter() - t0
    assert p.returncode == 0, p.stderr[-2000:]
    return secs, json.loads(p.stdout)


def aws_cp(path, key, cfg):
    env = dict(os.environ, AWS_CONFIG_FILE=cfg, AWS_ACCESS_KEY_ID=os.environ["S3_ACCESS_KEY"],
               AWS_SECRET_ACCESS_KEY=os.environ["S3_SECRET_KEY"],
               AWS_DEFAULT_REGION=os.environ.get("S3_REGION", "us-east-1"))
    t0 = time.perf_counter()
    subprocess.run(["/usr/bin/aws", "--endpoint-url", os.environ["S3_ENDPOINT"], "s3", "cp",
                    "--only-show-errors", path, "s3://%s/%s" % (os.environ["S3_BUCKET"], key)],
                   env=env, check=True, timeout=1800)
    return time.perf_counter() - t0


def aws_config():
    fd, cfg = tempfile.mkstemp(prefix="pixbench-aws-")
    os.close(fd)
    env = dict(os.environ, AWS_CONFIG_FILE=cfg)
    subprocess.run(["/usr/bin/aws", "configure", "set", "default.s3.multipart_chunksize", "8MB"],
                   env=env, check=True)
    return cfg


def bench_aws(url):
    path, cfg, tok = big_file("/tmp/pixbench-1g.jpg"), aws_config(), bench.token("bench-aws")
    t = {"pixctl": [], "pixctl_wait": [], "aws": []}
    for i in range(RUNS):
        for kind in ("pixctl", "aws", "pixctl_wait"):
            restamp(path)
            if kind == "aws":
                t[kind].append(aws_cp(path, "bench/aws-%d-%d" % (os.getpid(), i), cfg))
                continue
            secs, doc = pixctl(url, tok, path, *(["--wait"] if kind == "pixctl_wait" else []))
            t[kind].append(secs)
            bench.emit(bench="upload_1g_run", kind=kind, seconds=round(secs, 2),
                       state=doc.get("state"), hash=doc.get("hash"))
        bench.emit(bench="upload_1g_run", kind="aws", seconds=round(t["aws"][-1], 2))
    med = {k: statistics.median(v) for k, v in t.items()}
    bench.emit(bench="upload_1g_vs_aws", runs=RUNS, size_mib=BIG // MIB,
               median_s={k: round(v, 2) for k, v in med.items()},
               ratio_without_wait=round(med["aws"] / med["pixctl"], 2),
               ratio_with_wait=round(med["aws"] / med["pixctl_wait"], 2))
    os.unlink(cfg)


def photoload():
    out = os.path.join(BUILD, "bench", "upload", "photoload")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    subprocess.run(["cc", "-std=gnu11", "-O2", "-Wall", "-Wextra", "-Werror",
                    "-Wno-unused-parameter", "-D_GNU_SOURCE", "-Icommon", "-o", out,
                    "bench/upload/photoload.c", os.path.join(BUILD, "libpixcommon.a"),
                    "-lcjson", "-lcurl", "-lssl", "-lcrypto", "-lpthread"], check=True)
    return out


def presigned(n, size):
    s3 = boto3.client("s3", endpoint_url=os.environ["S3_ENDPOINT"],
                      aws_access_key_id=os.environ["S3_ACCESS_KEY"],
                      aws_secret_access_key=os.environ["S3_SECRET_KEY"],
                      region_name=os.environ.get("S3_REGION", "us-east-1"),
                      config=Config(signature_version="s3v4", s3={"addressing_style": "path"}))
    return "".join(s3.generate_presigned_url(
        "put_object", Params={"Bucket": os.environ["S3_BUCKET"],
                              "Key": "bench/raw-%d-%d" % (os.getpid(), i)},
        ExpiresIn=3600) + "\n" for i in range(n))


def bench_photos(url, clients=16, secs=20, size=MIB):
    exe, urls = photoload(), presigned(40000, size)
    secs = float(os.environ.get("BENCH_PHOTO_SECS", secs))
    res = {"flow": [], "raw": []}
    for _ in range(RUNS):
        for kind in ("flow", "raw"):
            p = subprocess.run([exe, url, kind, str(clients), str(size), "%g" % secs],
                               input=urls if kind == "raw" else "", capture_output=True,
                               text=True, timeout=secs + 120)
            assert p.returncode == 0, p.stderr[-2000:]
            doc = json.loads(p.stdout)
            res[kind].append(doc["uploads"] / doc["seconds"])
            bench.emit(bench="photos_run", kind=kind, **doc)
    flow, raw = statistics.median(res["flow"]), statistics.median(res["raw"])
    bench.emit(bench="photos_1mib", clients=clients, seconds=secs, runs=RUNS,
               flow_per_s=round(flow, 1), raw_put_per_s=round(raw, 1),
               ratio=round(flow / raw, 2) if raw else None,
               api_instances_for_seed_average=round(SEED_RATE / flow, 1) if flow else None)


def bench_modes(url):
    path, tok = big_file("/tmp/pixbench-1g.jpg"), bench.token("bench-modes")
    t = {}
    for _ in range(RUNS):
        for cache in ("warm", "cold"):
            for mode in ("first", "stream"):
                restamp(path)
                if cache == "cold":
                    drop_caches()
                else:
                    subprocess.run(["cat", path], stdout=subprocess.DEVNULL, check=True)
                secs, doc = pixctl(url, tok, path, "--hash", mode)
                commit = doc["hash_seconds"] + doc["upload_seconds"]
                t.setdefault((cache, mode), []).append((commit, secs))
                bench.emit(bench="hash_mode_run", cache=cache, mode=mode,
                           to_complete_s=round(commit, 2), total_s=round(secs, 2))
    for (cache, mode), v in sorted(t.items()):
        bench.emit(bench="hash_mode", cache=cache, mode=mode, runs=len(v),
                   median_to_complete_s=round(statistics.median(x[0] for x in v), 2),
                   median_total_s=round(statistics.median(x[1] for x in v), 2))


def main():
    modes = sys.argv[2:] or ["aws", "photos"]
    # the server's default threshold (bench.start_api's own 4GiB times verification itself)
    api, url = bench.start_api({"PIXPLANE_VERIFY_ASYNC_THRESHOLD":
                                os.environ.get("BENCH_VERIFY_ASYNC_THRESHOLD", "8MiB")})
    rec = bench.start_reconciler()
    try:
        for m in modes:
            {"aws": bench_aws, "photos": bench_photos, "modes": bench_modes}[m](url)
    finally:
        bench.stop_all(api, rec)


if __name__ == "__main__":
    main()
