"""restore.preflight, restore.database, restore.verify, restore.copy, restore.neutralize,
restore.activate, restore.replace, restore.cleanup: the database side of a restore.

Everything is loaded into a temporary database (and filestore directory,
erpops/actions/restore_files.py) that only restore.activate (a new name) or
restore.replace (DESTRUCTIVE: over an existing database) renames to the
target's name, last. restore.cleanup, the runbook's on_failure step, drops
what a failed run left, so the target and the database it would have
replaced stay as they were.
"""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

from erpops.actions import restore_run
from erpops.actions.registry import Risk, StepContext, StepError, action

SPOOL_NAME = "restore-db.dump"
READ_SIZE = 1 << 20
MISMATCHES_NAMED = 20
DEFAULT_MAINTENANCE_WORK_MEM = "512MiB"  # per loading session; see erpops.pg.restore.load_settings


def _environment(ctx: StepContext):
    if ctx.env is None:
        raise StepError("this step needs an environment; pass -e NAME", kind="error")
    return ctx.env


def run_tag(run_id: str) -> str:
    """A short tag for the temporary names, from the run id (time of day + its random part)."""
    stamp, _, rest = run_id.partition("-")
    return (stamp[9:15] + rest.rsplit("-", 1)[-1]).lower() or "run"


@action("restore.preflight", risk=Risk.READ)
def preflight(ctx: StepContext, backup: str = "latest", tenant: str = "", target: str = "", from_file: str = "",
              drop_existing: bool = False, force_version: bool = False, redis: bool = False) -> dict:
    """Choose the backup and check the target before anything is touched; refuse with what differs.

    `backup` is an id, or `latest` (the newest backup of `tenant` of this
    environment; `tenant` may be left out when only one was backed up).
    `from_file` restores an Odoo backup file instead (the database manager's zip,
    or a pg_dump custom-format file), read by erpops/odoo/archive.py.
    `target` is the database to restore into (default: the tenant's name). Refuses
    (exit 2) a target name Odoo would not accept, a target PostgreSQL older than
    the source, an Odoo series or module set different from the environment's
    (unless `force_version`); refuses (exit 3) an existing target database
    unless `drop_existing`; fails (exit 1) when the disk space where the restore
    writes is short; with `redis`, refuses a backup without Redis data.
    Outputs: backup_id, tenant, target, temp_db, versions, sizes,
    compatibility, disk.
    """
    from erpops.pg.connect import NodeTarget
    from erpops.restore_checks import check, open_source

    env = _environment(ctx)
    run = restore_run.for_run(ctx, create=True)
    if run.archive is not None:  # a retried step starts over
        run.archive.close()
    source, run.manifest, run.archive = open_source(env, lambda: ctx.repo, backup=backup, tenant=tenant,
                                                    from_file=from_file)
    run.files_bytes = source.files_bytes
    pre = check(env, source, target=target, drop_existing=drop_existing, force_version=force_version,
                run_tag=run_tag(Path(str(ctx.run_dir)).name), spool_dir=ctx.run_dir, redis=redis)
    run.node = NodeTarget.from_node(env.postgres.primary)
    run.bin_dir = getattr(env.postgres.primary, "bin_dir", None)
    run.target, run.temp_db = pre.target, pre.temp_db
    if env.filestore is not None:
        run.filestore_root = Path(str(env.filestore.path))
    _say_warnings(ctx, pre.warnings)
    return pre.to_dict()


def _say_warnings(ctx: StepContext, warnings: list[str]) -> None:
    from erpops.runbook.events import StepOutput

    for line in warnings:
        ctx.emit(StepOutput(step=ctx.step_id, line=f"warning: {line}"))


@action("restore.database", risk=Risk.WRITE)
def database(ctx: StepContext, jobs: int = 2, maintenance_work_mem: str = DEFAULT_MAINTENANCE_WORK_MEM) -> dict:
    """Load the backup's dump into the temporary database with `pg_restore --jobs`.

    The dump object is decrypted into a spool file in the run's directory
    (pg_restore needs a seekable file to work in parallel), its SHA-256 checked
    against the manifest, loaded with `--no-owner --no-privileges
    --exit-on-error` as the inventory's user (the password in PGPASSWORD,
    never on the command line), then the spool file is deleted. A plain SQL
    dump (a backup imported from an Odoo zip, or `--from-file` zip) goes
    through `psql -X -v ON_ERROR_STOP=1`, on one connection. The loading
    sessions run with `synchronous_commit=off` and the given
    `maintenance_work_mem` (index builds sort in memory; `0`: the server's
    setting). Outputs: database, bytes, jobs, format, seconds.
    """
    from erpops.errors import VerificationFailed
    from erpops.pg.restore import LoadProcess, create_database

    run = restore_run.for_run(ctx)
    started = time.monotonic()
    settings = _load_settings(maintenance_work_mem)
    if run.archive is not None:
        return _database_from_file(ctx, run, jobs, started, settings)
    db = run.manifest.db_object
    spool = Path(str(ctx.run_dir)) / SPOOL_NAME
    run.spool = spool
    progress = ctx.progress(db.plain_bytes, "B")
    digest = _decrypt_to(ctx, ctx.repo, db.key.removeprefix("objects/"), spool, progress)
    if db.sha256 and digest != db.sha256:
        raise VerificationFailed(f"the dump of backup {run.manifest.backup_id} decrypted to SHA-256 {digest}, "
                                 f"not {db.sha256} as recorded", where=db.key,
                                 hint="the backup is damaged; restore an older one (erpops repo verify names it)")
    create_database(run.node, run.temp_db)
    run.created_db = True
    if run.manifest.dump_format == "plain":  # an imported Odoo zip's dump.sql: SQL loads on one connection
        jobs = 1
        _load(ctx, run, LoadProcess.psql(run.node, run.temp_db, spool, bin_dir=run.bin_dir, settings=settings))
    else:
        _load(ctx, run, LoadProcess.pg_restore(run.node, run.temp_db, spool, jobs=jobs, bin_dir=run.bin_dir,
                                               settings=settings))
    spool.unlink(missing_ok=True)
    return {"database": run.temp_db, "bytes": db.plain_bytes, "jobs": jobs, "format": run.manifest.dump_format,
            "seconds": round(time.monotonic() - started, 3)}


