"""pg_dump of one database on an exported snapshot, streamed, never spooled.

``pg_dump --format=custom --compress=0 --snapshot=ID`` writes to a pipe; the
caller reads it (``DumpStream.read``) straight into the repository, which
compresses (zstd) and encrypts on the way, so the dump never touches a local
disk and is compressed once, by the faster compressor. The custom format is
what ``pg_restore`` reads (selective and parallel restore); pg_dump itself
can only run in parallel in the directory format, which cannot be streamed.

The password reaches pg_dump through PGPASSWORD in its environment, never on
its command line (which ``ps`` shows to every user of the host).
"""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

from erpops.pg.binaries import client_binary
from erpops.pg.client_process import ClientProcess
from erpops.pg.connect import NodeTarget



def dump_argv(pg_dump: Path | str, target: NodeTarget, dbname: str, snapshot_id: str | None) -> list[str]:
    argv = [str(pg_dump), "--format=custom", "--compress=0", "--no-password",
            f"--host={target.host}", f"--port={target.port}", f"--username={target.user}", f"--dbname={dbname}"]
    if snapshot_id:
        argv.append(f"--snapshot={snapshot_id}")
    return argv


class DumpStream(ClientProcess):
    """A running pg_dump whose stdout is read like a file. ``read`` hashes and counts
    what passes (sha256 of the plain dump, bytes); ``finish`` waits and checks the exit."""

    def __init__(self, target: NodeTarget, dbname: str, snapshot_id: str | None, *, bin_dir: str | None = None):
        super().__init__(dump_argv(client_binary("pg_dump", bin_dir), target, dbname, snapshot_id), target,
                         application_name="erpops backup", stdout=subprocess.PIPE, bufsize=1 << 20)
        self.dbname = dbname
        self.sha256 = hashlib.sha256()
        self.bytes = 0
        self.on_read = None  # callback(bytes_so_far), for progress

    def read(self, n: int = -1) -> bytes:
        data = self._popen.stdout.read(n if n and n > 0 else 1 << 20)
        if data:
            self.sha256.update(data)
            self.bytes += len(data)
            if self.on_read is not None:
                self.on_read(self.bytes)
        return data

    def finish(self) -> None:
        """Wait for pg_dump; OperationFailed with its last stderr lines unless it exited 0."""
        try:
            self._popen.stdout.close()
        except OSError:
            pass
        self.wait_checked(f"pg_dump of database {self.dbname}",
                          hint="a snapshot id error means the snapshot's transaction ended before pg_dump started")
