# Dedup without upload, v2 (bench/api/run dedup): measured on the full local stack (its API
# and worker, plus a reconciler daemon this script starts), against peers in the same run.
#   1. the short circuit: POST /uploads with sha256 + POST /uploads/{id}/proof, 16 client
#      processes, every challenge from a bank; vs plain POST /uploads without sha256;
#   2. no timing oracle: POST /uploads for stored vs unknown hashes, interleaved;
#   3. the bank's cost at complete: API CPU and complete latency with PIXPLANE_POP_BANK=0
#      vs the default, for 10 MiB and 1 GiB objects.
# The load comes from a C client (bench/api/dedupload.c: threads with one keep-alive
# connection each) so the client's own cost stays out of the figures. Every loop is bounded
# in count; only 127.0.0.1 is contacted.
import base64
import hashlib
import hmac
import http.client
import json
import os
import signal
import subprocess
import sys
import time
import urllib.parse

import requests

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench import BUILD, MIB, emit, start_api, upload  # noqa: E402

CONC = 16
CONTENTS = 100  # x 4 bank entries = 400 short circuits, all from banks
SIZE = 256 * 1024


def b64(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def jwt(user):
    now = int(time.time())
    head = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = b64(json.dumps({"sub": user, "iat": now, "exp": now + 3600}).encode())
    sig = hmac.new(os.environ["PIXPLANE_JWT_SECRET"].encode(), ("%s.%s" % (head, body)).encode(),
                   hashlib.sha256).digest()
    return "%s.%s.%s" % (head, body, b64(sig))


class Conn:
    def __init__(self, url):
        u = urllib.parse.urlsplit(url)
        self.c = http.client.HTTPConnection(u.hostname, u.port, timeout=60)

    def call(self, method, path, tok, body=None):
        data = json.dumps(body).encode() if body is not None else None
        hdr = {"Authorization": "Bearer " + tok, "Content-Type": "application/json"}
        self.c.request(method, path, body=data, headers=hdr)
        r = self.c.getresponse()
        return r.status, json.loads(r.read() or b"null")


def proof(data, ch):
    m = hashlib.sha256(ch["nonce"].encode())
    for r in ch["ranges"]:
        m.update(data[r["offset"]:r["offset"] + r["length"]])
    return m.hexdigest()


def content(seed):
    out, h = bytearray(), hashlib.sha256(b"pixplane-bench-dedup-%d" % seed).digest()
    while len(out) < SIZE:
        h = hashlib.sha256(h).digest()
        out += h * 64
    return bytes(out[:SIZE])


def pct(lat, p):
    lat = sorted(lat)
    return round(lat[min(len(lat) - 1, int(len(lat) * p))] * 1000, 2)


def client_bin():
    out = os.path.join(BUILD, "bench", "api", "dedupload")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    subprocess.run(["cc", "-std=gnu11", "-O2", "-Wall", "-Wextra", "-Werror",
                    "-Wno-unused-parameter", "-D_GNU_SOURCE", "-Icommon", "-o", out,
                    "bench/api/dedupload.c", os.path.join(BUILD, "libpixcommon.a"), "-lcjson",
                    "-lcurl", "-lssl", "-lcrypto", "-lpthread"], check=True)
    return out


def run_clients(url, mode, tasks, rate=0):
    """CONC client threads (C); rate > 0: all together issue `rate` operations a second."""
    stdin = "".join("%s %d\n" % t for t in tasks)
    exe = client_bin()
    t0 = time.perf_counter()
    out = subprocess.run([exe, url, mode, str(CONC), str(rate)], input=stdin,
                         capture_output=True, text=True, timeout=600)
    secs = time.perf_counter() - t0
    assert out.returncode == 0, out.stderr[-2000:]
    lat = [float(x) / 1e6 for x in out.stdout.split()]
    assert len(lat) == len(tasks)
    return lat, secs


def store(url, user, data):
    """Uploads data as user (one owner per content: the stack's API rate-limits users)."""
    s = requests.Session()
    s.headers["Authorization"] = "Bearer " + jwt(user)
    s.base = url
    sess = upload(s, data)
    r = s.post(url + "/uploads/%s/complete" % sess["upload_session_id"], timeout=60)
    assert r.status_code == 200, r.text


def bench_short_circuit(url, tag, rate=0):
    base = int(tag, 16) % 100000 * 1000 + rate * 10
    for i in range(CONTENTS):  # each stored once: a bank of 4 each
        store(url, "bench-dedup-owner-%s-%d-%d" % (tag, rate, i), content(base + i))
    tasks = [("bd-%s-%d-%d-%d" % (tag, rate, i, k), base + i) for k in range(4)
             for i in range(CONTENTS)]
    plain = [("bp-%s-%d-%d" % (tag, rate, i), base + i) for i in range(len(tasks))]
    lat_p, secs_p = run_clients(url, "plain", plain, rate)
    lat_d, secs_d = run_clients(url, "dedup", tasks, rate)
    emit(bench="dedup_short_circuit", requests=len(tasks), concurrency=CONC,
         offered_rate_per_s=rate or "closed loop",
         p50_ms=pct(lat_d, .5), p99_ms=pct(lat_d, .99), rate_per_s=round(len(tasks) / secs_d),
         plain_create_p50_ms=pct(lat_p, .5), plain_create_p99_ms=pct(lat_p, .99),
         plain_rate_per_s=round(len(plain) / secs_p),
         p50_ratio_to_plain=round(pct(lat_d, .5) / pct(lat_p, .5), 2),
         note="create with sha256 + proof (2 requests, challenge from the bank, no S3 read) vs "
              "one plain create; %d client threads (C), full stack" % CONC)


def bench_oracle(url, tag, n=300):
    """POST /uploads for stored content (bank challenge) vs unknown content (decoy),
    interleaved, one client: the answers' timing distributions."""
    c = Conn(url)
    base = int(tag, 16) % 100000 * 1000 + 500
    known = [content(base + i) for i in range(n // 4 + 1)]
    for i, d in enumerate(known):
        store(url, "bench-oracle-owner-%s-%d" % (tag, i), d)
    lat = {"stored": [], "unknown": [], "control": []}
    for i in range(3 * n):
        kind = ("unknown", "stored", "control")[i % 3]
        h = hashlib.sha256(known[i // 12] if kind == "stored" else os.urandom(16)).hexdigest()
        tok = jwt("bench-oracle-%s-%d" % (tag, i))
        body = {"file_name": "p.jpg", "file_size": SIZE, "mime_type": "image/jpeg", "sha256": h}
        t0 = time.perf_counter()
        st, sess = c.call("POST", "/uploads", tok, body)
        lat[kind].append(time.perf_counter() - t0)
        assert st == 201 and "dedup_challenge" in sess
    emit(bench="dedup_offer_timing", samples_each=n,
         stored_p50_ms=pct(lat["stored"], .5), unknown_p50_ms=pct(lat["unknown"], .5),
         control_p50_ms=pct(lat["control"], .5),
         stored_p90_ms=pct(lat["stored"], .9), unknown_p90_ms=pct(lat["unknown"], .9),
         control_p90_ms=pct(lat["control"], .9),
         auc_stored_vs_unknown=auc(lat["stored"], lat["unknown"]),
         auc_control_vs_unknown=auc(lat["control"], lat["unknown"]),
         note="POST /uploads with a stored vs an unknown sha256 (bank challenge vs decoy), "
              "interleaved; control: a second unknown series")


def auc(a, b):
    """P(a random sample of a is slower than one of b): 0.5 means no single answer tells
    the two apart better than a coin."""
    wins = sum((x > y) + 0.5 * (x == y) for x in a for y in b)
    return round(wins / (len(a) * len(b)), 3)


def cpu_s(pid):
    with open("/proc/%d/stat" % pid) as f:
        v = f.read().rsplit(")", 1)[1].split()
    return (int(v[11]) + int(v[12])) / os.sysconf("SC_CLK_TCK")


def bench_bank_cost(runs=7):
    out = {}
    for bank in ("0", "4"):
        proc, url = start_api({"PIXPLANE_POP_BANK": bank,
                               "PIXPLANE_VERIFY_ASYNC_THRESHOLD": "4GiB"})
        s = requests.Session()
        s.headers["Authorization"] = "Bearer " + jwt("bench-bank-%s" % bank)
        s.base = url
        try:
            for size_mib, n in ((10, runs), (1024, 1)):
                lat, cpu = [], []
                for _ in range(n):
                    sess = upload(s, os.urandom(size_mib * MIB))
                    c0, t0 = cpu_s(proc.pid), time.perf_counter()
                    r = s.post(url + "/uploads/%s/complete" % sess["upload_session_id"],
                               timeout=900)
                    lat.append(time.perf_counter() - t0)
                    cpu.append(cpu_s(proc.pid) - c0)
                    assert r.status_code == 200, r.text
                out[(bank, size_mib)] = (sorted(lat)[len(lat) // 2], sum(cpu) / n)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(30)
    for size_mib in (10, 1024):
        (l0, c0), (l4, c4) = out[("0", size_mib)], out[("4", size_mib)]
        emit(bench="pop_bank_cost_at_complete", size_mib=size_mib, bank=4,
             complete_ms_bank0=round(l0 * 1000), complete_ms_bank4=round(l4 * 1000),
             added_complete_ms=round((l4 - l0) * 1000),
             api_cpu_ms_bank0=round(c0 * 1000), api_cpu_ms_bank4=round(c4 * 1000),
             added_cpu_ms_per_mib=round((c4 - c0) * 1000 / size_mib, 2),
             note="latency: median of %d (10 MiB) / 1 run (1 GiB); CPU: mean (10 ms ticks); "
                  "whole-content challenges up to 16 MiB, 160 x 4 KiB ranges above" % runs)


def main():
    rec = subprocess.Popen([os.path.join(BUILD, "pixplane-reconciler"), "--interval", "30s",
                            "--listen", ""], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        url = os.environ["PIXPLANE_API_URL"]  # the stack's own API, as users run it
        which = sys.argv[2:] or ["short", "oracle", "bank"]
        tag = "%x" % int(time.time())
        if "short" in which:
            bench_short_circuit(url, tag)  # 16 clients back to back: the machine's limit
            bench_short_circuit(url, tag, rate=100)  # open loop at 100 dedups/s
        if "oracle" in which:
            bench_oracle(url, tag)
        if "bank" in which:
            bench_bank_cost()
    finally:
        rec.send_signal(signal.SIGTERM)
        rec.wait(30)


if __name__ == "__main__":
    main()
