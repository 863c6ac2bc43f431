# The upload pipeline against real PostgreSQL and radosgw: presigned multipart uploads,
# resume, server-verified SHA-256, exact dedup, proof of possession, idempotency, bad input.
import concurrent.futures as cf
import hashlib
import os
import re
import urllib.parse

import requests

from conftest import (MIB, Client, object_exists, sql, sql_value, start_api, user_id)

BUCKET = os.environ.get("S3_BUCKET", "pixplane")


def session_row(sid):
    rows = sql("SELECT status, object_key, coalesce(s3_upload_id,''), coalesce(image_id::text,'')"
               " FROM upload_sessions WHERE upload_session_id = '%s'" % sid)
    return rows[0] if rows else None


def blob_row(h):
    rows = sql("SELECT storage_path, ref_count, size FROM blobs WHERE content_hash = '%s'" % h)
    return rows[0] if rows else None


def read_object(s3, key):
    return s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()


def test_three_chunk_upload_reads_back_identical(client, s3):
    data = os.urandom(2 * 8 * MIB + 123457)
    sess, doc = client.upload(data)
    assert sess["chunk_count"] == 3 and sess["chunk_size"] == 8 * MIB
    assert doc["status"] == "completed" and doc["deduplicated"] is False
    h = hashlib.sha256(data).hexdigest()
    assert doc["sha256"] == h
    path, refs, size = blob_row(h)
    assert refs == "1" and int(size) == len(data)
    assert read_object(s3, path) == data
    assert sql_value("SELECT count(*) FROM images WHERE image_id = '%s' AND content_hash = '%s'"
                     % (doc["image_id"], h)) == "1"
    # one transaction wrote the outbox event and the change-log entry with it
    assert sql_value("SELECT count(*) FROM outbox WHERE payload->>'image_id' = '%s'"
                     % doc["image_id"]) == "1"
    assert sql_value("SELECT count(*) FROM change_log WHERE image_id = '%s' AND kind = 'added'"
                     % doc["image_id"]) == "1"
    # repeating complete returns the same image
    st, again = client.complete(sess["upload_session_id"])
    assert st == 200 and again["image_id"] == doc["image_id"]


def test_resume_uploads_only_missing_chunk(client):
    data = os.urandom(2 * 8 * MIB + 99)
    sess = client.start(data)
    sid = sess["upload_session_id"]
    client.put_chunks(sess, data, [0, 2])
    # the client "crashes"; a new process asks what storage has
    st, status = client.call("GET", "/uploads/%s" % sid)
    assert st == 200 and status["uploaded_chunks"] == [0, 2], status
    st, doc = client.complete(sid)
    assert st == 409 and doc["error"]["code"] == "chunks_missing"
    assert doc["error"]["missing_chunks"] == [1]
    client.put_chunks(sess, data, [1])
    st, status = client.call("GET", "/uploads/%s" % sid)
    assert status["uploaded_chunks"] == [0, 1, 2]
    st, doc = client.complete_settled(sid)
    assert st == 200, doc
    assert doc["sha256"] == hashlib.sha256(data).hexdigest()


def test_resend_chunk_overwrites_it(client, s3):
    data = os.urandom(8 * MIB + 10)
    sess = client.start(data)
    garbage = bytearray(data)
    garbage[5] ^= 0xFF
    client.put_chunks(sess, bytes(garbage), [0, 1])
    client.put_chunks(sess, data, [0])  # retry of chunk 0 with the right bytes
    st, doc = client.complete_settled(sess["upload_session_id"])
    assert st == 200 and doc["sha256"] == hashlib.sha256(data).hexdigest()


def test_two_users_same_bytes_one_blob(api, s3):
    data = os.urandom(MIB + 7)
    a = Client(api.url, api.token(user_id("a")))
    b = Client(api.url, api.token(user_id("b")))
    sa, da = a.upload(data)
    sb, db = b.upload(data)
    assert da["image_id"] != db["image_id"]
    # another user's content is never revealed: b is told nothing about a's copy
    assert da["deduplicated"] is False and db["deduplicated"] is False
    h = hashlib.sha256(data).hexdigest()
    path, refs, _ = blob_row(h)
    assert refs == "2"
    assert sql_value("SELECT count(*) FROM images WHERE content_hash = '%s'" % h) == "2"
    keys = [session_row(s["upload_session_id"])[1] for s in (sa, sb)]
    present = [k for k in keys if object_exists(s3, k)]
    assert present == [path], (present, path)  # the duplicate's staging object is gone
    assert read_object(s3, path) == data
    # the owner's own duplicate is reported
    _, again = a.upload(data)
    assert again["deduplicated"] is True and blob_row(h)[1] == "3"
    st, doc = a.call("GET", "/uploads/%s" % sb["upload_session_id"])
    assert st == 404
    st, doc = b.call("GET", "/uploads/%s" % sb["upload_session_id"])
    assert st == 200 and doc["deduplicated"] is False


