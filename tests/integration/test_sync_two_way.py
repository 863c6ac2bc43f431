# pixctl's two-way sync (`pixctl sync DIR --two-way`) against a real API, PostgreSQL and
# radosgw: two devices of one user and the API as a third writer make 300 seeded random
# changes and converge with no byte lost and no duplicate image; each conflict pair ends as
# documented (names, ids, trash, the conflict line); the deletion guard (--max-delete, an
# emptied or missing folder); SIGKILL during uploads and during downloads then a rerun; the
# default ignores, --exclude, a subdirectory and a file still being written; --watch both ways.
import collections
import hashlib
import itertools
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import threading
import time

import pytest

from conftest import MIB, user_id
from test_pixctl import PIXCTL, Pixctl, door, has_route, papi, wait_for  # noqa: F401 (fixtures)

JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00"  # the start of a JPEG: sniffed as one
META = ".pixplane"


@pytest.fixture(scope="module")
def two_way(papi):
    p = subprocess.run([PIXCTL, "sync", "--help"], capture_output=True, text=True, timeout=10)
    if "--two-way" not in p.stdout:
        pytest.skip("pixctl sync has no --two-way yet")
    if not has_route(papi, "GET", "/sync"):
        pytest.skip("GET /sync is not served yet")


# ---- local side ----

def jpeg(size):
    """size bytes (at least 16) that start like a JPEG, the rest random: a content unseen."""
    return JPEG + os.urandom(max(size, 16) - len(JPEG))


def sha(data):
    return hashlib.sha256(data).hexdigest()


def put(path, data):
    with open(path, "wb") as f:
        f.write(data)
    return sha(data)


def files(d):
    """{name: sha256} of the regular files directly in d (not .pixplane, not subdirectories)."""
    out = {}
    if not os.path.isdir(d):
        return out
    for name in sorted(os.listdir(d)):
        p = os.path.join(d, name)
        if name == META or not os.path.isfile(p) or os.path.islink(p):
            continue
        with open(p, "rb") as f:
            out[name] = sha(f.read())
    return out


def entries(d):
    return sorted(n for n in os.listdir(d) if n != META)


def tmp_leftovers(d):
    """Files left in DIR/.pixplane/tmp (partial downloads or uploads)."""
    t = os.path.join(d, META, "tmp")
    return sorted(os.listdir(t)) if os.path.isdir(t) else []


def today():
    return time.strftime("%Y-%m-%d")


def host():
    return socket.gethostname().split(".")[0]


def conflict_names(name, dates):
    stem, ext = os.path.splitext(name)
    return {"%s (conflict %s %s)%s" % (stem, host(), d, ext) for d in dates}


def parse_lines(out, what=""):
    docs = []
    for line in out.splitlines():
        if not line.strip():
            continue
        try:
            docs.append(json.loads(line))
        except ValueError:
            raise AssertionError("%s: not one JSON object per line: %r\n%s" % (what, line, out[-3000:]))
    return docs


def changes(docs):
    return [d for d in docs if d.get("action") != "synced"]


class Dev:
    """One device: a folder synced two-way by pixctl with its own HOME and state."""

    def __init__(self, api, tmp_path, user, label):
        self.label = label
        self.px = Pixctl(api, tmp_path / ("dev-" + label), user)
        self.dir = tmp_path / ("dev-" + label) / "folder"

    def sync(self, *flags, ok=True, json_out=True, timeout=180):
        args = ["sync", self.dir, "--two-way"] + list(flags) + (["--json"] if json_out else [])
        p = self.px.run(*args, ok=ok, timeout=timeout)
        docs = parse_lines(p.stdout, "sync %s" % self.label) if json_out else []
        if json_out and p.returncode == 0:
            assert docs and docs[-1].get("action") == "synced", (p.stdout[-2000:], p.stderr[-2000:])
            last = docs[-1]
            for k in ("files", "uploaded", "remote_deleted", "conflicts"):
                assert isinstance(last.get(k), int), (k, last)
        return p, docs

    def spawn(self, *flags):
        return self.px.spawn("sync", self.dir, "--two-way", *flags)

    def path(self, name):
        return self.dir / name


# ---- server side ----

def server_images(px, status="active"):
    out, cursor = [], None
    for _ in range(1000):
        q = "/images?limit=200"
        if status:
            q += "&status=" + status
        if cursor:
            q += "&cursor=" + requests_quote(cursor)
        st, doc = px.client.call("GET", q)
        assert st == 200, (st, doc)
        out += doc["images"]
        cursor = doc.get("next_cursor")
        if not cursor:
            return out
    raise AssertionError("more than 1000 pages of images")


def requests_quote(s):
    import urllib.parse
    return urllib.parse.quote(s, safe="")


def active(px):
    return server_images(px, "active")


def trash(px):
    return server_images(px, "deleted")


def by_name(images):
    """{name: (image_id, sha256)}; asserts the names are unique."""
    out = {}
    for im in images:
        assert im["name"] not in out, ("two active images named %r" % im["name"], images)
        out[im["name"]] = (im["image_id"], im["sha256"])
    return out


def name_sha(images):
    return sorted((im["name"], im["sha256"]) for im in images)


