# Public links (issue 19) against the real stack: anonymous access to an image and an album
# (the signed variant and original URLs fetched from S3), expiry, passwords (wrong ones
# refused and rate-limited, tickets that work and expire), allow_download, max_views counted
# atomically, revoke / delete / restore / purge, the caps, tokens absent from the API's log
# and from the database, the link.created event, and bad input on every route.
import concurrent.futures as cf
import json
import os
import subprocess
import time

import pytest
import requests

from conftest import Client, sql, sql_value, start_api, user_id

PREVIEW = "preview"


def anon_get(url, **kw):
    r = requests.get(url, timeout=30, **kw)
    try:
        return r.status_code, r.json(), r
    except ValueError:
        return r.status_code, None, r


def make_link(client, kind, item, body=None, want=201):
    st, doc = client.call("POST", "/%ss/%s/links" % (kind, item), body or {})
    assert st == want, (st, doc)
    return doc


def with_variant(s3, image_hash, data=b"variant bytes", vtype=PREVIEW):
    """A ready variant for the content (the preview by default), its object really in the
    bucket."""
    key = "variants/linktest/%s/%s" % (image_hash, vtype)
    s3.put_object(Bucket=os.environ["S3_BUCKET"], Key=key, Body=data)
    sql("INSERT INTO image_variants (content_hash, variant_type, status, storage_path,"
        " mime_type) VALUES ('%s', '%s', 'ready', '%s', 'image/webp') ON CONFLICT (content_hash,"
        " variant_type) DO UPDATE SET status = 'ready', storage_path = excluded.storage_path,"
        " mime_type = excluded.mime_type" % (image_hash, vtype, key))
    return data


@pytest.fixture(scope="module")
def logged_api(stack):
    p = start_api(PIXPLANE_LINK_TICKET_TTL="2s", PIXPLANE_LINKS_PER_USER=5,
                  PIXPLANE_LINK_UNLOCK_ATTEMPTS=100)
    yield p
    p.stop()


@pytest.fixture
def owner(logged_api):
    uid = user_id("own")
    c = Client(logged_api.url, logged_api.token(uid))
    c.uid = uid
    return c


def upload(client, size=700, name="beach.jpg"):
    data = os.urandom(size)
    _, doc = client.upload(data, name=name)
    return doc["image_id"], doc["sha256"], data


def test_anonymous_image_link(logged_api, owner, s3):
    img, h, data = upload(owner)
    variant = with_variant(s3, h)
    # a location the capture knows: a link never shows it
    sql("INSERT INTO blob_capture (content_hash, gps_lat, gps_lon, gps_alt) VALUES ('%s',"
        " 48.8584, 2.2945, 35) ON CONFLICT (content_hash) DO UPDATE SET gps_lat = 48.8584,"
        " gps_lon = 2.2945, gps_alt = 35" % h)
    link = make_link(owner, "image", img, {"expires_in": 3600})
    assert set(link) >= {"link_id", "url", "expires_at", "allow_download", "has_password"}
    assert link["url"].startswith(logged_api.url + "/s/"), link
    assert link["allow_download"] is True and link["has_password"] is False
    st, doc, r = anon_get(link["url"])  # no Authorization at all
    assert st == 200, (st, doc)
    assert doc["type"] == "image" and doc["link_id"] == link["link_id"]
    item = doc["image"]
    assert item["name"] == "beach.jpg" and item["size"] == len(data)
    assert item["taken_at"].endswith("Z")
    assert "owner_id" not in item
    text = r.text
    assert "gps" not in text and "48.85" not in text and "latitude" not in text
    [v] = item["variants"]
    assert v["variant_type"] == PREVIEW
    got = requests.get(v["url"], timeout=30)
    assert got.status_code == 200 and got.content == variant
    got = requests.get(item["original_url"], timeout=30)
    assert got.status_code == 200 and got.content == data
    assert "attachment" in got.headers.get("Content-Disposition", "")
    # the owner's listing shows it, without the token
    st, lst = owner.call("GET", "/links")
    assert st == 200
    [mine] = [x for x in lst["links"] if x["link_id"] == link["link_id"]]
    assert mine["views"] == 1 and mine["status"] == "active" and mine["image_id"] == img
    token = link["url"].rsplit("/", 1)[1]
    assert token not in json.dumps(lst)
    # the event, in the creating transaction, without the token
    ev = sql_value("SELECT payload::text FROM outbox WHERE msg_key = '%s'"
                   " AND payload->>'type' = 'link.created'" % img)
    ev = json.loads(ev)
    assert ev["version"] == 1
    assert ev["data"] == {"link_id": link["link_id"], "owner_id": owner.uid,
                          "image_id": img, "expires_at": link["expires_at"],
                          "allow_download": True, "has_password": False}
    assert token not in json.dumps(ev)


