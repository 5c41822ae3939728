"""Property tests: every kind of tampering, at random places in random logs, is
detected, and the finding names the record (or run) concerned.

Logs are written through the real AuditLog into a fresh directory per example,
with their own chain state, and verified with verify_runs as `audit verify` does.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from erpops.audit.canonical import canonical
from erpops.audit.chain import ChainState
from erpops.audit.keys import Signer, TrustedKey
from erpops.audit.log import AuditLog
from erpops.audit.record import record_hash
from erpops.audit.verify_chain import verify_runs

SIGNER = Signer(Ed25519PrivateKey.generate(), "test key")
INTRUDER = Signer(Ed25519PrivateKey.generate(), "intruder key")
TRUSTED = {SIGNER.key_id: TrustedKey(SIGNER.key_id, SIGNER.public_raw, "operator", "test")}

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6),
                    st.text(max_size=12), st.floats(allow_nan=False, width=32))
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6), inner, max_size=3)), max_leaves=6)
step_records = st.lists(st.tuples(
    st.sampled_from(["step_started", "step_output", "step_retried", "step_finished", "step_failed",
                     "step_skipped", "gate", "undo"]),
    st.dictionaries(st.text(min_size=1, max_size=8), values, max_size=3)), min_size=1, max_size=10)


class Workspace:
    def __init__(self, root: Path):
        self.runs = root / "runs"
        self.chain = ChainState(root / "state")
        self.count = 0

    def write_run(self, steps, signer=SIGNER, seal=True, resumed=False) -> Path:
        """A run; ``resumed``: interrupted, sealed, then resumed and sealed again (two seals)."""
        run_id = f"20261203T10{self.count:04d}Z-backup-{self.count:04x}"
        self.count += 1
        log = AuditLog.start(self.runs / run_id, run_id, signer, chain=self.chain)
        log.append("run_started", {"runbook": "backup", "environment": "lab", "inputs": {"tenant": "store42"}})
        for n, (kind, data) in enumerate(steps):
            log.append(kind, {"step": "dump", **data})
            if resumed and n == len(steps) // 2:
                log.append("run_finished", {"status": "interrupted"})
                log.seal()
                log = AuditLog.resume(log.run_dir, signer, chain=self.chain)
                log.append("run_resumed", {"from_step": "dump"})
        log.append("run_finished", {"status": "succeeded"})
        if seal:
            log.seal()
        return log.path

    def verify(self, trusted=TRUSTED):
        return verify_runs(self.runs, trusted, chain=self.chain)


def lines_of(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


def report_for(result, path: Path):
    return next(r for r in result.reports if r.path == path)


def errors(report):
    return [f for f in report.findings if f.severity == "error"]


def test_untampered_random_logs_verify(tmp_path):
    @SETTINGS
    @given(step_records, st.booleans())
    def check(steps, resumed):
        with tempfile.TemporaryDirectory(dir=tmp_path) as d:
            ws = Workspace(Path(d))
            path = ws.write_run(steps, resumed=resumed)
            result = ws.verify()
            assert result.valid and report_for(result, path).status == "ok", report_for(result, path).findings

    check()


def test_modified_byte_anywhere_is_detected_at_its_line(tmp_path):
    @SETTINGS
    @given(step_records, st.data(), st.booleans())
    def check(steps, data, resumed):
        with tempfile.TemporaryDirectory(dir=tmp_path) as d:
            ws = Workspace(Path(d))
            path = ws.write_run(steps, resumed=resumed)
            raw = bytearray(path.read_bytes())
            pos = data.draw(st.integers(0, len(raw) - 1), label="position")
            new = data.draw(st.integers(0, 255).filter(lambda b: b != raw[pos]), label="byte")
            line = raw[:pos].count(b"\n") + 1
            raw[pos] = new
            path.write_bytes(bytes(raw))
            report = report_for(ws.verify(), path)
            assert report.status == "tampered"
            assert any(f.line == line for f in errors(report)), (line, report.findings)

    check()


def test_deleted_record_is_named(tmp_path):
    @SETTINGS
    @given(step_records, st.data(), st.booleans())
    def check(steps, data, resumed):
        with tempfile.TemporaryDirectory(dir=tmp_path) as d:
            ws = Workspace(Path(d))
            path = ws.write_run(steps, resumed=resumed)
            lines = lines_of(path)
            k = data.draw(st.integers(0, len(lines) - 1), label="deleted seq")
            path.write_bytes(b"".join(lines[:k] + lines[k + 1:]))
            report = report_for(ws.verify(), path)
            assert report.status == "tampered"
            assert any(f.seq == k and f.kind in ("deleted", "truncated_tail") for f in errors(report)), (k, report.findings)

    check()


def test_swapped_records_are_named(tmp_path):
    @SETTINGS
    @given(step_records, st.data(), st.booleans())
    def check(steps, data, resumed):
        with tempfile.TemporaryDirectory(dir=tmp_path) as d:
            ws = Workspace(Path(d))
            path = ws.write_run(steps, resumed=resumed)
            lines = lines_of(path)
            i = data.draw(st.integers(0, len(lines) - 2), label="i")
            j = data.draw(st.integers(i + 1, len(lines) - 1), label="j")
            lines[i], lines[j] = lines[j], lines[i]
            path.write_bytes(b"".join(lines))
            report = report_for(ws.verify(), path)
            assert report.status == "tampered"
            assert any(f.kind == "out_of_order" and f.seq == i for f in errors(report)), (i, j, report.findings)

    check()


def test_truncated_tail_is_named(tmp_path):
    @SETTINGS
    @given(step_records, st.data(), st.booleans())
    def check(steps, data, resumed):
        with tempfile.TemporaryDirectory(dir=tmp_path) as d:
            ws = Workspace(Path(d))
            path = ws.write_run(steps, resumed=resumed)
            raw = path.read_bytes()
            cut = data.draw(st.integers(0, len(raw) - 1), label="cut at")
            path.write_bytes(raw[:cut])
            report = report_for(ws.verify(), path)
            assert report.status == "tampered"
            first_lost = raw[:cut].count(b"\n")
            assert any(f.kind == "truncated_tail" and f.seq == first_lost for f in errors(report)), report.findings

    check()


def test_truncated_run_is_detected_from_the_next_run_alone(tmp_path):
    """An auditor's copy has no local chain state: the later run gives the truncation away."""
    @SETTINGS
    @given(step_records, st.data())
    def check(steps, data):
        with tempfile.TemporaryDirectory(dir=tmp_path) as d:
            ws = Workspace(Path(d))
            path = ws.write_run(steps)
            ws.write_run(steps[:1])
            lines = lines_of(path)
            keep = data.draw(st.integers(1, len(lines) - 1), label="lines kept")
            path.write_bytes(b"".join(lines[:keep]))
            report = report_for(verify_runs(ws.runs, TRUSTED, chain=None), path)
            assert report.status == "tampered"
            assert any(f.kind == "truncated_tail" and f.seq == keep for f in errors(report)), report.findings

    check()