def expected_local(images):
    """The folder a mirror makes of these images: {file name: sha256}. Names collide as
    `STEM (ID8).EXT`, the smallest id keeping the plain name (pixctl/naming.c)."""
    groups = collections.defaultdict(list)
    for im in images:
        groups[im["name"]].append(im)
    out = {}
    for name, ims in groups.items():
        ims.sort(key=lambda i: i["image_id"])
        out[name] = ims[0]["sha256"]
        stem, ext = os.path.splitext(name)
        for im in ims[1:]:
            out["%s (%s)%s" % (stem, im["image_id"][:8], ext)] = im["sha256"]
    return out


def api_upload(px, data, name):
    _, doc = px.client.upload(data, name=name)
    return doc["image_id"]


def api_call(px, method, path, body=None, want=(200, 204)):
    st, doc = px.client.call(method, path, body)
    assert st in want, (method, path, st, doc)
    return doc


def wait_all_active(px, timeout=60):
    deadline = time.monotonic() + timeout
    while True:
        pending = [im for im in server_images(px, "verifying")]
        if not pending or time.monotonic() > deadline:
            return pending
        time.sleep(0.2)


def sync_until_quiet(devs, rounds=6, flags=("--force",)):
    """Syncs the devices in turn until a whole round changes nothing. Returns the rounds' docs."""
    history = []
    for _ in range(rounds):
        moved = []
        for d in devs:
            _, docs = d.sync(*flags)
            history.append((d.label, docs))
            moved += changes(docs)
        if not moved:
            return history
    raise AssertionError("no quiet round after %d rounds; last: %s" % (rounds, history[-len(devs):]))


# ---- 1. random operations from three writers ----

N_OPS = int(os.environ.get("PIXPLANE_SYNC_OPS") or 300)


def test_random_operations_converge(papi, tmp_path, two_way):
    seed = int(os.environ.get("PIXPLANE_SYNC_SEED") or random.SystemRandom().randrange(2 ** 31))
    print("two-way random test seed: %d (PIXPLANE_SYNC_SEED=%d to replay)" % (seed, seed))
    rng = random.Random(seed)
    user = user_id("rand")
    A, B = Dev(papi, tmp_path, user, "A"), Dev(papi, tmp_path, user, "B")
    api = A.px
    ledger = {}  # sha256 -> where it was seen first (a content some sync saw, or an API upload)
    log = []
    counter = itertools.count()
    stats = collections.Counter()

    def new_name(side):
        return "%s%03d.jpg" % (side.lower(), next(counter))

    def content():
        return jpeg(rng.randint(1024, 64 * 1024))

    def note(s):
        log.append(s)

    def local_op(dev, op):
        names = sorted(files(dev.dir))
        if op in ("rename", "edit", "delete") and not names:
            op = "add"
        if op in ("add", "restore"):
            n = new_name(dev.label)
            put(dev.path(n), content())
            note("%s add %s" % (dev.label, n))
        elif op == "rename":
            old = rng.choice(names)
            n = new_name(dev.label)
            os.rename(dev.path(old), dev.path(n))
            note("%s rename %s -> %s" % (dev.label, old, n))
        elif op == "edit":
            old = rng.choice(names)
            data = content()
            if rng.random() < 0.5:
                put(dev.path(old), data)  # in place
            else:  # as editors save: a new file renamed over the old one
                tmp = dev.dir.parent / ("save-" + old)
                put(tmp, data)
                os.rename(tmp, dev.path(old))
            note("%s edit %s" % (dev.label, old))
        elif op == "delete":
            old = rng.choice(names)
            os.remove(dev.path(old))
            note("%s delete %s" % (dev.label, old))
        stats[dev.label + " " + op] += 1

    def api_op(op):
        imgs = [im for im in active(api) if im["sha256"]]
        if op in ("rename", "edit", "delete") and not imgs:
            op = "add"
        if op == "restore":
            names = {im["name"] for im in imgs}
            gone = [im for im in trash(api) if im["name"] not in names]
            if not gone:
                op = "add"
        if op == "add":
            data = content()
            n = new_name("api")
            iid = api_upload(api, data, n)
            ledger.setdefault(sha(data), "api add %s" % n)
            note("API add %s %s" % (n, iid[:8]))
        elif op == "rename":
            im = rng.choice(imgs)
            n = new_name("api")
            api_call(api, "PATCH", "/images/%s" % im["image_id"], {"name": n})
            note("API rename %s %s -> %s" % (im["image_id"][:8], im["name"], n))
        elif op == "edit":  # another writer's edit: the new content under the name, old to trash
            im = rng.choice(imgs)
            data = content()
            iid = api_upload(api, data, im["name"])
            ledger.setdefault(sha(data), "api edit %s" % im["name"])
            api_call(api, "DELETE", "/images/%s" % im["image_id"])
            note("API edit %s %s -> %s" % (im["name"], im["image_id"][:8], iid[:8]))
        elif op == "delete":
            im = rng.choice(imgs)
            api_call(api, "DELETE", "/images/%s" % im["image_id"])
            note("API delete %s %s" % (im["image_id"][:8], im["name"]))
        elif op == "restore":
            im = rng.choice(gone)
            api_call(api, "POST", "/images/%s/restore" % im["image_id"])
            note("API restore %s %s" % (im["image_id"][:8], im["name"]))
        stats["API " + op] += 1

    def sync(dev):
        for n, h in files(dev.dir).items():  # what this sync sees must survive it
            ledger.setdefault(h, "%s file %s at sync %d" % (dev.label, n, len(log)))
        _, docs = dev.sync("--force")
        for d in docs:
            stats["action " + d["action"]] += 1
            if d["action"] == "conflict":
                stats["conflict " + d.get("kind", "?")] += 1
        note("%s sync: %s" % (dev.label, [(d["action"], d.get("path")) for d in changes(docs)]))

    ops = ["add"] * 3 + ["rename"] * 2 + ["edit"] * 2 + ["delete"] * 2 + ["restore"]
    A.dir.mkdir(parents=True)
    B.dir.mkdir(parents=True)
    until_sync = rng.randint(5, 15)
    t0 = time.monotonic()
    try:
        for i in range(N_OPS):
            side, op = rng.choice(["A", "B", "API"]), rng.choice(ops)
            if side == "API":
                api_op(op)
            else:
                local_op(A if side == "A" else B, op)
            until_sync -= 1
            if until_sync == 0:
                sync(rng.choice([A, B]))
                until_sync = rng.randint(5, 15)
        assert not wait_all_active(api), "images still verifying"
        for d in (A, B):
            for n, h in files(d.dir).items():
                ledger.setdefault(h, "%s file %s at the end" % (d.label, n))
        history = sync_until_quiet([A, B])
        note("final rounds: %d syncs" % len(history))
    finally:
        with open(tmp_path / "ops.log", "w") as f:
            f.write("seed %d\n%s\n" % (seed, "\n".join(log)))
        print("ops log: %s; %.1fs; %s" % (tmp_path / "ops.log", time.monotonic() - t0,
                                           dict(sorted(stats.items()))))
    ctx = "seed %d, ops log %s" % (seed, tmp_path / "ops.log")

    fa, fb = files(A.dir), files(B.dir)
    assert fa == fb, (ctx, sorted(set(fa.items()) ^ set(fb.items())))
    live = active(api)
    assert expected_local(live) == fa, (ctx, sorted(set(expected_local(live).items()) ^
                                                    set(fa.items())))
    assert len(live) == len(fa) == len(fb), ctx  # one image per file, none twice
    for d in (A, B):
        assert entries(d.dir) == sorted(files(d.dir)), (ctx, entries(d.dir))  # nothing stray
        assert not tmp_leftovers(d.dir), (ctx, tmp_leftovers(d.dir))
    kept = {im["sha256"] for im in live} | {im["sha256"] for im in trash(api)}
    lost = sorted((where, h) for h, where in ledger.items() if h not in kept)
    assert not lost, (ctx, "%d contents lost" % len(lost), lost[:20])
    assert not server_images(api, "failed"), ctx


