"""The error vocabulary of erpops and the exit code each kind maps to.

Actions and libraries raise these; only the CLI boundary (erpops/cli/app.py)
turns them into messages and exit codes. A message says what went wrong,
``where`` says where (file:line, host, step) and ``hint`` what to do about it.
"""

from __future__ import annotations

from dataclasses import dataclass


class ExitCode:
    OK = 0
    FAILED = 1  # the operation failed
    USAGE = 2  # usage, config or runbook invalid
    REFUSED = 3  # confirmation missing, freeze window, lock held, approval missing
    VERIFY = 4  # verification failed (integrity, checksum, ledger)


EXIT_CODES_HELP = (
    "Exit codes: 0 success, 1 operation failed, 2 usage/config/runbook invalid, "
    "3 refused (confirmation missing, freeze window, lock held), "
    "4 verification failed (integrity, checksum, ledger)."
)


class ErpopsError(Exception):
    """Base of every error a user may see. Subclasses pick the exit code."""

    exit_code = ExitCode.FAILED

    def __init__(self, message: str, *, where: str | None = None, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.where = where
        self.hint = hint

    def render(self) -> str:
        """One paragraph: where, what, what to do."""
        text = f"{self.where}: {self.message}" if self.where else self.message
        if self.hint:
            text += f"\n  hint: {self.hint}"
        return text

    def to_dict(self) -> dict:
        return {
            "error": type(self).__name__,
            "message": self.message,
            "where": self.where,
            "hint": self.hint,
            "exit_code": self.exit_code,
        }


class RunFailed(ErpopsError):
    """A command's runbook run failed: carries the exit code of the first error
    and the command's summary so far (``doc``, for --json)."""

    def __init__(self, message: str, *, exit_code: int, doc: dict, hint: str | None = None):
        super().__init__(message, hint=hint)
        self.exit_code = exit_code
        self.doc = doc


class UsageError(ErpopsError):
    """The command line asked for something that cannot be done as asked."""

    exit_code = ExitCode.USAGE


class OperationFailed(ErpopsError):
    exit_code = ExitCode.FAILED


class Refused(ErpopsError):
    exit_code = ExitCode.REFUSED


class VerificationFailed(ErpopsError):
    exit_code = ExitCode.VERIFY


class MissingPrerequisite(UsageError):
    """A program or package erpops needs is not installed."""


@dataclass(frozen=True)
class Diagnostic:
    """One problem found in a YAML file, pointing at the offending node."""

    file: str
    line: int  # 1-based
    column: int  # 1-based
    path: str  # key path, e.g. "environments.prod.postgres.primary.port"
    message: str

    def render(self) -> str:
        where = f"{self.file}:{self.line}:{self.column}"
        return f"{where}  {self.path}: {self.message}" if self.path else f"{where}  {self.message}"

    def to_dict(self) -> dict:
        return {"file": self.file, "line": self.line, "column": self.column,
                "path": self.path, "message": self.message}


class InvalidFile(UsageError):
    """A config or runbook file has one or more problems; all are reported at once."""

    def __init__(self, diagnostics: list[Diagnostic], *, what: str = "file", hint: str | None = None):
        self.diagnostics = sorted(diagnostics, key=lambda d: (d.file, d.line, d.column))
        n = len(self.diagnostics)
        summary = f"{n} error{'s' if n != 1 else ''} in {what}; nothing was run."
        super().__init__(summary, hint=hint)

    def render(self) -> str:
        lines = [d.render() for d in self.diagnostics]
        lines.append(self.message)
        if self.hint:
            lines.append(f"  hint: {self.hint}")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        out = super().to_dict()
        out["diagnostics"] = [d.to_dict() for d in self.diagnostics]
        return out
