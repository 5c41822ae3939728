"""The repository in a local directory: storage semantics, the repository layer,
`erpops repo init`/`rekey` as a user runs them, and flat memory on a big object."""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone

import pytest

from erpops.errors import ExitCode, Refused, UsageError, VerificationFailed
from erpops.repo import keys
from erpops.repo.packs import PackWriter
from erpops.repo.repository import ObjectLock, Repository
from erpops.repo.storage import ObjectExists, ObjectNotFound
from erpops.repo.storage_local import LocalStorage
from erpops.repo.url import LocalUrl, S3Url, parse_url

FAST = 1 << 10


def passphrase(value: str = "correct horse battery staple") -> keys.Passphrase:
    return keys.Passphrase(value, scrypt_n=FAST)


# --- addresses ------------------------------------------------------------------


def test_addresses_parse(tmp_path):
    assert parse_url("s3://acme-erp-backups/prod/") == S3Url("acme-erp-backups", "prod")
    assert parse_url("s3://acme-erp-backups") == S3Url("acme-erp-backups", "")
    assert parse_url("file:///srv/backups") == LocalUrl(parse_url("/srv/backups").path)
    assert parse_url("./here") == LocalUrl(tmp_path / "here")
    for bad, words in [("s3://ab/x", "not a valid S3 bucket name"), ("s3://Acme/x", "not a valid S3 bucket name"),
                       ("file://host/x", "remote host"), ("ftp://x/y", "unsupported"), ("s3://bucket/a//b", "empty")]:
        with pytest.raises(UsageError, match=words):
            parse_url(bad)


# --- local storage ----------------------------------------------------------------


class Exploding:
    """A reader that fails after some data, like a dump process dying mid-stream."""

    def __init__(self, good: int):
        self.left = good

    def read(self, n: int) -> bytes:
        if self.left <= 0:
            raise OSError("pg_dump died")
        n = min(n, self.left)
        self.left -= n
        return b"x" * n


def test_local_storage_put_get_list_stat_delete(tmp_path):
    store = LocalStorage(tmp_path / "repo")
    assert store.put_stream("blobs/ab/abc", io.BytesIO(b"hello")) == 5
    store.put_stream("objects/x", io.BytesIO(b""))
    with store.get_stream("blobs/ab/abc") as f:
        assert f.read() == b"hello"
    assert sorted(store.list()) == ["blobs/ab/abc", "objects/x"]
    assert list(store.list("blobs/")) == ["blobs/ab/abc"]
    assert store.size("blobs/ab/abc") == 5 and store.exists("objects/x")
    store.delete("objects/x")
    assert not store.exists("objects/x")
    with pytest.raises(ObjectNotFound):
        store.get_stream("objects/x")
    with pytest.raises(ObjectNotFound):
        store.delete("objects/x")


def test_a_failed_write_leaves_the_old_object_and_no_debris(tmp_path):
    store = LocalStorage(tmp_path)
    store.put_stream("objects/dump", io.BytesIO(b"old"))
    with pytest.raises(OSError, match="pg_dump died"):
        store.put_stream("objects/dump", Exploding(3 << 20))
    assert store.get_stream("objects/dump").read() == b"old"
    assert sorted(p.name for p in (tmp_path / "objects").iterdir()) == ["dump"]


def test_if_absent_refuses_to_replace(tmp_path):
    store = LocalStorage(tmp_path)
    store.put_stream("blobs/aa/aa", io.BytesIO(b"first"), if_absent=True)
    with pytest.raises(ObjectExists) as caught:
        store.put_stream("blobs/aa/aa", io.BytesIO(b"second"), if_absent=True)
    assert caught.value.exit_code == ExitCode.REFUSED
    assert store.get_stream("blobs/aa/aa").read() == b"first"
    assert [p.name for p in (tmp_path / "blobs/aa").iterdir()] == ["aa"]


def test_local_storage_refuses_retention_it_cannot_enforce(tmp_path):
    with pytest.raises(UsageError, match="cannot enforce Object Lock"):
        LocalStorage(tmp_path).put_stream("x", io.BytesIO(b"x"), retain_until=datetime.now(timezone.utc))


@pytest.mark.parametrize("key", ["../escape", "/abs", "a/../b", ".hidden", "a//b", "a b", ""])
def test_unsafe_keys_are_refused(tmp_path, key):
    with pytest.raises(UsageError, match="invalid repository object name"):
        LocalStorage(tmp_path).put_stream(key, io.BytesIO(b"x"))


# --- the repository -----------------------------------------------------------------


@pytest.fixture
def repo(tmp_path):
    return Repository.init(str(tmp_path / "repo"), passphrase(), chunk_size=4096)


