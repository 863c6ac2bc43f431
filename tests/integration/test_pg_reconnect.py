"""common/pg survives PostgreSQL going away: `pgcheck loop` runs a prepared statement through
the pool every 100 ms while its own throwaway cluster is stopped for ~5 s and started again
on the same port; the tool reports errors meanwhile, never hangs, and recovers by itself."""
import os
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest

REPO = Path(__file__).resolve().parents[2]
BUILD = REPO / os.environ.get("PIXPLANE_BUILD", "build")
PGCHECK = BUILD / "tools" / "pgcheck"
PG = REPO / "minio-dev" / "pg"


class Cluster:
    """A throwaway PostgreSQL cluster driven by minio-dev/pg."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="pixtest-pg-")  # the script chowns it to postgres
        self.port = None
        self.url = None

    def _pg(self, *args):
        out = subprocess.run([str(PG), *args], timeout=120, capture_output=True, text=True)
        assert out.returncode == 0, f"minio-dev/pg {' '.join(args)}: {out.stderr[-2000:]}"
        return out.stdout.strip()

    def start(self):
        """First start: the script picks a port (outside the ephemeral range, so nothing
        grabs it during an outage); later starts reuse it explicitly."""
        if self.port is None:
            url = self._pg("start", self.dir).splitlines()[-1]
            self.port = urlsplit(url).port
            self.url = url + "?connect_timeout=2"
        else:
            self._pg("start", self.dir, str(self.port))

    def stop(self):
        self._pg("stop", self.dir)

    def destroy(self):
        try:
            self._pg("destroy", self.dir)
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)

    def psql(self, sql):
        out = subprocess.run(["psql", "-X", "-At", "-v", "ON_ERROR_STOP=1", "-d", self.url,
                              "-c", sql], check=True, timeout=30, capture_output=True,
                             text=True)
        return out.stdout.strip()


@pytest.fixture
def cluster():
    if not os.access(PG, os.X_OK):
        pytest.skip(f"{PG} not available")
    if not os.access(PGCHECK, os.X_OK):
        pytest.skip(f"{PGCHECK} not built (make {PGCHECK.relative_to(REPO)})")
    c = Cluster()
    try:
        c.start()
        yield c
    finally:
        c.destroy()


class Loop:
    """`pgcheck loop` in the background; lines are collected with their arrival time."""

    def __init__(self, url, seconds):
        self.seconds = seconds
        self.lines = []  # (monotonic time, line)
        self.proc = subprocess.Popen(
            [str(PGCHECK), "loop", "--url", url, "--seconds", str(seconds)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.append((time.monotonic(), line.rstrip("\n")))

    def wait_for(self, pred, timeout):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if pred(self.lines):
                return True
            time.sleep(0.05)
        return False

    def finish(self):
        """Waits for the tool; it must exit on its own shortly after its run time."""
        try:
            rc = self.proc.wait(timeout=self.seconds + 15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            pytest.fail("pgcheck loop hung: " + repr(self.lines[-5:]))
        self.reader.join(5)
        return rc, self.proc.stderr.read()


def fields(line):
    """'ok t=1.2 took=0.001 pid=42' -> {'kind': 'ok', 't': '1.2', ...}"""
    kind, *rest = line.split()
    out = {"kind": kind}
    for word in rest:
        if "=" in word:
            k, v = word.split("=", 1)
            out.setdefault(k, v)
    return out


def oks(lines):
    return sum(1 for _, line in lines if line.startswith("ok "))


def test_restart_is_survived(cluster):
    loop = Loop(cluster.url, seconds=16)
    assert loop.wait_for(lambda ls: oks(ls) >= 5, 10), loop.lines
    t_stop = time.monotonic()
    cluster.stop()
    time.sleep(5)
    t_start = time.monotonic()
    cluster.start()
    t_up = time.monotonic()
    rc, err = loop.finish()
    assert rc == 0, err

    lines = loop.lines
    assert lines and lines[-1][1].startswith("done "), lines[-3:]
    body = [(t, fields(line)) for t, line in lines[:-1]]
    assert all(f["kind"] in ("ok", "err") for _, f in body), lines
    before = [f for t, f in body if t < t_stop and f["kind"] == "ok"]
    outage = [f for t, f in body if t_stop + 0.5 < t < t_start]
    after = [f for t, f in body if t > t_up + 1.0]

    assert len(before) >= 5
    assert outage and all(f["kind"] == "err" for f in outage), outage
    # either no connection could be made, or the statement failed as a lost connection
    assert all(f["stage"] == "acquire" or (f["state"] == "08006" and f["lost"] == "1")
               for f in outage), outage
    assert len(after) >= 10 and all(f["kind"] == "ok" for f in after), after
    assert {f["pid"] for f in after}.isdisjoint({f["pid"] for f in before})
    # every round is bounded (connect_timeout=2 in the URL), none waits on a dead server
    assert max(float(f["took"]) for _, f in body) < 5.0
    assert "ok=" in lines[-1][1] and "err=" in lines[-1][1]


def test_killed_backend_is_replaced_transparently(cluster):
    loop = Loop(cluster.url, seconds=5)
    assert loop.wait_for(lambda ls: oks(ls) >= 5, 10), loop.lines
    killed = cluster.psql("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                          "WHERE application_name = 'pgcheck'")
    assert int(killed) >= 1
    rc, err = loop.finish()
    assert rc == 0, err
    body = [fields(line) for _, line in loop.lines[:-1]]
    # outside a transaction a lost connection is replaced and the statement retried once
    assert all(f["kind"] == "ok" for f in body), [f for f in body if f["kind"] != "ok"]
    assert len({f["pid"] for f in body}) >= 2
