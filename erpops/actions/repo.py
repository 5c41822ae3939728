"""repo.lock, repo.commit, repo.verify, repo.unlock: the repository side of a backup.

The lock (erpops/repo/locks.py) is held for the whole run and refreshed in
the background, so a long backup never outlives its expiry while a dead one
(kill -9) is found stale by the next run. The manifest is written last, by
repo.commit: until then the backup does not exist.
"""

from __future__ import annotations

import threading

from erpops.actions import backup_run
from erpops.actions.registry import Risk, StepContext, StepError, action
from erpops.units import Duration


class _Refresher:
    """Pushes the lock's expiry forward every ttl/3 until stopped; remembers a failure."""

    def __init__(self, lock, ttl: float):
        self.lock, self.interval = lock, max(1.0, ttl / 3)
        self.error: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="erpops-lock-refresh", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.lock.refresh()
            except Exception as exc:  # noqa: BLE001 - reported by the next step that checks
                self.error = getattr(exc, "message", str(exc))
                return

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)


@action("repo.lock", risk=Risk.WRITE)
def lock(ctx: StepContext, scope: str, ttl: Duration = Duration("15m"), purpose: str = "backup") -> dict:
    """Take the repository lock `scope` (e.g. backup-prod) for the run; exit 3 naming the holder if it is held.

    The lock lives in the repository (locks/<scope>.json, conditional put) and
    in a local flock file; it is refreshed every ttl/3 while the run lasts, and
    released by repo.unlock (or this step's undo). A stale lock (dead holder on
    this host, or expired) is broken and the reason logged. Outputs: `scope`,
    `holder`, `expires`, `broken_reason`.
    """
    from erpops.repo.locks import acquire

    repo = ctx.repo
    run = backup_run.for_run(ctx, create=True)
    if run.lock is not None and run.lock.held:  # a retried step keeps what it has
        return _lock_outputs(run.lock)
    held = acquire(repo, scope, ttl=float(ttl), purpose=purpose)
    _refuse_while_pruning(repo, held)
    run.lock = held
    run.refresher = _Refresher(held, float(ttl))
    if held.broken_reason:
        from erpops.runbook.events import StepOutput

        ctx.emit(StepOutput(step=ctx.step_id, line=f"broke stale lock {scope}: {held.broken_reason}"))
    return _lock_outputs(held)


def _refuse_while_pruning(repo, held) -> None:
    """A prune deleting unreferenced blobs must not run under a backup that may reuse
    them. Prune takes its lock, then looks for backup locks; a backup takes its lock,
    then looks for prune's: whichever comes second sees the other and backs off."""
    from erpops.repo.locks import lock_info, refusal, stale_reason
    from erpops.repo.prune import LOCK_SCOPE

    info = lock_info(repo, LOCK_SCOPE)
    if info is not None and stale_reason(info) is None:
        held.release()
        raise refusal(info, LOCK_SCOPE)


def _lock_outputs(held) -> dict:
    info = held.info
    return {"scope": held.scope, "holder": info.get("holder"), "host": info.get("host"), "pid": info.get("pid"),
            "expires": info.get("expires"), "broken_reason": held.broken_reason}


@lock.undo
def _release_on_rollback(ctx: StepContext, scope: str, ttl: Duration, purpose: str, outputs: dict) -> None:
    _release(ctx)


def _release(ctx: StepContext) -> bool:
    run = backup_run.existing(ctx)
    if run is None or run.lock is None:
        return False
    refresher = getattr(run, "refresher", None)
    if refresher is not None:
        refresher.stop()
    run.lock.release()
    run.lock = None
    return True


@action("repo.unlock", risk=Risk.WRITE)
def unlock(ctx: StepContext) -> dict:
    """Release the lock repo.lock took in this run (nothing to do if it is already released)."""
    released = _release(ctx)
    run = backup_run.existing(ctx)
    if run is not None:
        run.close_snapshots()  # the backup is over either way: no transaction stays open
    backup_run.forget(ctx)
    return {"released": released}


