# Capture metadata through the API (issue 18): file_modified_at from the client, the
# timeline key images.taken_at (content's capture time, else the file's, else the upload's),
# the capture object of /images/{id}/metadata and of sync items, and who sees the location.
# The capture rows are written here as the worker writes them (test_capture.py runs the
# worker on real files); the API is the real process on the stack's database.
import os
import uuid

import pytest

from conftest import Client, sql, user_id

GPS = (48.858222, 2.2945, 35.5)


def upload(cl, data, name="p.jpg", modified=None, batch=False):
    body = {"file_name": name, "file_size": len(data), "mime_type": "image/jpeg"}
    if modified is not None:
        body["file_modified_at"] = modified
    if batch:
        st, doc = cl.call("POST", "/uploads/batch", {"items": [body]})
        assert st == 200, (st, doc)
        assert doc["items"][0]["status_code"] == 201, doc
        sess = doc["items"][0]["session"]
    else:
        st, sess = cl.call("POST", "/uploads", body)
        assert st == 201, (st, sess)
    cl.put_chunks(sess, data, list(range(sess["chunk_count"])))
    st, doc = cl.complete_settled(sess["upload_session_id"])
    assert st == 200, (st, doc)
    return doc["image_id"]


def put_capture(image_id, taken="2019-05-01 10:00:00+00", local="2019-05-01T12:00:00",
                offset="+02:00", gps=GPS):
    """A capture row for the image's content, and the timeline key, as the worker writes."""
    lat, lon, alt = gps if gps else ("NULL", "NULL", "NULL")
    h = sql("SELECT content_hash FROM images WHERE image_id = '%s'" % image_id)[0][0]
    sql("INSERT INTO blob_capture (content_hash, taken_local, taken_offset, taken_at, width,"
        " height, orientation, format, make, model, gps_lat, gps_lon, gps_alt) VALUES"
        " ('%s', '%s', '%s', '%s', 30, 40, 6, 'jpeg', 'Canon', 'EOS R5', %s, %s, %s)"
        " ON CONFLICT (content_hash) DO UPDATE SET taken_local = excluded.taken_local,"
        " taken_offset = excluded.taken_offset, taken_at = excluded.taken_at,"
        " width = excluded.width, height = excluded.height, orientation = excluded.orientation,"
        " format = excluded.format, make = excluded.make, model = excluded.model,"
        " gps_lat = excluded.gps_lat, gps_lon = excluded.gps_lon, gps_alt = excluded.gps_alt,"
        " errors = '{}'"  # the stack's worker may have found the random bytes unreadable
        % (h, local, offset, taken, lat, lon, alt))
    sql("UPDATE images SET taken_at = coalesce((SELECT taken_at FROM blob_capture"
        " WHERE content_hash = '%s'), file_modified_at, created_at) WHERE content_hash = '%s'"
        % (h, h))
    return h


def metadata(cl, image_id):
    st, doc = cl.call("GET", "/images/%s/metadata" % image_id)
    assert st == 200, (st, doc)
    return doc


def sync_all(cl, cursor="0"):
    """Every page from cursor; returns (image entries by id, last cursor)."""
    seen = {}
    for _ in range(100):
        st, doc = cl.call("GET", "/sync?since=%s" % cursor)
        assert st == 200, (st, doc)
        for k in ("added", "updated"):
            for e in doc[k]:
                seen[e["image_id"]] = e
        cursor = doc["cursor"]
        if not doc["has_more"]:
            return seen, cursor
    raise AssertionError("sync did not end")


@pytest.fixture
def pair(api):
    a, b = user_id("cap-own"), user_id("cap-rcp")
    return a, b, Client(api.url, api.token(a)), Client(api.url, api.token(b))


def test_file_modified_at_is_the_fallback(client):
    img = upload(client, os.urandom(3000), modified="2020-02-03T04:05:06.789+01:00")
    m = metadata(client, img)
    assert m["taken_at"] == "2020-02-03T03:05:06.789Z"
    cap = m["capture"]
    assert cap["time_source"] == "file_modified"
    assert cap["file_modified_at"] == "2020-02-03T03:05:06.789Z"
    assert cap["status"] in ("pending", "done") and cap["gps"] is None  # random bytes
    img2 = upload(client, os.urandom(3000), modified="2001-01-01T00:00:00Z", batch=True)
    assert metadata(client, img2)["capture"]["time_source"] == "file_modified"
    img3 = upload(client, os.urandom(3000))
    m3 = metadata(client, img3)
    assert m3["capture"]["time_source"] == "upload"
    assert m3["taken_at"][:19] == m3["created_at"][:19]


@pytest.mark.parametrize("bad", ["yesterday", "2020-02-03", "2020-02-03T04:05:06", 12345,
                                 "2020-13-03T04:05:06Z"])
def test_bad_file_modified_at_is_refused(client, bad):
    body = {"file_name": "p.jpg", "file_size": 10, "mime_type": "image/jpeg",
            "file_modified_at": bad}
    st, doc = client.call("POST", "/uploads", body)
    assert st == 400 and doc["error"]["code"] == "bad_request", (st, doc)
    st, doc = client.call("POST", "/uploads/batch", {"items": [body]})
    assert st == 200 and doc["items"][0]["status_code"] == 400, (st, doc)


