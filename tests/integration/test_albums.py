# Albums and shared albums (issue 18) against the real stack: the authorization matrix of
# every album route and of images reached through albums, contributors and viewers, access
# that ends at once, delete / restore / purge of an image in an album, location privacy,
# every member's device converging through /sync and pushed on the stream, and the caps.
import json
import os
import time

import pytest

from conftest import Client, sql, sql_value, start_api, user_id

THUMB = "thumbnail_small"


class People:
    """An owner, a viewer, a contributor, another user, an admin and no token at all, each
    with one image of their own (but anonymous)."""

    def __init__(self, api):
        self.ids = {r: user_id(r[:3]) for r in ("owner", "viewer", "contributor", "other",
                                                "admin")}
        self.c = {r: Client(api.url, api.token(u, admin=(r == "admin")))
                  for r, u in self.ids.items()}
        self.c["anon"] = Client(api.url, "")
        self.img = {}
        for r in ("owner", "viewer", "contributor", "other", "admin"):
            _, doc = self.c[r].upload(os.urandom(300 + len(r)), name="%s.jpg" % r)
            self.img[r] = doc["image_id"]

    def album(self, name="trip", sort=None):
        """A fresh album of the owner holding the owner's and the contributor's images,
        with the viewer and the contributor as members."""
        o = self.c["owner"]
        body = {"name": name}
        if sort:
            body["sort"] = sort
        st, a = o.call("POST", "/albums", body)
        assert st == 201, (st, a)
        aid = a["album_id"]
        assert o.call("POST", "/albums/%s/items" % aid,
                      {"image_ids": [self.img["owner"]]})[0] == 200
        for r, role in (("viewer", "viewer"), ("contributor", "contributor")):
            st, m = o.call("POST", "/albums/%s/members" % aid,
                           {"user": self.ids[r], "role": role})
            assert st == 200 and m == {"album_id": aid, "user_id": self.ids[r], "role": role}
        st, doc = self.c["contributor"].call("POST", "/albums/%s/items" % aid,
                                             {"image_ids": [self.img["contributor"]]})
        assert st == 200 and doc == {"album_id": aid, "added": 1}, doc
        return aid


@pytest.fixture
def fresh(api):
    """New people for a test whose albums must be the only ones they share."""
    return People(api)


@pytest.fixture(scope="module")
def people(api):
    p = People(api)
    # a ready variant for the owner's content, so variant reads answer 200 (a signed URL)
    sql("INSERT INTO image_variants (content_hash, variant_type, status, storage_path,"
        " mime_type) SELECT content_hash, '%s', 'ready', 'variants/x/' || content_hash,"
        " 'image/webp' FROM images WHERE image_id = '%s' ON CONFLICT (content_hash,"
        " variant_type) DO UPDATE SET status = 'ready', storage_path = excluded.storage_path,"
        " mime_type = excluded.mime_type" % (THUMB, p.img["owner"]))
    return p


ROLES = ("owner", "viewer", "contributor", "other", "anon", "admin")

# route -> expected status for owner, viewer, contributor, other user, anonymous, admin.
# Admin tokens have nothing special on user routes: an admin is a user who is no member.
MATRIX = {
    "GET /albums/{a}": (200, 200, 200, 404, 401, 404),
    "PATCH /albums/{a}": (200, 403, 403, 404, 401, 404),
    "DELETE /albums/{a}": (200, 403, 403, 404, 401, 404),
    "POST /albums/{a}/items (own image)": (200, 403, 200, 404, 401, 404),
    "DELETE /albums/{a}/items (owner's item)": (200, 403, 403, 404, 401, 404),
    "POST /albums/{a}/members": (200, 403, 403, 404, 401, 404),
    "DELETE /albums/{a}/members/{viewer}": (200, 200, 403, 404, 401, 404),
    "GET /images/{i}": (200, 200, 200, 404, 401, 404),
    "GET /images/{i}/metadata": (200, 200, 200, 404, 401, 404),
    "GET /images/{i}/variants/" + THUMB: (200, 200, 200, 404, 401, 404),
    "PATCH /images/{i}": (200, 403, 403, 404, 401, 404),
    "POST /images/{i}/shares": (200, 403, 403, 404, 401, 404),
    "DELETE /images/{i}": (200, 403, 403, 404, 401, 404),
}


