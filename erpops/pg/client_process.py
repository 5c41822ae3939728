"""A PostgreSQL client program (pg_dump, pg_restore, psql) running for erpops.

What every such run needs, in one place: the password in PGPASSWORD of the
child's environment, never on its command line (``ps`` shows that to every
user of the host); its own process group, so a timeout or Ctrl-C stops it and
anything it started; stderr drained by a thread (a chatty program must never
block on a full pipe) and its last lines kept for the error message, redacted.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections import deque

from erpops.errors import OperationFailed
from erpops.pg.connect import NodeTarget

STDERR_LINES_KEPT = 40


def client_env(target: NodeTarget, application_name: str, extra: dict[str, str] | None = None) -> dict:
    env = {**os.environ, **(extra or {})}
    env.pop("PGPASSWORD", None)
    secret = target.password()
    if secret is not None:
        env["PGPASSWORD"] = secret.reveal()
    env["PGAPPNAME"] = application_name
    return env


class ClientProcess:
    """``argv`` started against ``target``; ``kill`` stops its process group,
    ``wait_checked`` raises OperationFailed with its last stderr lines unless it exited 0."""

    def __init__(self, argv: list[str], target: NodeTarget, *, application_name: str,
                 stdout=subprocess.DEVNULL, bufsize: int = -1, extra_env: dict[str, str] | None = None):
        self.argv, self.target = argv, target
        self.program = os.path.basename(argv[0])
        try:
            self._popen = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=stdout, stderr=subprocess.PIPE,
                                           env=client_env(target, application_name, extra_env), start_new_session=True,
                                           bufsize=bufsize)
        except OSError as exc:
            raise OperationFailed(f"cannot start {argv[0]}: {exc.strerror}") from None
        self.pid = self._popen.pid
        self.started = time.monotonic()
        self.finished: float | None = None
        self._stderr: deque[str] = deque(maxlen=STDERR_LINES_KEPT)
        self._drain = threading.Thread(target=self._read_stderr, daemon=True)
        self._drain.start()

    def _read_stderr(self) -> None:
        for raw in iter(self._popen.stderr.readline, b""):
            self._stderr.append(raw.decode("utf-8", "replace").rstrip())
        self._popen.stderr.close()

    def poll(self) -> int | None:
        return self._popen.poll()

    def kill(self) -> None:
        """SIGTERM to the process group, SIGKILL if it is still there 2 s later."""
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

    def wait_checked(self, what: str, *, hint: str) -> None:
        """Wait; unless it exited 0, OperationFailed: ``what`` exited with N: its last stderr lines."""
        code = self._popen.wait()
        self._drain.join(5)
        self.finished = time.monotonic()
        if code != 0:
            from erpops.secrets import REDACTOR

            tail = "; ".join(line for line in self._stderr if line)[-800:] or "no message"
            raise OperationFailed(f"{what} on {self.target.name} ({self.target.address}) exited with {code}: "
                                  f"{REDACTOR.redact(tail)}", where=self.target.name, hint=hint)

    @property
    def warnings(self) -> list[str]:
        return [line for line in self._stderr if line]

    @property
    def duration(self) -> float:
        return (self.finished or time.monotonic()) - self.started
