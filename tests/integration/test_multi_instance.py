"""Two API processes on one database behave as one (issue 20, must-show 3): a device's SSE
stream on one instance hears changes written through the other, completes of one session
racing across both make one image, and identical content completed through both makes one
blob with exact reference counts."""
import concurrent.futures as cf
import hashlib
import json
import os
import threading
import time

import pytest

from conftest import ApiProcess, Client, sql_value, user_id
from test_sync import SSEReader, sse_connect

MIB = 1024 * 1024


@pytest.fixture(scope="module")
def pair(stack):
    a, b = ApiProcess(), ApiProcess()
    yield a, b
    a.stop()
    b.stop()


def test_sse_hears_the_other_instance(pair):
    a, b = pair
    uid = user_id("mi")
    token = a.token(uid)
    via_b = Client(b.url, token)
    s = SSEReader(sse_connect(a.url, token))
    assert " 200 " in s.headers().split("\r\n")[0]
    assert (s.event(5) or {}).get("event") == "sync"  # the catch-up event
    seen = []
    for i in range(5):
        t0 = time.monotonic()
        _, doc = via_b.upload(os.urandom(500), name="b-%d.jpg" % i)
        ev = s.event(5)
        assert ev is not None, "no event on instance A for an upload through B"
        added = [x["image_id"] for x in json.loads(ev["data"])["added"]]
        assert added == [doc["image_id"]], added
        seen.append(time.monotonic() - t0)
    st, _ = via_b.call("PATCH", "/images/%s" % doc["image_id"], {"name": "renamed-on-b.jpg"})
    assert st == 200
    ev = s.event(5)
    assert ev and [x["name"] for x in json.loads(ev["data"])["updated"]] == ["renamed-on-b.jpg"]
    s.sock.close()
    print("cross-instance SSE: upload through B to event on A, max %.2f s" % max(seen))


def test_complete_race_across_instances(pair):
    a, b = pair
    uid = user_id("mi-race")
    ca, cb = Client(a.url, a.token(uid)), Client(b.url, b.token(uid))
    for _ in range(3):
        data = os.urandom(3 * MIB)
        sess = ca.start(data)
        ca.put_chunks(sess, data, [0])
        sid = sess["upload_session_id"]
        go = threading.Barrier(16)

        def complete(i):
            go.wait(10)
            return (ca if i % 2 else cb).complete_settled(sid)
        with cf.ThreadPoolExecutor(16) as ex:
            res = list(ex.map(complete, range(16)))
        assert all(st == 200 for st, _ in res), res
        assert len({d["image_id"] for _, d in res}) == 1
        assert sql_value("SELECT count(*) FROM images WHERE upload_session_id = '%s'" % sid) == "1"
        h = hashlib.sha256(data).hexdigest()
        assert sql_value("SELECT ref_count FROM blobs WHERE content_hash = '%s'" % h) == "1"


def test_identical_content_across_instances_one_blob(pair):
    a, b = pair
    data = os.urandom(256 * 1024)
    h = hashlib.sha256(data).hexdigest()
    apis = [a, b] * 8
    clients = [Client(p.url, p.token(user_id("mi-d"))) for p in apis]
    sessions = [c.start(data) for c in clients]
    for c, s in zip(clients, sessions):
        c.put_chunks(s, data, [0])
    go = threading.Barrier(len(clients))

    def complete(cs):
        go.wait(10)
        return cs[0].complete_settled(cs[1]["upload_session_id"])
    with cf.ThreadPoolExecutor(len(clients)) as ex:
        res = list(ex.map(complete, zip(clients, sessions)))
    assert all(st == 200 for st, _ in res), res
    assert sql_value("SELECT count(*) FROM blobs WHERE content_hash = '%s'" % h) == "1"
    assert sql_value("SELECT ref_count FROM blobs WHERE content_hash = '%s'" % h) == "16"
    assert sql_value("SELECT count(*) FROM images WHERE content_hash = '%s'" % h) == "16"
