# HTTP server (common/http.c) against tests/tools/httpd: keep-alive, pipelining, limits
# (431/413), malformed input (400), slow clients (408), 100-continue, 1,000 connections.
# Only 127.0.0.1; every loop is bounded in count and time.
import os
import re
import resource
import select
import signal
import socket
import subprocess
import tempfile
import time

import pytest

from conftest import assert_sanitizer_clean

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.path.join(ROOT, os.environ.get("PIXPLANE_BUILD", "build"))
HTTPD = os.path.join(BUILD, "tools", "httpd")
NOFILE = 4096  # the 1,000-connection test needs more than the usual 1024 descriptors


def raise_nofile():
    """Raises our soft RLIMIT_NOFILE (inherited by httpd) to NOFILE where the hard limit allows."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = NOFILE if hard == resource.RLIM_INFINITY else min(NOFILE, hard)
    if soft != resource.RLIM_INFINITY and soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


class Httpd:
    """tests/tools/httpd on a free port (--port 0, then "listening PORT")."""

    def __init__(self, *args):
        if not os.path.exists(HTTPD):
            pytest.skip("%s not built (make %s)" % (HTTPD, os.path.relpath(HTTPD, ROOT)))
        raise_nofile()
        self.expect_exit = False  # set by a test that stops the server itself
        self.err = tempfile.TemporaryFile()
        self.proc = subprocess.Popen([HTTPD, "--port", "0", *args], stdout=subprocess.PIPE,
                                     stderr=self.err)
        ready, _, _ = select.select([self.proc.stdout], [], [], 15)
        line = self.proc.stdout.readline().decode() if ready else ""
        m = re.match(r"listening (\d+)", line)
        if not m:
            self.proc.kill()
            raise AssertionError("httpd did not start: %r %s" % (line, self.stderr()))
        self.port = int(m.group(1))

    def stderr(self):
        self.err.seek(0)
        return self.err.read().decode("utf-8", "replace")

    def stop(self):
        """Asserts it is still alive, then SIGTERM must give exit 0 and a quiet sanitizer."""
        alive = self.proc.poll() is None or self.expect_exit
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError("httpd ignored SIGTERM")
        self.proc.stdout.close()
        text = self.stderr()
        self.err.close()
        assert alive, "httpd died during the test (rc %s): %s" % (self.proc.returncode, text)
        assert self.proc.returncode == 0, "httpd exited %s: %s" % (self.proc.returncode, text)
        assert_sanitizer_clean(text)

    def connect(self, timeout=10):
        s = socket.create_connection(("127.0.0.1", self.port), timeout=timeout)
        s.settimeout(timeout)
        return s


@pytest.fixture
def httpd_factory():
    started = []

    def start(*args):
        h = Httpd(*args)
        started.append(h)
        return h

    yield start
    for h in started:
        h.stop()


@pytest.fixture
def httpd(httpd_factory):
    return httpd_factory()


class Reader:
    """Reads HTTP/1.1 responses from a socket (Content-Length framed, as the server sends)."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def _fill(self):
        data = self.sock.recv(65536)
        if not data:
            raise EOFError("connection closed")
        self.buf += data

    def _until(self, sep):
        while sep not in self.buf:
            self._fill()
        head, self.buf = self.buf.split(sep, 1)
        return head

    def _take(self, n):
        while len(self.buf) < n:
            self._fill()
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def response(self, skip_continue=True):
        while True:
            head = self._until(b"\r\n\r\n").decode("latin-1")
            lines = head.split("\r\n")
            status = int(lines[0].split(" ")[1])
            if status != 100 or not skip_continue:
                break
        headers = {}
        for ln in lines[1:]:
            k, v = ln.split(":", 1)
            headers[k.strip().lower()] = v.strip()
        body = self._take(int(headers.get("content-length", "0")))
        return status, headers, body

    def closed(self, timeout=5):
        """True if the server closes the connection (EOF or reset) within timeout."""
        self.sock.settimeout(timeout)
        try:
            while True:
                data = self.sock.recv(65536)
                if not data:
                    return True
                self.buf += data
        except ConnectionResetError:
            return True
        except socket.timeout:
            return False


def req(path, method="GET", headers=(), body=b"", version="1.1"):
    lines = ["%s %s HTTP/%s" % (method, path, version), "Host: 127.0.0.1"]
    lines += ["%s: %s" % kv for kv in headers]
    if body:
        lines.append("Content-Length: %d" % len(body))
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def exchange(h, raw):
    """One request on a new connection; the socket stays open in the returned Reader."""
    s = h.connect()
    s.sendall(raw)
    r = Reader(s)
    return r.response() + (r,)


