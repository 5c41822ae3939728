"""The inventory: environments (PostgreSQL, tenants, filestore, Redis, Odoo,
Traefik, freeze windows), repositories and audit settings, read from
``erpops.yaml`` with positioned errors. docs/inventory.md is the reference."""

from erpops.config.inventory import Inventory
from erpops.config.loader import find_inventory, load_inventory, read_inventory_file
from erpops.config.model import Environment, FreezeWindow, PgNode, Repository
from erpops.config.types import Via, parse_via

__all__ = ["Environment", "FreezeWindow", "Inventory", "PgNode", "Repository", "Via",
           "find_inventory", "load_inventory", "parse_via", "read_inventory_file"]
