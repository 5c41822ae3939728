"""What a restore checks before it touches anything, and the plan it shows.

Which backup (an id, or the newest of a tenant of the environment), whether
the target can take it (PostgreSQL not older than the source, the same Odoo
series and modules as the environment runs, the disk space), and whether the
target name is free. Read-only: the restore.preflight step runs this, and
``erpops restore --dry-run`` shows it without a run.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from erpops.errors import OperationFailed, Refused, UsageError, VerificationFailed

LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")
DB_SPACE_FACTOR = 2  # a restored database weighs about its plain dump plus rebuilt indexes
TEMP_SUFFIX = "__erpops_restore_"


@dataclass
class Preflight:
    backup_id: str
    tenant: str
    target: str
    temp_db: str
    source_environment: str
    target_exists: bool
    pg_source: str
    pg_target: str
    odoo_version: str | None
    modules: int
    db_bytes: int
    files: int
    files_bytes: int
    compatibility: str  # "match" | "unknown: ..." | "forced: ..."
    server: str = ""  # the target primary, "name host:port"
    differences: list[str] = field(default_factory=list)
    disk: list[dict] = field(default_factory=list)
    disk_note: str = ""
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass
class Source:
    """What is restored: a backup of the repository, or an Odoo backup file (--from-file)."""

    label: str  # the backup id, or the file's path
    kind: str  # "repository" | "zip" | "dump"
    name: str | None  # the database it was (the tenant, or the zip's db_name)
    environment: str | None
    pg_version: str | None
    odoo_version: str | None
    modules: dict[str, str] | None  # None: not recorded
    db_bytes: int
    files: int
    files_bytes: int
    dump_format: str = "custom"
    redis: str | None = None  # why there is no Redis data to restore; None when there is
    missing_files: int = 0  # referenced by the database but absent when the backup was taken


def repository_source(manifest) -> Source:
    if manifest.db_object is None:
        raise VerificationFailed(f"backup {manifest.backup_id} has no database object", hint="pick another backup")
    return Source(label=manifest.backup_id, kind="repository", name=manifest.tenant,
                  environment=manifest.environment, pg_version=manifest.pg_version,
                  odoo_version=manifest.odoo_version, modules=dict(manifest.modules),
                  db_bytes=manifest.db_object.plain_bytes, files=len(manifest.files),
                  files_bytes=sum(f.size for f in manifest.files), dump_format=manifest.dump_format,
                  redis=None if any(o.kind == "redis" for o in manifest.objects)
                  else (manifest.redis.reason if manifest.redis and manifest.redis.reason else "none was stored"),
                  missing_files=len(manifest.missing_files))


def file_source(archive) -> Source:
    """An opened erpops.odoo.archive.OdooArchive as a Source: Odoo's manifest.json says
    what it was (a custom dump says nothing), the dump's header which PostgreSQL wrote it."""
    from erpops.odoo.odoo_manifest import from_odoo
    from erpops.pg.restore import dumped_from

    facts = from_odoo(archive.manifest) if archive.manifest else None
    files = list(archive.filestore_files())
    return Source(label=str(archive.path), kind=archive.kind, name=archive.db_name, environment=None,
                  pg_version=dumped_from(archive) or (facts or {}).get("pg_version"),
                  odoo_version=(facts or {}).get("odoo_version"), modules=(facts or {}).get("modules") or None,
                  db_bytes=archive.dump_size, files=len(files), files_bytes=sum(f[2] for f in files),
                  dump_format=archive.dump_format, redis="an Odoo backup file holds no Redis data")


def temp_name(target: str, run_tag: str) -> str:
    """``<target>__erpops_restore_<tag>``, shortening the target part to fit 63 bytes."""
    suffix = f"{TEMP_SUFFIX}{run_tag}"
    return target.encode()[:63 - len(suffix)].decode(errors="ignore") + suffix


