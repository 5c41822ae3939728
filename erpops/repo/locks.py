"""Repository locks: one backup (or prune) of a scope at a time, across hosts.

A lock is two things held together:

- ``locks/<scope>.json`` in the repository storage, plain JSON (it holds no
  secret: who, where, since when, until when, why), written with ``if_absent``
  — an S3 conditional put or a local exclusive link — so of two writers only
  one wins, even on different hosts. It is readable without the repository key
  so that an operator can see who holds a lock, and it never carries an Object
  Lock retention, so it can always be removed.
- ``<state_dir>/locks/<scope>.lock``, a local file held with ``flock`` for the
  lock's whole life, so that two processes on one host never race for the
  repository object (and the kernel drops it when the holder dies).

A lock is stale when it has expired, or when its holder ran on this host and
that process is gone (PID not alive, or alive but started at another time:
the PID was reused). A stale lock is broken — deleted and created again — and
``Lock.broken_reason`` says why. Breaking an *expired* lock of another host
re-reads it first and deletes it only if it is still the same lock; a
narrower race than that needs a storage with conditional deletes.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import socket
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from erpops.errors import OperationFailed, Refused, UsageError
from erpops.repo.storage import ObjectExists, ObjectNotFound

LOCKS_PREFIX = "locks/"
_SCOPE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,99}$")
MAX_ATTEMPTS = 3


def check_scope(scope: str) -> str:
    if not isinstance(scope, str) or not _SCOPE.match(scope):
        raise UsageError(f"invalid lock scope {scope!r}",
                         hint="a scope is letters, digits, '.', '_' and '-', like backup-prod")
    return scope


def lock_key(scope: str) -> str:
    return f"{LOCKS_PREFIX}{check_scope(scope)}.json"


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(microsecond=0)


def _iso(t: datetime) -> str:
    return t.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _short(t: datetime, now: datetime) -> str:
    """02:00:11Z today, the full date otherwise."""
    t = t.astimezone(timezone.utc)
    return f"{t:%H:%M:%S}Z" if t.date() == now.date() else _iso(t)


def process_start(pid: int) -> str | None:
    """The start time of a process (clock ticks since boot), None when it does not exist.
    Recorded in the lock so that a reused PID is not taken for the holder."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read().decode(errors="replace")
    except OSError:
        return _alive_without_proc(pid)
    # the command name (field 2) may hold spaces and parentheses: split after the last ')'
    return stat.rsplit(")", 1)[1].split()[19]


def _alive_without_proc(pid: int) -> str | None:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        return "?"  # alive, owned by someone else
    return "?"


def operator() -> str:
    import getpass

    return os.environ.get("ERPOPS_OPERATOR") or getpass.getuser()


def stale_reason(info: dict, *, now: datetime | None = None, host: str | None = None) -> str | None:
    """Why the lock described by ``info`` is stale, or None when it is live."""
    now = now or _now()
    host = host or socket.gethostname()
    try:
        expires = _parse(info["expires"])
    except (KeyError, TypeError, ValueError):
        return "its lock file is unreadable"
    if expires <= now:
        return f"expired at {_iso(expires)}"
    if info.get("host") == host:
        pid = info.get("pid")
        started = process_start(pid) if isinstance(pid, int) and pid > 0 else None
        recorded = info.get("pid_start")
        if started is None or (recorded and started != "?" and started != recorded):
            return f"holder pid {pid} on {host} is gone"
    return None


def describe_holder(info: dict, scope: str, now: datetime | None = None) -> str:
    now = now or _now()
    what = info.get("purpose") or f"the holder of lock {scope}"
    try:
        since, expires = _short(_parse(info["since"]), now), _short(_parse(info["expires"]), now)
    except (KeyError, TypeError, ValueError):
        since = expires = "?"
    return (f"{what} is already running: held by {info.get('holder', '?')} on {info.get('host', '?')} "
            f"(pid {info.get('pid', '?')}) since {since}, expires {expires}")


def refusal(info: dict, scope: str) -> Refused:
    return Refused(describe_holder(info, scope),
                   hint=f"wait for it to finish, or if you are sure it is dead: erpops repo unlock {scope}")


def lock_info(repo, scope: str) -> dict | None:
    """The lock object's content, or None when nobody holds the lock."""
    try:
        with repo.storage.get_stream(lock_key(scope)) as stream:
            raw = stream.read(64 * 1024)
    except ObjectNotFound:
        return None
    try:
        info = json.loads(raw)
        return info if isinstance(info, dict) else {"unreadable": True}
    except ValueError:
        return {"unreadable": True}


def list_locks(repo) -> list[dict]:
    out = []
    for key in repo.storage.list(LOCKS_PREFIX):
        scope = key[len(LOCKS_PREFIX):].removesuffix(".json")
        if _SCOPE.match(scope):
            info = lock_info(repo, scope)
            if info is not None:
                out.append({"scope": scope, **info})
    return out


