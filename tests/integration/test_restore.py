"""`erpops restore` against a real lab: what the server and the filestore hold afterwards.

One private lab for the module (scale 0.02, no replica) and one backup of it,
taken once; each test restores it under its own name. Every restore runs the
installed command without a TTY.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from erpops.repo.keys import KeyFile
from erpops.repo.manifest import read_manifest, write_manifest
from erpops.repo.repository import Repository

try:
    from tests.integration.blob_damage import flipped_blob
except ImportError:  # run from inside tests/integration
    from blob_damage import flipped_blob

pytestmark = pytest.mark.integration

ERPOPS = Path(sys.executable).parent / "erpops"


class RestoreLab:
    def __init__(self, home: Path):
        self.home = home
        self.env = {"ERPOPS_HOME": str(home / "data"), "XDG_CONFIG_HOME": str(home / "config"),
                    "XDG_STATE_HOME": str(home / "state")}
        self.backup_id = ""

    def erpops(self, *args: str, timeout: float = 300):
        return subprocess.run([str(ERPOPS), *args], capture_output=True, text=True, timeout=timeout,
                              env={**os.environ, **self.env}, stdin=subprocess.DEVNULL)

    def restore(self, *args: str):
        return self.erpops("restore", "-e", "lab", "--json", *args)

    @property
    def root(self) -> Path:
        return self.home / "data" / "lab"

    def state(self) -> dict:
        return json.loads((self.root / "lab.json").read_text())

    def connect(self, dbname: str = "retail"):
        import psycopg

        port = next(n["port"] for n in self.state()["nodes"] if n["role"] == "primary")
        password = Path(self.state()["password_file"]).read_text().strip()
        return psycopg.connect(host="127.0.0.1", port=port, user="postgres", password=password, dbname=dbname,
                               autocommit=True)

    def databases(self) -> set[str]:
        with self.connect("postgres") as conn:
            return {r[0] for r in conn.execute("SELECT datname FROM pg_database")}

    def repository(self) -> Repository:
        return Repository.open(str(self.root / "repository"), KeyFile((self.root / "repository.key").read_text()))

    def filestore(self, db: str) -> Path:
        return self.root / "filestore" / db

    def redis(self):
        from erpops.redis_load import Client

        return Client(f"redis://127.0.0.1:{self.state()['redis']['port']}/0")

    def clone(self, name: str) -> None:
        """A database and filestore like the tenant's, made quickly (what a restore would replace)."""
        with self.connect("postgres") as conn:
            conn.execute(f'CREATE DATABASE "{name}" TEMPLATE retail')
        shutil.copytree(self.filestore("retail"), self.filestore(name))

    def leftovers(self) -> list[str]:
        dbs = [d for d in self.databases() if "__erpops_restore_" in d]
        dirs = [p.name for p in (self.root / "filestore").iterdir() if "__erpops_restore_" in p.name]
        return dbs + dirs


@pytest.fixture(scope="module")
def rlab(tmp_path_factory):
    lab = RestoreLab(tmp_path_factory.mktemp("restore-lab"))
    for sub in ("data", "config", "state"):
        (lab.home / sub).mkdir()
    up = lab.erpops("lab", "up", "--scale", "0.02", "--no-replica", "--redis")
    if up.returncode != 0:
        lab.erpops("lab", "down")
        pytest.fail(f"lab up failed: {up.stdout}{up.stderr}")
    with lab.connect() as conn:  # what a copy must drop
        conn.execute("INSERT INTO ir_config_parameter (key, value) VALUES ('database.enterprise_code', 'M1234')")
    redis = lab.redis()
    redis.call("SET", "session:kept", b"\x00binary\xff")
    redis.call("SET", "session:expiring", "v", "EX", "3600")
    redis.call("SELECT", 3)
    redis.call("HSET", "queue:job", "state", "pending")
    redis.close()
    backup = lab.erpops("backup", "-e", "lab", "--json")
    assert backup.returncode == 0, backup.stdout + backup.stderr
    lab.backup_id = json.loads(backup.stdout)["backups"][0]["backup_id"]
    yield lab
    down = lab.erpops("lab", "down", timeout=120)
    assert down.returncode == 0, down.stdout + down.stderr


def _ok(result) -> dict:
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(result.stdout)


def _params(conn) -> dict:
    return dict(conn.execute("SELECT key, value FROM ir_config_parameter").fetchall())


