"""`erpops repo init` and `erpops repo rekey`: create a backup repository, change its key."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from erpops.cli.context import OPTIONS, env_name, json_mode

repo_app = typer.Typer(
    help="The backup repository: a local directory or an S3 bucket, every object compressed and encrypted.",
    no_args_is_help=True,
)

REPO_ARG = typer.Argument(None, metavar="[REPO]", help="s3://bucket/prefix, file:///path, a directory path, or a repository "
                                                       "name from the inventory (default: the environment's repository).")


def _storage(endpoint, region, access_key, secret_key, path_style, part_size, concurrency, max_attempts):
    from erpops.errors import UsageError
    from erpops.repo.admin import StorageOptions
    from erpops.units import parse_size

    try:
        size = parse_size(part_size) if part_size else None
    except ValueError as exc:
        raise UsageError(f"--part-size: {exc}") from None
    return StorageOptions(endpoint, region, access_key, secret_key, path_style, size, concurrency, max_attempts)


def _human(doc: dict) -> None:
    from erpops.ui.output import ok

    lock = doc["object_lock"]
    ok(f"{doc['action']} {doc['url']}  (id {doc['id']}, format {doc['format_version']}, "
       f"zstd level {doc['compression']['level']}, chunks of {doc['chunk_size']} bytes, "
       f"Object Lock {lock['mode'] + ' ' + str(lock['days']) + ' days' if lock else 'off'}, "
       f"key slots: {', '.join(doc['key_slots'])}; wrapped by the {doc['key']})")


@repo_app.command("init")
def init(
    repo: Optional[str] = REPO_ARG,
    key_file: Optional[Path] = typer.Option(None, "--key-file", help="Wrap the master key with this key file (made, mode 0600, if missing)."),
    passphrase_env: Optional[str] = typer.Option(None, "--passphrase-env", metavar="NAME", help="Wrap the master key with the passphrase in environment variable NAME (never on the command line)."),
    kms_key_id: Optional[str] = typer.Option(None, "--kms-key-id", help="Wrap the master key with this AWS KMS key (id, ARN or alias)."),
    kms_region: Optional[str] = typer.Option(None, "--kms-region", help="Region of the KMS key."),
    kms_endpoint: Optional[str] = typer.Option(None, "--kms-endpoint", help="KMS endpoint URL (default: AWS)."),
    endpoint: Optional[str] = typer.Option(None, "--endpoint", help="S3-compatible endpoint URL (default: AWS S3)."),
    region: Optional[str] = typer.Option(None, "--region", help="S3 region."),
    access_key: Optional[str] = typer.Option(None, "--access-key", metavar="REF", help="Secret reference of the S3 access key id (env:NAME, file:PATH, ...); default: the AWS credential chain."),
    secret_key: Optional[str] = typer.Option(None, "--secret-key", metavar="REF", help="Secret reference of the S3 secret access key."),
    path_style: Optional[bool] = typer.Option(None, "--path-style/--virtual-hosted", help="S3 addressing (path style for most self-hosted stores)."),
    part_size: Optional[str] = typer.Option(None, "--part-size", help="Multipart part size, e.g. 16MiB (memory used is about part size x (concurrency+1))."),
    concurrency: Optional[int] = typer.Option(None, "--concurrency", help="Parts uploaded in parallel (default 4)."),
    max_attempts: Optional[int] = typer.Option(None, "--max-attempts", help="Attempts per S3 request, adaptive retry mode (default 10)."),
    chunk_size: Optional[str] = typer.Option(None, "--chunk-size", help="Encryption chunk size (default 1MiB)."),
    compression_level: int = typer.Option(3, "--compression-level", min=0, max=22, help="zstd level, 0 = no compression."),
    object_lock_mode: Optional[str] = typer.Option(None, "--object-lock-mode", help="governance or compliance: every object gets a retention date."),
    object_lock_days: Optional[int] = typer.Option(None, "--object-lock-days", help="Retention in days from each write."),
    env: Optional[str] = typer.Option(None, "-e", "--env", help="Environment whose repository to create when REPO is omitted."),
    json: bool = typer.Option(False, "--json", help="One JSON document on stdout."),
) -> None:
    """Create a repository: a random master key, stored only wrapped, and the format recorded.

    Example: erpops repo init s3://acme-backups/prod --endpoint https://s3.example.com --key-file /etc/erpops/repo.key
    """
    from erpops.errors import UsageError
    from erpops.repo.admin import KeyOptions, init_repository
    from erpops.ui.output import show_result
    from erpops.units import parse_size

    OPTIONS.json = json_mode(json)
    try:
        chunk = parse_size(chunk_size) if chunk_size else None
    except ValueError as exc:
        raise UsageError(f"--chunk-size: {exc}") from None
    doc = init_repository(
        repo, env=env_name(env), config_path=OPTIONS.config,
        storage=_storage(endpoint, region, access_key, secret_key, path_style, part_size, concurrency, max_attempts),
        key=KeyOptions(key_file, passphrase_env, kms_key_id, kms_region, kms_endpoint),
        chunk_size=chunk, compression_level=compression_level,
        lock_mode=object_lock_mode, lock_days=object_lock_days)
    show_result({"action": "created", **doc}, _human, as_json=OPTIONS.json)


@repo_app.command("rekey")
def rekey(
    repo: Optional[str] = REPO_ARG,
    key_file: Optional[Path] = typer.Option(None, "--key-file", help="Current key file."),
    passphrase_env: Optional[str] = typer.Option(None, "--passphrase-env", metavar="NAME", help="Environment variable holding the current passphrase."),
    kms_key_id: Optional[str] = typer.Option(None, "--kms-key-id", help="Open with the repository's AWS KMS key slot."),
    kms_region: Optional[str] = typer.Option(None, "--kms-region", help="Region of the current KMS key."),
    new_key_file: Optional[Path] = typer.Option(None, "--new-key-file", help="New key file (made, mode 0600, if missing)."),
    new_passphrase_env: Optional[str] = typer.Option(None, "--new-passphrase-env", metavar="NAME", help="Environment variable holding the new passphrase."),
    new_kms_key_id: Optional[str] = typer.Option(None, "--new-kms-key-id", help="New AWS KMS key (id, ARN or alias)."),
    new_kms_region: Optional[str] = typer.Option(None, "--new-kms-region", help="Region of the new KMS key."),
    kms_endpoint: Optional[str] = typer.Option(None, "--kms-endpoint", help="KMS endpoint URL (default: AWS)."),
    add: bool = typer.Option(False, "--add", help="Add the new key as another slot instead of replacing the current one."),
    endpoint: Optional[str] = typer.Option(None, "--endpoint", help="S3-compatible endpoint URL."),
    region: Optional[str] = typer.Option(None, "--region", help="S3 region."),
    access_key: Optional[str] = typer.Option(None, "--access-key", metavar="REF", help="Secret reference of the S3 access key id."),
    secret_key: Optional[str] = typer.Option(None, "--secret-key", metavar="REF", help="Secret reference of the S3 secret access key."),
    path_style: Optional[bool] = typer.Option(None, "--path-style/--virtual-hosted", help="S3 addressing."),
    env: Optional[str] = typer.Option(None, "-e", "--env", help="Environment whose repository to rekey when REPO is omitted."),
    json: bool = typer.Option(False, "--json", help="One JSON document on stdout."),
) -> None:
    """Change the key that wraps the repository's master key. No data object is rewritten.

    Example: erpops repo rekey /srv/backups --key-file old.key --new-passphrase-env NEW_PASSPHRASE
    """
    from erpops.repo.admin import KeyOptions, rekey_repository
    from erpops.ui.output import show_result

    OPTIONS.json = json_mode(json)
    doc = rekey_repository(
        repo, env=env_name(env), config_path=OPTIONS.config,
        storage=_storage(endpoint, region, access_key, secret_key, path_style, None, None, None),
        key=KeyOptions(key_file, passphrase_env, kms_key_id, kms_region, kms_endpoint),
        new_key=KeyOptions(new_key_file, new_passphrase_env, new_kms_key_id, new_kms_region, kms_endpoint),
        add=add)
    show_result({"action": "rekeyed", **doc}, _human, as_json=OPTIONS.json)


def register(app: typer.Typer) -> None:
    from erpops.cli.repo_catalog_cmd import add_commands

    add_commands(repo_app)  # list, show, verify, prune, unlock
    app.add_typer(repo_app, name="repo")
