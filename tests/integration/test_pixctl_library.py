# pixctl and the photo library (issue 18) against a real API, PostgreSQL and radosgw: every
# kind of upload pixctl makes (one file, a bulk import, a two-way sync) sends the file's
# mtime as file_modified_at, which the API reports as the capture time of a file without
# EXIF; `ls --sort taken` lists the timeline in the API's order with its filters; and the
# album subcommands end to end (create, ls, add, rm, share, unshare, delete).
import datetime
import json
import os
import re

import pytest

from test_pixctl import PIXCTL, Pixctl, has_route

JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00"  # sniffed as a JPEG; no EXIF, no capture time


@pytest.fixture(scope="module")
def lapi(api):
    if not os.path.exists(PIXCTL):
        pytest.skip("pixctl not built (%s)" % PIXCTL)
    return api


def photo(path, mtime_ns, size=3000):
    """A fresh content at path (random bytes after a JPEG header) with mtime mtime_ns."""
    path.write_bytes(JPEG + os.urandom(size - len(JPEG)))
    os.utime(path, ns=(mtime_ns, mtime_ns))
    return path


def rfc3339_ms(ns):
    """The API's rendering of a time: UTC, milliseconds truncated."""
    t = datetime.datetime.fromtimestamp(ns // 10**9, datetime.timezone.utc)
    return t.strftime("%Y-%m-%dT%H:%M:%S") + ".%03dZ" % (ns % 10**9 // 10**6)


def metadata(px, image_id):
    st, doc = px.client.call("GET", "/images/%s/metadata" % image_id)
    assert st == 200, (st, doc)
    return doc


def assert_from_mtime(px, image_id, ns):
    m = metadata(px, image_id)
    want = rfc3339_ms(ns)
    assert m["taken_at"] == want, (m["taken_at"], want)
    assert m["capture"]["time_source"] == "file_modified", m["capture"]
    assert m["capture"]["file_modified_at"] == want


def jlines(p):
    return [json.loads(line) for line in p.stdout.splitlines() if line.strip()]


# 2021-07-04T12:34:56.789123456Z and others, in no particular order; two share a time
NS = [1625402096789123456, 1262304000000000000, 1700000000123000000, 946684799999999999,
      1625402096789000000, 1404567890555000000]


def test_every_upload_sends_the_file_mtime(lapi, tmp_path):
    px = Pixctl(lapi, tmp_path)
    one = photo(tmp_path / "one.jpg", NS[0])
    doc = px.upload_json(one)
    assert_from_mtime(px, doc["image_id"], NS[0])
    info = px.run("info", doc["image_id"]).stdout
    assert re.search(r"(?m)^  time_source: +file_modified$", info), info
    assert re.search(r"(?m)^  file_modified_at: +%s$" % re.escape(rfc3339_ms(NS[0])), info), info
    # bulk import: the batch items carry it too
    d = tmp_path / "dir"
    (d / "sub").mkdir(parents=True)
    files = {photo(d / "a.jpg", NS[1]): NS[1], photo(d / "sub" / "b.jpg", NS[2]): NS[2],
             photo(d / "c.jpg", NS[3]): NS[3]}
    docs = jlines(px.run("upload", "--json", "-r", d))
    done = {x["file"]: x["image_id"] for x in docs if x.get("status") == "uploaded"}
    assert len(done) == 3, docs
    for path, ns in files.items():
        key = [k for k in done if os.path.realpath(k) == os.path.realpath(path)]
        assert len(key) == 1, (path, done)
        assert_from_mtime(px, done[key[0]], ns)
    # two-way sync: a new file in the folder is uploaded with its mtime
    folder = tmp_path / "synced"
    folder.mkdir()
    px.run("sync", "--two-way", folder)
    photo(folder / "new.jpg", NS[5])
    px.run("sync", "--two-way", folder)
    st, page = px.client.call("GET", "/images?limit=200")
    assert st == 200, (st, page)
    new = [i for i in page["images"] if i["name"] == "new.jpg"]
    assert len(new) == 1, page
    assert_from_mtime(px, new[0]["image_id"], NS[5])


def test_upload_of_a_file_from_before_1970(lapi, tmp_path):
    """A negative mtime (seconds before the epoch, nanoseconds after) is sent exactly."""
    px = Pixctl(lapi, tmp_path)
    old = -86400 * 365 * 10 * 10**9 + 250 * 10**6  # 1960, with milliseconds
    doc = px.upload_json(photo(tmp_path / "old.jpg", old))
    assert_from_mtime(px, doc["image_id"], old)


def ls(px, *args, **kw):
    return px.run("ls", *args, **kw)


def test_ls_sort_taken_lists_the_timeline(lapi, tmp_path):
    px = Pixctl(lapi, tmp_path)
    d = tmp_path / "lib"
    d.mkdir()
    by_name = {}
    for i, ns in enumerate(NS):
        by_name["p%d.jpg" % i] = ns
        photo(d / ("p%d.jpg" % i), ns)
    docs = jlines(px.run("upload", "--json", "-r", d))
    ids = {os.path.basename(x["file"]): x["image_id"] for x in docs if "image_id" in x}
    assert len(ids) == len(NS), docs
    # the API's order: taken_at desc, then image_id desc (NS[0] and NS[4] share a ms)
    key = {ids[n]: (rfc3339_ms(ns), ids[n]) for n, ns in by_name.items()}
    want = sorted(ids.values(), key=lambda i: key[i], reverse=True)
    got = jlines(ls(px, "--sort", "taken", "--json"))
    assert [x["image_id"] for x in got] == want
    assert all(x["taken_at"] == key[x["image_id"]][0] for x in got)
    # the default stays the upload order; asc reverses the timeline
    up = [x["image_id"] for x in jlines(ls(px, "--json"))]
    assert sorted(up) == sorted(want)
    asc = [x["image_id"] for x in jlines(ls(px, "--sort", "taken", "--order", "asc", "--json"))]
    assert asc == want[::-1]
    # the window: [2010-01-01, 2021-07-04T12:34:56.789Z) and --limit
    win = jlines(ls(px, "--sort", "taken", "--json", "--taken-after", "2010-01-01T00:00:00Z",
                    "--taken-before", rfc3339_ms(NS[0])))
    inside = [i for i in want if "2010-01-01T00:00:00.000Z" <= key[i][0] < rfc3339_ms(NS[0])]
    assert [x["image_id"] for x in win] == inside and len(inside) == 2
    assert len(jlines(ls(px, "--sort", "taken", "--json", "--limit", "4"))) == 4
    # the text rows show the capture time
    rows = ls(px, "--sort", "taken").stdout.splitlines()
    assert [r.split()[0] for r in rows] == want
    assert all(key[r.split()[0]][0] in r for r in rows)


@pytest.mark.parametrize("args", [["--sort", "shot"], ["--order", "up", "--sort", "taken"],
                                  ["--taken-after", "2010-01-01T00:00:00Z"],
                                  ["--sort", "taken", "--taken-before", "last year"],
                                  ["--order", "asc"]])
def test_ls_usage_errors(lapi, tmp_path, args):
    px = Pixctl(lapi, tmp_path)
    p = ls(px, *args, ok=False)
    assert p.returncode == 1, (p.returncode, p.stderr)
    assert p.stderr.startswith("pixctl: ") and p.stdout == ""


# ---- albums ----

@pytest.fixture(scope="module")
def albums(lapi):
    if not has_route(lapi, "POST", "/albums"):
        pytest.skip("POST /albums is not served (the albums branch has not landed)")
    return lapi


def upload_some(px, tmp_path, n, base_ns=NS[0]):
    d = tmp_path / ("up-" + px.user)
    d.mkdir()
    for i in range(n):
        photo(d / ("a%d.jpg" % i), base_ns + i * 10**9)
    docs = jlines(px.run("upload", "--json", "-r", d))
    ids = {os.path.basename(x["file"]): x["image_id"] for x in docs if "image_id" in x}
    return [ids["a%d.jpg" % i] for i in range(n)]  # oldest mtime first


def test_album_subcommands_end_to_end(albums, tmp_path):
    owner, friend = Pixctl(albums, tmp_path), Pixctl(albums, tmp_path)
    imgs = upload_some(owner, tmp_path, 5)
    assert len(imgs) == 5
    aid = owner.run("album", "create", "Summer 2021").stdout.strip()
    st, doc = owner.client.call("GET", "/albums/%s" % aid)
    assert st == 200 and doc["name"] == "Summer 2021", (st, doc)
    out = owner.run("album", "add", aid, *imgs).stdout
    assert out.strip() == "%s added 5 of 5 images" % aid
    # ls: the album among yours, then its images in the album's order (taken_at desc)
    mine = jlines(owner.run("album", "ls", "--json"))
    assert [a["album_id"] for a in mine] == [aid]
    assert mine[0]["role"] == "owner" and mine[0]["item_count"] == 5
    assert aid in owner.run("album", "ls").stdout
    lines = jlines(owner.run("album", "ls", aid, "--json"))
    assert lines[0]["album_id"] == aid and "items" not in lines[0]
    assert [x["image_id"] for x in lines[1:]] == imgs[::-1]  # later mtime first
    text = owner.run("album", "ls", aid).stdout.splitlines()
    assert [r.split()[0] for r in text] == imgs[::-1]
    assert len(jlines(owner.run("album", "ls", aid, "--json", "--limit", "2"))) == 3
    # rm takes images out, not out of the library
    assert owner.run("album", "rm", aid, imgs[0], imgs[1]).stdout.strip() == (
        "%s removed 2 of 2 images" % aid)
    left = [x["image_id"] for x in jlines(owner.run("album", "ls", aid, "--json"))[1:]]
    assert left == imgs[:1:-1]
    assert metadata(owner, imgs[0])["status"] == "active"
    # share: the friend sees it, as a viewer cannot add, as a contributor can
    assert friend.run("album", "ls", aid, ok=False).returncode == 2
    assert owner.run("album", "share", aid, friend.user).stdout.strip() == (
        "%s shared with %s (viewer)" % (aid, friend.user))
    seen = jlines(friend.run("album", "ls", "--json"))
    assert [(a["album_id"], a["role"]) for a in seen] == [(aid, "viewer")]
    assert len(jlines(friend.run("album", "ls", aid, "--json"))) == 4
    theirs = upload_some(friend, tmp_path, 1, base_ns=NS[3])
    p = friend.run("album", "add", aid, *theirs, ok=False)
    assert p.returncode == 2 and "403" in p.stderr, p.stderr
    owner.run("album", "share", aid, friend.user, "--role", "contributor")
    friend.run("album", "add", aid, *theirs)
    items = jlines(owner.run("album", "ls", aid, "--json"))[1:]
    assert theirs[0] in [x["image_id"] for x in items]
    # unshare ends access at once
    assert owner.run("album", "unshare", aid, friend.user).stdout.strip() == (
        "%s unshared with %s" % (aid, friend.user))
    assert jlines(friend.run("album", "ls", "--json")) == []
    assert friend.run("album", "ls", aid, ok=False).returncode == 2
    # the album goes, its images stay
    assert owner.run("album", "rm", "--album", aid).stdout.strip() == "%s deleted" % aid
    assert jlines(owner.run("album", "ls", "--json")) == []
    assert all(metadata(owner, i)["status"] == "active" for i in imgs)
    aid2 = jlines(owner.run("album", "create", "Other", "--json"))[0]["album_id"]
    assert owner.run("album", "delete", aid2).stdout.strip() == "%s deleted" % aid2


def test_album_usage_errors(lapi, tmp_path):
    px = Pixctl(lapi, tmp_path)
    for args in (["album"], ["album", "frob"], ["album", "create"], ["album", "add", "A"],
                 ["album", "rm", "A"], ["album", "share", "A", "bob", "--role", "owner"],
                 ["album", "ls", "A", "--sort", "name"],
                 ["album", "share", "A", "bob", "--album"]):
        p = px.run(*args, ok=False)
        assert p.returncode == 1, (args, p.returncode, p.stderr)
        assert p.stderr.startswith("pixctl: ") and p.stdout == "", (args, p.stderr)
    assert "album create NAME" in px.run("album", "--help").stdout
