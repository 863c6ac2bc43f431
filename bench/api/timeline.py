# Driver for bench/api/timeline: GET /images?sort=taken_at at 1,000,000 vs 10,000 images of
# one user. Its own database (created, migrated, dropped) and API process; bounded loops.
import base64
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.parse

import requests

BUILD = sys.argv[1]
KEEP = "--keep" in sys.argv[2:]
DB = os.environ.get("BENCH_TIMELINE_DB", "pixbench_timeline")
REQS = int(os.environ.get("BENCH_TIMELINE_REQS", "1000"))  # per case, after 50 warm-up
BIG, SMALL = 1_000_000, 10_000
USERS = {BIG: "bench-tl-1m", SMALL: "bench-tl-10k"}
ADMIN_URL = os.environ["DATABASE_URL"]
URL = ADMIN_URL.rsplit("/", 1)[0] + "/" + DB

# Rows as uploads make them: one blob per 1,000 images (dedup does not matter here), 2 % in
# the trash, 90 % with a file_modified_at spread over 24 years (the trigger makes it
# taken_at), the rest at their upload time within 3 years.
FILL_SQL = """
SET pixplane.events = 'off'; -- bulk rows: no integration events (015)
INSERT INTO users (user_id) VALUES ('{user}') ON CONFLICT DO NOTHING;
INSERT INTO blobs (content_hash, storage_path, size, ref_count)
  SELECT encode(sha256(('tl' || g)::bytea), 'hex'), 'blobs/bench-tl-' || g, 1000, 1
  FROM generate_series(1, 1000) g ON CONFLICT DO NOTHING;
INSERT INTO images (image_id, owner_id, content_hash, name, size, mime_type, status,
                    deleted_at, file_modified_at, created_at, updated_at)
  SELECT gen_random_uuid(), '{user}', encode(sha256(('tl' || (g % 1000 + 1))::bytea), 'hex'),
         'img' || g || '.jpg', 1000, 'image/jpeg',
         CASE WHEN g % 50 = 0 THEN 'deleted' ELSE 'active' END,
         CASE WHEN g % 50 = 0 THEN now() END,
         CASE WHEN g % 10 <> 0 THEN timestamptz '2000-01-01' + random() * interval '24 years' END,
         now() - random() * interval '3 years', now()
  FROM generate_series(1, {n}) g;
"""

# The API's statement image_list_taken (services/api/sql.c), for EXPLAIN.
STMT = """PREPARE tl(text, text, timestamptz, uuid, int, timestamptz, timestamptz) AS
SELECT i.image_id, i.owner_id, i.name, i.size, i.mime_type, i.content_hash, i.visibility,
 i.status, to_char(i.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
 to_char(i.updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
 to_char(i.taken_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'), i.taken_at::text
 FROM images i WHERE i.owner_id = $1 AND i.status = ANY (string_to_array($2, ','))
 AND (i.taken_at, i.image_id) < ($3::timestamptz, $4::uuid)
 AND i.taken_at >= $6::timestamptz AND i.taken_at < $7::timestamptz
 ORDER BY i.taken_at DESC, i.image_id DESC LIMIT $5;
"""


def psql(q, url=URL, timeout=1800):
    return subprocess.check_output(["psql", url, "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1",
                                    "-c", q], text=True, timeout=timeout).strip()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def api_bin():
    return os.path.join(BUILD, "pixplane-api")


def setup():
    psql("DROP DATABASE IF EXISTS %s" % DB, ADMIN_URL)
    psql("CREATE DATABASE %s" % DB, ADMIN_URL)
    subprocess.run([api_bin(), "migrate"], env=dict(os.environ, DATABASE_URL=URL), check=True,
                   capture_output=True, timeout=300)
    for n, user in USERS.items():
        t0 = time.monotonic()
        psql(FILL_SQL.format(user=user, n=n))
        print(json.dumps({"setup": user, "images": n,
                          "seconds": round(time.monotonic() - t0, 1)}), flush=True)
    psql("VACUUM ANALYZE")


def start_api():
    port = free_port()
    env = dict(os.environ, DATABASE_URL=URL, PIXPLANE_LISTEN="127.0.0.1:%d" % port,
               PIXPLANE_RATE_LIMIT="0", PIXPLANE_ACCESS_LOG="false")
    p = subprocess.Popen([api_bin()], env=env, stdout=subprocess.DEVNULL,
                         stderr=open("/tmp/pixplane-bench-timeline.log", "wb"))
    url = "http://127.0.0.1:%d" % port
    for _ in range(100):
        try:
            if requests.get(url + "/healthz", timeout=1).ok:
                return p, url
        except requests.RequestException:
            time.sleep(0.1)
    raise SystemExit("api did not start")


