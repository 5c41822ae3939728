"""Where erpops keeps its files (XDG base directories, overridable).

- config: $XDG_CONFIG_HOME/erpops            (keys, user config)
- data:   $ERPOPS_HOME or $XDG_DATA_HOME/erpops   (the lab, local repositories)
- state:  $ERPOPS_HOME/state or $XDG_STATE_HOME/erpops (runs, checkpoints, audit logs, locks)
"""

from __future__ import annotations

import os
from pathlib import Path


def _xdg(var: str, default: str) -> Path:
    value = os.environ.get(var)
    return Path(value) if value else Path.home() / default


def config_dir() -> Path:
    return _xdg("XDG_CONFIG_HOME", ".config") / "erpops"


def data_dir() -> Path:
    home = os.environ.get("ERPOPS_HOME")
    if home:
        return Path(home)
    return _xdg("XDG_DATA_HOME", ".local/share") / "erpops"


def state_dir() -> Path:
    home = os.environ.get("ERPOPS_HOME")
    if home:
        return Path(home) / "state"
    return _xdg("XDG_STATE_HOME", ".local/state") / "erpops"


def lab_dir() -> Path:
    return data_dir() / "lab"


def runs_dir() -> Path:
    return state_dir() / "runs"
