# The timeline (issue 18, must-show 2): 500 images with capture times in random order, some
# equal (the tie-break: image_id), some from the file's modification time, some from EXIF
# (blob_capture rows written here as the worker writes them, with images.taken_at updated
# the same way), some with none (the upload time). GET /images?sort=taken_at pages
# (limit=37; desc, asc, and a taken_after/taken_before window) return each of the 500
# exactly once and in order while other threads keep uploading images for the same user;
# those may or may not appear, never twice. Bad cursors and bad bounds are 400.
import concurrent.futures as cf
import datetime
import os
import random
import threading
import time
import urllib.parse

import pytest

from conftest import Client, sql, user_id

N = 500
PAGE = 37
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00"
T0 = datetime.datetime(2000, 1, 1, tzinfo=datetime.timezone.utc)
SPAN_S = 24 * 365 * 86400  # 2000-2024


def fmt(t):
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (t.microsecond // 1000)


def random_time(rng):
    return T0 + datetime.timedelta(milliseconds=rng.randrange(SPAN_S * 1000))


def plan(rng):
    """The 500 images: (source, time) with source in file_modified, exif, both, none. 60 of
    them share 12 times (ties across sources too)."""
    shared = [random_time(rng) for _ in range(12)]
    kinds = ["file_modified"] * 330 + ["exif"] * 60 + ["both"] * 30 + ["none"] * 80
    rng.shuffle(kinds)
    out, ties = [], 0
    for k in kinds:
        tie = k != "none" and ties < 60
        out.append((k, shared[ties % 12] if tie else random_time(rng)))
        ties += tie
    rng.shuffle(out)
    return out


def upload_batch(cl, items):
    """Opens sessions for items [(data, file_modified_at or None)] in one batch, sends each
    content and completes it; returns the image ids in order."""
    body = []
    for data, mod in items:
        o = {"file_name": "t.jpg", "file_size": len(data), "mime_type": "image/jpeg"}
        if mod:
            o["file_modified_at"] = mod
        body.append(o)
    st, doc = cl.call("POST", "/uploads/batch", {"items": body})
    assert st == 200, (st, doc)
    ids = []
    for (data, _), it in zip(items, doc["items"]):
        assert it["status_code"] == 201, it
        sess = it["session"]
        cl.put_chunks(sess, data, [0])
        st, done = cl.complete_settled(sess["upload_session_id"])
        assert st == 200, (st, done)
        ids.append(done["image_id"])
    return ids


def content(rng):
    return JPEG + rng.randbytes(200)


def put_exif_time(image_id, t):
    """A capture row with a capture time for the image's content, and taken_at as the worker
    sets it (capture time, else file_modified_at, else created_at)."""
    h = sql("SELECT content_hash FROM images WHERE image_id = '%s'" % image_id)[0][0]
    # the stack's worker may have recorded the (random) content as unreadable already
    sql("INSERT INTO blob_capture (content_hash, taken_local, taken_offset, taken_at, format)"
        " VALUES ('%s', '%s', '+00:00', '%s', 'jpeg') ON CONFLICT (content_hash) DO UPDATE"
        " SET taken_local = excluded.taken_local, taken_offset = excluded.taken_offset,"
        " taken_at = excluded.taken_at, format = excluded.format" % (h, fmt(t)[:23], fmt(t)))
    sql("UPDATE images SET taken_at = coalesce((SELECT taken_at FROM blob_capture"
        " WHERE content_hash = '%s'), file_modified_at, created_at) WHERE content_hash = '%s'"
        % (h, h))


@pytest.fixture(scope="module")
def library(api):
    """The user, their client and the 500 images: {image_id: (source, taken_at text)}."""
    rng = random.Random(int.from_bytes(os.urandom(4), "big"))
    user = user_id("tl")
    cl = Client(api.url, api.token(user))
    rows = plan(rng)
    items = [(content(rng), fmt(t) if k in ("file_modified", "both") else None)
             for k, t in rows]
    chunks = [items[i:i + 50] for i in range(0, N, 50)]
    with cf.ThreadPoolExecutor(4) as ex:
        ids = [i for part in ex.map(lambda c: upload_batch(
            Client(api.url, api.token(user)), c), chunks) for i in part]
    assert len(set(ids)) == N
    for (k, t), img in zip(rows, ids):
        if k in ("exif", "both"):
            put_exif_time(img, t)
    # the upload-time ones: their created_at, as the API renders taken_at
    created = dict(sql("SELECT image_id, to_char(created_at AT TIME ZONE 'UTC',"
                       " 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"') FROM images WHERE owner_id = '%s'"
                       % user))
    want = {}
    for (k, t), img in zip(rows, ids):
        src = {"both": "exif"}.get(k, k)
        want[img] = ("upload" if k == "none" else src, created[img] if k == "none" else fmt(t))
    return user, cl, want


class Writer:
    """Threads uploading new images (random file_modified_at, some none) for the user until
    stopped: at most `cap` images and `limit_s` seconds."""

    def __init__(self, api, user, threads=3, cap=400, limit_s=240):
        self.api, self.user, self.cap = api, user, cap
        self.deadline = time.monotonic() + limit_s
        self.ids, self.lock, self.stop_ev = [], threading.Lock(), threading.Event()
        self.errors = []
        self.threads = [threading.Thread(target=self.run, args=(i,)) for i in range(threads)]
        for t in self.threads:
            t.start()

    def count(self):
        with self.lock:
            return len(self.ids)

    def run(self, seed):
        rng = random.Random(seed * 7919 + int(time.time()))
        cl = Client(self.api.url, self.api.token(self.user))
        try:
            while not self.stop_ev.is_set() and time.monotonic() < self.deadline:
                if self.count() >= self.cap:
                    return
                items = [(content(rng), fmt(random_time(rng)) if rng.random() < 0.8 else None)
                         for _ in range(3)]
                got = upload_batch(cl, items)
                with self.lock:
                    self.ids.extend(got)
        except Exception as e:  # reported by stop()
            self.errors.append(repr(e))

    def wait_for(self, n, timeout=60):
        deadline = time.monotonic() + timeout
        while self.count() < n and time.monotonic() < deadline and not self.errors:
            time.sleep(0.05)
        assert self.count() >= n, ("the writers made %d uploads" % self.count(), self.errors)

    def stop(self):
        self.stop_ev.set()
        for t in self.threads:
            t.join(timeout=120)
        assert not any(t.is_alive() for t in self.threads), "a writer did not stop"
        assert not self.errors, self.errors


def pages(cl, query, max_pages=200):
    """Every page of GET /images?<query>&limit=37, slowed a little so uploads interleave.
    Returns the images in order and the number of pages."""
    out, cursor = [], None
    for n in range(1, max_pages + 1):
        q = "/images?%s&limit=%d" % (query, PAGE)
        if cursor:
            q += "&cursor=" + urllib.parse.quote(cursor)
        st, doc = cl.call("GET", q)
        assert st == 200, (q, st, doc)
        assert len(doc["images"]) <= PAGE
        out.extend(doc["images"])
        cursor = doc["next_cursor"]
        if cursor is None:
            return out, n
        time.sleep(0.02)
    raise AssertionError("more than %d pages" % max_pages)


def check_listing(images, want, expect_ids, descending):
    """images: a listing in order. Every expected id once, nothing twice, each with its
    expected taken_at, the whole sequence ordered by (taken_at, image_id)."""
    ids = [i["image_id"] for i in images]
    assert len(ids) == len(set(ids)), "an image was listed twice"
    keys = [(i["taken_at"], i["image_id"]) for i in images]
    assert keys == sorted(keys, reverse=descending), "the listing is out of order"
    mine = [i for i in images if i["image_id"] in want]
    assert sorted(i["image_id"] for i in mine) == sorted(expect_ids), (
        "missing: %s" % sorted(set(expect_ids) - set(ids))[:5])
    for i in mine:
        assert i["taken_at"] == want[i["image_id"]][1], (i, want[i["image_id"]])
    order = sorted(expect_ids, key=lambda x: (want[x][1], x), reverse=descending)
    assert [i["image_id"] for i in mine] == order


def test_paging_by_taken_at_under_concurrent_uploads(api, library):
    user, cl, want = library
    # the sources are what the API says they are
    for img in random.sample(sorted(want), 25):
        st, m = cl.call("GET", "/images/%s/metadata" % img)
        assert st == 200 and m["capture"]["time_source"] == want[img][0], (m, want[img])
    assert {s for s, _ in want.values()} == {"exif", "file_modified", "upload"}
    assert len({t for _, t in want.values()}) <= N - 48  # ties to break
    times = sorted(t for _, t in want.values())
    lo, hi = times[N // 4], times[3 * N // 4]
    window = [i for i, (_, t) in want.items() if lo <= t < hi]
    bounds = "taken_after=%s&taken_before=%s" % (urllib.parse.quote(lo), urllib.parse.quote(hi))
    w = Writer(api, user)
    try:
        w.wait_for(6)
        for query, desc, expect in (
                ("sort=taken_at", True, list(want)),
                ("sort=taken_at&order=asc", False, list(want)),
                ("sort=taken_at&" + bounds, True, window),
                ("sort=taken_at&order=asc&" + bounds, False, window)):
            before = w.count()
            images, n = pages(cl, query)
            assert n >= len(expect) // PAGE, (query, n)
            check_listing(images, want, expect, desc)
            if "taken_after" in query:
                assert all(lo <= i["taken_at"] < hi for i in images), query
            assert w.count() > before, "no upload ran while %s was paged" % query
    finally:
        w.stop()
    # everything is listed once the writers stop: the 500 and every concurrent upload
    images, _ = pages(cl, "sort=taken_at")
    assert sorted(i["image_id"] for i in images) == sorted(list(want) + w.ids)


def test_bad_cursors_and_bounds_are_refused(library):
    _, cl, _ = library
    st, doc = cl.call("GET", "/images?sort=taken_at&limit=2")
    assert st == 200 and doc["next_cursor"], (st, doc)
    taken = doc["next_cursor"]
    st, doc = cl.call("GET", "/images?sort=taken_at&order=asc&limit=2")
    asc = doc["next_cursor"]
    st, doc = cl.call("GET", "/images?limit=2")
    uploaded = doc["next_cursor"]
    q = urllib.parse.quote
    for path in ("/images?sort=taken_at&cursor=" + q(uploaded),   # another sort's cursor
                 "/images?cursor=" + q(taken),                     # and the other way
                 "/images?sort=taken_at&cursor=" + q(asc),        # another order's
                 "/images?sort=taken_at&order=asc&cursor=" + q(taken),
                 "/images?sort=taken_at&cursor=bm90LWEtY3Vyc29y",  # base64 of garbage
                 "/images?sort=taken_at&cursor=%%%",
                 "/images?sort=taken_at&taken_after=yesterday",
                 "/images?sort=taken_at&taken_after=2020-01-01",
                 "/images?sort=taken_at&taken_before=2020-13-01T00:00:00Z",
                 "/images?taken_after=2020-01-01T00:00:00Z"):      # bounds without the sort
        st, doc = cl.call("GET", path)
        assert st == 400, (path, st, doc)
        assert doc["error"]["code"] in ("bad_cursor", "bad_request"), doc
    assert cl.call("GET", "/images?sort=taken_at&cursor=" + q(taken))[0] == 200
