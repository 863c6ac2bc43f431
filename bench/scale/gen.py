# Generator for bench/scale: N images and N/2 blobs (with capture rows and three ready
# variants each) over N/10 users, a few heavy, plus the change log, usage counters and
# timeline keys the triggers would have written. In SQL, in short batches (one transaction
# each: a long one would hold back every database's /sync horizon on this server).
import json
import time

HEAVY = 5  # users "scale-h1".."scale-h5", N/100 images each
VARIANTS = ("thumbnail_small", "thumbnail_large", "preview")
BATCH = 100_000

# Per-row values as SQL expressions of the image number g or the blob number b (mod(), not
# %: psycopg2 takes the batch bounds as %(lo)s, %(hi)s).
def blob_of(s):
    return "(mod(g - 1, %d) + 1)" % s["blobs"]


def content_hash(b):
    return "encode(sha256(('pix-scale-' || %s)::bytea), 'hex')" % b


def size(b):
    return "(200000 + mod(%s::bigint * 7919, 4800000))" % b


def capture_taken(b):
    """70 % of contents carry an EXIF capture time (somewhere in 24 years), the rest none."""
    return ("CASE WHEN mod(%s, 10) < 7 THEN timestamptz '2000-01-01 00:00:00+00'"
            " + mod(%s::bigint * 48271, 757382400) * interval '1 second' END" % (b, b))


def created(x, s):
    """Uploads spread over 3 years, in order of x."""
    return ("(timestamptz '2023-06-01 00:00:00+00' + %s::float8 / %d * interval '3 years')"
            % (x, s["n"]))


def owner(s):
    return ("CASE WHEN mod(g, 100) < %d THEN 'scale-h' || (mod(g, 100) + 1)"
            " ELSE 'scale-u' || mod(g::bigint * 2654435761, %d) END" % (s["heavy"], s["typical"]))


def sizes(n):
    """Blobs, heavy and typical users for n images (each heavy user has n/100 images)."""
    return {"n": n, "blobs": n // 2, "heavy": HEAVY, "typical": n // 10 - HEAVY,
            "refs": 2}


USERS_SQL = """
INSERT INTO users (user_id, created_at)
SELECT CASE WHEN k < {heavy} THEN 'scale-h' || (k + 1) ELSE 'scale-u' || (k - {heavy}) END,
       timestamptz '2023-06-01 00:00:00+00'
FROM generate_series(%(lo)s, %(hi)s) k
"""

BLOBS_SQL = """
WITH x AS (SELECT b, {hash} AS h, {size} AS sz, {cap} AS taken, {created} AS at
           FROM generate_series(%(lo)s, %(hi)s) b),
bl AS (INSERT INTO blobs (content_hash, storage_path, size, ref_count, created_at, updated_at)
       SELECT h, 'blobs/scale-' || b, sz, {refs}, at, at FROM x),
cap AS (INSERT INTO blob_capture (content_hash, taken_local, taken_offset, taken_at, width,
                                  height, orientation, format, color_space, make, model, iso)
        SELECT h, to_char(taken AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS'),
               CASE WHEN taken IS NOT NULL THEN '+00:00' END, taken, 4032, 3024, 1, 'jpeg',
               'srgb', 'Canon', 'EOS R' || mod(b, 7), 100 * (1 + mod(b, 32)) FROM x),
v AS (INSERT INTO image_variants (content_hash, variant_type, status, storage_path, mime_type,
                                  width, height, size, created_at, updated_at)
      SELECT h, t, 'ready', 'variants/' || h || '/' || b || '/' || t || '.webp', 'image/webp',
             256, 192, 12000, at, at FROM x, unnest(%(variants)s::text[]) t)
SELECT count(*) FROM x
"""

