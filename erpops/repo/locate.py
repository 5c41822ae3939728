"""From what the operator typed to a repository address, S3 settings and a key.

``erpops repo init [REPO]``: REPO is an address (``s3://bucket/prefix``,
``file:///path``, ``./dir``, ``/abs/dir``), the name of an entry of the
inventory's ``repositories:``, or omitted (the environment's repository).
Command-line options override what the inventory says. The key is a key file,
a passphrase read from an environment variable, or AWS KMS; with none given,
the inventory's ``key:`` secret reference is used (a ``file:`` reference is a
key file, any other reference holds a passphrase).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

from erpops.errors import UsageError
from erpops.repo import keys
from erpops.repo.repository import ObjectLock
from erpops.repo.storage_s3 import S3Options

KEY_HELP = "give --key-file PATH, --passphrase-env NAME or --kms-key-id ID (or a repository from the inventory with key:)"


@dataclass
class RepoTarget:
    url: str
    s3: S3Options = field(default_factory=S3Options)
    key_ref: str | None = None  # the inventory's key: reference
    object_lock: ObjectLock | None = None
    name: str | None = None  # the inventory name, when it came from there


def _looks_like_address(text: str) -> bool:
    return "://" in text or "/" in text or text.startswith((".", "~"))


def locate(repo: str | None, *, env: str | None = None, config_path=None, **s3_overrides) -> RepoTarget:
    """The repository the operator means. ``s3_overrides`` are S3Options fields
    given on the command line (None = not given)."""
    if repo and _looks_like_address(repo):
        target = RepoTarget(repo)
    else:
        target = _from_inventory(repo, env, config_path)
    given = {k: v for k, v in s3_overrides.items() if v is not None}
    target.s3 = replace(target.s3, **given)
    return target


def _from_inventory(name: str | None, env: str | None, config_path) -> RepoTarget:
    from erpops.config.loader import load_inventory

    inventory = load_inventory(config_path)
    if name is None:
        if env is None:
            raise UsageError("which repository? give an address (s3://bucket/prefix, /path) or a repository name",
                             hint="or pick an environment with -e whose inventory entry names a repository")
        entry = inventory.environment(env).backup_repository
        name = inventory.environment(env).repository
    elif name in inventory.repositories:
        entry = inventory.repository(name)
    else:
        known = ", ".join(sorted(inventory.repositories)) or "none"
        raise UsageError(f"{name!r} is neither a repository address nor a repository of the inventory (known: {known})",
                         hint=f"for a directory here write ./{name}; for S3 write s3://bucket/prefix")
    s3 = S3Options(endpoint=entry.endpoint, region=entry.region, access_key=entry.access_key_id,
                   secret_key=entry.secret_access_key, part_size=int(entry.part_size),
                   path_style=entry.endpoint is not None)
    lock = ObjectLock(entry.object_lock.mode, entry.object_lock.days) if entry.object_lock else None
    return RepoTarget(entry.url, s3, entry.key, lock, name)


def key_source(*, key_file: Path | None = None, passphrase_env: str | None = None,
               kms_key_id: str | None = None, kms_region: str | None = None, kms_endpoint: str | None = None,
               reference: str | None = None, create: bool = False, flag_prefix: str = "") -> keys.KeySource:
    """The one key source the options name. ``create``: a missing key file is
    made (random, mode 0600) — for init and for the new key of rekey."""
    chosen = [n for n, v in (("key-file", key_file), ("passphrase-env", passphrase_env), ("kms-key-id", kms_key_id)) if v]
    if len(chosen) > 1:
        raise UsageError("give only one of " + ", ".join(f"--{flag_prefix}{n}" for n in chosen))
    if key_file is not None:
        return _key_file(Path(key_file).expanduser(), create)
    if passphrase_env is not None:
        from erpops.secrets import resolve

        if passphrase_env.startswith("env:") or "=" in passphrase_env:
            raise UsageError(f"--{flag_prefix}passphrase-env takes the NAME of an environment variable",
                             hint="export REPO_PASSPHRASE=... then give --passphrase-env REPO_PASSPHRASE")
        secret = resolve(f"env:{passphrase_env}")
        return keys.Passphrase(secret.reveal(), origin=f"passphrase in ${passphrase_env}")
    if kms_key_id is not None:
        return keys.KmsKey(kms_key_id, kms_region, kms_endpoint)
    if reference:
        return from_reference(reference)
    raise UsageError("no key given for the repository", hint=KEY_HELP.replace("--", f"--{flag_prefix}"))


def from_reference(reference: str) -> keys.KeySource:
    from erpops.secrets import resolve

    secret = resolve(reference)
    if reference.startswith("file:"):
        return keys.KeyFile(secret.reveal(), origin=f"key file {reference[5:]}")
    return keys.Passphrase(secret.reveal(), origin=f"passphrase in {reference}")


def _key_file(path: Path, create: bool) -> keys.KeyFile:
    if not path.exists():
        if not create:
            raise UsageError(f"key file {path} does not exist", hint="give the key file the repository was created with")
        from erpops.ui.output import log

        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(keys.generate_key_file_text())
        log(f"created key file {path} (mode 0600); keep a copy somewhere safe: without it the backups cannot be read")
    try:
        text = path.read_text()
    except OSError as exc:
        raise UsageError(f"cannot read key file {path}: {exc.strerror}") from None
    return keys.KeyFile(text, origin=f"key file {path}")
