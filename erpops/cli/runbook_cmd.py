"""`erpops runbook ...`: list, show, validate, plan, run, resume, actions.

Thin: options become a RunRequest for erpops.runbook.runner; output goes
through the renderers (rich on a TTY, JSON lines with --json, log lines on
stderr otherwise).
"""

from __future__ import annotations

import sys
from typing import List, Optional

import typer

from erpops.cli.context import env_name, interactive, json_mode

runbook_app = typer.Typer(help="Write, check, plan, run and resume runbooks.", no_args_is_help=True)

_INPUT = typer.Option([], "-i", "--input", help="A runbook input, KEY=VALUE (repeatable).")
_ENV = typer.Option(None, "-e", "--env", help="Environment to run against (default: none, or the global -e).")
_JSON = typer.Option(False, "--json", help="JSON on stdout (JSON lines for a run).")
_YES = typer.Option(False, "--yes", "-y", help="Confirm DESTRUCTIVE steps and approve gates without asking.")
_CONFIRM_ENV = typer.Option(None, "--confirm-env", help="With --yes on a production environment: its name.")
_DRY = typer.Option(False, "--dry-run", help="Print the plan and touch nothing.")


def register(app: typer.Typer) -> None:
    app.add_typer(runbook_app, name="runbook")


def _renderers(as_json: bool) -> list:
    from erpops.ui.renderer_json import JsonLinesRenderer, PlainRenderer

    if as_json:
        return [JsonLinesRenderer()]
    if sys.stdout.isatty() and sys.stderr.isatty():
        from erpops.ui.renderer_rich import RichRenderer

        return [RichRenderer()]
    return [PlainRenderer()]


def _env(local: Optional[str]) -> Optional[str]:
    return env_name(local, default=None)


@runbook_app.command("list")
def list_cmd(json: bool = _JSON) -> None:
    """List the runbooks: yours (they shadow built-ins of the same name), then the built-ins."""
    from erpops.runbook import loader
    from erpops.ui.output import show_result, stdout

    rows = []
    for name, (path, source) in sorted(loader.discover().items()):
        try:
            description = loader.load_path(path, source).model.description
        except Exception:  # noqa: BLE001 - a broken runbook is still listed, marked invalid
            description = "(invalid: run erpops runbook validate)"
        rows.append({"name": name, "source": source, "path": str(path), "description": description})

    def human(doc: list) -> None:
        if not doc:
            stdout().print("no runbooks found (user dirs: $ERPOPS_RUNBOOKS, runbooks_dir in the inventory)",
                           markup=False)
        for r in doc:
            stdout().print(f"{r['name']:<24} {r['source']:<8} {r['description']}", markup=False)

    show_result(rows, human, as_json=json_mode(json))


@runbook_app.command("show")
def show_cmd(name: str = typer.Argument(..., help="Runbook name or file."), json: bool = _JSON) -> None:
    """Show a runbook's description, inputs and steps."""
    from erpops.runbook import loader
    from erpops.ui.output import show_result, stdout

    rb = loader.load(name)
    m = rb.model
    doc = {"name": m.name, "path": str(rb.path), "source": rb.source, "digest": rb.digest,
           "description": m.description,
           "inputs": {k: v.model_dump() for k, v in m.inputs.items()},
           "steps": [{"id": s.id, "uses": s.uses} for s in m.steps],
           "on_failure": [{"id": s.id, "uses": s.uses} for s in m.on_failure]}

    def human(d: dict) -> None:
        out = stdout()
        out.print(f"{d['name']} ({d['source']}: {d['path']})\n{d['description']}", markup=False)
        if d["inputs"]:
            out.print("inputs:", markup=False)
            for k, v in d["inputs"].items():
                req = "required" if v["required"] else f"default {v['default']!r}"
                choices = f" one of {', '.join(v['choices'])}" if v["choices"] else ""
                out.print(f"  {k}: {v['type']}{choices} ({req}) {v['description']}", markup=False)
        out.print("steps:", markup=False)
        for s in d["steps"]:
            out.print(f"  {s['id']}: {s['uses']}", markup=False)
        for s in d["on_failure"]:
            out.print(f"  on_failure {s['id'] or ''}: {s['uses']}", markup=False)

    show_result(doc, human, as_json=json_mode(json))


