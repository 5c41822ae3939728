"""What the operator sees: the live view, JSON lines, plain log lines; secrets masked."""

from __future__ import annotations

import io
import json

from erpops.runbook import events as ev
from erpops.secrets import Secret
from erpops.ui.renderer_json import JsonLinesRenderer, PlainRenderer

SECRET = Secret("s3cr3t-canary-value", "env:X")


def story():
    return [
        ev.RunStarted(run_id="r1", runbook="backup", environment="lab",
                      steps=[{"id": "dump", "uses": "shell.run", "risk": "WRITE"}]),
        ev.StepStarted(step="dump", uses="shell.run", with_={"command": "echo s3cr3t-canary-value"}),
        ev.StepOutput(step="dump", line="password=s3cr3t-canary-value"),
        ev.StepProgress(step="dump", done=50, total=100, unit="MB"),
        ev.StepRetried(step="dump", attempt=1, kind="transient", error="connection reset", delay=2),
        ev.StepFinished(step="dump", outputs={"size": 1}, duration=1.5),
        ev.RunFinished(run_id="r1", status="succeeded", duration=2.0),
    ]


def test_json_lines_one_object_per_event_secrets_masked():
    out = io.StringIO()
    render = JsonLinesRenderer(out)
    for event in story():
        render(event)
    docs = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [d["type"] for d in docs][0] == "run_started" and docs[-1]["type"] == "run_finished"
    assert docs[1]["with"] == {"command": "echo ***"}
    assert "s3cr3t-canary-value" not in out.getvalue()


def test_plain_lines_are_readable_and_masked():
    out = io.StringIO()
    render = PlainRenderer(out)
    for event in story():
        render(event)
    text = out.getvalue()
    assert "dump| password=***" in text
    assert "retrying in 2s" in text and "dump: ok in 1.5s" in text
    assert "s3cr3t-canary-value" not in text and "\x1b[" not in text


def test_rich_live_view_shows_steps_progress_and_results():
    from rich.console import Console

    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=True, width=120, color_system=None)
    from erpops.ui.renderer_rich import RichRenderer

    render = RichRenderer(console=console)
    for event in story()[:4]:
        render(event)
    live = render._render()
    console.print(live)
    assert "50/100 MB" in buffer.getvalue()
    for event in story()[4:]:
        render(event)
    render.close()
    text = buffer.getvalue()
    assert "backup" in text and "✓" in text and "succeeded" in text
    assert "s3cr3t-canary-value" not in text
