"""`erpops restore`: options -> erpops.restore.run_restore -> a few lines, or JSON."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

from erpops.cli.context import OPTIONS, env_name, interactive, json_mode


def register(app: typer.Typer) -> None:
    app.command("restore")(restore)


def _renderers():
    from erpops.ui.renderer_json import PlainRenderer

    if sys.stdout.isatty() and sys.stderr.isatty():
        from erpops.ui.renderer_rich import RichRenderer

        return [RichRenderer()]
    return [PlainRenderer()]


def _human(doc: dict) -> None:
    from erpops.ui.output import ok, stdout, warn
    from erpops.units import format_size

    out = stdout()
    for warning in doc.get("warnings", []):
        warn(warning)
    replaced = "replaced the existing database" if doc["replaced"] else "new database"
    out.print(f"  from {doc['backup_id']}  (PostgreSQL {doc['pg_version']}, Odoo {doc['odoo_version'] or '?'}, "
              f"{doc['modules']} modules)", markup=False)
    out.print(f"  target {doc['target']} ({replaced}); Odoo compatibility: {doc['compatibility']}", markup=False)
    out.print(f"  database  {format_size(doc['db_bytes'] or 0)}  jobs {doc['jobs']}  {doc['db_seconds']:.1f} s",
              markup=False)
    out.print(f"  filestore {doc['files'] or 0:,} files  {format_size(doc['files_bytes'] or 0)}  (in parallel)"
              f"  -> {doc['filestore'] or '-'}", markup=False)
    if doc["verified"]:
        out.print(f"  row counts ({doc['tables']} tables) and business checksums ({doc['checksums']}) match the backup",
                  markup=False)
    else:
        out.print("  row counts not compared: the source records none", markup=False)
    if doc.get("copy"):
        out.print(f"  copy: new database.uuid {doc['copy'].get('uuid')} and database.secret", markup=False)
    if doc.get("neutralize"):
        changed = ", ".join(f"{k} {v}" for k, v in doc["neutralize"]["changed"].items()) or "nothing to change"
        out.print(f"  neutralized: {changed}", markup=False)
    if doc.get("redis"):
        out.print(f"  redis: {doc['redis']['total']:,} keys restored", markup=False)
    ok(f"restored in {doc['duration_s']:.1f} s")


def _header(p: dict) -> None:
    """What is about to happen, before the live steps (a terminal only)."""
    from erpops.ui.output import stdout

    out = stdout()
    out.print(f"  from {p['backup_id']}  (PostgreSQL {p['pg_source']}, Odoo {p['odoo_version'] or '?'}, "
              f"{p['modules']} modules)", markup=False)
    state = "exists: replaced at the end" if p["target_exists"] else "does not exist"
    out.print(f"  target {p['server']} — database {p['target']} ({state})", markup=False)


def _plan_human(doc: dict) -> None:
    from erpops.ui.output import stdout
    from erpops.units import format_size

    out = stdout()
    p = doc["preflight"]
    out.print(f"plan for restore on {doc['environment']} — nothing will be touched", markup=False)
    out.print(f"  from {p['backup_id']}  (PostgreSQL {p['pg_source']}, Odoo {p['odoo_version'] or '?'}, "
              f"{p['modules']} modules)", markup=False)
    state = "exists: will be DROPPED and replaced" if p["target_exists"] else "does not exist"
    temp = f"{p['target']}__erpops_restore_<run>"
    out.print(f"  target {p['server']} — database {p['target']} ({state}), via a temporary {temp}", markup=False)
    out.print(f"  PostgreSQL {p['pg_source']} -> {p['pg_target']}; Odoo compatibility: {p['compatibility']}",
              markup=False)
    out.print(f"  database {format_size(p['db_bytes'])}, filestore {p['files']:,} files "
              f"{format_size(p['files_bytes'])}", markup=False)
    for d in p["disk"]:
        out.print(f"  disk {d['path']} ({', '.join(d['what'])}): about {format_size(d['need'])} needed, "
                  f"{format_size(d['free'])} free", markup=False)
    if p["disk_note"]:
        out.print(f"  {p['disk_note']}", markup=False)
    for w in p["warnings"]:
        out.print(f"  warning: {w}", markup=False)
    out.print("steps:", markup=False)
    for s in doc["steps"]:
        mark = "  DESTRUCTIVE" if s["risk"] == "DESTRUCTIVE" else ""
        out.print(f"  {s['id']}: {s['uses']} [{s['risk']}]{mark}  {s['summary']}", markup=False)


def restore(
    env: Optional[str] = typer.Option(None, "-e", "--env", help="Environment to restore into (default: the global -e, $ERPOPS_ENV, the lab)."),
    backup: str = typer.Option("latest", "--backup", "-b", help="Backup id (see erpops repo list), or latest: the newest of the tenant."),
    tenant: str = typer.Option("", "--tenant", "-t", help="Tenant whose backup to restore (may be left out when only one was backed up)."),
    from_file: Optional[Path] = typer.Option(None, "--from-file", help="Restore an Odoo backup file (the database manager's .zip, or a pg_dump -Fc .dump) instead of a backup.", dir_okay=False),
    as_name: str = typer.Option("", "--as", help="Database name to restore into (default: the tenant's own name)."),
    jobs: int = typer.Option(2, "--jobs", "-j", help="pg_restore parallel jobs."),
    maintenance_work_mem: str = typer.Option("512MiB", "--maintenance-work-mem", help="maintenance_work_mem of each loading session: index builds sort in memory (0: the server's setting)."),
    copy: bool = typer.Option(False, "--copy", help="A copy: new database.uuid and database.secret, no enterprise code (as Odoo does)."),
    neutralize: bool = typer.Option(False, "--neutralize", help="For non-production use: crons, mail servers, payment providers, carriers off."),
    drop_existing: bool = typer.Option(False, "--drop-existing", help="Replace an existing database and filestore of that name (DESTRUCTIVE: asks first)."),
    redis: bool = typer.Option(False, "--redis", help="Also replace the environment's Redis content with the backup's RDB (DESTRUCTIVE: asks first)."),
    force_version: bool = typer.Option(False, "--force-version", help="Restore even when Odoo's version or modules differ from the environment's."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Confirm --drop-existing and --redis without asking."),
    confirm_env: Optional[str] = typer.Option(None, "--confirm-env", help="With --yes on a production environment: its name."),
    json: bool = typer.Option(False, "--json", help="A JSON summary on stdout (log lines stay on stderr)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Check and show what the restore would do; touch nothing."),
) -> None:
    """Restore a tenant's database and filestore from the repository (runbook: restore).

    Checks first (backup, PostgreSQL and Odoo versions, disk space, target
    name), then loads the database with pg_restore while the filestore files
    are written and hash-checked, compares row counts and business checksums
    with the backup, and only then renames the temporary database and
    filestore to the target's name. A failure removes them: the target and
    any database it would replace stay as they were. Exit 2: bad input or
    versions differ; 3: the target exists without --drop-existing, or
    confirmation missing; 4: a check against the backup failed.

    With --from-file, an Odoo backup file is restored the same way (dump.sql
    through psql, a custom dump through pg_restore; no row counts to compare).

    Example: erpops restore -e staging --tenant store_nord --as store_nord_check --copy --neutralize
    """
    from erpops.restore import RestoreOptions, plan, run_restore
    from erpops.ui.output import show_result

    as_json = OPTIONS.json = json_mode(json)  # errors, too, come out as one JSON document
    options = RestoreOptions(env_name=env_name(env), backup=backup, tenant=tenant, target=as_name, jobs=jobs,
                             maintenance_work_mem=maintenance_work_mem,
                             copy=copy, neutralize=neutralize, drop_existing=drop_existing,
                             force_version=force_version, from_file=str(from_file or ""), redis=redis, yes=yes, confirm_env=confirm_env,
                             interactive=interactive())
    if dry_run:
        show_result(plan(options), _plan_human, as_json=as_json)
        return
    on_tty = not as_json and sys.stdout.isatty() and sys.stderr.isatty()
    show_result(run_restore(options, _renderers(), _header if on_tty else None), _human, as_json=as_json)
