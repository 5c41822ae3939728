"""The command line as a user first meets it."""

from __future__ import annotations

import subprocess
import sys

from erpops import __version__

HEAVY = ("boto3", "botocore", "kubernetes", "docker", "paramiko")


def test_version(erpops):
    result = erpops("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"erpops {__version__}"


def test_help_lists_commands_and_exit_codes(erpops):
    result = erpops("--help")
    assert result.returncode == 0
    assert "Exit codes: 0 success" in result.stdout
    assert "--json" in result.stdout and "--config" in result.stdout


def test_unknown_command_is_a_usage_error(erpops):
    result = erpops("frobnicate")
    assert result.returncode == 2
    assert "No such command" in result.stderr
    assert "Traceback" not in result.output


def _imported_modules(code: str) -> set[str]:
    proc = subprocess.run([sys.executable, "-X", "importtime", "-c", code],
                          capture_output=True, text=True, check=True)
    names = set()
    for line in proc.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            names.add(line.rsplit("|", 1)[1].strip().split(".")[0])
    return names


def test_import_of_cli_does_not_load_heavy_clients():
    names = _imported_modules("import erpops.cli")
    assert not names & set(HEAVY), sorted(names & set(HEAVY))


def test_help_does_not_load_heavy_clients():
    code = ("import sys\nfrom erpops.cli import main\n"
            "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n")
    names = _imported_modules(code)
    assert not names & set(HEAVY), sorted(names & set(HEAVY))


def test_no_command_help_loads_heavy_clients():
    """Every `erpops ... --help` stays light, whatever its module imports."""
    from erpops.cli.completion_gen import command_table

    for path in command_table():
        argv = [*path.split(), "--help"]
        code = ("from erpops.cli import main\n"
                f"try:\n    main({argv!r})\nexcept SystemExit:\n    pass\n")
        names = _imported_modules(code)
        assert not names & set(HEAVY), (path, sorted(names & set(HEAVY)))
