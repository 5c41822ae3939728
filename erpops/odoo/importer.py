"""`erpops import-backup`: an Odoo backup file stored as a regular erpops backup.

The database dump is stored as it comes, as the backup's db object: a zip's
``dump.sql`` is plain SQL (manifest ``dump_format: plain``; restoring it means
``psql``, not ``pg_restore``), a ``.dump`` is the custom format (``custom``).
Converting plain SQL to the custom format would need a scratch database on
the environment's server; storing what Odoo wrote is cheaper and loses nothing.

Filestore files become content-addressed blobs, each checked against the
SHA-1 its name claims (``PackWriter.add``, packs.py); a file the repository holds
already is not uploaded again (its stored copy was checked when it was).

The manifest (written last: the backup exists only then) takes pg_version,
odoo_version and modules from manifest.json (pg_version: from the dump's
header when the file has no manifest), tenant from ``--tenant`` or the zip's
db_name, and records ``imported_from``. Row counts and business checksums are
left empty: they are read from a live database at backup time, and an
imported file has none. ``snapshot_at`` is the file's modification time, the
best available guess of when the backup was made.

The environment's backup lock (``backup-<env>``) is held throughout, so an
import never runs beside a backup of the same environment or a prune.
"""

from __future__ import annotations

import hashlib
import re
import subprocess
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from erpops.errors import ErpopsError, Refused, UsageError, VerificationFailed
from erpops.repo.storage import ObjectExists

LOCK_TTL = 900.0
_TENANT = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,62}$")
_DUMPED_FROM = re.compile(rb"Dumped from database version:? (\d+(?:\.\d+)*)")
_BUFFER = 1 << 20


@dataclass
class ImportOptions:
    env_name: str
    path: Path
    tenant: str | None = None


class _Hashing:
    def __init__(self, source):
        self.source, self.sha256, self.size = source, hashlib.sha256(), 0

    def read(self, n: int = -1) -> bytes:
        data = self.source.read(n)
        self.sha256.update(data)
        self.size += len(data)
        return data


def import_backup(options: ImportOptions) -> dict:
    """Store the file as a backup of ``options.env_name``; returns a summary."""
    from erpops.odoo.archive import open_archive

    started = datetime.now(timezone.utc)
    path = Path(options.path)
    with open_archive(path) as archive:
        tenant = _tenant(options.tenant, archive, path)
        facts = _facts(archive, path)
        from erpops.repo.access import open_environment_repository

        repo = open_environment_repository(options.env_name).repo
        lock = _lock(repo, options.env_name)
        try:
            return _store(repo, lock, archive, path, options.env_name, tenant, facts, started)
        finally:
            lock.release()


def _tenant(given: str | None, archive, path: Path) -> str:
    tenant = given or archive.db_name
    if not tenant:
        raise UsageError(f"{path.name} does not name its database (no manifest.json db_name)",
                         hint="name the tenant: --tenant NAME")
    if not _TENANT.match(tenant):
        raise UsageError(f"tenant name {tenant!r} is not usable in a backup id "
                         "(letters, digits, '_', '.', '-')", hint="name the tenant: --tenant NAME")
    return tenant


def _facts(archive, path: Path) -> dict:
    from erpops.odoo.odoo_manifest import from_odoo

    facts = from_odoo(archive.manifest)
    dumped_from = _custom_dump_version(path) if archive.kind == "dump" else _plain_dump_version(archive)
    facts["pg_version"] = dumped_from or facts["pg_version"] or "unknown"
    return facts


def _plain_dump_version(archive) -> str | None:
    with archive.open_dump() as fh:
        head = fh.read(8192)
    m = _DUMPED_FROM.search(head)
    return m.group(1).decode() if m else None


def _custom_dump_version(path: Path) -> str | None:
    """Read the whole custom dump once before any upload: `pg_restore --list` for its
    table of contents (and the server version), then a restore into /dev/null, which
    reads every data block. A truncated or damaged dump fails here, exit 4."""
    listing = _pg_restore(path, "--list")
    if not any(line and not line.startswith(b";") for line in listing.splitlines()):
        raise VerificationFailed("the custom-format dump holds no database objects (empty or damaged)",
                                 where=str(path), hint="take a new backup of the database")
    _pg_restore(path, "--file=/dev/null")
    m = _DUMPED_FROM.search(listing)
    return m.group(1).decode() if m else None


