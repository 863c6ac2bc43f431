"""The uploader page (/app/, issue 16) in headless Chromium against the real stack: files
through the page's file input (multipart, one PUT, and a duplicate proven without a byte
sent), a resume after a page reload that sends only the missing parts, and CORS from a page
on another origin. tests/web/uploader.mjs drives the browser and reports what the page
showed and what it sent; the checks here go around the page: the API, PostgreSQL, boto3."""
import hashlib
import json
import os
import shutil
import subprocess

import pytest
import requests

from conftest import BUILD, MIB, ROOT, ApiProcess, Client, sql, user_id

BUCKET = os.environ.get("S3_BUCKET", "pixplane")
DIST = os.path.join(ROOT, "web", "dist")
DRIVER = os.path.join(ROOT, "tests", "web", "uploader.mjs")
ARTIFACTS = os.path.join(ROOT, "tests", "artifacts", "web")
CHROMIUM = os.environ.get("PIXPLANE_CHROMIUM", "/usr/bin/chromium")


@pytest.fixture(scope="module")
def pages(stack):
    for need in (os.path.join(ROOT, "web", "node_modules"), CHROMIUM, shutil.which("vips")):
        if not need or not os.path.exists(need):
            pytest.skip("browser tests need web/node_modules, Chromium and vips (%s)" % need)
    subprocess.run(["make", "-s", "web"], cwd=ROOT, check=True, timeout=120)
    return DIST


@pytest.fixture(scope="module")
def app(pages):
    """An API serving the pages at /app/."""
    p = ApiProcess({"PIXPLANE_WEB_DIR": pages})
    yield p
    p.stop()


# ---- test files: real images (the worker makes their thumbnails), new content every run ----

def vips(*args):
    subprocess.run(["vips", *[str(a) for a in args]], check=True, timeout=120)


def make_image(path, w, h, noise=0.5, colors=(0.085, 20, 0.07, 40, -0.06, 230)):
    """A colour gradient with random noise on top (noise 1: noise only), saved as JPEG (Q95) or
    PNG by its name. The noise makes the size: about 1.9 bytes a pixel at 0.5, 2.4 at 1."""
    tmp = str(path) + ".d"
    os.makedirs(tmp, exist_ok=True)
    with open(os.path.join(tmp, "n.raw"), "wb") as f:
        f.write(os.urandom(w * h * 3))
    t = lambda n: os.path.join(tmp, n + ".v")  # noqa: E731
    vips("rawload", os.path.join(tmp, "n.raw"), t("n"), w, h, 3)
    vips("xyz", t("xy"), w, h)
    vips("extract_band", t("xy"), t("x"), 0)
    vips("extract_band", t("xy"), t("y"), 1)
    r, r0, g, g0, b, b0 = colors
    k = 0 if noise >= 1 else 1
    vips("linear", t("x"), t("r"), "--", r * 3000 / w * k, r0 * k)
    vips("linear", t("y"), t("g"), "--", g * 2250 / h * k, g0 * k)
    vips("linear", t("x"), t("b"), "--", b * 3000 / w * k, b0 * k)
    vips("bandjoin", "%s %s %s" % (t("r"), t("g"), t("b")), t("grad"))
    vips("linear", t("n"), t("ns"), "--", noise, -128 * noise * k)
    vips("add", t("grad"), t("ns"), t("sum"))
    vips("cast", t("sum"), t("out"), "uchar")
    if str(path).endswith(".png"):
        vips("pngsave", t("out"), path)
    else:
        vips("jpegsave", t("out"), path, "--Q", 95)
    shutil.rmtree(tmp)
    return str(path)


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for b in iter(lambda: f.read(MIB), b""):
            h.update(b)
    return h.hexdigest()


# ---- the browser ----

def drive(mode, app, token, timeout=75, **opts):
    cmd = ["node", DRIVER, mode, "--page", app.url + "/app/", "--token", token,
           "--deadline", str(timeout - 5)]
    for k, v in opts.items():
        cmd += ["--" + k.replace("_", "-"), str(v)]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    lines = [x for x in p.stdout.splitlines() if x.startswith("{")]
    assert lines, (p.returncode, p.stdout[-2000:], p.stderr[-3000:])
    out = json.loads(lines[-1])
    assert p.returncode == 0 and not out.get("error"), json.dumps(out, indent=1)[:6000]
    # the page logs nothing but the refused proofs of new content (403 proof_rejected)
    odd = [c for c in out["console"] if "status of 403" not in c]
    assert not odd, odd
    return out


# ---- checks around the page ----

