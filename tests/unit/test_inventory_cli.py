"""`erpops config validate` and `erpops config show`, run as a user runs them."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from erpops.config.show import render_yaml

GOOD = Path(__file__).resolve().parents[1] / "data" / "inventories" / "good.yaml"


def test_validate_a_good_file(erpops):
    result = erpops("--config", str(GOOD), "config", "validate")
    assert result.returncode == 0, result.output
    assert result.stdout.strip() == f"✓ {GOOD}: 2 environments, 2 repositories"


def test_validate_finds_erpops_yaml_in_the_current_directory(erpops, tmp_path):
    shutil.copy(GOOD, tmp_path / "erpops.yaml")
    result = erpops("config", "validate")
    assert result.returncode == 0, result.output
    assert "erpops.yaml: 2 environments" in result.stdout


def test_validate_takes_a_path_argument_and_json(erpops):
    result = erpops("config", "validate", str(GOOD), "--json")
    assert result.returncode == 0
    doc = json.loads(result.stdout)
    assert doc["valid"] is True and doc["environments"] == ["prod", "staging"]
    assert doc["repositories"] == ["local", "offsite"] and len(doc["digest"]) == 64


def test_validate_without_any_file_says_where_it_looked(erpops, isolated_home):
    result = erpops("config", "validate")
    assert result.returncode == 2
    assert "no inventory file found" in result.stderr
    assert "./erpops.yaml" in result.stderr and "$ERPOPS_CONFIG (not set)" in result.stderr
    assert str(isolated_home / "config" / "erpops" / "erpops.yaml") in result.stderr
    assert "Traceback" not in result.output


def test_a_missing_explicit_file_is_a_usage_error(erpops):
    result = erpops("--config", "nowhere.yaml", "config", "validate")
    assert result.returncode == 2
    assert "inventory file not found: nowhere.yaml" in result.stderr


def test_show_without_a_file_is_an_empty_inventory(erpops):
    result = erpops("config", "show", "--json")
    assert result.returncode == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["source"] is None and doc["inventory"]["environments"] == {}


def test_show_one_environment_with_its_repository(erpops):
    result = erpops("--config", str(GOOD), "config", "show", "-e", "prod", "--json")
    assert result.returncode == 0, result.output
    inv = json.loads(result.stdout)["inventory"]
    assert list(inv["environments"]) == ["prod"] and list(inv["repositories"]) == ["offsite"]
    prod = inv["environments"]["prod"]
    assert prod["rpo"] == "5m" and prod["freeze"][1]["duration"] == "30h"
    assert prod["postgres"]["primary"]["password"] == "env:PGPASS"  # a reference, shown as written
    assert inv["repositories"]["offsite"]["part_size"] == "16MB"


def test_show_output_is_itself_a_valid_inventory(erpops, tmp_path):
    result = erpops("--config", str(GOOD), "config", "show")
    assert result.returncode == 0, result.output
    assert result.stdout.startswith(f"# source: {GOOD}\n")
    copy = tmp_path / "shown.yaml"
    copy.write_text(result.stdout)
    again = erpops("--config", str(copy), "config", "validate")
    assert again.returncode == 0, again.output


def test_show_an_unknown_environment(erpops):
    result = erpops("--config", str(GOOD), "config", "show", "-e", "prd")
    assert result.returncode == 2
    assert "unknown environment 'prd'" in result.stderr and "did you mean 'prod'?" in result.stderr


def test_show_the_lab_when_it_is_not_running(erpops):
    result = erpops("config", "show", "-e", "lab")
    assert result.returncode == 2
    assert "the lab is not running" in result.stderr and "run: erpops lab up" in result.stderr


def test_a_resolved_secret_is_masked_in_show(monkeypatch):
    from erpops.secrets import resolve

    monkeypatch.setenv("SHOW_TEST_PASSWORD", "tr0ub4dor-and-3")
    resolve("env:SHOW_TEST_PASSWORD")
    shown = {"source": None, "digest": "0" * 64, "lab": False,
             "inventory": {"version": 1, "environments": {"dev": {"description": "pw tr0ub4dor-and-3"}}}}
    text = render_yaml(shown)
    assert "tr0ub4dor-and-3" not in text and "pw ***" in text


def test_the_config_command_does_not_import_pydantic_for_help():
    code = ("import sys, erpops.cli.config_cmd; "
            "print(sorted(m for m in ('pydantic', 'ruamel.yaml', 'erpops.config') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def _register_a_lab(isolated_home) -> None:
    """Write the lab's own state file (no servers are needed to read the registration)."""
    import pytest

    state = pytest.importorskip("erpops.lab.state")
    root = isolated_home / "data" / "lab"
    root.mkdir(parents=True, exist_ok=True)
    state.save(state.LabState(root=str(root), bin_dir="/usr/lib/postgresql/15/bin", socket_dir=str(root),
                              password_file=str(root / "password"),
                              nodes=[state.Node("lab-primary", "primary", 54321, str(root / "primary"), "p.log"),
                                     state.Node("lab-replica", "replica", 54322, str(root / "replica"), "r.log")]))


def test_show_the_registered_lab_next_to_the_file(erpops, isolated_home):
    _register_a_lab(isolated_home)
    result = erpops("--config", str(GOOD), "config", "show", "--json")
    assert result.returncode == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["lab"] is True
    assert sorted(doc["inventory"]["environments"]) == ["lab", "prod", "staging"]
    lab = erpops("config", "show", "-e", "lab")
    assert lab.returncode == 0, lab.output
    assert "# environment lab: registered by the running lab" in lab.stdout
    assert "port: 54322" in lab.stdout and "password: file:" in lab.stdout
