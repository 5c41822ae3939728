"""`erpops import-backup` and `erpops export` refusing bad input before touching anything:
the installed command, no TTY, no lab needed (the file is checked first)."""

from __future__ import annotations

import json
import zipfile

import pytest

pytestmark = pytest.mark.e2e


def test_import_refuses_a_climbing_zip(erpops, tmp_path):
    path = tmp_path / "evil.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("dump.sql", "SELECT 1;\n")
        zf.writestr("filestore/../../x", "boom")
    r = erpops("import-backup", str(path), "-e", "lab", "--json")
    assert r.returncode == 2, r.output
    assert "'filestore/../../x'" in r.stderr and "Traceback" not in r.stderr
    assert json.loads(r.stdout)["exit_code"] == 2


def test_import_refuses_a_file_that_is_no_backup(erpops, tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("hello")
    r = erpops("import-backup", str(path))
    assert r.returncode == 2 and "neither a zip nor" in r.stderr


def test_export_refuses_to_overwrite(erpops, tmp_path):
    out = tmp_path / "there.zip"
    out.write_bytes(b"keep me")
    r = erpops("export", "--tenant", "retail", "-o", str(out))
    assert r.returncode == 3 and "--force" in r.stderr
    assert out.read_bytes() == b"keep me"
