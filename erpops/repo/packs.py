"""Blob packs: a filestore's many small files stored as few large objects.

An Odoo filestore holds tens of thousands of small files. One storage object
per file costs a file creation and an fsync (locally) or a request (S3) per
file, which dominated the time of a backup; restic and borg store small blobs
in packs for the same reason. So blobs are written into packs::

    packs/<id[:2]>/<id>   blobs one after another, each a complete encrypted object
                          (objectformat.py) whose identity is blobs/<sha[:2]>/<sha>
    index/<id>            encrypted JSON: where each blob of pack <id> lies

Each blob keeps its own key, header and authenticated chunks, so a blob read
from its byte range is checked exactly as a lone object would be, and a blob
moved to another offset, pack or name fails authentication. A pack is stored
whole (atomically) and its index only after it: an index never names a pack
that is not there. A pack without an index (a writer killed in between) is
invisible and is removed by ``repo prune`` after its grace period. A blob
that is in two packs (two backups wrote it at once) is harmless: either copy
serves.

Blobs larger than ``SMALL_BLOB_LIMIT`` stream into a pack of their own, so
memory stays bounded whatever the size of a file. Reading the ``index/``
objects back, and finding a blob: blob_index.py.
"""

from __future__ import annotations

import hashlib
import io
import os
import queue
import threading
from dataclasses import dataclass
from typing import BinaryIO

from erpops.errors import OperationFailed, UsageError, VerificationFailed
from erpops.repo.blob_index import BlobIndex, BlobLocation, PackInfo, index_key, pack_key
from erpops.repo.objectformat import EncryptingReader, seal_bytes

PACK_TARGET = 8 << 20  # a pack is stored once it holds this many bytes
SMALL_BLOB_LIMIT = 1 << 20  # larger blobs stream into a pack of their own
READ_PIECE = 64 << 10  # a read of 1 MiB into a 40 KB file costs a 1 MiB allocation


@dataclass(frozen=True)
class BlobPut:
    key: str  # the blob's identity, blobs/<sha[:2]>/<sha>
    plain_bytes: int
    stored_bytes: int  # its bytes in its pack (in the pack it already was in, when skipped)
    skipped: bool  # already in the repository (or being written by another thread)


