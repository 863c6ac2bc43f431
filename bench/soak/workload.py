# The mixed client workload shared by bench/soak and bench/chaos: many users, each doing
# what a real client does through the public API (multipart uploads through presigned part
# URLs, duplicates with and without a dedup proof, reads with the download fetched and
# checked, variant URLs, metadata, listings, delta sync with cursors, SSE connects, deletes
# and restores). Every request is timed and classified: ok, a designed answer (429, a refused
# proof for a decoy, a variant that failed), or an unexpected error (5xx, any other 4xx,
# connection errors, wrong bytes). One thread uses one user at a time (a per-user lock), so
# each user's expected state is exact and any other 4xx is a real surprise.
#
# Stdlib + requests only; Debian's /usr/bin/python3. Bounded everywhere (time and count).
import hashlib
import json
import os
import queue
import random
import re
import struct
import subprocess
import threading
import time
import uuid

import requests

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.path.join(ROOT, os.environ.get("BUILD", "build"))
API_BIN = os.path.join(BUILD, "pixplane-api")
KIB, MIB = 1024, 1024 * 1024
VARIANT_TYPES = ("thumbnail_small", "thumbnail_large", "preview")

# op weights (sum is irrelevant); an op that needs an image the user lacks becomes an upload
WEIGHTS = {
    "upload_new": 10, "upload_dup_proof": 4, "upload_dup_plain": 2, "read": 22, "variant": 6,
    "metadata": 6, "list": 12, "sync": 16, "sse": 4, "delete": 5, "restore": 4,
}


def log(msg):
    print("[%s] %s" % (time.strftime("%H:%M:%S"), msg), flush=True, file=__import__("sys").stderr)


def report(summary, fails, json_out):
    """Prints the run's JSON summary (and writes it to json_out), logs the verdict; the exit
    code: 0, or 1 with failures."""
    summary["failures"] = fails
    summary["ok"] = not fails
    out = json.dumps(summary)
    if json_out:
        with open(json_out, "w") as f:
            f.write(out + "\n")
    print(out)
    log("RESULT: %s" % ("ok" if not fails else "; ".join(fails)))
    return 0 if not fails else 1


# ---------------------------------------------------------------- content

