"""Running one action under a deadline.

A timer fires at the step's timeout: it marks the step cancelled and kills
the processes the step started (their whole process groups). Whatever the
action then raises or returns, the step ends as a timeout; after a Ctrl-C or
SIGTERM it ends as interrupted. Every other failure becomes a StepError.
"""

from __future__ import annotations

import threading
from typing import Any, Callable

from erpops.actions.registry import StepContext, StepError, StepInterrupted, error_from
from erpops.units import format_duration


def call_with_deadline(ctx: StepContext, timeout: float | None, fn: Callable[[], Any]) -> dict:
    timer = None
    if timeout:
        def expire() -> None:
            ctx.cancelled.set("timeout")
            ctx.kill_processes()

        timer = threading.Timer(timeout, expire)
        timer.daemon = True
        timer.start()
    try:
        result = fn()
    except BaseException as exc:  # noqa: BLE001 - every failure of an action becomes a StepError
        if ctx.cancelled.reason == "interrupted" or isinstance(exc, KeyboardInterrupt):
            raise StepInterrupted() from None
        if ctx.cancelled.reason == "timeout":
            raise StepError(f"timed out after {format_duration(timeout)}", kind="timeout") from None
        raise error_from(exc) from None
    finally:
        if timer:
            timer.cancel()
    if ctx.cancelled.reason == "interrupted":
        raise StepInterrupted()
    if ctx.cancelled.reason == "timeout":
        raise StepError(f"timed out after {format_duration(timeout)}", kind="timeout")
    if isinstance(result, dict):
        return result
    return {} if result is None else {"result": result}
