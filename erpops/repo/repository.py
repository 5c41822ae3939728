"""A backup repository: storage + the encrypted object format + the master key.

Layout under the repository root (a directory or a bucket prefix)::

    config                  JSON, in the clear: format version, chunk size,
                            compression, Object Lock policy, wrapped key slots, MAC
    objects/<name>          named objects (dumps, manifests, ...), encrypted
    packs/<id[:2]>/<id>     content-addressed blobs keyed by the SHA-1 of their
                            plaintext (Odoo filestore files), many per pack, shared
    index/<id>              where each blob of pack <id> lies (blob_index.py)

The config cannot be encrypted (it holds what opens the key), so it carries an
HMAC-SHA256 under a key derived from the master key: once the key is open, any
change to the config (say, Object Lock removed, chunk size altered) is detected.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import BinaryIO

from erpops.errors import Refused, UsageError, VerificationFailed
from erpops.repo import keys
from erpops.repo.objectformat import DEFAULT_CHUNK_SIZE, MAX_CHUNK_SIZE, MIN_CHUNK_SIZE, DecryptingReader, EncryptingReader
from erpops.repo.blob_index import BlobIndex, BlobLocation, pack_key
from erpops.repo.packs import BlobPut, PackWriter
from erpops.repo.storage import ObjectExists, ObjectNotFound, Storage
from erpops.repo.storage_s3 import S3Options
from erpops.repo.url import LocalUrl, parse_url

REPOSITORY_FORMAT = "erpops-repository"
REPOSITORY_VERSION = 2  # 2: blobs in packs (version 1 stored one object per blob)
CONFIG_KEY = "config"
MAX_CONFIG_SIZE = 1 << 20
LOCK_MODES = ("governance", "compliance")
_SHA1 = re.compile(r"^[0-9a-f]{40}$")


@dataclass(frozen=True)
class ObjectLock:
    mode: str  # governance | compliance
    days: int

    def __post_init__(self):
        if self.mode not in LOCK_MODES:
            raise UsageError(f"Object Lock mode must be governance or compliance, not {self.mode!r}")
        if not 1 <= self.days <= 36500:
            raise UsageError(f"Object Lock retention must be 1 to 36500 days, not {self.days}")


@dataclass(frozen=True)
class PutResult:
    key: str
    plain_bytes: int  # bytes read from the caller
    stored_bytes: int  # bytes written to storage (0 when skipped)
    skipped: bool = False  # a content-addressed blob that was already present


def open_storage(url: str, s3: S3Options | None = None) -> Storage:
    parsed = parse_url(url)
    if isinstance(parsed, LocalUrl):
        from erpops.repo.storage_local import LocalStorage

        return LocalStorage(parsed.path)
    from erpops.repo.storage_s3 import S3Storage

    return S3Storage(parsed, s3 or S3Options())


def _canonical(doc: dict) -> bytes:
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _mac(master: bytes, config: dict) -> str:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    mac_key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"erpops-config-mac-v1").derive(master)
    body = {k: v for k, v in config.items() if k != "mac"}
    return hmac.new(mac_key, _canonical(body), hashlib.sha256).hexdigest()


class Repository:
    def __init__(self, storage: Storage, config: dict, master: bytes, slot: int):
        self.storage = storage
        self.config = config
        self._master = master
        self._slot = slot  # the key slot that opened it, replaced by rekey
        self._blob_index: BlobIndex | None = None
        lock = config.get("object_lock")
        self.object_lock = ObjectLock(lock["mode"], int(lock["days"])) if lock else None
        if self.object_lock is not None and hasattr(storage, "object_lock_mode"):
            storage.object_lock_mode = self.object_lock.mode

    # -- creating and opening ------------------------------------------------

    @classmethod
    def init(cls, url: str, key: keys.KeySource, *, s3: S3Options | None = None,
             chunk_size: int = DEFAULT_CHUNK_SIZE, compression_level: int = 3,
             object_lock: ObjectLock | None = None) -> "Repository":
        if not MIN_CHUNK_SIZE <= chunk_size <= MAX_CHUNK_SIZE:
            raise UsageError(f"chunk size must be between {MIN_CHUNK_SIZE} and {MAX_CHUNK_SIZE} bytes")
        if not 0 <= compression_level <= 22:
            raise UsageError("zstd compression level must be 0 (off) to 22")
        storage = open_storage(url, s3)
        if storage.exists(CONFIG_KEY):
            raise Refused(f"a repository already exists at {storage.url}",
                          hint="open it, or choose an empty location")
        if next(iter(storage.list()), None) is not None:
            raise UsageError(f"{storage.url} is not empty and holds no repository",
                             hint="choose an empty directory or prefix")
        if object_lock is not None:
            _check_object_lock_possible(storage)
        repo_id = os.urandom(16).hex()
        master = keys.new_master_key()
        config = {
            "format": REPOSITORY_FORMAT,
            "version": REPOSITORY_VERSION,
            "id": repo_id,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "chunk_size": chunk_size,
            "compression": {"algorithm": "zstd", "level": compression_level},
            "object_lock": {"mode": object_lock.mode, "days": object_lock.days} if object_lock else None,
            "keys": [keys.wrap(master, key, repo_id)],
        }
        repo = cls(storage, config, master, 0)
        repo._write_config(if_absent=True)
        return repo

    @classmethod
    def open(cls, url: str, key: keys.KeySource, *, s3: S3Options | None = None) -> "Repository":
        storage = open_storage(url, s3)
        config = read_config(storage)
        master, slot = keys.unwrap(config["keys"], key, config["id"], where=storage.url)
        if not hmac.compare_digest(str(config.get("mac", "")), _mac(master, config)):
            raise VerificationFailed(f"the config of repository {storage.url} was changed outside erpops",
                                     hint="restore the config object from a copy; do not trust this repository until then")
        return cls(storage, config, master, slot)

    def rekey(self, new_key: keys.KeySource, *, add: bool = False) -> None:
        """Wrap the master key with ``new_key``, replacing the slot that opened the
        repository (or adding a slot). Data objects are not touched."""
        slot = keys.wrap(self._master, new_key, self.config["id"])
        slots = list(self.config["keys"])
        if add:
            slots.append(slot)
        else:
            slots[self._slot] = slot
        self.config = {**self.config, "keys": slots}
        self._slot = len(slots) - 1 if add else self._slot
        self._write_config(if_absent=False)

    def _write_config(self, *, if_absent: bool) -> None:
        import io

        self.config = {**self.config, "mac": _mac(self._master, self.config)}
        data = json.dumps(self.config, indent=2, sort_keys=True).encode("utf-8") + b"\n"
        try:
            self.storage.put_stream(CONFIG_KEY, io.BytesIO(data), if_absent=if_absent, retain_until=self._retain_until())
        except ObjectExists:
            raise Refused(f"a repository already exists at {self.storage.url}",
                          hint="another erpops created it at the same moment; open it instead") from None

    # -- objects -----------------------------------------------------------------

    @property
    def url(self) -> str:
        return self.storage.url

    @property
    def id(self) -> str:
        return self.config["id"]

    def _retain_until(self) -> datetime | None:
        if self.object_lock is None:
            return None
        return datetime.now(timezone.utc).replace(microsecond=0) + timedelta(days=self.object_lock.days)

    def _put(self, key: str, reader: BinaryIO, *, if_absent: bool) -> PutResult:
        sealed = EncryptingReader(reader, self._master, key, chunk_size=self.config["chunk_size"],
                                  level=self.config["compression"]["level"])
        stored = self.storage.put_stream(key, sealed, if_absent=if_absent, retain_until=self._retain_until())
        return PutResult(key, sealed.plain_bytes, stored)

    def put_object(self, name: str, reader: BinaryIO, *, if_absent: bool = False) -> PutResult:
        return self._put(f"objects/{name}", reader, if_absent=if_absent)

    def get_object(self, name: str) -> DecryptingReader:
        """A reader of the plaintext; raises VerificationFailed on any damage. Close it."""
        return self._get(f"objects/{name}")

    def has_object(self, name: str) -> bool:
        return self.storage.exists(f"objects/{name}")

    def _get(self, key: str) -> DecryptingReader:
        source = self.storage.get_stream(key)
        try:
            return DecryptingReader(source, self._master, key)
        except BaseException:
            source.close()
            raise

    @staticmethod
    def blob_key(sha1: str) -> str:
        if not isinstance(sha1, str) or not _SHA1.match(sha1):
            raise UsageError(f"{sha1!r} is not a SHA-1 (40 lowercase hex digits)")
        return f"blobs/{sha1[:2]}/{sha1}"

    def blob_index(self, *, reload: bool = False) -> BlobIndex:
        """Every stored blob and its pack, read once (``reload``: read again)."""
        if self._blob_index is None or reload:
            self._blob_index = BlobIndex.load(self)
        return self._blob_index

    def pack_writer(self) -> PackWriter:
        """Where new blobs go (a context manager): see packs.py."""
        return PackWriter(self, self.blob_index())

    def has_blob(self, sha1: str) -> bool:
        return sha1 in self.blob_index()

    def put_blob(self, sha1: str, reader: BinaryIO) -> BlobPut:
        """Store one blob in a pack of its own unless present (many: use ``pack_writer``)."""
        with self.pack_writer() as writer:
            return writer.add(sha1, reader)

    def get_blob(self, sha1: str) -> DecryptingReader:
        """A reader of the blob's plaintext; ObjectNotFound when no pack holds it."""
        location = self.blob_index().get(sha1)
        if location is None:
            raise ObjectNotFound(f"blob {self.blob_key(sha1)} is in no pack of {self.url}")
        return self.read_blob_at(sha1, location)

    def read_blob_at(self, sha1: str, location: BlobLocation) -> DecryptingReader:
        source = self.storage.get_range(pack_key(location.pack), location.offset, location.length)
        try:
            return self.open_blob(sha1, source)
        except BaseException:
            source.close()
            raise

    def open_blob(self, sha1: str, source) -> DecryptingReader:
        """The plaintext of blob ``sha1`` from ``source``, a reader of its stored bytes
        (for callers that read several blobs of a pack at once, like deep verify)."""
        return DecryptingReader(source, self._master, self.blob_key(sha1))

    def describe(self) -> dict:
        """What `repo init`/`repo rekey` report: no secrets, no wrapped keys."""
        return {
            "url": self.url,
            "id": self.id,
            "format_version": self.config["version"],
            "chunk_size": self.config["chunk_size"],
            "compression": self.config["compression"],
            "object_lock": self.config["object_lock"],
            "key_slots": [s["kind"] for s in self.config["keys"]],
        }


