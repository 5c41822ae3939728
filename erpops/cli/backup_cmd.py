"""`erpops backup`: options -> erpops.backup.run_backup -> a line per backup, or JSON."""

from __future__ import annotations

import sys
from typing import List, Optional

import typer

from erpops.cli.context import env_name, json_mode


def register(app: typer.Typer) -> None:
    app.command("backup")(backup)


def _renderers():
    """Rich live progress on a terminal; otherwise timestamped log lines on stderr
    (stdout stays for the result: one line per backup, or the JSON summary)."""
    from erpops.ui.renderer_json import PlainRenderer

    if sys.stdout.isatty() and sys.stderr.isatty():
        from erpops.ui.renderer_rich import RichRenderer

        return [RichRenderer()]
    return [PlainRenderer()]


def _human(doc: dict) -> None:
    from erpops.ui.output import ok, warn
    from erpops.units import format_size

    for warning in doc.get("warnings", []):
        warn(warning)
    for b in doc["backups"]:
        verified = "  verified" if b["verified"] else ""
        missing = f", {b['missing_files']:,} missing" if b.get("missing_files") else ""
        ok(f"{b['backup_id']}  db {format_size(b['db_bytes'])}  filestore {b['files']:,} files "
           f"({b['new_files']:,} new{missing})  in {b['duration_s']:.1f} s{verified}")


def backup(
    env: Optional[str] = typer.Option(None, "-e", "--env", help="Environment to back up (default: the global -e, $ERPOPS_ENV, the lab)."),
    tenant: List[str] = typer.Option([], "--tenant", "-t", help="Odoo database to back up (repeatable; default: all of the environment's)."),
    verify: bool = typer.Option(False, "--verify", help="Deep-verify the new backups (decrypt and hash every object) before exiting."),
    annotate: List[str] = typer.Option([], "--annotate", help="KEY=VALUE recorded in the manifest (repeatable)."),
    allow_missing_files: bool = typer.Option(False, "--allow-missing-files", help="Back up even when referenced filestore files are missing (warn; the manifest lists them)."),
    json: bool = typer.Option(False, "--json", help="A JSON summary on stdout (log lines stay on stderr)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Show the steps the backup would run; touch nothing."),
) -> None:
    """Back up databases and filestores into the environment's repository (runbook: backup).

    One backup per tenant: a pg_dump on an exported snapshot, the filestore
    files that snapshot references (files already stored are not uploaded
    again), Redis when its role is sessions or queue, then the manifest.
    Safe for cron: no TTY means no progress bars, log lines on stderr; exit 3
    when another backup holds the lock, 4 when a referenced file is missing
    or damaged.

    Example: erpops backup -e prod --tenant store_nord --verify --annotate ticket=OPS-12
    """
    from erpops.backup import BackupFailed, BackupOptions, plan, run_backup
    from erpops.ui.output import emit_json, show_result

    as_json = json_mode(json)
    options = BackupOptions(env_name=env_name(env), tenants=list(tenant), verify=verify,
                            annotations=list(annotate), allow_missing_files=allow_missing_files)
    if dry_run:
        from erpops.cli.runbook_cmd import _print_plan

        rb, planned, values = plan(options)
        _print_plan(rb, planned, values, as_json)
        return
    try:
        doc = run_backup(options, _renderers())
    except BackupFailed as exc:
        if as_json:
            emit_json(exc.doc)
        raise
    show_result(doc, _human, as_json=as_json)
