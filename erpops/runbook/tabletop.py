"""A tabletop step: the action's simulation (or its plan), with injected faults.

Nothing real is touched: the action's ``run`` is never called, and the
StepContext of a tabletop run refuses to open a transport. ``--inject
STEP=fail`` fails the step once; ``--inject STEP=delay:30m`` adds simulated
time, which fails the step as a timeout when it exceeds its ``timeout:``.
"""

from __future__ import annotations

import json
from typing import Any, Callable

from erpops.actions.registry import StepContext, StepError
from erpops.runbook import events as ev
from erpops.units import format_duration, parse_duration


def simulate(step: Any, sid: str, spec: Any, kwargs: dict, values: dict, ctx: StepContext, *,
             injections: dict[str, str], emit: Callable[[ev.Event], None],
             call: Callable[[Callable[[], Any]], dict]) -> dict:
    injection = injections.pop(sid, None)  # one-shot: a retry decided by the participants succeeds
    if injection == "fail":
        raise StepError(f"injected failure (tabletop): {step.uses} failed", kind="error")
    if injection and injection.startswith("delay:"):
        delay = parse_duration(injection.split(":", 1)[1])
        emit(ev.StepOutput(step=sid, line=f"[tabletop] injected delay of {format_duration(delay)}"))
        if step.timeout and delay > step.timeout:
            raise StepError(f"timed out after {format_duration(step.timeout)} (injected delay "
                            f"{format_duration(delay)})", kind="timeout")
    if spec.simulate_func and kwargs:
        outputs = call(lambda: spec.simulate_func(ctx, **kwargs))
    else:
        ctx.plan(f"would call {spec.name} with {json.dumps(values, default=str)}")
        outputs = {}
    for line in ctx.planned:
        emit(ev.StepOutput(step=sid, line=f"[tabletop] {line}"))
    return outputs
