"""`erpops doctor` as an operator runs it."""

from __future__ import annotations

import json


def test_doctor_passes_on_a_prepared_machine(erpops):
    result = erpops("doctor")
    assert result.returncode == 0, result.output
    assert "PostgreSQL server" in result.stdout
    assert "all required checks passed" in result.stdout


def test_doctor_names_the_package_when_postgresql_is_missing(erpops, tmp_path):
    empty = tmp_path / "no-postgres"
    empty.mkdir()
    result = erpops("doctor", "--json", env={"ERPOPS_PG_BINDIR": str(empty)})
    assert result.returncode == 1
    doc = json.loads(result.stdout)
    server = next(c for c in doc["checks"] if c["name"] == "PostgreSQL server")
    assert server["status"] == "FAIL"
    assert "postgresql-15" in server["fix"]
    assert doc["ok"] is False
