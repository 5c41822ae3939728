"""The reference verifier printed in docs/audit-log.md verifies real logs and
rejects tampered ones, so the documented format is the written format."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from erpops.audit.keys import load_signer
from erpops.audit.log import AuditLog
from erpops.paths import runs_dir

DOC = Path(__file__).resolve().parents[2] / "docs" / "audit-log.md"


@pytest.fixture(scope="module")
def reference():
    text = DOC.read_text()
    code = re.search(r"<!-- reference-verifier -->\n```python\n(.*?)```", text, re.S).group(1)
    assert len(code.splitlines()) <= 40, "the reference verifier should stay short"
    namespace: dict = {}
    exec(compile(code, str(DOC), "exec"), namespace)
    return namespace["verify_run"]


def two_runs():
    signer = load_signer(None)
    paths = []
    for n, data in enumerate([{"x": "é\n\t\"\U0001f600", "\ufb01": 1, "\U0001f600": [1.5, 2**60, None]},
                              {"status": "ok"}]):
        log = AuditLog.start(runs_dir() / f"r{n}", f"r{n}", signer)
        log.append("run_started", {"runbook": "backup"})
        log.append("step_output", data)
        log.append("run_finished", {"status": "succeeded"})
        log.seal()
        paths.append(log.path)
    return signer, paths


def test_reference_verifier_accepts_real_logs_and_the_chain(reference):
    import json

    signer, paths = two_runs()
    seals = [reference(p, {signer.key_id}) for p in paths]
    second_start = json.loads(paths[1].read_text().splitlines()[0])
    assert second_start["data"]["prev_run_seal"] == seals[0]


def test_reference_verifier_rejects_tampering(reference):
    signer, paths = two_runs()
    path = paths[0]
    original = path.read_bytes()
    path.write_bytes(original.replace(b'"backup"', b'"backuq"'))
    with pytest.raises(ValueError, match="hash mismatch"):
        reference(path, {signer.key_id})
    path.write_bytes(original[:-1])
    with pytest.raises(ValueError, match="truncated"):
        reference(path, {signer.key_id})
    path.write_bytes(original)
    with pytest.raises(ValueError, match="untrusted"):
        reference(path, {"ed25519:0000000000000000"})