def test_token_shape(owner):
    img, _, _ = upload(owner)
    toks = {make_link(owner, "image", img)["url"].rsplit("/", 1)[1] for _ in range(3)}
    assert len(toks) == 3
    for t in toks:  # 192 random bits, base64url
        assert len(t) == 32 and all(ch.isalnum() or ch in "-_" for ch in t)


def test_default_and_max_expiry(owner):
    img, _, _ = upload(owner)
    link = make_link(owner, "image", img)
    days = sql_value("SELECT round(extract(epoch FROM expires_at - created_at) / 86400)"
                     " FROM public_links WHERE link_id = '%s'" % link["link_id"])
    assert days == "7"
    st, doc = owner.call("POST", "/images/%s/links" % img, {"expires_in": 90 * 86400 + 1})
    assert st == 400 and doc["error"]["code"] == "bad_request", doc
    for never in (None, 0):
        st, doc = owner.call("POST", "/images/%s/links" % img, {"expires_in": never})
        assert st == 400 and doc["error"]["code"] == "forever_not_allowed", doc


def test_forever_when_allowed(stack):
    api = start_api(PIXPLANE_LINK_ALLOW_FOREVER="true", PIXPLANE_LINK_MAX_TTL="1h")
    try:
        c = Client(api.url, api.token(user_id("fv")))
        img, _, _ = upload(c)
        link = make_link(c, "image", img, {"expires_in": None})
        assert link["expires_at"] is None
        assert anon_get(link["url"])[0] == 200
        link = make_link(c, "image", img)  # the default is the maximum when it is shorter
        secs = sql_value("SELECT round(extract(epoch FROM expires_at - created_at))"
                         " FROM public_links WHERE link_id = '%s'" % link["link_id"])
        assert secs == "3600"
    finally:
        api.stop()


def test_expiry_enforced(owner):
    img, _, _ = upload(owner)
    link = make_link(owner, "image", img, {"expires_in": 60})
    assert anon_get(link["url"])[0] == 200
    sql("UPDATE public_links SET expires_at = now() - interval '1 second'"
        " WHERE link_id = '%s'" % link["link_id"])
    st, doc, _ = anon_get(link["url"])
    assert st == 404 and doc["error"]["code"] == "link_not_found"
    st, lst = owner.call("GET", "/links")
    assert [x["status"] for x in lst["links"] if x["link_id"] == link["link_id"]] == ["expired"]
    # really by the clock too: a 1 s link
    link = make_link(owner, "image", img, {"expires_in": 1})
    deadline = time.monotonic() + 10
    while anon_get(link["url"])[0] == 200 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert anon_get(link["url"])[0] == 404


def test_allow_download_false(owner, s3):
    img, h, _ = upload(owner)
    with_variant(s3, h)
    with_variant(s3, h, vtype="thumbnail_small")  # served by download links only
    st, full = anon_get(make_link(owner, "image", img, {})["url"])[:2]
    assert st == 200 and sorted(v["variant_type"] for v in full["image"]["variants"]) == [
        PREVIEW, "thumbnail_small"] and "original_url" in full["image"]
    link = make_link(owner, "image", img, {"allow_download": False})
    assert link["allow_download"] is False
    st, doc, r = anon_get(link["url"])
    assert st == 200
    assert "original_url" not in doc["image"] and "original" not in r.text
    assert doc["allow_download"] is False
    assert [v["variant_type"] for v in doc["image"]["variants"]] == [PREVIEW]