@action("repo.commit", risk=Risk.WRITE)
def commit(ctx: StepContext, annotations: dict[str, str] | list[str] = {}) -> dict:  # noqa: B006 - never mutated
    """Write each tenant's manifest, last: only now does the backup exist.

    The manifest records the backup id, environment, tenant, snapshot time,
    PostgreSQL and Odoo versions, installed modules, row counts, business
    checksums, every object with sizes and hashes, the filestore files, files
    allowed to be missing, the Redis capture, the duration, the erpops version
    and `annotations` (a mapping, or a list of key=value). Outputs: `backups`
    (one summary per tenant).
    """
    from datetime import datetime, timezone
    from itertools import chain

    from erpops import __version__
    from erpops.repo.manifest import MANIFEST_NAME, Manifest, object_name, write_manifest

    notes = _annotations(annotations)
    run = backup_run.for_run(ctx)
    refresher = getattr(run, "refresher", None)
    if refresher is not None and refresher.error:
        raise StepError(f"the repository lock was lost during the backup: {refresher.error}; nothing was committed")
    repo = ctx.repo
    out = []
    for t in run.tenants.values():
        if t.db is None or t.capture is None:
            raise StepError(f"tenant {t.tenant}: the dump or the filestore capture did not run in this run; "
                            "nothing was committed")
        snap = t.snapshot
        finished = datetime.now(timezone.utc)
        objects = chain([t.db], t.capture.blob_objects(), [t.redis_object] if t.redis_object else [])
        manifest = Manifest(
            backup_id=t.backup_id, environment=ctx.env.name, tenant=t.tenant, started_at=t.started_at,
            finished_at=finished, snapshot_at=snap.taken_at, duration_s=round((finished - t.started_at).total_seconds(), 3),
            erpops_version=__version__, pg_version=snap.facts.pg_version, odoo_version=snap.facts.odoo_version,
            modules=snap.facts.modules, row_counts=snap.facts.row_counts, checksums=snap.facts.checksums,
            missing_files=[m.store_fname for m in t.capture.missing_files()], redis=t.redis, annotations=notes)
        write_manifest(repo, manifest, objects=objects, files=t.capture.file_entries())
        manifest_bytes = repo.storage.size(f"objects/{object_name(t.backup_id, MANIFEST_NAME)}")
        t.uploaded_bytes += manifest_bytes
        run.committed.append(t.backup_id)
        out.append({"backup_id": t.backup_id, "environment": ctx.env.name, "tenant": t.tenant,
                    "db_bytes": t.db.plain_bytes, "db_stored_bytes": t.db.stored_bytes,
                    "files": t.capture.file_count, "new_files": t.capture.new_files,
                    "new_bytes": t.capture.new_bytes, "files_bytes": t.capture.total_bytes,
                    "uploaded_bytes": t.uploaded_bytes, "missing_files": len(t.capture.missing),
                    "redis": t.redis.captured if t.redis else None,
                    "duration_s": manifest.duration_s})
    return {"backups": out}


def _annotations(value: dict[str, str] | list[str]) -> dict[str, str]:
    if isinstance(value, dict):
        return {str(k): str(v) for k, v in value.items()}
    out = {}
    for item in value:
        key, sep, text = str(item).partition("=")
        if not sep or not key.strip():
            raise StepError(f"annotation {item!r} is not key=value", kind="template")
        out[key.strip()] = text
    return out


@action("repo.verify", risk=Risk.READ)
def verify(ctx: StepContext, deep: bool = True) -> dict:
    """Verify the backups this run committed (deep: decrypt every chunk and check every hash); exit 4 on damage.

    A passing deep verify is recorded beside the backup (retention keeps the
    newest verified backup). Outputs: `verified` (backup ids), `objects`, `bytes`.
    """
    from erpops.repo.verify import record_verification, verify_backup

    run = backup_run.for_run(ctx)
    repo = ctx.repo
    checked: dict = {}
    objects = size = 0
    for backup_id in run.committed:
        ctx.check()
        report = verify_backup(repo, backup_id, deep=deep, checked=checked)
        if not report.ok:
            raise report.failure()
        record_verification(repo, report)
        objects += report.objects
        size += report.bytes
    return {"verified": list(run.committed), "deep": deep, "objects": objects, "bytes": size}
