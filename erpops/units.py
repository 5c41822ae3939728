"""Durations (``90s``, ``15m``, ``2h``, ``1d``) and sizes (``16MB``, ``1GiB``)."""

from __future__ import annotations

import re

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)\s*$")
_DURATION_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]i?B|B)?\s*$", re.IGNORECASE)
_SIZE_UNITS = {
    "b": 1,
    "kb": 1000, "mb": 1000**2, "gb": 1000**3, "tb": 1000**4,
    "kib": 1024, "mib": 1024**2, "gib": 1024**3, "tib": 1024**4,
}


class Duration(float):
    """Seconds, parsed from ``90s``/``15m``/``2h``/``1d``; prints back the same way."""

    def __new__(cls, value: "str | float | int | Duration") -> "Duration":
        return super().__new__(cls, parse_duration(value))

    def __str__(self) -> str:
        return format_duration(float(self))

    def __repr__(self) -> str:
        return f"Duration({str(self)!r})"


def parse_duration(value: "str | float | int") -> float:
    if isinstance(value, bool):
        raise ValueError(f"expected a duration like 90s, 15m or 2h, got {value!r}")
    if isinstance(value, (int, float)):
        if value < 0:
            raise ValueError(f"a duration cannot be negative, got {value!r}")
        return float(value)
    m = _DURATION.match(str(value))
    if not m:
        raise ValueError(f"expected a duration like 90s, 15m, 2h or 1d, got {value!r}")
    return float(m.group(1)) * _DURATION_UNITS[m.group(2)]


def format_duration(seconds: float) -> str:
    if seconds and seconds < 1:
        return f"{round(seconds * 1000)}ms"
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    # not "{:g}": it switches to exponent notation (1e+06s), which parse_duration rejects
    return f"{seconds:.6f}".rstrip("0").rstrip(".") + "s"


def parse_size(value: "str | int") -> int:
    if isinstance(value, bool):
        raise ValueError(f"expected a size like 16MB or 1GiB, got {value!r}")
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"a size cannot be negative, got {value!r}")
        return value
    m = _SIZE.match(str(value))
    if not m:
        raise ValueError(f"expected a size like 512KB, 16MB or 1GiB, got {value!r}")
    return int(float(m.group(1)) * _SIZE_UNITS[(m.group(2) or "B").lower()])


def format_size(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"  # pragma: no cover
