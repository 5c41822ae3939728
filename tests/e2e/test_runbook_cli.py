"""`erpops runbook ...` as a user runs it: their own runbooks, JSON for cron,
plans that touch nothing, refusals, interruption and resume, tabletop exercises."""

from __future__ import annotations

import http.server
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest


pytestmark = pytest.mark.e2e

DATA = Path(__file__).parents[1] / "data" / "runbooks"
ERPOPS_BIN = Path(sys.executable).parent / "erpops"


@pytest.fixture
def http_server():
    """A real HTTP server on loopback that counts the requests it answers."""
    hits: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            hits.append(self.path)
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", hits
    server.shutdown()
    server.server_close()


def runs_dir(home: Path) -> Path:
    return home / "data" / "state" / "runs"


def only_run(home: Path) -> str:
    runs = [p.name for p in runs_dir(home).iterdir()]
    assert len(runs) == 1, runs
    return runs[0]


def test_user_runbook_is_listed_runs_and_verifies(erpops, tmp_path, isolated_home, http_server):
    url, hits = http_server
    mine = tmp_path / "my-runbooks"
    mine.mkdir()
    shutil.copy(DATA / "nightly-check.yaml", mine)
    env = {"ERPOPS_RUNBOOKS": str(mine)}
    listed = erpops("runbook", "list", env=env)
    assert listed.returncode == 0 and "nightly-check" in listed.stdout and "user" in listed.stdout

    note = tmp_path / "note.txt"
    result = erpops("runbook", "run", "nightly-check", "-i", f"url={url}/health", "-i", f"note={note}", env=env)
    assert result.returncode == 0, result.output
    run_id = only_run(isolated_home)
    assert f"run {run_id} succeeded" in result.stdout
    assert "probe: ok" in result.stderr  # plain log lines on stderr without a TTY
    assert note.read_text() == f"probe {run_id}: 200\n" and hits == ["/health"]
    verified = erpops("audit", "verify", run_id)
    assert verified.returncode == 0, verified.output


def test_json_lines_for_machines(erpops, tmp_path, http_server):
    url, _ = http_server
    result = erpops("runbook", "run", str(DATA / "nightly-check.yaml"), "-i", f"url={url}/", "--json")
    assert result.returncode == 0, result.output
    docs = [json.loads(line) for line in result.stdout.splitlines()]
    assert docs[0]["type"] == "run_started" and docs[-1]["type"] == "run_finished"
    assert docs[-1]["status"] == "succeeded" and docs[-1]["outputs"] == {"status": 200}


def test_plan_and_dry_run_touch_nothing(erpops, tmp_path, isolated_home):
    marker = tmp_path / "touched"
    path = tmp_path / "wipe.yaml"
    path.write_text(f"""
name: wipe
inputs:
  target: {{type: string, default: {marker}}}
steps:
  - id: make
    uses: shell.run
    with: {{command: "touch {{{{ inputs.target }}}}"}}
  - id: drop
    uses: shell.run
    with: {{command: "rm -f {{{{ inputs.target }}}} {{{{ steps.make.outputs.exit_code }}}}"}}
    risk: destructive
""")
    plan = erpops("runbook", "plan", str(path))
    assert plan.returncode == 0, plan.output
    assert f"touch {marker}" in plan.stdout
    assert "drop: shell.run [DESTRUCTIVE]  DESTRUCTIVE" in plan.stdout
    assert "<steps.make.outputs.exit_code>" in plan.stdout
    dry = erpops("runbook", "run", str(path), "--dry-run", "--json")
    assert dry.returncode == 0 and json.loads(dry.stdout)["destructive"] == ["drop"]
    assert not marker.exists()
    assert not runs_dir(isolated_home).exists() or not any(runs_dir(isolated_home).iterdir())


def test_destructive_without_tty_or_yes_exits_3_before_anything(erpops, tmp_path, isolated_home):
    marker = tmp_path / "touched"
    path = tmp_path / "wipe.yaml"
    path.write_text(f"""
name: wipe
steps:
  - id: first
    uses: shell.run
    with: {{command: "touch {marker}"}}
  - id: drop
    uses: shell.run
    with: {{command: "true"}}
    risk: destructive
""")
    refused = erpops("runbook", "run", str(path))
    assert refused.returncode == 3, refused.output
    assert "DESTRUCTIVE steps (drop)" in refused.stderr and "--yes" in refused.stderr
    assert not marker.exists() and "Traceback" not in refused.output
    assert erpops("runbook", "run", str(path), "--yes").returncode == 0
    assert marker.exists()