def request_for(people, route, role, aid):
    """The (method, path, body) a cell of the matrix sends."""
    own = people.img.get(role, people.img["owner"])
    i = people.img["owner"]
    method, path = route.split(" ")[:2]
    path = path.replace("{a}", aid).replace("{i}", i).replace("{viewer}", people.ids["viewer"])
    body = {
        "PATCH /albums/{a}": {"name": "renamed"},
        "POST /albums/{a}/items (own image)": {"image_ids": [own]},
        "DELETE /albums/{a}/items (owner's item)": {"image_ids": [i]},
        "POST /albums/{a}/members": {"user": user_id("new"), "role": "viewer"},
        "PATCH /images/{i}": {"name": "x.jpg"},
        "POST /images/{i}/shares": {"user_id": user_id("sh")},
    }.get(route)
    return method, path, body


@pytest.mark.parametrize("route", sorted(MATRIX))
def test_authorization_matrix(people, route):
    got = {}
    for role, want in zip(ROLES, MATRIX[route]):
        aid = people.album()  # each cell on a fresh album: a change cannot leak into the next
        if route.startswith("POST /albums/{a}/items"):
            people.c["owner"].call("DELETE", "/albums/%s/items" % aid,
                                   {"image_ids": [people.img["owner"]]})
        method, path, body = request_for(people, route, role, aid)
        st, doc = people.c[role].call(method, path, body)
        got[role] = st
        if st >= 400:
            assert set(doc["error"]) >= {"code", "message"}, doc
        if route.endswith("/images/{i}") and method == "DELETE" and st == 200:
            assert people.c["owner"].call("POST", "/images/%s/restore" % people.img["owner"])[0] \
                == 200
        if route == "PATCH /images/{i}" and st == 200:
            people.c["owner"].call("PATCH", path, {"name": "owner.jpg"})
    assert got == dict(zip(ROLES, MATRIX[route])), route


def test_list_albums_shows_only_ones_own_and_memberships(people):
    aid = people.album("listed")
    for role in ROLES:
        st, doc = people.c[role].call("GET", "/albums?limit=200")
        if role == "anon":
            assert st == 401
            continue
        assert st == 200
        seen = {a["album_id"]: a for a in doc["albums"]}
        if role in ("owner", "viewer", "contributor"):
            assert seen[aid]["role"] == role and seen[aid]["item_count"] == 2
            assert seen[aid]["owner_id"] == people.ids["owner"]
        else:
            assert aid not in seen


def test_contributor_adds_viewer_cannot(fresh):
    people = fresh
    o, v, c = people.c["owner"], people.c["viewer"], people.c["contributor"]
    aid = people.album("contrib")
    _, mine = c.upload(os.urandom(333), name="c2.jpg")
    c2 = mine["image_id"]
    # a viewer cannot add, not even their own image
    st, doc = v.call("POST", "/albums/%s/items" % aid, {"image_ids": [people.img["viewer"]]})
    assert st == 403 and doc["error"]["code"] == "forbidden"
    # someone else's image (with one of their own): 400 naming it, nothing added
    st, doc = c.call("POST", "/albums/%s/items" % aid,
                     {"image_ids": [c2, people.img["other"]]})
    assert st == 400 and doc["error"]["image_ids"] == [people.img["other"]], doc
    assert items(o, aid) == {people.img["owner"], people.img["contributor"]}
    st, doc = c.call("POST", "/albums/%s/items" % aid, {"image_ids": [c2, c2]})
    assert st == 200 and doc["added"] == 1
    st, doc = c.call("POST", "/albums/%s/items" % aid, {"image_ids": [c2]})
    assert st == 200 and doc["added"] == 0  # already there
    # a contributor removes what they added, not the owner's items
    st, doc = c.call("DELETE", "/albums/%s/items" % aid, {"image_ids": [people.img["owner"]]})
    assert st == 403
    st, doc = c.call("DELETE", "/albums/%s/items" % aid, {"image_ids": [c2]})
    assert st == 200 and doc == {"album_id": aid, "removed": 1}
    # the owner removes anything
    st, doc = o.call("DELETE", "/albums/%s/items" % aid,
                     {"image_ids": [people.img["contributor"]]})
    assert st == 200 and doc["removed"] == 1
    assert items(o, aid) == {people.img["owner"]}
    # bad bodies
    for body in ({}, {"image_ids": []}, {"image_ids": ["nope"]}, {"image_ids": "x"}):
        assert o.call("POST", "/albums/%s/items" % aid, body)[0] == 400, body
    st, doc = o.call("POST", "/albums/%s/items" % aid,
                     {"image_ids": [people.img["owner"]] * 501})
    assert st == 413