def test_restore_as_a_new_name_has_every_row_and_file(rlab):
    # the loading sessions' settings reach the server (a malformed PGOPTIONS refuses the connection)
    doc = _ok(rlab.restore("--as", "retail_check", "--jobs", "2", "--maintenance-work-mem", "64MiB"))
    assert doc["status"] == "succeeded" and doc["backup_id"] == rlab.backup_id and doc["verified"]
    assert doc["target"] == "retail_check" and not doc["replaced"]
    manifest = read_manifest(rlab.repository(), rlab.backup_id)
    with rlab.connect("retail_check") as conn:
        for table, count in manifest.row_counts.items():
            assert conn.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0] == count, table
        fnames = {r[0] for r in conn.execute("SELECT store_fname FROM ir_attachment WHERE store_fname IS NOT NULL")}
    root = rlab.filestore("retail_check")
    written = {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}
    assert written == fnames == {f.store_fname for f in manifest.files}
    for f in manifest.files:
        assert hashlib.sha1((root / f.store_fname).read_bytes()).hexdigest() == f.sha1
    assert doc["files"] == len(manifest.files)
    with rlab.connect("retail") as source, rlab.connect("retail_check") as restored:
        assert _params(restored) == _params(source)  # neither --copy nor --neutralize: the same identity
    assert doc["copy"] is None and doc["neutralize"] is None
    assert rlab.leftovers() == []
    assert not list((rlab.home / "data" / "state" / "runs").rglob("restore-db.dump"))  # the spool is gone
    assert rlab.erpops("audit", "verify", doc["run_id"]).returncode == 0


def test_copy_gets_a_new_identity_and_neutralize_stops_crons(rlab):
    doc = _ok(rlab.restore("--as", "retail_copy", "--copy", "--neutralize"))
    with rlab.connect("retail") as conn:
        source = _params(conn)
    with rlab.connect("retail_copy") as conn:
        copy = _params(conn)
        active = conn.execute("SELECT count(*) FROM ir_cron WHERE active").fetchone()[0]
    assert copy["database.uuid"] != source["database.uuid"] and copy["database.uuid"] == doc["copy"]["uuid"]
    assert copy["database.secret"] != source["database.secret"]
    assert "database.enterprise_code" not in copy and "database.enterprise_code" in source
    assert copy["database.is_neutralized"] == "True" and active == 0
    assert doc["neutralize"]["changed"]["crons"] > 0
    assert source["database.secret"] not in json.dumps(doc)  # never in the output


def test_drop_existing_needs_yes_then_replaces_database_and_filestore(rlab):
    rlab.clone("retail_prev")
    with rlab.connect("retail_prev") as conn:
        conn.execute("INSERT INTO res_partner (name) VALUES ('marker-to-be-replaced')")
    (rlab.filestore("retail_prev") / "stray-file").write_text("x")
    refused = rlab.restore("--as", "retail_prev", "--drop-existing")
    assert refused.returncode == 3 and "--yes" in refused.stderr, refused.stdout + refused.stderr
    with rlab.connect("retail_prev") as conn:
        assert conn.execute("SELECT count(*) FROM res_partner WHERE name = 'marker-to-be-replaced'").fetchone()[0] == 1
    doc = _ok(rlab.restore("--as", "retail_prev", "--drop-existing", "--yes"))
    assert doc["replaced"] and doc["verified"]
    with rlab.connect("retail_prev") as conn:
        assert conn.execute("SELECT count(*) FROM res_partner WHERE name = 'marker-to-be-replaced'").fetchone()[0] == 0
    assert not (rlab.filestore("retail_prev") / "stray-file").exists()
    assert rlab.leftovers() == [] and not [p for p in (rlab.root / "filestore").iterdir() if "__old" in p.name]


def test_a_damaged_file_fails_with_exit_4_and_leaves_the_old_database_intact(rlab):
    rlab.clone("retail_keep")
    with rlab.connect("retail_keep") as conn:
        conn.execute("INSERT INTO res_partner (name) VALUES ('marker-kept')")
    manifest = read_manifest(rlab.repository(), rlab.backup_id)
    with flipped_blob(rlab.repository(), manifest.files[0].sha1):
        result = rlab.restore("--as", "retail_keep", "--drop-existing", "--yes")
    assert result.returncode == 4, result.stdout + result.stderr
    doc = json.loads(result.stdout)
    assert doc["status"] == "failed" and any("dropped temporary database" in c for c in doc["cleaned_up"])
    with rlab.connect("retail_keep") as conn:
        assert conn.execute("SELECT count(*) FROM res_partner WHERE name = 'marker-kept'").fetchone()[0] == 1
    assert (rlab.filestore("retail_keep") / manifest.files[0].store_fname).is_file()
    assert rlab.leftovers() == []


_FORGED: list = []


def _forged(rlab, change) -> str:
    """A copy of the backup's manifest under a new id, changed by ``change`` (the
    repository key makes a valid one): what a backup would record of another database."""
    repo = rlab.repository()
    manifest = read_manifest(repo, rlab.backup_id)
    _FORGED.append(change)  # older than the real backup: `latest` stays the real one
    forged = manifest.model_copy(update={"backup_id": f"20000101T0000{len(_FORGED):02d}Z-lab-retail"})
    change(forged)
    write_manifest(repo, forged)
    return forged.backup_id


