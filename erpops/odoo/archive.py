"""Read an Odoo backup file: the database manager's zip, or a ``pg_dump -Fc`` dump.

Two shapes exist in the wild and both are first-class here:

* **zip** — what Odoo's database manager writes (``backup_format='zip'``) and
  what ``erpops export --format odoo-zip`` writes: ``dump.sql`` (plain SQL,
  ``pg_dump --no-owner``), ``manifest.json`` (``odoo_dump``, ``db_name``,
  ``version``, ``modules``, ...) and ``filestore/<sha[:2]>/<sha>``.
* **dump** — Odoo's "pg_dump custom format" backup: one ``PGDMP`` file, no
  filestore, no manifest.

Only ``dump.sql``, ``manifest.json`` and ``filestore/...`` members are ever
read; anything else (a README, ``__MACOSX/``) is ignored. The whole member
list is checked first, though, and one unsafe name (absolute, ``..``,
backslash, drive letter, duplicate) rejects the file: an archive crafted to
escape a directory is not half-trusted.

Errors: a file that is not usable as asked (unknown format, unsafe member,
no ``dump.sql``, bad ``manifest.json``, bad filestore name) is a
``UsageError`` (exit 2); a file that is damaged (truncated or corrupt zip,
CRC mismatch, a custom dump with a bad header) is ``VerificationFailed``
(exit 4). Nothing here prints, exits, or loads a whole member in memory.
"""

from __future__ import annotations

import json
import re
import shutil
import stat
import zipfile
from pathlib import Path
from typing import BinaryIO, Callable, Iterator, Optional

from erpops.errors import UsageError, VerificationFailed

DUMP_MEMBER = "dump.sql"
MANIFEST_MEMBER = "manifest.json"
FILESTORE_PREFIX = "filestore/"
PGDMP_MAGIC = b"PGDMP"
MAX_MANIFEST_BYTES = 16 << 20  # a manifest lists modules: megabytes would be an attack, not a manifest
# Odoo names a file by the SHA-1 of its content: <sha[:2]>/<sha> (8.0 used <sha[:3]>/<sha>).
_STORE_FNAME = re.compile(r"^([0-9a-f]{2,3})/([0-9a-f]{40})$")
# Odoo's attachment garbage collector keeps empty marker files here; they are not attachments.
_CHECKLIST_PREFIX = "checklist/"
_COPY_BUFFER = 1 << 20

FilestoreItem = tuple[str, Optional[str], int, Callable[[], BinaryIO]]


def _member_problem(name: str) -> str | None:
    """Why a zip member name is unsafe to use as a relative path, or None."""
    if not name:
        return "an empty name"
    if "\\" in name:
        return "a backslash (a Windows path)"
    if name.startswith("/"):
        return "an absolute path"
    if re.match(r"^[A-Za-z]:", name):
        return "a drive letter"
    if "\x00" in name:
        return "a NUL byte"
    if any(part == ".." for part in name.split("/")):
        return "a '..' component that climbs out of the target directory"
    return None


def _damaged(path: Path, detail: str) -> VerificationFailed:
    return VerificationFailed(f"the Odoo backup file is damaged: {detail}", where=str(path),
                              hint="the file is truncated or corrupt; copy it again from its source, or use another backup")


