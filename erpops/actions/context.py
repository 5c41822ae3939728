"""StepContext: everything an action may touch, and nothing else.

``env`` (the inventory environment), ``transport(target)``, ``secret(ref)``,
``emit(event)``, ``progress(total, unit)``, ``deadline``, ``dry_run``,
``run_dir``, ``tabletop``, ``plan(description)``. The engine cancels a step
(timeout, Ctrl-C) through ``cancelled``; actions notice it through
``check()``/``sleep()`` and through their processes being killed.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from erpops.actions.registry import StepError, StepInterrupted


class Cancelled:
    """Why the current step was cut short: set by the timeout watchdog or the
    signal handler, read by actions through ``ctx.check()``/``ctx.sleep()``."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.reason: str | None = None  # "timeout" | "interrupted"

    def set(self, reason: str) -> None:
        if not self.event.is_set():
            self.reason = reason
            self.event.set()


@dataclass
class StepContext:
    """What an action may touch. Nothing else: no global config, no printing."""

    step_id: str
    env: Any = None  # the inventory Environment, or None
    run_dir: Path | None = None
    dry_run: bool = False
    tabletop: bool = False
    deadline: float | None = None  # time.monotonic() value, or None
    attempt: int = 1
    emit_fn: Callable[[Any], None] = lambda event: None
    gate_fn: Callable[[str], bool] = lambda message: False
    cancelled: Cancelled = field(default_factory=Cancelled)
    planned: list[str] = field(default_factory=list)
    _processes: list[Any] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def transport(self, target: str | None = None):
        if self.tabletop:  # a safety net: simulations describe, they never reach a real system
            raise StepError("a tabletop exercise never opens a real transport", kind="error")
        if target in (None, "", "local"):
            from erpops.transport.local import LocalTransport

            return _TrackingTransport(LocalTransport(), self)
        raise StepError(f"unknown transport target {target!r}; only 'local' is available for now", kind="error")

    def secret(self, ref: str):
        from erpops.secrets import resolve

        return resolve(ref)

    def emit(self, event: Any) -> None:
        self.emit_fn(event)

    def progress(self, total: float | None, unit: str = "") -> "Progress":
        return Progress(self, total, unit)

    def plan(self, description: str) -> None:
        """Say what this step would do (shown by plan/dry-run and tabletop)."""
        self.planned.append(description)

    def gate(self, message: str) -> bool:
        return self.gate_fn(message)

    def remaining(self) -> float | None:
        return None if self.deadline is None else max(0.0, self.deadline - time.monotonic())

    def check(self) -> None:
        """Raise if the step was cancelled (timeout or interrupt)."""
        if self.cancelled.event.is_set():
            if self.cancelled.reason == "interrupted":
                raise StepInterrupted()
            raise StepError("timed out", kind="timeout")

    def sleep(self, seconds: float) -> None:
        """Sleep that a timeout or Ctrl-C cuts short."""
        self.cancelled.event.wait(max(0.0, seconds))
        self.check()

    def track(self, process: Any) -> None:
        with self._lock:
            self._processes.append(process)
        if self.cancelled.event.is_set():
            process.kill()

    def kill_processes(self) -> None:
        with self._lock:
            processes = list(self._processes)
        for p in processes:
            p.kill()


class _TrackingTransport:
    """Wraps a transport so that every process it starts is killed with the step."""

    def __init__(self, inner: Any, ctx: StepContext):
        self._inner = inner
        self._ctx = ctx
        self.name = inner.name

    def run(self, argv, stdin=None, **kwargs):
        self._ctx.check()
        process = self._inner.run(argv, stdin, **kwargs)
        self._ctx.track(process)
        return process

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class Progress:
    """Reports ``done`` of ``total`` units; renderers show a bar with throughput."""

    def __init__(self, ctx: StepContext, total: float | None, unit: str):
        self.ctx, self.total, self.unit, self.done = ctx, total, unit, 0.0

    def advance(self, amount: float) -> None:
        self.update(self.done + amount)

    def update(self, done: float) -> None:
        from erpops.runbook.events import StepProgress

        self.done = done
        self.ctx.emit(StepProgress(step=self.ctx.step_id, done=done, total=self.total, unit=self.unit))
