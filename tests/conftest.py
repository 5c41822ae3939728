"""Shared test fixtures.

Every test runs with its own ERPOPS_HOME and XDG directories so that nothing
touches the user's real configuration, keys, lab or run logs. ``erpops`` runs
the installed console script in a subprocess, exactly as a user would.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ERPOPS_BIN = Path(sys.executable).parent / "erpops"


@pytest.fixture(autouse=True)
def isolated_home(tmp_path, monkeypatch):
    home = tmp_path / "erpops-home"
    for var, sub in (("ERPOPS_HOME", "data"), ("XDG_CONFIG_HOME", "config"),
                     ("XDG_STATE_HOME", "state"), ("XDG_DATA_HOME", "xdg-data")):
        (home / sub).mkdir(parents=True, exist_ok=True)
        monkeypatch.setenv(var, str(home / sub))
    for var in ("ERPOPS_CONFIG", "ERPOPS_ENV", "ERPOPS_RUNBOOKS", "ERPOPS_OPERATOR"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.chdir(tmp_path)
    return home


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def run_erpops(*args: str, env: dict | None = None, input: str | None = None,
               timeout: float = 600, cwd: str | os.PathLike | None = None) -> Result:
    """Run the installed ``erpops`` command; no TTY, like cron."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    proc = subprocess.run([str(ERPOPS_BIN), *args], capture_output=True, text=True,
                          env=full_env, input=input, timeout=timeout, cwd=cwd,
                          stdin=None if input is not None else subprocess.DEVNULL)
    return Result(proc.returncode, proc.stdout, proc.stderr)


@pytest.fixture
def erpops():
    """``erpops("config", "validate")`` -> Result(returncode, stdout, stderr)."""
    return run_erpops
