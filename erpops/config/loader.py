"""Find, read and check the inventory, and add the lab's environment to it.

Discovery order: the explicit path (``--config``), ``$ERPOPS_CONFIG``,
``./erpops.yaml``, ``$XDG_CONFIG_HOME/erpops/erpops.yaml``. No file at all is
not an error: every command works against the lab alone. A file that exists
is checked completely, and all its problems are reported at once as
``file:line:column  key.path: message``.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from erpops.config.checks import cross_check
from erpops.config.inventory import LAB, SUPPORTED_VERSION, Inventory, canonical_json, sha256_of
from erpops.errors import Diagnostic, InvalidFile, UsageError
from erpops.yamlsrc import YamlDocument, diagnostics_from_validation, load_yaml_text

INVENTORY_NAME = "erpops.yaml"


def candidate_paths() -> list[tuple[str, Path | None]]:
    """(how it is chosen, path) in discovery order; path None when not given/set."""
    from erpops.cli.context import OPTIONS
    from erpops.paths import config_dir

    env = os.environ.get("ERPOPS_CONFIG")
    return [
        ("--config", Path(OPTIONS.config) if OPTIONS.config else None),
        ("$ERPOPS_CONFIG", Path(env) if env else None),
        ("./erpops.yaml", Path(INVENTORY_NAME)),
        ("$XDG_CONFIG_HOME/erpops/erpops.yaml", config_dir() / INVENTORY_NAME),
    ]


def find_inventory(path: Path | str | None = None) -> Path | None:
    """The inventory file to use, or None when there is none anywhere.
    A path that was asked for explicitly must exist."""
    if path is not None:
        return _must_exist(Path(path), "the given path")
    for how, candidate in candidate_paths():
        if candidate is None:
            continue
        if how in ("--config", "$ERPOPS_CONFIG"):
            return _must_exist(candidate, how)
        if candidate.is_file():
            return candidate
    return None


def searched_description() -> str:
    parts = []
    for how, candidate in candidate_paths():
        if candidate is None:
            parts.append(f"{how} (not {'given' if how.startswith('--') else 'set'})")
        else:
            parts.append(str(candidate) if how.startswith("$XDG") else how)
    return ", ".join(parts)


def _must_exist(path: Path, how: str) -> Path:
    expanded = Path(os.path.expanduser(str(path)))
    if not expanded.exists():
        raise UsageError(f"inventory file not found: {path}", hint=f"check {how}; see docs/inventory.md for the format")
    if expanded.is_dir():
        raise UsageError(f"{path} is a directory, expected an inventory file (erpops.yaml)")
    return expanded if str(path).startswith("~") else path


def read_inventory_file(path: Path | str) -> Inventory:
    """Parse and check one inventory file (without the lab)."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise UsageError(f"inventory file not found: {path}") from None
    except IsADirectoryError:
        raise UsageError(f"{path} is a directory, expected an inventory file (erpops.yaml)") from None
    except PermissionError:
        raise UsageError(f"cannot read {path}: permission denied", hint="check the file's owner and mode") from None
    doc = load_yaml_text(raw, str(path))
    inventory = validate_document(doc)
    inventory._source = path
    inventory._digest = sha256_of(raw)
    return inventory


def validate_document(doc: YamlDocument) -> Inventory:
    """Validate a parsed document; InvalidFile lists every problem found."""
    data = doc.data
    if data is None:
        raise InvalidFile([Diagnostic(doc.file, 1, 1, "", "the file is empty; an inventory starts with "
                                                          "`version: 1` (see docs/inventory.md)")], what=doc.file)
    if not isinstance(data, dict):
        line, col = doc.position(())
        kind = "a list" if isinstance(data, list) else f"a single value ({str(data)[:40]!r})"
        raise InvalidFile([Diagnostic(doc.file, line, col, "", f"the top level must be a mapping "
                                                                f"(version:, environments:, repositories:, ...), got {kind}")],
                          what=doc.file)
    diagnostics: list[Diagnostic] = []
    inventory = None
    try:
        # Top-level keys starting with "x-" are free: a place for YAML anchors
        # shared by several environments (as in docker-compose files).
        inventory = Inventory.model_validate({k: v for k, v in data.items() if not str(k).startswith("x-")})
    except ValidationError as exc:
        diagnostics += diagnostics_from_validation(exc, doc, Inventory)
    diagnostics += cross_check(doc)
    if diagnostics or inventory is None:
        raise InvalidFile(_without_echoes(diagnostics) or [doc.diagnostic((), "not a valid inventory")], what=doc.file, hint="docs/inventory.md describes every key")
    return inventory.bind()


def _without_echoes(diagnostics: list[Diagnostic]) -> list[Diagnostic]:
    """Drop repeats, and "missing required key 'tier'" when the same mapping has
    an unknown key 'teir' whose did-you-mean is 'tier': that is one mistake, not two."""
    suggested = set()
    for d in diagnostics:
        m = re.search(r"unknown key .* did you mean '([^']+)'\?$", d.message)
        if m:
            parent = d.path.rsplit(".", 1)[0] if "." in d.path else ""
            suggested.add(f"{parent}.{m.group(1)}" if parent else m.group(1))
    return [d for d in dict.fromkeys(diagnostics)
            if not (d.message.startswith("missing required key") and d.path in suggested)]


def load_inventory(path: Path | str | None = None, *, lab: bool = True) -> Inventory:
    """The inventory in effect: the discovered file (if any), plus the running
    lab's environment ``lab`` unless the file defines one itself."""
    found = find_inventory(path)
    inventory = read_inventory_file(found) if found else Inventory.empty()
    if lab:
        registration = lab_registration()
        if registration is not None:
            _merge_lab(inventory, registration)
    return inventory


def lab_registration() -> dict | None:
    """The running lab's inventory-shaped dict, or None when there is no lab."""
    try:
        from erpops.lab.registration import lab_inventory
    except ModuleNotFoundError as exc:
        # The lab package may not provide registration yet; any other missing
        # module is a real bug and must not be hidden.
        if exc.name in ("erpops.lab", "erpops.lab.registration"):
            return None
        raise
    return lab_inventory()


def _merge_lab(inventory: Inventory, registration: dict[str, Any]) -> None:
    if LAB in inventory.environments:
        return  # the user's own definition of "lab" wins
    from erpops.paths import lab_dir

    # Through JSON so that values built in Python (Path, ...) read like YAML scalars.
    registration = json.loads(canonical_json(registration))
    raw = {"version": SUPPORTED_VERSION, **registration}
    lab = validate_document(YamlDocument(file=f"{lab_dir()} (lab registration)", data=raw, text=""))
    env = lab.environments.get(LAB)
    if env is None:
        return
    env._from_lab = True
    inventory.environments[LAB] = env
    for name, repo in lab.repositories.items():
        inventory.repositories.setdefault(name, repo)  # the user's file wins on a name clash
    inventory.bind()
    env._repository = lab.repositories.get(env.repository) if env.repository else None  # always the lab's own
    lab_digest = sha256_of(canonical_json(registration))
    inventory._digest = sha256_of(f"{inventory._digest}\n{lab_digest}".encode()) if inventory.source else lab_digest
    inventory._lab_merged = True
