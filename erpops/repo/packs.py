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
memory stays bounded whatever the size of a file.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import queue
import re
import threading
from array import array
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import BinaryIO, Iterable, Iterator

from erpops.errors import OperationFailed, UsageError, VerificationFailed
from erpops.repo.objectformat import EncryptingReader, seal_bytes
from erpops.repo.storage import ObjectNotFound

PACK_TARGET = 8 << 20  # a pack is stored once it holds this many bytes
SMALL_BLOB_LIMIT = 1 << 20  # larger blobs stream into a pack of their own
INDEX_PREFIX = "index/"
PACK_PREFIX = "packs/"
INDEX_FORMAT = 1
READ_PIECE = 64 << 10  # a read of 1 MiB into a 40 KB file costs a 1 MiB allocation
LOAD_WORKERS = 8  # index objects are small: their latency, not bandwidth, counts on S3
_SLOTS = 1 << 24  # more blobs than a pack can hold (8 MiB of objects of at least ~60 bytes)
_SHA1 = re.compile(r"^[0-9a-f]{40}$")


def pack_key(pack_id: str) -> str:
    return f"{PACK_PREFIX}{pack_id[:2]}/{pack_id}"


def index_key(pack_id: str) -> str:
    return f"{INDEX_PREFIX}{pack_id}"


@dataclass(frozen=True, slots=True)
class BlobLocation:
    pack: str  # pack id
    offset: int  # where the blob's encrypted object starts in the pack
    length: int  # its stored bytes
    size: int  # its plaintext bytes


class PackInfo:
    """One pack's index: its blobs in pack order. Kept in two arrays, not as an
    object per blob: a repository's index holds every blob it has (millions)."""

    __slots__ = ("pack_id", "size", "_digests", "_places")

    def __init__(self, pack_id: str, size: int, entries: Iterable[tuple[str, int, int, int]] = ()):
        self.pack_id, self.size = pack_id, size  # size: stored bytes of the pack
        self._digests = bytearray()  # 20 bytes per blob: its SHA-1
        self._places = array("q")  # 3 per blob: offset, length (stored bytes), size (plaintext bytes)
        for sha, offset, length, plain in entries:
            self._digests += bytes.fromhex(sha)
            self._places.extend((offset, length, plain))

    def __len__(self) -> int:
        return len(self._places) // 3

    def sha1(self, position: int) -> str:
        return self._digests[position * 20:position * 20 + 20].hex()

    def location(self, position: int) -> BlobLocation:
        offset, length, size = self._places[position * 3:position * 3 + 3]
        return BlobLocation(self.pack_id, offset, length, size)

    @property
    def blobs(self) -> tuple[tuple[str, BlobLocation], ...]:
        """(sha1, location) of each blob, in pack order (made on each call)."""
        return tuple((self.sha1(i), self.location(i)) for i in range(len(self)))

    def to_json(self) -> bytes:
        places = self._places
        return json.dumps({"format": INDEX_FORMAT, "pack": self.pack_id, "size": self.size,
                           "blobs": [[self.sha1(i), *places[i * 3:i * 3 + 3]] for i in range(len(self))]},
                          separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, raw: bytes, pack_id: str) -> "PackInfo":
        doc = json.loads(raw)
        if doc.get("format") != INDEX_FORMAT or doc.get("pack") != pack_id:
            raise ValueError(f"not the index of pack {pack_id}")
        size = int(doc["size"])
        for sha, offset, length, _plain in doc["blobs"]:
            if not (isinstance(sha, str) and _SHA1.match(sha) and 0 <= offset and 0 < length
                    and offset + length <= size):
                raise ValueError(f"impossible entry {sha!r} at {offset}+{length} in a pack of {size} bytes")
        return cls(pack_id, size, doc["blobs"])


class BlobIndex:
    """Every blob of the repository and where it lies, from the ``index/`` objects.
    A blob is found through its 20-byte SHA-1 (about 170 bytes of memory per blob)."""

    def __init__(self):
        self.packs: dict[str, PackInfo] = {}
        self.unreadable: list[tuple[str, str]] = []  # (index key, why): its blobs are unknown
        self._where: dict[bytes, int] = {}  # SHA-1 digest -> pack number * _SLOTS + position in it
        self._pack_list: list[PackInfo] = []
        self._lock = threading.Lock()

    @classmethod
    def load(cls, repo) -> "BlobIndex":
        index = cls()
        keys = [k for k in repo.storage.list(INDEX_PREFIX)]
        if not keys:
            return index

        def read(key: str) -> PackInfo | str:
            pack_id = key[len(INDEX_PREFIX):]
            try:
                with repo._get(key) as reader:
                    return PackInfo.from_json(reader.read(), pack_id)
            except ObjectNotFound:
                return "disappeared while it was read"  # removed by a prune meanwhile
            except VerificationFailed as exc:
                return exc.message
            except (ValueError, KeyError, TypeError) as exc:
                return f"is not a valid pack index: {exc}"

        with ThreadPoolExecutor(max_workers=min(LOAD_WORKERS, len(keys)), thread_name_prefix="erpops-index") as pool:
            for key, info in zip(keys, pool.map(read, keys)):
                if isinstance(info, PackInfo):
                    index.add(info)
                else:
                    index.unreadable.append((key, info))
        return index

    def add(self, info: PackInfo) -> None:
        with self._lock:
            self.packs[info.pack_id] = info
            number = len(self._pack_list)
            self._pack_list.append(info)
            digests = info._digests
            for position in range(len(info)):
                self._where.setdefault(bytes(digests[position * 20:position * 20 + 20]), number * _SLOTS + position)

    def get(self, sha1: str) -> BlobLocation | None:
        where = self._where.get(_digest(sha1))
        if where is None:
            return None
        number, position = divmod(where, _SLOTS)
        return self._pack_list[number].location(position)

    def __contains__(self, sha1: str) -> bool:
        return _digest(sha1) in self._where

    def __len__(self) -> int:
        return len(self._where)


def _digest(sha1: str) -> bytes | None:
    try:
        return bytes.fromhex(sha1)
    except (TypeError, ValueError):
        return None  # not a SHA-1: in no index


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
                raise _mismatch(sha1, digest)
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
            raise _mismatch(sha1, digest)
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


def _mismatch(sha1: str, digest: str) -> BlobMismatch:
    return BlobMismatch(sha1, digest)


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


def iter_pack_keys(repo) -> Iterator[tuple[str, str]]:
    """(pack id, storage key) of every stored pack, indexed or not."""
    for key in repo.storage.list(PACK_PREFIX):
        yield key.rsplit("/", 1)[-1], key
