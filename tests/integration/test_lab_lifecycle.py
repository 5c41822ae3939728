"""Private labs for what the shared one must not suffer: `lab down` leaves no
process behind, `lab up` restarts a stopped lab, and the load generator keeps
writing across a failover without losing an acknowledged write."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from erpops.config import load_inventory
from erpops.lab import runas
from erpops.lab.state import set_primary

pytestmark = pytest.mark.integration

PG_CTL = "/usr/lib/postgresql/15/bin/pg_ctl"


def pg_ctl(*args: str) -> None:
    """Act on a lab server behind erpops's back, as its OS user (a crash, a reboot, an operator)."""
    runas.run([PG_CTL, *args], what="pg_ctl")


def test_down_stops_every_process_and_removes_the_lab(make_lab, process_probe):
    lab = make_lab("--scale", "0.01", "--redis")
    state = lab.state()
    postmasters = [n["pid"] for n in state["nodes"]]
    pids = postmasters + [c for p in postmasters for c in process_probe.children_of(p)] + [state["redis"]["pid"]]
    assert len(process_probe.pids_alive(pids)) == len(pids) >= 6  # 2 postmasters, their helpers, redis
    pg_root = Path(state["pg_root"])

    result = lab.erpops("lab", "down")

    assert result.returncode == 0, result.output
    assert "stopped lab-primary" in result.stdout and "stopped redis" in result.stdout
    deadline = time.monotonic() + 5
    while process_probe.pids_alive(pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert process_probe.pids_alive(pids) == []
    assert process_probe.processes_under(lab.root) == [] and process_probe.processes_under(pg_root) == []
    assert not lab.root.exists() and not pg_root.exists()
    again = lab.erpops("lab", "down")
    assert again.returncode == 0 and "nothing to do" in again.stderr


def test_up_restarts_a_stopped_lab_with_its_data(make_lab):
    lab = make_lab("--scale", "0.01", "--no-replica")
    node = lab.node("lab-primary")
    with lab.connect() as conn:
        orders = conn.execute("SELECT count(*) FROM pos_order").fetchone()[0]
    pg_ctl("stop", "-D", node["data_dir"], "-m", "fast", "-w", "-s")  # as after a reboot
    status = json.loads(lab.erpops("lab", "status", "--json").stdout)
    assert status["nodes"][0]["state"] == "stopped" and status["databases"] == {}

    result = lab.erpops("lab", "up", "--scale", "0.01", "--no-replica")

    assert result.returncode == 0, result.output
    assert "started it again" in result.stderr
    assert lab.node("lab-primary")["pid"] != node["pid"]
    with lab.connect() as conn:
        assert conn.execute("SELECT count(*) FROM pos_order").fetchone()[0] == orders


def test_load_keeps_writing_across_a_failover(make_lab, tmp_path, monkeypatch):
    lab = make_lab("--scale", "0.01")
    ledger = tmp_path / "ledger.jsonl"
    load = lab.popen("lab", "load", "--rate", "30", "--duration", "5s", "--ledger", str(ledger), "--json")
    try:
        deadline = time.monotonic() + 20
        while (not ledger.exists() or len(ledger.read_text().splitlines()) < 20) and time.monotonic() < deadline:
            time.sleep(0.1)
        before = len(ledger.read_text().splitlines())
        assert before >= 20, "the load never got going"
        pg_ctl("stop", "-D", lab.node("lab-primary")["data_dir"], "-m", "immediate", "-s")  # the primary dies
        pg_ctl("promote", "-D", lab.node("lab-replica")["data_dir"], "-w", "-s")
        out, err = load.communicate(timeout=60)
    finally:
        if load.poll() is None:
            load.kill()
            load.wait()
    assert load.returncode == 0, out + err
    summary = json.loads(out)
    assert summary["primaries"] == ["lab-primary", "lab-replica"]
    assert summary["reconnects"] >= 1 and summary["errors"] >= 1
    assert summary["committed"] == len(ledger.read_text().splitlines()) > before
    assert "reconnected to lab-replica" in err

    check = lab.erpops("lab", "ledger-check", str(ledger), "--json")
    assert check.returncode == 0, check.output
    report = json.loads(check.stdout)
    assert report["primary"] == "lab-replica" and report["transactions"] == summary["committed"]
    # Not a second primary: `up` refuses to restart the old one behind the new one's back.
    again = lab.erpops("lab", "up", "--scale", "0.01")
    assert again.returncode == 0 and "not starting lab-primary" in again.stderr

    # What a failover records: the environment now names the promoted node as primary.
    set_primary("lab-replica", root=lab.root)
    monkeypatch.setenv("ERPOPS_HOME", str(lab.home))
    env = load_inventory().environment("lab")
    assert env.postgres.primary.name == "lab-replica"
    assert [r.name for r in env.postgres.replicas] == ["lab-primary"]
