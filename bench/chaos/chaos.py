# Driver of bench/chaos/run (issue 14, "Chaos"). See bench/chaos/README.md.
#
# Runs its own pixplane-api, pixplane-worker and pixplane-reconciler (daemon) on free ports
# against the stack's database, bucket and broker, drives the soak workload at them, and at
# random intervals: kill -9 one of those three (then restarts it with the same command line
# and environment), restarts the stack's PostgreSQL (pg_ctl restart -m fast, same data dir
# and port) or radosgw (same command line, port and pid file), or takes every Kafka broker
# down for a while (the mock broker's control file). Then settles, runs one reconciler pass
# and checks: acknowledged uploads' bytes, the invariant checker, variants of every
# acknowledged image, sync convergence, and that the shared stack is back as it was.
import argparse
import concurrent.futures as cf
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import uuid

import requests

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "soak"))
import checks  # noqa: E402
from workload import (BUILD, ROOT, VARIANT_TYPES, Api, Device, OpenLoop,  # noqa: E402
                      Stats, User, Workload, log, make_bases, make_token,
                      report)

PGBIN = "/usr/lib/postgresql/15/bin"
FAULTS = ("kill_api", "kill_worker", "kill_reconciler", "restart_postgres", "restart_radosgw",
          "kafka_outage")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pid_alive(pid):
    """False for a gone or zombie process."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("State:"):
                    return "Z" not in line.split()[1]
    except (OSError, ValueError):
        return False
    return True


def wait_until(pred, timeout, interval=0.2):
    deadline = time.monotonic() + timeout
    for _ in range(int(timeout / interval) + 2):
        try:
            v = pred()
        except Exception:
            v = None
        if v:
            return v
        if time.monotonic() >= deadline:
            break
        time.sleep(interval)
    return None


def http_up(url, want=None):
    try:
        r = requests.get(url, timeout=2)
        return r.status_code == want if want else True
    except requests.RequestException:
        return False


class Proc:
    """One of our own pixplane processes: started with a fixed argv and environment, killed
    with SIGKILL and restarted the same way; its log appends across restarts."""

    def __init__(self, name, argv, env, ready_url, logdir):
        self.name, self.argv, self.env, self.ready_url = name, argv, env, ready_url
        self.log_path = os.path.join(logdir, name + ".log")
        self.p = None
        self.starts = 0
        self.stopped = False
        self.exits = []  # (how, returncode)

    def start(self, timeout=60):
        log_f = open(self.log_path, "ab")
        self.p = subprocess.Popen(self.argv, env=self.env, stdout=log_f, stderr=log_f,
                                  stdin=subprocess.DEVNULL, start_new_session=True, cwd=ROOT)
        log_f.close()
        self.starts += 1
        ok = wait_until(lambda: self.p.poll() is None and http_up(self.ready_url), timeout, 0.2)
        if not ok:
            raise RuntimeError("%s did not come up (exit %s); see %s"
                               % (self.name, self.p.poll(), self.log_path))

    def alive(self):
        return self.p is not None and self.p.poll() is None

    def kill9(self):
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGKILL)
        rc = self.p.wait(20)
        self.exits.append(("SIGKILL", rc))

    def stop(self, timeout=40):
        if self.p is None or self.stopped:
            return self.p.returncode if self.p else None
        self.stopped = True
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                rc = self.p.wait(timeout)
            except subprocess.TimeoutExpired:
                self.p.kill()
                rc = self.p.wait(10)
                self.exits.append(("SIGTERM timeout, SIGKILL", rc))
                return rc
        else:
            rc = self.p.returncode
            self.exits.append(("died on its own", rc))
            return rc
        self.exits.append(("SIGTERM", rc))
        return rc


class Stack:
    """The shared stack's PostgreSQL, radosgw and Kafka, as minio-dev/up started them."""

    def __init__(self):
        self.pg_dir = os.environ["PGHOST_DIR"]
        self.pg_data = os.path.join(self.pg_dir, "data")
        self.pg_port = os.environ["PGPORT"]
        self.s3_dir = os.environ["S3_DATA_DIR"]
        self.s3_conf = os.path.join(self.s3_dir, "ceph.conf")
        self.rgw_pidfile = os.path.join(self.s3_dir, "pids", "rgw.pid")
        self.s3_url = os.environ["S3_ENDPOINT"]
        self.control = os.environ["KAFKA_CONTROL"]
        self.rgw_children = []  # radosgw processes we started (reaped by us)

    # -- PostgreSQL
    def pg_pid(self):
        try:
            with open(os.path.join(self.pg_data, "postmaster.pid")) as f:
                lines = f.read().splitlines()
            return int(lines[0]), lines[3] if len(lines) > 3 else None
        except (OSError, ValueError, IndexError):
            return None, None

    def pg_ok(self):
        try:
            return checks.sql("SELECT 1", timeout=10) == [["1"]]
        except Exception:
            return False

    def pg_ctl(self, *args, timeout=120):
        cmd = ["runuser", "-u", "postgres", "--", os.path.join(PGBIN, "pg_ctl"), "-D",
               self.pg_data] + list(args)
        return subprocess.run(cmd, cwd="/", capture_output=True, text=True, timeout=timeout,
                              start_new_session=True)

    def restart_pg(self):
        before = self.pg_pid()
        t0 = time.monotonic()
        p = self.pg_ctl("-l", os.path.join(self.pg_dir, "postgres.log"), "-m", "fast", "-w",
                        "-t", "60", "restart")
        ok = wait_until(self.pg_ok, 60, 0.2)
        after = self.pg_pid()
        return {"rc": p.returncode, "ok": bool(ok) and p.returncode == 0,
                "down_s": round(time.monotonic() - t0, 1), "pid_before": before[0],
                "pid_after": after[0], "port_after": after[1],
                "stderr": p.stderr.strip()[-300:]}

    # -- radosgw
    def rgw_pid(self):
        try:
            return int(open(self.rgw_pidfile).read().strip())
        except (OSError, ValueError):
            return None

    def rgw_ok(self):
        try:
            return requests.get(self.s3_url + "/", timeout=2).status_code == 200
        except requests.RequestException:
            return False

    def start_rgw(self):
        out = open(os.path.join(self.s3_dir, "log", "rgw.out"), "ab")
        # minio-dev/lib.sh start_daemon: the pid (after exec) in the pid file minio-dev/down reads
        p = subprocess.Popen(["bash", "-c", 'echo $$ > "$0"; exec "$@"', self.rgw_pidfile,
                              "radosgw", "-f", "-c", self.s3_conf, "-n", "client.rgw.a"],
                             stdin=subprocess.DEVNULL, stdout=out, stderr=out, cwd=ROOT,
                             start_new_session=True)
        out.close()
        self.rgw_children.append(p)
        return wait_until(self.rgw_ok, 90, 0.2)

    def restart_rgw(self, rnd):
        pid = self.rgw_pid()
        sig = rnd.choice([signal.SIGTERM, signal.SIGKILL])
        t0 = time.monotonic()
        if pid and pid_alive(pid):
            os.kill(pid, sig)
        for c in self.rgw_children:
            c.poll()
        gone = wait_until(lambda: not pid_alive(pid) or any(
            c.pid == pid and c.poll() is not None for c in self.rgw_children), 15, 0.1)
        if not gone:
            os.kill(pid, signal.SIGKILL)
            wait_until(lambda: not pid_alive(pid) or any(
                c.pid == pid and c.poll() is not None for c in self.rgw_children), 10, 0.1)
        ok = self.start_rgw()
        return {"signal": sig.name, "ok": bool(ok), "down_s": round(time.monotonic() - t0, 1),
                "pid_before": pid, "pid_after": self.rgw_pid()}

    # -- Kafka (the mock broker's control file; see minio-dev/mock-kafka.c)
    def kafka_state(self):
        try:
            lines = open(self.control + ".state").read().splitlines()
            seq = int(lines[0].split()[1])
            up = all(l.split()[2] == "up" for l in lines[1:] if l.startswith("broker"))
            return seq, up
        except (OSError, ValueError, IndexError):
            return None, None

    def kafka(self, cmd):
        seq, _ = self.kafka_state()
        with open(self.control, "a") as f:
            f.write(cmd + "\n")
        want_up = cmd == "allup"
        return bool(wait_until(lambda: (self.kafka_state()[0] or 0) > (seq or 0)
                               and self.kafka_state()[1] == want_up, 15, 0.05))

    def kafka_outage(self, rnd, stop_ev):
        down_for = rnd.uniform(5, 25)
        t0 = time.monotonic()
        ok1 = self.kafka("alldown")
        stop_ev.wait(down_for)
        ok2 = self.kafka("allup")
        return {"ok": ok1 and ok2, "down_s": round(time.monotonic() - t0, 1)}

    def snapshot(self):
        pid, port = self.pg_pid()
        return {"pg_data": self.pg_data, "pg_port": port, "pg_ok": self.pg_ok(),
                "rgw_pidfile_pid": self.rgw_pid(), "rgw_ok": self.rgw_ok(),
                "s3_endpoint": self.s3_url, "kafka_all_up": self.kafka_state()[1]}


