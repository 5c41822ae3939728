"""Global options of the command line, shared by every command.

``erpops -e prod backup`` and ``erpops backup -e prod`` mean the same thing:
commands take their own ``-e``/``--json`` too and fall back to the global one.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path


@dataclass
class GlobalOptions:
    config: Path | None = None
    env: str | None = None
    json: bool = False
    debug: bool = False


OPTIONS = GlobalOptions()


def env_name(local: str | None = None, default: str | None = "lab") -> str | None:
    """The environment a command acts on: its own -e, the global -e,
    $ERPOPS_ENV, then the embedded lab."""
    return local or OPTIONS.env or os.environ.get("ERPOPS_ENV") or default


def json_mode(local: bool = False) -> bool:
    return local or OPTIONS.json


def interactive() -> bool:
    """True when a human can answer a prompt."""
    return sys.stdin.isatty() and sys.stderr.isatty()
