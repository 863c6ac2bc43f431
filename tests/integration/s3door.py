# A relay in front of radosgw for the integration tests: counts what reaches storage, drops
# or refuses PUTs on demand, caps bandwidth. SigV4 signs the Host header, so requests go
# upstream unchanged.
import collections
import re
import socket
import threading
import time
import urllib.parse


class S3Door:
    """An HTTP/1.1 relay in front of radosgw for presigned URLs (the API signs them for
    S3_PUBLIC_ENDPOINT = this relay). Requests go upstream unchanged, Host header included,
    which SigV4 signs. Counts successful PUTs per partNumber, can drop the next N PUTs
    mid-body (the connection is closed), answer the next N PUTs 403 as storage does for an
    expired URL, cap the bandwidth, and hang: while hang_if(method, target, phase) is true a
    request is held unanswered (phase "request") or its answer stops after the status line
    and headers (phase "response"), as a hung server or connection looks; clearing hang_if
    releases them (their connections are closed)."""

    def __init__(self, upstream, rate=None):
        u = urllib.parse.urlsplit(upstream)
        self.upstream = (u.hostname, u.port)
        self.rate = rate
        self.lock = threading.Lock()
        self.puts = collections.Counter()
        self.requests = collections.Counter()  # (method, first path segment after the bucket)
        self.drop_next = 0
        self.dropped = 0
        self.forbid_next = 0
        self.hang_if = None
        self.hung = 0  # requests held so far
        self.srv = socket.socket()
        self.srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.srv.bind(("127.0.0.1", 0))
        self.srv.listen(64)
        self.url = "http://127.0.0.1:%d" % self.srv.getsockname()[1]
        self.closing = False
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self):
        self.closing = True
        self.srv.close()

    def reset(self):
        with self.lock:
            self.puts.clear()
            self.requests.clear()
            self.dropped = 0

    def count(self, method=None, prefix=None):
        """Requests relayed since the last reset, by method and key prefix (e.g. "blobs")."""
        with self.lock:
            return sum(n for (m, p), n in self.requests.items()
                       if (method is None or m == method) and (prefix is None or p == prefix))

    def total_puts(self):
        with self.lock:
            return sum(self.puts.values())

    def _hang(self, method, target, phase):
        """Holds the calling relay thread while hang_if says so (at most 120 s); True if it
        held (the caller then drops the connection)."""
        f = self.hang_if
        if f is None or not f(method.decode(), target.decode(), phase):
            return False
        with self.lock:
            self.hung += 1
        deadline = time.monotonic() + 120
        while self.hang_if is not None and not self.closing and time.monotonic() < deadline:
            time.sleep(0.05)
        return True

    def _accept(self):
        while not self.closing:
            try:
                c, _ = self.srv.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    @staticmethod
    def _head(sock, buf):
        while b"\r\n\r\n" not in buf:
            if len(buf) > 65536:
                raise ValueError("head too large")
            d = sock.recv(65536)
            if not d:
                return None, buf
            buf += d
        i = buf.index(b"\r\n\r\n") + 4
        return buf[:i], buf[i:]

    @staticmethod
    def _length(head):
        m = re.search(rb"\r\ncontent-length:\s*(\d+)", head, re.I)
        return int(m.group(1)) if m else None

    def _relay(self, src, dst, n, rest):
        """Copies n bytes (rest first) from src to dst; returns the bytes read past them."""
        t0, sent = time.monotonic(), 0
        while n > 0:
            if not rest:
                rest = src.recv(min(n, 256 * 1024))
                if not rest:
                    raise ConnectionError("eof in body")
            chunk, rest = rest[:n], rest[n:]
            dst.sendall(chunk)
            n -= len(chunk)
            sent += len(chunk)
            if self.rate:
                ahead = sent / self.rate - (time.monotonic() - t0)
                if ahead > 0:
                    time.sleep(ahead)
        return rest

    def _line(self, src, dst, rest):
        """Copies one CRLF-terminated line; returns (line, bytes read past it)."""
        while b"\r\n" not in rest:
            d = src.recv(65536)
            if not d:
                raise ConnectionError("eof in chunked body")
            rest += d
        i = rest.index(b"\r\n") + 2
        dst.sendall(rest[:i])
        return rest[:i], rest[i:]

    def _relay_chunked(self, src, dst, rest):
        """Copies a chunked body through its last chunk and trailers (keep-alive safe)."""
        while True:
            line, rest = self._line(src, dst, rest)
            size = int(line.split(b";")[0].strip() or b"0", 16)
            if size == 0:
                break
            rest = self._relay(src, dst, size + 2, rest)
        while True:  # trailers, up to the empty line
            line, rest = self._line(src, dst, rest)
            if line == b"\r\n":
                return rest

    def _serve(self, c):
        up, rest = None, b""
        c.settimeout(120)
        try:
            while True:
                head, rest = self._head(c, rest)
                if head is None:
                    return
                method, target = head.split(b" ", 2)[:2]
                length = self._length(head) or 0
                path = urllib.parse.urlsplit(target.decode()).path.split("/")
                with self.lock:
                    self.requests[(method.decode(), path[2] if len(path) > 2 else "")] += 1
                if method == b"PUT":
                    with self.lock:
                        drop = self.drop_next > 0
                        if drop:
                            self.drop_next -= 1
                            self.dropped += 1
                    if drop:  # read a little of the body, then drop the connection
                        if not rest:
                            c.recv(65536)
                        return
                    with self.lock:
                        forbid = self.forbid_next > 0
                        self.forbid_next -= forbid
                    if forbid:
                        rest = self._relay(c, _Sink(), length, rest)
                        body = (b"<?xml version=\"1.0\"?><Error><Code>AccessDenied</Code>"
                                b"<Message>Request has expired</Message></Error>")
                        c.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Type: application/xml\r\n"
                                  b"Content-Length: %d\r\n\r\n" % len(body) + body)
                        continue
                if self._hang(method, target, "request"):
                    return
                if up is None:
                    up = socket.create_connection(self.upstream, timeout=120)
                up.sendall(head)
                rest = self._relay(c, up, length, rest)
                rhead, urest = self._head(up, b"")
                if rhead is None:
                    return
                c.sendall(rhead)
                if self._hang(method, target, "response"):
                    return
                status = int(rhead.split(b" ", 2)[1])
                rlen = self._length(rhead)
                if method == b"HEAD" or status in (204, 304):
                    rlen = 0
                if rlen is None and re.search(rb"\r\ntransfer-encoding:\s*chunked", rhead, re.I):
                    self._relay_chunked(up, c, urest)
                elif rlen is None:  # until close: relay to EOF
                    c.sendall(urest)
                    while True:
                        d = up.recv(65536)
                        if not d:
                            return
                        c.sendall(d)
                else:
                    self._relay(up, c, rlen, urest)
                if method == b"PUT" and 200 <= status < 300:
                    q = urllib.parse.parse_qs(urllib.parse.urlsplit(target.decode()).query)
                    with self.lock:
                        self.puts[int(q.get("partNumber", ["0"])[0])] += 1
        except (OSError, ValueError, ConnectionError):
            return
        finally:
            c.close()
            if up is not None:
                up.close()


class _Sink:
    def sendall(self, b):
        pass
