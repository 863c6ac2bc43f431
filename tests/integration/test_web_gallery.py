"""The gallery page in a real Chromium (issue 16, must-show 3 and the gallery half of 6).

Pictures uploaded with pixctl show as thumbnails once the stack's worker has made them, paged
by the list cursors (a page size of 6 makes the page follow them); with the page open, an
upload and a delete made by pixctl show without a reload, and so do those made while the
page's API was down (the stream resumes from its cursor); rename, share, download, delete
and restore work through the UI. The driver (tests/web/gallery.mjs) reports what the page
showed; everything is then checked again through the API. Screenshots go to
tests/artifacts/web/gallery*.png (the grid, an upload arriving, the viewer, the trash, a phone)."""
import concurrent.futures as cf
import hashlib
import json
import os
import random
import shutil
import subprocess
import time

import pytest

import conftest
from conftest import BUILD, ROOT, ApiProcess, Client, user_id

PIXCTL = os.path.join(BUILD, "pixctl")
DRIVER = os.path.join(ROOT, "tests", "web", "gallery.mjs")
WEB_DIST = os.path.join(ROOT, "web", "dist")
ARTIFACTS = os.path.join(ROOT, "tests", "artifacts", "web")
CHROMIUM = os.environ.get("PIXPLANE_CHROMIUM", "/usr/bin/chromium")
PAGE_SIZE = 6

# Flat landscapes (a sky, a sun, three hills): a palette each, new bytes every run.
PALETTES = [
    ("#ffb88c", "#de6262", "#6a3093", "#3a1c71", "#1f0f3f"),
    ("#a1c4fd", "#c2e9fb", "#4b8b6f", "#2f6b52", "#1b4332"),
    ("#f6d365", "#fda085", "#c0563b", "#8a3a2a", "#4a1f17"),
    ("#89f7fe", "#66a6ff", "#3f6fb5", "#2b4c80", "#18294a"),
    ("#fbc2eb", "#a6c1ee", "#7a6fb0", "#564c8a", "#2f2857"),
    ("#ffecd2", "#fcb69f", "#e07a5f", "#81545b", "#3d405b"),
    ("#d4fc79", "#96e6a1", "#3d9970", "#2a6f50", "#17402e"),
    ("#30cfd0", "#330867", "#5b2a86", "#3b1c5a", "#1c0c2e"),
]
NAMES = ["sunset-pier", "valley-walk", "red-canyon", "harbour-blue", "lavender-field", "dunes",
         "meadow", "night-ridge", "IMG_2041", "pines", "DSC01822", "coastline", "twilight",
         "IMG_2057", "first-green", "IMG_2113"]  # in palette order
SIZES = [(1200, 800), (900, 1200), (1280, 720), (1000, 1000)]