def main():
    ap = argparse.ArgumentParser(prog="bench/chaos/run")
    ap.add_argument("--minutes", type=float, default=5.0)
    ap.add_argument("--rate", type=float, default=4.0, help="workload ops/s (open loop)")
    ap.add_argument("--threads", type=int, default=16)
    ap.add_argument("--users", type=int, default=16)
    ap.add_argument("--device-users", type=int, default=5)
    ap.add_argument("--gap", default="12:30", help="seconds between faults, min:max")
    ap.add_argument("--settle", type=float, default=900.0, help="bounded wait after the run, s")
    ap.add_argument("--pre-drain", type=float, default=1800.0,
                    help="bounded wait before the run for the shared topic's backlog, s")
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--json-out", default=None)
    a = ap.parse_args()
    if a.minutes <= 0 or a.minutes > 120:
        ap.error("--minutes must be in (0, 120]")
    gmin, gmax = (float(x) for x in a.gap.split(":"))
    seed = a.seed if a.seed is not None else random.randrange(1 << 30)
    rnd = random.Random(seed)
    run_id = time.strftime("%H%M%S") + "-" + uuid.uuid4().hex[:6]
    prefix = "chaos-%s-" % run_id
    top = tempfile.mkdtemp(prefix="pixplane-chaos-")
    log("chaos %s (seed %d), logs in %s" % (run_id, seed, top))

    stack = Stack()
    before = stack.snapshot()
    log("stack before: %s" % before)
    if not (before["pg_ok"] and before["rgw_ok"] and before["kafka_all_up"]):
        raise SystemExit("the stack is not healthy before the run: %s" % before)

    # our own API, worker and reconciler daemon (same database, bucket and broker)
    base_env = dict(os.environ)
    base_env.pop("PIXPLANE_OPS_LISTEN", None)
    ports = {k: free_port() for k in ("api", "api_ops", "worker", "reconciler")}
    api_env = dict(base_env, PIXPLANE_LISTEN="127.0.0.1:%d" % ports["api"],
                   PIXPLANE_OPS_LISTEN="127.0.0.1:%d" % ports["api_ops"])
    worker_env = dict(base_env, PIXPLANE_WORKER_LISTEN="127.0.0.1:%d" % ports["worker"],
                      PIXPLANE_STATS_INTERVAL="30s")
    # short requeue thresholds, so work a fault left stuck is redone within the run (the
    # defaults, 15 min and 2 h, are for production)
    rec_env = dict(base_env, PIXPLANE_RECONCILER_LISTEN="127.0.0.1:%d" % ports["reconciler"],
                   PIXPLANE_RECONCILE_INTERVAL="15s", PIXPLANE_RECONCILE_VARIANT_STUCK="90s",
                   PIXPLANE_RECONCILE_OUTBOX_STUCK="90s")
    api_url = "http://127.0.0.1:%d" % ports["api"]
    procs = {
        "api": Proc("api", [os.path.join(BUILD, "pixplane-api")], api_env, api_url + "/healthz", top),
        "worker": Proc("worker", [os.path.join(BUILD, "pixplane-worker")], worker_env,
                       "http://127.0.0.1:%d/healthz" % ports["worker"], top),
        "reconciler": Proc("reconciler", [os.path.join(BUILD, "pixplane-reconciler")], rec_env,
                           "http://127.0.0.1:%d/healthz" % ports["reconciler"], top),
    }
    summary = {"bench": "chaos", "run_id": run_id, "seed": seed, "minutes": a.minutes,
               "rate_ops_per_s": a.rate, "logs": top, "own_processes": {
                   "api": api_url, "worker_listen": ports["worker"],
                   "reconciler_listen": ports["reconciler"],
                   "reconciler_env": {k: rec_env[k] for k in rec_env if k.startswith("PIXPLANE_RECONCILE_")}},
               "stack_before": before}
    faults = []
    stop_ev = threading.Event()
    try:
        for p in procs.values():
            p.start()
        log("own processes up: api %s, worker pid %d, reconciler pid %d"
            % (api_url, procs["worker"].p.pid, procs["reconciler"].p.pid))

        bases = make_bases(os.path.join(top, "bases"), kind="padded", seed=seed)
        ttl = a.minutes * 60 + a.settle + 3 * 3600
        users = [User(prefix + "u%02d" % i, make_token(prefix + "u%02d" % i, ttl))
                 for i in range(a.users)]
        stats = Stats()
        api = Api(api_url, stats, chaos=True, retry_for=60.0)
        wl = Workload(api, users, bases, stats, seed=seed)

        # the topic and consumer group are the stack's: wait (bounded) until earlier runs'
        # events are worked off, so this run's variants are not queued behind them
        drain_sql = ("SELECT count(*) FROM blobs b WHERE b.created_at > now() - interval '6 hours'"
                     " AND NOT EXISTS (SELECT 1 FROM image_variants v WHERE"
                     " v.content_hash = b.content_hash)")
        t0 = time.monotonic()
        backlog = int(checks.sql(drain_sql)[0][0])
        summary["pre_drain"] = {"backlog_start": backlog}
        for i in range(int(a.pre_drain / 10) + 2):
            if backlog <= 20 or time.monotonic() - t0 > a.pre_drain:
                break
            if i % 6 == 0:
                log("pre-drain: %d recent contents without variant rows yet" % backlog)
            time.sleep(10)
            backlog = int(checks.sql(drain_sql)[0][0])
        summary["pre_drain"].update(backlog_end=backlog, seconds=round(time.monotonic() - t0))
        log("pre-drain: %d left after %.0f s" % (backlog, time.monotonic() - t0))

        # before the chaos: every device user has a few images and a device synced from 0
        dev_users = users[:a.device_users]
        for u in users:
            for _ in range(3):
                wl.run_op("upload_new", users=[u])
        for u in dev_users:
            u.device = Device()
            u.device.sync(api, u.token)
        log("seeded: %d uploads acknowledged; %d devices synced from 0"
            % (len(wl.acks), len(dev_users)))

        # faults at random gaps, in rounds: each round every kind once, in a random order
        seconds = a.minutes * 60
        plan = []
        for _ in range(100):
            r = list(FAULTS)
            rnd.shuffle(r)
            plan += r

        def inject():
            t0 = time.monotonic()
            t = rnd.uniform(10, 20)
            for i in range(1000):
                if stop_ev.wait(max(0, t0 + t - time.monotonic())):
                    return
                if time.monotonic() - t0 > seconds - 20:
                    return
                kind = plan[i % len(plan)]
                f = {"kind": kind, "t": round(time.monotonic() - t0, 1)}
                log("FAULT %s at t=%.0fs" % (kind, f["t"]))
                try:
                    if kind.startswith("kill_"):
                        p = procs[kind[5:]]
                        k0 = time.monotonic()
                        pid = p.p.pid
                        p.kill9()
                        stop_ev.wait(rnd.uniform(0.5, 3.0))
                        p.start()
                        f.update(ok=True, pid_killed=pid, pid_new=p.p.pid,
                                 down_s=round(time.monotonic() - k0, 1))
                    elif kind == "restart_postgres":
                        f.update(stack.restart_pg())
                    elif kind == "restart_radosgw":
                        f.update(stack.restart_rgw(rnd))
                    elif kind == "kafka_outage":
                        f.update(stack.kafka_outage(rnd, stop_ev))
                except Exception as e:
                    f.update(ok=False, error=repr(e))
                log("  -> %s" % {k: v for k, v in f.items() if k not in ("kind", "t")})
                faults.append(f)
                t = time.monotonic() - t0 + rnd.uniform(gmin, gmax)

        ft = threading.Thread(target=inject, daemon=True)
        ol = OpenLoop(wl, a.rate, threads=a.threads, seed=seed)
        ft.start()

        def tick(el):
            s = stats.summary(el)
            log("t=%4.0fs ops %d unexpected %d retried %d 429 %d acked %d faults %d"
                % (el, s["ops_total"], s["unexpected_errors"], s["retried_transient"],
                   s["rate_limited_429"], len(wl.acks), len(faults)))

        secs = ol.run(seconds, tick=tick, tick_every=30.0)
        stop_ev.set()
        ft.join(120)
        summary["workload"] = stats.summary(secs)
        summary["workload"]["open_loop"] = ol.lag_summary()
        attempted = sum(wl.attempted.values())
        acked_ids = {}
        for uid, img, c, kind in wl.acks:
            acked_ids[img] = (uid, c)
        summary["uploads"] = {"attempted": attempted, "attempted_by_kind": dict(wl.attempted),
                              "acknowledged": len(wl.acks),
                              "acknowledged_distinct_images": len(acked_ids),
                              "acknowledged_distinct_contents": len({c.sha for _, c in
                                                                     acked_ids.values()})}
        tally = {}
        for f in faults:
            tally[f["kind"]] = tally.get(f["kind"], 0) + 1
        summary["faults"] = {"total": len(faults), "by_kind": tally,
                             "failed_injections": [f for f in faults if not f.get("ok")],
                             "list": faults}
        log("workload done: %d ops, %d uploads attempted, %d acknowledged; faults %s"
            % (summary["workload"]["ops_total"], attempted, len(wl.acks), tally))

        # ---- recovery: everything back up (bounded)
        rec = {}
        if not stack.kafka_state()[1]:
            rec["kafka_allup"] = stack.kafka("allup")
        if not stack.pg_ok():
            rec["pg_start"] = stack.pg_ctl("-l", os.path.join(stack.pg_dir, "postgres.log"),
                                           "-w", "-t", "60", "start").returncode
        if not stack.rgw_ok():
            rec["rgw_start"] = bool(stack.start_rgw())
        for n, p in procs.items():
            if not p.alive():
                rec[n + "_restart"] = True
                p.exits.append(("found dead after the run", p.p.poll()))
                p.start()
        summary["recovery_actions"] = rec

        # ---- settle: outbox relayed and every acknowledged content's variants final
        hashes = {c.sha for _, c in acked_ids.values()}
        log("settling (<= %.0f s): outbox and variants of %d contents" % (a.settle, len(hashes)))
        t0 = time.monotonic()
        last = None
        for _ in range(int(a.settle / 5) + 2):
            vs, _ = checks.variant_summary(hashes)
            unsent = int(checks.sql("SELECT count(*) FROM outbox WHERE sent_at IS NULL AND"
                                    " payload->>'owner_id' LIKE '%s%%'" % prefix)[0][0])
            cur = (vs["all_ready"], vs["any_failed"], unsent)
            if cur != last:
                log("  t=%3.0fs variants %s, outbox unsent %d" % (time.monotonic() - t0, vs, unsent))
                last = cur
            if vs["all_ready"] + vs["any_failed"] == vs["contents"] and unsent == 0:
                break
            if time.monotonic() - t0 > a.settle:
                break
            time.sleep(5)
        summary["settle_s"] = round(time.monotonic() - t0, 1)

        # ---- one reconciler pass (our daemon stopped first: one holds the lock at a time)
        rc = procs["reconciler"].stop()
        log("reconciler daemon stopped (exit %s); reconciler --once" % rc)
        summary["reconciler"] = checks.reconciler_once(env=rec_env)
        log("reconciler --once exit %s: %s" % (
            summary["reconciler"]["exit"],
            {k: v for k, v in (summary["reconciler"]["report"] or {}).items() if k != "sweeps"}))
        requeued = any((s or {}).get("actions") for n, s in
                       ((summary["reconciler"]["report"] or {}).get("sweeps") or {}).items()
                       if n == "stuck")
        if requeued:  # it requeued variants: give the worker a bounded while to make them
            wait_until(lambda: checks.variant_summary(hashes)[0]["all_ready"] == len(hashes), 300, 5)

        checksd = {}
        # 1. acknowledged uploads: exist with their exact bytes (through the API)
        log("check: %d acknowledged images downloaded and compared" % len(acked_ids))
        checksd["acknowledged_bytes"] = check_acked(api_url, users, acked_ids)
        log("  %s" % {k: v for k, v in checksd["acknowledged_bytes"].items() if k != "samples"})
        # 2. sync convergence (long-lived devices from before the chaos + fresh devices)
        log("check: sync convergence for %d device users" % len(dev_users))
        api2 = Api(api_url, Stats(), chaos=True)
        checksd["sync_converge"] = checks.sync_converge(api2, dev_users, fresh_for=len(dev_users))
        log("  %s" % checksd["sync_converge"])
        # 3. variants of every acknowledged image
        vs, st = checks.variant_summary(hashes)
        bad = {h: v for h, v in st.items() if not (len(v) == len(VARIANT_TYPES) and
                                                  all(x == "ready" for x in v.values()))}
        detail = []
        for h in list(bad)[:10]:
            detail.append({"content_hash": h, "variants": bad[h], "rows": checks.sql(
                "SELECT variant_type, status, attempts, coalesce(error,'') FROM image_variants"
                " WHERE content_hash = '%s'" % h)})
        checksd["variants"] = dict(vs, ok=not bad, not_ready_samples=detail)
        log("check: variants %s" % vs)
        # 4. invariants (this run's sessions and contents)
        checksd["invariants"] = checks.invariants_check(prefix, wl.hashes, grace=0.0)
        log("check: invariants: %d violations" % checksd["invariants"]["violations"])
        # 5. the stack is back, identical; APIs healthy; SSE pushes on both APIs
        after = stack.snapshot()
        checksd["stack_after"] = dict(after, same_as_before=all(
            after[k] == before[k] for k in ("pg_data", "pg_port", "s3_endpoint")) and
            after["pg_ok"] and after["rgw_ok"] and after["kafka_all_up"])
        checksd["healthz"] = {"stack_api": checks.api_health(os.environ["PIXPLANE_API_URL"]),
                              "own_api": checks.api_health(api_url)}
        checksd["sse_push"] = {"stack_api": sse_push(os.environ["PIXPLANE_API_URL"], prefix, bases),
                               "own_api": sse_push(api_url, prefix, bases)}
        log("check: stack %s; healthz %s; sse %s" % (checksd["stack_after"]["same_as_before"],
                                                     checksd["healthz"], checksd["sse_push"]))
        summary["checks"] = checksd
    except Exception:
        summary["driver_error"] = traceback.format_exc()
        log("DRIVER ERROR:\n" + summary["driver_error"])
    finally:
        stop_ev.set()
        if not stack.kafka_state()[1]:
            stack.kafka("allup")
        for n, p in procs.items():
            try:
                p.stop()
            except Exception as e:
                p.exits.append(("stop failed", repr(e)))
        summary["own_process_exits"] = {n: p.exits for n, p in procs.items()}
        summary["own_process_starts"] = {n: p.starts for n, p in procs.items()}
        summary["own_logs"] = scan_logs(procs)

    c = summary.get("checks", {})
    fails = ["driver error"] if "driver_error" in summary else []
    if c.get("acknowledged_bytes", {}).get("lost") or c.get("acknowledged_bytes", {}).get("bytes_differ") \
            or c.get("acknowledged_bytes", {}).get("errors"):
        fails.append("acknowledged uploads: %s" % {k: v for k, v in c["acknowledged_bytes"].items()
                                                    if k != "samples"})
    if c.get("invariants", {}).get("violations"):
        fails.append("invariant violations: %d" % c["invariants"]["violations"])
    if not c.get("variants", {}).get("ok"):
        fails.append("variants not all ready")
    if not c.get("sync_converge", {}).get("ok"):
        fails.append("sync did not converge")
    if not c.get("stack_after", {}).get("same_as_before"):
        fails.append("stack not back as before")
    if c.get("healthz", {}).get("stack_api") != 200:
        fails.append("stack API /healthz %s" % c.get("healthz", {}).get("stack_api"))
    if not all(v.get("ok") for v in c.get("sse_push", {}).values()):
        fails.append("SSE push after the chaos failed")
    if summary["faults"]["failed_injections"] if "faults" in summary else True:
        fails.append("fault injection failed")
    for n, ex in summary["own_process_exits"].items():
        if any(how == "SIGTERM" and rc != 0 for how, rc in ex):
            fails.append("%s exited %s on SIGTERM" % (n, [rc for how, rc in ex if how == "SIGTERM"]))
        if any(how in ("died on its own", "found dead after the run") for how, _ in ex):
            fails.append("%s died on its own" % n)
    if summary["own_logs"].get("sanitizer_or_crash"):
        fails.append("crash reports in own logs")
    return report(summary, fails, a.json_out)


