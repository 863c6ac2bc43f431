# pixctl link (issue 19) against a real API: create a link to an image and to an album with
# its options (expiry, password from the environment, no download, max views), list and
# revoke them; the printed url opens without an account; usage errors.
import json
import os

import pytest
import requests

from test_pixctl import PIXCTL, Pixctl

JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00"


@pytest.fixture(scope="module")
def lapi(api):
    if not os.path.exists(PIXCTL):
        pytest.skip("pixctl not built (%s)" % PIXCTL)
    return api


def jlines(p):
    return [json.loads(line) for line in p.stdout.splitlines() if line.strip()]


def test_link_subcommands_end_to_end(lapi, tmp_path):
    px = Pixctl(lapi, tmp_path)
    f = tmp_path / "p.jpg"
    f.write_bytes(JPEG + os.urandom(2000))
    img = px.upload_json(f)["image_id"]
    url = px.run("link", "create", img).stdout.strip()
    assert url.startswith(lapi.url + "/s/"), url
    r = requests.get(url, timeout=30)
    assert r.status_code == 200 and r.json()["image"]["image_id"] == img
    assert "original_url" in r.json()["image"]
    # options: --expires-in, the password from the environment, --no-download, --max-views
    doc = jlines(px.run("link", "create", img, "--json", "--expires-in", "2h", "--no-download",
                        "--max-views", "2", PIXCTL_LINK_PASSWORD="open sesame"))[0]
    assert doc["has_password"] is True and doc["allow_download"] is False
    assert doc["max_views"] == 2
    assert requests.get(doc["url"], timeout=30).status_code == 401
    t = requests.post(doc["url"] + "/unlock", json={"password": "open sesame"}, timeout=30)
    assert t.status_code == 200
    r = requests.get(doc["url"], headers={"X-Link-Ticket": t.json()["ticket"]}, timeout=30)
    assert r.status_code == 200 and "original_url" not in r.json()["image"]
    # an album
    st, a = px.client.call("POST", "/albums", {"name": "trip"})
    assert st == 201
    aurl = px.run("link", "create", a["album_id"], "--album").stdout.strip()
    assert requests.get(aurl, timeout=30).json()["album"]["name"] == "trip"
    # ls: the three, never a token; text rows carry the id and status
    links = jlines(px.run("link", "ls", "--json"))
    assert len(links) == 3 and {x["type"] for x in links} == {"image", "album"}
    out = px.run("link", "ls").stdout
    for tok in (url, doc["url"], aurl):
        assert tok.rsplit("/", 1)[1] not in out + json.dumps(links)
    assert all(x["link_id"] in out for x in links)
    # rm revokes
    gone = [x["link_id"] for x in links if x["type"] == "album"][0]
    assert px.run("link", "rm", gone).stdout.strip() == "%s revoked" % gone
    assert requests.get(aurl, timeout=30).status_code == 404
    p = px.run("link", "rm", gone, ok=False)
    assert p.returncode == 2 and "404" in p.stderr, (p.returncode, p.stderr)


def test_link_usage_errors(lapi, tmp_path):
    px = Pixctl(lapi, tmp_path)
    for args in (["link"], ["link", "frob"], ["link", "create"], ["link", "rm"],
                 ["link", "ls", "extra"],
                 ["link", "create", "A", "--expires-in", "soon"],
                 ["link", "create", "A", "--expires-in", "1.5s"]):
        p = px.run(*args, ok=False)
        assert p.returncode == 1, (args, p.returncode, p.stderr)
        assert p.stderr.startswith("pixctl: ") and p.stdout == "", (args, p.stderr)
    assert "link create ID" in px.run("link", "--help").stdout
