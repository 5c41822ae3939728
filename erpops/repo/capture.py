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
are queued; small files are held whole and large ones stream, so memory stays
flat in the filestore's size.
"""

from __future__ import annotations

import hashlib
import posixpath
import re
import threading
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Callable, Iterator

from erpops.errors import UsageError, VerificationFailed
from erpops.pg.snapshot import AttachedFile
from erpops.repo.manifest import FileEntry, ObjectEntry

DEFAULT_WORKERS = 2  # sealing is CPU work under the GIL: more threads than cores only add hand-offs
BATCH_FILES = 256
BATCH_BYTES = 8 << 20
READ_SIZE = 1 << 20
_SHA1 = re.compile(r"^[0-9a-f]{40}$")


@dataclass
class CaptureResult:
    files: list[FileEntry] = field(default_factory=list)
    objects: list[ObjectEntry] = field(default_factory=list)  # one per distinct blob
    missing: list[AttachedFile] = field(default_factory=list)
    new_files: int = 0
    new_bytes: int = 0  # plain bytes of the files uploaded by this capture
    uploaded_bytes: int = 0  # stored bytes written by this capture (packs and their indexes)
    total_bytes: int = 0  # plain bytes of every captured file


def file_path(root: str, store_fname: str) -> str:
    """filestore/<db>/<store_fname>, refusing names that would leave the directory."""
    name = posixpath.normpath(store_fname)
    if name.startswith(("/", "..")) or "/../" in f"/{name}/" or name in (".", ""):
        raise UsageError(f"ir_attachment.store_fname {store_fname!r} points outside the filestore",
                         hint="fix the attachment row; erpops reads only under filestore/<db>/")
    return posixpath.join(root.rstrip("/"), name)


def expected_sha1(item: AttachedFile) -> str | None:
    """The SHA-1 Odoo named the file by (its last path part), else the row's checksum."""
    base = posixpath.basename(item.store_fname)
    if _SHA1.match(base):
        return base
    if item.checksum and _SHA1.match(item.checksum.lower()):
        return item.checksum.lower()
    return None


class _Reader:
    """Counts and hashes what the repository reads from a file."""

    def __init__(self, source):
        self._source = source
        self.sha1 = hashlib.sha1()
        self.size = 0

    def read(self, n: int = -1) -> bytes:
        data = self._source.read(n if n and n > 0 else READ_SIZE)
        self.sha1.update(data)
        self.size += len(data)
        return data


def capture_files(repo, files: list[AttachedFile], root: str, transport, *, tenant: str = "",
                  workers: int = DEFAULT_WORKERS, on_progress: Callable[[int, int], None] | None = None,
                  check: Callable[[], None] = lambda: None, stop_on_missing: bool = False) -> CaptureResult:
    """Store every listed file of ``root`` (the tenant's filestore directory, read
    through ``transport``) in ``repo``. ``on_progress(done_bytes, total_bytes)``;
    ``check()`` raises to stop (timeout, Ctrl-C); ``stop_on_missing``: when a
    file is missing, upload nothing (the caller fails the backup anyway)."""
    result = CaptureResult()
    present: list[tuple[AttachedFile, int]] = []  # paths are made again when used: memory per file counts
    for item in files:  # stat first: the total for progress, and every missing file at once
        path = file_path(root, item.store_fname)
        try:
            size = transport.stat(path).size
        except FileNotFoundError:
            result.missing.append(item)
            continue
        present.append((item, size))
        result.total_bytes += size
    if result.missing and stop_on_missing:
        return result
    done = [0]
    lock = threading.Lock()

    def advance(n: int) -> None:
        with lock:
            done[0] += n

    def many(batch: list[tuple[AttachedFile, int]]) -> list[tuple[FileEntry, ObjectEntry]]:
        check()
        out = []
        for item, size in batch:
            out.append(one(item, file_path(root, item.store_fname), size))
            advance(size)
        return out

    def one(item: AttachedFile, path: str, size: int) -> tuple[FileEntry, ObjectEntry]:
        sha = expected_sha1(item) or _hash_file(transport, path)
        key = repo.blob_key(sha)
        known = index.get(sha)
        if known is not None:
            return (FileEntry(store_fname=item.store_fname, sha1=sha, size=known.size, attachment_ids=item.attachment_ids),
                    ObjectEntry(key=key, kind="blob", plain_bytes=known.size, stored_bytes=known.length, sha1=sha,
                                new=False))
        with transport.open_read(path) as source:
            reader = _Reader(source)
            try:
                put = packer.add(sha, reader)
            except VerificationFailed:
                raise VerificationFailed(
                    f"filestore file {item.store_fname} of database {tenant} (attachment id "
                    f"{', '.join(map(str, item.attachment_ids))}) has SHA-1 {reader.sha1.hexdigest()}, "
                    f"not {sha} as its name says",
                    where=path, hint="the file was altered or damaged on disk; restore it from an earlier "
                                     "backup or re-upload the attachment in Odoo") from None
        return (FileEntry(store_fname=item.store_fname, sha1=sha, size=put.plain_bytes, attachment_ids=item.attachment_ids),
                ObjectEntry(key=key, kind="blob", plain_bytes=put.plain_bytes, stored_bytes=put.stored_bytes, sha1=sha,
                            new=not put.skipped))

    seen_blobs: set[str] = set()

    def collect(future: Future) -> None:
        for entry, obj in future.result():
            result.files.append(entry)
            if obj.key not in seen_blobs:
                seen_blobs.add(obj.key)
                result.objects.append(obj)
                if obj.new:
                    result.new_files += 1
                    result.new_bytes += obj.plain_bytes

    pending: set[Future] = set()
    index = repo.blob_index()
    # Packs are stored (durably) as they fill and the last one when the pool is
    # done, before this returns, so before any manifest can name their blobs.
    packer = repo.pack_writer()
    with packer, ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="erpops-capture") as pool:
        try:
            for batch in _batches(present):
                if len(pending) >= max(1, workers) * 2:
                    finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                    for f in finished:
                        collect(f)
                    _report(on_progress, done, result.total_bytes)
                check()
                pending.add(pool.submit(many, batch))
            while pending:
                finished, pending = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
                for f in finished:
                    collect(f)
                _report(on_progress, done, result.total_bytes)
                check()
        except BaseException:
            for f in pending:
                f.cancel()
            raise
    _report(on_progress, done, result.total_bytes)
    result.uploaded_bytes = packer.stored_bytes
    result.files.sort(key=lambda e: e.store_fname)
    result.objects.sort(key=lambda o: o.key)
    return result


def _batches(present: list[tuple[AttachedFile, int]]) -> Iterator[list[tuple[AttachedFile, int]]]:
    """Files in groups of about BATCH_BYTES (at most BATCH_FILES): a task per file
    would cost more in thread hand-offs than reading a small file does."""
    batch, size = [], 0
    for item in present:
        batch.append(item)
        size += item[1]
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
