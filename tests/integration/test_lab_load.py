"""`lab load` and `lab ledger-check` against the shared lab: every acknowledged
write is in the ledger and in the database; a lost row is named, exit 4."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def loaded(lab, tmp_path_factory):
    """A few seconds of POS load; returns (ledger path, summary)."""
    ledger = tmp_path_factory.mktemp("ledger") / "ledger.jsonl"
    result = lab.erpops("lab", "load", "--rate", "25", "--duration", "3s", "--ledger", str(ledger), "--json")
    assert result.returncode == 0, result.output
    return ledger, json.loads(result.stdout)


def test_load_commits_and_records_each_write(lab, loaded):
    ledger, summary = loaded
    entries = [json.loads(line) for line in ledger.read_text().splitlines()]
    assert summary["committed"] == len(entries) >= 20
    assert summary["errors"] == 0 and summary["reconnects"] == 0
    assert summary["primaries"] == ["lab-primary"]
    ids = [e["id"] for e in entries]
    assert len(set(ids)) == len(ids) and all(e["kind"] == "pos_order" and e["db"] == "retail" for e in entries)
    with lab.connect() as conn:
        unbalanced = conn.execute(
            "SELECT count(*) FROM (SELECT move_id FROM account_move_line WHERE move_id = ANY(%s) "
            "GROUP BY move_id HAVING sum(debit) <> sum(credit)) x",
            ([e["refs"]["account_move"][0] for e in entries],)).fetchone()[0]
        lines = conn.execute("SELECT count(*) FROM pos_order_line WHERE order_id = ANY(%s)", (ids,)).fetchone()[0]
    assert unbalanced == 0
    assert lines == sum(len(e["refs"]["pos_order_line"]) for e in entries)


def test_ledger_check_passes(lab, loaded):
    ledger, summary = loaded
    result = lab.erpops("lab", "ledger-check", str(ledger), "-e", "lab", "--json")
    assert result.returncode == 0, result.output
    report = json.loads(result.stdout)
    assert report["ok"] is True and report["transactions"] == summary["committed"]
    assert report["missing"] == [] and report["primary"] == "lab-primary"


def test_ledger_check_names_a_lost_row_and_exits_4(lab, loaded, tmp_path):
    ledger, _ = loaded
    entries = [json.loads(line) for line in ledger.read_text().splitlines()]
    victim = entries[len(entries) // 2]
    # Check a copy holding the victim, so the module's main ledger stays valid.
    copy = tmp_path / "ledger.jsonl"
    copy.write_text(json.dumps(victim) + "\n")
    with lab.connect() as conn:
        conn.execute("DELETE FROM pos_order WHERE id = %s", (victim["id"],))  # lines cascade, as in Odoo
    result = lab.erpops("lab", "ledger-check", str(copy))
    assert result.returncode == 4, result.output
    assert f"retail/pos_order:{victim['id']}" in result.stdout
    assert f"pos_order:{victim['id']}" in result.stderr and "missing" in result.stderr
    as_json = lab.erpops("lab", "ledger-check", str(copy), "--json")
    assert as_json.returncode == 4
    report = json.loads(as_json.stdout)
    assert report["ok"] is False and f"retail/pos_order:{victim['id']}" in report["missing"]
    lost_lines = [f"retail/pos_order_line:{i}" for i in victim["refs"]["pos_order_line"]]
    assert set(lost_lines) <= set(report["missing"])


def test_a_torn_last_line_is_not_an_acknowledged_write(lab, loaded, tmp_path):
    ledger, summary = loaded
    lines = ledger.read_text().splitlines()
    torn = tmp_path / "torn.jsonl"
    torn.write_text("\n".join(lines[:3]) + "\n" + '{"id": 99999999, "kind": "pos_or')
    result = lab.erpops("lab", "ledger-check", str(torn), "--json")
    assert result.returncode == 0, result.output
    report = json.loads(result.stdout)
    assert report["transactions"] == 3 and report["torn_lines"] == 1


def test_a_corrupt_ledger_line_is_a_usage_error(lab, tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('not json\n{"id": 1, "kind": "pos_order"}\n')
    result = lab.erpops("lab", "ledger-check", str(bad))
    assert result.returncode == 2
    assert f"{bad}:1" in result.stderr
