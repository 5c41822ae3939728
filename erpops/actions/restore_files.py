"""restore.filestore, restore.filestore_wait: the filestore side of a restore.

The files are written while pg_restore loads the database (a background
thread started by restore.filestore, collected by restore.filestore_wait):
the database is bound by the server's CPU, the files by reading and
decrypting many small objects. They go into the temporary directory
``<filestore>/<temporary database name>``, which restore.activate or
restore.replace renames along with the database.
"""

from __future__ import annotations

import threading

from erpops.actions import restore_run
from erpops.actions.registry import Risk, StepContext, StepError, action


class _Stopped(Exception):
    pass


class _FilesJob:
    """write_files in this thread or a background one; ``stop`` makes it give up."""

    def __init__(self, items: list, dest, owner, workers: int):
        self.items, self.dest, self.owner, self.workers = items, dest, owner, workers
        self.bytes = 0
        self.result = None
        self.error: BaseException | None = None
        self.done = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def _count(self, n: int) -> None:
        with self._lock:
            self.bytes += n

    def _check(self) -> None:
        if self._stop.is_set():
            raise _Stopped()

    def run(self, check=lambda: None) -> None:
        from erpops.repo.restore_files import write_files

        def both() -> None:
            self._check()
            check()

        try:
            self.result = write_files(self.items, self.dest, workers=self.workers, owner=self.owner,
                                      on_bytes=self._count, check=both)
        finally:
            self.done.set()

    def _background(self) -> None:
        try:
            self.run()
        except BaseException as exc:  # noqa: BLE001 - handed to restore.filestore_wait, which raises it
            self.error = exc

    def start(self) -> None:
        self._thread = threading.Thread(target=self._background, name="erpops-restore-files", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def kill(self) -> None:  # ctx.track() stops tracked things with kill()
        self._stop.set()


@action("restore.filestore", risk=Risk.WRITE)
def filestore(ctx: StepContext, background: bool = True, workers: int = 2) -> dict:
    """Write the backup's filestore files into the temporary filestore directory, each checked against its SHA-1.

    Only the files the manifest lists, in Odoo's layout
    `<filestore.path>/<database>/<sha[:2]>/<sha>`, each written under a
    temporary name and renamed once its SHA-1 and size match. With
    `background: true` (the default) this runs while the next steps load the
    database; restore.filestore_wait collects it. `workers` files at once.
    Outputs: files, bytes (or background: true).
    """
    from erpops.repo.restore_files import FileToWrite, blob_items, owner_of

    run = restore_run.for_run(ctx)
    env = ctx.env
    if run.archive is not None:
        files = [FileToWrite(name, sha1, size, open_fn) for name, sha1, size, open_fn in run.archive.filestore_files()]
    else:
        files = blob_items(ctx.repo, run.manifest.files)
    if env is None or env.filestore is None:
        if files:
            raise StepError(f"the backup has {len(files)} filestore file(s) and environment has no filestore:",
                            hint="add filestore: {path: /var/lib/odoo/filestore} to the environment")
        return {"files": 0, "bytes": 0}
    via = str(getattr(env.filestore, "via", "") or "")
    if via not in ("", "local://", "local"):
        raise StepError(f"filestore via {via}: a restore writes only a filestore on this host for now",
                        hint="run erpops on the Odoo host, or copy the restored directory there")
    root = run.filestore_root
    root.mkdir(parents=True, exist_ok=True)
    job = _FilesJob(files, run.temp_dir, owner_of(root), workers)
    run.files_job = job
    if background:
        job.start()
        return {"background": True, "files": len(files)}
    ctx.track(job)
    job.run(ctx.check)
    return {"files": job.result.files, "bytes": job.result.bytes}


@action("restore.filestore_wait", risk=Risk.READ)
def filestore_wait(ctx: StepContext) -> dict:
    """Wait for the files restore.filestore writes in the background; fail as it failed.

    Outputs: files, bytes, directory (the temporary one, until activation).
    """
    run = restore_run.for_run(ctx)
    job = run.files_job
    if job is None:
        return {"files": 0, "bytes": 0, "directory": None}
    ctx.track(job)
    total = run.files_bytes
    progress = ctx.progress(total or None, "B")
    while not job.done.wait(0.25):
        ctx.check()
        progress.update(job.bytes)
    if job.error is not None:
        if isinstance(job.error, _Stopped):
            raise StepError("the filestore restore was stopped", kind="interrupted")
        raise job.error
    progress.update(job.bytes)
    return {"files": job.result.files, "bytes": job.result.bytes, "directory": str(run.temp_dir)}
