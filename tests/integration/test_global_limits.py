"""Limits across API instances (issue 20, docs/instances.md): a public link's password
attempts are one budget for every API process on the database (migrations/
018_global_limits.sql), so brute force does not scale with the number of instances; the
per-address attempt limit stays per instance. Each test starts its own API processes on the
one database (like test_multi_instance.py)."""
import concurrent.futures as cf
import os
import threading
import time

import pytest
import requests

from conftest import ApiProcess, Client, sql_value, user_id

ATTEMPTS = 3


def start(n, **env):
    procs = []
    try:
        for _ in range(n):
            procs.append(ApiProcess(env))
    except BaseException:
        for p in procs:
            p.stop()
        raise
    return procs


@pytest.fixture
def trio(stack):
    """Three instances allowing ATTEMPTS password attempts per link and per address, one
    back an hour."""
    procs = start(3, PIXPLANE_LINK_UNLOCK_ATTEMPTS=ATTEMPTS, PIXPLANE_LINK_UNLOCK_REFILL="1h")
    yield procs
    for p in procs:
        p.stop()


def password_link(api, password):
    """A password link to a fresh image through api: (link id, token path /s/<token>)."""
    c = Client(api.url, api.token(user_id("gl")))
    _, doc = c.upload(os.urandom(600), name="locked.jpg")
    st, link = c.call("POST", "/images/%s/links" % doc["image_id"], {"password": password})
    assert st == 201, (st, link)
    return link["link_id"], "/s/" + link["url"].rsplit("/s/", 1)[1]


def unlock(api, path, password):
    r = requests.post(api.url + path + "/unlock", json={"password": password}, timeout=60)
    return r.status_code, r.json()["error"]["code"] if r.status_code >= 400 else "ok", r


def attempts_until_refused(apis, path, limit=20):
    """Wrong passwords sent round-robin to apis until one is refused: how many were checked
    (answered 403 wrong_password) before the first 429, and that 429."""
    for i in range(limit):
        st, code, r = unlock(apis[i % len(apis)], path, "wrong %d" % i)
        if st == 429:
            return i, code, r
        assert (st, code) == (403, "wrong_password"), (i, st, r.text)
    pytest.fail("no 429 after %d wrong passwords" % limit)


def test_attempts_spread_over_two_instances_hit_the_same_limit(trio):
    one, a, b = trio
    _, alone = password_link(one, "right")
    n_one, code, _ = attempts_until_refused([one], alone)
    assert (n_one, code) == (ATTEMPTS, "too_many_attempts")

    link, spread = password_link(a, "right")
    n_two, code, r = attempts_until_refused([a, b], spread)
    # a, b, a checked; the fourth (b, whose address has spent 1 of its 3) is refused
    assert (n_two, code) == (n_one, "too_many_attempts"), (n_two, code)
    assert 3000 < int(r.headers["Retry-After"]) <= 3601
    # the refusals are the link's, not an address budget's: a (2 of its 3 spent) refuses
    # even the right password, b (2 spent) still unlocks another link, and the link stays
    # locked
    assert unlock(a, spread, "right")[:2] == (429, "too_many_attempts")
    _, other = password_link(a, "pw2")
    assert unlock(b, other, "pw2")[:2] == (200, "ok")
    assert requests.get(a.url + spread, timeout=30).status_code == 401
    assert sql_value("SELECT count(*) FROM link_unlock_budget WHERE link_id = '%s'"
                     % link) == "1"


def test_budget_refills_for_every_instance(stack):
    procs = start(2, PIXPLANE_LINK_UNLOCK_ATTEMPTS=2, PIXPLANE_LINK_UNLOCK_REFILL="10s")
    try:
        a, b = procs
        _, path = password_link(a, "right")
        assert unlock(a, path, "x")[:2] == (403, "wrong_password")
        assert unlock(b, path, "y")[:2] == (403, "wrong_password")
        st, code, r = unlock(a, path, "right")
        assert (st, code) == (429, "too_many_attempts")
        assert 1 <= int(r.headers["Retry-After"]) <= 10
        deadline = time.monotonic() + 20
        got = unlock(b, path, "right")[:2]
        while got == (429, "too_many_attempts"):  # one attempt back within 10 s
            assert time.monotonic() < deadline, "no attempt came back"
            time.sleep(0.25)
            got = unlock(b, path, "right")[:2]
        assert got == (200, "ok")
    finally:
        for p in procs:
            p.stop()


def test_concurrent_attempts_never_overshoot(stack):
    # 10 per link in all, 10 per address on each instance: 30 concurrent wrong passwords,
    # 15 through each instance. Counted per instance, 20 would be checked; globally 10.
    # An attempt that found every scrypt slot busy (429 unlock_busy) has spent its token.
    procs = start(2, PIXPLANE_LINK_UNLOCK_ATTEMPTS=10, PIXPLANE_LINK_UNLOCK_REFILL="1h",
                  PIXPLANE_WORKERS=16)
    try:
        link, path = password_link(procs[0], "right")
        go = threading.Barrier(16)

        def attempt(i):
            if i < 16:
                go.wait(30)
            return unlock(procs[i % 2], path, "wrong %d" % i)[:2]
        with cf.ThreadPoolExecutor(16) as ex:
            res = list(ex.map(attempt, range(30)))
        spent = [x for x in res if x in ((403, "wrong_password"), (429, "unlock_busy"))]
        refused = [x for x in res if x == (429, "too_many_attempts")]
        assert len(spent) == 10 and len(refused) == 20, res
        assert unlock(procs[1], path, "right")[:2] == (429, "too_many_attempts")
        full = sql_value("SELECT extract(epoch FROM full_at - now()) FROM link_unlock_budget"
                         " WHERE link_id = '%s'" % link)
        assert 9 * 3600 < float(full) <= 10 * 3600, full
    finally:
        for p in procs:
            p.stop()
