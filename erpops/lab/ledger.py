"""The acknowledged-writes ledger: one JSON line per committed transaction.

A line is appended only after COMMIT returned, then flushed and fsynced, so the
ledger never claims a write the database did not acknowledge. `ledger-check`
proves the converse after a failover, restore or cutover: every id in the
ledger is still in the environment's current primary.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from erpops.errors import UsageError, VerificationFailed

# kind -> table; a ledger entry names its main row and the rows written with it.
TABLES = {"pos_order": "pos_order", "pos_order_line": "pos_order_line",
          "stock_move": "stock_move", "account_move": "account_move"}
BATCH = 1000


class LedgerWriter:
    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = open(self.path, "a", encoding="utf-8")

    def append(self, entry: dict) -> None:
        self._fh.write(json.dumps(entry, separators=(",", ":")) + "\n")
        self._fh.flush()
        os.fsync(self._fh.fileno())

    def close(self) -> None:
        self._fh.close()

    def __enter__(self) -> "LedgerWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def read(path: Path) -> tuple[list[dict], int]:
    """(entries, torn): a torn last line (the writer died mid-line) is not an
    acknowledged write and is skipped; a bad line elsewhere is an error."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").split("\n")
    except FileNotFoundError:
        raise UsageError(f"ledger file not found: {path}", hint="write one with: erpops lab load --ledger FILE") from None
    entries, torn = [], 0
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
            if not isinstance(entry, dict) or "id" not in entry or entry.get("kind") not in TABLES:
                raise ValueError("not a ledger entry")
        except ValueError as exc:
            if number == len(lines) or (number == len(lines) - 1 and not lines[-1]):
                torn += 1
                continue
            raise UsageError(f"{path}:{number}: not a ledger line ({exc})") from None
        entries.append(entry)
    return entries, torn


def expected_rows(entries: list[dict]) -> dict[str, dict[str, set[int]]]:
    """{db: {table: {ids}}} for every row the ledger says was committed."""
    out: dict[str, dict[str, set[int]]] = {}
    for e in entries:
        per_db = out.setdefault(e.get("db") or "", {})
        per_db.setdefault(TABLES[e["kind"]], set()).add(int(e["id"]))
        for kind, ids in (e.get("refs") or {}).items():
            if kind in TABLES:
                per_db.setdefault(TABLES[kind], set()).update(int(i) for i in ids)
    return out


def missing_rows(conn, table: str, ids: set[int]) -> list[int]:
    ordered = sorted(ids)
    missing = []
    for start in range(0, len(ordered), BATCH):
        batch = ordered[start:start + BATCH]
        found = {r[0] for r in conn.execute(f"SELECT id FROM {table} WHERE id = ANY(%s)", (batch,))}
        missing.extend(i for i in batch if i not in found)
    return missing


def check(path: Path, environment, *, dbname: str | None = None) -> dict:
    """Verify every acknowledged write exists in the environment's current primary.
    Returns the report; raises VerificationFailed (exit 4) naming the missing rows."""
    from erpops.pg.connect import connect
    from erpops.pg.primary import find_primary

    entries, torn = read(path)
    primary = find_primary(environment)
    default_db = dbname or (environment.tenants[0] if getattr(environment, "tenants", None) else None)
    report = {"ledger": str(path), "environment": environment.name, "primary": primary.name,
              "transactions": len(entries), "torn_lines": torn, "rows_checked": 0, "missing": []}
    for db, tables in sorted(expected_rows(entries).items()):
        target_db = dbname or db or default_db
        if not target_db:
            raise UsageError("the ledger does not name a database and the environment has no tenants",
                             hint="pass --db NAME")
        with connect(primary, dbname=target_db) as conn:
            for table, ids in sorted(tables.items()):
                report["rows_checked"] += len(ids)
                report["missing"] += [f"{target_db}/{table}:{i}" for i in missing_rows(conn, table, ids)]
    if report["missing"]:
        shown = ", ".join(report["missing"][:50]) + (" ..." if len(report["missing"]) > 50 else "")
        exc = VerificationFailed(
            f"{len(report['missing'])} acknowledged row(s) missing from {primary.name} ({primary.address}): {shown}",
            where=str(path), hint="these writes were acknowledged to the client and are lost",
        )
        exc.report = report
        raise exc
    return report
