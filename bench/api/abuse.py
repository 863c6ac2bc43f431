# Driver for `bench/api/run abuse`: each attack of the abuse suite (issue 13) driven by one
# user's token for ATTACK_SECS against its own pixplane-api on the full stack, while another
# user reads one of their images and /healthz in a closed loop. Prints, per attack, the
# bystander's p50/p99/max and what the attacker got back (status counts), plus a baseline
# with no attack. JSON lines out; every loop is bounded in time and count.
import collections
import concurrent.futures as cf
import os
import socket
import subprocess
import sys
import threading
import time

import requests

sys.path.insert(0, os.path.dirname(__file__))
import bench  # noqa: E402  (start_api, token, emit, session, upload)

ATTACK_SECS = 15
MIB = 1 << 20


def pct(xs, p):
    xs = sorted(xs)
    return round(xs[min(len(xs) - 1, int(len(xs) * p))], 2) if xs else None


class Bystander(threading.Thread):
    def __init__(self, url):
        super().__init__(daemon=True)
        self.s = bench.session(url, "abuse-bystander-%s" % os.urandom(3).hex())
        sess = bench.upload(self.s, os.urandom(3000))
        img = self.s.post(url + "/uploads/%s/complete" % sess["upload_session_id"],
                          timeout=60).json()["image_id"]
        self.paths = [url + "/images/" + img, url + "/healthz"]
        self.lat, self.bad, self.halt = [], 0, threading.Event()

    def run(self):
        for i in range(10 ** 6):
            if self.halt.is_set():
                return
            t0 = time.monotonic()
            try:
                ok = self.s.get(self.paths[i % 2], timeout=30).status_code == 200
            except requests.RequestException:
                ok = False
            self.lat.append((time.monotonic() - t0) * 1000)
            self.bad += not ok
            time.sleep(0.01)


def attack_completes(url, s, stop, got):
    """Repeated completes of a session another request holds in 'completing'."""
    sess = bench.upload(s, os.urandom(2000))
    sid = sess["upload_session_id"]
    subprocess.run(["psql", os.environ["DATABASE_URL"], "-qAtc",
                    "UPDATE upload_sessions SET status = 'completing', lease_token ="
                    " gen_random_uuid(), lease_until = now() + interval '15 minutes'"
                    " WHERE upload_session_id = '%s'" % sid], check=True)

    def one():
        while not stop.is_set():
            got[s.post(url + "/uploads/%s/complete" % sid, timeout=60).status_code] += 1
    return [one] * 16


def attack_streams(url, s, stop, got):
    """The user's streams at the cap and beyond, and a PATCH storm on their image."""
    sess = bench.upload(s, os.urandom(2000))
    img = s.post(url + "/uploads/%s/complete" % sess["upload_session_id"],
                 timeout=60).json()["image_id"]
    host, port = url.split("//")[1].split(":")
    tok = s.headers["Authorization"]

    def streams():
        socks = []
        while not stop.is_set() and len(socks) < 40:
            c = socket.create_connection((host, int(port)), timeout=10)
            c.sendall(("GET /sync/stream HTTP/1.1\r\nHost: x\r\nAuthorization: %s\r\n\r\n"
                       % tok).encode())
            got["stream " + c.recv(64).split(b" ")[1].decode()] += 1
            socks.append(c)
        stop.wait(ATTACK_SECS)
        for c in socks:
            c.close()

    def patches():
        for i in range(10 ** 6):
            if stop.is_set():
                return
            got[s.patch(url + "/images/" + img, json={"name": "p%d.jpg" % i},
                        timeout=30).status_code] += 1
    return [streams] + [patches] * 4


def attack_oversize(url, s, stop, got):
    """Part PUTs far over the declared size, through the presigned URL."""
    sess = s.post(url + "/uploads", json={"file_name": "x.jpg", "file_size": 1,
                                          "mime_type": "image/jpeg"}, timeout=30).json()
    part = s.post(url + "/uploads/%s/chunks/urls" % sess["upload_session_id"],
                  json={"chunk_numbers": [0]}, timeout=30).json()["urls"][0]["url"]
    body = os.urandom(10 * MIB)

    def one():
        while not stop.is_set():
            got["s3 %d" % requests.put(part, data=body, timeout=60).status_code] += 1
    return [one] * 2


def attack_slow_bodies(url, s, stop, got):
    """Bodies trickled a byte every 2 s on 100 connections."""
    host, port = url.split("//")[1].split(":")
    tok = s.headers["Authorization"]

    def one():
        socks = []
        for _ in range(100):
            c = socket.create_connection((host, int(port)), timeout=10)
            c.sendall(("POST /uploads HTTP/1.1\r\nHost: x\r\nAuthorization: %s\r\n"
                       "Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n"
                       % tok).encode())
            socks.append(c)
        while not stop.is_set() and socks:
            for c in list(socks):
                try:
                    c.send(b" ")
                except OSError:
                    got["closed by the server"] += 1
                    socks.remove(c)
            stop.wait(2)
        for c in socks:
            c.close()
    return [one]


def attack_sessions(url, s, stop, got):
    """As many upload sessions as the server will give."""
    def one():
        while not stop.is_set():
            got[s.post(url + "/uploads", json={"file_name": "x.jpg", "file_size": 50 * MIB,
                                               "mime_type": "image/jpeg"},
                       timeout=30).status_code] += 1
    return [one] * 4


ATTACKS = [("none", None), ("repeated_completes", attack_completes),
           ("streams_and_patch_storm", attack_streams), ("oversized_parts", attack_oversize),
           ("slow_bodies", attack_slow_bodies), ("many_sessions", attack_sessions)]


def main():
    proc, url = bench.start_api({"PIXPLANE_MAX_CONNS_PER_ADDR": "256"})
    rec = bench.start_reconciler()
    try:
        for name, attack in ATTACKS:
            by = Bystander(url)
            stop, got = threading.Event(), collections.Counter()
            fns = attack(url, bench.session(url, "abuse-%s-%s" % (name, os.urandom(3).hex())),
                         stop, got) if attack else []
            by.start()
            with cf.ThreadPoolExecutor(max(1, len(fns))) as ex:
                futs = [ex.submit(f) for f in fns]
                time.sleep(ATTACK_SECS)
                stop.set()
                cf.wait(futs, timeout=60)
            by.halt.set()
            by.join(30)
            errs = [repr(f.exception()) for f in futs if f.done() and f.exception()]
            bench.emit(bench="abuse_bystander", attack=name, secs=ATTACK_SECS,
                       bystander_requests=len(by.lat), bystander_failed=by.bad,
                       p50_ms=pct(by.lat, 0.5), p99_ms=pct(by.lat, 0.99),
                       max_ms=round(max(by.lat), 1) if by.lat else None,
                       attacker_got=dict(got), attacker_errors=errs[:3],
                       api_rss_mib=round(bench.rss_kib(proc.pid) / 1024, 1))
    finally:
        bench.stop_all(rec, proc)


if __name__ == "__main__":
    main()
