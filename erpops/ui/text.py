"""Small text formatters shared by the renderers."""

from __future__ import annotations

from erpops.units import format_size


def amount_text(done: float, total: float | None, unit: str) -> str:
    """'12.3 MB / 99.9 MB (12%)' for bytes, '120/2,793 files (4%)' for counts."""
    if unit == "B":
        text = format_size(done) + (f" / {format_size(total)}" if total else "")
    else:
        text = f"{done:,.0f}" + (f"/{total:,.0f}" if total else "") + (f" {unit}" if unit else "")
    if total:
        text += f" ({min(100.0, 100 * done / total):.0f}%)"
    return text


def rate_text(rate: float, unit: str) -> str:
    return f"{format_size(rate)}/s" if unit == "B" else f"{rate:,.1f} {unit}/s"