def test_keep_alive_many_requests(httpd):
    with httpd.connect() as s:
        r = Reader(s)
        for _ in range(300):
            s.sendall(req("/hello"))
            status, hdr, body = r.response()
            assert (status, body) == (200, b"hello\n")
            assert hdr["connection"] == "keep-alive"
            assert re.fullmatch(r"[0-9a-f]{16}", hdr["x-request-id"])
            assert "date" in hdr and hdr["content-type"] == "text/plain"


def test_pipelining_answers_in_order(httpd):
    batch = [req("/sleep?ms=150", headers=[("X-Request-Id", "slow")])]
    batch += [req("/id", headers=[("X-Request-Id", "p%d" % i)]) for i in range(8)]
    batch += [req("/echo", method="POST", body=b"last one")]
    with httpd.connect() as s:
        s.sendall(b"".join(batch))
        r = Reader(s)
        got = [r.response() for _ in range(10)]
    assert [g[0] for g in got] == [200] * 10
    assert got[0][1]["x-request-id"] == "slow" and got[0][2] == b"slept 150\n"
    assert [g[2] for g in got[1:9]] == [("p%d" % i).encode() for i in range(8)]
    assert got[9][2] == b"last one"


def test_pipelining_beyond_read_buffer(httpd):
    n = 400  # ~40 KB of requests: more than the server's 16 KB read buffer
    with httpd.connect() as s:
        s.sendall(b"".join(req("/id", headers=[("X-Request-Id", "q%d" % i)]) for i in range(n)))
        r = Reader(s)
        assert [r.response()[2] for _ in range(n)] == [("q%d" % i).encode() for i in range(n)]


def test_request_id_rules(httpd):
    ok = "Ab9._-" * 10 + "abcd"  # 64 chars
    assert exchange(httpd, req("/id", headers=[("X-Request-Id", ok)]))[2] == ok.encode()
    for bad in (ok + "x", "has space", "semi;colon", "é"):
        raw = req("/id").replace(b"\r\n\r\n", ("\r\nX-Request-Id: %s\r\n\r\n" % bad).encode(
            "utf-8"))
        status, hdr, body, _ = exchange(httpd, raw)
        assert status == 200 and re.fullmatch(rb"[0-9a-f]{16}", body), (bad, body)
        assert hdr["x-request-id"] == body.decode()


def test_routes_decoding_and_errors(httpd):
    assert exchange(httpd, req("/hel%6Co"))[:3:2] == (200, b"hello\n")
    status, hdr, body, _ = exchange(httpd, req("/nothing"))
    assert status == 404 and b'"not_found"' in body
    status, hdr, body, _ = exchange(httpd, req("/hello", method="POST", body=b"x"))
    assert status == 405 and hdr["allow"] == "GET"
    assert exchange(httpd, req("/sleep?x=1&ms=%31"))[2] == b"slept 1\n"
    assert exchange(httpd, req("/hello/"))[0] == 404  # trailing slash is not special


def assert_server_error(status, hdr, body, code, reader):
    assert hdr["connection"] == "close"
    assert hdr["content-type"] == "application/json"
    assert re.fullmatch(r"[0-9a-f]{16}", hdr["x-request-id"])
    assert ('"code":"%s"' % code).encode() in body and b'"message":' in body
    assert reader.closed(5), "server kept the connection after %d" % status


def test_malformed_request_line_400(httpd):
    bad = (b"GARBAGE\r\n\r\n", b"GET /hello HTTP/1.1 x\r\n\r\n", b"get /hello HTTP/1.1\r\n\r\n",
           b"GET /hello\r\n\r\n", b"GET /hello HTTP/2.0\r\n\r\n", b"GET /he llo HTTP/1.1\r\n\r\n",
           b"GET /he%zzllo HTTP/1.1\r\n\r\n", b"GET /a%00b HTTP/1.1\r\n\r\n", b"\x00\x01\r\n\r\n",
           b"GET /x HTTP/1.1\r\nBad Header\r\n\r\n",
           b"POST /echo HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab")
    for raw in bad:
        status, hdr, body, r = exchange(httpd, raw)
        assert status == 400, raw
        assert_server_error(status, hdr, body, "bad_request", r)


