# Driver of bench/soak/run (issue 14, "Soak"). See bench/soak/README.md.
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import checks  # noqa: E402
from workload import (ROOT, Api, OpenLoop, Sampler, Stats, User, Workload, closed_loop,  # noqa: E402
                      log, make_bases, make_token, report)


def stack_pid(name):
    """The stack's pixplane-<name> pid: minio-dev/run/<name>.pid, checked against its
    command line; else the newest process running <ROOT>/build/pixplane-<name>."""
    want = "pixplane-" + name
    try:
        pid = int(open(os.path.join(ROOT, "minio-dev", "run", name + ".pid")).read().strip())
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            if want.encode() in f.read():
                return pid
    except (OSError, ValueError):
        pass
    out = subprocess.run(["pgrep", "-n", "-f", "^%s/build/%s$" % (ROOT, want)],
                         capture_output=True, text=True).stdout.split()
    return int(out[0]) if out else None


def med(xs):
    return statistics.median(xs) if xs else None


def analyse(samples, t_start, t_end, warm_frac):
    """RSS growth % from the warm-up mark (warm_frac of the soak) to the end, fd counts."""
    d = t_end - t_start
    soak = [s for s in samples if t_start <= s[0] <= t_end]
    if len(soak) < 3:
        return {"samples": len(soak), "error": "too few samples"}
    warm = [s for s in soak if t_start + warm_frac * d <= s[0] <= t_start + (warm_frac + 0.1) * d]
    end = [s for s in soak if s[0] >= t_end - 0.1 * d]
    warm = warm or soak[len(soak) // 5:len(soak) // 5 + 1]
    end = end or soak[-1:]
    rss_w, rss_e = med([s[2] for s in warm]), med([s[2] for s in end])
    fd_w, fd_e = med([s[3] for s in warm]), med([s[3] for s in end])
    growth = (rss_e - rss_w) * 100.0 / rss_w
    pids = sorted({s[1] for s in samples})
    # a least-squares slope of RSS after warm-up, in KiB per minute (a leak shows as a slope)
    after = [s for s in soak if s[0] >= t_start + warm_frac * d]
    slope = None
    if len(after) >= 3:
        mx = statistics.mean(s[0] for s in after)
        my = statistics.mean(s[2] for s in after)
        den = sum((s[0] - mx) ** 2 for s in after)
        slope = round(sum((s[0] - mx) * (s[2] - my) for s in after) / den * 60, 1) if den else 0
    return {"samples": len(soak), "pids": pids, "restarted": len(pids) > 1,
            "rss_kib_start": soak[0][2], "rss_kib_warm": rss_w, "rss_kib_end": rss_e,
            "rss_kib_max": max(s[2] for s in soak), "rss_growth_pct": round(growth, 2),
            "rss_slope_kib_per_min_after_warmup": slope,
            "fd_start": soak[0][3], "fd_warm": fd_w, "fd_end": fd_e,
            "fd_max": max(s[3] for s in soak), "fd_min": min(s[3] for s in soak)}


def main():
    ap = argparse.ArgumentParser(prog="bench/soak/run")
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--rate", type=float, default=None, help="ops/s (default: 70%% of the peak)")
    ap.add_argument("--find-peak", action="store_true", help="only measure the peak")
    ap.add_argument("--peak-seconds", type=float, default=60.0)
    ap.add_argument("--peak-fraction", type=float, default=0.7)
    ap.add_argument("--clients", type=int, default=12, help="closed-loop clients for the peak")
    ap.add_argument("--threads", type=int, default=32, help="open-loop executor threads")
    ap.add_argument("--users", type=int, default=100)
    ap.add_argument("--warmup", type=float, default=0.2, help="fraction of the run")
    ap.add_argument("--sample-every", type=float, default=5.0)
    ap.add_argument("--grace", type=float, default=None,
                    help="invariant checker grace, s (default 0: everything of this run is done)")
    ap.add_argument("--rss-target", type=float, default=5.0)
    ap.add_argument("--json-out", default=None)
    a = ap.parse_args()
    if a.minutes <= 0 or a.minutes > 24 * 60:
        ap.error("--minutes must be in (0, 1440]")

    api_url = os.environ["PIXPLANE_API_URL"]
    run_id = time.strftime("%H%M%S") + "-" + uuid.uuid4().hex[:6]
    prefix = "soak-%s-" % run_id
    top = tempfile.mkdtemp(prefix="pixplane-soak-")
    log("soak %s against %s (users %s*, %d users)" % (run_id, api_url, prefix, a.users))
    hc = checks.api_health(api_url)
    if hc != 200:
        raise SystemExit("the stack API is not healthy: %s" % hc)

    bases = make_bases(os.path.join(top, "bases"))
    log("%d base JPEGs, %s bytes" % (len(bases), sorted(len(b) for b in bases)))
    ttl = a.peak_seconds + a.minutes * 60 + 3 * 3600
    users = [User(prefix + "u%03d" % i, make_token(prefix + "u%03d" % i, ttl)) for i in range(a.users)]

    pids = {"api": stack_pid("api"), "worker": stack_pid("worker")}
    log("stack pids: %s" % pids)
    sampler = Sampler(lambda: {k: v for k, v in pids.items() if v}, every=a.sample_every)
    sampler.sample_now()
    sampler.start()

    stats = Stats()
    api = Api(api_url, stats)
    wl = Workload(api, users, bases, stats)
    summary = {"bench": "soak", "run_id": run_id, "api": api_url, "users": a.users,
               "image_bytes": [min(len(b) for b in bases), max(len(b) for b in bases)]}

    peak = None
    if a.find_peak or a.rate is None:
        log("peak: closed loop, %d clients, %.0f s" % (a.clients, a.peak_seconds))
        t0 = time.monotonic()
        closed_loop(wl, a.clients, a.peak_seconds)
        secs = time.monotonic() - t0
        ps = stats.summary(secs)
        peak = ps["ops_per_s"]
        summary["peak"] = {"clients": a.clients, "seconds": round(secs, 1), "ops_per_s": peak,
                           "unexpected_errors": ps["unexpected_errors"],
                           "rate_limited_429": ps["rate_limited_429"],
                           "ops": {k: {kk: v[kk] for kk in ("count", "p50_ms", "p99_ms")}
                                   for k, v in ps["ops"].items()},
                           "error_samples": ps["error_samples"][:10]}
        log("peak: %.1f ops/s (%d ops, %d unexpected errors, %d 429s)"
            % (peak, ps["ops_total"], ps["unexpected_errors"], ps["rate_limited_429"]))
        if a.find_peak:
            api.close()
            sampler.stop_ev.set()
            print(json.dumps(summary))
            return 1 if ps["unexpected_errors"] else 0

    rate = a.rate if a.rate is not None else round(peak * a.peak_fraction, 2)
    summary["rate_ops_per_s"] = rate
    summary["rate_basis"] = ("%.0f%% of measured peak %.2f ops/s" % (a.peak_fraction * 100, peak)
                             if a.rate is None else "--rate")
    seconds = a.minutes * 60
    log("soak: open loop at %.2f ops/s for %.1f min (%d executor threads)"
        % (rate, a.minutes, a.threads))

    stats = Stats()  # the soak's own counts (the peak phase was the warm-up of the stack)
    api.stats = wl.stats = stats
    attempted0, acks0 = dict(wl.attempted), len(wl.acks)
    ol = OpenLoop(wl, rate, threads=a.threads)
    t_start = time.monotonic() - sampler.t0

    def tick(el):
        s = stats.summary(el)
        parts = []
        for n in ("api", "worker"):
            x = sampler.last(n)
            if x:
                parts.append("%s rss %.1f MiB fd %d" % (n, x[2] / 1024.0, x[3]))
        log("t=%4.0fs ops %d (%.1f/s) unexpected %d 429 %d backlog %d shed %d | %s"
            % (el, s["ops_total"], s["ops_per_s"] or 0, s["unexpected_errors"],
               s["rate_limited_429"], ol.q.qsize(), ol.shed, "; ".join(parts)))

    secs = ol.run(seconds, tick=tick, tick_every=30.0 if seconds > 120 else 15.0)
    t_end = time.monotonic() - sampler.t0
    sampler.sample_now()
    soak_summary = stats.summary(secs)
    api.close()
    time.sleep(3)
    sampler.sample_now()
    sampler.stop_ev.set()
    summary["soak"] = soak_summary
    summary["soak"]["open_loop"] = ol.lag_summary()
    summary["soak"]["uploads_attempted"] = {k: v - attempted0.get(k, 0)
                                            for k, v in wl.attempted.items()}
    summary["soak"]["uploads_acknowledged"] = len(wl.acks) - acks0
    summary["soak"]["no_free_user"] = wl.no_user
    log("soak done: %d ops in %.0f s (%.2f/s), %d unexpected errors, %d 429s"
        % (soak_summary["ops_total"], secs, soak_summary["ops_per_s"],
           soak_summary["unexpected_errors"], soak_summary["rate_limited_429"]))

    procs = {}
    for n in ("api", "worker"):
        ss = sampler.samples.get(n, [])
        r = analyse(ss, t_start, t_end, a.warmup)
        idle = ss[-1] if ss else None
        r["fd_idle_after"] = idle[3] if idle else None
        r["rss_ok"] = r.get("rss_growth_pct") is not None and r["rss_growth_pct"] < a.rss_target
        fw = r.get("fd_warm") or 0
        r["fd_flat"] = (r.get("fd_end") is not None and
                        r["fd_end"] <= fw + max(4, 0.1 * fw) and
                        (r["fd_idle_after"] or 0) <= max(r.get("fd_start") or 0, fw) + 4)
        procs[n] = r
        log("%s: RSS %s -> %s KiB (%.2f%%), fd start %s warm %s end %s max %s idle-after %s"
            % (n, r.get("rss_kib_warm"), r.get("rss_kib_end"), r.get("rss_growth_pct") or 0,
               r.get("fd_start"), r.get("fd_warm"), r.get("fd_end"), r.get("fd_max"),
               r["fd_idle_after"]))
    summary["processes"] = procs
    summary["processes_samples"] = {n: [(round(t), rss, fd) for t, _, rss, fd in ss]
                                    for n, ss in sampler.samples.items()}

    log("sync convergence (%d users, 10 fresh devices)" % len(users))
    stats_after = Stats()
    api.stats = stats_after
    summary["sync_converge"] = checks.sync_converge(api, users, fresh_for=10)
    vs, _ = checks.variant_summary(wl.hashes)
    summary["variants_info"] = vs
    log("variants of this run's contents: %s" % vs)

    log("reconciler --once")
    rec = checks.reconciler_once()
    summary["reconciler"] = rec
    log("reconciler exit %s in %ss" % (rec["exit"], rec["seconds"]))
    grace = a.grace if a.grace is not None else 0.0
    log("invariant checker (scope: this run's sessions and contents; grace %.0fs)" % grace)
    inv = checks.invariants_check(prefix, wl.hashes, grace)
    summary["invariants"] = inv
    log("invariants: %d violations (%d scope objects, %d hashes; unscoped info: %s)"
        % (inv["violations"], inv["scope_objects"], inv["scope_hashes"],
           inv.get("unscoped_violations_info")))
    summary["health_after"] = checks.api_health(api_url)
    summary["post_check_errors"] = stats_after.error_count

    fails = []
    if soak_summary["unexpected_errors"]:
        fails.append("unexpected errors: %d" % soak_summary["unexpected_errors"])
    if inv["violations"]:
        fails.append("invariant violations: %d" % inv["violations"])
    for n, r in procs.items():
        if not r.get("rss_ok"):
            fails.append("%s RSS growth %s%% >= %s%%" % (n, r.get("rss_growth_pct"), a.rss_target))
        if not r.get("fd_flat"):
            fails.append("%s fd not flat (warm %s end %s idle %s)" % (n, r.get("fd_warm"),
                                                                    r.get("fd_end"),
                                                                    r.get("fd_idle_after")))
        if r.get("restarted"):
            fails.append("%s pid changed during the run" % n)
    if not summary["sync_converge"]["ok"]:
        fails.append("sync did not converge")
    if not rec["ok"]:
        fails.append("reconciler exit %s" % rec["exit"])
    return report(summary, fails, a.json_out)


if __name__ == "__main__":
    sys.exit(main())