def select_backup(repo, env_name: str, backup: str | None, tenant: str | None):
    """The manifest to restore: ``backup`` by id, else the newest of ``tenant`` among
    the environment's backups (the only tenant when there is one)."""
    from erpops.repo.catalog import find_backup, list_backups
    from erpops.repo.manifest import check_backup_id
    from erpops.yamlsrc import suggest

    if backup and backup != "latest":
        entry = find_backup(repo, check_backup_id(backup))
        if entry.manifest is None:
            raise VerificationFailed(f"backup {backup}: {entry.problem}",
                                     hint=f"the backup cannot be used; see erpops repo verify {backup}")
        if tenant and entry.manifest.tenant != tenant:
            raise UsageError(f"backup {backup} is of tenant {entry.manifest.tenant}, not {tenant}",
                             hint="drop --tenant, or pick a backup of that tenant: erpops repo list")
        return entry.manifest
    entries = [e for e in list_backups(repo, env_name) if e.manifest is not None]
    tenants = sorted({e.tenant for e in entries})
    if not tenants:
        raise UsageError(f"repository {repo.url} holds no backup of environment {env_name}",
                         hint=f"take one with: erpops backup -e {env_name}, or name one with --backup ID")
    if not tenant:
        if len(tenants) > 1:
            raise UsageError(f"the backups of {env_name} are of several tenants ({', '.join(tenants)})",
                             hint="say which with --tenant NAME")
        tenant = tenants[0]
    if tenant not in tenants:
        guess = suggest(tenant, tenants)
        raise UsageError(f"repository {repo.url} holds no backup of tenant {tenant!r} of {env_name} "
                         f"(tenants backed up: {', '.join(tenants)})",
                         hint=f"did you mean {guess!r}?" if guess else "see: erpops repo list")
    own = [e for e in entries if e.tenant == tenant]
    return max(own, key=lambda e: (e.time, e.backup_id)).manifest


def check(env, source: Source, *, target: str | None, drop_existing: bool, force_version: bool, run_tag: str,
          spool_dir: Path | None, redis: bool = False) -> Preflight:
    """Every check of ``source`` against the environment, in order; raises the first refusal.
    Touches nothing."""
    from erpops.pg.connect import NodeTarget
    from erpops.pg.restore import check_db_name, database_exists, leftover_databases, server_version_num

    if target:
        check_db_name(target, what="--as")
    if redis and source.redis is not None:
        raise UsageError(f"--redis: {source.label} holds no Redis data ({source.redis})", hint="restore without --redis")
    if redis and getattr(env, "redis", None) is None:
        raise UsageError(f"--redis: environment {env.name} has no redis: in the inventory",
                         hint="add redis: {url: ..., role: sessions} to it, or restore without --redis")
    name = target or source.name
    if not name:
        raise UsageError(f"{source.label} does not say which database it was", hint="name the target: --as NAME")
    check_db_name(name, what="target database name")
    node = NodeTarget.from_node(env.postgres.primary)
    version_num = server_version_num(node)
    source_major = _major(source.pg_version)
    if source_major is not None and version_num // 10000 < source_major:
        raise UsageError(f"{source.label} comes from PostgreSQL {source.pg_version}; the target "
                         f"{node.name} runs {version_num // 10000}, which is older and cannot load it",
                         hint="restore onto a server of the same or a newer major version")
    exists = database_exists(node, name)
    filestore_dir = _filestore_dir(env, name)
    if exists and not drop_existing:
        raise Refused(f"database {name} already exists on {node.name}; nothing was restored",
                      hint="restore under another name with --as NAME, or replace it with --drop-existing")
    if filestore_dir is not None and filestore_dir.exists() and not exists and not drop_existing:
        raise Refused(f"filestore directory {filestore_dir} exists though database {name} does not; "
                      "nothing was restored", hint="remove it, restore under another name (--as), "
                                                   "or replace it with --drop-existing")
    pre = Preflight(backup_id=source.label, tenant=source.name or name, target=name,
                    temp_db=temp_name(name, run_tag), source_environment=source.environment or source.kind,
                    target_exists=exists, pg_source=source.pg_version or "unknown",
                    pg_target=f"{version_num // 10000}.{version_num % 10000}", odoo_version=source.odoo_version,
                    modules=len(source.modules or {}), db_bytes=source.db_bytes, files=source.files,
                    files_bytes=source.files_bytes, compatibility="match", server=f"{node.name} {node.address}")
    for stale in leftover_databases(node, name, TEMP_SUFFIX):
        pre.warnings.append(f"database {stale} was left by an earlier restore that was killed; "
                            f"drop it when no restore runs: DROP DATABASE \"{stale}\"")
    if source.missing_files:
        pre.warnings.append(f"{source.missing_files} filestore file(s) were already missing when backup "
                            f"{source.label} was taken (see erpops repo show {source.label}); they are not restored")
    if source_major is None:
        pre.warnings.append(f"{source.label} does not say which PostgreSQL wrote it; its version was not compared")
    _compatibility(pre, source, env, node, name if exists else None, force_version)
    _disk(pre, env, node, spool_dir)
    return pre


def _major(version: str | None) -> int | None:
    head = (version or "").split(".")[0]
    return int(head) if head.isdigit() else None


