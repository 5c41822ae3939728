"""Start, resume and plan runs: everything between the CLI and the engine.

The CLI turns options into a ``RunRequest``; this module loads and validates
the runbook, resolves inputs and the environment, applies the confirmation
policy (refusing before the first step), creates the run directory, wires the
subscribers and hands over to the engine.
"""

from __future__ import annotations

import getpass
import os
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from erpops.errors import ErpopsError, OperationFailed, Refused, UsageError
from erpops.runbook import events as ev
from erpops.runbook import loader, validate
from erpops.runbook.confirm import ConfirmPolicy
from erpops.runbook.state import Checkpoint, new_run_id, now_iso, run_dir


class RunInterrupted(OperationFailed):
    exit_code = 130


@dataclass
class RunRequest:
    runbook: str  # name or file
    inputs: dict[str, str] = field(default_factory=dict)
    env_name: str | None = None
    policy: ConfirmPolicy = field(default_factory=ConfirmPolicy)
    tabletop: bool = False
    injections: dict[str, str] = field(default_factory=dict)


def operator() -> str:
    return os.environ.get("ERPOPS_OPERATOR") or getpass.getuser()


def load_checked(name_or_file: str) -> loader.LoadedRunbook:
    rb = loader.load(name_or_file)
    validate.check(rb)
    return rb


class _NoEnvironment:
    """``env`` in templates when no environment was selected: reading it says what to do."""

    def __getattr__(self, name: str) -> Any:
        from jinja2.exceptions import UndefinedError

        if name.startswith("_"):
            raise AttributeError(name)
        raise UndefinedError(f"this runbook reads env.{name} but no environment was selected; pass -e NAME")

    __getitem__ = __getattr__


def resolve_environment(name: str | None) -> tuple[Any, Any, str | None, str | None]:
    """(Environment, template view of it, tier, inventory digest); all None without -e."""
    if not name:
        return None, _NoEnvironment(), None, None
    from erpops.config import load_inventory

    inventory = load_inventory()
    env = inventory.environment(name)
    view = env.model_dump(mode="json") if hasattr(env, "model_dump") else dict(env)
    view.setdefault("name", name)
    tier = getattr(env, "tier", None)
    tier = getattr(tier, "value", tier)
    # The file's own SHA-256, so an auditor can check it with sha256sum.
    return env, view, (str(tier) if tier else None), inventory.digest


def _fragment_loader():
    cache: dict[str, loader.LoadedRunbook] = {}

    def load(name: str) -> loader.LoadedRunbook:
        if name not in cache:
            cache[name] = loader.load(name)
        return cache[name]

    return load


def plan(request: RunRequest) -> tuple[loader.LoadedRunbook, list, dict]:
    """Validated runbook, planned steps, typed inputs. Touches nothing."""
    from erpops.runbook import plan as planner
    from erpops.runbook.inputs import resolve

    rb = load_checked(request.runbook)
    inputs = resolve(rb.model.inputs, request.inputs, runbook=rb.name)
    _, view, _, _ = resolve_environment(request.env_name)
    run = {"id": "<run.id>", "started_at": "<run.started_at>", "operator": operator(), "tabletop": request.tabletop}
    env_view = view if request.env_name else None
    return rb, planner.build(rb, inputs, env_view, run, _fragment_loader()), inputs


def start(request: RunRequest, subscribers: list) -> Checkpoint:
    from erpops import __version__
    from erpops.runbook.engine import Engine
    from erpops.runbook.plan import flatten

    rb, planned, inputs = plan(request)
    env, view, tier, inventory_digest = resolve_environment(request.env_name)
    request.policy.tabletop = request.tabletop
    request.policy.operator = operator()
    unknown = [s for s in request.injections if s not in {p.id for p in flatten(planned)}]
    if unknown:
        raise UsageError(f"--inject names unknown steps: {', '.join(unknown)}",
                         hint=f"steps: {', '.join(p.id for p in flatten(planned))}")
    request.policy.preflight(flatten(planned), request.env_name, tier, rb.name)  # refuses before step 1

    run_id = new_run_id(rb.name)
    directory = run_dir(run_id)
    directory.mkdir(parents=True)
    cp = Checkpoint(run_id=run_id, runbook=rb.name, runbook_path=str(rb.path.resolve()), runbook_digest=rb.digest,
                    inputs=inputs, environment=request.env_name, operator=operator(), started_at=now_iso(),
                    tabletop=request.tabletop)
    cp.save(directory)
    bus = _bus(subscribers, directory, run_id, request.tabletop)
    try:
        bus.emit(ev.RunStarted(run_id=run_id, runbook=rb.name, runbook_path=str(rb.path.resolve()), runbook_digest=rb.digest,
                               inputs=inputs, environment=request.env_name, inventory_digest=inventory_digest,
                               operator=cp.operator, host=socket.gethostname(), erpops_version=__version__,
                               tabletop=request.tabletop,
                               steps=[{"id": p.id, "uses": p.uses, "risk": p.risk, "phase": p.phase}
                                      for p in planned]))
        engine = Engine(rb, checkpoint=cp, bus=bus, policy=request.policy, env=env, env_context=view,
                        run_dir=directory, load_fragment=_fragment_loader(), injections=request.injections)
        engine.run()
    finally:
        bus.close()
    return _outcome(cp, engine)


