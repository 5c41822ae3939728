"""The writer of one run's audit log: ``<run_dir>/audit.jsonl``.

Each ``append`` redacts the data (every secret resolved so far becomes ***),
chains the record to the previous one, writes one canonical JSON line and
fsyncs it, so a crash loses at most the record being written. ``seal`` signs
the last hash with the operator's Ed25519 key and moves the run-to-run chain
head to this run. The format is specified in docs/audit-log.md.
"""

from __future__ import annotations

import base64
import getpass
import json
import os
import socket
import threading
from datetime import datetime, timezone
from pathlib import Path

from erpops.audit.canonical import normalize
from erpops.audit.chain import ChainState
from erpops.audit.keys import Signer
from erpops.audit.record import GENESIS, LOG_NAME, encode_line, record_hash, seal_message
from erpops.errors import OperationFailed
from erpops.secrets import REDACTOR


def utc_now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def operator_identity() -> dict:
    """Who runs this: the declared operator ($ERPOPS_OPERATOR) and the OS user."""
    try:
        os_user = getpass.getuser()
    except (KeyError, OSError):
        os_user = str(os.getuid())
    return {"operator": os.environ.get("ERPOPS_OPERATOR") or os_user, "os_user": os_user,
            "host": socket.gethostname()}


class AuditLog:
    """Append-only, hash-chained, sealed log of one run."""

    def __init__(self, run_dir: Path, run_id: str, signer: Signer, chain: ChainState, *,
                 tabletop: bool = False, seq: int = 0, last_hash: str = GENESIS, sealed: bool = False):
        self.run_dir = Path(run_dir)
        self.run_id = run_id
        self.signer = signer
        self.chain = chain
        self.tabletop = tabletop
        self._seq = seq
        self._last_hash = last_hash
        self._sealed = sealed
        self._last_seal: dict | None = None
        self._lock = threading.Lock()
        self._prev_run: dict | None = None
        self._abandoned: list = []

    @property
    def path(self) -> Path:
        return self.run_dir / LOG_NAME

    @property
    def sealed(self) -> bool:
        return self._sealed

    @classmethod
    def start(cls, run_dir: Path, run_id: str, signer: Signer, *, tabletop: bool = False,
              chain: ChainState | None = None) -> "AuditLog":
        """Prepare a new run's log; nothing is written until the first append."""
        chain = chain or ChainState()
        log = cls(run_dir, run_id, signer, chain, tabletop=tabletop)
        if log.path.exists() and log.path.stat().st_size:
            raise OperationFailed(f"run {run_id} already has an audit log at {log.path}",
                                  hint="continue it with AuditLog.resume, or use a new run id")
        log._prev_run = chain.head()
        log._abandoned = chain.abandoned_runs(exclude=run_id)
        return log

    @classmethod
    def resume(cls, run_dir: Path, signer: Signer, *, chain: ChainState | None = None) -> "AuditLog":
        """Reopen an existing log (sealed or not) to continue the same run."""
        path = Path(run_dir) / LOG_NAME
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise OperationFailed(f"cannot resume the audit log {path}: {exc.strerror}") from None
        if not data.endswith(b"\n"):
            raise OperationFailed(f"the audit log {path} ends with a partly written record",
                                  hint=f"inspect it with: erpops audit verify {path}")
        last = json.loads(data.splitlines()[-1])
        if record_hash(last) != last.get("hash"):
            raise OperationFailed(f"the last record of {path} does not match its hash",
                                  hint=f"inspect it with: erpops audit verify {path}")
        log = cls(run_dir, last["run_id"], signer, chain or ChainState(), seq=last["seq"] + 1,
                  last_hash=last["hash"], sealed=last["type"] == "seal")
        if log._sealed:
            log._last_seal = last
        return log

    def append(self, type: str, data: dict) -> dict:
        """Write one record; returns it as written (redacted)."""
        with self._lock:
            return self._append(type, data)

    def _append(self, type: str, data: dict, *, trusted: bool = False) -> dict:
        if type == "seal" and not trusted:
            raise ValueError("seal records are written by AuditLog.seal()")
        if self._seq == 0 and type != "run_started":
            raise ValueError(f"the first record of a run must be run_started, not {type}")
        if not isinstance(data, dict):
            raise TypeError("audit record data must be a dict")
        data = dict(data)
        if type == "run_started":
            data = self._run_started_data(data)
        # Redact before anything is hashed or written: a secret must never reach the disk.
        # (The seal's own fields are made here and hold no secret; redacting them could
        # only corrupt a signature that happens to contain a short secret's text.)
        clean = normalize(data) if trusted else REDACTOR.redact(normalize(data))
        record = {"seq": self._seq, "ts": utc_now(), "run_id": self.run_id, "type": type,
                  "data": clean, "prev": self._last_hash}
        record["hash"] = record_hash(record)
        first_write = not self.path.exists()
        self.run_dir.mkdir(parents=True, exist_ok=True)
        if self._seq == 0 or self._sealed:
            self.chain.mark_open(self.run_id, self.run_dir)
        self._write(encode_line(record), sync_dir=first_write)
        if type == "run_started":
            for run in self._abandoned:
                self.chain.mark_closed(run.run_id)  # recorded now; the log carries the fact
        self._seq += 1
        self._last_hash = record["hash"]
        self._sealed = type == "seal"
        return record

    def _run_started_data(self, data: dict) -> dict:
        from erpops import __version__

        for key, value in [*operator_identity().items(), ("erpops_version", __version__)]:
            if not data.get(key):  # the engine's values win when it gives them
                data[key] = value
        data.setdefault("tabletop", self.tabletop)
        head = self._prev_run or {}
        data["prev_run_seal"] = head.get("seal_hash")
        data["prev_run_id"] = head.get("run_id")
        data["previous_run_unsealed"] = self._abandoned[-1].run_id if self._abandoned else None
        if len(self._abandoned) > 1:
            data["other_unsealed_runs"] = [r.run_id for r in self._abandoned[:-1]]
        return data

    def _write(self, line: bytes, *, sync_dir: bool) -> None:
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
        try:
            view = memoryview(line)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        if sync_dir:  # the new file's directory entry must survive a crash too
            dfd = os.open(self.run_dir, os.O_RDONLY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)

    def seal(self) -> dict:
        """Sign the last hash; idempotent. Returns the seal record ({} if nothing was written)."""
        with self._lock:
            if self._sealed and self._last_seal is not None:
                return self._last_seal
            if self._seq == 0:
                return {}  # no record, nothing to seal: the run never started its log
            signature = self.signer.sign(seal_message(self._last_hash))
            record = self._append("seal", {
                "key_id": self.signer.key_id,
                "public_key": base64.b64encode(self.signer.public_raw).decode("ascii"),
                "sealed_hash": self._last_hash,
                "sealed_seq": self._seq - 1,
                "signature": base64.b64encode(signature).decode("ascii"),
            }, trusted=True)
            self._last_seal = record
            self.chain.set_head(self.run_id, record["hash"])
            self.chain.mark_closed(self.run_id)
            return record
