"""The repository master key and the ways it is wrapped.

A repository has one random 256-bit master key, made at ``repo init`` and never
stored in the clear. The repository config holds one or more *key slots*, each
the master key wrapped by a key-encryption key (KEK):

- ``passphrase``: KEK = scrypt(passphrase, salt, n, r, p); the master key is
  sealed with AES-256-GCM under the KEK.
- ``keyfile``: KEK = HKDF-SHA256(key file contents, salt); the file holds at
  least 32 characters of random text (``erpops repo init --key-file`` makes one).
- ``kms``: the master key is encrypted by AWS KMS (boto3) with an encryption
  context naming the repository. Tested against moto's emulation of the KMS
  API (tests/integration/test_repo_kms.py), not against AWS's KMS itself.

Every wrap binds the repository id (GCM additional data / KMS encryption
context), so a slot copied from another repository does not open this one.
Changing the wrapping key (``repo rekey``) rewrites the slots only; data objects
are encrypted under keys derived from the master key and stay as they are.
"""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass

from erpops.errors import OperationFailed, UsageError

MASTER_KEY_SIZE = 32
MIN_KEYFILE_CHARS = 32
SCRYPT_N = 1 << 17  # 128 MiB of memory, about half a second: costly to guess
SCRYPT_R = 8
SCRYPT_P = 1


class WrongKey(UsageError):
    """The key given does not open the repository."""


def new_master_key() -> bytes:
    return os.urandom(MASTER_KEY_SIZE)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text.encode("ascii"), validate=True)


def _aad(repo_id: str) -> bytes:
    return b"erpops-repository-key-v1\0" + repo_id.encode("ascii")


@dataclass(frozen=True)
class Passphrase:
    """A passphrase; ``value`` is the secret text, ``origin`` says where it came from (no value)."""

    value: str
    origin: str = "passphrase"
    scrypt_n: int = SCRYPT_N  # tests lower it; a new slot records the parameters it used

    kind = "passphrase"


@dataclass(frozen=True)
class KeyFile:
    value: str  # the file's contents
    origin: str = "key file"

    kind = "keyfile"

    def __post_init__(self):
        if len(self.value.strip()) < MIN_KEYFILE_CHARS:
            raise UsageError(f"{self.origin} holds fewer than {MIN_KEYFILE_CHARS} characters: too short to be a key",
                             hint="use a file made by `erpops repo init --key-file NEW_PATH`, or a passphrase")


@dataclass(frozen=True)
class KmsKey:
    key_id: str = ""  # needed to wrap; unwrapping uses the id recorded in the slot
    region: str | None = None
    endpoint: str | None = None
    origin: str = "AWS KMS"
    max_attempts: int = 3

    kind = "kms"


KeySource = Passphrase | KeyFile | KmsKey


def generate_key_file_text() -> str:
    return base64.b64encode(os.urandom(32)).decode("ascii") + "\n"


def _seal(kek: bytes, master: bytes, repo_id: str) -> dict:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    nonce = os.urandom(12)
    return {"nonce": _b64(nonce), "wrapped": _b64(AESGCM(kek).encrypt(nonce, master, _aad(repo_id)))}


def _open(kek: bytes, slot: dict, repo_id: str) -> bytes | None:
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    try:
        return AESGCM(kek).decrypt(_unb64(slot["nonce"]), _unb64(slot["wrapped"]), _aad(repo_id))
    except InvalidTag:
        return None