def test_max_views_atomic(owner):
    img, _, _ = upload(owner)
    link = make_link(owner, "image", img, {"max_views": 3})
    with cf.ThreadPoolExecutor(10) as ex:
        got = list(ex.map(lambda _: anon_get(link["url"])[0], range(10)))
    assert sorted(got) == [200] * 3 + [404] * 7, got
    assert sql_value("SELECT views FROM public_links WHERE link_id = '%s'"
                     % link["link_id"]) == "3"
    st, lst = owner.call("GET", "/links")
    assert [x["status"] for x in lst["links"] if x["link_id"] == link["link_id"]] == ["used_up"]


def test_password_ticket_and_rate_limit(logged_api, owner):
    img, _, _ = upload(owner)
    link = make_link(owner, "image", img, {"password": "s3cret pw"})
    assert link["has_password"] is True
    st, doc, _ = anon_get(link["url"])
    assert st == 401 and doc["error"]["code"] == "password_required"
    unlock = link["url"] + "/unlock"
    r = requests.post(unlock, json={"password": "s3cret pw"}, timeout=30)
    assert r.status_code == 200, r.text
    t = r.json()
    assert set(t) >= {"ticket", "expires_at"}
    st, doc, _ = anon_get(link["url"], headers={"X-Link-Ticket": t["ticket"]})
    assert st == 200 and doc["image"]["image_id"] == img
    assert anon_get(link["url"], params={"ticket": t["ticket"]})[0] == 200
    # a ticket of another link opens nothing here
    other = make_link(owner, "image", img, {"password": "other"})
    r2 = requests.post(other["url"] + "/unlock", json={"password": "other"}, timeout=30)
    assert r2.status_code == 200
    assert anon_get(link["url"], headers={"X-Link-Ticket": r2.json()["ticket"]})[0] == 401
    # the ticket expires (PIXPLANE_LINK_TICKET_TTL=2s)
    deadline = time.monotonic() + 10
    while anon_get(link["url"], headers={"X-Link-Ticket": t["ticket"]})[0] == 200:
        assert time.monotonic() < deadline, "the ticket did not expire"
        time.sleep(0.3)
    st, doc, _ = anon_get(link["url"], headers={"X-Link-Ticket": t["ticket"]})
    assert st == 401 and doc["error"]["code"] == "password_required"


def test_wrong_password_rate_limited(stack):
    # three attempts per link and per address, one back an hour: the fourth is refused
    api = start_api(PIXPLANE_LINK_UNLOCK_ATTEMPTS=3, PIXPLANE_LINK_UNLOCK_REFILL="1h")
    try:
        c = Client(api.url, api.token(user_id("rl")))
        img, _, _ = upload(c)
        link = make_link(c, "image", img, {"password": "right"})
        unlock = link["url"] + "/unlock"
        for _ in range(3):
            r = requests.post(unlock, json={"password": "wrong"}, timeout=30)
            assert r.status_code == 403 and r.json()["error"]["code"] == "wrong_password"
        r = requests.post(unlock, json={"password": "right"}, timeout=30)
        assert r.status_code == 429 and r.json()["error"]["code"] == "too_many_attempts"
        assert int(r.headers["Retry-After"]) > 60
        # the limit holds for this address on any link, and the link is still locked
        other = make_link(c, "image", img, {"password": "x"})
        r = requests.post(other["url"] + "/unlock", json={"password": "x"}, timeout=30)
        assert r.status_code == 429
        assert anon_get(link["url"])[0] == 401
    finally:
        api.stop()


def test_revoke(owner):
    img, _, _ = upload(owner)
    link = make_link(owner, "image", img)
    assert anon_get(link["url"])[0] == 200
    st, _ = owner.call("DELETE", "/links/%s" % link["link_id"])
    assert st == 204
    st, doc, _ = anon_get(link["url"])
    assert st == 404 and doc["error"]["code"] == "link_not_found"
    assert owner.call("DELETE", "/links/%s" % link["link_id"])[0] == 404
    assert sql_value("SELECT count(*) FROM public_links WHERE link_id = '%s'"
                     % link["link_id"]) == "0"


