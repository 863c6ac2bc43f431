# Capture metadata read by the worker (issue 18): real files of every accepted format made
# here with libvips and tagged with exiftool, uploaded through the real API, read by the real
# worker (own broker, own database, the stack's radosgw); the API's capture object must say
# exactly what `exiftool -json -n` reads from the original. Broken EXIF blocks fail their
# fields only; variants carry no EXIF; one reconciler pass backfills content stored before.
import json
import os
import shutil
import struct
import subprocess

import pytest

from conftest import BUILD, assert_sanitizer_clean
from test_worker import BUCKET, upload, wait_until, workers, ws  # noqa: F401 (fixtures)

REC_BIN = os.path.join(BUILD, "pixplane-reconciler")
FORMATS = {"jpeg": ".jpg", "heif": ".heic", "avif": ".avif", "png": ".png", "webp": ".webp",
           "tiff": ".tif"}
# Two tag sets per format: zone known, sub-seconds, south/west, below sea level, rotated;
# and zone unknown, north/east, above sea level, upright.
TAGS = {
    "a": ["-DateTimeOriginal=2021:07:04 12:34:56", "-SubSecTimeOriginal=123",
          "-OffsetTimeOriginal=+02:00", "-GPSLatitude=33.8568", "-GPSLatitudeRef=S",
          "-GPSLongitude=151.2153", "-GPSLongitudeRef=W", "-GPSAltitude#=12.5",
          "-GPSAltitudeRef#=1", "-Make=Canon", "-Model=EOS R5", "-LensModel=RF24-70mm F2.8 L",
          "-FNumber=2.8", "-ExposureTime=1/250", "-ISO=400", "-FocalLength=35",
          "-Orientation#=6"],
    "b": ["-DateTimeOriginal=2019:12:31 23:59:58", "-GPSLatitude=48.858222",
          "-GPSLatitudeRef=N", "-GPSLongitude=2.2945", "-GPSLongitudeRef=E",
          "-GPSAltitude#=35.5", "-GPSAltitudeRef#=0", "-Make=NIKON CORPORATION",
          "-Model=NIKON Z 6", "-LensModel=NIKKOR Z 50mm f/1.8 S", "-FNumber=1.8",
          "-ExposureTime=0.5", "-ISO=6400", "-FocalLength=50", "-Orientation#=1"],
}


def need(*tools):
    for t in tools:
        if not shutil.which(t):
            pytest.skip("%s not installed" % t)


def make_image(d, name, fmt):
    """A 320x200 photo-like picture (new content every run) in format fmt, no metadata."""
    base = os.path.join(d, name + "-base.png")
    subprocess.run(["convert", "-size", "320x200", "plasma:fractal", "-depth", "8", base],
                   check=True, timeout=60)
    out = os.path.join(d, name + FORMATS[fmt])
    args = ["vips", "heifsave", base, out, "--compression", "av1"] if fmt == "avif" else \
        ["vips", "copy", base, out]
    subprocess.run(args, check=True, timeout=60)
    return out


def exiftool(path, *args):
    out = subprocess.run(["exiftool", "-json", "-n", *args, path], check=True, timeout=60,
                         capture_output=True, text=True).stdout
    return json.loads(out)[0]


def expected(path, fmt):
    """The capture object the API must show the owner, from exiftool's reading."""
    x = exiftool(path)
    local = x["DateTimeOriginal"].replace(":", "-", 2).replace(" ", "T")
    if "SubSecTimeOriginal" in x:
        local += "." + str(x["SubSecTimeOriginal"])
    w, h = x["ImageWidth"], x["ImageHeight"]
    if x.get("Orientation", 1) >= 5:
        w, h = h, w
    return {"taken_at_local": local, "offset": x.get("OffsetTimeOriginal"),
            "time_zone_known": "OffsetTimeOriginal" in x, "width": w, "height": h,
            "orientation": x["Orientation"], "format": fmt, "make": x["Make"],
            "model": x["Model"], "lens": x["LensModel"], "f_number": x["FNumber"],
            "exposure_time": x["ExposureTime"], "iso": x["ISO"],
            "focal_length": x["FocalLength"],
            "gps": {"latitude": x["GPSLatitude"], "longitude": x["GPSLongitude"],
                    "altitude": x["GPSAltitude"]}}


