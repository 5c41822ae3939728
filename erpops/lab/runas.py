"""Run the PostgreSQL server programs as the `postgres` OS user when erpops runs as root.

PostgreSQL refuses to run as root. When erpops is root, initdb/pg_ctl/pg_basebackup
run as `postgres`, the directories they write are chowned to it, and the path down
to the lab directory is made traversable (o+x, never readable) — pytest's and many
home directories are 0700.
"""

from __future__ import annotations

import os
import pwd
import stat
import subprocess
from pathlib import Path

from erpops.errors import MissingPrerequisite, OperationFailed

SERVER_USER = "postgres"


def is_root() -> bool:
    return os.geteuid() == 0


def server_account() -> pwd.struct_passwd | None:
    """The account the servers run as: `postgres` under root, else ourselves (None)."""
    if not is_root():
        return None
    try:
        return pwd.getpwnam(SERVER_USER)
    except KeyError:
        raise MissingPrerequisite(
            "erpops runs as root and PostgreSQL refuses root, but there is no `postgres` OS user",
            hint="apt-get install postgresql-15 (it creates the user), or run erpops as a normal user",
        ) from None


def run(argv: list[str], *, cwd: Path | None = None, env: dict | None = None,
        timeout: float = 300, check: bool = True, what: str | None = None) -> subprocess.CompletedProcess:
    """Run a server program as the server account; stdout/stderr captured as text."""
    account = server_account()
    full_env = dict(os.environ)
    if account:
        full_env.update(HOME=account.pw_dir, USER=account.pw_name, LOGNAME=account.pw_name)
    full_env.update(env or {})
    kwargs = {}
    if account:
        kwargs = {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}
    try:
        proc = subprocess.run([str(a) for a in argv], cwd=str(cwd) if cwd else "/", env=full_env,
                              capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL, **kwargs)
    except subprocess.TimeoutExpired:
        raise OperationFailed(f"{what or Path(argv[0]).name} did not finish within {timeout:.0f}s") from None
    if check and proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
        raise OperationFailed(
            f"{what or Path(argv[0]).name} failed (exit {proc.returncode}): " + " | ".join(detail),
        )
    return proc


def give_to_server(path: Path) -> None:
    """chown a tree to the server account (no-op when not root)."""
    account = server_account()
    if not account:
        return
    for root, dirs, files in os.walk(path):
        os.chown(root, account.pw_uid, account.pw_gid)
        for name in dirs + files:
            os.chown(os.path.join(root, name), account.pw_uid, account.pw_gid, follow_symlinks=False)


def make_traversable(path: Path) -> list[tuple[str, int]]:
    """Add o+x to every ancestor of ``path`` that lacks it, so the server account can
    reach it. Returns [(dir, old_mode)] so the change can be reported.

    The change is not undone by `lab down`: other labs (parallel test sessions)
    may rely on the same ancestors, and o+x grants traversal only, never listing."""
    if not server_account():
        return []
    changed = []
    for parent in reversed(Path(path).resolve().parents):
        mode = stat.S_IMODE(parent.stat().st_mode)
        if not mode & stat.S_IXOTH:
            os.chmod(parent, mode | stat.S_IXOTH)
            changed.append((str(parent), mode))
    here = Path(path).resolve()
    mode = stat.S_IMODE(here.stat().st_mode)
    if not mode & stat.S_IXOTH:
        os.chmod(here, mode | stat.S_IXOTH)
        changed.append((str(here), mode))
    return changed
