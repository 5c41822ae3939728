"""The backup manifest: what a backup is, written last.

A backup exists only once its manifest is stored; anything under
``objects/backups/<id>/`` without a manifest is debris that ``repo prune``
removes. One manifest per tenant (Odoo database) per run.

Layout in the repository::

    objects/backups/<backup_id>/manifest.json   this document (encrypted like every object)
    objects/backups/<backup_id>/<object>        the backup's own objects (db dump, redis rdb)
    packs/..., index/...                         filestore files as blobs, shared by all backups

The backup id sorts by time: ``20261203T101502Z-<environment>-<tenant>``.
"""

from __future__ import annotations

import io
import re
from dataclasses import field
from datetime import datetime, timezone
from itertools import islice
from typing import Iterable, Iterator, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter
from pydantic.dataclasses import dataclass

from erpops.errors import UsageError

MANIFEST_FORMAT = 1
BACKUPS_PREFIX = "backups/"
MANIFEST_NAME = "manifest.json"
_ID = re.compile(r"^\d{8}T\d{6}Z-[A-Za-z0-9_.-]+$")


# Entries are slotted dataclasses, not models: a filestore has tens of thousands
# of files and a BaseModel instance costs about three times the memory.
_ENTRY = ConfigDict(extra="forbid")


@dataclass(config=_ENTRY, slots=True)
class ObjectEntry:
    """One object of the backup, as stored."""

    key: str  # storage key (objects/...), or a blob's identity blobs/<sha[:2]>/<sha> (its pack: packs.py)
    kind: Literal["db", "blob", "redis", "other"]
    plain_bytes: int  # size of the content before compression/encryption
    stored_bytes: int  # size in storage
    sha256: str | None = None  # of the plaintext, for objects of this backup
    sha1: str | None = None  # of the plaintext, for content-addressed blobs (= their name)
    new: bool = True  # uploaded by this backup (False: already in the repository)


@dataclass(config=_ENTRY, slots=True)
class FileEntry:
    """An attachment captured from the filestore (one ir_attachment row)."""

    store_fname: str  # e.g. "ab/ab12...", Odoo's name under filestore/<db>/
    sha1: str
    size: int
    attachment_ids: list[int] = field(default_factory=list)


