"""`erpops export`: a backup of the erpops repository as Odoo's own backup file.

* ``odoo-zip`` — what Odoo's database manager writes: ``dump.sql`` first (plain
  SQL, ``--no-owner``), then ``manifest.json``, then ``filestore/<ab>/<sha1>``,
  deflated, zip64 when large. The stored custom dump is decrypted into a
  private temporary file (pg_restore needs a seekable input to find data
  blocks in a dump written to a pipe) and ``pg_restore --no-owner -f -``
  streams the SQL straight into the zip entry.
* ``odoo-dump`` — the custom-format dump itself (Odoo's "pg_dump custom
  format" backup), no filestore.

The file is written beside the requested name and renamed into place only
when complete: an interrupted or failed export never leaves a partial file
under that name. An existing file is refused unless ``force``. Memory use does
not grow with the backup: everything streams.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import threading
import zipfile
from collections import deque
from dataclasses import dataclass
from pathlib import Path

from erpops.errors import OperationFailed, Refused, UsageError, VerificationFailed

FORMATS = ("odoo-zip", "odoo-dump")
_BUFFER = 1 << 20


@dataclass
class ExportOptions:
    env_name: str
    backup_id: str  # an id or "latest"
    tenant: str
    format: str
    output: Path
    force: bool = False


def export_backup(options: ExportOptions) -> dict:
    """Write the export; returns a summary (path, format, backup_id, tenant, bytes, files)."""
    if options.format not in FORMATS:
        raise UsageError(f"--format {options.format!r}: expected one of {', '.join(FORMATS)}")
    output = Path(options.output)
    _check_output(output, options.force)
    from erpops.repo.access import open_environment_repository

    repo = open_environment_repository(options.env_name).repo
    manifest = find_tenant_backup(repo, options.backup_id, options.tenant, options.env_name)
    if options.format == "odoo-dump" and manifest.dump_format != "custom":
        raise UsageError(f"backup {manifest.backup_id} holds a {manifest.dump_format} SQL dump (it was imported "
                         "from an Odoo zip), not a custom-format dump",
                         hint="export it with --format odoo-zip")
    with _Staged(output, options.force) as staged:
        if options.format == "odoo-dump":
            _copy_db_object(repo, manifest, staged.path)
            files = 0
        else:
            files = _write_zip(repo, manifest, options.tenant, staged.path, output.parent)
        size = staged.path.stat().st_size
    return {"path": str(output), "format": options.format, "backup_id": manifest.backup_id,
            "environment": manifest.environment, "tenant": manifest.tenant, "bytes": size, "files": files}


def find_tenant_backup(repo, backup_id: str, tenant: str, environment: str):
    """The manifest of ``backup_id`` (or the newest of ``tenant`` for "latest"), which must be ``tenant``'s."""
    from erpops.repo.catalog import list_backups
    from erpops.repo.manifest import check_backup_id, read_manifest

    if backup_id and backup_id != "latest":
        manifest = read_manifest(repo, check_backup_id(backup_id))
        if manifest.tenant != tenant:
            raise UsageError(f"backup {backup_id} is of tenant {manifest.tenant}, not {tenant}",
                             hint=f"use --tenant {manifest.tenant}, or pick a backup of {tenant} from: erpops repo list")
        return manifest
    entries = [e for e in list_backups(repo, environment) if e.manifest is not None]
    mine = [e for e in entries if e.tenant == tenant]
    if not mine:
        tenants = sorted({e.tenant for e in entries})
        raise UsageError(f"no backup of tenant {tenant} in environment {environment}'s repository "
                         f"(tenants with backups: {', '.join(tenants) or 'none'})",
                         hint=f"take one with: erpops backup -e {environment} --tenant {tenant}")
    return max(mine, key=lambda e: (e.time, e.backup_id)).manifest


def _check_output(output: Path, force: bool) -> None:
    if output.is_dir():
        raise UsageError(f"-o {output}: is a directory", hint="give a file name, e.g. -o store.zip")
    if not output.parent.is_dir():
        raise UsageError(f"-o {output}: directory {output.parent} does not exist")
    if output.exists() and not force:
        raise Refused(f"-o {output}: the file exists; nothing was written",
                      hint="choose another name, or add --force to replace it")


