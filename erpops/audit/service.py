"""What ``erpops audit ...`` and ``erpops keys ...`` do, as importable functions.

The CLI modules only parse options and render; the choices (which runs, which
keys are trusted, which chain state applies) are made here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from erpops.audit.chain import ChainState
from erpops.audit.record import LOG_NAME
from erpops.audit.verify_chain import Verification, run_logs, verify_runs
from erpops.errors import UsageError
from erpops.paths import runs_dir as default_runs_dir


def inventory_audit() -> tuple[Any, list[Path]]:
    """(the inventory's audit section or None, its trusted key files resolved)."""
    from erpops.cli.context import OPTIONS
    from erpops.config import load_inventory

    inventory = load_inventory(OPTIONS.config, lab=False)
    return inventory.audit, inventory.trusted_key_paths


def trusted_set(extra: list[Path] = ()):
    from erpops.audit.keys import trusted_keys

    _, files = inventory_audit()
    return trusted_keys(None, [*files, *extra])


def _is_local(runs: Path) -> bool:
    try:
        return runs.resolve() == default_runs_dir().resolve()
    except OSError:
        return False


def resolve_target(target: str | None, *, all_runs: bool, runs_dir: Path | None) -> tuple[Path, set[str] | None, list[Path]]:
    """(runs dir, run ids to report or None for all, logs outside the runs dir)."""
    runs = Path(runs_dir) if runs_dir else default_runs_dir()
    if all_runs:
        if target:
            raise UsageError("give a RUN_ID/PATH or --all, not both")
        return runs, None, []
    if target:
        path = Path(target)
        if path.exists():
            log = path / LOG_NAME if path.is_dir() else path
            if not log.is_file():
                raise UsageError(f"{path} holds no {LOG_NAME}", hint="give a run directory, an audit.jsonl file or a run id")
            if log.name == LOG_NAME:  # a run directory inside some runs dir: its siblings are the context
                return log.parent.parent, {log.parent.name}, []
            from erpops.audit.timeline import summarize

            return log.parent, {summarize(log)["run_id"]}, [log]
        from erpops.audit.timeline import find_run

        return runs, {find_run(runs, target).parent.name}, []
    logs = run_logs(runs)
    if not logs:
        raise UsageError(f"no run logs in {runs}", hint="runs are recorded by `erpops runbook run` and the job commands; "
                         "give --runs-dir for a copied tree")
    from erpops.audit.timeline import summarize

    latest = max(logs, key=lambda p: (summarize(p)["started"] or "", p.parent.name))
    return runs, {latest.parent.name}, []


def verify(target: str | None = None, *, all_runs: bool = False, runs_dir: Path | None = None,
           trusted_key_files: list[Path] = ()) -> Verification:
    runs, only, extra = resolve_target(target, all_runs=all_runs, runs_dir=runs_dir)
    trusted = trusted_set(list(trusted_key_files))
    chain = ChainState() if _is_local(runs) else None  # an offline copy has no local chain state
    if all_runs and not run_logs(runs):
        raise UsageError(f"no run logs in {runs}", hint="give --runs-dir DIR for a copied tree of run logs")
    return verify_runs(runs, trusted, chain=chain, only=only, extra_logs=extra)


def list_runs(runs_dir: Path | None = None) -> list[dict]:
    from erpops.audit.timeline import summarize

    rows = [summarize(p) for p in run_logs(Path(runs_dir) if runs_dir else default_runs_dir())]
    return sorted(rows, key=lambda r: (r["started"] or "", r["run_id"]))


def show_run(run_id: str, runs_dir: Path | None = None) -> dict:
    from erpops.audit.timeline import find_run, timeline

    path = Path(run_id)
    log = path / LOG_NAME if path.is_dir() else path
    if not log.is_file():
        log = find_run(Path(runs_dir) if runs_dir else default_runs_dir(), run_id)
    return timeline(log)
