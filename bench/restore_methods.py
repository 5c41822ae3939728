"""The restore half of the benchmark: three ways to bring back DB + filestore.

Each restores into a new database next to the lab's ``retail`` and a new
filestore directory beside it. The results stay until all three have run
(``cleanup``): none writes its 64,000 files where another's were just deleted.
On ext4 without a journal (this VM's disk) new inodes are kept away from
inodes freed in the last minutes, and creating a file next to tens of
thousands of freed ones cost up to ten times the system time (measured:
20,000 files in 0.7 s in a fresh directory, 3.2-4.5 s beside a deleted
filestore, still five minutes later), which punished whichever method came
after another's clean-up.

1. ``erpops restore --as NAME`` from the backup the benchmark just took;
2. Odoo-style, as ``odoo.service.db.restore_db`` does it: extract the zip,
   ``createdb``, ``psql -f dump.sql`` (single-threaded), move ``filestore/``
   into place;
3. the raw tools: ``zstd -d`` the custom dump, ``pg_restore -j2``, then
   ``zstd -dc filestore.tar.zst | tar -x``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
import zipfile
from pathlib import Path


def _drop(lab, name: str) -> None:
    env = {**lab.pg_env(), "PGOPTIONS": "-c client_min_messages=warning"}  # no NOTICE when it is absent
    subprocess.run([lab.bin("dropdb"), "--if-exists", "--force", name], env=env, check=True)


NAMES = ("bench_erpops", "bench_odoo", "bench_raw")


def _cleanup(lab, name: str) -> None:
    _drop(lab, name)
    shutil.rmtree(lab.filestore.parent / name, ignore_errors=True)


def cleanup(lab) -> None:
    """Remove what the restores made (or an earlier run left)."""
    for name in NAMES:
        _cleanup(lab, name)


def erpops_restore(lab, env: dict, backup_id: str, time_erpops) -> dict:
    name = "bench_erpops"
    _cleanup(lab, name)
    return time_erpops(env, "restore", "-e", "lab", "--backup", backup_id, "--tenant", "retail",
                       "--as", name, "--jobs", "2", "--json")


def odoo_style(lab, zip_path: Path) -> dict:
    """odoo.service.db.restore_db for a zip: extractall, createdb, psql -f, move the filestore."""
    name = "bench_odoo"
    _cleanup(lab, name)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(dir=zip_path.parent) as dump_dir:
        with zipfile.ZipFile(zip_path) as z:
            z.extractall(dump_dir, [m for m in z.namelist() if m == "dump.sql" or m.startswith("filestore/")])
        subprocess.run([lab.bin("createdb"), name], env=lab.pg_env(), check=True)
        subprocess.run([lab.bin("psql"), "--quiet", "-X", "-d", name, "-f", os.path.join(dump_dir, "dump.sql")],
                       env=lab.pg_env(), check=True, stdout=subprocess.DEVNULL)
        shutil.move(os.path.join(dump_dir, "filestore"), lab.filestore.parent / name)
    return {"wall_s": time.perf_counter() - started}


def raw_tools(lab, raw_dir: Path) -> dict:
    name = "bench_raw"
    _cleanup(lab, name)
    target = lab.filestore.parent / name
    started = time.perf_counter()
    dump = raw_dir / "retail.dump"
    subprocess.run(["zstd", "-d", "-q", "-f", str(raw_dir / "retail.dump.zst"), "-o", str(dump)], check=True)
    subprocess.run([lab.bin("createdb"), name], env=lab.pg_env(), check=True)
    subprocess.run([lab.bin("pg_restore"), "-j2", "--no-owner", "-d", name, str(dump)], env=lab.pg_env(), check=True)
    db_done = time.perf_counter()
    target.mkdir()
    subprocess.run(["bash", "-o", "pipefail", "-c",
                    f"zstd -dc -q '{raw_dir / 'filestore.tar.zst'}' | tar -x -C '{target}'"], check=True)
    done = time.perf_counter()
    dump.unlink()
    return {"wall_s": done - started, "db_s": db_done - started, "files_s": done - db_done}
