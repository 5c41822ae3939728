"""`erpops repo list|show|verify|prune|unlock`: the backups in a repository.

Registered into the `repo` group of repo_cmd.py. Each command opens the
environment's repository (inventory `repository:` and its `key:`) and hands
over to erpops/repo/ (catalog, verify, prune, locks); nothing else lives here.
"""

from __future__ import annotations

from typing import Optional

import typer

from erpops.cli.context import OPTIONS, env_name, interactive, json_mode

_ENV = typer.Option(None, "-e", "--env", help="Environment whose repository to use (default: the lab).")
_JSON = typer.Option(False, "--json", help="One JSON document on stdout.")


def _open(env: Optional[str]):
    from erpops.repo.access import open_environment_repository

    return open_environment_repository(env_name(env), config_path=OPTIONS.config)


def _size(n: int) -> str:
    from erpops.units import format_size

    return format_size(n)


def _when(t) -> str:
    return t.strftime("%Y-%m-%d %H:%M:%SZ") if t else "-"


def list_cmd(env: Optional[str] = _ENV, json: bool = _JSON) -> None:
    """List the backups of the environment, oldest first.

    Example: erpops repo list -e prod
    """
    from erpops.repo.catalog import list_backups
    from erpops.ui.output import show_result, stdout

    OPTIONS.json = json_mode(json)
    environment = env_name(env)
    opened = _open(environment)
    rows = [e.summary() for e in list_backups(opened.repo, environment)]
    doc = {"repository": opened.repo.url, "environment": environment, "backups": rows}

    def human(doc: dict) -> None:
        if not rows:
            stdout().print(f"no backups of {environment} in {doc['repository']}", markup=False)
            return
        from erpops.cli.repo_views import text_table

        lines = []
        for r in rows:
            if r.get("damaged"):
                lines.append([r["backup_id"], "-", "-", "-", "-", "-", "-", f"DAMAGED: {r['problem']}"])
                continue
            lines.append([r["backup_id"], r["tenant"], _when(r["time"]), _size(r["db_bytes"]), _size(r["stored_bytes"]),
                          str(r["files"]), f"{r['new_files']} ({_size(r['new_bytes'])})",
                          _when(r["verified_at"]) if r["verified"] else "no"])
        headers = ["backup", "tenant", "taken", "database", "stored", "files", "new", "verified"]
        stdout().print(text_table(headers, lines), markup=False)

    show_result(doc, human, as_json=OPTIONS.json)


def show_cmd(backup_id: str = typer.Argument("latest", metavar="ID", help="Backup id, or `latest` (default)."),
             env: Optional[str] = _ENV, json: bool = _JSON) -> None:
    """Show one backup: its manifest (versions, modules, row counts, checksums, objects).

    Example: erpops repo show 20261203T020011Z-prod-store_nord
    """
    from erpops.repo.catalog import show_backup
    from erpops.ui.output import show_result, stdout

    OPTIONS.json = json_mode(json)
    environment = env_name(env)
    doc = show_backup(_open(environment).repo, backup_id, environment)

    def human(doc: dict) -> None:
        out = stdout()
        m = doc["manifest"]
        out.print(f"backup {doc['backup_id']}", markup=False)
        for label, value in (
            ("environment", doc["environment"]), ("tenant", doc["tenant"]), ("taken", _when(doc["time"])),
            ("duration", f"{doc['duration_s']:.1f}s"),
            ("versions", f"PostgreSQL {doc['pg_version']}, Odoo {doc['odoo_version'] or '?'}, {len(m['modules'])} modules"),
            ("database", f"{_size(doc['db_bytes'])} ({m['dump_format']} dump), {_size(doc['stored_bytes'])} stored"),
            ("files", f"{doc['files']} ({_size(doc['files_bytes'])}), {doc['new_files']} new"
                      + (f", {doc['missing_files']} MISSING" if doc["missing_files"] else "")),
            ("redis", "captured" if doc["redis"] else ((m.get("redis") or {}).get("reason") or "not captured")),
            ("verified", _when(doc["verified_at"]) if doc["verified"] else "no"),
        ):
            out.print(f"  {label:<12} {value}", markup=False)
        for title, mapping in (("row counts", m["row_counts"]), ("checksums", m["checksums"]),
                               ("annotations", m["annotations"])):
            if mapping:
                out.print(f"  {title}:", markup=False)
                for k, v in sorted(mapping.items()):
                    out.print(f"    {k:<32} {v}", markup=False)
        for name in m["missing_files"]:
            out.print(f"  missing file: {name}", markup=False)

    show_result(doc, human, as_json=OPTIONS.json)


