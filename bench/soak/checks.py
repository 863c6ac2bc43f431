# After-run checks shared by bench/soak and bench/chaos: one reconciler pass, the invariant
# checker of tests/integration/invariants.py (scoped to what this run made, since the bucket
# is shared with other databases' tests), device sync convergence against the database,
# variant readiness, acknowledged uploads' bytes. Each returns a JSON-able dict.
import hashlib
import json
import os
import subprocess
import sys
import time

import requests

from workload import BUILD, ROOT, VARIANT_TYPES, Device, OpFailed, RateLimited, log

sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
import invariants  # noqa: E402  (read-only use of the project's checker)


def sql(query, url=None, timeout=60):
    out = subprocess.check_output(["psql", url or os.environ["DATABASE_URL"], "-X", "-q", "-At",
                                   "-F", "\t", "-v", "ON_ERROR_STOP=1", "-c", query], text=True,
                                  timeout=timeout)
    return [line.split("\t") for line in out.splitlines() if line]


def s3_client():
    import boto3
    from botocore.config import Config
    return boto3.client(
        "s3", endpoint_url=os.environ["S3_ENDPOINT"], region_name=os.environ["S3_REGION"],
        aws_access_key_id=os.environ["S3_ACCESS_KEY"],
        aws_secret_access_key=os.environ["S3_SECRET_KEY"],
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 3},
                      connect_timeout=5, read_timeout=60))


def reconciler_once(env=None, timeout=600):
    """One pass of build/pixplane-reconciler --once --report json. Exit 0 clean, 1 repaired
    something, 2 error."""
    t0 = time.monotonic()
    env = dict(env or os.environ)
    # a full pass: the audits (refcount over all blobs, orphan_objects over the bucket) too,
    # however recently another pass ran them
    env.setdefault("PIXPLANE_RECONCILE_AUDIT_EVERY", "0")
    p = subprocess.run([os.path.join(BUILD, "pixplane-reconciler"), "--once", "--report", "json"],
                       env=env, capture_output=True, text=True, timeout=timeout)
    report = None
    for line in reversed(p.stdout.splitlines()):
        try:
            report = json.loads(line)
            break
        except ValueError:
            continue
    if report is None:
        try:
            report = json.loads(p.stdout)
        except ValueError:
            report = {"stdout": p.stdout[-2000:]}
    warn = [l for l in p.stderr.splitlines() if '"level":"error"' in l or '"level":"warn"' in l]
    acted = {k: {kk: v[kk] for kk in ("examined", "actions", "errors", "unrepaired")}
             for k, v in ((report or {}).get("sweeps") or {}).items()
             if isinstance(v, dict) and (v.get("actions") or v.get("errors") or v.get("unrepaired"))}
    return {"exit": p.returncode, "ok": p.returncode in (0, 1), "sweeps_that_acted": acted,
            "audit_every": env["PIXPLANE_RECONCILE_AUDIT_EVERY"], "seconds":
            round(time.monotonic() - t0, 1), "report": report, "stderr_warn_error": warn[-20:]}


def run_scope(owner_prefix, hashes):
    """Object keys and content hashes this run is responsible for: every session its users
    opened (from the database: a lost answer still opened one) and every content it made."""
    like = owner_prefix.replace("_", "\\_") + "%"
    keys = {r[0] for r in sql("SELECT object_key FROM upload_sessions WHERE owner_id LIKE '%s'"
                              % like)}
    hs = set(hashes) | {r[0] for r in sql("SELECT DISTINCT content_hash FROM images WHERE"
                                          " owner_id LIKE '%s'" % like)}
    for chunk in _chunks(sorted(hs), 500):
        keys |= {r[0] for r in sql("SELECT storage_path FROM blobs WHERE content_hash IN (%s)"
                                   % ",".join("'%s'" % h for h in chunk))}
    return keys | hs, len(keys), len(hs)


def _chunks(xs, n):
    for i in range(0, len(xs), n):
        yield xs[i:i + n]


