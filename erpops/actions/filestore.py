"""filestore.capture: the Odoo filestore side of a backup."""

from __future__ import annotations

from erpops.actions import backup_run
from erpops.actions.registry import Risk, StepContext, StepError, action

MISSING_NAMED = 20  # how many missing files an error message lists by name


def _via(filestore) -> str | None:
    via = str(getattr(filestore, "via", "") or "")
    return None if via in ("", "local://", "local") else via


@action("filestore.capture", risk=Risk.WRITE)
def capture(ctx: StepContext, allow_missing_files: bool = False, workers: int = 2) -> dict:
    """Store the filestore files each tenant's snapshot references, as shared content-addressed blobs.

    Exactly the files ir_attachment listed in the snapshot are read, from
    `<filestore.path>/<tenant>/<store_fname>`. A file already in the
    repository (same SHA-1) is not uploaded again; a new one is checked
    against its SHA-1 name while it streams in, and a mismatch fails the step
    naming the file and its attachment ids. A referenced file missing from the
    filestore fails the step with exit 4, naming every missing file and its
    attachment ids, unless `allow_missing_files` (then the manifest records
    them). `workers` threads read and seal files at once. Outputs: `tenants` (tenant, files,
    new_files, new_bytes, uploaded_bytes, missing).
    """
    import posixpath

    from erpops.errors import VerificationFailed
    from erpops.repo.capture import capture_files
    from erpops.runbook.events import StepOutput

    env = ctx.env
    if env is None:
        raise StepError("this step needs an environment; pass -e NAME")
    if env.filestore is None:
        raise StepError(f"environment {env.name} has no filestore: in the inventory",
                        hint="add filestore: {path: /var/lib/odoo/filestore} to it (Odoo's data_dir/filestore)")
    run = backup_run.for_run(ctx)
    repo = ctx.repo
    transport = ctx.transport(_via(env.filestore))
    out = []
    for tenant in run.tenants.values():
        files = tenant.snapshot.files
        root = posixpath.join(str(env.filestore.path), tenant.tenant)
        total = ctx.progress(None, "B")

        def report(done: int, all_bytes: int, progress=total) -> None:
            progress.total = all_bytes or None
            progress.update(done)

        result = capture_files(repo, files, root, transport, tenant=tenant.tenant, workers=workers,
                               on_progress=report, check=ctx.check,
                               stop_on_missing=not allow_missing_files)
        tenant.capture = result
        tenant.uploaded_bytes += result.uploaded_bytes
        if result.missing:
            named = "; ".join(f"{m.store_fname} (attachment id {', '.join(map(str, m.attachment_ids))})"
                              for m in result.missing_files(MISSING_NAMED))
            more = f" and {len(result.missing) - MISSING_NAMED} more" if len(result.missing) > MISSING_NAMED else ""
            what = (f"{len(result.missing)} file(s) referenced by ir_attachment in {tenant.tenant} are missing "
                    f"from {root}: {named}{more}")
            if not allow_missing_files:
                raise VerificationFailed(what, where=root,
                                         hint="restore the files, or run with --allow-missing-files to back up "
                                              "without them (the manifest lists them)")
            ctx.emit(StepOutput(step=ctx.step_id, line=f"warning: {what}; continuing (--allow-missing-files)"))
        out.append({"tenant": tenant.tenant, "files": result.file_count, "new_files": result.new_files,
                    "new_bytes": result.new_bytes, "uploaded_bytes": result.uploaded_bytes,
                    "bytes": result.total_bytes, "missing": [m.store_fname for m in result.missing_files(MISSING_NAMED)],
                    "missing_count": len(result.missing)})
    return {"tenants": out}