def check_acked(api_url, users, acked_ids):
    """Every acknowledged image: its row exists, and its bytes downloaded through the API have
    the acknowledged sha256 (a soft-deleted one is restored, read, deleted again)."""
    tokens = {u.id: u.token for u in users}
    ids = sorted(acked_ids)
    rows = {}
    for i in range(0, len(ids), 500):
        for img, st, h in checks.sql("SELECT image_id, status, content_hash FROM images WHERE"
                                     " image_id IN (%s)" % ",".join("'%s'" % x for x in ids[i:i + 500])):
            rows[img] = (st, h)
    res = {"acknowledged": len(ids), "active": 0, "deleted": 0, "lost": 0, "hash_row_differs": 0,
           "bytes_ok": 0, "bytes_differ": 0, "errors": 0, "samples": []}
    lock = threading.Lock()
    s = requests.Session()

    def one(img):
        uid, c = acked_ids[img]
        row = rows.get(img)
        if row is None:
            with lock:
                res["lost"] += 1
                res["samples"].append({"image_id": img, "user": uid, "problem": "no row"})
            return
        st, h = row
        with lock:
            res[st if st in ("active", "deleted") else "errors"] += 1
            if h != c.sha:
                res["hash_row_differs"] += 1
        hdr = {"Authorization": "Bearer " + tokens[uid]}
        try:
            if st == "deleted":
                requests.post(api_url + "/images/%s/restore" % img, headers=hdr, timeout=30)
            r = requests.get(api_url + "/images/%s" % img, headers=hdr, timeout=30)
            if r.status_code != 200:
                raise RuntimeError("GET /images/%s: %s %s" % (img, r.status_code, r.text[:200]))
            code, got, n = checks.sha_of_url(r.json()["download_url"])
            if st == "deleted":
                requests.delete(api_url + "/images/%s" % img, headers=hdr, timeout=30)
            with lock:
                if code == 200 and got == c.sha:
                    res["bytes_ok"] += 1
                else:
                    res["bytes_differ"] += 1
                    res["samples"].append({"image_id": img, "problem": "bytes", "status": code,
                                           "got": got, "want": c.sha, "bytes": n})
        except Exception as e:
            with lock:
                res["errors"] += 1
                if len(res["samples"]) < 20:
                    res["samples"].append({"image_id": img, "problem": repr(e)[:300]})

    with cf.ThreadPoolExecutor(6) as ex:
        list(ex.map(one, ids))
    res["samples"] = res["samples"][:20]
    return res


