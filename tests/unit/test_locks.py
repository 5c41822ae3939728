"""Repository locks with real files and real processes (no mocks)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from datetime import datetime, timedelta, timezone

import pytest

from erpops.errors import ExitCode, OperationFailed, Refused
from erpops.paths import state_dir
from erpops.repo import keys
from erpops.repo.locks import acquire, lock_info, lock_key, unlock
from erpops.repo.repository import Repository

HOLDER = textwrap.dedent("""\
    import sys, time
    from erpops.repo import keys
    from erpops.repo.locks import acquire
    from erpops.repo.repository import Repository

    repo = Repository.open(sys.argv[1], keys.KeyFile(open(sys.argv[2]).read()))
    lock = acquire(repo, "backup-prod", ttl=float(sys.argv[3]), purpose="backup of prod")
    print("held", flush=True)
    time.sleep(120)
""")


@pytest.fixture
def repo(tmp_path):
    key_file = tmp_path / "repo.key"
    key_file.write_text(keys.generate_key_file_text())
    made = Repository.init(str(tmp_path / "repo"), keys.KeyFile(key_file.read_text()))
    made.key_file = key_file
    return made


@pytest.fixture
def holder(repo, tmp_path, monkeypatch):
    """Start a child process that takes backup-prod and keeps it; yields the Popen."""
    monkeypatch.setenv("ERPOPS_OPERATOR", "alice")
    children = []

    def start(ttl: float = 3600) -> subprocess.Popen:
        child = subprocess.Popen([sys.executable, "-c", HOLDER, str(repo.storage.root), str(repo.key_file), str(ttl)],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        children.append(child)
        line = child.stdout.readline()
        assert line.strip() == "held", child.stderr.read()
        return child

    yield start
    for child in children:
        if child.poll() is None:
            child.kill()
        child.wait(timeout=10)


def test_a_held_lock_refuses_another_process_naming_holder_host_pid_and_times(repo, holder):
    child = holder()
    with pytest.raises(Refused) as refused:
        acquire(repo, "backup-prod", ttl=60, purpose="backup of prod")
    message = refused.value.render()
    assert refused.value.exit_code == ExitCode.REFUSED
    assert message.startswith(f"backup of prod is already running: held by alice on {socket.gethostname()} (pid {child.pid}) since ")
    assert "expires " in message and "erpops repo unlock backup-prod" in refused.value.hint
    # the lock object is there, in plain JSON, with the holder's details
    info = lock_info(repo, "backup-prod")
    assert info["pid"] == child.pid and info["holder"] == "alice" and info["purpose"] == "backup of prod"
    assert json.loads((repo.storage.root / lock_key("backup-prod")).read_text())["token"] == info["token"]


def test_the_repository_lock_alone_refuses_when_no_local_lock_is_held(repo, holder, monkeypatch):
    """Another host (or another state dir) holds it: only the repository object tells."""
    child = holder()
    child.send_signal(signal.SIGSTOP)  # keep it alive, but make its lock look remote
    try:
        info = lock_info(repo, "backup-prod")
        other = {**info, "host": "db-admin", "pid": 4242}
        (repo.storage.root / lock_key("backup-prod")).write_text(json.dumps(other))
        monkeypatch.setenv("ERPOPS_HOME", os.environ["ERPOPS_HOME"] + "-elsewhere")  # another local lock file
        with pytest.raises(Refused, match=r"held by alice on db-admin \(pid 4242\)"):
            acquire(repo, "backup-prod", ttl=60, purpose="backup of prod")
    finally:
        child.send_signal(signal.SIGCONT)


def test_a_killed_holder_is_detected_and_its_lock_broken_with_the_reason(repo, holder):
    child = holder()
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=10)
    lock = acquire(repo, "backup-prod", ttl=60, purpose="backup of prod")
    try:
        assert lock.broken_reason == f"holder pid {child.pid} on {socket.gethostname()} is gone"
        assert lock.broken_holder["pid"] == child.pid
        assert lock_info(repo, "backup-prod")["pid"] == os.getpid()
    finally:
        lock.release()
    assert lock_info(repo, "backup-prod") is None
    assert not (state_dir() / "locks" / "backup-prod.lock").exists()


TAKER = textwrap.dedent("""\
    import sys
    from erpops.repo import keys
    from erpops.repo.locks import acquire
    from erpops.repo.repository import Repository

    repo = Repository.open(sys.argv[1], keys.KeyFile(open(sys.argv[2]).read()))
    with acquire(repo, "backup-prod", ttl=60, purpose="backup of prod") as lock:
        print(lock.broken_reason)