def test_concurrent_identical_uploads_one_blob(api):
    data = os.urandom(256 * 1024)
    h = hashlib.sha256(data).hexdigest()
    clients = [Client(api.url, api.token(user_id("c"))) for _ in range(32)]
    sessions = [c.start(data) for c in clients]
    for c, s in zip(clients, sessions):
        c.put_chunks(s, data, [0])
    with cf.ThreadPoolExecutor(32) as ex:
        res = list(ex.map(lambda cs: cs[0].complete(cs[1]["upload_session_id"]),
                          zip(clients, sessions)))
    assert all(st == 200 for st, _ in res), res
    assert not any(d["deduplicated"] for _, d in res)  # 32 users: nobody learns of the others
    assert sql_value("SELECT count(*) FROM upload_sessions WHERE content_hash = '%s'"
                     " AND NOT deduplicated" % h) == "1"  # one object kept
    assert sql_value("SELECT count(*) FROM blobs WHERE content_hash = '%s'" % h) == "1"
    assert blob_row(h)[1] == "32"
    assert sql_value("SELECT count(*) FROM images WHERE content_hash = '%s'" % h) == "32"


def test_concurrent_completes_of_one_session_make_one_image(client):
    data = os.urandom(3 * MIB)
    sess = client.start(data)
    client.put_chunks(sess, data, [0])
    sid = sess["upload_session_id"]
    with cf.ThreadPoolExecutor(16) as ex:
        res = list(ex.map(lambda _: client.complete_settled(sid), range(16)))
    assert all(st == 200 for st, _ in res), res
    assert len({d["image_id"] for _, d in res}) == 1
    assert sql_value("SELECT count(*) FROM images WHERE upload_session_id = '%s'" % sid) == "1"
    h = hashlib.sha256(data).hexdigest()
    assert blob_row(h)[1] == "1"


def proof_for(data, challenge):
    m = hashlib.sha256(challenge["nonce"].encode())
    for r in challenge["ranges"]:
        m.update(data[r["offset"]:r["offset"] + r["length"]])
    return m.hexdigest()


def bucket_keys(s3):
    keys = set()
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix="blobs/"):
        keys.update(o["Key"] for o in page.get("Contents", []))
    return keys


def test_proof_of_possession(api, s3):
    data = os.urandom(300 * 1024)
    owner = Client(api.url, api.token(user_id("o")))
    owner.upload(data)
    h = hashlib.sha256(data).hexdigest()
    before = bucket_keys(s3)

    # right proof: an image, no bytes sent, nothing written to storage
    good = Client(api.url, api.token(user_id("p")))
    sess = good.start(data, declare=True)
    ch = sess["dedup_challenge"]
    assert len(ch["nonce"]) == 32 and ch["mode"] == "whole"
    assert ch["ranges"] == [{"offset": 0, "length": len(data)}]
    st, doc = good.call("POST", "/uploads/%s/proof" % sess["upload_session_id"],
                        {"proof": proof_for(data, ch)})
    assert st == 200 and doc["deduplicated"] is True and doc["status"] == "completed", doc
    assert session_row(sess["upload_session_id"])[2] == ""  # no multipart upload created
    assert blob_row(h)[1] == "2"
    assert bucket_keys(s3) == before
    # the image is real and repeated complete returns it
    st, again = good.complete(sess["upload_session_id"])
    assert st == 200 and again["image_id"] == doc["image_id"]

    # wrong proof: refused, one attempt only, then the client uploads normally
    bad = Client(api.url, api.token(user_id("x")))
    sess = bad.start(data, declare=True)
    sid = sess["upload_session_id"]
    st, doc = bad.call("POST", "/uploads/%s/proof" % sid, {"proof": "0" * 64})
    assert st == 403 and doc["error"]["code"] == "proof_rejected"
    st, doc = bad.call("POST", "/uploads/%s/proof" % sid,
                       {"proof": proof_for(data, sess["dedup_challenge"])})
    assert st == 409 and doc["error"]["code"] == "no_challenge"
    assert blob_row(h)[1] == "2"
    # hash only: completing without bytes or proof is refused
    st, doc = bad.complete(sid)
    assert st == 409 and doc["error"]["code"] == "chunks_missing"
    assert sql_value("SELECT count(*) FROM images WHERE upload_session_id = '%s'" % sid) == "0"
    bad.put_chunks(sess, data, [0])
    st, doc = bad.complete(sid)
    assert st == 200 and doc["deduplicated"] is False  # x never had it: told nothing
    assert blob_row(h)[1] == "3"


