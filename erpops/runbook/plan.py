"""The plan: every step resolved as far as possible, before anything runs.

``erpops runbook plan`` and ``--dry-run`` show it; the confirmation policy
reads the risks from it. Outputs of steps that have not run yet render as
placeholders (``<steps.dump.outputs.id>``); nothing is executed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from erpops.actions.registry import Risk
from erpops.runbook.templating import TemplateError, condition_template, is_template, render_string

_ORDER = {Risk.READ: 0, Risk.WRITE: 1, Risk.DESTRUCTIVE: 2}


class Placeholder:
    """Stands for a value known only at run time; any attribute is another placeholder."""

    __placeholder__ = True

    def __init__(self, path: str):
        self._path = path

    def __getattr__(self, name: str) -> "Placeholder":
        if name.startswith("_"):
            raise AttributeError(name)
        return Placeholder(f"{self._path}.{name}")

    def __getitem__(self, key: Any) -> "Placeholder":
        return Placeholder(f"{self._path}[{key!r}]")

    def __str__(self) -> str:
        return f"<{self._path}>"

    __repr__ = __str__

    def __iter__(self):
        return iter([self])


@dataclass
class PlannedStep:
    id: str
    uses: str
    risk: str
    phase: str = "main"
    with_: dict = field(default_factory=dict)
    when: Any = None
    confirm: str | None = None
    timeout: float | None = None
    retries: dict | None = None
    undo: str | None = None
    continue_on_error: bool = False
    summary: str = ""
    children: list["PlannedStep"] = field(default_factory=list)

    def to_dict(self) -> dict:
        out = {"id": self.id, "uses": self.uses, "risk": self.risk, "phase": self.phase, "with": self.with_,
               "when": self.when, "confirm": self.confirm, "timeout": self.timeout, "retries": self.retries,
               "undo": self.undo, "continue_on_error": self.continue_on_error, "summary": self.summary}
        if self.children:
            out["steps"] = [c.to_dict() for c in self.children]
        return out


def step_risk(step: Any, load_fragment) -> Risk:
    """The action's risk; a fragment is as risky as its riskiest step."""
    from erpops.actions.registry import get_action

    if step.is_fragment:
        fragment = load_fragment(step.uses.split(":", 1)[1])
        risks = [step_risk(s, load_fragment) for s in fragment.model.steps + fragment.model.on_failure]
        return max(risks, key=_ORDER.get, default=Risk.READ)
    spec = get_action(step.uses)
    risk = spec.risk if spec else Risk.READ
    declared = Risk(step.risk) if step.risk else Risk.READ
    return max(risk, declared, key=_ORDER.get)


def placeholder_context(inputs: dict, env: Any, run: dict, done: dict | None = None) -> dict:
    steps = _PlaceholderSteps(done or {})
    return {"inputs": inputs, "env": env if env is not None else Placeholder("env"), "run": run, "steps": steps}


class _PlaceholderSteps(dict):
    def __init__(self, done: dict):
        super().__init__(done)

    def __missing__(self, key: str) -> Any:
        return {"outputs": Placeholder(f"steps.{key}.outputs")}

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return self[name]


class SimulatedOutputs(dict):
    """A tabletop step's outputs: what its simulation returned, placeholders for the rest."""

    def __init__(self, step: str, values: dict):
        super().__init__(values)
        self._step = step

    def __missing__(self, key: str) -> Placeholder:
        return Placeholder(f"steps.{self._step}.outputs.{key}")


def resolve_for_display(value: Any, context: dict) -> Any:
    """Render what can be rendered; leave the rest as written."""
    if isinstance(value, dict):
        return {k: resolve_for_display(v, context) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve_for_display(v, context) for v in value]
    if not is_template(value):
        return value
    try:
        result = render_string(value, context)
    except TemplateError:
        return value
    return str(result) if isinstance(result, Placeholder) else result


def build(rb: Any, inputs: dict, env: Any, run: dict, load_fragment, *, prefix: str = "") -> list[PlannedStep]:
    from erpops.actions.registry import get_action

    context = placeholder_context(inputs, env, run)
    planned: list[PlannedStep] = []
    for phase, steps in (("main", rb.model.steps), ("on_failure", rb.model.on_failure)):
        for i, step in enumerate(steps):
            sid = prefix + (step.id or f"{phase}[{i}]")
            spec = None if step.is_fragment else get_action(step.uses)
            when = step.when
            if isinstance(when, str):
                try:
                    rendered = render_string(condition_template(when), context)
                    when = when if isinstance(rendered, Placeholder) or "<steps." in str(rendered) else rendered
                except TemplateError:
                    pass
            undo = None
            if step.undo is False:
                undo = "disabled"
            elif step.undo:
                undo = step.undo.uses
            elif spec and spec.undo_func:
                undo = f"{step.uses} (undo)"
            ps = PlannedStep(
                id=sid, uses=step.uses, risk=step_risk(step, load_fragment).value, phase=phase,
                with_=resolve_for_display(step.with_, context), when=when,
                confirm=resolve_for_display(step.confirm, context) if step.confirm else None,
                timeout=step.timeout, retries=step.retries.model_dump() if step.retries else None, undo=undo,
                continue_on_error=step.continue_on_error, summary=spec.summary if spec else "")
            if step.is_fragment:
                fragment = load_fragment(step.uses.split(":", 1)[1])
                ps.summary = fragment.model.description
                frag_inputs = {k: resolve_for_display(v, context) for k, v in step.with_.items()}
                for key, spec_in in fragment.model.inputs.items():
                    frag_inputs.setdefault(key, spec_in.default)
                ps.children = build(fragment, frag_inputs, env, run, load_fragment, prefix=f"{sid}.")
            planned.append(ps)
    return planned


def flatten(plan: list[PlannedStep]) -> list[PlannedStep]:
    out: list[PlannedStep] = []
    for step in plan:
        out.append(step)
        out.extend(flatten(step.children))
    return out


