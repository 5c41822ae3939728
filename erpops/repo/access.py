"""Open the repository of an environment, as the catalog commands need it.

The environment's ``repository:`` names an entry of the inventory's
``repositories:``; its ``key:`` reference opens the repository (a ``file:``
reference is a key file, anything else a passphrase) and its ``retention:``
drives ``repo prune``.
"""

from __future__ import annotations

from dataclasses import dataclass

from erpops.errors import UsageError
from erpops.repo.retention import Policy


@dataclass
class Opened:
    repo: object  # erpops.repo.repository.Repository
    name: str | None  # the inventory name of the repository
    policy: Policy


def open_environment_repository(env: str, *, config_path=None) -> Opened:
    from erpops.config.loader import load_inventory
    from erpops.repo.locate import from_reference, locate
    from erpops.repo.repository import Repository

    target = locate(None, env=env, config_path=config_path)
    if not target.key_ref:
        raise UsageError(f"repository {target.name or target.url} has no key: in the inventory",
                         hint="add key: \"file:/path/to/repo.key\" (or a passphrase reference) to it")
    repo = Repository.open(target.url, from_reference(target.key_ref), s3=target.s3)
    entry = load_inventory(config_path).environment(env).backup_repository
    return Opened(repo, target.name, Policy.from_config(entry.retention))