def _compatibility(pre: Preflight, source: Source, env, node, existing: str | None, force: bool) -> None:
    from erpops.pg.odoo_modules import DIFFERENCES_NAMED, differences, installed_modules
    from erpops.pg.tenants import environment_tenants

    if source.modules is None:
        pre.compatibility = f"unknown: {source.label} does not record its Odoo version and modules"
        return
    candidates = [existing] if existing else []
    try:
        candidates += [t for t in environment_tenants(env) if t not in candidates and TEMP_SUFFIX not in t]
    except Exception:  # noqa: BLE001 - an unreachable listed tenant only leaves the comparison unknown
        pass
    found = None
    for dbname in candidates:
        try:
            found = installed_modules(node, dbname)
        except OperationFailed:
            found = None
        if found is not None:
            reference = dbname
            break
    if found is None:
        pre.compatibility = f"unknown: environment {env.name} has no Odoo database to compare with"
        return
    diffs = differences(source.odoo_version, source.modules, *found)
    if not diffs:
        pre.compatibility = f"match ({reference})"
        return
    pre.differences = diffs
    named = "; ".join(diffs[:DIFFERENCES_NAMED]) + (f"; and {len(diffs) - DIFFERENCES_NAMED} more"
                                                     if len(diffs) > DIFFERENCES_NAMED else "")
    if not force:
        raise UsageError(f"{source.label} does not match the Odoo of environment {env.name} "
                         f"(compared with database {reference}): {named}; nothing was restored",
                         hint="restore onto an environment running the same Odoo and modules, "
                              "or pass --force-version to restore anyway (then upgrade the modules)")
    pre.compatibility = f"forced: {len(diffs)} difference(s) with {reference}"
    pre.warnings.append(f"--force-version: restoring despite {named}")


def _filestore_dir(env, name: str) -> Path | None:
    fs = getattr(env, "filestore", None)
    return Path(str(fs.path)) / name if fs is not None else None


def _existing_parent(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _disk(pre: Preflight, env, node, spool_dir: Path | None) -> None:
    """Free space where the restore writes: the PostgreSQL data directory (when it is on
    this host), the filestore, the decrypted dump's spool directory."""
    needs: list[tuple[str, Path, int]] = []
    data_dir = getattr(env.postgres.primary, "data_dir", None)
    if data_dir and node.host in LOCAL_HOSTS and os.path.isdir(data_dir):
        needs.append(("database", Path(data_dir), pre.db_bytes * DB_SPACE_FACTOR))
    else:
        pre.disk_note = (f"free space on {node.name} unknown (its data directory is not on this host): "
                         f"the database needs about {pre.db_bytes * DB_SPACE_FACTOR} bytes")
    fs = getattr(env, "filestore", None)
    if fs is not None:
        needs.append(("filestore", _existing_parent(Path(str(fs.path))), pre.files_bytes))
    if spool_dir is not None:
        needs.append(("decrypted dump", _existing_parent(spool_dir), pre.db_bytes))
    by_device: dict[int, dict] = {}
    for what, path, need in needs:
        dev = path.stat().st_dev
        entry = by_device.setdefault(dev, {"path": str(path), "what": [], "need": 0,
                                           "free": shutil.disk_usage(path).free})
        entry["what"].append(what)
        entry["need"] += need
    pre.disk = list(by_device.values())
    short = [d for d in pre.disk if d["need"] > d["free"]]
    if short:
        from erpops.units import format_size

        d = short[0]
        raise OperationFailed(f"not enough free space on {d['path']} for the {' and '.join(d['what'])}: "
                              f"about {format_size(d['need'])} needed, {format_size(d['free'])} free; "
                              "nothing was restored", hint="free some space, or restore onto another server")


def open_source(env, repo, *, backup: str | None, tenant: str | None, from_file: str | None):
    """(Source, manifest or None, open archive or None). ``repo`` is called only when the
    source is the repository (a file needs none). The caller closes the archive."""
    if from_file:
        if (backup and backup != "latest") or tenant:
            raise UsageError("--from-file restores an Odoo backup file: --backup and --tenant do not apply",
                             hint="drop them; name the target database with --as NAME")
        from erpops.odoo.archive import open_archive

        archive = open_archive(from_file)
        try:
            return file_source(archive), None, archive
        except BaseException:
            archive.close()
            raise
    manifest = select_backup(repo(), env.name, backup, tenant)
    # A restore finds each blob through the pack index and needs only the file list:
    # one entry per filestore file less keeps tens of megabytes out of memory.
    manifest.objects = [o for o in manifest.objects if o.kind != "blob"]
    return repository_source(manifest), manifest, None
