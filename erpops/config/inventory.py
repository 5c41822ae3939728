"""The whole inventory: environments, repositories, audit settings, plus where
it came from (``source``, ``digest``) for the audit log."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from pydantic import Field, PrivateAttr, field_validator

from erpops.config.model import Audit, Environment, Repository, Section
from erpops.errors import UsageError

SUPPORTED_VERSION = 1
LAB = "lab"


class Inventory(Section):
    version: int
    runbooks_dir: str | None = None  # user runbooks; they shadow the built-in ones
    environments: dict[str, Environment] = Field(default_factory=dict)
    repositories: dict[str, Repository] = Field(default_factory=dict)
    audit: Audit | None = None

    _source: Path | None = PrivateAttr(None)
    _digest: str = PrivateAttr("")
    _lab_merged: bool = PrivateAttr(False)

    @field_validator("version", mode="before")
    @classmethod
    def _version(cls, value: Any) -> int:
        if isinstance(value, str) and value.strip() == str(SUPPORTED_VERSION):
            return SUPPORTED_VERSION  # `version: "1"`
        if isinstance(value, bool) or value != SUPPORTED_VERSION:
            raise ValueError(f"unsupported inventory version {value!r}; this erpops reads version: {SUPPORTED_VERSION}")
        return SUPPORTED_VERSION

    @classmethod
    def empty(cls) -> "Inventory":
        inv = cls(version=SUPPORTED_VERSION)
        inv._digest = sha256_of(canonical_json({}))
        return inv

    # --- provenance -------------------------------------------------------------

    @property
    def source(self) -> Path | None:
        """The inventory file, or None when there is none (lab only / empty)."""
        return self._source

    @property
    def digest(self) -> str:
        """SHA-256 (hex) of the file's bytes — what `sha256sum erpops.yaml` prints —,
        or of the canonical JSON of the lab's registration when there is no file.
        With both, the SHA-256 of the two digests joined by a newline."""
        return self._digest

    @property
    def lab_merged(self) -> bool:
        return self._lab_merged

    def resolve_path(self, value: str) -> Path:
        """``~`` expanded; a relative path is taken relative to the inventory file."""
        path = Path(os.path.expanduser(value))
        if not path.is_absolute() and self._source is not None:
            path = self._source.resolve().parent / path
        return path

    @property
    def runbooks_dir_path(self) -> Path | None:
        return self.resolve_path(self.runbooks_dir) if self.runbooks_dir else None

    @property
    def trusted_key_paths(self) -> list[Path]:
        return [self.resolve_path(p) for p in (self.audit.trusted_keys if self.audit else [])]

    # --- lookups ----------------------------------------------------------------

    def environment(self, name: str) -> Environment:
        """The environment called ``name``; UsageError with a did-you-mean otherwise."""
        from erpops.yamlsrc import suggest

        if name in self.environments:
            return self.environments[name]
        if name == LAB:
            raise UsageError("the lab is not running", hint="run: erpops lab up")
        known = sorted(self.environments)
        near = suggest(name, known)
        where = str(self._source) if self._source else None
        if near:
            hint = f"did you mean {near!r}?"
        elif known:
            hint = f"known environments: {', '.join(known)}"
        else:
            hint = "no inventory defines environments; write erpops.yaml (see docs/inventory.md) or run: erpops lab up"
        raise UsageError(f"unknown environment {name!r}", where=where, hint=hint)

    def repository(self, name: str) -> Repository:
        from erpops.yamlsrc import suggest

        if name in self.repositories:
            return self.repositories[name]
        near = suggest(name, self.repositories)
        raise UsageError(f"unknown repository {name!r}",
                         hint=f"did you mean {near!r}?" if near else f"known repositories: {', '.join(sorted(self.repositories)) or 'none'}")

    def bind(self) -> "Inventory":
        """Give each environment its name and its repository object."""
        for name, env in self.environments.items():
            env._name = name
            env._repository = self.repositories.get(env.repository) if env.repository else None
        return self


def canonical_json(data: Any) -> bytes:
    """Sorted keys, no insignificant whitespace, UTF-8: the same bytes for the same data."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str).encode()


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
