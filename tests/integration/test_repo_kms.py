"""A repository whose master key is wrapped by AWS KMS, as a user sets it up.

No AWS account is reachable here, so KMS is moto's KMS server (an HTTP
emulator of the KMS API, run in this process): the boto3 calls, the
encryption context that binds a key slot to its repository, and the errors
a user sees are all real; AWS's own service has not been tried.
"""

from __future__ import annotations

import io
import json

import pytest

from erpops.repo import keys
from erpops.repo.repository import Repository

moto_server = pytest.importorskip("moto.server", reason="the test extras (moto, flask) are not installed")

REGION = "eu-west-3"


@pytest.fixture(scope="module")
def kms(tmp_path_factory):
    """(endpoint URL, boto3 KMS client) of a KMS server with credentials in the environment."""
    import os

    import boto3

    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    saved = {k: os.environ.get(k) for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}
    os.environ.update(AWS_ACCESS_KEY_ID="AKIAERPOPSTEST", AWS_SECRET_ACCESS_KEY="erpops-test-secret")
    client = boto3.client("kms", region_name=REGION, endpoint_url=endpoint)
    try:
        yield endpoint, client
    finally:
        server.stop()
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def new_key(client, alias: str) -> str:
    key_id = client.create_key(Description=f"erpops test {alias}")["KeyMetadata"]["KeyId"]
    client.create_alias(AliasName=alias, TargetKeyId=key_id)
    return key_id


def test_a_kms_wrapped_repository_is_created_used_and_rekeyed(kms, tmp_path, erpops):
    endpoint, client = kms
    new_key(client, "alias/erpops-backups")
    where = tmp_path / "repo"
    kms_args = ["--kms-key-id", "alias/erpops-backups", "--kms-region", REGION, "--kms-endpoint", endpoint]

    made = erpops("repo", "init", str(where), *kms_args, "--json")
    assert made.returncode == 0, made.output
    config = json.loads((where / "config").read_text())
    slot = next(s for s in config["keys"] if s["kind"] == "kms")
    assert slot["key_id"] == "alias/erpops-backups" and slot["region"] == REGION
    assert "wrapped" not in slot and len(slot["ciphertext"]) > 40  # only what KMS returned is stored

    source = keys.KmsKey("alias/erpops-backups", REGION, endpoint)
    repo = Repository.open(str(where), source)
    repo.put_object("notes/drill.txt", io.BytesIO(b"restore drill at 03:00"))
    assert Repository.open(str(where), source).get_object("notes/drill.txt").read() == b"restore drill at 03:00"

    # Rekey to a key file: no object is rewritten, and the KMS slot is gone.
    rekeyed = erpops("repo", "rekey", str(where), *kms_args, "--new-key-file", str(tmp_path / "new.key"))
    assert rekeyed.returncode == 0, rekeyed.output
    by_file = Repository.open(str(where), keys.KeyFile((tmp_path / "new.key").read_text()))
    assert by_file.get_object("notes/drill.txt").read() == b"restore drill at 03:00"
    assert [s["kind"] for s in json.loads((where / "config").read_text())["keys"]] == ["keyfile"]


def test_an_unreachable_kms_gives_a_clear_error_and_changes_nothing(kms, tmp_path, erpops):
    endpoint, client = kms
    new_key(client, "alias/erpops-prod")
    where = tmp_path / "repo"
    kms_args = ["--kms-key-id", "alias/erpops-prod", "--kms-region", REGION]
    assert erpops("repo", "init", str(where), *kms_args, "--kms-endpoint", endpoint).returncode == 0
    before = (where / "config").read_bytes()

    refused = erpops("repo", "rekey", str(where), *kms_args, "--kms-endpoint", "http://127.0.0.1:9",
                     "--new-key-file", str(tmp_path / "new.key"))
    assert refused.returncode == 1, refused.output
    assert "cannot decrypt with AWS KMS key alias/erpops-prod" in refused.output
    assert "not reachable" in refused.output and "Traceback" not in refused.output
    assert (where / "config").read_bytes() == before and not (tmp_path / "new.key").exists()


def test_a_kms_slot_is_bound_to_its_repository(kms, tmp_path):
    """A key slot copied into another repository's config does not open it: the KMS
    encryption context names the repository id."""
    endpoint, client = kms
    new_key(client, "alias/erpops-bound")
    source = keys.KmsKey("alias/erpops-bound", REGION, endpoint)
    master = keys.new_master_key()
    slot = keys.wrap(master, source, "repository-a")
    assert keys.unwrap([slot], source, "repository-a", where="a")[0] == master
    with pytest.raises(keys.WrongKey, match="the AWS KMS does not open repository b"):
        keys.unwrap([slot], source, "repository-b", where="b")
