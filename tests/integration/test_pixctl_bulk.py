# pixctl's bulk import (`upload -r DIR`, `upload --from-list FILE`) against a real API,
# PostgreSQL and radosgw: a folder of real JPEGs in nested directories beside non-images and
# hidden files is imported once (names and sha256s checked through the API); a second import
# sends no part PUT (counted at storage's door) and makes no image; a touched file is
# recognised by content, --allow-duplicates imports a copy anyway; lists from a file and
# stdin; a SIGKILL mid-import then a rerun leaves exactly one image per file; failing files
# are reported while the rest succeed.
import hashlib
import json
import os
import shutil
import signal
import subprocess
import time

import pytest

from test_pixctl import PIXCTL, Pixctl, door, papi  # noqa: F401 (fixtures)

NFILES = 60


def sha256_file(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


@pytest.fixture(scope="module")
def jpegs(tmp_path_factory):
    """NFILES small JPEGs, each different (ImageMagick's seeded plasma), made once."""
    if not shutil.which("convert"):
        pytest.skip("ImageMagick's convert is not installed")
    src = tmp_path_factory.mktemp("jpegs")
    for i in range(NFILES):
        subprocess.run(["convert", "-seed", str(i + 1), "-size", "96x64", "plasma:fractal",
                        "-quality", "85", str(src / ("img%02d.jpg" % i))], check=True)
    return src


def unique_jpeg(data):
    """data with a random comment segment after SOI: still a valid JPEG, content unseen by
    the server (the seeded images are the same in every test and run)."""
    com = b"pixctl-bulk " + os.urandom(8).hex().encode()
    return data[:2] + b"\xff\xfe" + (len(com) + 2).to_bytes(2, "big") + com + data[2:]


def make_library(jpegs, root):
    """The JPEGs spread over nested directories, plus non-images and hidden entries.
    Returns {relative path: sha256} of the images an import must take."""
    want = {}
    for i, name in enumerate(sorted(os.listdir(jpegs))):
        sub = ["", "2023", "2023/summer", "2024/winter/day 1"][i % 4]
        d = root / sub
        d.mkdir(parents=True, exist_ok=True)
        (d / name).write_bytes(unique_jpeg((jpegs / name).read_bytes()))
        want[os.path.join(sub, name)] = sha256_file(d / name)
    (root / "notes.txt").write_text("not an image\n")
    (root / "2023" / "data.bin").write_bytes(os.urandom(2048))
    (root / ".hidden.jpg").write_bytes((jpegs / "img00.jpg").read_bytes())
    (root / ".thumbs").mkdir()
    shutil.copy(jpegs / "img01.jpg", root / ".thumbs" / "t.jpg")
    return want


def run_import(px, *args, ok=True, stdin=None, **extra):
    p = subprocess.run([PIXCTL, "upload", "--json"] + [str(a) for a in args], env=px.env(**extra),
                       capture_output=True, text=True, timeout=600, input=stdin)
    assert "Sanitizer" not in p.stderr and "runtime error:" not in p.stderr, p.stderr[-4000:]
    if ok:
        assert p.returncode == 0, (args, p.returncode, p.stderr[-3000:])
    docs = [json.loads(line) for line in p.stdout.splitlines() if line.strip()]
    assert docs and docs[-1].get("summary"), p.stdout[-2000:]
    return p, [d for d in docs if not d.get("summary")], docs[-1]


def images(px, timeout=60, verified=True):
    """The user's images (all pages); with verified, waits until each has its sha256."""
    deadline = time.monotonic() + timeout
    while True:
        out, cursor = [], None
        while True:
            path = "/images?limit=200" + ("&cursor=" + cursor if cursor else "")
            st, doc = px.client.call("GET", path)
            assert st == 200, (st, doc)
            out += doc["images"]
            cursor = doc.get("next_cursor")
            if not cursor:
                break
        if not verified or all(i["sha256"] for i in out) or time.monotonic() > deadline:
            return out
        time.sleep(0.3)


def test_import_and_reimport(papi, door, jpegs, tmp_path):
    px = Pixctl(papi, tmp_path)
    lib = tmp_path / "library"
    want = make_library(jpegs, lib)

    door.reset()
    t = time.monotonic()
    p, docs, summ = run_import(px, "-r", lib)
    first = time.monotonic() - t
    assert summ["uploaded"] == NFILES and summ["failed"] == 0 and summ["skipped"] == 0, summ
    assert summ["ignored"] == 2  # notes.txt, data.bin; hidden entries are not even looked at
    assert sorted(os.path.relpath(d["file"], lib) for d in docs) == sorted(want)
    assert all(d["status"] == "uploaded" and d["bytes_sent"] == d["size"] for d in docs)
    assert door.total_puts() == NFILES
    assert "import:" in p.stderr and "60 uploaded" in p.stderr, p.stderr[-2000:]
    imgs = images(px)
    assert len(imgs) == NFILES
    assert sorted((i["name"], i["sha256"]) for i in imgs) == \
        sorted((os.path.basename(k), v) for k, v in want.items())
    by_file = {d["file"]: d["image_id"] for d in docs}
    assert {i["image_id"] for i in imgs} == set(by_file.values())

    # again: nothing read, nothing sent, nothing made
    door.reset()
    t = time.monotonic()
    p, docs, summ = run_import(px, "-r", lib)
    second = time.monotonic() - t
    assert summ["skipped"] == NFILES and summ["uploaded"] == 0 and summ["bytes_sent"] == 0, summ
    assert all(d["reason"] == "already imported" for d in docs)
    assert {d["file"]: d["image_id"] for d in docs} == by_file
    assert door.count("PUT") == 0 and door.total_puts() == 0
    assert len(images(px, verified=False)) == NFILES
    print("first import %.2fs, second %.2fs" % (first, second))

    # a touched file is hashed again and recognised by its content; a copy is skipped
    # unless --allow-duplicates
    os.utime(lib / "2023" / "img01.jpg")
    shutil.copy(lib / "img00.jpg", lib / "copy of img00.jpg")
    p, docs, summ = run_import(px, "-r", lib)
    touched = {os.path.relpath(d["file"], lib): d for d in docs if d["reason"] != "already imported"}
    assert set(touched) == {"2023/img01.jpg", "copy of img00.jpg"}
    assert all(d["reason"] == "the same content is already in your library"
               for d in touched.values())
    assert touched["2023/img01.jpg"]["image_id"] == by_file[str(lib / "2023" / "img01.jpg")]
    assert summ["uploaded"] == 0 and len(images(px, verified=False)) == NFILES

    door.reset()
    p, docs, summ = run_import(px, "--allow-duplicates", lib / "copy of img00.jpg", "-r")
    assert summ["uploaded"] + summ["deduplicated"] == 1, summ
    assert len(images(px, verified=False)) == NFILES + 1
    if summ["deduplicated"]:  # proof of possession: no bytes sent
        assert door.total_puts() == 0


def test_from_list(papi, door, jpegs, tmp_path):
    px = Pixctl(papi, tmp_path)
    lib = tmp_path / "library"
    want = make_library(jpegs, lib)
    paths = sorted(want)[:10]
    listing = tmp_path / "list.txt"
    listing.write_text("# ten of them\n" + "".join("%s\n" % (lib / k) for k in paths[:5]) +
                       "\n" + "".join("  %s  \n" % (lib / k) for k in paths[5:]))
    p, docs, summ = run_import(px, "--from-list", listing)
    assert summ["uploaded"] == 10 and summ["failed"] == 0, summ
    assert sorted(d["file"] for d in docs) == sorted(str(lib / k) for k in paths)

    # stdin, with one path that does not exist: reported, the others go on (exit code 4)
    more = sorted(want)[10:15]
    text = "".join("%s\n" % (lib / k) for k in more) + "%s\n" % (lib / "missing.jpg")
    p, docs, summ = run_import(px, "--from-list", "-", ok=False, stdin=text)
    assert p.returncode == 4, p.stderr[-2000:]
    assert summ["uploaded"] == 5 and summ["failed"] == 1, summ
    failed = [d for d in docs if d["status"] == "failed"]
    assert failed[0]["file"].endswith("missing.jpg") and "No such file" in failed[0]["error"]
    assert "missing.jpg" in p.stderr
    assert len(images(px, verified=False)) == 15

    # an image deleted on the server comes back with the next import, as a new image
    first = {d["file"]: d["image_id"] for d in docs if d["status"] == "uploaded"}
    gone_file, gone_id = sorted(first.items())[0]
    st, doc = px.client.call("DELETE", "/images/%s" % gone_id)
    assert st in (200, 204), (st, doc)
    p, docs, summ = run_import(px, "--from-list", "-", stdin="".join(
        "%s\n" % f for f in sorted(first)))
    # (the trash still holds the content: proved, no bytes sent, or sent again)
    assert summ["uploaded"] + summ["deduplicated"] == 1 and summ["skipped"] == 4, summ
    again = [d for d in docs if d["status"] in ("uploaded", "deduplicated")][0]
    assert again["file"] == gone_file and again["image_id"] != gone_id
    assert len(images(px, verified=False)) == 15


def test_kill_and_rerun(papi, door, jpegs, tmp_path):
    """SIGKILL part-way (slow storage, two files at a time), then the same command: every
    file is one image, none twice."""
    px = Pixctl(papi, tmp_path)
    lib = tmp_path / "library"
    want = make_library(jpegs, lib)
    door.rate = 32 * 1024
    try:
        proc = subprocess.Popen([PIXCTL, "upload", "--json", "--files", "2", "-r", str(lib)],
                                env=px.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)
        done = 0
        deadline = time.monotonic() + 120
        while done < 12 and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            done += 1
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    finally:
        door.rate = None
    assert done >= 12, proc.stderr.read()[-2000:]
    before = len(images(px, verified=False))
    assert done <= before < NFILES

    p, docs, summ = run_import(px, "-r", lib)
    assert summ["failed"] == 0 and summ["uploaded"] + summ["skipped"] == NFILES, summ
    imgs = images(px)
    assert len(imgs) == NFILES, sorted(i["name"] for i in imgs)
    assert sorted(i["sha256"] for i in imgs) == sorted(want.values())
    p, docs, summ = run_import(px, "-r", lib)
    assert summ["skipped"] == NFILES and summ["bytes_sent"] == 0, summ


def test_failures_reported(papi, door, jpegs, tmp_path):
    """A file that is gone when it is read (a dangling symlink) and an empty one fail with
    their reasons; every other file is imported; the exit code is the first failure's."""
    px = Pixctl(papi, tmp_path)
    lib = tmp_path / "library"
    want = make_library(jpegs, lib)
    os.symlink(lib / "vanished.jpg", lib / "2023" / "gone.jpg")
    (lib / "2024" / "empty.jpg").write_bytes(b"")
    p, docs, summ = run_import(px, "-r", lib, ok=False)
    assert p.returncode in (1, 4), p.stderr[-2000:]
    assert summ["uploaded"] == NFILES and summ["failed"] == 2, summ
    assert summ["exit_code"] == p.returncode
    failed = {os.path.basename(d["file"]): d for d in docs if d["status"] == "failed"}
    assert "No such file" in failed["gone.jpg"]["error"]
    assert "empty" in failed["empty.jpg"]["error"]
    assert "failed: " in p.stderr and "gone.jpg" in p.stderr
    assert len(images(px, verified=False)) == NFILES
    assert len(want) == NFILES
