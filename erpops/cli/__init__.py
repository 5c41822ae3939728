"""The command line. ``erpops.cli.main`` is the console script."""

from erpops.cli.app import app, main

__all__ = ["app", "main"]
