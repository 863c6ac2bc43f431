# Reusable checker for the storage/metadata invariants of design-invariants.md, against a
# real database and bucket. Every check reads both sides for real (psql, boto3); nothing is
# taken from the code under test. Use check() for a list of violations or assert_ok().
#
#   1. every blob row's object exists;
#   2. every object under blobs/ older than `grace` has a blob row or a live session, and
#      every object under variants/<hash>/<blob_id>/ has that blob (or a tombstone);
#   3. ref_count equals the number of image rows (not yet purged) on the blob;
#   4. no image points at a missing blob;
#   5. no multipart upload older than `grace` without a live session that owns it.
#
# scope (optional): a set of object keys / content hashes to restrict the checks to, for a
# database or bucket that other tests share.
import subprocess
import time

LIVE = ("uploading", "completing", "verifying")


def _sql(url, query):
    out = subprocess.check_output(["psql", url, "-X", "-q", "-At", "-F", "\t", "-v",
                                   "ON_ERROR_STOP=1", "-c", query], text=True, timeout=60)
    return [line.split("\t") for line in out.splitlines() if line]


def _objects(s3, bucket, prefix):
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for o in page.get("Contents", []):
            yield o["Key"], o["LastModified"].timestamp()


def _uploads(s3, bucket, prefix):
    for page in s3.get_paginator("list_multipart_uploads").paginate(Bucket=bucket,
                                                                    Prefix=prefix):
        for u in page.get("Uploads", []):
            yield u["Key"], u["UploadId"], u["Initiated"].timestamp()


def _exists(s3, bucket, key):
    try:
        s3.head_object(Bucket=bucket, Key=key)
        return True
    except s3.exceptions.ClientError as e:
        if e.response["Error"]["Code"] in ("404", "NoSuchKey", "NotFound"):
            return False
        raise


def _in(scope, *names):
    return scope is None or any(n in scope for n in names)


def check(db_url, s3, bucket, grace=0.0, scope=None):
    """Returns a list of violations (strings); empty when every invariant holds."""
    bad = []
    now = time.time()
    blobs = {r[0]: r for r in _sql(db_url, "SELECT b.content_hash, b.storage_path, b.ref_count,"
                                   " b.blob_id, (SELECT count(*) FROM images i"
                                   " WHERE i.content_hash = b.content_hash) FROM blobs b")}
    paths = {r[1] for r in blobs.values()}
    ids = {(r[0], r[3]) for r in blobs.values()}
    for h, path, refs, _, images in blobs.values():
        if not _in(scope, h, path):
            continue
        if not _exists(s3, bucket, path):
            bad.append("1: blob %s points at missing object %s" % (h, path))
        if refs != images:
            bad.append("3: blob %s has ref_count %s but %s image rows" % (h, refs, images))
    # images still verifying (or failed) point at no blob, by design (issue 15)
    for img, h in _sql(db_url, "SELECT i.image_id, i.content_hash FROM images i"
                       " WHERE i.content_hash IS NOT NULL AND NOT EXISTS (SELECT 1 FROM blobs b"
                       " WHERE b.content_hash = i.content_hash)"):
        if _in(scope, h, img):
            bad.append("4: image %s points at missing blob %s" % (img, h))
    sessions = {r[0]: r for r in _sql(db_url, "SELECT object_key, status,"
                                      " coalesce(s3_upload_id, '') FROM upload_sessions")}
    tombs = {r[0] for r in _sql(db_url, "SELECT storage_path FROM gc_objects")}
    for key, mtime in _objects(s3, bucket, "blobs/"):
        if now - mtime < grace or not _in(scope, key):
            continue
        live = key in sessions and sessions[key][1] in LIVE
        if key not in paths and not live and key not in tombs:
            bad.append("2: object %s has no blob row and no live session" % key)
    for key, mtime in _objects(s3, bucket, "variants/"):
        parts = key.split("/")
        h, bid = (parts[1], parts[2]) if len(parts) > 3 else ("", "")
        if now - mtime < grace or not _in(scope, key, h):
            continue
        prefix = "variants/%s/%s/" % (h, bid)
        if (h, bid) not in ids and key not in tombs and prefix not in tombs:
            bad.append("2: variant object %s has no blob" % key)
    for key, uid, initiated in _uploads(s3, bucket, "blobs/"):
        if now - initiated < grace or not _in(scope, key):
            continue
        s = sessions.get(key)
        if not s or s[1] not in LIVE or s[2] != uid:
            bad.append("5: multipart upload %s on %s has no live session (session: %s)"
                       % (uid, key, s[1] if s else "none"))
    return bad


def assert_ok(db_url, s3, bucket, grace=0.0, scope=None):
    bad = check(db_url, s3, bucket, grace, scope)
    assert not bad, "invariants violated:\n  " + "\n  ".join(bad)
