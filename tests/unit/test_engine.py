"""The engine, run in-process against real actions: retries, timeouts that kill
process trees, rollback order, on_failure, continue_on_error, when:, gates."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from erpops.errors import ErpopsError, Refused
from erpops.runbook import runner
from erpops.runbook.confirm import ConfirmPolicy
from erpops.runbook.state import Checkpoint, run_dir


def write(tmp_path: Path, text: str, name: str = "rb") -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(text)
    return path


def run(path: Path, *, inputs=None, yes=True, **kw):
    """(checkpoint, events, error) of one run."""
    events: list = []
    request = runner.RunRequest(runbook=str(path), inputs=inputs or {}, policy=ConfirmPolicy(yes=yes), **kw)
    try:
        return runner.start(request, [events.append]), events, None
    except ErpopsError as exc:
        runs = sorted(run_dir("x").parent.glob("*"))
        cp = Checkpoint.load(runs[-1]) if runs else None
        return cp, events, exc


def types(events, step=None):
    return [e.type for e in events if step is None or getattr(e, "step", None) == step]


def test_retries_with_exponential_backoff_until_success(tmp_path):
    path = write(tmp_path, """
name: flaky
steps:
  - id: call
    uses: control.fail
    with: {message: connection reset, kind: transient, times: 2}
    retries: {count: 3, backoff: 50ms, on: [transient]}
""")
    cp, events, err = run(path)
    assert err is None and cp.status == "succeeded"
    retried = [e for e in events if e.type == "step_retried"]
    assert [e.delay for e in retried] == [0.05, 0.1]
    assert cp.steps["call"].attempts == 3 and cp.steps["call"].outputs == {"attempts": 3}


def test_retries_only_on_the_named_kinds(tmp_path):
    path = write(tmp_path, """
name: picky
steps:
  - id: call
    uses: control.fail
    with: {message: bad request, kind: error}
    retries: {count: 5, backoff: 10ms, on: [transient]}
""")
    cp, events, err = run(path)
    assert cp.status == "failed" and "bad request" in err.message
    assert "step_retried" not in types(events)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def test_timeout_kills_the_whole_process_tree(tmp_path):
    pidfile = tmp_path / "grandchild.pid"
    path = write(tmp_path, f"""
name: slow
steps:
  - id: hang
    uses: shell.run
    with:
      command: "sleep 60 & echo $! > {pidfile}; wait"
    timeout: 1s
""")
    start = time.monotonic()
    cp, events, err = run(path)
    assert time.monotonic() - start < 10
    assert cp.status == "failed" and cp.steps["hang"].kind == "timeout"
    assert "timed out after 1s" in err.message
    pid = int(pidfile.read_text())
    deadline = time.monotonic() + 5
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(pid), "the grandchild survived the timeout"


def test_failure_undoes_completed_steps_in_reverse_then_on_failure(tmp_path):
    journal = tmp_path / "journal"
    def step(name, undo=True):
        text = f"""
  - id: {name}
    uses: shell.run
    with: {{command: "echo do {name} >> {journal}"}}"""
        if undo:
            text += f"""
    undo: {{uses: shell.run, with: {{command: "echo undo {name} >> {journal}"}}}}"""
        return text
    path = write(tmp_path, "name: rollback\nsteps:" + step("a") + step("b", undo=False) + step("c") + f"""
  - id: boom
    uses: control.fail
    with: {{message: disk full}}
  - id: never
    uses: shell.run
    with: {{command: "echo never >> {journal}"}}
on_failure:
  - uses: shell.run
    with: {{command: "echo cleanup >> {journal}"}}
  - uses: control.fail
    with: {{message: second failure}}
""")
    cp, events, err = run(path)
    assert journal.read_text().split("\n")[:-1] == ["do a", "do b", "do c", "undo c", "undo a", "cleanup"]
    assert cp.status == "failed" and cp.failed_step == "boom"
    assert "disk full" in err.message and "second failure" not in err.message
    assert cp.steps["a"].status == "undone" and cp.steps["b"].status == "succeeded"
    assert "never" not in cp.steps


def test_continue_on_error_and_when(tmp_path):
    path = write(tmp_path, """
name: tolerant
inputs:
  verify: {type: bool, default: false}
steps:
  - id: optional
    uses: control.fail
    continue_on_error: true
  - id: verify
    uses: control.wait
    with: {duration: 10ms}
    when: inputs.verify
  - id: last
    uses: shell.run
    with: {command: "echo {{ run.id }}"}
outputs:
  run: "{{ steps.last.outputs.stdout }}"
""")
    cp, events, err = run(path)
    assert err is None and cp.status == "succeeded"
    assert cp.steps["optional"].status == "failed"
    assert cp.steps["verify"].status == "skipped"
    assert cp.outputs == {"run": cp.run_id}
    cp2, _, _ = run(path, inputs={"verify": "true"})
    assert cp2.steps["verify"].status == "succeeded"


def test_runtime_template_error_fails_the_step(tmp_path):
    path = write(tmp_path, """
