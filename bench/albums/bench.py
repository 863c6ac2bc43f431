"""Album costs on the local stack: adding items to an album with many members, paging a
large album (first and deep page, both orders), a member's fresh /sync of it, and the
album's deletion, with the change-log rows each writes. Prints JSON lines."""
import json
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
os.environ.setdefault("PIXPLANE_BUILD", sys.argv[1] if len(sys.argv) > 1 else "build")

from conftest import ApiProcess, Client, sql, sql_value, user_id  # noqa: E402

ITEMS = int(os.environ.get("ALBUM_BENCH_ITEMS", "10000"))
MEMBERS = int(os.environ.get("ALBUM_BENCH_MEMBERS", "50"))
ADD = 500


def timed(fn, runs=5):
    best = None
    for _ in range(runs):
        t = time.perf_counter()
        out = fn()
        ms = (time.perf_counter() - t) * 1000
        best = ms if best is None or ms < best else best
    return best, out


def log_rows():
    return int(sql_value("SELECT count(*) FROM change_log"))


def report(**kw):
    print(json.dumps(kw), flush=True)


def bulk_images(owner, sha, n):
    """n images of one content, committed the way the API commits them."""
    sql("WITH i AS (INSERT INTO images (image_id, owner_id, content_hash, name, size,"
        " mime_type, taken_at) SELECT gen_random_uuid(), '{o}', '{h}', 'b' || g || '.jpg', 700,"
        " 'image/jpeg', now() - g * interval '1 minute' FROM generate_series(1, {n}) g"
        " RETURNING 1) UPDATE blobs SET ref_count = ref_count + (SELECT count(*) FROM i)"
        " WHERE content_hash = '{h}'".format(o=owner, h=sha, n=n))


def main():
    api = ApiProcess({"PIXPLANE_ALBUM_ITEMS": ITEMS + ADD, "PIXPLANE_ALBUM_MEMBERS": MEMBERS})
    try:
        owner = user_id("bench")
        o = Client(api.url, api.token(owner))
        _, first = o.upload(os.urandom(700), name="seed.jpg")
        bulk_images(owner, first["sha256"], ITEMS + ADD - 1)
        st, a = o.call("POST", "/albums", {"name": "big"})
        aid = a["album_id"]
        members = [user_id("m") for _ in range(MEMBERS)]
        sql("INSERT INTO album_members (album_id, user_id, role) SELECT '%s', u, 'viewer'"
            " FROM unnest('{%s}'::text[]) u" % (aid, ",".join(members)))
        sql("INSERT INTO album_items (album_id, image_id, position, added_by)"
            " SELECT '{a}', image_id, row_number() OVER (ORDER BY image_id), '{o}' FROM images"
            " WHERE owner_id = '{o}' ORDER BY image_id LIMIT {n}".format(a=aid, o=owner, n=ITEMS))
        ids = [r[0] for r in sql("SELECT image_id FROM images i WHERE owner_id = '%s' AND NOT"
                                 " EXISTS (SELECT 1 FROM album_items ai WHERE ai.image_id ="
                                 " i.image_id)" % owner)]
        before = log_rows()
        t = time.perf_counter()
        st, doc = o.call("POST", "/albums/%s/items" % aid, {"image_ids": ids})
        ms = (time.perf_counter() - t) * 1000
        assert st == 200 and doc["added"] == ADD, doc
        report(op="add_items", items=doc["added"], members=MEMBERS, ms=round(ms, 1),
               change_rows=log_rows() - before)
        v = Client(api.url, api.token(members[0]))
        for sort in ("taken_at", "position"):
            q = "/albums/%s?limit=200&sort=%s" % (aid, sort)
            ms1, doc = timed(lambda: v.call("GET", q)[1])
            cur = doc["next_cursor"]
            for _ in range(ITEMS // 200 - 1):
                cur = v.call("GET", q + "&cursor=" + cur)[1]["next_cursor"]
            ms2, _ = timed(lambda: v.call("GET", q + "&cursor=" + cur))
            report(op="album_page", sort=sort, items=ITEMS + ADD, first_ms=round(ms1, 1),
                   deep_ms=round(ms2, 1))
        t = time.perf_counter()
        cursor, pages, seen = None, 0, 0
        while True:
            st, d = v.call("GET", "/sync?limit=1000" + ("&since=" + cursor if cursor else ""))
            pages += 1
            seen += len(d["added"]) + len(d["album_items"])
            cursor = d["cursor"]
            if not d["has_more"]:
                break
        report(op="member_fresh_sync", entries=seen, pages=pages,
               ms=round((time.perf_counter() - t) * 1000, 1))
        before = log_rows()
        t = time.perf_counter()
        st, _ = o.call("DELETE", "/albums/%s" % aid)
        ms = (time.perf_counter() - t) * 1000
        report(op="delete_album", items=ITEMS + ADD, members=MEMBERS, ms=round(ms, 1),
               change_rows=log_rows() - before)
    finally:
        api.stop()


if __name__ == "__main__":
    main()
