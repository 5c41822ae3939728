"""What `lab status` shows: each node's role, port, PID, replication state and
lag; database sizes; filestore size. Roles are asked of the servers themselves
(pg_is_in_recovery), so the answer stays true after a failover."""

from __future__ import annotations

from erpops.errors import ErpopsError
from erpops.lab import cluster, filestore
from erpops.lab import redis as lab_redis
from erpops.lab.lifecycle import target
from erpops.lab.state import LabState
from erpops.pg import status as pg_status
from erpops.pg.connect import connect


def inspect(st: LabState) -> dict:
    nodes = [_node(st, n) for n in st.nodes]
    primary = next((n for n in nodes if n["role"] == "primary" and n["state"] == "running"), None)
    databases: dict[str, int] = {}
    attachments = None
    if primary:
        node = st.node(primary["name"])
        senders = {}
        with connect(target(st, node)) as conn:
            databases = pg_status.database_sizes(conn)
            senders = {s["application_name"]: s for s in pg_status.senders(conn)}
        for n in nodes:
            if n["role"] == "replica" and n["name"] in senders:
                s = senders[n["name"]]
                n["replication"] = s["state"]
                n["lag_bytes"] = s["lag_bytes"]
                n["sync_state"] = s["sync_state"]
        try:
            with connect(target(st, node, st.tenant)) as conn:
                attachments = conn.execute("SELECT count(*) FROM ir_attachment").fetchone()[0]
        except ErpopsError:
            attachments = None
    out = {
        "environment": "lab",
        "root": st.root,
        "pg_version": st.pg_version,
        "scale": st.scale,
        "tenant": st.tenant,
        "nodes": nodes,
        "databases": databases,
        "attachments": attachments,
        "filestore": {"path": str(st.filestore_root), **filestore.usage(st.filestore_root)},
    }
    if st.redis:
        running = lab_redis.running(st.redis)
        out["redis"] = {"url": f"redis://127.0.0.1:{st.redis.port}/0", "role": "sessions",
                        "pid": st.redis.pid if running else None,
                        "state": "running" if running and lab_redis.ping(st.redis.port) else "stopped"}
    return out


def _node(st: LabState, node) -> dict:
    running = cluster.running(node)
    entry = {"name": node.name, "role": node.role, "host": "127.0.0.1", "port": node.port,
             "pid": cluster.postmaster_pid(node) if running else None,
             "state": "running" if running else "stopped",
             "data_dir": node.data_dir, "replication": None, "lag_bytes": None}
    if not running:
        return entry
    try:
        with connect(target(st, node), connect_timeout=3) as conn:
            recovering = pg_status.is_in_recovery(conn)
            entry["role"] = "replica" if recovering else "primary"
            entry["lsn"] = pg_status.current_lsn(conn)
            if recovering:
                rx = pg_status.receiver(conn)
                entry["replication"] = rx["status"] or "not connected"
                entry["lag_bytes"] = rx["replay_lag_bytes"]
                entry["upstream"] = f"{rx['sender_host']}:{rx['sender_port']}" if rx["sender_host"] else None
    except ErpopsError as exc:
        entry["state"] = "unreachable"
        entry["error"] = exc.message
    return entry
