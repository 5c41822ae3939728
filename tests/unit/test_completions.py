"""completions/ must match the current app, and the bash script must work."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from erpops.cli.completion_gen import command_table, generate

REPO = Path(__file__).resolve().parents[2]


def test_completion_scripts_are_current():
    for name, text in generate().items():
        committed = (REPO / "completions" / name).read_text()
        assert committed == text, (
            f"completions/{name} is stale; regenerate with: .venv/bin/python -m erpops.cli.completion_gen"
        )


def _bash_complete(words: list[str]) -> list[str]:
    script = REPO / "completions" / "erpops.bash"
    line = " ".join(f"'{w}'" for w in words)
    cmd = (f"source {script}; COMP_WORDS=({line}); COMP_CWORD={len(words) - 1}; "
           "_erpops_complete; printf '%s\\n' \"${COMPREPLY[@]}\"")
    out = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True, check=True)
    return out.stdout.split()


def test_bash_completes_every_command_path():
    table = command_table()
    assert "--json" in _bash_complete(["erpops", "--j"])
    for path, words in table.items():
        if not path:
            continue
        offered = _bash_complete(["erpops", *path.split(), ""])
        assert set(offered) == set(words), path
    top = [w for w in table[""] if not w.startswith("-")]
    for command in top:
        assert command in _bash_complete(["erpops", command[:2]])


@pytest.mark.skipif(shutil.which("fish") is None, reason="fish is not installed")
def test_fish_script_parses():
    subprocess.run(["fish", "--no-execute", str(REPO / "completions" / "erpops.fish")], check=True)


@pytest.mark.skipif(shutil.which("zsh") is None, reason="zsh is not installed")
def test_zsh_script_parses():
    subprocess.run(["zsh", "-n", str(REPO / "completions" / "_erpops")], check=True)
