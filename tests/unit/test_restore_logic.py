"""The pure decisions of a restore: names, Odoo differences, and what needs confirmation."""

from __future__ import annotations

import pytest

from erpops.actions.restore_db import run_tag
from erpops.errors import Refused, UsageError
from erpops.pg.odoo_modules import differences, series
from erpops.pg.restore import check_db_name
from erpops.restore_checks import temp_name
from erpops.runbook.confirm import ConfirmPolicy
from erpops.runbook.plan import PlannedStep


@pytest.mark.parametrize("name", ["store_nord", "a1", "Store-2.copy", "x" * 63])
def test_names_odoo_accepts(name):
    assert check_db_name(name) == name


@pytest.mark.parametrize("name", ["", "a", "_store", "-x", "a b", "a/b", "é" * 32, "x" * 64, 'a"b'])
def test_names_odoo_refuses(name):
    with pytest.raises(UsageError):
        check_db_name(name)


def test_temporary_names_fit_63_bytes_and_stay_valid():
    name = temp_name("s" * 63, "172155ab12")
    assert len(name.encode()) <= 63 and name.endswith("__erpops_restore_172155ab12")
    assert check_db_name(name) == name
    assert temp_name("retail", run_tag("20261203T172155Z-restore-ab12")) == "retail__erpops_restore_172155ab12"


def test_odoo_differences_name_the_series_and_each_module():
    assert series("17.0.1.3") == "17.0" and series(None) is None
    backup = {"base": "17.0.1.3", "sale": "17.0.1.1", "mrp": "17.0.1.0"}
    target = {"base": "17.0.1.3", "sale": "17.0.1.2", "stock": "17.0.1.0"}
    assert differences("17.0.1.3", backup, "17.0.1.3", target) == [
        "module mrp installed in the backup, not on the target",
        "module sale 17.0.1.1 in the backup, 17.0.1.2 on the target"]
    assert differences("16.0.1.0", {}, "17.0.1.0", {})[0] == "Odoo 16.0 in the backup, 17.0 on the target"
    assert differences("17.0.1.3", backup, "17.0.1.3", {**target, **backup}) == []


def test_a_destructive_step_that_the_inputs_switch_off_needs_no_confirmation():
    steps = [PlannedStep(id="activate", uses="restore.activate", risk="WRITE", when=True),
             PlannedStep(id="replace", uses="restore.replace", risk="DESTRUCTIVE", when=False)]
    assert ConfirmPolicy().preflight(steps, "prod", "production", "restore") is None
    steps[1].when = True
    with pytest.raises(Refused):
        ConfirmPolicy().preflight(steps, "prod", "production", "restore")
    steps[1].when = "<steps.x.outputs.y>"  # decided only at run time: confirmation still needed
    with pytest.raises(Refused):
        ConfirmPolicy().preflight(steps, "dev", "development", "restore")


def test_loading_sessions_sort_in_memory_and_keep_the_callers_pgoptions(monkeypatch):
    from erpops.pg.restore import load_settings, pgoptions

    settings = load_settings(512 << 20)
    assert settings == {"synchronous_commit": "off", "maintenance_work_mem": "524288kB"}
    assert load_settings(0) == {"synchronous_commit": "off"}  # 0: the server's own setting
    monkeypatch.setenv("PGOPTIONS", "-c statement_timeout=0")
    assert pgoptions(settings)["PGOPTIONS"] == ("-c statement_timeout=0 -c synchronous_commit=off "
                                                "-c maintenance_work_mem=524288kB")


@pytest.mark.parametrize("value", ["abc", "5GB", "100kB"])
def test_a_maintenance_work_mem_postgresql_refuses_is_a_usage_error(value):
    from erpops.restore import RestoreOptions

    with pytest.raises(UsageError, match="--maintenance-work-mem"):
        RestoreOptions(env_name="lab", maintenance_work_mem=value).inputs()
