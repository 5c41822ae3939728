"""The local transport: commands as subprocesses of erpops, files on this host.

Every command starts in its own session (so its own process group): a timeout
or an interrupt kills the whole tree it spawned, not only the direct child,
and a Ctrl-C on the terminal reaches erpops first, which then decides.
"""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import time
from pathlib import Path
from typing import BinaryIO, Iterator, Sequence

from erpops.errors import OperationFailed
from erpops.transport.base import FileStat

KILL_GRACE = 2.0  # seconds between SIGTERM and SIGKILL of a process group


class LocalProcess:
    def __init__(self, argv: Sequence[str], stdin: bytes | None, env: dict | None, cwd: str | None):
        self.argv = list(argv)
        full_env = None
        if env:
            full_env = dict(os.environ)
            full_env.update({str(k): str(v) for k, v in env.items()})
        try:
            self._popen = subprocess.Popen(
                self.argv, stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=full_env, cwd=cwd,
                start_new_session=True)
        except FileNotFoundError:
            raise OperationFailed(f"command not found: {self.argv[0]}",
                                  hint="install it or give its full path") from None
        except PermissionError:
            raise OperationFailed(f"not executable: {self.argv[0]}") from None
        self.pid = self._popen.pid
        self.killed = False
        if stdin is not None:
            # small payloads only; large streams go through open_write
            try:
                self._popen.stdin.write(stdin)
            except BrokenPipeError:
                pass
            self._popen.stdin.close()

    def lines(self) -> Iterator[str]:
        for raw in iter(self._popen.stdout.readline, b""):
            yield raw.decode("utf-8", "replace").rstrip("\r\n")
        self._popen.stdout.close()

    def wait(self, timeout: float | None = None) -> int:
        return self._popen.wait(timeout)

    @property
    def returncode(self) -> int | None:
        return self._popen.poll()

    def kill(self) -> None:
        """SIGTERM the process group, then SIGKILL whatever is left after a grace period."""
        self.killed = True
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(self.pid, sig)
            except (ProcessLookupError, PermissionError):
                return
            deadline = time.monotonic() + (KILL_GRACE if sig == signal.SIGTERM else 5)
            while time.monotonic() < deadline:
                if not _group_alive(self._popen, self.pid):
                    return
                time.sleep(0.05)


def _group_alive(popen: subprocess.Popen, pgid: int) -> bool:
    # reap the leader first: a zombie leader still counts as a group member
    popen.poll()
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class LocalTransport:
    name = "local"

    def run(self, argv: Sequence[str], stdin: bytes | None = None, *, env: dict | None = None,
            cwd: str | None = None) -> LocalProcess:
        return LocalProcess(argv, stdin, env, cwd)

    def open_read(self, path: str) -> BinaryIO:
        return open(path, "rb", buffering=0)  # callers read in large pieces: a buffer would only copy

    def open_write(self, path: str) -> BinaryIO:
        return open(path, "wb")

    def listdir(self, path: str) -> list[str]:
        return sorted(os.listdir(path))

    def stat(self, path: str) -> FileStat:
        st = os.stat(path)  # one system call: a backup stats every file of the filestore
        return FileStat(size=st.st_size, mtime=st.st_mtime, is_dir=stat.S_ISDIR(st.st_mode), mode=st.st_mode)

    def remove(self, path: str) -> None:
        Path(path).unlink()
