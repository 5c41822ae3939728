"""Databases a restore creates, loads, renames and drops.

A restore never writes under the target's name until the very end: it loads
into a temporary database (``<target>__erpops_restore_<id>``) and renames it.
``pg_restore`` reads a custom-format dump from a seekable file (``-j`` needs
one) as the connecting user, ``--no-owner --no-privileges``: the restored
objects belong to the inventory's user, which is the role Odoo connects as,
and grants to roles of the source server (which may not exist here) are not
replayed. The password reaches pg_restore and psql through PGPASSWORD in
their environment, never on their command line.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from erpops.errors import OperationFailed, UsageError
from erpops.pg.binaries import client_binary
from erpops.pg.client_process import ClientProcess
from erpops.pg.connect import NodeTarget, connect

MAX_NAME_BYTES = 63
# Odoo's own rule for database names (odoo.service.db.DBNAME_PATTERN)
DB_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]+$")


def check_db_name(name: str, *, what: str = "database name") -> str:
    if not DB_NAME.match(name or "") or len(name.encode()) > MAX_NAME_BYTES:
        raise UsageError(f"{what} {name!r} is not valid: Odoo accepts letters, digits, '_', '.' and '-', "
                         f"starting with a letter or digit, at least 2 and at most {MAX_NAME_BYTES} bytes",
                         hint="e.g. --as store_nord_check")
    return name


def _ident(name: str) -> str:
    return '"' + check_db_name(name).replace('"', '""') + '"'


def database_exists(target: NodeTarget, name: str) -> bool:
    with connect(target, application_name="erpops restore") as conn:
        return conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is not None


def leftover_databases(target: NodeTarget, name: str, marker: str) -> list[str]:
    """Databases ``<name><marker>...`` on the server: temporary ones an earlier restore
    could not remove (it was killed with SIGKILL, or the server went away)."""
    pattern = (name + marker).replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    with connect(target, application_name="erpops restore") as conn:
        rows = conn.execute("SELECT datname FROM pg_database WHERE datname LIKE %s ORDER BY datname",
                            (pattern,)).fetchall()
    return [r[0] for r in rows]


def server_version_num(target: NodeTarget) -> int:
    with connect(target, application_name="erpops restore") as conn:
        return int(conn.execute("SHOW server_version_num").fetchone()[0])


def create_database(target: NodeTarget, name: str) -> None:
    """An empty UTF-8 database from template0 (what pg_restore without --create needs)."""
    with connect(target, application_name="erpops restore") as conn:
        conn.execute(f"CREATE DATABASE {_ident(name)} TEMPLATE template0 ENCODING 'UTF8'")


def terminate(conn, name: str) -> int:
    rows = conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE datname = %s AND pid <> pg_backend_pid()", (name,)).fetchall()
    return len(rows)


def drop_database(target: NodeTarget, name: str) -> bool:
    """Drop ``name`` if it exists, ending its sessions first. True when it existed."""
    with connect(target, application_name="erpops restore") as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is None:
            return False
        conn.execute(f"ALTER DATABASE {_ident(name)} ALLOW_CONNECTIONS false")
        terminate(conn, name)
        conn.execute(f"DROP DATABASE {_ident(name)}")
    return True


def rename_database(target: NodeTarget, old: str, new: str) -> None:
    """ALTER DATABASE RENAME, after ending the sessions still open on ``old``."""
    with connect(target, application_name="erpops restore") as conn:
        terminate(conn, old)
        conn.execute(f"ALTER DATABASE {_ident(old)} RENAME TO {_ident(new)}")


class RenameAfterDropFailed(OperationFailed):
    """The old database is gone and the restored one kept its temporary name."""


def replace_database(target: NodeTarget, old: str, new: str) -> bool:
    """Drop ``new`` (ending its sessions) and rename ``old`` to it, on one connection, back to back.
    True when a database ``new`` existed and was dropped. If the drop fails, ``new`` is
    left as it was (connections allowed again); if the rename fails after the drop,
    RenameAfterDropFailed says so (``old`` must then be kept)."""
    import psycopg

    with connect(target, application_name="erpops restore") as conn:
        existed = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (new,)).fetchone() is not None
        if existed:
            conn.execute(f"ALTER DATABASE {_ident(new)} ALLOW_CONNECTIONS false")
            try:
                terminate(conn, new)
                conn.execute(f"DROP DATABASE {_ident(new)}")
            except psycopg.Error as exc:
                conn.execute(f"ALTER DATABASE {_ident(new)} ALLOW_CONNECTIONS true")
                raise OperationFailed(f"cannot drop database {new} on {target.name}: "
                                      f"{str(exc).strip().splitlines()[0]}; it was left as it was",
                                      where=target.name) from None
        try:
            terminate(conn, old)
            conn.execute(f"ALTER DATABASE {_ident(old)} RENAME TO {_ident(new)}")
        except psycopg.Error as exc:
            if not existed:
                raise
            raise RenameAfterDropFailed(
                f"database {new} was dropped but the restored database could not take its name: "
                f"{str(exc).strip().splitlines()[0]}", where=target.name,
                hint=f'the restored data is kept as {old}: ALTER DATABASE "{old}" RENAME TO "{new}"') from None
    return existed


def restore_argv(pg_restore: Path | str, target: NodeTarget, dbname: str, dump: Path, jobs: int) -> list[str]:
    return [str(pg_restore), "--no-owner", "--no-privileges", "--exit-on-error", "--no-password",
            f"--jobs={max(1, jobs)}", f"--host={target.host}", f"--port={target.port}",
            f"--username={target.user}", f"--dbname={dbname}", str(dump)]


def psql_argv(psql: Path | str, target: NodeTarget, dbname: str, script: Path) -> list[str]:
    return [str(psql), "-X", "-q", "-v", "ON_ERROR_STOP=1", "--no-password", f"--host={target.host}",
            f"--port={target.port}", f"--username={target.user}", f"--dbname={dbname}", "-f", str(script)]


MIN_MAINTENANCE_WORK_MEM = 1 << 20  # PostgreSQL's own bounds for maintenance_work_mem
MAX_MAINTENANCE_WORK_MEM = (2 << 30) - 1024


def load_settings(maintenance_work_mem: int) -> dict[str, str]:
    """Session settings of the connections that load a dump (0: the server's own).

    Index builds dominate a restore's load, and with the default 64 MB each one
    sorts on disk: a larger ``maintenance_work_mem`` for these sessions only
    (each of pg_restore's jobs may use it once) took pg_restore -j2 of the
    benchmark database from about 20 s to 15 s. ``synchronous_commit=off`` saves
    a WAL flush per table: safe here, because nothing is under the target's name
    until the rename, whose own (synchronous) commit flushes all WAL before it."""
    settings = {"synchronous_commit": "off"}
    if maintenance_work_mem:
        if not MIN_MAINTENANCE_WORK_MEM <= maintenance_work_mem <= MAX_MAINTENANCE_WORK_MEM:
            raise UsageError(f"maintenance_work_mem of {maintenance_work_mem} bytes is outside PostgreSQL's "
                             "1MB to 2GB", hint="e.g. --maintenance-work-mem 512MiB, or 0 for the server's setting")
        settings["maintenance_work_mem"] = f"{maintenance_work_mem // 1024}kB"
    return settings


def pgoptions(settings: dict[str, str]) -> dict[str, str]:
    """PGOPTIONS carrying ``settings`` (after any the caller's environment already has)."""
    import os

    own = " ".join(f"-c {name}={value}" for name, value in settings.items())
    inherited = os.environ.get("PGOPTIONS", "").strip()
    return {"PGOPTIONS": f"{inherited} {own}".strip()}


class LoadProcess(ClientProcess):
    """pg_restore (or psql for a plain SQL dump) loading a file into a database;
    ``kill`` stops it (timeout, Ctrl-C), ``wait`` checks its exit."""

    def __init__(self, argv: list[str], target: NodeTarget, dbname: str, settings: dict[str, str] | None = None):
        super().__init__(argv, target, application_name="erpops restore",
                         extra_env=pgoptions(settings) if settings else None)
        self.dbname = dbname

    @classmethod
    def pg_restore(cls, target: NodeTarget, dbname: str, dump: Path, *, jobs: int, bin_dir: str | None = None,
                   settings: dict[str, str] | None = None):
        return cls(restore_argv(client_binary("pg_restore", bin_dir), target, dbname, dump, jobs), target, dbname,
                   settings)

    @classmethod
    def psql(cls, target: NodeTarget, dbname: str, script: Path, *, bin_dir: str | None = None,
             settings: dict[str, str] | None = None):
        return cls(psql_argv(client_binary("psql", bin_dir), target, dbname, script), target, dbname, settings)

    def wait(self) -> None:
        self.wait_checked(f"{self.program} into database {self.dbname}",
                          hint="the temporary database is dropped; nothing under the target name changed")


_DUMPED_FROM = re.compile(rb"Dumped from database version:? (\d+(?:\.\d+)?)")


def dumped_from(archive) -> str | None:
    """The PostgreSQL version that wrote an Odoo backup file's dump, from its header
    (plain SQL) or its table of contents (custom format); None when it does not say."""
    if archive.dump_format == "plain":
        with archive.open_dump() as fh:
            head = fh.read(8192)
    else:
        proc = subprocess.run([str(client_binary("pg_restore")), "--list", str(archive.path)], capture_output=True,
                              stdin=subprocess.DEVNULL)
        if proc.returncode != 0:
            from erpops.errors import VerificationFailed

            detail = proc.stderr.decode(errors="replace").strip().splitlines()[-1:] or ["no message"]
            raise VerificationFailed(f"pg_restore cannot read {archive.path}: {detail[0]}", where=str(archive.path),
                                     hint="the file is truncated or damaged (or newer than this pg_restore)")
        head = proc.stdout[:8192]
    m = _DUMPED_FROM.search(head)
    return m.group(1).decode() if m else None
