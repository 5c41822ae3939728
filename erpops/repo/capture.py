"""Capture an Odoo filestore into the repository as content-addressed blobs.

Odoo names every file by the SHA-1 of its content (``filestore/<db>/ab/ab12…``),
so a file is stored once under ``blobs/ab/ab12…`` and shared by every backup
and tenant: a file already in the repository is not read, not uploaded again
(its stored size comes from the storage). A new file is hashed while it streams
into the repository; a file whose content does not match its name fails the
backup, naming the file and its attachment rows. A referenced file that is not
in the filestore is collected, so the caller reports all of them at once.

Uploads run on a small thread pool: against S3 the latency of each request,
not the bandwidth, dominates. At most ``MAX_IN_FLIGHT`` files are queued at a
time and each streams chunk by chunk, so memory stays flat in the filestore's size.
"""

from __future__ import annotations

import hashlib
import posixpath
import re
import threading
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Callable

from erpops.errors import UsageError, VerificationFailed
from erpops.pg.snapshot import AttachedFile
from erpops.repo.manifest import FileEntry, ObjectEntry
from erpops.repo.storage import ObjectNotFound

DEFAULT_WORKERS = 4
MAX_IN_FLIGHT = 64
READ_SIZE = 1 << 20
_SHA1 = re.compile(r"^[0-9a-f]{40}$")


@dataclass
class CaptureResult:
    files: list[FileEntry] = field(default_factory=list)
    objects: list[ObjectEntry] = field(default_factory=list)  # one per distinct blob
    missing: list[AttachedFile] = field(default_factory=list)
    new_files: int = 0
    new_bytes: int = 0  # plain bytes of the files uploaded by this capture
    uploaded_bytes: int = 0  # stored bytes written by this capture
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
    """Counts, hashes and reports progress on what the repository reads from a file."""

    def __init__(self, source, on_bytes: Callable[[int], None]):
        self._source, self._on_bytes = source, on_bytes
        self.sha1 = hashlib.sha1()
        self.size = 0

    def read(self, n: int = -1) -> bytes:
        data = self._source.read(n if n and n > 0 else READ_SIZE)
        self.sha1.update(data)
        self.size += len(data)
        self._on_bytes(len(data))
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

    def one(item: AttachedFile, path: str, size: int) -> tuple[FileEntry, ObjectEntry]:
        check()
        sha = expected_sha1(item) or _hash_file(transport, path)
        key = repo.blob_key(sha)
        stored = _stored_size(repo, key)
        if stored is not None:
            advance(size)
            return (FileEntry(store_fname=item.store_fname, sha1=sha, size=size, attachment_ids=item.attachment_ids),
                    ObjectEntry(key=key, kind="blob", plain_bytes=size, stored_bytes=stored, sha1=sha, new=False))
        with transport.open_read(path) as source:
            reader = _Reader(source, advance)
            try:
                put = repo.put_blob(sha, reader, batch=batch)
            except VerificationFailed:
                raise VerificationFailed(
                    f"filestore file {item.store_fname} of database {tenant} (attachment id "
                    f"{', '.join(map(str, item.attachment_ids))}) has SHA-1 {reader.sha1.hexdigest()}, "
                    f"not {sha} as its name says",
                    where=path, hint="the file was altered or damaged on disk; restore it from an earlier "
                                     "backup or re-upload the attachment in Odoo") from None
        new = not put.skipped
        stored = put.stored_bytes if new else (_stored_size(repo, key) or 0)
        return (FileEntry(store_fname=item.store_fname, sha1=sha, size=reader.size or size,
                          attachment_ids=item.attachment_ids),
                ObjectEntry(key=key, kind="blob", plain_bytes=reader.size or size, stored_bytes=stored, sha1=sha,
                            new=new))

    seen_blobs: set[str] = set()

    def collect(future: Future) -> None:
        entry, obj = future.result()
        result.files.append(entry)
        if obj.key not in seen_blobs:
            seen_blobs.add(obj.key)
            result.objects.append(obj)
            if obj.new:
                result.new_files += 1
                result.new_bytes += obj.plain_bytes
                result.uploaded_bytes += obj.stored_bytes

    pending: set[Future] = set()
    # One durability barrier for all new blobs (storage_local.py), settled before
    # this returns, so before any manifest can name them.
    batch = repo.storage.begin_batch()
    with batch, ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="erpops-capture") as pool:
        try:
            for item, size in present:
                if len(pending) >= MAX_IN_FLIGHT:
                    finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                    for f in finished:
                        collect(f)
                    _report(on_progress, done, result.total_bytes)
                check()
                pending.add(pool.submit(one, item, file_path(root, item.store_fname), size))
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
    result.files.sort(key=lambda e: e.store_fname)
    result.objects.sort(key=lambda o: o.key)
    return result


def _report(on_progress, done: list[int], total: int) -> None:
    if on_progress is not None and (len(done) == 1 or done[1] != done[0]):
        del done[1:]
        done.append(done[0])  # what was last reported: report only changes
        on_progress(done[0], total)


def _stored_size(repo, key: str) -> int | None:
    try:
        return repo.storage.stat(key).size
    except ObjectNotFound:
        return None


def _hash_file(transport, path: str) -> str:
    """For a file whose name is not its SHA-1 (never the case for Odoo's own files)."""
    sha = hashlib.sha1()
    with transport.open_read(path) as source:
        for block in iter(lambda: source.read(READ_SIZE), b""):
            sha.update(block)
    return sha.hexdigest()
