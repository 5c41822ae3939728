"""Where repository objects live: the Storage protocol and its vocabulary.

A Storage is a flat namespace of keys ("config", "packs/ab/ab12...") holding
opaque bytes. It knows nothing of encryption or compression; the object layer
(objectformat.py, repository.py) sits above it. Two implementations exist: a
local directory (storage_local.py) and an S3-compatible bucket and prefix
(storage_s3.py). Everything streams: ``put_stream`` reads from a reader,
``get_stream`` returns one, neither holds a whole object in memory.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import BinaryIO, Iterator, Protocol, runtime_checkable

from erpops.errors import OperationFailed, Refused, UsageError

# Keys are relative, slash-separated, made of safe characters: the same key
# must mean the same object on a file system and in a bucket.
_KEY = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]*(/[A-Za-z0-9_][A-Za-z0-9._-]*)*$")


def check_key(key: str) -> str:
    if not isinstance(key, str) or not _KEY.match(key) or len(key) > 512:
        raise UsageError(f"invalid repository object name {key!r}",
                         hint="use slash-separated parts of letters, digits, '.', '_' and '-', not starting with '.' or '-'")
    return key


class ObjectNotFound(OperationFailed):
    """The key does not exist in the storage."""


class ObjectExists(Refused):
    """A put with ``if_absent=True`` found the key already present."""


@dataclass(frozen=True)
class ObjectStat:
    key: str
    size: int
    modified: datetime | None = None
    retain_until: datetime | None = None  # Object Lock retention, where the storage has it


@runtime_checkable
class Storage(Protocol):
    url: str

    def put_stream(self, key: str, reader: BinaryIO, *, if_absent: bool = False,
                   retain_until: datetime | None = None) -> int:
        """Store everything ``reader.read(n)`` yields under ``key``; return the bytes written.
        The object appears whole or not at all. ``if_absent`` raises ObjectExists
        instead of replacing; ``retain_until`` asks for an Object Lock retention date."""

    def get_stream(self, key: str) -> BinaryIO:
        """A reader of the object (close it when done); ObjectNotFound if missing."""

    def get_range(self, key: str, offset: int, length: int) -> BinaryIO:
        """A reader of ``length`` bytes of the object from ``offset`` (fewer if the
        object is shorter: the caller detects that); ObjectNotFound if missing."""

    def exists(self, key: str) -> bool: ...

    def stat(self, key: str) -> ObjectStat: ...

    def size(self, key: str) -> int: ...

    def list(self, prefix: str = "") -> Iterator[str]:
        """Keys starting with ``prefix``, in no promised order."""

    def delete(self, key: str) -> None:
        """Remove the key (ObjectNotFound if missing). Under Object Lock the storage may refuse."""
