"""Where output goes: results on stdout, logs on stderr, JSON when asked.

Commands never print directly; they hand a result to ``show_result`` (a rich
table or text for humans, one JSON document with --json) and log lines to
``log``. No colour and no progress bars when the stream is not a TTY.
"""

from __future__ import annotations

import json
import sys
from datetime import date, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable

from erpops.secrets import REDACTOR


@lru_cache(maxsize=None)
def stdout():
    from rich.console import Console

    return Console(file=sys.stdout, highlight=False, soft_wrap=True)


@lru_cache(maxsize=None)
def stderr():
    from rich.console import Console

    return Console(file=sys.stderr, highlight=False, soft_wrap=True)


def _default(obj: Any) -> Any:
    if isinstance(obj, (datetime, date)):
        return obj.isoformat()
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, (set, frozenset)):
        return sorted(obj)
    return str(obj)


def to_json(doc: Any) -> str:
    return json.dumps(REDACTOR.redact(json.loads(json.dumps(doc, default=_default))), sort_keys=False)


def emit_json(doc: Any) -> None:
    """One JSON document (or one JSON line of a stream) on stdout, secrets masked."""
    sys.stdout.write(to_json(doc) + "\n")
    sys.stdout.flush()


def show_result(doc: Any, human: Callable[[Any], None], *, as_json: bool) -> None:
    if as_json:
        emit_json(doc)
    else:
        human(doc)


def log(message: str, *, style: str | None = None) -> None:
    """A progress or diagnostic line for the operator, on stderr."""
    stderr().print(REDACTOR.redact(message), style=style, markup=False)


def ok(message: str) -> None:
    stdout().print("✓ " + REDACTOR.redact(message), markup=False)


def warn(message: str) -> None:
    stderr().print("! " + REDACTOR.redact(message), style="yellow", markup=False)
