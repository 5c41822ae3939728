"""Write a backup's filestore files out of the repository, in Odoo's layout.

Each file the manifest lists is read from its content-addressed blob (in a
pack, packs.py), written to ``<dest>/<store_fname>`` (Odoo's
``<sha[:2]>/<sha>``), hashed while it is written and removed again unless its
SHA-1 and size are the ones the manifest recorded. The destination is a
directory of its own, which the caller renames into place only once the whole
restore is done and checked, so a damaged or substituted blob never reaches a
live filestore. Files are written on a small thread pool, in batches; files
of DIRECT_MIN bytes and more around the page cache (direct_io.py): they are
most of the bytes, and allocating cache pages for them costs more than the
rest of their restore. Small files go through the cache: an O_DIRECT write
waits for the device, which for tens of thousands of small files costs more
than it saves.
"""

from __future__ import annotations

import hashlib
import os
import threading
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

from erpops.errors import VerificationFailed
from erpops.repo.capture import file_path
from erpops.repo.direct_io import DirectWriter, open_new

DEFAULT_WORKERS = 2  # decrypting is CPU work under the GIL: more threads than cores only add hand-offs
BATCH_FILES = 256
BATCH_BYTES = 8 << 20
READ_SIZE = 1 << 20
DIRECT_MIN = 1 << 20


@dataclass(slots=True)
class FileToWrite:
    store_fname: str
    sha1: str | None  # None: no hash known (an archive without one); written as is
    size: int | None
    open_source: Callable[[], object]  # a readable binary stream of the content; closed here


@dataclass
class WriteResult:
    files: int = 0
    bytes: int = 0


def write_files(items: Iterable[FileToWrite], dest: Path, *, workers: int = DEFAULT_WORKERS,
                owner: tuple[int, int] | None = None, on_bytes: Callable[[int], None] = lambda n: None,
                check: Callable[[], None] = lambda: None) -> WriteResult:
    """Write every item under ``dest`` (created); VerificationFailed naming the first file
    whose content does not hash to its name. ``owner``: chown what is created (running
    as root for a filestore that Odoo's user owns). ``check()`` raises to stop."""
    dest.mkdir(parents=True, exist_ok=True)
    _chown(dest, owner)
    result = WriteResult()
    lock = threading.Lock()
    made_dirs: set[str] = set()

    def one(item: FileToWrite) -> int:
        path = file_path(str(dest), item.store_fname)
        parent = os.path.dirname(path)
        if parent not in made_dirs:
            with lock:
                os.makedirs(parent, exist_ok=True)
                _chown(Path(parent), owner)
                made_dirs.add(parent)
        # Written under its final name: ``dest`` is the restore's own directory, renamed
        # into place only when everything is written and checked (a rename per file
        # would double the cost of the file system's metadata work).
        sha = hashlib.sha1()
        source = item.open_source()
        try:
            if item.size is not None and item.size >= DIRECT_MIN:
                fd, direct = open_new(path, 0o666)
                try:
                    out = DirectWriter(fd, direct)
                    size = _pour(source, out, sha)
                    out.close()
                finally:
                    os.close(fd)
            else:
                with open(path, "wb") as out:
                    size = _pour(source, out, sha)
        except BaseException:
            _remove(path)
            raise
        finally:
            source.close()
        if (item.sha1 is not None and sha.hexdigest() != item.sha1) or (item.size is not None and size != item.size):
            _remove(path)
            raise VerificationFailed(f"filestore file {item.store_fname} restored with SHA-1 {sha.hexdigest()} "
                                     f"({size} bytes), not {item.sha1} ({item.size} bytes) as recorded",
                                     where=path, hint="the stored copy is damaged: erpops repo verify names "
                                                      "every damaged object; restore an older backup")
        if owner is not None:
            os.chown(path, *owner)
        return size

    def many(batch: list[FileToWrite]) -> tuple[int, int]:
        check()
        written = 0
        for item in batch:
            size = one(item)
            on_bytes(size)
            written += size
        return len(batch), written

    pending: set = set()

    def collect(done) -> None:
        for future in done:
            files, written = future.result()
            result.files += files
            result.bytes += written

    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="erpops-unpack") as pool:
        try:
            for batch in _batches(items):
                if len(pending) >= max(1, workers) * 2:
                    done, pending = wait(pending, return_when=FIRST_COMPLETED)
                    collect(done)
                check()
                pending.add(pool.submit(many, batch))
            while pending:
                done, pending = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
                collect(done)
                check()
        except BaseException:
            for future in pending:
                future.cancel()
            raise
    return result


def _batches(items: Iterable[FileToWrite]):
    """Files in groups (about BATCH_BYTES, at most BATCH_FILES): a task per small file
    costs more in thread hand-offs than writing it."""
    batch, size = [], 0
    for item in items:
        batch.append(item)
        size += item.size or READ_SIZE
        if size >= BATCH_BYTES or len(batch) >= BATCH_FILES:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


def _remove(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _pour(source, out, sha) -> int:
    """Copy ``source`` to ``out``, hashing on the way; the bytes copied."""
    size = 0
    while block := source.read(READ_SIZE):
        sha.update(block)
        out.write(block)
        size += len(block)
    return size


def blob_items(repo, files) -> list[FileToWrite]:
    """The manifest's FileEntry list as FileToWrite, each read from its blob, in
    pack order: the packs are then read front to back, not at random."""
    index = repo.blob_index()

    def where(f) -> tuple[str, int]:
        location = index.get(f.sha1)
        return (location.pack, location.offset) if location else ("", 0)  # missing: fails when read

    return [FileToWrite(f.store_fname, f.sha1, f.size, _BlobOpener(repo, f.sha1)) for f in sorted(files, key=where)]


class _BlobOpener:
    """``open_source`` of a blob: a slotted object, smaller than a closure per file."""

    __slots__ = ("repo", "sha1")

    def __init__(self, repo, sha1: str):
        self.repo, self.sha1 = repo, sha1

    def __call__(self):
        return self.repo.get_blob(self.sha1)


def owner_of(path: Path) -> tuple[int, int] | None:
    """The owner to give new files: that of ``path`` when running as root and it differs."""
    if os.geteuid() != 0:
        return None
    try:
        st = path.stat()
    except OSError:
        return None
    return None if (st.st_uid, st.st_gid) == (0, 0) else (st.st_uid, st.st_gid)


def _chown(path: Path, owner: tuple[int, int] | None) -> None:
    if owner is not None:
        os.chown(path, *owner)