@runbook_app.command("validate")
def validate_cmd(target: str = typer.Argument(..., help="Runbook file or name."), json: bool = _JSON) -> None:
    """Check a runbook completely (schema, actions, with:, templates); exit 2 listing every problem."""
    from erpops.runbook.runner import load_checked
    from erpops.ui.output import ok, show_result

    rb = load_checked(target)
    show_result({"valid": True, "path": str(rb.path), "name": rb.name, "digest": rb.digest},
                lambda d: ok(f"{d['path']}: runbook {d['name']} is valid"), as_json=json_mode(json))


def _print_plan(rb, planned: list, inputs: dict, as_json: bool) -> None:
    from erpops.runbook.plan import flatten
    from erpops.ui.output import show_result, stdout

    doc = {"runbook": rb.name, "path": str(rb.path), "digest": rb.digest, "inputs": inputs,
           "destructive": [p.id for p in flatten(planned) if p.risk == "DESTRUCTIVE"],
           "steps": [p.to_dict() for p in planned], "dry_run": True}

    def human(_: dict) -> None:
        out = stdout()
        out.print(f"plan for {rb.name} ({rb.path}) — nothing will be touched", markup=False)

        def show(step, depth: int) -> None:
            pad = "  " * depth
            mark = "  DESTRUCTIVE" if step.risk == "DESTRUCTIVE" else ""
            phase = "on_failure " if step.phase == "on_failure" and depth == 0 else ""
            out.print(f"{pad}{phase}{step.id}: {step.uses} [{step.risk}]{mark}", markup=False)
            if step.when is not None:
                out.print(f"{pad}    when: {step.when}", markup=False)
            if step.confirm:
                out.print(f"{pad}    gate: {step.confirm}", markup=False)
            for k, v in step.with_.items():
                out.print(f"{pad}    {k}: {v}", markup=False)
            extras = [f"timeout {step.timeout:g}s" if step.timeout else "",
                      f"retries {step.retries['count']}" if step.retries else "",
                      f"undo {step.undo}" if step.undo else "",
                      "continue_on_error" if step.continue_on_error else ""]
            if any(extras):
                out.print(f"{pad}    ({', '.join(e for e in extras if e)})", markup=False)
            for child in step.children:
                show(child, depth + 1)

        for step in planned:
            show(step, 0)

    show_result(doc, human, as_json=as_json)


def _request(name: str, inputs: List[str], env: Optional[str], yes: bool, confirm_env: Optional[str],
             tabletop: bool = False, inject: List[str] = (), decide: List[str] = ()):
    from erpops.runbook.confirm import ConfirmPolicy
    from erpops.runbook.inputs import parse_assignments
    from erpops.runbook.runner import RunRequest

    injections = parse_assignments(list(inject))
    from erpops.errors import UsageError

    for step, what in injections.items():
        if what != "fail" and not what.startswith("delay:"):
            raise UsageError(f"--inject {step}={what}: expected STEP=fail or STEP=delay:DURATION")
    if injections and not tabletop:
        raise UsageError("--inject only works with --tabletop")
    policy = ConfirmPolicy(yes=yes, confirm_env=confirm_env, interactive=interactive(),
                           decisions=parse_assignments(list(decide)))
    return RunRequest(runbook=name, inputs=parse_assignments(list(inputs)), env_name=_env(env), policy=policy,
                      tabletop=tabletop, injections=injections)


