"""Which databases on a server are Odoo databases (tenants).

An inventory may list its tenants; when it does not, erpops asks the primary:
every database that accepts connections and has Odoo's module table
``ir_module_module`` is a tenant. Templates and the maintenance database are
never tenants.
"""

from __future__ import annotations

from erpops.pg.connect import NodeTarget, connect

LIST_DATABASES = """
SELECT datname FROM pg_database
WHERE datallowconn AND NOT datistemplate
ORDER BY datname
"""


def is_odoo_database(target: NodeTarget, dbname: str) -> bool:
    with connect(target, dbname=dbname) as conn:
        row = conn.execute("SELECT to_regclass('public.ir_module_module') IS NOT NULL").fetchone()
    return bool(row[0])


def discover_tenants(target: NodeTarget) -> list[str]:
    """Names of the Odoo databases on the server, sorted."""
    with connect(target) as conn:
        names = [r[0] for r in conn.execute(LIST_DATABASES).fetchall()]
    return [name for name in names if name != "postgres" and is_odoo_database(target, name)]


def environment_tenants(environment) -> list[str]:
    """The environment's tenants: as listed in the inventory, else discovered on its primary."""
    listed = getattr(environment, "tenants", None)
    if listed:
        return list(listed)
    return discover_tenants(NodeTarget.from_node(environment.postgres.primary))
