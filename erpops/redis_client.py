"""A small binary-safe Redis (RESP2) client: what erpops needs of Redis.

erpops talks to Redis for a few admin commands (BGSAVE, LASTSAVE, INFO,
CONFIG GET) and to copy keys (DUMP/RESTORE); a dependency on a full client
library is not worth that. Arguments and bulk replies are bytes; an error
reply raises RedisError from ``call`` and is returned by ``pipeline``.
"""

from __future__ import annotations

import socket
from urllib.parse import unquote, urlparse


class RedisError(Exception):
    pass


class Client:
    """A binary-safe RESP2 client: arguments and bulk replies are bytes."""

    def __init__(self, url: str, password: str | None = None, timeout: float = 30):
        parsed = urlparse(url)
        self.host = parsed.hostname or ""
        if parsed.scheme == "unix":
            self.sock = socket.socket(socket.AF_UNIX)
            self.sock.settimeout(timeout)
            self.sock.connect(parsed.path)
        else:
            self.sock = socket.create_connection((self.host, parsed.port or 6379), timeout=timeout)
            if parsed.scheme == "rediss":
                import ssl

                self.sock = ssl.create_default_context().wrap_socket(self.sock, server_hostname=self.host)
        self.file = self.sock.makefile("rb")
        secret = password or (unquote(parsed.password) if parsed.password else None)
        if secret:
            user = unquote(parsed.username) if parsed.username else None
            self.call("AUTH", *([user] if user else []), secret)

    @staticmethod
    def _encode(args) -> bytes:
        parts = [b"*%d\r\n" % len(args)]
        for a in args:
            data = a if isinstance(a, bytes) else str(a).encode()
            parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
        return b"".join(parts)

    def call(self, *args):
        self.sock.sendall(self._encode(args))
        reply = self._reply()
        if isinstance(reply, RedisError):
            raise reply
        return reply

    def pipeline(self, commands: list[tuple]) -> list:
        """Send every command, then read every reply; errors are returned, not raised."""
        self.sock.sendall(b"".join(self._encode(c) for c in commands))
        return [self._reply() for _ in commands]

    def _reply(self):
        line = self.file.readline()
        if not line:
            raise OSError("connection closed by redis")
        kind, rest = line[:1], line[1:].rstrip(b"\r\n")
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            return RedisError(rest.decode(errors="replace"))
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            if n < 0:
                return None
            return self.file.read(n + 2)[:-2]
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self._reply() for _ in range(n)]
        raise OSError(f"unexpected reply from redis: {line[:40]!r}")

    def close(self) -> None:
        try:
            self.file.close()
        finally:
            self.sock.close()
