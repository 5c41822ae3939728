"""An exported snapshot, held open while a backup uses it.

``open_snapshot`` starts a REPEATABLE READ transaction, exports its snapshot
(``pg_export_snapshot()``) and, in that same snapshot, reads the database facts
(facts.py; the slow row counts and checksums in a background thread, while the
dump and the filestore capture run) and the filestore files the database
references (attachments.py). ``pg_dump --snapshot=ID`` then dumps exactly that
state. The snapshot only lives as long as the
transaction, so the connection stays open until ``close()``: the dump and the
filestore capture see the same moment.

Who holds a snapshot between a runbook's steps is the caller's business
(erpops/actions/backup_run.py keeps them per run); if erpops dies, the server
ends the session and the snapshot with it.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime

from erpops.errors import OperationFailed
from erpops.pg.attachments import AttachedFiles, read_attached_files
from erpops.pg.connect import NodeTarget, connect
from erpops.pg.facts import DatabaseFacts, read_identity, read_totals


@dataclass
class Snapshot:
    tenant: str
    snapshot_id: str
    taken_at: datetime
    files: AttachedFiles
    size_estimate: int = 0  # bytes of table data: what a dump will roughly weigh (for progress)
    _facts: DatabaseFacts | None = None
    _conn: object = None
    _totals: "_Totals | None" = None

    @property
    def open(self) -> bool:
        return self._conn is not None and not self._conn.closed

    @property
    def identity(self) -> DatabaseFacts:
        """Versions and modules, read when the snapshot was taken (row counts and
        checksums may still be being read: use ``facts`` for those)."""
        return self._facts

    @property
    def facts(self) -> DatabaseFacts:
        """All the facts, once the background reading of the totals has finished."""
        self._wait_for_totals()
        return self._facts

    def close(self) -> None:
        """End the transaction (the exported snapshot dies with it) and the connection,
        once the totals have been read (they stay available; an error reading them is
        raised by ``facts``)."""
        if self._totals is not None:
            self._totals.join()
        conn, self._conn = self._conn, None
        if conn is not None and not conn.closed:
            try:
                conn.rollback()
            finally:
                conn.close()

    def _wait_for_totals(self) -> None:
        if self._totals is not None:
            self._totals.join()
            if self._totals.error is not None:
                raise self._totals.error


class _Totals(threading.Thread):
    """Reads the row counts and business checksums on the snapshot's connection while
    the dump and the filestore capture run: whole-table scans that would otherwise
    hold the backup up before either starts. Nothing else uses the connection meanwhile."""

    def __init__(self, conn, facts: DatabaseFacts, columns: dict, where: str):
        super().__init__(name="erpops-snapshot-totals", daemon=True)
        self._conn, self._facts, self._columns, self._where = conn, facts, columns, where
        self.error: Exception | None = None

    def run(self) -> None:
        import psycopg

        try:
            with self._conn.cursor() as cur:
                read_totals(cur, self._facts, self._columns)
        except psycopg.Error as exc:
            self.error = OperationFailed(f"cannot read the row counts and checksums of {self._where}: "
                                         f"{str(exc).strip().splitlines()[0]}", where=self._where)
        except Exception as exc:  # noqa: BLE001 - handed to the thread that asks for the facts
            self.error = exc


def open_snapshot(target: NodeTarget, tenant: str) -> Snapshot:
    """Export a snapshot of database ``tenant`` and read its facts and file list in it
    (the row counts and checksums go on in the background: Snapshot.facts waits for them)."""
    import psycopg

    conn = connect(target, dbname=tenant, autocommit=False, application_name="erpops backup snapshot")
    try:
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        with conn.cursor() as cur:
            cur.execute("SELECT pg_export_snapshot(), clock_timestamp()")
            snapshot_id, taken_at = cur.fetchone()
            facts, columns = read_identity(cur)
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
    totals = _Totals(conn, facts, columns, f"database {tenant} on {target.name}")
    totals.start()
    return Snapshot(tenant=tenant, snapshot_id=snapshot_id, taken_at=taken_at, files=files,
                    size_estimate=size_estimate, _facts=facts, _conn=conn, _totals=totals)
