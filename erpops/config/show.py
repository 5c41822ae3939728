"""What ``erpops config validate`` and ``erpops config show`` report.

``show`` prints the inventory in effect (the file plus the lab's environment)
with defaults filled in, in the same shape as the file, so that its output can
be read like — and pasted into — an ``erpops.yaml``. Secret *references* are
shown (they are names, not secrets); any value that was resolved somewhere
in this process is masked as ``***`` on the way out.
"""

from __future__ import annotations

import io
from typing import Any

from erpops.config.inventory import Inventory
from erpops.config.loader import find_inventory, load_inventory, read_inventory_file, searched_description
from erpops.errors import UsageError
from erpops.secrets import REDACTOR


def validate_inventory(path: str | None = None) -> dict:
    """Check the inventory file; InvalidFile (exit 2) lists every problem."""
    found = find_inventory(path)
    if found is None:
        raise UsageError(f"no inventory file found; searched {searched_description()}",
                         hint="write erpops.yaml (docs/inventory.md describes it) or pass --config FILE; "
                              "without one, commands still work with the lab (erpops lab up)")
    inventory = read_inventory_file(found)
    return {"file": str(found), "valid": True, "digest": inventory.digest,
            "environments": sorted(inventory.environments), "repositories": sorted(inventory.repositories)}


def validate_summary(result: dict) -> str:
    n, m = len(result["environments"]), len(result["repositories"])
    return (f"{result['file']}: {n} environment{'s' if n != 1 else ''}, "
            f"{m} repositor{'ies' if m != 1 else 'y'}")


def show_inventory(env: str | None = None, path: str | None = None) -> dict:
    """The inventory in effect (or the part of it one environment uses) as plain data."""
    inventory = load_inventory(path)
    body = inventory_body(inventory, env)
    return {"source": str(inventory.source) if inventory.source else None, "digest": inventory.digest,
            "lab": inventory.lab_merged, "inventory": body}


def inventory_body(inventory: Inventory, env: str | None) -> dict:
    if env is None:
        return inventory.model_dump(mode="json", exclude_none=True)
    environment = inventory.environment(env)
    body: dict[str, Any] = {"version": inventory.version,
                            "environments": {env: environment.model_dump(mode="json", exclude_none=True)}}
    if environment.repository and environment.repository in inventory.repositories:
        repo = environment.backup_repository
        body["repositories"] = {environment.repository: repo.model_dump(mode="json", exclude_none=True)}
    return body


def render_yaml(shown: dict) -> str:
    """The human form: a commented header, then the inventory as YAML."""
    from ruamel.yaml import YAML

    yaml = YAML(typ="safe", pure=True)
    yaml.default_flow_style = False
    yaml.width = 4096  # never fold a long path onto the next line
    yaml.sort_base_mapping_type_on_output = False
    buffer = io.StringIO()
    yaml.dump(REDACTOR.redact(shown["inventory"]), buffer)
    source = shown["source"] or "no inventory file"
    header = [f"# source: {source}", f"# sha256: {shown['digest']}"]
    if shown["lab"] and "lab" in shown["inventory"].get("environments", {}):
        header.append("# environment lab: registered by the running lab (erpops lab up)")
    return "\n".join(header) + "\n" + buffer.getvalue()
