"""`erpops lab` as a user meets it before (or without) a lab: help, clear
errors, and the message naming the package when PostgreSQL is missing."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.e2e


def test_lab_help_lists_the_commands(erpops):
    result = erpops("lab", "--help")
    assert result.returncode == 0
    for command in ("up", "status", "down", "load", "ledger-check"):
        assert command in result.stdout
    assert "lab" in erpops("--help").stdout


def test_missing_postgres_names_the_package_and_exits_2(erpops, tmp_path, isolated_home):
    empty = tmp_path / "no-postgres-here"
    empty.mkdir()
    result = erpops("lab", "up", "--scale", "0.01", env={"ERPOPS_PG_BINDIR": str(empty)})
    assert result.returncode == 2, result.output
    assert "postgresql-15" in result.stderr and "apt-get install postgresql-15" in result.stderr
    assert str(empty) in result.stderr
    assert "Traceback" not in result.output
    assert not (isolated_home / "data" / "lab").exists(), "nothing is written before the check"


def test_status_without_a_lab_says_how_to_start_one(erpops):
    result = erpops("lab", "status")
    assert result.returncode == 2
    assert "the lab is not running" in result.stderr and "erpops lab up" in result.stderr


def test_ledger_check_without_a_lab_is_a_usage_error(erpops, tmp_path):
    ledger = tmp_path / "ledger.jsonl"
    ledger.write_text('{"id": 1, "kind": "pos_order", "db": "retail"}\n')
    result = erpops("lab", "ledger-check", str(ledger))
    assert result.returncode == 2
    assert "the lab is not running" in result.stderr


def test_down_without_a_lab_does_nothing(erpops):
    result = erpops("lab", "down", "--json")
    assert result.returncode == 0
    assert '"stopped": []' in result.stdout


def test_bad_duration_is_a_usage_error(erpops, tmp_path):
    result = erpops("lab", "load", "--duration", "soon", "--ledger", str(tmp_path / "l.jsonl"))
    assert result.returncode == 2
    assert "--duration" in result.stderr and "90s" in result.stderr
