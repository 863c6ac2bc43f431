# Image access against real PostgreSQL and radosgw: signed downloads, metadata, listing,
# sharing, soft delete / restore / cleanup (two-phase delete, crash-safe), rate limits.
import concurrent.futures as cf
import hashlib
import os
import subprocess
import threading
import time
import urllib.parse

import pytest
import requests

from conftest import (API_BIN, ApiProcess, Client, object_exists, sql, sql_value, user_id)

BUCKET = os.environ.get("S3_BUCKET", "pixplane")


def has_test_hooks():
    out = subprocess.run([API_BIN, "--help"], capture_output=True, text=True, timeout=10)
    return "test hooks" in out.stdout


def up(c, data=None, name="photo.jpg"):
    data = data if data is not None else os.urandom(2048)
    _, doc = c.upload(data, name=name)
    return doc["image_id"], data


def swap_key(url, new_key):
    u = urllib.parse.urlsplit(url)
    bucket = u.path.split("/")[1]
    return urllib.parse.urlunsplit((u.scheme, u.netloc, "/%s/%s" % (bucket, new_key),
                                    u.query, u.fragment))


def blob_of(image_id):
    return sql("SELECT b.content_hash, b.storage_path, b.ref_count, b.blob_id FROM images i"
               " JOIN blobs b USING (content_hash) WHERE i.image_id = '%s'" % image_id)[0]


def check_invariants(s3, hashes):
    """Invariants 1-3 of design-invariants.md for the given contents."""
    for h in hashes:
        rows = sql("SELECT storage_path, ref_count, blob_id FROM blobs WHERE content_hash = '%s'"
                   % h)
        images = int(sql_value("SELECT count(*) FROM images WHERE content_hash = '%s'" % h))
        if rows:
            path, refs, _ = rows[0]
            assert int(refs) == images, (h, refs, images)
            assert object_exists(s3, path), (h, path)
        else:
            assert images == 0
    assert sql_value("SELECT count(*) FROM images i LEFT JOIN blobs b USING (content_hash)"
                     " WHERE b.content_hash IS NULL AND i.content_hash IS NOT NULL") == "0"


def test_signed_download(stack, s3):
    api = ApiProcess({"PIXPLANE_DOWNLOAD_URL_TTL": "3"} if has_test_hooks() else {})
    try:
        c = Client(api.url, api.token(user_id()))
        data = os.urandom(100_000)
        image_id, _ = up(c, data, name="Vacation photo é.jpg")
        st, doc = c.call("GET", "/images/%s" % image_id)
        assert st == 200 and set(doc) == {"download_url", "expires_in"}, doc
        r = requests.get(doc["download_url"], timeout=30)
        assert r.status_code == 200 and r.content == data
        assert r.headers["Content-Type"] == "image/jpeg"
        cd = r.headers.get("Content-Disposition", "")
        assert cd.startswith("attachment;") and "UTF-8''Vacation%20photo%20%C3%A9.jpg" in cd, cd
        url = doc["download_url"]
        assert requests.put(url, data=b"x", timeout=30).status_code == 403
        assert requests.delete(url, timeout=30).status_code == 403
        other_id, _ = up(c)
        other_key = blob_of(other_id)[1]
        assert requests.get(swap_key(url, other_key), timeout=30).status_code == 403
        st, doc = c.call("GET", "/images/%s?expires_in=600" % image_id)
        assert st == 200 and doc["expires_in"] == 600
        for bad in ("59", "601", "abc"):
            st, _ = c.call("GET", "/images/%s?expires_in=%s" % (image_id, bad))
            assert st == 400
        if has_test_hooks():
            st, doc = c.call("GET", "/images/%s" % image_id)
            assert doc["expires_in"] == 3
            time.sleep(4.5)
            assert requests.get(doc["download_url"], timeout=30).status_code == 403
    finally:
        api.stop()


