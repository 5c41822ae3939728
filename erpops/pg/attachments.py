"""The filestore files an Odoo database references, as ir_attachment lists them.

Read inside a backup's snapshot (snapshot.py) and held until the manifest is
written. A retail database can reference millions of files, so the list is
kept in a few flat arrays rather than as objects: an object per file (its
name, checksum and id list) costs about 250 bytes, a row here about 40.
Odoo names a file by its content, ``<sha[:2]>/<sha>``; such a name is kept
as its 20-byte SHA-1 and rebuilt when asked for. Any other name (rare: files
moved by hand, other storage layouts) is kept as it is.
"""

from __future__ import annotations

import posixpath
import re
from array import array
from dataclasses import dataclass, field
from typing import Iterable, Sequence

ATTACHMENTS_QUERY = """
SELECT id, store_fname, checksum FROM ir_attachment
WHERE type = 'binary' AND store_fname IS NOT NULL
ORDER BY store_fname, id
"""
FETCH_ROWS = 5000  # rows per round trip of the server-side cursor: the client never holds the whole result
_SHA1 = re.compile(r"^[0-9a-f]{40}$")
_NO_DIGEST = bytes(20)


@dataclass(slots=True)
class AttachedFile:
    """One file of the filestore, with every attachment row that references it
    (a view of one row of AttachedFiles, made when a message needs it)."""

    store_fname: str
    attachment_ids: list[int] = field(default_factory=list)


def expected_sha1(store_fname: str, checksum: str | None) -> str | None:
    """The SHA-1 Odoo named the file by (its last path part), else the row's checksum."""
    base = posixpath.basename(store_fname)
    if _SHA1.match(base):
        return base
    if checksum and _SHA1.match(checksum.lower()):
        return checksum.lower()
    return None


class AttachedFiles:
    """Files in ir_attachment's order (by store_fname), each with its attachment ids
    and the SHA-1 its content must have, when the name or the checksum says it."""

    def __init__(self) -> None:
        self._digests = bytearray()  # 20 bytes per file: its SHA-1 (zeros while unknown)
        self._known = bytearray()  # 1 per file whose SHA-1 is known
        self._names: dict[int, str] = {}  # row -> store_fname, where it is not <sha[:2]>/<sha>
        self._ids = array("q")  # the attachment ids of every file, one file after the other
        self._ends = array("q")  # where each file's ids end in _ids
        self._last: str | None = None  # store_fname of the last row added

    @classmethod
    def of(cls, rows: Iterable[tuple[int, str, str | None]]) -> "AttachedFiles":
        table = cls()
        for attachment_id, store_fname, checksum in rows:
            table.add(attachment_id, store_fname, checksum)
        return table

    def add(self, attachment_id: int, store_fname: str, checksum: str | None) -> None:
        """One ir_attachment row. Rows naming the same file must come one after the
        other (the query orders by store_fname): Odoo shares one file between
        attachments of equal content."""
        self._ids.append(attachment_id)
        if store_fname == self._last:
            self._ends[-1] = len(self._ids)
            return
        self._last = store_fname
        row = len(self._ends)
        self._ends.append(len(self._ids))
        sha = expected_sha1(store_fname, checksum)
        if sha is None or store_fname != f"{sha[:2]}/{sha}":
            self._names[row] = store_fname
        self._digests += bytes.fromhex(sha) if sha else _NO_DIGEST
        self._known.append(1 if sha else 0)

    def __len__(self) -> int:
        return len(self._ends)

    def name(self, row: int) -> str:
        """store_fname, e.g. "ab/ab12…" (Odoo's name under filestore/<db>/)."""
        name = self._names.get(row)
        if name is None:
            sha = self._digests[row * 20:row * 20 + 20].hex()
            name = f"{sha[:2]}/{sha}"
        return name

    def sha1(self, row: int) -> str | None:
        """The SHA-1 the file's content must have: from its name or checksum, or set by set_sha1."""
        return self._digests[row * 20:row * 20 + 20].hex() if self._known[row] else None

    def set_sha1(self, row: int, sha1: str) -> None:
        """Record the SHA-1 of a file whose name did not say it (hashed when captured)."""
        self._digests[row * 20:row * 20 + 20] = bytes.fromhex(sha1)
        self._known[row] = 1

    def attachment_ids(self, row: int) -> list[int]:
        start = self._ends[row - 1] if row else 0
        return self._ids[start:self._ends[row]].tolist()

    def file(self, row: int) -> AttachedFile:
        return AttachedFile(self.name(row), self.attachment_ids(row))

    def name_order(self) -> Sequence[int]:
        """Rows sorted by store_fname in code-point order (the manifest's order). The
        database's collation usually gives that order already; sorting is the fallback."""
        names = (self.name(row) for row in range(len(self)))
        previous = next(names, None)
        for name in names:
            if name <= previous:
                return sorted(range(len(self)), key=self.name)
            previous = name
        return range(len(self))

    def sha1_order(self, rows: Sequence[int]) -> Sequence[int]:
        """``rows`` sorted by SHA-1 (the order of blob keys): for Odoo's names the same
        as by name, so usually ``rows`` as they are."""
        digests = self._digests
        previous = b""
        for row in rows:
            digest = digests[row * 20:row * 20 + 20]
            if digest < previous:
                return sorted(rows, key=lambda r: digests[r * 20:r * 20 + 20])
            previous = digest
        return rows


def read_attached_files(conn) -> AttachedFiles:
    """The files of ``conn``'s database (in its current transaction: a backup's snapshot).
    A server-side cursor brings the rows FETCH_ROWS at a time."""
    with conn.cursor() as cur:
        cur.execute("SELECT to_regclass('public.ir_attachment') IS NOT NULL")
        if not cur.fetchone()[0]:
            return AttachedFiles()
    with conn.cursor(name="erpops_attached_files") as cur:
        cur.itersize = FETCH_ROWS
        cur.execute(ATTACHMENTS_QUERY)
        return AttachedFiles.of(cur)
