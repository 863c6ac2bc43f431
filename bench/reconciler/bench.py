#!/usr/bin/python3
"""Reconciler benchmark: times pixplane-reconciler passes on generated data in a database and
a bucket of its own (created on the servers of DATABASE_URL / S3_ENDPOINT, dropped at the
end). Scenarios:

  expired   N upload sessions past expiry, M of them with a real multipart upload to abort
  orphans   N objects under blobs/ that no row refers to
  noop      a pass with nothing to do over N image rows (blobs, completed sessions, variants,
            sent outbox rows and a trash in proportion): the regular pass (audits not due)
            and each audit forced, to show which costs follow the tables and which the work

usage: bench/reconciler/bench.py [--build build] expired 100000 10000
       bench/reconciler/bench.py orphans 10000
       bench/reconciler/bench.py noop 10000 1000000
Env: DATABASE_URL, S3_ENDPOINT, S3_ACCESS_KEY, S3_SECRET_KEY, S3_REGION (minio-dev/run/env).
"""
import argparse
import concurrent.futures as cf
import json
import os
import statistics
import subprocess
import sys
import time
import urllib.parse
import uuid

import boto3
from botocore.config import Config

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FLAGS = ["--session-ttl", "1s", "--complete-lease", "1s", "--orphan-grace", "2s",
         "--multipart-grace", "2s", "--expired-grace", "0s"]


class Bench:
    def __init__(self, build):
        tag = uuid.uuid4().hex[:8]
        base = urllib.parse.urlsplit(os.environ["DATABASE_URL"])
        self.admin = os.environ["DATABASE_URL"]
        self.db = "pixrec_bench_" + tag
        self.url = urllib.parse.urlunsplit(base._replace(path="/" + self.db))
        self.bucket = "pixrec-bench-" + tag
        self.build = os.path.join(ROOT, build)
        self.env = {**os.environ, "DATABASE_URL": self.url, "S3_BUCKET": self.bucket}
        self.s3 = boto3.client(
            "s3", endpoint_url=os.environ["S3_ENDPOINT"], region_name=os.environ["S3_REGION"],
            aws_access_key_id=os.environ["S3_ACCESS_KEY"],
            aws_secret_access_key=os.environ["S3_SECRET_KEY"],
            config=Config(s3={"addressing_style": "path"}, max_pool_connections=32))
        self.psql(self.admin, "CREATE DATABASE %s" % self.db)
        self.s3.create_bucket(Bucket=self.bucket)
        subprocess.run([os.path.join(self.build, "pixplane-api"), "migrate"], env=self.env,
                       check=True, capture_output=True)

    @staticmethod
    def psql(url, query):
        out = subprocess.check_output(["psql", url, "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1",
                                       "-c", query], text=True)
        return out.strip()

    def sql(self, query):
        return self.psql(self.url, query)

    def reconcile(self, *args):
        t0 = time.monotonic()
        p = subprocess.run([os.path.join(self.build, "pixplane-reconciler"), "--once",
                            "--report", "json", "--log-level", "warn", *FLAGS, *args],
                           env=self.env, capture_output=True, text=True)
        wall = time.monotonic() - t0
        if p.returncode not in (0, 1):
            sys.exit("reconciler failed (%d): %s" % (p.returncode, p.stderr[-2000:]))
        rep = json.loads(p.stdout)
        rep["wall"] = wall
        return rep

    def parallel(self, fn, items, threads=16):
        with cf.ThreadPoolExecutor(threads) as ex:
            return list(ex.map(fn, items))

    def drop(self):
        for page in self.s3.get_paginator("list_multipart_uploads").paginate(Bucket=self.bucket):
            self.parallel(lambda u: self.s3.abort_multipart_upload(
                Bucket=self.bucket, Key=u["Key"], UploadId=u["UploadId"]),
                page.get("Uploads", []))
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket):
            keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
            if keys:
                self.s3.delete_objects(Bucket=self.bucket, Delete={"Objects": keys})
        self.s3.delete_bucket(Bucket=self.bucket)
        self.psql(self.admin, "DROP DATABASE IF EXISTS %s WITH (FORCE)" % self.db)