def test_row_counts_that_differ_from_the_backup_fail_with_exit_4(rlab):
    def more_partners(m):
        m.row_counts = {**m.row_counts, "res_partner": m.row_counts["res_partner"] + 1}

    backup_id = _forged(rlab, more_partners)
    result = rlab.restore("--backup", backup_id, "--as", "retail_counts")
    assert result.returncode == 4, result.stdout + result.stderr
    assert "rows of res_partner" in result.stderr
    assert "retail_counts" not in rlab.databases() and rlab.leftovers() == []


def test_another_odoo_version_is_refused_unless_forced(rlab):
    def older(m):
        m.odoo_version = "16.0.1.0"
        m.modules = {**m.modules, "base": "16.0.1.0", "mrp_plm": "16.0.1.0"}

    backup_id = _forged(rlab, older)
    result = rlab.restore("--backup", backup_id, "--as", "retail_v16")
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Odoo 16.0 in the backup, 17.0 on the target" in result.stderr
    assert "module mrp_plm installed in the backup, not on the target" in result.stderr
    assert "retail_v16" not in rlab.databases()
    doc = _ok(rlab.restore("--backup", backup_id, "--as", "retail_v16", "--force-version"))
    assert doc["compatibility"].startswith("forced") and doc["warnings"]


def test_an_interrupted_restore_removes_its_temporary_database(rlab):
    proc = subprocess.Popen([str(ERPOPS), "restore", "-e", "lab", "--as", "retail_int", "--jobs", "1"],
                            env={**os.environ, **rlab.env}, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    for line in proc.stderr:
        if "database: restore.database started" in line:
            proc.send_signal(signal.SIGINT)
            break
    rest = proc.stderr.read()
    assert proc.wait(60) == 130, rest
    assert "retail_int" not in rlab.databases() and rlab.leftovers() == []
    assert not rlab.filestore("retail_int").exists()


def test_an_odoo_zip_and_a_custom_dump_restore_with_their_files(rlab, tmp_path):
    zip_path, dump_path = tmp_path / "retail.zip", tmp_path / "retail.dump"
    exported = rlab.erpops("export", "-e", "lab", "--backup", rlab.backup_id, "-t", "retail", "-o", str(zip_path))
    assert exported.returncode == 0, exported.stdout + exported.stderr
    port = next(n["port"] for n in rlab.state()["nodes"] if n["role"] == "primary")
    subprocess.run(["/usr/lib/postgresql/15/bin/pg_dump", "-Fc", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres",
                    "-d", "retail", "-f", str(dump_path)], check=True,
                   env={**os.environ, "PGPASSWORD": Path(rlab.state()["password_file"]).read_text().strip()})
    manifest = read_manifest(rlab.repository(), rlab.backup_id)
    doc = _ok(rlab.restore("--from-file", str(zip_path), "--as", "retail_zip"))
    assert doc["jobs"] == 1 and doc["files"] == len(manifest.files) and doc["verified"] is False
    assert doc["compatibility"].startswith("match")
    root = rlab.filestore("retail_zip")
    for f in manifest.files:
        assert hashlib.sha1((root / f.store_fname).read_bytes()).hexdigest() == f.sha1
    doc = _ok(rlab.restore("--from-file", str(dump_path), "--as", "retail_dump", "--jobs", "2", "--copy"))
    assert doc["files"] == 0 and doc["compatibility"].startswith("unknown")
    for db in ("retail_zip", "retail_dump"):
        with rlab.connect(db) as conn:
            for table, count in manifest.row_counts.items():
                assert conn.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0] == count, (db, table)
    assert rlab.leftovers() == [] and not list((rlab.home / "data" / "state" / "runs").rglob("dump.sql"))


def test_redis_is_replaced_by_the_backups_rdb_only_with_yes(rlab):
    redis = rlab.redis()
    redis.call("SET", "session:kept", "changed since the backup")
    redis.call("SET", "session:new", "written since the backup")
    refused = rlab.restore("--as", "retail_redis", "--redis")
    assert refused.returncode == 3 and "redis" in refused.stderr, refused.stdout + refused.stderr
    assert redis.call("GET", "session:new") == b"written since the backup"
    doc = _ok(rlab.restore("--as", "retail_redis", "--redis", "--yes"))
    assert doc["redis"]["total"] == 3 and doc["redis"]["keys"] == {"db0": 2, "db3": 1}
    assert redis.call("GET", "session:kept") == b"\x00binary\xff"
    assert redis.call("GET", "session:new") is None
    assert 0 < redis.call("TTL", "session:expiring") <= 3600
    redis.call("SELECT", 3)
    assert redis.call("HGET", "queue:job", "state") == b"pending"
    redis.close()
    assert not list((rlab.home / "data" / "state" / "runs").rglob("restore-redis"))