def items(client, aid, sort=None):
    out = []
    cursor = None
    for _ in range(100):
        q = "/albums/%s?limit=2" % aid + ("&sort=" + sort if sort else "")
        st, doc = client.call("GET", q + ("&cursor=" + cursor if cursor else ""))
        assert st == 200, (st, doc)
        out += [x["image_id"] for x in doc["items"]]
        cursor = doc["next_cursor"]
        if not cursor:
            break
    assert len(out) == len(set(out))
    return out if sort else set(out)


def test_leaving_or_removal_ends_access_at_once(fresh):
    people = fresh
    o, v, c = people.c["owner"], people.c["viewer"], people.c["contributor"]
    aid = people.album("leave")
    contrib_img = people.img["contributor"]
    for _ in range(2):  # the second read may come from the worker's image cache
        assert v.call("GET", "/images/%s" % contrib_img)[0] == 200
    # the owner removes the contributor's item: the viewer's very next read is 404
    assert o.call("DELETE", "/albums/%s/items" % aid, {"image_ids": [contrib_img]})[0] == 200
    assert v.call("GET", "/images/%s" % contrib_img)[0] == 404
    for _ in range(2):
        assert v.call("GET", "/images/%s/metadata" % people.img["owner"])[0] == 200
    # leaving ends access at once
    st, doc = v.call("DELETE", "/albums/%s/members/%s" % (aid, people.ids["viewer"]))
    assert st == 200, doc
    assert v.call("GET", "/images/%s/metadata" % people.img["owner"])[0] == 404
    assert v.call("GET", "/images/%s" % people.img["owner"])[0] == 404
    assert v.call("GET", "/albums/%s" % aid)[0] == 404
    st, doc = v.call("DELETE", "/albums/%s/members/%s" % (aid, people.ids["viewer"]))
    assert st == 404
    # being removed by the owner too
    for _ in range(2):
        assert c.call("GET", "/images/%s" % people.img["owner"])[0] == 200
    st, doc = o.call("DELETE", "/albums/%s/members/%s" % (aid, people.ids["contributor"]))
    assert st == 200
    assert c.call("GET", "/images/%s" % people.img["owner"])[0] == 404
    assert c.call("POST", "/albums/%s/items" % aid, {"image_ids": [contrib_img]})[0] == 404
    # re-posting a member changes the role; a viewer added back reads again
    for role in ("contributor", "viewer"):
        st, m = o.call("POST", "/albums/%s/members" % aid,
                       {"user_id": people.ids["viewer"], "role": role})
        assert st == 200 and m["role"] == role
    assert v.call("GET", "/images/%s" % people.img["owner"])[0] == 200
    # bad member bodies
    for body in ({}, {"user": "a b", "role": "viewer"}, {"user": "x", "role": "owner"},
                 {"user": people.ids["owner"], "role": "viewer"}):
        assert o.call("POST", "/albums/%s/members" % aid, body)[0] == 400, body
    # deleting the album ends every member's access; the images stay
    assert o.call("DELETE", "/albums/%s" % aid)[0] == 200
    assert v.call("GET", "/images/%s" % people.img["owner"])[0] == 404
    assert o.call("GET", "/images/%s" % people.img["owner"])[0] == 200
    assert o.call("GET", "/albums/%s" % aid)[0] == 404


