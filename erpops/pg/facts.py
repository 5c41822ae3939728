"""Facts about an Odoo database, read inside a backup's snapshot.

What a later restore or drill compares against: the PostgreSQL and Odoo
versions, the installed modules, exact row counts of the main tables and
business checksums (money and stock totals as exact decimal text, never
floats). Tables or columns that a database does not have are left out rather
than guessed, so the same code reads a full Odoo database and the lab's subset.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# The tables whose row counts a restore drill compares; missing ones are skipped.
MAIN_TABLES = (
    "res_company", "res_partner", "res_users",
    "product_template", "product_product",
    "sale_order", "sale_order_line",
    "pos_session", "pos_order", "pos_order_line",
    "account_move", "account_move_line",
    "stock_location", "stock_move", "stock_quant",
    "ir_attachment", "ir_module_module",
)

# (checksum name, table, numeric column): totals as exact decimal text.
AMOUNT_TOTALS = (
    ("stock_quant.quantity", "stock_quant", "quantity"),
    ("stock_quant.reserved_quantity", "stock_quant", "reserved_quantity"),
    ("sale_order.amount_total", "sale_order", "amount_total"),
    ("sale_order.amount_untaxed", "sale_order", "amount_untaxed"),
    ("pos_order.amount_total", "pos_order", "amount_total"),
    ("pos_order.amount_paid", "pos_order", "amount_paid"),
)


@dataclass
class DatabaseFacts:
    pg_version: str
    odoo_version: str | None
    modules: dict[str, str] = field(default_factory=dict)
    row_counts: dict[str, int] = field(default_factory=dict)
    checksums: dict[str, str] = field(default_factory=dict)


def public_columns(cur) -> dict[str, set[str]]:
    """table -> column names, for the public schema (one query instead of many probes)."""
    cur.execute("SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = 'public'")
    out: dict[str, set[str]] = {}
    for table, column in cur.fetchall():
        out.setdefault(table, set()).add(column)
    return out


def read_facts(cur) -> DatabaseFacts:
    """Everything above, through ``cur`` (a cursor inside the snapshot's transaction)."""
    facts, columns = read_identity(cur)
    read_totals(cur, facts, columns)
    return facts


def read_identity(cur) -> tuple[DatabaseFacts, dict[str, set[str]]]:
    """The versions and installed modules (a few quick queries), and the column map
    that read_totals needs."""
    cur.execute("SHOW server_version")
    pg_version = cur.fetchone()[0].split()[0]
    columns = public_columns(cur)
    facts = DatabaseFacts(pg_version=pg_version, odoo_version=None)
    if {"name", "state", "latest_version"} <= columns.get("ir_module_module", set()):
        cur.execute("SELECT name, coalesce(latest_version, '') FROM ir_module_module "
                    "WHERE state = 'installed' ORDER BY name")
        facts.modules = {name: version for name, version in cur.fetchall()}
        cur.execute("SELECT latest_version FROM ir_module_module WHERE name = 'base'")
        row = cur.fetchone()
        facts.odoo_version = row[0] if row else None
    return facts, columns


def read_totals(cur, facts: DatabaseFacts, columns: dict[str, set[str]]) -> None:
    """Row counts and business checksums into ``facts``: whole-table scans, the slow part."""
    for table in MAIN_TABLES:
        if table in columns:
            cur.execute(f'SELECT count(*) FROM public."{table}"')
            facts.row_counts[table] = int(cur.fetchone()[0])
    facts.checksums.update(_journal_balances(cur, columns))
    for name, table, column in AMOUNT_TOTALS:
        if column in columns.get(table, set()):
            cur.execute(f'SELECT coalesce(sum("{column}"), 0)::text FROM public."{table}"')
            facts.checksums[name] = cur.fetchone()[0]


def _journal_balances(cur, columns: dict[str, set[str]]) -> dict[str, str]:
    """sum(debit) - sum(credit) per journal: zero in a healthy ledger, and a
    fingerprint of every posted amount. Odoo stores journal_id on the lines;
    a schema without it is joined through account_move, else one total."""
    lines = columns.get("account_move_line", set())
    if not {"debit", "credit"} <= lines:
        return {}
    if "journal_id" in lines:
        query = ("SELECT journal_id, (sum(debit) - sum(credit))::text FROM account_move_line "
                 "GROUP BY journal_id ORDER BY journal_id")
    elif "move_id" in lines and "journal_id" in columns.get("account_move", set()):
        query = ("SELECT m.journal_id, (sum(l.debit) - sum(l.credit))::text FROM account_move_line l "
                 "JOIN account_move m ON m.id = l.move_id GROUP BY m.journal_id ORDER BY m.journal_id")
    else:
        cur.execute("SELECT (coalesce(sum(debit), 0) - coalesce(sum(credit), 0))::text FROM account_move_line")
        return {"account_move_line.balance": cur.fetchone()[0]}
    cur.execute(query)
    out = {f"account_move_line.balance[journal={journal}]": total for journal, total in cur.fetchall()}
    cur.execute("SELECT coalesce(sum(debit), 0)::text, coalesce(sum(credit), 0)::text FROM account_move_line")
    debit, credit = cur.fetchone()
    out["account_move_line.debit"] = debit
    out["account_move_line.credit"] = credit
    return out
