"""Odoo's own backup formats: read them (archive), write them (export), store them (importer)."""