def test_patch_order_cover_and_sort(fresh):
    people = fresh
    o = people.c["owner"]
    aid = people.album("order", sort="position")
    extra = [o.upload(os.urandom(400 + k), name="o%d.jpg" % k)[1]["image_id"] for k in range(3)]
    assert o.call("POST", "/albums/%s/items" % aid, {"image_ids": extra})[0] == 200
    first = [people.img["owner"], people.img["contributor"]] + extra
    assert items(o, aid, "position") == first
    st, a = o.call("PATCH", "/albums/%s" % aid, {"order": [extra[2], extra[0]],
                                                   "cover_image_id": extra[1],
                                                   "name": "ordered"})
    assert st == 200 and a["cover_image_id"] == extra[1] and a["name"] == "ordered", a
    assert items(o, aid, "position") == [extra[2], extra[0], people.img["owner"],
                                         people.img["contributor"], extra[1]]
    st, doc = o.call("GET", "/albums/%s" % aid)
    assert [x["image_id"] for x in doc["items"]][:2] == [extra[2], extra[0]]
    assert all(x["added_by"] for x in doc["items"])
    # taken_at order: newest capture first, each once
    by_time = items(o, aid, "taken_at")
    assert sorted(by_time) == sorted(first)
    for body in ({"order": [people.img["other"]]}, {"cover_image_id": people.img["other"]},
                 {"order": [extra[0], extra[0]]}, {"sort": "name"}, {},
                 {"show_location": "yes"}, {"name": ""}):
        assert o.call("PATCH", "/albums/%s" % aid, body)[0] == 400, body
    st, a = o.call("PATCH", "/albums/%s" % aid, {"cover_image_id": None, "sort": "taken_at"})
    assert st == 200 and a["cover_image_id"] is None and a["sort"] == "taken_at"
    assert o.call("GET", "/albums/%s?sort=name" % aid)[0] == 400
    assert o.call("GET", "/albums/%s?cursor=zzz" % aid)[0] == 400


def test_delete_restore_and_purge_of_an_image_in_an_album(fresh):
    people = fresh
    o, v = people.c["owner"], people.c["viewer"]
    admin = people.c["admin"]
    aid = people.album("trash")
    _, doc = o.upload(os.urandom(555), name="gone.jpg")
    gone = doc["image_id"]
    assert o.call("POST", "/albums/%s/items" % aid, {"image_ids": [gone]})[0] == 200
    assert gone in items(v, aid)
    assert o.call("DELETE", "/images/%s" % gone)[0] == 200
    assert gone not in items(v, aid) and gone not in items(o, aid)
    assert v.call("GET", "/albums/%s" % aid)[1]["item_count"] == 2
    assert v.call("GET", "/images/%s" % gone)[0] == 404
    assert o.call("POST", "/images/%s/restore" % gone)[0] == 200
    assert gone in items(v, aid)
    assert v.call("GET", "/images/%s" % gone)[0] == 200
    # purge: the item goes with the image row
    assert o.call("PATCH", "/albums/%s" % aid, {"cover_image_id": gone})[0] == 200
    assert o.call("DELETE", "/images/%s" % gone)[0] == 200
    st, doc = admin.call("POST", "/internal/images/%s/cleanup" % gone)
    assert st == 200 and doc["status"] == "permanently_deleted", doc
    assert sql_value("SELECT count(*) FROM album_items WHERE image_id = '%s'" % gone) == "0"
    st, a = o.call("GET", "/albums/%s" % aid)
    assert a["cover_image_id"] is None and a["item_count"] == 2
    assert gone not in items(o, aid)
    assert o.call("POST", "/images/%s/restore" % gone)[0] == 404


def gps(viewer, image_id):
    return sql_value("SELECT image_capture(i, '%s')->>'gps' FROM images i WHERE image_id = '%s'"
                     % (viewer, image_id))


