"""Run ids, run directories and checkpoints.

A run lives in ``runs_dir()/<run_id>/``: ``audit.jsonl`` (the signed log) and
``checkpoint.json``, rewritten atomically after every step. The checkpoint
pins what ``runbook resume`` needs: the runbook's path and digest, the
inputs, the environment, each step's status and outputs.
"""

from __future__ import annotations

import json
import os
import secrets
import tempfile
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from erpops.errors import UsageError

DONE = "succeeded"


def new_run_id(runbook: str, now: datetime | None = None) -> str:
    """Sortable: ``20261203T101502Z-<runbook>-<4 hex>``."""
    now = now or datetime.now(timezone.utc)
    return f"{now.strftime('%Y%m%dT%H%M%SZ')}-{runbook}-{secrets.token_hex(2)}"


def run_dir(run_id: str) -> Path:
    from erpops.paths import runs_dir

    return runs_dir() / run_id


@dataclass
class StepState:
    status: str = "pending"  # pending | running | succeeded | failed | skipped | undone | interrupted
    outputs: dict = field(default_factory=dict)
    error: str | None = None
    kind: str | None = None
    attempts: int = 0
    started_at: str | None = None
    finished_at: str | None = None


@dataclass
class Checkpoint:
    run_id: str
    runbook: str
    runbook_path: str
    runbook_digest: str
    inputs: dict
    environment: str | None
    operator: str
    started_at: str
    tabletop: bool = False
    status: str = "running"  # running | succeeded | failed | interrupted
    error: str | None = None
    failed_step: str | None = None
    steps: dict[str, StepState] = field(default_factory=dict)
    outputs: dict = field(default_factory=dict)
    resumes: list[dict] = field(default_factory=list)

    def step(self, step_id: str) -> StepState:
        return self.steps.setdefault(step_id, StepState())

    def save(self, directory: Path) -> None:
        """Atomic: a crash leaves the previous checkpoint or the new one, never half of one."""
        directory.mkdir(parents=True, exist_ok=True)
        from erpops.secrets import REDACTOR

        data = REDACTOR.redact(asdict(self))  # step outputs and errors may echo a secret
        fd, tmp = tempfile.mkstemp(prefix=".checkpoint.", dir=directory)
        with os.fdopen(fd, "w") as fh:
            json.dump(data, fh, indent=2, default=str)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, directory / "checkpoint.json")

    @classmethod
    def load(cls, directory: Path) -> "Checkpoint":
        path = directory / "checkpoint.json"
        try:
            data: dict[str, Any] = json.loads(path.read_text())
        except FileNotFoundError:
            raise UsageError(f"no run {directory.name!r}: {path} does not exist",
                             hint="list runs with: erpops audit list") from None
        except json.JSONDecodeError as exc:
            raise UsageError(f"checkpoint {path} is damaged: {exc}") from None
        data["steps"] = {k: StepState(**v) for k, v in data.get("steps", {}).items()}
        return cls(**data)


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")
