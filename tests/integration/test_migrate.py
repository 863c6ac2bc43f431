"""common/migrate through `pgcheck migrate`: a fresh database gets every migration, a second
run applies nothing and leaves the schema byte-identical, concurrent runs serialize on the
advisory lock, and a failing migration is rolled back and named. One new database per test,
on the server of DATABASE_URL, or else on a throwaway cluster from minio-dev/pg."""
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

REPO = Path(__file__).resolve().parents[2]
BUILD = REPO / os.environ.get("PIXPLANE_BUILD", "build")
PGCHECK = BUILD / "tools" / "pgcheck"
PG = REPO / "minio-dev" / "pg"
MIGRATIONS = sorted(p.stem for p in (REPO / "migrations").glob("*.sql"))
LOCK_KEY = int.from_bytes(b"pixmigr\0", "big")  # as in common/migrate.c


def with_db(url, db):
    """The same server with another database; URIs and key=value strings."""
    if url.startswith(("postgres://", "postgresql://")):
        u = urlsplit(url)
        return urlunsplit((u.scheme, u.netloc, "/" + db, u.query, u.fragment))
    return f"{url} dbname={db}"


def psql(url, sql):
    out = subprocess.run(["psql", "-X", "-At", "-v", "ON_ERROR_STOP=1", "-d", url, "-c", sql],
                         check=True, timeout=60, capture_output=True, text=True)
    return out.stdout.strip()


