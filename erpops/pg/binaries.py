"""Where the PostgreSQL programs are, and a clear message when they are not.

Debian installs each major version side by side in /usr/lib/postgresql/<major>/bin;
$ERPOPS_PG_BINDIR overrides the search (another version, a custom build, or a
deliberately empty directory in tests). Client programs (psql, pg_dump) may also
come from $PATH; server programs (initdb, pg_ctl, postgres) never do, since a
stray one on $PATH is usually of the wrong major version.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

from erpops.errors import MissingPrerequisite

PREFERRED_MAJOR = 15
DEBIAN_ROOT = Path("/usr/lib/postgresql")
SERVER_PROGRAMS = ("initdb", "pg_ctl", "postgres", "pg_basebackup", "pg_controldata")
PACKAGE_HINT = f"install the PostgreSQL server: apt-get install postgresql-{PREFERRED_MAJOR}"


def candidate_bindirs() -> list[Path]:
    """Directories searched for server programs, best first."""
    override = os.environ.get("ERPOPS_PG_BINDIR")
    if override:
        return [Path(override)]
    found = []
    if DEBIAN_ROOT.is_dir():
        for entry in DEBIAN_ROOT.iterdir():
            if re.fullmatch(r"\d+", entry.name) and (entry / "bin").is_dir():
                found.append(entry / "bin")
    # The preferred major first, then newest first: erpops is tested on 15.
    found.sort(key=lambda p: (p.parent.name != str(PREFERRED_MAJOR), -int(p.parent.name)))
    return found


def server_bindir(required: tuple[str, ...] = SERVER_PROGRAMS) -> Path:
    """The first directory holding every required server program, or MissingPrerequisite."""
    candidates = candidate_bindirs()
    for bindir in candidates:
        if all(_executable(bindir / name) for name in required):
            return bindir
    searched = ", ".join(str(p) for p in candidates) or str(DEBIAN_ROOT / f"{PREFERRED_MAJOR}/bin")
    via = " ($ERPOPS_PG_BINDIR)" if os.environ.get("ERPOPS_PG_BINDIR") else ""
    raise MissingPrerequisite(
        f"PostgreSQL server programs ({', '.join(required)}) not found in {searched}{via}; "
        f"the package postgresql-{PREFERRED_MAJOR} provides them",
        hint=f"{PACKAGE_HINT} (or point $ERPOPS_PG_BINDIR at a PostgreSQL bin directory)",
    )


def server_binary(name: str) -> Path:
    return server_bindir((name,)) / name


def client_binary(name: str, bindir: str | Path | None = None) -> Path:
    """A client program (psql, pg_dump, pg_restore...): the given bin_dir, the server
    bin dirs, then $PATH."""
    dirs = [Path(bindir)] if bindir else []
    dirs += candidate_bindirs()
    for d in dirs:
        if _executable(d / name):
            return d / name
    on_path = shutil.which(name)
    if on_path and not os.environ.get("ERPOPS_PG_BINDIR"):
        return Path(on_path)
    raise MissingPrerequisite(
        f"PostgreSQL client program {name} not found",
        hint=f"apt-get install postgresql-client-{PREFERRED_MAJOR} (or set $ERPOPS_PG_BINDIR)",
    )


def server_version(bindir: Path) -> str:
    """'15.14' from `postgres --version`."""
    import subprocess

    out = subprocess.run([str(bindir / "postgres"), "--version"], capture_output=True, text=True,
                         check=True).stdout
    m = re.search(r"(\d+(?:\.\d+)?)", out)
    return m.group(1) if m else out.strip()


def _executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)