def test_album_viewer_sees_location_only_when_the_owner_allows(fresh):
    people = fresh
    o, v = people.c["owner"], people.c["viewer"]
    aid = people.album("where")
    _, doc = o.upload(os.urandom(777), name="gps.jpg")
    img = doc["image_id"]
    sql("INSERT INTO blob_capture (content_hash, gps_lat, gps_lon, gps_alt)"
        " VALUES ('%s', 48.8584, 2.2945, 35) ON CONFLICT (content_hash) DO UPDATE"
        " SET gps_lat = 48.8584, gps_lon = 2.2945, gps_alt = 35" % doc["sha256"])
    assert o.call("POST", "/albums/%s/items" % aid, {"image_ids": [img]})[0] == 200
    meta = lambda c: c.call("GET", "/images/%s/metadata" % img)  # noqa: E731
    owner_view = meta(o)[1]
    assert gps(people.ids["owner"], img) is not None
    assert gps(people.ids["viewer"], img) is None
    assert owner_view["capture"]["gps"]["latitude"] == pytest.approx(48.8584)
    assert meta(v)[1]["capture"]["gps"] is None
    st, a = o.call("PATCH", "/albums/%s" % aid, {"show_location": True})
    assert st == 200 and a["show_location"] is True
    loc = gps(people.ids["viewer"], img)
    assert loc is not None and "48.8584" in loc
    assert meta(v)[1]["capture"]["gps"]["longitude"] == pytest.approx(2.2945)
    assert meta(people.c["contributor"])[1]["capture"]["gps"]["altitude"] == pytest.approx(35)
    # another user still sees nothing (and no image)
    assert gps(people.ids["other"], img) is None
    assert meta(people.c["other"])[0] == 404
    assert o.call("PATCH", "/albums/%s" % aid, {"show_location": False})[0] == 200
    assert gps(people.ids["viewer"], img) is None
    assert meta(v)[1]["capture"]["gps"] is None


class Device:
    """A device's mirror of what its user sees, fed only by /sync deltas."""

    def __init__(self, client):
        self.c = client
        self.cursor = None
        self.images, self.albums, self.pairs = {}, {}, set()

    def apply(self, doc):
        for kind in ("added", "updated", "deleted"):
            for e in doc[kind]:
                if kind == "deleted":
                    self.images.pop(e["image_id"], None)
                else:
                    self.images[e["image_id"]] = (e["name"], e["capture"]["gps"])
        for a in doc["albums"]["updated"]:
            self.albums[a["album_id"]] = album_view(a)
        for aid in doc["albums"]["deleted"]:
            self.albums.pop(aid, None)
            self.pairs = {p for p in self.pairs if p[0] != aid}
        for x in doc["album_items"]:
            pair = (x["album_id"], x["image_id"])
            if x["added"]:
                self.pairs.add(pair)
            else:
                self.pairs.discard(pair)

    def sync(self, limit=7):
        for _ in range(500):
            q = "/sync?limit=%d" % limit + ("&since=" + self.cursor if self.cursor else "")
            st, doc = self.c.call("GET", q)
            assert st == 200, (st, doc)
            self.apply(doc)
            self.cursor = doc["cursor"]
            if not doc["has_more"]:
                return
        raise AssertionError("sync did not finish")

    def state(self):
        items = {(a, i) for a, i in self.pairs if a in self.albums and i in self.images}
        return self.images, self.albums, items


def album_view(a):
    """What a device keeps of an album (item_count is the REST listing's to count)."""
    return {k: v for k, v in a.items() if k != "item_count"}


