"""bench/worker/e2e.py: end-to-end figures of the thumbnail pipeline on the local stack
(minio-dev/run/env sourced): its own database, broker and API as in test_worker.py, one
pixplane-worker; N photo-like 12 MP JPEG uploads paced at RATE per second; reports latency
from complete (images.created_at) to variants available (image_variants ready, all three in
one transaction), p50/p90/p99/max, throughput, and the worker's peak RSS; then a fresh worker
handles one 50 MP JPEG alone and its peak RSS is reported.
Usage: /usr/bin/python3 bench/worker/e2e.py [N] [RATE]    (PIXPLANE_BUILD as for the tests)"""
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "integration"))

from test_worker import (Worker, WorkerStack, all_final, jpeg_with_nonce,  # noqa: E402
                         upload, wait_until)


def photo(path, w, h):
    subprocess.run(["convert", "-size", "1000x750", "plasma:fractal", "-depth", "8",
                    path + ".png"], check=True)
    subprocess.run(["vips", "resize", path + ".png", path + ".tif", str(w / 1000)], check=True)
    subprocess.run(["convert", path + ".tif", "-crop", "%dx%d+0+0" % (w, h), "-attenuate",
                    "0.25", "+noise", "Gaussian", "-quality", "90", path], check=True)
    os.unlink(path + ".png")
    os.unlink(path + ".tif")
    with open(path, "rb") as f:
        return f.read()


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 30
    rate = float(sys.argv[2]) if len(sys.argv) > 2 else 1.0
    ws = WorkerStack()
    ws.start()
    try:
        base = photo(os.path.join(ws.top, "p12.jpg"), 4000, 3000)
        big = photo(os.path.join(ws.top, "p50.jpg"), 8660, 5775)
        w = Worker(ws)
        c = ws.client()
        _, warm = upload(c, jpeg_with_nonce(base))
        wait_until(lambda: all_final(ws, [warm]), 120, "warm-up image")
        hashes, t0 = [], time.monotonic()
        for i in range(n):
            delay = t0 + i / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            hashes.append(upload(c, jpeg_with_nonce(base))[1])
            w.sample_rss()
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline and not all_final(ws, hashes):
            w.sample_rss()
            time.sleep(0.2)
        hs = ",".join("'%s'" % h for h in hashes)
        rows = ws.sql("SELECT extract(epoch FROM max(v.updated_at) - min(i.created_at)),"
                      " extract(epoch FROM min(i.created_at)), extract(epoch FROM"
                      " max(v.updated_at)) FROM images i JOIN image_variants v USING"
                      " (content_hash) WHERE i.content_hash IN (%s) AND v.status = 'ready'"
                      " GROUP BY i.image_id" % hs)
        lat = [float(r[0]) for r in rows]
        span = max(float(r[2]) for r in rows) - min(float(r[1]) for r in rows)
        w.stop()
        print("load average %s, %d cores" % (open("/proc/loadavg").read().split()[:3],
                                               os.cpu_count()))
        print("%d x 12 MP JPEG (%.1f MB) uploaded at %.1f/s: %d done, %.2f images/s "
              "(%.2f variants/s) over %.1fs" % (n, len(base) / 1e6, rate, len(lat),
                                                len(lat) / span, 3 * len(lat) / span, span))
        print("latency complete -> variants ready: p50 %.2fs  p90 %.2fs  p99 %.2fs  max %.2fs"
              % (pct(lat, 50), pct(lat, 90), pct(lat, 99), max(lat)))
        print("worker peak RSS during the run: %.1f MB" % (w.peak_rss_kb / 1024))
        w2 = Worker(ws)
        _, h = upload(c, big)
        while not all_final(ws, [h]) and w2.sample_rss() >= 0:
            time.sleep(0.05)
        w2.stop()
        print("one 50 MP JPEG (8660x5775, %.1f MB): worker peak RSS %.1f MB"
              % (len(big) / 1e6, w2.peak_rss_kb / 1024))
    finally:
        ws.stop()


if __name__ == "__main__":
    main()
