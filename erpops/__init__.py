"""erpops: the operator's tool for an Odoo-based retail ERP platform."""

__version__ = "0.1.0"
