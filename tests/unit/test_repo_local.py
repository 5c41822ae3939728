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
from datetime import datetime, timezone

import pytest

from erpops.errors import ExitCode, Refused, UsageError, VerificationFailed
from erpops.repo import keys
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


def test_blobs_are_written_once(repo, tmp_path):
    content = os.urandom(10_000)
    sha = hashlib.sha1(content).hexdigest()
    first = repo.put_blob(sha, io.BytesIO(content))
    path = tmp_path / "repo" / "blobs" / sha[:2] / sha
    inode = path.stat().st_ino
    second = repo.put_blob(sha, io.BytesIO(content))
    assert not first.skipped and first.stored_bytes > 0
    assert second.skipped and second.stored_bytes == 0
    assert path.stat().st_ino == inode
    assert repo.get_blob(sha).read() == content


def test_a_blob_whose_content_does_not_match_its_sha1_is_not_kept(repo):
    sha = hashlib.sha1(b"the real file").hexdigest()
    with pytest.raises(VerificationFailed, match="has SHA-1"):
        repo.put_blob(sha, io.BytesIO(b"a different file"))
    assert not repo.has_blob(sha)


def test_batched_blobs_get_their_names_only_when_the_batch_commits(repo, tmp_path):
    files = [os.urandom(3000) for _ in range(3)]
    shas = [hashlib.sha1(c).hexdigest() for c in files]
    wrong = hashlib.sha1(b"what the name promises").hexdigest()
    with repo.storage.begin_batch() as batch:
        for sha, content in zip(shas, files):
            assert not repo.put_blob(sha, io.BytesIO(content), batch=batch).skipped
        with pytest.raises(VerificationFailed):
            repo.put_blob(wrong, io.BytesIO(b"something else"), batch=batch)
        assert not any(repo.has_blob(sha) for sha in shas), "no name before the barrier"
        assert not list(repo.storage.list("blobs/"))
    assert all(repo.get_blob(sha).read() == content for sha, content in zip(shas, files))
    assert not repo.has_blob(wrong)
    leftovers = [p for p in (tmp_path / "repo" / "blobs").rglob("*") if p.is_file() and p.name.startswith(".tmp-")]
    assert leftovers == []


def test_a_batch_that_fails_names_nothing_and_leaves_no_temporary_file(repo, tmp_path):
    content = os.urandom(3000)
    sha = hashlib.sha1(content).hexdigest()
    with pytest.raises(RuntimeError), repo.storage.begin_batch() as batch:
        repo.put_blob(sha, io.BytesIO(content), batch=batch)
        raise RuntimeError("the backup failed")
    assert not repo.has_blob(sha)
    assert [p for p in (tmp_path / "repo" / "blobs").rglob("*") if p.is_file()] == []


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
    config["version"] = 2
    config_path.write_text(json.dumps(config))
    with pytest.raises(UsageError, match="format version 2") as caught:
        Repository.open(str(tmp_path / "repo"), passphrase())
    assert caught.value.hint == "upgrade erpops"


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
    assert doc["format_version"] == 1 and doc["key_slots"] == ["keyfile"] and doc["compression"]["level"] == 6
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
