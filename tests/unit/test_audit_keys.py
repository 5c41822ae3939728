"""Signing keys: files, references, key ids, trusted public keys."""

from __future__ import annotations

import base64
import hashlib
import stat

import pytest
from cryptography.hazmat.primitives import serialization

from erpops.audit.keys import (default_key_path, init_key, load_public_file, load_signer, parse_public_lines,
                               public_path, trusted_keys)
from erpops.errors import Refused, UsageError


def test_init_writes_a_0600_pem_and_a_public_line():
    signer = init_key()
    path = default_key_path()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text().startswith("-----BEGIN PRIVATE KEY-----")
    line = public_path(path).read_text().strip()
    kind, b64, comment = line.split(" ", 2)
    raw = base64.b64decode(b64)
    assert kind == "ed25519" and len(raw) == 32 and comment
    assert signer.key_id == "ed25519:" + hashlib.sha256(raw).hexdigest()[:16]
    assert load_public_file(public_path(path))[0].key_id == signer.key_id


def test_init_refuses_to_overwrite_unless_forced():
    first = init_key()
    with pytest.raises(Refused):
        init_key()
    assert load_signer(None).key_id == first.key_id
    assert init_key(force=True).key_id != first.key_id


def test_default_key_is_created_on_first_use():
    assert not default_key_path().exists()
    signer = load_signer(None)
    assert default_key_path().exists()
    assert load_signer(None).key_id == signer.key_id


@pytest.mark.parametrize("form", ["pem", "raw"])
def test_signing_key_from_env_reference(monkeypatch, tmp_path, form):
    signer = init_key(tmp_path / "k")
    if form == "pem":
        value = (tmp_path / "k").read_text()
    else:
        value = base64.b64encode(signer.private_key.private_bytes(
            serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption())).decode()
    monkeypatch.setenv("AUDIT_KEY", value)
    assert load_signer({"signing_key": "env:AUDIT_KEY"}).key_id == signer.key_id
    assert load_signer({"signing_key": f"file:{tmp_path / 'k'}"}).key_id == signer.key_id
    assert not default_key_path().exists()


def test_a_bad_key_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("AUDIT_KEY", "not a key")
    with pytest.raises(UsageError, match="not an Ed25519 private key"):
        load_signer({"signing_key": "env:AUDIT_KEY"})


def test_trusted_keys_come_from_the_inventory_and_the_local_keys_dir(tmp_path):
    own = init_key()
    alice = init_key(tmp_path / "alice")
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "alice.pub").write_text("# alice, ops\n" + alice.public_line("alice") + "\n")
    trusted = trusted_keys({"trusted_keys": ["docs/alice.pub"]}, base_dir=tmp_path)
    assert set(trusted) == {own.key_id, alice.key_id}
    assert trusted[alice.key_id].comment == "alice"


def test_a_malformed_public_key_line_names_file_and_line():
    with pytest.raises(UsageError, match="bob.pub:2"):
        parse_public_lines("\nssh-rsa AAAA bob\n", "bob.pub")
