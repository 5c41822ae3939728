"""The shape of one audit record and the two hashes every party must agree on.

A record is one line: the canonical JSON of
``{seq, ts, run_id, type, data, prev, hash}``. ``hash`` is SHA-256 (lower-case
hex) over the canonical JSON of the record without ``hash``; ``prev`` is the
``hash`` of the record before it, or GENESIS for the first record of a run.
A seal signs ``SEAL_CONTEXT + prev`` — the hash of the last record it seals.
"""

from __future__ import annotations

import hashlib

from erpops.audit.canonical import canonical

GENESIS = "0" * 64
SEAL_CONTEXT = b"erpops-audit-seal-v1:"
FIELDS = ("seq", "ts", "run_id", "type", "data", "prev", "hash")
LOG_NAME = "audit.jsonl"

RECORD_TYPES = (
    "run_started", "step_started", "step_output", "step_retried", "step_finished",
    "step_failed", "step_skipped", "gate", "undo", "run_resumed", "run_finished", "seal",
)


def record_hash(record: dict) -> str:
    """SHA-256 hex over the canonical JSON of ``record`` without its ``hash``."""
    body = {k: v for k, v in record.items() if k != "hash"}
    return hashlib.sha256(canonical(body)).hexdigest()


def seal_message(last_hash: str) -> bytes:
    """The bytes a seal signs: a fixed context string, then the sealed hash."""
    return SEAL_CONTEXT + last_hash.encode("ascii")


def encode_line(record: dict) -> bytes:
    """A record as it is written: canonical JSON and one newline."""
    return canonical(record) + b"\n"