def sweep_line(name, rep, sweep=None):
    s = rep["sweeps"][sweep] if sweep else rep
    print("  %-44s %9.3f s  examined %8d  actions %8d  errors %d" % (
        name, s["seconds"], s["examined"], s["actions"], s["errors"]))


def expired(b, n, with_uploads):
    b.sql("INSERT INTO users (user_id) VALUES ('bench')")
    b.sql("INSERT INTO upload_sessions (upload_session_id, owner_id, file_name, file_size,"
          " mime_type, chunk_size, chunk_count, object_key, expires_at)"
          " SELECT id, 'bench', 'x.jpg', 1000, 'image/jpeg', 1000, 1, 'blobs/' || id,"
          " now() - interval '1 day' FROM (SELECT gen_random_uuid() AS id"
          " FROM generate_series(1, %d)) s" % n)
    keys = b.sql("SELECT object_key FROM upload_sessions ORDER BY random() LIMIT %d"
                 % with_uploads).split()
    t0 = time.monotonic()
    ids = b.parallel(lambda k: (k, b.s3.create_multipart_upload(Bucket=b.bucket, Key=k)
                                ["UploadId"]), keys)
    print("setup: %d sessions, %d multipart uploads created in %.1f s"
          % (n, with_uploads, time.monotonic() - t0))
    rows = "\n".join("%s\t%s" % kv for kv in ids)
    if ids:
        subprocess.run(["psql", b.url, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-c",
                        "CREATE TEMP TABLE u (k text, id text); COPY u FROM STDIN;"
                        " UPDATE upload_sessions s SET s3_upload_id = u.id FROM u"
                        " WHERE s.object_key = u.k"], input=rows + "\n", text=True, check=True)
    b.sql("VACUUM ANALYZE")
    dry = b.reconcile("--only", "expired_sessions", "--dry-run")
    sweep_line("expired_sessions --dry-run", dry, "expired_sessions")
    rep = b.reconcile("--only", "expired_sessions")
    sweep_line("expired_sessions", rep, "expired_sessions")
    left = b.sql("SELECT count(*) FROM upload_sessions WHERE status = 'uploading'")
    again = b.reconcile("--only", "expired_sessions")
    sweep_line("expired_sessions, second pass", again, "expired_sessions")
    print("  sessions left open: %s; rate %.0f sessions/s" % (left, n / rep["sweeps"]
                                                             ["expired_sessions"]["seconds"]))


def orphans(b, n):
    keys = ["blobs/%s" % uuid.uuid4() for _ in range(n)]
    t0 = time.monotonic()
    b.parallel(lambda k: b.s3.put_object(Bucket=b.bucket, Key=k, Body=b"orphan"), keys)
    print("setup: %d objects in %.1f s" % (n, time.monotonic() - t0))
    time.sleep(3)
    dry = b.reconcile("--only", "orphan_objects", "--dry-run")
    sweep_line("orphan_objects --dry-run (list + check)", dry, "orphan_objects")
    rep = b.reconcile("--only", "orphan_objects")
    sweep_line("orphan_objects", rep, "orphan_objects")
    again = b.reconcile("--only", "orphan_objects")
    sweep_line("orphan_objects, second pass", again, "orphan_objects")
    print("  rate %.0f objects/s" % (n / rep["sweeps"]["orphan_objects"]["seconds"]))


