# Dedup without upload, v2 (common/pop.h), against real PostgreSQL and radosgw: a proof that
# needs the whole content, a per-(user, content) challenge budget, answers of one shape
# whether or not the content exists, challenge banks that answer with no storage read (S3
# requests counted at a relay), old blobs, concurrency, and the randomised threshold.
import concurrent.futures as cf
import hashlib
import os
import time

import pytest
import requests

from conftest import MIB, Client, sql, sql_value, start_api, user_id
from s3door import S3Door

BANK = 4  # PIXPLANE_POP_BANK default
BUDGET = 3  # PIXPLANE_POP_BUDGET default


def sha(b):
    return hashlib.sha256(b).hexdigest()


def proof_for(data, ch):
    m = hashlib.sha256(ch["nonce"].encode())
    for r in ch["ranges"]:
        m.update(data[r["offset"]:r["offset"] + r["length"]])
    return m.hexdigest()


def declare(cl, h, size, name="photo.jpg"):
    return cl.call("POST", "/uploads", {"file_name": name, "file_size": size,
                                        "mime_type": "image/jpeg", "sha256": h})


def prove(cl, sess, data):
    return cl.call("POST", "/uploads/%s/proof" % sess["upload_session_id"],
                   {"proof": proof_for(data, sess["dedup_challenge"])})


def bank_size(h):
    return int(sql_value("SELECT count(*) FROM pop_bank WHERE content_hash = '%s'" % h))