# ---- the plain directions, one change at a time ----

def test_each_direction_one_change_at_a_time(papi, tmp_path, two_way):
    """Local changes go up (upload, rename of the same id, soft delete, edit as a new image
    replacing the old); the server's changes to the images this device itself uploaded in
    its previous pass come down (delete, rename, restore)."""
    A = Dev(papi, tmp_path, user_id("dir"), "A")
    A.dir.mkdir(parents=True)
    want = {n: put(A.path(n), jpeg(10000 + i)) for i, n in enumerate(
        ["p0.jpg", "p1.jpg", "p2.jpg", "p3.jpg", "p4.jpg", "p5.jpg"])}
    _, docs = A.sync()
    assert sorted(d["action"] for d in changes(docs)) == ["uploaded"] * 6, docs
    ids = {os.path.basename(d["path"]): d["image_id"] for d in changes(docs)}
    assert by_name(active(A.px)) == {n: (ids[n], h) for n, h in want.items()}

    # the server changes what this device uploaded in its last pass
    api_call(A.px, "DELETE", "/images/%s" % ids["p0.jpg"])
    api_call(A.px, "PATCH", "/images/%s" % ids["p1.jpg"], {"name": "q1.jpg"})
    _, docs = A.sync()
    got = sorted((d["action"], d["image_id"]) for d in changes(docs))
    assert got == sorted([("removed", ids["p0.jpg"]), ("renamed", ids["p1.jpg"])]), docs
    p0 = want.pop("p0.jpg")
    want["q1.jpg"] = want.pop("p1.jpg")
    assert files(A.dir) == want
    api_call(A.px, "POST", "/images/%s/restore" % ids["p0.jpg"])
    _, docs = A.sync()
    assert [(d["action"], d["image_id"]) for d in changes(docs)] == [("added", ids["p0.jpg"])], docs
    want["p0.jpg"] = p0
    assert files(A.dir) == want

    # local changes go up
    os.rename(A.path("p2.jpg"), A.path("r2.jpg"))
    os.remove(A.path("p3.jpg"))
    new4 = put(A.path("p4.jpg"), jpeg(20000))
    _, docs = A.sync()
    got = {d["action"]: d for d in changes(docs)}
    assert sorted(got) == ["remote-deleted", "remote-renamed", "replaced"], docs
    assert got["remote-renamed"]["image_id"] == ids["p2.jpg"], docs
    assert got["remote-renamed"].get("from") == "p2.jpg", docs
    assert got["remote-deleted"]["image_id"] == ids["p3.jpg"], docs
    assert got["replaced"]["replaces"] == ids["p4.jpg"], docs
    live = by_name(active(A.px))
    assert live["r2.jpg"][0] == ids["p2.jpg"] and "p3.jpg" not in live
    assert live["p4.jpg"] == (got["replaced"]["image_id"], new4)
    assert sorted(im["image_id"] for im in trash(A.px)) == sorted([ids["p3.jpg"], ids["p4.jpg"]])
    assert {n: h for n, (_, h) in live.items()} == files(A.dir)
    _, docs = A.sync()
    assert not changes(docs), docs


