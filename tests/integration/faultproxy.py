"""A small fault-injecting HTTP proxy for tests, in front of an S3 endpoint.

Each request gets its own upstream connection and every response says
``Connection: close``, so no HTTP state survives a request: the client simply
reconnects (botocore does). Before forwarding, a seeded RNG decides whether
this request fails instead — with a 500, a 503 (S3-style XML error bodies, so
the client sees InternalError / ServiceUnavailable) or a connection reset (the
request is read, then the socket is closed with RST and no response). An
injected failure never reaches the server, so a retried request cannot have
been half-applied. Bodies (Content-Length or chunked, including aws-chunked
uploads) are streamed in small pieces, never buffered whole; ``Expect:
100-continue`` is answered by the proxy itself (or with the injected error).
The proxy counts what it did; threads are bounded and ``stop()`` joins them.

``hold(predicate)`` makes the proxy keep every request whose method and path
match waiting, unanswered and never forwarded, until ``release()`` or
``stop()`` (then the connection is reset): a test can freeze a client at an
exact point (the first upload of a file, the manifest's PUT) and kill it there.

    with FaultProxy("127.0.0.1", 8333, rate=0.2, seed=7) as proxy:
        ... endpoint=proxy.url ...
    assert proxy.injected / proxy.requests >= 0.10
"""

from __future__ import annotations

import random
import socket
import struct
import threading
from collections import Counter

PIECE = 64 * 1024
HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "expect", "te", "upgrade"}
KINDS = ("500", "503", "reset")
_BODIES = {
    "500": (b"500 Internal Server Error", b"InternalError", b"We encountered an internal error. Please try again."),
    "503": (b"503 Service Unavailable", b"ServiceUnavailable", b"Please reduce your request rate."),
}


