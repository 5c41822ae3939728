"""`erpops import-backup`: an Odoo backup file (zip or custom dump) stored as an erpops backup."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from erpops.cli.context import OPTIONS, env_name, json_mode


def register(app: typer.Typer) -> None:
    app.command("import-backup")(import_backup)


def _human(doc: dict) -> None:
    from erpops.ui.output import ok
    from erpops.units import format_size

    ok(f"{doc['backup_id']}  db {format_size(doc['db_bytes'])} ({doc['dump_format']} SQL)  "
       f"filestore {doc['files']:,} files ({doc['new_files']:,} new)")


def import_backup(
    file: Path = typer.Argument(..., metavar="FILE", help="An Odoo backup: a .zip from the database manager (or erpops export), or a pg_dump custom-format .dump."),
    tenant: Optional[str] = typer.Option(None, "--tenant", "-t", help="Tenant to file it under (default: the zip's manifest db_name)."),
    env: Optional[str] = typer.Option(None, "-e", "--env", help="Environment whose repository receives it (default: the global -e, $ERPOPS_ENV, the lab)."),
    json: bool = typer.Option(False, "--json", help="A JSON summary on stdout."),
) -> None:
    """Store an Odoo backup file in the environment's repository as a regular backup.

    The dump is kept as Odoo wrote it (dump_format plain for a zip's dump.sql,
    custom for a .dump); filestore files are checked against their SHA-1
    names and stored once. Row counts and checksums stay empty. Unsafe or
    unusable files exit 2, damaged ones 4; nothing is stored then.

    Example: erpops import-backup store_nord_2026-12-01.zip -e staging --tenant store_nord
    """
    from erpops.odoo.importer import ImportOptions, import_backup as run_import
    from erpops.ui.output import show_result

    OPTIONS.json = json_mode(json)  # errors, too, come out as JSON
    doc = run_import(ImportOptions(env_name=env_name(env), path=file, tenant=tenant))
    show_result(doc, _human, as_json=OPTIONS.json)