def test_objects_round_trip_and_are_encrypted_at_rest(repo, tmp_path):
    data = b"COPY public.pos_order (id, amount) FROM stdin;\n" * 500
    result = repo.put_object("backups/2026-12-03/store_nord.dump", io.BytesIO(data))
    assert result.plain_bytes == len(data) and result.stored_bytes < len(data)
    stored = (tmp_path / "repo/objects/backups/2026-12-03/store_nord.dump").read_bytes()
    assert b"pos_order" not in stored
    reopened = Repository.open(str(tmp_path / "repo"), passphrase())
    with reopened.get_object("backups/2026-12-03/store_nord.dump") as reader:
        assert reader.read() == data


def _files(root):
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_blobs_are_written_once(repo, tmp_path):
    content = os.urandom(10_000)
    sha = hashlib.sha1(content).hexdigest()
    first = repo.put_blob(sha, io.BytesIO(content))
    stored = _files(tmp_path / "repo")
    second = repo.put_blob(sha, io.BytesIO(content))
    assert not first.skipped and first.stored_bytes > len(content)
    assert second.skipped and second.stored_bytes == first.stored_bytes and second.plain_bytes == len(content)
    assert _files(tmp_path / "repo") == stored  # nothing written the second time
    assert [f.split("/")[0] for f in stored] == ["config", "index", "packs"]
    reopened = Repository.open(str(tmp_path / "repo"), passphrase())
    assert reopened.get_blob(sha).read() == content


def test_small_blobs_share_a_pack_and_large_ones_stream_into_their_own(repo, tmp_path):
    small = [os.urandom(3000) for _ in range(5)]
    large = os.urandom(50_000)
    with PackWriter(repo, repo.blob_index(), pack_target=8000, small_limit=20_000) as writer:
        for content in small + [large]:
            writer.add(hashlib.sha1(content).hexdigest(), io.BytesIO(content))
    index = Repository.open(str(tmp_path / "repo"), passphrase()).blob_index()
    packs = {index.get(hashlib.sha1(c).hexdigest()).pack for c in small}
    assert len(packs) == 2  # 3 blobs of ~3 KB fill a pack of 8000 bytes; the other 2 went in the last one
    alone = index.packs[index.get(hashlib.sha1(large).hexdigest()).pack]
    assert len(alone.blobs) == 1 and alone.size > len(large)
    assert len(list(repo.storage.list("index/"))) == len(list(repo.storage.list("packs/"))) == 3


def test_a_blob_whose_content_does_not_match_its_sha1_is_not_kept(repo, tmp_path):
    sha = hashlib.sha1(b"the real file").hexdigest()
    with pytest.raises(VerificationFailed, match="has SHA-1"):
        repo.put_blob(sha, io.BytesIO(b"a different file"))
    big = hashlib.sha1(b"a large file").hexdigest()
    with pytest.raises(VerificationFailed, match="has SHA-1"), \
            PackWriter(repo, repo.blob_index(), small_limit=4096) as writer:
        writer.add(big, io.BytesIO(os.urandom(10_000)))  # streamed into its own pack, then removed
    assert not repo.has_blob(sha) and not repo.has_blob(big)
    assert _files(tmp_path / "repo") == ["config"]


def test_a_pack_writer_that_fails_leaves_its_open_pack_unstored(repo, tmp_path):
    content = os.urandom(3000)
    sha = hashlib.sha1(content).hexdigest()
    with pytest.raises(RuntimeError), repo.pack_writer() as writer:
        writer.add(sha, io.BytesIO(content))
        raise RuntimeError("the backup failed")
    assert not Repository.open(str(tmp_path / "repo"), passphrase()).has_blob(sha)
    assert _files(tmp_path / "repo") == ["config"]


def test_threads_adding_the_same_content_store_it_once(repo):
    content = os.urandom(20_000)
    sha = hashlib.sha1(content).hexdigest()
    with repo.pack_writer() as writer, ThreadPoolExecutor(8) as pool:
        puts = list(pool.map(lambda _: writer.add(sha, io.BytesIO(content)), range(16)))
    assert sum(not p.skipped for p in puts) == 1
    assert {p.stored_bytes for p in puts} == {puts[0].stored_bytes}
    assert repo.get_blob(sha).read() == content