# ---- 2. conflicts, one pair at a time ----

# kind (LOCAL/SERVER): (the server's change, made by device B; the local change, on device A)
CONFLICTS = {
    "edit/edit": ("edit", "edit"),
    "edit/delete": ("delete", "edit"),
    "delete/edit": ("edit", "delete"),
    "rename/rename": ("rename", "rename"),
    "rename/delete": ("delete", "rename"),
    "delete/rename": ("rename", "delete"),
    "edit/rename": ("rename", "edit"),  # a merge, not a conflict
    "rename/edit": ("edit", "rename"),  # a merge, not a conflict
}


def setup_pair(papi, tmp_path):
    """Device A makes f.jpg (and other.jpg), syncs; B syncs. Returns A, B, id of f.jpg, c0."""
    user = user_id("cf")
    A, B = Dev(papi, tmp_path, user, "A"), Dev(papi, tmp_path, user, "B")
    A.dir.mkdir(parents=True)
    c0 = put(A.path("f.jpg"), jpeg(30000))
    put(A.path("other.jpg"), jpeg(20000))
    _, docs = A.sync()
    up = {d["path"]: d["image_id"] for d in docs if d["action"] == "uploaded"}
    up = {os.path.basename(k): v for k, v in up.items()}
    assert set(up) == {"f.jpg", "other.jpg"}, docs
    assert docs[-1]["uploaded"] == 2, docs[-1]
    B.sync()
    assert files(B.dir) == files(A.dir)
    return A, B, up["f.jpg"], c0


