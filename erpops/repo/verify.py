"""Verify backups: is every object a manifest lists there, whole, and what it claims?

Two depths, as in pgBackRest's ``verify`` and restic's ``check --read-data``:

- quick (default): every object the manifest lists exists with its recorded
  stored size, and starts with a well-formed object header and a plausible
  first chunk length. A backup's own objects cost one HEAD and one small
  ranged read each. A filestore blob (in a pack, packs.py) must be listed by
  the blob index with the stored size the manifest records, its pack must
  exist with the size its index records (one HEAD per pack per run), and a
  small ranged read at the blob's offset checks its header. Catches missing,
  truncated, padded and replaced objects.
- deep: every chunk of every object is decrypted and authenticated, and the
  plaintext's size and SHA-256 (the backup's own objects) or SHA-1 (filestore
  blobs, named by it) are compared with the manifest. Catches any flipped bit.
  The blobs a backup needs from one pack are read with one ranged read when
  they lie close together (``MERGE_GAP``), not one request per blob: a
  filestore has tens of thousands of them.

The manifest itself is always decrypted in full (it is read to know the list).
Findings are collected, never raised: the report names each bad object and
why, and the command maps "any finding" to exit 4. A blob's finding is named
by its identity ``blobs/<sha[:2]>/<sha1>`` and its text names the pack, where
the bytes are. Blobs and packs are shared between backups, so ``verify_all``
checks each once; an index object that cannot be read is reported once per
run, with the first backup that has filestore blobs (they may be among the
blobs it lists).
"""

from __future__ import annotations

import hashlib
import io
import json
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone

from erpops.errors import ErpopsError, VerificationFailed
from erpops.repo.manifest import Manifest, ObjectEntry, object_name, read_manifest
from erpops.repo.objectformat import FLAG_PER_CHUNK_ZSTD, FORMAT_VERSION, HEADER, HEADER_SIZE, LENGTH, MAGIC, \
    MAX_CHUNK_SIZE, MIN_CHUNK_SIZE, TAG_SIZE
from erpops.repo.blob_index import BlobIndex, BlobLocation, PackInfo, pack_key
from erpops.repo.storage import ObjectNotFound

VERIFIED_NAME = "verified.json"  # objects/backups/<id>/verified.json: the last passing verify
READ_BLOCK = 1 << 20
WORKERS = 4
HEAD_SIZE = HEADER_SIZE + LENGTH.size  # what a quick check reads of an object
MERGE_GAP = 1 << 20  # deep: blobs of a pack this close are read in one request, the gap read and dropped
_HASH_NAMES = {"sha256": "SHA-256", "sha1": "SHA-1"}  # ObjectEntry field -> its name in a finding


@dataclass(frozen=True)
class Finding:
    key: str  # storage key of the bad object; for a filestore blob its identity blobs/<sha[:2]>/<sha1>
    problem: str

    def to_dict(self) -> dict:
        return {"key": self.key, "problem": self.problem}


@dataclass
class VerifyReport:
    backup_id: str
    deep: bool
    objects: int = 0
    bytes: int = 0  # stored bytes looked at (deep: read)
    findings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.findings

    def to_dict(self) -> dict:
        return {"backup_id": self.backup_id, "deep": self.deep, "ok": self.ok, "objects": self.objects,
                "bytes": self.bytes, "findings": [f.to_dict() for f in self.findings]}

    def failure(self) -> VerificationFailed:
        """The error a caller raises when it wants a failed verify to stop it."""
        first = self.findings[0]
        more = f" (and {len(self.findings) - 1} more)" if len(self.findings) > 1 else ""
        return VerificationFailed(f"backup {self.backup_id}: object {first.key} {first.problem}{more}",
                                  hint="this backup cannot be trusted for a restore; take a new backup and "
                                       "see erpops repo verify --deep for every damaged object")


