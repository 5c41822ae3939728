"""postgres.snapshot, postgres.dump, postgres.release: the database side of a backup.

The snapshot step opens one exported snapshot per tenant and keeps it open
(erpops/actions/backup_run.py) so that the dump, the filestore capture and
the manifest's facts all describe the same moment; postgres.release (or the
snapshot step's undo on a failed run) closes them.
"""

from __future__ import annotations

import time

from erpops.actions import backup_run
from erpops.actions.registry import Risk, StepContext, StepError, action

ID_COLLISION_WAITS = 3


def _environment(ctx: StepContext):
    if ctx.env is None:
        raise StepError("this step needs an environment; pass -e NAME", kind="error")
    return ctx.env


def _tenants(env, requested: list[str]) -> list[str]:
    from erpops.errors import UsageError
    from erpops.pg.tenants import environment_tenants
    from erpops.yamlsrc import suggest

    known = environment_tenants(env)
    if not requested:
        if not known:
            raise UsageError(f"environment {env.name} has no Odoo database (no database with ir_module_module)",
                             hint="list them under tenants: in the inventory")
        return known
    for name in requested:
        if name not in known:
            guess = suggest(name, known)
            raise UsageError(f"tenant {name!r} is not a database of environment {env.name} "
                             f"(tenants: {', '.join(known) or 'none'})",
                             hint=f"did you mean {guess!r}?" if guess else "see: erpops config show -e " + env.name)
    return list(dict.fromkeys(requested))


def _free_backup_id(repo, env_name: str, tenant: str) -> str:
    """A time-based id no other backup of this repository uses (ids have one-second
    resolution; two backups within a second must not share objects)."""
    from erpops.repo.manifest import new_backup_id

    for _ in range(ID_COLLISION_WAITS + 1):
        backup_id = new_backup_id(env_name, tenant)
        if next(iter(repo.storage.list(f"objects/backups/{backup_id}/")), None) is None:
            return backup_id
        time.sleep(1.0 - time.time() % 1.0 + 0.01)
    raise StepError(f"backup id {backup_id} is taken; is another backup of {env_name}/{tenant} running?")


@action("postgres.snapshot", risk=Risk.READ)
def snapshot(ctx: StepContext, tenants: list[str] = []) -> dict:  # noqa: B006 - never mutated
    """Export a snapshot of each tenant's database (all of the environment's when `tenants` is empty).

    In each snapshot it reads the facts the manifest records (PostgreSQL and
    Odoo versions, installed modules, row counts, business checksums) and the
    filestore files ir_attachment references. The snapshots stay open for
    postgres.dump and filestore.capture until postgres.release; the step's
    undo closes them. Outputs: `tenants` (tenant, backup_id, snapshot_id,
    snapshot_at, files).
    """
    from datetime import datetime, timezone

    from erpops.pg.connect import NodeTarget
    from erpops.pg.snapshot import open_snapshot

    env = _environment(ctx)
    names = _tenants(env, tenants)
    repo = ctx.repo
    run = backup_run.for_run(ctx, create=True)
    run.close_snapshots()  # a retried step starts over
    run.tenants.clear()
    target = NodeTarget.from_node(env.postgres.primary)
    out = []
    for name in names:
        ctx.check()
        started = datetime.now(timezone.utc)
        snap = open_snapshot(target, name)
        backup_id = _free_backup_id(repo, env.name, name)
        run.tenants[name] = backup_run.TenantBackup(tenant=name, backup_id=backup_id, snapshot=snap,
                                                    started_at=started)
        out.append({"tenant": name, "backup_id": backup_id, "snapshot_id": snap.snapshot_id,
                    "snapshot_at": snap.taken_at.isoformat(), "files": len(snap.files),
                    "pg_version": snap.facts.pg_version, "odoo_version": snap.facts.odoo_version})
    return {"tenants": out}


@snapshot.undo
def _close_snapshots(ctx: StepContext, tenants: list[str], outputs: dict) -> None:
    run = backup_run.existing(ctx)
    if run is not None:
        run.close_snapshots()


@action("postgres.dump", risk=Risk.WRITE)
def dump(ctx: StepContext) -> dict:
    """Dump each snapshotted tenant with `pg_dump --snapshot` into the repository.

    Custom format, uncompressed by pg_dump, streamed through the repository's
    zstd + AES-256-GCM straight into storage: nothing is written to a local
    disk. The password reaches pg_dump in its environment, never on its
    command line. Outputs: `dumps` (tenant, key, plain_bytes, stored_bytes,
    sha256, seconds).
    """
    from erpops.pg.connect import NodeTarget
    from erpops.pg.dump import DumpStream
    from erpops.repo.manifest import ObjectEntry, object_name
    from erpops.runbook.events import StepOutput

    env = _environment(ctx)
    run = backup_run.for_run(ctx)
    repo = ctx.repo
    target = NodeTarget.from_node(env.postgres.primary)
    bin_dir = getattr(env.postgres.primary, "bin_dir", None)
    out = []
    for tenant in run.tenants.values():
        snap = tenant.snapshot
        if snap is None or not snap.open:
            raise StepError(f"the snapshot of {tenant.tenant} is closed; start the backup again")
        stream = DumpStream(target, tenant.tenant, snap.snapshot_id, bin_dir=bin_dir)
        ctx.track(stream)
        progress = ctx.progress(snap.size_estimate or None, "B")
        stream.on_read = _throttled(progress.update)
        name = object_name(tenant.backup_id, "db.dump")
        try:
            put = repo.put_object(name, stream, if_absent=True)
        except BaseException:
            stream.kill()
            raise
        try:
            stream.finish()
        except BaseException:
            _discard(repo, put.key)
            raise
        progress.total = stream.bytes
        progress.update(stream.bytes)
        for warning in stream.warnings:
            ctx.emit(StepOutput(step=ctx.step_id, line=f"pg_dump {tenant.tenant}: {warning}"))
        tenant.db = ObjectEntry(key=put.key, kind="db", plain_bytes=stream.bytes, stored_bytes=put.stored_bytes,
                                sha256=stream.sha256.hexdigest(), new=True)
        tenant.db_seconds = stream.duration
        tenant.uploaded_bytes += put.stored_bytes
        out.append({"tenant": tenant.tenant, "key": put.key, "plain_bytes": stream.bytes,
                    "stored_bytes": put.stored_bytes, "sha256": tenant.db.sha256,
                    "seconds": round(stream.duration, 3)})
    return {"dumps": out}


@action("postgres.release", risk=Risk.READ)
def release(ctx: StepContext) -> dict:
    """Close the snapshots postgres.snapshot opened (ends their transactions). Safe to run twice."""
    run = backup_run.existing(ctx)
    closed = run.close_snapshots() if run is not None else []
    return {"closed": closed}


def _discard(repo, key: str) -> None:
    """A dump that pg_dump did not finish is not kept (it would pass for a whole one)."""
    from erpops.errors import ErpopsError

    try:
        repo.storage.delete(key)
    except ErpopsError:
        pass  # left as debris without a manifest; repo prune removes it


def _throttled(update, interval: float = 0.25):
    last = [0.0]

    def call(done: int) -> None:
        now = time.monotonic()
        if now - last[0] >= interval:
            last[0] = now
            update(done)

    return call
