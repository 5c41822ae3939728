"""`erpops backup` against faults: a flaky S3 endpoint and kill -9 at several points.

Each test builds a private lab with its repository in a real SeaweedFS
(`lab up --s3`) and puts the fault proxy (tests/integration/faultproxy.py) in
front of it by giving erpops an inventory file whose `lab` repository endpoint
is the proxy. What is checked afterwards always goes straight to SeaweedFS
(the lab's own registration, no proxy): what the repository really holds.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

try:  # tests/ as a package, or tests/integration on sys.path (pytest's rootdir insertion)
    from tests.integration.faultproxy import FaultProxy
except ImportError:
    from faultproxy import FaultProxy

pytestmark = pytest.mark.integration

ERPOPS_BIN = Path(sys.executable).parent / "erpops"
SCALE = "0.02"  # about 70 files and 11 MB of database: enough requests, little time


def _private_s3_lab(make_lab):
    lab = make_lab("--scale", SCALE, "--no-replica", "--s3")
    init = lab.erpops("repo", "init", "lab")  # directly, so every later request is the backup's
    assert init.returncode == 0, init.output
    return lab


def _proxy_for(lab) -> FaultProxy:
    port = lab.state()["s3"]["ports"]["s3"]
    return FaultProxy("127.0.0.1", port, rate=0.0, seed=0)


def _via_proxy(lab, proxy: FaultProxy, tmp_path: Path) -> dict:
    """Environment variables that make erpops reach the lab's repository through ``proxy``:
    an inventory file defining `lab` exactly as the lab registers it, but for the endpoint."""
    from erpops.lab.registration import lab_inventory

    inventory = lab_inventory(lab.root)
    inventory["repositories"]["lab"]["endpoint"] = proxy.url
    path = tmp_path / "erpops-via-proxy.yaml"
    path.write_text(json.dumps({"version": 1, **inventory}, default=str))
    return {**lab.env, "ERPOPS_CONFIG": str(path)}


def _backup_ids(lab) -> list[str]:
    listed = lab.erpops("repo", "list", "-e", "lab", "--json")
    assert listed.returncode == 0, listed.output
    return [b["backup_id"] for b in json.loads(listed.stdout)["backups"]]


def _add_attachments(lab, count: int, size: int = 20_000) -> None:
    """New files in the filestore, each referenced by a new ir_attachment row (as Odoo would)."""
    from erpops.lab import filestore

    root = filestore.tenant_dir(lab.root / "filestore", "retail")
    files = []
    for i in range(count):
        checksum, fname = filestore.write_file(root, os.urandom(size))
        files.append(filestore.StoredFile(f"fault_test_{i}.bin", "res.partner", None, 1, fname, checksum, size,
                                          "application/octet-stream"))
    with lab.connect() as conn:
        filestore.insert_attachments(conn, files)


def _assert_every_listed_backup_verifies(lab, deep: bool = False) -> None:
    args = ["repo", "verify", "--all", "-e", "lab", "--json"] + (["--deep"] if deep else [])
    verified = lab.erpops(*args)
    assert verified.returncode == 0, verified.output
    assert json.loads(verified.stdout)["ok"] is True


def test_backup_through_a_flaky_s3_endpoint_completes_and_verifies(make_lab, tmp_path):
    lab = _private_s3_lab(make_lab)
    # Files over 1 MiB travel in packs of their own: enough requests for the faults to hit each kind.
    _add_attachments(lab, 30, size=(1 << 20) + 4096)
    with FaultProxy("127.0.0.1", lab.state()["s3"]["ports"]["s3"], rate=0.2, seed=20261203) as proxy:
        # --verify: the deep verify reads every blob back by range through the proxy too
        # (the upload itself is a few dozen requests now that blobs travel in packs)
        run = lab.erpops("backup", "-e", "lab", "--verify", "--json", env=_via_proxy(lab, proxy, tmp_path),
                         timeout=600)
    report = proxy.report()
    assert run.returncode == 0, f"{run.output}\nproxy: {report}"
    summary = json.loads(run.stdout)
    assert summary["status"] == "succeeded"
    [backup] = summary["backups"]
    assert backup["files"] > 20 and backup["new_files"] == backup["files"]

    # The faults were real and frequent: at least 10 % of the requests, of every kind.
    assert proxy.requests >= 50, report
    assert proxy.injected / proxy.requests >= 0.10, report
    assert all(report.get(f"injected_{kind}", 0) > 0 for kind in ("500", "503", "reset")), report

    # What SeaweedFS holds (no proxy now) is the whole backup, every chunk intact.
    assert _backup_ids(lab) == [backup["backup_id"]]
    _assert_every_listed_backup_verifies(lab, deep=True)


# Where the backup is killed: (name, how the test knows the process got there).
# "hold" points freeze the process on its first S3 request matching (method, path)
# — the proxy keeps that request unanswered — so the kill lands exactly there.
KILL_POINTS = [
    ("after the lock is taken", ("audit", "lock")),
    ("during the filestore upload", ("hold", lambda m, p: m == "PUT" and "/packs/" in p)),  # of new files
    ("during the dump upload", ("hold", lambda m, p: m in ("PUT", "POST") and p.split("?")[0].endswith("/db.dump"))),
    ("just before the manifest", ("hold", lambda m, p: m == "PUT" and "/manifest.json" in p)),
]


def _run_dirs(lab) -> set[Path]:
    runs = lab.home / "state" / "runs"
    return set(runs.iterdir()) if runs.exists() else set()


def _audit_finished(run_dir: Path, step: str) -> bool:
    try:
        lines = (run_dir / "audit.jsonl").read_text().splitlines()
    except OSError:
        return False
    for line in lines:
        try:
            rec = json.loads(line)
        except ValueError:
            continue  # a line being written
        if rec.get("type") == "step_finished" and rec.get("data", {}).get("step") == step:
            return True
    return False


def _wait_for(point, proc: subprocess.Popen, proxy: FaultProxy, lab, runs_before: set[Path]) -> None:
    kind, what = point
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"the backup ended (exit {proc.returncode}) before the kill point:\n{out}\n{err}")
        if kind == "hold" and proxy.held.is_set():
            return
        if kind == "audit" and any(_audit_finished(d, what) for d in _run_dirs(lab) - runs_before):
            return
        time.sleep(0.005)
    pytest.fail("the backup never reached the kill point")


def _leftover_pg_dumps(port: int) -> list[str]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if "pg_dump" in cmd and f"--port={port}" in cmd:
                found.append(f"{entry.name}: {cmd}")
    return found


def test_kill_9_at_any_point_leaves_no_false_backup_and_the_next_run_breaks_the_stale_lock(make_lab, tmp_path):
    lab = _private_s3_lab(make_lab)
    pg_port = lab.node("lab-primary")["port"]
    first = lab.erpops("backup", "-e", "lab", "--json")  # a good backup that must stay listed and valid
    assert first.returncode == 0, first.output
    [good] = _backup_ids(lab)
    files_before = json.loads(first.stdout)["backups"][0]["files"]
    with _proxy_for(lab) as proxy:
        env = {**os.environ, **_via_proxy(lab, proxy, tmp_path)}
        previous_pid = None
        for name, point in KILL_POINTS:
            listed_before = _backup_ids(lab)
            runs_before = _run_dirs(lab)
            if "filestore" in name:
                _add_attachments(lab, 12)  # files the repository does not have yet
            if point[0] == "hold":
                proxy.hold(point[1])
            proc = subprocess.Popen([str(ERPOPS_BIN), "backup", "-e", "lab"], env=env, text=True,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
            try:
                _wait_for(point, proc, proxy, lab, runs_before)
            finally:
                os.kill(proc.pid, signal.SIGKILL)
                out, err = proc.communicate(timeout=30)
                proxy.release()
            assert proc.returncode == -signal.SIGKILL, f"{name}: {err}"
            if previous_pid is not None:
                # This run found the lock of the one killed before it, and said why it broke it.
                assert "broke stale lock backup-lab" in err and f"pid {previous_pid}" in err, f"{name}:\n{err}"
            previous_pid = proc.pid

            # Killed before its manifest: the backup does not exist; all that is listed verifies.
            assert _backup_ids(lab) == listed_before == [good], name
            _assert_every_listed_backup_verifies(lab)

        # The next backup succeeds, breaking the last killed run's lock with the reason.
        final = subprocess.run([str(ERPOPS_BIN), "backup", "-e", "lab", "--json"], env=env, text=True,
                               capture_output=True, stdin=subprocess.DEVNULL, timeout=300)
    assert final.returncode == 0, final.stdout + final.stderr
    assert "broke stale lock backup-lab" in final.stderr and f"pid {previous_pid}" in final.stderr, final.stderr
    assert "is gone" in final.stderr, final.stderr
    [backup] = json.loads(final.stdout)["backups"]
    assert backup["files"] == files_before + 12  # the files added above (uploaded by killed runs already)
    assert _backup_ids(lab) == [good, backup["backup_id"]]
    _assert_every_listed_backup_verifies(lab, deep=True)

    # Nothing the killed runs started is left running.
    deadline = time.monotonic() + 15
    while _leftover_pg_dumps(pg_port) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _leftover_pg_dumps(pg_port) == []