def test_false_declared_sha256_commits_nothing(client, s3):
    data = os.urandom(MIB)
    lie = hashlib.sha256(b"something else").hexdigest()
    sess = client.start(data, declare=lie)
    sid = sess["upload_session_id"]
    client.put_chunks(sess, data, [0])
    st, doc = client.complete(sid)
    assert st == 422 and doc["error"]["code"] == "sha256_mismatch", doc
    assert blob_row(lie) is None
    assert blob_row(hashlib.sha256(data).hexdigest()) is None
    assert sql_value("SELECT count(*) FROM images WHERE upload_session_id = '%s'" % sid) == "0"
    assert sql_value("SELECT count(*) FROM outbox WHERE payload->>'content_hash' = '%s'"
                     % lie) == "0"
    assert not object_exists(s3, session_row(sid)[1])
    st, doc = client.complete(sid)
    assert st == 422


def swap_key(url, new_key):
    u = urllib.parse.urlsplit(url)
    parts = u.path.split("/", 2)  # '', bucket, key
    return urllib.parse.urlunsplit((u.scheme, u.netloc, "/%s/%s" % (parts[1], new_key),
                                    u.query, u.fragment))


def test_urls_are_scoped_to_their_session(api, s3):
    victim = Client(api.url, api.token(user_id("v")))
    vdata = os.urandom(MIB)
    vs, vdoc = victim.upload(vdata)
    vkey = session_row(vs["upload_session_id"])[1]
    other = victim.start(os.urandom(MIB))
    okey = session_row(other["upload_session_id"])[1]
    victim.urls(other["upload_session_id"], [0])  # creates its multipart upload

    attacker = Client(api.url, api.token(user_id("m")))
    asess = attacker.start(os.urandom(MIB))
    url = attacker.urls(asess["upload_session_id"], [0])[0]
    assert re.search(r"X-Amz-Expires=\d+", url)
    for key in (vkey, okey):
        r = requests.put(swap_key(url, key), data=b"evil", timeout=30)
        assert r.status_code == 403, (key, r.status_code)
    r = requests.delete(url, timeout=30)
    assert r.status_code == 403
    assert read_object(s3, vkey) == vdata
    # a completed session's URL cannot alter the stored object: a part URL's upload is gone;
    # a one-PUT URL writes a staging key the stored object was copied from before hashing
    late = Client(api.url, api.token(user_id("l")))
    for data in (os.urandom(MIB), os.urandom(8 * MIB + 5)):
        sess = late.start(data)
        url = late.urls(sess["upload_session_id"], [0])[0]
        late.put_chunks(sess, data, list(range(sess["chunk_count"])))
        st, doc = late.complete_settled(sess["upload_session_id"])
        assert st == 200
        r = requests.put(url, data=b"x" * len(data[:sess["chunk_size"]]), timeout=30)
        assert r.status_code in (200, 400, 404), r.status_code
        path = blob_row(doc["sha256"])[0]
        assert read_object(s3, path) == data
    # another user's session answers 404 everywhere
    sid = sess["upload_session_id"]
    for method, path, body in [("GET", "/uploads/%s" % sid, None),
                               ("POST", "/uploads/%s/chunks/urls" % sid, {"chunk_numbers": [0]}),
                               ("PUT", "/uploads/%s/chunks/0" % sid, None),
                               ("POST", "/uploads/%s/complete" % sid, None),
                               ("DELETE", "/uploads/%s" % sid, None)]:
        st, doc = attacker.call(method, path, body)
        assert st == 404 and doc["error"]["code"] == "not_found", (method, path, st, doc)