def test_header_too_large_431(httpd_factory):
    h = httpd_factory("--max-header", "4096")
    raw = req("/hello", headers=[("X-Big", "a" * 5000)])
    status, hdr, body, r = exchange(h, raw)
    assert status == 431
    assert_server_error(status, hdr, body, "header_too_large", r)
    many = req("/hello", headers=[("X-H%d" % i, "v") for i in range(100)])
    assert exchange(h, many)[0] == 431
    assert exchange(h, req("/hello", headers=[("X-Ok", "a" * 3000)]))[0] == 200


def test_body_too_large_content_length_413(httpd_factory):
    h = httpd_factory("--max-body", "1024")
    with h.connect() as s:  # only the head: the limit is checked before any body byte
        s.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n")
        r = Reader(s)
        status, hdr, body = r.response()
        assert status == 413
        assert_server_error(status, hdr, body, "payload_too_large", r)
    assert exchange(h, req("/echo", method="POST", body=b"y" * 1024))[2] == b"y" * 1024


def test_body_too_large_chunked_413(httpd_factory):
    h = httpd_factory("--max-body", "1024")
    chunk = b"258\r\n" + b"z" * 600 + b"\r\n"
    with h.connect() as s:
        s.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
        s.sendall(chunk + chunk + chunk + b"0\r\n\r\n")
        r = Reader(s)
        status, hdr, body = r.response()
        assert status == 413
        assert_server_error(status, hdr, body, "payload_too_large", r)
    raw = (b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + chunk +
           b"0\r\n\r\n")
    assert exchange(h, raw)[2] == b"z" * 600


def test_slow_head_gets_408(httpd_factory):
    h = httpd_factory("--header-timeout", "1")
    with h.connect() as s:
        t0 = time.monotonic()
        s.sendall(b"GET /hello HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        time.sleep(0.3)
        s.sendall(b"still ")  # progress does not extend the head deadline
        r = Reader(s)
        status, hdr, body = r.response()
        took = time.monotonic() - t0
        assert status == 408 and 0.8 <= took <= 3.0, took
        assert_server_error(status, hdr, body, "request_timeout", r)
    with h.connect() as s:  # a connection that never sends anything is closed silently
        r = Reader(s)
        assert r.closed(4) and r.buf == b""
    assert exchange(h, req("/hello"))[0] == 200


def test_trickled_body_is_due_by_its_deadline(httpd_factory):
    """Progress alone does not keep a body alive: it is due body-timeout + length /
    min-body-rate after the head (here 1 + 100/100 = 2 s), then 408, trickle or not."""
    h = httpd_factory("--body-timeout", "1", "--min-body-rate", "100")
    with h.connect() as s:
        s.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n")
        t0 = time.monotonic()
        s.settimeout(0.25)
        got = b""
        while b"\r\n" not in got and time.monotonic() - t0 < 10:
            try:
                s.sendall(b"b")
                got += s.recv(4096)
            except socket.timeout:
                pass
        took = time.monotonic() - t0
        assert got.startswith(b"HTTP/1.1 408"), got[:100]
        assert 1.8 <= took <= 3.0, took


def test_connections_per_address_capped(httpd_factory):
    """Over max-conns-per-addr an address gets 429 and a close at once; another address
    is served, and a closed connection frees its place."""
    h = httpd_factory("--max-conns-per-addr", "3")
    held = [h.connect() for _ in range(3)]
    try:
        for s in held:  # each is served (and so accepted) before the next test
            s.sendall(req("/hello"))
            assert Reader(s).response()[0] == 200
        with h.connect() as s:
            r = Reader(s)
            status, hdr, body = r.response()
            assert status == 429 and b"too_many_connections" in body, (status, body)
        other = socket.socket()
        other.bind(("127.0.0.2", 0))
        other.connect(("127.0.0.1", h.port))
        with other:
            other.sendall(req("/hello"))
            assert Reader(other).response()[0] == 200
        held.pop().close()
        time.sleep(0.2)
        assert exchange(h, req("/hello"))[0] == 200
    finally:
        for s in held:
            s.close()


def test_stalled_body_gets_408_and_idle_closes(httpd_factory):
    h = httpd_factory("--body-timeout", "1", "--idle-timeout", "1", "--min-body-rate", "10")
    with h.connect() as s:
        s.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n" + b"a" * 10)
        t0 = time.monotonic()
        for _ in range(3):  # progress keeps the body alive ...
            time.sleep(0.5)
            s.sendall(b"b" * 10)
        r = Reader(s)
        status, hdr, body = r.response()  # ... a stall does not
        took = time.monotonic() - t0
        assert status == 408 and 1.8 <= took <= 4.0, took
        assert_server_error(status, hdr, body, "request_timeout", r)
    with h.connect() as s:  # idle keep-alive: closed silently after idle-timeout
        s.sendall(req("/hello"))
        r = Reader(s)
        assert r.response()[0] == 200
        t0 = time.monotonic()
        assert r.closed(4) and r.buf == b""
        assert 0.8 <= time.monotonic() - t0 <= 3.0


def test_expect_100_continue(httpd_factory):
    h = httpd_factory("--max-body", "1024")
    with h.connect() as s:
        s.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
                  b"Content-Length: 5\r\n\r\n")
        r = Reader(s)
        assert r.response(skip_continue=False)[0] == 100
        s.sendall(b"hello")
        assert r.response()[:3:2] == (200, b"hello")
    with h.connect() as s:  # too large: 413 straight away, no 100
        s.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
                  b"Content-Length: 5000\r\n\r\n")
        r = Reader(s)
        status, hdr, body = r.response(skip_continue=False)
        assert status == 413
        assert_server_error(status, hdr, body, "payload_too_large", r)
    status, hdr, body, r = exchange(h, req("/echo", method="POST", body=b"x",
                                           headers=[("Expect", "teapot")]))
    assert status == 417


