"""The Transport protocol: where a command runs and where a file lives.

One shape for local, ssh, docker and k8s (the invoke/fabric Runner idea):
``run`` starts a command and hands back a ``Process`` whose output streams
line by line; files are opened as streams, never read whole into memory.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import BinaryIO, Iterator, Protocol, Sequence


@dataclass(frozen=True)
class FileStat:
    size: int
    mtime: float
    is_dir: bool
    mode: int


class Process(Protocol):
    """A started command. ``lines()`` yields its merged stdout/stderr as text
    lines while it runs; ``kill()`` ends it and everything it started."""

    pid: int
    argv: Sequence[str]

    def lines(self) -> Iterator[str]: ...

    def wait(self, timeout: float | None = None) -> int: ...

    def kill(self) -> None: ...

    @property
    def returncode(self) -> int | None: ...


class Transport(Protocol):
    name: str

    def run(self, argv: Sequence[str], stdin: bytes | None = None, *, env: dict | None = None,
            cwd: str | None = None) -> Process: ...

    def open_read(self, path: str) -> BinaryIO: ...

    def open_write(self, path: str) -> BinaryIO: ...

    def listdir(self, path: str) -> list[str]: ...

    def stat(self, path: str) -> FileStat: ...

    def remove(self, path: str) -> None: ...