class PackWriter:
    """Adds blobs to packs; thread-safe. Use as a context manager: leaving it
    normally stores the last, partly filled pack; leaving on an error drops it
    (the packs already stored stay, indexed, and later backups reuse them)."""

    def __init__(self, repo, index: BlobIndex, *, pack_target: int = PACK_TARGET,
                 small_limit: int = SMALL_BLOB_LIMIT):
        self._repo, self._index = repo, index
        self._pack_target, self._small_limit = pack_target, small_limit
        self._lock = threading.Lock()
        # Full packs are stored by one background thread, so the workers go on
        # sealing while a pack is written and synced; the queue holds one pack,
        # which bounds memory to three (open, queued, being stored).
        self._full: queue.Queue = queue.Queue(maxsize=1)
        self._storer: threading.Thread | None = None
        self._failure: BaseException | None = None  # the storer's error, raised to the next caller
        self._abandoned = False
        self._sealing: set[str] = set()  # blobs a thread is reading and encrypting
        self._sealed = threading.Condition(self._lock)  # notified when one of them is done
        self._pending: dict[str, BlobLocation] = {}  # blobs in the open pack (not stored yet)
        self._parts: list[bytes] = []
        self._entries: list[tuple[str, int, int, int]] = []  # (sha1, offset, length, size) of the open pack
        self._filled = 0
        self.stored_bytes = 0  # packs and indexes written
        self.packs_written = 0

    def __enter__(self) -> "PackWriter":
        return self

    def __exit__(self, exc_type, *exc) -> None:
        if exc_type is None:
            self.flush()
            return
        with self._lock:
            self._parts, self._entries, self._filled = [], [], 0
            self._pending.clear()
        self._abandoned = True  # the storer drops what is still queued
        self._stop_storer()

    def add(self, sha1: str, reader: BinaryIO, size_hint: int | None = None) -> BlobPut:
        """Store the content ``reader`` yields as blob ``sha1`` unless the repository
        has it. The content must hash to ``sha1``: BlobMismatch otherwise, and
        nothing of it is kept. ``size_hint``: the expected size (a small file is
        then read with one call)."""
        key = self._repo.blob_key(sha1)
        with self._sealed:
            while True:
                known = self._index.get(sha1) or self._pending.get(sha1)
                if known is not None:
                    return BlobPut(key, known.size, known.length, True)
                if sha1 not in self._sealing:
                    self._sealing.add(sha1)
                    break
                self._sealed.wait()  # another thread is storing the same content: use its copy, or retry if it failed
        try:
            first = size_hint + 1 if size_hint is not None and size_hint < self._small_limit else READ_PIECE
            head = _read_up_to(reader, self._small_limit + 1, first)
            if len(head) > self._small_limit:
                return self._store_alone(sha1, key, _Chain(head, reader))
            digest = hashlib.sha1(head).hexdigest()
            if digest != sha1:
                raise BlobMismatch(sha1, digest)
            config = self._repo.config
            sealed = seal_bytes(head, self._repo._master, key, chunk_size=config["chunk_size"],
                                level=config["compression"]["level"])
            self._append(sha1, sealed, len(head))
            return BlobPut(key, len(head), len(sealed), False)
        finally:
            with self._sealed:
                self._sealing.discard(sha1)
                self._sealed.notify_all()

    def _seal(self, key: str, source) -> EncryptingReader:
        config = self._repo.config
        return EncryptingReader(source, self._repo._master, key, chunk_size=config["chunk_size"],
                                level=config["compression"]["level"])

    def _append(self, sha1: str, sealed: bytes, size: int) -> None:
        with self._lock:
            self._entries.append((sha1, self._filled, len(sealed), size))
            self._pending[sha1] = BlobLocation("", self._filled, len(sealed), size)
            self._parts.append(sealed)
            self._filled += len(sealed)
            if self._filled < self._pack_target:
                return
            parts, entries = self._parts, self._entries
            self._parts, self._entries, self._filled = [], [], 0
            if self._storer is None:
                self._storer = threading.Thread(target=self._store_full, name="erpops-pack-store", daemon=True)
                self._storer.start()
        self._full.put((parts, entries))  # waits while the storer is still busy with the one before
        self._raise_failure()

    def flush(self) -> None:
        """Store the open pack, wait for every pack to be stored; raise what went wrong."""
        with self._lock:
            parts, entries = self._parts, self._entries
            self._parts, self._entries, self._filled = [], [], 0
        self._stop_storer()
        self._raise_failure()
        if entries:
            self._store(parts, entries)

    def _stop_storer(self) -> None:
        if self._storer is not None:
            self._full.put(None)
            self._storer.join()
            self._storer = None

    def _raise_failure(self) -> None:
        if self._failure is not None:
            raise self._failure

    def _store_full(self) -> None:
        while (job := self._full.get()) is not None:
            if self._abandoned or self._failure is not None:
                continue  # the capture failed: store nothing more, keep draining
            try:
                self._store(*job)
            except BaseException as exc:  # noqa: BLE001 - handed to the workers' thread
                self._failure = exc

    def _store(self, parts: list[bytes], entries: list[tuple[str, int, int, int]]) -> None:
        pack_id = os.urandom(16).hex()
        size = self._repo.storage.put_stream(pack_key(pack_id), _Parts(parts), if_absent=True,
                                             retain_until=self._repo._retain_until())
        self._publish(pack_id, size, entries)

    def _store_alone(self, sha1: str, key: str, source: "_Chain") -> BlobPut:
        pack_id = os.urandom(16).hex()
        hashing = _Hashing(source, hashlib.sha1())
        sealed = self._seal(key, hashing)
        size = self._repo.storage.put_stream(pack_key(pack_id), sealed, if_absent=True,
                                             retain_until=self._repo._retain_until())
        digest = hashing.sha.hexdigest()
        if digest != sha1:
            try:
                self._repo.storage.delete(pack_key(pack_id))
            except (OperationFailed, UsageError):
                pass  # under Object Lock it stays, unindexed; prune reports it once it may go
            raise BlobMismatch(sha1, digest)
        self._publish(pack_id, size, [(sha1, 0, size, sealed.plain_bytes)])
        return BlobPut(key, sealed.plain_bytes, size, False)

    def _publish(self, pack_id: str, size: int, entries: list[tuple[str, int, int, int]]) -> None:
        """Write the pack's index (the pack is stored): from now on its blobs exist."""
        info = PackInfo(pack_id, size, entries)
        put = self._repo._put(index_key(pack_id), io.BytesIO(info.to_json()), if_absent=True)
        self._index.add(info)
        with self._lock:
            self.stored_bytes += size + put.stored_bytes
            self.packs_written += 1
            for sha, *_ in entries:
                self._pending.pop(sha, None)


class BlobMismatch(VerificationFailed):
    """Content given as a blob does not hash to the blob's name; ``actual`` is its SHA-1."""

    def __init__(self, sha1: str, actual: str):
        super().__init__(f"content given as blob {sha1} has SHA-1 {actual}",
                         hint="the source file changed or is damaged; it was not kept")
        self.actual = actual


def _read_up_to(reader, n: int, first: int = READ_PIECE) -> bytes:
    """Up to ``n`` bytes (fewer at the end of the stream); the first read asks for ``first``."""
    parts, missing, want = [], n, first
    while missing:
        piece = reader.read(min(missing, want))
        if not piece:
            break
        parts.append(piece)
        missing -= len(piece)
        want = READ_PIECE
    return parts[0] if len(parts) == 1 else b"".join(parts)


class _Chain:
    """``head`` (already read) followed by the rest of ``reader``."""

    def __init__(self, head: bytes, reader):
        self._head, self._reader = memoryview(head), reader

    def read(self, n: int = -1) -> bytes:
        if self._head:
            take = len(self._head) if n is None or n < 0 else n
            out, self._head = bytes(self._head[:take]), self._head[take:]
            return out
        return self._reader.read(n)


class _Hashing:
    def __init__(self, source, sha):
        self._source, self.sha = source, sha

    def read(self, n: int = -1) -> bytes:
        data = self._source.read(n)
        self.sha.update(data)
        return data


class _Parts:
    """A reader over a list of byte strings, letting each go once it is read. A read
    returns at most one part (a short read, as raw streams may): the storage copies
    what it reads into its own buffer anyway, so joining parts here would copy twice."""

    def __init__(self, parts: list[bytes]):
        self._parts = parts
        self._parts.reverse()
        self._current = memoryview(b"")

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            rest = [bytes(self._current), *reversed(self._parts)]
            self._parts, self._current = [], memoryview(b"")
            return b"".join(rest)
        if not self._current:
            if not self._parts:
                return b""
            self._current = memoryview(self._parts.pop())
        piece, self._current = self._current[:n], self._current[n:]
        return piece.obj if len(piece) == len(piece.obj) else bytes(piece)