def test_metadata_and_patch(client):
    image_id, data = up(client, name="a.jpg")
    st, m = client.call("GET", "/images/%s/metadata" % image_id)
    assert st == 200
    assert m["image_id"] == image_id and m["name"] == "a.jpg" and m["size"] == len(data)
    assert m["sha256"] == hashlib.sha256(data).hexdigest() and m["mime_type"] == "image/jpeg"
    assert m["visibility"] == "private" and m["status"] == "active"
    assert m["created_at"].endswith("Z") and "T" in m["created_at"]
    assert [v["variant_type"] for v in m["variants"]] == ["thumbnail_small", "thumbnail_large",
                                                          "preview"]
    st, doc = client.call("PATCH", "/images/%s" % image_id, {"name": "b.jpg",
                                                              "visibility": "public"})
    assert st == 200 and doc["status"] == "updated"
    st, m = client.call("GET", "/images/%s/metadata" % image_id)
    assert m["name"] == "b.jpg" and m["visibility"] == "public"
    for body in ({}, {"name": ""}, {"name": "x\ty"}, {"name": "x" * 256},
                 {"visibility": "everyone"}, {"name": 5}):
        st, doc = client.call("PATCH", "/images/%s" % image_id, body)
        assert st == 400, (body, st, doc)
    st, doc = client.call("GET", "/images/%s/variants/thumbnail_small" % image_id)
    assert st == 202 and doc["status"] == "pending"
    st, doc = client.call("GET", "/images/%s/variants/huge" % image_id)
    assert st == 404


def test_variant_ready_serves_url(client, s3):
    image_id, _ = up(client)
    h, _, _, blob_id = blob_of(image_id)
    key = "variants/%s/%s/thumbnail_small.webp" % (h, blob_id)
    s3.put_object(Bucket=BUCKET, Key=key, Body=b"RIFF0000WEBP", ContentType="image/webp")
    # (the stack's worker may have recorded this variant already: the bytes are no image)
    sql("INSERT INTO image_variants (content_hash, variant_type, status, storage_path, mime_type)"
        " VALUES ('%s', 'thumbnail_small', 'ready', '%s', 'image/webp')"
        " ON CONFLICT (content_hash, variant_type) DO UPDATE SET status = 'ready',"
        " storage_path = excluded.storage_path, mime_type = excluded.mime_type" % (h, key))
    st, doc = client.call("GET", "/images/%s/variants/thumbnail_small" % image_id)
    assert st == 200 and doc["variant"] == "thumbnail_small", doc
    r = requests.get(doc["download_url"], timeout=30)
    assert r.status_code == 200 and r.content == b"RIFF0000WEBP"
    st, m = client.call("GET", "/images/%s/metadata" % image_id)
    assert {"variant_type": "thumbnail_small", "status": "ready"} in m["variants"]


def test_authorization_matrix(api):
    owner_id, shared_id, other_id = user_id("own"), user_id("sha"), user_id("oth")
    owner = Client(api.url, api.token(owner_id))
    shared = Client(api.url, api.token(shared_id))
    other = Client(api.url, api.token(other_id))
    admin = Client(api.url, api.token(user_id("adm"), admin=True))
    anon = Client(api.url, "")
    anon.s.headers.pop("Authorization")
    image_id, _ = up(owner)
    st, doc = owner.call("POST", "/images/%s/shares" % image_id, {"user_id": shared_id})
    assert st == 200 and doc["status"] == "shared"
    i = "/images/" + image_id
    routes = [("GET", i, None), ("GET", i + "/metadata", None),
              ("GET", i + "/variants/thumbnail_small", None),
              ("PATCH", i, {"name": "n.jpg"}), ("POST", i + "/shares", {"user_id": "zed"}),
              ("DELETE", i + "/shares/zed", None), ("POST", i + "/restore", None),
              ("POST", "/internal/images/%s/cleanup" % image_id, None)]
    expect = {
        "owner": [200, 200, 202, 200, 200, 200, 200, 403],
        "shared": [200, 200, 202, 403, 403, 403, 403, 403],
        "other": [404, 404, 404, 404, 404, 404, 404, 403],
        "admin": [404, 404, 404, 404, 404, 404, 404, 409],
        "anon": [401] * 8,
    }
    who = {"owner": owner, "shared": shared, "other": other, "admin": admin, "anon": anon}
    for name, statuses in expect.items():
        for (method, path, body), want in zip(routes, statuses):
            st, doc = who[name].call(method, path, body)
            assert st == want, (name, method, path, st, doc)
            if st >= 400:
                assert doc["error"]["code"], doc
            if name == "other" and st == 404:
                assert doc["error"]["code"] == "not_found"
    # listings
    st, doc = shared.call("GET", "/shared")
    assert st == 200 and [x["image_id"] for x in doc["images"]] == [image_id]
    assert doc["images"][0]["owner_id"] == owner_id
    st, doc = other.call("GET", "/images")
    assert st == 200 and doc["images"] == []
    # public: any authenticated user may read, nobody else may write
    owner.call("PATCH", i, {"visibility": "public"})
    assert other.call("GET", i)[0] == 200
    assert other.call("PATCH", i, {"name": "x.jpg"})[0] == 403
    assert anon.call("GET", i)[0] == 401
    # unshare: access goes away unless public
    owner.call("PATCH", i, {"visibility": "shared"})
    assert owner.call("DELETE", i + "/shares/" + shared_id)[0] == 200
    assert shared.call("GET", i)[0] == 404
    # deleted: 404 for everyone, restore by the owner only
    assert owner.call("DELETE", i)[1]["status"] == "deleted"
    assert owner.call("DELETE", i)[1]["status"] == "deleted"
    for c in (owner, shared, other, admin):
        assert c.call("GET", i)[0] == 404
        assert c.call("GET", i + "/metadata")[0] == 404
    assert owner.call("POST", i + "/restore")[1]["status"] == "active"
    assert owner.call("GET", i)[0] == 200


