"""Odoo's manifest.json values derived from an erpops manifest, and back."""

from __future__ import annotations

from types import SimpleNamespace

from erpops.odoo.odoo_manifest import from_odoo, odoo_pg_version, odoo_release, to_odoo


def test_versions_as_odoo_spells_them():
    assert odoo_release("17.0.1.3") == ("17.0", [17, 0, 0, "final", 0, ""])
    assert odoo_release("saas~17.2.1.0")[0] == "saas~17.2"
    assert odoo_release(None) == (None, None)
    assert odoo_pg_version("15.18") == "15.0" and odoo_pg_version("9.6.24") == "9.6" and odoo_pg_version("16") == "16.0"


def test_to_odoo_has_odoos_keys():
    m = SimpleNamespace(odoo_version="16.0.1.3", pg_version="15.4", modules={"sale": "16.0.1.1", "base": "16.0.1.3"})
    doc = to_odoo(m, "store")
    assert list(doc) == ["odoo_dump", "db_name", "version", "version_info", "major_version", "pg_version", "modules"]
    assert doc["db_name"] == "store" and doc["major_version"] == "16.0" and doc["pg_version"] == "15.0"


def test_from_odoo_prefers_the_base_module_version():
    assert from_odoo({"version": "17.0", "modules": {"base": "17.0.1.3", "web": None}, "pg_version": "15.0"}) == \
        {"odoo_version": "17.0.1.3", "modules": {"base": "17.0.1.3", "web": ""}, "pg_version": "15.0"}
    assert from_odoo(None) == {"odoo_version": None, "modules": {}, "pg_version": None}
    assert from_odoo({"version": "14.0", "modules": "junk"})["odoo_version"] == "14.0"