def check_stored(client, s3, image_id, path):
    """The image has the file's bytes: its metadata, a presigned download, and the blob in
    storage read with boto3."""
    want = sha256_file(path)
    st, m = client.call("GET", "/images/%s/metadata" % image_id)
    assert st == 200 and m["status"] == "active", m
    assert m["sha256"] == want and m["size"] == os.path.getsize(path), m
    st, doc = client.call("GET", "/images/%s" % image_id)
    assert st == 200, doc
    r = requests.get(doc["download_url"], timeout=60)
    assert r.status_code == 200 and hashlib.sha256(r.content).hexdigest() == want
    key = sql("SELECT b.storage_path FROM images i JOIN blobs b USING (content_hash)"
              " WHERE i.image_id = '%s'" % image_id)[0][0]
    h = hashlib.sha256()
    for b in s3.get_object(Bucket=BUCKET, Key=key)["Body"].iter_chunks(MIB):
        h.update(b)
    assert h.hexdigest() == want, key


def sessions_of(user):
    """{file_name: (session id, object key, chunk_count, deduplicated)} of the user's uploads."""
    rows = sql("SELECT file_name, upload_session_id, object_key, chunk_count, deduplicated"
               " FROM upload_sessions WHERE owner_id = '%s'" % user)
    return {r[0]: (r[1], r[2], int(r[3]), r[4] == "t") for r in rows}


def puts_of(puts, session):
    """The S3 PUTs of one session (its multipart object key, or its one-PUT staging key)."""
    sid, key, _, _ = session
    return [p for p in puts if p["key"].endswith("/" + key) or sid in p["key"]]