def session(user):
    tok = subprocess.check_output([api_bin(), "token", "--user", user], text=True).strip()
    s = requests.Session()
    s.headers["Authorization"] = "Bearer " + tok
    return s


def get(s, url, path):
    r = s.get(url + path, timeout=30)
    assert r.status_code == 200, (path, r.status_code, r.text[:300])
    return r.json()


def cursor_at(s, url, depth):
    """The API's cursor after `depth` rows of the timeline, paged 200 at a time."""
    cur = None
    for _ in range(depth // 200):
        doc = get(s, url, "/images?sort=taken_at&limit=200" +
                  ("&cursor=" + urllib.parse.quote(cur) if cur else ""))
        cur = doc["next_cursor"]
    return cur


def row_at(user, depth):
    """(taken_at, image_id) of the row at depth, from SQL, to check the API's cursor."""
    return psql("SELECT taken_at, image_id FROM images WHERE owner_id = '%s' AND status IN"
                " ('active', 'verifying') ORDER BY taken_at DESC, image_id DESC"
                " OFFSET %d LIMIT 1" % (user, depth - 1)).split("|")


def cursor_id(cur):
    """The image id in a cursor (opaque to clients; read here only to check the depth)."""
    return base64.urlsafe_b64decode(cur + "=" * (-len(cur) % 4)).decode().rsplit("|", 1)[1]


def cases(url):
    """(name, images, depth, session, path) for each measured request."""
    out = []
    for n, depths in ((BIG, (0, 50_000, 500_000)), (SMALL, (0, 5_000))):
        s = session(USERS[n])
        for d in depths:
            path = "/images?sort=taken_at"
            if d:
                cur = cursor_at(s, url, d)
                assert cursor_id(cur) == row_at(USERS[n], d)[1], "cursor not at row %d" % d
                path += "&cursor=" + urllib.parse.quote(cur)
            out.append(("%s@%d" % (n, d), n, d, s, path))
    return out


def measure(url, cs):
    times = {c[0]: [] for c in cs}
    for i in range(50 + REQS):  # interleaved: one request of each case per round
        for name, _, _, s, path in cs:
            t0 = time.perf_counter()
            doc = get(s, url, path)
            dt = (time.perf_counter() - t0) * 1000
            assert len(doc["images"]) == 50, (name, len(doc["images"]))
            if i >= 50:
                times[name].append(dt)
    res = {}
    for name, n, d, _, _ in cs:
        t = sorted(times[name])
        res[name] = (statistics.median(t), t[int(len(t) * 0.99) - 1])
        print(json.dumps({"bench": "timeline", "images": n, "depth": d, "requests": len(t),
                          "p50_ms": round(res[name][0], 3), "p99_ms": round(res[name][1], 3)}),
              flush=True)
    return res


def explain(user, depth, generic):
    top = ("infinity", "ffffffff-ffff-ffff-ffff-ffffffffffff")  # the API's first-page key
    ts, iid = row_at(user, depth) if depth else top
    mode = "SET plan_cache_mode = force_generic_plan;" if generic else ""
    q = (mode + STMT + "EXPLAIN (ANALYZE, BUFFERS) EXECUTE tl('%s', 'active,verifying', '%s',"
         " '%s', 51, '-infinity', 'infinity');" % (user, ts, iid))
    plan = psql(q)
    print(json.dumps({"explain": user, "depth": depth, "generic_plan": generic,
                      "plan": plan.splitlines()}), flush=True)
    return plan


def main():
    setup()
    proc, url = start_api()
    try:
        res = measure(url, cases(url))
        for a, b, what in (("%d@0" % BIG, "%d@0" % SMALL, "first_page"),
                           ("%d@50000" % BIG, "%d@5000" % SMALL, "deep_page")):
            print(json.dumps({"bench": "timeline_ratio", "what": what, "cases": [a, b],
                              "p50_ratio": round(res[a][0] / res[b][0], 3),
                              "p99_ratio": round(res[a][1] / res[b][1], 3)}), flush=True)
        for n, d in ((BIG, 0), (BIG, 50_000), (SMALL, 0), (SMALL, 5_000)):
            for generic in (False, True):
                explain(USERS[n], d, generic)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
        if not KEEP:
            psql("DROP DATABASE IF EXISTS %s" % DB, ADMIN_URL)


if __name__ == "__main__":
    main()
