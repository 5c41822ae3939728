"""Run the PostgreSQL server programs as the `postgres` OS user when erpops runs as root.

PostgreSQL refuses to run as root. When erpops is root, initdb/pg_ctl/pg_basebackup
run as `postgres`, the directories they write are chowned to it, and the path down
to the lab directory is made traversable (o+x, never readable) — pytest's and many
home directories are 0700.
"""

from __future__ import annotations

import os
import pwd
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


def server_root(lab_root: Path) -> Path:
    """Where the PostgreSQL data, sockets and logs of the lab at ``lab_root`` live.

    As a normal user: ``<lab>/pg``. As root: under the server account's home
    (``/var/lib/postgresql/erpops-labs/<id>``), because the path down to the lab
    directory may not stay traversable by `postgres`: home directories and
    pytest's /tmp/pytest-of-root are 0700, and pytest resets that mode at every
    session start, which would pull the data directory from under a running
    server. ``<lab>/pg`` is then a symlink to it.
    """
    account = server_account()
    if not account:
        return Path(lab_root) / "pg"
    import hashlib

    home = Path(account.pw_dir)
    base = home / "erpops-labs" if home.is_dir() else Path("/tmp") / "erpops-labs"
    digest = hashlib.sha1(str(Path(lab_root).resolve()).encode()).hexdigest()[:12]
    return base / digest


def prepare_server_root(lab_root: Path) -> Path:
    """Create the server root, owned by the server account, and link it from the lab."""
    pg_root = server_root(lab_root)
    (pg_root / "run").mkdir(parents=True, exist_ok=True)
    account = server_account()
    if account:
        base = pg_root.parent
        os.chown(base, account.pw_uid, account.pw_gid)
        os.chmod(base, 0o700)
        give_to_server(pg_root)
        link = Path(lab_root) / "pg"
        if not link.is_symlink():
            link.symlink_to(pg_root)
    return pg_root