class RedisCapture(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: str
    captured: bool
    reason: str = ""  # why not, e.g. "role cache: not backed up"
    key: str | None = None


class Manifest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    format: int = MANIFEST_FORMAT
    backup_id: str
    environment: str
    tenant: str
    started_at: datetime
    finished_at: datetime
    snapshot_at: datetime  # when the exported snapshot was taken (the backup's point in time)
    duration_s: float
    erpops_version: str
    pg_version: str  # server_version of the source, e.g. "15.18"
    dump_format: str = "custom"  # pg_dump format of the db object
    odoo_version: str | None = None  # base module's latest_version
    modules: dict[str, str] = Field(default_factory=dict)  # installed module -> version
    row_counts: dict[str, int] = Field(default_factory=dict)
    checksums: dict[str, str] = Field(default_factory=dict)  # business checksums, as exact decimal text
    objects: list[ObjectEntry] = Field(default_factory=list)
    files: list[FileEntry] = Field(default_factory=list)
    missing_files: list[str] = Field(default_factory=list)  # store_fname referenced but absent (allowed)
    redis: RedisCapture | None = None
    annotations: dict[str, str] = Field(default_factory=dict)
    verified_at: datetime | None = None  # set when a verify ran right after the backup

    @property
    def db_object(self) -> ObjectEntry | None:
        return next((o for o in self.objects if o.kind == "db"), None)

    def to_json(self) -> bytes:
        return b"".join(self.iter_json())

    def iter_json(self, batch: int = 2000, *, objects: Iterable[ObjectEntry] | None = None,
                  files: Iterable[FileEntry] | None = None) -> Iterator[bytes]:
        """The manifest as JSON, in pieces: the long lists are serialized ``batch``
        entries at a time, so a manifest of 100,000 files is never one big string.
        ``objects`` and ``files``, when given, stand for the model's own lists: a
        backup makes its entries one batch at a time (capture.py) instead of holding them."""
        yield self.model_dump_json(exclude={"objects", "files"})[:-1].encode()  # all but the closing brace
        for name, entries, adapter in (("objects", self.objects if objects is None else objects, _OBJECTS),
                                       ("files", self.files if files is None else files, _FILES)):
            yield f',"{name}":['.encode()
            pieces = iter(entries)
            first = True
            while chunk := list(islice(pieces, batch)):
                piece = adapter.dump_json(chunk)[1:-1]  # without [ ]
                yield piece if first else b"," + piece
                first = False
            yield b"]"
        yield b"}"


_OBJECTS = TypeAdapter(list[ObjectEntry])
_FILES = TypeAdapter(list[FileEntry])


class _IterReader(io.RawIOBase):
    """A readable stream over an iterator of byte strings (for put_object)."""

    def __init__(self, pieces: Iterator[bytes]):
        self._pieces, self._buffer = pieces, b""

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        while n < 0 or len(self._buffer) < n:
            piece = next(self._pieces, None)
            if piece is None:
                break
            self._buffer += piece
        if n < 0:
            out, self._buffer = self._buffer, b""
        else:
            out, self._buffer = self._buffer[:n], self._buffer[n:]
        return out


def new_backup_id(environment: str, tenant: str, at: datetime | None = None) -> str:
    at = (at or datetime.now(timezone.utc)).astimezone(timezone.utc)
    return f"{at:%Y%m%dT%H%M%SZ}-{environment}-{tenant}"


def check_backup_id(backup_id: str) -> str:
    if not _ID.match(backup_id or ""):
        raise UsageError(f"{backup_id!r} is not a backup id (like 20261203T020011Z-prod-store_nord)",
                         hint="list them with: erpops repo list")
    return backup_id


def object_name(backup_id: str, name: str) -> str:
    """Name (for Repository.put_object) of one of the backup's own objects."""
    return f"{BACKUPS_PREFIX}{check_backup_id(backup_id)}/{name}"


def write_manifest(repo, manifest: Manifest, *, objects: Iterable[ObjectEntry] | None = None,
                   files: Iterable[FileEntry] | None = None) -> None:
    """Store the manifest; this is what makes the backup exist. Never overwrites.
    ``objects``/``files``: the entries to write instead of the model's (Manifest.iter_json)."""
    pieces = manifest.iter_json(objects=objects, files=files)
    repo.put_object(object_name(manifest.backup_id, MANIFEST_NAME), _IterReader(pieces), if_absent=True)


def read_manifest(repo, backup_id: str) -> Manifest:
    from erpops.repo.storage import ObjectNotFound

    try:
        reader = repo.get_object(object_name(backup_id, MANIFEST_NAME))
    except ObjectNotFound:
        raise UsageError(f"no backup {backup_id} in repository {repo.url}",
                         hint="list them with: erpops repo list") from None
    with reader:
        return Manifest.model_validate_json(reader.read())  # no intermediate dicts: flat-ish memory


def list_backup_ids(repo) -> list[str]:
    """Ids of the backups that exist (have a manifest), oldest first."""
    prefix = f"objects/{BACKUPS_PREFIX}"
    ids = set()
    for key in repo.storage.list(prefix):
        rest = key[len(prefix):]
        backup_id, _, name = rest.partition("/")
        if name == MANIFEST_NAME and _ID.match(backup_id):
            ids.add(backup_id)
    return sorted(ids)


def list_backup_dirs(repo) -> list[str]:
    """Every backup id that has objects, manifest or not (debris included)."""
    prefix = f"objects/{BACKUPS_PREFIX}"
    return sorted({key[len(prefix):].partition("/")[0] for key in repo.storage.list(prefix)})
