"""docs/inventory.md stays true: its example is a valid inventory and its
reference names every key the models accept."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from erpops.config import model
from erpops.config.inventory import Inventory
from erpops.config.loader import validate_document
from erpops.yamlsrc import load_yaml_text

DOC = Path(__file__).resolve().parents[2] / "docs" / "inventory.md"
SECTIONS = [Inventory, model.Environment, model.Postgres, model.PgNode, model.PgBackRest, model.Filestore,
            model.Redis, model.Odoo, model.Traefik, model.FreezeWindow, model.Repository, model.ObjectLock,
            model.Retention, model.Audit]


def _example() -> str:
    blocks = re.findall(r"```yaml\n(.*?)```", DOC.read_text(), re.DOTALL)
    return next(b for b in blocks if b.lstrip().startswith("# erpops.yaml"))


def test_the_documented_example_is_valid():
    inv = validate_document(load_yaml_text(_example(), "docs/inventory.md"))
    assert sorted(inv.environments) == ["prod", "staging"]
    assert inv.environment("prod").backup_repository.bucket == "acme-erp-backups"


@pytest.mark.parametrize("section", SECTIONS, ids=lambda s: s.__name__)
def test_every_key_is_in_the_reference(section):
    text = DOC.read_text()
    reference = text[text.index("## Reference"):]
    for name, field in section.model_fields.items():
        key = field.alias or name
        assert re.search(rf"\b{re.escape(key)}\b", reference), f"{section.__name__}.{key} is not documented"
