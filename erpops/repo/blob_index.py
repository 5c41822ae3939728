"""The blob index: which blobs a repository holds, and where in its packs.

Packs (packs.py) are listed by ``index/<pack id>`` objects, each an encrypted
JSON document naming the blobs of one pack with their offsets and lengths.
``BlobIndex.load`` reads them all once; a repository's index holds every blob
it has (millions for a large filestore), so it is kept in arrays: about 160
bytes of memory per blob.
"""

from __future__ import annotations

import json
import re
import threading
from array import array
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Iterable, Iterator

from erpops.errors import VerificationFailed
from erpops.repo.storage import ObjectNotFound

INDEX_PREFIX = "index/"
PACK_PREFIX = "packs/"
INDEX_FORMAT = 1
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


def iter_pack_keys(repo) -> Iterator[tuple[str, str]]:
    """(pack id, storage key) of every stored pack, indexed or not."""
    for key in repo.storage.list(PACK_PREFIX):
        yield key.rsplit("/", 1)[-1], key
