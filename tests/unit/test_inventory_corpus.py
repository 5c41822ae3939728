"""Every malformed inventory in tests/data/bad_inventories is refused the way a
user should see it: exit 2, ``FILE:LINE:`` on stderr, no traceback.

A corpus file may state what it expects in comment lines
``# expect: LINE: message fragment``; each must appear as one diagnostic.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

CORPUS = Path(__file__).resolve().parents[1] / "data" / "bad_inventories"
FILES = sorted(CORPUS.glob("*.yaml"))
EXPECT = re.compile(r"^# expect: (\d+): (.*)$", re.MULTILINE)


def test_corpus_is_large_enough():
    assert len(FILES) >= 25


def _expectations(path: Path) -> list[tuple[int, str]]:
    text = path.read_bytes().decode("utf-8", "replace")
    return [(int(line), fragment.strip()) for line, fragment in EXPECT.findall(text)]


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_malformed_inventory_is_refused_with_a_position(erpops, path):
    result = erpops("--config", str(path), "config", "validate")
    assert result.returncode == 2, result.output
    assert "Traceback" not in result.output
    assert re.search(rf"^(erpops: )?{re.escape(str(path))}:\d+:\d+ ", result.stderr, re.MULTILINE), result.stderr
    lines = result.stderr.splitlines()
    for line, fragment in _expectations(path):
        prefix = f"{path}:{line}:"
        assert any(prefix in out and fragment in out for out in lines), (
            f"expected a diagnostic at {prefix} containing {fragment!r}; got:\n{result.stderr}")


def test_all_errors_of_a_file_are_reported_together(erpops):
    path = CORPUS / "34_several_errors.yaml"
    result = erpops("--config", str(path), "config", "validate")
    assert "5 errors in" in result.stderr
    # one mistake (teir for tier) is one error, not also a "missing tier"
    assert "missing required key 'tier'" not in result.stderr


def test_an_inline_password_is_never_echoed(erpops):
    for name, secret in (("14_inline_password.yaml", "hunter2"), ("34_several_errors.yaml", "s3cret-inline"),
                         ("35_password_in_url.yaml", "hunter2"), ("41_secret_is_a_number.yaml", "8675309")):
        result = erpops("--config", str(CORPUS / name), "config", "validate")
        assert result.returncode == 2
        assert secret not in result.output


def test_errors_as_json(erpops):
    path = CORPUS / "20_unknown_repository.yaml"
    result = erpops("--json", "--config", str(path), "config", "validate")
    assert result.returncode == 2
    doc = json.loads(result.stdout)
    assert doc["exit_code"] == 2
    [diag] = doc["diagnostics"]
    assert diag == {"file": str(path), "line": 7, "column": 17, "path": "environments.prod.repository",
                    "message": "no repository named 'ofsite' — did you mean 'offsite'?"}