def test_http10_and_connection_close(httpd):
    for raw in (req("/hello", version="1.0"), req("/hello", headers=[("Connection", "close")])):
        status, hdr, body, r = exchange(httpd, raw)
        assert status == 200 and hdr["connection"] == "close"
        assert r.closed(5)
    raw = req("/hello", version="1.0", headers=[("Connection", "keep-alive")])
    with httpd.connect() as s:
        r = Reader(s)
        for _ in range(3):
            s.sendall(raw)
            assert r.response()[1]["connection"] == "keep-alive"


def test_large_body_round_trip(httpd):
    data = os.urandom(900 * 1024)
    status, hdr, body, _ = exchange(httpd, req("/echo", method="POST", body=data))
    assert status == 200 and body == data


def test_client_gone_while_on_worker(httpd):
    for _ in range(5):
        s = httpd.connect()
        s.sendall(req("/sleep?ms=200"))
        s.close()
    s = httpd.connect()  # reset instead of a clean close
    s.sendall(req("/sleep?ms=200"))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    s.close()
    time.sleep(0.5)
    assert exchange(httpd, req("/hello"))[0] == 200


def test_sigterm_drains_inflight(httpd_factory):
    h = httpd_factory()
    h.expect_exit = True
    with h.connect() as s:
        s.sendall(req("/sleep?ms=400"))
        time.sleep(0.1)
        h.proc.send_signal(signal.SIGTERM)
        status, hdr, body = Reader(s).response()
        assert status == 200 and hdr["connection"] == "close"
    assert h.proc.wait(10) == 0
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", h.port), timeout=2).close()


def test_shutdown_with_request_still_on_worker(httpd_factory):
    h = httpd_factory("--drain", "0.2")  # gives up waiting long before the handler answers
    h.expect_exit = True
    s = h.connect()
    s.sendall(req("/sleep?ms=1500"))
    time.sleep(0.2)
    h.proc.send_signal(signal.SIGTERM)
    assert Reader(s).closed(10)  # server freed under the request: no answer, no crash
    s.close()
    assert h.proc.wait(10) == 0


def test_thousand_concurrent_connections(httpd):
    n = 1000
    if resource.getrlimit(resource.RLIMIT_NOFILE)[0] < n + 100:
        pytest.skip("RLIMIT_NOFILE hard limit too low for %d connections" % n)
    deadline = time.monotonic() + 60
    socks = []
    try:
        for _ in range(n):  # all open at once ...
            socks.append(httpd.connect(timeout=20))
        for i, s in enumerate(socks):  # ... then all send ...
            s.sendall(req("/id", headers=[("X-Request-Id", "c%d" % i)]))
        for i, s in enumerate(socks):  # ... then all read
            status, hdr, body = Reader(s).response()
            assert (status, body) == (200, ("c%d" % i).encode())
            assert time.monotonic() < deadline
    finally:
        for s in socks:
            s.close()
    assert exchange(httpd, req("/hello"))[0] == 200
