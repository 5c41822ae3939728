"""Verifier cases beyond the property tests: crashes, offline copies, replays."""

from __future__ import annotations

import json
import shutil

from erpops.audit.chain import ChainState
from erpops.audit.keys import load_signer, trusted_keys
from erpops.audit.log import AuditLog
from erpops.audit.verify_chain import verify_runs
from erpops.paths import runs_dir


def run(run_id: str, seal: bool = True) -> AuditLog:
    log = AuditLog.start(runs_dir() / run_id, run_id, load_signer(None))
    log.append("run_started", {"runbook": "backup"})
    log.append("step_started", {"step": "dump"})
    log.append("run_finished", {"status": "succeeded"})
    if seal:
        log.seal()
    return log


def statuses(result) -> dict:
    return {r.run_id: r.status for r in result.reports}


def test_unsealed_latest_run_of_an_offline_copy_is_incomplete(tmp_path):
    run("a")
    run("b", seal=False)
    copy = tmp_path / "copy"
    shutil.copytree(runs_dir(), copy)
    result = verify_runs(copy, trusted_keys(), chain=None)
    assert statuses(result) == {"a": "ok", "b": "incomplete"} and result.valid


def test_a_crash_mid_write_recorded_by_the_next_run_is_incomplete():
    crashed = run("a", seal=False)
    with open(crashed.path, "ab") as fh:
        fh.write(b'{"data":{"step":"du')  # the record being written when the power went
    # The writer is this (living) test process; make its marker name a process that is gone.
    state = ChainState()
    marker = state.open_dir / "a.json"
    doc = json.loads(marker.read_text())
    marker.write_text(json.dumps({**doc, "pid": 2**22 + 1}))  # above pid_max's default: never alive
    nxt = AuditLog.start(runs_dir() / "b", "b", load_signer(None))
    assert nxt.append("run_started", {})["data"]["previous_run_unsealed"] == "a"
    nxt.seal()
    result = verify_runs(runs_dir(), trusted_keys(), chain=state)
    assert statuses(result) == {"a": "incomplete", "b": "ok"} and result.valid
    report = next(r for r in result.reports if r.run_id == "a")
    assert "cut short" in report.findings[0].message


def test_bytes_appended_after_the_seal_are_tampering():
    log = run("a")
    with open(log.path, "ab") as fh:
        fh.write(b"x")
    result = verify_runs(runs_dir(), trusted_keys(), chain=ChainState())
    report = result.reports[0]
    assert report.status == "tampered" and report.findings[0].line == 5


def test_a_copied_run_is_reported():
    run("a")
    shutil.copytree(runs_dir() / "a", runs_dir() / "a-copy")
    result = verify_runs(runs_dir(), trusted_keys(), chain=ChainState())
    assert not result.valid
    assert [f.kind for f in result.chain_errors] == ["duplicate_run"]


def test_a_record_spliced_from_another_run_is_named():
    a, b = run("a"), run("b")
    lines_a = a.path.read_bytes().splitlines(keepends=True)
    lines_b = b.path.read_bytes().splitlines(keepends=True)
    lines_a[1] = lines_b[1]
    a.path.write_bytes(b"".join(lines_a))
    report = next(r for r in verify_runs(runs_dir(), trusted_keys(), chain=ChainState()).reports if r.run_id == "a")
    assert report.status == "tampered"
    assert ("foreign_record", 2) in [(f.kind, f.line) for f in report.findings]


def test_a_resumed_run_cut_after_its_first_seal_is_truncated():
    log = run("a")  # run_started, step_started, run_finished, seal
    again = AuditLog.resume(log.run_dir, load_signer(None))
    again.append("run_resumed", {"from_step": "dump"})
    again.append("run_finished", {"status": "succeeded"})
    again.seal()
    run("b")  # names a's last seal: the cut shows even without local state
    lines = log.path.read_bytes().splitlines(keepends=True)
    log.path.write_bytes(b"".join(lines[:4]))  # still ends with a valid seal
    for chain in (ChainState(), None):  # this machine, and an auditor's copy without its state
        report = next(r for r in verify_runs(runs_dir(), trusted_keys(), chain=chain).reports if r.run_id == "a")
        assert report.status == "tampered"
        assert [(f.kind, f.seq, f.other_run) for f in report.findings] == [("truncated_tail", 4, "b")]


def test_the_head_run_cut_after_its_first_seal_is_truncated():
    log = run("a")
    again = AuditLog.resume(log.run_dir, load_signer(None))
    again.append("run_resumed", {"from_step": "dump"})
    again.seal()
    lines = log.path.read_bytes().splitlines(keepends=True)
    log.path.write_bytes(b"".join(lines[:4]))
    report = verify_runs(runs_dir(), trusted_keys(), chain=ChainState()).reports[0]
    assert report.status == "tampered"
    assert [(f.kind, f.seq) for f in report.findings] == [("truncated_tail", 4)]