def test_album_link_shows_only_the_owners_images(logged_api, owner):
    """A contributor's images in the owner's album are theirs to share, not the owner's: the
    owner's link lists (and counts) only the owner's own."""
    contrib_id = user_id("contrib")
    contrib = Client(logged_api.url, logged_api.token(contrib_id))
    mine = [upload(owner, name="o%d.jpg" % i)[0] for i in range(3)]
    st, a = owner.call("POST", "/albums", {"name": "Together"})
    aid = a["album_id"]
    assert owner.call("POST", "/albums/%s/members" % aid,
                      {"user": contrib_id, "role": "contributor"})[0] == 200
    theirs = upload(contrib, name="c.jpg")[0]
    assert contrib.call("POST", "/albums/%s/items" % aid, {"image_ids": [theirs]})[0] == 200
    assert owner.call("POST", "/albums/%s/items" % aid, {"image_ids": mine})[0] == 200
    link = make_link(owner, "album", aid)
    seen, cursor = [], None
    for _ in range(5):
        st, doc, _ = anon_get(link["url"], params={"limit": 2, **({"cursor": cursor}
                                                                   if cursor else {})})
        assert st == 200, doc
        assert doc["album"]["item_count"] == 3
        seen += [x["image_id"] for x in doc["items"]]
        cursor = doc["next_cursor"]
        if not cursor:
            break
    assert sorted(seen) == sorted(mine) and theirs not in seen


def test_delete_restore_purge(logged_api, owner):
    img, _, _ = upload(owner)
    link = make_link(owner, "image", img)
    assert anon_get(link["url"])[0] == 200
    assert owner.call("DELETE", "/images/%s" % img)[0] == 200
    assert anon_get(link["url"])[0] == 404
    st, lst = owner.call("GET", "/links")
    assert [x["status"] for x in lst["links"] if x["link_id"] == link["link_id"]] == [
        "unavailable"]
    assert owner.call("POST", "/images/%s/restore" % img)[0] == 200
    assert anon_get(link["url"])[0] == 200
    assert owner.call("DELETE", "/images/%s" % img)[0] == 200
    admin = Client(logged_api.url, logged_api.token(user_id("adm"), admin=True))
    st, doc = admin.call("POST", "/internal/images/%s/cleanup" % img)
    assert st == 200, doc
    assert sql_value("SELECT count(*) FROM public_links WHERE link_id = '%s'"
                     % link["link_id"]) == "0"
    assert anon_get(link["url"])[0] == 404


def test_expired_link_not_revived_by_restore(owner):
    img, _, _ = upload(owner)
    link = make_link(owner, "image", img)
    assert owner.call("DELETE", "/images/%s" % img)[0] == 200
    sql("UPDATE public_links SET expires_at = now() - interval '1 second'"
        " WHERE link_id = '%s'" % link["link_id"])
    assert owner.call("POST", "/images/%s/restore" % img)[0] == 200
    assert anon_get(link["url"])[0] == 404


def test_album_link(logged_api, owner, s3):
    imgs = [upload(owner, name="a%d.jpg" % i) for i in range(3)]
    with_variant(s3, imgs[0][1])
    st, a = owner.call("POST", "/albums", {"name": "Summer"})
    assert st == 201
    aid = a["album_id"]
    assert owner.call("POST", "/albums/%s/items" % aid,
                      {"image_ids": [i[0] for i in imgs]})[0] == 200
    link = make_link(owner, "album", aid, {"allow_download": False})
    assert link["type"] == "album" and link["album_id"] == aid
    seen, cursor, pages = [], None, 0
    while True:
        params = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        st, doc, _ = anon_get(link["url"], params=params)
        assert st == 200, doc
        assert doc["album"]["name"] == "Summer" and doc["album"]["item_count"] == 3
        assert all("original_url" not in x for x in doc["items"])
        seen += [x["image_id"] for x in doc["items"]]
        cursor, pages = doc["next_cursor"], pages + 1
        if not cursor:
            break
        assert pages < 5
    assert sorted(seen) == sorted(i[0] for i in imgs) and pages == 2
    # a deleted item leaves the album's page; the album's deletion ends the link
    assert owner.call("DELETE", "/images/%s" % imgs[1][0])[0] == 200
    st, doc, _ = anon_get(link["url"])
    assert doc["album"]["item_count"] == 2 and imgs[1][0] not in [x["image_id"]
                                                                  for x in doc["items"]]
    st, doc, _ = anon_get(link["url"], params={"cursor": "bm90IGEgY3Vyc29y"})
    assert st == 400 and doc["error"]["code"] == "bad_cursor"
    assert owner.call("DELETE", "/albums/%s" % aid)[0] == 200
    assert anon_get(link["url"])[0] == 404
    assert sql_value("SELECT count(*) FROM public_links WHERE link_id = '%s'"
                     % link["link_id"]) == "0"


