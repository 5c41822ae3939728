"""What one restore run holds between its steps, in memory, keyed by the run.

The manifest being restored, the target and the temporary database and
filestore directory that stand in for it until restore.activate or
restore.replace renames them, the decrypted dump's spool file and the
filestore writer running in the background. ``cleanup`` removes every
temporary thing: the on_failure step runs it, and so does ``abandon`` for a
run that was interrupted (the engine keeps an interrupted run for a resume
that a restore never needs), so nothing half-restored stays behind.
"""

from __future__ import annotations

import shutil
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from erpops.actions.registry import StepError


@dataclass
class RestoreRun:
    manifest: Any = None  # erpops.repo.manifest.Manifest
    node: Any = None  # erpops.pg.connect.NodeTarget of the primary
    bin_dir: str | None = None
    target: str = ""
    temp_db: str = ""
    created_db: bool = False  # the temporary database exists (created by this run)
    filestore_root: Path | None = None
    spool: Path | None = None  # the decrypted dump
    files_job: Any = None  # the background filestore writer
    activated: bool = False  # the temporary names were renamed to the target's
    process: Any = None  # pg_restore or psql while it runs
    archive: Any = None  # --from-file: the open erpops.odoo.archive.OdooArchive
    files_bytes: int = 0  # of the filestore files to write
    extras: dict = field(default_factory=dict)

    @property
    def temp_dir(self) -> Path | None:
        return self.filestore_root / self.temp_db if self.filestore_root is not None and self.temp_db else None

    def cleanup(self) -> list[str]:
        """Stop what runs, then drop the temporary database and directory and the spool
        file. Safe to call twice; what was activated is never touched."""
        from erpops.pg.restore import drop_database

        done = []
        if self.process is not None:
            self.process.kill()
        if self.files_job is not None:
            self.files_job.stop()
        if self.spool is not None and self.spool.exists():
            self.spool.unlink()
            done.append(f"removed {self.spool}")
        if self.spool is not None and self.spool.parent.name == "restore-spool":
            shutil.rmtree(self.spool.parent, ignore_errors=True)
        if not self.activated:
            if self.temp_db and self.node is not None and drop_database(self.node, self.temp_db):
                done.append(f"dropped temporary database {self.temp_db}")
            temp_dir = self.temp_dir
            if temp_dir is not None and temp_dir.exists():
                shutil.rmtree(temp_dir, ignore_errors=True)
                done.append(f"removed temporary filestore {temp_dir}")
        self.created_db = False
        if self.archive is not None:
            self.archive.close()
            self.archive = None
        return done


_RUNS: dict[str, RestoreRun] = {}
_GUARD = threading.Lock()


def run_key(ctx) -> str:
    return str(ctx.run_dir) if ctx.run_dir is not None else f"no-run-dir-{id(ctx)}"


def for_run(ctx, *, create: bool = False) -> RestoreRun:
    key = run_key(ctx)
    with _GUARD:
        run = _RUNS.get(key)
        if run is None and create:
            run = _RUNS[key] = RestoreRun()
    if run is None:
        raise StepError("this step needs restore.preflight earlier in the same run "
                        "(a restore run is not resumable: start a new one)")
    return run


def existing(ctx) -> RestoreRun | None:
    with _GUARD:
        return _RUNS.get(run_key(ctx))


def forget(ctx) -> RestoreRun | None:
    with _GUARD:
        return _RUNS.pop(run_key(ctx), None)


def abandon(key: str) -> list[str]:
    """Clean up after a run that ended without its on_failure steps (interrupted)."""
    with _GUARD:
        run = _RUNS.pop(key, None)
    return run.cleanup() if run is not None else []
