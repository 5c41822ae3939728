"""`lab load`: POS-like writes against an environment's current primary, with
an acknowledged-writes ledger.

Each transaction is one till sale: an account move with balanced lines, a
pos_order with 1–4 lines, and a stock move per line. Its ids go to the ledger
only after COMMIT returned. When the connection breaks (a failover, a restart),
the load counts the error, re-reads the environment, finds whichever server
now accepts writes, and carries on until the duration is over. A COMMIT that
fails with the connection is an unknown outcome and is never written to the ledger.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from erpops.errors import ErpopsError
from erpops.lab.ledger import LedgerWriter
from erpops.pg.connect import NodeTarget, connect
from erpops.pg.primary import find_primary, load_environment

STOCK, CUSTOMERS = 7, 4  # WH/Stock -> Partners/Customers, as seeded


@dataclass
class LoadStats:
    committed: int = 0
    errors: int = 0
    reconnects: int = 0
    primaries: list = field(default_factory=list)
    last_error: str | None = None
    started: float = field(default_factory=time.monotonic)
    downtime_s: float = 0.0

    def to_dict(self, ledger: Path, environment: str, dbname: str) -> dict:
        elapsed = time.monotonic() - self.started
        return {"environment": environment, "database": dbname, "ledger": str(ledger),
                "committed": self.committed, "errors": self.errors, "reconnects": self.reconnects,
                "elapsed_s": round(elapsed, 2), "rate": round(self.committed / elapsed, 2) if elapsed else 0,
                "downtime_s": round(self.downtime_s, 2), "primaries": self.primaries,
                "last_error": self.last_error}


class PosTill:
    """One connection writing till sales into one database."""

    def __init__(self, target: NodeTarget, dbname: str, rng: random.Random):
        self.target, self.dbname, self.rng = target, dbname, rng
        self.conn = connect(target, dbname=dbname, autocommit=False, application_name="erpops-lab-load")
        with self.conn.transaction():
            self.products = self.conn.execute(
                "SELECT p.id, t.list_price FROM product_product p JOIN product_template t ON t.id = p.product_tmpl_id "
                "WHERE p.active ORDER BY p.id LIMIT 500").fetchall()
            row = self.conn.execute("SELECT id FROM pos_session WHERE state = 'opened' ORDER BY id DESC LIMIT 1").fetchone()
            self.session = row[0] if row else self.conn.execute(
                "INSERT INTO pos_session (name, config_id, state, start_at) "
                "VALUES ('POS/LOAD', 1, 'opened', now()) RETURNING id").fetchone()[0]

    def sale(self) -> dict:
        """Write one sale in one transaction; returns the ids once COMMIT returned."""
        picks = [self.rng.choice(self.products) for _ in range(self.rng.randint(1, 4))]
        products = [p for p, _ in picks]
        prices = [price for _, price in picks]
        qtys = [self.rng.randint(1, 3) for _ in picks]
        total = sum(q * p for q, p in zip(qtys, prices))
        untaxed = round(total / 12 * 10, 2)
        c = self.conn
        with c.transaction():
            move_id = c.execute(
                "INSERT INTO account_move (name, ref, move_type, state, date, company_id, amount_total) "
                "VALUES ('POS/LOAD', 'till sale', 'entry', 'posted', current_date, 1, %s) RETURNING id",
                (total,)).fetchone()[0]
            c.execute(
                "INSERT INTO account_move_line (move_id, account_id, name, debit, credit, date, company_id) VALUES "
                "(%(m)s, 121, 'Receivable', %(t)s, 0, current_date, 1), (%(m)s, 701, 'Sales', 0, %(u)s, current_date, 1), "
                "(%(m)s, 4457, 'Output VAT 20%%', 0, %(t)s - %(u)s, current_date, 1)",
                {"m": move_id, "t": total, "u": untaxed})
            order_id = c.execute(
                "WITH o AS (SELECT nextval('pos_order_id_seq') AS id) "
                "INSERT INTO pos_order (id, name, pos_reference, session_id, company_id, date_order, state, "
                "amount_tax, amount_total, amount_paid, account_move) "
                "SELECT id, 'Shop/' || lpad(id::text, 6, '0'), 'Order LOAD-' || id, %s, 1, now(), 'paid', "
                "%s, %s, %s, %s FROM o RETURNING id",
                (self.session, total - untaxed, total, total, move_id)).fetchone()[0]
            line_ids = [r[0] for r in c.execute(
                "INSERT INTO pos_order_line (order_id, product_id, full_product_name, qty, price_unit, "
                "price_subtotal, price_subtotal_incl, company_id) "
                "SELECT %s, p, 'Product ' || p, q, pr, round(q * pr / 1.2, 2), q * pr, 1 "
                "FROM unnest(%s::int[], %s::numeric[], %s::numeric[]) AS u(p, q, pr) RETURNING id",
                (order_id, products, qtys, prices)).fetchall()]
            move_ids = [r[0] for r in c.execute(
                "INSERT INTO stock_move (name, reference, product_id, product_uom_qty, quantity, location_id, "
                "location_dest_id, state, date, origin, company_id) "
                "SELECT 'Product ' || p, 'Shop/' || lpad(%s::text, 6, '0'), p, q, q, %s, %s, 'done', now(), "
                "'POS load', 1 FROM unnest(%s::int[], %s::numeric[]) AS u(p, q) RETURNING id",
                (order_id, STOCK, CUSTOMERS, products, qtys)).fetchall()]
        # Only here has COMMIT returned: the write is acknowledged.
        return {"id": order_id, "kind": "pos_order",
                "refs": {"pos_order_line": line_ids, "stock_move": move_ids, "account_move": [move_id]}}

    def close(self) -> None:
        try:
            self.conn.close()
        except Exception:  # noqa: BLE001 - a dead connection may fail to close; it is gone either way
            return


def run_load(environment_name: str, *, rate: float, duration: float, ledger: Path,
             dbname: str | None = None, on_event: Callable[[str], None] = lambda m: None,
             seed: int | None = None) -> dict:
    """Write till sales at ``rate`` per second for ``duration`` seconds; returns the summary."""
    import psycopg

    env = load_environment(environment_name)
    db = dbname or (env.tenants[0] if env.tenants else None) or "retail"
    rng = random.Random(seed)
    stats = LoadStats()
    deadline = time.monotonic() + duration
    interval = 1.0 / rate if rate > 0 else 0.0
    till = _connect_till(environment_name, db, rng, stats, deadline, on_event, first=True)
    next_at = time.monotonic()
    with LedgerWriter(ledger) as writer:
        while till is not None and time.monotonic() < deadline:
            delay = next_at - time.monotonic()
            if delay > 0:
                time.sleep(min(delay, max(deadline - time.monotonic(), 0)))
                if time.monotonic() >= deadline:
                    break
            next_at = max(next_at + interval, time.monotonic() - 1.0)  # never burst more than 1 s of backlog
            try:
                entry = till.sale()
            except (psycopg.Error, OSError) as exc:
                stats.errors += 1
                stats.last_error = _one_line(exc)
                on_event(f"write failed on {till.target.name}: {stats.last_error}; reconnecting")
                till.close()
                lost_at = time.monotonic()
                till = _connect_till(environment_name, db, rng, stats, deadline, on_event)
                stats.downtime_s += time.monotonic() - lost_at
                continue
            entry.update(ts=datetime.now(timezone.utc).isoformat(timespec="microseconds"), db=db,
                         node=till.target.name)
            writer.append(entry)
            stats.committed += 1
    if till is not None:
        till.close()
    return stats.to_dict(ledger, environment_name, db)


def _connect_till(environment_name: str, db: str, rng, stats: LoadStats, deadline: float,
                  on_event, first: bool = False) -> PosTill | None:
    """Find the environment's current primary and open a till on it; retry until the deadline."""
    import psycopg

    while True:
        try:
            env = load_environment(environment_name)  # re-read: a failover may have changed it
            target = find_primary(env)
            till = PosTill(target, db, rng)
        except (ErpopsError, psycopg.Error, OSError) as exc:
            if first:
                raise
            stats.last_error = getattr(exc, "message", None) or _one_line(exc)
            if time.monotonic() >= deadline:
                on_event(f"no primary before the end of the run: {stats.last_error}")
                return None
            time.sleep(0.5)
            continue
        if not first:
            stats.reconnects += 1
            on_event(f"reconnected to {target.name} ({target.address})")
        if not stats.primaries or stats.primaries[-1] != target.name:
            stats.primaries.append(target.name)
        return till


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