class _LocalLock:
    """An flock'ed file in state_dir()/locks/; the kernel releases it when we die."""

    def __init__(self, scope: str):
        from erpops.paths import state_dir

        self.path = state_dir() / "locks" / f"{scope}.lock"
        self.fd: int | None = None

    def try_acquire(self) -> bool:
        import fcntl

        self.path.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(MAX_ATTEMPTS):
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                return False
            # the file may have been removed by the previous holder between our
            # open and our flock: then we locked an orphan; try the new file
            try:
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                self.fd = fd
                return True
            os.close(fd)
        return False

    def write(self, info: dict) -> None:
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, json.dumps(info).encode(), 0)

    def read(self) -> dict | None:
        try:
            return json.loads(self.path.read_text() or "null")
        except (OSError, ValueError):
            return None

    def release(self, *, remove: bool) -> None:
        if self.fd is None:
            return
        if remove:
            try:
                self.path.unlink()
            except FileNotFoundError:
                pass
        os.close(self.fd)  # drops the flock
        self.fd = None


@dataclass
class Lock:
    repo: object
    scope: str
    info: dict
    ttl: float
    broken_reason: str | None = None  # why a stale lock was broken to get this one
    broken_holder: dict | None = None  # what that stale lock said
    _local: _LocalLock | None = field(default=None, repr=False)

    @property
    def key(self) -> str:
        return lock_key(self.scope)

    @property
    def held(self) -> bool:
        return self._local is not None and self._local.fd is not None

    def _still_ours(self) -> dict | None:
        current = lock_info(self.repo, self.scope)
        if current is None or current.get("token") != self.info["token"]:
            return current or {}
        return None

    def refresh(self, ttl: float | None = None) -> None:
        """Push the expiry ``ttl`` seconds from now (long steps call it as they go)."""
        import io

        if not self.held:
            raise OperationFailed(f"lock {self.scope} is not held")
        other = self._still_ours()
        if other is not None:
            raise OperationFailed(f"lock {self.scope} was taken over while held"
                                  + (f" ({describe_holder(other, self.scope)})" if other else " (it was removed)"),
                                  hint="someone ran erpops repo unlock, or the lock expired: make the ttl longer")
        self.ttl = ttl or self.ttl
        self.info = {**self.info, "expires": _iso(_now() + timedelta(seconds=self.ttl))}
        self.repo.storage.put_stream(self.key, io.BytesIO(json.dumps(self.info).encode()))
        self._local.write(self.info)

    def release(self) -> None:
        """Remove the repository lock object (if it is still ours) and the local lock."""
        if not self.held:
            return
        try:
            if self._still_ours() is None:
                try:
                    self.repo.storage.delete(self.key)
                except ObjectNotFound:
                    pass
        finally:
            self._local.release(remove=True)

    def __enter__(self) -> "Lock":
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def acquire(repo, scope: str, *, ttl: float, purpose: str) -> Lock:
    """Take the lock ``scope`` of ``repo`` for ``ttl`` seconds, or raise Refused
    naming who holds it. A stale lock is broken (see ``Lock.broken_reason``)."""
    import io

    key = lock_key(scope)
    if ttl <= 0:
        raise UsageError("a lock needs a positive ttl")
    local = _LocalLock(scope)
    if not local.try_acquire():
        info = lock_info(repo, scope) or local.read() or {"purpose": purpose}
        raise refusal(info, scope)
    try:
        host, pid, since = socket.gethostname(), os.getpid(), _now()
        info = {"scope": scope, "token": secrets.token_hex(16), "holder": operator(), "host": host, "pid": pid,
                "pid_start": process_start(pid), "purpose": purpose, "since": _iso(since),
                "expires": _iso(since + timedelta(seconds=ttl))}
        local.write(info)
        broken_reason = broken_holder = None
        for _ in range(MAX_ATTEMPTS):
            try:
                repo.storage.put_stream(key, io.BytesIO(json.dumps(info).encode()), if_absent=True)
                return Lock(repo, scope, info, ttl, broken_reason, broken_holder, local)
            except ObjectExists:
                pass
            current = lock_info(repo, scope)
            if current is None:
                continue  # released meanwhile
            reason = stale_reason(current, host=host)
            if reason is None:
                raise refusal(current, scope)
            if lock_info(repo, scope) != current:
                continue  # someone else broke or renewed it meanwhile: look again
            try:
                repo.storage.delete(key)
            except ObjectNotFound:
                pass
            broken_reason, broken_holder = reason, current
            _log_broken(scope, current, reason)
        raise Refused(f"could not take lock {scope}: other processes keep taking it",
                      hint="try again in a minute")
    except BaseException:
        local.release(remove=False)
        raise


def _log_broken(scope: str, info: dict, reason: str) -> None:
    from erpops.ui.output import warn

    warn(f"broke the stale lock {scope} ({reason}); it was held by {info.get('holder', '?')} on "
         f"{info.get('host', '?')} (pid {info.get('pid', '?')}) since {info.get('since', '?')} for: "
         f"{info.get('purpose') or '?'}")


def unlock(repo, scope: str) -> dict | None:
    """Remove the repository lock object whatever its state (`erpops repo unlock`).
    The local lock file goes too when no process of this host holds it."""
    info = lock_info(repo, scope)
    if info is not None:
        try:
            repo.storage.delete(lock_key(scope))
        except ObjectNotFound:
            pass
    local = _LocalLock(scope)
    if local.path.exists() and local.try_acquire():
        local.release(remove=True)
    return info