def test_production_wants_confirm_env_with_yes(erpops, tmp_path):
    (tmp_path / "erpops.yaml").write_text("""
version: 1
environments:
  prod:
    tier: production
    postgres:
      primary: {name: db1, host: 127.0.0.1, port: 5432}
""")
    path = tmp_path / "wipe.yaml"
    path.write_text("""
name: wipe
steps:
  - id: drop
    uses: shell.run
    with: {command: "echo {{ env.name }} {{ env.tier }}"}
    risk: destructive
""")
    assert erpops("runbook", "run", str(path), "-e", "prod", "--yes").returncode == 3
    wrong = erpops("runbook", "run", str(path), "-e", "prod", "--yes", "--confirm-env", "staging")
    assert wrong.returncode == 3 and "does not match" in wrong.stderr
    ok = erpops("runbook", "run", str(path), "-e", "prod", "--yes", "--confirm-env", "prod")
    assert ok.returncode == 0, ok.output
    assert "drop| prod production" in ok.stderr


def _wait_for(path: Path, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not (path.exists() and path.read_text().strip()):
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.05)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def test_sigterm_interrupts_kills_the_child_seals_and_resume_finishes(erpops, tmp_path, isolated_home):
    pidfile, release, after = tmp_path / "child.pid", tmp_path / "release", tmp_path / "after"
    path = tmp_path / "long.yaml"
    path.write_text(f"""
name: long
steps:
  - id: before
    uses: shell.run
    with: {{command: "true"}}
  - id: hold
    uses: shell.run
    with: {{command: "test -f {release} && exit 0; sleep 60 & echo $! > {pidfile}; wait"}}
  - id: after
    uses: shell.run
    with: {{command: "touch {after}"}}
""")
    proc = subprocess.Popen([str(ERPOPS_BIN), "runbook", "run", str(path)], stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ))
    try:
        _wait_for(pidfile)
        child = int(pidfile.read_text())
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert "interrupted" in err and "erpops runbook resume" in err
    deadline = time.monotonic() + 5
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(child), "sleep survived the interrupt"
    run_id = only_run(isolated_home)
    checkpoint = json.loads((runs_dir(isolated_home) / run_id / "checkpoint.json").read_text())
    assert checkpoint["status"] == "interrupted" and checkpoint["steps"]["hold"]["status"] == "interrupted"
    assert not after.exists()
    assert erpops("audit", "verify", run_id).returncode == 0  # sealed

    release.touch()
    resumed = erpops("runbook", "resume", run_id)
    assert resumed.returncode == 0, resumed.output
    assert "resumed at step hold" in resumed.stderr and "before: shell.run started" not in resumed.stderr
    assert after.exists()
    verified = erpops("audit", "verify", run_id)
    assert verified.returncode == 0, verified.output


def test_tabletop_touches_no_real_system(erpops, tmp_path, isolated_home):
    marker = tmp_path / "touched"
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.settimeout(0.2)
    accepted: list = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            accepted.append(conn)
            conn.close()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    port = listener.getsockname()[1]
    path = tmp_path / "exercise.yaml"
    path.write_text(f"""
name: exercise
steps:
  - id: touch
    uses: shell.run
    with: {{command: "touch {marker}"}}
  - id: dump
    uses: shell.run
    with: {{command: ["touch", "{marker}"]}}
    risk: destructive
  - id: probe
    uses: http.check
    with: {{url: "http://127.0.0.1:{port}/health"}}
    timeout: 5s
  - id: slow
    uses: control.wait
    with: {{duration: 1h}}
""")
    try:
        result = erpops("runbook", "run", str(path), "--tabletop", "--inject", "dump=fail",
                        "--inject", "probe=delay:2s", "--decide", "dump=retry")
    finally:
        stop.set()
        thread.join(timeout=5)
        listener.close()
    assert result.returncode == 0, result.output
    assert not marker.exists(), "tabletop ran a real command"
    assert accepted == [], "tabletop opened a network connection"
    assert "would run on local: touch" in result.stderr
    run_id = only_run(isolated_home)
    records = [json.loads(line) for line in (runs_dir(isolated_home) / run_id / "audit.jsonl").read_text().splitlines()]
    assert records[0]["data"]["tabletop"] is True
    decision = next(r for r in records if r["type"] == "gate")
    assert decision["data"]["step"] == "dump" and decision["data"]["decision"] == "retry"
    assert erpops("audit", "verify", run_id).returncode == 0


def test_actions_doc_is_current(erpops):
    result = erpops("runbook", "actions", "--markdown")
    committed = (Path(__file__).parents[2] / "docs" / "actions.md").read_text()
    assert result.stdout == committed, "docs/actions.md is stale: run scripts/gen_actions_doc.py"


def test_builtin_fragment_waits_for_a_service(erpops, tmp_path, http_server):
    url, hits = http_server
    path = tmp_path / "after-restart.yaml"
    path.write_text(f"""
name: after-restart
steps:
  - id: ready
    uses: runbook:wait-http
    with: {{url: "{url}/web/health", attempts: 3, interval: 100ms}}
  - id: report
    uses: shell.run
    with: {{command: "echo status {{{{ steps.ready.outputs.status }}}}"}}
""")
    result = erpops("runbook", "run", str(path))
    assert result.returncode == 0, result.output
    assert "report| status 200" in result.stderr and hits == ["/web/health"]