def _pg_restore(path: Path, *args: str) -> bytes:
    from erpops.pg.binaries import client_binary

    proc = subprocess.run([str(client_binary("pg_restore")), *args, str(path)], capture_output=True,
                          stdin=subprocess.DEVNULL)
    if proc.returncode != 0:
        detail = proc.stderr.decode(errors="replace").strip().splitlines()[-1:] or ["no message"]
        raise VerificationFailed(f"the custom-format dump cannot be read by pg_restore: {detail[0]}", where=str(path),
                                 hint="the file is truncated or corrupt (or newer than this pg_restore)")
    return proc.stdout


def _lock(repo, env: str):
    from erpops.repo.locks import acquire, lock_info, refusal, stale_reason
    from erpops.repo.prune import LOCK_SCOPE

    held = acquire(repo, f"backup-{env}", ttl=LOCK_TTL, purpose="import-backup")
    info = lock_info(repo, LOCK_SCOPE)  # as a backup does: never beside a prune that may delete blobs
    if info is not None and stale_reason(info) is None:
        held.release()
        raise refusal(info, LOCK_SCOPE)
    return held


def _store(repo, lock, archive, path: Path, env: str, tenant: str, facts: dict, started: datetime) -> dict:
    from erpops import __version__
    from erpops.repo.manifest import FileEntry, Manifest, ObjectEntry, new_backup_id, object_name, write_manifest

    backup_id = new_backup_id(env, tenant, started)
    name = "db.sql" if archive.dump_format == "plain" else "db.dump"
    refreshed = time.monotonic()
    ours = False  # only what this import wrote is removed on failure
    try:
        with archive.open_dump() as src:
            hashing = _Hashing(src)
            try:
                put = repo.put_object(object_name(backup_id, name), hashing, if_absent=True)
            except ObjectExists:
                raise Refused(f"backup {backup_id} is being written by another run", hint="run the import again "
                              "in a second (backup ids carry the time to the second)") from None
        ours = True
        objects = [ObjectEntry(key=put.key, kind="db", plain_bytes=hashing.size, stored_bytes=put.stored_bytes,
                               sha256=hashing.sha256.hexdigest())]
        files, new_files = [], 0
        with repo.pack_writer() as packer:  # the last pack is stored on leaving, before the manifest
            for store_fname, sha1, size, open_fn in archive.filestore_files():
                if time.monotonic() - refreshed > LOCK_TTL / 3:
                    lock.refresh()
                    refreshed = time.monotonic()
                with open_fn() as src:
                    try:
                        result = packer.add(sha1, src)
                    except VerificationFailed as exc:
                        raise VerificationFailed(f"filestore file {store_fname} does not hold what its name says: "
                                                 f"{exc.message}; nothing was imported", where=str(path),
                                                 hint="the file is damaged or was edited; take a new Odoo backup") from None
                if not result.skipped:
                    new_files += 1
                if result.plain_bytes != size:
                    raise VerificationFailed(f"filestore/{store_fname}: {result.plain_bytes} bytes read, the zip "
                                             f"records {size}", where=str(path))
                objects.append(ObjectEntry(key=result.key, kind="blob", plain_bytes=size, stored_bytes=result.stored_bytes,
                                           sha1=sha1, new=not result.skipped))
                files.append(FileEntry(store_fname=store_fname, sha1=sha1, size=size))
        lock.refresh()  # a lock lost meanwhile fails here, before the backup comes to exist
        snapshot_at = min(datetime.fromtimestamp(path.stat().st_mtime, timezone.utc), started)
        finished = datetime.now(timezone.utc)
        manifest = Manifest(
            backup_id=backup_id, environment=env, tenant=tenant, started_at=started, finished_at=finished,
            snapshot_at=snapshot_at, duration_s=round((finished - started).total_seconds(), 3),
            erpops_version=__version__, pg_version=facts["pg_version"], dump_format=archive.dump_format,
            odoo_version=facts["odoo_version"], modules=facts["modules"], objects=objects, files=files,
            annotations={"imported_from": path.name, "import_kind": archive.kind})
        write_manifest(repo, manifest)
    except BaseException:  # no manifest was written: no backup exists; drop what is ours alone
        if ours:
            _discard(repo, backup_id, name)
        raise
    return {"backup_id": backup_id, "environment": env, "tenant": tenant, "kind": archive.kind,
            "dump_format": archive.dump_format, "db_bytes": objects[0].plain_bytes, "files": len(files),
            "new_files": new_files, "pg_version": facts["pg_version"], "odoo_version": facts["odoo_version"]}


def _discard(repo, backup_id: str, name: str) -> None:
    """Remove the db object of a failed import (best effort: blobs may be shared, prune removes the rest)."""
    from erpops.repo.manifest import object_name

    try:
        repo.storage.delete(f"objects/{object_name(backup_id, name)}")
    except (ErpopsError, OSError):
        pass
