"""Finding and reading runbooks.

Search order: the user's runbook directories ($ERPOPS_RUNBOOKS, a
``os.pathsep``-separated list, then ``runbooks_dir`` of the inventory), then
the built-ins shipped with erpops. A user runbook named like a built-in
shadows it. A runbook's name is its file name without ``.yaml``.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from erpops.errors import InvalidFile, UsageError
from erpops.yamlsrc import YamlDocument, diagnostics_from_validation, load_yaml_file, suggest

SUFFIXES = (".yaml", ".yml")


@dataclass
class LoadedRunbook:
    path: Path
    doc: YamlDocument
    model: "object"  # erpops.runbook.schema.Runbook
    digest: str  # sha256 of the file's bytes
    source: str  # "user" | "builtin" | "file"

    @property
    def name(self) -> str:
        return self.model.name


def builtin_dir() -> Path:
    from importlib.resources import files

    try:
        return Path(str(files("erpops.runbooks")))
    except (ModuleNotFoundError, TypeError):
        return Path(__file__).resolve().parents[2] / "runbooks"


def user_dirs() -> list[Path]:
    dirs = [Path(os.path.expanduser(p)) for p in os.environ.get("ERPOPS_RUNBOOKS", "").split(os.pathsep) if p]
    configured = _inventory_runbooks_dir()
    if configured is not None:
        dirs.append(configured)
    return dirs


def _inventory_runbooks_dir() -> Path | None:
    try:
        from erpops.config import load_inventory
    except ImportError:  # the inventory package is optional for runbooks that need no environment
        return None
    inventory = load_inventory()
    if hasattr(inventory, "runbooks_dir_path"):  # resolved relative to the inventory file
        value = inventory.runbooks_dir_path
        return value() if callable(value) else value
    value = getattr(inventory, "runbooks_dir", None)
    return Path(os.path.expanduser(str(value))) if value else None


def discover() -> dict[str, tuple[Path, str]]:
    """name -> (path, "user"|"builtin"); user directories first, so they shadow built-ins."""
    found: dict[str, tuple[Path, str]] = {}
    sources = [(d, "user") for d in user_dirs()] + [(builtin_dir(), "builtin")]
    for directory, source in sources:
        if not directory.is_dir():
            continue
        for path in sorted(directory.iterdir()):
            if path.suffix in SUFFIXES and path.is_file() and path.stem not in found:
                found[path.stem] = (path, source)
    return found


def locate(name_or_file: str) -> tuple[Path, str]:
    """A path given on the command line, or a runbook found by name."""
    candidate = Path(os.path.expanduser(name_or_file))
    looks_like_file = os.sep in name_or_file or candidate.suffix in SUFFIXES
    if looks_like_file:
        if not candidate.is_file():
            raise UsageError(f"runbook file not found: {name_or_file}", hint="check the path")
        return candidate, "file"
    known = discover()
    if name_or_file in known:
        return known[name_or_file]
    near = suggest(name_or_file, known)
    hint = f"did you mean {near!r}?" if near else "list them with: erpops runbook list"
    where = ", ".join(str(d) for d in user_dirs() + [builtin_dir()])
    raise UsageError(f"no runbook named {name_or_file!r} (searched {where})", hint=hint)


def load(name_or_file: str) -> LoadedRunbook:
    path, source = locate(name_or_file)
    return load_path(path, source)


def load_path(path: Path, source: str = "file") -> LoadedRunbook:
    """Parse and check the shape of one runbook; InvalidFile lists every problem."""
    from pydantic import ValidationError

    from erpops.runbook.schema import Runbook

    doc = load_yaml_file(path)
    if not isinstance(doc.data, dict):
        raise InvalidFile([doc.diagnostic((), "a runbook is a mapping with name:, steps: ... at the top level")],
                          what=str(path))
    try:
        model = Runbook.model_validate(doc.data)
    except ValidationError as exc:
        raise InvalidFile(diagnostics_from_validation(exc, doc, Runbook), what=str(path),
                          hint="the runbook reference is in docs/runbooks.md") from None
    digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    return LoadedRunbook(path=Path(path), doc=doc, model=model, digest=digest, source=source)