def test_seal_by_untrusted_key_is_named(tmp_path):
    @SETTINGS
    @given(step_records)
    def check(steps):
        with tempfile.TemporaryDirectory(dir=tmp_path) as d:
            ws = Workspace(Path(d))
            path = ws.write_run(steps, signer=INTRUDER)
            seal_seq = len(lines_of(path)) - 1
            report = report_for(ws.verify(), path)
            assert report.status == "tampered"
            assert [(f.kind, f.seq) for f in errors(report)] == [("untrusted_key", seal_seq)]

    check()


def test_rehashed_forgery_breaks_the_next_link_or_the_seal(tmp_path):
    """An attacker who recomputes hashes still cannot forge the seal."""
    @SETTINGS
    @given(step_records, st.data(), st.booleans())
    def check(steps, data, rewrite_rest):
        with tempfile.TemporaryDirectory(dir=tmp_path) as d:
            ws = Workspace(Path(d))
            path = ws.write_run(steps)
            records = [json.loads(x) for x in lines_of(path)]
            k = data.draw(st.integers(0, len(records) - 2), label="forged seq")
            records[k]["data"]["forged"] = True
            for n in range(k, len(records) if rewrite_rest else k + 1):
                if n > k:
                    records[n]["prev"] = records[n - 1]["hash"]
                records[n]["hash"] = record_hash(records[n])
            path.write_bytes(b"".join(canonical(r) + b"\n" for r in records))
            report = report_for(ws.verify(), path)
            assert report.status == "tampered"
            named = [(f.kind, f.seq) for f in errors(report)]
            expected = ("bad_signature", len(records) - 1) if rewrite_rest else ("broken_link", k + 1)
            assert expected in named, (k, named)

    check()


def test_deleted_whole_run_is_named(tmp_path):
    @settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(st.integers(2, 5), st.data())
    def check(n_runs, data):
        with tempfile.TemporaryDirectory(dir=tmp_path) as d:
            ws = Workspace(Path(d))
            paths = [ws.write_run([("step_started", {})]) for _ in range(n_runs)]
            victim = data.draw(st.integers(0, n_runs - 1), label="deleted run")
            gone = paths[victim].parent.name
            paths[victim].unlink()
            paths[victim].parent.rmdir()
            result = ws.verify()
            assert not result.valid
            assert any(gone in (f.other_run, f.run_id) and f.severity == "error" for f in result.chain_findings), \
                result.chain_findings

    check()
