"""restore.redis: the Redis RDB a backup holds, loaded into the environment's Redis."""

from __future__ import annotations

from pathlib import Path

from erpops.actions import restore_run
from erpops.actions.registry import Risk, StepContext, StepError, action


@action("restore.redis", risk=Risk.DESTRUCTIVE)
def redis(ctx: StepContext) -> dict:
    """Replace the content of the environment's Redis with the RDB stored with the backup.

    The RDB is decrypted (SHA-256 checked) into a private directory of the run
    and opened by a throw-away local redis-server; the environment's Redis is
    flushed (FLUSHALL) and every key copied with DUMP/RESTORE and its time to
    live. The environment's Redis keeps running. Outputs: keys (per database), total.
    """
    from erpops.errors import VerificationFailed
    from erpops.redis_load import Client, TempServer, copy_all, free_dir, private_dir

    run = restore_run.for_run(ctx)
    env = ctx.env
    m = run.manifest
    obj = next((o for o in (m.objects if m is not None else []) if o.kind == "redis"), None)
    if obj is None:
        reason = (m.redis.reason if m is not None and m.redis is not None else "") or "no RDB stored with it"
        raise StepError(f"backup {m.backup_id if m else '(a file)'} holds no Redis data: {reason}",
                        hint="restore without --redis")
    redis_cfg = getattr(env, "redis", None) if env is not None else None
    if redis_cfg is None:
        raise StepError(f"environment {env.name if env else '?'} has no redis: in the inventory")
    work = private_dir(Path(str(ctx.run_dir)), "restore-redis")
    server = None
    try:
        rdb = work / "dump.rdb"
        digest = _decrypt(ctx, obj, rdb)
        if obj.sha256 and digest != obj.sha256:
            raise VerificationFailed(f"the Redis RDB of backup {m.backup_id} has SHA-256 {digest}, not {obj.sha256}",
                                     where=obj.key, hint="the backup is damaged; restore an older one")
        server = TempServer(rdb, work)
        ctx.track(server)
        source = server.wait_ready(ctx.check)
        password = ctx.secret(redis_cfg.password).reveal() if getattr(redis_cfg, "password", None) else None
        try:
            target = Client(str(redis_cfg.url), password)
        except OSError as exc:
            raise StepError(f"cannot connect to the environment's redis: {exc}", kind="transient") from None
        try:
            copied = copy_all(source, target, check=ctx.check)
        finally:
            target.close()
            source.close()
    finally:
        if server is not None:
            server.kill()
        free_dir(work)
    return {"keys": {f"db{k}": v for k, v in copied.items()}, "total": sum(copied.values())}


def _decrypt(ctx: StepContext, obj, dest: Path) -> str:
    import hashlib
    import os

    sha = hashlib.sha256()
    fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with ctx.repo.get_object(obj.key.removeprefix("objects/")) as source, os.fdopen(fd, "wb") as out:
        for block in iter(lambda: source.read(1 << 20), b""):
            sha.update(block)
            out.write(block)
    return sha.hexdigest()