def _entries(manifest: Manifest) -> list[ObjectEntry]:
    """The manifest's objects, plus any filestore blob its files name but its object list lacks."""
    from erpops.repo.repository import Repository

    entries = list(manifest.objects)
    listed = {e.key for e in entries}
    for f in manifest.files:
        key = Repository.blob_key(f.sha1)
        if key not in listed:
            listed.add(key)
            entries.append(ObjectEntry(key=key, kind="blob", plain_bytes=f.size, stored_bytes=-1, sha1=f.sha1, new=False))
    return entries


def _header_problem(head: bytes) -> str | None:
    """What is wrong with the first HEAD_SIZE bytes of an object, if anything."""
    if len(head) < HEAD_SIZE:
        return f"is truncated: only {len(head)} bytes, not even a header and a chunk"
    magic, version, flags, chunk_size, _, _ = HEADER.unpack(head[:HEADER_SIZE])
    if magic != MAGIC:
        return "has no erpops object header (bad magic)"
    if version != FORMAT_VERSION or flags & ~FLAG_PER_CHUNK_ZSTD or not MIN_CHUNK_SIZE <= chunk_size <= MAX_CHUNK_SIZE:
        return "has a damaged header"
    first = LENGTH.unpack(head[HEADER_SIZE:HEAD_SIZE])[0]
    if not 1 + TAG_SIZE <= first <= 1 + chunk_size + TAG_SIZE:
        return f"has an impossible first chunk length ({first} bytes)"
    return None


def _check_header(repo, entry: ObjectEntry) -> str | None:
    try:
        stat = repo.storage.stat(entry.key)
    except ObjectNotFound:
        return "is missing"
    if entry.stored_bytes >= 0 and stat.size != entry.stored_bytes:
        how = "truncated" if stat.size < entry.stored_bytes else "larger than recorded"
        return f"is {how}: {stat.size} bytes stored, the manifest records {entry.stored_bytes}"
    with repo.storage.get_stream(entry.key) as stream:
        return _header_problem(_read_exact(stream, HEAD_SIZE))


def _read_exact(stream, n: int) -> bytes:
    parts, missing = [], n
    while missing:
        piece = stream.read(missing)
        if not piece:
            break
        parts.append(piece)
        missing -= len(piece)
    return b"".join(parts)


def _compare(reader, entry: ObjectEntry) -> str | None:
    """Read the plaintext to its end (raising VerificationFailed on damage) and compare it with the entry."""
    hashes = {name: hashlib.new(name) for name in _HASH_NAMES if getattr(entry, name)}
    size = 0
    while piece := reader.read(READ_BLOCK):
        for h in hashes.values():
            h.update(piece)
        size += len(piece)
    if size != entry.plain_bytes:
        return f"holds {size} bytes of data, the manifest records {entry.plain_bytes}"
    for name, h in hashes.items():
        if h.hexdigest() != getattr(entry, name):
            return f"has {_HASH_NAMES[name]} {h.hexdigest()}, the manifest records {getattr(entry, name)}"
    return None


def _decryption_problem(exc: VerificationFailed) -> str:
    return "fails decryption: " + exc.message.split("failed verification: ", 1)[-1]


def _check_content(repo, entry: ObjectEntry) -> str | None:
    problem = _check_header(repo, entry)  # a clear "missing"/"truncated" beats a decryption error
    if problem:
        return problem
    try:
        with repo._get(entry.key) as reader:
            return _compare(reader, entry)
    except ObjectNotFound:
        return "is missing"
    except VerificationFailed as exc:
        return _decryption_problem(exc)


# --- filestore blobs, in packs -----------------------------------------------------


@dataclass(frozen=True)
class _Blob:
    entry: ObjectEntry
    sha1: str  # its name: the blob index's key, and the end of its identity blobs/<sha[:2]>/<sha1>
    location: BlobLocation


@dataclass(frozen=True)
class _Span:
    """Blobs of one pack read with one ranged read."""
    pack: str
    start: int
    end: int
    blobs: tuple[_Blob, ...]


def _missing(index: BlobIndex) -> str:
    if index.unreadable:
        return (f"is missing (no pack index lists it; {len(index.unreadable)} pack index object(s) cannot be "
                f"read, and it may be listed in one)")
    return "is missing (no pack index lists it)"


