"""Backup and restore benchmark: erpops next to Odoo's own way and the raw tools, on one lab.

Run (not a test; takes a while):

    .venv/bin/python bench/backup_restore_bench.py --scale 26 [--small-scale 2] [--write docs/performance.md]

Builds a lab (`erpops lab up --scale N --no-replica`; scale 26 is about 1.05 GB of
database and 2.6 GB of mostly incompressible filestore) in its own ERPOPS_HOME,
reads everything once (so every method starts with the same warm page cache),
then times, one after the other:

1. erpops full backup (`erpops backup -e lab`) into a fresh local repository;
2. an Odoo-format zip made the way Odoo's database manager makes it: copy the
   filestore into a temporary directory, `pg_dump --no-owner` as plain SQL,
   then zip the directory with deflate (Python's zipfile, as odoo.tools.osutil.zip_dir);
3. the raw tools: `pg_dump -Fc -Z0 | zstd -1 -T2` plus `tar -C filestore -c . | zstd -1 -T2`;
4. a second erpops backup after adding new attachments amounting to 1 % of the files;
5-7. full restores (DB + filestore) of the first backup into a new database:
   `erpops restore --as`, Odoo-style (extract, `psql -f dump.sql`, move the
   filestore) and raw (`pg_restore -j2`, untar) — see restore_methods.py;
8. the peak RSS of the erpops process (VmHWM polled from /proc, and the largest
   process of its tree as reported by wait4), also at a small scale to show it is flat.

Prints the table and, with --write, puts it into docs/performance.md.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from datetime import datetime, timezone
from pathlib import Path

import restore_methods
from bench_report import render, write_doc

ROOT = Path(__file__).resolve().parents[1]
ERPOPS = Path(sys.executable).parent / "erpops"


def log(msg: str) -> None:
    print(f"[{datetime.now(timezone.utc):%H:%M:%S}] {msg}", file=sys.stderr, flush=True)


class BenchLab:
    """A lab in its own ERPOPS_HOME, reached through an inventory file that keeps the
    lab's environment but points its repository at a fresh directory of the bench."""

    def __init__(self, home: Path, scale: float):
        self.home, self.scale = home, scale
        self.env = {**os.environ, "ERPOPS_HOME": str(home), "XDG_CONFIG_HOME": str(home / "config"),
                    "XDG_STATE_HOME": str(home / "xdg-state")}

    def erpops(self, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
        return subprocess.run([str(ERPOPS), *args], env=env or self.env, capture_output=True, text=True,
                              stdin=subprocess.DEVNULL)

    def up(self) -> None:
        state = self.state()
        if state and state.get("seeded") and abs(state["scale"] - self.scale) < 1e-9:
            log(f"reusing the lab at scale {self.scale:g} in {self.home}")
        else:
            if state:
                self.down()
            log(f"building a lab at scale {self.scale:g} in {self.home} (minutes at large scales)")
        self.home.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        res = self.erpops("lab", "up", "--scale", f"{self.scale:g}", "--no-replica")
        if res.returncode:
            sys.exit(f"lab up failed:\n{res.stdout}{res.stderr}")
        log(f"lab ready in {time.monotonic() - started:.0f}s")

    def down(self) -> None:
        self.erpops("lab", "down")

    def state(self) -> dict | None:
        try:
            return json.loads((self.home / "lab" / "lab.json").read_text())
        except OSError:
            return None

    @property
    def filestore(self) -> Path:
        return self.home / "lab" / "filestore" / "retail"

    def pg_env(self) -> dict:
        st = self.state()
        port = next(n["port"] for n in st["nodes"] if n["role"] == "primary")
        return {**os.environ, "PGHOST": "127.0.0.1", "PGPORT": str(port), "PGUSER": "postgres",
                "PGPASSWORD": Path(st["password_file"]).read_text().strip(), "PGDATABASE": "retail"}

    def bin(self, name: str) -> str:
        return str(Path(self.state()["bin_dir"]) / name)

    def sizes(self) -> dict:
        db = subprocess.run([self.bin("psql"), "-Atc", "SELECT pg_database_size('retail')"], env=self.pg_env(),
                            capture_output=True, text=True, check=True).stdout.strip()
        files = total = 0
        for dirpath, _dirs, names in os.walk(self.filestore):
            for n in names:
                files += 1
                total += os.path.getsize(os.path.join(dirpath, n))
        return {"db_bytes": int(db), "files": files, "filestore_bytes": total}

    def fresh_repository(self, where: Path) -> dict:
        """An inventory file: the lab as registered, its repository in ``where`` (new, empty)."""
        sys.path.insert(0, str(ROOT))
        from erpops.lab.registration import lab_inventory

        shutil.rmtree(where, ignore_errors=True)
        inventory = lab_inventory(self.home / "lab")
        inventory["repositories"]["lab"]["url"] = str(where)
        config = self.home / "bench-inventory.yaml"
        config.write_text(json.dumps({"version": 1, **inventory}, default=str))
        env = {**self.env, "ERPOPS_CONFIG": str(config)}
        res = self.erpops("repo", "init", "lab", env=env)
        if res.returncode:
            sys.exit(f"repo init failed:\n{res.stdout}{res.stderr}")
        return env

    def warm_up(self) -> None:
        """Read the filestore and the cluster's files once: every method then starts warm."""
        st = self.state()
        data_dir = next(n["data_dir"] for n in st["nodes"] if n["role"] == "primary")
        started = time.monotonic()
        for top in (self.filestore, Path(data_dir)):
            for dirpath, _dirs, names in os.walk(top):
                for n in names:
                    try:
                        with open(os.path.join(dirpath, n), "rb") as fh:
                            while fh.read(1 << 20):
                                pass
                    except OSError:
                        pass
        log(f"page cache warmed in {time.monotonic() - started:.0f}s")

    def add_attachments(self, count: int, mean_size: int, seed: int = 7) -> int:
        """New incompressible files referenced by new ir_attachment rows (like users uploading)."""
        sys.path.insert(0, str(ROOT))
        import psycopg

        from erpops.lab import filestore

        rng = random.Random(seed)
        files, total = [], 0
        for i in range(count):
            size = max(1000, int(rng.expovariate(1 / mean_size)))
            checksum, fname = filestore.write_file(self.filestore, os.urandom(size))
            files.append(filestore.StoredFile(f"bench_{seed}_{i}.bin", "res.partner", None, 1, fname, checksum,
                                              size, "application/octet-stream"))
            total += size
        e = self.pg_env()
        with psycopg.connect(host=e["PGHOST"], port=int(e["PGPORT"]), user="postgres", password=e["PGPASSWORD"],
                             dbname="retail", autocommit=True) as conn:
            filestore.insert_attachments(conn, files)
        return total


def _vm_hwm(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def time_erpops(env: dict, *args: str) -> dict:
    """Wall time, the erpops process's own peak RSS (VmHWM, polled) and the largest
    RSS of its process tree (GNU time's %M, from wait4) of one erpops command."""
    with tempfile.NamedTemporaryFile("r", suffix=".time") as tfile:
        argv = ["/usr/bin/time", "-o", tfile.name, "-f", "%M", str(ERPOPS), *args]
        started = time.perf_counter()
        proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                stdin=subprocess.DEVNULL)
        peak = {"rss": 0}

        def poll() -> None:
            child = None
            while proc.poll() is None:
                if child is None:
                    kids = Path(f"/proc/{proc.pid}/task/{proc.pid}/children")
                    try:
                        child = int(kids.read_text().split()[0])
                    except (OSError, IndexError, ValueError):
                        pass
                if child is not None:
                    peak["rss"] = max(peak["rss"], _vm_hwm(child) or 0)
                time.sleep(0.02)

        watcher = threading.Thread(target=poll, daemon=True)
        watcher.start()
        out, err = proc.communicate()
        wall = time.perf_counter() - started
        watcher.join()
        tree_peak = int(Path(tfile.name).read_text().strip().splitlines()[-1]) * 1024
    if proc.returncode:
        sys.exit(f"erpops {' '.join(args)} failed (exit {proc.returncode}):\n{err[-3000:]}")
    return {"wall_s": wall, "rss_bytes": peak["rss"], "tree_rss_bytes": tree_peak,
            "summary": json.loads(out) if out.strip().startswith("{") else None, "log": err}


def odoo_zip(lab: BenchLab, out: Path) -> dict:
    """What Odoo's database manager (odoo.service.db.dump_db, zip format) does."""
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(dir=out.parent) as dump_dir:
        shutil.copytree(lab.filestore, os.path.join(dump_dir, "filestore"))
        with open(os.path.join(dump_dir, "manifest.json"), "w") as fh:
            json.dump({"odoo_dump": "1", "db_name": "retail", "version": "17.0", "pg_version": "15"}, fh)
        subprocess.run([lab.bin("pg_dump"), "--no-owner", "--file=" + os.path.join(dump_dir, "dump.sql"), "retail"],
                       env=lab.pg_env(), check=True)
        with open(out, "wb") as stream:
            _zip_dir(dump_dir, stream, include_dir=False, fnct_sort=lambda f: f != "dump.sql")
    return {"wall_s": time.perf_counter() - started, "out_bytes": out.stat().st_size}


def _zip_dir(path, stream, include_dir=True, fnct_sort=None):
    """odoo.tools.osutil.zip_dir, as in Odoo 17."""
    path = os.path.normpath(path)
    len_prefix = len(os.path.dirname(path)) if include_dir else len(path)
    if len_prefix:
        len_prefix += 1
    with zipfile.ZipFile(stream, "w", compression=zipfile.ZIP_DEFLATED, allowZip64=True) as zipf:
        for dirpath, _dirnames, filenames in os.walk(path):
            for fname in sorted(filenames, key=fnct_sort):
                bname, ext = os.path.splitext(fname)
                ext = ext or bname
                if ext not in [".pyc", ".pyo", ".swp", ".DS_Store"]:
                    fpath = os.path.normpath(os.path.join(dirpath, fname))
                    if os.path.isfile(fpath):
                        zipf.write(fpath, fpath[len_prefix:])


def raw_tools(lab: BenchLab, out: Path) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    db, fs = out / "retail.dump.zst", out / "filestore.tar.zst"
    started = time.perf_counter()
    subprocess.run(["bash", "-o", "pipefail", "-c",
                    f"'{lab.bin('pg_dump')}' -Fc -Z0 retail | zstd -1 -T2 -q -o '{db}'"], env=lab.pg_env(), check=True)
    dumped = time.perf_counter()
    subprocess.run(["bash", "-o", "pipefail", "-c",
                    f"tar -C '{lab.filestore}' -c . | zstd -1 -T2 -q -o '{fs}'"], check=True)
    done = time.perf_counter()
    return {"wall_s": done - started, "db_s": dumped - started, "files_s": done - dumped,
            "out_bytes": db.stat().st_size + fs.stat().st_size}


def restore_available(lab: BenchLab) -> bool:
    return lab.erpops("restore", "--help").returncode == 0


def settle() -> None:
    """Write out what the previous method left dirty in the page cache, so that each
    method starts on a quiet disk and does not pay for its predecessor's writeback."""
    started = time.monotonic()
    os.sync()
    log(f"    (sync {time.monotonic() - started:.1f}s)")


def du(path: Path) -> int:
    return sum(os.path.getsize(os.path.join(d, n)) for d, _, names in os.walk(path) for n in names)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", type=float, default=26, help="lab scale (26: ~1.05 GB database, ~2.6 GB filestore)")
    ap.add_argument("--small-scale", type=float, default=2, help="second, small lab to show RSS is flat (0: skip)")
    ap.add_argument("--workdir", type=Path, default=Path("/var/tmp/erpops-bench"))
    ap.add_argument("--keep-lab", action="store_true", help="leave the labs running (reused by the next run)")
    ap.add_argument("--write", type=Path, help="write the table into this markdown file (docs/performance.md)")
    args = ap.parse_args()
    for tool in ("zstd", "tar", "bash"):
        if not shutil.which(tool):
            sys.exit(f"{tool} is missing: apt-get install {tool}")
    work = args.workdir
    work.mkdir(parents=True, exist_ok=True)
    lab = BenchLab(work / f"home-scale-{args.scale:g}", args.scale)
    lab.up()
    sizes = lab.sizes()
    log(f"data set: database {sizes['db_bytes'] / 1e9:.2f} GB, filestore {sizes['filestore_bytes'] / 1e9:.2f} GB "
        f"in {sizes['files']:,} files")
    lab.warm_up()
    results: dict = {"sizes": sizes, "scale": args.scale}

    env = lab.fresh_repository(work / "erpops-repo")
    log("1/8 erpops full backup")
    settle()
    full = time_erpops(env, "backup", "-e", "lab", "--json")
    full["out_bytes"] = du(work / "erpops-repo")
    results["erpops_full"] = full
    log(f"    {full['wall_s']:.1f}s, peak RSS {full['rss_bytes'] / 2**20:.0f} MiB")

    log("2/8 Odoo-style zip (copy filestore, pg_dump --no-owner, zip deflate)")
    settle()
    results["odoo_zip"] = odoo_zip(lab, work / "odoo.zip")  # kept for the Odoo-style restore
    log(f"    {results['odoo_zip']['wall_s']:.1f}s")

    log("3/8 raw tools (pg_dump -Fc -Z0 | zstd -1 -T2, tar | zstd -1 -T2)")
    settle()
    results["raw"] = raw_tools(lab, work / "raw")  # kept for the raw restore
    log(f"    {results['raw']['wall_s']:.1f}s")

    count = max(1, math.ceil(sizes["files"] * 0.01))
    added = lab.add_attachments(count, sizes["filestore_bytes"] // max(sizes["files"], 1))
    log(f"4/8 second erpops backup after adding {count} attachments ({added / 1e6:.1f} MB, 1 % of the files)")
    settle()
    second = time_erpops(env, "backup", "-e", "lab", "--json")
    results["erpops_second"] = second
    results["added"] = {"files": count, "bytes": added}
    log(f"    {second['wall_s']:.1f}s")

    if restore_available(lab):
        first_id = full["summary"]["backups"][0]["backup_id"]
        restore_methods.cleanup(lab)  # leftovers of an earlier run
        log(f"5/8 erpops restore of {first_id} --as bench_erpops --jobs 2")
        settle()
        results["restore_erpops"] = restore_methods.erpops_restore(lab, env, first_id, time_erpops)
        log(f"    {results['restore_erpops']['wall_s']:.1f}s, peak RSS "
            f"{results['restore_erpops']['rss_bytes'] / 2**20:.0f} MiB")
        log("6/8 Odoo-style restore (extract the zip, psql -f dump.sql, move the filestore)")
        settle()
        results["restore_odoo"] = restore_methods.odoo_style(lab, work / "odoo.zip")
        log(f"    {results['restore_odoo']['wall_s']:.1f}s")
        log("7/8 raw restore (zstd -d, pg_restore -j2, zstd -dc | tar -x)")
        settle()
        results["restore_raw"] = restore_methods.raw_tools(lab, work / "raw")
        log(f"    {results['restore_raw']['wall_s']:.1f}s")
        restore_methods.cleanup(lab)
    else:
        log("5-7/8 skipped: this erpops has no restore command")
    (work / "odoo.zip").unlink()
    shutil.rmtree(work / "raw")

    if args.small_scale:
        small = BenchLab(work / f"home-scale-{args.small_scale:g}", args.small_scale)
        small.up()
        results["small_sizes"] = small.sizes()
        small.warm_up()
        senv = small.fresh_repository(work / "erpops-repo-small")
        log(f"8/8 erpops full backup (and restore) at scale {args.small_scale:g} (RSS flatness)")
        settle()
        results["erpops_small"] = time_erpops(senv, "backup", "-e", "lab", "--json")
        if "restore_erpops" in results:
            small_id = results["erpops_small"]["summary"]["backups"][0]["backup_id"]
            settle()
            results["restore_small"] = restore_methods.erpops_restore(small, senv, small_id, time_erpops)
            restore_methods.cleanup(small)
        shutil.rmtree(work / "erpops-repo-small")
        if not args.keep_lab:
            small.down()
    shutil.rmtree(work / "erpops-repo")
    if not args.keep_lab:
        lab.down()

    table = render(results)
    print(table)
    for key in ("erpops_full", "erpops_second", "erpops_small", "restore_erpops", "restore_small"):
        if key in results:
            results[key].pop("log", None)
    (work / "results.json").write_text(json.dumps(results, indent=2, default=str))
    if args.write:
        write_doc(args.write, table)
        log(f"wrote {args.write}")


if __name__ == "__main__":
    main()
