"""What one backup run holds between its steps, in memory, keyed by the run.

A runbook's steps are separate calls; step outputs go to the checkpoint and
the signed log, so they stay small (counts, ids, sizes). The rest lives here
for the length of the run: the open snapshot of each tenant (a connection
whose transaction must outlive the snapshot step, see erpops/pg/snapshot.py),
the file list read in it, and the objects the dump and capture steps stored,
which repo.commit writes into each tenant's manifest.

Nothing here survives the process: a backup cut short is not resumed but run
again (its objects without a manifest are debris that ``repo prune`` removes),
and the server ends the snapshot's session when erpops dies.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from erpops.actions.registry import StepError


@dataclass
class TenantBackup:
    tenant: str
    backup_id: str
    snapshot: Any  # erpops.pg.snapshot.Snapshot
    started_at: datetime
    db: Any = None  # ObjectEntry of the dump
    db_seconds: float = 0.0
    capture: Any = None  # erpops.repo.capture.CaptureResult
    redis: Any = None  # RedisCapture
    redis_object: Any = None  # ObjectEntry of the RDB
    uploaded_bytes: int = 0  # stored bytes written for this tenant so far


@dataclass
class BackupRun:
    started_at: datetime = field(default_factory=lambda: datetime.now(timezone.utc))
    tenants: dict[str, TenantBackup] = field(default_factory=dict)
    lock: Any = None  # erpops.repo.locks.Lock
    refresher: Any = None  # keeps the lock's expiry ahead while the run lasts
    dump_job: Any = None  # dumps running in the background (postgres.dump background: true)
    committed: list[str] = field(default_factory=list)  # backup ids whose manifest is written

    def close_snapshots(self) -> list[str]:
        closed = []
        for t in self.tenants.values():
            if t.snapshot is not None and t.snapshot.open:
                t.snapshot.close()
                closed.append(t.tenant)
        return closed


_RUNS: dict[str, BackupRun] = {}
_GUARD = threading.Lock()


def run_key(ctx) -> str:
    return str(ctx.run_dir) if ctx.run_dir is not None else f"no-run-dir-{id(ctx)}"


def for_run(ctx, *, create: bool = False) -> BackupRun:
    key = run_key(ctx)
    with _GUARD:
        run = _RUNS.get(key)
        if run is None and create:
            run = _RUNS[key] = BackupRun()
    if run is None:
        raise StepError("this step needs the snapshot taken by a postgres.snapshot step earlier in the same run "
                        "(a backup run is not resumable: start a new one)")
    return run


def existing(ctx) -> BackupRun | None:
    with _GUARD:
        return _RUNS.get(run_key(ctx))


def forget(ctx) -> BackupRun | None:
    with _GUARD:
        return _RUNS.pop(run_key(ctx), None)


def abandon(key: str) -> bool:
    """Let go of what a run still holds when it ended without its own cleanup
    (interrupted: the engine stops there, for a resume that a backup never
    needs): stop a background dump, close the snapshots, release the lock."""
    with _GUARD:
        run = _RUNS.pop(key, None)
    if run is None:
        return False
    if run.dump_job is not None:
        run.dump_job.kill()
        run.dump_job.join()
    run.close_snapshots()
    if run.refresher is not None:
        run.refresher.stop()
    if run.lock is not None:
        run.lock.release()
        run.lock = None
    return True
