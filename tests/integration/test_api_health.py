# The API process itself: migrations on an empty database (and a rerun that changes
# nothing), /healthz and /readyz, readiness following PostgreSQL going away and coming
# back without an API restart, the token command, --help.
import os
import shutil
import subprocess
import tempfile
import time

import pytest
import requests

from conftest import API_BIN, ROOT, ApiProcess, free_port, make_token, sql, sql_value

PG = os.path.join(ROOT, "minio-dev", "pg")


@pytest.fixture
def own_pg(stack):
    """A throwaway PostgreSQL cluster this test may stop and start."""
    d = tempfile.mkdtemp(prefix="pixplane-test-pg-")
    shutil.rmtree(d)
    port = free_port()
    subprocess.run([PG, "start", d, str(port)], check=True, timeout=60,
                   stdout=subprocess.DEVNULL)
    url = "postgresql://pixplane@127.0.0.1:%d/pixplane" % port
    yield d, port, url
    subprocess.run([PG, "stop", d], timeout=60, stdout=subprocess.DEVNULL)


def migrate(url):
    out = subprocess.run([API_BIN, "migrate"], env=dict(os.environ, DATABASE_URL=url),
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return int(out.stdout.strip().rsplit(" ", 1)[1])


def schema_dump(url):
    out = subprocess.check_output(["pg_dump", "--schema-only", url], text=True, timeout=60)
    # pg_dump 15.14+ writes a random \restrict key per run
    return "\n".join(l for l in out.splitlines() if not l.startswith(("\\restrict", "\\unrestrict")))


def wait_ready(url, want, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = requests.get(url + "/readyz", timeout=5)
        if r.status_code == want:
            return r.json()
        time.sleep(0.2)
    raise AssertionError("readyz never answered %d (last %d %s)" % (want, r.status_code, r.text))


def test_migrations_apply_once(own_pg):
    _, _, url = own_pg
    applied = migrate(url)
    assert applied >= 1
    before = schema_dump(url)
    assert migrate(url) == 0
    assert schema_dump(url) == before
    n = sql_value("SELECT count(*) FROM schema_migrations", url=url)
    assert int(n) == applied
    for table in ("users", "images", "blobs", "image_variants", "upload_sessions",
                  "upload_chunks", "outbox", "change_log", "gc_objects"):
        assert sql("SELECT to_regclass('%s')" % table, url=url)[0][0] == table


def test_readyz_follows_postgres(own_pg):
    d, port, url = own_pg
    api = ApiProcess({"DATABASE_URL": url})
    try:
        assert requests.get(api.url + "/healthz", timeout=5).json() == {"status": "ok"}
        doc = wait_ready(api.url, 503)  # not migrated yet
        assert doc["checks"]["database"] == "migrations_pending"
        migrate(url)
        doc = wait_ready(api.url, 200)
        assert doc["checks"] == {"database": "ok", "storage": "ok", "draining": False}
        subprocess.run([PG, "stop", d], check=True, timeout=60, stdout=subprocess.DEVNULL)
        doc = wait_ready(api.url, 503)
        assert doc["checks"]["database"] == "unreachable"
        assert requests.get(api.url + "/healthz", timeout=5).status_code == 200
        subprocess.run([PG, "start", d, str(port)], check=True, timeout=60,
                       stdout=subprocess.DEVNULL)
        wait_ready(api.url, 200)
        # requests work again on the same process
        c = requests.post(api.url + "/uploads", timeout=10,
                          headers={"Authorization": "Bearer " + api.token("after-restart")},
                          json={"file_name": "a.png", "file_size": 5, "mime_type": "image/png"})
        assert c.status_code == 201, c.text
    finally:
        api.stop()


def test_readyz_reports_storage(stack):
    api = ApiProcess({"S3_ENDPOINT": "http://127.0.0.1:%d" % free_port()})
    try:
        doc = wait_ready(api.url, 503)
        assert doc["checks"]["storage"] == "unreachable"
    finally:
        api.stop()


def test_token_command_and_help(stack):
    tok = make_token("alice", admin=True, ttl=60)
    assert tok.count(".") == 2
    out = subprocess.run([API_BIN, "token", "--user", "bad user!"], capture_output=True,
                         text=True, timeout=10)
    assert out.returncode != 0
    out = subprocess.run([API_BIN, "--help"], capture_output=True, text=True, timeout=10)
    assert out.returncode == 0
    for env in ("DATABASE_URL", "S3_ENDPOINT", "PIXPLANE_JWT_SECRET", "PIXPLANE_CHUNK_SIZE"):
        assert env in out.stdout
    out = subprocess.run([API_BIN, "--no-such-flag"], capture_output=True, text=True, timeout=10)
    assert out.returncode == 2 and "no-such-flag" in out.stderr
