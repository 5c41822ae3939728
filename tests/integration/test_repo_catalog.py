"""The catalog around backups: list, show, verify (quick and deep), prune, Object Lock.

Backups are built directly with Repository + write_manifest (the contract the
backup command fulfils), in a local directory and in a real SeaweedFS S3.
Damage is done to the stored bytes themselves: a flipped byte, a truncation, a
deletion. Filestore blobs live in packs (packs.py): damage to a blob is done
at its offset inside its pack.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import textwrap
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from erpops.errors import ExitCode
from erpops.repo import keys
from erpops.repo.catalog import list_backups
from erpops.repo.manifest import FileEntry, Manifest, ObjectEntry, new_backup_id, object_name, write_manifest
from erpops.repo.blob_index import BlobLocation, index_key, pack_key
from erpops.repo.prune import prune
from erpops.repo.repository import ObjectLock, Repository
from erpops.repo.retention import Policy
from erpops.repo.storage_s3 import S3Options
from erpops.repo.verify import verify_all, verify_backup

try:  # tests/ as a package, or tests/integration on sys.path
    from tests.integration.s3_fixture import seaweedfs  # noqa: F401 - a fixture
except ImportError:
    from s3_fixture import seaweedfs  # noqa: F401

pytestmark = pytest.mark.integration

T0 = datetime(2026, 12, 3, 2, 0, 11, tzinfo=timezone.utc)
DAY = timedelta(days=1)
OLD = time.time() - 3 * 86400  # an mtime older than the default 24h grace


@dataclass
class Built:
    manifest: Manifest

    @property
    def id(self) -> str:
        return self.manifest.backup_id

    def key(self, kind: str) -> str:
        return next(o.key for o in self.manifest.objects if o.kind == kind)

    def sha1s(self) -> list[str]:
        return [o.sha1 for o in self.manifest.objects if o.kind == "blob"]

    @property
    def manifest_key(self) -> str:
        return f"objects/{object_name(self.id, 'manifest.json')}"


def make_backup(repo, environment: str, tenant: str, at: datetime, files: list[bytes], *,
                verified: bool = False, packed: bool = False) -> Built:
    """A backup as `erpops backup` makes it: db dump, blobs, then the manifest last.
    Each file in a pack of its own, or (``packed``) all in one pack as a backup writes them."""
    backup_id = new_backup_id(environment, tenant, at)
    dump = b"PGDMP" + os.urandom(6000) + b"retail" * 2000
    put = repo.put_object(object_name(backup_id, "db.dump"), io.BytesIO(dump))
    objects = [ObjectEntry(key=put.key, kind="db", plain_bytes=len(dump), stored_bytes=put.stored_bytes,
                           sha256=hashlib.sha256(dump).hexdigest())]
    entries = []
    with repo.pack_writer() as writer:  # stores its pack on leaving, before the manifest names its blobs
        for content in files:
            sha1 = hashlib.sha1(content).hexdigest()
            blob = (writer.add if packed else repo.put_blob)(sha1, io.BytesIO(content))
            objects.append(ObjectEntry(key=blob.key, kind="blob", plain_bytes=len(content),
                                       stored_bytes=blob.stored_bytes, sha1=sha1, new=not blob.skipped))
            entries.append(FileEntry(store_fname=f"{sha1[:2]}/{sha1}", sha1=sha1, size=len(content),
                                     attachment_ids=[1]))
    manifest = Manifest(backup_id=backup_id, environment=environment, tenant=tenant, started_at=at,
                        finished_at=at + timedelta(seconds=9), snapshot_at=at + timedelta(seconds=1), duration_s=9.0,
                        erpops_version="test", pg_version="15.18", odoo_version="17.0", modules={"base": "17.0.1.3"},
                        row_counts={"account_move": 120}, checksums={"journal:SAL": "0.00"}, objects=objects,
                        files=entries, verified_at=at + timedelta(seconds=9) if verified else None)
    write_manifest(repo, manifest)
    return Built(manifest)


def file(n: int, size: int = 3000) -> bytes:
    return f"attachment {n}\n".encode() + os.urandom(size)


@pytest.fixture
def local_repo(tmp_path):
    key_file = tmp_path / "repo.key"
    key_file.write_text(keys.generate_key_file_text())
    repo = Repository.init(str(tmp_path / "repo"), keys.KeyFile(key_file.read_text()))
    repo.key_file = key_file
    return repo


def inventory(tmp_path, repo, retention: str = "{keep_last: 2}") -> None:
    """An erpops.yaml (found in the test's cwd) whose prod and staging use ``repo``."""
    (tmp_path / "erpops.yaml").write_text(textwrap.dedent(f"""\
        version: 1
        environments:
          prod:
            tier: production
            postgres: {{primary: {{name: db1, host: 127.0.0.1}}}}
            repository: main
          staging:
            tier: staging
            postgres: {{primary: {{name: db1, host: 127.0.0.1}}}}
            repository: main
        repositories:
          main:
            url: "{repo.storage.root}"
            key: "file:{repo.key_file}"
            retention: {retention}
        """))


def flip(path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset % len(data)] ^= 0x01
    path.write_bytes(bytes(data))


def located(repo, sha1: str) -> tuple[Path, BlobLocation]:
    """The file of the pack holding blob ``sha1`` (local repository), and where in it the blob lies."""
    location = repo.blob_index().get(sha1)
    return repo.storage.root / pack_key(location.pack), location


# --- list and show ---------------------------------------------------------------


def test_list_and_show_read_the_manifests_and_filter_by_environment(local_repo, tmp_path, erpops):
    inventory(tmp_path, local_repo)
    older = make_backup(local_repo, "prod", "store_nord", T0 - DAY, [file(1), file(2)])
    newer = make_backup(local_repo, "prod", "store_nord", T0, [file(1 + 0), file(3)])  # one new file
    make_backup(local_repo, "staging", "store_nord", T0, [file(4)])
    listed = erpops("repo", "list", "-e", "prod", "--json")
    assert listed.returncode == 0, listed.output
    rows = json.loads(listed.stdout)["backups"]
    assert [r["backup_id"] for r in rows] == [older.id, newer.id]
    assert rows[0]["files"] == 2 and rows[0]["tenant"] == "store_nord" and rows[0]["db_bytes"] > 6000
    assert rows[0]["verified"] is False
    human = erpops("repo", "list", "-e", "staging")
    assert human.returncode == 0 and "T020011Z-staging-store_nord" in human.stdout and "prod" not in human.stdout

    shown = erpops("repo", "show", "-e", "prod", "--json")  # latest by default
    doc = json.loads(shown.stdout)
    assert doc["backup_id"] == newer.id and doc["manifest"]["row_counts"] == {"account_move": 120}
    text = erpops("repo", "show", older.id, "-e", "prod")
    assert text.returncode == 0 and "PostgreSQL 15.18, Odoo 17.0, 1 modules" in text.stdout
    assert "account_move" in text.stdout and "journal:SAL" in text.stdout
    unknown = erpops("repo", "show", "20200101T000000Z-prod-x", "-e", "prod")
    assert unknown.returncode == ExitCode.USAGE and "no backup 20200101T000000Z-prod-x" in unknown.stderr


def test_a_damaged_manifest_is_listed_as_damaged_not_hidden(local_repo, tmp_path, erpops):
    inventory(tmp_path, local_repo)
    built = make_backup(local_repo, "prod", "store_nord", T0, [file(1)])
    flip(local_repo.storage.root / built.manifest_key, 200)
    entries = list_backups(local_repo, "prod")
    assert len(entries) == 1 and entries[0].manifest is None and "manifest unreadable" in entries[0].problem
    listed = erpops("repo", "list", "-e", "prod")
    assert listed.returncode == 0 and f"{built.id}" in listed.stdout and "DAMAGED" in listed.stdout
    shown = erpops("repo", "show", built.id, "-e", "prod")
    assert shown.returncode == ExitCode.VERIFY and "does not authenticate" in shown.stderr


# --- verify --------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["db", "blob", "manifest"])
@pytest.mark.parametrize("where", ["header", "middle", "last byte"])
def test_deep_verify_names_an_object_with_a_flipped_byte(local_repo, tmp_path, erpops, kind, where):
    inventory(tmp_path, local_repo)
    built = make_backup(local_repo, "prod", "store_nord", T0, [file(1, 9000), file(2)])
    key = built.manifest_key if kind == "manifest" else built.key(kind)
    path, start, size = local_repo.storage.root / key, 0, None
    if kind == "blob":
        path, location = located(local_repo, built.sha1s()[0])
        start, size = location.offset, location.length
    size = size or path.stat().st_size
    flip(path, start + {"header": 20, "middle": size // 2, "last byte": size - 1}[where])
    result = erpops("repo", "verify", built.id, "--deep", "-e", "prod", "--json")
    assert result.returncode == ExitCode.VERIFY, result.output
    doc = json.loads(result.stdout)
    assert doc["ok"] is False
    assert [f["key"] for f in doc["backups"][0]["findings"]] == [key]
    assert key in result.stderr and "Traceback" not in result.output


def test_verify_finds_a_blob_damaged_inside_a_pack_of_many_and_names_the_pack(local_repo, tmp_path, erpops):
    inventory(tmp_path, local_repo)
    built = make_backup(local_repo, "prod", "store_nord", T0, [file(n, 2000 + 500 * n) for n in range(6)], packed=True)
    victim = built.sha1s()[3]
    path, location = located(local_repo, victim)
    assert {located(local_repo, sha)[0] for sha in built.sha1s()} == {path}, "one pack holds them all"
    assert location.offset > 0
    assert erpops("repo", "verify", "--deep", "-e", "prod").returncode == 0
    flip(path, location.offset + location.length // 2)
    assert erpops("repo", "verify", "-e", "prod").returncode == 0, "a flipped byte inside a chunk needs --deep"
    result = erpops("repo", "verify", "--deep", "-e", "prod", "--json")
    assert result.returncode == ExitCode.VERIFY, result.output
    [finding] = json.loads(result.stdout)["backups"][0]["findings"]
    pack = pack_key(location.pack)
    assert finding["key"] == f"blobs/{victim[:2]}/{victim}" and finding["problem"].startswith("fails decryption")
    assert f"in pack {pack} at offset {location.offset}" in finding["problem"]
    assert finding["key"] in result.stderr and pack in result.stderr

    # truncated: every blob of the pack is named (the pack is not the size its index records), quick and deep
    flip(path, location.offset + location.length // 2)  # repaired
    path.write_bytes(path.read_bytes()[:-40])
    for extra in ([], ["--deep"]):
        result = erpops("repo", "verify", "-e", "prod", "--json", *extra)
        assert result.returncode == ExitCode.VERIFY, result.output
        findings = json.loads(result.stdout)["backups"][0]["findings"]
        assert {f["key"] for f in findings} == {f"blobs/{sha[:2]}/{sha}" for sha in built.sha1s()}
        assert all(f["problem"].startswith(f"is truncated: its pack {pack} holds") for f in findings)


@pytest.mark.parametrize("kind", ["db", "blob"])
def test_a_truncated_object_fails_quick_and_deep_verify(local_repo, tmp_path, erpops, kind):
    inventory(tmp_path, local_repo)
    make_backup(local_repo, "prod", "store_nord", T0 - DAY, [file(1, 9000)])
    built = make_backup(local_repo, "prod", "store_nord", T0, [file(2, 9000)])
    other = make_backup(local_repo, "prod", "store_sud", T0 - DAY, [file(3)])
    path = located(local_repo, built.sha1s()[0])[0] if kind == "blob" else local_repo.storage.root / built.key(kind)
    path.write_bytes(path.read_bytes()[:-40])
    for extra in ([], ["--deep"]):
        result = erpops("repo", "verify", "-e", "prod", "--json", *extra)  # the latest backup of each tenant
        assert result.returncode == ExitCode.VERIFY, result.output
        assert f"{built.key(kind)} is truncated" in result.stderr
        assert [b["backup_id"] for b in json.loads(result.stdout)["backups"]] == [built.id, other.id]


def test_quick_verify_catches_a_missing_object_and_passes_a_sound_backup(local_repo, tmp_path, erpops):
    inventory(tmp_path, local_repo)
    sound = make_backup(local_repo, "prod", "store_nord", T0 - DAY, [file(1)])
    broken = make_backup(local_repo, "prod", "store_nord", T0, [file(2)])
    passed = erpops("repo", "verify", sound.id, "-e", "prod")
    assert passed.returncode == 0 and "quick verify passed" in passed.stdout
    path, location = located(local_repo, broken.sha1s()[0])
    path.unlink()
    result = erpops("repo", "verify", "--all", "-e", "prod", "--json")
    assert result.returncode == ExitCode.VERIFY
    doc = json.loads(result.stdout)
    assert [b["ok"] for b in doc["backups"]] == [True, False]
    assert doc["backups"][1]["findings"] == [
        {"key": broken.key("blob"), "problem": f"is missing: its pack {pack_key(location.pack)} is gone"}]
    # without its index, a pack is invisible: the blob is in no pack
    (local_repo.storage.root / index_key(location.pack)).unlink()
    result = erpops("repo", "verify", broken.id, "-e", "prod", "--json")
    assert json.loads(result.stdout)["backups"][0]["findings"] == [
        {"key": broken.key("blob"), "problem": "is missing (no pack index lists it)"}]


def test_an_unreadable_pack_index_is_reported_once_and_named_in_missing_blobs(local_repo, tmp_path, erpops):
    inventory(tmp_path, local_repo)
    make_backup(local_repo, "prod", "store_nord", T0 - DAY, [file(1)])
    second = make_backup(local_repo, "prod", "store_nord", T0, [file(2)])
    pack = local_repo.blob_index().get(second.sha1s()[0]).pack
    flip(local_repo.storage.root / index_key(pack), 100)
    result = erpops("repo", "verify", "--all", "-e", "prod", "--json")
    assert result.returncode == ExitCode.VERIFY, result.output
    reports = json.loads(result.stdout)["backups"]
    assert [f["key"] for f in reports[0]["findings"]] == [index_key(pack)], "once, with the first backup"
    assert "cannot be read" in reports[0]["findings"][0]["problem"]
    [missing] = reports[1]["findings"]
    assert missing["key"] == second.key("blob") and "1 pack index object(s) cannot be read" in missing["problem"]


def test_a_blob_shared_by_backups_is_checked_once_and_reported_for_each(local_repo):
    shared = file(1, 5000)
    first = make_backup(local_repo, "prod", "store_nord", T0 - DAY, [shared])
    second = make_backup(local_repo, "prod", "store_nord", T0, [shared, file(2)])
    path, location = located(local_repo, first.sha1s()[0])
    flip(path, location.offset + 300)
    reports = verify_all(local_repo, [first.id, second.id], deep=True)
    assert [[f.key for f in r.findings] for r in reports] == [[first.key("blob")], [first.key("blob")]]
    assert "fails decryption" in reports[0].findings[0].problem


def test_a_passing_deep_verify_is_recorded_and_shown_as_verified(local_repo, tmp_path, erpops):
    inventory(tmp_path, local_repo)
    built = make_backup(local_repo, "prod", "store_nord", T0, [file(1)])
    assert erpops("repo", "verify", "-e", "prod").returncode == 0  # quick: not recorded
    assert json.loads(erpops("repo", "list", "-e", "prod", "--json").stdout)["backups"][0]["verified"] is False
    assert erpops("repo", "verify", "--deep", "-e", "prod").returncode == 0
    row = json.loads(erpops("repo", "list", "-e", "prod", "--json").stdout)["backups"][0]
    assert row["backup_id"] == built.id and row["verified"] is True


# --- prune ---------------------------------------------------------------------------


def age(repo, key: str) -> None:
    os.utime(repo.storage.root / key, (OLD, OLD))


def age_object(repo, entry: ObjectEntry) -> None:
    """Age a manifest's object: for a blob, its pack and the pack's index."""
    if entry.kind != "blob":
        return age(repo, entry.key)
    pack = repo.blob_index().get(entry.sha1).pack
    age(repo, pack_key(pack))
    age(repo, index_key(pack))


def pack_files(repo, sha1: str) -> list[Path]:
    pack = repo.blob_index().get(sha1).pack
    return [repo.storage.root / pack_key(pack), repo.storage.root / index_key(pack)]


def test_prune_applies_the_rules_keeps_the_newest_verified_and_cleans_debris_and_blobs(local_repo, tmp_path, erpops):
    inventory(tmp_path, local_repo, "{keep_last: 2}")
    shared = file(0)
    backups = [make_backup(local_repo, "prod", "store_nord", T0 - i * DAY, [shared, file(10 + i)], verified=(i == 3))
               for i in range(5)]  # backups[0] is the newest
    other_tenant = make_backup(local_repo, "prod", "store_sud", T0 - 9 * DAY, [file(30)])
    for b in backups[2:]:
        for o in b.manifest.objects:
            age_object(local_repo, o)
    # debris: an interrupted backup, old; and a running one, young
    old_debris = local_repo.put_object(object_name(new_backup_id("prod", "store_nord", T0 - 20 * DAY), "db.dump"),
                                       io.BytesIO(b"partial")).key
    age(local_repo, old_debris)
    young_debris = local_repo.put_object(object_name(new_backup_id("prod", "store_nord", T0 + DAY), "db.dump"),
                                         io.BytesIO(b"running")).key

    preview = erpops("repo", "prune", "--dry-run", "-e", "prod", "--json")
    assert preview.returncode == 0, preview.output
    rows = {r["backup_id"]: r for r in json.loads(preview.stdout)["backups"]}
    assert rows[backups[0].id]["reasons"] == ["last 1/2"] and rows[backups[1].id]["reasons"] == ["last 2/2"]
    assert rows[backups[3].id]["reasons"] == ["newest verified"] and rows[backups[3].id]["action"] == "keep"
    assert rows[backups[2].id]["status"] == "would remove" and rows[backups[4].id]["action"] == "remove"
    assert rows[other_tenant.id]["reasons"] == ["last 1/2"]  # retention is per environment and tenant
    table = erpops("repo", "prune", "--dry-run", "-e", "prod")
    assert "newest verified" in table.stdout and "would remove" in table.stdout
    assert len(list_backups(local_repo)) == 6, "a dry run changes nothing"

    unique_packs = {b.id: pack_files(local_repo, b.sha1s()[-1]) for b in backups}
    done = erpops("repo", "prune", "-e", "prod", "--json")
    assert done.returncode == 0, done.output
    doc = json.loads(done.stdout)
    remaining = {e.backup_id for e in list_backups(local_repo)}
    assert remaining == {backups[0].id, backups[1].id, backups[3].id, other_tenant.id}
    for gone in (backups[2], backups[4]):
        assert not any((local_repo.storage.root / o.key).exists() for o in gone.manifest.objects if o.kind != "blob")
        assert not (local_repo.storage.root / "objects/backups" / gone.id).exists() or \
            not any((local_repo.storage.root / "objects/backups" / gone.id).iterdir())
        assert not any(p.exists() for p in unique_packs[gone.id]), "old unreferenced pack and its index removed"
    assert all(p.exists() for p in pack_files(local_repo, backups[0].sha1s()[0])), "shared blob's pack kept"
    assert not (local_repo.storage.root / old_debris).exists()
    assert (local_repo.storage.root / young_debris).exists(), "young debris may be a running backup"
    assert doc["packs"]["removed"] == 2 and doc["packs"]["unreferenced"] == 2 and doc["packs"]["unused_bytes"] == 0
    assert doc["packs"]["total"] == 7 and doc["packs"]["unindexed"] == 0
    # every remaining backup still verifies deeply
    local_repo.blob_index(reload=True)  # this process's index still lists the packs the CLI removed
    assert all(r.ok for r in verify_all(local_repo, sorted(remaining), deep=True))


def test_unreferenced_packs_younger_than_the_grace_period_stay(local_repo, tmp_path, erpops):
    inventory(tmp_path, local_repo, "{keep_last: 1}")
    make_backup(local_repo, "prod", "store_nord", T0 - DAY, [file(1)])
    make_backup(local_repo, "prod", "store_nord", T0, [file(2)])
    orphan = hashlib.sha1(b"uploaded by a running backup").hexdigest()
    local_repo.put_blob(orphan, io.BytesIO(b"uploaded by a running backup"))
    orphan_files = pack_files(local_repo, orphan)
    unindexed = local_repo.storage.root / pack_key("cd" * 16)  # a writer killed between pack and index
    unindexed.parent.mkdir(parents=True, exist_ok=True)
    unindexed.write_bytes(b"a pack without its index")
    killed = local_repo.storage.root / "packs" / "ab" / (".tmp-ab" + "0" * 30 + "-123456")  # a writer killed -9
    killed.parent.mkdir(parents=True, exist_ok=True)
    killed.write_bytes(b"half a pack")
    done = erpops("repo", "prune", "-e", "prod", "--json")
    doc = json.loads(done.stdout)
    assert doc["packs"]["young"] == 3 and doc["packs"]["removed"] == 0  # the removed backup's pack is new too
    assert doc["packs"]["unindexed"] == 1 and doc["packs"]["total"] == 4
    assert all(p.exists() for p in orphan_files) and unindexed.exists() and killed.exists()
    assert doc["temporaries"]["removed"] == 0
    forced = erpops("repo", "prune", "-e", "prod", "--grace", "0s", "--json")
    packs = json.loads(forced.stdout)["packs"]
    assert packs["removed"] == 3 and packs["unindexed"] == 1 and packs["total"] == 4
    assert not any(p.exists() for p in orphan_files) and not unindexed.exists()
    assert json.loads(forced.stdout)["temporaries"] == {"removed": 1, "removed_bytes": 11} and not killed.exists()
    human = erpops("repo", "prune", "-e", "prod")
    assert "packs: 1 stored, 0 unreferenced, 0 without an index; removed 0" in human.stdout, human.output
    bad = erpops("repo", "prune", "-e", "prod", "--grace", "soon")
    assert bad.returncode == ExitCode.USAGE and "--grace" in bad.stderr


def test_a_pack_holding_a_referenced_blob_is_kept_whole_and_its_unused_bytes_reported(local_repo, tmp_path, erpops):
    inventory(tmp_path, local_repo, "{keep_last: 1}")
    shared = file(1)
    old = make_backup(local_repo, "prod", "store_nord", T0 - DAY, [shared, file(2)], packed=True)
    new = make_backup(local_repo, "prod", "store_nord", T0, [shared, file(3)], packed=True)
    both = pack_files(local_repo, old.sha1s()[0])
    assert pack_files(local_repo, old.sha1s()[1]) == both, "the old backup's two blobs share one pack"
    for o in old.manifest.objects + new.manifest.objects:
        age_object(local_repo, o)
    unused = local_repo.blob_index().get(old.sha1s()[1]).length
    done = erpops("repo", "prune", "-e", "prod", "--json")
    assert done.returncode == 0, done.output
    packs = json.loads(done.stdout)["packs"]
    assert packs["removed"] == 0 and packs["unreferenced"] == 0 and packs["unused_bytes"] == unused
    assert all(p.exists() for p in both) and {e.backup_id for e in list_backups(local_repo)} == {new.id}
    assert new.sha1s()[0] == old.sha1s()[0] and verify_backup(local_repo, new.id, deep=True).ok


def test_an_unreadable_pack_index_stops_the_pack_step(local_repo, tmp_path, erpops):
    inventory(tmp_path, local_repo, "{keep_last: 1}")
    old = make_backup(local_repo, "prod", "store_nord", T0 - DAY, [file(1)])
    make_backup(local_repo, "prod", "store_nord", T0, [file(2)])
    for o in old.manifest.objects:
        age_object(local_repo, o)
    files = pack_files(local_repo, old.sha1s()[0])
    flip(files[1], 80)
    done = erpops("repo", "prune", "-e", "prod", "--grace", "0s", "--json")
    assert done.returncode == 0, done.output
    packs = json.loads(done.stdout)["packs"]
    index = files[1].relative_to(local_repo.storage.root)
    assert packs["removed"] == 0 and f"pack index {index} cannot be read" in packs["skipped_reason"]
    assert all(p.exists() for p in files)
    human = erpops("repo", "prune", "-e", "prod", "--grace", "0s")
    assert "packs: not pruned: pack index" in human.stdout, human.output


def test_prune_refuses_while_a_backup_holds_its_lock(local_repo, tmp_path, erpops):
    from erpops.repo.locks import acquire

    inventory(tmp_path, local_repo)
    make_backup(local_repo, "prod", "store_nord", T0, [file(1)])
    with acquire(local_repo, "backup-prod", ttl=600, purpose="backup of prod"):
        refused = erpops("repo", "prune", "-e", "prod")
        assert refused.returncode == ExitCode.REFUSED and "backup of prod is already running" in refused.stderr
        assert erpops("repo", "prune", "--dry-run", "-e", "prod").returncode == 0


# --- S3 (SeaweedFS) -------------------------------------------------------------------


@pytest.fixture
def s3_options(seaweedfs, monkeypatch):
    monkeypatch.setenv("TEST_S3_ACCESS", seaweedfs.access_key)
    monkeypatch.setenv("TEST_S3_SECRET", seaweedfs.secret_key)
    return S3Options(endpoint=seaweedfs.endpoint, region=seaweedfs.region, access_key="env:TEST_S3_ACCESS",
                     secret_key="env:TEST_S3_SECRET", path_style=True, part_size=5 << 20, concurrency=2, max_attempts=3)


def test_s3_verify_names_flipped_truncated_and_missing_objects(seaweedfs, s3_options):
    prefix = seaweedfs.unique_prefix()
    repo = Repository.init(f"s3://{seaweedfs.bucket}/{prefix}", keys.KeyFile(keys.generate_key_file_text()), s3=s3_options)
    built = make_backup(repo, "prod", "store_nord", T0, [file(1, 8000), file(2)])
    assert verify_backup(repo, built.id, deep=True).ok
    client, bucket = seaweedfs.client(), seaweedfs.bucket

    def rewrite(key: str, change) -> None:
        data = client.get_object(Bucket=bucket, Key=f"{prefix}/{key}")["Body"].read()
        client.put_object(Bucket=bucket, Key=f"{prefix}/{key}", Body=change(data))

    rewrite(built.key("db"), lambda d: d[:3000] + bytes([d[3000] ^ 0x80]) + d[3001:])
    quick = verify_backup(repo, built.id, deep=False)
    assert quick.ok, "a flipped byte inside a chunk needs --deep"
    deep = verify_backup(repo, built.id, deep=True)
    assert [f.key for f in deep.findings] == [built.key("db")] and "fails decryption" in deep.findings[0].problem

    blob, gone = built.manifest.objects[1], built.manifest.objects[2]
    rewrite(pack_key(repo.blob_index().get(blob.sha1).pack), lambda d: d[:-10])
    client.delete_object(Bucket=bucket, Key=f"{prefix}/{pack_key(repo.blob_index().get(gone.sha1).pack)}")
    quick = verify_backup(repo, built.id, deep=False)
    found = {f.key: f.problem.split(":")[0] for f in quick.findings}
    assert found == {blob.key: "is truncated", gone.key: "is missing"}


def test_s3_prune_with_object_lock_reports_what_it_cannot_delete_yet(seaweedfs, s3_options):
    client = seaweedfs.client()
    if "erpops-locked" not in [b["Name"] for b in client.list_buckets().get("Buckets", [])]:
        client.create_bucket(Bucket="erpops-locked", ObjectLockEnabledForBucket=True)
    url = f"s3://erpops-locked/{seaweedfs.unique_prefix()}"
    repo = Repository.init(url, keys.KeyFile(keys.generate_key_file_text()), s3=s3_options,
                           object_lock=ObjectLock("governance", 1))
    old = make_backup(repo, "prod", "store_nord", T0 - DAY, [file(1)])
    new = make_backup(repo, "prod", "store_nord", T0, [file(2)])
    orphan_sha = hashlib.sha1(b"orphan").hexdigest()
    repo.put_blob(orphan_sha, io.BytesIO(b"orphan"))
    orphan = pack_key(repo.blob_index().get(orphan_sha).pack)
    later = datetime.now(timezone.utc) + timedelta(hours=2)  # past the grace period, within the retention
    result = prune(repo, Policy(keep_last=1), grace=3600, now=later)
    rows = {r["backup_id"]: r for r in result.backups}
    assert rows[new.id]["action"] == "keep"
    assert rows[old.id]["action"] == "remove" and rows[old.id]["status"].startswith("cannot delete until ")
    blocked = {item["key"] for item in result.cannot_delete}
    assert old.manifest_key in blocked and orphan in blocked
    assert all(item["until"] > later for item in result.cannot_delete)
    assert {e.backup_id for e in list_backups(repo)} == {old.id, new.id}, "nothing under retention was touched"
    assert verify_backup(repo, old.id, deep=True).ok
    again = prune(repo, Policy(keep_last=1), grace=3600, now=later)  # the prune lock is taken again
    assert {r["backup_id"]: r["action"] for r in again.backups} == {new.id: "keep", old.id: "remove"}
    assert not list(repo.storage.list("locks/")), "released"
    # the same on a bucket without Object Lock: the old backup and the orphan really go
    plain = Repository.init(f"s3://{seaweedfs.bucket}/{seaweedfs.unique_prefix()}",
                            keys.KeyFile(keys.generate_key_file_text()), s3=s3_options)
    gone = make_backup(plain, "prod", "store_nord", T0 - DAY, [file(1)])
    make_backup(plain, "prod", "store_nord", T0, [file(2)])
    result = prune(plain, Policy(keep_last=1), grace=3600, now=later)
    assert not result.cannot_delete and not result.errors
    assert [e.backup_id for e in list_backups(plain)] != [gone.id] and len(list_backups(plain)) == 1
    assert result.packs["removed"] == 1
    assert not any(k.startswith(f"objects/backups/{gone.id}/") for k in plain.storage.list())
