"""Durations and sizes as written in inventories and runbooks."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from erpops.config.types import format_size_exact
from erpops.units import Duration, format_duration, format_size, parse_duration, parse_size


@pytest.mark.parametrize("text, seconds", [
    ("90s", 90), ("15m", 900), ("2h", 7200), ("1d", 86400), ("1w", 604800), ("500ms", 0.5),
    ("1.5h", 5400), ("0s", 0), (" 5m ", 300), ("5 m", 300), (30, 30), (2.5, 2.5),
])
def test_parse_duration(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("bad", ["", "5", "-5s", "5x", "m", "5mm", "1h30m", "5M", "five minutes", True, -1])
def test_parse_duration_refuses(bad):
    with pytest.raises(ValueError):
        parse_duration(bad)


@pytest.mark.parametrize("seconds, text", [
    (0, "0s"), (90, "90s"), (60, "1m"), (3600, "1h"), (5400, "90m"), (86400, "1d"), (604800, "1w"),
    (0.5, "500ms"), (1.5, "1.5s"), (108000, "30h"),
])
def test_format_duration(seconds, text):
    assert format_duration(seconds) == text


def test_duration_is_seconds_and_prints_as_written():
    d = Duration("30h")
    assert d == 108000 and str(d) == "30h" and repr(d) == "Duration('30h')"
    assert Duration(d) == d and Duration(90) + 1 == 91


@given(st.integers(min_value=0, max_value=10**8))
def test_duration_round_trips(seconds):
    assert parse_duration(format_duration(seconds)) == seconds


@pytest.mark.parametrize("text, size", [
    ("16MB", 16_000_000), ("16MiB", 16 * 1024**2), ("1GiB", 1024**3), ("512KB", 512_000), ("512kb", 512_000),
    ("1.5MiB", int(1.5 * 1024**2)), ("100", 100), ("100B", 100), ("2TB", 2 * 1000**4), (4096, 4096), (" 1 GB ", 10**9),
])
def test_parse_size(text, size):
    assert parse_size(text) == size


@pytest.mark.parametrize("bad", ["16 megs", "-1MB", "MB", "1.2.3MB", "", "16XB", True, -5])
def test_parse_size_refuses(bad):
    with pytest.raises(ValueError):
        parse_size(bad)


@pytest.mark.parametrize("n, text", [(999, "999 B"), (1500, "1.5 kB"), (16_000_000, "16.0 MB"), (3 * 10**12, "3.0 TB")])
def test_format_size(n, text):
    assert format_size(n) == text


@pytest.mark.parametrize("n, text", [
    (16 * 1024**2, "16MiB"), (16_000_000, "16MB"), (1000, "1kB"), (1024, "1KiB"), (1023, "1023B"), (0, "0B"),
    (5 * 1024**4, "5TiB"),
])
def test_format_size_exact(n, text):
    assert format_size_exact(n) == text


@given(st.integers(min_value=0, max_value=10**15))
def test_exact_size_round_trips(n):
    assert parse_size(format_size_exact(n)) == n