class FaultProxy:
    def __init__(self, upstream_host: str, upstream_port: int, *, rate: float = 0.2, seed: int = 1,
                 kinds: tuple[str, ...] = KINDS, max_connections: int = 32, timeout: float = 60):
        assert 0 <= rate < 1 and kinds and set(kinds) <= set(KINDS)
        self.upstream = (upstream_host, upstream_port)
        self.rate, self.kinds, self.timeout = rate, kinds, timeout
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(max_connections)
        self._stopping = threading.Event()
        self._workers: set[threading.Thread] = set()
        self._open: set[socket.socket] = set()  # client sockets in use, shut down by stop()
        self._hold = None  # predicate(method, path) -> bool
        self.held = threading.Event()  # set when a request is being held
        self._released = threading.Event()
        self.counts: Counter = Counter()
        self._listener = socket.create_server(("127.0.0.1", 0), backlog=64)
        self._listener.settimeout(0.2)
        self.port = self._listener.getsockname()[1]
        self._acceptor = threading.Thread(target=self._accept_loop, name="faultproxy-accept", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def requests(self) -> int:
        return self.counts["requests"]

    @property
    def injected(self) -> int:
        return sum(self.counts[f"injected_{k}"] for k in KINDS)

    def report(self) -> dict:
        with self._lock:
            return dict(self.counts)

    def hold(self, predicate) -> threading.Event:
        """Hold requests for which ``predicate(method, path)`` is true; returns the event set
        when the first one arrives."""
        self.held.clear()
        self._released.clear()
        self._hold = predicate
        return self.held

    def release(self) -> None:
        """Stop holding: held requests are reset (never forwarded), new ones go through."""
        self._hold = None
        self._released.set()

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> "FaultProxy":
        self._acceptor.start()
        return self

    def stop(self, timeout: float = 10) -> None:
        self._stopping.set()
        self.release()
        self._acceptor.join(timeout)
        self._listener.close()
        with self._lock:
            for sock in self._open:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        for worker in list(self._workers):
            worker.join(timeout)

    def __enter__(self) -> "FaultProxy":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _accept_loop(self) -> None:
        while not self._stopping.is_set():
            if not self._slots.acquire(timeout=0.2):
                continue  # bounded: wait for a connection to finish
            try:
                conn, _ = self._listener.accept()
            except (socket.timeout, OSError):
                self._slots.release()
                continue
            worker = threading.Thread(target=self._serve, args=(conn,), name="faultproxy-conn", daemon=True)
            with self._lock:
                self._workers = {w for w in self._workers if w.is_alive()} | {worker}
                self._open.add(conn)
            worker.start()

    def _count(self, key: str) -> None:
        with self._lock:
            self.counts[key] += 1

    def _decide(self) -> str | None:
        with self._lock:
            self.counts["requests"] += 1
            if self._rng.random() < self.rate:
                kind = self._rng.choice(self.kinds)
                self.counts[f"injected_{kind}"] += 1
                return kind
            return None

    # -- one request per connection ------------------------------------------------------------
    def _serve(self, client: socket.socket) -> None:
        try:
            client.settimeout(self.timeout)
            reader = client.makefile("rb")
            head = _read_head(reader)
            if head is None:
                return
            request_line, headers = head
            hold = self._hold
            if hold is not None and hold(*_method_path(request_line)):
                self._count("held")
                self.held.set()
                self._released.wait(self.timeout)
                _fail(client, "reset")
                return
            fault = self._decide()
            expects = _header(headers, "expect").lower() == "100-continue"
            if fault and not expects:
                _drain(_body(reader, headers))  # the whole request arrives, then it fails
            if fault:
                _fail(client, fault)
                return
            if expects:
                client.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
            self._forward(client, reader, request_line, headers)
            self._count("forwarded")
        except (OSError, ValueError):
            self._count("errors")  # a peer gave up or sent garbage: the client sees a dropped connection
        finally:
            with self._lock:
                self._open.discard(client)
            self._slots.release()
            _close(client)

    def _forward(self, client, reader, request_line: bytes, headers: list) -> None:
        with socket.create_connection(self.upstream, timeout=self.timeout) as upstream:
            upstream.sendall(_head_bytes(request_line, _rewrite(headers)))
            for piece in _body(reader, headers):
                upstream.sendall(piece)
            up_reader = upstream.makefile("rb")
            head = _read_head(up_reader)
            if head is None:
                raise OSError("upstream closed without a response")
            status_line, resp_headers = head
            client.sendall(_head_bytes(status_line, _rewrite(resp_headers)))
            # Upstream was asked to close after this response: relay until EOF.
            while piece := up_reader.read1(PIECE):
                client.sendall(piece)


def _read_head(reader) -> tuple[bytes, list[tuple[str, str]]] | None:
    first = reader.readline(65537)
    if not first:
        return None
    headers = []
    while True:
        line = reader.readline(65537)
        if line in (b"\r\n", b"\n", b""):
            break
        name, _, value = line.decode("latin-1").partition(":")
        headers.append((name.strip(), value.strip()))
    return first.rstrip(b"\r\n"), headers


def _method_path(request_line: bytes) -> tuple[str, str]:
    parts = request_line.decode("latin-1").split(" ")
    return (parts[0], parts[1]) if len(parts) >= 2 else ("", "")


def _header(headers, name: str) -> str:
    return next((v for k, v in headers if k.lower() == name), "")


def _rewrite(headers) -> list[tuple[str, str]]:
    kept = [(k, v) for k, v in headers if k.lower() not in HOP_BY_HOP]
    return kept + [("Connection", "close")]


def _head_bytes(first_line: bytes, headers) -> bytes:
    lines = [first_line] + [f"{k}: {v}".encode("latin-1") for k, v in headers]
    return b"\r\n".join(lines) + b"\r\n\r\n"


def _body(reader, headers):
    """The request body's raw bytes, in pieces (chunked framing passed through unchanged)."""
    if "chunked" in _header(headers, "transfer-encoding").lower():
        while True:
            size_line = reader.readline(65537)
            if not size_line:
                raise OSError("chunked body cut short")
            yield size_line
            size = int(size_line.split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while True:  # trailers, then the empty line
                    line = reader.readline(65537)
                    yield line
                    if line in (b"\r\n", b"\n", b""):
                        return
            yield from _exactly(reader, size + 2)  # data and its CRLF
    else:
        yield from _exactly(reader, int(_header(headers, "content-length") or 0))


def _exactly(reader, n: int):
    while n > 0:
        piece = reader.read1(min(n, PIECE))
        if not piece:
            raise OSError("body cut short")
        n -= len(piece)
        yield piece


def _drain(pieces) -> None:
    for _ in pieces:
        pass


def _fail(client: socket.socket, kind: str) -> None:
    if kind == "reset":
        # SO_LINGER with a zero timeout: close() sends RST instead of FIN.
        client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        return
    status, code, message = _BODIES[kind]
    body = (b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>' + code + b"</Code><Message>" + message
            + b"</Message></Error>")
    client.sendall(b"HTTP/1.1 " + status + b"\r\nContent-Type: application/xml\r\nContent-Length: "
                   + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n" + body)


def _close(sock: socket.socket) -> None:
    try:
        sock.close()
    except OSError:
        pass
