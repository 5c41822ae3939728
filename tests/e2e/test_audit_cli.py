"""`erpops keys ...` and `erpops audit ...` as an operator and an auditor use them.

Run logs are written in this process through AuditLog (the engine's writer);
the installed erpops command reads them from the same isolated home.
"""

from __future__ import annotations

import json
import shutil
import stat

import pytest

from erpops.audit.keys import default_key_path, init_key, load_signer
from erpops.audit.log import AuditLog
from erpops.paths import runs_dir
from erpops.secrets import Secret

pytestmark = pytest.mark.e2e


def record_run(run_id: str, *, seal: bool = True, signer=None, secret: Secret | None = None) -> AuditLog:
    log = AuditLog.start(runs_dir() / run_id, run_id, signer or load_signer(None))
    log.append("run_started", {"runbook": "backup", "runbook_digest": "ab" * 32, "environment": "lab",
                               "inputs": {"tenant": "store42", "password": secret or "none"}})
    log.append("step_started", {"step": "dump"})
    log.append("step_output", {"step": "dump", "line": f"pg_dump: connecting with {secret.reveal() if secret else '-'}"})
    log.append("step_finished", {"step": "dump"})
    log.append("gate", {"step": "commit", "by": "alice", "decision": "approved", "typed": "lab"})
    log.append("run_finished", {"status": "succeeded"})
    if seal:
        log.seal()
    return log


def test_keys_init_show_and_refusal(erpops):
    result = erpops("keys", "init")
    assert result.returncode == 0, result.output
    assert stat.S_IMODE(default_key_path().stat().st_mode) == 0o600
    again = erpops("keys", "init")
    assert again.returncode == 3 and "already exists" in again.stderr
    shown = erpops("keys", "show", "--json")
    doc = json.loads(shown.stdout)
    assert doc["key_id"].startswith("ed25519:") and doc["public_key"].startswith("ed25519 ")
    assert doc["key_id"] in erpops("keys", "show").stdout
    assert erpops("keys", "init", "--force").returncode == 0
    assert json.loads(erpops("keys", "show", "--json").stdout)["key_id"] != doc["key_id"]


def test_verify_latest_all_and_json(erpops):
    for n in range(3):
        record_run(f"20261203T10000{n}Z-backup-a{n}")
    latest = erpops("audit", "verify")
    assert latest.returncode == 0, latest.output
    assert "20261203T100002Z-backup-a2" in latest.stdout and "✓" in latest.stdout
    every = erpops("audit", "verify", "--all")
    assert every.returncode == 0 and "3 runs, 21 records, chain intact" in every.stdout
    doc = json.loads(erpops("audit", "verify", "--all", "--json").stdout)
    assert doc["valid"] and doc["runs"] == 3


def test_altered_record_is_named_and_exits_4(erpops):
    for n in range(2):
        record_run(f"20261203T10000{n}Z-backup-a{n}")
    path = runs_dir() / "20261203T100000Z-backup-a0" / "audit.jsonl"
    lines = path.read_text().splitlines(keepends=True)
    lines[3] = lines[3].replace('"dump"', '"dumq"')
    path.write_text("".join(lines))
    result = erpops("audit", "verify", "--all")
    assert result.returncode == 4
    assert "✗ run 20261203T100000Z-backup-a0: record 3 (line 4) altered (hash mismatch)" in result.stdout
    assert "records 4–6 follow a broken link" in result.stdout
    assert "1 run failed verification" in result.stdout
    doc = json.loads(erpops("audit", "verify", "20261203T100000Z-backup-a0", "--json").stdout)
    assert doc["reports"][0]["findings"][0]["seq"] == 3


def test_deleted_run_is_named(erpops):
    for n in range(3):
        record_run(f"20261203T10000{n}Z-backup-a{n}")
    shutil.rmtree(runs_dir() / "20261203T100001Z-backup-a1")
    result = erpops("audit", "verify", "--all")
    assert result.returncode == 4
    assert "run 20261203T100001Z-backup-a1 is missing (deleted)" in result.stdout


def test_auditor_copy_with_public_keys_only(erpops, tmp_path):
    alice = init_key(tmp_path / "alice.key")
    for n in range(2):
        record_run(f"20261203T10000{n}Z-backup-a{n}", signer=alice)
    copy = tmp_path / "copy"
    shutil.copytree(runs_dir(), copy)
    untrusted = erpops("audit", "verify", "--all", "--runs-dir", str(copy))
    assert untrusted.returncode == 4 and "untrusted key" in untrusted.stdout
    trusted = erpops("audit", "verify", "--all", "--runs-dir", str(copy), "--trusted-key", str(tmp_path / "alice.key.pub"))
    assert trusted.returncode == 0, trusted.output
    one = erpops("audit", "verify", str(copy / "20261203T100000Z-backup-a0"), "--trusted-key", str(tmp_path / "alice.key.pub"))
    assert one.returncode == 0, one.output


def test_inventory_trusted_keys(erpops, tmp_path):
    alice = init_key(tmp_path / "alice.key")
    record_run("20261203T100000Z-backup-a0", signer=alice)
    (tmp_path / "keys").mkdir()
    shutil.copy(tmp_path / "alice.key.pub", tmp_path / "keys" / "alice.pub")
    (tmp_path / "erpops.yaml").write_text("version: 1\naudit:\n  trusted_keys: [keys/alice.pub]\n")
    result = erpops("audit", "verify")
    assert result.returncode == 0, result.output


def test_unsealed_run_is_incomplete_not_tampered(erpops):
    record_run("20261203T100000Z-backup-a0")
    record_run("20261203T100001Z-backup-a1", seal=False)
    result = erpops("audit", "verify", "--all")
    assert result.returncode == 0, result.output
    assert "incomplete" in result.stdout and "failed verification" not in result.stdout
    strict = erpops("audit", "verify", "--all", "--strict")
    assert strict.returncode == 4


def test_list_and_show_with_secrets_masked(erpops):
    canary = Secret("canary-e2e-hunter2-secret")
    record_run("20261203T100000Z-backup-a0", secret=canary)
    listed = erpops("audit", "list")
    assert listed.returncode == 0
    row = next(line for line in listed.stdout.splitlines() if line.startswith("20261203T100000Z-backup-a0"))
    assert "backup" in row and "succeeded" in row and "yes" in row
    shown = erpops("audit", "show", "20261203T100000Z")
    assert shown.returncode == 0, shown.output
    for expected in ("runbook   backup", "dump", "approved by alice, typed 'lab'", "sealed by ed25519:", '"password": "***"'):
        assert expected in shown.stdout
    assert canary.reveal() not in shown.output
    assert canary.reveal() not in erpops("audit", "show", "20261203T100000Z", "--json").stdout
    missing = erpops("audit", "show", "nope")
    assert missing.returncode == 2 and "no run 'nope'" in missing.stderr


def test_nothing_to_verify_or_show_is_a_clear_usage_error(erpops):
    empty = erpops("audit", "verify")
    assert empty.returncode == 2 and "no run logs" in empty.stderr
    assert erpops("audit", "list").stdout.strip() == "no runs recorded yet"
    nokey = erpops("keys", "show")
    assert nokey.returncode == 2 and "erpops keys init" in nokey.stderr


def test_help_lists_the_commands(erpops):
    out = erpops("--help").stdout
    assert "audit" in out and "keys" in out
    assert "--trusted-key" in erpops("audit", "verify", "--help").stdout