def capture_done(cl, image_id, timeout=120):
    def done():
        st, doc = cl.call("GET", "/images/%s/metadata" % image_id)
        assert st == 200, (st, doc)
        return doc if doc["capture"]["status"] == "done" else None
    return wait_until(done, timeout, "capture of %s" % image_id)


def assert_capture(got, want):
    for k, v in want.items():
        if k == "gps":
            for g in ("latitude", "longitude", "altitude"):
                assert got["gps"][g] == pytest.approx(v[g], abs=1e-9), (k, g, got, want)
        elif isinstance(v, float):
            assert got[k] == pytest.approx(v, rel=1e-12), (k, got, want)
        else:
            assert got[k] == v, (k, got, want)
    assert got["errors"] == [], got


@pytest.fixture(scope="module")
def files(ws):
    need("vips", "exiftool", "convert")
    d = os.path.join(ws.top, "capture")
    os.makedirs(d, exist_ok=True)
    out = []
    for fmt in FORMATS:
        for tags in ("a", "b"):
            p = make_image(d, "%s-%s" % (fmt, tags), fmt)
            subprocess.run(["exiftool", "-q", "-overwrite_original", *TAGS[tags], p], check=True,
                           timeout=60)
            out.append((fmt, tags, p))
    return out


def test_formats_report_what_exiftool_reads(ws, workers, files):
    w = workers()
    cl = ws.client("cap")
    up = []
    for fmt, tags, p in files:
        with open(p, "rb") as f:
            image_id, _ = upload(cl, f.read(), os.path.basename(p))
        up.append((fmt, tags, p, image_id))
    for fmt, tags, p, image_id in up:
        doc = capture_done(cl, image_id)
        cap, want = doc["capture"], expected(p, fmt)
        assert_capture(cap, want)
        assert cap["time_source"] == "exif", cap
        assert (cap["offset"] is not None) == (tags == "a"), (fmt, cap)
    # the timeline key is the capture instant (the offset applied when known)
    a = [i for f, t, _, i in up if t == "a"]
    rows = ws.sql("SELECT DISTINCT taken_at AT TIME ZONE 'UTC' FROM images"
                  " WHERE image_id IN (%s)" % ",".join("'%s'" % i for i in a))
    assert rows == [["2021-07-04 10:34:56.123"]], rows
    assert int(ws.value("SELECT count(*) FROM change_log WHERE kind = 'capture'"
                        " AND image_id IN (%s)" % ",".join("'%s'" % u[3] for u in up))) == len(up)
    assert len(w.events("capture_stored")) >= len(up)


def app1_exif(jpeg):
    """(start, end, payload) of the JPEG's APP1 Exif segment."""
    i = 2
    while i + 4 <= len(jpeg):
        marker, ln = jpeg[i + 1], struct.unpack(">H", jpeg[i + 2:i + 4])[0]
        if marker == 0xE1 and jpeg[i + 4:i + 10] == b"Exif\0\0":
            return i, i + 2 + ln, jpeg[i + 4:i + 2 + ln]
        i += 2 + ln
    raise AssertionError("no Exif segment")


def with_exif(jpeg, payload):
    s, e, _ = app1_exif(jpeg)
    return jpeg[:s] + b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload + jpeg[e:]