def read_config(storage: Storage) -> dict:
    try:
        with storage.get_stream(CONFIG_KEY) as stream:
            raw = stream.read(MAX_CONFIG_SIZE + 1)
    except ObjectNotFound:
        raise UsageError(f"there is no erpops repository at {storage.url}",
                         hint=f"create one with: erpops repo init {storage.url}") from None
    try:
        config = json.loads(raw)
        if len(raw) > MAX_CONFIG_SIZE or not isinstance(config, dict) or config.get("format") != REPOSITORY_FORMAT:
            raise ValueError("not an erpops repository config")
        version = int(config["version"])
        if version < REPOSITORY_VERSION:
            raise UsageError(f"repository {storage.url} has format version {version}, made by a development "
                             f"build of erpops before blobs were packed; this erpops reads version {REPOSITORY_VERSION}",
                             hint="create a new repository (erpops repo init) and take a new backup into it")
        if version > REPOSITORY_VERSION:
            raise UsageError(f"repository {storage.url} has format version {version}; this erpops reads up to {REPOSITORY_VERSION}",
                             hint="upgrade erpops")
        for field in ("id", "chunk_size", "compression", "keys"):
            config[field]  # noqa: B018 - presence check
    except (ValueError, KeyError, TypeError) as exc:
        raise VerificationFailed(f"the config of repository {storage.url} is unreadable ({exc})",
                                 hint="restore the config object from a copy") from None
    return config


def _check_object_lock_possible(storage: Storage) -> None:
    checker = getattr(storage, "object_lock_enabled", None)
    if checker is None:
        raise UsageError(f"{storage.url} is a local directory, which cannot enforce Object Lock",
                         hint="use an S3 bucket created with Object Lock enabled, or drop the Object Lock options")
    if not checker():
        raise UsageError(f"the bucket of {storage.url} does not have Object Lock enabled",
                         hint="Object Lock can only be enabled when a bucket is created: create a new bucket with it")


__all__ = ["ObjectLock", "PutResult", "Repository", "open_storage", "read_config"]
