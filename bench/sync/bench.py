# Driver for bench/sync/run. Bounded loops; its own API process; cleans the rows it adds.
import json
import os
import re
import resource
import selectors
import signal
import socket
import statistics
import subprocess
import sys
import time

import requests

BUILD = sys.argv[1]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def sql(q):
    return subprocess.check_output(["psql", os.environ["DATABASE_URL"], "-X", "-q", "-At", "-c",
                                    q], text=True, timeout=600).strip()


def start_api():
    port = free_port()
    env = dict(os.environ, PIXPLANE_LISTEN="127.0.0.1:%d" % port, PIXPLANE_RATE_LIMIT="0",
               PIXPLANE_ACCESS_LOG="false", PIXPLANE_MAX_CONNS_PER_ADDR="0",  # all 127.0.0.1
               PIXPLANE_SSE_MAX_STREAMS="100000", PIXPLANE_SSE_STREAMS_PER_USER="1000")
    p = subprocess.Popen([os.path.join(BUILD, "pixplane-api")], env=env,
                         stdout=subprocess.DEVNULL, stderr=open("/tmp/pixplane-bench-sync.log", "wb"))
    url = "http://127.0.0.1:%d" % port
    for _ in range(100):
        try:
            if requests.get(url + "/healthz", timeout=1).ok:
                return p, url, port
        except requests.RequestException:
            time.sleep(0.1)
    raise SystemExit("api did not start")


def token(user):
    return subprocess.check_output([os.path.join(BUILD, "pixplane-api"), "token", "--user", user],
                                   text=True).strip()


def rss_mib(pid):
    return int(re.search(r"VmRSS:\s+(\d+)", open("/proc/%d/status" % pid).read()).group(1)) / 1024


def bench_streams(proc, url, port, n=1000):
    user, tok = "bench-sse", token("bench-sse")
    before = rss_mib(proc.pid)
    sel = selectors.DefaultSelector()
    socks = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        s.sendall(("GET /sync/stream HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n\r\n"
                   % tok).encode())
        socks.append(s)
    pending = {s: b"" for s in socks}
    deadline = time.monotonic() + 60
    ready = set()
    for s in socks:  # every stream's head and first event
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ)
    while len(ready) < n and time.monotonic() < deadline:
        for key, _ in sel.select(1):
            data = key.fileobj.recv(65536)
            pending[key.fileobj] += data
            if b"event: sync" in pending[key.fileobj]:
                ready.add(key.fileobj)
                pending[key.fileobj] = b""
    open_rss = rss_mib(proc.pid)
    s = requests.Session()
    s.headers["Authorization"] = "Bearer " + tok
    body = {"file_name": "x.jpg", "file_size": 10, "mime_type": "image/jpeg"}
    # a committed change for the user: an image row through the API's own upload path
    sess = s.post(url + "/uploads", json=body, timeout=30).json()
    part = s.post(url + "/uploads/%s/chunks/urls" % sess["upload_session_id"],
                  json={"chunk_numbers": [0]}, timeout=30).json()["urls"][0]["url"]
    requests.put(part, data=os.urandom(10), timeout=30)
    got = set()
    r = s.post(url + "/uploads/%s/complete" % sess["upload_session_id"], timeout=60)
    t_commit = time.monotonic()
    assert r.status_code == 200, r.text
    last = t_commit
    deadline = time.monotonic() + 60
    while len(got) < len(ready) and time.monotonic() < deadline:
        for key, _ in sel.select(1):
            pending[key.fileobj] += key.fileobj.recv(65536)
            if b"event: sync" in pending[key.fileobj] and key.fileobj not in got:
                got.add(key.fileobj)
                last = time.monotonic()
    for s_ in socks:
        s_.close()
    print(json.dumps({"bench": "sse_1000_streams", "streams": n, "opened": len(ready),
                      "received": len(got), "rss_before_mib": round(before, 1),
                      "rss_with_streams_mib": round(open_rss, 1),
                      "commit_to_last_event_ms": round((last - t_commit) * 1000, 1)}), flush=True)


def sync_latency(url, tok, n=200):
    s = requests.Session()
    s.headers["Authorization"] = "Bearer " + tok
    cur = s.get(url + "/sync", timeout=30).json()["cursor"]
    lat = []
    for _ in range(n):
        t0 = time.monotonic()
        r = s.get(url + "/sync?since=" + cur, timeout=30)
        lat.append(time.monotonic() - t0)
        assert r.status_code == 200
    lat.sort()
    return lat[len(lat) // 2] * 1000, lat[int(len(lat) * 0.99)] * 1000


def bench_sync_latency(url):
    tok = token("bench-sync-reader")
    out = {}
    for rows in (10_000, 1_000_000):
        have = int(sql("SELECT count(*) FROM change_log WHERE user_id LIKE 'bench-filler-%'"))
        if rows > have:
            sql("INSERT INTO change_log (user_id, image_id, kind) SELECT 'bench-filler-' || (g %% 5000),"
                " gen_random_uuid(), 'added' FROM generate_series(1, %d) g" % (rows - have))
            sql("ANALYZE change_log")
        out[rows] = sync_latency(url, tok)
    sql("DELETE FROM change_log WHERE user_id LIKE 'bench-filler-%'")
    print(json.dumps({"bench": "sync_latency", "p50_ms_10k": round(out[10_000][0], 2),
                      "p99_ms_10k": round(out[10_000][1], 2),
                      "p50_ms_1m": round(out[1_000_000][0], 2),
                      "p99_ms_1m": round(out[1_000_000][1], 2)}), flush=True)


def main():
    resource.setrlimit(resource.RLIMIT_NOFILE, (8192, 8192))
    proc, url, port = start_api()
    try:
        which = sys.argv[2:] or ["streams", "latency"]
        if "streams" in which:
            bench_streams(proc, url, port)
        if "latency" in which:
            bench_sync_latency(url)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)


main()
