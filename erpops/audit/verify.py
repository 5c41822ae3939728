"""Verify one run's audit log file: every line, every link, every seal.

The result is a RunReport with findings that name the record concerned
(``seq`` and file ``line``). Whether a log that simply stops without a seal is
*incomplete* (a crash) or *tampered* (a truncated tail) cannot be told from the
file alone; verify_chain.py decides that with the other runs and the local
chain state, using the ``unsealed`` facts recorded here.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from pathlib import Path

from erpops.audit.canonical import NotCanonical, canonical
from erpops.audit.keys import TrustedKey, key_id
from erpops.audit.record import GENESIS, record_hash, seal_message

ERROR, INCOMPLETE, WARNING = "error", "incomplete", "warning"


@dataclass
class Finding:
    kind: str  # altered | deleted | out_of_order | broken_link | foreign_record | bad_signature
    #            untrusted_key | truncated_tail | missing_seal | chain_break | missing_run | ...
    message: str
    run_id: str
    seq: int | None = None
    line: int | None = None
    severity: str = ERROR
    other_run: str | None = None

    def to_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items()}


@dataclass
class RunReport:
    run_id: str
    path: Path
    records: int = 0
    findings: list[Finding] = field(default_factory=list)
    started: dict | None = None  # the run_started record, when it verified
    last: dict | None = None  # the last record that verified, in file order
    seal_hashes: list[str] = field(default_factory=list)
    seal_keys: list[str] = field(default_factory=list)
    ends_sealed: bool = False
    partial_tail: bool = False
    follow_broken: tuple[int, int] | None = None  # records after the first break

    @property
    def status(self) -> str:
        severities = {f.severity for f in self.findings}
        if ERROR in severities:
            return "tampered"
        return "incomplete" if INCOMPLETE in severities else "ok"

    @property
    def ts(self) -> str:
        return (self.started or {}).get("ts") or ""

    def to_dict(self) -> dict:
        started = (self.started or {}).get("data", {})
        return {"run_id": self.run_id, "path": str(self.path), "status": self.status,
                "records": self.records, "started": self.ts or None,
                "runbook": started.get("runbook"), "sealed": self.ends_sealed,
                "key_ids": sorted(set(self.seal_keys)),
                "findings": [f.to_dict() for f in self.findings]}


@dataclass
class _Line:
    number: int  # 1-based line number in the file
    record: dict | None  # None when the line does not verify on its own
    problem: str = ""


def _check_line(raw: bytes, number: int) -> _Line:
    """A line verifies on its own when it is a canonical record whose hash matches."""
    try:
        record = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return _Line(number, None, "altered (not valid JSON)")
    if not isinstance(record, dict) or set(record) != {"seq", "ts", "run_id", "type", "data", "prev", "hash"}:
        return _Line(number, None, "altered (not an audit record)")
    if not (type(record["seq"]) is int and all(isinstance(record[k], str) for k in ("ts", "run_id", "type", "prev", "hash"))
            and isinstance(record["data"], dict)):
        return _Line(number, None, "altered (a field has the wrong type)")
    try:
        if canonical(record) != raw:
            return _Line(number, None, "altered (not in canonical form)")
        if record_hash(record) != record["hash"]:
            return _Line(number, None, "altered (hash mismatch)")
    except NotCanonical:
        return _Line(number, None, "altered (not in canonical form)")
    return _Line(number, record)


def _seal_problem(record: dict, trusted: dict[str, TrustedKey]) -> tuple[str, str] | None:
    """(kind, message) when the seal does not hold, else None."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    data = record["data"]
    try:
        raw = base64.b64decode(data["public_key"], validate=True)
        signature = base64.b64decode(data["signature"], validate=True)
        public = Ed25519PublicKey.from_public_bytes(raw)
    except (KeyError, TypeError, ValueError, binascii.Error):
        return "bad_signature", "seal is malformed (public key or signature unreadable)"
    if data.get("key_id") != key_id(raw):
        return "bad_signature", "seal names a key id that is not its public key's fingerprint"
    if data.get("sealed_hash") != record["prev"]:
        return "bad_signature", "seal signs a hash other than the record it follows"
    try:
        public.verify(signature, seal_message(record["prev"]))
    except InvalidSignature:
        return "bad_signature", f"seal signature does not verify with key {data['key_id']}"
    if data["key_id"] not in trusted:
        return "untrusted_key", (f"sealed by untrusted key {data['key_id']} "
                                 "(not in audit.trusted_keys, the local keys or --trusted-key)")
    return None