def test_put_chunk_redirects_to_presigned_url(client):
    data = os.urandom(MIB)
    sess = client.start(data)
    sid = sess["upload_session_id"]
    st, doc = client.call("PUT", "/uploads/%s/chunks/0" % sid)
    assert st == 307 and "X-Amz-Signature=" in doc["url"]
    r = requests.put(doc["url"], data=data, timeout=30)
    assert r.status_code == 200
    st, doc = client.complete(sid)
    assert st == 200


def test_idempotency_key(client):
    data = os.urandom(1000)
    h = {"Idempotency-Key": "k-" + user_id()}
    a = client.start(data, headers=h)
    b = client.start(data, headers=h)
    assert a["upload_session_id"] == b["upload_session_id"]
    st, doc = client.call("POST", "/uploads", {"file_name": "other.jpg", "file_size": 1000,
                                               "mime_type": "image/jpeg"}, headers=h)
    assert st == 422 and doc["error"]["code"] == "idempotency_key_reused"
    c = client.start(data)
    assert c["upload_session_id"] != a["upload_session_id"]


def test_abort(client, s3):
    data = os.urandom(MIB)
    sess = client.start(data)
    sid = sess["upload_session_id"]
    client.put_chunks(sess, data, [0])
    st, doc = client.call("DELETE", "/uploads/%s" % sid)
    assert st == 200 and doc["status"] == "aborted"
    st, doc = client.call("DELETE", "/uploads/%s" % sid)
    assert st == 200
    _, key, upload_id, _ = session_row(sid)
    try:
        s3.list_parts(Bucket=BUCKET, Key=key, UploadId=upload_id)
        raise AssertionError("multipart upload still alive")
    except s3.exceptions.ClientError as e:
        assert e.response["Error"]["Code"] in ("NoSuchUpload", "NoSuchKey")
    st, doc = client.complete(sid)
    assert st == 409
    st, doc = client.call("POST", "/uploads/%s/chunks/urls" % sid, {"chunk_numbers": [0]})
    assert st == 409


def test_bad_input(api, client):
    def bad(method, path, body=None, raw=None, want=400, code=None, headers=None):
        st, doc = client.call(method, path, body, raw=raw, headers=headers)
        assert st == want, (method, path, body, st, doc)
        assert isinstance(doc, dict) and doc["error"]["code"], doc
        if code:
            assert doc["error"]["code"] == code, doc

    ok = {"file_name": "a.jpg", "file_size": 10, "mime_type": "image/jpeg"}
    before = sql_value("SELECT count(*) FROM upload_sessions")
    bad("POST", "/uploads", raw=b"{not json", headers={"Content-Type": "application/json"})
    bad("POST", "/uploads", raw=b"[1,2]", headers={"Content-Type": "application/json"})
    bad("POST", "/uploads", dict(ok, file_size=-1))
    bad("POST", "/uploads", dict(ok, file_size=0))
    bad("POST", "/uploads", dict(ok, file_size="10"))
    bad("POST", "/uploads", dict(ok, file_size=1.5))
    bad("POST", "/uploads", dict(ok, file_size=60 * 1024 ** 3), want=413, code="file_too_large")
    bad("POST", "/uploads", dict(ok, file_size=10 ** 30))
    bad("POST", "/uploads", dict(ok, mime_type="text/plain"), want=415)
    bad("POST", "/uploads", dict(ok, mime_type="application/octet-stream"), want=415)
    bad("POST", "/uploads", dict(ok, file_name=""))
    bad("POST", "/uploads", dict(ok, file_name="a\nb.jpg"))
    bad("POST", "/uploads", dict(ok, file_name="x" * 300))
    bad("POST", "/uploads", dict(ok, sha256="zz"))
    bad("POST", "/uploads", {"file_size": 10, "mime_type": "image/jpeg"})
    assert sql_value("SELECT count(*) FROM upload_sessions") == before

    unknown = "00000000-0000-4000-8000-000000000000"
    bad("GET", "/uploads/" + unknown, want=404)
    bad("GET", "/uploads/not-a-uuid", want=404)
    bad("POST", "/uploads/%s/complete" % unknown, want=404)
    sess = client.start(os.urandom(100))
    sid = sess["upload_session_id"]
    bad("POST", "/uploads/%s/chunks/urls" % sid, {"chunk_numbers": [1]}, code="chunk_out_of_range")
    bad("POST", "/uploads/%s/chunks/urls" % sid, {"chunk_numbers": [-1]})
    bad("POST", "/uploads/%s/chunks/urls" % sid, {"chunk_numbers": []})
    bad("POST", "/uploads/%s/chunks/urls" % sid, {"chunk_numbers": "0"})
    bad("PUT", "/uploads/%s/chunks/7" % sid, code="chunk_out_of_range")
    bad("POST", "/uploads/%s/complete" % sid, want=409, code="chunks_missing")

    anon = requests.post(api.url + "/uploads", json=ok, timeout=10)
    assert anon.status_code == 401 and anon.json()["error"]["code"] == "unauthorized"
    assert anon.headers.get("WWW-Authenticate", "").startswith("Bearer")
    for tok in ["garbage", api.token("someone", ttl=1) + "x", "a.b.c"]:
        r = requests.post(api.url + "/uploads", json=ok, timeout=10,
                          headers={"Authorization": "Bearer " + tok})
        assert r.status_code == 401, tok
    other_secret = Client(api.url, __import__("conftest").make_token("eve", secret="not-the-key-" + "x" * 32))
    st, _ = other_secret.call("POST", "/uploads", ok)
    assert st == 401
    assert sql_value("SELECT count(*) FROM upload_sessions") == str(int(before) + 1)
    bad("GET", "/nope", want=404)
    bad("PATCH", "/uploads", want=405)


