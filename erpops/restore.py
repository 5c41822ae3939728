"""`erpops restore` as a function: run runbooks/restore.yaml, summarise what it restored.

The work is the runbook's (preflight, filestore and database in parallel,
verify, copy, neutralize, then the rename into place); this module turns
options into its inputs and confirmation policy, shows the plan for
``--dry-run`` (the same preflight, read-only, without a run), and turns the
run's events into the summary humans and scripts read.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from erpops.errors import ErpopsError, RunFailed
from erpops.runbook import events as ev

RUNBOOK = "restore"


@dataclass
class RestoreOptions:
    env_name: str
    backup: str = "latest"
    tenant: str = ""
    target: str = ""
    jobs: int = 2
    maintenance_work_mem: str = "512MiB"
    copy: bool = False
    neutralize: bool = False
    drop_existing: bool = False
    force_version: bool = False
    from_file: str = ""
    redis: bool = False
    yes: bool = False
    confirm_env: str | None = None
    interactive: bool = False

    def inputs(self) -> dict:
        from erpops.errors import UsageError
        from erpops.pg.restore import check_db_name

        if self.target:
            check_db_name(self.target, what="--as")
        if not 1 <= self.jobs <= 64:
            raise UsageError(f"--jobs {self.jobs}: expected 1 to 64")
        _check_maintenance_work_mem(self.maintenance_work_mem)
        from_file = str(Path(self.from_file).resolve()) if self.from_file else ""
        return {"backup": self.backup or "latest", "tenant": self.tenant, "target": self.target,
                "from_file": from_file, "jobs": self.jobs,
                "maintenance_work_mem": self.maintenance_work_mem,
                "as_copy": self.copy, "neutralize": self.neutralize, "drop_existing": self.drop_existing,
                "redis": self.redis,
                "force_version": self.force_version}


def _check_maintenance_work_mem(value: str) -> None:
    from erpops.errors import UsageError
    from erpops.pg.restore import load_settings
    from erpops.units import parse_size

    try:
        load_settings(parse_size(value))
    except (ValueError, UsageError) as exc:
        raise UsageError(f"--maintenance-work-mem {value}: {getattr(exc, 'message', exc)}",
                         hint="a size between 1MiB and 2GiB (e.g. 512MiB), or 0 for the server's setting") from None


class _Collector:
    def __init__(self):
        self.run_id: str | None = None
        self.outputs: dict[str, dict] = {}
        self.warnings: list[str] = []
        self.failed: ev.StepFailed | None = None
        self.cleanup: list[str] = []

    def __call__(self, event: ev.Event) -> None:
        if isinstance(event, ev.RunStarted):
            self.run_id = event.run_id
        elif isinstance(event, ev.StepFinished):
            if event.phase == "main":
                self.outputs[event.step] = event.outputs
            else:
                self.cleanup += (event.outputs or {}).get("removed") or []
        elif isinstance(event, ev.StepOutput) and event.line.startswith("warning:"):
            self.warnings.append(event.line.removeprefix("warning: "))
        elif isinstance(event, ev.StepFailed) and event.phase == "main" and self.failed is None:
            self.failed = event


def summary(collector: _Collector, status: str, seconds: float) -> dict:
    out = collector.outputs
    pre = out.get("preflight") or {}
    db = out.get("database") or {}
    files = out.get("filestore_wait") or {}
    verify = out.get("verify") or {}
    final = out.get("replace") or out.get("activate") or {}
    doc = {"status": status, "run_id": collector.run_id, "backup_id": pre.get("backup_id"),
           "tenant": pre.get("tenant"), "target": pre.get("target"), "replaced": bool(final.get("dropped")),
           "pg_version": pre.get("pg_source"), "odoo_version": pre.get("odoo_version"),
           "modules": pre.get("modules"), "compatibility": pre.get("compatibility"),
           "db_bytes": db.get("bytes"), "jobs": db.get("jobs"), "db_seconds": db.get("seconds"),
           "files": files.get("files"), "files_bytes": files.get("bytes"),
           "verified": bool(verify.get("match")), "tables": verify.get("tables"),
           "checksums": verify.get("checksums"), "copy": out.get("copy"), "neutralize": out.get("neutralize"),
           "filestore": final.get("filestore"), "redis": out.get("redis"), "duration_s": round(seconds, 3)}
    if collector.warnings:
        doc["warnings"] = collector.warnings
    if collector.cleanup:
        doc["cleaned_up"] = collector.cleanup
    return doc


class RestoreFailed(RunFailed):
    """The run failed; carries the exit code of the cause and the summary so far (its JSON form)."""

    def to_dict(self) -> dict:
        return {**super().to_dict(), **self.doc}


def _policy(options: RestoreOptions):
    from erpops.runbook.confirm import ConfirmPolicy

    return ConfirmPolicy(yes=options.yes, confirm_env=options.confirm_env, interactive=options.interactive)


def run_restore(options: RestoreOptions, renderers: list, on_checked=None) -> dict:
    """Run the restore; returns the summary or raises (exit 2/3 before the run,
    RestoreFailed with 1, 2, 3, 4 or 130 once it started). ``on_checked(preflight)``
    is called once the checks passed, before the run starts."""
    import time

    from erpops.runbook import runner

    request = runner.RunRequest(runbook=RUNBOOK, inputs=options.inputs(), env_name=options.env_name,
                                policy=_policy(options))
    started = time.monotonic()
    pre, _ = _preflight(options)  # bad input and refusals end here, with their own hints, before any run
    if on_checked is not None:
        on_checked(pre.to_dict())
    collector = _Collector()
    try:
        runner.start(request, [collector, *renderers])
    except ErpopsError as exc:
        if collector.run_id is None:  # refused or invalid before the run began: nothing was touched
            raise
        _abandon(collector)
        failed = collector.failed
        error = failed.error if failed else exc.message
        where = f" at step {failed.step}" if failed else ""
        code = exc.exit_code if exc.exit_code in (2, 3, 4, 130) else 1
        raise RestoreFailed(f"restore failed{where}: {error}", exit_code=code,
                            doc={**summary(collector, "failed", time.monotonic() - started), "error": error},
                            hint=_hint(code, collector)) from None
    return summary(collector, "succeeded", time.monotonic() - started)


def _hint(code: int, collector: _Collector) -> str:
    log = f"the run's log: erpops audit show {collector.run_id}"
    pre = collector.outputs.get("preflight")
    if pre and ("activate" in collector.outputs or "replace" in collector.outputs):
        return f"database {pre['target']} and its filestore were restored and are in place; what failed came after ({log})"
    kept = (f"; {pre['target']} was not changed" if pre and "replace" not in collector.outputs
            and "activate" not in collector.outputs else "")
    if code == 130:
        return f"interrupted: the temporary database and files were removed{kept} ({log})"
    return f"nothing half-restored was kept{kept}; {log}"


def _abandon(collector: _Collector) -> None:
    """An interrupted run skips on_failure (the engine keeps it resumable); a restore
    is never resumed, so its temporary database and files are removed here."""
    from erpops.actions.restore_run import abandon
    from erpops.runbook.state import run_dir
    from erpops.ui.output import log

    try:
        removed = abandon(str(run_dir(collector.run_id)))
    except ErpopsError as exc:
        log(f"run {collector.run_id}: could not clean up ({exc.message}); "
            "look for databases named *__erpops_restore_* and drop them")
        return
    collector.cleanup += removed
    for line in removed:
        log(f"run {collector.run_id}: {line}")


def plan(options: RestoreOptions) -> dict:
    """What the restore would do: the preflight (read-only) and the steps. No run, nothing touched."""
    from erpops.runbook import runner
    from erpops.runbook.plan import flatten

    request = runner.RunRequest(runbook=RUNBOOK, inputs=options.inputs(), env_name=options.env_name,
                                policy=_policy(options))
    rb, planned, inputs = runner.plan(request)
    pre, tier = _preflight(options)
    steps = [{"id": p.id, "uses": p.uses, "risk": p.risk, "when": p.when, "summary": p.summary}
             for p in flatten(planned) if p.phase == "main" and p.when is not False]
    return {"dry_run": True, "environment": options.env_name, "tier": tier, "runbook": str(rb.path),
            "inputs": inputs, "preflight": pre.to_dict(), "steps": steps,
            "destructive": [s["id"] for s in steps if s["risk"] == "DESTRUCTIVE"]}


def _preflight(options: RestoreOptions):
    """The checks of restore.preflight, read-only, outside a run: (Preflight, tier)."""
    from erpops.errors import UsageError
    from erpops.paths import state_dir
    from erpops.repo.access import open_environment_repository
    from erpops.restore_checks import check, open_source
    from erpops.runbook.runner import resolve_environment

    env, _, tier, _ = resolve_environment(options.env_name)
    if env is None:
        raise UsageError("restore needs an environment; pass -e NAME")
    source, _, archive = open_source(env, lambda: open_environment_repository(options.env_name).repo,
                                     backup=options.backup, tenant=options.tenant, from_file=options.from_file)
    try:
        pre = check(env, source, target=options.target, drop_existing=options.drop_existing,
                    force_version=options.force_version, run_tag="check", spool_dir=state_dir() / "runs",
                    redis=options.redis)
    finally:
        if archive is not None:
            archive.close()
    return pre, tier
