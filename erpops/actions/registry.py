"""Actions: plain functions registered by name, whose signature is their schema.

``@action("domain.verb", risk=Risk.WRITE)`` registers a function taking a
``StepContext`` first and keyword parameters after it. The engine validates a
step's ``with:`` against those type hints (pydantic), docs/actions.md is
generated from the same signatures and docstrings. An action may add
``@x.undo`` (compensation run on rollback, gets the same arguments plus
``outputs``) and ``@x.simulate`` (what a tabletop exercise runs instead).
Actions never print and never exit: they raise ErpopsError subclasses, and
``StepError`` carries a ``kind`` that ``retries.on`` matches.
"""

from __future__ import annotations

import enum
import importlib
import inspect
import threading
import time
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from erpops.errors import ErpopsError, OperationFailed
from erpops.units import Duration, parse_duration

ERROR_KINDS = ("error", "transient", "timeout", "refused", "template", "interrupted")


class Risk(str, enum.Enum):
    READ = "READ"
    WRITE = "WRITE"
    DESTRUCTIVE = "DESTRUCTIVE"


class StepError(OperationFailed):
    """A step failed. ``kind`` says how, for ``retries.on``: "error" (the
    action's own failure), "transient" (worth retrying: connection reset, 503),
    "timeout", "refused" (a human said no), "template", "interrupted"."""

    def __init__(self, message: str, *, kind: str = "error", where: str | None = None, hint: str | None = None):
        super().__init__(message, where=where, hint=hint)
        self.kind = kind


class StepInterrupted(StepError):
    exit_code = 130

    def __init__(self, message: str = "interrupted"):
        super().__init__(message, kind="interrupted")


@dataclass
class ActionSpec:
    name: str
    risk: Risk
    func: Callable[..., Any]
    model: Any  # pydantic model of the keyword parameters
    params: list[inspect.Parameter]
    undo_func: Callable[..., Any] | None = None
    simulate_func: Callable[..., Any] | None = None

    @property
    def doc(self) -> str:
        return inspect.cleandoc(self.func.__doc__ or "").strip()

    @property
    def summary(self) -> str:
        return self.doc.splitlines()[0] if self.doc else ""

    def undo(self, func: Callable[..., Any]) -> Callable[..., Any]:
        self.undo_func = func
        return func

    def simulate(self, func: Callable[..., Any]) -> Callable[..., Any]:
        self.simulate_func = func
        return func

    def __call__(self, ctx: "StepContext", **kwargs: Any) -> Any:
        return self.func(ctx, **kwargs)

    def validate(self, values: dict) -> dict:
        """Validated keyword arguments, or pydantic's ValidationError."""
        obj = self.model.model_validate(values)
        return {p.name: getattr(obj, p.name) for p in self.params}

    def parameter_docs(self) -> list[dict]:
        out = []
        for p in self.params:
            out.append({
                "name": p.name,
                "type": type_name(p.annotation),
                "required": p.default is inspect.Parameter.empty,
                "default": None if p.default is inspect.Parameter.empty else _show_default(p.default),
            })
        return out


REGISTRY: dict[str, ActionSpec] = {}


def action(name: str, *, risk: Risk) -> Callable[[Callable[..., Any]], ActionSpec]:
    def register(func: Callable[..., Any]) -> ActionSpec:
        if name in REGISTRY and REGISTRY[name].func is not func:
            raise RuntimeError(f"action {name} registered twice")
        hints = typing.get_type_hints(func)
        params = [p.replace(annotation=hints.get(p.name, Any))
                  for p in list(inspect.signature(func).parameters.values())[1:]]  # first is ctx
        spec = ActionSpec(name=name, risk=risk, func=func, model=_model_for(name, func, params), params=params)
        REGISTRY[name] = spec
        return spec

    return register


def load_actions() -> dict[str, ActionSpec]:
    """Import every module listed in erpops.actions.ACTION_MODULES; return the registry."""
    from erpops.actions import ACTION_MODULES

    for module in ACTION_MODULES:
        importlib.import_module(module)
    return REGISTRY


def get_action(name: str) -> ActionSpec | None:
    return load_actions().get(name)


# --- signature -> pydantic model --------------------------------------------


def _model_for(name: str, func: Callable[..., Any], params: list[inspect.Parameter]) -> Any:
    from pydantic import ConfigDict, create_model

    fields: dict[str, Any] = {}
    for p in params:
        if p.kind not in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY):
            raise RuntimeError(f"action {name}: parameter {p.name} must be a plain keyword parameter")
        tp = _pydantic_type(p.annotation)
        fields[p.name] = (tp, ... if p.default is inspect.Parameter.empty else p.default)
    return create_model(f"Action_{name.replace('.', '_')}", __config__=ConfigDict(extra="forbid", strict=False),
                        **fields)


def _pydantic_type(tp: Any) -> Any:
    """Durations are written ``90s`` in YAML; everything else pydantic knows."""
    from pydantic import PlainValidator

    if tp is Duration:
        return typing.Annotated[Duration, PlainValidator(_duration)]
    origin = typing.get_origin(tp)
    if origin is typing.Union or type(tp).__name__ == "UnionType":
        args = tuple(_pydantic_type(a) for a in typing.get_args(tp))
        return typing.Union[args]
    return tp


def _duration(value: Any) -> Duration:
    if isinstance(value, Duration):
        return value
    return Duration(parse_duration(value))


def type_name(tp: Any) -> str:
    if tp is inspect.Parameter.empty:
        return "any"
    if isinstance(tp, str):
        return tp.replace("typing.", "")
    if tp is Duration:
        return "duration"
    origin = typing.get_origin(tp)
    if origin is typing.Literal:
        return " | ".join(repr(a) for a in typing.get_args(tp))
    if origin is typing.Union or type(tp).__name__ == "UnionType":
        return " | ".join(type_name(a) for a in typing.get_args(tp))
    if origin in (list, dict):
        return {list: "list", dict: "mapping"}[origin] + "[" + ", ".join(type_name(a) for a in typing.get_args(tp)) + "]"
    if origin is not None:
        args = ", ".join(type_name(a) for a in typing.get_args(tp))
        return f"{getattr(origin, '__name__', str(origin))}[{args}]"
    return {str: "string", int: "int", bool: "bool", float: "number", type(None): "null", dict: "mapping",
            list: "list"}.get(tp, getattr(tp, "__name__", str(tp)))


def _show_default(value: Any) -> Any:
    if isinstance(value, Duration):
        return str(value)
    return value


# --- the context an action runs in ------------------------------------------


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


def error_from(exc: BaseException) -> StepError:
    """Any failure of an action as a StepError with a kind."""
    if isinstance(exc, StepError):
        return exc
    if isinstance(exc, ErpopsError):
        err = StepError(exc.message, kind=getattr(exc, "kind", "error"), where=exc.where, hint=exc.hint)
        err.exit_code = exc.exit_code
        return err
    return StepError(f"{type(exc).__name__}: {exc}", kind="error")
