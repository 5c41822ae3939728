"""`repo prune`: apply retention, remove debris and packs no backup references.

Order matters, so that an interrupted prune never leaves a backup that looks
complete but is not:

1. Retention (retention.py) is applied to the backups of each environment and
   tenant. A removed backup loses its manifest FIRST — from then on it does not
   exist — and then its own objects.
2. Debris: backup directories without a manifest (an interrupted backup, or an
   interrupted prune) are removed once everything in them is older than the
   grace period; a younger one may be a backup still running.
3. Packs (the filestore blobs, packs.py): a pack is referenced while any blob
   its index lists is named by a remaining manifest. An unreferenced pack is
   removed once it and its index are older than the grace period (a running
   backup may have stored it and not yet written its manifest): its index
   FIRST, so that no index ever names a missing pack, then the pack. A pack
   without an index (a writer killed between the two) is invisible debris,
   removed after the grace period too.

Limit: packs are never rewritten. A pack that holds one referenced blob keeps
all its unreferenced ones; their stored bytes are reported as ``unused_bytes``.

With Object Lock, an object still under retention cannot be deleted (on S3 a
plain delete would only hide it behind a delete marker): it is reported as
"cannot delete until DATE" and left alone; for a backup whose manifest is still
retained, nothing of it is touched. A manifest or a pack index that cannot be
read stops the pack step: the blobs it names are unknown, so no pack can be
called unreferenced (and the pack of an unreadable index would look unindexed).

While it deletes, prune holds the repository lock ``prune`` and refuses to run
while a backup holds its lock (checked at the start and again before the pack
step). A backup that starts during the pack step itself could still reuse a
blob of a pack being deleted; its verify (``erpops backup --verify``,
``repo verify``) would report the blob missing.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from erpops.errors import ErpopsError
from erpops.repo.catalog import list_backups
from erpops.repo.manifest import BACKUPS_PREFIX, MANIFEST_NAME
from erpops.repo.blob_index import BlobIndex, index_key, iter_pack_keys, pack_key
from erpops.repo.retention import Point, Policy, decide
from erpops.repo.storage import ObjectNotFound

DEFAULT_GRACE = 24 * 3600.0
LOCK_SCOPE = "prune"
LOCK_TTL = 6 * 3600.0
_DIR_PREFIX = f"objects/{BACKUPS_PREFIX}"


@dataclass
class PruneResult:
    repository: str
    policy: str
    dry_run: bool
    grace_s: float
    backups: list[dict] = field(default_factory=list)  # one row per backup: keep/remove and why
    debris: list[dict] = field(default_factory=list)
    packs: dict = field(default_factory=lambda: {"total": 0, "unreferenced": 0, "removed": 0, "removed_bytes": 0,
                                                 "young": 0, "locked": 0, "unindexed": 0, "unused_bytes": 0,
                                                 "skipped_reason": None})
    temporaries: dict = field(default_factory=lambda: {"removed": 0, "removed_bytes": 0})  # local: killed writers'
    cannot_delete: list[dict] = field(default_factory=list)  # {"key", "until"}
    errors: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return dict(self.__dict__)


class _Deleter:
    """Deletes keys unless Object Lock still retains them; records what it could not do."""

    def __init__(self, repo, result: PruneResult, now: datetime):
        self.repo, self.result, self.now = repo, result, now

    def retained_until(self, key: str, stat=None) -> datetime | None:
        stat = stat or self.repo.storage.stat(key)
        until = stat.retain_until
        return until if until is not None and until > self.now else None

    def blocked(self, key: str, until: datetime) -> None:
        self.result.cannot_delete.append({"key": key, "until": until})

    def delete(self, key: str, stat=None) -> bool:
        """True when the key is gone."""
        try:
            until = self.retained_until(key, stat)
            if until is not None:
                self.blocked(key, until)
                return False
            self.repo.storage.delete(key)
            return True
        except ObjectNotFound:
            return True
        except ErpopsError as exc:
            self.result.errors.append(f"{key}: {exc.message}")
            return False


def _check_no_backup_running(repo) -> None:
    from erpops.repo.locks import list_locks, refusal, stale_reason

    for info in list_locks(repo):
        if info["scope"] != LOCK_SCOPE and stale_reason(info) is None:
            raise refusal(info, info["scope"])


def _keys_by_backup(repo) -> dict[str, list[str]]:
    out = defaultdict(list)
    for key in repo.storage.list(_DIR_PREFIX):
        out[key[len(_DIR_PREFIX):].partition("/")[0]].append(key)
    return out


def prune(repo, policy: Policy, *, grace: float = DEFAULT_GRACE, dry_run: bool = False,
          now: datetime | None = None) -> PruneResult:
    now = now or datetime.now(timezone.utc)
    result = PruneResult(repo.url, policy.describe(), dry_run, grace)
    if dry_run:
        _prune(repo, policy, grace, now, result)
        return result
    from erpops.repo.locks import acquire

    with acquire(repo, LOCK_SCOPE, ttl=LOCK_TTL, purpose=f"prune of {repo.url}"):
        _check_no_backup_running(repo)
        _prune(repo, policy, grace, now, result)
    return result


def _prune(repo, policy: Policy, grace: float, now: datetime, result: PruneResult) -> None:
    deleter = _Deleter(repo, result, now)
    entries = list_backups(repo)
    dirs = _keys_by_backup(repo)
    removed: set[str] = set()

    groups = defaultdict(list)
    for e in entries:
        if e.manifest is None:
            result.backups.append({"backup_id": e.backup_id, "environment": None, "tenant": None, "time": None,
                                   "verified": False, "action": "keep", "reasons": ["damaged manifest"],
                                   "status": e.problem})
        else:
            groups[(e.environment, e.tenant)].append(e)
    by_id = {e.backup_id: e for e in entries}
    for (environment, tenant), members in sorted(groups.items()):
        points = [Point(e.backup_id, e.time, e.verified) for e in members]
        for d in decide(points, policy):
            row = {"backup_id": d.point.backup_id, "environment": environment, "tenant": tenant,
                   "time": d.point.time, "verified": d.point.verified,
                   "action": "keep" if d.keep else "remove", "reasons": d.reasons, "status": "kept"}
            if not d.keep:
                row["status"] = _remove_backup(deleter, d.point.backup_id, dirs, result.dry_run)
                if row["status"].startswith(("removed", "would remove")):
                    removed.add(d.point.backup_id)
            result.backups.append(row)
    result.backups.sort(key=lambda r: (r["environment"] or "", r["tenant"] or "", r["backup_id"]), reverse=True)

    for backup_id in sorted(set(dirs) - set(by_id)):
        result.debris.append(_debris(repo, deleter, backup_id, dirs[backup_id], grace, now, result.dry_run))
    _prune_temporaries(repo, grace, now, result)

    remaining = [e for e in entries if e.backup_id not in removed]
    if any(e.manifest is None for e in remaining):
        result.packs["skipped_reason"] = "a manifest is unreadable, so no pack can be known to be unreferenced"
        return
    if not result.dry_run:
        # a backup that started meanwhile may be about to reference an old blob: stop before the pack step
        _check_no_backup_running(repo)
    # read after the manifests: a pack indexed since then is a running backup's, younger than the grace period
    index = repo.blob_index(reload=True)
    if index.unreadable:
        key, why = index.unreadable[0]
        more = f" (and {len(index.unreadable) - 1} more)" if len(index.unreadable) > 1 else ""
        result.packs["skipped_reason"] = (f"pack index {key}{more} cannot be read ({why}), so the blobs it lists "
                                          "are unknown and no pack can be known to be unreferenced")
        return
    referenced = set()
    for e in remaining:
        referenced.update(o.sha1 or o.key.rsplit("/", 1)[-1] for o in e.manifest.objects if o.kind == "blob")
        referenced.update(f.sha1 for f in e.manifest.files)
    _prune_packs(repo, deleter, index, referenced, grace, now, result)


def _remove_backup(deleter: _Deleter, backup_id: str, dirs: dict[str, list[str]], dry_run: bool) -> str:
    manifest_key = f"{_DIR_PREFIX}{backup_id}/{MANIFEST_NAME}"
    try:
        until = deleter.retained_until(manifest_key)
    except ErpopsError as exc:
        deleter.result.errors.append(f"{manifest_key}: {exc.message}")
        return "failed"
    if until is not None:
        deleter.blocked(manifest_key, until)
        return f"cannot delete until {until:%Y-%m-%dT%H:%M:%SZ}"
    if dry_run:
        return "would remove"
    if not deleter.delete(manifest_key):  # first: from here on the backup does not exist
        return "failed"
    left = [k for k in dirs.get(backup_id, []) if k != manifest_key and not deleter.delete(k)]
    return "removed" if not left else f"removed; {len(left)} object(s) left (see cannot_delete/errors)"


def _debris(repo, deleter: _Deleter, backup_id: str, keys: list[str], grace: float, now: datetime,
            dry_run: bool) -> dict:
    stats = []
    for key in keys:
        try:
            stats.append(repo.storage.stat(key))
        except ObjectNotFound:
            continue
    newest = max((s.modified for s in stats if s.modified), default=None)
    row = {"backup_id": backup_id, "objects": len(stats), "bytes": sum(s.size for s in stats),
           "newest": newest}
    if newest is not None and now - newest < timedelta(seconds=grace):
        row["status"] = "younger than the grace period (a backup may be running): kept"
    elif dry_run:
        row["status"] = "would remove"
    else:
        left = [s.key for s in stats if not deleter.delete(s.key, s)]
        row["status"] = "removed" if not left else f"{len(left)} object(s) left (see cannot_delete/errors)"
    return row


def _prune_temporaries(repo, grace: float, now: datetime, result: PruneResult) -> None:
    """Temporary files a killed writer left in a local repository, once older than the grace period."""
    stale = getattr(repo.storage, "stale_temporaries", None)
    if stale is None:
        return  # S3: an interrupted upload leaves nothing named
    for path, size in stale(now - timedelta(seconds=grace)):
        if not result.dry_run:
            try:
                path.unlink()
            except FileNotFoundError:
                continue
            except OSError as exc:
                result.errors.append(f"{path}: {exc.strerror}")
                continue
        result.temporaries["removed"] += 1
        result.temporaries["removed_bytes"] += size


def _prune_packs(repo, deleter: _Deleter, index: BlobIndex, referenced: set[str], grace: float, now: datetime,
                 result: PruneResult) -> None:
    counts = result.packs
    stored = dict(iter_pack_keys(repo))  # listed after the index was read: a pack indexed since looks unindexed
    counts["total"] = len(stored)
    for pack_id, info in index.packs.items():
        if any(sha in referenced for sha, _ in info.blobs):
            counts["unused_bytes"] += sum(loc.length for sha, loc in info.blobs if sha not in referenced)
            continue
        counts["unreferenced"] += 1
        _remove_pack(repo, deleter, [index_key(pack_id), pack_key(pack_id)], grace, now, result)
    for pack_id, key in stored.items():
        if pack_id not in index.packs:
            counts["unindexed"] += 1
            _remove_pack(repo, deleter, [key], grace, now, result)


def _remove_pack(repo, deleter: _Deleter, keys: list[str], grace: float, now: datetime, result: PruneResult) -> None:
    """Remove ``keys`` (a pack's index, then the pack) in that order, once all are older than
    the grace period and out of Object Lock retention; stop at the first that stays."""
    counts = result.packs
    stats = []
    for key in keys:
        try:
            stats.append(repo.storage.stat(key))
        except ObjectNotFound:
            continue  # gone meanwhile, or an index whose pack is gone: what is left still goes
        except ErpopsError as exc:
            result.errors.append(f"{key}: {exc.message}")
            return
    if not stats:
        return
    if any(s.modified is not None and now - s.modified < timedelta(seconds=grace) for s in stats):
        counts["young"] += 1
        return
    retained = [until for s in stats if (until := deleter.retained_until(s.key, s)) is not None]
    if retained:
        counts["locked"] += 1
        deleter.blocked(stats[-1].key, max(retained))  # one line per pack: it goes once its index may go too
        return
    if not result.dry_run and not all(deleter.delete(s.key, s) for s in stats):
        return  # all() stops at the first failure: an index that stays keeps its pack
    counts["removed"] += 1
    counts["removed_bytes"] += sum(s.size for s in stats)


__all__ = ["DEFAULT_GRACE", "PruneResult", "prune"]
