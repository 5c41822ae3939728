"""pg_dump of one database on an exported snapshot, streamed, never spooled.

``pg_dump --format=custom --compress=0 --snapshot=ID`` writes to a pipe; the
caller reads it (``DumpStream.read``) straight into the repository, which
compresses (zstd) and encrypts on the way, so the dump never touches a local
disk and is compressed once, by the faster compressor. The custom format is
what ``pg_restore`` reads (selective and parallel restore); pg_dump itself
can only run in parallel in the directory format, which cannot be streamed.

The password reaches pg_dump through PGPASSWORD in its environment, never on
its command line (which ``ps`` shows to every user of the host).
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import threading
import time
from collections import deque
from pathlib import Path

from erpops.errors import OperationFailed
from erpops.pg.binaries import client_binary
from erpops.pg.connect import NodeTarget

STDERR_LINES_KEPT = 40


def dump_argv(pg_dump: Path | str, target: NodeTarget, dbname: str, snapshot_id: str | None) -> list[str]:
    argv = [str(pg_dump), "--format=custom", "--compress=0", "--no-password",
            f"--host={target.host}", f"--port={target.port}", f"--username={target.user}", f"--dbname={dbname}"]
    if snapshot_id:
        argv.append(f"--snapshot={snapshot_id}")
    return argv


class DumpStream:
    """A running pg_dump whose stdout is read like a file. ``read`` hashes and counts
    what passes (sha256 of the plain dump, bytes); ``finish`` waits and checks the exit."""

    def __init__(self, target: NodeTarget, dbname: str, snapshot_id: str | None, *, bin_dir: str | None = None):
        env = dict(os.environ)
        env.pop("PGPASSWORD", None)
        secret = target.password()
        if secret is not None:
            env["PGPASSWORD"] = secret.reveal()
        env["PGAPPNAME"] = "erpops backup"
        self.dbname = dbname
        self.target = target
        self.argv = dump_argv(client_binary("pg_dump", bin_dir), target, dbname, snapshot_id)
        try:
            self._popen = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                           stderr=subprocess.PIPE, env=env, start_new_session=True,
                                           bufsize=1 << 20)
        except OSError as exc:
            raise OperationFailed(f"cannot start {self.argv[0]}: {exc.strerror}") from None
        self.pid = self._popen.pid
        self.sha256 = hashlib.sha256()
        self.bytes = 0
        self.started = time.monotonic()
        self.finished: float | None = None
        self._stderr: deque[str] = deque(maxlen=STDERR_LINES_KEPT)
        # stderr is drained by a thread: a chatty pg_dump must never block on a full pipe
        self._drain = threading.Thread(target=self._read_stderr, daemon=True)
        self._drain.start()
        self.on_read = None  # callback(bytes_so_far), for progress

    def _read_stderr(self) -> None:
        for raw in iter(self._popen.stderr.readline, b""):
            self._stderr.append(raw.decode("utf-8", "replace").rstrip())
        self._popen.stderr.close()

    def read(self, n: int = -1) -> bytes:
        data = self._popen.stdout.read(n if n and n > 0 else 1 << 20)
        if data:
            self.sha256.update(data)
            self.bytes += len(data)
            if self.on_read is not None:
                self.on_read(self.bytes)
        return data

    def kill(self) -> None:
        """Stop pg_dump (a step timeout, Ctrl-C, or the upload failed)."""
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(self.pid, sig)
            except (ProcessLookupError, PermissionError):
                return
            try:
                self._popen.wait(2)
                return
            except subprocess.TimeoutExpired:
                continue

    def finish(self) -> None:
        """Wait for pg_dump; OperationFailed with its last stderr lines unless it exited 0."""
        try:
            self._popen.stdout.close()
        except OSError:
            pass
        code = self._popen.wait()
        self._drain.join(5)
        self.finished = time.monotonic()
        if code != 0:
            from erpops.secrets import REDACTOR

            tail = "; ".join(line for line in self._stderr if line)[-800:] or "no message"
            raise OperationFailed(
                f"pg_dump of database {self.dbname} on {self.target.name} ({self.target.address}) "
                f"exited with {code}: {REDACTOR.redact(tail)}",
                where=self.target.name,
                hint="a snapshot id error means the snapshot's transaction ended before pg_dump started")

    @property
    def warnings(self) -> list[str]:
        return [line for line in self._stderr if line]

    @property
    def duration(self) -> float:
        return (self.finished or time.monotonic()) - self.started
