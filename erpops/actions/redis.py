"""redis.snapshot: Redis's RDB stored with each tenant's backup, when its role needs it.

Sessions and queues are state a restore needs; a cache is not (role ``cache``
is skipped and the manifest says so). The RDB is made by BGSAVE (Redis forks;
clients are not blocked), awaited through LASTSAVE and INFO persistence, then
read from the server's own ``dir``/``dbfilename`` and streamed into the
repository. This needs the Redis files on this host; a remote Redis is
refused with a clear message rather than backed up half.
"""

from __future__ import annotations

import time
from typing import Callable
from urllib.parse import urlparse

from erpops.actions import backup_run
from erpops.actions.registry import Risk, StepContext, StepError, action
from erpops.redis_client import Client, RedisError
from erpops.units import Duration

LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1", "")


def _info(client: Client, section: str) -> dict[str, str]:
    text = (client.call("INFO", section) or b"").decode("utf-8", "replace")
    return dict(line.split(":", 1) for line in text.splitlines() if ":" in line and not line.startswith("#"))


def bgsave(client: Client, sleep: Callable[[float], None], timeout: float) -> None:
    """Start a BGSAVE and wait until it finished successfully.

    Completion is told by INFO's ``rdb_saves`` counter (Redis 7), which the server
    increments when it starts a save; LASTSAVE alone has one-second resolution, so two
    backups within a second would wait for a change that never comes. Without the
    counter (older Redis), wait for the server's clock to pass LASTSAVE first, so
    that our save must change it."""
    deadline = time.monotonic() + timeout
    saves_before = _saves(client)
    before = client.call("LASTSAVE")
    if saves_before is None:
        while int(client.call("TIME")[0]) <= before and time.monotonic() < deadline:
            sleep(0.1)
    while True:
        try:
            client.call("BGSAVE")
            break
        except RedisError as exc:  # one is already running (Redis's own save, a replica sync): wait for it
            if "in progress" not in str(exc) or time.monotonic() > deadline:
                raise
            sleep(0.2)
    while time.monotonic() < deadline:
        info = _info(client, "persistence")
        if info.get("rdb_bgsave_in_progress") == "0":
            done = (int(info["rdb_saves"]) > saves_before if saves_before is not None
                    else client.call("LASTSAVE") != before)
            if done:
                if info.get("rdb_last_bgsave_status", "ok") != "ok":
                    raise StepError("redis BGSAVE failed (rdb_last_bgsave_status: err); see the redis log")
                return
        sleep(0.05)
    raise StepError(f"redis BGSAVE did not finish within {timeout:g}s", kind="timeout")


def _saves(client: Client) -> int | None:
    """How many RDB saves the server has started (INFO rdb_saves, Redis >= 7), or None."""
    value = _info(client, "persistence").get("rdb_saves")
    return int(value) if value is not None and value.strip().isdigit() else None


@action("redis.snapshot", risk=Risk.WRITE)
def snapshot(ctx: StepContext, timeout: Duration = Duration("10m")) -> dict:
    """Store Redis's RDB with each tenant's backup when the environment's redis role is sessions or queue.

    Role cache: skipped, and the manifest records why; no redis: nothing to
    do. Takes a BGSAVE, waits for it to end (INFO persistence), reads the file named
    by CONFIG GET dir/dbfilename (Redis on this host) and streams it into the
    repository as `redis.rdb`. Outputs: `captured`, `role`, `reason`, `bytes`.
    """
    import os

    from erpops.repo.manifest import ObjectEntry, RedisCapture, object_name

    env = ctx.env
    run = backup_run.for_run(ctx)
    redis = getattr(env, "redis", None) if env is not None else None
    if redis is None:
        return {"captured": False, "role": None, "reason": "the environment has no redis", "bytes": 0}
    role = str(redis.role)
    if role == "cache":
        for t in run.tenants.values():
            t.redis = RedisCapture(role=role, captured=False, reason="role cache: not backed up")
        return {"captured": False, "role": role, "reason": "role cache: not backed up", "bytes": 0}
    url = str(redis.url)
    password = ctx.secret(redis.password).reveal() if redis.password else None
    try:
        client = Client(url, password, timeout=10)
    except OSError as exc:
        raise StepError(f"cannot connect to redis {urlparse(url).hostname}:{urlparse(url).port}: {exc}",
                        kind="transient") from None
    try:
        if urlparse(url).scheme != "unix" and client.host not in LOCAL_HOSTS:
            raise StepError(f"redis at {client.host} is not on this host: its RDB file cannot be read from here",
                            hint="run the backup on the redis host, or set its role to cache if it holds only a cache")
        bgsave(client, ctx.sleep, float(timeout))
        directory = client.call("CONFIG", "GET", "dir")[1].decode()
        filename = client.call("CONFIG", "GET", "dbfilename")[1].decode()
    except (RedisError, OSError) as exc:
        raise StepError(f"redis: {exc}", hint="CONFIG and BGSAVE must be allowed for erpops' redis user") from None
    finally:
        client.close()
    path = os.path.join(directory, filename)
    size = 0
    for t in run.tenants.values():
        # one open file: Redis replaces the RDB by rename, so what is read stays one consistent dump
        with ctx.transport().open_read(path) as source:
            reader = _Sha256Reader(source)
            put = ctx.repo.put_object(object_name(t.backup_id, "redis.rdb"), reader, if_absent=True)
        size = put.plain_bytes
        t.redis_object = ObjectEntry(key=put.key, kind="redis", plain_bytes=put.plain_bytes,
                                     stored_bytes=put.stored_bytes, sha256=reader.sha256.hexdigest(), new=True)
        t.redis = RedisCapture(role=role, captured=True, key=put.key)
        t.uploaded_bytes += put.stored_bytes
    return {"captured": True, "role": role, "reason": "", "bytes": size}


@snapshot.undo
def _discard(ctx: StepContext, timeout: Duration, outputs: dict) -> None:
    """A backup that fails later keeps no RDB without a manifest."""
    from erpops.errors import ErpopsError

    run = backup_run.existing(ctx)
    for t in (run.tenants.values() if run is not None else []):
        if t.redis_object is not None:
            try:
                ctx.repo.storage.delete(t.redis_object.key)
            except ErpopsError:
                pass  # debris without a manifest; repo prune removes it
            t.redis_object = t.redis = None


class _Sha256Reader:
    def __init__(self, source):
        import hashlib

        self._source, self.sha256 = source, hashlib.sha256()

    def read(self, n: int = -1) -> bytes:
        data = self._source.read(n if n and n > 0 else 1 << 20)
        self.sha256.update(data)
        return data
