"""Odoo's manifest.json, from an erpops manifest and back.

Odoo's database manager writes (odoo/service/db.py, dump_db_manifest)::

    {"odoo_dump": "1", "db_name": ..., "version": release.version ("17.0"),
     "version_info": release.version_info ([17, 0, 0, "final", 0, ""]),
     "major_version": "17.0", "pg_version": "15.0", "modules": {name: latest_version}}

Its pg_version is ``"%d.%d" % divmod(server_version / 100, 100)``: for
PostgreSQL 10 and later that is "<major>.0" (15.4 -> "15.0"); we reproduce it
so that tools comparing manifests see what Odoo would have written.
erpops records the base module's ``latest_version`` ("17.0.1.3") as
odoo_version; Odoo's release version is its first two parts.
"""

from __future__ import annotations

import re

_VERSION = re.compile(r"^(\d+)\.(\d+)")
_SAAS = re.compile(r"^(saas~\d+)\.(\d+)")


def odoo_release(odoo_version: str | None) -> tuple[str | None, list | None]:
    """(version, version_info) of the Odoo release a base module version belongs to."""
    if not odoo_version:
        return None, None
    m = _VERSION.match(odoo_version) or _SAAS.match(odoo_version)
    if not m:
        return odoo_version, None
    if m.re is _SAAS:
        return f"{m.group(1)}.{m.group(2)}", None
    major, minor = int(m.group(1)), int(m.group(2))
    return f"{major}.{minor}", [major, minor, 0, "final", 0, ""]


def odoo_pg_version(pg_version: str | None) -> str | None:
    """PostgreSQL's version as Odoo's manifest spells it ("15.18" -> "15.0", "9.6.24" -> "9.6")."""
    m = re.match(r"^(\d+)(?:\.(\d+))?", pg_version or "")
    if not m:
        return pg_version
    major, minor = int(m.group(1)), int(m.group(2) or 0)
    return f"{major}.0" if major >= 10 else f"{major}.{minor}"


def to_odoo(manifest, db_name: str) -> dict:
    """manifest.json for an erpops Manifest, keys in Odoo's order."""
    version, version_info = odoo_release(manifest.odoo_version)
    return {
        "odoo_dump": "1",
        "db_name": db_name,
        "version": version,
        "version_info": version_info,
        "major_version": version,
        "pg_version": odoo_pg_version(manifest.pg_version),
        "modules": dict(sorted(manifest.modules.items())),
    }


def from_odoo(doc: dict | None) -> dict:
    """What an Odoo manifest.json tells an erpops manifest: odoo_version, modules, pg_version."""
    doc = doc or {}
    modules = doc.get("modules") if isinstance(doc.get("modules"), dict) else {}
    modules = {str(k): "" if v is None else str(v) for k, v in modules.items()}
    version = doc.get("version")
    odoo_version = modules.get("base") or (str(version) if version else None)
    pg = doc.get("pg_version")
    return {"odoo_version": odoo_version, "modules": modules, "pg_version": str(pg) if pg else None}
