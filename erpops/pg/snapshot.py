"""An exported snapshot, held open while a backup uses it.

``open_snapshot`` starts a REPEATABLE READ transaction, exports its snapshot
(``pg_export_snapshot()``) and, in that same snapshot, reads the database facts
and the filestore files the database references (attachments.py). ``pg_dump --snapshot=ID``
then dumps exactly that state. The snapshot only lives as long as the
transaction, so the connection stays open until ``close()``: the dump and the
filestore capture see the same moment.

Who holds a snapshot between a runbook's steps is the caller's business
(erpops/actions/backup_run.py keeps them per run); if erpops dies, the server
ends the session and the snapshot with it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from erpops.errors import OperationFailed
from erpops.pg.attachments import AttachedFiles, read_attached_files
from erpops.pg.connect import NodeTarget, connect
from erpops.pg.facts import DatabaseFacts, read_facts


@dataclass
class Snapshot:
    tenant: str
    snapshot_id: str
    taken_at: datetime
    facts: DatabaseFacts
    files: AttachedFiles
    size_estimate: int = 0  # bytes of table data: what a dump will roughly weigh (for progress)
    _conn: object = None

    @property
    def open(self) -> bool:
        return self._conn is not None and not self._conn.closed

    def close(self) -> None:
        """End the transaction (the exported snapshot dies with it) and the connection."""
        conn, self._conn = self._conn, None
        if conn is not None and not conn.closed:
            try:
                conn.rollback()
            finally:
                conn.close()


def open_snapshot(target: NodeTarget, tenant: str) -> Snapshot:
    """Export a snapshot of database ``tenant`` and read its facts and file list in it."""
    import psycopg

    conn = connect(target, dbname=tenant, autocommit=False, application_name="erpops backup snapshot")
    try:
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        with conn.cursor() as cur:
            cur.execute("SELECT pg_export_snapshot(), clock_timestamp()")
            snapshot_id, taken_at = cur.fetchone()
            facts = read_facts(cur)
            files = read_attached_files(conn)
            cur.execute("SELECT coalesce(sum(pg_table_size(oid)), 0) FROM pg_class WHERE relkind IN ('r', 'm')")
            size_estimate = int(cur.fetchone()[0])
    except psycopg.Error as exc:
        conn.close()
        raise OperationFailed(f"cannot read database {tenant} on {target.name} ({target.address}): "
                              f"{str(exc).strip().splitlines()[0]}",
                              where=target.name) from None
    except BaseException:
        conn.close()
        raise
    return Snapshot(tenant=tenant, snapshot_id=snapshot_id, taken_at=taken_at, facts=facts, files=files,
                    size_estimate=size_estimate, _conn=conn)