def wait_bank(h, n, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if bank_size(h) >= n:
            return
        time.sleep(0.1)
    raise AssertionError("bank of %s did not reach %d (has %d)" % (h, n, bank_size(h)))


def images_of(user):
    return int(sql_value("SELECT count(*) FROM images WHERE owner_id = '%s'" % user))


@pytest.fixture(scope="module")
def dapi(stack):
    p = start_api(PIXPLANE_DEDUP_THRESHOLD="1")
    yield p
    p.stop()


def new_client(api, prefix):
    u = user_id(prefix)
    return u, Client(api.url, api.token(u))


def stored(api, size):
    data = os.urandom(size)
    new_client(api, "own")[1].upload(data)
    return data


def run_attack(cl, h, have, hole, limit=50):
    """The partial-knowledge attack: with the sha256 and the bytes `have` (zeros where it
    lacks them: `hole`, or None), open sessions until a challenge avoids the hole,
    abandoning (DELETE) every other one. Returns (challenges seen, image id or None)."""
    attempts = 0
    for _ in range(limit):
        st, sess = declare(cl, h, len(have))
        assert st == 201, sess
        ch = sess.get("dedup_challenge")
        if ch is None:
            return attempts, None
        attempts += 1
        if hole and any(r["offset"] < hole[1] and r["offset"] + r["length"] > hole[0]
                        for r in ch["ranges"]):
            st, _ = cl.call("DELETE", "/uploads/%s" % sess["upload_session_id"])
            assert st == 200
            continue
        st, doc = prove(cl, sess, have)
        if st == 200:
            return attempts, doc["image_id"]
        assert st == 403 and doc["error"]["code"] == "proof_rejected", doc
    raise AssertionError("the budget never ran out")


def test_partial_knowledge_gets_no_image(dapi):
    data = stored(dapi, 2 * MIB)
    hole = (MIB, MIB + 2 * MIB // 10)  # the attacker lacks 10 % of the bytes
    partial = bytearray(data)
    partial[hole[0]:hole[1]] = bytes(hole[1] - hole[0])

    user, atk = new_client(dapi, "atk")
    attempts, image = run_attack(atk, sha(data), bytes(partial), hole)
    assert image is None and attempts == BUDGET
    assert images_of(user) == 0
    # out of budget: no challenge at all, and answering blindly gets nothing either
    st, sess = declare(atk, sha(data), len(data))
    assert st == 201 and "dedup_challenge" not in sess
    assert images_of(user) == 0

    # the same script with the whole file succeeds at once, and the bytes are the real ones
    user, full = new_client(dapi, "full")
    attempts, image = run_attack(full, sha(data), data, None)
    assert image and attempts == 1
    st, doc = full.call("GET", "/images/%s" % image)
    assert st == 200
    assert requests.get(doc["download_url"], timeout=30).content == data


def shape(x):
    if isinstance(x, dict):
        return {k: shape(v) for k, v in x.items()}
    if isinstance(x, list):
        return [shape(v) for v in x]
    if isinstance(x, str):
        return ("str", len(x))
    return type(x).__name__


def comparable(doc):
    """The answer with the values that differ per request (ids, times, nonce, offsets) as
    shapes, the rest as they are."""
    d = dict(doc)
    for k in ("upload_session_id", "expires_at"):
        d[k] = shape(d[k])
    if "dedup_challenge" in d:
        ch = dict(d["dedup_challenge"])
        ch["nonce"] = shape(ch["nonce"])
        ch["ranges"] = [{"offset": type(r["offset"]).__name__, "length": r["length"]}
                        for r in ch["ranges"]]
        d["dedup_challenge"] = ch
    return d


def hash_only_client(api, h, size):
    """What a client that knows a hash and a size (not the bytes) can see: the offer, a
    proof attempt and a complete without bytes."""
    _, cl = new_client(api, "probe")
    st, sess = declare(cl, h, size)
    out = [(st, comparable(sess))]
    st, doc = cl.call("POST", "/uploads/%s/proof" % sess["upload_session_id"], {"proof": "ab" * 32})
    out.append((st, doc))
    st, doc = cl.call("POST", "/uploads/%s/complete" % sess["upload_session_id"])
    out.append((st, doc))
    return out


@pytest.mark.parametrize("size", [300 * 1024, 20 * MIB + 3], ids=["whole", "ranges"])
def test_no_existence_oracle(dapi, size):
    data = stored(dapi, size)
    unknown = sha(os.urandom(32))
    # hash-only: the stored hash vs an unknown hash, same size, same client code
    seen = hash_only_client(dapi, sha(data), size)
    unseen = hash_only_client(dapi, unknown, size)
    assert seen == unseen, (seen, unseen)
    assert seen[0][0] == 201 and "dedup_challenge" in seen[0][1]
    mode = "whole" if size <= 16 * MIB else "ranges"
    assert seen[0][1]["dedup_challenge"]["mode"] == mode
    assert seen[1][0] == 403 and seen[2][0] == 409
    # size-only: the stored hash with a wrong size vs an unknown hash with that size
    assert hash_only_client(dapi, sha(data), size + 1) == hash_only_client(dapi, unknown, size + 1)


def test_abandoned_challenges_consume_budget(dapi):
    data = stored(dapi, 256 * 1024)
    h = sha(data)
    for target in (h, sha(os.urandom(8))):  # stored content and a decoy alike
        user, cl = new_client(dapi, "bud")
        st, s1 = declare(cl, target, len(data))
        assert "dedup_challenge" in s1
        assert cl.call("DELETE", "/uploads/%s" % s1["upload_session_id"])[0] == 200  # deleted
        st, s2 = declare(cl, target, len(data))
        assert "dedup_challenge" in s2
        sql("UPDATE upload_sessions SET expires_at = now() - interval '1 second'"
            " WHERE upload_session_id = '%s'" % s2["upload_session_id"])  # expired
        st, doc = prove(cl, s2, data)
        assert st == 410 and doc["error"]["code"] == "session_expired", doc
        st, s3 = declare(cl, target, len(data))
        assert "dedup_challenge" in s3  # never answered
        st, s4 = declare(cl, target, len(data))
        assert st == 201 and "dedup_challenge" not in s4
        # out of budget: a normal upload works
        if target == h:
            cl.put_chunks(s4, data, [0])
            st, doc = cl.complete(s4["upload_session_id"])
            assert st == 200 and doc["sha256"] == h and doc["deduplicated"] is False
        # the budget comes back with time: one unit per PIXPLANE_POP_BUDGET_REFILL (6 h)
        sql("UPDATE pop_budget SET updated_at = updated_at - interval '6 hours 1 second'"
            " WHERE user_id = '%s'" % user)
        st, s5 = declare(cl, target, len(data))
        assert "dedup_challenge" in s5
        st, s6 = declare(cl, target, len(data))
        assert "dedup_challenge" not in s6
    # a budget that has refilled completely is forgotten by the API's housekeeping
    sql("UPDATE pop_budget SET updated_at = now() - interval '19 hours'"
        " WHERE user_id = '%s'" % user)
    keep = sql_value("SELECT count(*) FROM pop_budget WHERE updated_at > now() - interval '1 hour'")
    fresh = start_api()
    try:
        deadline = time.monotonic() + 15
        while sql_value("SELECT count(*) FROM pop_budget WHERE user_id = '%s'" % user) != "0":
            assert time.monotonic() < deadline, "budget rows not pruned"
            time.sleep(0.2)
        assert int(sql_value("SELECT count(*) FROM pop_budget WHERE updated_at > now()"
                             " - interval '1 hour'")) >= int(keep)  # recent ones stay
    finally:
        fresh.stop()


@pytest.fixture(scope="module")
def door(stack):
    d = S3Door(os.environ["S3_ENDPOINT"])
    yield d
    d.close()


def test_bank_answers_without_storage_even_after_restart(stack, door):
    env = {"S3_ENDPOINT": door.url, "PIXPLANE_DEDUP_THRESHOLD": "1"}
    first = start_api(**env)
    try:
        data = stored(first, 3 * MIB)
    finally:
        first.stop()
    h = sha(data)
    assert bank_size(h) == BANK  # prepared in the verification pass
    api = start_api(**env)  # a restart: the bank lives in PostgreSQL
    try:
        door.reset()
        for _ in range(BANK):
            _, cl = new_client(api, "bank")
            st, sess = declare(cl, h, len(data))
            st, doc = prove(cl, sess, data)
            assert st == 200 and doc["deduplicated"] is True, doc
        assert door.count(prefix="blobs") == 0, door.requests
        assert bank_size(h) == 0
        # dry: the proof falls back to reading storage, and the bank is refilled behind it
        _, cl = new_client(api, "dry")
        st, sess = declare(cl, h, len(data))
        st, doc = prove(cl, sess, data)
        assert st == 200, doc
        assert door.count("GET", "blobs") >= 1
        wait_bank(h, BANK)
        door.reset()
        _, cl = new_client(api, "refilled")
        st, sess = declare(cl, h, len(data))
        assert prove(cl, sess, data)[0] == 200
        assert door.count(prefix="blobs") == 0, door.requests
        assert sql_value("SELECT ref_count FROM blobs WHERE content_hash = '%s'" % h) == str(
            BANK + 3)
    finally:
        api.stop()


def test_blob_without_bank_still_dedups(dapi):
    data = stored(dapi, 700 * 1024)
    h = sha(data)
    # a blob from before banks existed: no bank, never refilled
    sql("DELETE FROM pop_bank WHERE content_hash = '%s'" % h)
    sql("UPDATE blobs SET pop_refill_at = NULL WHERE content_hash = '%s'" % h)
    _, cl = new_client(dapi, "old")
    st, sess = declare(cl, h, len(data))
    st, doc = prove(cl, sess, data)
    assert st == 200 and doc["deduplicated"] is True, doc
    wait_bank(h, BANK)  # banked on first use
    _, bad = new_client(dapi, "oldbad")
    st, sess = declare(bad, h, len(data))
    st, doc = bad.call("POST", "/uploads/%s/proof" % sess["upload_session_id"],
                       {"proof": proof_for(os.urandom(len(data)), sess["dedup_challenge"])})
    assert st == 403


def test_64_concurrent_proofs(dapi):
    data = stored(dapi, 300 * 1024)
    h = sha(data)
    clients = [new_client(dapi, "c64")[1] for _ in range(64)]
    with cf.ThreadPoolExecutor(16) as ex:
        sessions = list(ex.map(lambda c: declare(c, h, len(data))[1], clients))
    nonces = [s["dedup_challenge"]["nonce"] for s in sessions]
    assert len(set(nonces)) == 64  # no challenge issued twice
    with cf.ThreadPoolExecutor(64) as ex:
        res = list(ex.map(lambda cs: prove(cs[0], cs[1], data), zip(clients, sessions)))
    assert all(st == 200 for st, _ in res), [d for st, d in res if st != 200][:3]
    assert len({d["image_id"] for _, d in res}) == 64
    assert sql_value("SELECT ref_count FROM blobs WHERE content_hash = '%s'" % h) == "65"
    assert sql_value("SELECT count(*) FROM images WHERE content_hash = '%s'" % h) == "65"
    used = ",".join("'%s'" % n for n in nonces)
    assert sql_value("SELECT count(*) FROM pop_bank WHERE nonce IN (%s)" % used) == "0"


def test_randomised_threshold(stack):
    api = start_api(PIXPLANE_DEDUP_THRESHOLD="4")  # dedup without upload from 2..4 copies
    try:
        data = os.urandom(200 * 1024)
        h = sha(data)
        new_client(api, "t-own")[1].upload(data)
        # one copy: below any threshold. The offer looks the same, but cannot be passed,
        # and the upload that follows is told nothing
        _, cl = new_client(api, "t1")
        st, sess = declare(cl, h, len(data))
        assert st == 201 and sess["dedup_challenge"]["mode"] == "whole"
        st, doc = prove(cl, sess, data)
        assert st == 403, doc
        cl.put_chunks(sess, data, [0])
        st, doc = cl.complete(sess["upload_session_id"])
        assert st == 200 and doc["deduplicated"] is False
        for _ in range(2):
            new_client(api, "t-more")[1].upload(data)
        assert sql_value("SELECT ref_count FROM blobs WHERE content_hash = '%s'" % h) == "4"
        _, cl = new_client(api, "t4")
        st, sess = declare(cl, h, len(data))
        st, doc = prove(cl, sess, data)
        assert st == 200 and doc["deduplicated"] is True, doc
    finally:
        api.stop()
