"""lab.json: what the lab built and started — nodes, ports, PIDs, directories.

It is the lab's only memory: `lab down` stops exactly the PIDs recorded here,
`lab up` after a reboot restarts the recorded clusters, and the inventory entry
for environment `lab` is derived from it. Written atomically (temp file + rename).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from erpops import paths

STATE_FILE = "lab.json"
TENANT = "retail"


@dataclass
class Node:
    name: str  # "lab-primary", "lab-replica"
    role: str  # primary | replica
    port: int
    data_dir: str
    log_file: str
    pid: int | None = None


@dataclass
class RedisNode:
    port: int
    dir: str
    pid_file: str
    log_file: str
    pid: int | None = None


@dataclass
class S3Node:
    """The lab's SeaweedFS (`lab up --s3`); the repository is then s3://<bucket>/<prefix> there."""

    dir: str  # data, s3.json, weed.log
    access_key_file: str  # 0600, generated
    secret_key_file: str
    bucket: str = "erpops-lab"
    prefix: str = "repo"
    ports: dict = field(default_factory=dict)  # master, volume, filer, s3 and their gRPC ports
    pid: int | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.ports['s3']}"

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"


@dataclass
class LabState:
    root: str
    bin_dir: str
    socket_dir: str
    password_file: str
    tenant: str = TENANT
    scale: float = 1.0
    pg_version: str = ""
    nodes: list[Node] = field(default_factory=list)
    redis: RedisNode | None = None
    seeded: bool = False
    created_at: str = ""
    pg_root: str = ""  # data dirs, sockets, logs (see runas.server_root)
    s3: S3Node | None = None  # with `lab up --s3`

    @property
    def filestore_root(self) -> Path:
        return Path(self.root) / "filestore"

    @property
    def repository_dir(self) -> Path:
        return Path(self.root) / "repository"

    @property
    def repository_key_file(self) -> Path:
        return Path(self.root) / "repository.key"

    def node(self, name: str) -> Node:
        for n in self.nodes:
            if n.name == name:
                return n
        raise KeyError(name)

    def primary(self) -> Node | None:
        return next((n for n in self.nodes if n.role == "primary"), None)

    def replicas(self) -> list[Node]:
        return [n for n in self.nodes if n.role == "replica"]

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "LabState":
        # Keys written by another erpops version are ignored: `lab down` must
        # always be able to read the PIDs it has to stop.
        data = _known(cls, data)
        data["nodes"] = [Node(**_known(Node, n)) for n in data.get("nodes", [])]
        data["redis"] = RedisNode(**_known(RedisNode, data["redis"])) if data.get("redis") else None
        data["s3"] = S3Node(**_known(S3Node, data["s3"])) if data.get("s3") else None
        return cls(**data)


def _known(cls, data: dict) -> dict:
    names = {f.name for f in fields(cls)}
    return {k: v for k, v in data.items() if k in names}


def state_path(root: Path | None = None) -> Path:
    return (root or paths.lab_dir()) / STATE_FILE


def load(root: Path | None = None) -> LabState | None:
    path = state_path(root)
    try:
        return LabState.from_dict(json.loads(path.read_text()))
    except FileNotFoundError:
        return None


def save(state: LabState) -> None:
    path = state_path(Path(state.root))
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(state.to_dict(), indent=2) + "\n")
    os.replace(tmp, path)


def set_primary(name: str, root: Path | None = None) -> LabState:
    """Record that ``name`` is now the primary (after a failover): the inventory's
    `lab` environment then names it as primary and the others as replicas."""
    st = load(root)
    if st is None:
        from erpops.errors import UsageError

        raise UsageError("the lab is not running", hint="run: erpops lab up")
    st.node(name)  # KeyError for an unknown node: a programming error, not a user's
    for n in st.nodes:
        n.role = "primary" if n.name == name else "replica"
    st.nodes.sort(key=lambda n: n.role != "primary")
    save(st)
    return st


def pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else (postgres when we are not root)
    # A zombie still answers kill(0); it is not a running server.
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True
