"""The repository in a real S3-compatible store (SeaweedFS started by a fixture)."""

from __future__ import annotations

import hashlib
import io
import json
import os
from datetime import datetime, timedelta, timezone

import pytest

from erpops.errors import ExitCode, OperationFailed, UsageError
from erpops.repo import keys
from erpops.repo.repository import ObjectLock, Repository
from erpops.repo.storage import ObjectExists, ObjectNotFound
from erpops.repo.storage_s3 import S3Options, S3Storage
from erpops.repo.url import parse_url

try:  # tests/ as a package, or tests/integration on sys.path (pytest's default rootdir insertion)
    from tests.integration.s3_fixture import seaweedfs  # noqa: F401 - a fixture
except ImportError:
    from s3_fixture import seaweedfs  # noqa: F401

pytestmark = pytest.mark.integration

PART = 5 * 1024 * 1024  # the S3 minimum part size


@pytest.fixture
def s3_env(seaweedfs, monkeypatch):
    """Credentials reach erpops as secret references, like in an inventory."""
    monkeypatch.setenv("TEST_S3_ACCESS", seaweedfs.access_key)
    monkeypatch.setenv("TEST_S3_SECRET", seaweedfs.secret_key)
    return S3Options(endpoint=seaweedfs.endpoint, region=seaweedfs.region, access_key="env:TEST_S3_ACCESS",
                     secret_key="env:TEST_S3_SECRET", path_style=True, part_size=PART, concurrency=2,
                     max_attempts=3)


@pytest.fixture(scope="module")
def locked_bucket(seaweedfs) -> str:
    client = seaweedfs.client()
    if "erpops-locked" not in [b["Name"] for b in client.list_buckets().get("Buckets", [])]:
        client.create_bucket(Bucket="erpops-locked", ObjectLockEnabledForBucket=True)
    return "erpops-locked"


@pytest.fixture
def where(seaweedfs) -> tuple[str, str]:
    """(bucket, prefix) of a fresh spot in the shared bucket."""
    return seaweedfs.bucket, seaweedfs.unique_prefix()


def key_file() -> keys.KeyFile:
    return keys.KeyFile(keys.generate_key_file_text())


def test_multipart_upload_of_an_object_larger_than_a_part(seaweedfs, s3_env, where):
    bucket, prefix = where
    key = key_file()
    repo = Repository.init(f"s3://{bucket}/{prefix}", key, s3=s3_env)
    data = os.urandom(PART * 2 + 12345)
    result = repo.put_object("dumps/store_nord", io.BytesIO(data))
    assert result.stored_bytes > 2 * PART
    head = seaweedfs.client().head_object(Bucket=bucket, Key=f"{prefix}/objects/dumps/store_nord")
    assert head["ETag"].strip('"').endswith("-3"), "expected a 3-part multipart upload"
    assert head["ContentLength"] == result.stored_bytes
    reopened = Repository.open(f"s3://{bucket}/{prefix}", key, s3=s3_env)
    with reopened.get_object("dumps/store_nord") as reader:
        assert hashlib.sha256(reader.read()).digest() == hashlib.sha256(data).digest()
    assert sorted(reopened.storage.list()) == ["config", "objects/dumps/store_nord"]


def test_if_absent_is_refused_by_the_server_for_single_and_multipart_puts(seaweedfs, s3_env, where):
    bucket, prefix = where
    store = S3Storage(parse_url(f"s3://{bucket}/{prefix}"), s3_env)
    store.put_stream("small", io.BytesIO(b"first"), if_absent=True)
    with pytest.raises(ObjectExists) as caught:
        store.put_stream("small", io.BytesIO(b"second"), if_absent=True)
    assert caught.value.exit_code == ExitCode.REFUSED
    store.put_stream("big", io.BytesIO(b"a" * (PART + 1)), if_absent=True)
    with pytest.raises(ObjectExists):
        store.put_stream("big", io.BytesIO(b"b" * (PART + 1)), if_absent=True)
    assert store.get_stream("small").read() == b"first"
    assert store.get_stream("big").read(1) == b"a"
    uploads = seaweedfs.client().list_multipart_uploads(Bucket=bucket, Prefix=prefix).get("Uploads", [])
    assert uploads == [], "a refused multipart upload must be aborted"


def test_blobs_are_uploaded_once_in_packs_and_read_by_range(s3_env, where):
    url = "s3://{}/{}".format(*where)
    key = key_file()
    repo = Repository.init(url, key, s3=s3_env)
    content = b"%PDF-1.7 invoice 2026/0042"
    sha = hashlib.sha1(content).hexdigest()
    assert not repo.put_blob(sha, io.BytesIO(content)).skipped
    assert repo.put_blob(sha, io.BytesIO(content)).skipped
    others = [os.urandom(1000 + i) for i in range(5)]
    with repo.pack_writer() as writer:
        for data in others:
            writer.add(hashlib.sha1(data).hexdigest(), io.BytesIO(data))
    reopened = Repository.open(url, key, s3=s3_env)  # the index comes from the bucket
    assert reopened.get_blob(sha).read() == content
    assert [reopened.get_blob(hashlib.sha1(d).hexdigest()).read() for d in others] == others
    assert len({reopened.blob_index().get(hashlib.sha1(d).hexdigest()).pack for d in others}) == 1
    assert len(list(reopened.storage.list("packs/"))) == len(list(reopened.storage.list("index/"))) == 2


def test_storage_stat_list_delete(s3_env, where):
    store = S3Storage(parse_url("s3://{}/{}/a/b".format(*where)), s3_env)
    store.put_stream("x/1", io.BytesIO(b"12345"))
    store.put_stream("y", io.BytesIO(b""))
    assert store.stat("x/1").size == 5 and store.size("y") == 0
    assert sorted(store.list()) == ["x/1", "y"] and list(store.list("x/")) == ["x/1"]
    store.delete("x/1")
    assert not store.exists("x/1")
    with pytest.raises(ObjectNotFound):
        store.get_stream("x/1")
    with pytest.raises(ObjectNotFound):
        store.delete("x/1")


