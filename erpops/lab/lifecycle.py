"""`lab up` and `lab down`: build, restart and remove the lab.

up is idempotent: a running lab is left alone, a stopped one (after a reboot)
is restarted from lab.json, a half-built one (an earlier up that failed) is
removed and rebuilt. down stops exactly the processes lab.json records, checks
they are gone, and removes the lab directory.
"""

from __future__ import annotations

import os
import secrets
import shutil
import time
from datetime import datetime, timezone
from pathlib import Path

from erpops import paths
from erpops.errors import OperationFailed
from erpops.lab import cluster, filestore, runas, seed
from erpops.lab import redis as lab_redis
from erpops.lab import s3 as lab_s3
from erpops.lab import state as lab_state
from erpops.lab.state import LabState, Node, RedisNode
from erpops.pg import binaries
from erpops.pg.connect import NodeTarget, connect
from erpops.ui.output import log

PRIMARY, REPLICA = "lab-primary", "lab-replica"


def target(st: LabState, node: Node, dbname: str = "postgres") -> NodeTarget:
    return NodeTarget(name=node.name, host="127.0.0.1", port=node.port, user="postgres",
                      password_ref=f"file:{st.password_file}", dbname=dbname)


def up(*, scale: float = 1.0, replica: bool = True, with_redis: bool = False, with_s3: bool = False) -> dict:
    """Make sure the lab runs; returns {"action": created|started|running, "warnings": [...]}."""
    bin_dir = binaries.server_bindir()  # MissingPrerequisite (exit 2) before anything is written
    st = lab_state.load()
    if with_s3 or (st is not None and st.s3 is not None):
        lab_s3.weed_binary()  # likewise for SeaweedFS
    if st is not None and not st.seeded:
        log("! an earlier `lab up` did not finish; removing it and starting again")
        down()
        st = None
    if st is None:
        st = _create(bin_dir, scale=scale, replica=replica, with_redis=with_redis, with_s3=with_s3)
        return {"action": "created", "warnings": [], "state": st}
    warnings = []
    if abs(st.scale - scale) > 1e-9:
        warnings.append(f"the lab exists at scale {st.scale:g}; run `erpops lab down` first to rebuild it at {scale:g}")
    if not replica and st.replicas():
        warnings.append("the lab already has a replica; --no-replica applies when it is created")
    action = "running"
    for node in sorted(st.nodes, key=lambda n: cluster.running(n), reverse=True):
        if cluster.running(node):
            node.pid = cluster.postmaster_pid(node)
            continue
        other = _running_primary(st, besides=node)
        if other and not cluster.is_standby(node):
            # After a failover the old primary must not come back as a second primary.
            warnings.append(f"not starting {node.name}: {other} is the primary now and {node.name} is not a "
                            "standby; rejoin it as a replica (pg_rewind) before starting it")
            continue
        node.pid = cluster.start(Path(st.bin_dir), node)
        action = "started"
    if with_redis and st.redis is None:
        st.redis = _redis_node(st, avoid={n.port for n in st.nodes})
    if st.redis and not lab_redis.running(st.redis):
        st.redis.pid = lab_redis.start(st.redis)
        action = "started"
    if with_s3 and st.s3 is None:
        st.s3 = lab_s3.new_lab_node(Path(st.root))
        lab_state.save(st)
    if st.s3 and not lab_s3.lab_node_running(st.s3):
        _start_s3(st)
        action = "started"
    lab_state.save(st)
    return {"action": action, "warnings": warnings, "state": st}


def _start_s3(st: LabState) -> None:
    log(f"starting SeaweedFS (S3) for the lab's repository {st.s3.url}")
    lab_s3.start_lab_node(st.s3)
    lab_state.save(st)


def _running_primary(st: LabState, besides: Node) -> str | None:
    for n in st.nodes:
        if n is not besides and cluster.running(n):
            try:
                with connect(target(st, n), connect_timeout=3) as conn:
                    if not conn.execute("SELECT pg_is_in_recovery()").fetchone()[0]:
                        return n.name
            except OperationFailed:
                continue
    return None


def _create(bin_dir: Path, *, scale: float, replica: bool, with_redis: bool, with_s3: bool = False) -> LabState:
    root = paths.lab_dir()
    root.mkdir(parents=True, exist_ok=True)
    os.chmod(root, 0o700)
    pg_dir = runas.prepare_server_root(root)
    password_file = root / "postgres.password"
    _write_secret(password_file, secrets.token_urlsafe(24))
    st = LabState(root=str(root), bin_dir=str(bin_dir), socket_dir=str(pg_dir / "run"),
                  password_file=str(password_file), scale=scale,
                  pg_version=binaries.server_version(bin_dir),
                  created_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
                  pg_root=str(pg_dir))
    _write_secret(st.repository_key_file, secrets.token_hex(32))
    primary_port = cluster.free_port()
    st.nodes.append(Node(PRIMARY, "primary", primary_port, str(pg_dir / "primary"), str(pg_dir / "primary.log")))
    lab_state.save(st)
    try:
        _build(st, bin_dir, replica=replica, with_redis=with_redis, with_s3=with_s3)
    except BaseException:
        # Leave nothing running; lab.json (seeded: false) lets the next up clean the rest.
        _stop_all(st)
        lab_state.save(st)
        raise
    st.seeded = True
    lab_state.save(st)
    return st