name: tmpl
steps:
  - id: a
    uses: control.wait
    with: {duration: 10ms}
  - id: b
    uses: control.wait
    with: {duration: "{{ steps.a.outputs.nothing }}"}
""")
    cp, events, err = run(path)
    assert cp.status == "failed" and cp.steps["b"].kind == "template"
    assert "'nothing' is not defined" in err.message


def test_gate_without_tty_or_yes_is_refused_before_the_first_step(tmp_path):
    marker = tmp_path / "touched"
    path = write(tmp_path, f"""
name: gated
steps:
  - id: prepare
    uses: shell.run
    with: {{command: "touch {marker}"}}
  - id: go
    uses: control.wait
    with: {{duration: 10ms}}
    confirm: really go?
""")
    cp, events, err = run(path, yes=False)
    assert isinstance(err, Refused) and err.exit_code == 3
    assert events == [] and not marker.exists()
    cp, events, err = run(path, yes=True)
    assert cp.status == "succeeded"
    gate = next(e for e in events if e.type == "gate")
    assert gate.decision == "approved" and gate.by == "--yes"


def test_destructive_step_needs_confirmation(tmp_path):
    path = write(tmp_path, """
name: wipe
steps:
  - id: drop
    uses: shell.run
    with: {command: "true"}
    risk: destructive
""")
    _, events, err = run(path, yes=False)
    assert isinstance(err, Refused) and "DESTRUCTIVE steps (drop)" in err.message
    assert events == []


def test_production_needs_confirm_env_with_yes():
    policy = ConfirmPolicy(yes=True)
    from erpops.runbook.plan import PlannedStep

    steps = [PlannedStep(id="drop", uses="shell.run", risk="DESTRUCTIVE")]
    with pytest.raises(Refused, match="production"):
        policy.preflight(steps, "prod", "production", "wipe")
    with pytest.raises(Refused, match="does not match"):
        ConfirmPolicy(yes=True, confirm_env="staging").preflight(steps, "prod", "production", "wipe")
    assert ConfirmPolicy(yes=True, confirm_env="prod").preflight(steps, "prod", "production", "wipe")
    assert ConfirmPolicy(yes=True).preflight(steps, "dev", "development", "wipe") == "--yes"


def test_checkpoint_after_every_step_and_resume_after_failure(tmp_path):
    flag = tmp_path / "flag"
    count = tmp_path / "count"
    path = write(tmp_path, f"""
name: resumable
inputs:
  label: {{type: string, default: one}}
steps:
  - id: first
    uses: shell.run
    with: {{command: "echo {{{{ inputs.label }}}} >> {count}"}}
  - id: needs_flag
    uses: shell.run
    with: {{command: "test -f {flag}"}}
  - id: after
    uses: shell.run
    with: {{command: "echo after {{{{ steps.first.outputs.exit_code }}}} >> {count}"}}
""")
    cp, _, err = run(path, inputs={"label": "pinned"})
    assert cp.status == "failed" and cp.failed_step == "needs_flag"
    saved = json.loads((run_dir(cp.run_id) / "checkpoint.json").read_text())
    assert saved["steps"]["first"]["status"] == "succeeded" and saved["inputs"] == {"label": "pinned"}
    flag.touch()
    events: list = []
    done = runner.resume(cp.run_id, replan=False, policy=ConfirmPolicy(yes=True), subscribers=[events.append])
    assert done.status == "succeeded"
    assert count.read_text() == "pinned\nafter 0\n"  # first ran once; inputs pinned
    assert events[0].type == "run_resumed" and events[0].from_step == "needs_flag"


def test_resume_refuses_a_changed_runbook_unless_replan(tmp_path):
    flag = tmp_path / "flag"
    path = write(tmp_path, f"""
name: changing
steps:
  - id: needs_flag
    uses: shell.run
    with: {{command: "test -f {flag}"}}
""")
    cp, _, _ = run(path)
    path.write_text(path.read_text() + "description: edited\n")
    with pytest.raises(Refused, match="changed since run"):
        runner.resume(cp.run_id, replan=False, policy=ConfirmPolicy(yes=True), subscribers=[])
    flag.touch()
    done = runner.resume(cp.run_id, replan=True, policy=ConfirmPolicy(yes=True), subscribers=[])
    assert done.status == "succeeded"


def test_fragment_runs_with_its_own_inputs_and_outputs(tmp_path, monkeypatch):
    lib = tmp_path / "lib"
    lib.mkdir()
    (lib / "greet.yaml").write_text("""
name: greet
inputs:
  who: {type: string, required: true}
steps:
  - id: say
    uses: shell.run
    with: {command: "echo hello {{ inputs.who }}"}
outputs:
  said: "{{ steps.say.outputs.stdout }}"