def test_listing_pages_while_uploads_arrive(api):
    c = Client(api.url, api.token(user_id("list")))
    with cf.ThreadPoolExecutor(8) as ex:
        ids = set(ex.map(lambda _: up(c)[0], range(250)))
    seen, cursor, pages = [], None, 0
    stop = threading.Event()

    def writer():
        n = 0
        while not stop.is_set() and n < 60:
            up(c)
            n += 1

    t = threading.Thread(target=writer)
    t.start()
    try:
        while pages < 50:
            q = "/images?limit=37" + ("&cursor=" + cursor if cursor else "")
            st, doc = c.call("GET", q)
            assert st == 200, doc
            seen += [x["image_id"] for x in doc["images"]]
            pages += 1
            if pages == 1:
                time.sleep(0.5)  # let new uploads land in between pages
            cursor = doc["next_cursor"]
            if not cursor:
                break
    finally:
        stop.set()
        t.join(60)
    assert len(seen) == len(set(seen)), "duplicates in listing"
    assert ids <= set(seen), "gaps: %d missing" % len(ids - set(seen))
    created = [x["created_at"] for x in c.call("GET", "/images?limit=200")[1]["images"]]
    assert created == sorted(created, reverse=True)
    for bad in ("limit=0", "limit=201", "limit=x", "cursor=!!", "cursor=Zm9v", "status=gone"):
        st, doc = c.call("GET", "/images?" + bad)
        assert st == 400, (bad, st, doc)


def test_soft_delete_restore_and_trash(client):
    image_id, _ = up(client)
    st, doc = client.call("DELETE", "/images/%s" % image_id)
    assert st == 200 and doc["status"] == "deleted"
    assert client.call("GET", "/images/%s" % image_id)[0] == 404
    assert client.call("GET", "/images/%s/variants/thumbnail_small" % image_id)[0] == 404
    assert image_id not in [x["image_id"] for x in client.call("GET", "/images")[1]["images"]]
    trash = client.call("GET", "/images?status=deleted")[1]["images"]
    assert [x["image_id"] for x in trash] == [image_id] and trash[0]["status"] == "deleted"
    assert sql_value("SELECT count(*) FROM change_log WHERE image_id = '%s' AND kind = 'deleted'"
                     % image_id) == "1"
    st, doc = client.call("POST", "/images/%s/restore" % image_id)
    assert st == 200 and doc["status"] == "active"
    assert client.call("GET", "/images/%s" % image_id)[0] == 200
    # past retention: 410
    client.call("DELETE", "/images/%s" % image_id)
    sql("UPDATE images SET deleted_at = now() - interval '31 days' WHERE image_id = '%s'"
        % image_id)
    st, doc = client.call("POST", "/images/%s/restore" % image_id)
    assert st == 410 and doc["error"]["code"] == "retention_expired"


