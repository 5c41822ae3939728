"""The live view on a terminal: one line per step with a spinner while it
runs, a progress bar with throughput for actions that report progress, the
last output line, durations, and ✓/✗/↷ when steps end."""

from __future__ import annotations

import contextlib
import sys
import time

from erpops.runbook import events as ev
from erpops.ui.text import amount_text, rate_text

_MARKS = {"succeeded": "[green]✓[/]", "failed": "[red]✗[/]", "skipped": "[dim]↷[/]", "continued": "[yellow]![/]",
          "undone": "[yellow]↶[/]", "interrupted": "[red]■[/]"}


class RichRenderer:
    def __init__(self, console=None):
        from rich.console import Console
        from rich.live import Live

        self.console = console or Console(file=sys.stderr, highlight=False)
        self.steps: dict[str, dict] = {}
        self.order: list[str] = []
        self.title = ""
        self.live = Live(self._render(), console=self.console, refresh_per_second=8, transient=False)
        self.live.start()
        from erpops.ui.prompts import register_suspender

        register_suspender(self.suspended)

    @contextlib.contextmanager
    def suspended(self):
        """Stop redrawing while a human answers a question."""
        self.live.stop()
        try:
            yield
        finally:
            self.live.start()

    def _step(self, sid: str) -> dict:
        if sid not in self.steps:
            self.steps[sid] = {"status": "pending", "uses": "", "start": None, "duration": None, "line": "",
                               "done": None, "total": None, "unit": "", "rate": None, "note": ""}
            self.order.append(sid)
        return self.steps[sid]

    def __call__(self, event: ev.Event) -> None:
        from erpops.secrets import REDACTOR

        if isinstance(event, ev.RunStarted):
            mode = " [magenta]\\[tabletop][/]" if event.tabletop else ""
            self.title = f"[bold]{event.runbook}[/] on {event.environment or 'no environment'}  {event.run_id}{mode}"
            for s in event.steps:
                # on_failure steps appear only if they run
                if s.get("phase", "main") == "main":
                    self._step(s["id"])["uses"] = s["uses"]
        elif isinstance(event, ev.RunResumed):
            self.title = f"[bold]resume[/] {event.run_id} at {event.from_step}"
        elif isinstance(event, ev.StepStarted):
            s = self._step(event.step)
            s.update(status="running", uses=event.uses, start=time.monotonic(), note=(
                f"attempt {event.attempt}" if event.attempt > 1 else ("undo" if event.phase == "undo" else "")))
        elif isinstance(event, ev.StepOutput):
            self._step(event.step)["line"] = REDACTOR.redact(event.line)[-100:]
        elif isinstance(event, ev.StepProgress):
            s = self._step(event.step)
            elapsed = time.monotonic() - (s["start"] or time.monotonic())
            s.update(done=event.done, total=event.total, unit=event.unit,
                     rate=(event.done / elapsed) if elapsed > 0 else None)
        elif isinstance(event, ev.StepRetried):
            self._step(event.step)["note"] = f"retry in {event.delay:g}s: {REDACTOR.redact(event.error)}"
        elif isinstance(event, ev.StepFinished):
            self._step(event.step).update(status="succeeded", duration=event.duration, line="")
        elif isinstance(event, ev.StepFailed):
            self._step(event.step).update(status="continued" if event.continued else event.kind == "interrupted"
                                          and "interrupted" or "failed", duration=event.duration,
                                          line=REDACTOR.redact(event.error))
        elif isinstance(event, ev.StepSkipped):
            self._step(event.step).update(status="skipped", note=event.reason)
        elif isinstance(event, ev.Undo):
            s = self._step(event.step)
            if event.status == "succeeded":
                s["status"] = "undone"
            s["note"] = f"undo {event.status}"
        elif isinstance(event, ev.Gate):
            self._step(event.step)["note"] = f"{event.decision} by {event.by}"
        elif isinstance(event, ev.RunFinished):
            self.title += f"  — {event.status} in {event.duration:.1f}s"
        self.live.update(self._render())

    def _render(self):
        from rich.table import Table
        from rich.text import Text

        table = Table.grid(padding=(0, 1))
        table.add_row(Text.from_markup(self.title or ""))
        for sid in self.order:
            s = self.steps[sid]
            table.add_row(self._line(sid, s))
        return table

    def _line(self, sid: str, s: dict):
        from rich.spinner import Spinner
        from rich.table import Table
        from rich.text import Text

        row = Table.grid(padding=(0, 1))
        if s["status"] == "running":
            mark = Spinner("dots")
            elapsed = time.monotonic() - (s["start"] or time.monotonic())
            detail = f"{elapsed:.0f}s"
            if s["total"]:
                width = 24
                filled = int(width * min(1.0, (s["done"] or 0) / s["total"]))
                rate = f"  {rate_text(s['rate'], s['unit'])}" if s["rate"] else ""
                amount = amount_text(s["done"] or 0, s["total"], s["unit"])
                detail = f"{'━' * filled}{'╺' * (width - filled)} {amount}{rate}  {detail}"
        else:
            mark = Text.from_markup(_MARKS.get(s["status"], "[dim]·[/]"))
            detail = f"{s['duration']:.1f}s" if s["duration"] is not None else ""
        text = Text(f"{sid:<16} {s['uses']:<16} {detail}")
        extra = " ".join(x for x in (s["note"], s["line"]) if x)
        if extra:
            text.append(f"  {extra}", style="dim")
        row.add_row(mark, text)
        return row

    def close(self) -> None:
        from erpops.ui.prompts import unregister_suspender

        unregister_suspender(self.suspended)
        self.live.update(self._render())
        self.live.stop()