NOOP_SQL = """
SET pixplane.events = 'off'; -- bulk rows: no integration events (015)
INSERT INTO users (user_id) SELECT 'u' || g FROM generate_series(1, greatest({n} / 100, 1)) g;
INSERT INTO blobs (content_hash, storage_path, size, ref_count)
  SELECT encode(sha256(g::text::bytea), 'hex'), 'blobs/' || md5(g::text)::uuid, 1000, 1
  FROM generate_series(1, {n}) g;
INSERT INTO images (image_id, owner_id, content_hash, upload_session_id, name, size, mime_type,
                    status, deleted_at)
  SELECT md5('i' || g)::uuid, 'u' || (g % greatest({n} / 100, 1) + 1),
         encode(sha256(g::text::bytea), 'hex'), md5(g::text)::uuid, 'x.jpg', 1000,
         'image/jpeg', CASE WHEN g % 20 = 0 THEN 'deleted' ELSE 'active' END,
         CASE WHEN g % 20 = 0 THEN now() - interval '1 day' END
  FROM generate_series(1, {n}) g;
INSERT INTO upload_sessions (upload_session_id, owner_id, file_name, file_size, mime_type,
                             chunk_size, chunk_count, object_key, status, content_hash,
                             image_id, deduplicated, expires_at, created_at)
  SELECT md5(g::text)::uuid, 'u' || (g % greatest({n} / 100, 1) + 1), 'x.jpg', 1000,
         'image/jpeg', 1000, 1, 'blobs/' || md5(g::text)::uuid, 'completed',
         encode(sha256(g::text::bytea), 'hex'), md5('i' || g)::uuid, false,
         now() - interval '10 days', now() - interval '11 days'
  FROM generate_series(1, {n}) g;
INSERT INTO image_variants (content_hash, variant_type, status, storage_path, updated_at)
  SELECT encode(sha256(g::text::bytea), 'hex'), t, 'ready', 'variants/x/' || t,
         now() - interval '10 days'
  FROM generate_series(1, {n}) g, unnest(ARRAY['thumbnail_small', 'thumbnail_large',
                                                'preview']) t;
INSERT INTO outbox (topic, msg_key, payload, created_at, sent_at)
  SELECT 'image-uploaded', g::text, '{{}}', now() - interval '10 days', now() - interval '10 days'
  FROM generate_series(1, {n}) g;
"""


def noop(b, n):
    t0 = time.monotonic()
    b.sql(NOOP_SQL.format(n=n))
    b.sql("VACUUM ANALYZE")
    size = b.sql("SELECT pg_size_pretty(pg_database_size(current_database()))")
    print("setup: %d images (5%% in the trash), %d blobs, %d sessions, %d variants, %d outbox"
          " rows; %s; %.1f s" % (n, n, n, 3 * n, n, size, time.monotonic() - t0))
    audits = b.reconcile()  # first pass: the audits are due
    for s in ("refcount", "orphan_objects"):
        sweep_line("audit %s (forced, full pass)" % s, audits, s)
    runs = [b.reconcile() for _ in range(5)]  # audits now not due: the regular pass
    assert all(r["actions"] == 0 for r in runs + [audits]), "the no-op data had work in it"
    for s in ("half_committed", "expired_sessions", "orphan_multipart", "retention", "stuck"):
        print("  %-44s %9.4f s (median of 5)" % (s, statistics.median(
            r["sweeps"][s]["seconds"] for r in runs)))
    print("  %-44s %9.4f s (median of 5; process wall %.3f s)" % (
        "regular pass, total", statistics.median(r["seconds"] for r in runs),
        statistics.median(r["wall"] for r in runs)))


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default=os.environ.get("PIXPLANE_BUILD", "build"))
    ap.add_argument("--keep", action="store_true", help="keep the database and bucket")
    ap.add_argument("scenario", choices=["expired", "orphans", "noop"])
    ap.add_argument("sizes", type=int, nargs="+")
    a = ap.parse_args()
    sizes = a.sizes if a.scenario != "expired" else [tuple(a.sizes[:2])]
    for size in sizes:
        b = Bench(a.build)
        print("== %s %s" % (a.scenario, size))
        try:
            if a.scenario == "expired":
                expired(b, size[0], size[1] if len(size) > 1 else 0)
            elif a.scenario == "orphans":
                orphans(b, size)
            else:
                noop(b, size)
        finally:
            if not a.keep:
                b.drop()


if __name__ == "__main__":
    main()
