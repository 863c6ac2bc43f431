"""Webhook delivery on the full path, with its own database, broker, API, relay (a
pixplane-worker whose variant consumer reads an unused topic, so only the relay works) and
pixplane-hooks, and a receiver on 127.0.0.1 that checks every signature:
- latency: uploads through the API one after another (a new one every 50 ms); from the
  answer of complete (the commit) to the receiver's receipt of its image.created, p50/p99;
- throughput: N events committed at once (pix_event in one transaction, the function the
  triggers call) to one endpoint: deliveries/s from the commit to the last receipt, for N
  images (parallel chains) and for one image (one ordered chain: one request at a time).
Prints JSON lines."""
import json
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
os.environ.setdefault("PIXPLANE_BUILD", sys.argv[1] if len(sys.argv) > 1 else "build")

from test_webhooks import Hooks, Receiver, endpoint  # noqa: E402
from test_worker import Worker, WorkerStack, wait_until  # noqa: E402

UPLOADS = int(os.environ.get("HOOKS_BENCH_UPLOADS", "200"))
EVENTS = int(os.environ.get("HOOKS_BENCH_EVENTS", "5000"))
# e.g. HOOKS_BENCH_KAFKA="fetch.wait.max.ms=50": extra librdkafka settings of the hooks consumer
HOOKS_ENV = {"PIXPLANE_KAFKA_OPTIONS": os.environ["HOOKS_BENCH_KAFKA"]} if os.environ.get(
    "HOOKS_BENCH_KAFKA") else {}


def report(**kw):
    print(json.dumps(kw), flush=True)


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100.0 * (len(xs) - 1))))]


def latency(ws, rx):
    endpoint(ws, rx, "lat", events=("image.created",))
    c = ws.client("hb")
    done = {}
    for i in range(UPLOADS):
        t = time.monotonic()
        _, doc = c.upload(os.urandom(2048) + str(i).encode(), name="b%d.jpg" % i)
        done[doc["image_id"]] = time.time()
        time.sleep(max(0, 0.05 - (time.monotonic() - t)))
    wait_until(lambda: len({g["key"] for g in rx.of("/ep/lat")} & set(done)) == len(done), 120,
               "every image.created")
    first = {}
    for g in rx.of("/ep/lat"):
        first.setdefault(g["key"], g["at"])
    ms = [(first[k] - done[k]) * 1000 for k in done]
    report(bench="commit_to_receipt", uploads=UPLOADS, p50_ms=round(pct(ms, 50), 1),
           p99_ms=round(pct(ms, 99), 1), max_ms=round(max(ms), 1),
           bad_signatures=sum(not g["sig_ok"] for g in rx.of("/ep/lat")))
    ws.sql("DELETE FROM webhook_endpoints")


def throughput(ws, rx, name, one_key):
    endpoint(ws, rx, name, events=("bench.tick",))
    key = "'00000000-0000-4000-8000-000000000001'" if one_key else "gen_random_uuid()::text"
    t0 = time.time()
    ws.sql("SELECT pix_event('bench.tick', %s, jsonb_build_object('n', g))"
           " FROM generate_series(1, %d) g" % (key, EVENTS))
    path = "/ep/" + name
    wait_until(lambda: len({g["id"] for g in rx.of(path)}) >= EVENTS, 600, "every tick")
    last = max(g["at"] for g in rx.of(path))
    got = rx.of(path)
    in_order = True
    if one_key:
        ns = [json.loads(g["body"])["data"]["n"] for g in got]
        in_order = ns == sorted(ns)
    report(bench="deliveries_per_second", keys=1 if one_key else EVENTS, events=EVENTS,
           seconds=round(last - t0, 2), per_second=round(EVENTS / (last - t0), 1),
           received=len(got), bad_signatures=sum(not g["sig_ok"] for g in got),
           in_order=in_order)
    ws.sql("DELETE FROM webhook_endpoints")


def main():
    ws = WorkerStack()
    ws.start()
    relay = hooks = None
    rx = Receiver()
    try:
        relay = Worker(ws, PIXPLANE_UPLOAD_TOPIC="bench-unused")
        hooks = Hooks(ws, **HOOKS_ENV)
        wait_until(lambda: hooks.events("partitions_assigned"), 30, "hooks consuming")
        report(bench="setup", relay_poll="200ms (default)", hooks_poll="100ms",
               concurrency="32 (default)", hooks_kafka_options=HOOKS_ENV.get(
                   "PIXPLANE_KAFKA_OPTIONS", ""))
        latency(ws, rx)
        throughput(ws, rx, "many", one_key=False)
        throughput(ws, rx, "one", one_key=True)
        hooks.stop()
        report(bench="hooks_counters", **{k: v for k, v in hooks.events("stopped")[-1].items()
                                          if k not in ("ts", "level", "service", "msg")})
    finally:
        rx.stop()
        for p in (hooks, relay):
            if p and not p.stopped:
                p.stop()
        ws.stop()


if __name__ == "__main__":
    main()
