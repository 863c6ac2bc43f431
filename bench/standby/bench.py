# bench/standby/run: the same requests through two APIs on one HA formation, interleaved:
# one reading from the primary only (no DATABASE_READ_URL), one reading from the standby
# (prefer-standby). p50/p99 of GET /images (first page), GET /sync (a caught-up device's
# poll) and GET /sync?since=0 (a fresh device's first page); then PATCH and the writer's
# GET /images right after it (read-your-writes: the write's position header, the replay
# check). REQS (1000) requests per case.
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
os.environ["PIXPLANE_BUILD"] = sys.argv[1] if len(sys.argv) > 1 else "build"
from conftest import API_BIN, ApiProcess, Client, user_id  # noqa: E402

PG_HA = os.path.join(ROOT, "minio-dev", "pg-ha")
REQS = int(os.environ.get("REQS", "1000"))
IMAGES = 50


def pg_ha(*args):
    return subprocess.run([PG_HA, *args], capture_output=True, text=True, check=True,
                          timeout=240).stdout


def timed(c, method, path, body=None):
    t = time.perf_counter()
    st, doc = c.call(method, path, body)
    assert st == 200, (path, st, doc)
    return time.perf_counter() - t, doc


def pct(xs):
    xs = sorted(xs)
    return {"p50_ms": round(xs[len(xs) // 2] * 1000, 2),
            "p99_ms": round(xs[int(len(xs) * 0.99)] * 1000, 2)}


def seed(c):
    for i in range(IMAGES):
        c.upload(os.urandom(300 + i), name="s-%d.jpg" % i)
    cur = None
    for _ in range(100):
        _, doc = timed(c, "GET", "/sync" + ("?since=" + cur if cur else ""))
        cur = doc["cursor"]
        if not doc["has_more"]:
            return cur
    raise AssertionError("sync did not finish")


def reads(clients, cursor):
    cases = {"GET /images": "/images?limit=50", "GET /sync (caught up)": "/sync?since=" + cursor,
             "GET /sync?since=0": "/sync?limit=100"}
    for name, path in cases.items():
        lat = {k: [] for k in clients}
        for _ in range(REQS):
            for k, c in clients.items():
                lat[k].append(timed(c, "GET", path)[0])
        for k in clients:
            print(json.dumps({"bench": name, "reads_on": k, **pct(lat[k])}), flush=True)


def writes(clients, image):
    lat = {k: ([], []) for k in clients}
    for i in range(REQS // 2):
        for k, c in clients.items():
            w, _ = timed(c, "PATCH", "/images/%s" % image, {"name": "w-%d.jpg" % i})
            r, doc = timed(c, "GET", "/images?limit=50")
            assert any(x["name"] == "w-%d.jpg" % i for x in doc["images"]), "missed own write"
            lat[k][0].append(w)
            lat[k][1].append(r)
    for k in clients:
        print(json.dumps({"bench": "PATCH /images/{id}", "reads_on": k, **pct(lat[k][0])}))
        print(json.dumps({"bench": "GET /images right after the PATCH", "reads_on": k,
                          **pct(lat[k][1])}), flush=True)


def run(url, read_url):
    env = {"DATABASE_URL": url, "PIXPLANE_RATE_LIMIT": "0"}
    subprocess.run([API_BIN, "migrate"], env=dict(os.environ, **env), check=True,
                   capture_output=True, timeout=120)
    prim = ApiProcess(env)
    stby = ApiProcess(dict(env, DATABASE_READ_URL=read_url))
    try:
        user = user_id("sbench")
        seeder = Client(prim.url, prim.token(user))
        cursor = seed(seeder)
        time.sleep(1)  # the standby replays the seed
        clients = {"primary": seeder, "standby": Client(stby.url, stby.token(user))}
        reads(clients, cursor)
        image = clients["primary"].call("GET", "/images?limit=1")[1]["images"][0]["image_id"]
        writes(clients, image)
    finally:
        prim.stop()
        stby.stop()


def main():
    given = sys.argv[2] if len(sys.argv) > 2 else None
    d = given or tempfile.mkdtemp(prefix="pixbench-standby-")
    try:
        urls = dict(line.split("=", 1) for line in pg_ha("start", d).splitlines() if "=" in line)
        run(urls["DATABASE_URL"], urls["DATABASE_READ_URL"])
    finally:
        if not given:
            pg_ha("destroy", d)
            shutil.rmtree(d, ignore_errors=True)


main()
