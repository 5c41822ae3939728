"""Questions to a human on the terminal (stderr for the question, stdin for the answer).

Only called when ``erpops.cli.context.interactive()`` is true; the callers
decide what happens without a TTY (usually: refuse with exit 3).
"""

from __future__ import annotations

import contextlib
import sys
from typing import Callable, ContextManager

# A live display (the rich renderer) registers a way to step aside while a
# question is on screen, so that the prompt is not redrawn over.
_SUSPENDERS: list[Callable[[], ContextManager]] = []


def register_suspender(suspend: Callable[[], ContextManager]) -> None:
    _SUSPENDERS.append(suspend)


def unregister_suspender(suspend: Callable[[], ContextManager]) -> None:
    if suspend in _SUSPENDERS:
        _SUSPENDERS.remove(suspend)


def _ask(question: str) -> str:
    with contextlib.ExitStack() as stack:
        for suspend in _SUSPENDERS:
            stack.enter_context(suspend())
        return _ask_now(question)


def _ask_now(question: str) -> str:
    sys.stderr.write(question)
    sys.stderr.flush()
    answer = sys.stdin.readline()
    if not answer:  # EOF (Ctrl-D): no answer is a no
        sys.stderr.write("\n")
        return ""
    return answer.strip()


def typed_confirmation(expected: str, what: str) -> bool:
    """The operator types ``expected`` back (an environment name) to go on."""
    answer = _ask(f"{what}\n  Type the environment name ({expected}) to continue: ")
    return answer == expected


def yes_no(question: str) -> bool:
    return _ask(f"{question} [y/N] ").lower() in ("y", "yes")


def choose(question: str, choices: list[str]) -> str:
    """One of ``choices`` (a unique prefix is enough); asks again on anything else."""
    while True:
        answer = _ask(f"? {question} [{'/'.join(choices)}] ").lower()
        if not answer:
            return choices[-1]
        matches = [c for c in choices if c.startswith(answer)]
        if len(matches) == 1:
            return matches[0]
        sys.stderr.write(f"  answer one of: {', '.join(choices)}\n")