@pytest.fixture(scope="module")
def server():
    """An admin URL: DATABASE_URL's server, or a throwaway cluster for this module."""
    if not os.access(PGCHECK, os.X_OK):
        pytest.skip(f"{PGCHECK} not built (make {PGCHECK.relative_to(REPO)})")
    if os.environ.get("DATABASE_URL"):
        yield os.environ["DATABASE_URL"]
        return
    if not os.access(PG, os.X_OK):
        pytest.skip(f"no DATABASE_URL and {PG} not available")
    d = tempfile.mkdtemp(prefix="pixtest-migrate-")  # the script chowns it to postgres
    try:
        out = subprocess.run([str(PG), "start", d], timeout=120, capture_output=True,
                             text=True)
        assert out.returncode == 0, f"minio-dev/pg start: {out.stderr[-2000:]}"
        yield out.stdout.strip().splitlines()[-1]
    finally:
        subprocess.run([str(PG), "destroy", d], timeout=120, capture_output=True)
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def db(server):
    name = "pixtest_migrate_" + uuid.uuid4().hex[:12]
    psql(server, f"CREATE DATABASE {name}")
    try:
        yield with_db(server, name)
    finally:
        psql(server, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def migrate(url, tool=PGCHECK):
    p = subprocess.run([str(tool), "migrate", "--url", url], timeout=120, capture_output=True,
                       text=True)
    return p.returncode, p.stdout.strip(), p.stderr.strip()


def recorded(url):
    return psql(url, "SELECT name FROM schema_migrations ORDER BY name").split()


def schema(url):
    out = subprocess.run(["pg_dump", "--schema-only", "--no-owner", "-d", url], check=True,
                         timeout=60, capture_output=True, text=True)
    # newer pg_dump wraps the dump in \restrict / \unrestrict with a random key
    return "".join(line for line in out.stdout.splitlines(True)
                   if not line.startswith(("\\restrict ", "\\unrestrict ")))


def test_fresh_then_nothing(db):
    rc, out, err = migrate(db)
    assert (rc, out) == (0, f"applied {len(MIGRATIONS)}"), err
    assert recorded(db) == MIGRATIONS
    assert subprocess.run([str(PGCHECK), "current", "--url", db], capture_output=True,
                          text=True, timeout=60).stdout.strip() == "current 1"
    before = schema(db)
    rc, out, err = migrate(db)
    assert (rc, out) == (0, "applied 0"), err
    assert schema(db) == before
    assert recorded(db) == MIGRATIONS


def test_current_on_empty_database(db):
    out = subprocess.run([str(PGCHECK), "current", "--url", db], capture_output=True, text=True,
                         timeout=60).stdout.strip()
    assert out == ("current 0" if MIGRATIONS else "current 1")


def wait_locks(url, granted, n, timeout=30):
    """Waits until n sessions hold (granted) or wait for advisory locks in this database."""
    end = time.monotonic() + timeout
    sql = ("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
           f"AND granted = {'true' if granted else 'false'} "
           "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())")
    while time.monotonic() < end:
        if int(psql(url, sql)) >= n:
            return
        time.sleep(0.05)
    pytest.fail(f"fewer than {n} advisory locks {'held' if granted else 'awaited'}")


def test_concurrent_runs_serialize(db):
    # Hold the migrators' lock so that all of them start and queue up, then let them race.
    holder = subprocess.Popen(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", db],
                              stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    holder.stdin.write(f"SELECT pg_advisory_lock({LOCK_KEY});\n")
    holder.stdin.flush()
    wait_locks(db, True, 1)
    runs = [subprocess.Popen([str(PGCHECK), "migrate", "--url", db], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True) for _ in range(3)]
    try:
        wait_locks(db, False, 3)
    finally:
        holder.stdin.write(f"SELECT pg_advisory_unlock({LOCK_KEY});\n\\q\n")
        holder.stdin.close()
        holder.wait(timeout=30)
    results = [(p.wait(timeout=120), p.stdout.read().strip(), p.stderr.read().strip())
               for p in runs]
    assert all(rc == 0 for rc, _, _ in results), results
    applied = sorted(int(out.split()[1]) for _, out, _ in results)
    assert applied == [0, 0, len(MIGRATIONS)], results
    assert recorded(db) == MIGRATIONS


# A pgcheck built against a temporary set of migrations (never written into the repo).
# The generated pix_migrations object comes first, so the archive's own is not linked.
def build_tool(tmp, name, files):
    src = tmp / name
    src.mkdir()
    for fname, sql in files.items():
        (src / fname).write_text(sql)
    gen = tmp / f"{name}.c"
    with open(gen, "w") as f:
        subprocess.run([str(REPO / "common" / "embed-migrations.sh")]
                       + [str(p) for p in sorted(src.glob("*.sql"))], stdout=f, check=True)
    lib = BUILD / "libpixcommon.a"
    nm = subprocess.run(["nm", "-A", str(lib)], capture_output=True, text=True).stdout
    san = ["-fsanitize=address,undefined"] if "__asan" in nm else []
    pq = subprocess.run(["pkg-config", "--cflags", "libpq"], capture_output=True,
                        text=True).stdout.split()
    tool = tmp / name / "pgcheck"
    subprocess.run(["cc", "-std=gnu11", "-O0", "-Wall", "-Wextra", "-Werror",
                    "-Wno-unused-parameter", "-D_GNU_SOURCE", f"-I{REPO / 'common'}", *pq, *san,
                    "-o", str(tool), str(REPO / "tests" / "tools" / "pgcheck.c"), str(gen),
                    str(lib), "-lpq", "-lssl", "-lcrypto", "-lpthread", "-lm"],
                   check=True, timeout=120)
    return tool


FIRST = {"001_a.sql": "CREATE TABLE mig_a (id int PRIMARY KEY);\n"
                      "INSERT INTO mig_a VALUES (1), (2);\n"}
SECOND = {**FIRST, "002_b.sql": "-- adds a column\nALTER TABLE mig_a ADD COLUMN note text;\n"
                                "COMMENT ON TABLE mig_a IS 'it''s \"quoted\" ?? \\o/';\n"}
BAD = {**SECOND, "003_c.sql": "CREATE TABLE mig_c (x int);\n"
                              "INSERT INTO mig_a VALUES (3);\n"
                              "SELEC 1;\n"}


def test_incremental_and_failing(db, tmp_path):
    if not (BUILD / "libpixcommon.a").exists():
        pytest.skip("build/libpixcommon.a not built")
    first = build_tool(tmp_path, "first", FIRST)
    second = build_tool(tmp_path, "second", SECOND)
    bad = build_tool(tmp_path, "bad", BAD)

    assert migrate(db, first)[:2] == (0, "applied 1")
    assert migrate(db, second)[:2] == (0, "applied 1")
    assert recorded(db) == ["001_a", "002_b"]
    assert psql(db, "SELECT obj_description('mig_a'::regclass)") == "it's \"quoted\" ?? \\o/"

    rc, out, err = migrate(db, bad)
    assert rc == 1, (out, err)
    assert "003_c" in err and "line 3" in err and "syntax error" in err, err
    # rolled back as a whole: nothing of 003_c is left and it is not recorded
    assert recorded(db) == ["001_a", "002_b"]
    assert psql(db, "SELECT to_regclass('mig_c') IS NULL") == "t"
    assert psql(db, "SELECT count(*) FROM mig_a") == "2"
    assert migrate(db, second)[:2] == (0, "applied 0")