def verify_cmd(backup_id: Optional[str] = typer.Argument(None, metavar="ID", help="Backup id (default: the latest backup of each tenant)."),
               all_: bool = typer.Option(False, "--all", help="Verify every backup of the environment."),
               deep: bool = typer.Option(False, "--deep", help="Decrypt every chunk and check every hash (reads everything)."),
               env: Optional[str] = _ENV, json: bool = _JSON) -> None:
    """Verify backups: every object present with its size and header; --deep: decrypted and hash-checked.

    Exits 4 when anything is wrong, naming each bad object. A passing --deep verify is recorded,
    so that `repo prune` knows the backup is verified.

    Example: erpops repo verify --all --deep -e prod
    """
    from erpops.errors import ExitCode, UsageError, VerificationFailed
    from erpops.repo.catalog import find_backup, latest_per_tenant, list_backups
    from erpops.repo.verify import record_verification, verify_all
    from erpops.ui.output import emit_json, log, ok, warn

    OPTIONS.json = json_mode(json)
    environment = env_name(env)
    if all_ and backup_id:
        raise UsageError("give a backup id or --all, not both")
    repo = _open(environment).repo
    if all_:
        entries = list_backups(repo, environment)
        if not entries:
            raise UsageError(f"repository {repo.url} holds no backup of {environment}")
        ids = [e.backup_id for e in entries]
    elif backup_id:
        ids = [find_backup(repo, backup_id, environment).backup_id]
    else:
        ids = [e.backup_id for e in latest_per_tenant(repo, environment)]
    reports = verify_all(repo, ids, deep=deep)
    for report in reports:
        try:
            record_verification(repo, report)
        except Exception as exc:  # noqa: BLE001 - a read-only credential must not fail the verify itself
            log(f"could not record the verification of {report.backup_id}: {getattr(exc, 'message', exc)}")
    bad = [r for r in reports if not r.ok]
    if OPTIONS.json:
        emit_json({"repository": repo.url, "deep": deep, "ok": not bad, "backups": [r.to_dict() for r in reports]})
    else:
        for r in reports:
            if r.ok:
                ok(f"{r.backup_id}: {r.objects} objects, {_size(r.bytes)}, {'deep' if deep else 'quick'} verify passed")
            else:
                for finding in r.findings:
                    warn(f"{r.backup_id}: {finding.key} {finding.problem}")
    if bad:
        findings = sum(len(r.findings) for r in bad)
        error = VerificationFailed(
            f"{len(bad)} of {len(reports)} backup(s) failed verification ({findings} bad object(s)); first: "
            f"{bad[0].findings[0].key} {bad[0].findings[0].problem}",
            hint="do not rely on these backups for a restore; take a new backup, and investigate the storage")
        if OPTIONS.json:  # the JSON document is already out; the message goes to stderr
            typer.echo(f"erpops: {error.render()}", err=True)
            raise typer.Exit(ExitCode.VERIFY)
        raise error


def prune_cmd(dry_run: bool = typer.Option(False, "--dry-run", help="Show what would be kept or removed, and which rule keeps each backup; change nothing."),
              grace: str = typer.Option("24h", "--grace", help="Leave debris and unreferenced filestore packs younger than this (a backup may be running)."),
              env: Optional[str] = _ENV, json: bool = _JSON) -> None:
    """Apply the repository's retention rules, then remove debris and filestore packs no backup references.

    Works on the environment's repository: the rules apply to each environment and tenant in it
    separately. Never removes the newest verified backup. Objects still under Object Lock are reported and skipped.

    Example: erpops repo prune --dry-run -e prod
    """
    from erpops.errors import OperationFailed, UsageError
    from erpops.repo.prune import prune
    from erpops.ui.output import show_result
    from erpops.units import parse_duration

    OPTIONS.json = json_mode(json)
    try:
        grace_s = float(parse_duration(grace))
    except ValueError as exc:
        raise UsageError(f"--grace: {exc}") from None
    opened = _open(env_name(env))
    result = prune(opened.repo, opened.policy, grace=grace_s, dry_run=dry_run).to_dict()
    from erpops.cli.repo_views import show_prune

    show_result(result, show_prune, as_json=OPTIONS.json)
    if result["errors"]:
        raise OperationFailed(f"prune could not delete {len(result['errors'])} object(s): {result['errors'][0]}",
                              hint="run it again; check the storage permissions")


def unlock_cmd(scope: str = typer.Argument(..., metavar="SCOPE", help="Lock scope, like backup-prod."),
               yes: bool = typer.Option(False, "--yes", "-y", help="Remove the lock without asking."),
               env: Optional[str] = _ENV, json: bool = _JSON) -> None:
    """Remove a repository lock left by a process that died (only if you are sure it is dead).

    Example: erpops repo unlock backup-prod --yes
    """
    from erpops.errors import Refused
    from erpops.repo.locks import check_scope, describe_holder, lock_info, unlock
    from erpops.ui.output import show_result, ok, stdout
    from erpops.ui.prompts import yes_no

    OPTIONS.json = json_mode(json)
    check_scope(scope)
    repo = _open(env_name(env)).repo
    info = lock_info(repo, scope)
    if info is None:
        show_result({"scope": scope, "removed": False, "holder": None},
                    lambda d: stdout().print(f"no lock {scope} in {repo.url}", markup=False), as_json=OPTIONS.json)
        return
    if not yes:
        if not interactive():
            raise Refused(f"unlock removes lock {scope} ({describe_holder(info, scope)}): it needs confirmation",
                          hint=f"if you are sure the holder is dead: erpops repo unlock {scope} --yes")
        stdout().print(describe_holder(info, scope), markup=False)
        if not yes_no(f"Remove lock {scope}? Only if that process is really dead."):
            raise Refused("unlock not confirmed")
    unlock(repo, scope)
    show_result({"scope": scope, "removed": True, "holder": info},
                lambda d: ok(f"removed lock {scope} (was held by {info.get('holder', '?')} on {info.get('host', '?')}, "
                             f"pid {info.get('pid', '?')})"), as_json=OPTIONS.json)


def add_commands(repo_app: typer.Typer) -> None:
    repo_app.command("list")(list_cmd)
    repo_app.command("show")(show_cmd)
    repo_app.command("verify")(verify_cmd)
    repo_app.command("prune")(prune_cmd)
    repo_app.command("unlock")(unlock_cmd)
