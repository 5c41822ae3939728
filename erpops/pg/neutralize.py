"""Neutralize a restored Odoo database: a copy that cannot act on the outside world.

What Odoo does for a non-production copy (``odoo neutralize``, the database
manager's "neutralize" box), as SQL on the tables that exist: scheduled
actions stop (all but the autovacuum job, which only cleans up), outgoing
and incoming mail servers are switched off, payment providers leave
production, shipping carriers leave their production accounts, and
``database.is_neutralized`` marks the database so Odoo shows its banner.
A table or column the database lacks (a module not installed) is skipped.
"""

from __future__ import annotations

from erpops.pg.copy_identity import set_parameter
from erpops.pg.facts import public_columns

# (name, table, columns it needs, statement)
STATEMENTS = (
    ("crons", "ir_cron", {"active"},
     "UPDATE ir_cron SET active = false WHERE active{keep_autovacuum}"),
    ("mail servers", "ir_mail_server", {"active"},
     "UPDATE ir_mail_server SET active = false WHERE active"),
    ("incoming mail servers", "fetchmail_server", {"active"},
     "UPDATE fetchmail_server SET active = false WHERE active"),
    ("payment providers", "payment_provider", {"state"},
     "UPDATE payment_provider SET state = 'disabled' WHERE state NOT IN ('test', 'disabled')"),
    ("payment acquirers", "payment_acquirer", {"state"},  # the same model before Odoo 16
     "UPDATE payment_acquirer SET state = 'disabled' WHERE state NOT IN ('test', 'disabled')"),
    ("delivery carriers", "delivery_carrier", {"prod_environment"},
     "UPDATE delivery_carrier SET prod_environment = false WHERE prod_environment"),
)

KEEP_AUTOVACUUM = (" AND id NOT IN (SELECT res_id FROM ir_model_data "
                   "WHERE model = 'ir.cron' AND module = 'base' AND name = 'autovacuum_job')")


def neutralize(conn) -> dict:
    """Neutralize the database behind ``conn`` (one transaction). Returns rows changed per
    kind, and the kinds skipped because their table is absent."""
    changed: dict[str, int] = {}
    skipped: list[str] = []
    with conn.transaction(), conn.cursor() as cur:
        columns = public_columns(cur)
        for name, table, needs, statement in STATEMENTS:
            if not needs <= columns.get(table, set()):
                skipped.append(name)
                continue
            keep = KEEP_AUTOVACUUM if {"res_id", "model", "module", "name"} <= columns.get("ir_model_data", set()) else ""
            cur.execute(statement.format(keep_autovacuum=keep))
            changed[name] = cur.rowcount
        if "ir_config_parameter" in columns:
            set_parameter(cur, "database.is_neutralized", "True")
        else:
            skipped.append("database.is_neutralized")
    return {"changed": changed, "skipped": skipped}
