"""Questions to a human on the terminal (stderr for the question, stdin for the answer).

Only called when ``erpops.cli.context.interactive()`` is true; the callers
decide what happens without a TTY (usually: refuse with exit 3).
"""

from __future__ import annotations

import sys


def _ask(question: str) -> str:
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