class _Staged:
    """A temporary file beside ``output``, renamed onto it on success, removed on failure."""

    def __init__(self, output: Path, force: bool):
        self.output, self.force = output, force
        fd, name = tempfile.mkstemp(prefix=f".{output.name}.", suffix=".partial", dir=output.parent)
        os.close(fd)
        self.path = Path(name)

    def __enter__(self) -> "_Staged":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if exc_type is None:
                os.chmod(self.path, 0o600)  # a backup holds the whole business: private by default
                if self.force:
                    os.replace(self.path, self.output)
                else:
                    try:  # link, not rename: never replaces a file that appeared meanwhile
                        os.link(self.path, self.output)
                    except FileExistsError:
                        raise Refused(f"-o {self.output}: the file appeared during the export; nothing was written",
                                      hint="choose another name, or add --force to replace it") from None
        finally:
            self.path.unlink(missing_ok=True)


def _copy_db_object(repo, manifest, dest: Path) -> None:
    with open(dest, "wb") as out:
        _stream_db_object(repo, manifest, out)


def _stream_db_object(repo, manifest, out) -> None:
    """Decrypt the backup's db object into ``out``, checking its recorded SHA-256."""
    db = manifest.db_object
    if db is None:
        raise VerificationFailed(f"backup {manifest.backup_id} lists no database object",
                                 hint=f"see erpops repo verify {manifest.backup_id}")
    digest = hashlib.sha256()
    with repo.get_object(db.key.removeprefix("objects/")) as src:
        while piece := src.read(_BUFFER):
            digest.update(piece)
            out.write(piece)
    if db.sha256 and digest.hexdigest() != db.sha256:
        raise VerificationFailed(f"backup {manifest.backup_id}: database object {db.key} has SHA-256 "
                                 f"{digest.hexdigest()}, the manifest records {db.sha256}",
                                 hint="this backup cannot be trusted; see erpops repo verify --deep")


def _write_zip(repo, manifest, db_name: str, dest: Path, work_dir: Path) -> int:
    from erpops.odoo.odoo_manifest import to_odoo

    with zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED, allowZip64=True) as zf:
        with zf.open("dump.sql", "w", force_zip64=True) as entry:
            _write_plain_sql(repo, manifest, entry, work_dir)
        zf.writestr("manifest.json", json.dumps(to_odoo(manifest, db_name), indent=4))
        written: set[str] = set()
        for f in sorted(manifest.files, key=lambda f: f.store_fname):
            name = f"filestore/{f.sha1[:2]}/{f.sha1}"
            if name in written:  # two store_fnames, one content: Odoo's filestore holds it once
                continue
            written.add(name)
            with zf.open(name, "w", force_zip64=True) as entry:
                _copy_blob(repo, f.sha1, entry)
    return len(written)


def _copy_blob(repo, sha1: str, out) -> None:
    digest = hashlib.sha1()
    with repo.get_blob(sha1) as src:
        while piece := src.read(_BUFFER):
            digest.update(piece)
            out.write(piece)
    if digest.hexdigest() != sha1:
        raise VerificationFailed(f"filestore blob {sha1} holds content with SHA-1 {digest.hexdigest()}",
                                 hint="see erpops repo verify --deep")


def _write_plain_sql(repo, manifest, out, work_dir: Path) -> None:
    if manifest.dump_format == "plain":  # imported from an Odoo zip: already what dump.sql is
        _stream_db_object(repo, manifest, out)
        return
    from erpops.pg.binaries import client_binary

    with tempfile.TemporaryDirectory(prefix=".erpops-export-", dir=work_dir) as tmp:
        custom = Path(tmp) / "db.dump"
        _copy_db_object(repo, manifest, custom)
        argv = [str(client_binary("pg_restore")), "--no-owner", "--file=-", str(custom)]
        _run_into(argv, out)


def _run_into(argv: list[str], out) -> None:
    """Run ``argv``, streaming its stdout into ``out``; a failure names its last stderr lines."""
    try:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    except OSError as exc:
        raise OperationFailed(f"cannot start {argv[0]}: {exc.strerror}") from None
    tail: deque[bytes] = deque(maxlen=20)
    drain = threading.Thread(target=lambda: tail.extend(proc.stderr), daemon=True)
    drain.start()
    try:
        shutil.copyfileobj(proc.stdout, out, _BUFFER)
    except BaseException:  # the zip failed (disk full, interrupt): stop pg_restore too
        proc.kill()
        proc.wait()
        raise
    code = proc.wait()
    drain.join(5)
    if code != 0:
        detail = b"".join(tail).decode(errors="replace").strip().splitlines()[-3:]
        raise OperationFailed(f"{Path(argv[0]).name} failed (exit {code}): {' / '.join(detail) or 'no message'}",
                              hint="the stored dump may be newer than this pg_restore; install a matching "
                                   "postgresql-client")