@runbook_app.command("plan")
def plan_cmd(name: str = typer.Argument(..., help="Runbook name or file."), inputs: List[str] = _INPUT,
             env: Optional[str] = _ENV, json: bool = _JSON) -> None:
    """Print every step resolved as far as possible, DESTRUCTIVE ones marked; touch nothing."""
    from erpops.runbook import runner

    req = _request(name, inputs, env, False, None)
    rb, planned, values = runner.plan(req)
    _print_plan(rb, planned, values, json_mode(json))


@runbook_app.command("run")
def run_cmd(
    name: str = typer.Argument(..., help="Runbook name or file."),
    inputs: List[str] = _INPUT, env: Optional[str] = _ENV, json: bool = _JSON, yes: bool = _YES,
    confirm_env: Optional[str] = _CONFIRM_ENV, dry_run: bool = _DRY,
    tabletop: bool = typer.Option(False, "--tabletop", help="An exercise: simulate every action, touch nothing real."),
    inject: List[str] = typer.Option([], "--inject", help="Tabletop fault: STEP=fail or STEP=delay:DURATION."),
    decide: List[str] = typer.Option([], "--decide", help="Tabletop decision given in advance: STEP=retry|skip|abort|approve."),
) -> None:
    """Run a runbook; every run leaves a signed log (erpops audit verify RUN_ID).

    Example: erpops runbook run smoke -e staging -i url=https://erp.example.com
    """
    from erpops.runbook import runner
    from erpops.ui.output import ok

    req = _request(name, inputs, env, yes, confirm_env, tabletop, inject, decide)
    as_json = json_mode(json)
    if dry_run:
        rb, planned, values = runner.plan(req)
        _print_plan(rb, planned, values, as_json)
        return
    cp = runner.start(req, _renderers(as_json))
    if not as_json:
        ok(f"run {cp.run_id} succeeded" + (" (tabletop)" if cp.tabletop else ""))


@runbook_app.command("resume")
def resume_cmd(
    run_id: str = typer.Argument(..., help="The run to continue (see the failed run's message)."),
    replan: bool = typer.Option(False, "--replan", help="Accept a runbook that changed since the run started."),
    json: bool = _JSON, yes: bool = _YES, confirm_env: Optional[str] = _CONFIRM_ENV, dry_run: bool = _DRY,
) -> None:
    """Continue a failed or interrupted run at its first unfinished step, with its pinned inputs."""
    from erpops.runbook import runner
    from erpops.runbook.confirm import ConfirmPolicy
    from erpops.ui.output import ok, show_result

    as_json = json_mode(json)
    if dry_run:
        doc = runner.resume_preview(run_id, replan=replan)
        show_result(doc, lambda d: ok(f"run {run_id} ({d['status']}) would resume at {d['from_step']} and run: "
                                      f"{', '.join(d['remaining'])}; nothing was touched"), as_json=as_json)
        return
    policy = ConfirmPolicy(yes=yes, confirm_env=confirm_env, interactive=interactive())
    cp = runner.resume(run_id, replan=replan, policy=policy, subscribers=_renderers(as_json))
    if not as_json:
        ok(f"run {cp.run_id} succeeded after resume")


@runbook_app.command("actions")
def actions_cmd(json: bool = _JSON, markdown: bool = typer.Option(False, "--markdown", help="Print docs/actions.md.")) -> None:
    """List the actions a step may use, with their risk and parameters."""
    from erpops.actions.docs import action_rows, actions_markdown
    from erpops.ui.output import show_result, stdout

    if markdown:
        sys.stdout.write(actions_markdown())
        return

    def human(rows: list) -> None:
        for r in rows:
            stdout().print(f"{r['name']:<18} {r['risk']:<12} {r['summary']}", markup=False)
            params = ", ".join(f"{p['name']}{'' if p['required'] else '?'}: {p['type']}" for p in r["parameters"])
            stdout().print(f"{'':<31}with: {params or '-'}", markup=False)

    show_result(action_rows(), human, as_json=json_mode(json))
