"""Control actions: human gates, waits and deliberate failures (for tests,
exercises and runbooks that need a pause)."""

from __future__ import annotations

import time

from erpops.actions.registry import Risk, StepContext, StepError, action
from erpops.units import Duration


@action("control.confirm", risk=Risk.READ)
def confirm(ctx: StepContext, message: str) -> dict:
    """Stop until a human approves `message`; a refusal fails the step (kind "refused").

    With --yes the gate is approved and the log says so; without a TTY and
    without --yes the run is refused before its first step.
    """
    if not ctx.gate(message):
        raise StepError(f"not approved: {message}", kind="refused")
    return {"approved": True}


@action("control.wait", risk=Risk.READ)
def wait(ctx: StepContext, duration: Duration) -> dict:
    """Wait for `duration` (e.g. 30s), reporting progress; a timeout or Ctrl-C cuts it short."""
    ctx.plan(f"wait {duration}")
    progress = ctx.progress(float(duration), "s")
    start = time.monotonic()
    while True:
        elapsed = time.monotonic() - start
        if elapsed >= duration:
            break
        ctx.sleep(min(0.5, float(duration) - elapsed))
        progress.update(round(min(time.monotonic() - start, float(duration)), 1))
    return {"waited": round(time.monotonic() - start, 3)}


@wait.simulate
def _(ctx: StepContext, duration: Duration) -> dict:
    return {"waited": float(duration)}


@action("control.fail", risk=Risk.READ)
def fail(ctx: StepContext, message: str = "failed on purpose", kind: str = "error", times: int = 0) -> dict:
    """Fail with `message` and error kind `kind` (for tests and exercises).

    With `times: N` only the first N attempts fail and the next one succeeds,
    which exercises `retries:`; `times: 0` fails every attempt.
    """
    if times == 0 or ctx.attempt <= times:
        raise StepError(message, kind=kind)
    return {"attempts": ctx.attempt}
