"""Field types of the inventory: durations, sizes, secret references,
transport URLs (``via:``) and timestamps with an offset.

Each is an ``Annotated`` pydantic type whose validator raises ``ValueError``
with a message written for the operator; the loader turns those into
``file:line:column`` diagnostics. ``config show`` prints durations and sizes
back the way they are written (``5m``, ``16MiB``), not as bare numbers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import BeforeValidator, PlainSerializer, PlainValidator

from erpops.secrets import REDACTOR, validate_reference
from erpops.units import Duration, parse_size

# --- durations and sizes -----------------------------------------------------


def _duration(value: Any) -> Duration:
    if isinstance(value, Duration):  # already parsed (e.g. a dict built in Python)
        return value
    # A bare number is ambiguous in an inventory (seconds? minutes?): ask for a unit.
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        raise ValueError(f"a duration needs a unit, e.g. {value:g}s, {value:g}m or {value:g}h; got a bare number {value!r}")
    if not isinstance(value, str):
        raise ValueError(f"expected a duration like 90s, 15m, 2h or 1d, got {_kind(value)}")
    return Duration(value)


def format_size_exact(n: int) -> str:
    """16777216 -> '16MiB', 16000000 -> '16MB', 1000 -> '1kB'; otherwise bytes."""
    for unit, size in (("TiB", 1024**4), ("TB", 1000**4), ("GiB", 1024**3), ("GB", 1000**3),
                       ("MiB", 1024**2), ("MB", 1000**2), ("KiB", 1024), ("kB", 1000)):
        if n and n % size == 0:
            return f"{n // size}{unit}"
    return f"{n}B"


def _size(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ValueError(f"expected a size like 512KB, 16MB or 1GiB, got {_kind(value)}")
    return parse_size(value)


DurationField = Annotated[Duration, PlainValidator(_duration), PlainSerializer(str, return_type=str, when_used="json")]
SizeField = Annotated[int, PlainValidator(_size), PlainSerializer(format_size_exact, return_type=str, when_used="json")]


# --- secret references -------------------------------------------------------

_SCHEMES = ("env:", "file:", "k8s:", "vault:")
_SCHEME_FORMS = {
    "env:": "env:NAME (a shell variable name, e.g. env:PGPASSWORD)",
    "file:": "file:PATH (e.g. file:/etc/erpops/pg.pass)",
    "k8s:": "k8s:NAMESPACE/SECRET#KEY (e.g. k8s:erp/redis#password)",
    "vault:": "vault:PATH#KEY (e.g. vault:secret/erp/pg#password)",
}


def _secret_ref(value: Any) -> str:
    """Accept only a reference. The value itself never appears in the message:
    if someone pasted a password here, it must not be echoed to a terminal/CI log."""
    if isinstance(value, str) and value.startswith(_SCHEMES):
        scheme = value[: value.index(":") + 1]
        try:
            return validate_reference(value)
        except ValueError:
            raise ValueError(f"malformed {scheme} secret reference; expected {_SCHEME_FORMS[scheme]}") from None
    if isinstance(value, str) and value:
        REDACTOR.add(value)  # it may well be a real password: keep it out of every later output
        raise ValueError("a secret must be a reference, not an inline value: use env:NAME or file:PATH "
                         "(also k8s:NS/SECRET#KEY, vault:PATH#KEY); secrets are never written inline")
    raise ValueError(f"expected a secret reference such as env:NAME or file:PATH, got {_kind(value)}")


SecretRef = Annotated[str, BeforeValidator(_secret_ref)]


# --- transports (via:) -------------------------------------------------------

_DNS_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_K8S_KINDS = ("pod", "deployment", "statefulset", "daemonset")
VIA_HELP = "local://, ssh://USER@HOST[:PORT], docker://CONTAINER or k8s://NAMESPACE/KIND/NAME"


@dataclass(frozen=True)
class Via:
    """A parsed ``via:`` URL: where a command runs or a file lives."""

    scheme: str  # local | ssh | docker | k8s
    user: str | None = None
    host: str | None = None
    port: int | None = None
    container: str | None = None
    namespace: str | None = None
    kind: str | None = None
    name: str | None = None


def parse_via(text: str) -> Via:
    """Check the syntax of a transport URL (nothing is contacted) and split it."""
    if not isinstance(text, str) or "://" not in text:
        raise ValueError(f"expected a transport URL: {VIA_HELP}; got {text!r}")
    scheme, rest = text.split("://", 1)
    if scheme == "local":
        if rest:
            raise ValueError(f"local:// takes nothing after it, got {text!r}")
        return Via("local")
    if scheme == "ssh":
        m = re.fullmatch(r"(?P<user>[A-Za-z_][A-Za-z0-9_.-]*)@(?P<host>[A-Za-z0-9.-]+|\[[0-9a-fA-F:]+\])(?::(?P<port>\d{1,5}))?", rest)
        if not m:
            raise ValueError(f"expected ssh://USER@HOST[:PORT], got {text!r}")
        port = int(m["port"]) if m["port"] else None
        if port is not None and not 0 < port < 65536:
            raise ValueError(f"ssh port must be 1-65535, got {port}")
        return Via("ssh", user=m["user"], host=m["host"].strip("[]"), port=port)
    if scheme == "docker":
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", rest):
            raise ValueError(f"expected docker://CONTAINER (a container name or id), got {text!r}")
        return Via("docker", container=rest)
    if scheme == "k8s":
        parts = rest.split("/")
        if len(parts) != 3 or not all(re.fullmatch(_DNS_LABEL, p) for p in (parts[0], parts[2])):
            raise ValueError(f"expected k8s://NAMESPACE/KIND/NAME (e.g. k8s://erp/deployment/odoo), got {text!r}")
        if parts[1] not in _K8S_KINDS:
            raise ValueError(f"unknown Kubernetes kind {parts[1]!r} in {text!r}; use one of {', '.join(_K8S_KINDS)}")
        return Via("k8s", namespace=parts[0], kind=parts[1], name=parts[2])
    raise ValueError(f"unknown transport {scheme + '://'!r}; use {VIA_HELP}")


def _via(value: Any) -> str:
    parse_via(value)
    return value


ViaURL = Annotated[str, BeforeValidator(_via)]


# --- timestamps, URLs, names ---------------------------------------------------


def _aware_datetime(value: Any) -> datetime:
    # A freeze window without an offset would start at a different instant on
    # every machine; insist on one.
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"expected a date-time like 2026-11-26T00:00:00+01:00, got {value!r}") from None
    if not isinstance(value, datetime):
        raise ValueError(f"expected a date-time with an offset like 2026-11-26T00:00:00+01:00, got {_kind(value)}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"date-time {value.isoformat()} has no offset; add one, e.g. {value.isoformat()}+01:00 or Z")
    return datetime(value.year, value.month, value.day, value.hour, value.minute, value.second,
                    value.microsecond, tzinfo=value.tzinfo)


AwareDatetime = Annotated[datetime, PlainValidator(_aware_datetime),
                          PlainSerializer(lambda v: v.isoformat(), return_type=str, when_used="json")]


def url_with(schemes: tuple[str, ...]):
    """A URL with one of ``schemes`` and no password in it (passwords go in a secret field)."""

    def check(value: Any) -> str:
        if not isinstance(value, str):
            raise ValueError(f"expected a URL ({' or '.join(s + '://...' for s in schemes)}), got {_kind(value)}")
        parts = urlsplit(value)
        if parts.scheme not in schemes or not (parts.netloc or parts.path):
            raise ValueError(f"expected a URL starting with {' or '.join(s + '://' for s in schemes)}, got {value!r}")
        if parts.password:
            REDACTOR.add(parts.password)
            raise ValueError("the URL contains a password; remove it and use the password: key with a "
                             "secret reference (env:NAME or file:PATH)")
        return value

    return Annotated[str, BeforeValidator(check)]


def one_of(*choices: str):
    """A string among ``choices``; the error names them and suggests the nearest."""
    from erpops.yamlsrc import suggest

    def check(value: Any) -> str:
        if isinstance(value, str) and value in choices:
            return value
        near = None
        if isinstance(value, str) and value:
            prefixed = [c for c in choices if c.startswith(value.lower())]  # "prod" -> "production"
            near = prefixed[0] if len(prefixed) == 1 else suggest(value, choices)
        message = f"expected one of {', '.join(choices)}; got {value!r}"
        raise ValueError(message + (f" — did you mean {near!r}?" if near else ""))

    return Annotated[Literal[choices], BeforeValidator(check)]


def _version_string(value: Any) -> str:
    # `version: 17.0` is read by YAML as a float; Odoo versions are strings.
    if isinstance(value, bool):
        raise ValueError(f"expected an Odoo version like \"17.0\", got {value!r}")
    if isinstance(value, (int, float)):
        return f"{float(value):.1f}"
    if isinstance(value, str) and re.fullmatch(r"(saas~)?\d+\.\d+(\.\d+)?", value):
        return value
    raise ValueError(f"expected an Odoo version like \"17.0\", got {value!r}")


OdooVersion = Annotated[str, BeforeValidator(_version_string)]


def _kind(value: Any) -> str:
    """Describe a value by its type only (used where the value may be secret or huge)."""
    if value is None:
        return "nothing (null)"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, bool):
        return f"a boolean ({'true' if value else 'false'})"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, datetime):
        return "a date-time"
    if isinstance(value, str):
        return "an empty string" if not value else "text"
    return type(value).__name__