def _link_problem(rec: dict, expected_seq: int, expected_prev: str, seqs: dict[int, int],
                  seen: set[int]) -> tuple[str, int, str] | None:
    """(kind, seq named, message) when ``rec`` does not follow its predecessor."""
    seq = rec["seq"]
    if seq == expected_seq and rec["prev"] == expected_prev:
        return None
    if seq == expected_seq:
        before = f"record {seq - 1}" if seq else "the start of the log"
        return "broken_link", seq, f"record {seq} does not link to {before} (a record was replaced or re-hashed)"
    if seq in seen:
        return "out_of_order", expected_seq, f"record {seq} appears a second time where record {expected_seq} belongs"
    if seq > expected_seq and not any(s in seqs for s in range(expected_seq, seq)):
        gone = f"record {expected_seq}" if seq == expected_seq + 1 else f"records {expected_seq}–{seq - 1}"
        return "deleted", expected_seq, f"{gone} deleted (seq jumps from {expected_seq - 1} to {seq})"
    return "out_of_order", expected_seq, (f"records out of order: record {seq} stands where record "
                                          f"{expected_seq} belongs (records swapped or moved)")


def verify_file(path: Path, trusted: dict[str, TrustedKey], run_id: str | None = None) -> RunReport:
    """Check one audit.jsonl on its own (no knowledge of other runs)."""
    path = Path(path)
    run_id = run_id or (path.parent.name if path.name == "audit.jsonl" else path.stem)
    report = RunReport(run_id, path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        report.findings.append(Finding("unreadable", f"cannot read {path}: {exc.strerror}", run_id))
        return report
    raw_lines = data.split(b"\n")
    tail = raw_lines.pop()  # bytes after the last newline: empty unless the tail was cut
    lines = [_check_line(raw, i) for i, raw in enumerate(raw_lines, 1)]
    valid = [ln.record for ln in lines if ln.record]
    if valid:
        report.run_id = run_id = valid[0]["run_id"]
    report.records = len(lines)
    seqs: dict[int, int] = {}
    for rec in valid:
        seqs[rec["seq"]] = seqs.get(rec["seq"], 0) + 1

    first_break: int | None = None
    seen: set[int] = set()
    previous: _Line | None = None
    for ln in lines:
        rec = ln.record
        position = ln.number - 1
        if rec is None:
            report.findings.append(Finding("altered", f"record {position} (line {ln.number}) {ln.problem}",
                                           run_id, seq=position, line=ln.number))
            first_break = position if first_break is None else first_break
            previous = ln
            continue
        if rec["run_id"] != run_id:
            report.findings.append(Finding("foreign_record", f"record at line {ln.number} belongs to run "
                                           f"{rec['run_id']}, not {run_id}", run_id, seq=position, line=ln.number))
            first_break = position if first_break is None else first_break
        elif previous is None or previous.record is not None:
            expected_seq = previous.record["seq"] + 1 if previous else 0
            expected_prev = previous.record["hash"] if previous else GENESIS
            problem = _link_problem(rec, expected_seq, expected_prev, seqs, seen)
            if problem and first_break is None:
                kind, named, message = problem
                report.findings.append(Finding(kind, message, run_id, seq=named, line=ln.number))
                first_break = position
        if rec["seq"] == 0 and rec["type"] == "run_started" and report.started is None:
            report.started = rec
        if rec["type"] == "seal":
            problem = _seal_problem(rec, trusted)
            if problem:
                report.findings.append(Finding(problem[0], f"record {rec['seq']} (line {ln.number}): {problem[1]}",
                                               run_id, seq=rec["seq"], line=ln.number))
            else:
                report.seal_keys.append(rec["data"]["key_id"])
            report.seal_hashes.append(rec["hash"])
        seen.add(rec["seq"])
        report.last = rec
        previous = ln

    if lines and lines[0].record is not None and lines[0].record["type"] != "run_started":
        report.findings.append(Finding("missing_start", "the first record is not run_started",
                                       run_id, seq=0, line=1))
    report.ends_sealed = bool(lines) and lines[-1].record is not None and lines[-1].record["type"] == "seal"
    report.partial_tail = bool(tail)
    if first_break is not None and first_break + 1 < len(lines):
        report.follow_broken = (first_break + 1, len(lines) - 1)
    return report