def pad_jpeg(data, target, rnd):
    """data with COM segments of random bytes after SOI up to `target` bytes (decoders skip
    COM: the pixels, and the worker's cost, stay those of the small picture)."""
    segs = []
    need = target - len(data)
    for _ in range(64):
        if need <= 4:
            break
        n = min(need - 4, 65533)
        segs.append(b"\xff\xfe" + struct.pack(">H", n + 2) + bytes(rnd.getrandbits(8) for _ in range(16)) * (n // 16) + bytes(n % 16))
        need -= n + 4
    return data[:2] + b"".join(segs) + data[2:]


def make_bases(top, n=8, lo=100 * KIB, hi=1 * MIB, seed=None, kind="noisy"):
    """Real JPEGs between lo and hi bytes; every upload is one of them with a random COM
    segment after SOI (new content, same decodable picture). kind "noisy": ImageMagick plasma
    + Gaussian noise, the bytes are pixels (heavy for the worker's WebP encoder); "padded": a
    smooth 800x600 plasma (~100 KiB) padded with COM segments to a size in lo..hi (cheap for
    the worker, same upload bytes)."""
    rnd = random.Random(seed)
    if kind == "padded":
        os.makedirs(top, exist_ok=True)
        bases = []
        for i in range(n):
            p = os.path.join(top, "base-%d.jpg" % i)
            subprocess.run(["convert", "-size", "800x600", "plasma:fractal", "-blur", "0x1",
                            "-quality", "85", p], check=True, timeout=60)
            with open(p, "rb") as f:
                data = f.read()
            bases.append(pad_jpeg(data, rnd.randint(max(lo, len(data)), hi), rnd))
        return bases
    specs = [("640x480", 88), ("720x540", 90), ("800x600", 90), ("880x660", 92),
             ("960x720", 92), ("1024x768", 90), ("700x700", 93), ("600x800", 92)]
    os.makedirs(top, exist_ok=True)
    bases = []
    for i in range(60):  # bounded attempts
        if len(bases) >= n:
            break
        size, q = specs[i % len(specs)]
        if i >= len(specs):
            q = rnd.randint(80, 95)
        p = os.path.join(top, "base-%d.jpg" % i)
        subprocess.run(["convert", "-size", size, "plasma:fractal", "+noise", "Gaussian",
                        "-quality", str(q), p], check=True, timeout=60)
        with open(p, "rb") as f:
            data = f.read()
        if lo <= len(data) <= hi:
            bases.append(data)
    if not bases:
        raise SystemExit("could not make base images between %d and %d bytes" % (lo, hi))
    return bases


class Content:
    """Bytes are regenerated from (base, nonce) when needed: nothing large is kept."""
    __slots__ = ("base", "nonce", "sha", "size")

    def __init__(self, bases, base=None, nonce=None):
        self.base = random.randrange(len(bases)) if base is None else base
        self.nonce = nonce or os.urandom(16).hex().encode()
        data = self.data(bases)
        self.sha = hashlib.sha256(data).hexdigest()
        self.size = len(data)

    def data(self, bases):
        b = bases[self.base]
        return b[:2] + b"\xff\xfe" + struct.pack(">H", len(self.nonce) + 2) + self.nonce + b[2:]


def proof_for(data, ch):
    m = hashlib.sha256(ch["nonce"].encode())
    for r in ch["ranges"]:
        m.update(data[r["offset"]:r["offset"] + r["length"]])
    return m.hexdigest()


# ---------------------------------------------------------------- stats

def pct(xs, p):
    if not xs:
        return None
    xs = sorted(xs)
    k = min(len(xs) - 1, max(0, int(round(p / 100.0 * (len(xs) - 1)))))
    return xs[k]


class Stats:
    MAX_SAMPLES = 300000  # per kind; bounded memory
    MAX_ERRORS = 300

    def __init__(self):
        self.lock = threading.Lock()
        self.reset()

    def reset(self):
        self.ops = {}        # op kind -> {"ok": n, "rate_limited": n, "error": n, "lat": []}
        self.reqs = {}       # request kind -> {"status": {code: n}, "lat": []}
        self.errors = []     # samples
        self.error_count = 0
        self.error_by = {}   # "kind status/code" -> n
        self.designed = {}   # "kind status code" -> n
        self.r429 = 0
        self.retried = 0     # transient failures retried (chaos mode)
        self.t0 = time.monotonic()

    def req(self, kind, status, secs):
        with self.lock:
            r = self.reqs.setdefault(kind, {"status": {}, "lat": []})
            r["status"][str(status)] = r["status"].get(str(status), 0) + 1
            if len(r["lat"]) < self.MAX_SAMPLES:
                r["lat"].append(secs)
            if status == 429:
                self.r429 += 1

    def design(self, kind, status, code):
        with self.lock:
            k = "%s %s %s" % (kind, status, code)
            self.designed[k] = self.designed.get(k, 0) + 1

    def error(self, kind, what, detail):
        with self.lock:
            self.error_count += 1
            k = "%s %s" % (kind, what)
            self.error_by[k] = self.error_by.get(k, 0) + 1
            if len(self.errors) < self.MAX_ERRORS:
                self.errors.append({"t": round(time.monotonic() - self.t0, 1), "kind": kind,
                                    "what": what, "detail": str(detail)[:400]})

    def op(self, kind, outcome, secs):
        with self.lock:
            o = self.ops.setdefault(kind, {"ok": 0, "rate_limited": 0, "error": 0, "lat": []})
            o[outcome] += 1
            if outcome == "ok" and len(o["lat"]) < self.MAX_SAMPLES:
                o["lat"].append(secs)

    def total_ops(self):
        with self.lock:
            return sum(o["ok"] + o["rate_limited"] + o["error"] for o in self.ops.values())

    def summary(self, secs):
        with self.lock:
            ms = lambda v: None if v is None else round(v * 1000, 1)
            ops = {k: {"count": o["ok"] + o["rate_limited"] + o["error"], "ok": o["ok"],
                       "rate_limited": o["rate_limited"], "error": o["error"],
                       "p50_ms": ms(pct(o["lat"], 50)), "p99_ms": ms(pct(o["lat"], 99))}
                   for k, o in sorted(self.ops.items())}
            reqs = {k: {"count": sum(r["status"].values()), "status": r["status"],
                        "p50_ms": ms(pct(r["lat"], 50)), "p99_ms": ms(pct(r["lat"], 99))}
                    for k, r in sorted(self.reqs.items())}
            total = sum(v["count"] for v in ops.values())
            return {"seconds": round(secs, 1), "ops_total": total,
                    "ops_per_s": round(total / secs, 2) if secs > 0 else None,
                    "requests_total": sum(v["count"] for v in reqs.values()),
                    "unexpected_errors": self.error_count, "unexpected_by_kind": dict(self.error_by),
                    "rate_limited_429": self.r429, "designed_4xx": dict(self.designed),
                    "retried_transient": self.retried,
                    "ops": ops, "requests": reqs, "error_samples": self.errors[:40]}


# ---------------------------------------------------------------- HTTP

class RateLimited(Exception):
    pass


class OpFailed(Exception):
    pass


_tls = threading.local()


class Api:
    """One API base URL. `chaos=True`: transient failures (connection errors, 502/503/504,
    500 while a dependency restarts) are retried for up to retry_for seconds, every request
    being idempotent (uploads carry an Idempotency-Key); each retry is counted."""

    def __init__(self, base, stats, chaos=False, retry_for=45.0):
        self.base = base.rstrip("/")
        self.stats = stats
        self.chaos = chaos
        self.retry_for = retry_for
        self.sessions = []
        self.slock = threading.Lock()

    def session(self):
        s = getattr(_tls, "s", None)
        if s is None:
            s = _tls.s = requests.Session()
            with self.slock:
                self.sessions.append(s)
        return s

    def close(self):
        with self.slock:
            for s in self.sessions:
                s.close()

    def _once(self, kind, method, url, headers, body, raw, timeout, stream=False):
        t0 = time.monotonic()
        try:
            r = self.session().request(method, url, json=body, data=raw, headers=headers,
                                       timeout=timeout, allow_redirects=False, stream=stream)
        except requests.RequestException as e:
            self.stats.req(kind, "conn_error", time.monotonic() - t0)
            return None, e, time.monotonic() - t0
        dt = time.monotonic() - t0
        if not stream:
            self.stats.req(kind, r.status_code, dt)
        return r, None, dt

    def request(self, kind, method, url, token=None, body=None, raw=None, headers=None,
                expect=(200,), designed=(), timeout=30, stream=False):
        """Returns (status, json-or-None, response). designed: {(status, code) or status}
        answers that are part of the design (recorded, returned). 429 raises RateLimited;
        anything else unexpected raises OpFailed after recording one error."""
        h = dict(headers or {})
        if token:
            h["Authorization"] = "Bearer " + token
        deadline = time.monotonic() + (self.retry_for if self.chaos else 0)
        delay = 0.25
        for attempt in range(200):  # bounded; the deadline ends it much earlier in practice
            r, exc, dt = self._once(kind, method, url, h, body, raw, timeout, stream)
            transient = exc is not None or (r is not None and r.status_code in (500, 502, 503, 504))
            if transient and self.chaos and time.monotonic() < deadline:
                with self.stats.lock:
                    self.stats.retried += 1
                if r is not None:
                    r.close()
                time.sleep(delay)
                delay = min(delay * 2, 4.0)
                continue
            break
        if exc is not None:
            self.stats.error(kind, "connection_error", repr(exc))
            raise OpFailed("%s: %r" % (kind, exc))
        if stream:
            self.stats.req(kind, r.status_code, dt)
        doc = None
        if not stream and "json" in r.headers.get("Content-Type", ""):
            try:
                doc = json.loads(r.content)
            except ValueError:
                doc = None
        code = (doc or {}).get("error", {}).get("code") if isinstance(doc, dict) else None
        if r.status_code in expect:
            return r.status_code, doc, r
        if r.status_code == 429:
            raise RateLimited(kind)
        if (r.status_code, code) in designed or r.status_code in designed:
            self.stats.design(kind, r.status_code, code)
            return r.status_code, doc, r
        self.stats.error(kind, "%s %s" % (r.status_code, code or ""),
                         "%s %s -> %s %s" % (method, url.split("?X-Amz")[0][:160], r.status_code,
                                             (r.text or "")[:200] if not stream else ""))
        if stream:
            r.close()
        raise OpFailed("%s: %s %s" % (kind, r.status_code, code))

    def call(self, kind, method, path, token, **kw):
        return self.request(kind, method, self.base + path, token=token, **kw)


def make_token(user, ttl, secret=None):
    env = dict(os.environ)
    if secret:
        env["PIXPLANE_JWT_SECRET"] = secret
    return subprocess.check_output([API_BIN, "token", "--user", user, "--ttl", str(int(ttl))],
                                   env=env, text=True, timeout=30).strip()


# ---------------------------------------------------------------- users and devices

class Device:
    """A device's mirror of the user's visible images, fed only by /sync deltas."""

    def __init__(self):
        self.cursor = None
        self.images = {}

    def apply(self, doc):
        for kind in ("added", "updated", "deleted"):
            for e in doc.get(kind, []):
                if kind == "deleted":
                    self.images.pop(e["image_id"], None)
                else:
                    self.images[e["image_id"]] = e.get("name")

    def sync(self, api, token, kind="GET /sync", limit=100, max_pages=50):
        for _ in range(max_pages):
            q = "/sync?limit=%d" % limit + ("&since=" + self.cursor if self.cursor else "")
            _, doc, _ = api.call(kind, "GET", q, token)
            self.apply(doc)
            self.cursor = doc["cursor"]
            if not doc["has_more"]:
                return True
        return False  # more to come; the next sync continues


class User:
    def __init__(self, uid, token):
        self.id = uid
        self.token = token
        self.lock = threading.Lock()
        self.live = {}      # image_id -> Content
        self.deleted = {}   # image_id -> Content
        self.device = Device()


class Workload:
    """Runs ops for a set of users against one Api. record_ack(user, image_id, content) is
    called for every upload acknowledged with 2xx."""

    def __init__(self, api, users, bases, stats, weights=None, seed=None, on_ack=None,
                 on_session=None, s3_timeout=60):
        self.api = api
        self.users = users
        self.bases = bases
        self.stats = stats
        self.rnd = random.Random(seed)
        self.rlock = threading.Lock()
        w = weights or WEIGHTS
        self.kinds = list(w)
        self.cum = []
        acc = 0
        for k in self.kinds:
            acc += w[k]
            self.cum.append(acc)
        self.pool = []           # content acknowledged (for duplicates), bounded
        self.pool_lock = threading.Lock()
        self.hashes = set()      # every content hash this run made or declared
        self.sessions = set()    # every upload_session_id this run was given
        self.acks = []           # (user, image_id, Content, op kind)
        self.attempted = {}      # op kind -> uploads attempted
        self.on_ack = on_ack
        self.s3_timeout = s3_timeout
        self.no_user = 0

    # -- helpers
    def rand(self):
        with self.rlock:
            return self.rnd.random()

    def pick_kind(self):
        x = self.rand() * self.cum[-1]
        for k, c in zip(self.kinds, self.cum):
            if x < c:
                return k
        return self.kinds[-1]

    def acquire_user(self, users=None, wait=5.0):
        users = users or self.users
        for _ in range(12):
            with self.rlock:
                u = self.rnd.choice(users)
            if u.lock.acquire(blocking=False):
                return u
        with self.rlock:
            u = self.rnd.choice(users)
        if u.lock.acquire(timeout=wait):
            return u
        return None

    def _ack(self, user, image_id, content, kind):
        user.live[image_id] = content
        user.deleted.pop(image_id, None)
        with self.pool_lock:
            self.acks.append((user.id, image_id, content, kind))
            self.pool.append(content)
            if len(self.pool) > 2000:
                del self.pool[:1000]
        if self.on_ack:
            self.on_ack(user, image_id, content, kind)

    # -- one op, on a locked user
    def run_op(self, kind=None, users=None):
        kind = kind or self.pick_kind()
        u = self.acquire_user(users)
        if u is None:
            self.no_user += 1
            return None
        try:
            if kind in ("read", "variant", "metadata", "delete") and not u.live:
                kind = "upload_new"
            if kind == "restore" and not u.deleted:
                kind = "delete" if u.live else "upload_new"
            if kind in ("upload_dup_proof", "upload_dup_plain") and not self.pool:
                kind = "upload_new"
            t0 = time.monotonic()
            try:
                secs = getattr(self, "op_" + kind)(u)  # an op may report its own latency
                self.stats.op(kind, "ok", secs if isinstance(secs, float)
                              else time.monotonic() - t0)
            except RateLimited:
                self.stats.op(kind, "rate_limited", time.monotonic() - t0)
            except OpFailed:
                self.stats.op(kind, "error", time.monotonic() - t0)
            except Exception as e:  # a bug in the client, or a malformed answer: an error
                self.stats.error(kind, "client_exception", repr(e))
                self.stats.op(kind, "error", time.monotonic() - t0)
            return kind
        finally:
            u.lock.release()

    # -- uploads
    def _upload(self, u, content, declare, prove, kind):
        with self.pool_lock:
            self.attempted[kind] = self.attempted.get(kind, 0) + 1
        data = content.data(self.bases)
        self.hashes.add(content.sha)
        body = {"file_name": "img-%s.jpg" % content.nonce[:8].decode(), "file_size": len(data),
                "mime_type": "image/jpeg"}
        if declare:
            body["sha256"] = content.sha
        _, sess, _ = self.api.call("POST /uploads", "POST", "/uploads", u.token, body=body,
                                   expect=(201, 200),
                                   headers={"Idempotency-Key": uuid.uuid4().hex})
        sid = sess["upload_session_id"]
        self.sessions.add(sid)
        ch = sess.get("dedup_challenge")
        if ch and prove:
            st, doc, _ = self.api.call(
                "POST /uploads/{id}/proof", "POST", "/uploads/%s/proof" % sid, u.token,
                body={"proof": proof_for(data, ch)},
                designed={(403, "proof_rejected"), (409, "no_challenge")} if prove == "decoy"
                or self.api.chaos else set())
            if st == 200:
                self._ack(u, doc["image_id"], content, kind)
                return doc
            if st == 409 and self.api.chaos:  # a retried proof whose first answer was lost
                _, s2, _ = self.api.call("GET /uploads/{id}", "GET", "/uploads/%s" % sid, u.token)
                if s2.get("status") == "completed" and s2.get("image_id"):
                    self._ack(u, s2["image_id"], content, kind)
                    return s2
        # the bytes: one chunk (contents are < 5 MiB) through its presigned part URL
        n = sess["chunk_count"]
        _, doc, _ = self.api.call("POST /uploads/{id}/chunks/urls", "POST",
                                  "/uploads/%s/chunks/urls" % sid, u.token,
                                  body={"chunk_numbers": list(range(n))})
        size = sess["chunk_size"]
        for e in doc["urls"]:
            c = e["chunk_number"]
            self.api.request("PUT s3 part", "PUT", e["url"], raw=data[c * size:(c + 1) * size],
                             timeout=self.s3_timeout)
        st, doc, _ = self.api.call("POST /uploads/{id}/complete", "POST",
                                   "/uploads/%s/complete" % sid, u.token, expect=(200, 202),
                                   timeout=120)
        for _ in range(30):  # 202: completed elsewhere or being verified; poll (bounded)
            if st == 200:
                break
            time.sleep(1)
            _, s2, _ = self.api.call("GET /uploads/{id}", "GET", "/uploads/%s" % sid, u.token)
            if s2.get("status") == "completed":
                st, doc = 200, s2
            elif s2.get("status") not in ("completing", "verifying"):
                self.stats.error(kind, "session_" + str(s2.get("status")), s2)
                raise OpFailed("session %s" % s2.get("status"))
        if st != 200:
            self.stats.error(kind, "complete_pending", sid)
            raise OpFailed("complete still pending")
        if doc.get("sha256") not in (None, content.sha):
            self.stats.error(kind, "sha256_differs", "%s vs %s" % (doc.get("sha256"), content.sha))
            raise OpFailed("sha differs")
        self._ack(u, doc["image_id"], content, kind)
        return doc

    def op_upload_new(self, u):
        c = Content(self.bases)
        # half declare the sha256 like pixctl: the answer carries a decoy challenge for new
        # content; the refused proof (403 proof_rejected, by design) leads to a normal upload
        if self.rand() < 0.5:
            self._upload(u, c, declare=True, prove="decoy", kind="upload_new")
        else:
            self._upload(u, c, declare=False, prove=None, kind="upload_new")

    def _pool_pick(self):
        with self.pool_lock:
            with self.rlock:
                return self.rnd.choice(self.pool)

    def op_upload_dup_proof(self, u):
        c = self._pool_pick()
        # stored content, whole-file proof: 200 with no bytes moved (the local stack sets
        # PIXPLANE_DEDUP_THRESHOLD=1); budget spent (3 per user and content): no challenge,
        # the bytes are uploaded in the same session
        self._upload(u, c, declare=True, prove="stored", kind="upload_dup_proof")

    def op_upload_dup_plain(self, u):
        self._upload(u, self._pool_pick(), declare=False, prove=None, kind="upload_dup_plain")

    # -- reads
    def _pick(self, d):
        with self.rlock:
            return self.rnd.choice(list(d.items()))

    def op_read(self, u):
        img, c = self._pick(u.live)
        _, doc, _ = self.api.call("GET /images/{id}", "GET", "/images/%s" % img, u.token)
        _, _, r = self.api.request("GET s3 object", "GET", doc["download_url"],
                                   timeout=self.s3_timeout)
        if hashlib.sha256(r.content).hexdigest() != c.sha:
            self.stats.error("read", "bytes_differ", "image %s: got %d bytes sha %s, want %s"
                             % (img, len(r.content), hashlib.sha256(r.content).hexdigest(), c.sha))
            raise OpFailed("bytes differ")

    def op_variant(self, u):
        img, _ = self._pick(u.live)
        with self.rlock:
            t = self.rnd.choice(VARIANT_TYPES)
        st, doc, _ = self.api.call("GET /images/{id}/variants/{t}", "GET",
                                   "/images/%s/variants/%s" % (img, t), u.token,
                                   expect=(200, 202), designed={(422, "variant_failed")})
        if st == 200:
            _, _, r = self.api.request("GET s3 variant", "GET", doc["download_url"],
                                       timeout=self.s3_timeout)
            if r.content[:4] != b"RIFF":
                self.stats.error("variant", "not_webp", r.content[:16])
                raise OpFailed("variant not webp")

    def op_metadata(self, u):
        img, c = self._pick(u.live)
        _, doc, _ = self.api.call("GET /images/{id}/metadata", "GET", "/images/%s/metadata" % img,
                                  u.token)
        if doc.get("sha256") != c.sha or doc.get("status") != "active":
            self.stats.error("metadata", "wrong_metadata", doc)
            raise OpFailed("metadata")

    def op_list(self, u):
        status = "deleted" if self.rand() < 0.2 else "active"
        cursor = None
        for _ in range(3):
            q = "/images?limit=20&status=%s" % status + ("&cursor=" + cursor if cursor else "")
            _, doc, _ = self.api.call("GET /images", "GET", q, u.token)
            cursor = doc.get("next_cursor")
            if not cursor:
                break

    def op_sync(self, u):
        u.device.sync(self.api, u.token)

    def op_sse(self, u):
        t0 = time.monotonic()
        _, _, r = self.api.call("GET /sync/stream", "GET", "/sync/stream", u.token,
                                headers={"Accept": "text/event-stream"}, timeout=(5, 20),
                                stream=True)
        try:
            got = False
            deadline = time.monotonic() + 20
            for line in r.iter_lines(chunk_size=1):
                if line.startswith(b"event: sync"):
                    got = True
                if got and line == b"":
                    break
                if time.monotonic() > deadline:
                    break
            if not got:
                self.stats.error("sse", "no_first_event", "")
                raise OpFailed("no first event")
            first = time.monotonic() - t0
            self.stats.req("GET /sync/stream first event", 200, first)
            with self.rlock:
                hold = self.rnd.uniform(0.2, 1.5)
            time.sleep(hold)  # connected for a while, then the client goes away
            return first  # the op's latency: connect to first event (not the hold)
        except requests.RequestException as e:
            self.stats.error("sse", "stream_error", repr(e))
            raise OpFailed("sse")
        finally:
            r.close()

    # -- deletes and restores
    def op_delete(self, u):
        img, c = self._pick(u.live)
        try:
            self.api.call("DELETE /images/{id}", "DELETE", "/images/%s" % img, u.token)
        except OpFailed:
            u.live.pop(img, None)  # outcome unknown: stop tracking it (the DB is the truth)
            raise
        u.live.pop(img, None)
        u.deleted[img] = c

    def op_restore(self, u):
        img, c = self._pick(u.deleted)
        try:
            self.api.call("POST /images/{id}/restore", "POST", "/images/%s/restore" % img, u.token)
        except OpFailed:
            u.deleted.pop(img, None)
            raise
        u.deleted.pop(img, None)
        u.live[img] = c


# ---------------------------------------------------------------- drivers

def closed_loop(wl, clients, seconds, stop=None):
    """clients threads, each running ops back to back for `seconds`."""
    end = time.monotonic() + seconds
    stop = stop or threading.Event()

    def loop():
        for _ in range(10 ** 7):
            if time.monotonic() >= end or stop.is_set():
                return
            wl.run_op()

    ts = [threading.Thread(target=loop, daemon=True) for _ in range(clients)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(seconds + 180)


class OpenLoop:
    """Ops arrive at `rate` per second (Poisson) whatever the latency; `threads` execute them.
    A backlog over `max_backlog` sheds arrivals (counted). lag = start - scheduled time."""

    def __init__(self, wl, rate, threads=32, max_backlog=500, seed=None):
        self.wl, self.rate, self.threads = wl, rate, threads
        self.q = queue.Queue(maxsize=max_backlog)
        self.shed = 0
        self.scheduled = 0
        self.lags = []
        self.llock = threading.Lock()
        self.stop_ev = threading.Event()
        self.rnd = random.Random(seed)

    def _exec(self):
        for _ in range(10 ** 8):
            try:
                t_sched = self.q.get(timeout=0.5)
            except queue.Empty:
                if self.stop_ev.is_set():
                    return
                continue
            if t_sched is None:
                return
            lag = time.monotonic() - t_sched
            with self.llock:
                if len(self.lags) < 500000:
                    self.lags.append(lag)
            self.wl.run_op()

    def run(self, seconds, tick=None, tick_every=30.0):
        ts = [threading.Thread(target=self._exec, daemon=True) for _ in range(self.threads)]
        for t in ts:
            t.start()
        t0 = time.monotonic()
        end = t0 + seconds
        nxt = t0
        next_tick = t0 + tick_every
        for _ in range(10 ** 8):
            now = time.monotonic()
            if now >= end or self.stop_ev.is_set():
                break
            if now >= next_tick and tick:
                tick(now - t0)
                next_tick += tick_every
            if now < nxt:
                time.sleep(min(nxt - now, 0.05))
                continue
            self.scheduled += 1
            try:
                self.q.put_nowait(nxt)
            except queue.Full:
                self.shed += 1
            nxt += self.rnd.expovariate(self.rate)
        self.stop_ev.set()
        for t in ts:
            t.join(240)
        return time.monotonic() - t0

    def lag_summary(self):
        with self.llock:
            return {"scheduled": self.scheduled, "shed": self.shed,
                    "lag_p50_ms": round((pct(self.lags, 50) or 0) * 1000, 1),
                    "lag_p99_ms": round((pct(self.lags, 99) or 0) * 1000, 1)}


# ---------------------------------------------------------------- process sampling

def proc_sample(pid):
    """(VmRSS KiB, open fds) or None when the process is gone."""
    try:
        with open("/proc/%d/status" % pid) as f:
            rss = int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1))
        return rss, len(os.listdir("/proc/%d/fd" % pid))
    except (OSError, AttributeError):
        return None


class Sampler(threading.Thread):
    """Samples RSS and fd count of named processes every `every` s; pids() -> {name: pid}."""

    def __init__(self, pids, every=5.0):
        super().__init__(daemon=True)
        self.pids = pids
        self.every = every
        self.samples = {}   # name -> [(t, pid, rss_kib, fds)]
        self.stop_ev = threading.Event()
        self.t0 = time.monotonic()

    def sample_now(self):
        t = time.monotonic() - self.t0
        for name, pid in self.pids().items():
            s = proc_sample(pid) if pid else None
            if s:
                self.samples.setdefault(name, []).append((t, pid, s[0], s[1]))

    def run(self):
        for _ in range(10 ** 6):
            if self.stop_ev.wait(self.every):
                return
            self.sample_now()

    def last(self, name):
        s = self.samples.get(name)
        return s[-1] if s else None