""")
    monkeypatch.setenv("ERPOPS_RUNBOOKS", str(lib))
    path = write(tmp_path, """
name: caller
steps:
  - id: greet
    uses: runbook:greet
    with: {who: nord}
  - id: echo
    uses: shell.run
    with: {command: "echo got {{ steps.greet.outputs.said }}"}
""")
    cp, events, err = run(path)
    assert err is None, err
    assert cp.steps["greet.say"].status == "succeeded"
    assert cp.steps["echo"].outputs["stdout"] == "got hello nord"


def test_canary_secret_is_redacted_everywhere(tmp_path, monkeypatch):
    canary = "canary-5ec7e7-value"
    monkeypatch.setenv("CANARY_TOKEN", canary)
    path = write(tmp_path, """
name: leaky
steps:
  - id: leak
    uses: shell.run
    with:
      command: 'echo "token is $TOKEN"; exit 3'
      secret_env: {TOKEN: "env:CANARY_TOKEN"}
""")
    cp, events, err = run(path)
    assert cp.status == "failed"
    directory = run_dir(cp.run_id)
    for name in ("audit.jsonl", "checkpoint.json"):
        text = (directory / name).read_text()
        assert canary not in text, name
    assert "token is ***" in (directory / "audit.jsonl").read_text()
    assert canary not in err.render()


def test_resume_dry_run_touches_nothing(tmp_path):
    flag = tmp_path / "flag"
    path = write(tmp_path, f"""
name: preview
steps:
  - id: one
    uses: control.wait
    with: {{duration: 1ms}}
  - id: two
    uses: shell.run
    with: {{command: "test -f {flag}"}}
  - id: three
    uses: control.wait
    with: {{duration: 1ms}}
""")
    cp, _, _ = run(path)
    before = (run_dir(cp.run_id) / "audit.jsonl").read_text()
    preview = runner.resume_preview(cp.run_id, replan=False)
    assert preview["from_step"] == "two" and preview["remaining"] == ["two", "three"]
    assert (run_dir(cp.run_id) / "audit.jsonl").read_text() == before


def test_tabletop_delay_beyond_timeout_and_skip_decision(tmp_path):
    path = write(tmp_path, """
name: drill
steps:
  - id: dump
    uses: shell.run
    with: {command: "exit 1"}
    timeout: 10m
  - id: after
    uses: http.check
    with: {url: "http://127.0.0.1:9/"}
""")
    cp, events, err = run(path, tabletop=True, injections={"dump": "delay:1h"})
    assert cp.status == "failed" and cp.steps["dump"].kind == "timeout"
    assert "injected delay 1h" in cp.error
    decision = next(e for e in events if e.type == "gate")
    assert (decision.decision, decision.by) == ("abort", "default (no TTY)")

    request = runner.RunRequest(runbook=str(path), tabletop=True, injections={"dump": "fail"},
                                policy=ConfirmPolicy(decisions={"dump": "skip"}))
    events: list = []
    done = runner.start(request, [events.append])
    assert done.status == "succeeded" and done.steps["after"].outputs["status"] == 200
    assert any(e.type == "step_output" and "would GET http://127.0.0.1:9/" in e.line for e in events)


def test_declined_gate_fails_the_run_with_exit_3_and_rolls_back(tmp_path, monkeypatch):
    journal = tmp_path / "journal"
    path = write(tmp_path, f"""
name: declined
steps:
  - id: prepare
    uses: shell.run
    with: {{command: "echo prepare >> {journal}"}}
    undo: {{uses: shell.run, with: {{command: "echo undo prepare >> {journal}"}}}}
  - id: ask
    uses: control.confirm
    with: {{message: "switch traffic now?"}}
""")
    import io
    import sys

    monkeypatch.setattr(sys, "stdin", io.StringIO("n\n"))
    request = runner.RunRequest(runbook=str(path), policy=ConfirmPolicy(interactive=True))
    events: list = []
    with pytest.raises(ErpopsError) as info:
        runner.start(request, [events.append])
    assert info.value.exit_code == 3 and "not approved: switch traffic now?" in info.value.message
    gate = next(e for e in events if e.type == "gate")
    assert gate.decision == "declined"
    assert journal.read_text() == "prepare\nundo prepare\n"


def test_tabletop_reads_missing_outputs_as_placeholders(tmp_path):
    path = write(tmp_path, """
name: chain
steps:
  - id: fail_free
    uses: control.fail
    with: {times: 0}
    continue_on_error: true
  - id: wait
    uses: control.wait
    with: {duration: 1h}
  - id: use
    uses: shell.run
    with: {command: "echo {{ steps.wait.outputs.nothing_simulated }}"}
""")
    cp, events, err = run(path, tabletop=True)
    assert err is None, err
    lines = [e.line for e in events if e.type == "step_output"]
    assert "[tabletop] would run on local: /bin/sh -c 'echo <steps.wait.outputs.nothing_simulated>'" in lines, lines
