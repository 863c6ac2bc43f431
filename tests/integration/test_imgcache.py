# The API's image read cache (services/api/imgcache.c): a client always reads its own
# writes, and a change made through another API process reaches this one's cached reads
# through the change-log notification (within a second), for every user who could see it.
import os
import time

from conftest import ApiProcess, Client, user_id


WARM = 20  # reads that put the image in every worker's cache (2 workers)


def until(fn, want, secs=3.0):
    """Polls fn() until it returns want and then keeps returning it for WARM more calls
    (every worker's cache agrees); the time it took, or None."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < secs:
        if fn() == want and all(fn() == want for _ in range(WARM)):
            return time.monotonic() - t0
        time.sleep(0.02)
    return None


def warm(fn, want):
    for _ in range(WARM):
        assert fn() == want


def test_reads_follow_writes_here_and_elsewhere(stack):
    a, b = ApiProcess({"PIXPLANE_WORKERS": "2"}), ApiProcess()
    try:
        oid, sid = user_id("owner"), user_id("sharee")
        owner_a, owner_b = Client(a.url, a.token(oid)), Client(b.url, b.token(oid))
        stranger = Client(a.url, a.token(user_id("stranger")))
        sharee = Client(a.url, a.token(sid))
        _, doc = owner_a.upload(os.urandom(1200), name="c.jpg")
        path = "/images/%s" % doc["image_id"]
        get = lambda c: c.call("GET", path)[0]  # noqa: E731

        warm(lambda: get(owner_a), 200)  # the owner's own reads, cached after the first
        assert owner_a.call("PATCH", path, {"name": "d.jpg"})[0] == 200
        assert owner_a.call("GET", path + "/metadata")[1]["name"] == "d.jpg"  # at once
        assert owner_a.call("DELETE", path)[0] == 200
        assert all(get(owner_a) == 404 for _ in range(WARM))  # at once: its own write
        assert owner_a.call("POST", path + "/restore")[0] == 200
        assert get(owner_a) == 200

        # made public elsewhere: a stranger here sees it, then loses it when it is made
        # private elsewhere again
        assert owner_b.call("PATCH", path, {"visibility": "public"})[0] == 200
        assert until(lambda: get(stranger), 200) is not None
        assert owner_b.call("PATCH", path, {"visibility": "private"})[0] == 200
        took = until(lambda: get(stranger), 404)
        assert took is not None and took < 1.5, took

        # shared elsewhere, revoked elsewhere
        assert owner_b.call("PATCH", path, {"visibility": "shared"})[0] == 200
        assert owner_b.call("POST", path + "/shares", {"user_id": sid})[0] in (200, 201)
        assert until(lambda: get(sharee), 200) is not None
        assert owner_b.call("DELETE", path + "/shares/" + sid)[0] == 200
        took = until(lambda: get(sharee), 404)
        assert took is not None and took < 1.5, took

        # deleted elsewhere: gone here for the owner as well
        warm(lambda: get(owner_a), 200)
        assert owner_b.call("DELETE", path)[0] == 200
        took = until(lambda: get(owner_a), 404)
        assert took is not None and took < 1.5, took
    finally:
        a.stop()
        b.stop()
