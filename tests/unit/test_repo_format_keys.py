"""Key slots: the master key wrapped by a passphrase, a key file or KMS."""

from __future__ import annotations

import pytest

from erpops.errors import ExitCode, OperationFailed, UsageError
from erpops.repo import keys

FAST = 1 << 10  # scrypt cost for tests; real slots use keys.SCRYPT_N
REPO_ID = "0123456789abcdef0123456789abcdef"


def test_a_passphrase_slot_opens_with_the_passphrase_only():
    master = keys.new_master_key()
    slot = keys.wrap(master, keys.Passphrase("correct horse battery", scrypt_n=FAST), REPO_ID)
    assert slot["kind"] == "passphrase" and slot["kdf"]["name"] == "scrypt" and slot["kdf"]["n"] == FAST
    assert master.hex() not in str(slot)
    assert keys.unwrap([slot], keys.Passphrase("correct horse battery"), REPO_ID, where="r") == (master, 0)
    with pytest.raises(keys.WrongKey) as caught:
        keys.unwrap([slot], keys.Passphrase("correct horse battery!", origin="passphrase in $P"), REPO_ID, where="file:///r")
    assert caught.value.exit_code == ExitCode.USAGE
    assert "passphrase in $P does not open repository file:///r" in caught.value.message
    assert "correct horse" not in caught.value.render()


def test_default_scrypt_cost_is_recorded_in_the_slot():
    slot = keys.wrap(keys.new_master_key(), keys.Passphrase("pw"), REPO_ID)
    assert (slot["kdf"]["n"], slot["kdf"]["r"], slot["kdf"]["p"]) == (keys.SCRYPT_N, keys.SCRYPT_R, keys.SCRYPT_P)


def test_a_key_file_slot_opens_with_that_file_and_no_other():
    master = keys.new_master_key()
    text = keys.generate_key_file_text()
    slot = keys.wrap(master, keys.KeyFile(text), REPO_ID)
    assert keys.unwrap([slot], keys.KeyFile(text.strip() + "\n\n"), REPO_ID, where="r")[0] == master
    with pytest.raises(keys.WrongKey):
        keys.unwrap([slot], keys.KeyFile(keys.generate_key_file_text()), REPO_ID, where="r")


def test_a_slot_from_another_repository_does_not_open_this_one():
    text = keys.generate_key_file_text()
    slot = keys.wrap(keys.new_master_key(), keys.KeyFile(text), "f" * 32)
    with pytest.raises(keys.WrongKey):
        keys.unwrap([slot], keys.KeyFile(text), REPO_ID, where="r")


def test_the_right_slot_is_found_among_several():
    master = keys.new_master_key()
    a, b = keys.generate_key_file_text(), keys.generate_key_file_text()
    slots = [keys.wrap(master, keys.KeyFile(a), REPO_ID), keys.wrap(master, keys.Passphrase("pw", scrypt_n=FAST), REPO_ID),
             keys.wrap(master, keys.KeyFile(b), REPO_ID)]
    assert keys.unwrap(slots, keys.KeyFile(b), REPO_ID, where="r") == (master, 2)
    assert keys.unwrap(slots, keys.Passphrase("pw"), REPO_ID, where="r") == (master, 1)


def test_a_key_of_a_kind_the_repository_lacks_is_named():
    slot = keys.wrap(keys.new_master_key(), keys.KeyFile(keys.generate_key_file_text()), REPO_ID)
    with pytest.raises(keys.WrongKey, match="has no passphrase key slot .it has: keyfile"):
        keys.unwrap([slot], keys.Passphrase("pw"), REPO_ID, where="r")


def test_a_short_key_file_is_refused():
    with pytest.raises(UsageError, match="fewer than 32 characters"):
        keys.KeyFile("hunter2\n", origin="key file /etc/k")


def test_kms_unreachable_gives_a_clear_error(monkeypatch):
    """The KMS path, tested only up to its error: no KMS is reachable here."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAEXAMPLEEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "example-secret")
    source = keys.KmsKey("alias/erpops", region="eu-west-3", endpoint="http://127.0.0.1:9", max_attempts=1)
    with pytest.raises(OperationFailed) as caught:
        keys.wrap(keys.new_master_key(), source, REPO_ID)
    assert "cannot encrypt with AWS KMS key alias/erpops" in caught.value.message
    assert "not reachable" in caught.value.message
    slot = {"kind": "kms", "key_id": "alias/erpops", "region": "eu-west-3", "ciphertext": "AAAA"}
    with pytest.raises(OperationFailed, match="cannot decrypt with AWS KMS key alias/erpops"):
        keys.unwrap([slot], source, REPO_ID, where="r")


def test_kms_without_a_region_says_so(monkeypatch):
    for var in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE", "AWS_CONFIG_FILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    with pytest.raises(UsageError, match="no AWS region"):
        keys.wrap(keys.new_master_key(), keys.KmsKey("alias/erpops"), REPO_ID)
