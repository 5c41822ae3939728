"""Capture an Odoo filestore into the repository as content-addressed blobs.

Odoo names every file by the SHA-1 of its content (``filestore/<db>/ab/ab12…``),
so a file is stored once as blob ``ab12…`` (in a pack, packs.py) and shared by
every backup and tenant: a file the repository's blob index lists is not read,
not uploaded again. A new file is hashed as it is read; a file whose content
does not match its name fails the backup, naming the file and its attachment
rows. A referenced file that is not in the filestore is collected, so the
caller reports all of them at once.

Files are read and sealed on a small thread pool, a batch of files per task
(hashing, zstd and the file reads release the GIL; a task per file would cost
more in hand-offs than a small file's work). At most two batches per worker
are queued; small files are held whole and large ones stream, and what each
file became is kept in a few array slots (CaptureResult), so memory stays flat
in the filestore's size.
"""

from __future__ import annotations

import hashlib
import posixpath
import threading
from array import array
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Callable, Iterator

from erpops.errors import UsageError, VerificationFailed
from erpops.pg.attachments import AttachedFile, AttachedFiles
from erpops.repo.manifest import FileEntry, ObjectEntry
from erpops.repo.packs import BlobMismatch

DEFAULT_WORKERS = 2  # sealing is CPU work under the GIL: more threads than cores only add hand-offs
BATCH_FILES = 256
BATCH_BYTES = 8 << 20
READ_SIZE = 1 << 20
MISSING = -1  # the size of a file that is not in the filestore


@dataclass
class CaptureResult:
    """What the capture made of each file of ``table``, row by row, in arrays (a
    manifest entry per file is made only while the manifest is written)."""

    table: AttachedFiles
    sizes: array = field(default_factory=lambda: array("q"))  # plain bytes (MISSING: not in the filestore)
    stored: array = field(default_factory=lambda: array("q"))  # stored bytes of the file's blob
    new: bytearray = field(default_factory=bytearray)  # 1: this capture uploaded the file's blob
    missing: list[int] = field(default_factory=list)  # rows of the files not in the filestore
    new_files: int = 0
    new_bytes: int = 0  # plain bytes of the files uploaded by this capture
    uploaded_bytes: int = 0  # stored bytes written by this capture (packs and their indexes)
    total_bytes: int = 0  # plain bytes of every captured file

    @property
    def file_count(self) -> int:
        return len(self.table) - len(self.missing)

    def missing_files(self, limit: int | None = None) -> list[AttachedFile]:
        return [self.table.file(row) for row in self.missing[:limit]]

    def file_entries(self) -> Iterator[FileEntry]:
        """The manifest's files, by store_fname."""
        table = self.table
        for row in table.name_order():
            if self.sizes[row] != MISSING:
                yield FileEntry(store_fname=table.name(row), sha1=table.sha1(row), size=self.sizes[row],
                                attachment_ids=table.attachment_ids(row))

    def blob_objects(self) -> Iterator[ObjectEntry]:
        """The manifest's blob objects, one per distinct content, by key."""
        present = [row for row in self.table.name_order() if self.sizes[row] != MISSING] if self.missing \
            else self.table.name_order()
        held: ObjectEntry | None = None
        for row in self.table.sha1_order(present):
            sha = self.table.sha1(row)
            if held is not None and held.sha1 == sha:  # the same content under two names: one blob
                held.new = held.new or bool(self.new[row])
                continue
            if held is not None:
                yield held
            held = ObjectEntry(key=f"blobs/{sha[:2]}/{sha}", kind="blob", plain_bytes=self.sizes[row],
                               stored_bytes=self.stored[row], sha1=sha, new=bool(self.new[row]))
        if held is not None:
            yield held


def file_path(root: str, store_fname: str) -> str:
    """filestore/<db>/<store_fname>, refusing names that would leave the directory."""
    name = posixpath.normpath(store_fname)
    if name.startswith(("/", "..")) or "/../" in f"/{name}/" or name in (".", ""):
        raise UsageError(f"ir_attachment.store_fname {store_fname!r} points outside the filestore",
                         hint="fix the attachment row; erpops reads only under filestore/<db>/")
    return posixpath.join(root.rstrip("/"), name)


