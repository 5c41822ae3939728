"""Turns engine events into records of the run's signed, hash-chained log.

The log itself (hashing, redaction, sealing) belongs to erpops.audit; this
subscriber only decides what is recorded: every event except progress ticks,
and at most OUTPUT_LINES_PER_STEP output lines per step (a command's full
output is not an audit trail; its exit and the step's result are).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from erpops.runbook import events as ev

OUTPUT_LINES_PER_STEP = 200
NOT_RECORDED = (ev.StepProgress,)


def default_signer():
    from erpops.audit.keys import load_signer

    audit_config = None
    try:
        from erpops.config import load_inventory

        audit_config = getattr(load_inventory(), "audit", None)
    except ImportError:
        audit_config = None
    return load_signer(audit_config)


class AuditSubscriber:
    def __init__(self, run_dir: Path, run_id: str, *, tabletop: bool = False,
                 signer_factory: Callable[[], Any] = default_signer):
        self.run_dir = run_dir
        self.run_id = run_id
        self.tabletop = tabletop
        self._signer_factory = signer_factory
        self._log = None
        self._sealed = False
        self._lines: dict[str, int] = {}

    def __call__(self, event: ev.Event) -> None:
        if isinstance(event, NOT_RECORDED):
            return
        if isinstance(event, ev.RunStarted):
            from erpops.audit.log import AuditLog

            self._log = AuditLog.start(self.run_dir, self.run_id, self._signer_factory(), tabletop=self.tabletop)
        elif isinstance(event, ev.RunResumed):
            from erpops.audit.log import AuditLog

            self._log = AuditLog.resume(self.run_dir, self._signer_factory())
        if self._log is None:
            return
        data = event.to_dict()
        kind = data.pop("type")
        if isinstance(event, ev.StepOutput):
            count = self._lines[event.step] = self._lines.get(event.step, 0) + 1
            if count > OUTPUT_LINES_PER_STEP:
                if count == OUTPUT_LINES_PER_STEP + 1:
                    self._log.append(kind, {"step": event.step, "line": "", "truncated": True})
                return
        if isinstance(event, ev.RunStarted):
            data.pop("run_id", None)  # every record carries run_id already
        self._log.append(kind, data)
        if isinstance(event, ev.RunFinished):
            self._log.seal()
            self._sealed = True

    def close(self) -> None:
        """Seal whatever was written, even when the engine itself crashed."""
        if self._log is not None and not self._sealed:
            self._log.seal()
            self._sealed = True
