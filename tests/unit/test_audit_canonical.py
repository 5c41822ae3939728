"""Canonical JSON: the exact bytes every verifier must reproduce."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from erpops.audit.canonical import NotCanonical, canonical, normalize


def test_sorted_keys_no_whitespace_utf8():
    assert canonical({"b": 1, "a": [True, None, "é"], "c": {"z": "", "y": -2}}) == \
        '{"a":[true,null,"é"],"b":1,"c":{"y":-2,"z":""}}'.encode()


def test_string_escapes_follow_json_stringify():
    assert canonical('"\\\b\f\n\r\t\x01\x1f\x7f\u2028') == b'"\\"\\\\\\b\\f\\n\\r\\t\\u0001\\u001f\x7f\xe2\x80\xa8"'


def test_keys_sort_by_utf16_code_units_as_rfc8785():
    # U+1F600 is a surrogate pair (D83D DE00) in UTF-16 and so sorts before U+FB01.
    assert canonical({"\ufb01": 1, "\U0001f600": 2}) == '{"\U0001f600":2,"\ufb01":1}'.encode()


@pytest.mark.parametrize("value", [1.5, float("nan"), 2**53, {"x": [0.1]}])
def test_no_floats_or_unsafe_integers(value):
    with pytest.raises(NotCanonical):
        canonical(value)


def test_normalize_makes_engine_data_canonical():
    when = datetime(2026, 12, 3, 10, 15, tzinfo=timezone.utc)
    data = {"f": 1.5, "whole": 2.0, "big": 2**60, "t": (1, 2), "p": Path("/x"), "when": when,
            "inf": float("inf"), 3: "int key", "s": {"b", "a"}}
    assert normalize(data) == {"f": "1.5", "whole": 2, "big": str(2**60), "t": [1, 2], "p": "/x",
                               "when": "2026-12-03T10:15:00+00:00", "inf": "inf", "3": "int key",
                               "s": ["a", "b"]}
    canonical(normalize(data))


json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-(2**53) + 1, 2**53 - 1), st.text()),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=12)


@settings(max_examples=200, deadline=None)
@given(json_values)
def test_canonical_is_stable_through_parsing(value):
    text = canonical(value)
    assert canonical(json.loads(text)) == text
    assert json.loads(text) == value


@settings(max_examples=200, deadline=None)
@given(json_values)
def test_reference_rule_matches(value):
    """The ~5-line canonicalizer of docs/audit-log.md gives the same bytes."""
    def canon(v):
        if isinstance(v, dict):
            return "{" + ",".join(json.dumps(k, ensure_ascii=False) + ":" + canon(v[k])
                                  for k in sorted(v, key=lambda k: k.encode("utf-16-be", "surrogatepass"))) + "}"
        if isinstance(v, list):
            return "[" + ",".join(map(canon, v)) + "]"
        return json.dumps(v, ensure_ascii=False)

    try:
        expected = canon(value).encode("utf-8")
    except UnicodeEncodeError:
        with pytest.raises(NotCanonical):
            canonical(value)
        return
    assert canonical(value) == expected


def test_undecodable_subprocess_bytes_are_kept_as_text():
    line = b"caf\xe9 \xff".decode("utf-8", "surrogateescape")
    assert normalize({"line": line}) == {"line": "caf\\udce9 \\udcff"}
    canonical(normalize({"line": line}))