def test_large_upload_verified_in_background(stack, s3):
    """A 200 MiB upload; with the async threshold below it, complete answers 202 and the
    client polls the session until the verified image exists."""
    api = start_api(PIXPLANE_VERIFY_ASYNC_THRESHOLD="64MiB")
    try:
        c = Client(api.url, api.token(user_id("big")))
        data = os.urandom(200 * MIB + 4321)
        sess = c.start(data)
        n = sess["chunk_count"]
        urls = c.urls(sess["upload_session_id"], list(range(n)))
        size = sess["chunk_size"]

        def put(i):
            r = requests.put(urls[i], data=data[i * size:(i + 1) * size], timeout=300)
            return r.status_code

        with cf.ThreadPoolExecutor(4) as ex:
            assert set(ex.map(put, range(n))) == {200}
        st, doc = c.complete(sess["upload_session_id"])
        assert st == 202 and doc["status"] == "verifying", doc
        import time
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            st, doc = c.call("GET", "/uploads/%s" % sess["upload_session_id"])
            if doc["status"] != "verifying":
                break
            time.sleep(0.2)
        assert doc["status"] == "completed", doc
        h = hashlib.sha256(data).hexdigest()
        path, refs, size = blob_row(h)
        assert int(size) == len(data) and refs == "1"
        got = hashlib.sha256()
        for chunk in s3.get_object(Bucket=BUCKET, Key=path)["Body"].iter_chunks(1 << 20):
            got.update(chunk)
        assert got.hexdigest() == h
    finally:
        api.stop()


def test_put_chunk_with_body_redirects_without_reading_it(api, client):
    """PUT /uploads/{id}/chunks/{n} answers 307 from the head: with Expect: 100-continue
    the client never sends the bytes to the API; without it the API discards them."""
    import socket
    data = os.urandom(MIB)
    sess = client.start(data)
    sid = sess["upload_session_id"]
    host, port = api.url.split("//")[1].split(":")
    s = socket.create_connection((host, int(port)), timeout=10)
    s.sendall(("PUT /uploads/%s/chunks/0 HTTP/1.1\r\nHost: x\r\nAuthorization: %s\r\n"
               "Content-Length: %d\r\nExpect: 100-continue\r\n\r\n"
               % (sid, client.s.headers["Authorization"], len(data))).encode())
    resp = b""
    while b"\r\n\r\n" not in resp:
        resp += s.recv(65536)
    head = resp.split(b"\r\n\r\n")[0].decode()
    assert head.startswith("HTTP/1.1 307"), head
    location = [l.split(": ", 1)[1] for l in head.split("\r\n") if l.lower().startswith("location:")]
    s.close()
    assert requests.put(location[0], data=data, timeout=30).status_code == 200
    r = requests.put(api.url + "/uploads/%s/chunks/0" % sid, data=os.urandom(256 * 1024),
                     headers={"Authorization": client.s.headers["Authorization"]},
                     allow_redirects=False, timeout=30)
    assert r.status_code == 307 and "X-Amz-Signature=" in r.headers["Location"]
    st, doc = client.complete(sid)
    assert st == 200 and doc["sha256"] == hashlib.sha256(data).hexdigest()
