"""Integration fixtures: the embedded lab, for real.

``lab`` runs ``erpops lab up --scale 0.02`` once per test session in its own
ERPOPS_HOME (a real PostgreSQL primary + streaming replica, seeded retail data
and filestore) and ``erpops lab down`` at the end. ``lab_home`` points the
current test's ERPOPS_HOME at it, so ``-e lab`` and ``load_inventory()`` see it.
``make_lab`` builds a private, throw-away lab for tests that break things
(stopping servers, failovers) so the shared one stays healthy.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

LAB_SCALE = "0.02"
ERPOPS_BIN = Path(sys.executable).parent / "erpops"


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def run_erpops(*args: str, env: dict | None = None, timeout: float = 300) -> Run:
    """The installed command in a subprocess, no TTY (session fixtures cannot use the
    function-scoped ``erpops`` fixture of tests/conftest.py)."""
    proc = subprocess.run([str(ERPOPS_BIN), *args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})}, stdin=subprocess.DEVNULL)
    return Run(proc.returncode, proc.stdout, proc.stderr)


@dataclass
class Lab:
    home: Path  # the ERPOPS_HOME the lab lives in
    env: dict  # environment variables that make `erpops` see this lab

    @property
    def root(self) -> Path:
        return self.home / "lab"

    def state(self) -> dict:
        return json.loads((self.root / "lab.json").read_text())

    def node(self, name: str) -> dict:
        return next(n for n in self.state()["nodes"] if n["name"] == name)

    @property
    def password(self) -> str:
        return Path(self.state()["password_file"]).read_text().strip()

    def connect(self, node: str = "lab-primary", dbname: str = "retail", **kwargs):
        import psycopg

        return psycopg.connect(host="127.0.0.1", port=self.node(node)["port"], user="postgres",
                               password=self.password, dbname=dbname, autocommit=True, **kwargs)

    def popen(self, *args: str, **kwargs) -> subprocess.Popen:
        """The installed command running in the background (text pipes, no TTY)."""
        return subprocess.Popen([str(ERPOPS_BIN), *args], env={**os.environ, **self.env}, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, **kwargs)

    def erpops(self, *args: str, **kwargs):
        return run_erpops(*args, env={**self.env, **kwargs.pop("env", {})}, **kwargs)


def _start_lab(home: Path, *args: str) -> Lab:
    home.mkdir(parents=True, exist_ok=True)
    # Only ERPOPS_HOME is the lab's: a test's own XDG dirs (keys, inventory) stay its own.
    lab = Lab(home=home, env={"ERPOPS_HOME": str(home)})
    result = lab.erpops("lab", "up", *args, timeout=300, env=_private_config(home))
    if result.returncode != 0:
        logs = "".join(f"\n--- {log}:\n" + "\n".join(log.read_text(errors="replace").splitlines()[-15:])
                       for log in sorted((home / "lab" / "pg").glob("*.log")))
        lab.erpops("lab", "down", env=_private_config(home))
        pytest.fail(f"erpops lab up failed (exit {result.returncode}):\n{result.output}{logs}")
    return lab


def _private_config(home: Path) -> dict:
    (home / "config").mkdir(exist_ok=True)
    return {"XDG_CONFIG_HOME": str(home / "config"), "XDG_STATE_HOME": str(home / "state")}


def _stop_lab(lab: Lab) -> None:
    result = lab.erpops("lab", "down", timeout=120, env=_private_config(lab.home))
    assert result.returncode == 0, result.output


@pytest.fixture(scope="session")
def lab(tmp_path_factory):
    """A running lab (primary + streaming replica, scale 0.02), shared by the session."""
    lab = _start_lab(tmp_path_factory.mktemp("lab-home"), "--scale", LAB_SCALE)
    yield lab
    _stop_lab(lab)


@pytest.fixture
def lab_home(lab, isolated_home, monkeypatch):
    """Point this test's ERPOPS_HOME at the shared lab (after isolated_home set its own)."""
    monkeypatch.setenv("ERPOPS_HOME", str(lab.home))
    return lab


@pytest.fixture
def make_lab(tmp_path):
    """Build private labs for destructive tests: ``make_lab("--scale", "0.01")``; all are removed after."""
    made: list[Lab] = []

    def make(*args: str) -> Lab:
        lab = _start_lab(tmp_path / f"private-lab-{len(made)}", *args)
        made.append(lab)
        return lab

    yield make
    for lab in made:
        if lab.root.exists():
            _stop_lab(lab)


class ProcessProbe:
    """What is still running: for tests proving the lab leaves nothing behind."""

    @staticmethod
    def pids_alive(pids) -> list[int]:
        return pids_alive(pids)

    @staticmethod
    def children_of(pid: int) -> list[int]:
        return children_of(pid)

    @staticmethod
    def processes_under(path: Path) -> list[str]:
        return processes_under(path)


@pytest.fixture
def process_probe() -> ProcessProbe:
    return ProcessProbe()


def pids_alive(pids) -> list[int]:
    """The PIDs among ``pids`` that still run (zombies count as gone)."""
    alive = []
    for pid in pids:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        if stat.rsplit(")", 1)[1].split()[0] != "Z":
            alive.append(pid)
    return alive


def children_of(pid: int) -> list[int]:
    """Direct children of a process (a postmaster's checkpointer, walwriter, walsender...)."""
    kids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            if ppid == pid:
                kids.append(int(entry.name))
    return kids


def processes_under(path: Path) -> list[str]:
    """Command lines of running processes that mention ``path`` (a lab left behind)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if str(path) in cmd and int(entry.name) != os.getpid():
            found.append(f"{entry.name}: {cmd.strip()}")
    return found
