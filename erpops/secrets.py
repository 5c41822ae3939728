"""Secret references (``env:NAME``, ``file:PATH``, ``k8s:NS/SECRET#KEY``,
``vault:PATH#KEY``) and the masked values they resolve to.

A secret is never written inline in a config file: the file holds a reference,
and the value is read only when an action needs it. Every resolved value is
registered with ``REDACTOR`` so that the audit log, JSON output and error
messages can replace it with ``***`` before anything is written.
"""

from __future__ import annotations

import os
import re
import threading
from pathlib import Path

from erpops.errors import OperationFailed

MASK = "***"

_REF = re.compile(
    r"^(?:env:(?P<env>[A-Za-z_][A-Za-z0-9_]*)"
    r"|file:(?P<file>.+)"
    r"|k8s:(?P<ns>[a-z0-9]([-a-z0-9]*[a-z0-9])?)/(?P<secret>[a-z0-9]([-.a-z0-9]*[a-z0-9])?)#(?P<k8skey>[-._A-Za-z0-9]+)"
    r"|vault:(?P<vpath>[^#\s]+)#(?P<vkey>[^#\s]+))$"
)

REFERENCE_HELP = "use env:NAME, file:PATH, k8s:NAMESPACE/SECRET#KEY or vault:PATH#KEY"


def validate_reference(value: str) -> str:
    """Raise ValueError unless ``value`` is a well-formed secret reference."""
    if not isinstance(value, str) or not _REF.match(value):
        shown = value if isinstance(value, str) and len(value) < 40 and ":" in value else "<inline value>"
        raise ValueError(f"not a secret reference ({shown}); {REFERENCE_HELP} — secrets are never written inline")
    return value


class Secret:
    """A resolved secret. ``str``/``repr``/formatting show ``***``; ``reveal()``
    gives the value to the one place that needs it (a connection, a subprocess env)."""

    __slots__ = ("_value", "ref")

    def __init__(self, value: str, ref: str = ""):
        self._value = value
        self.ref = ref
        REDACTOR.add(value)

    def reveal(self) -> str:
        return self._value

    def __str__(self) -> str:
        return MASK

    __repr__ = __str__

    def __format__(self, spec: str) -> str:
        return MASK

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


def resolve(ref: str, *, k8s_reader=None, vault_reader=None) -> Secret:
    """Read the value behind a reference. Errors name the reference, never a value."""
    m = _REF.match(ref or "")
    if not m:
        raise OperationFailed(f"not a secret reference: {ref!r}", hint=REFERENCE_HELP)
    if m.group("env"):
        name = m.group("env")
        if name not in os.environ:
            raise OperationFailed(f"secret {ref}: environment variable {name} is not set",
                                  hint=f"export {name}=... in the environment erpops runs in")
        return Secret(os.environ[name], ref)
    if m.group("file"):
        path = Path(os.path.expanduser(m.group("file")))
        try:
            return Secret(path.read_text().rstrip("\r\n"), ref)
        except OSError as exc:
            raise OperationFailed(f"secret {ref}: cannot read {path}: {exc.strerror}",
                                  hint="check the path and that the file is readable by this user") from None
    if m.group("ns"):
        if k8s_reader is None:
            raise OperationFailed(f"secret {ref}: no Kubernetes API configured to read it",
                                  hint="configure a kubeconfig for this environment")
        return Secret(k8s_reader(m.group("ns"), m.group("secret"), m.group("k8skey")), ref)
    if vault_reader is None:
        raise OperationFailed(f"secret {ref}: no Vault/OpenBao address configured to read it",
                              hint="set VAULT_ADDR and VAULT_TOKEN")
    return Secret(vault_reader(m.group("vpath"), m.group("vkey")), ref)


class Redactor:
    """Replaces every known secret value in strings (and nested data) by ``***``."""

    def __init__(self) -> None:
        self._values: set[str] = set()
        self._lock = threading.Lock()

    def add(self, value: str) -> None:
        # Very short values would mask innocent text everywhere; a secret that
        # short is not worth the name, but we still mask it when it stands alone.
        if value:
            with self._lock:
                self._values.add(value)

    def redact(self, obj):
        if isinstance(obj, Secret):
            return MASK
        if isinstance(obj, str):
            for value in sorted(self._values, key=len, reverse=True):
                if len(value) >= 4 or obj == value:
                    obj = obj.replace(value, MASK)
            return obj
        if isinstance(obj, dict):
            return {self.redact(k): self.redact(v) for k, v in obj.items()}
        if isinstance(obj, (list, tuple)):
            return [self.redact(v) for v in obj]
        return obj


REDACTOR = Redactor()
