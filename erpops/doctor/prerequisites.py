"""Programs erpops needs on the machine it runs on, with their versions."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

from erpops.doctor.checks import Check
from erpops.errors import MissingPrerequisite

# (program, its version argument, Debian package, required, what it is for)
TOOLS = [
    ("pgbackrest", "version", "pgbackrest", False, "physical backups and PITR"),
    ("redis-server", "--version", "redis-server", False, "the lab's Redis (--redis)"),
    ("sshd", "-V", "openssh-server", False, "the SSH transport's tests"),
]
SEARCH = [Path("/usr/bin"), Path("/usr/sbin"), Path("/usr/local/bin")]


def _version_of(program: Path, *args: str) -> str:
    try:
        out = subprocess.run([str(program), *(args or ("--version",))], capture_output=True,
                             text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"cannot run: {exc}"
    text = (out.stdout or out.stderr).strip()
    m = re.search(r"\d+\.\d+(?:\.\d+)?", text)
    return m.group(0) if m else (text.splitlines()[0] if text else "unknown version")


def _find(program: str) -> Path | None:
    on_path = shutil.which(program)
    if on_path:
        return Path(on_path)
    for d in SEARCH:
        if (d / program).is_file():
            return d / program
    return None


def postgres_checks() -> list[Check]:
    from erpops.pg import binaries

    checks = []
    try:
        bindir = binaries.server_bindir()
        checks.append(Check("PostgreSQL server", True, f"{binaries.server_version(bindir)} in {bindir}"))
    except MissingPrerequisite as exc:
        checks.append(Check("PostgreSQL server", False, exc.message, exc.hint or ""))
    for program in ("psql", "pg_dump", "pg_restore"):
        try:
            path = binaries.client_binary(program)
            checks.append(Check(f"PostgreSQL client {program}", True, f"{_version_of(path)} at {path}"))
        except MissingPrerequisite as exc:
            checks.append(Check(f"PostgreSQL client {program}", False, exc.message, exc.hint or ""))
    return checks


def prerequisite_checks() -> list[Check]:
    checks = postgres_checks()
    for program, version_arg, package, required, purpose in TOOLS:
        path = _find(program)
        if path is None:
            checks.append(Check(program, False, f"not installed (needed for {purpose})",
                                f"apt-get install {package}", required=required))
            continue
        version = _version_of(path, version_arg)
        checks.append(Check(program, True, f"{version} at {path}", required=required))
    return checks