class OdooArchive:
    """An opened Odoo backup file. Use through ``open_archive`` (a context manager)."""

    def __init__(self, path: Path):
        self.path = path
        self.kind: str = ""  # "zip" | "dump"
        self.manifest: dict | None = None
        self.db_name: str | None = None
        self.dump_format: str = ""  # "plain" (zip's dump.sql) | "custom" (pg_dump -Fc)
        self._zip: zipfile.ZipFile | None = None
        self._dump_info: zipfile.ZipInfo | None = None
        self._manifest_info: zipfile.ZipInfo | None = None
        self._files: list[tuple[str, str, zipfile.ZipInfo]] = []
        self.ignored_members: list[str] = []

    # -- opening -------------------------------------------------------------

    def _open(self) -> "OdooArchive":
        path = self.path
        if not path.exists():
            raise UsageError(f"no such file: {path}", hint="give the path of an Odoo backup (.zip or .dump)")
        if not path.is_file():
            raise UsageError(f"{path} is not a regular file", hint="give the path of an Odoo backup (.zip or .dump)")
        with open(path, "rb") as fh:
            head = fh.read(16)
        if head.startswith(PGDMP_MAGIC):
            self._open_dump(head)
        elif head.startswith(b"PK"):
            self._open_zip()
        else:
            raise UsageError("not an Odoo backup: neither a zip nor a pg_dump custom-format file (PGDMP)",
                             where=str(path),
                             hint="Odoo's database manager writes a .zip (with dump.sql) or a .dump (pg_dump -Fc)")
        return self

    def _open_dump(self, head: bytes) -> None:
        # pg_backup_archiver.c ReadHead: magic, vmaj, vmin, vrev, intSize, offSize, format (1 = custom)
        if len(head) < 11:
            raise _damaged(self.path, "the pg_dump header is cut short")
        vmaj, vmin, _vrev, int_size, off_size, fmt = head[5:11]
        if vmaj != 1 or vmin > 30 or not 1 <= int_size <= 16 or not 1 <= off_size <= 16:
            raise _damaged(self.path, f"the pg_dump header is invalid (archive version {vmaj}.{vmin}, "
                                      f"int size {int_size}, offset size {off_size})")
        if fmt != 1:
            raise _damaged(self.path, f"the pg_dump header names format {fmt}, not 1 (custom)")
        self.kind, self.dump_format = "dump", "custom"

    def _open_zip(self) -> None:
        try:
            self._zip = zipfile.ZipFile(self.path)
            infos = self._zip.infolist()
        except (zipfile.BadZipFile, EOFError, OSError, ValueError) as exc:
            raise _damaged(self.path, f"not a readable zip ({exc})") from None
        seen: set[str] = set()
        for info in infos:
            name = info.filename
            problem = _member_problem(name)
            if problem:
                raise UsageError(f"zip member {name!r} has {problem}; the file is refused, nothing was extracted",
                                 where=str(self.path), hint="an Odoo backup holds only dump.sql, manifest.json "
                                 "and filestore/<ab>/<sha1>; check where this file came from")
            if name in seen:
                raise UsageError(f"zip member {name!r} appears twice; the file is ambiguous and refused",
                                 where=str(self.path), hint="rebuild the zip with each member once")
            seen.add(name)
            self._classify(info)
        if self._dump_info is None:
            raise UsageError(f"the zip has no {DUMP_MEMBER}: not an Odoo backup", where=str(self.path),
                             hint="Odoo's zip backups hold dump.sql, manifest.json and filestore/")
        self.kind, self.dump_format = "zip", "plain"
        self._files.sort()
        self._read_manifest()

    def _classify(self, info: zipfile.ZipInfo) -> None:
        name = info.filename
        if info.is_dir():
            return
        if name not in (DUMP_MEMBER, MANIFEST_MEMBER) and not name.startswith(FILESTORE_PREFIX):
            self.ignored_members.append(name)
            return
        if stat.S_ISLNK(info.external_attr >> 16):
            raise UsageError(f"zip member {name!r} is a symbolic link; the file is refused", where=str(self.path),
                             hint="an Odoo backup holds regular files only")
        if name == DUMP_MEMBER:
            self._dump_info = info
        elif name == MANIFEST_MEMBER:
            self._manifest_info = info
        else:
            rel = name[len(FILESTORE_PREFIX):]
            if rel.startswith(_CHECKLIST_PREFIX):
                self.ignored_members.append(name)
                return
            match = _STORE_FNAME.match(rel)
            if not match or not match.group(2).startswith(match.group(1)):
                raise UsageError(f"zip member {name!r} is not a filestore file name (filestore/<ab>/<40 hex sha1>)",
                                 where=str(self.path),
                                 hint="Odoo names filestore files by their SHA-1; this member is refused")
            self._files.append((rel, match.group(2), info))

    def _read_manifest(self) -> None:
        info = self._manifest_info
        if info is None:
            return
        if info.file_size > MAX_MANIFEST_BYTES:
            raise UsageError(f"{MANIFEST_MEMBER} is {info.file_size} bytes, too big to be a manifest",
                             where=f"{self.path}:{MANIFEST_MEMBER}")
        try:
            with self._zip.open(info) as fh:
                raw = fh.read(MAX_MANIFEST_BYTES + 1)
        except (zipfile.BadZipFile, EOFError, OSError, ValueError) as exc:
            raise _damaged(self.path, f"{MANIFEST_MEMBER} cannot be read ({exc})") from None
        try:
            doc = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            raise UsageError(f"{MANIFEST_MEMBER} is not valid JSON ({exc})", where=f"{self.path}:{MANIFEST_MEMBER}",
                             hint="remove it from the zip or fix it; Odoo writes a JSON object") from None
        if not isinstance(doc, dict):
            raise UsageError(f"{MANIFEST_MEMBER} is not a JSON object", where=f"{self.path}:{MANIFEST_MEMBER}")
        self.manifest = doc
        name = doc.get("db_name")
        self.db_name = name if isinstance(name, str) and name else None

    # -- reading ---------------------------------------------------------------

    def open_dump(self) -> BinaryIO:
        """A binary reader over the database dump (dump.sql, or the whole custom dump)."""
        if self.kind == "dump":
            return open(self.path, "rb")
        return _CheckedReader(self._zip.open(self._dump_info), self.path, DUMP_MEMBER)

    def extract_dump(self, dest_dir: Path) -> Path:
        """Stream the dump into ``dest_dir`` (dump.sql, or database.dump) and return its path."""
        target = Path(dest_dir) / (DUMP_MEMBER if self.dump_format == "plain" else "database.dump")
        with self.open_dump() as src, open(target, "wb") as dst:
            shutil.copyfileobj(src, dst, _COPY_BUFFER)
        return target

    @property
    def dump_size(self) -> int:
        """Size of the dump in bytes (uncompressed)."""
        return self._dump_info.file_size if self.kind == "zip" else self.path.stat().st_size

    def filestore_files(self) -> Iterator[FilestoreItem]:
        """(store_fname, sha1 from the name, size, open_fn) for each filestore file, sorted by name.

        The sha1 is what the name claims; a reader must check the content against it.
        """
        for rel, sha1, info in self._files:
            yield rel, sha1, info.file_size, (lambda info=info, rel=rel: _CheckedReader(
                self._zip.open(info), self.path, FILESTORE_PREFIX + rel))

    def close(self) -> None:
        if self._zip is not None:
            self._zip.close()
            self._zip = None

    def __enter__(self) -> "OdooArchive":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class _CheckedReader:
    """A zip member reader whose corruption (bad CRC, truncation) becomes VerificationFailed."""

    def __init__(self, inner, path: Path, member: str):
        self._inner, self._path, self._member = inner, path, member

    def read(self, n: int = -1) -> bytes:
        try:
            return self._inner.read(n)
        except (zipfile.BadZipFile, EOFError, OSError, ValueError) as exc:
            raise _damaged(self._path, f"member {self._member} cannot be read ({exc})") from None

    def close(self) -> None:
        self._inner.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open_archive(path: str | Path) -> OdooArchive:
    """Open and check an Odoo backup file; use as ``with open_archive(p) as a: ...``."""
    archive = OdooArchive(Path(path))
    try:
        return archive._open()
    except BaseException:
        archive.close()
        raise