def _load_settings(maintenance_work_mem: str) -> dict[str, str]:
    """The loading sessions' settings; UsageError (exit 2) for a size PostgreSQL would refuse."""
    from erpops.errors import UsageError
    from erpops.pg.restore import load_settings
    from erpops.units import parse_size

    try:
        size = parse_size(maintenance_work_mem)
    except ValueError as exc:
        raise UsageError(f"maintenance_work_mem: {exc}", hint="e.g. 512MiB, or 0 for the server's setting") from None
    return load_settings(size)


def _database_from_file(ctx: StepContext, run, jobs: int, started: float, settings: dict[str, str]) -> dict:
    """An Odoo backup file: dump.sql through psql (plain SQL loads on one connection),
    a custom-format dump through pg_restore --jobs (read in place: it is seekable)."""
    from erpops.pg.restore import LoadProcess, create_database

    archive = run.archive
    if archive.kind == "zip":
        spool_dir = Path(str(ctx.run_dir)) / "restore-spool"
        spool_dir.mkdir(mode=0o700, exist_ok=True)
        run.spool = archive.extract_dump(spool_dir)
        dump, plain = run.spool, archive.dump_format == "plain"
    else:
        dump, plain = archive.path, False
    ctx.check()
    create_database(run.node, run.temp_db)
    run.created_db = True
    if plain:
        jobs = 1
        _load(ctx, run, LoadProcess.psql(run.node, run.temp_db, dump, bin_dir=run.bin_dir, settings=settings))
    else:
        _load(ctx, run, LoadProcess.pg_restore(run.node, run.temp_db, dump, jobs=jobs, bin_dir=run.bin_dir,
                                               settings=settings))
    if run.spool is not None:
        run.spool.unlink(missing_ok=True)
    return {"database": run.temp_db, "bytes": archive.dump_size, "jobs": jobs, "format": archive.dump_format,
            "seconds": round(time.monotonic() - started, 3)}