def test_links_cap_and_listing(logged_api):
    c = Client(logged_api.url, logged_api.token(user_id("cap")))
    img, _, _ = upload(c)
    ids = [make_link(c, "image", img)["link_id"] for _ in range(5)]  # PIXPLANE_LINKS_PER_USER
    st, doc = c.call("POST", "/images/%s/links" % img, {})
    assert st == 409 and doc["error"]["code"] == "link_limit_reached"
    got, cursor = [], ""
    for _ in range(5):
        st, doc = c.call("GET", "/links?limit=2" + ("&cursor=" + cursor if cursor else ""))
        assert st == 200
        got += [x["link_id"] for x in doc["links"]]
        assert all("url" not in x and "token" not in x for x in doc["links"])
        cursor = doc["next_cursor"]
        if not cursor:
            break
    assert sorted(got) == sorted(ids)
    assert c.call("DELETE", "/links/%s" % ids[0])[0] == 204
    assert c.call("POST", "/images/%s/links" % img, {})[0] == 201


def test_others_ids(logged_api, owner):
    img, _, _ = upload(owner)
    other = Client(logged_api.url, logged_api.token(user_id("oth")))
    friend_id = user_id("fr")
    friend = Client(logged_api.url, logged_api.token(friend_id))
    st, doc = other.call("POST", "/images/%s/links" % img, {})
    assert st == 404 and doc["error"]["code"] == "not_found"
    assert owner.call("POST", "/images/%s/shares" % img, {"user_id": friend_id})[0] == 200
    st, doc = friend.call("POST", "/images/%s/links" % img, {})
    assert st == 403 and doc["error"]["code"] == "forbidden"
    st, a = owner.call("POST", "/albums", {"name": "x"})
    assert owner.call("POST", "/albums/%s/members" % a["album_id"],
                      {"user": friend_id, "role": "viewer"})[0] == 200
    assert friend.call("POST", "/albums/%s/links" % a["album_id"], {})[0] == 403
    assert other.call("POST", "/albums/%s/links" % a["album_id"], {})[0] == 404
    link = make_link(owner, "image", img)
    assert other.call("DELETE", "/links/%s" % link["link_id"])[0] == 404
    st, lst = other.call("GET", "/links")
    assert st == 200 and lst["links"] == []
    assert anon_get(link["url"])[0] == 200  # still there
    assert owner.call("DELETE", "/images/%s" % img)[0] == 200
    st, doc = owner.call("POST", "/images/%s/links" % img, {})
    assert st == 409 and doc["error"]["code"] == "image_not_active"


BAD_CREATE = [
    ({"expires_in": "soon"}, "bad_request"),
    ({"expires_in": -5}, "bad_request"),
    ({"expires_in": 1.5}, "bad_request"),
    ({"password": ""}, "bad_request"),
    ({"password": "x" * 1025}, "bad_request"),
    ({"password": 1234}, "bad_request"),
    ({"allow_download": "yes"}, "bad_request"),
    ({"max_views": 0}, "bad_request"),
    ({"max_views": "3"}, "bad_request"),
    ({"max_views": 10 ** 12}, "bad_request"),
]


