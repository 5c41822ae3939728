"""`erpops backup` as a function: run runbooks/backup.yaml, summarise what it stored.

The work is the runbook's (lock, snapshot, redis, files, dump, commit,
verify, unlock); this module turns options into its inputs and the run's
events into the summary cron and humans read: one entry per tenant backup,
with the bytes the run really uploaded.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from erpops.errors import ErpopsError, RunFailed, UsageError
from erpops.runbook import events as ev

RUNBOOK = "backup"


@dataclass
class BackupOptions:
    env_name: str
    tenants: list[str] = field(default_factory=list)
    verify: bool = False
    annotations: list[str] = field(default_factory=list)
    allow_missing_files: bool = False

    def inputs(self) -> dict:
        for item in self.annotations:
            key, sep, _ = item.partition("=")
            if not sep or not key.strip():
                raise UsageError(f"--annotate {item!r}: expected KEY=VALUE", hint="e.g. --annotate ticket=OPS-1234")
        return {"tenants": list(self.tenants), "verify": self.verify, "annotations": list(self.annotations),
                "allow_missing_files": self.allow_missing_files}


class _Collector:
    """Listens to the run: its id, the outputs the summary needs, warnings, the failed step."""

    def __init__(self):
        self.run_id: str | None = None
        self.outputs: dict[str, dict] = {}
        self.warnings: list[str] = []
        self.failed: ev.StepFailed | None = None

    def __call__(self, event: ev.Event) -> None:
        if isinstance(event, ev.RunStarted):
            self.run_id = event.run_id
        elif isinstance(event, ev.StepFinished) and event.phase == "main":
            self.outputs[event.step] = event.outputs
        elif isinstance(event, ev.StepOutput) and event.line.startswith(("warning:", "broke stale lock")):
            self.warnings.append(event.line.removeprefix("warning: "))
        elif isinstance(event, ev.StepFailed) and event.phase == "main" and self.failed is None:
            self.failed = event


def summary(collector: _Collector, status: str) -> dict:
    verified = set((collector.outputs.get("verify") or {}).get("verified") or [])
    backups = []
    for b in (collector.outputs.get("commit") or {}).get("backups") or []:
        backups.append({"backup_id": b["backup_id"], "environment": b["environment"], "tenant": b["tenant"],
                        "db_bytes": b["db_bytes"], "files": b["files"], "new_files": b["new_files"],
                        "new_bytes": b["new_bytes"], "uploaded_bytes": b["uploaded_bytes"],
                        "duration_s": b["duration_s"], "verified": b["backup_id"] in verified,
                        "files_bytes": b.get("files_bytes"), "missing_files": b.get("missing_files", 0),
                        "redis": b.get("redis")})
    doc = {"backups": backups, "run_id": collector.run_id, "status": status}
    if collector.warnings:
        doc["warnings"] = collector.warnings
    return doc


class BackupFailed(RunFailed):
    """The run failed; carries the exit code of the cause and the summary so far."""


def _hint(exit_code: int, error: str, run_id: str | None) -> str:
    log = f"the run's log: erpops audit show {run_id}" if run_id else "see the log lines above"
    if exit_code == 130:
        return f"interrupted: nothing was committed for the tenants without a manifest; run erpops backup again ({log})"
    if exit_code == 3:
        return f"another backup of this environment holds the lock; wait for it to finish ({log})"
    if exit_code == 4 and "missing from" in error:
        return ("restore the missing files, or back up without them: --allow-missing-files "
                f"(the manifest lists them); {log}")
    if exit_code == 4:
        return f"a file or object failed its check; nothing was committed for the tenant that failed; {log}"
    return f"fix the cause and run erpops backup again (a backup is never resumed; {log})"


def run_backup(options: BackupOptions, renderers: list) -> dict:
    """Run the backup; returns the summary, or raises BackupFailed (exit 1, 3 or 4)."""
    from erpops.runbook import runner
    from erpops.runbook.confirm import ConfirmPolicy

    request = runner.RunRequest(runbook=RUNBOOK, inputs=options.inputs(), env_name=options.env_name,
                                policy=ConfirmPolicy(yes=False, interactive=False))
    _check_tenants(options)
    collector = _Collector()
    try:
        runner.start(request, [collector, *renderers])
    except ErpopsError as exc:
        if collector.run_id is None:  # refused or invalid before the run began: nothing to summarise
            raise
        _abandon(collector.run_id)
        failed = collector.failed
        where = f" at step {failed.step}" if failed else ""
        error = failed.error if failed else exc.message
        code = exc.exit_code if exc.exit_code in (2, 3, 4, 130) else 1  # 2: a config problem met mid-run
        raise BackupFailed(f"backup of {options.env_name} failed{where}: {error}", exit_code=code,
                           doc={**summary(collector, "failed"), "error": error},
                           hint=_hint(code, error, collector.run_id)) from None
    return summary(collector, "succeeded")


def _check_tenants(options: BackupOptions) -> None:
    """A tenant the inventory does not list is refused before any run (with a
    did-you-mean); tenants that are discovered are checked by the snapshot step."""
    from erpops.runbook.runner import resolve_environment
    from erpops.yamlsrc import suggest

    env, _, _, _ = resolve_environment(options.env_name)
    listed = list(getattr(env, "tenants", None) or [])
    for name in options.tenants:
        if listed and name not in listed:
            guess = suggest(name, listed)
            raise UsageError(f"--tenant {name}: not a tenant of environment {options.env_name} "
                             f"(tenants: {', '.join(listed)})",
                             hint=f"did you mean {guess!r}?" if guess else "see: erpops config show -e " + options.env_name)


def _abandon(run_id: str) -> None:
    """An interrupted run skips its rollback (the engine keeps it resumable); a backup
    is never resumed, so its lock and snapshots are let go of here."""
    from erpops.actions.backup_run import abandon
    from erpops.runbook.state import run_dir
    from erpops.ui.output import log

    try:
        if abandon(str(run_dir(run_id))):
            log(f"run {run_id}: stopped the dump, closed the snapshots and released the lock")
    except ErpopsError as exc:  # the repository may be what failed: the lock then expires by itself
        log(f"run {run_id}: could not release the lock ({exc.message}); it expires by itself")


def plan(options: BackupOptions):
    from erpops.runbook import runner
    from erpops.runbook.confirm import ConfirmPolicy

    request = runner.RunRequest(runbook=RUNBOOK, inputs=options.inputs(), env_name=options.env_name,
                                policy=ConfirmPolicy(yes=False, interactive=False))
    return runner.plan(request)
