"""A restored database as a copy: a new identity, as Odoo gives a duplicated database.

Odoo identifies a database by ``database.uuid`` (licensing, IAP, the
publisher warranty) and signs sessions and tokens with ``database.secret``.
Two databases sharing them collide: the copy could act as the original
towards Odoo's services, and a session of one would be valid in the other.
So a copy gets a fresh uuid, secret and create_date, and loses
``database.enterprise_code`` (the subscription belongs to the original).
"""

from __future__ import annotations

import secrets
import uuid
from datetime import datetime, timezone


def _has_table(cur, table: str) -> bool:
    cur.execute("SELECT to_regclass(%s) IS NOT NULL", (f"public.{table}",))
    return bool(cur.fetchone()[0])


def set_parameter(cur, key: str, value: str) -> None:
    """Update ``key`` in ir_config_parameter, or insert it (no reliance on a constraint name)."""
    cur.execute("UPDATE ir_config_parameter SET value = %s WHERE key = %s", (value, key))
    if cur.rowcount == 0:
        cur.execute("INSERT INTO ir_config_parameter (key, value) VALUES (%s, %s)", (key, value))


def make_copy(conn) -> dict:
    """Give the database behind ``conn`` a new identity (one transaction). Returns what
    changed, without the secret: {"uuid": new uuid, "enterprise_code_removed": bool}."""
    new_uuid = str(uuid.uuid4())
    with conn.transaction(), conn.cursor() as cur:
        if not _has_table(cur, "ir_config_parameter"):
            return {"uuid": None, "enterprise_code_removed": False, "skipped": "no ir_config_parameter table"}
        set_parameter(cur, "database.uuid", new_uuid)
        set_parameter(cur, "database.secret", secrets.token_urlsafe(32))
        set_parameter(cur, "database.create_date", datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S"))
        cur.execute("DELETE FROM ir_config_parameter WHERE key = 'database.enterprise_code'")
        removed = cur.rowcount > 0
    return {"uuid": new_uuid, "enterprise_code_removed": removed}
