"""erpops.odoo.archive: recognising Odoo's zip and custom dumps, and refusing unsafe ones.

Every archive is a real file built in tmp_path with zipfile; nothing is mocked.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path

import pytest

from erpops.errors import ExitCode, UsageError, VerificationFailed
from erpops.odoo.archive import open_archive

SQL = b"-- PostgreSQL database dump\nCREATE TABLE t (id int);\n" * 50
CONTENT = [b"hello attachment", b"\x00\x01binary" * 1000]
# A pg_dump -Fc header as PostgreSQL 15 writes it: PGDMP, 1.14.0, int 4, off 8, format 1.
CUSTOM = b"PGDMP" + bytes([1, 14, 0, 4, 8, 1]) + b"\x00" * 64


def sha(data: bytes) -> str:
    return hashlib.sha1(data).hexdigest()


def odoo_zip(path: Path, *, dump: bytes | None = SQL, manifest: dict | bytes | None = None,
             files: list[bytes] = CONTENT, extra: dict[str, bytes] | None = None) -> Path:
    """A zip laid out like Odoo's database manager writes it (dump.sql first)."""
    manifest = {"odoo_dump": "1", "db_name": "store_nord", "version": "17.0",
                "modules": {"base": "17.0.1.3"}} if manifest is None else manifest
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        if dump is not None:
            zf.writestr("dump.sql", dump)
        zf.writestr("manifest.json", manifest if isinstance(manifest, bytes) else json.dumps(manifest))
        for data in files:
            zf.writestr(f"filestore/{sha(data)[:2]}/{sha(data)}", data)
        for name, data in (extra or {}).items():
            zf.writestr(name, data)
    return path


def test_odoo_zip_is_read(tmp_path):
    path = odoo_zip(tmp_path / "b.zip", extra={"README": b"ignored", "filestore/checklist/ab/x": b""})
    with open_archive(path) as a:
        assert (a.kind, a.dump_format, a.db_name) == ("zip", "plain", "store_nord")
        assert a.manifest["version"] == "17.0"
        assert a.dump_size == len(SQL)
        dump = a.extract_dump(tmp_path)
        assert dump == tmp_path / "dump.sql" and dump.read_bytes() == SQL
        got = {}
        for store_fname, sha1, size, open_fn in a.filestore_files():
            with open_fn() as fh:
                data = fh.read()
            assert store_fname == f"{sha1[:2]}/{sha1}" and sha(data) == sha1 and size == len(data)
            got[sha1] = data
        assert set(got) == {sha(c) for c in CONTENT}
        assert sorted(a.ignored_members) == ["README", "filestore/checklist/ab/x"]


def test_zip_without_manifest_has_no_db_name(tmp_path):
    path = tmp_path / "b.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("dump.sql", SQL)
    with open_archive(path) as a:
        assert a.manifest is None and a.db_name is None and list(a.filestore_files()) == []


def test_custom_dump_is_read(tmp_path):
    path = tmp_path / "b.dump"
    path.write_bytes(CUSTOM)
    with open_archive(path) as a:
        assert (a.kind, a.dump_format, a.manifest, a.db_name) == ("dump", "custom", None, None)
        assert list(a.filestore_files()) == []
        (tmp_path / "out").mkdir()
        out = a.extract_dump(tmp_path / "out")
        assert out.name == "database.dump" and out.read_bytes() == CUSTOM


@pytest.mark.parametrize("member", ["../evil", "filestore/../x", "/etc/passwd", "filestore/ab/../../x",
                                    "C:/windows", "filestore\\ab\\x", "a/../../b"])
def test_unsafe_member_rejects_the_file(tmp_path, member):
    path = odoo_zip(tmp_path / "b.zip", extra={member: b"x"})
    with pytest.raises(UsageError) as err:
        open_archive(path)
    assert repr(member) in err.value.message and err.value.exit_code == ExitCode.USAGE


@pytest.mark.parametrize("member", ["filestore/ab/notasha", "filestore/zz/" + "z" * 40,
                                    "filestore/ab/cd" + "0" * 38, "filestore/x", "filestore/ab/cd/" + "a" * 40])
def test_bad_filestore_names_are_rejected(tmp_path, member):
    path = odoo_zip(tmp_path / "b.zip", extra={member: b"x"})
    with pytest.raises(UsageError, match="not a filestore file name"):
        open_archive(path)


def test_duplicate_member_rejected(tmp_path):
    path = odoo_zip(tmp_path / "b.zip")
    with pytest.warns(UserWarning), zipfile.ZipFile(path, "a") as zf:
        zf.writestr("dump.sql", b"other")
    with pytest.raises(UsageError, match="appears twice"):
        open_archive(path)


def test_zip_without_dump_sql(tmp_path):
    path = odoo_zip(tmp_path / "b.zip", dump=None)
    with pytest.raises(UsageError, match="no dump.sql"):
        open_archive(path)


def test_bad_manifest_json(tmp_path):
    with pytest.raises(UsageError, match="not valid JSON"):
        open_archive(odoo_zip(tmp_path / "a.zip", manifest=b"{nope"))
    with pytest.raises(UsageError, match="not a JSON object"):
        open_archive(odoo_zip(tmp_path / "b.zip", manifest=b"[1]"))


def test_truncated_zip_is_damaged(tmp_path):
    path = odoo_zip(tmp_path / "b.zip")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(VerificationFailed) as err:
        open_archive(path)
    assert err.value.exit_code == ExitCode.VERIFY and err.value.where == str(path)


def test_corrupt_member_data_is_damaged(tmp_path):
    path = tmp_path / "b.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("dump.sql", SQL)
    data = bytearray(path.read_bytes())
    at = data.find(b"CREATE TABLE")
    data[at:at + 6] = b"XXXXXX"  # same length, CRC no longer matches
    path.write_bytes(bytes(data))
    with open_archive(path) as a, pytest.raises(VerificationFailed, match="dump.sql"):
        a.extract_dump(tmp_path)


def test_corrupt_custom_dump_header(tmp_path):
    path = tmp_path / "b.dump"
    path.write_bytes(b"PGDMP" + bytes([9, 99, 0, 4, 8, 1]) + b"\x00" * 8)
    with pytest.raises(VerificationFailed, match="header is invalid"):
        open_archive(path)
    path.write_bytes(b"PGDMP\x01")
    with pytest.raises(VerificationFailed, match="cut short"):
        open_archive(path)


def test_not_a_backup_and_missing_file(tmp_path):
    path = tmp_path / "x.sql"
    path.write_bytes(SQL)
    with pytest.raises(UsageError, match="neither a zip nor"):
        open_archive(path)
    with pytest.raises(UsageError, match="no such file"):
        open_archive(tmp_path / "missing.zip")
    with pytest.raises(UsageError, match="not a regular file"):
        open_archive(tmp_path)
