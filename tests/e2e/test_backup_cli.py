"""`erpops backup` as cron and a new engineer meet it: the installed command,
no TTY, a private lab (scale 0.01) for the module."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

try:  # tests/ as a package, or tests/e2e on sys.path (pytest's rootdir insertion)
    from tests.e2e.private_lab import private_lab
except ImportError:
    from private_lab import private_lab

pytestmark = pytest.mark.e2e

ANSI = re.compile(r"\x1b\[")


@pytest.fixture(scope="module")
def lab_env(tmp_path_factory):
    with private_lab(tmp_path_factory.mktemp("backup-cli")) as (env, _run):
        yield env


def test_backup_prints_one_line_per_backup(erpops, lab_env):
    result = erpops("backup", "-e", "lab", env=lab_env)
    assert result.returncode == 0, result.output
    line = result.stdout.strip()
    assert re.fullmatch(r"✓ \d{8}T\d{6}Z-lab-retail  db [\d.]+ [kM]?B  filestore [\d,]+ files \([\d,]+ new\)  "
                        r"in [\d.]+ s", line), line
    assert "lock: repo.lock started" in result.stderr  # log lines, on stderr, for cron's log file


def test_json_without_a_tty_is_one_plain_document_and_the_log_verifies(erpops, lab_env):
    assert erpops("backup", "-e", "lab", env=lab_env).returncode == 0
    result = erpops("backup", "--json", "-e", "lab", env=lab_env)
    assert result.returncode == 0, result.output
    assert not ANSI.search(result.stdout) and not ANSI.search(result.stderr)
    doc = json.loads(result.stdout)
    assert doc["status"] == "succeeded"
    [entry] = doc["backups"]
    assert set(entry) >= {"backup_id", "environment", "tenant", "db_bytes", "files", "new_files", "new_bytes",
                          "uploaded_bytes", "duration_s", "verified"}
    assert entry["new_files"] == 0 and entry["files"] > 0  # stored by the backup just before
    verify = erpops("audit", "verify", doc["run_id"], env=lab_env)
    assert verify.returncode == 0, verify.output


def test_dry_run_shows_the_steps_and_stores_nothing(erpops, lab_env):
    runs = Path(lab_env["ERPOPS_HOME"]) / "state" / "runs"
    before = set(runs.iterdir()) if runs.exists() else set()
    result = erpops("backup", "-e", "lab", "--dry-run", env=lab_env)
    assert result.returncode == 0, result.output
    for step in ("repo.lock", "postgres.snapshot", "filestore.capture", "postgres.dump", "repo.commit",
                 "repo.unlock"):
        assert step in result.stdout
    assert (set(runs.iterdir()) if runs.exists() else set()) == before


def test_help_shows_an_example(erpops):
    result = erpops("backup", "--help")
    assert result.returncode == 0
    assert "Example: erpops backup -e prod" in result.stdout
    assert "backup" in erpops("--help").stdout


def test_without_a_lab_it_says_how_to_start_one(erpops):
    result = erpops("backup", "-e", "lab")
    assert result.returncode == 2, result.output
    assert "erpops lab up" in result.stderr and "Traceback" not in result.output


def test_a_bad_annotation_is_a_usage_error(erpops, lab_env):
    result = erpops("backup", "-e", "lab", "--annotate", "no-equals-sign", env=lab_env)
    assert result.returncode == 2
    assert "KEY=VALUE" in result.stderr


def test_an_unknown_tenant_is_refused_before_any_run_with_a_suggestion(erpops, lab_env):
    runs = Path(lab_env["ERPOPS_HOME"]) / "state" / "runs"
    before = set(runs.iterdir()) if runs.exists() else set()
    result = erpops("backup", "-e", "lab", "--tenant", "retial", env=lab_env)
    assert result.returncode == 2, result.output
    assert "did you mean 'retail'?" in result.stderr
    assert (set(runs.iterdir()) if runs.exists() else set()) == before
