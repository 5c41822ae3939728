"""AuditLog: records as written, redaction before writing, seals, resume, crashes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from erpops.audit.chain import ChainState
from erpops.audit.keys import load_signer, trusted_keys
from erpops.audit.log import AuditLog
from erpops.audit.verify_chain import verify_runs
from erpops.paths import runs_dir
from erpops.secrets import Secret


def start(run_id: str, **kw) -> AuditLog:
    return AuditLog.start(runs_dir() / run_id, run_id, load_signer(None), **kw)


def records(log: AuditLog) -> list[dict]:
    return [json.loads(line) for line in log.path.read_text().splitlines()]


def verify():
    return verify_runs(runs_dir(), trusted_keys(), chain=ChainState())


def test_records_are_chained_and_sealed():
    log = start("r1")
    assert not log.path.exists(), "start must not write"
    log.append("run_started", {"runbook": "backup"})
    log.append("step_started", {"step": "dump"})
    log.append("run_finished", {"status": "succeeded"})
    seal = log.seal()
    assert log.seal() == seal, "seal is idempotent"
    recs = records(log)
    assert [r["seq"] for r in recs] == [0, 1, 2, 3]
    assert [r["type"] for r in recs] == ["run_started", "step_started", "run_finished", "seal"]
    assert recs[0]["prev"] == "0" * 64
    assert all(b["prev"] == a["hash"] for a, b in zip(recs, recs[1:]))
    assert seal["data"]["key_id"] == load_signer(None).key_id
    assert seal["data"]["sealed_hash"] == recs[2]["hash"]
    started = recs[0]["data"]
    assert started["prev_run_seal"] is None and started["previous_run_unsealed"] is None
    assert started["os_user"] and started["host"] and started["erpops_version"]
    assert ChainState().head() == {**ChainState().head(), "run_id": "r1", "seal_hash": seal["hash"]}
    assert verify().valid


def test_operator_comes_from_erpops_operator(monkeypatch):
    monkeypatch.setenv("ERPOPS_OPERATOR", "alice@example.com")
    log = start("r1")
    assert log.append("run_started", {})["data"]["operator"] == "alice@example.com"


def test_first_record_must_be_run_started_and_seal_is_reserved():
    log = start("r1")
    with pytest.raises(ValueError):
        log.append("step_started", {})
    log.append("run_started", {})
    with pytest.raises(ValueError):
        log.append("seal", {})


def test_next_run_names_the_previous_seal():
    first = start("r1")
    first.append("run_started", {})
    seal = first.seal()
    second = start("r2")
    data = second.append("run_started", {})["data"]
    assert (data["prev_run_seal"], data["prev_run_id"]) == (seal["hash"], "r1")


def test_canary_secrets_never_reach_the_file():
    canary = Secret("canary-7f3a9c-topsecret")
    other = Secret("canary-pw-Zq81")

    class Boom(Exception):
        pass

    class Opaque:
        def __str__(self):
            return f"connected with password={other.reveal()}"

    log = start("r1")
    log.append("run_started", {"inputs": {"password": canary, "dsn": f"postgres://u:{canary.reveal()}@db/x",
                                          "list": [canary.reveal(), ("t", other.reveal())]}})
    log.append("step_output", {"step": "dump", "line": f"PGPASSWORD={canary.reveal()} pg_dump",
                               "stderr": f"FATAL: password {other.reveal()!r} rejected"})
    log.append("step_failed", {"step": "dump", "error": str(Boom(f"auth failed for {canary.reveal()}"))})
    log.append("step_retried", {"step": "dump", "nested": {"deeper": {canary.reveal(): Opaque()}}})
    log.append("gate", {"typed": other.reveal(), "who": "alice"})
    log.append("run_finished", {"status": "failed", "message": other.reveal() * 2})
    log.seal()
    raw = log.path.read_bytes()
    for secret in (canary, other):
        assert secret.reveal().encode() not in raw
    assert b"***" in raw
    assert verify().valid


def test_resume_continues_seq_and_seals_again():
    log = start("r1")
    log.append("run_started", {})
    log.append("run_finished", {"status": "interrupted"})
    log.seal()
    again = AuditLog.resume(log.run_dir, load_signer(None))
    assert again.sealed
    again.append("run_resumed", {"from_step": "dump"})
    again.append("run_finished", {"status": "succeeded"})
    again.seal()
    recs = records(log)
    assert [r["type"] for r in recs] == ["run_started", "run_finished", "seal", "run_resumed", "run_finished", "seal"]
    assert [r["seq"] for r in recs] == list(range(6))
    assert ChainState().head()["seal_hash"] == recs[-1]["hash"]
    assert verify().valid


def test_start_refuses_an_existing_log():
    log = start("r1")
    log.append("run_started", {})
    with pytest.raises(Exception, match="already has an audit log"):
        start("r1")


CRASHER = textwrap.dedent("""
    import os, signal, sys
    from erpops.audit.log import AuditLog
    from erpops.audit.keys import load_signer
    from erpops.paths import runs_dir
    run_id = sys.argv[1]
    log = AuditLog.start(runs_dir() / run_id, run_id, load_signer(None))
    log.append("run_started", {"runbook": "backup"})
    log.append("step_started", {"step": "dump"})
    os.kill(os.getpid(), signal.SIGKILL)
""")


def test_kill_9_leaves_an_incomplete_run_that_the_next_run_records():
    done = start("r0")
    done.append("run_started", {})
    done.seal()
    proc = subprocess.run([sys.executable, "-c", CRASHER, "r1-crashed"], env=os.environ.copy())
    assert proc.returncode == -9
    result = verify()
    crashed = next(r for r in result.reports if r.run_id == "r1-crashed")
    assert crashed.status == "incomplete" and result.valid
    nxt = start("r2")
    data = nxt.append("run_started", {})["data"]
    assert data["previous_run_unsealed"] == "r1-crashed"
    assert data["prev_run_id"] == "r0"
    nxt.seal()
    result = verify()
    crashed = next(r for r in result.reports if r.run_id == "r1-crashed")
    assert crashed.status == "incomplete"
    assert "recorded as left unsealed by run r2" in crashed.findings[0].message
    assert result.valid


def test_a_run_still_writing_is_not_reported_unsealed_by_a_concurrent_start():
    running = start("r1")
    running.append("run_started", {})  # this process is alive: the run is in progress
    other = start("r2")
    assert other.append("run_started", {})["data"]["previous_run_unsealed"] is None