def test_blobs_swapped_inside_a_pack_are_detected(repo, tmp_path):
    a, b = os.urandom(3000), os.urandom(3000)
    with repo.pack_writer() as writer:
        for content in (a, b):
            writer.add(hashlib.sha1(content).hexdigest(), io.BytesIO(content))
    index = repo.blob_index()
    la, lb = index.get(hashlib.sha1(a).hexdigest()), index.get(hashlib.sha1(b).hexdigest())
    assert la.pack == lb.pack and la.length == lb.length
    pack = tmp_path / "repo" / "packs" / la.pack[:2] / la.pack
    data = bytearray(pack.read_bytes())
    data[la.offset:la.offset + la.length], data[lb.offset:lb.offset + lb.length] = \
        data[lb.offset:lb.offset + lb.length], data[la.offset:la.offset + la.length]
    pack.write_bytes(bytes(data))
    with pytest.raises(VerificationFailed, match=f"blobs/{hashlib.sha1(a).hexdigest()[:2]}/"):
        repo.get_blob(hashlib.sha1(a).hexdigest()).read()


def test_an_object_moved_to_another_name_is_detected(repo, tmp_path):
    repo.put_object("a", io.BytesIO(b"tenant a"))
    repo.put_object("b", io.BytesIO(b"tenant b"))
    objects = tmp_path / "repo" / "objects"
    os.replace(objects / "a", objects / "b")
    with pytest.raises(VerificationFailed, match="'objects/b'"):
        repo.get_object("b").read()


def test_init_refuses_an_existing_repository_and_a_non_empty_directory(repo, tmp_path):
    with pytest.raises(Refused, match="already exists"):
        Repository.init(str(tmp_path / "repo"), passphrase())
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("hi")
    with pytest.raises(UsageError, match="not empty"):
        Repository.init(str(tmp_path / "other"), passphrase())


def test_object_lock_on_a_local_directory_is_refused(tmp_path):
    with pytest.raises(UsageError, match="cannot enforce Object Lock"):
        Repository.init(str(tmp_path / "r"), passphrase(), object_lock=ObjectLock("compliance", 30))
    assert not (tmp_path / "r" / "config").exists()


def test_open_without_a_repository_says_how_to_make_one(tmp_path):
    with pytest.raises(UsageError, match="no erpops repository") as caught:
        Repository.open(str(tmp_path), passphrase())
    assert "erpops repo init" in caught.value.hint


def test_a_changed_config_is_detected(repo, tmp_path):
    config_path = tmp_path / "repo" / "config"
    config = json.loads(config_path.read_text())
    config["compression"]["level"] = 19
    config_path.write_text(json.dumps(config))
    with pytest.raises(VerificationFailed, match="changed outside erpops"):
        Repository.open(str(tmp_path / "repo"), passphrase())


def test_a_newer_format_version_is_refused_with_advice(repo, tmp_path):
    config_path = tmp_path / "repo" / "config"
    config = json.loads(config_path.read_text())
    config["version"] = 3
    config_path.write_text(json.dumps(config))
    with pytest.raises(UsageError, match="format version 3") as caught:
        Repository.open(str(tmp_path / "repo"), passphrase())
    assert caught.value.hint == "upgrade erpops"


def test_a_repository_of_format_version_1_is_refused_with_advice(repo, tmp_path):
    """Version 1 (one object per blob) was only made by development builds before packs."""
    config_path = tmp_path / "repo" / "config"
    config = json.loads(config_path.read_text())
    config["version"] = 1
    config_path.write_text(json.dumps(config))
    with pytest.raises(UsageError, match="format version 1") as caught:
        Repository.open(str(tmp_path / "repo"), passphrase())
    assert "erpops repo init" in caught.value.hint


def test_rekey_changes_the_wrapping_key_without_rewriting_data(repo, tmp_path):
    repo.put_object("dump", io.BytesIO(b"data" * 1000))
    before = (tmp_path / "repo/objects/dump").read_bytes()
    key_text = keys.generate_key_file_text()
    repo.rekey(keys.KeyFile(key_text))
    assert (tmp_path / "repo/objects/dump").read_bytes() == before
    with pytest.raises(keys.WrongKey):
        Repository.open(str(tmp_path / "repo"), passphrase())
    reopened = Repository.open(str(tmp_path / "repo"), keys.KeyFile(key_text))
    assert reopened.get_object("dump").read() == b"data" * 1000
    reopened.rekey(passphrase("second"), add=True)
    assert Repository.open(str(tmp_path / "repo"), passphrase("second")).describe()["key_slots"] == ["keyfile", "passphrase"]
    assert Repository.open(str(tmp_path / "repo"), keys.KeyFile(key_text)).get_object("dump").read() == b"data" * 1000


# --- the command line -------------------------------------------------------------