def truth(c):
    """What the REST routes say the user sees now."""
    images, albums, pairs = {}, {}, set()
    for path in ("/images?limit=200", "/shared?limit=200"):
        st, doc = c.call("GET", path)
        assert st == 200 and doc["next_cursor"] is None
        images.update({x["image_id"]: x["name"] for x in doc["images"]})
    st, doc = c.call("GET", "/albums?limit=200")
    assert st == 200 and doc["next_cursor"] is None
    for a in doc["albums"]:
        albums[a["album_id"]] = album_view(a)
        st, full = c.call("GET", "/albums/%s?limit=200" % a["album_id"])
        assert st == 200 and full["next_cursor"] is None
        for x in full["items"]:
            images[x["image_id"]] = x["name"]
            pairs.add((a["album_id"], x["image_id"]))
    for i in images:  # what the caller sees of where it was taken
        st, m = c.call("GET", "/images/%s/metadata" % i)
        assert st == 200
        images[i] = (images[i], m["capture"]["gps"])
    return images, albums, pairs


def test_every_members_device_converges_through_sync(api):
    ids = {r: user_id("s" + r[:3]) for r in ("owner", "viewer", "contributor")}
    cl = {r: Client(api.url, api.token(u)) for r, u in ids.items()}
    o, c = cl["owner"], cl["contributor"]
    devices = {r: Device(Client(api.url, api.token(u))) for r, u in ids.items()}
    up = lambda who, n: who.upload(os.urandom(200 + n), name="f%d.jpg" % n)[1]["image_id"]  # noqa
    mine = [up(o, k) for k in range(4)]
    theirs = up(c, 9)
    for i in (mine[1], theirs):  # a location for the content of two images
        sql("INSERT INTO blob_capture (content_hash, gps_lat, gps_lon) SELECT content_hash,"
            " 59.33, 18.06 FROM images WHERE image_id = '%s' ON CONFLICT (content_hash)"
            " DO UPDATE SET gps_lat = 59.33, gps_lon = 18.06" % i)

    def check(step):
        for r, d in devices.items():
            d.sync()
            assert d.state() == truth(cl[r]), (step, r)

    check("start")
    st, a = o.call("POST", "/albums", {"name": "family"})
    aid = a["album_id"]
    check("create")
    assert o.call("POST", "/albums/%s/items" % aid, {"image_ids": mine[:3]})[0] == 200
    for r in ("viewer", "contributor"):
        assert o.call("POST", "/albums/%s/members" % aid, {"user": ids[r], "role": r})[0] == 200
    check("add, members")
    assert c.call("POST", "/albums/%s/items" % aid, {"image_ids": [theirs]})[0] == 200
    assert o.call("PATCH", "/albums/%s" % aid, {"name": "family 2024", "cover_image_id": theirs,
                                                "order": [theirs]})[0] == 200
    check("contributor adds, rename")
    assert o.call("DELETE", "/albums/%s/items" % aid, {"image_ids": [mine[0]]})[0] == 200
    assert o.call("PATCH", "/images/%s" % mine[1], {"name": "renamed.jpg"})[0] == 200
    check("remove item, rename image")
    assert o.call("PATCH", "/albums/%s" % aid, {"show_location": True})[0] == 200
    check("location shown")
    assert devices["viewer"].images[mine[1]][1]["latitude"] == pytest.approx(59.33)
    assert o.call("PATCH", "/albums/%s" % aid, {"show_location": False})[0] == 200
    check("location hidden")
    assert devices["viewer"].images[mine[1]][1] is None
    assert o.call("DELETE", "/images/%s" % mine[2])[0] == 200
    check("image deleted")
    assert o.call("POST", "/images/%s/restore" % mine[2])[0] == 200
    fresh = Device(Client(api.url, api.token(ids["viewer"])))
    fresh.sync(limit=2)  # a new device: the snapshot carries albums and items too
    assert fresh.state() == truth(cl["viewer"])
    check("image restored")
    assert o.call("DELETE", "/albums/%s/members/%s" % (aid, ids["viewer"]))[0] == 200
    check("viewer removed")
    assert o.call("POST", "/albums/%s/members" % aid, {"user": ids["viewer"],
                                                       "role": "viewer"})[0] == 200
    check("viewer back")
    assert o.call("DELETE", "/albums/%s" % aid)[0] == 200
    check("album deleted")
    v_images, v_albums, _ = devices["viewer"].state()
    assert v_images == {} and v_albums == {}
    assert set(devices["owner"].state()[0]) == set(mine)