@pytest.mark.parametrize("via", ["device", "api"])
@pytest.mark.parametrize("kind", list(CONFLICTS))
def test_conflict_pair(papi, tmp_path, two_way, kind, via):
    """The server's change is made by device B's two-way sync, or by the API (an edit there:
    the new content uploaded under the name, then the old image deleted)."""
    server_op, local_op = CONFLICTS[kind]
    A, B, id0, c0 = setup_pair(papi, tmp_path)
    other = files(A.dir)["other.jpg"]
    id1 = c1 = None
    if via == "api":
        if server_op == "edit":
            data = jpeg(31000)
            c1, id1 = sha(data), api_upload(B.px, data, "f.jpg")
            api_call(B.px, "DELETE", "/images/%s" % id0)
        elif server_op == "rename":
            api_call(B.px, "PATCH", "/images/%s" % id0, {"name": "g.jpg"})
        else:
            api_call(B.px, "DELETE", "/images/%s" % id0)
    elif server_op == "edit":
        c1 = put(B.path("f.jpg"), jpeg(31000))
        _, docs = B.sync()
        rep = [d for d in docs if d["action"] == "replaced"]
        assert len(rep) == 1 and rep[0]["replaces"] == id0, docs
        id1 = rep[0]["image_id"]
        assert id1 != id0
    elif server_op == "rename":
        os.rename(B.path("f.jpg"), B.path("g.jpg"))
        _, docs = B.sync()
        assert [(d["action"], d["image_id"]) for d in changes(docs)] == [("remote-renamed", id0)], docs
    else:
        os.remove(B.path("f.jpg"))
        _, docs = B.sync()
        assert [(d["action"], d["image_id"]) for d in changes(docs)] == [("remote-deleted", id0)], docs
    # the local change on device A, then its sync
    c2 = None
    if local_op == "edit":
        c2 = put(A.path("f.jpg"), jpeg(32000))
    elif local_op == "rename":
        os.rename(A.path("f.jpg"), A.path("h.jpg"))
    else:
        os.remove(A.path("f.jpg"))
    d0 = today()
    p, docs = A.sync()
    dates = {d0, today()}
    cf = [d for d in docs if d["action"] == "conflict"]
    live = {}
    for im in active(A.px):
        assert im["name"] not in live, ("two active images named %r" % im["name"], docs)
        live[im["name"]] = im
    binned = {im["image_id"]: im for im in trash(A.px)}

    def live_ids():
        return {n: im["image_id"] for n, im in live.items()}

    if kind == "edit/edit":
        (copy,) = [n for n in files(A.dir) if n in conflict_names("f.jpg", dates)] or [None]
        assert copy, ("no conflict copy", files(A.dir), docs)
        want_files = {"f.jpg": c1, copy: c2, "other.jpg": other}
        assert len(cf) == 1 and cf[0].get("kind") == "edit/edit", docs
        assert cf[0].get("copy") == copy and os.path.basename(cf[0]["path"]) == "f.jpg", cf
        assert cf[0]["image_id"] in (id0, id1), cf
        assert live["f.jpg"]["image_id"] == id1
        assert live[copy]["image_id"] not in (id0, id1) and live[copy]["sha256"] == c2
        assert set(binned) == {id0}
    elif kind == "edit/delete":
        want_files = {"f.jpg": c2, "other.jpg": other}
        assert len(cf) == 1 and cf[0].get("kind") == "edit/delete", docs
        assert cf[0]["image_id"] == id0 and os.path.basename(cf[0]["path"]) == "f.jpg", cf
        assert live["f.jpg"]["image_id"] != id0  # a new image; the deleted one stays in the trash
        assert set(binned) == {id0}
    elif kind == "delete/edit":
        want_files = {"f.jpg": c1, "other.jpg": other}
        assert len(cf) == 1 and cf[0].get("kind") == "delete/edit", docs
        assert cf[0]["image_id"] in (id0, id1), cf
        assert live["f.jpg"]["image_id"] == id1
        assert set(binned) == {id0}  # (B's replace) nothing deleted on the server by A
    elif kind == "rename/rename":
        want_files = {"g.jpg": c0, "other.jpg": other}
        assert len(cf) == 1 and cf[0].get("kind") == "rename/rename", docs
        assert cf[0]["image_id"] == id0, cf
        assert live_ids()["g.jpg"] == id0 and not binned
    elif kind == "rename/delete":
        want_files = {"h.jpg": c0, "other.jpg": other}
        assert len(cf) == 1 and cf[0].get("kind") == "rename/delete", docs
        assert cf[0]["image_id"] == id0, cf
        assert ("remote-restored", id0) in [(d["action"], d.get("image_id")) for d in docs], docs
        assert live_ids()["h.jpg"] == id0 and not binned
    elif kind == "delete/rename":
        want_files = {"g.jpg": c0, "other.jpg": other}
        assert len(cf) == 1 and cf[0].get("kind") == "delete/rename", docs
        assert cf[0]["image_id"] == id0, cf
        assert live_ids()["g.jpg"] == id0 and not binned
    elif kind == "edit/rename":
        want_files = {"g.jpg": c2, "other.jpg": other}
        assert live["g.jpg"]["image_id"] != id0 and set(binned) == {id0}, (live, binned)
        assert all(d.get("kind") in (None, "edit/rename") for d in cf), cf
    elif kind == "rename/edit":
        want_files = {"h.jpg": c1, "other.jpg": other}
        assert live_ids()["h.jpg"] == id1 and set(binned) == {id0}, (live, binned)
        assert all(d.get("kind") in (None, "rename/edit") for d in cf), cf
    assert files(A.dir) == want_files, (files(A.dir), docs)
    assert {n: im["sha256"] for n, im in live.items()} == want_files, (live, docs)
    assert docs[-1]["conflicts"] == len(cf), docs[-1]
    if kind == "edit/edit":
        assert docs[-1]["uploaded"] >= 1, docs[-1]
    if kind == "edit/delete":
        assert c2 == live["f.jpg"]["sha256"]
    snapshot = (sorted((im["image_id"], im["name"]) for im in live.values()), sorted(binned))

    # both again: the same, and then nothing moves
    B.sync()
    _, again = A.sync()
    assert not changes(again), again
    _, again = B.sync()
    assert not changes(again), again
    assert files(A.dir) == files(B.dir) == want_files
    assert (sorted((im["image_id"], im["name"]) for im in active(A.px)),
            sorted(im["image_id"] for im in trash(A.px))) == snapshot
    for d in (A, B):
        assert entries(d.dir) == sorted(want_files) and not tmp_leftovers(d.dir)


def test_conflict_line_without_json(papi, tmp_path, two_way):
    A, B, id0, c0 = setup_pair(papi, tmp_path)
    os.rename(B.path("f.jpg"), B.path("g.jpg"))
    B.sync()
    os.rename(A.path("f.jpg"), A.path("h.jpg"))
    p, _ = A.sync(json_out=False)
    lines = [line for line in p.stderr.splitlines() if line.startswith("conflict (rename/rename)")]
    assert len(lines) == 1, p.stderr
    assert sorted(files(A.dir)) == ["g.jpg", "other.jpg"]


def test_edit_edit_copy_names_count_up(papi, tmp_path, two_way):
    """A second edit/edit of the same file on the same day: ` 2` inside the parentheses."""
    A, B, id0, c0 = setup_pair(papi, tmp_path)
    copies = []
    for round_ in range(2):
        put(B.path("f.jpg"), jpeg(40000 + round_))
        B.sync()
        mine = put(A.path("f.jpg"), jpeg(50000 + round_))
        d0 = today()
        _, docs = A.sync()
        cf = [d for d in docs if d["action"] == "conflict"]
        assert len(cf) == 1 and cf[0].get("kind") == "edit/edit", docs
        copies.append((cf[0].get("copy"), mine, {d0, today()}))
        B.sync()
    (first, sha1, dates1), (second, sha2, dates2) = copies
    assert first in conflict_names("f.jpg", dates1), first
    stem = "f (conflict %s " % host()
    assert second in {"%s%s 2).jpg" % (stem, d) for d in dates2}, second
    assert files(A.dir)[first] == sha1 and files(A.dir)[second] == sha2
    assert files(A.dir) == files(B.dir)


# ---- 3. the deletion guard ----

