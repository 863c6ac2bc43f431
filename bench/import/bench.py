# Driver for bench/import/run: a bulk import of BENCH_IMPORT_FILES (2,000) generated JPEGs of
# 200-400 KiB with `pixctl upload -r` vs `aws s3 sync` to the same radosgw, then a second
# import of the same folder (all duplicates) vs a no-op `aws s3 sync`. The corpus is made once
# (ImageMagick, in parallel) and cached; each run rewrites a 16-byte comment in every file so
# that no content is known to the server. Prints JSON lines, then a report.
import json
import math
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "api"))
import bench  # noqa: E402  (start_api, stop_all, token, emit)

BUILD = sys.argv[1]
N = int(os.environ.get("BENCH_IMPORT_FILES", "2000"))
ROOT = os.environ.get("BENCH_IMPORT_DIR", "/tmp/pixplane-bench-import")
DIRS = 20
BASES = 64
KIB = 1024
TAG = b"pixbench "
STAMP_AT = 2 + 4 + len(TAG)  # SOI, COM marker and length, tag: the 32 hex digits follow
AWS = "/usr/bin/aws"


def make_bases(out):
    """BASES noise JPEGs sized for 200-400 KiB (about 0.69 bytes a pixel at quality 88)."""
    os.makedirs(out, exist_ok=True)
    rnd = random.Random(7)
    lines = []
    for i in range(BASES):
        px = rnd.randint(305_000, 575_000)
        w = int(math.sqrt(px * 4 / 3))
        lines.append("%d %d %s/base%02d.jpg\n" % (w, w * 3 // 4, out, i))
    subprocess.run(["xargs", "-P", str(os.cpu_count() or 2), "-n", "3", "sh", "-c",
                    'convert -size "$0x$1" xc:gray +noise Random -quality 88 "$2"'],
                   input="".join(lines), text=True, check=True)
    sizes = {}
    for name in sorted(os.listdir(out)):
        with open(os.path.join(out, name), "rb") as f:
            data = f.read()
        if 200 * KIB <= len(data) + 64 <= 400 * KIB:
            sizes[name] = data
    assert len(sizes) >= BASES // 2, "bases out of the size range"
    return list(sizes.values())


def stamped(data):
    com = TAG + os.urandom(16).hex().encode()
    return data[:2] + b"\xff\xfe" + (len(com) + 2).to_bytes(2, "big") + com + data[2:]


def corpus():
    lib = os.path.join(ROOT, "jpegs-%d" % N)
    if os.path.exists(os.path.join(ROOT, "ready-%d" % N)):
        return lib
    shutil.rmtree(lib, ignore_errors=True)
    bases = make_bases(os.path.join(ROOT, "bases"))
    for i in range(N):
        d = os.path.join(lib, "folder%02d" % (i % DIRS))
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "IMG_%05d.jpg" % i), "wb") as f:
            f.write(stamped(bases[i % len(bases)]))
    open(os.path.join(ROOT, "ready-%d" % N), "w").close()
    return lib


def files_of(lib):
    return [os.path.join(d, f) for d, _, fs in os.walk(lib) for f in fs]


def restamp(paths):
    """New content in every file (a new comment), the sizes unchanged."""
    for p in paths:
        with open(p, "r+b") as f:
            f.seek(STAMP_AT)
            f.write(os.urandom(16).hex().encode())


def pixctl(url, tok, lib, state):
    env = dict(os.environ, PIXPLANE_API_URL=url, PIXPLANE_TOKEN=tok, PIXPLANE_STATE_DIR=state)
    env.pop("PIXPLANE_CONFIG", None)
    t0 = time.perf_counter()
    p = subprocess.run([os.path.join(BUILD, "pixctl"), "upload", "-r", "--json", "-q", lib],
                       env=env, capture_output=True, text=True, timeout=3600)
    secs = time.perf_counter() - t0
    assert p.returncode == 0, p.stderr[-3000:]
    summary = json.loads(p.stdout.splitlines()[-1])
    assert summary.get("summary"), p.stdout[-500:]
    return secs, summary


def aws(*args):
    env = dict(os.environ, AWS_ACCESS_KEY_ID=os.environ["S3_ACCESS_KEY"],
               AWS_SECRET_ACCESS_KEY=os.environ["S3_SECRET_KEY"],
               AWS_DEFAULT_REGION=os.environ.get("S3_REGION", "us-east-1"),
               AWS_CONFIG_FILE="/dev/null")
    t0 = time.perf_counter()
    subprocess.run([AWS, "--endpoint-url", os.environ["S3_ENDPOINT"], "s3", *args,
                    "--only-show-errors"], env=env, check=True, timeout=3600)
    return time.perf_counter() - t0


PROCS = ("radosgw", "ceph-osd", "postgres", "pixplane-worker")
TICK = os.sysconf("SC_CLK_TCK")


