"""Odoo's backup formats against a real lab: export, load with psql, import, refuse bad files.

One private lab for the module (scale 0.02, no replica): imports add backups
that the session's shared lab must not see. Commands run as installed, no TTY.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from erpops.pg.binaries import client_binary
from erpops.repo.keys import KeyFile
from erpops.repo.manifest import list_backup_dirs, read_manifest
from erpops.repo.repository import Repository

try:
    from tests.integration.blob_damage import flipped_blob
except ImportError:  # run from inside tests/integration
    from blob_damage import flipped_blob

pytestmark = pytest.mark.integration

ERPOPS = Path(sys.executable).parent / "erpops"
ODOO_KEYS = {"odoo_dump", "db_name", "version", "version_info", "major_version", "pg_version", "modules"}


class OdooLab:
    def __init__(self, home: Path):
        self.home = home
        self.env = {"ERPOPS_HOME": str(home / "data"), "XDG_CONFIG_HOME": str(home / "config"),
                    "XDG_STATE_HOME": str(home / "state")}

    def erpops(self, *args: str, timeout: float = 300):
        return subprocess.run([str(ERPOPS), *args], capture_output=True, text=True, timeout=timeout,
                              env={**os.environ, **self.env}, stdin=subprocess.DEVNULL)

    @property
    def root(self) -> Path:
        return self.home / "data" / "lab"

    def state(self) -> dict:
        return json.loads((self.root / "lab.json").read_text())

    @property
    def pg_env(self) -> dict:
        port = next(n["port"] for n in self.state()["nodes"] if n["role"] == "primary")
        password = Path(self.state()["password_file"]).read_text().strip()
        return {**os.environ, "PGHOST": "127.0.0.1", "PGPORT": str(port), "PGUSER": "postgres",
                "PGPASSWORD": password}

    def psql(self, dbname: str, *args: str) -> str:
        proc = subprocess.run([str(client_binary("psql")), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", dbname, *args],
                              capture_output=True, text=True, env=self.pg_env, timeout=120)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    def repository(self) -> Repository:
        return Repository.open(str(self.root / "repository"), KeyFile((self.root / "repository.key").read_text()))


@pytest.fixture(scope="module")
def olab(tmp_path_factory):
    lab = OdooLab(tmp_path_factory.mktemp("odoo-formats-lab"))
    for sub in ("data", "config", "state"):
        (lab.home / sub).mkdir()
    up = lab.erpops("lab", "up", "--scale", "0.02", "--no-replica")
    if up.returncode != 0:
        lab.erpops("lab", "down")
        pytest.fail(f"lab up failed: {up.stdout}{up.stderr}")
    backup = lab.erpops("backup", "-e", "lab", "--json")
    assert backup.returncode == 0, backup.stdout + backup.stderr
    lab.backup = json.loads(backup.stdout)["backups"][0]
    lab.tenant = lab.backup["tenant"]
    lab.manifest = read_manifest(lab.repository(), lab.backup["backup_id"])
    yield lab
    down = lab.erpops("lab", "down", timeout=120)
    assert down.returncode == 0, down.stdout + down.stderr


@pytest.fixture(scope="module")
def exported_zip(olab, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("export") / "store.zip"
    r = olab.erpops("export", "-e", "lab", "--backup", olab.backup["backup_id"], "--tenant", olab.tenant,
                    "--format", "odoo-zip", "-o", str(out), "--json")
    assert r.returncode == 0, r.stdout + r.stderr
    assert json.loads(r.stdout)["files"] == len({f.sha1 for f in olab.manifest.files})
    return out


def sha1(data: bytes) -> str:
    return hashlib.sha1(data).hexdigest()


def test_zip_is_laid_out_as_odoo_writes_it(olab, exported_zip):
    with zipfile.ZipFile(exported_zip) as zf:
        names = zf.namelist()
        assert names[:2] == ["dump.sql", "manifest.json"]  # Odoo sorts dump.sql first
        assert all(n.startswith("filestore/") for n in names[2:]) and len(names) > 2
        manifest = json.loads(zf.read("manifest.json"))
        for name in names[2:]:
            data = zf.read(name)
            assert name == f"filestore/{sha1(data)[:2]}/{sha1(data)}"
        head = zf.open("dump.sql").read(4096)
    assert set(manifest) == ODOO_KEYS and manifest["odoo_dump"] == "1" and manifest["db_name"] == olab.tenant
    assert manifest["modules"] == olab.manifest.modules and manifest["pg_version"].endswith(".0")
    assert b"PostgreSQL database dump" in head and b"OWNER TO" not in head
    assert {n[len("filestore/"):].split("/")[1] for n in names[2:]} == {f.sha1 for f in olab.manifest.files}


def test_dump_sql_loads_with_psql_and_counts_match(olab, exported_zip, tmp_path):
    with zipfile.ZipFile(exported_zip) as zf:
        zf.extract("dump.sql", tmp_path)
    olab.psql("postgres", "-c", "DROP DATABASE IF EXISTS from_zip", "-c", "CREATE DATABASE from_zip")
    try:
        olab.psql("from_zip", "-f", str(tmp_path / "dump.sql"))
        assert olab.manifest.row_counts
        for table, expected in olab.manifest.row_counts.items():
            assert int(olab.psql("from_zip", "-At", "-c", f"SELECT count(*) FROM {table}")) == expected, table
    finally:
        olab.psql("postgres", "-c", "DROP DATABASE IF EXISTS from_zip")


def test_odoo_dump_is_the_custom_dump(olab, tmp_path):
    out = tmp_path / "store.dump"
    r = olab.erpops("export", "-e", "lab", "--tenant", olab.tenant, "--format", "odoo-dump", "-o", str(out))
    assert r.returncode == 0, r.stdout + r.stderr
    assert hashlib.sha256(out.read_bytes()).hexdigest() == olab.manifest.db_object.sha256
    listing = subprocess.run([str(client_binary("pg_restore")), "-l", str(out)], capture_output=True, text=True)
    assert listing.returncode == 0 and "TABLE DATA public res_partner" in listing.stdout
    again = olab.erpops("export", "-e", "lab", "--tenant", olab.tenant, "--format", "odoo-dump", "-o", str(out))
    assert again.returncode == 3 and "exists" in again.stderr
    forced = olab.erpops("export", "-e", "lab", "--tenant", olab.tenant, "--format", "odoo-dump", "-o", str(out), "--force")
    assert forced.returncode == 0, forced.stderr


def test_import_exported_zip_round_trips(olab, exported_zip, tmp_path):
    r = olab.erpops("import-backup", str(exported_zip), "-e", "lab", "--tenant", "imported_zip", "--json")
    assert r.returncode == 0, r.stdout + r.stderr
    doc = json.loads(r.stdout)
    assert doc["dump_format"] == "plain" and doc["new_files"] == 0  # every file was in the repository already
    manifest = read_manifest(olab.repository(), doc["backup_id"])
    assert manifest.tenant == "imported_zip" and manifest.annotations["imported_from"] == "store.zip"
    assert manifest.modules == olab.manifest.modules and manifest.row_counts == {}
    assert {f.sha1 for f in manifest.files} == {f.sha1 for f in olab.manifest.files}
    verify = olab.erpops("repo", "verify", doc["backup_id"], "--deep", "-e", "lab")
    assert verify.returncode == 0, verify.stdout + verify.stderr
    listed = json.loads(olab.erpops("repo", "list", "-e", "lab", "--json").stdout)
    assert doc["backup_id"] in json.dumps(listed)
    # exported again: the same dump.sql, byte for byte
    back = tmp_path / "back.zip"
    r = olab.erpops("export", "-e", "lab", "--backup", doc["backup_id"], "--tenant", "imported_zip", "-o", str(back))
    assert r.returncode == 0, r.stderr
    with zipfile.ZipFile(back) as a, zipfile.ZipFile(exported_zip) as b:
        assert a.read("dump.sql") == b.read("dump.sql")
    no_custom = olab.erpops("export", "-e", "lab", "--backup", doc["backup_id"], "--tenant", "imported_zip",
                            "--format", "odoo-dump", "-o", str(tmp_path / "x.dump"))
    assert no_custom.returncode == 2 and "odoo-zip" in no_custom.stderr
    assert not (tmp_path / "x.dump").exists()


def test_import_custom_dump_reads_its_version(olab, tmp_path):
    out = tmp_path / "c.dump"
    assert olab.erpops("export", "-e", "lab", "--tenant", olab.tenant, "--format", "odoo-dump", "-o", str(out)).returncode == 0
    no_name = olab.erpops("import-backup", str(out), "-e", "lab")
    assert no_name.returncode == 2 and "--tenant" in no_name.stderr
    r = olab.erpops("import-backup", str(out), "-e", "lab", "--tenant", "imported_dump", "--json")
    assert r.returncode == 0, r.stdout + r.stderr
    doc = json.loads(r.stdout)
    assert doc["dump_format"] == "custom" and doc["files"] == 0
    assert doc["pg_version"] == olab.manifest.pg_version


def _bad_files(tmp: Path, exported_zip: Path, dump: Path) -> dict[str, tuple[Path, int, str]]:
    data = exported_zip.read_bytes()
    truncated = tmp / "truncated.zip"
    truncated.write_bytes(data[: len(data) // 2])
    climbing = tmp / "climbing.zip"
    with zipfile.ZipFile(climbing, "w") as zf:
        zf.writestr("dump.sql", "SELECT 1;\n")
        zf.writestr("../evil.sh", "rm -rf /\n")
    no_dump = tmp / "no_dump.zip"
    with zipfile.ZipFile(no_dump, "w") as zf:
        zf.writestr("manifest.json", json.dumps({"db_name": "x"}))
    bad_header = tmp / "bad_header.dump"
    bad_header.write_bytes(b"PGDMP" + bytes([7, 99, 0, 4, 8, 1]) + b"\x00" * 100)
    empty_dump = tmp / "empty.dump"
    empty_dump.write_bytes(b"PGDMP" + bytes([1, 14, 0, 4, 8, 1]) + b"\x00" * 100)
    cut_dump = tmp / "cut.dump"
    cut_dump.write_bytes(dump.read_bytes()[: dump.stat().st_size * 2 // 3])
    return {"truncated zip": (truncated, 4, "damaged"), "../ member": (climbing, 2, "'../evil.sh'"),
            "no dump.sql": (no_dump, 2, "no dump.sql"), "bad header": (bad_header, 4, "header is invalid"),
            "empty custom dump": (empty_dump, 4, "no database objects"),
            "cut custom dump": (cut_dump, 4, "pg_restore")}


def test_bad_files_are_refused_and_nothing_is_stored(olab, exported_zip, tmp_path):
    dump = tmp_path / "good.dump"
    assert olab.erpops("export", "-e", "lab", "--tenant", olab.tenant, "--format", "odoo-dump", "-o", str(dump)).returncode == 0
    before = list_backup_dirs(olab.repository())
    for label, (path, code, words) in _bad_files(tmp_path, exported_zip, dump).items():
        r = olab.erpops("import-backup", str(path), "-e", "lab", "--tenant", "bad")
        assert r.returncode == code, (label, r.stdout + r.stderr)
        assert words in r.stderr and "Traceback" not in r.stderr, (label, r.stderr)
    assert list_backup_dirs(olab.repository()) == before


def test_export_refusals_leave_no_file(olab, tmp_path):
    (tmp_path / "out").mkdir()
    out = tmp_path / "out" / "x.zip"
    cases = [(["--backup", "20990101T000000Z-lab-retail", "--tenant", olab.tenant], 2, "no backup"),
             (["--backup", olab.backup["backup_id"], "--tenant", "nope"], 2, f"tenant {olab.tenant}, not nope"),
             (["--tenant", "nope"], 2, "no backup of tenant nope"),
             (["--tenant", olab.tenant, "--format", "tar"], 2, "odoo-zip")]
    for args, code, words in cases:
        r = olab.erpops("export", "-e", "lab", *args, "-o", str(out))
        assert r.returncode == code and words in r.stderr, (args, r.stderr)
    assert list(out.parent.iterdir()) == []


def test_damaged_blob_fails_the_export_without_a_partial_file(olab, tmp_path):
    with flipped_blob(olab.repository(), olab.manifest.files[0].sha1):
        r = olab.erpops("export", "-e", "lab", "--tenant", olab.tenant, "-o", str(tmp_path / "x.zip"))
    assert r.returncode == 4, r.stdout + r.stderr
    assert [p.name for p in tmp_path.iterdir() if p.name != "erpops-home"] == []


@pytest.fixture(scope="module")
def odoo_made_zip(olab, tmp_path_factory) -> Path:
    """A zip as Odoo's database manager makes it: `pg_dump --no-owner` plain SQL, Odoo's
    manifest.json, the tenant's filestore directory, plus members Odoo's restore ignores."""
    out = tmp_path_factory.mktemp("odoo-made") / "odoo_store.zip"
    sql = subprocess.run([str(client_binary("pg_dump")), "--no-owner", olab.tenant], capture_output=True,
                         env=olab.pg_env, check=True).stdout
    filestore = olab.root / "filestore" / olab.tenant
    manifest = {"odoo_dump": "1", "db_name": "odoo_store", "version": "17.0", "version_info": [17, 0, 0, "final", 0, ""],
                "major_version": "17.0", "pg_version": "15.0", "modules": olab.manifest.modules}
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("dump.sql", sql)
        zf.writestr("manifest.json", json.dumps(manifest, indent=4))
        for f in sorted(filestore.rglob("*")):
            if f.is_file():
                zf.write(f, f"filestore/{f.relative_to(filestore)}")
        zf.writestr("filestore/checklist/ab/" + "ab" * 20, b"")
        zf.writestr("README", b"not part of a backup")
    return out


def test_import_a_zip_made_like_odoos(olab, odoo_made_zip, tmp_path):
    r = olab.erpops("import-backup", str(odoo_made_zip), "-e", "lab", "--json")
    assert r.returncode == 0, r.stdout + r.stderr
    doc = json.loads(r.stdout)
    assert doc["tenant"] == "odoo_store" and doc["odoo_version"] == olab.manifest.modules["base"]
    assert doc["pg_version"].startswith("15.") and doc["files"] == len({f.sha1 for f in olab.manifest.files})
    verify = olab.erpops("repo", "verify", doc["backup_id"], "--deep", "-e", "lab")
    assert verify.returncode == 0, verify.stdout + verify.stderr
    back = tmp_path / "back.zip"
    assert olab.erpops("export", "-e", "lab", "--tenant", "odoo_store", "-o", str(back)).returncode == 0
    with zipfile.ZipFile(back) as a, zipfile.ZipFile(odoo_made_zip) as b:
        assert a.read("dump.sql") == b.read("dump.sql")
        assert json.loads(a.read("manifest.json"))["modules"] == olab.manifest.modules
        assert "README" not in a.namelist()


def _databases(olab) -> set[str]:
    return set(olab.psql("postgres", "-At", "-c", "SELECT datname FROM pg_database").split())


def test_restore_from_an_odoo_made_zip_and_an_imported_backup(olab, odoo_made_zip, tmp_path):
    """What another tool wrote, and what import-backup stored, both restore (erpops restore)."""
    r = olab.erpops("restore", "-e", "lab", "--from-file", str(odoo_made_zip), "--as", "from_odoo_zip", "--json")
    assert r.returncode == 0, r.stdout + r.stderr
    fs = olab.root / "filestore" / "from_odoo_zip"
    names = {p.name for p in fs.rglob("*") if p.is_file()}
    assert names == {f.sha1 for f in olab.manifest.files} and not (fs / "checklist").exists()
    imported = olab.erpops("import-backup", str(odoo_made_zip), "-e", "lab", "--tenant", "restorable", "--json")
    assert imported.returncode == 0, imported.stderr
    r = olab.erpops("restore", "-e", "lab", "--backup", json.loads(imported.stdout)["backup_id"], "--tenant",
                    "restorable", "--as", "from_import", "--json")
    assert r.returncode == 0, r.stdout + r.stderr
    for db in ("from_odoo_zip", "from_import"):
        for table, expected in olab.manifest.row_counts.items():
            assert int(olab.psql(db, "-At", "-c", f"SELECT count(*) FROM {table}")) == expected, (db, table)


def test_restore_refuses_a_climbing_zip(olab, tmp_path):
    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as zf:
        zf.writestr("dump.sql", "CREATE TABLE pwned (id int);\n")
        zf.writestr("filestore/../x", "escaped")
    before = _databases(olab)
    r = olab.erpops("restore", "-e", "lab", "--from-file", str(evil), "--as", "evil")
    assert r.returncode == 2 and "'filestore/../x'" in r.stderr, r.stdout + r.stderr
    assert _databases(olab) == before and not (olab.root / "filestore" / "x").exists()
