"""POST /uploads/batch (issue 17): many sessions in one call and one database round trip,
each item answered on its own, in order; the same checks, caps, idempotency and dedup
challenges as POST /uploads."""
import hashlib
import os

import pytest

from conftest import ApiProcess, Client, sql_value, user_id


def item(data, name="p.jpg", declare=False, key=None, mime="image/jpeg"):
    it = {"file_name": name, "file_size": len(data), "mime_type": mime}
    if declare:
        it["sha256"] = hashlib.sha256(data).hexdigest()
    if key:
        it["idempotency_key"] = key
    return it


def batch(c, items):
    st, doc = c.call("POST", "/uploads/batch", {"items": items})
    assert st == 200, doc
    assert [x["index"] for x in doc["items"]] == list(range(len(items)))
    return doc["items"]


def finish(c, sess, data):
    """Uploads the session's one chunk and completes it; returns the complete answer."""
    c.put_chunks(sess, data, [0])
    st, doc = c.call("POST", "/uploads/%s/complete" % sess["upload_session_id"])
    assert st == 200, doc
    return doc


@pytest.fixture(scope="module")
def bapi(stack):
    p = ApiProcess({"PIXPLANE_BATCH_MAX_ITEMS": "20", "PIXPLANE_SESSIONS_PER_USER": "12",
                    "PIXPLANE_DEDUP_THRESHOLD": "1"})
    yield p
    p.stop()


def test_items_are_independent_and_in_order(bapi):
    c = Client(bapi.url, bapi.token(user_id("bat")))
    good = [os.urandom(3000), os.urandom(5000)]
    items = [item(good[0], "a.jpg"),
             {"file_name": "b.jpg", "file_size": -4, "mime_type": "image/jpeg"},
             item(b"x" * 10, "c.svg", mime="image/svg+xml"),
             "not an object",
             {"file_name": "", "file_size": 4, "mime_type": "image/png"},
             item(good[1], "f.png", mime="image/png", declare=True),
             {"file_name": "g.jpg", "file_size": 10, "mime_type": "image/jpeg", "sha256": "zz"},
             {"file_name": "h.jpg", "file_size": 60 * 2**30, "mime_type": "image/jpeg"}]
    res = batch(c, items)
    assert [x["status_code"] for x in res] == [201, 400, 415, 400, 400, 201, 400, 413]
    assert res[2]["error"]["code"] == "unsupported_media_type"
    assert res[7]["error"]["code"] == "file_too_large"
    for i in (0, 5):
        s = res[i]["session"]
        assert s["status"] == "uploading" and s["file_name"] == items[i]["file_name"]
        assert s["chunk_count"] == 1 and res[i]["replayed"] is False
    assert "dedup_challenge" in res[5]["session"]  # declared sha256: a challenge (or decoy)
    # the sessions are real: upload and complete both
    for i, data in ((0, good[0]), (5, good[1])):
        doc = finish(c, res[i]["session"], data)
        assert doc["sha256"] == hashlib.sha256(data).hexdigest()
        st, meta = c.call("GET", "/images/%s/metadata" % doc["image_id"])
        assert st == 200 and meta["name"] == items[i]["file_name"]


def test_bad_bodies_and_too_many_items(bapi):
    u = user_id("batb")
    c = Client(bapi.url, bapi.token(u))
    for body in ({}, {"items": []}, {"items": {}}, {"items": "x"}):
        st, doc = c.call("POST", "/uploads/batch", body)
        assert st == 400 and doc["error"]["code"] == "bad_request", body
    st, doc = c.call("POST", "/uploads/batch", raw=b"{not json")
    assert st == 400
    st, doc = c.call("POST", "/uploads/batch", {"items": [item(b"x" * 10)] * 21})
    assert st == 413 and doc["error"]["code"] == "too_many_items"
    assert "20" in doc["error"]["message"]
    # nothing was opened by the refused batches
    n = sql_value("SELECT count(*) FROM upload_sessions WHERE owner_id = '%s'" % u)
    assert n in (None, "0")


def test_idempotency_keys_are_per_user(bapi):
    alice = Client(bapi.url, bapi.token(user_id("bati")))
    bob = Client(bapi.url, bapi.token(user_id("batj")))
    data = os.urandom(4000)
    a1 = batch(alice, [item(data, key="key-1"), item(data, "other.jpg", key="key-2")])
    assert [x["status_code"] for x in a1] == [201, 201]
    # the same keys again: the same sessions, replayed; a changed request is 422
    a2 = batch(alice, [item(data, key="key-1"), item(data, "renamed.jpg", key="key-2"),
                       item(data, key="key-1")])
    assert a2[0]["replayed"] is True
    assert a2[0]["session"]["upload_session_id"] == a1[0]["session"]["upload_session_id"]
    assert a2[1]["status_code"] == 422 and a2[1]["error"]["code"] == "idempotency_key_reused"
    assert a2[2]["status_code"] == 400  # repeated within one batch
    # another user's keys name nothing of theirs: bob gets sessions of his own
    b1 = batch(bob, [item(data, key="key-1"), item(data, key="key-2")])
    assert [x["status_code"] for x in b1] == [201, 201]
    assert not {x["session"]["upload_session_id"] for x in b1} & \
        {x["session"]["upload_session_id"] for x in a1}
    assert all(x["replayed"] is False for x in b1)
    # and alice's single-create replay still finds hers
    st, doc = alice.call("POST", "/uploads", item(data), headers={"Idempotency-Key": "key-1"})
    assert st == 201 and doc["upload_session_id"] == a1[0]["session"]["upload_session_id"]


def test_caps_admit_in_order(bapi):
    c = Client(bapi.url, bapi.token(user_id("batc")))
    first = item(os.urandom(100), "f0.jpg", key="kk")
    items = [first] + [item(os.urandom(100), "f%d.jpg" % i) for i in range(1, 15)]
    res = batch(c, items)
    assert [x["status_code"] for x in res] == [201] * 12 + [429] * 3
    assert res[12]["error"]["code"] == "too_many_open_sessions"
    # at the cap: a replayed key is never refused, a new session is
    res2 = batch(c, [item(os.urandom(100), "new.jpg"), first])
    assert res2[0]["status_code"] == 429
    assert res2[1]["status_code"] == 201 and res2[1]["replayed"] is True
    assert res2[1]["session"]["upload_session_id"] == res[0]["session"]["upload_session_id"]


def test_dedup_by_proof_from_a_batch(bapi):
    """A stored content gets a real challenge in the batch; the right proof creates the image
    with no bytes sent."""
    owner = Client(bapi.url, bapi.token(user_id("batd")))
    data = os.urandom(200 * 1024)
    owner.upload(data)
    other = Client(bapi.url, bapi.token(user_id("bate")))
    res = batch(other, [item(data, "same.jpg", declare=True),
                        item(os.urandom(1000), "new.jpg", declare=True)])
    ch = res[0]["session"]["dedup_challenge"]
    h = hashlib.sha256(ch["nonce"].encode())
    for r in ch["ranges"]:
        h.update(data[r["offset"]:r["offset"] + r["length"]])
    sid = res[0]["session"]["upload_session_id"]
    st, doc = other.call("POST", "/uploads/%s/proof" % sid, {"proof": h.hexdigest()})
    assert st == 200 and doc["deduplicated"] is True
    assert doc["sha256"] == hashlib.sha256(data).hexdigest()
    # unknown content got a challenge too (a decoy): no proof passes, upload instead
    assert "dedup_challenge" in res[1]["session"]
