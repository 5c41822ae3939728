"""postgres.snapshot, postgres.dump, postgres.release: the database side of a backup.

The snapshot step opens one exported snapshot per tenant and keeps it open
(erpops/actions/backup_run.py) so that the dump, the filestore capture and
the manifest's facts all describe the same moment; postgres.release (or the
snapshot step's undo on a failed run) closes them.
"""

from __future__ import annotations

import threading
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
                    "pg_version": snap.identity.pg_version, "odoo_version": snap.identity.odoo_version})
    return {"tenants": out}


@snapshot.undo
def _close_snapshots(ctx: StepContext, tenants: list[str], outputs: dict) -> None:
    run = backup_run.existing(ctx)
    if run is not None:
        run.close_snapshots()


@action("postgres.dump", risk=Risk.WRITE)
def dump(ctx: StepContext, background: bool = False) -> dict:
    """Dump each snapshotted tenant with `pg_dump --snapshot` into the repository.

    Custom format, uncompressed by pg_dump, streamed through the repository's
    zstd + AES-256-GCM straight into storage: nothing is written to a local
    disk. The password reaches pg_dump in its environment, never on its
    command line. With `background: true` the dumps run in a thread while the
    next steps (the filestore capture) go on, and postgres.dump_wait collects
    them; a failed run's rollback stops them. Outputs: `dumps` (tenant, key,
    plain_bytes, stored_bytes, sha256, seconds), or `background: true`.
    """
    run = backup_run.for_run(ctx)
    job = _DumpJob(ctx, run)
    if background:
        run.dump_job = job
        job.start()
        return {"background": True, "tenants": list(run.tenants)}
    return {"dumps": job.run_all(ctx)}


@dump.undo
def _stop_dumps(ctx: StepContext, background: bool, outputs: dict) -> None:
    run = backup_run.existing(ctx)
    job = getattr(run, "dump_job", None) if run is not None else None
    if job is not None:
        job.kill()
        job.join()
        for tenant in run.tenants.values():
            if tenant.db is not None:
                _discard(job.repo, tenant.db.key)
                tenant.db = None


@action("postgres.dump_wait", risk=Risk.READ)
def dump_wait(ctx: StepContext) -> dict:
    """Wait for the dumps postgres.dump started with `background: true`; fail as they failed.

    Outputs: `dumps` (tenant, key, plain_bytes, stored_bytes, sha256, seconds).
    """
    run = backup_run.for_run(ctx)
    job = getattr(run, "dump_job", None)
    if job is None:
        raise StepError("no dump is running in the background: postgres.dump with background: true comes first")
    ctx.track(job)  # a timeout or Ctrl-C of this step stops pg_dump
    progress = ctx.progress(None, "B")
    while not job.done.wait(0.25):
        ctx.check()
        progress.update(job.bytes_so_far())
    job.join()
    if job.error is not None:
        raise job.error
    progress.update(job.bytes_so_far())
    return {"dumps": job.outputs}


class _DumpJob:
    """The dumps of a run, one tenant after the other, in this thread or a background one."""

    def __init__(self, ctx: StepContext, run):
        from erpops.pg.connect import NodeTarget

        env = _environment(ctx)
        self.run, self.repo = run, ctx.repo
        self.target = NodeTarget.from_node(env.postgres.primary)
        self.bin_dir = getattr(env.postgres.primary, "bin_dir", None)
        self.outputs: list[dict] = []
        self.warnings: list[str] = []
        self.error: BaseException | None = None
        self.done = threading.Event()
        self._stream = None
        self._finished_bytes = 0
        self._killed = False
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._background, name="erpops-dump", daemon=True)
        self._thread.start()

    def _background(self) -> None:
        try:
            self.run_all(None)
        except BaseException as exc:  # noqa: BLE001 - handed to dump_wait, which raises it
            self.error = exc
        finally:
            self.done.set()

    def run_all(self, ctx: StepContext | None) -> list[dict]:
        for tenant in self.run.tenants.values():
            if self._killed:
                raise StepError("the dump was stopped", kind="interrupted")
            self.outputs.append(self._one(tenant, ctx))
        self.done.set()
        return self.outputs

    def _one(self, tenant, ctx: StepContext | None) -> dict:
        from erpops.pg.dump import DumpStream
        from erpops.repo.manifest import ObjectEntry, object_name
        from erpops.runbook.events import StepOutput

        snap = tenant.snapshot
        if snap is None or not snap.open:
            raise StepError(f"the snapshot of {tenant.tenant} is closed; start the backup again")
        stream = DumpStream(self.target, tenant.tenant, snap.snapshot_id, bin_dir=self.bin_dir)
        self._stream = stream
        progress = None
        if ctx is not None:
            ctx.track(stream)
            progress = ctx.progress(snap.size_estimate or None, "B")
            stream.on_read = _throttled(progress.update)
        try:
            put = self.repo.put_object(object_name(tenant.backup_id, "db.dump"), stream, if_absent=True)
        except BaseException:
            stream.kill()
            raise
        try:
            stream.finish()
        except BaseException:
            _discard(self.repo, put.key)
            raise
        self._finished_bytes += stream.bytes
        if progress is not None:
            progress.total = stream.bytes
            progress.update(stream.bytes)
        for warning in stream.warnings:
            line = f"pg_dump {tenant.tenant}: {warning}"
            self.warnings.append(line)
            if ctx is not None:
                ctx.emit(StepOutput(step=ctx.step_id, line=line))
        tenant.db = ObjectEntry(key=put.key, kind="db", plain_bytes=stream.bytes, stored_bytes=put.stored_bytes,
                                sha256=stream.sha256.hexdigest(), new=True)
        tenant.db_seconds = stream.duration
        tenant.uploaded_bytes += put.stored_bytes
        return {"tenant": tenant.tenant, "key": put.key, "plain_bytes": stream.bytes,
                "stored_bytes": put.stored_bytes, "sha256": tenant.db.sha256, "seconds": round(stream.duration, 3)}

    def bytes_so_far(self) -> int:
        current = self._stream.bytes if self._stream is not None and not self.done.is_set() else 0
        return self._finished_bytes + current

    def kill(self) -> None:
        self._killed = True
        if self._stream is not None:
            self._stream.kill()

    def join(self) -> None:
        if self._thread is not None:
            self._thread.join()


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