def _build(st: LabState, bin_dir: Path, *, replica: bool, with_redis: bool, with_s3: bool = False) -> None:
    primary = st.primary()
    password_file = Path(st.password_file)
    started = time.monotonic()
    log(f"initdb {primary.name} ({st.pg_version}) in {primary.data_dir}")
    cluster.initdb(bin_dir, primary, st.socket_dir, password_file)
    primary.pid = _start_with_free_port(st, bin_dir, primary)
    lab_state.save(st)
    log(f"seeding database {st.tenant!r} at scale {st.scale:g}")
    with connect(target(st, primary)) as admin:
        seed.create_database(admin, st.tenant)
    with connect(target(st, primary, st.tenant), autocommit=True) as conn:
        counts = seed.seed(conn, st.scale)
        store = filestore.tenant_dir(st.filestore_root, st.tenant)
        files = filestore.populate(store, st.scale, counts)
        filestore.insert_attachments(conn, files)
        conn.execute("VACUUM ANALYZE")
    with connect(target(st, primary)) as admin:
        admin.execute("CHECKPOINT")
    if replica:
        node = Node(REPLICA, "replica", cluster.free_port({primary.port}),
                    str(Path(st.pg_root) / "replica"), str(Path(st.pg_root) / "replica.log"))
        st.nodes.append(node)
        lab_state.save(st)
        log(f"cloning {node.name} with pg_basebackup")
        cluster.create_replica(bin_dir, primary, node, st.socket_dir, password_file)
        node.pid = _start_with_free_port(st, bin_dir, node)
        lab_state.save(st)
        wait_streaming(st, node)
    if with_redis:
        st.redis = _redis_node(st, avoid={n.port for n in st.nodes})
        lab_state.save(st)
        st.redis.pid = lab_redis.start(st.redis)
    if with_s3:
        st.s3 = lab_s3.new_lab_node(Path(st.root))
        lab_state.save(st)
        _start_s3(st)
    log(f"lab built in {time.monotonic() - started:.1f}s")


def _start_with_free_port(st: LabState, bin_dir: Path, node: Node, attempts: int = 3) -> int:
    """Start a node; if its port was taken in the meantime (other labs, other tools), pick another."""
    for attempt in range(attempts):
        try:
            return cluster.start(bin_dir, node)
        except OperationFailed:
            if attempt == attempts - 1 or "already in use" not in _log_text(node):
                raise
            node.port = cluster.free_port({n.port for n in st.nodes})
            cluster.write_settings(node, st.socket_dir)
            lab_state.save(st)
    raise AssertionError("unreachable")


def _log_text(node: Node) -> str:
    try:
        return Path(node.log_file).read_text(errors="replace")[-4000:]
    except OSError:
        return ""


def wait_streaming(st: LabState, node: Node, timeout: float = 60) -> None:
    """Wait until the primary reports the replica as streaming."""
    deadline = time.monotonic() + timeout
    with connect(target(st, st.primary())) as conn:
        while time.monotonic() < deadline:
            row = conn.execute("SELECT state FROM pg_stat_replication WHERE application_name = %s",
                               (node.name,)).fetchone()
            if row and row[0] == "streaming":
                return
            time.sleep(0.2)
    raise OperationFailed(f"replica {node.name} is not streaming after {timeout:.0f}s",
                          hint=f"see {node.log_file}")


def _redis_node(st: LabState, avoid: set[int]) -> RedisNode:
    d = Path(st.root) / "redis"
    return RedisNode(port=cluster.free_port(avoid), dir=str(d), pid_file=str(d / "redis.pid"),
                     log_file=str(d / "redis.log"))


def _write_secret(path: Path, value: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(value + "\n")
    os.chmod(path, 0o600)


def _stop_all(st: LabState) -> list[dict]:
    """Stop every recorded process (redis, replicas, then the primary); return what was stopped."""
    stopped = []
    if st.s3:
        pid = st.s3.pid if lab_s3.alive(st.s3.pid) else None
        lab_s3.stop(st.s3.pid)  # SIGTERM, then SIGKILL; only if the PID is still a `weed`
        stopped.append({"name": "s3", "pid": pid})
    if st.redis:
        pid = st.redis.pid if lab_redis.running(st.redis) else None
        lab_redis.stop(st.redis)
        stopped.append({"name": "redis", "pid": pid})
    for node in sorted(st.nodes, key=lambda n: n.role == "primary"):
        pid = cluster.postmaster_pid(node) if cluster.running(node) else None
        cluster.stop(Path(st.bin_dir), node)
        if cluster.running(node):
            raise OperationFailed(f"PostgreSQL {node.name} (PID {pid}) is still running after pg_ctl stop",
                                  hint=f"see {node.log_file}")
        stopped.append({"name": node.name, "pid": pid})
    return stopped


def down() -> dict:
    """Stop everything the lab started and remove its directory."""
    root = paths.lab_dir()
    st = lab_state.load()
    if st is None:  # nothing recorded: at most debris of an interrupted first `up`
        existed = root.exists()
        pg_root = runas.server_root(root)
        if pg_root.exists():
            shutil.rmtree(pg_root)
        if existed:
            shutil.rmtree(root)
        return {"stopped": [], "removed": str(root) if existed else None}
    stopped = _stop_all(st)
    if st.pg_root and Path(st.pg_root).exists():
        shutil.rmtree(st.pg_root)
    shutil.rmtree(st.root)
    return {"stopped": stopped, "removed": st.root}
