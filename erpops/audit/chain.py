"""The run-to-run chain: which run was sealed last, and which runs are still open.

Kept in ``state_dir()/audit/``:

- ``HEAD``: ``{"run_id": ..., "seal_hash": ...}`` of the last sealed run. The
  next run's ``run_started`` names that seal, so deleting a whole run breaks
  the chain where its successor points at it.
- ``open/<run_id>.json``: written when a run's first record is written,
  removed when it is sealed. A marker whose process is gone is a run left
  unsealed (kill -9, power loss); the next run records it in ``run_started``
  (``previous_run_unsealed``) and removes the marker.
"""

from __future__ import annotations

import json
import os
import socket
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from erpops.paths import state_dir


@dataclass(frozen=True)
class OpenRun:
    run_id: str
    run_dir: str
    pid: int
    host: str
    started: str

    def alive(self) -> bool:
        """True while the process that opened the run may still be writing it."""
        if self.host != socket.gethostname():
            return False
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True


def _write_atomic(path: Path, doc: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w") as fh:
        json.dump(doc, fh, sort_keys=True)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


class ChainState:
    """The chain head and open-run markers of one machine (or one test)."""

    def __init__(self, root: Path | None = None):
        self.root = Path(root) if root is not None else state_dir() / "audit"

    @property
    def head_path(self) -> Path:
        return self.root / "HEAD"

    @property
    def open_dir(self) -> Path:
        return self.root / "open"

    def head(self) -> dict | None:
        try:
            doc = json.loads(self.head_path.read_text())
        except (OSError, ValueError):
            return None
        return doc if isinstance(doc, dict) and doc.get("seal_hash") else None

    def set_head(self, run_id: str, seal_hash: str) -> None:
        _write_atomic(self.head_path, {"run_id": run_id, "seal_hash": seal_hash,
                                       "updated": datetime.now(timezone.utc).isoformat()})

    def mark_open(self, run_id: str, run_dir: Path) -> None:
        _write_atomic(self.open_dir / f"{run_id}.json", {
            "run_id": run_id, "run_dir": str(run_dir), "pid": os.getpid(),
            "host": socket.gethostname(), "started": datetime.now(timezone.utc).isoformat()})

    def mark_closed(self, run_id: str) -> None:
        try:
            (self.open_dir / f"{run_id}.json").unlink()
        except FileNotFoundError:
            pass

    def open_runs(self) -> list[OpenRun]:
        runs = []
        if not self.open_dir.is_dir():
            return runs
        for path in sorted(self.open_dir.glob("*.json")):
            try:
                doc = json.loads(path.read_text())
                runs.append(OpenRun(doc["run_id"], doc["run_dir"], int(doc["pid"]), doc["host"], doc["started"]))
            except (OSError, ValueError, KeyError, TypeError):
                continue  # a marker half-written by a crash says nothing reliable
        return sorted(runs, key=lambda r: r.started)

    def abandoned_runs(self, exclude: str | None = None) -> list[OpenRun]:
        """Open runs whose writer is gone: left unsealed."""
        return [r for r in self.open_runs() if r.run_id != exclude and not r.alive()]
