"""`erpops doctor`: prerequisites and endpoints, with the fix for each failure."""

from __future__ import annotations

from typing import Optional

import typer

from erpops.cli.context import OPTIONS, env_name, json_mode


def doctor(
    env: Optional[str] = typer.Option(None, "-e", "--env", help="Also check every endpoint of this environment."),
    json: bool = typer.Option(False, "--json", help="One JSON document on stdout."),
) -> None:
    """Check this machine's prerequisites and the reachability of an environment.

    Example: erpops doctor -e prod
    """
    from erpops.doctor import run_doctor
    from erpops.ui.output import show_result

    environment = inventory = None
    name = env_name(env, default=None)
    if name:
        from erpops.config import load_inventory

        inventory = load_inventory(OPTIONS.config)
        environment = inventory.environment(name)
    checks = run_doctor(environment, inventory)
    failed = [c for c in checks if not c.ok and c.required]
    doc = {"environment": name, "ok": not failed, "checks": [c.to_dict() for c in checks]}
    show_result(doc, _print_table, as_json=json_mode(json))
    if failed:
        raise typer.Exit(1)


def _print_table(doc: dict) -> None:
    from rich.table import Table

    from erpops.ui.output import stdout

    table = Table(title=f"erpops doctor{' -e ' + doc['environment'] if doc['environment'] else ''}",
                  title_justify="left")
    for column in ("check", "status", "detail", "fix"):
        table.add_column(column, overflow="fold")
    marks = {"ok": "✓ ok", "FAIL": "✗ FAIL", "warn": "! warn"}
    for c in doc["checks"]:
        table.add_row(c["name"], marks[c["status"]], c["detail"], c["fix"])
    stdout().print(table)
    failed = sum(1 for c in doc["checks"] if c["status"] == "FAIL")
    stdout().print("all required checks passed" if not failed else f"{failed} required check(s) failed")


def register(app: typer.Typer) -> None:
    app.command("doctor", help="Check prerequisites and the reachability of an environment's endpoints.")(doctor)
