"""Verify backups: is every object a manifest lists there, whole, and what it claims?

Two depths, as in pgBackRest's ``verify`` and restic's ``check --read-data``:

- quick (default): every object the manifest lists exists with its recorded
  stored size, and starts with a well-formed object header and a plausible
  first chunk length. One HEAD and one small ranged read per object; catches
  missing, truncated, padded and replaced objects.
- deep: every chunk of every object is decrypted and authenticated, and the
  plaintext's size and SHA-256 (the backup's own objects) or SHA-1 (filestore
  blobs, named by it) are compared with the manifest. Catches any flipped bit.

The manifest itself is always decrypted in full (it is read to know the list).
Findings are collected, never raised: the report names each bad object and
why, and the command maps "any finding" to exit 4. Blobs are shared between
backups, so ``verify_all`` checks each one once.
"""

from __future__ import annotations

import hashlib
import io
import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone

from erpops.errors import ErpopsError, VerificationFailed
from erpops.repo.manifest import Manifest, ObjectEntry, object_name, read_manifest
from erpops.repo.objectformat import FLAG_PER_CHUNK_ZSTD, FORMAT_VERSION, HEADER, HEADER_SIZE, LENGTH, MAGIC, \
    MAX_CHUNK_SIZE, MIN_CHUNK_SIZE, TAG_SIZE
from erpops.repo.storage import ObjectNotFound

VERIFIED_NAME = "verified.json"  # objects/backups/<id>/verified.json: the last passing verify
READ_BLOCK = 1 << 20
WORKERS = 4


@dataclass(frozen=True)
class Finding:
    key: str  # storage key of the bad object
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


def _check_header(repo, entry: ObjectEntry) -> str | None:
    try:
        stat = repo.storage.stat(entry.key)
    except ObjectNotFound:
        return "is missing"
    if entry.stored_bytes >= 0 and stat.size != entry.stored_bytes:
        how = "truncated" if stat.size < entry.stored_bytes else "larger than recorded"
        return f"is {how}: {stat.size} bytes stored, the manifest records {entry.stored_bytes}"
    with repo.storage.get_stream(entry.key) as stream:
        head = _read_exact(stream, HEADER_SIZE + LENGTH.size)
    if len(head) < HEADER_SIZE + LENGTH.size:
        return f"is truncated: only {len(head)} bytes, not even a header and a chunk"
    magic, version, flags, chunk_size, _, _ = HEADER.unpack(head[:HEADER_SIZE])
    if magic != MAGIC:
        return "has no erpops object header (bad magic)"
    if version != FORMAT_VERSION or flags & ~FLAG_PER_CHUNK_ZSTD or not MIN_CHUNK_SIZE <= chunk_size <= MAX_CHUNK_SIZE:
        return "has a damaged header"
    first = LENGTH.unpack(head[HEADER_SIZE:])[0]
    if not 1 + TAG_SIZE <= first <= 1 + chunk_size + TAG_SIZE:
        return f"has an impossible first chunk length ({first} bytes)"
    return None


def _read_exact(stream, n: int) -> bytes:
    parts, missing = [], n
    while missing:
        piece = stream.read(missing)
        if not piece:
            break
        parts.append(piece)
        missing -= len(piece)
    return b"".join(parts)


def _check_content(repo, entry: ObjectEntry) -> str | None:
    problem = _check_header(repo, entry)  # a clear "missing"/"truncated" beats a decryption error
    if problem:
        return problem
    sha256, sha1, size = hashlib.sha256(), hashlib.sha1(), 0
    try:
        reader = repo._get(entry.key)
        with reader:
            while piece := reader.read(READ_BLOCK):
                sha256.update(piece)
                sha1.update(piece)
                size += len(piece)
    except ObjectNotFound:
        return "is missing"
    except VerificationFailed as exc:
        return "fails decryption: " + exc.message.split("failed verification: ", 1)[-1]
    if size != entry.plain_bytes:
        return f"holds {size} bytes of data, the manifest records {entry.plain_bytes}"
    if entry.sha256 and sha256.hexdigest() != entry.sha256:
        return f"has SHA-256 {sha256.hexdigest()}, the manifest records {entry.sha256}"
    if entry.sha1 and sha1.hexdigest() != entry.sha1:
        return f"has SHA-1 {sha1.hexdigest()}, the manifest records {entry.sha1}"
    return None


def verify_manifest(repo, manifest: Manifest, *, deep: bool, checked: dict | None = None) -> VerifyReport:
    """Verify the objects ``manifest`` lists (usable before the manifest is stored).
    ``checked`` (key -> problem or None) is shared between calls so that shared
    blobs are checked once."""
    checked = {} if checked is None else checked
    report = VerifyReport(manifest.backup_id, deep)
    entries = _entries(manifest)
    check = _check_content if deep else _check_header

    def one(entry: ObjectEntry) -> tuple[ObjectEntry, str | None]:
        if entry.key in checked:
            return entry, checked[entry.key]
        try:
            problem = check(repo, entry)
        except ErpopsError as exc:  # the storage failed while reading: a finding, named
            problem = f"could not be read: {exc.message}"
        return entry, problem

    with ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="erpops-verify") as pool:
        for entry, problem in pool.map(one, entries):
            checked[entry.key] = problem
            report.objects += 1
            report.bytes += max(entry.stored_bytes, 0)
            if problem:
                report.findings.append(Finding(entry.key, problem))
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
