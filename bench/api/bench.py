# Driver for bench/api/run: starts its own pixplane-api on the stack's PostgreSQL and S3,
# measures, prints JSON lines. Every loop is bounded in count and time.
import concurrent.futures as cf
import hashlib
import json
import os
import re
import socket
import subprocess
import sys
import time

import requests

BUILD = sys.argv[1]
ROOT = os.getcwd()
MIB = 1 << 20


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_api(extra=None):
    port = free_port()
    env = dict(os.environ, PIXPLANE_LISTEN="127.0.0.1:%d" % port, PIXPLANE_RATE_LIMIT="0",
               PIXPLANE_ACCESS_LOG="false", PIXPLANE_MAX_CONNS_PER_ADDR="0",  # all 127.0.0.1
               PIXPLANE_VERIFY_ASYNC_THRESHOLD="4GiB")  # verify times the complete itself
    env.update(extra or {})
    log = open("/tmp/pixplane-bench-api.log", "wb")
    p = subprocess.Popen([os.path.join(BUILD, "pixplane-api")], env=env, stdout=log, stderr=log)
    url = "http://127.0.0.1:%d" % port
    for _ in range(100):
        try:
            if requests.get(url + "/healthz", timeout=1).status_code == 200:
                return p, url
        except requests.RequestException:
            time.sleep(0.1)
    raise SystemExit("api did not start")


def start_reconciler():
    """A reconciler daemon, as the full stack runs one (no ops listener: no port to clash)."""
    return subprocess.Popen([os.path.join(BUILD, "pixplane-reconciler"), "--interval", "30s",
                             "--listen", ""], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


def stop_all(*procs):
    for p in procs:
        p.terminate()
        p.wait(30)


def token(user):
    return subprocess.check_output([os.path.join(BUILD, "pixplane-api"), "token", "--user", user,
                                    "--ttl", "3600"], text=True).strip()


def session(url, user):
    s = requests.Session()
    s.headers["Authorization"] = "Bearer " + token(user)
    s.base = url
    return s


def upload(s, data, declare=False):
    body = {"file_name": "b.jpg", "file_size": len(data), "mime_type": "image/jpeg"}
    if declare:
        body["sha256"] = hashlib.sha256(data).hexdigest()
    sess = s.post(s.base + "/uploads", json=body, timeout=60).json()
    n, cs = sess["chunk_count"], sess["chunk_size"]
    if "dedup_challenge" in sess:
        return sess
    urls = s.post(s.base + "/uploads/%s/chunks/urls" % sess["upload_session_id"],
                  json={"chunk_numbers": list(range(n))}, timeout=60).json()["urls"]
    with cf.ThreadPoolExecutor(4) as ex:
        list(ex.map(lambda u: requests.put(u["url"], data=data[u["chunk_number"] * cs:
                                                                (u["chunk_number"] + 1) * cs],
                                           timeout=300), urls))
    return sess


def emit(**kw):
    print(json.dumps(kw), flush=True)


def bench_verify(url, size_mib=512):
    s = session(url, "bench-verify")
    data = os.urandom(size_mib * MIB)
    sess = upload(s, data)
    t0 = time.monotonic()
    r = s.post(s.base + "/uploads/%s/complete" % sess["upload_session_id"], timeout=600)
    api_s = time.monotonic() - t0
    assert r.status_code == 200, r.text
    img = r.json()["image_id"]
    dl = s.get(s.base + "/images/%s" % img, timeout=60).json()["download_url"]
    t0 = time.monotonic()
    out = subprocess.check_output("curl -sf '%s' | sha256sum" % dl, shell=True, text=True)
    peer_s = time.monotonic() - t0
    assert out.split()[0] == hashlib.sha256(data).hexdigest()
    emit(bench="complete_sha256_verify", size_mib=size_mib, api_mib_s=round(size_mib / api_s, 1),
         curl_sha256sum_mib_s=round(size_mib / peer_s, 1), ratio=round(peer_s / api_s, 2),
         note="complete includes CompleteMultipartUpload, HEAD, the hashing GET and the commit")


def wrk(url, path, tok, secs=10, conns=32):
    script = "/tmp/pixplane-bench-wrk.lua"
    with open(script, "w") as f:
        f.write('wrk.headers["Authorization"] = "Bearer %s"\n' % tok)
    out = subprocess.check_output(["wrk", "-t2", "-c%d" % conns, "-d%ds" % secs, "--latency",
                                   "-s", script, url + path], text=True, timeout=secs + 30)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    def pct(p):
        m = re.search(r"\s%s%%\s+([\d.]+)(us|ms|s)" % p, out)
        v, unit = float(m.group(1)), m.group(2)
        return v / 1000 if unit == "us" else v * 1000 if unit == "s" else v
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return rps, pct(50), pct(99), int(non2xx.group(1)) if non2xx else 0


def pgbench(secs=10):
    url = os.environ["DATABASE_URL"]
    subprocess.run(["pgbench", "-i", "-s", "10", "-q", url], check=True, capture_output=True,
                   timeout=300)
    out = subprocess.check_output(["pgbench", "-S", "-M", "prepared", "-c", "8", "-j", "2",
                                   "-T", str(secs), url], text=True, timeout=secs + 60)
    return float(re.search(r"tps = ([\d.]+)", out).group(1))


def bench_get_image(url, cache="on"):
    s = session(url, "bench-get")
    sess = upload(s, os.urandom(10000))
    img = s.post(s.base + "/uploads/%s/complete" % sess["upload_session_id"], timeout=60).json()
    rps, p50, p99, bad = wrk(url, "/images/%s" % img["image_id"], token("bench-get"))
    tps = pgbench()
    emit(bench="get_image_signed_url", image_cache=cache, wrk_rps=round(rps), p50_ms=p50,
         p99_ms=p99, non_2xx=bad, pgbench_select_tps=round(tps), ratio=round(rps / tps, 2))


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        return int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1))


def bench_idle_connections(proc, url, n=1000):
    host, port = url.split("//")[1].split(":")
    before = rss_kib(proc.pid)
    socks = []
    for _ in range(n):
        c = socket.create_connection((host, int(port)), timeout=5)
        c.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        socks.append(c)
    for c in socks:
        c.recv(4096)
    time.sleep(0.5)
    after = rss_kib(proc.pid)
    for c in socks:
        c.close()
    emit(bench="idle_keepalive_rss", connections=n, rss_before_mib=round(before / 1024, 1),
         rss_after_mib=round(after / 1024, 1),
         per_connection_kib=round((after - before) / n, 1))


def main():
    import resource
    resource.setrlimit(resource.RLIMIT_NOFILE, (8192, 8192))
    proc, url = start_api()
    rec = start_reconciler()  # the full stack, as users run it (the stack's worker runs too)
    try:
        which = sys.argv[2:] or ["verify", "get", "idle"]
        if "verify" in which:
            bench_verify(url)
        if "get" in which:
            bench_get_image(url)  # repeated reads of one image: the worker caches serve them
            p2, url2 = start_api({"PIXPLANE_IMAGE_CACHE": "0"})  # every read from PostgreSQL
            try:
                bench_get_image(url2, "off")
            finally:
                stop_all(p2)
        if "idle" in which:
            bench_idle_connections(proc, url)
    finally:
        stop_all(rec, proc)


if __name__ == "__main__":
    main()