def test_max_delete_guard(papi, tmp_path, two_way):
    user = user_id("guard")
    A = Dev(papi, tmp_path, user, "A")
    A.dir.mkdir(parents=True)
    for i in range(40):
        put(A.path("g%02d.jpg" % i), jpeg(4096 + i))
    _, docs = A.sync()
    assert docs[-1]["uploaded"] == 40, docs[-1]
    assert len(active(A.px)) == 40

    # 10 of 40 deleted: over the default limit (max(5, 4) = 5): nothing changes
    gone = ["g%02d.jpg" % i for i in range(10)]
    for n in gone:
        os.remove(A.path(n))
    before = files(A.dir)
    p, docs = A.sync(ok=False)
    assert p.returncode == 1, (p.returncode, p.stderr[-2000:])
    assert "--max-delete" in p.stderr, p.stderr[-2000:]
    assert len(active(A.px)) == 40 and not trash(A.px)
    assert files(A.dir) == before  # nothing downloaded back either
    assert not any(d.get("action") in ("remote-deleted", "uploaded") for d in docs), docs

    p, docs = A.sync("--max-delete", "10")
    assert sorted(im["name"] for im in trash(A.px)) == gone
    assert len(active(A.px)) == 30 and docs[-1]["remote_deleted"] == 10, docs[-1]
    assert sorted(files(A.dir)) == sorted(im["name"] for im in active(A.px))

    # the limit's edge: 5 of 30 passes with the default, 6 of 25 does not
    for i in range(10, 15):
        os.remove(A.path("g%02d.jpg" % i))
    A.sync()
    assert len(trash(A.px)) == 15 and len(active(A.px)) == 25
    for i in range(15, 21):
        os.remove(A.path("g%02d.jpg" % i))
    p, _ = A.sync(ok=False)
    assert p.returncode == 1 and "--max-delete" in p.stderr, (p.returncode, p.stderr[-2000:])
    assert len(trash(A.px)) == 15 and len(active(A.px)) == 25

    # emptied (every file gone, .pixplane kept): refused whatever --max-delete says
    for n in list(files(A.dir)):
        os.remove(A.path(n))
    assert os.path.isdir(A.dir / META)
    for flags in ((), ("--max-delete", "1000")):
        p, docs = A.sync(*flags, ok=False)
        assert p.returncode == 1, (flags, p.returncode, p.stderr[-2000:])
        assert len(active(A.px)) == 25 and len(trash(A.px)) == 15, flags
        assert files(A.dir) == {}, flags
    p, docs = A.sync("--force")
    assert not active(A.px) and len(trash(A.px)) == 40
    assert docs[-1]["remote_deleted"] == 25, docs[-1]


def test_emptied_small_folder_is_refused(papi, tmp_path, two_way):
    A = Dev(papi, tmp_path, user_id("empt"), "A")
    A.dir.mkdir(parents=True)
    for i in range(3):
        put(A.path("s%d.jpg" % i), jpeg(5000 + i))
    A.sync()
    assert len(active(A.px)) == 3
    for i in range(3):
        os.remove(A.path("s%d.jpg" % i))
    for flags in ((), ("--max-delete", "100")):
        p, _ = A.sync(*flags, ok=False)
        assert p.returncode == 1, (flags, p.returncode, p.stderr[-2000:])
        assert p.stderr.strip(), "a refusal says why"
        assert len(active(A.px)) == 3 and not trash(A.px), flags
    A.sync("--force")
    assert not active(A.px) and len(trash(A.px)) == 3


def test_missing_or_replaced_folder_downloads_and_deletes_nothing(papi, tmp_path, two_way):
    A = Dev(papi, tmp_path, user_id("miss"), "A")
    A.dir.mkdir(parents=True)
    want = {}
    for i in range(6):
        want["m%d.jpg" % i] = put(A.path("m%d.jpg" % i), jpeg(6000 + i))
    A.sync()
    ids = sorted(im["image_id"] for im in active(A.px))
    assert len(ids) == 6

    # a brand-new path (another device's first sync)
    fresh = Dev(papi, tmp_path, A.px.user, "fresh")
    assert not fresh.dir.exists()
    _, docs = fresh.sync()
    assert files(fresh.dir) == want
    assert sorted(d["action"] for d in changes(docs)) == ["added"] * 6, docs

    # the synced folder replaced by an empty directory without .pixplane (a mount point)
    shutil.rmtree(A.dir)
    A.dir.mkdir()
    _, docs = A.sync()
    assert files(A.dir) == want, docs
    assert sorted(im["image_id"] for im in active(A.px)) == ids and not trash(A.px)

    # the synced folder gone altogether: created again, a first sync
    shutil.rmtree(A.dir)
    _, docs = A.sync()
    assert files(A.dir) == want, docs
    assert sorted(im["image_id"] for im in active(A.px)) == ids and not trash(A.px)
    for d in (A, fresh):
        assert not changes(d.sync()[1])


# ---- 4. SIGKILL then a rerun ----