def cpu_by_name(api_pid):
    """CPU seconds used so far by the stack's processes, by name (read from /proc)."""
    out = dict.fromkeys(PROCS + ("pixplane-api",), 0.0)
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open("/proc/%s/stat" % pid) as f:
                st = f.read()
            with open("/proc/%s/cmdline" % pid, "rb") as f:
                exe = os.path.basename(f.read().split(b"\0")[0].decode(errors="replace"))
        except OSError:
            continue
        name = "pixplane-api" if int(pid) == api_pid else exe.split(":")[0]
        if name in out:
            fields = st[st.rindex(")") + 2:].split()
            out[name] += (int(fields[11]) + int(fields[12])) / TICK
    return out


def cpu_delta(before, after, n):
    """Milliseconds of CPU per file, by process."""
    return {k: round(1000 * (after[k] - before[k]) / n, 1) for k in before}


def settle(api_pid, limit=180):
    """Waits (at most limit seconds) until the worker has made the thumbnails of the last
    import: its CPU time stops growing for 3 s."""
    deadline = time.monotonic() + limit
    last = cpu_by_name(api_pid)["pixplane-worker"]
    while time.monotonic() < deadline:
        time.sleep(3)
        now = cpu_by_name(api_pid)["pixplane-worker"]
        if now - last < 0.05:
            return
        last = now


def main():
    if not os.path.exists(AWS):
        sys.exit("Debian's awscli is needed (%s)" % AWS)
    t0 = time.perf_counter()
    lib = corpus()
    paths = files_of(lib)
    total = sum(os.path.getsize(p) for p in paths)
    sizes = sorted(os.path.getsize(p) for p in paths)
    bench.emit(bench="import-corpus", files=len(paths), bytes=total, min_kib=sizes[0] // KIB,
               max_kib=sizes[-1] // KIB, seconds=round(time.perf_counter() - t0, 1))
    restamp(paths)
    api, url = bench.start_api({"PIXPLANE_VERIFY_ASYNC_THRESHOLD": "8MiB"})
    state = tempfile.mkdtemp(prefix="pixbench-import-state-")
    prefix = "s3://%s/bench-import/%s/" % (os.environ["S3_BUCKET"], uuid.uuid4().hex[:12])
    try:
        tok = bench.token("bench-import-" + uuid.uuid4().hex[:8])
        settle(api.pid)
        c0 = cpu_by_name(api.pid)
        p1, s1 = pixctl(url, tok, lib, state)
        c1 = cpu_by_name(api.pid)
        p2, s2 = pixctl(url, tok, lib, state)
        settle(api.pid)  # aws does not run beside the worker's thumbnails of pixctl's import
        c2 = cpu_by_name(api.pid)
        a1 = aws("sync", "--no-progress", lib, prefix)
        c3 = cpu_by_name(api.pid)
        a2 = aws("sync", "--no-progress", lib, prefix)
    finally:
        bench.stop_all(api)
        shutil.rmtree(state, ignore_errors=True)
    assert s1["uploaded"] == len(paths) and s1["failed"] == 0, s1
    assert s2["skipped"] == len(paths) and s2["bytes_sent"] == 0, s2
    n = len(paths)
    bench.emit(bench="import-first", tool="pixctl", seconds=round(p1, 2),
               files_per_s=round(n / p1, 1), summary=s1)
    bench.emit(bench="import-first", tool="aws s3 sync", seconds=round(a1, 2),
               files_per_s=round(n / a1, 1))
    pix_cpu, aws_cpu = cpu_delta(c0, c1, n), cpu_delta(c2, c3, n)
    bench.emit(bench="import-first-cpu-ms-per-file", pixctl=pix_cpu, aws=aws_cpu)
    bench.emit(bench="import-second", tool="pixctl", seconds=round(p2, 2),
               files_per_s=round(n / p2, 1), summary=s2)
    bench.emit(bench="import-second", tool="aws s3 sync (no-op)", seconds=round(a2, 2),
               files_per_s=round(n / a2, 1))
    aws("rm", "--recursive", prefix)
    mib = total / (1 << 20)
    print("\nbulk import, %d JPEGs of %d-%d KiB (%.0f MiB), same radosgw, same run:" %
          (n, sizes[0] // KIB, sizes[-1] // KIB, mib))
    print("  first   pixctl upload -r   %7.2f s  %7.1f files/s  %6.1f MiB/s" % (p1, n / p1, mib / p1))
    print("          aws s3 sync        %7.2f s  %7.1f files/s  %6.1f MiB/s" % (a1, n / a1, mib / a1))
    print("          ratio %.2fx (target >= 1.5x)" % (a1 / p1))
    print("          stack CPU per file during the import (ms): " +
          ", ".join("%s %.1f / %.1f" % (k, pix_cpu[k], aws_cpu[k]) for k in pix_cpu) +
          "  (pixctl / aws)")
    print("  second  pixctl upload -r   %7.2f s  (%d skipped, %d bytes sent)" %
          (p2, s2["skipped"], s2["bytes_sent"]))
    print("          aws s3 sync no-op  %7.2f s" % a2)
    print("          ratio %.2fx" % (a2 / p2))


if __name__ == "__main__":
    main()