def invariants_check(owner_prefix, hashes, grace, unscoped=True):
    s3 = s3_client()
    bucket = os.environ["S3_BUCKET"]
    scope, nkeys, nhashes = run_scope(owner_prefix, hashes)
    t0 = time.monotonic()
    bad = invariants.check(os.environ["DATABASE_URL"], s3, bucket, grace=grace, scope=scope)
    out = {"grace_s": grace, "scope_objects": nkeys, "scope_hashes": nhashes,
           "violations": len(bad), "violation_samples": bad[:30],
           "seconds": round(time.monotonic() - t0, 1)}
    if unscoped:
        allbad = invariants.check(os.environ["DATABASE_URL"], s3, bucket, grace=grace)
        out["unscoped_violations_info"] = len(allbad)
        out["unscoped_note"] = ("whole bucket vs this database: includes objects of other "
                                "databases' tests sharing the bucket; informational")
    return out


def db_visible(user_id):
    """What the database says the user's devices must show: their active images (this
    workload shares nothing)."""
    own = {r[0] for r in sql("SELECT image_id FROM images WHERE owner_id = '%s' AND"
                             " status = 'active'" % user_id)}
    shared = {r[0] for r in sql("SELECT s.image_id FROM image_shares s JOIN images i USING"
                                " (image_id) WHERE s.user_id = '%s' AND i.status = 'active'"
                                % user_id)}
    return own | shared


def sync_converge(api, users, fresh_for=10, attempts=5):
    """Each user's long-lived device (synced from 0 at its first sync, then incrementally)
    syncs once more; `fresh_for` users also get a new device from cursor 0. Both must equal
    the database."""
    res = {"users": 0, "device_mismatch": 0, "fresh_checked": 0, "fresh_mismatch": 0,
           "sync_failed": 0, "samples": []}
    for i, u in enumerate(users):
        ok = False
        for a in range(attempts):  # bounded; a 429 or a transient failure gets a retry
            try:
                devs = [u.device] + ([Device()] if i < fresh_for else [])
                for d in devs:
                    for _ in range(20):
                        if d.sync(api, u.token, kind="GET /sync (final)", limit=200):
                            break
                ok = True
                break
            except (OpFailed, RateLimited) as e:
                time.sleep(1 + a)
        if not ok:
            res["sync_failed"] += 1
            continue
        truth = db_visible(u.id)
        res["users"] += 1
        if set(u.device.images) != truth:
            res["device_mismatch"] += 1
            if len(res["samples"]) < 10:
                res["samples"].append({"user": u.id, "device": "long-lived",
                                       "missing": sorted(truth - set(u.device.images))[:5],
                                       "extra": sorted(set(u.device.images) - truth)[:5]})
        if i < fresh_for:
            res["fresh_checked"] += 1
            if set(devs[1].images) != truth:
                res["fresh_mismatch"] += 1
                if len(res["samples"]) < 10:
                    res["samples"].append({"user": u.id, "device": "fresh",
                                           "missing": sorted(truth - set(devs[1].images))[:5],
                                           "extra": sorted(set(devs[1].images) - truth)[:5]})
    res["ok"] = (res["device_mismatch"] == 0 and res["fresh_mismatch"] == 0
                 and res["sync_failed"] == 0)
    return res


def variant_states(hashes):
    """{content_hash: {variant_type: status}} for the given hashes."""
    out = {h: {} for h in hashes}
    for chunk in _chunks(sorted(hashes), 500):
        for h, t, st in sql("SELECT content_hash, variant_type, status FROM image_variants"
                            " WHERE content_hash IN (%s)" % ",".join("'%s'" % h for h in chunk)):
            out[h][t] = st
    return out


def variant_summary(hashes):
    st = variant_states(hashes)
    ready = sum(1 for v in st.values() if len(v) == len(VARIANT_TYPES)
                and all(s == "ready" for s in v.values()))
    failed = sum(1 for v in st.values() if any(s == "failed" for s in v.values()))
    missing = sum(1 for v in st.values() if not v)
    return {"contents": len(st), "all_ready": ready, "any_failed": failed, "no_rows": missing,
            "pending": len(st) - ready - failed - missing}, st


def api_health(url):
    try:
        r = requests.get(url.rstrip("/") + "/healthz", timeout=5)
        return r.status_code
    except requests.RequestException as e:
        return repr(e)


def sha_of_url(url, timeout=60):
    r = requests.get(url, timeout=timeout)
    return r.status_code, hashlib.sha256(r.content).hexdigest(), len(r.content)
