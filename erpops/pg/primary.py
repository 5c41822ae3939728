"""Which server of an environment accepts writes right now.

The inventory names a primary, but after a failover the truth is on the
servers: the declared primary is tried first, and when it is unreachable or in
recovery, each replica is asked in priority order. A server that answers
``pg_is_in_recovery() = false`` is the primary.
"""

from __future__ import annotations

from erpops.errors import ErpopsError, OperationFailed
from erpops.pg.connect import NodeTarget, connect
from erpops.pg.status import is_in_recovery


def node_targets(environment) -> list[NodeTarget]:
    """Declared primary first, then replicas by priority; replicas inherit user/password/dbname."""
    pg = environment.postgres
    primary = pg.primary
    replicas = sorted(pg.replicas, key=lambda r: (r.priority is None, r.priority or 0))
    return [NodeTarget.from_node(primary)] + [NodeTarget.from_node(r, defaults=primary) for r in replicas]


def find_primary(environment, *, connect_timeout: int = 3) -> NodeTarget:
    problems = []
    for t in node_targets(environment):
        try:
            with connect(t, connect_timeout=connect_timeout) as conn:
                if not is_in_recovery(conn):
                    return t
                problems.append(f"{t.name} ({t.address}) is a standby")
        except ErpopsError as exc:
            problems.append(exc.message)
    raise OperationFailed(
        f"no server of environment {getattr(environment, 'name', '?')!r} accepts writes: " + "; ".join(problems),
        hint="check the servers, or finish the failover (erpops failover)",
    )


def load_environment(name: str):
    """The inventory environment ``name`` (the lab's when name is "lab" and no file defines it)."""
    from erpops.cli.context import OPTIONS
    from erpops.config import load_inventory

    return load_inventory(OPTIONS.config).environment(name)