# Images of g in [lo, hi] in upload order, each with its completed upload session (nothing
# deletes those), and what the triggers would add: taken_at
# (images_taken_at), the owners' usage (images_quota) and the change log ('added', and
# 'deleted' for the 1.9 % in the trash).
IMAGES_SQL = """
WITH x AS (SELECT g, {blob} AS b, {created} AS at, {owner} AS owner
           FROM generate_series(%(lo)s, %(hi)s) g),
y AS (SELECT x.*, CASE WHEN mod(g, 10) <> 0 THEN at - mod(g, 1000) * interval '1 day' END
             AS fmod, CASE WHEN mod(g, 53) = 0 THEN now() - mod(g, 20) * interval '1 day' END
             AS del FROM x),
ins AS (INSERT INTO images (image_id, owner_id, content_hash, upload_session_id, name, size,
                            mime_type, status, created_at, updated_at, deleted_at,
                            file_modified_at, taken_at)
        SELECT gen_random_uuid(), owner, {hash}, gen_random_uuid(), 'IMG_' || g || '.jpg',
               {size}, 'image/jpeg', CASE WHEN del IS NULL THEN 'active' ELSE 'deleted' END,
               at, coalesce(del, at), del, fmod, coalesce({cap}, fmod, at)
        FROM y ORDER BY g
        RETURNING image_id, owner_id, size, status, created_at, deleted_at, upload_session_id,
                  name, content_hash, file_modified_at),
s AS (INSERT INTO upload_sessions (upload_session_id, owner_id, file_name, file_size, mime_type,
                                   chunk_size, chunk_count, object_key, status, content_hash,
                                   image_id, deduplicated, created_at, updated_at, expires_at,
                                   file_modified_at)
      SELECT upload_session_id, owner_id, name, size, 'image/jpeg', size, 1,
             'blobs/' || upload_session_id, 'completed', content_hash, image_id, false,
             created_at, created_at, created_at + interval '1 day', file_modified_at FROM ins),
q AS (INSERT INTO user_usage AS u (user_id, bytes_used, images, trash_bytes, trash_images)
      SELECT owner_id, sum(size), count(*),
             coalesce(sum(size) FILTER (WHERE status = 'deleted'), 0),
             count(*) FILTER (WHERE status = 'deleted') FROM ins GROUP BY owner_id
      ON CONFLICT (user_id) DO UPDATE SET bytes_used = u.bytes_used + excluded.bytes_used,
          images = u.images + excluded.images,
          trash_bytes = u.trash_bytes + excluded.trash_bytes,
          trash_images = u.trash_images + excluded.trash_images),
c AS (INSERT INTO change_log (user_id, image_id, kind, created_at)
      SELECT owner_id, image_id, k.kind, k.at FROM ins,
             LATERAL (VALUES ('added', created_at), ('deleted', deleted_at)) k(kind, at)
      WHERE k.at IS NOT NULL ORDER BY k.at)
SELECT count(*) FROM ins
"""


def statements(n):
    s = sizes(n)
    users = USERS_SQL.format(**s)
    blobs = BLOBS_SQL.format(hash=content_hash("b"), size=size("b"), cap=capture_taken("b"),
                             created=created("b", s), refs=s["refs"])
    images = IMAGES_SQL.format(blob=blob_of(s), created=created("g", s), owner=owner(s),
                               hash=content_hash("b"), size=size("b"), cap=capture_taken("b"))
    return s, users, blobs, images


def batches(conn, what, sql, total, extra=None):
    """Runs sql over [0 or 1, total] in BATCH-sized transactions; prints the time taken."""
    t0 = time.monotonic()
    first = 0 if what == "users" else 1
    last = total - 1 if what == "users" else total
    with conn.cursor() as cur:
        for lo in range(first, last + 1, BATCH):
            cur.execute(sql, dict(extra or {}, lo=lo, hi=min(lo + BATCH - 1, last)))
    secs = time.monotonic() - t0
    print(json.dumps({"generate": what, "rows": total, "seconds": round(secs, 1),
                      "rows_per_s": round(total / secs)}), flush=True)
    return secs


# What each phase writes. Their indexes are dropped for the load and built again after it
# from their own definitions (primary keys and unique constraints, the foreign keys that
# reference them, the other indexes): one sort per index instead of 10,000,000 random
# insertions each. The generator writes only rows that satisfy them.
PHASES = (("users", ("users",)), ("blobs", ("blobs", "blob_capture", "image_variants")),
          ("images", ("images", "upload_sessions", "change_log", "user_usage")))
