"""One PostgreSQL cluster of the lab: initdb, configuration, start/stop, and a
streaming replica cloned with pg_basebackup.

Settings follow what erpops needs to exercise: WAL level replica with
wal_log_hints (so pg_rewind works after a failover), hot standby, a few WAL
senders and slots, TCP on 127.0.0.1 only with SCRAM passwords (so the password
reference in the inventory is real), sockets inside the lab directory, and a
small shared_buffers so several labs fit on one machine.
"""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

from erpops.errors import OperationFailed
from erpops.lab import runas
from erpops.lab.state import Node, pid_alive

SUPERUSER = "postgres"
SLOT_PREFIX = "erpops_"


def free_port(avoid: set[int] = frozenset()) -> int:
    """A loopback port nobody listens on right now."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in avoid:
            return port
    raise OperationFailed("could not find a free loopback port")


def settings(node: Node, socket_dir: str) -> dict[str, str]:
    return {
        "listen_addresses": "'127.0.0.1'",
        "port": str(node.port),
        "unix_socket_directories": f"'{socket_dir}'",
        "cluster_name": f"'{node.name}'",
        "wal_level": "replica",
        "wal_log_hints": "on",
        "hot_standby": "on",
        "max_wal_senders": "10",
        "max_replication_slots": "10",
        "wal_keep_size": "'128MB'",
        "max_connections": "50",
        "shared_buffers": "'32MB'",
        "password_encryption": "'scram-sha-256'",
        "logging_collector": "off",
        "log_line_prefix": "'%m [%p] %q%u@%d '",
        # A lab, not production: durability stays on (the ledger depends on it),
        # but checkpoints are spread less to keep a small machine responsive.
        "checkpoint_timeout": "'5min'",
        "max_wal_size": "'512MB'",
    }


def write_settings(node: Node, socket_dir: str) -> None:
    """Append erpops's settings to postgresql.conf; later lines win in PostgreSQL."""
    conf = Path(node.data_dir) / "postgresql.conf"
    lines = ["", "# --- erpops lab settings (later lines override earlier ones) ---"]
    lines += [f"{k} = {v}" for k, v in settings(node, socket_dir).items()]
    with conf.open("a") as fh:
        fh.write("\n".join(lines) + "\n")


def initdb(bin_dir: Path, node: Node, socket_dir: str, password_file: Path) -> None:
    data = Path(node.data_dir)
    data.parent.mkdir(parents=True, exist_ok=True)
    # initdb reads the password as the server account; hand it a private copy.
    pwcopy = data.parent / ".initdb-pw"
    pwcopy.write_text(password_file.read_text())
    os.chmod(pwcopy, 0o600)
    runas.give_to_server(data.parent)
    try:
        runas.run([bin_dir / "initdb", "-D", data, "-U", SUPERUSER, "--pwfile", pwcopy,
                   "--auth-host=scram-sha-256", "--auth-local=scram-sha-256",
                   "-E", "UTF8", "--locale=C.UTF-8", "--data-checksums", "--no-instructions"],
                  cwd=data.parent, what="initdb", timeout=180)
    finally:
        pwcopy.unlink(missing_ok=True)
    write_settings(node, socket_dir)
    runas.give_to_server(data)


def start(bin_dir: Path, node: Node, timeout: int = 60) -> int:
    """Start the cluster, wait until it accepts connections; returns the postmaster PID."""
    runas.run([bin_dir / "pg_ctl", "start", "-D", node.data_dir, "-l", node.log_file,
               "-w", "-t", str(timeout), "-s"],
              cwd=Path(node.data_dir).parent, what=f"pg_ctl start ({node.name})", timeout=timeout + 15,
              check=False)
    pid = postmaster_pid(node)
    if not pid_alive(pid):
        raise OperationFailed(
            f"PostgreSQL {node.name} did not start on 127.0.0.1:{node.port}",
            hint=f"see the server log: {node.log_file}\n  last lines: {_tail(node.log_file)}",
        )
    return pid


def stop(bin_dir: Path, node: Node, timeout: int = 60) -> None:
    """pg_ctl stop -m fast, then make sure the recorded PID is gone (SIGKILL as a last resort)."""
    pid = postmaster_pid(node) or node.pid
    if Path(node.data_dir, "postmaster.pid").exists():
        runas.run([bin_dir / "pg_ctl", "stop", "-D", node.data_dir, "-m", "fast", "-w",
                   "-t", str(timeout), "-s"], cwd=Path(node.data_dir).parent, check=False,
                  what=f"pg_ctl stop ({node.name})", timeout=timeout + 15)
    for candidate in {pid, node.pid} - {None}:
        _wait_gone(candidate, 10)


def _wait_gone(pid: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if pid_alive(pid) and _is_postgres(pid):
        import signal

        os.kill(pid, signal.SIGKILL)
        _wait_gone_quietly(pid, 5)


def _wait_gone_quietly(pid: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)


def _is_postgres(pid: int) -> bool:
    """Guard against PID reuse: only ever signal a process that is a postgres server."""
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip() in ("postgres", "postmaster")
    except OSError:
        return False


def postmaster_pid(node: Node) -> int | None:
    try:
        first = Path(node.data_dir, "postmaster.pid").read_text().splitlines()[0]
        return int(first)
    except (OSError, ValueError, IndexError):
        return None


def running(node: Node) -> bool:
    pid = postmaster_pid(node)
    return pid is not None and pid_alive(pid) and _is_postgres(pid)


def is_standby(node: Node) -> bool:
    """A data directory that will start as a standby (pg_basebackup -R left standby.signal)."""
    return Path(node.data_dir, "standby.signal").exists()


def create_replica(bin_dir: Path, primary: Node, replica: Node, socket_dir: str,
                   password_file: Path) -> None:
    """Clone the primary with pg_basebackup -R into a streaming standby with its own slot."""
    data = Path(replica.data_dir)
    runas.give_to_server(data.parent)
    slot = SLOT_PREFIX + replica.name.replace("-", "_")
    runas.run([bin_dir / "pg_basebackup", "-h", "127.0.0.1", "-p", str(primary.port), "-U", SUPERUSER,
               "-D", data, "-X", "stream", "-R", "-C", "-S", slot, "-c", "fast", "--no-password"],
              cwd=data.parent, env={"PGPASSWORD": password_file.read_text().strip()},
              what=f"pg_basebackup ({replica.name})", timeout=600)
    # The copy carries the primary's port and name; give the replica its own.
    write_settings(replica, socket_dir)
    runas.give_to_server(data)


def _tail(path: str, n: int = 3) -> str:
    try:
        return " | ".join(Path(path).read_text(errors="replace").strip().splitlines()[-n:])
    except OSError:
        return "(no log)"