def _scrypt(passphrase: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

    return Scrypt(salt=salt, length=32, n=n, r=r, p=p).derive(passphrase.encode("utf-8"))


def _hkdf(material: str, salt: bytes) -> bytes:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    return HKDF(algorithm=hashes.SHA256(), length=32, salt=salt,
                info=b"erpops-keyfile-kek-v1").derive(material.strip().encode("utf-8"))


def wrap(master: bytes, source: KeySource, repo_id: str) -> dict:
    """A new key slot holding ``master`` wrapped by ``source``."""
    salt = os.urandom(16)
    if isinstance(source, Passphrase):
        if not source.value:
            raise UsageError("the passphrase is empty")
        params = {"name": "scrypt", "n": source.scrypt_n, "r": SCRYPT_R, "p": SCRYPT_P, "salt": _b64(salt)}
        kek = _scrypt(source.value, salt, source.scrypt_n, SCRYPT_R, SCRYPT_P)
        return {"kind": "passphrase", "kdf": params, **_seal(kek, master, repo_id)}
    if isinstance(source, KeyFile):
        kek = _hkdf(source.value, salt)
        return {"kind": "keyfile", "kdf": {"name": "hkdf-sha256", "salt": _b64(salt)}, **_seal(kek, master, repo_id)}
    if isinstance(source, KmsKey):
        if not source.key_id:
            raise UsageError("a KMS key id (or ARN or alias) is needed to wrap the key")
        with _kms_errors(source, "encrypt with"):
            blob = _kms_client(source).encrypt(KeyId=source.key_id, Plaintext=master,
                                               EncryptionContext={"erpops-repository": repo_id})["CiphertextBlob"]
        return {"kind": "kms", "key_id": source.key_id, "region": source.region, "ciphertext": _b64(blob)}
    raise TypeError(f"not a key source: {type(source).__name__}")


def unwrap(slots: list[dict], source: KeySource, repo_id: str, *, where: str) -> tuple[bytes, int]:
    """The master key and the index of the slot that opened it; WrongKey if none does."""
    matching = [(i, s) for i, s in enumerate(slots) if s.get("kind") == source.kind]
    if not matching:
        kinds = ", ".join(sorted({s.get("kind", "?") for s in slots})) or "none"
        raise WrongKey(f"repository {where} has no {source.kind} key slot (it has: {kinds})",
                       hint="open it with the kind of key it was created or rekeyed with")
    for index, slot in matching:
        master = _unwrap_one(slot, source, repo_id)
        if master is not None:
            return master, index
    raise WrongKey(f"the {source.origin} does not open repository {where}",
                   hint="check that it is the key this repository was created or last rekeyed with")


def _unwrap_one(slot: dict, source: KeySource, repo_id: str) -> bytes | None:
    try:
        if isinstance(source, Passphrase):
            kdf = slot["kdf"]
            kek = _scrypt(source.value, _unb64(kdf["salt"]), int(kdf["n"]), int(kdf["r"]), int(kdf["p"]))
            return _open(kek, slot, repo_id)
        if isinstance(source, KeyFile):
            return _open(_hkdf(source.value, _unb64(slot["kdf"]["salt"])), slot, repo_id)
    except (KeyError, ValueError, TypeError) as exc:
        raise OperationFailed(f"a key slot of the repository is malformed ({exc})",
                              hint="the repository config was damaged; restore it from a copy") from None
    kms = KmsKey(slot.get("key_id", ""), source.region or slot.get("region"), source.endpoint, source.origin,
                 source.max_attempts)
    with _kms_errors(kms, "decrypt with"):
        from botocore.exceptions import ClientError

        try:
            return _kms_client(kms).decrypt(CiphertextBlob=_unb64(slot["ciphertext"]), KeyId=kms.key_id,
                                            EncryptionContext={"erpops-repository": repo_id})["Plaintext"]
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("InvalidCiphertextException", "IncorrectKeyException"):
                return None
            raise


def _kms_client(source: KmsKey):
    import boto3
    from botocore.config import Config

    config = Config(retries={"mode": "adaptive", "max_attempts": source.max_attempts}, connect_timeout=5, read_timeout=20)
    return boto3.client("kms", region_name=source.region, endpoint_url=source.endpoint, config=config)


class _kms_errors:
    """KMS failures as errors that say what to do, never as a traceback."""

    def __init__(self, source: KmsKey, action: str):
        self.source, self.action = source, action

    def __enter__(self):
        return self

    def __exit__(self, kind, exc, tb) -> bool:
        if exc is None:
            return False
        from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, NoRegionError

        what = f"cannot {self.action} AWS KMS key {self.source.key_id or '(recorded in the repository)'}"
        where = self.source.endpoint or (f"region {self.source.region}" if self.source.region else "the default region")
        if isinstance(exc, NoRegionError):
            raise UsageError(f"{what}: no AWS region configured", hint="give --kms-region or set AWS_DEFAULT_REGION") from None
        if isinstance(exc, NoCredentialsError):
            raise UsageError(f"{what}: no AWS credentials found",
                             hint="configure credentials for KMS (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, a profile or a role)") from None
        if isinstance(exc, ClientError):
            code = exc.response.get("Error", {}).get("Code", "")
            raise OperationFailed(f"{what}: KMS refused ({code})",
                                  hint="check the key id, its key policy and this identity's kms:Encrypt/kms:Decrypt permissions") from None
        if isinstance(exc, BotoCoreError):
            raise OperationFailed(f"{what}: KMS at {where} is not reachable ({type(exc).__name__})",
                                  hint="check the network path to KMS, or open the repository with another key slot") from None
        return False