def landscape_cmd(path, w, h, palette, rnd):
    def hill(base, amp):
        pts = ["%d,%d" % (w * i // 8, base + rnd.uniform(-amp, amp)) for i in range(9)]
        return "polygon 0,%d %s %d,%d" % (h, " ".join(pts), w, h)

    p = palette
    sx, sy, sr = rnd.randint(w // 5, 4 * w // 5), rnd.randint(h // 6, h * 2 // 5), \
        rnd.randint(h // 14, h // 8)
    cmd = ["convert", "-size", "%dx%d" % (w, h), "gradient:%s-%s" % (p[0], p[1]),
           "-fill", "rgba(255,255,240,0.92)", "-draw", "circle %d,%d %d,%d" % (sx, sy, sx + sr, sy)]
    for j, (frac, amp) in enumerate(((0.55, 0.08), (0.68, 0.06), (0.82, 0.04))):
        cmd += ["-fill", p[2 + j], "-draw", hill(h * frac, h * amp)]
    return cmd + ["-quality", "88", "-set", "comment", os.urandom(8).hex(), path]


def make_pictures(d, names):
    rnd = random.Random()
    paths, cmds = [], []
    for i, n in enumerate(names):
        w, h = SIZES[i % len(SIZES)]
        paths.append(os.path.join(d, n + ".jpg"))
        cmds.append(landscape_cmd(paths[-1], w, h, PALETTES[i % len(PALETTES)], rnd))
    with cf.ThreadPoolExecutor(4) as ex:
        list(ex.map(lambda c: subprocess.run(c, check=True, timeout=60), cmds))
    return paths


def pixctl_env(api, tok, home):
    e = dict(os.environ)
    e.update(HOME=str(home), PIXPLANE_API_URL=api.url, PIXPLANE_TOKEN=tok,
             PIXPLANE_STATE_DIR=str(home / "state"), PIXCTL_QUIET="true")
    e.pop("PIXPLANE_CONFIG", None)
    return e


def all_pages(c, path):
    out, cursor = [], None
    while True:
        st, doc = c.call("GET", path + ("&" if "?" in path else "?") + "limit=200" +
                         ("&cursor=" + cursor if cursor else ""))
        assert st == 200, doc
        out += doc["images"]
        cursor = doc["next_cursor"]
        if not cursor:
            return out


def wait_variants(c, ids, timeout=60):
    """Until every image has all its variants (the stack's worker makes them)."""
    deadline = time.monotonic() + timeout
    todo = set(ids)
    while todo and time.monotonic() < deadline:
        for i in list(todo):
            st, doc = c.call("GET", "/images/%s/metadata" % i)
            if st == 200 and all(v["status"] == "ready" for v in doc["variants"]):
                todo.discard(i)
        time.sleep(0.3)
    assert not todo, "no variants within %ds for %s (is the stack's worker running?)" % (
        timeout, sorted(todo))


class Served:
    """The API serving the pages (api), and another server of the same deployment (other)
    for a device's changes while the first is down."""

    def __init__(self):
        self.overrides = {"PIXPLANE_WEB_DIR": WEB_DIST, "PIXPLANE_PAGE_SIZE": PAGE_SIZE}
        self.api = ApiProcess(self.overrides)
        self.other = ApiProcess()

    def stop_api(self):
        self.api.stop()

    def start_api_again(self):
        """A new process on the same ports: the open page reconnects to the same origin."""
        ports = iter([self.api.port, self.api.ops_port])
        real = conftest.free_port
        conftest.free_port = lambda: next(ports)
        try:
            self.api = ApiProcess(self.overrides)
        finally:
            conftest.free_port = real

    def stop(self):
        for p in (self.api, self.other):
            if p.proc.poll() is None or not p.log.closed:
                p.stop()


@pytest.fixture(scope="module")
def served(stack):
    for what, ok in (("chromium", os.path.exists(CHROMIUM)), ("node", shutil.which("node")),
                     ("pixctl", os.path.exists(PIXCTL)), ("convert", shutil.which("convert"))):
        if not ok:
            pytest.skip("%s missing" % what)
    assert os.path.exists(os.path.join(WEB_DIST, "gallery.html")), "pages not built: make web"
    s = Served()
    yield s
    s.stop()


def pixctl_json(env, *args):
    p = subprocess.run([PIXCTL, "--json"] + list(args), env=env, capture_output=True, text=True,
                       timeout=60)
    assert p.returncode == 0, (args, p.stderr[-2000:])
    return [json.loads(line) for line in p.stdout.splitlines() if line.strip()]


def test_gallery_thumbnails_live_changes_and_actions(served, tmp_path):
    api = served.api
    me, friend = user_id("gal"), user_id("friend")
    tok = api.token(me)
    c = Client(api.url, tok)
    home = tmp_path / "home"
    (home / "state").mkdir(parents=True)
    env = pixctl_env(api, tok, home)

    pics = make_pictures(str(tmp_path), NAMES + ["just-arrived", "while-away"])
    away_pic, live_pic = pics.pop(), pics.pop()
    ids = [d["image_id"] for d in pixctl_json(env, "upload", *pics)]
    assert len(ids) == len(NAMES)
    wait_variants(c, ids)
    listed = [i["image_id"] for i in all_pages(c, "/images")]
    assert sorted(listed) == sorted(ids)
    # pixctl deletes one with the page open, another while the page's API is down; the UI
    # renames, shares, deletes and restores a third
    gone, gone_away, renamed = listed[7], listed[10], listed[1]
    new_name = "Abendlicht am See — Ü.jpg"

    os.makedirs(ARTIFACTS, exist_ok=True)
    t0 = time.monotonic()
    drv = subprocess.Popen(
        ["node", DRIVER, "--api", api.url, "--token", tok, "--pixctl", PIXCTL, "--out", ARTIFACTS,
         "--expect", str(len(ids)), "--upload", live_pic, "--rm", gone, "--rename", renamed,
         "--new-name", new_name, "--share-with", friend, "--restart"],
        env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = drv.stdout.readline()  # the driver's own deadline bounds every wait
        assert json.loads(line or "{}").get("pause") == "restart", line
        # the page's API goes away; a device uploads and deletes through another server
        served.stop_api()
        other = pixctl_env(served.other, tok, home)
        away = pixctl_json(other, "upload", away_pic)[0]["image_id"]
        pixctl_json(other, "rm", gone_away)
        served.start_api_again()
        drv.stdin.write(json.dumps({"added": away, "removed": gone_away}) + "\n")
        drv.stdin.flush()
        rest, err = drv.communicate(timeout=100)
    finally:
        if drv.poll() is None:
            drv.kill()
            drv.wait()
    took = time.monotonic() - t0
    assert drv.returncode == 0, err[-3000:]
    r = json.loads(rest.strip().splitlines()[-1])
    reqs = r.pop("requests")
    print("gallery driver: %.1fs, steps (ms) %s, live states %s" % (
        r["seconds"], {k: v["at_ms"] for k, v in r["steps"].items()}, r["live_states"]))
    assert r["ok"], json.dumps(r, indent=1)[:4000]
    assert r["problems"] == [], r["problems"]  # no script error, no CSP refusal
    assert took < 90, took

    # 1. every image in the API's order, newest first, each thumbnail drawn
    assert [t["id"] for t in r["tiles"]] == listed
    assert all(t["thumb"] == "ready" and t["w"] > 0 for t in r["tiles"]), r["tiles"]
    assert r["count_text"] == "%d photos" % len(ids)
    # ... over the cursors, at the API's page size
    pages = [q for q in reqs if q["method"] == "GET" and "/images?cursor=" in q["url"]]
    assert len(pages) >= len(ids) // PAGE_SIZE, [q["url"] for q in reqs]
    # ... each thumbnail URL asked for once: re-rendered views (trash, back to photos) reuse it
    for i in ids:
        got = [q["status"] for q in reqs if "/images/%s/variants/thumbnail_small" % i in q["url"]]
        assert got == [200], (i, got, i == renamed, i == gone)

    # 2. with the page open, pixctl's upload appeared at the top and its thumbnail loaded;
    # its delete vanished
    up = r["uploaded"]
    with open(live_pic, "rb") as f:
        assert up["sha256"] == hashlib.sha256(f.read()).hexdigest()
    assert up["first"] == up["id"]
    st, meta = c.call("GET", "/images/%s/metadata" % up["id"])
    assert st == 200 and meta["sha256"] == up["sha256"] and meta["status"] == "active"
    assert c.call("GET", "/images/%s" % gone)[0] == 404
    trash = [i["image_id"] for i in all_pages(c, "/images?status=deleted")]
    assert gone in trash

    # ... and while the page's API was down: the page reconnected from its cursor
    assert r["restart"] == {"added": away, "removed": gone_away}
    assert "reconnecting" in r["live_states"] and r["live_state"] == "live", r["live_states"]
    assert any("/sync/stream?ticket=" in q["url"] and "&since=" in q["url"] for q in reqs)
    assert c.call("GET", "/images/%s/metadata" % away)[1]["status"] == "active"
    assert c.call("GET", "/images/%s" % gone_away)[0] == 404

    # 3. rename, share, download, delete and restore through the UI
    st, meta = c.call("GET", "/images/%s/metadata" % renamed)
    assert st == 200, meta
    assert meta["name"] == new_name == r["back"]
    assert meta["status"] == "active" and renamed not in trash  # deleted, then restored
    assert meta["visibility"] == "shared"
    assert r["viewer"]["sha256"] == meta["sha256"] and r["viewer"]["preview_w"] > 0
    assert renamed in r["trash"] and gone in r["trash"]
    assert r["download"] == {"name": new_name, "sha256": meta["sha256"]}
    other = Client(api.url, api.token(friend))
    assert other.call("GET", "/images/%s" % renamed)[0] == 200
    assert renamed in [i["image_id"] for i in all_pages(other, "/shared")]

    # the stream: single-use tickets, and no token in any URL sent (the fragment is not sent)
    assert any(q["method"] == "POST" and q["url"].endswith("/sync/stream-ticket") and
               q["status"] == 201 for q in reqs)
    assert any("/sync/stream?ticket=" in q["url"] for q in reqs)
    sent = [q["url"].split("#")[0] for q in reqs]
    assert not [u for u in sent if "token=" in u or tok in u]
    assert "token" not in r["url_after_load"]
    # no API call failed (202 "being made" is an answer)
    bad = [q for q in reqs if q["url"].startswith(api.url) and isinstance(q["status"], int) and
           q["status"] >= 400]
    assert not bad, bad

    for name in ("gallery.png", "gallery-live.png", "gallery-viewer.png", "gallery-trash.png",
                 "gallery-mobile.png"):
        assert os.path.getsize(os.path.join(ARTIFACTS, name)) > 20000, name
