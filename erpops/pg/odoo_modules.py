"""The Odoo version and installed modules of a database, and how two sets differ.

A restore compares what a backup recorded with what the target environment
runs: a database restored under an Odoo of another series, or without the
code of a module it has installed, does not start (or worse, half works).
The target's Odoo is read from one of its databases (the one being replaced,
else another tenant); when it has none, the comparison is "unknown".
"""

from __future__ import annotations

from erpops.pg.connect import NodeTarget, connect

DIFFERENCES_NAMED = 15


def installed_modules(target: NodeTarget, dbname: str) -> tuple[str | None, dict[str, str]] | None:
    """(base version, {module: version}) of an Odoo database; None when it is not one."""
    with connect(target, dbname=dbname, application_name="erpops restore") as conn:
        if not conn.execute("SELECT to_regclass('public.ir_module_module') IS NOT NULL").fetchone()[0]:
            return None
        rows = conn.execute("SELECT name, coalesce(latest_version, '') FROM ir_module_module "
                            "WHERE state = 'installed' ORDER BY name").fetchall()
    modules = {name: version for name, version in rows}
    return modules.get("base"), modules


def series(version: str | None) -> str | None:
    """'17.0' from '17.0.1.3' (Odoo module versions start with the series)."""
    if not version:
        return None
    parts = version.split(".")
    return ".".join(parts[:2]) if len(parts) >= 2 else version


def differences(backup_version: str | None, backup_modules: dict[str, str],
                target_version: str | None, target_modules: dict[str, str]) -> list[str]:
    """What would stop the backup from running on the target's Odoo: another series,
    a module the target does not have, a module at another version."""
    out = []
    if series(backup_version) != series(target_version):
        out.append(f"Odoo {series(backup_version) or 'unknown'} in the backup, "
                   f"{series(target_version) or 'unknown'} on the target")
    for name in sorted(backup_modules):
        if name not in target_modules:
            out.append(f"module {name} installed in the backup, not on the target")
        elif backup_modules[name] != target_modules[name]:
            out.append(f"module {name} {backup_modules[name] or '?'} in the backup, "
                       f"{target_modules[name] or '?'} on the target")
    return out
