# Driver for bench/scale: the API's requests at 10,000 vs 10,000,000 images (sizes in
# SCALE_N), each size in a database of its own on the stack's PostgreSQL, through its own API
# process; p50/p99 per request for a heavy and a typical user, the 10M/10k ratios, and the
# plans of every statement those requests run. Bounded loops only.
import base64
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.parse
import uuid

import psycopg2
import requests

import gen

BUILD = sys.argv[1]
MODE = sys.argv[2] if len(sys.argv) > 2 else "all"  # all | smoke | generate
SIZES = [int(x) for x in re.split(r"[ ,]+", os.environ.get(
    "SCALE_N", "10000" if MODE == "smoke" else "10000 10000000").strip())]
KEEP = os.environ.get("KEEP") == "1"
REQS = int(os.environ.get("SCALE_REQS", "500"))  # per case, after WARM warm-up rounds
COMPLETES = int(os.environ.get("SCALE_COMPLETES", "100"))  # per user and kind
WARM = 20
ADMIN_URL = os.environ["DATABASE_URL"]
ZERO = "00000000-0000-0000-0000-000000000000"
RETENTION = "2592000"  # PIXPLANE_RETENTION's default, 30 days
TOPIC = "image-uploaded"
POP_BANK = 4  # PIXPLANE_POP_BANK's default
# Tables big enough that a Seq Scan on them is a plan that grows with the data.
BIG_ROWS = 20_000
# Rows a plan node may produce over all its loops in one of these requests (pages of 100 or
# so): more grows with a user's images (a bitmap scan of all of them, then a sort).
SCAN_ROWS_MAX = 2_000