def test_repo_init_and_rekey_from_the_command_line(erpops, tmp_path):
    target, key_file = tmp_path / "backups", tmp_path / "keys" / "repo.key"
    made = erpops("repo", "init", str(target), "--key-file", str(key_file), "--compression-level", "6", "--json")
    assert made.returncode == 0, made.output
    doc = json.loads(made.stdout)
    assert doc["format_version"] == 2 and doc["key_slots"] == ["keyfile"] and doc["compression"]["level"] == 6
    assert oct(key_file.stat().st_mode & 0o777) == "0o600" and "created key file" in made.stderr
    assert key_file.read_text().strip() not in made.output + (target / "config").read_text()

    again = erpops("repo", "init", str(target), "--key-file", str(key_file))
    assert again.returncode == ExitCode.REFUSED and "already exists" in again.stderr

    secret = "tr0ub4dor&3-new-passphrase"
    rekeyed = erpops("repo", "rekey", f"file://{target}", "--key-file", str(key_file),
                     "--new-passphrase-env", "NEW_PASS", env={"NEW_PASS": secret})
    assert rekeyed.returncode == 0, rekeyed.output
    assert "key slots: passphrase" in rekeyed.stdout and secret not in rekeyed.output

    wrong = erpops("repo", "rekey", str(target), "--passphrase-env", "P", "--new-key-file", str(tmp_path / "k2"),
                   env={"P": "not-the-passphrase"})
    assert wrong.returncode == ExitCode.USAGE
    assert "does not open repository" in wrong.stderr and "Traceback" not in wrong.output
    assert not (tmp_path / "k2").exists()


def test_repo_init_needs_a_key_and_never_takes_a_passphrase_inline(erpops, tmp_path):
    bare = erpops("repo", "init", str(tmp_path / "r"))
    assert bare.returncode == ExitCode.USAGE and "--passphrase-env NAME" in bare.stderr
    inline = erpops("repo", "init", str(tmp_path / "r"), "--passphrase-env", "env:hunter2")
    assert inline.returncode == ExitCode.USAGE and "NAME of an environment variable" in inline.stderr
    unset = erpops("repo", "init", str(tmp_path / "r"), "--passphrase-env", "NOT_SET_ANYWHERE")
    assert unset.returncode == ExitCode.FAILED and "NOT_SET_ANYWHERE is not set" in unset.stderr


def test_repo_init_uses_the_inventory_repository(erpops, tmp_path):
    key_file = tmp_path / "repo.key"
    key_file.write_text(keys.generate_key_file_text())
    (tmp_path / "erpops.yaml").write_text(textwrap.dedent(f"""\
        version: 1
        repositories:
          local:
            url: file://{tmp_path}/inv-repo
            key: "file:{key_file}"
        """))
    made = erpops("repo", "init", "local", "--json")
    assert made.returncode == 0, made.output
    assert json.loads(made.stdout)["name"] == "local"
    assert Repository.open(str(tmp_path / "inv-repo"), keys.KeyFile(key_file.read_text())).describe()["key_slots"] == ["keyfile"]


# --- memory stays flat ------------------------------------------------------------

MEMORY_SCRIPT = r"""
import hashlib, io, os, resource, sys
from erpops.repo import keys
from erpops.repo.repository import Repository

TOTAL, BLOCK = 200 * 1024 * 1024, 1 << 20

class Source:
    # 200 MB made up on the fly: random blocks and compressible blocks, never all in memory
    def __init__(self):
        self.left, self.sha = TOTAL, hashlib.sha256()
    def read(self, n=-1):
        n = min(BLOCK if n < 0 else n, self.left)
        data = os.urandom(n) if (self.left // BLOCK) % 2 else b"pos;order;" * (n // 10) + b"x" * (n % 10)
        self.left -= n
        self.sha.update(data)
        return data

def rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

repo = Repository.init(sys.argv[1], keys.KeyFile(keys.generate_key_file_text()))
warm = Source(); warm.left = 4 * BLOCK
repo.put_object("warmup", warm); repo.get_object("warmup").read()
before = rss_mb()
source = Source()
repo.put_object("big", source)
out = hashlib.sha256()
with repo.get_object("big") as reader:
    while piece := reader.read(1 << 16):
        out.update(piece)
assert out.hexdigest() == source.sha.hexdigest(), "round trip differs"
os.unlink(os.path.join(sys.argv[1], "objects", "big"))
print(before, rss_mb())
"""


def test_a_200_mb_object_streams_through_in_flat_memory(tmp_path):
    proc = subprocess.run([sys.executable, "-c", MEMORY_SCRIPT, str(tmp_path / "repo")],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    before, after = map(float, proc.stdout.split())
    assert after - before < 64, f"peak RSS grew by {after - before:.0f} MB streaming 200 MB"