def test_capture_time_wins_and_dedup_inherits_it(api, pair):
    a, b, ca, cb = pair
    data = os.urandom(5000)
    img = upload(ca, data, modified="2024-01-01T00:00:00Z")
    put_capture(img)
    m = metadata(ca, img)
    assert m["taken_at"] == "2019-05-01T10:00:00.000Z"
    cap = m["capture"]
    assert cap["status"] == "done" and cap["time_source"] == "exif"
    assert cap["taken_at_local"] == "2019-05-01T12:00:00" and cap["offset"] == "+02:00"
    assert cap["time_zone_known"] is True
    assert (cap["width"], cap["height"], cap["orientation"]) == (30, 40, 6)
    assert (cap["make"], cap["model"]) == ("Canon", "EOS R5")
    # the same content uploaded again (another user): its image has the capture time at once
    img2 = upload(cb, data, modified="2024-06-06T00:00:00Z")
    m2 = metadata(cb, img2)
    assert m2["taken_at"] == "2019-05-01T10:00:00.000Z"
    assert m2["capture"]["time_source"] == "exif"
    assert m2["capture"]["gps"] == {"latitude": GPS[0], "longitude": GPS[1], "altitude": GPS[2]}


def test_gps_is_the_owners_until_a_share_allows_it(api, pair):
    a, b, ca, cb = pair
    img = upload(ca, os.urandom(4000))
    put_capture(img)
    assert metadata(ca, img)["capture"]["gps"]["latitude"] == GPS[0]
    st, doc = ca.call("POST", "/images/%s/shares" % img, {"user_id": b})
    assert st == 200, (st, doc)
    m = metadata(cb, img)
    assert m["capture"]["gps"] is None
    assert m["capture"]["make"] == "Canon" and m["capture"]["time_source"] == "exif"
    seen, cur = sync_all(cb)
    assert seen[img]["capture"]["gps"] is None and seen[img]["capture"]["model"] == "EOS R5"
    own, _ = sync_all(ca)
    assert own[img]["capture"]["gps"]["longitude"] == GPS[1]
    # the owner allows it on this share: the recipient's device hears of it
    st, doc = ca.call("POST", "/images/%s/shares" % img, {"user_id": b, "show_location": True})
    assert st == 200, (st, doc)
    assert metadata(cb, img)["capture"]["gps"]["altitude"] == GPS[2]
    seen, cur = sync_all(cb, cur)
    assert seen[img]["capture"]["gps"]["latitude"] == GPS[0]
    # re-sharing without the field keeps it; false hides it again
    assert ca.call("POST", "/images/%s/shares" % img, {"user_id": b})[0] == 200
    assert metadata(cb, img)["capture"]["gps"] is not None
    assert ca.call("POST", "/images/%s/shares" % img,
                   {"user_id": b, "show_location": False})[0] == 200
    assert metadata(cb, img)["capture"]["gps"] is None
    st, doc = ca.call("POST", "/images/%s/shares" % img, {"user_id": b, "show_location": "yes"})
    assert st == 400, (st, doc)
    # a public image: anyone reads it, nobody but the owner sees where
    assert ca.call("PATCH", "/images/%s" % img, {"visibility": "public"})[0] == 200
    other = Client(api.url, api.token(user_id("cap-oth")))
    mo = metadata(other, img)
    assert mo["capture"]["gps"] is None and mo["capture"]["model"] == "EOS R5"


def test_timeline_sort_and_window(client):
    times = ["2010-01-01T00:00:00Z", "2012-01-01T00:00:00Z", "2011-01-01T00:00:00Z"]
    ids = [upload(client, os.urandom(1000), modified=t) for t in times]

    def page(q):
        st, doc = client.call("GET", "/images?" + q)
        assert st == 200, (st, doc)
        return [i["image_id"] for i in doc["images"] if i["image_id"] in ids], doc

    got, _ = page("sort=taken_at&limit=200")
    assert got == [ids[1], ids[2], ids[0]]
    got, _ = page("sort=taken_at&order=asc&limit=200")
    assert got == [ids[0], ids[2], ids[1]]
    got, _ = page("sort=taken_at&taken_after=2010-06-01T00:00:00Z"
                  "&taken_before=2012-01-01T00:00:00Z")
    assert got == [ids[2]]
    _, doc = page("sort=taken_at&order=asc&limit=1")
    cur = doc["next_cursor"]
    assert client.call("GET", "/images?sort=taken_at&order=asc&cursor=" + cur)[0] == 200
    for q in ("sort=taken_at&cursor=" + cur, "cursor=" + cur, "sort=taken", "order=asc",
              "sort=taken_at&order=up", "sort=taken_at&taken_after=2010",
              "taken_after=2010-01-01T00:00:00Z"):
        st, doc = client.call("GET", "/images?" + q)
        assert st == 400, (q, st, doc)