def test_broken_exif_fails_its_fields_only(ws, workers, files):
    workers()
    cl = ws.client("capbad")
    jpeg = open([p for f, t, p in files if f == "jpeg" and t == "a"][0], "rb").read()
    _, _, block = app1_exif(jpeg)
    truncated = with_exif(jpeg, block[:len(block) // 3])
    garbage = with_exif(jpeg, b"Exif\0\0" + b"II*\0\x08\0\0\0" + os.urandom(700))
    for data in (truncated, garbage):
        image_id, _ = upload(cl, data, "broken.jpg")
        doc = capture_done(cl, image_id)
        cap = doc["capture"]
        assert doc["status"] == "active", doc
        assert cap["format"] == "jpeg" and cap["color_space"] == "srgb", cap
        assert {cap["width"], cap["height"]} == {320, 200}, cap
        assert "exif" in cap["errors"], cap
        assert cap["taken_at_local"] is None and cap["gps"] is None, cap
        assert cap["time_source"] == "upload", cap


def test_variants_carry_no_exif(ws, workers, files, s3):
    workers()
    cl = ws.client("capvar")
    ids = []
    for fmt, tags, p in files:
        if tags == "a":
            ids.append(upload(cl, open(p, "rb").read(), os.path.basename(p))[1])
    hs = ",".join("'%s'" % h for h in ids)
    wait_until(lambda: int(ws.value("SELECT count(*) FROM image_variants WHERE content_hash IN"
                                    " (%s) AND status = 'ready'" % hs)) == 3 * len(ids),
               180, "variants ready")
    keys = [r[0] for r in ws.sql("SELECT storage_path FROM image_variants"
                                 " WHERE content_hash IN (%s)" % hs)]
    d = os.path.join(ws.top, "variants")
    os.makedirs(d, exist_ok=True)
    for k in keys:
        p = os.path.join(d, k.replace("/", "_"))
        with open(p, "wb") as f:
            f.write(s3.get_object(Bucket=BUCKET, Key=k)["Body"].read())
        x = exiftool(p, "-EXIF:all", "-GPS:all", "-XMP:all")
        assert set(x) == {"SourceFile"}, (k, x)


def reconcile(ws, *args):
    p = subprocess.run([REC_BIN, "--once", "--report", "json", "--only", "capture",
                        "--capture-grace", "0s", *args],
                       env=dict(os.environ, DATABASE_URL=ws.dburl), capture_output=True,
                       text=True, timeout=120)
    assert p.returncode in (0, 1), (p.returncode, p.stderr[-3000:])
    assert_sanitizer_clean(p.stderr)
    return json.loads(p.stdout)["sweeps"]["capture"], p


def test_backfill_by_one_reconciler_pass(ws, workers, files):
    workers()
    cl = ws.client("capold")
    ids = [upload(cl, open(p, "rb").read(), os.path.basename(p))[0] for f, t, p in files
           if t == "b"]
    for i in ids:
        capture_done(cl, i)
    wait_until(lambda: ws.value("SELECT count(*) FROM outbox WHERE sent_at IS NULL") == "0",
               60, "outbox sent")
    idl = ",".join("'%s'" % i for i in ids)
    want = {r[0]: r[1] for r in ws.sql("SELECT image_id, taken_at FROM images"
                                       " WHERE image_id IN (%s)" % idl)}
    # as before this change: no capture rows, the timeline key is the upload time
    ws.sql("DELETE FROM blob_capture WHERE content_hash IN (SELECT content_hash FROM images"
           " WHERE image_id IN (%s))" % idl)
    ws.sql("UPDATE images SET taken_at = created_at WHERE image_id IN (%s)" % idl)
    other = int(ws.value("SELECT count(DISTINCT b.content_hash) FROM blobs b JOIN images i"
                         " ON i.content_hash = b.content_hash AND i.status = 'active'"
                         " WHERE b.ref_count > 0 AND NOT EXISTS (SELECT 1 FROM blob_capture c"
                         " WHERE c.content_hash = b.content_hash)"))
    assert other == len(ids)
    dry, _ = reconcile(ws, "--dry-run")
    assert dry["actions"] == len(ids), dry
    assert ws.value("SELECT count(*) FROM outbox WHERE sent_at IS NULL") == "0"
    run, p = reconcile(ws)
    assert run["actions"] == len(ids) and run["errors"] == 0, (run, p.stderr[-2000:])
    for i in ids:
        assert capture_done(cl, i)["capture"]["time_source"] == "exif"
    got = {r[0]: r[1] for r in ws.sql("SELECT image_id, taken_at FROM images"
                                      " WHERE image_id IN (%s)" % idl)}
    assert got == want
    again, _ = reconcile(ws)
    assert again["actions"] == 0 and again["examined"] == 0, again