def sse_push(url, prefix, bases):
    """A stream opened now gets an event within 10 s of an upload by the same user."""
    from workload import Content, proof_for  # noqa: F401
    uid = prefix + "sse-" + uuid.uuid4().hex[:4]
    tok = make_token(uid, 3600)
    hdr = {"Authorization": "Bearer " + tok}
    out = {"ok": False}
    try:
        r = requests.get(url + "/sync/stream", headers=dict(hdr, Accept="text/event-stream"),
                         stream=True, timeout=(5, 15))
        if r.status_code != 200:
            out["error"] = "status %s" % r.status_code
            return out
        lines = r.iter_lines(chunk_size=1)
        for _ in range(100):  # the first (empty) event
            if next(lines) == b"" :
                break
        c = Content(bases)
        data = c.data(bases)
        t0 = time.monotonic()
        sess = requests.post(url + "/uploads", headers=hdr, timeout=30, json={
            "file_name": "sse.jpg", "file_size": len(data), "mime_type": "image/jpeg"}).json()
        u = requests.post(url + "/uploads/%s/chunks/urls" % sess["upload_session_id"], headers=hdr,
                          json={"chunk_numbers": [0]}, timeout=30).json()["urls"][0]["url"]
        requests.put(u, data=data, timeout=60)
        done = requests.post(url + "/uploads/%s/complete" % sess["upload_session_id"],
                             headers=hdr, timeout=60).json()
        t1 = time.monotonic()
        deadline = t1 + 10
        buf = b""
        for line in lines:
            buf += line + b"\n"
            if done["image_id"].encode() in buf:
                out = {"ok": True, "event_after_commit_ms": round((time.monotonic() - t1) * 1000)}
                break
            if time.monotonic() > deadline:
                out["error"] = "no event within 10 s"
                break
        r.close()
    except Exception as e:
        out["error"] = repr(e)[:300]
    return out


def scan_logs(procs):
    """Error-level events and crash reports in our own processes' logs."""
    res = {"sanitizer_or_crash": [], "error_events": {}, "warn_events": {}}
    for n, p in procs.items():
        try:
            text = open(p.log_path, "rb").read().decode("utf-8", "replace")
        except OSError:
            continue
        for marker in ("AddressSanitizer", "runtime error:", "Segmentation fault", "assertion",
                       "core dumped"):
            if marker in text:
                res["sanitizer_or_crash"].append("%s: %s" % (n, marker))
        for line in text.splitlines():
            if not line.startswith("{"):
                continue
            try:
                ev = json.loads(line)
            except ValueError:
                continue
            lvl = ev.get("level")
            if lvl in ("error", "warn"):
                key = "%s %s" % (n, ev.get("event"))
                d = res["error_events" if lvl == "error" else "warn_events"]
                d[key] = d.get(key, 0) + 1
    return res


if __name__ == "__main__":
    sys.exit(main())
