"""Ed25519 keys that seal run logs, and the set of public keys a verifier trusts.

Files (docs/audit-log.md):

- private key: PEM, PKCS#8, unencrypted, mode 0600 — by default
  ``config_dir()/keys/operator.ed25519``; or any ``file:``/``env:`` secret
  reference (inventory ``audit.signing_key``) whose value is that PEM or the
  base64 of the 32-byte raw private key;
- public key: one line ``ed25519 <base64 of the 32-byte raw key> <comment>``,
  written next to the private key with the suffix ``.pub``;
- key id: ``ed25519:`` + the first 16 hex digits of SHA-256(raw public key).

Trusted keys: every key file listed in ``audit.trusted_keys``, every ``*.pub``
in ``config_dir()/keys/`` (the local operator trusts their own key), and any
``--trusted-key FILE`` given to ``erpops audit verify``.
"""

from __future__ import annotations

import base64
import binascii
import getpass
import hashlib
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from erpops.errors import OperationFailed, Refused, UsageError
from erpops.paths import config_dir

DEFAULT_KEY_NAME = "operator.ed25519"


def keys_dir() -> Path:
    return config_dir() / "keys"


def default_key_path() -> Path:
    return keys_dir() / DEFAULT_KEY_NAME


def key_id(raw_public: bytes) -> str:
    return "ed25519:" + hashlib.sha256(raw_public).hexdigest()[:16]


def public_line(raw_public: bytes, comment: str = "") -> str:
    line = "ed25519 " + base64.b64encode(raw_public).decode("ascii")
    return f"{line} {comment}".rstrip()


@dataclass
class Signer:
    """A private key able to seal logs, with its public half and key id."""

    private_key: Any  # cryptography Ed25519PrivateKey
    source: str  # where it was loaded from, for messages (never the value)

    @property
    def public_raw(self) -> bytes:
        from cryptography.hazmat.primitives import serialization

        return self.private_key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw)

    @property
    def key_id(self) -> str:
        return key_id(self.public_raw)

    def public_line(self, comment: str | None = None) -> str:
        return public_line(self.public_raw, comment if comment is not None else _default_comment())

    def sign(self, message: bytes) -> bytes:
        return self.private_key.sign(message)


def _default_comment() -> str:
    return f"{getpass.getuser()}@{socket.gethostname()}"


def _private_from_text(text: str, source: str):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    text = text.strip()
    try:
        if text.startswith("-----BEGIN"):
            key = serialization.load_pem_private_key(text.encode("ascii"), password=None)
        else:
            key = Ed25519PrivateKey.from_private_bytes(base64.b64decode(text, validate=True))
    except (ValueError, TypeError, binascii.Error, UnicodeEncodeError):
        raise UsageError(f"the signing key from {source} is not an Ed25519 private key",
                         hint="expected an unencrypted PKCS#8 PEM or the base64 of 32 raw bytes; "
                              "create one with: erpops keys init") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise UsageError(f"the signing key from {source} is not an Ed25519 key",
                         hint="create one with: erpops keys init")
    return key


def _audit_field(audit_config: Any, name: str) -> Any:
    if audit_config is None:
        return None
    if isinstance(audit_config, dict):
        return audit_config.get(name)
    return getattr(audit_config, name, None)


def init_key(path: Path | None = None, *, force: bool = False) -> Signer:
    """Create a new key pair (private 0600, public ``.pub`` beside it)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    path = Path(os.path.expanduser(str(path))) if path else default_key_path()
    if path.exists() and not force:
        raise Refused(f"a signing key already exists at {path}",
                      hint="keep it (erpops keys show), or replace it with --force — logs sealed "
                           "with the old key stay verifiable only while its .pub stays trusted")
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
        fh.flush()
        os.fsync(fh.fileno())
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)
    signer = Signer(key, str(path))
    public_path(path).write_text(signer.public_line() + "\n")
    return signer


def public_path(private_path: Path) -> Path:
    return private_path.with_name(private_path.name + ".pub")


def load_key_file(path: Path) -> Signer:
    try:
        text = path.read_text()
    except OSError as exc:
        raise OperationFailed(f"cannot read the signing key {path}: {exc.strerror}",
                              hint="create one with: erpops keys init") from None
    return Signer(_private_from_text(text, str(path)), str(path))


def load_signer(audit_config: Any = None, *, create: bool = True) -> Signer:
    """The key that seals this machine's run logs.

    ``audit_config.signing_key`` (a ``file:``/``env:`` reference) wins; else the
    default key in ``config_dir()/keys/``, created on first use.
    """
    ref = _audit_field(audit_config, "signing_key")
    if ref:
        from erpops.secrets import resolve

        secret = resolve(ref)
        return Signer(_private_from_text(secret.reveal(), ref), ref)
    path = default_key_path()
    if not path.exists():
        if not create:
            raise UsageError(f"no signing key at {path}", hint="create one with: erpops keys init")
        signer = init_key(path)
        from erpops.ui.output import log

        log(f"created the audit signing key {path} ({signer.key_id}); "
            f"share {public_path(path)} with your auditors")
        return signer
    return load_key_file(path)


@dataclass(frozen=True)
class TrustedKey:
    key_id: str
    raw: bytes
    comment: str
    source: str


def parse_public_lines(text: str, source: str) -> list[TrustedKey]:
    """Parse a public key file: ``ed25519 <base64> [comment]`` lines; ``#`` comments."""
    keys = []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split(None, 2)
        try:
            if parts[0] != "ed25519" or len(parts) < 2:
                raise ValueError
            raw = base64.b64decode(parts[1], validate=True)
            if len(raw) != 32:
                raise ValueError
        except (ValueError, binascii.Error):
            raise UsageError(f"{source}:{number}: not an Ed25519 public key line",
                             hint="expected: ed25519 <base64 of 32 bytes> <comment> "
                                  "(as written by erpops keys init / erpops keys show)") from None
        keys.append(TrustedKey(key_id(raw), raw, parts[2] if len(parts) > 2 else "", f"{source}:{number}"))
    return keys


def load_public_file(path: Path) -> list[TrustedKey]:
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise UsageError(f"cannot read the trusted key {path}: {exc.strerror}",
                         hint="check audit.trusted_keys in the inventory or the --trusted-key path") from None
    return parse_public_lines(text, str(path))


def trusted_keys(audit_config: Any = None, extra: Iterable[Path] = (),
                 base_dir: Path | None = None) -> dict[str, TrustedKey]:
    """key id -> TrustedKey, from the inventory, the local keys dir and ``extra``."""
    files: list[Path] = []
    for entry in _audit_field(audit_config, "trusted_keys") or []:
        p = Path(os.path.expanduser(str(entry)))
        files.append(p if p.is_absolute() or base_dir is None else base_dir / p)
    if keys_dir().is_dir():
        files.extend(sorted(keys_dir().glob("*.pub")))
    files.extend(Path(p) for p in extra)
    trusted: dict[str, TrustedKey] = {}
    for path in files:
        for key in load_public_file(path):
            trusted.setdefault(key.key_id, key)
    return trusted