def capture_files(repo, files: AttachedFiles, root: str, transport, *, tenant: str = "",
                  workers: int = DEFAULT_WORKERS, on_progress: Callable[[int, int], None] | None = None,
                  check: Callable[[], None] = lambda: None, stop_on_missing: bool = False) -> CaptureResult:
    """Store every listed file of ``root`` (the tenant's filestore directory, read
    through ``transport``) in ``repo``. ``on_progress(done_bytes, total_bytes)``;
    ``check()`` raises to stop (timeout, Ctrl-C); ``stop_on_missing``: when a
    file is missing, upload nothing (the caller fails the backup anyway)."""
    count = len(files)
    result = CaptureResult(files, sizes=array("q", bytes(8 * count)), stored=array("q", bytes(8 * count)),
                           new=bytearray(count))
    sizes = result.sizes
    for row in range(count):  # stat first: the total for progress, and every missing file at once
        try:
            sizes[row] = transport.stat(file_path(root, files.name(row))).size
        except FileNotFoundError:
            sizes[row] = MISSING
            result.missing.append(row)
            continue
        result.total_bytes += sizes[row]
    if result.missing and stop_on_missing:
        return result
    done = [0]
    lock = threading.Lock()

    def advance(n: int) -> None:
        with lock:
            done[0] += n

    def many(rows: list[int]) -> None:
        check()
        for row in rows:
            size = sizes[row]
            one(row, file_path(root, files.name(row)))
            advance(size)

    def one(row: int, path: str) -> None:
        sha = files.sha1(row)
        if sha is None:
            sha = _hash_file(transport, path)
            files.set_sha1(row, sha)
        known = index.get(sha)
        if known is not None:
            sizes[row], result.stored[row] = known.size, known.length
            return
        with transport.open_read(path) as source:
            try:
                put = packer.add(sha, source, sizes[row])  # hashes what it reads: a mismatch stores nothing
            except BlobMismatch as exc:
                raise VerificationFailed(
                    f"filestore file {files.name(row)} of database {tenant} (attachment id "
                    f"{', '.join(map(str, files.attachment_ids(row)))}) has SHA-1 {exc.actual}, "
                    f"not {sha} as its name says",
                    where=path, hint="the file was altered or damaged on disk; restore it from an earlier "
                                     "backup or re-upload the attachment in Odoo") from None
        sizes[row], result.stored[row], result.new[row] = put.plain_bytes, put.stored_bytes, not put.skipped

    pending: set[Future] = set()
    index = repo.blob_index()
    # Packs are stored (durably) as they fill and the last one when the pool is
    # done, before this returns, so before any manifest can name their blobs.
    packer = repo.pack_writer()
    with packer, ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="erpops-capture") as pool:
        try:
            for batch in _batches(sizes):
                if len(pending) >= max(1, workers) * 2:
                    finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                    for f in finished:
                        f.result()
                    _report(on_progress, done, result.total_bytes)
                check()
                pending.add(pool.submit(many, batch))
            while pending:
                finished, pending = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
                for f in finished:
                    f.result()
                _report(on_progress, done, result.total_bytes)
                check()
        except BaseException:
            for f in pending:
                f.cancel()
            raise
    _report(on_progress, done, result.total_bytes)
    result.uploaded_bytes = packer.stored_bytes
    for row in range(count):
        if result.new[row]:
            result.new_files += 1
            result.new_bytes += sizes[row]
    return result


def _batches(sizes: array) -> Iterator[list[int]]:
    """Rows of the present files in groups of about BATCH_BYTES (at most BATCH_FILES): a
    task per file would cost more in thread hand-offs than reading a small file does."""
    batch, size = [], 0
    for row, file_size in enumerate(sizes):
        if file_size == MISSING:
            continue
        batch.append(row)
        size += file_size
        if size >= BATCH_BYTES or len(batch) >= BATCH_FILES:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


def _report(on_progress, done: list[int], total: int) -> None:
    if on_progress is not None and (len(done) == 1 or done[1] != done[0]):
        del done[1:]
        done.append(done[0])  # what was last reported: report only changes
        on_progress(done[0], total)


def _hash_file(transport, path: str) -> str:
    """For a file whose name is not its SHA-1 (never the case for Odoo's own files)."""
    sha = hashlib.sha1()
    with transport.open_read(path) as source:
        for block in iter(lambda: source.read(READ_SIZE), b""):
            sha.update(block)
    return sha.hexdigest()