def _check_pack(repo, info: PackInfo) -> str | None:
    key = pack_key(info.pack_id)
    try:
        size = repo.storage.stat(key).size
    except ObjectNotFound:
        return f"is missing: its pack {key} is gone"
    except ErpopsError as exc:
        return f"could not be read: its pack {key}: {exc.message}"
    if size != info.size:
        how = "truncated" if size < info.size else "larger than recorded"
        return f"is {how}: its pack {key} holds {size} bytes, its index records {info.size}"
    return None


def _reach(blob: _Blob, deep: bool) -> int:
    """How much of the blob a check reads: all of it (deep) or its head (quick)."""
    return blob.location.length if deep else min(blob.location.length, HEAD_SIZE)


def _spans(pack: str, blobs: list[_Blob], deep: bool) -> list[_Span]:
    """Group the pack's blobs into ranged reads: deep, nearby blobs share one; quick, each reads its head."""
    spans: list[_Span] = []
    for blob in sorted(blobs, key=lambda b: b.location.offset):
        start = blob.location.offset
        end = start + _reach(blob, deep)
        if deep and spans and start - spans[-1].end <= MERGE_GAP:
            last = spans[-1]
            spans[-1] = _Span(pack, last.start, end, last.blobs + (blob,))
        else:
            spans.append(_Span(pack, start, end, (blob,)))
    return spans


class _Window:
    """The next ``length`` bytes of a stream: one blob of a span. It has no
    ``close``, so a DecryptingReader over it never closes the span's stream."""

    def __init__(self, stream, length: int):
        self._stream, self.left = stream, length

    def read(self, n: int = -1) -> bytes:
        want = self.left if n is None or n < 0 else min(n, self.left)
        data = self._stream.read(want) if want else b""
        self.left -= len(data)
        return data

    def drain(self) -> None:
        while self.left and self.read(READ_BLOCK):
            pass


def _check_span(repo, span: _Span, deep: bool) -> dict[str, str | None]:
    key = pack_key(span.pack)
    out: dict[str, str | None] = {}
    try:
        with repo.storage.get_range(key, span.start, span.end - span.start) as stream:
            at = span.start
            for blob in span.blobs:
                _Window(stream, blob.location.offset - at).drain()  # the gap to the blob
                window = _Window(stream, _reach(blob, deep))
                if deep:
                    try:
                        reader = repo.open_blob(blob.sha1, window)
                        problem = _compare(reader, blob.entry)
                    except VerificationFailed as exc:
                        problem = _decryption_problem(exc)
                else:
                    problem = _header_problem(_read_exact(window, HEAD_SIZE))
                window.drain()  # a damaged blob may stop being read anywhere: the next starts after it
                at = blob.location.offset + _reach(blob, deep)
                out[blob.entry.key] = problem and f"{problem} (in pack {key} at offset {blob.location.offset})"
    except ObjectNotFound:
        problem = f"is missing: its pack {key} is gone"
    except ErpopsError as exc:
        problem = f"could not be read: its pack {key}: {exc.message}"
    else:
        return out
    return {**{b.entry.key: problem for b in span.blobs}, **out}  # the blobs not reached share the error


def _verify_blobs(repo, entries: list[ObjectEntry], deep: bool, checked: dict, pool) -> list[Finding]:
    """Check the blob entries not checked yet in this run, recording each problem (or None)
    in ``checked`` (with each pack's, under its key). Returns the findings that belong to
    no entry: unreadable pack indexes, once per run."""
    if not entries:
        return []
    index = repo.blob_index()
    extra = []
    for key, why in index.unreadable:
        if key not in checked:
            checked[key] = f"cannot be read, so the blobs of its pack are unknown: {why}"
            extra.append(Finding(key, checked[key]))
    by_pack: dict[str, list[_Blob]] = defaultdict(list)
    for entry in entries:
        if entry.key in checked:
            continue
        sha1 = entry.key.rsplit("/", 1)[-1]
        loc = index.get(sha1)
        if loc is None:
            checked[entry.key] = _missing(index)
        elif entry.stored_bytes >= 0 and entry.stored_bytes != loc.length:
            checked[entry.key] = (f"has {loc.length} stored bytes in pack {pack_key(loc.pack)}, "
                                  f"the manifest records {entry.stored_bytes}")
        else:
            checked[entry.key] = None  # for now: also marks a blob listed twice as taken care of
            by_pack[loc.pack].append(_Blob(entry, sha1, loc))
    fresh = [p for p in by_pack if pack_key(p) not in checked]
    for pack, problem in zip(fresh, pool.map(lambda p: _check_pack(repo, index.packs[p]), fresh)):
        checked[pack_key(pack)] = problem
    spans = []
    for pack, blobs in by_pack.items():
        problem = checked[pack_key(pack)]
        if problem:
            checked.update((b.entry.key, problem) for b in blobs)
        else:
            spans.extend(_spans(pack, blobs, deep))
    for outcome in pool.map(lambda s: _check_span(repo, s, deep), spans):
        checked.update(outcome)
    return extra