def test_object_lock_sets_retention_on_every_write_and_locked_versions_cannot_be_deleted(seaweedfs, s3_env, locked_bucket):
    prefix = seaweedfs.unique_prefix()
    repo = Repository.init(f"s3://{locked_bucket}/{prefix}", key_file(), s3=s3_env, object_lock=ObjectLock("governance", 2))
    repo.put_object("small", io.BytesIO(b"tiny"))
    repo.put_object("large", io.BytesIO(os.urandom(PART + 100)))
    client = seaweedfs.client()
    expected = datetime.now(timezone.utc) + timedelta(days=2)
    for key in (f"{prefix}/config", f"{prefix}/objects/small", f"{prefix}/objects/large"):
        head = client.head_object(Bucket=locked_bucket, Key=key)
        assert head.get("ObjectLockMode") == "GOVERNANCE", key
        assert abs(head["ObjectLockRetainUntilDate"] - expected) < timedelta(minutes=5), key
        with pytest.raises(client.exceptions.ClientError) as refused:
            client.delete_object(Bucket=locked_bucket, Key=key, VersionId=head["VersionId"])
        assert refused.value.response["Error"]["Code"] == "AccessDenied"
    assert repo.storage.stat("objects/small").retain_until is not None


def test_object_lock_needs_a_bucket_created_with_it(s3_env, where):
    with pytest.raises(UsageError, match="does not have Object Lock enabled"):
        Repository.init("s3://{}/{}".format(*where), key_file(), s3=s3_env, object_lock=ObjectLock("compliance", 1))


def test_clear_errors_for_a_missing_bucket_bad_credentials_and_no_endpoint(s3_env, where, monkeypatch):
    with pytest.raises(UsageError, match="bucket 'erpops-does-not-exist' does not exist"):
        Repository.init("s3://erpops-does-not-exist/p", key_file(), s3=s3_env)
    url = "s3://{}/{}".format(*where)
    monkeypatch.setenv("TEST_S3_SECRET", "wrong-secret")
    with pytest.raises(OperationFailed, match="access refused by the storage") as caught:
        Repository.init(url, key_file(), s3=s3_env)
    assert "wrong-secret" not in caught.value.render()
    dead = S3Options(**{**s3_env.__dict__, "endpoint": "http://127.0.0.1:9", "max_attempts": 1})
    with pytest.raises(OperationFailed, match="does not answer"):
        Repository.open(url, key_file(), s3=dead)


def test_repo_init_on_s3_from_the_command_line(seaweedfs, erpops, locked_bucket, tmp_path):
    url = f"s3://{locked_bucket}/{seaweedfs.unique_prefix()}"
    env = {"S3_KEY": seaweedfs.access_key, "S3_SECRET": seaweedfs.secret_key, "REPO_PASS": "a long passphrase here"}
    common = ["--endpoint", seaweedfs.endpoint, "--region", seaweedfs.region, "--path-style",
              "--access-key", "env:S3_KEY", "--secret-key", "env:S3_SECRET"]
    made = erpops("repo", "init", url, *common, "--passphrase-env", "REPO_PASS",
                  "--object-lock-mode", "compliance", "--object-lock-days", "1", "--part-size", "8MiB",
                  "--concurrency", "2", "--max-attempts", "3", "--json", env=env)
    assert made.returncode == 0, made.output
    doc = json.loads(made.stdout)
    assert doc["object_lock"] == {"mode": "compliance", "days": 1} and doc["key_slots"] == ["passphrase"]
    for secret in env.values():
        assert secret not in made.output
    rekeyed = erpops("repo", "rekey", url, *common, "--passphrase-env", "REPO_PASS",
                     "--new-key-file", str(tmp_path / "new.key"), env=env)
    assert rekeyed.returncode == 0, rekeyed.output
    prefix = url.split("/", 3)[3]
    versions = seaweedfs.client().list_object_versions(Bucket=locked_bucket, Prefix=f"{prefix}/config")["Versions"]
    assert len(versions) == 2, "rekey writes a new config version; the locked old one stays"
    wrong = erpops("repo", "rekey", url, *common, "--passphrase-env", "REPO_PASS",
                   "--new-key-file", str(tmp_path / "other.key"), env=env)
    assert wrong.returncode == ExitCode.USAGE and "has no passphrase key slot" in wrong.stderr


class RandomSource:
    """Random bytes made on demand, never held whole."""

    def __init__(self, size: int):
        self.left = size

    def read(self, n: int = -1) -> bytes:
        n = min(n if n > 0 else 1 << 20, self.left)
        self.left -= n
        return os.urandom(n)


def test_an_80_mb_object_streams_through_s3_in_bounded_memory(s3_env, where):
    import tracemalloc

    repo = Repository.init("s3://{}/{}".format(*where), key_file(), s3=s3_env)
    repo.put_object("warmup", RandomSource(PART + 1))  # boto3's one-time allocations out of the way
    tracemalloc.start()
    try:
        repo.put_object("big", RandomSource(80 << 20))
        put_peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.reset_peak()
        with repo.get_object("big") as reader:
            while reader.read(1 << 16):
                pass
        get_peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # parts in flight: part_size x (concurrency + 1) = 15 MiB, plus botocore's own copies
    assert put_peak < 48 << 20, f"upload peaked at {put_peak >> 20} MiB for an 80 MiB object"
    assert get_peak < 16 << 20, f"download peaked at {get_peak >> 20} MiB"