def resume(run_id: str, *, replan: bool, policy: ConfirmPolicy, subscribers: list) -> Checkpoint:
    from erpops.runbook.engine import Engine
    from erpops.runbook.plan import flatten

    directory = run_dir(run_id)
    cp = Checkpoint.load(directory)
    if cp.status == "succeeded":
        raise UsageError(f"run {run_id} already succeeded; there is nothing to resume")
    path = Path(cp.runbook_path)
    if not path.is_file():
        raise UsageError(f"run {run_id} used {path}, which no longer exists", hint="restore the file to resume")
    rb = loader.load_path(path)
    if rb.digest != cp.runbook_digest and not replan:
        raise Refused(f"runbook {path} changed since run {run_id} started (digest {cp.runbook_digest[:12]} -> "
                      f"{rb.digest[:12]}); nothing was run",
                      hint="resume with --replan to run the remaining steps of the changed runbook")
    validate.check(rb)
    env, view, tier, _ = resolve_environment(cp.environment)
    from erpops.runbook import plan as planner

    run = {"id": cp.run_id, "started_at": cp.started_at, "operator": operator(), "tabletop": cp.tabletop}
    planned = planner.build(rb, cp.inputs, view if cp.environment else None, run, _fragment_loader())
    remaining = [p for p in flatten(planned) if cp.steps.get(p.id) is None
                 or cp.steps[p.id].status not in ("succeeded", "skipped")]
    policy.tabletop, policy.operator = cp.tabletop, operator()
    policy.preflight(remaining, cp.environment, tier, rb.name)  # re-checked for what is left to run
    first = next((p.id for p in remaining if p.phase == "main"), None)
    cp.resumes.append({"at": now_iso(), "operator": operator(), "from_step": first, "replan": replan})
    if replan:
        cp.runbook_digest = rb.digest
    cp.status, cp.error, cp.failed_step = "running", None, None
    cp.save(directory)
    bus = _bus(subscribers, directory, run_id, cp.tabletop, resumed=True)
    try:
        bus.emit(ev.RunResumed(run_id=run_id, from_step=first, operator=operator(), replan=replan,
                               runbook_digest=rb.digest))
        engine = Engine(rb, checkpoint=cp, bus=bus, policy=policy, env=env, env_context=view, run_dir=directory,
                        load_fragment=_fragment_loader())
        engine.run()
    finally:
        bus.close()
    return _outcome(cp, engine)


def resume_preview(run_id: str, *, replan: bool) -> dict:
    """What ``resume`` would do, touching nothing (``resume --dry-run``)."""
    cp = Checkpoint.load(run_dir(run_id))
    rb = loader.load_path(Path(cp.runbook_path))
    changed = rb.digest != cp.runbook_digest
    if changed and not replan:
        raise Refused(f"runbook {rb.path} changed since run {run_id} started; nothing was run",
                      hint="resume with --replan to run the remaining steps of the changed runbook")
    remaining = [s.id for s in rb.model.steps
                 if cp.steps.get(s.id) is None or cp.steps[s.id].status not in ("succeeded", "skipped")]
    return {"run_id": run_id, "status": cp.status, "from_step": remaining[0] if remaining else None,
            "remaining": remaining, "inputs": cp.inputs, "runbook_changed": changed, "dry_run": True}


def _bus(subscribers: list, directory: Path, run_id: str, tabletop: bool, resumed: bool = False) -> ev.EventBus:
    from erpops.runbook.audit_subscriber import AuditSubscriber

    # the audit log subscribes first: a record is written before anything is shown
    return ev.EventBus([AuditSubscriber(directory, run_id, tabletop=tabletop), *subscribers])


def _outcome(cp: Checkpoint, engine) -> Checkpoint:
    if cp.status == "succeeded":
        return cp
    hint = f"fix the cause, then continue with: erpops runbook resume {cp.run_id}"
    if cp.status == "interrupted":
        raise RunInterrupted(f"run {cp.run_id} interrupted at step {cp.failed_step}; the log is sealed",
                             hint=f"continue with: erpops runbook resume {cp.run_id}")
    err = OperationFailed(f"run {cp.run_id} failed at step {cp.failed_step}: {cp.error}", hint=hint)
    cause: ErpopsError | None = getattr(engine, "exit_error", None)
    if cause is not None and getattr(cause, "kind", None) == "refused":
        err.exit_code = Refused.exit_code  # a human said no at a gate
    elif cause is not None and cause.exit_code not in (0, 130):
        err.exit_code = cause.exit_code
    return _raise(err)


def _raise(err: ErpopsError):
    raise err