def label(n):
    return "%dm" % (n // 1_000_000) if n >= 1_000_000 else "%dk" % (n // 1000)


def db_name(n):
    return "pixbench_scale_" + label(n)


def db_url(n):
    return ADMIN_URL.rsplit("/", 1)[0] + "/" + db_name(n)


def out(**kw):
    print(json.dumps(kw), flush=True)


def admin(q):
    conn = psycopg2.connect(ADMIN_URL)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(q)
        rows = cur.fetchall() if cur.description else None
    conn.close()
    return rows


def marker(n):
    return "pixbench scale n=%d complete" % n


def ready_db(n):
    """True when the database already holds the generated rows (REUSE=1 keeps it)."""
    rows = admin("SELECT shobj_description(oid, 'pg_database') FROM pg_database"
                 " WHERE datname = '%s'" % db_name(n))
    return bool(rows) and rows[0][0] == marker(n)


def migrate(n):
    """The build's migrations (on a kept database: the ones it lacks); the seconds taken."""
    t0 = time.monotonic()
    subprocess.run([os.path.join(BUILD, "pixplane-api"), "migrate"], check=True,
                   env=dict(os.environ, DATABASE_URL=db_url(n)), capture_output=True,
                   timeout=3600)
    return round(time.monotonic() - t0, 1)


def setup(n):
    start = os.environ.get("SCALE_FROM", "users")  # a phase: resume a stopped generation
    if os.environ.get("REUSE") == "1" and ready_db(n):
        out(setup=db_name(n), reused=True, migrate_seconds=migrate(n))
        return
    if start == "users":
        admin("DROP DATABASE IF EXISTS %s WITH (FORCE)" % db_name(n))
        admin("CREATE DATABASE %s" % db_name(n))
        migrate(n)
    conn = psycopg2.connect(db_url(n))
    t0 = time.monotonic()
    took = gen.generate(conn, n, start)
    conn.close()
    size = admin("SELECT pg_size_pretty(pg_database_size('%s'))" % db_name(n))[0][0]
    out(setup=db_name(n), images=n, seconds=round(time.monotonic() - t0, 1), phases=took,
        database_size=size)
    admin("COMMENT ON DATABASE %s IS '%s'" % (db_name(n), marker(n)))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_api(n):
    port = free_port()
    env = dict(os.environ, DATABASE_URL=db_url(n), PIXPLANE_LISTEN="127.0.0.1:%d" % port,
               PIXPLANE_RATE_LIMIT="0", PIXPLANE_ACCESS_LOG="false", PIXPLANE_IMAGE_CACHE="0")
    log = open("/tmp/pixplane-bench-scale-%s.log" % label(n), "wb")
    p = subprocess.Popen([os.path.join(BUILD, "pixplane-api")], env=env,
                         stdout=subprocess.DEVNULL, stderr=log)
    url = "http://127.0.0.1:%d" % port
    if not wait_until(lambda: requests.get(url + "/healthz", timeout=1).ok, 10):
        p.kill()
        raise SystemExit("api did not start (see %s)" % log.name)
    return p, url


def wait_until(ok, seconds):
    """Polls ok() (a connection refused counts as not yet) every 0.1 s for up to seconds."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if ok():
                return True
        except requests.RequestException:
            pass
        time.sleep(0.1)
    return False


def session(user):
    tok = subprocess.check_output([os.path.join(BUILD, "pixplane-api"), "token", "--user", user],
                                  text=True).strip()
    s = requests.Session()
    s.headers["Authorization"] = "Bearer " + tok
    return s


class Subject:
    """A measured user: images to read, and a change-log cursor before its last changes."""

    def __init__(self, conn, kind, user):
        self.kind, self.user = kind, user
        with conn.cursor() as cur:
            cur.execute("SELECT images FROM user_usage WHERE user_id = %s", (user,))
            self.images = cur.fetchone()[0]
            cur.execute("SELECT image_id::text FROM images WHERE owner_id = %s"
                        " AND status = 'active' ORDER BY random() LIMIT 200", (user,))
            self.ids = [r[0] for r in cur.fetchall()]
            assert self.ids, "no active image of " + user
            cur.execute("SELECT txid::text, seq FROM change_log WHERE user_id = %s"
                        " ORDER BY txid DESC, seq DESC OFFSET %s LIMIT 1",
                        (user, min(50, self.images - 1)))
            self.txid, self.seq = cur.fetchone()
        raw = ("c.%s.%d" % (self.txid, self.seq)).encode()
        self.cursor = base64.urlsafe_b64encode(raw).decode().rstrip("=")


def subjects(conn, n):
    """The first heavy user and the typical user whose image count is the mean's."""
    mean = n / (n // 10)
    with conn.cursor() as cur:
        cur.execute("SELECT user_id FROM user_usage WHERE user_id = ANY (%s)"
                    " ORDER BY abs(images - %s), user_id LIMIT 1",
                    (["scale-u%d" % k for k in range(1, 50)], mean))
        typical = cur.fetchone()[0]
    return [Subject(conn, "heavy", "scale-h1"), Subject(conn, "typical", typical)]


def request_cases(url, subs):
    """(case, user kind, callable) for each measured request."""
    cases = []
    for sub in subs:
        s = session(sub.user)
        ids = sub.ids

        def get(path, s=s):
            r = s.get(url + path, timeout=30)
            assert r.status_code == 200, (path, r.status_code, r.text[:300])
            return r

        cases += [
            ("GET /images/{id}", sub.kind, lambda i, g=get, ids=ids: g("/images/" + ids[i % len(ids)])),
            ("GET /images", sub.kind, lambda i, g=get: g("/images")),
            ("GET /sync since=0", sub.kind, lambda i, g=get: g("/sync?since=0")),
            ("GET /sync recent cursor", sub.kind,
             lambda i, g=get, c=sub.cursor: g("/sync?since=" + c)),
        ]
    return cases


def pcts(ms):
    t = sorted(ms)
    return {"p50_ms": round(statistics.median(t), 3),
            "p99_ms": round(t[max(0, int(len(t) * 0.99) - 1)], 3), "n": len(t)}


def measure_requests(url, subs):
    cases = request_cases(url, subs)
    times = {(c[0], c[1]): [] for c in cases}
    for i in range(WARM + REQS):  # interleaved: one request of each case per round
        for name, kind, fn in cases:
            t0 = time.perf_counter()
            fn(i)
            if i >= WARM:
                times[(name, kind)].append((time.perf_counter() - t0) * 1000)
    return {k: pcts(v) for k, v in times.items()}


def stmt_texts():
    return json.loads(subprocess.check_output([os.path.join(BUILD, "bench", "scale", "stmts")]))


def prepare(cur, sql, names):
    for name in names:
        cur.execute("PREPARE %s AS %s" % (name, sql[name]))


def new_session(cur, user, tag):
    """An upload session of user's in 'uploading', as POST /uploads leaves it; its id."""
    sid = str(uuid.uuid4())
    cur.execute("INSERT INTO upload_sessions (upload_session_id, owner_id, file_name, file_size,"
                " mime_type, chunk_size, chunk_count, object_key, expires_at)"
                " VALUES (%s, %s, %s, 1000, 'image/jpeg', 1000, 1, %s, now() + interval '1 day')",
                (sid, user, "scale-%s.jpg" % tag, "blobs/" + sid))
    return sid


def bank():
    """A bank of POP_BANK challenges as finalize stores it (common/pop.c bank_json)."""
    return json.dumps([{"nonce": uuid.uuid4().hex, "answer": uuid.uuid4().hex * 2,
                        "ranges": [{"offset": 0, "length": 64}]} for _ in range(POP_BANK)])


def complete_db_once(cur, user):
    """The statements of complete's path for a new content, each in its own transaction as
    the API runs them: the claim (session_claim), the commit (fin_commit_upload) and the
    proof-of-possession bank (pop_store); the milliseconds of the three."""
    sid = new_session(cur, user, "db")
    lease, image = str(uuid.uuid4()), str(uuid.uuid4())
    digest = uuid.uuid4().hex * 2
    challenges = bank()
    t0 = time.perf_counter()
    cur.execute("EXECUTE session_claim (%s, %s, %s, 900)", (sid, user, lease))
    assert cur.rowcount == 1
    cur.execute("EXECUTE fin_commit_upload (%s, %s, 1000, %s, %s, %s, %s, %s)",
                (digest, "blobs/" + sid, sid, lease, user, image, TOPIC))
    assert cur.fetchone()[3], "the commit made no image"
    cur.execute("EXECUTE pop_store (%s, %s, %s)", (digest, challenges, POP_BANK))
    assert cur.rowcount == POP_BANK
    return (time.perf_counter() - t0) * 1000


def measure_complete_db(n, subs, sql):
    conn = psycopg2.connect(db_url(n))
    conn.autocommit = True
    times = {s.kind: [] for s in subs}
    with conn.cursor() as cur:
        prepare(cur, sql, ("session_claim", "fin_commit_upload", "pop_store"))
        for i in range(WARM + COMPLETES):
            for s in subs:
                ms = complete_db_once(cur, s.user)
                if i >= WARM:
                    times[s.kind].append(ms)
    conn.close()
    return {("complete (DB: claim, commit, bank)", k): pcts(v) for k, v in times.items()}


def upload_once(url, s):
    """A real upload of 1 KiB to the stack's radosgw; the milliseconds of its complete."""
    data = os.urandom(1024)
    r = s.post(url + "/uploads", json={"file_name": "scale.jpg", "file_size": len(data),
                                       "mime_type": "image/jpeg"}, timeout=30)
    assert r.status_code == 201, r.text[:300]
    sid = r.json()["upload_session_id"]
    r = s.post(url + "/uploads/%s/chunks/urls" % sid, json={"chunk_numbers": [0]}, timeout=30)
    assert r.status_code == 200, r.text[:300]
    put = requests.put(r.json()["urls"][0]["url"], data=data, timeout=60)
    assert put.status_code == 200, put.text[:300]
    t0 = time.perf_counter()
    r = s.post(url + "/uploads/%s/complete" % sid, timeout=60)
    ms = (time.perf_counter() - t0) * 1000
    assert r.status_code == 200, r.text[:300]
    return ms


def measure_complete_full(url, subs):
    sessions = [(sub.kind, session(sub.user)) for sub in subs]
    times = {kind: [] for kind, _ in sessions}
    for i in range(WARM + COMPLETES):
        for kind, s in sessions:
            ms = upload_once(url, s)
            if i >= WARM:
                times[kind].append(ms)
    return {("POST /uploads/{id}/complete (full)", k): pcts(v) for k, v in times.items()}


def big_tables(cur):
    cur.execute("SELECT relname FROM pg_class WHERE relkind = 'r' AND reltuples > %s",
                (BIG_ROWS,))
    return {r[0] for r in cur.fetchall()}


def explain_calls(sub, changed):
    """(statement, parameters) of every statement sub's measured requests run; the complete
    path's two as one transaction (rolled back)."""
    lease, sid, digest = str(uuid.uuid4()), "SID", uuid.uuid4().hex * 2
    return [
        ("image_read", [(sub.ids[0], sub.user, RETENTION)]),
        ("image_list", [(sub.user, "active,verifying", None, None, 51)]),
        ("sync_watermark", [()]),
        ("sync_snapshot", [(sub.user, ZERO, 101)]),
        ("sync_snapshot_albums", [(sub.user, ZERO, ZERO, 101)]),
        ("sync_expired", [(sub.txid, sub.seq)]),
        ("sync_changes", [(sub.user, sub.txid, sub.seq, 101)]),
        ("sync_states", [("{%s}" % ",".join(changed), sub.user)]),
        ("session_claim", [(sid, sub.user, lease, 900)]),
        ("fin_commit_upload", [(digest, "blobs/" + sid, 1000, sid, lease, sub.user,
                                str(uuid.uuid4()), TOPIC)]),
        ("pop_store", [(digest, bank(), POP_BANK)]),
    ]


def run_logged(conn, cur, stmt, params):
    """Executes a prepared statement with auto_explain reporting every plan it runs (nested
    ones in functions and triggers first, the statement's own last); the plans' texts."""
    del conn.notices[:]
    args = " (%s)" % ", ".join(["%s"] * len(params)) if params else ""
    cur.execute("EXECUTE " + stmt + args, params)
    return list(conn.notices)


def node_rows(text, big):
    """The most rows a plan node produced over its loops, or read and filtered out (a small
    table's Seq Scan aside)."""
    most = 0
    for line in text.splitlines():
        small = re.search(r"Seq Scan on (\w+)", line)
        m = re.search(r"actual time=[\d.]+\.\.[\d.]+ rows=(\d+) loops=(\d+)", line)
        removed = re.search(r"Rows Removed by (?:Filter|Index Recheck): (\d+)", line)
        if m and not (small and small.group(1) not in big):
            most = max(most, int(m.group(1)) * int(m.group(2)))
        if removed:
            most = max(most, int(removed.group(1)))
    return most


def explain_subject(conn, cur, sub, big, generic):
    cur.execute("SELECT image_id::text FROM change_log WHERE user_id = %s AND (txid, seq) >"
                " (%s::xid8, %s) AND image_id IS NOT NULL LIMIT 100",
                (sub.user, sub.txid, sub.seq))
    changed = [r[0] for r in cur.fetchall()]
    cur.execute("SET plan_cache_mode = %s", ("force_generic_plan" if generic else
                                             "force_custom_plan",))
    results = []
    cur.execute("BEGIN")  # the writes are rolled back
    sid = new_session(cur, sub.user, "explain")
    for stmt, calls in explain_calls(sub, changed):
        params = [sid if p == "SID" else p for p in calls[0]]
        plans = run_logged(conn, cur, stmt, params)
        text = "".join(plans)
        seq = sorted({t for t in re.findall(r"Seq Scan on (\w+)", text) if t in big})
        top = re.search(r"Buffers: shared ([^\n]*)", plans[-1] if plans else "")
        rows = node_rows(text, big)
        results.append({"statement": stmt, "user": sub.kind, "generic_plan": generic,
                        "seq_scans_on_big_tables": seq, "max_node_rows": rows,
                        "index_bound": not seq and rows <= SCAN_ROWS_MAX,
                        "buffers": top.group(1) if top else "", "plans": text})
    cur.execute("ROLLBACK")
    return results


def explain_all(n, subs, sql):
    conn = psycopg2.connect(db_url(n))
    conn.autocommit = True
    res = []
    with conn.cursor() as cur:
        big = big_tables(cur)
        prepare(cur, sql, sorted({s for s, _ in explain_calls(subs[0], [])}))
        for q in ("LOAD 'auto_explain'", "SET auto_explain.log_min_duration = 0",
                  "SET auto_explain.log_analyze = on", "SET auto_explain.log_buffers = on",
                  "SET auto_explain.log_nested_statements = on",
                  "SET client_min_messages = log"):
            cur.execute(q)
        for sub in subs:
            for generic in (False, True):
                res += explain_subject(conn, cur, sub, big, generic)
    conn.close()
    return res


def report_plans(n, plans):
    """Every plan to a file; on stdout a line per statement, with the plans of those not
    index-bound."""
    path = "/tmp/pixbench-scale-plans-%s.txt" % label(n)
    with open(path, "w") as f:
        for p in plans:
            f.write("==== %s (%s user, %s plan): index-bound %s\n%s\n" % (
                p["statement"], p["user"], "generic" if p["generic_plan"] else "custom",
                p["index_bound"], p["plans"]))
    for p in plans:
        out(explain=p["statement"], images=n, **{k: v for k, v in p.items()
                                                 if k != "statement" and
                                                 (k != "plans" or not p["index_bound"])})
    bad = sorted({p["statement"] for p in plans if not p["index_bound"]})
    out(index_bound_check=n, statements=len({p["statement"] for p in plans}),
        not_index_bound=bad, plans_file=path)


def measure(n, sql):
    proc, url = start_api(n)
    try:
        conn = psycopg2.connect(db_url(n))
        subs = subjects(conn, n)
        conn.close()
        for s in subs:
            out(size=n, user=s.kind, user_id=s.user, images=s.images)
        out(size=n, loadavg_before=os.getloadavg())  # other work on the machine: noise
        res = measure_requests(url, subs)
        res.update(measure_complete_db(n, subs, sql))
        res.update(measure_complete_full(url, subs))
        out(size=n, loadavg_after=os.getloadavg())
        for (case, kind), v in res.items():
            out(bench="scale", images=n, case=case, user=kind, **v)
        plans = explain_all(n, subs, sql)
        report_plans(n, plans)
        return res
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)


def table(results):
    """Markdown rows: case, user, p50/p99 at the smallest and largest size, ratios."""
    lo, hi = min(SIZES), max(SIZES)
    rows = ["| request | user | %s p50 / p99 ms | %s p50 / p99 ms | ratio p50 / p99 |"
            % (label(lo), label(hi)), "| --- | --- | --- | --- | --- |"]
    for key, a in results[lo].items():
        b = results[hi][key]
        rows.append("| %s | %s | %.2f / %.2f | %.2f / %.2f | %.2f / %.2f |" % (
            key[0], key[1], a["p50_ms"], a["p99_ms"], b["p50_ms"], b["p99_ms"],
            b["p50_ms"] / a["p50_ms"], b["p99_ms"] / a["p99_ms"]))
    return "\n".join(rows)


def main():
    results = {}
    for n in SIZES:
        setup(n)
        if MODE == "generate":
            continue
        try:
            results[n] = measure(n, stmt_texts())
        finally:
            if not KEEP:
                admin("DROP DATABASE IF EXISTS %s WITH (FORCE)" % db_name(n))
    if len(results) > 1:
        lo, hi = min(SIZES), max(SIZES)
        for key, a in results[lo].items():
            b = results[hi][key]
            out(bench="scale_ratio", case=key[0], user=key[1], sizes=[lo, hi],
                p50_ratio=round(b["p50_ms"] / a["p50_ms"], 2),
                p99_ratio=round(b["p99_ms"] / a["p99_ms"], 2))
        print(table(results), flush=True)


if __name__ == "__main__":
    main()