def _decrypt_to(ctx: StepContext, repo, name: str, spool: Path, progress) -> str:
    sha = hashlib.sha256()
    done = 0
    fd = os.open(spool, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with repo.get_object(name) as source, os.fdopen(fd, "wb") as out:
        last = 0.0
        for block in iter(lambda: source.read(READ_SIZE), b""):
            sha.update(block)
            out.write(block)
            done += len(block)
            if time.monotonic() - last > 0.25:
                ctx.check()
                progress.update(done)
                last = time.monotonic()
    progress.update(done)
    return sha.hexdigest()


def _load(ctx: StepContext, run, process) -> None:
    run.process = process
    ctx.track(process)
    try:
        while process.poll() is None:
            ctx.sleep(0.2)
        process.wait()
    finally:
        run.process = None


@action("restore.verify", risk=Risk.READ)
def verify(ctx: StepContext) -> dict:
    """Compare the restored database's row counts and business checksums with the backup's; exit 4 on a difference.

    The same facts a backup records (erpops/pg/facts.py), read in the temporary
    database before anything changes it. Outputs: tables, checksums, match.
    """
    from erpops.errors import VerificationFailed
    from erpops.pg.connect import connect
    from erpops.pg.facts import read_facts

    run = restore_run.for_run(ctx)
    m = run.manifest
    if m is None or not (m.row_counts or m.checksums):  # an Odoo file, or a backup imported from one
        return {"match": None, "compared": False,
                "reason": "the source records no row counts or checksums to compare with"}
    with connect(run.node, dbname=run.temp_db, autocommit=False, application_name="erpops restore verify") as conn:
        with conn.cursor() as cur:
            facts = read_facts(cur)
        conn.rollback()
    diffs = [f"rows of {t}: {n} in the backup, {facts.row_counts.get(t)} restored"
             for t, n in sorted(m.row_counts.items()) if facts.row_counts.get(t) != n]
    diffs += [f"{k}: {v} in the backup, {facts.checksums.get(k)} restored"
              for k, v in sorted(m.checksums.items()) if facts.checksums.get(k) != v]
    if diffs:
        named = "; ".join(diffs[:MISMATCHES_NAMED]) + (f"; and {len(diffs) - MISMATCHES_NAMED} more"
                                                        if len(diffs) > MISMATCHES_NAMED else "")
        raise VerificationFailed(f"the restored database differs from backup {m.backup_id}: {named}",
                                 hint="the temporary database was dropped; nothing under the target name changed")
    return {"match": True, "compared": True, "tables": len(m.row_counts), "checksums": len(m.checksums),
            "row_counts": facts.row_counts}


@action("restore.copy", risk=Risk.WRITE)
def copy(ctx: StepContext) -> dict:
    """Give the restored database a new identity, as Odoo does for a copy.

    A new `database.uuid`, `database.secret` and `database.create_date` in
    ir_config_parameter, `database.enterprise_code` removed. Outputs: uuid,
    enterprise_code_removed (the secret is never output).
    """
    from erpops.pg.connect import connect
    from erpops.pg.copy_identity import make_copy

    run = restore_run.for_run(ctx)
    with connect(run.node, dbname=run.temp_db, application_name="erpops restore") as conn:
        return make_copy(conn)


@action("restore.neutralize", risk=Risk.WRITE)
def neutralize(ctx: StepContext) -> dict:
    """Neutralize the restored database for non-production use, as Odoo does.

    Crons (but the autovacuum job), outgoing and incoming mail servers off,
    payment providers disabled unless in test, carriers off their production
    accounts, `database.is_neutralized` set; tables that do not exist are
    skipped. Outputs: changed (rows per kind), skipped.
    """
    from erpops.pg.connect import connect
    from erpops.pg.neutralize import neutralize as run_neutralize

    run = restore_run.for_run(ctx)
    with connect(run.node, dbname=run.temp_db, application_name="erpops restore") as conn:
        return run_neutralize(conn)


@action("restore.activate", risk=Risk.WRITE)
def activate(ctx: StepContext) -> dict:
    """Rename the temporary database and filestore directory to the target's name (which must not exist).

    Outputs: database, filestore.
    """
    from erpops.errors import Refused
    from erpops.pg.restore import database_exists, rename_database

    run = restore_run.for_run(ctx)
    if database_exists(run.node, run.target):
        raise Refused(f"database {run.target} appeared during the restore; it was left as it is",
                      hint="restore again with --as NAME, or with --drop-existing to replace it")
    final_dir = _final_dir(run)
    if final_dir is not None and final_dir.exists():
        raise Refused(f"filestore directory {final_dir} appeared during the restore; it was left as it is")
    rename_database(run.node, run.temp_db, run.target)
    try:
        _move_dir(run.temp_dir, final_dir)
    except OSError as exc:
        rename_database(run.node, run.target, run.temp_db)
        raise StepError(f"cannot rename {run.temp_dir} to {final_dir}: {exc.strerror}") from None
    run.activated = True
    return {"database": run.target, "filestore": str(final_dir) if final_dir else None}


@action("restore.replace", risk=Risk.DESTRUCTIVE)
def replace(ctx: StepContext) -> dict:
    """Drop the existing target database (ending its sessions) and its filestore, and put the restored ones in their place.

    The old filestore directory is set aside first and deleted only once the
    database is in place, so a failure leaves the old pair intact. Outputs:
    database, dropped (whether a database was replaced), filestore.
    """
    import shutil

    from erpops.pg.restore import RenameAfterDropFailed, replace_database

    run = restore_run.for_run(ctx)
    final_dir = _final_dir(run)
    aside = None
    if final_dir is not None and final_dir.exists():
        aside = final_dir.with_name(f"{run.temp_db}__old")
        os.rename(final_dir, aside)
    try:
        _move_dir(run.temp_dir, final_dir)
        try:
            dropped = replace_database(run.node, run.temp_db, run.target)
        except RenameAfterDropFailed:
            run.activated = True  # the old pair is gone: the restored one must survive the cleanup
            raise
        except BaseException:
            _move_dir(final_dir, run.temp_dir)
            raise
    except RenameAfterDropFailed:
        if aside is not None:
            shutil.rmtree(aside, ignore_errors=True)
        raise
    except BaseException:
        if aside is not None:
            os.rename(aside, final_dir)
        raise
    run.activated = True
    if aside is not None:
        shutil.rmtree(aside, ignore_errors=True)
    return {"database": run.target, "dropped": dropped, "filestore": str(final_dir) if final_dir else None}


def _final_dir(run) -> Path | None:
    return run.filestore_root / run.target if run.filestore_root is not None else None


def _move_dir(source: Path | None, dest: Path | None) -> None:
    if source is not None and dest is not None and source.exists():
        os.rename(source, dest)


@action("restore.cleanup", risk=Risk.WRITE)
def cleanup(ctx: StepContext) -> dict:
    """Remove what the restore made that is not in place: the spool file, and unless renamed to the target, the temporary database and filestore directory.

    The runbook's last step and its on_failure step. Outputs: removed.
    """
    run = restore_run.forget(ctx)
    return {"removed": run.cleanup() if run is not None else []}
