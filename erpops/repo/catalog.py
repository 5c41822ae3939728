"""The catalog: the backups a repository holds, read from their manifests.

A backup exists only once its manifest is stored (see manifest.py), so the
catalog is exactly the set of readable manifests. Each one is decrypted
(manifests are small); on S3 they are fetched a few at a time. A manifest
that cannot be read is listed as damaged rather than hidden: hiding it would
let an operator believe a backup never existed.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime

from erpops.errors import ErpopsError, UsageError, VerificationFailed
from erpops.repo.manifest import Manifest, list_backup_ids, read_manifest

FETCH_WORKERS = 8


@dataclass
class BackupEntry:
    backup_id: str
    manifest: Manifest | None  # None: the manifest is damaged (see ``problem``)
    problem: str | None = None
    verified_at: datetime | None = None  # the backup's own verify, or the last recorded deep verify

    @property
    def environment(self) -> str | None:
        return self.manifest.environment if self.manifest else None

    @property
    def tenant(self) -> str | None:
        return self.manifest.tenant if self.manifest else None

    @property
    def time(self) -> datetime | None:
        return self.manifest.snapshot_at if self.manifest else None

    @property
    def verified(self) -> bool:
        return self.verified_at is not None

    def summary(self) -> dict:
        if self.manifest is None:
            return {"backup_id": self.backup_id, "damaged": True, "problem": self.problem}
        m = self.manifest
        own = [o for o in m.objects if o.kind != "blob"]
        blobs = [o for o in m.objects if o.kind == "blob"]
        db = m.db_object
        return {
            "backup_id": m.backup_id,
            "environment": m.environment,
            "tenant": m.tenant,
            "time": m.snapshot_at,
            "duration_s": m.duration_s,
            "pg_version": m.pg_version,
            "odoo_version": m.odoo_version,
            "db_bytes": db.plain_bytes if db else 0,
            "stored_bytes": sum(o.stored_bytes for o in own),
            "files": len(m.files),
            "files_bytes": sum(f.size for f in m.files),
            "new_files": sum(1 for o in blobs if o.new),
            "new_bytes": sum(o.stored_bytes for o in blobs if o.new),  # filestore bytes this backup uploaded
            "missing_files": len(m.missing_files),
            "redis": bool(m.redis and m.redis.captured),
            "verified": self.verified,
            "verified_at": self.verified_at,
            "annotations": m.annotations,
        }


def _load(repo, backup_id: str) -> BackupEntry:
    from erpops.repo.verify import read_verification

    try:
        manifest = read_manifest(repo, backup_id)
    except (ErpopsError, ValueError) as exc:
        message = getattr(exc, "message", None) or str(exc).splitlines()[0]
        return BackupEntry(backup_id, None, f"manifest unreadable: {message}")
    verified_at = manifest.verified_at
    if verified_at is None:
        record = read_verification(repo, backup_id)
        if record and record.get("deep") and record.get("verified_at"):
            verified_at = datetime.fromisoformat(record["verified_at"])
    return BackupEntry(backup_id, manifest, None, verified_at)


def _may_belong(backup_id: str, environment: str) -> bool:
    # ids are <time>-<environment>-<tenant>: a cheap filter before decrypting the manifest
    return backup_id.partition("-")[2].startswith(f"{environment}-")


def list_backups(repo, environment: str | None = None) -> list[BackupEntry]:
    """The repository's backups, oldest first; only ``environment``'s when given
    (damaged manifests are kept when their id may belong to it)."""
    ids = [i for i in list_backup_ids(repo) if environment is None or _may_belong(i, environment)]
    with ThreadPoolExecutor(max_workers=FETCH_WORKERS, thread_name_prefix="erpops-catalog") as pool:
        entries = list(pool.map(lambda i: _load(repo, i), ids))
    return [e for e in entries if environment is None or e.manifest is None or e.environment == environment]


def find_backup(repo, backup_id: str | None, environment: str | None = None) -> BackupEntry:
    """One backup by id; None or "latest": the newest (of ``environment``)."""
    if backup_id and backup_id != "latest":
        return _load(repo, backup_id) if _exists(repo, backup_id) else _missing(repo, backup_id)
    entries = [e for e in list_backups(repo, environment) if e.manifest is not None]
    if not entries:
        where = f" of environment {environment}" if environment else ""
        raise UsageError(f"repository {repo.url} holds no backup{where}",
                         hint="take one with: erpops backup" + (f" -e {environment}" if environment else ""))
    return max(entries, key=lambda e: (e.time, e.backup_id))


def latest_per_tenant(repo, environment: str) -> list[BackupEntry]:
    """The newest readable backup of each tenant of ``environment`` (what `repo verify`
    checks by default: the last night's run, all tenants)."""
    newest: dict[str, BackupEntry] = {}
    for e in list_backups(repo, environment):
        if e.manifest is not None and (e.tenant not in newest or (e.time, e.backup_id) > (newest[e.tenant].time, newest[e.tenant].backup_id)):
            newest[e.tenant] = e
    if not newest:
        raise UsageError(f"repository {repo.url} holds no backup of environment {environment}",
                         hint=f"take one with: erpops backup -e {environment}")
    return sorted(newest.values(), key=lambda e: e.tenant)


def _exists(repo, backup_id: str) -> bool:
    from erpops.repo.manifest import MANIFEST_NAME, object_name

    return repo.has_object(object_name(backup_id, MANIFEST_NAME))


def _missing(repo, backup_id: str):
    read_manifest(repo, backup_id)  # raises the usual "no backup ..." error


def show_backup(repo, backup_id: str | None, environment: str | None = None) -> dict:
    """What `repo show` prints: the summary and the whole manifest."""
    entry = find_backup(repo, backup_id, environment)
    if entry.manifest is None:
        raise VerificationFailed(f"backup {entry.backup_id}: {entry.problem}",
                                 hint=f"the backup cannot be used; see erpops repo verify {entry.backup_id}")
    return {**entry.summary(), "manifest": entry.manifest.model_dump(mode="json")}
