"""An optional Redis for the lab (role: sessions), started and stopped by PID."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

from erpops.errors import MissingPrerequisite, OperationFailed
from erpops.lab.state import RedisNode, pid_alive


def binary() -> str:
    path = shutil.which("redis-server")
    if not path:
        raise MissingPrerequisite("redis-server not found (needed by `lab up --redis`)",
                                  hint="apt-get install redis-server, or start the lab without --redis")
    return path


def start(node: RedisNode, timeout: float = 15) -> int:
    Path(node.dir).mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [binary(), "--port", str(node.port), "--bind", "127.0.0.1", "--dir", node.dir, "--save", "",
         "--appendonly", "no", "--daemonize", "yes", "--pidfile", node.pid_file, "--logfile", node.log_file],
        check=True, capture_output=True, stdin=subprocess.DEVNULL, timeout=timeout,
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pid = _read_pid(node.pid_file)
        if pid and ping(node.port):
            return pid
        time.sleep(0.1)
    raise OperationFailed(f"redis-server did not answer on 127.0.0.1:{node.port}", hint=f"see {node.log_file}")


def stop(node: RedisNode, timeout: float = 10) -> None:
    pid = _read_pid(node.pid_file) or node.pid
    if not pid or not pid_alive(pid) or not _is_redis(pid):
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if pid_alive(pid):
        os.kill(pid, signal.SIGKILL)


def running(node: RedisNode) -> bool:
    pid = _read_pid(node.pid_file) or node.pid
    return bool(pid) and pid_alive(pid) and _is_redis(pid)


def ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def _read_pid(path: str) -> int | None:
    try:
        return int(Path(path).read_text().strip())
    except (OSError, ValueError):
        return None


def _is_redis(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip().startswith("redis")
    except OSError:
        return False
