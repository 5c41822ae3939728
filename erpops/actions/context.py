"""StepContext: everything an action may touch, and nothing else.

``env`` (the inventory environment), ``transport(target)``, ``repo`` (the
environment's backup repository, opened once per run), ``secret(ref)``,
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

    @property
    def repo(self):
        """The environment's backup repository (its ``repository:``), opened on first
        use and shared by every step of the run."""
        return run_repository(self)

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


_REPOSITORIES: dict[str, Any] = {}
_REPOSITORIES_LOCK = threading.Lock()


def run_repository(ctx: StepContext):
    """Open the environment's repository once per run (keyed by the run directory):
    unwrapping the key costs a KDF, and every backup step needs it."""
    if ctx.tabletop:
        raise StepError("a tabletop exercise never opens a real repository", kind="error")
    if ctx.env is None:
        raise StepError("this step needs an environment with a repository; pass -e NAME", kind="error")
    key = f"{ctx.run_dir}:{ctx.env.name}"
    with _REPOSITORIES_LOCK:
        if key not in _REPOSITORIES:
            from erpops.errors import UsageError
            from erpops.repo.locate import from_reference, locate
            from erpops.repo.repository import Repository

            target = locate(None, env=ctx.env.name)
            if not target.key_ref:
                raise UsageError(f"repository {target.name or target.url} has no key: in the inventory",
                                 hint="add key: file:/path/to/repo.key (or env:NAME for a passphrase) to it")
            source = from_reference(target.key_ref)
            if getattr(ctx.env, "from_lab", False):
                _init_lab_repository(target, source)
            _REPOSITORIES[key] = Repository.open(target.url, source, s3=target.s3)
        return _REPOSITORIES[key]


def _init_lab_repository(target, source) -> None:
    """The lab's repository (a directory in the lab, or a bucket of `lab up --s3`)
    is created by its first use, so `erpops backup -e lab` needs no setup."""
    from erpops.repo.repository import CONFIG_KEY, Repository, open_storage

    if not open_storage(target.url, target.s3).exists(CONFIG_KEY):
        from erpops.ui.output import log

        Repository.init(target.url, source, s3=target.s3)
        log(f"created the lab's backup repository {target.url}")


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
