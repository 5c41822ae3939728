"""Every malformed runbook in tests/data/bad_runbooks is refused by
`erpops runbook validate` with exit 2, FILE:LINE: and no traceback."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

CORPUS = sorted((Path(__file__).parents[1] / "data" / "bad_runbooks").glob("*.yaml"))


def test_corpus_is_large_enough():
    assert len(CORPUS) >= 22


@pytest.mark.parametrize("path", CORPUS, ids=[p.stem for p in CORPUS])
def test_bad_runbook_is_refused_with_position(erpops, path):
    result = erpops("runbook", "validate", str(path))
    assert result.returncode == 2, result.output
    assert re.search(re.escape(str(path)) + r":\d+:\d+", result.stderr), result.stderr
    assert "Traceback" not in result.output
    assert "nothing was run" in result.stderr


def test_scene4_reports_both_errors_at_once(erpops):
    path = next(p for p in CORPUS if p.stem == "scene4_two_errors")
    result = erpops("runbook", "validate", str(path))
    assert f"{path}:8:11" in result.stderr
    assert 'did you mean \'http.check\'' in result.stderr
    assert f"{path}:14:22" in result.stderr and "'two hundred'" in result.stderr
    assert "2 errors" in result.stderr
