"""Renderers for machines and for logs: no colours, no progress bars.

- ``JsonLinesRenderer`` (--json): one JSON object per event on stdout, so a
  pipe or cron job gets a machine-readable stream; progress ticks are thinned.
- ``PlainRenderer`` (no TTY, no --json): one log line per event on stderr,
  timestamped, readable in a log file; stdout stays for the final result.
Secrets are masked in both.
"""

from __future__ import annotations

import sys
import time
from datetime import datetime, timezone

from erpops.runbook import events as ev
from erpops.ui.output import to_json
from erpops.ui.text import amount_text

PROGRESS_INTERVAL = 1.0  # seconds between two progress lines of one step


class JsonLinesRenderer:
    def __init__(self, stream=None):
        self.stream = stream or sys.stdout
        self._last_progress: dict[str, float] = {}

    def __call__(self, event: ev.Event) -> None:
        if isinstance(event, ev.StepProgress) and not _due(self._last_progress, event):
            return
        doc = {"ts": datetime.fromtimestamp(event.ts, timezone.utc).isoformat(timespec="milliseconds")}
        doc.update(event.to_dict())
        self.stream.write(to_json(doc) + "\n")
        self.stream.flush()


class PlainRenderer:
    def __init__(self, stream=None):
        self.stream = stream or sys.stderr
        self._last_progress: dict[str, float] = {}

    def __call__(self, event: ev.Event) -> None:
        line = self.format(event)
        if line is None:
            return
        from erpops.secrets import REDACTOR

        stamp = datetime.fromtimestamp(event.ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        self.stream.write(f"{stamp} {REDACTOR.redact(line)}\n")
        self.stream.flush()

    def format(self, event: ev.Event) -> str | None:
        if isinstance(event, ev.RunStarted):
            mode = " [tabletop]" if event.tabletop else ""
            return f"run {event.run_id}{mode}: {event.runbook} on {event.environment or 'no environment'} started"
        if isinstance(event, ev.RunResumed):
            return f"run {event.run_id}: resumed at step {event.from_step}"
        if isinstance(event, ev.StepStarted):
            attempt = f" (attempt {event.attempt})" if event.attempt > 1 else ""
            return f"{event.step}: {event.uses} started{attempt}"
        if isinstance(event, ev.StepOutput):
            return f"{event.step}| {event.line}"
        if isinstance(event, ev.StepProgress):
            if not _due(self._last_progress, event):
                return None
            return f"{event.step}: {amount_text(event.done, event.total, event.unit)}"
        if isinstance(event, ev.StepRetried):
            return f"{event.step}: attempt {event.attempt} failed ({event.kind}: {event.error}); retrying in {event.delay:g}s"
        if isinstance(event, ev.StepFinished):
            return f"{event.step}: ok in {event.duration:.1f}s"
        if isinstance(event, ev.StepFailed):
            tail = " (continuing: continue_on_error)" if event.continued else ""
            return f"{event.step}: FAILED ({event.kind}): {event.error}{tail}"
        if isinstance(event, ev.StepSkipped):
            return f"{event.step}: skipped ({event.reason})"
        if isinstance(event, ev.Gate):
            return f"{event.step}: gate {event.message!r}: {event.decision} by {event.by}"
        if isinstance(event, ev.Undo):
            err = f": {event.error}" if event.error else ""
            return f"{event.step}: undo with {event.uses} {event.status}{err}"
        if isinstance(event, ev.RunFinished):
            err = f" at step {event.failed_step}: {event.error}" if event.error else ""
            return f"run {event.run_id}: {event.status}{err} ({event.duration:.1f}s)"
        return None


def _due(last: dict[str, float], event: ev.StepProgress) -> bool:
    now = time.monotonic()
    finished = event.total is not None and event.done >= event.total
    if not finished and now - last.get(event.step, 0.0) < PROGRESS_INTERVAL:
        return False
    last[event.step] = now
    return True

