"""Canonical JSON for audit records (RFC 8785 style, restricted to integers).

A record's hash is SHA-256 over its canonical form, so a verifier written in
any language must reproduce the exact bytes. The rules (docs/audit-log.md):

- objects: keys sorted by their UTF-16 code units (RFC 8785 §3.2.3), no
  whitespace anywhere, ``,`` and ``:`` as separators;
- strings: UTF-8, escaped as ECMAScript ``JSON.stringify`` does: ``\\"``
  ``\\\\`` ``\\b`` ``\\f`` ``\\n`` ``\\r`` ``\\t``, other characters below
  U+0020 as ``\\u00xx`` (lower-case hex), everything else literally;
- numbers: integers only, within ±(2^53 − 1). Floats and larger integers never
  reach the hash: ``normalize`` turns them into strings (``repr``), because
  number formatting is where canonical-JSON implementations disagree;
- ``true``, ``false``, ``null`` as usual.

``normalize`` is applied when a record is written; ``canonical`` refuses any
value that ``normalize`` would have changed, so a verifier never has to guess.
"""

from __future__ import annotations

import json
import math
from datetime import date, datetime
from pathlib import PurePath
from typing import Any

MAX_SAFE_INTEGER = 2**53 - 1


class NotCanonical(ValueError):
    """A value that has no canonical form (float, huge integer, lone surrogate)."""


def normalize(value: Any) -> Any:
    """Turn arbitrary engine data into values with a canonical form.

    Tuples become lists, paths and datetimes strings, floats and integers
    outside the safe range strings, mapping keys strings. Anything else
    unknown becomes its ``str`` — the log records what was seen rather than
    failing a run over a type it did not expect.
    """
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        return _valid_unicode(value)
    if isinstance(value, int):
        return value if abs(value) <= MAX_SAFE_INTEGER else str(value)
    if isinstance(value, float):
        if value.is_integer() and abs(value) <= MAX_SAFE_INTEGER:
            return int(value)
        return repr(value) if math.isfinite(value) else str(value)
    if isinstance(value, dict):
        return {_valid_unicode(str(k)): normalize(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        items = sorted(value, key=str) if isinstance(value, (set, frozenset)) else value
        return [normalize(v) for v in items]
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, (date, PurePath)):
        return str(value)
    return str(value)


def _valid_unicode(text: str) -> str:
    """Lone surrogates (undecodable subprocess bytes kept by ``surrogateescape``)
    cannot be UTF-8: they are written as ``\\udcxx`` text instead."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _utf16_key(key: str) -> bytes:
    return key.encode("utf-16-be", "surrogatepass")


def _encode(value: Any, out: list[str]) -> None:
    if isinstance(value, dict):
        out.append("{")
        for i, key in enumerate(sorted(value, key=_utf16_key)):
            if not isinstance(key, str):
                raise NotCanonical(f"object key {key!r} is not a string")
            if i:
                out.append(",")
            out.append(json.dumps(key, ensure_ascii=False))
            out.append(":")
            _encode(value[key], out)
        out.append("}")
    elif isinstance(value, list):
        out.append("[")
        for i, item in enumerate(value):
            if i:
                out.append(",")
            _encode(item, out)
        out.append("]")
    elif value is None or isinstance(value, (bool, str)):
        out.append(json.dumps(value, ensure_ascii=False))
    elif isinstance(value, int):
        if abs(value) > MAX_SAFE_INTEGER:
            raise NotCanonical(f"integer {value} is outside ±(2^53-1)")
        out.append(str(value))
    else:
        raise NotCanonical(f"{type(value).__name__} has no canonical form (only integers, strings, "
                           "booleans, null, arrays and objects)")


def canonical(value: Any) -> bytes:
    """The canonical UTF-8 bytes of ``value``; raises NotCanonical."""
    out: list[str] = []
    _encode(value, out)
    try:
        return "".join(out).encode("utf-8")
    except UnicodeEncodeError as exc:  # a lone surrogate cannot be UTF-8
        raise NotCanonical(f"string is not valid Unicode: {exc.reason}") from None
