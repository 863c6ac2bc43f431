# Driver for bench/web/run: 1 GiB through the uploader page in headless Chromium
# (bench/web/upload.mjs) vs `pixctl upload` of the same file, without and with --wait, on the
# full stack (its own API serving web/dist, the default verification threshold, the stack's
# worker). New content for every upload (no dedup), the page cache warmed before each, a new
# user for each. Prints JSON lines, then a small report; every run is bounded in time.
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "api"))
import bench  # noqa: E402  (start_api, stop_all, token, emit)

BUILD = sys.argv[1]
MIB = 1 << 20
RUNS = int(os.environ.get("BENCH_RUNS", "1"))
SIZE = int(os.environ.get("BENCH_BIG_MIB", "1024")) * MIB
FILE = "/tmp/pixbench-web-1g.jpg"


def big_file(path):
    if not os.path.exists(path) or os.path.getsize(path) != SIZE:
        with open(path, "wb") as f:
            for _ in range(SIZE // (64 * MIB)):
                f.write(os.urandom(64 * MIB))
    return path


def restamp(path):
    """New content for each upload (no dedup, no proof of possession): new first bytes."""
    with open(path, "r+b") as f:
        f.write(os.urandom(64))
    subprocess.run(["cat", path], stdout=subprocess.DEVNULL, check=True)  # page cache warm


def user(kind, i):
    return "bench-web-%s-%d-%d" % (kind, os.getpid(), i)


def browser(url, path, i):
    p = subprocess.run(["node", "bench/web/upload.mjs", "--page", url + "/app/",
                        "--token", bench.token(user("browser", i)), "--file", path],
                       capture_output=True, text=True, timeout=2000)
    lines = [x for x in p.stdout.splitlines() if x.startswith("{")]
    assert p.returncode == 0 and lines, (p.stdout[-2000:], p.stderr[-2000:])
    return json.loads(lines[-1])


def pixctl(url, path, i, wait):
    """Seconds, pixctl's JSON answer, and its peak RSS in MiB."""
    env = dict(os.environ, PIXPLANE_API_URL=url, PIXPLANE_TOKEN=bench.token(user("pixctl", i)),
               PIXPLANE_STATE_DIR=tempfile.mkdtemp(prefix="pixbench-state-"))
    cmd = [os.path.join(BUILD, "pixctl"), "upload", "--json", "-q"] + (["--wait"] if wait else [])
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        t0 = time.perf_counter()
        p = subprocess.Popen(cmd + [path], env=env, stdout=out, stderr=err)
        killer = threading.Timer(1800, p.kill)
        killer.start()
        _, status, usage = os.wait4(p.pid, 0)
        secs = time.perf_counter() - t0
        killer.cancel()
        p.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        assert p.returncode == 0, err.read()[-2000:]
        doc = json.loads(out.read().splitlines()[-1])
    return secs, doc, round(usage.ru_maxrss / 1024, 1)


def main():
    path = big_file(FILE)
    api, url = bench.start_api({"PIXPLANE_VERIFY_ASYNC_THRESHOLD": "8MiB",
                                "PIXPLANE_WEB_DIR": os.path.abspath("web/dist")})
    res = {"browser": [], "pixctl": [], "pixctl_wait": [], "pixctl_rss": []}
    try:
        for i in range(RUNS):
            restamp(path)
            doc = browser(url, path, i)
            res["browser"].append(doc)
            bench.emit(bench="web_1g_run", kind="browser", **doc)
            for kind in ("pixctl", "pixctl_wait"):
                restamp(path)
                secs, doc, rss = pixctl(url, path, i, kind == "pixctl_wait")
                res[kind].append(secs)
                res["pixctl_rss"].append(rss)
                bench.emit(bench="web_1g_run", kind=kind, seconds=round(secs, 2),
                           state=doc.get("state"), max_rss_mib=rss)
    finally:
        bench.stop_all(api)
    report(res)


def report(res):
    med = lambda xs: round(statistics.median(xs), 2)  # noqa: E731
    b = res["browser"]
    peak = lambda phase, k: max(d["peak_mib"].get(phase, {}).get(k, 0) for d in b)  # noqa: E731
    summary = {
        "runs": RUNS, "size_mib": SIZE // MIB,
        "browser_to_complete_s": med([d["to_complete_s"] for d in b]),
        "browser_to_verified_s": med([d["to_verified_s"] for d in b]),
        "browser_hash_s": med([d["hash_s"] for d in b]),
        "browser_upload_s": med([d["upload_s"] for d in b]),
        "pixctl_s": med(res["pixctl"]), "pixctl_wait_s": med(res["pixctl_wait"]),
        "pixctl_max_rss_mib": max(res["pixctl_rss"]),
        "peak_mib": {ph: {k: peak(ph, k) for k in ("rss", "pss", "js_heap")}
                     for ph in ("idle", "hash", "upload", "verify")},
    }
    bench.emit(bench="web_1g_vs_pixctl", **summary)
    s, p = summary, summary["peak_mib"]
    print("\n%d MiB, %d run(s), medians          browser page   pixctl" % (s["size_mib"], RUNS))
    print("  to the answer of complete (s)   %8.1f       %6.1f" % (s["browser_to_complete_s"],
                                                                   s["pixctl_s"]))
    print("  to verified (s)                 %8.1f       %6.1f  (--wait)"
          % (s["browser_to_verified_s"], s["pixctl_wait_s"]))
    print("  of which the page's hashing pass %7.1f s, its parts %.1f s"
          % (s["browser_hash_s"], s["browser_upload_s"]))
    print("  browser peak memory (MiB)       RSS sum   PSS sum   JS heap")
    for ph in ("idle", "hash", "upload", "verify"):
        print("    %-28s %7.0f   %7.0f   %7.1f" % (ph, p[ph]["rss"], p[ph]["pss"],
                                                    p[ph]["js_heap"]))
    print("  pixctl peak RSS (MiB)           %7.1f" % s["pixctl_max_rss_mib"])


if __name__ == "__main__":
    main()