def test_caps(stack):
    api = start_api(PIXPLANE_ALBUMS_PER_USER=1, PIXPLANE_ALBUM_ITEMS=2,
                    PIXPLANE_ALBUM_MEMBERS=1, PIXPLANE_ALBUM_IDS_PER_REQUEST=3)
    try:
        o = Client(api.url, api.token(user_id("cap")))
        st, a = o.call("POST", "/albums", {"name": "one"})
        assert st == 201
        aid = a["album_id"]
        st, doc = o.call("POST", "/albums", {"name": "two"})
        assert st == 409 and doc["error"]["code"] == "album_limit_reached"
        imgs = [o.upload(os.urandom(600 + k))[1]["image_id"] for k in range(4)]
        st, doc = o.call("POST", "/albums/%s/items" % aid, {"image_ids": imgs})
        assert st == 413 and doc["error"]["code"] == "too_many_items"
        assert o.call("POST", "/albums/%s/items" % aid, {"image_ids": imgs[:2]})[0] == 200
        st, doc = o.call("POST", "/albums/%s/items" % aid, {"image_ids": imgs[2:3]})
        assert st == 409 and doc["error"]["code"] == "album_full"
        st, doc = o.call("POST", "/albums/%s/items" % aid, {"image_ids": imgs[:2]})
        assert st == 200 and doc["added"] == 0  # already there: within the cap
        first = user_id("m")
        assert o.call("POST", "/albums/%s/members" % aid,
                      {"user": first, "role": "viewer"})[0] == 200
        st, doc = o.call("POST", "/albums/%s/members" % aid,
                         {"user": user_id("m"), "role": "viewer"})
        assert st == 409 and doc["error"]["code"] == "member_limit_reached"
        st, doc = o.call("POST", "/albums/%s/members" % aid,
                         {"user": first, "role": "contributor"})  # a role change: fine
        assert st == 200 and doc["role"] == "contributor"
        st, doc = o.call("PATCH", "/albums/%s" % aid, {"order": imgs})
        assert st == 413
    finally:
        api.stop()


def test_album_changes_are_pushed_to_members_streams(api):
    from test_sync import SSEReader, sse_connect
    ids = {r: user_id("p" + r[:3]) for r in ("owner", "viewer", "other")}
    o = Client(api.url, api.token(ids["owner"]))
    _, doc = o.upload(os.urandom(640), name="pushed.jpg")
    st, a = o.call("POST", "/albums", {"name": "live"})
    aid = a["album_id"]
    streams = {}
    for r in ("viewer", "other"):
        s = SSEReader(sse_connect(api.url, api.token(ids[r])))
        assert " 200 " in s.headers().split("\r\n")[0]
        assert s.event(5)["event"] == "sync"  # a fresh stream's catch-up
        streams[r] = s
    try:
        t0 = time.monotonic()
        assert o.call("POST", "/albums/%s/members" % aid, {"user": ids["viewer"],
                                                           "role": "viewer"})[0] == 200
        assert o.call("POST", "/albums/%s/items" % aid, {"image_ids": [doc["image_id"]]})[0] \
            == 200
        got = {"albums": set(), "items": set(), "images": set()}
        deadline = time.monotonic() + 10
        while len(got["items"]) < 1 and time.monotonic() < deadline:
            ev = streams["viewer"].event(max(0.1, deadline - time.monotonic()))
            if ev is None:
                break
            d = json.loads(ev["data"])
            got["albums"] |= {x["album_id"] for x in d["albums"]["updated"]}
            got["items"] |= {(x["album_id"], x["image_id"]) for x in d["album_items"]
                             if x["added"]}
            got["images"] |= {x["image_id"] for x in d["added"]}
        assert got == {"albums": {aid}, "items": {(aid, doc["image_id"])},
                       "images": {doc["image_id"]}}, got
        assert time.monotonic() - t0 < 5
        assert streams["other"].event(1.5) is None  # not theirs
    finally:
        for s in streams.values():
            s.sock.close()