def verify_manifest(repo, manifest: Manifest, *, deep: bool, checked: dict | None = None) -> VerifyReport:
    """Verify the objects ``manifest`` lists (usable before the manifest is stored).
    ``checked`` (key -> problem or None, for objects, packs and pack indexes) is
    shared between calls so that shared blobs and packs are checked once."""
    checked = {} if checked is None else checked
    report = VerifyReport(manifest.backup_id, deep)
    entries = _entries(manifest)
    check = _check_content if deep else _check_header

    def one(entry: ObjectEntry) -> str | None:
        try:
            return check(repo, entry)
        except ErpopsError as exc:  # the storage failed while reading: a finding, named
            return f"could not be read: {exc.message}"

    with ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="erpops-verify") as pool:
        report.findings.extend(_verify_blobs(repo, [e for e in entries if e.kind == "blob"], deep, checked, pool))
        own = [e for e in entries if e.kind != "blob" and e.key not in checked]
        checked.update(zip((e.key for e in own), pool.map(one, own)))
    for entry in entries:
        report.objects += 1
        report.bytes += max(entry.stored_bytes, 0)
        if checked[entry.key]:
            report.findings.append(Finding(entry.key, checked[entry.key]))
    return report


def verify_backup(repo, backup_id: str, *, deep: bool, checked: dict | None = None) -> VerifyReport:
    """Verify one stored backup. A manifest that cannot be read is itself a finding."""
    key = f"objects/{object_name(backup_id, 'manifest.json')}"
    try:
        manifest = read_manifest(repo, backup_id)
    except VerificationFailed as exc:
        return VerifyReport(backup_id, deep, 1, 0, [Finding(key, "fails decryption: " + exc.message)])
    except ValueError as exc:  # pydantic's ValidationError and bad JSON
        return VerifyReport(backup_id, deep, 1, 0, [Finding(key, f"is not a valid manifest: {exc}".splitlines()[0])])
    return verify_manifest(repo, manifest, deep=deep, checked=checked)


def verify_all(repo, backup_ids: list[str], *, deep: bool) -> list[VerifyReport]:
    checked: dict = {}
    return [verify_backup(repo, backup_id, deep=deep, checked=checked) for backup_id in backup_ids]


def record_verification(repo, report: VerifyReport) -> None:
    """Remember a passing deep verify beside the backup, so that retention knows
    which backups were proven restorable (the manifest is written once and never
    changed). A quick verify proves less and is not recorded."""
    if not report.ok or not report.deep:
        return
    doc = {"backup_id": report.backup_id, "deep": report.deep, "objects": report.objects,
           "verified_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    repo.put_object(object_name(report.backup_id, VERIFIED_NAME), io.BytesIO(json.dumps(doc).encode()))


def read_verification(repo, backup_id: str) -> dict | None:
    """The last passing verify recorded for the backup, None if none (or unreadable)."""
    try:
        with repo.get_object(object_name(backup_id, VERIFIED_NAME)) as reader:
            doc = json.loads(reader.read(64 * 1024))
    except (ObjectNotFound, VerificationFailed, ValueError):
        return None
    return doc if isinstance(doc, dict) else None
