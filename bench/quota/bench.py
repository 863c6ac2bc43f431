# bench/quota/run: POST /uploads with quota admission (usage row lock, quota_kind, the
# reservation trigger) vs a base binary, and the reconciler's usage audit time.
import concurrent.futures as cf
import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
os.environ["PIXPLANE_BUILD"] = sys.argv[1] if len(sys.argv) > 1 else "build"
import conftest  # noqa: E402
from conftest import ApiProcess, Client, user_id  # noqa: E402

SEQ, CONC = 300, 320
BODY = {"file_name": "b.jpg", "file_size": 1000, "mime_type": "image/jpeg"}


def creates(binary, label):
    conftest.API_BIN = binary
    p = ApiProcess({"PIXPLANE_SESSIONS_PER_USER": "100000"})
    try:
        u = user_id("qbench")
        c = Client(p.url, conftest.make_token(u))
        for _ in range(20):
            c.call("POST", "/uploads", BODY)
        lat = []
        for _ in range(SEQ):
            t = time.perf_counter()
            st, _ = c.call("POST", "/uploads", BODY)
            lat.append(time.perf_counter() - t)
            assert st == 201, st
        lat.sort()
        t = time.perf_counter()
        with cf.ThreadPoolExecutor(16) as ex:
            codes = list(ex.map(lambda _: c.call("POST", "/uploads", BODY)[0], range(CONC)))
        assert codes.count(201) == CONC, codes
        print(json.dumps({"bench": "create", "binary": label,
                          "p50_ms": round(lat[SEQ // 2] * 1000, 2),
                          "p99_ms": round(lat[int(SEQ * 0.99)] * 1000, 2),
                          "one_user_16_concurrent_per_s": round(CONC / (time.perf_counter() - t))}))
        # the bench's sessions are aborted in SQL: they must not hold the user's reservations
        conftest.sql("UPDATE upload_sessions SET status = 'aborted' WHERE owner_id = '%s'" % u)
    finally:
        p.stop()


def audit():
    rec = os.path.join(conftest.BUILD, "pixplane-reconciler")
    users = conftest.sql_value("SELECT count(*) FROM users")
    images = conftest.sql_value("SELECT count(*) FROM images")
    t = time.perf_counter()
    p = subprocess.run([rec, "--once", "--dry-run", "--only", "usage", "--report", "json"],
                       capture_output=True, text=True, timeout=600)
    print(json.dumps({"bench": "usage_audit", "users": int(users), "images": int(images),
                      "seconds": round(time.perf_counter() - t, 3), "rc": p.returncode}))


base = os.environ.get("QUOTA_BENCH_BASE")
if base:
    creates(base, "base")
creates(os.path.join(conftest.BUILD, "pixplane-api"), "quota")
audit()
