"""Runbook inputs: typed values from ``-i key=value`` and from defaults.

Values are kept JSON-able (a duration as "90s", a datetime as ISO 8601 with
offset) because they are pinned in the checkpoint and written to the audit log.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from erpops.errors import UsageError
from erpops.units import format_duration, parse_duration
from erpops.yamlsrc import suggest

_TRUE = ("true", "yes", "on", "1")
_FALSE = ("false", "no", "off", "0")


def coerce(name: str, spec: Any, value: Any) -> Any:
    """``value`` as the input's type, or ValueError saying what was expected."""
    kind = spec.type
    if kind == "string":
        if isinstance(value, (dict, list)):
            raise ValueError(f"input {name}: expected a string, got a {type(value).__name__}")
        return str(value)
    if kind == "int":
        if isinstance(value, bool):
            raise ValueError(f"input {name}: expected an integer, got {value!r}")
        try:
            return int(str(value).strip())
        except ValueError:
            raise ValueError(f"input {name}: expected an integer, got {value!r}") from None
    if kind == "bool":
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in _TRUE or text in _FALSE:
            return text in _TRUE
        raise ValueError(f"input {name}: expected true or false, got {value!r}")
    if kind == "duration":
        try:
            return format_duration(parse_duration(value))
        except ValueError as exc:
            raise ValueError(f"input {name}: {exc}") from None
    if kind == "datetime":
        if isinstance(value, datetime):
            parsed = value
        else:
            try:
                parsed = datetime.fromisoformat(str(value).strip().replace("Z", "+00:00"))
            except ValueError:
                raise ValueError(f"input {name}: expected an ISO 8601 date and time like "
                                 f"2026-12-03T10:15:00+01:00, got {value!r}") from None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=timezone.utc)
        return parsed.isoformat()
    if kind == "enum":
        if str(value) not in spec.choices:
            near = suggest(str(value), spec.choices)
            raise ValueError(f"input {name}: {value!r} is not one of {', '.join(spec.choices)}"
                             + (f" — did you mean {near!r}?" if near else ""))
        return str(value)
    if kind == "list":
        if isinstance(value, list):
            return list(value)
        text = str(value).strip()
        return [part.strip() for part in text.split(",") if part.strip()] if text else []
    raise ValueError(f"input {name}: unknown type {kind}")


def parse_assignments(pairs: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"-i {pair!r}: expected key=value")
        out[key.strip()] = value
    return out


def resolve(specs: dict, given: dict[str, Any], *, runbook: str) -> dict[str, Any]:
    """Every declared input with its typed value; all problems reported together."""
    problems: list[str] = []
    for key in given:
        if key not in specs:
            near = suggest(key, specs)
            problems.append(f"{runbook} has no input {key!r}" + (f" — did you mean {near!r}?" if near else
                            f"; its inputs: {', '.join(specs) or 'none'}"))
    values: dict[str, Any] = {}
    for key, spec in specs.items():
        try:
            if key in given:
                values[key] = coerce(key, spec, given[key])
            elif spec.default is not None:
                values[key] = coerce(key, spec, spec.default)
            elif spec.required:
                problems.append(f"input {key} is required ({spec.description or spec.type}): pass -i {key}=...")
            else:
                values[key] = [] if spec.type == "list" else None
        except ValueError as exc:
            problems.append(str(exc))
    if problems:
        raise UsageError("; ".join(problems), hint=f"see the inputs with: erpops runbook show {runbook}")
    return values