def test_bad_input(logged_api, owner):
    img, _, _ = upload(owner)
    for body, code in BAD_CREATE:
        st, doc = owner.call("POST", "/images/%s/links" % img, body)
        assert st == 400 and doc["error"]["code"] == code, (body, st, doc)
    for raw in (b"{", b"[]", b"\"x\"", b"not json"):
        st, doc = owner.call("POST", "/images/%s/links" % img, raw=raw,
                             headers={"Content-Type": "application/json"})
        assert st == 400 and doc["error"]["code"] == "bad_request", (raw, doc)
    assert owner.call("POST", "/images/not-a-uuid/links", {})[0] == 404
    assert owner.call("POST", "/albums/not-a-uuid/links", {})[0] == 404
    assert owner.call("DELETE", "/links/not-a-uuid")[0] == 404
    assert owner.call("GET", "/links?limit=0")[0] == 400
    assert owner.call("GET", "/links?cursor=%%%")[0] == 400
    anon = Client(logged_api.url, "")
    assert anon.call("GET", "/links")[0] == 401
    assert anon.call("POST", "/images/%s/links" % img, {})[0] == 401
    link = make_link(owner, "image", img, {"password": "pw"})
    unlock = link["url"] + "/unlock"
    for raw in (b"{", b"[]", b"{\"password\": 5}", b"{}", b"{\"password\": \"\"}",
                json.dumps({"password": "x" * 1025}).encode()):
        r = requests.post(unlock, data=raw, timeout=30,
                          headers={"Content-Type": "application/json"})
        assert r.status_code == 400 and r.json()["error"]["code"] == "bad_request", raw
    base = logged_api.url + "/s/"
    for tok in ("x", "A" * 32, "A" * 31 + "!", "A" * 33):
        st, doc, _ = anon_get(base + tok)
        assert st == 404 and doc["error"]["code"] == "link_not_found", tok
        r = requests.post(base + tok + "/unlock", json={"password": "pw"}, timeout=30)
        assert r.status_code == 404 and r.json()["error"]["code"] == "link_not_found"
    assert anon_get(base + "A" * 5000)[0] in (404, 414, 431)  # past the router's limit
    free = make_link(owner, "image", img)
    r = requests.post(free["url"] + "/unlock", json={"password": "pw"}, timeout=30)
    assert r.status_code == 409 and r.json()["error"]["code"] == "no_password"


def test_tokens_absent_from_log_and_database(logged_api, owner, stack):
    img, _, _ = upload(owner)
    links = [make_link(owner, "image", img, {"password": "pw"}), make_link(owner, "image", img)]
    tokens = [x["url"].rsplit("/", 1)[1] for x in links]
    for x in links:
        anon_get(x["url"])
        anon_get(x["url"] + "/extra")  # unmatched paths too
        requests.post(x["url"] + "/unlock", json={"password": "nope"}, timeout=30)
    time.sleep(0.3)  # the access log line is written as the answer goes
    with open(logged_api.log_path, "rb") as f:
        log = f.read().decode("utf-8", "replace")
    assert "/s/{token}" in log  # the requests were logged, by their route
    for t in tokens:
        assert t not in log
    dump = subprocess.run(["pg_dump", "--data-only", os.environ["DATABASE_URL"]],
                          capture_output=True, text=True, timeout=120)
    assert dump.returncode == 0, dump.stderr[-2000:]
    assert links[0]["link_id"] in dump.stdout  # the rows are in the dump
    for t in tokens:
        assert t not in dump.stdout
    assert sql_value("SELECT password_hash FROM public_links WHERE link_id = '%s'"
                     % links[0]["link_id"]).startswith("scrypt$15$8$1$")


def test_anonymous_reads_rate_limited_per_address(stack):
    api = start_api(PIXPLANE_RATE_LIMIT=1, PIXPLANE_RATE_BURST=3)
    try:
        got = [anon_get(api.url + "/s/" + "A" * 32)[0] for _ in range(5)]
        assert got[:3] == [404] * 3 and 429 in got[3:], got
        r = requests.get(api.url + "/s/" + "A" * 32, timeout=30)
        assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1
        assert r.json()["error"]["code"] == "rate_limited"
    finally:
        api.stop()
