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
import typing
from dataclasses import dataclass
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

    def __call__(self, ctx: Any, **kwargs: Any) -> Any:
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


def error_from(exc: BaseException) -> StepError:
    """Any failure of an action as a StepError with a kind."""
    if isinstance(exc, StepError):
        return exc
    if isinstance(exc, ErpopsError):
        err = StepError(exc.message, kind=getattr(exc, "kind", "error"), where=exc.where, hint=exc.hint)
        err.exit_code = exc.exit_code
        return err
    return StepError(f"{type(exc).__name__}: {exc}", kind="error")


# StepContext lives in its own module; importing it from here is the documented path.
from erpops.actions.context import Cancelled, Progress, StepContext  # noqa: E402

__all__ = ["ActionSpec", "Cancelled", "Progress", "REGISTRY", "Risk", "StepContext", "StepError",
           "StepInterrupted", "action", "error_from", "get_action", "load_actions", "type_name"]