KEEP_INDEXES = ("user_usage",)  # the load's upserts need its key

# (table, name, definition) of the keys of the tables ($1), then of the foreign keys that
# reference them, in the order they are made again.
KEYS_SQL = """
SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint
WHERE (contype IN ('p', 'u') AND conrelid::regclass::text = ANY (%(t)s))
   OR (contype = 'f' AND confrelid::regclass::text = ANY (%(t)s))
ORDER BY contype = 'f', 1, 2
"""
# The other indexes of the tables: (name, definition).
INDEXES_SQL = """
SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid) FROM pg_index i
WHERE i.indrelid::regclass::text = ANY (%(t)s)
  AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)
ORDER BY 1
"""


def load(conn, phase, tables, run):
    """Runs the phase's batches without its tables' indexes, then builds them again."""
    tables = [t for t in tables if t not in KEEP_INDEXES]
    with conn.cursor() as cur:
        cur.execute(KEYS_SQL, {"t": tables})
        keys = cur.fetchall()
        cur.execute(INDEXES_SQL, {"t": tables})
        indexes = cur.fetchall()
        for table, name, _ in reversed(keys):  # foreign keys first
            cur.execute("ALTER TABLE %s DROP CONSTRAINT %s" % (table, name))
        for name, _ in indexes:
            cur.execute("DROP INDEX " + name)
    took = run()
    t0 = time.monotonic()
    with conn.cursor() as cur:
        for table, name, definition in keys[:len(keys) - sum(" REFERENCES " in k[2]
                                                             for k in keys)]:
            cur.execute("ALTER TABLE %s ADD CONSTRAINT %s %s" % (table, name, definition))
        for _, definition in indexes:
            cur.execute(definition)
        for table, name, definition in keys:
            if " REFERENCES " in definition:
                cur.execute("ALTER TABLE %s ADD CONSTRAINT %s %s" % (table, name, definition))
    secs = round(time.monotonic() - t0, 1)
    print(json.dumps({"generate": phase + "_indexes", "keys": [k[1] for k in keys],
                      "indexes": [i[0] for i in indexes], "seconds": secs}), flush=True)
    return took + secs


def generate(conn, n, start="users"):
    """Fills an empty, migrated database with n images (or, with start, a generation stopped
    in that phase: the tables of that phase and those after it are emptied first); the
    seconds taken by phase."""
    s, users, blobs, images = statements(n)
    runs = {"users": lambda: batches(conn, "users", users, s["heavy"] + s["typical"]),
            "blobs": lambda: batches(conn, "blobs", blobs, s["blobs"],
                                     {"variants": list(VARIANTS)}),
            "images": lambda: batches(conn, "images", images, n)}
    names = [p for p, _ in PHASES]
    conn.autocommit = True
    with conn.cursor() as cur:
        # Bulk load: the rows above are what the triggers (and the foreign keys' checks)
        # would produce; they stay defined and fire for every request measured afterwards.
        cur.execute("SET session_replication_role = replica")
        cur.execute("SET pixplane.events = 'off'")
        cur.execute("SET maintenance_work_mem = '512MB'")
        later = [t for _, tables in PHASES[names.index(start):] for t in tables]
        cur.execute("TRUNCATE %s CASCADE" % ", ".join(later))
    took = {}
    for phase, tables in PHASES[names.index(start):]:
        took[phase] = round(load(conn, phase, tables, runs[phase]), 1)
    with conn.cursor() as cur:
        cur.execute("RESET session_replication_role")
        t0 = time.monotonic()
        for table in ("users", "user_usage", "blobs", "blob_capture", "image_variants", "images",
                      "upload_sessions", "change_log"):
            cur.execute("VACUUM (ANALYZE) " + table)
        took["vacuum_analyze"] = round(time.monotonic() - t0, 1)
    print(json.dumps({"generate": "vacuum_analyze", "seconds": took["vacuum_analyze"]}),
          flush=True)
    return took
