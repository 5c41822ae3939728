"""A throw-away lab for one e2e module: the installed command in its own ERPOPS_HOME."""

from __future__ import annotations

import os
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import pytest

ERPOPS = Path(sys.executable).parent / "erpops"


@contextmanager
def private_lab(home: Path):
    """Yields (env, run): the variables that make `erpops` see this lab, and a runner
    of the installed command with them (no TTY). `lab down` must succeed at the end."""
    env = {"ERPOPS_HOME": str(home / "data"), "XDG_CONFIG_HOME": str(home / "config"),
           "XDG_STATE_HOME": str(home / "state")}

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(ERPOPS), *args], capture_output=True, text=True, timeout=300,
                              env={**os.environ, **env}, stdin=subprocess.DEVNULL)

    up = run("lab", "up", "--scale", "0.01", "--no-replica")
    if up.returncode != 0:
        run("lab", "down")
        pytest.fail(f"lab up failed: {up.stdout}{up.stderr}")
    yield env, run
    assert run("lab", "down").returncode == 0