""")


def test_an_expired_lock_of_another_host_is_broken_and_the_reason_logged(repo):
    since = datetime.now(timezone.utc) - timedelta(hours=3)
    stale = {"scope": "backup-prod", "token": "t", "holder": "bob", "host": "db-admin", "pid": 4242,
             "purpose": "backup of prod", "since": f"{since:%Y-%m-%dT%H:%M:%SZ}",
             "expires": f"{since + timedelta(hours=2):%Y-%m-%dT%H:%M:%SZ}"}
    (repo.storage.root / "locks").mkdir()
    (repo.storage.root / lock_key("backup-prod")).write_text(json.dumps(stale))
    taker = subprocess.run([sys.executable, "-c", TAKER, str(repo.storage.root), str(repo.key_file)],
                           capture_output=True, text=True, timeout=60)
    assert taker.returncode == 0, taker.stderr
    assert taker.stdout.strip() == f"expired at {stale['expires']}"
    assert (f"broke the stale lock backup-prod (expired at {stale['expires']}); it was held by bob on db-admin "
            "(pid 4242)") in taker.stderr
    assert lock_info(repo, "backup-prod") is None


def test_a_live_lock_of_another_host_is_not_broken(repo):
    now = datetime.now(timezone.utc)
    live = {"token": "t", "holder": "bob", "host": "db-admin", "pid": 1, "purpose": "backup of prod",
            "since": f"{now:%Y-%m-%dT%H:%M:%SZ}", "expires": f"{now + timedelta(hours=2):%Y-%m-%dT%H:%M:%SZ}"}
    (repo.storage.root / "locks").mkdir()
    (repo.storage.root / lock_key("backup-prod")).write_text(json.dumps(live))
    with pytest.raises(Refused, match="held by bob on db-admin"):
        acquire(repo, "backup-prod", ttl=60, purpose="backup of prod")
    assert lock_info(repo, "backup-prod")["token"] == "t"


def test_refresh_extends_the_expiry_and_notices_a_lock_taken_over(repo):
    lock = acquire(repo, "backup-prod", ttl=60, purpose="backup of prod")
    first = lock_info(repo, "backup-prod")["expires"]
    time.sleep(1.1)
    lock.refresh(ttl=7200)
    assert lock_info(repo, "backup-prod")["expires"] > first
    unlock(repo, "backup-prod")  # an operator removed it
    with pytest.raises(OperationFailed, match="taken over while held"):
        lock.refresh()
    lock.release()


def test_release_leaves_someone_elses_lock_alone(repo):
    lock = acquire(repo, "backup-prod", ttl=60, purpose="backup of prod")
    other = {**lock_info(repo, "backup-prod"), "token": "someone-else"}
    (repo.storage.root / lock_key("backup-prod")).write_text(json.dumps(other))
    lock.release()
    assert lock_info(repo, "backup-prod")["token"] == "someone-else"


def test_scopes_are_independent_and_validated(repo):
    from erpops.errors import UsageError

    with acquire(repo, "backup-prod", ttl=60, purpose="backup of prod"), \
            acquire(repo, "backup-staging", ttl=60, purpose="backup of staging"):
        assert {lock_info(repo, s)["purpose"] for s in ("backup-prod", "backup-staging")} == {"backup of prod", "backup of staging"}
    with pytest.raises(UsageError, match="invalid lock scope"):
        acquire(repo, "../etc", ttl=60, purpose="x")


def test_unlock_command_needs_yes_without_a_tty_then_removes_the_lock(repo, holder, erpops, tmp_path):
    child = holder()
    (tmp_path / "erpops.yaml").write_text(textwrap.dedent(f"""\
        version: 1
        environments:
          prod:
            tier: production
            postgres: {{primary: {{name: db1, host: 127.0.0.1}}}}
            repository: main
        repositories:
          main: {{url: "{repo.storage.root}", key: "file:{repo.key_file}"}}
        """))
    refused = erpops("repo", "unlock", "backup-prod", "-e", "prod")
    assert refused.returncode == ExitCode.REFUSED, refused.output
    assert f"held by alice on {socket.gethostname()} (pid {child.pid})" in refused.stderr and "--yes" in refused.stderr
    assert lock_info(repo, "backup-prod") is not None
    child.kill()
    child.wait(timeout=10)
    done = erpops("repo", "unlock", "backup-prod", "-e", "prod", "--yes", "--json")
    assert done.returncode == 0, done.output
    assert json.loads(done.stdout)["holder"]["pid"] == child.pid
    assert lock_info(repo, "backup-prod") is None
    again = erpops("repo", "unlock", "backup-prod", "-e", "prod", "--yes")
    assert again.returncode == 0 and "no lock backup-prod" in again.stdout


RACER = textwrap.dedent("""\
    import sys, time
    from erpops.errors import Refused
    from erpops.repo import keys
    from erpops.repo.locks import acquire
    from erpops.repo.repository import Repository

    repo = Repository.open(sys.argv[1], keys.KeyFile(open(sys.argv[2]).read()))
    while time.time() < float(sys.argv[3]):  # start together
        time.sleep(0.001)
    try:
        lock = acquire(repo, "backup-prod", ttl=60, purpose="backup of prod")
    except Refused:
        print("refused", flush=True)
        sys.exit(0)
    print("got", flush=True)
    time.sleep(2)
    lock.release()
""")


@pytest.mark.parametrize("state", ["one state dir", "a state dir each"])
def test_processes_racing_for_the_lock_get_it_exactly_once(repo, tmp_path, state):
    """With one state dir the local flock decides; with one each (like separate hosts)
    only the repository's conditional create does."""
    start = time.time() + 1.5
    racers = []
    for n in range(4):
        env = dict(os.environ)
        if state == "a state dir each":
            env["ERPOPS_HOME"] = str(tmp_path / f"home-{n}")
        racers.append(subprocess.Popen([sys.executable, "-c", RACER, str(repo.storage.root), str(repo.key_file), str(start)],
                                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env))
    outcomes = []
    for racer in racers:
        out, err = racer.communicate(timeout=60)
        assert racer.returncode == 0, err
        outcomes.append(out.strip())
    assert sorted(outcomes) == ["got", "refused", "refused", "refused"]
    assert lock_info(repo, "backup-prod") is None
