"""`erpops export`: a stored backup as Odoo's own backup file (zip or custom dump)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from erpops.cli.context import OPTIONS, env_name, json_mode


def register(app: typer.Typer) -> None:
    app.command("export")(export)


def _human(doc: dict) -> None:
    from erpops.ui.output import ok
    from erpops.units import format_size

    files = f", {doc['files']:,} filestore files" if doc["format"] == "odoo-zip" else ""
    ok(f"{doc['path']}  {doc['format']}  {format_size(doc['bytes'])}{files}  from {doc['backup_id']}")


def export(
    backup: str = typer.Option("latest", "--backup", "-b", metavar="ID", help="Backup id, or `latest` (the tenant's newest)."),
    tenant: str = typer.Option(..., "--tenant", "-t", help="Odoo database (tenant) of the backup."),
    format: str = typer.Option("odoo-zip", "--format", "-f", help="odoo-zip (dump.sql + manifest.json + filestore/, as Odoo's database manager writes it) or odoo-dump (pg_dump custom format, no filestore)."),
    output: Path = typer.Option(..., "-o", "--output", help="File to write (written beside it, then renamed: never left half-written)."),
    force: bool = typer.Option(False, "--force", help="Replace an existing output file."),
    env: Optional[str] = typer.Option(None, "-e", "--env", help="Environment whose repository holds the backup (default: the global -e, $ERPOPS_ENV, the lab)."),
    json: bool = typer.Option(False, "--json", help="A JSON summary on stdout."),
) -> None:
    """Export a backup as an Odoo backup file, restorable by Odoo's database manager.

    Exit 2 for an unknown backup or a tenant the backup is not of, 3 when the
    output exists (without --force), 4 when a stored object is damaged.

    Example: erpops export -e prod --backup latest --tenant store_nord --format odoo-zip -o store_nord.zip
    """
    from erpops.odoo.export import ExportOptions, export_backup
    from erpops.ui.output import show_result

    OPTIONS.json = json_mode(json)  # errors, too, come out as JSON
    doc = export_backup(ExportOptions(env_name=env_name(env), backup_id=backup, tenant=tenant, format=format,
                                      output=output, force=force))
    show_result(doc, _human, as_json=OPTIONS.json)
