"""Typed events: the only way the engine talks to the outside.

Renderers (rich, JSON lines, plain log lines) and the audit log subscribe to
an ``EventBus``; the engine and actions ``emit``. Every event has a ``type``
(the audit record type where one exists) and a JSON-able ``to_dict()``.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from typing import Any, Callable


@dataclass
class Event:
    type = "event"
    ts: float = field(default_factory=time.time, init=False)

    def to_dict(self) -> dict:
        out = {"type": self.type}
        out.update({f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "ts"})
        return out


@dataclass
class RunStarted(Event):
    type = "run_started"
    run_id: str = ""
    runbook: str = ""
    runbook_path: str = ""
    runbook_digest: str = ""
    inputs: dict = field(default_factory=dict)
    environment: str | None = None
    inventory_digest: str | None = None
    operator: str = ""
    host: str = ""
    erpops_version: str = ""
    tabletop: bool = False
    steps: list = field(default_factory=list)  # [{id, uses, risk}]


@dataclass
class RunResumed(Event):
    type = "run_resumed"
    run_id: str = ""
    from_step: str | None = None
    operator: str = ""
    replan: bool = False
    runbook_digest: str = ""


@dataclass
class StepStarted(Event):
    type = "step_started"
    step: str = ""
    uses: str = ""
    risk: str = ""
    attempt: int = 1
    with_: dict = field(default_factory=dict)
    phase: str = "main"  # main | undo | on_failure

    def to_dict(self) -> dict:
        out = super().to_dict()
        out["with"] = out.pop("with_")
        return out


@dataclass
class StepOutput(Event):
    type = "step_output"
    step: str = ""
    line: str = ""


@dataclass
class StepProgress(Event):
    type = "step_progress"
    step: str = ""
    done: float = 0
    total: float | None = None
    unit: str = ""


@dataclass
class StepRetried(Event):
    type = "step_retried"
    step: str = ""
    attempt: int = 1
    kind: str = "error"
    error: str = ""
    delay: float = 0


@dataclass
class StepFinished(Event):
    type = "step_finished"
    step: str = ""
    outputs: dict = field(default_factory=dict)
    duration: float = 0
    phase: str = "main"
    simulated: bool = False


@dataclass
class StepFailed(Event):
    type = "step_failed"
    step: str = ""
    kind: str = "error"
    error: str = ""
    duration: float = 0
    continued: bool = False
    phase: str = "main"


@dataclass
class StepSkipped(Event):
    type = "step_skipped"
    step: str = ""
    reason: str = ""


@dataclass
class Gate(Event):
    type = "gate"
    step: str = ""
    message: str = ""
    decision: str = ""  # approved | declined | retry | skip | abort ...
    by: str = ""  # operator name, "--yes", "default (no TTY)"
    waited: float = 0


@dataclass
class Undo(Event):
    type = "undo"
    step: str = ""
    uses: str = ""
    status: str = ""  # started | succeeded | failed
    error: str | None = None


@dataclass
class RunFinished(Event):
    type = "run_finished"
    run_id: str = ""
    status: str = "succeeded"  # succeeded | failed | interrupted
    error: str | None = None
    failed_step: str | None = None
    outputs: dict = field(default_factory=dict)
    duration: float = 0


Subscriber = Callable[[Event], None]


class EventBus:
    def __init__(self, subscribers: list[Any] | None = None):
        self.subscribers: list[Any] = list(subscribers or [])

    def subscribe(self, subscriber: Any) -> None:
        self.subscribers.append(subscriber)

    def emit(self, event: Event) -> None:
        for subscriber in self.subscribers:
            subscriber(event)

    def close(self) -> None:
        for subscriber in self.subscribers:
            close = getattr(subscriber, "close", None)
            if close:
                close()
