"""`erpops backup` against a real lab: what the repository holds afterwards.

One private lab for the module (scale 0.02): these tests add attachments,
remove a filestore file and take locks, which the session's shared lab must
not see. Every backup runs the installed command, without a TTY, like cron.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from erpops.repo.keys import KeyFile
from erpops.repo.manifest import list_backup_dirs, list_backup_ids, read_manifest
from erpops.repo.repository import Repository

pytestmark = pytest.mark.integration

ERPOPS = Path(sys.executable).parent / "erpops"


class PrivateLab:
    def __init__(self, home: Path):
        self.home = home
        self.env = {"ERPOPS_HOME": str(home / "data"), "XDG_CONFIG_HOME": str(home / "config"),
                    "XDG_STATE_HOME": str(home / "state")}

    def erpops(self, *args: str, env: dict | None = None, timeout: float = 300):
        return subprocess.run([str(ERPOPS), *args], capture_output=True, text=True, timeout=timeout,
                              env={**os.environ, **self.env, **(env or {})}, stdin=subprocess.DEVNULL)

    @property
    def root(self) -> Path:
        return self.home / "data" / "lab"

    def state(self) -> dict:
        return json.loads((self.root / "lab.json").read_text())

    @property
    def port(self) -> int:
        return next(n["port"] for n in self.state()["nodes"] if n["role"] == "primary")

    @property
    def password(self) -> str:
        return Path(self.state()["password_file"]).read_text().strip()

    def connect(self, dbname: str = "retail"):
        import psycopg

        return psycopg.connect(host="127.0.0.1", port=self.port, user="postgres", password=self.password,
                               dbname=dbname, autocommit=True)

    def repository(self) -> Repository:
        return Repository.open(str(self.root / "repository"),
                               KeyFile((self.root / "repository.key").read_text()))

    @property
    def filestore(self) -> Path:
        return self.root / "filestore" / "retail"

    def backup(self, *args: str, env: dict | None = None):
        return self.erpops("backup", "-e", "lab", "--json", *args, env=env)


@pytest.fixture(scope="module")
def blab(tmp_path_factory):
    lab = PrivateLab(tmp_path_factory.mktemp("backup-lab"))
    for sub in ("data", "config", "state"):
        (lab.home / sub).mkdir()
    up = lab.erpops("lab", "up", "--scale", "0.02", "--no-replica", "--redis")
    if up.returncode != 0:
        lab.erpops("lab", "down")
        pytest.fail(f"lab up failed: {up.stdout}{up.stderr}")
    # made here so that each test can open it, whichever runs first (the first backup
    # would make it too: tests/e2e/test_backup_cli.py relies on that)
    init = lab.erpops("repo", "init", "lab")
    assert init.returncode == 0, init.stdout + init.stderr
    yield lab
    down = lab.erpops("lab", "down", timeout=120)
    assert down.returncode == 0, down.stdout + down.stderr


def _summary(result) -> dict:
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(result.stdout)


def _add_attachments(lab: PrivateLab, contents: list[bytes]) -> list[tuple[int, str]]:
    rows = []
    with lab.connect() as conn:
        for content in contents:
            sha = hashlib.sha1(content).hexdigest()
            fname = f"{sha[:2]}/{sha}"
            (lab.filestore / sha[:2]).mkdir(parents=True, exist_ok=True)
            (lab.filestore / fname).write_bytes(content)
            row = conn.execute("INSERT INTO ir_attachment (name, res_model, res_id, type, store_fname, checksum, "
                               "file_size, mimetype) VALUES (%s, 'res.partner', 1, 'binary', %s, %s, %s, "
                               "'application/pdf') RETURNING id", (f"test-{sha[:8]}.pdf", fname, sha,
                                                                   len(content))).fetchone()
            rows.append((row[0], fname))
    return rows


def test_backup_records_facts_and_every_file(blab):
    doc = _summary(blab.backup("--annotate", "ticket=OPS-1"))
    assert doc["status"] == "succeeded" and len(doc["backups"]) == 1
    entry = doc["backups"][0]
    manifest = read_manifest(blab.repository(), entry["backup_id"])
    with blab.connect() as conn:
        fnames = {r[0] for r in conn.execute("SELECT store_fname FROM ir_attachment "
                                             "WHERE type = 'binary' AND store_fname IS NOT NULL")}
        partners = conn.execute("SELECT count(*) FROM res_partner").fetchone()[0]
        balance = conn.execute("SELECT (sum(debit) - sum(credit))::text FROM account_move_line").fetchone()[0]
        quantity = conn.execute("SELECT sum(quantity)::text FROM stock_quant").fetchone()[0]
    assert {f.store_fname for f in manifest.files} == fnames
    assert entry["files"] == len(fnames) and entry["new_files"] == len(fnames)  # a fresh repository
    assert manifest.row_counts["res_partner"] == partners
    assert manifest.row_counts["ir_attachment"] == len(fnames)
    journals = [v for k, v in manifest.checksums.items() if k.startswith("account_move_line.balance[")]
    assert journals and sum(map(float, journals)) == float(balance)
    assert manifest.checksums["stock_quant.quantity"] == quantity
    assert manifest.modules["base"] and manifest.odoo_version == manifest.modules["base"]
    assert manifest.pg_version.startswith("15.")
    assert manifest.annotations == {"ticket": "OPS-1"}
    assert manifest.db_object is not None and manifest.db_object.plain_bytes == entry["db_bytes"]
    assert {o.sha1 for o in manifest.objects if o.kind == "blob"} == {f.sha1 for f in manifest.files}
    assert manifest.snapshot_at >= manifest.started_at


def test_redis_sessions_are_stored_with_the_backup(blab):
    entry = _summary(blab.backup())["backups"][0]
    repo = blab.repository()
    manifest = read_manifest(repo, entry["backup_id"])
    assert manifest.redis is not None and manifest.redis.captured and manifest.redis.role == "sessions"
    [rdb] = [o for o in manifest.objects if o.kind == "redis"]
    with repo.get_object(rdb.key.removeprefix("objects/")) as reader:
        content = reader.read()
    assert content.startswith(b"REDIS") and hashlib.sha256(content).hexdigest() == rdb.sha256


def test_back_to_back_redis_saves_do_not_wait_for_lastsave_to_tick(blab):
    """LASTSAVE counts whole seconds: two backups in one second once waited out the
    10-minute timeout. Each save must be seen to finish within a short deadline."""
    import time

    from erpops.actions.redis import bgsave
    from erpops.redis_client import Client

    client = Client(f"redis://127.0.0.1:{blab.state()['redis']['port']}/0", timeout=10)
    try:
        started = time.monotonic()
        for _ in range(3):
            bgsave(client, time.sleep, timeout=5)  # StepError (timeout) when a save goes unnoticed
        assert time.monotonic() - started < 5
    finally:
        client.close()


def test_the_dump_restores_with_the_recorded_row_counts(blab, tmp_path):
    doc = _summary(blab.backup())
    repo = blab.repository()
    manifest = read_manifest(repo, doc["backups"][0]["backup_id"])
    dump_file = tmp_path / "db.dump"
    digest = hashlib.sha256()
    with repo.get_object(manifest.db_object.key.removeprefix("objects/")) as reader, open(dump_file, "wb") as out:
        for block in iter(lambda: reader.read(1 << 20), b""):
            digest.update(block)
            out.write(block)
    assert digest.hexdigest() == manifest.db_object.sha256
    scratch = "restore_check"
    with blab.connect("postgres") as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {scratch}")
        admin.execute(f"CREATE DATABASE {scratch}")
    try:
        env = {**os.environ, "PGPASSWORD": blab.password}
        restore = subprocess.run(["/usr/lib/postgresql/15/bin/pg_restore", "--no-owner", "-h", "127.0.0.1",
                                  "-p", str(blab.port), "-U", "postgres", "-d", scratch, str(dump_file)],
                                 capture_output=True, text=True, env=env)
        assert restore.returncode == 0, restore.stderr
        with blab.connect(scratch) as conn:
            for table, count in manifest.row_counts.items():
                assert conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0] == count, table
    finally:
        with blab.connect("postgres") as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {scratch}")


def test_a_second_backup_uploads_only_the_new_files(blab):
    _summary(blab.backup())  # everything already present is stored
    packs_before = set((blab.root / "repository" / "packs").rglob("*"))
    contents = [os.urandom(30_000 + i) for i in range(3)]
    _add_attachments(blab, contents)
    entry = _summary(blab.backup())["backups"][0]
    assert entry["new_files"] == 3
    assert entry["new_bytes"] == sum(len(c) for c in contents)
    repo = blab.repository()
    manifest = read_manifest(repo, entry["backup_id"])
    new_blobs = [o for o in manifest.objects if o.kind == "blob" and o.new]
    assert len(new_blobs) == 3
    manifest_size = repo.storage.size(f"objects/backups/{entry['backup_id']}/manifest.json")
    own = sum(o.stored_bytes for o in manifest.objects if o.kind in ("db", "redis"))
    [new_pack] = {p for p in (blab.root / "repository" / "packs").rglob("*") if p.is_file()} - packs_before
    assert new_pack.stat().st_size == sum(o.stored_bytes for o in new_blobs)  # the 3 files, not the filestore again
    index_size = repo.storage.size(f"index/{new_pack.name}")
    assert entry["uploaded_bytes"] == own + new_pack.stat().st_size + index_size + manifest_size
    assert {repo.blob_index().get(o.sha1).pack for o in new_blobs} == {new_pack.name}


def test_a_missing_file_fails_with_exit_4_then_is_allowed_with_a_flag(blab):
    [(attachment_id, fname)] = _add_attachments(blab, [os.urandom(5000)])
    (blab.filestore / fname).unlink()
    before = list_backup_ids(blab.repository())
    dirs_before = list_backup_dirs(blab.repository())
    try:
        failed = blab.backup()
        assert failed.returncode == 4, failed.stdout + failed.stderr
        assert fname in failed.stderr and str(attachment_id) in failed.stderr
        assert "--allow-missing-files" in failed.stderr
        assert json.loads(failed.stdout)["status"] == "failed"
        assert list_backup_ids(blab.repository()) == before, "no manifest for a failed backup"
        assert list_backup_dirs(blab.repository()) == dirs_before, "the background dump was stopped and discarded"
        allowed = blab.backup("--allow-missing-files")
        entry = _summary(allowed)["backups"][0]
        assert fname in allowed.stderr  # the warning
        assert entry["missing_files"] == 1
        assert read_manifest(blab.repository(), entry["backup_id"]).missing_files == [fname]
    finally:
        with blab.connect() as conn:
            conn.execute("DELETE FROM ir_attachment WHERE id = %s", (attachment_id,))


def test_a_damaged_file_fails_naming_it_and_its_attachment(blab):
    [(attachment_id, fname)] = _add_attachments(blab, [os.urandom(7000)])
    (blab.filestore / fname).write_bytes(os.urandom(7000))  # same name, other content
    try:
        result = blab.backup()
        assert result.returncode == 4, result.stdout + result.stderr
        assert fname in result.stderr and f"attachment id {attachment_id}" in result.stderr
        assert not blab.repository().has_blob(Path(fname).name), "the bad content is not kept"
    finally:
        with blab.connect() as conn:
            conn.execute("DELETE FROM ir_attachment WHERE id = %s", (attachment_id,))


def test_a_held_lock_refuses_with_exit_3_naming_the_holder(blab, monkeypatch):
    from erpops.repo.locks import acquire

    monkeypatch.setenv("ERPOPS_HOME", blab.env["ERPOPS_HOME"])  # the local flock lives in its state dir
    held = acquire(blab.repository(), "backup-lab", ttl=300, purpose="a test holding the lock")
    try:
        result = blab.backup()
        assert result.returncode == 3, result.stdout + result.stderr
        assert "a test holding the lock" in result.stderr and f"pid {os.getpid()}" in result.stderr
    finally:
        held.release()
    assert _summary(blab.backup())["status"] == "succeeded"


def test_a_running_prune_refuses_a_backup_and_leaves_no_lock(blab, monkeypatch):
    from erpops.repo.locks import acquire, lock_info

    monkeypatch.setenv("ERPOPS_HOME", blab.env["ERPOPS_HOME"])
    repo = blab.repository()
    held = acquire(repo, "prune", ttl=300, purpose="a test pruning the repository")
    try:
        result = blab.backup()
        assert result.returncode == 3, result.stdout + result.stderr
        assert "a test pruning the repository" in result.stderr
        assert lock_info(repo, "backup-lab") is None, "the refused backup released its own lock"
    finally:
        held.release()


def test_secrets_and_data_never_reach_the_repository_logs_or_output(blab, tmp_path):
    secret = "CANARY-pw-7f3a9c1e2b"
    data = "CANARY-PLAINTEXT-partner-5d2e8b"
    repo_dir = tmp_path / "canary-repo"
    key_file = tmp_path / "canary.key"
    with blab.connect() as conn:
        conn.execute("DROP ROLE IF EXISTS erpops_canary")
        conn.execute(f"CREATE ROLE erpops_canary LOGIN SUPERUSER PASSWORD '{secret}'")
        conn.execute("INSERT INTO res_partner (name, email) VALUES (%s, %s)", (data, "canary@example.com"))
    with blab.connect("postgres") as admin:  # a second tenant: same files, so no blob is stored twice
        admin.execute("DROP DATABASE IF EXISTS retail_two")
        admin.execute("CREATE DATABASE retail_two TEMPLATE retail")
    shutil.copytree(blab.filestore, blab.root / "filestore" / "retail_two", dirs_exist_ok=True)
    inventory = {
        "version": 1,
        "environments": {"canary": {
            "tier": "development",
            "postgres": {"primary": {"name": "db", "host": "127.0.0.1", "port": blab.port, "user": "erpops_canary",
                                     "password": "env:ERPOPS_CANARY_PW", "dbname": "postgres"}},
            "tenants": ["retail", "retail_two"],
            "filestore": {"path": str(blab.root / "filestore")},
            "redis": {"url": "redis://127.0.0.1:1/0", "role": "cache"},  # never contacted: a cache is skipped
            "repository": "canary"}},
        "repositories": {"canary": {"url": str(repo_dir), "key": f"file:{key_file}"}},
    }
    config = tmp_path / "erpops.yaml"
    config.write_text(json.dumps(inventory))
    env = {"ERPOPS_CONFIG": str(config), "ERPOPS_CANARY_PW": secret}
    init = blab.erpops("repo", "init", "-e", "canary", "--key-file", str(key_file), env=env)
    assert init.returncode == 0, init.stdout + init.stderr
    result = blab.erpops("backup", "-e", "canary", "--json", "--verify", env=env)
    doc = _summary(result)
    first, second = doc["backups"]
    assert (first["tenant"], second["tenant"]) == ("retail", "retail_two")
    assert first["verified"] and second["verified"]
    assert first["new_files"] == first["files"] > 0 and second["new_files"] == 0, "one blob per content"
    manifest = read_manifest(Repository.open(str(repo_dir), KeyFile(key_file.read_text())), second["backup_id"])
    assert manifest.redis is not None and not manifest.redis.captured and "cache" in manifest.redis.reason
    for stream in (result.stdout, result.stderr):
        assert secret not in stream and data not in stream
    audit = Path(blab.env["ERPOPS_HOME"]) / "state" / "runs" / doc["run_id"] / "audit.jsonl"
    assert secret not in audit.read_text()
    for path in repo_dir.rglob("*"):
        if path.is_file():
            raw = path.read_bytes()
            assert secret.encode() not in raw and data.encode() not in raw, path
    verify = blab.erpops("audit", "verify", doc["run_id"], env=env)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    with blab.connect() as conn:
        conn.execute("DELETE FROM res_partner WHERE name = %s", (data,))
        conn.execute("DROP ROLE erpops_canary")
    with blab.connect("postgres") as admin:
        admin.execute("DROP DATABASE retail_two")
    shutil.rmtree(blab.root / "filestore" / "retail_two")
