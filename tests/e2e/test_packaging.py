"""The wheel ships what an installed erpops needs: every built-in runbook."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_wheel_contains_the_builtin_runbooks(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps",
                    "-w", str(tmp_path), str(REPO)], check=True, capture_output=True, cwd=tmp_path)
    wheel = next(tmp_path.glob("erpops-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    builtins = sorted(p.name for p in (REPO / "runbooks").glob("*.yaml"))
    assert builtins, "no built-in runbooks found"
    for name in builtins:
        assert f"erpops/runbooks/{name}" in names
    assert "erpops/cli/app.py" in names