def test_cleanup_two_images_one_blob(api, s3):
    a = Client(api.url, api.token(user_id("a")))
    b = Client(api.url, api.token(user_id("b")))
    admin = Client(api.url, api.token("ops", admin=True))
    data = os.urandom(50_000)
    ia, _ = up(a, data)
    ib, _ = up(b, data)
    h, path, refs, blob_id = blob_of(ia)
    assert refs == "2"
    vkey = "variants/%s/%s/thumbnail_small.webp" % (h, blob_id)
    s3.put_object(Bucket=BUCKET, Key=vkey, Body=b"thumb")
    sql("INSERT INTO image_variants (content_hash, variant_type, status, storage_path)"
        " VALUES ('%s', 'thumbnail_small', 'ready', '%s') ON CONFLICT (content_hash,"
        " variant_type) DO UPDATE SET status = 'ready', storage_path = excluded.storage_path"
        % (h, vkey))
    cleanup = "/internal/images/%s/cleanup"
    st, doc = admin.call("POST", cleanup % ia)
    assert st == 409 and doc["error"]["code"] == "not_deleted"
    a.call("DELETE", "/images/%s" % ia)
    st, doc = admin.call("POST", cleanup % ia)
    assert st == 200 and doc["status"] == "permanently_deleted" and not doc["blob_deleted"]
    assert object_exists(s3, path) and object_exists(s3, vkey)
    assert sql_value("SELECT ref_count FROM blobs WHERE content_hash = '%s'" % h) == "1"
    assert b.call("GET", "/images/%s" % ib)[0] == 200
    b.call("DELETE", "/images/%s" % ib)
    st, doc = admin.call("POST", cleanup % ib)
    assert st == 200 and doc["blob_deleted"] is True
    assert not object_exists(s3, path) and not object_exists(s3, vkey)
    assert sql_value("SELECT count(*) FROM blobs WHERE content_hash = '%s'" % h) == "0"
    assert sql_value("SELECT count(*) FROM image_variants WHERE content_hash = '%s'" % h) == "0"
    assert sql_value("SELECT count(*) FROM gc_objects WHERE storage_path LIKE '%%%s%%'"
                     " OR storage_path = '%s'" % (h, path)) == "0"
    st, doc = admin.call("POST", cleanup % ib)  # repeating is harmless
    assert st == 200 and doc["status"] == "permanently_deleted"
    # same content uploaded again after the purge gets a fresh blob
    ic, _ = up(a, data)
    assert object_exists(s3, blob_of(ic)[1])
    check_invariants(s3, [h])


@pytest.mark.parametrize("fault", ["cleanup_before_commit", "cleanup_after_commit",
                                   "gc_after_delete"])
def test_cleanup_crash_converges(stack, s3, fault):
    if not has_test_hooks():
        pytest.skip("pixplane-api built without test hooks (make test / make asan build them)")
    api = ApiProcess()
    try:
        c = Client(api.url, api.token(user_id("crash")))
        data = os.urandom(30_000)
        image_id, _ = up(c, data)
        h, path, _, blob_id = blob_of(image_id)
        vkey = "variants/%s/%s/preview.webp" % (h, blob_id)
        s3.put_object(Bucket=BUCKET, Key=vkey, Body=b"preview")
        c.call("DELETE", "/images/%s" % image_id)
    finally:
        api.stop()
    crashing = ApiProcess({"PIXPLANE_FAULT": fault})
    admin = Client(crashing.url, crashing.token("ops", admin=True))
    try:
        admin.call("POST", "/internal/images/%s/cleanup" % image_id)
        raise AssertionError("the fault point did not fire")
    except requests.ConnectionError:
        pass
    assert crashing.proc.wait(10) == 137
    crashing.log.close()
    # between the crash and the rerun nothing points at a missing object
    check_invariants(s3, [h])
    tombstones = int(sql_value("SELECT count(*) FROM gc_objects WHERE storage_path IN"
                               " ('%s', 'variants/%s/%s/')" % (path, h, blob_id)))
    if fault == "cleanup_before_commit":
        assert tombstones == 0 and object_exists(s3, path)
    else:
        assert tombstones == 2  # the objects are tracked until they are gone
    api = ApiProcess()
    try:
        admin = Client(api.url, api.token("ops", admin=True))
        st, doc = admin.call("POST", "/internal/images/%s/cleanup" % image_id)
        assert st == 200 and doc["status"] == "permanently_deleted", doc
    finally:
        api.stop()
    assert not object_exists(s3, path) and not object_exists(s3, vkey)
    assert sql_value("SELECT count(*) FROM gc_objects WHERE storage_path IN"
                     " ('%s', 'variants/%s/%s/')" % (path, h, blob_id)) == "0"
    check_invariants(s3, [h])


def test_rate_limit(stack):
    api = ApiProcess({"PIXPLANE_RATE_LIMIT": "5", "PIXPLANE_RATE_BURST": "10"})
    try:
        a = Client(api.url, api.token(user_id("greedy")))
        b = Client(api.url, api.token(user_id("calm")))
        with cf.ThreadPoolExecutor(8) as ex:
            got = list(ex.map(lambda _: a.s.get(api.url + "/images", timeout=30), range(40)))
        limited = [r for r in got if r.status_code == 429]
        assert 20 <= len(limited) <= 32, [r.status_code for r in got]
        assert all(int(r.headers["Retry-After"]) >= 1 for r in limited)
        assert limited[0].json()["error"]["code"] == "rate_limited"
        assert all(b.call("GET", "/images")[0] == 200 for _ in range(8))
        time.sleep(1.2)
        assert a.call("GET", "/images")[0] == 200
    finally:
        api.stop()
