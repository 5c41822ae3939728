"""Finding runbooks (user directories shadow built-ins), inputs, fragments."""

from __future__ import annotations

import pytest

from erpops.errors import InvalidFile, UsageError
from erpops.runbook import loader, runner
from erpops.runbook.inputs import resolve
from erpops.runbook.schema import InputSpec

RB = """
name: {name}
description: {description}
steps:
  - id: a
    uses: control.wait
    with: {{duration: 10ms}}
"""


def test_user_runbooks_shadow_builtins(tmp_path, monkeypatch):
    builtin, mine = tmp_path / "builtin", tmp_path / "mine"
    builtin.mkdir(), mine.mkdir()
    (builtin / "backup.yaml").write_text(RB.format(name="backup", description="shipped"))
    (builtin / "drill.yaml").write_text(RB.format(name="drill", description="shipped"))
    (mine / "backup.yaml").write_text(RB.format(name="backup", description="mine"))
    monkeypatch.setattr(loader, "builtin_dir", lambda: builtin)
    monkeypatch.setenv("ERPOPS_RUNBOOKS", str(mine))
    found = loader.discover()
    assert found["backup"] == (mine / "backup.yaml", "user")
    assert found["drill"] == (builtin / "drill.yaml", "builtin")
    assert loader.load("backup").model.description == "mine"
    with pytest.raises(UsageError, match="no runbook named 'bakup'") as info:
        loader.load("bakup")
    assert info.value.hint == "did you mean 'backup'?"


def test_inventory_runbooks_dir_is_searched(tmp_path):
    mine = tmp_path / "rb"
    mine.mkdir()
    (mine / "smoke.yaml").write_text(RB.format(name="smoke", description="from the inventory"))
    (tmp_path / "erpops.yaml").write_text("version: 1\nrunbooks_dir: rb\nenvironments: {}\n")
    assert loader.load("smoke").source == "user"


def test_fragment_cycle_is_reported(tmp_path, monkeypatch):
    (tmp_path / "one.yaml").write_text("name: one\nsteps:\n  - id: x\n    uses: runbook:two\n")
    (tmp_path / "two.yaml").write_text("name: two\nsteps:\n  - id: y\n    uses: runbook:one\n")
    monkeypatch.setenv("ERPOPS_RUNBOOKS", str(tmp_path))
    with pytest.raises(InvalidFile) as info:
        runner.load_checked("one")
    assert "cycle" in info.value.render()


def test_fragment_inputs_are_checked(tmp_path, monkeypatch):
    (tmp_path / "greet.yaml").write_text(
        "name: greet\ninputs:\n  who: {type: string, required: true}\n  n: {type: int, default: 1}\n"
        "steps:\n  - id: y\n    uses: control.wait\n    with: {duration: 1ms}\n")
    (tmp_path / "caller.yaml").write_text(
        "name: caller\nsteps:\n  - id: x\n    uses: runbook:greet\n    with: {whom: a, n: lots}\n")
    monkeypatch.setenv("ERPOPS_RUNBOOKS", str(tmp_path))
    with pytest.raises(InvalidFile) as info:
        runner.load_checked("caller")
    text = info.value.render()
    assert "no input 'whom' — did you mean 'who'?" in text
    assert "input n: expected an integer" in text
    assert "needs with.who" in text


def test_inputs_are_typed_and_all_problems_reported():
    specs = {
        "n": InputSpec(type="int", default=2),
        "flag": InputSpec(type="bool", default=False),
        "wait": InputSpec(type="duration", default="90s"),
        "at": InputSpec(type="datetime"),
        "mode": InputSpec(type="enum", choices=["fast", "safe"], default="safe"),
        "tenants": InputSpec(type="list"),
        "who": InputSpec(type="string", required=True),
    }
    values = resolve(specs, {"n": "5", "flag": "yes", "wait": "120s", "at": "2026-12-03T10:00:00",
                             "tenants": "a, b", "who": "x"}, runbook="t")
    assert values == {"n": 5, "flag": True, "wait": "2m", "at": "2026-12-03T10:00:00+00:00",
                      "mode": "safe", "tenants": ["a", "b"], "who": "x"}
    with pytest.raises(UsageError) as info:
        resolve(specs, {"n": "five", "mode": "fsat", "extra": "1"}, runbook="t")
    message = info.value.message
    assert "expected an integer" in message and "did you mean 'fast'" in message
    assert "no input 'extra'" in message and "input who is required" in message


def test_every_builtin_runbook_is_valid():
    builtins = sorted(loader.builtin_dir().glob("*.yaml"))
    assert builtins, "no built-in runbooks found"
    for path in builtins:
        rb = loader.load_path(path, "builtin")
        runner.validate.check(rb)
