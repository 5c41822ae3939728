"""The lab as an inventory environment named `lab`.

The config loader calls ``lab_inventory()`` and merges the result, so every
command works with ``-e lab`` and no config file. The shape is exactly what a
user would write in erpops.yaml; the password is a real ``file:`` reference to
a 0600 file in the lab directory, checked by SCRAM on 127.0.0.1.
"""

from __future__ import annotations

from pathlib import Path

from erpops.lab import state as lab_state

ENVIRONMENT = "lab"
REPOSITORY = "lab"


def lab_inventory(root: Path | None = None) -> dict | None:
    """{"environments": {"lab": {...}}, "repositories": {"lab": {...}}}, or None when no lab exists."""
    st = lab_state.load(root)
    if st is None or st.primary() is None:
        return None
    return {"environments": {ENVIRONMENT: environment_dict(st)},
            "repositories": {REPOSITORY: repository_dict(st)}}


def _node(st: lab_state.LabState, node: lab_state.Node, priority: int | None = None) -> dict:
    out = {"name": node.name, "host": "127.0.0.1", "port": node.port, "user": "postgres",
           "password": f"file:{st.password_file}", "dbname": "postgres",
           "data_dir": node.data_dir, "bin_dir": st.bin_dir}
    if priority is not None:
        out["priority"] = priority
    return out


def environment_dict(st: lab_state.LabState) -> dict:
    primary = st.primary()
    env = {
        "tier": "development",
        "description": "the embedded lab (erpops lab up)",
        "rpo": "5m",
        "rto": "15m",
        "postgres": {
            "primary": _node(st, primary),
            "replicas": [_node(st, r, priority=i + 1) for i, r in enumerate(st.replicas())],
        },
        "tenants": [st.tenant],
        "filestore": {"path": str(st.filestore_root)},
        "repository": REPOSITORY,
    }
    if st.redis:
        env["redis"] = {"url": f"redis://127.0.0.1:{st.redis.port}/0", "role": "sessions"}
    return env


def repository_dict(st: lab_state.LabState) -> dict:
    repo = {"url": str(st.repository_dir), "key": f"file:{st.repository_key_file}",
            "retention": {"keep_last": 7}}
    if st.s3 is not None and st.s3.ports:
        # `lab up --s3`: the same key, in a bucket of the lab's SeaweedFS (path-style
        # addressing follows from the explicit endpoint); credentials as file: references.
        repo.update({"url": st.s3.url, "endpoint": st.s3.endpoint, "region": "us-east-1",
                     "access_key_id": f"file:{st.s3.access_key_file}",
                     "secret_access_key": f"file:{st.s3.secret_key_file}"})
    return repo