def kill_at_random(dev, rng, times, ctx, check):
    """Runs the sync `times` times, each SIGKILLed 0.2-2 s in (if still running); check()
    after each kill. Returns how many were really killed."""
    killed = 0
    for _ in range(times):
        proc = dev.spawn("--json")
        delay = rng.uniform(0.2, 2.0)
        try:
            proc.wait(timeout=delay)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
            killed += 1
        out, err = proc.communicate(timeout=30)
        assert "Sanitizer" not in err and "runtime error:" not in err, err[-4000:]
        ctx.append("killed after %.2fs: rc %s, %d lines" % (delay, proc.returncode,
                                                            len(out.splitlines())))
        check()
    return killed


def test_sigkill_during_uploads_then_rerun(papi, door, tmp_path, two_way):
    rng = random.Random()
    A = Dev(papi, tmp_path, user_id("kup"), "A")
    A.dir.mkdir(parents=True)
    want = {}
    for i in range(30):
        want["u%02d.jpg" % i] = put(A.path("u%02d.jpg" % i), jpeg(rng.randint(MIB, 3 * MIB)))
    ctx = []

    def check():
        assert files(A.dir) == want, ctx  # the files themselves untouched, nothing added
        imgs = active(A.px)
        names = [im["name"] for im in imgs]
        assert len(names) == len(set(names)), (ctx, "two images of one file", sorted(names))

    door.rate = 4 * MIB
    try:
        killed = kill_at_random(A, rng, 4, ctx, check)
    finally:
        door.rate = None
    assert killed >= 1, ctx
    _, docs = A.sync()
    imgs = active(A.px)
    assert name_sha(imgs) == sorted(want.items()), ctx
    assert len(imgs) == 30, ctx
    assert entries(A.dir) == sorted(want) and not tmp_leftovers(A.dir), (ctx, tmp_leftovers(A.dir))
    _, docs = A.sync()
    assert not changes(docs), (ctx, docs)
    B = Dev(papi, tmp_path, A.px.user, "B")
    B.sync()
    assert files(B.dir) == want
    print(ctx, "trash after the kills: %d" % len(trash(A.px)))


def test_sigkill_during_downloads_then_rerun(papi, door, tmp_path, two_way):
    rng = random.Random()
    A = Dev(papi, tmp_path, user_id("kdl"), "A")
    A.dir.mkdir(parents=True)
    for i in range(8):
        put(A.path("old%d.jpg" % i), jpeg(20000 + i))
    A.sync()
    mine = {im["name"]: im["image_id"] for im in active(A.px)}
    new = {}
    for i in range(15):
        data = jpeg(rng.randint(MIB, 3 * MIB))
        new[api_upload(A.px, data, "new%02d.jpg" % i)] = sha(data)
    for i in range(2):
        api_call(A.px, "PATCH", "/images/%s" % mine["old%d.jpg" % i], {"name": "moved%d.jpg" % i})
    deleted = sorted([mine["old2.jpg"], mine["old3.jpg"]])
    for iid in deleted:
        api_call(A.px, "DELETE", "/images/%s" % iid)
    assert not wait_all_active(A.px)
    live = active(A.px)
    want = expected_local(live)
    before = files(A.dir)
    ctx = []

    def check():
        # under a final name only a whole file: the server's version or the folder's old one
        for n, h in files(A.dir).items():
            assert want.get(n) == h or before.get(n) == h, (ctx, n, "partial or unknown")
        assert len(active(A.px)) == len(live), (ctx, "the sync made images")

    door.rate = 4 * MIB
    try:
        killed = kill_at_random(A, rng, 4, ctx, check)
    finally:
        door.rate = None
    assert killed >= 1, ctx
    _, docs = A.sync()
    assert files(A.dir) == want, (ctx, sorted(set(files(A.dir).items()) ^ set(want.items())),
                                  changes(docs))
    assert sorted(im["image_id"] for im in active(A.px)) == sorted(im["image_id"] for im in live)
    assert sorted(im["image_id"] for im in trash(A.px)) == deleted, ctx
    assert entries(A.dir) == sorted(want) and not tmp_leftovers(A.dir), (ctx, tmp_leftovers(A.dir))
    _, docs = A.sync()
    assert not changes(docs), (ctx, docs)


def test_large_uploads_verified_in_the_background(papi, tmp_path, two_way):
    """Files at or above the API's background-verification threshold (8 MiB) are 'verifying'
    right after their upload: the next passes neither upload them again nor mirror them to
    another device before they are active."""
    A = Dev(papi, tmp_path, user_id("big"), "A")
    B = Dev(papi, tmp_path, A.px.user, "B")
    A.dir.mkdir(parents=True)
    want = {"big%d.jpg" % i: put(A.path("big%d.jpg" % i), jpeg(9 * MIB + i * 777))
            for i in range(3)}
    _, docs = A.sync()
    assert docs[-1]["uploaded"] == 3, docs
    _, docs = A.sync()  # while (some may be) verifying
    assert not changes(docs), docs
    _, docs = B.sync()
    got = files(B.dir)
    assert all(want[n] == h for n, h in got.items()), got  # whole files only, if any
    assert not wait_all_active(A.px), "still verifying after 60 s"
    B.sync()
    assert files(B.dir) == want
    _, docs = A.sync()
    assert not changes(docs), docs
    assert name_sha(active(A.px)) == sorted(want.items()) and not trash(A.px)


# ---- 5. ignored names, --exclude, a subdirectory, a file being written ----

