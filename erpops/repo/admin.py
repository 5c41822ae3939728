"""`repo init` and `repo rekey` as plain functions (the CLI is a thin layer over them)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from erpops.errors import UsageError
from erpops.repo.locate import key_source, locate
from erpops.repo.repository import ObjectLock, Repository


@dataclass
class KeyOptions:
    """How the operator names a key on the command line."""

    key_file: Path | None = None
    passphrase_env: str | None = None
    kms_key_id: str | None = None
    kms_region: str | None = None
    kms_endpoint: str | None = None


@dataclass
class StorageOptions:
    endpoint: str | None = None
    region: str | None = None
    access_key: str | None = None
    secret_key: str | None = None
    path_style: bool | None = None
    part_size: int | None = None
    concurrency: int | None = None
    max_attempts: int | None = None


def _check_reference(flag: str, value: str | None) -> None:
    from erpops.secrets import validate_reference

    if value is not None:
        try:
            validate_reference(value)
        except ValueError as exc:
            raise UsageError(f"{flag}: {exc}") from None


def init_repository(repo: str | None, *, env: str | None = None, config_path=None,
                    storage: StorageOptions = StorageOptions(), key: KeyOptions = KeyOptions(),
                    chunk_size: int | None = None, compression_level: int = 3,
                    lock_mode: str | None = None, lock_days: int | None = None) -> dict:
    _check_reference("--access-key", storage.access_key)
    _check_reference("--secret-key", storage.secret_key)
    target = locate(repo, env=env, config_path=config_path, **storage.__dict__)
    if (lock_mode is None) != (lock_days is None):
        raise UsageError("Object Lock needs both --object-lock-mode and --object-lock-days")
    lock = ObjectLock(lock_mode.lower(), lock_days) if lock_mode else target.object_lock
    source = key_source(key_file=key.key_file, passphrase_env=key.passphrase_env, kms_key_id=key.kms_key_id,
                        kms_region=key.kms_region, kms_endpoint=key.kms_endpoint,
                        reference=target.key_ref, create=True)
    extra = {"chunk_size": chunk_size} if chunk_size else {}
    repository = Repository.init(target.url, source, s3=target.s3, compression_level=compression_level,
                                 object_lock=lock, **extra)
    return {**repository.describe(), "name": target.name, "key": source.origin}


def rekey_repository(repo: str | None, *, env: str | None = None, config_path=None,
                     storage: StorageOptions = StorageOptions(), key: KeyOptions = KeyOptions(),
                     new_key: KeyOptions = KeyOptions(), add: bool = False) -> dict:
    target = locate(repo, env=env, config_path=config_path, **storage.__dict__)
    current = key_source(key_file=key.key_file, passphrase_env=key.passphrase_env, kms_key_id=key.kms_key_id,
                         kms_region=key.kms_region, kms_endpoint=key.kms_endpoint, reference=target.key_ref)
    if not any((new_key.key_file, new_key.passphrase_env, new_key.kms_key_id)):
        raise UsageError("no new key given", hint="give --new-key-file PATH, --new-passphrase-env NAME or --new-kms-key-id ID")
    repository = Repository.open(target.url, current, s3=target.s3)  # before a new key file is made
    new = key_source(key_file=new_key.key_file, passphrase_env=new_key.passphrase_env,
                     kms_key_id=new_key.kms_key_id, kms_region=new_key.kms_region,
                     kms_endpoint=new_key.kms_endpoint, create=True, flag_prefix="new-")
    repository.rekey(new, add=add)
    return {**repository.describe(), "name": target.name, "key": new.origin, "added": add}
