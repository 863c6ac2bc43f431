# Driver for bench/sync/twoway: `pixctl sync DIR --two-way` on a folder of BENCH_TWOWAY_FILES
# (10,000) small generated JPEGs. The library is imported first (`pixctl upload -r`), so the
# first two-way pass adopts every file (same name, same content) and uploads nothing; then a
# pass with no change at all (its time and API requests: the target is O(changes)), a pass
# with 10 changes, the one-way mirror's no-change pass, and `aws s3 sync` of the same folder
# to the same radosgw when nothing changed, as a peer. Prints JSON lines, then a report.
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "api"))
import bench  # noqa: E402  (start_api, stop_all, token, emit)

BUILD = sys.argv[1]
N = int(os.environ.get("BENCH_TWOWAY_FILES", "10000"))
AWS = "/usr/bin/aws"
REQ = re.compile(r"^pixctl: (GET|POST|PUT|PATCH|DELETE) ", re.M)


def base_jpeg(tmp):
    path = os.path.join(tmp, "base.jpg")
    subprocess.run(["convert", "-size", "96x72", "xc:gray", "+noise", "Random", "-quality", "80",
                    path], check=True, timeout=60)
    with open(path, "rb") as f:
        return f.read()


def stamped(data):
    com = b"pixbench " + os.urandom(16).hex().encode()
    return data[:2] + b"\xff\xfe" + (len(com) + 2).to_bytes(2, "big") + com + data[2:]


def make_folder(d, data):
    os.makedirs(d)
    for i in range(N):
        with open(os.path.join(d, "IMG_%05d.jpg" % i), "wb") as f:
            f.write(stamped(data))


def pixctl(env, *args, timeout=3600):
    t0 = time.perf_counter()
    p = subprocess.run([os.path.join(BUILD, "pixctl"), "-v", *args], env=env,
                       capture_output=True, text=True, timeout=timeout)
    secs = time.perf_counter() - t0
    assert p.returncode == 0, (args, p.stderr[-3000:])
    return secs, len(REQ.findall(p.stderr)), p.stdout


def aws(*args):
    env = dict(os.environ, AWS_ACCESS_KEY_ID=os.environ["S3_ACCESS_KEY"],
               AWS_SECRET_ACCESS_KEY=os.environ["S3_SECRET_KEY"],
               AWS_DEFAULT_REGION=os.environ.get("S3_REGION", "us-east-1"),
               AWS_CONFIG_FILE="/dev/null")
    t0 = time.perf_counter()
    subprocess.run([AWS, "--endpoint-url", os.environ["S3_ENDPOINT"], "s3", *args,
                    "--only-show-errors"], env=env, check=True, timeout=3600)
    return time.perf_counter() - t0


def change_ten(d):
    """5 edits, 3 renames, 2 deletions."""
    names = sorted(os.listdir(d))
    names = [n for n in names if n.endswith(".jpg")]
    for n in names[:5]:
        with open(os.path.join(d, n), "r+b") as f:
            data = f.read()
            f.seek(0)
            f.write(stamped(data[:2] + data[2 + 4 + 41:]))
    for n in names[5:8]:
        os.rename(os.path.join(d, n), os.path.join(d, "renamed-" + n))
    for n in names[8:10]:
        os.unlink(os.path.join(d, n))


def main():
    tmp = tempfile.mkdtemp(prefix="pixbench-twoway-")
    d = os.path.join(tmp, "photos")
    mirror = os.path.join(tmp, "mirror")
    api, url = bench.start_api({"PIXPLANE_VERIFY_ASYNC_THRESHOLD": "8MiB"})
    prefix = "s3://%s/bench-twoway/%s/" % (os.environ["S3_BUCKET"], uuid.uuid4().hex[:12])
    try:
        make_folder(d, base_jpeg(tmp))
        env = dict(os.environ, PIXPLANE_API_URL=url,
                   PIXPLANE_TOKEN=bench.token("bench-twoway-" + uuid.uuid4().hex[:8]),
                   PIXPLANE_STATE_DIR=os.path.join(tmp, "state"))
        env.pop("PIXPLANE_CONFIG", None)
        imp, _, _ = pixctl(env, "upload", "-r", "-q", "--json", d)
        bench.emit(bench="twoway-import", files=N, seconds=round(imp, 1))
        adopt, adopt_req, out = pixctl(env, "sync", d, "--two-way", "--json", "-q")
        summary = json.loads(out.splitlines()[-1])
        assert summary["uploaded"] == 0 and summary["files"] == N, summary
        bench.emit(bench="twoway-first-pass-adopts", seconds=round(adopt, 2), requests=adopt_req)
        runs = [pixctl(env, "sync", d, "--two-way", "--json", "-q") for _ in range(5)]
        best = min(r[0] for r in runs)
        reqs = max(r[1] for r in runs)
        bench.emit(bench="twoway-no-change", files=N, best_seconds=round(best, 3),
                   seconds=[round(r[0], 3) for r in runs], requests=reqs)
        change_ten(d)
        ch, ch_req, out = pixctl(env, "sync", d, "--two-way", "--json", "-q")
        bench.emit(bench="twoway-ten-changes", seconds=round(ch, 2), requests=ch_req,
                   summary=json.loads(out.splitlines()[-1]))
        pixctl(env, "sync", mirror, "-q")
        mir = min(pixctl(env, "sync", mirror, "-q")[0] for _ in range(3))
        bench.emit(bench="mirror-no-change", best_seconds=round(mir, 3))
        aws("sync", "--no-progress", d, prefix)
        a = min(aws("sync", "--no-progress", d, prefix) for _ in range(3))
        bench.emit(bench="aws-s3-sync-no-change", best_seconds=round(a, 3))
        aws("rm", "--recursive", prefix)
    finally:
        bench.stop_all(api)
        shutil.rmtree(tmp, ignore_errors=True)
    print("\ntwo-way sync, %d files, same stack, same run:" % N)
    print("  first pass after `upload -r` (adopts every file)  %7.2f s  %5d API requests"
          % (adopt, adopt_req))
    print("  pass with no change                               %7.3f s  %5d API requests"
          % (best, reqs))
    print("  pass with 10 changes                              %7.2f s  %5d API requests"
          % (ch, ch_req))
    print("  one-way mirror, no change                         %7.3f s" % mir)
    print("  aws s3 sync, no change (peer)                     %7.3f s  ratio %.1fx"
          % (a, a / best))


if __name__ == "__main__":
    main()