def pixctl_upload(api, token, path, home):
    env = dict(os.environ, HOME=str(home), PIXPLANE_API_URL=api.url, PIXPLANE_TOKEN=token,
               PIXPLANE_STATE_DIR=str(home / "state"))
    env.pop("PIXPLANE_CONFIG", None)
    p = subprocess.run([os.path.join(BUILD, "pixctl"), "upload", "--wait", "--json", path],
                       env=env, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr[-3000:]
    return json.loads(p.stdout.splitlines()[-1])


# ---- must-show 1 and 6 ----

def test_three_files_through_the_file_input(app, s3, tmp_path):
    """A 20 MiB JPEG (multipart), a small PNG (one PUT) and an 18 MiB file someone else stored
    before (proven, over 160 ranges: no PUT at all) go through the page's file input together;
    each becomes an image with the file's bytes. The screenshot is taken mid-upload (the
    network slowed meanwhile)."""
    photo = make_image(tmp_path / "harbour.jpg", 3900, 2925)
    small = make_image(tmp_path / "badge.png", 480, 360, noise=0.08,
                       colors=(0.02, 150, 0.09, 20, 0.05, 40))
    dup = make_image(tmp_path / "meadow.jpg", 3700, 2775, noise=0.5,
                     colors=(-0.03, 120, 0.04, 150, 0.01, 60))
    assert os.path.getsize(photo) > 19 * MIB
    assert os.path.getsize(dup) > 16 * MIB  # its proof is over ranges, not the whole file
    other = user_id("web-first")
    first = pixctl_upload(app, app.token(other), dup, tmp_path)
    assert first["state"] == "verified", first

    user = user_id("web")
    os.makedirs(ARTIFACTS, exist_ok=True)
    shot = os.path.join(ARTIFACTS, "uploader.png")
    out = drive("files", app, app.token(user), files=",".join([photo, small, dup]),
                screenshot=shot)
    assert out["ok"] and os.path.getsize(shot) > 20000

    shown = {r["name"]: r for r in out["results"]}
    assert set(shown) == {"harbour.jpg", "badge.png", "meadow.jpg"}
    assert all(r["status"] == "verified" for r in shown.values()), shown
    assert [n for n, r in shown.items() if r["deduplicated"]] == ["meadow.jpg"]
    for r in shown.values():
        assert r["link"].endswith("gallery.html#image=" + r["image_id"])
    linked = [r for r in out["results"] if r["image_id"] == out["linked"]["image_id"]]
    assert linked and out["linked"]["title"] == linked[0]["name"]  # the link opens its viewer

    sess = sessions_of(user)
    assert sess["harbour.jpg"][2] >= 3 and sess["badge.png"][2] == 1
    assert sess["meadow.jpg"][3] is True  # proven: the session says deduplicated
    parts = puts_of(out["puts"], sess["harbour.jpg"])
    assert sorted(p["part"] for p in parts) == list(range(1, sess["harbour.jpg"][2] + 1))
    one = puts_of(out["puts"], sess["badge.png"])
    assert [(p["part"], p["status"]) for p in one] == [(None, 200)]
    assert puts_of(out["puts"], sess["meadow.jpg"]) == []
    assert len(out["puts"]) == len(parts) + 1, out["puts"]  # nothing else was PUT
    assert all(p["status"] == 200 for p in out["puts"])

    client = Client(app.url, app.token(user))
    for name, path in (("harbour.jpg", photo), ("badge.png", small), ("meadow.jpg", dup)):
        check_stored(client, s3, shown[name]["image_id"], path)


# ---- must-show 2 ----

def test_resume_after_reload_sends_only_missing_parts(app, s3, tmp_path):
    """The page is reloaded while a 60 MiB file is on its way (on a network slowed to 16 MiB/s,
    once two part PUTs are done). The same file, added again, resumes its session: exactly the
    parts storage does not hold are PUT, and the image is byte-identical to the file.

    Parts sent twice can only be ones in flight at the reload: each part the old page finished
    is in storage at the resume, and the new page sends exactly the rest."""
    big = str(tmp_path / "dunes.jpg")  # the bytes only matter here: random, cheap to make
    with open(big, "wb") as f:
        f.write(os.urandom(60 * MIB))
    user = user_id("web-resume")
    out = drive("resume", app, app.token(user), file=big, parts_before=2)
    assert out["ok"], out

    n = out["chunk_count"]
    stored, done_before = set(out["stored_at_resume"]), set(out["before_done"])
    sent_before = done_before | set(out["before_other"])
    after = [p["part"] for p in out["after"]]
    assert n == 8 and len(done_before) >= 2
    assert done_before <= stored <= sent_before  # finished parts kept; nothing stored unsent
    assert len(stored) < n, "every part was done before the reload: nothing left to resume"
    assert sorted(after) == sorted(set(range(1, n + 1)) - stored), (after, stored)
    assert all(p["status"] == 200 for p in out["after"])
    assert out["session_after"] == out["session"] and out["unfinished_shown"] == 1
    resent = set(after) & sent_before
    assert resent <= sent_before - done_before  # only parts cut off by the reload
    assert out["results"][0]["status"] == "verified"
    check_stored(Client(app.url, app.token(user)), s3, out["results"][0]["image_id"], big)


# ---- must-show 4 ----

def test_cors_from_a_page_on_another_origin(app, s3, tmp_path):
    """The page served by one API process (app) talks to another API (api2) that lists the
    page's origin in PIXPLANE_CORS_ORIGINS: the browser's own CORS checks pass for every call,
    the part PUTs reach radosgw, and their ETag is readable (by Uppy and by a plain XHR)."""
    api2 = ApiProcess({"PIXPLANE_CORS_ORIGINS": app.url})
    try:
        # (a) the preflight a page at app.url sends, and one from elsewhere
        h = {"Origin": app.url, "Access-Control-Request-Method": "POST",
             "Access-Control-Request-Headers": "authorization,content-type,idempotency-key"}
        r = requests.options(api2.url + "/uploads", headers=h, timeout=10)
        assert r.status_code == 204
        assert r.headers["Access-Control-Allow-Origin"] == app.url
        assert r.headers["Access-Control-Allow-Methods"] == "POST"
        allowed = {x.strip().lower() for x in r.headers["Access-Control-Allow-Headers"].split(",")}
        assert {"authorization", "content-type", "idempotency-key"} <= allowed
        r = requests.options(api2.url + "/uploads", timeout=10,
                             headers=dict(h, Origin="http://127.0.0.1:1"))
        assert r.status_code == 204
        assert not [k for k in r.headers if k.lower().startswith("access-control-")]

        # (b) + (c): a two-part upload and a part PUT of the page's own
        photo = make_image(tmp_path / "lagoon.jpg", 2700, 2025)
        user = user_id("web-cors")
        out = drive("etag", app, api2.token(user), file=photo, api=api2.url)
        assert out["ok"] and out["results"][0]["status"] == "verified"
        assert len(out["uppy_parts"]) >= 2
        assert all(p["ETag"].startswith('"') and len(p["ETag"]) > 10 for p in out["uppy_parts"])
        assert out["xhr"]["status"] == 200 and out["xhr"]["etag"].startswith('"'), out["xhr"]
        assert out["api_origins"] == [api2.url], out["api_origins"]  # every API call crossed
        check_stored(Client(api2.url, api2.token(user)), s3, out["results"][0]["image_id"], photo)
    finally:
        api2.stop()
