"""Tenant discovery and `erpops doctor -e lab` against the real lab."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.integration


def test_tenants_are_discovered_from_ir_module_module(lab_home, lab):
    from erpops.config import load_inventory
    from erpops.pg.connect import NodeTarget
    from erpops.pg.tenants import discover_tenants

    env = load_inventory().environment("lab")
    target = NodeTarget.from_node(env.postgres.primary)
    with lab.connect(dbname="postgres") as conn:
        conn.autocommit = True
        conn.execute("DROP DATABASE IF EXISTS not_odoo")
        conn.execute("CREATE DATABASE not_odoo")
    try:
        assert discover_tenants(target) == ["retail"]
    finally:
        with lab.connect(dbname="postgres") as conn:
            conn.autocommit = True
            conn.execute("DROP DATABASE not_odoo")


def test_doctor_checks_every_lab_endpoint(lab_home, erpops):
    result = erpops("doctor", "-e", "lab", "--json")
    assert result.returncode == 0, result.output
    names = [c["name"] for c in json.loads(result.stdout)["checks"]]
    assert any(n.startswith("PostgreSQL primary lab-primary") for n in names)
    assert any(n.startswith("PostgreSQL replica lab-replica") for n in names)
    assert "filestore" in names


def test_doctor_fails_with_a_fix_when_an_endpoint_is_down(erpops, tmp_path):
    config = tmp_path / "erpops.yaml"
    config.write_text(
        "version: 1\n"
        "environments:\n"
        "  prod:\n"
        "    tier: production\n"
        "    postgres:\n"
        "      primary: {name: db1, host: 127.0.0.1, port: 1, user: erpops}\n"
        "    tenants: [shop]\n"
        f"    filestore: {{path: {tmp_path / 'missing'}}}\n"
    )
    result = erpops("--config", str(config), "doctor", "-e", "prod", "--json")
    assert result.returncode == 1, result.output
    checks = {c["name"]: c for c in json.loads(result.stdout)["checks"]}
    pg = checks["PostgreSQL primary db1 127.0.0.1:1"]
    assert pg["status"] == "FAIL" and "cannot connect" in pg["detail"] and pg["fix"]
    assert checks["filestore"]["status"] == "FAIL" and "does not exist" in checks["filestore"]["detail"]