IGNORED = [".hidden.jpg", "b.jpg~", "c.jpg.swp", "d.swx", "e.tmp", "f.jpg.part",
           "g.jpg.crdownload", "~$h.jpg", ".#i.jpg", "#j.jpg#"]


def test_ignored_and_excluded_names(papi, tmp_path, two_way):
    A = Dev(papi, tmp_path, user_id("excl"), "A")
    A.dir.mkdir(parents=True)
    keep = put(A.path("kept.jpg"), jpeg(7000))
    for i, n in enumerate(IGNORED + ["raw.raw", "shot.RAW.raw", "draft-1.jpg"]):
        put(A.path(n), jpeg(3000 + i))
    (A.dir / "sub").mkdir()
    put(A.dir / "sub" / "deep.jpg", jpeg(9000))
    local = files(A.dir)
    _, docs = A.sync("--exclude", "*.raw", "--exclude", "draft-*")
    assert name_sha(active(A.px)) == [("kept.jpg", keep)], docs
    assert [d["action"] for d in changes(docs)] == ["uploaded"], docs
    assert files(A.dir) == local and os.path.isfile(A.dir / "sub" / "deep.jpg")
    _, docs = A.sync("--exclude", "*.raw", "--exclude", "draft-*")
    assert not changes(docs), docs
    # a second device sees only kept.jpg
    B = Dev(papi, tmp_path, A.px.user, "B")
    B.sync()
    assert files(B.dir) == {"kept.jpg": keep}
    # removing an ignored file is no deletion on the server
    os.remove(A.path("c.jpg.swp"))
    shutil.rmtree(A.dir / "sub")
    _, docs = A.sync("--exclude", "*.raw", "--exclude", "draft-*")
    assert not changes(docs) and name_sha(active(A.px)) == [("kept.jpg", keep)], docs


def test_growing_file_is_not_uploaded_half_written(papi, tmp_path, two_way):
    A = Dev(papi, tmp_path, user_id("grow"), "A")
    A.dir.mkdir(parents=True)
    path = A.path("grow.jpg")
    put(path, jpeg(256 * 1024))
    stop = threading.Event()

    def writer():
        end = time.monotonic() + 3.0
        with open(path, "ab") as f:
            while time.monotonic() < end and not stop.is_set():
                f.write(os.urandom(32 * 1024))
                f.flush()
                time.sleep(0.004)

    t = threading.Thread(target=writer, daemon=True)
    t.start()
    seen, passes = [], 0
    try:
        deadline = time.monotonic() + 20
        while t.is_alive() and passes < 300 and time.monotonic() < deadline:
            _, docs = A.sync()
            seen += changes(docs)
            passes += 1
            time.sleep(0.02)
    finally:
        stop.set()
        t.join(10)
    assert not t.is_alive()
    with open(path, "rb") as f:
        final = f.read()
    _, docs = A.sync()  # one pass once the writer stopped: the final file is up
    assert not wait_all_active(A.px), "still verifying"
    assert name_sha(active(A.px)) == [("grow.jpg", sha(final))], (len(final), seen[-5:], docs)
    _, docs = A.sync()
    assert not changes(docs), docs
    # whatever went up while it grew was a whole prefix of it (never a torn read)
    for im in trash(A.px):
        assert im["sha256"] == sha(final[:im["size"]]), ("torn upload", im)
    assert not server_images(A.px, "failed"), "an upload failed verification"
    print("%d passes while writing (%d bytes): %s" % (passes, len(final), collections.Counter(
        (d["action"], d.get("reason")) for d in seen)))


# ---- 6. --watch --two-way ----

def test_watch_two_way(papi, tmp_path, two_way):
    A = Dev(papi, tmp_path, user_id("watch"), "A")
    proc = A.spawn("--watch", "--json")
    try:
        wait_for(lambda: (A.dir / META).is_dir() and proc.poll() is None, 20, "the first pass")
        time.sleep(1)
        assert proc.poll() is None
        t0 = time.monotonic()
        h = put(A.path("local.jpg"), jpeg(50000))
        wait_for(lambda: name_sha(active(A.px)) == [("local.jpg", h)], 15, "the upload")
        assert time.monotonic() - t0 < 10.5
        data = jpeg(60000)
        t0 = time.monotonic()
        api_upload(A.px, data, "remote.jpg")
        wait_for(lambda: files(A.dir).get("remote.jpg") == sha(data), 15, "the download")
        assert time.monotonic() - t0 < 10.5
        time.sleep(2)  # what came down does not go up again
        assert sorted(im["name"] for im in active(A.px)) == ["local.jpg", "remote.jpg"]
        os.remove(A.path("local.jpg"))
        wait_for(lambda: [im["name"] for im in trash(A.px)] == ["local.jpg"], 15, "the delete")
        assert files(A.dir) == {"remote.jpg": sha(data)}
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
        try:
            out, err = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
            raise AssertionError("sync --watch did not stop on SIGINT")
    assert proc.returncode == 0, (proc.returncode, err[-2000:])
    assert "Sanitizer" not in err and "runtime error:" not in err, err[-4000:]
    actions = [d["action"] for d in parse_lines(out, "watch")]
    assert "uploaded" in actions and "added" in actions and "remote-deleted" in actions, actions
    assert len(active(A.px)) == 1
