"""Load a Redis RDB file into a running Redis, key by key, without restarting it.

A running Redis cannot be told to read another RDB file (``DEBUG RELOAD``
reads its own, and is disabled by default), and replacing its file means a
restart on its host. So the RDB is opened by a throw-away ``redis-server`` on
this host (a unix socket in a private directory, no persistence), and every
key is copied over with ``DUMP`` / ``RESTORE ... REPLACE`` with its remaining
time to live, database by database, in pipelined batches. The target is
flushed first (``FLUSHALL``): afterwards it holds exactly what the RDB held.
The target must run a Redis at least as new as the local ``redis-server``
(RESTORE refuses a payload of a newer RDB version, which is reported).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from pathlib import Path

from erpops.errors import MissingPrerequisite, OperationFailed
from erpops.redis_client import Client, RedisError

BATCH = 500
READY_TIMEOUT = 60.0


def keyspace(client: Client) -> list[int]:
    """The database numbers that hold keys, from INFO keyspace."""
    text = client.call("INFO", "keyspace") or b""
    return [int(m.group(1)) for m in re.finditer(rb"^db(\d+):keys=", text, re.MULTILINE)]


class TempServer:
    """A redis-server that only serves ``rdb`` to this process, on a unix socket."""

    def __init__(self, rdb: Path, workdir: Path):
        binary = shutil.which("redis-server")
        if binary is None:
            raise MissingPrerequisite("redis-server not found: restoring Redis opens the RDB with a local one",
                                      hint="apt-get install redis-server")
        import tempfile

        self.dir = workdir
        # a unix socket path must stay under 108 bytes: a short private directory of its own
        self.sock_dir = Path(tempfile.mkdtemp(prefix="erpops-redis-"))
        self.sock_path = self.sock_dir / "redis.sock"
        argv = [binary, "--port", "0", "--unixsocket", str(self.sock_path), "--unixsocketperm", "700",
                "--dir", str(workdir), "--dbfilename", rdb.name, "--save", "", "--appendonly", "no",
                "--logfile", str(workdir / "redis.log")]
        if rdb.parent != workdir:
            raise ValueError("the RDB must be in the work directory")
        self._popen = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                       stderr=subprocess.DEVNULL, start_new_session=True)
        self.pid = self._popen.pid

    @property
    def url(self) -> str:
        return f"unix://{self.sock_path}"

    def wait_ready(self, check=lambda: None) -> Client:
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            check()
            if self._popen.poll() is not None:
                log = (self.dir / "redis.log").read_text(errors="replace").strip().splitlines()[-3:]
                raise OperationFailed("the local redis-server could not open the backup's RDB: " + " / ".join(log),
                                      hint="a Redis older than the one that wrote the RDB cannot read it")
            if self.sock_path.exists():
                try:
                    client = Client(self.url)
                    if client.pipeline([("PING",)])[0] == "PONG":
                        return client
                    client.close()
                except OSError:
                    pass
            time.sleep(0.05)
        raise OperationFailed(f"the local redis-server did not load the RDB within {READY_TIMEOUT:g}s")

    def kill(self) -> None:
        if self._popen.poll() is None:
            self._popen.terminate()
            try:
                self._popen.wait(5)
            except subprocess.TimeoutExpired:
                self._popen.kill()
                self._popen.wait()
        shutil.rmtree(self.sock_dir, ignore_errors=True)


def copy_all(source: Client, target: Client, *, check=lambda: None) -> dict[int, int]:
    """FLUSHALL the target, then copy every key of every database with its TTL. {db: keys}."""
    copied: dict[int, int] = {}
    target.call("FLUSHALL")
    for db in keyspace(source):
        source.call("SELECT", db)
        target.call("SELECT", db)
        cursor = b"0"
        count = 0
        while True:
            check()
            cursor, keys = source.call("SCAN", cursor, "COUNT", BATCH)
            if keys:
                replies = source.pipeline([c for k in keys for c in (("PTTL", k), ("DUMP", k))])
                restores = []
                for key, ttl, payload in zip(keys, replies[0::2], replies[1::2]):
                    if payload is None or isinstance(payload, RedisError) or ttl == -2:
                        continue  # expired between SCAN and DUMP
                    restores.append(("RESTORE", key, max(ttl, 0), payload, "REPLACE"))
                for reply in target.pipeline(restores):
                    if isinstance(reply, RedisError):
                        raise OperationFailed(f"redis refused a key of the backup: {reply}",
                                              hint="the target Redis may be older than the one that wrote the RDB")
                count += len(restores)
            if cursor in (b"0", 0, "0"):
                break
        copied[db] = count
    return copied


def free_dir(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def private_dir(parent: Path, name: str) -> Path:
    path = parent / name
    path.mkdir(mode=0o700, exist_ok=True)
    os.chmod(path, 0o700)
    return path
