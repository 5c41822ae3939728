"""The root Typer app, its global options and the one error boundary.

Each command lives in its own module under erpops/cli/ and exposes
``register(app)``; COMMAND_MODULES below is the whole wiring. Only commands
that work are listed.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Optional

import typer

from erpops import __version__
from erpops.cli.context import OPTIONS
from erpops.errors import EXIT_CODES_HELP, ErpopsError, ExitCode

COMMAND_MODULES = [
    # "erpops.cli.<module>", one line per command module, in --help order
    "erpops.cli.backup_cmd",
    "erpops.cli.restore_cmd",
    "erpops.cli.export_cmd",
    "erpops.cli.import_cmd",
    "erpops.cli.config_cmd",
    "erpops.cli.doctor_cmd",
    "erpops.cli.lab_cmd",
    "erpops.cli.repo_cmd",
    "erpops.cli.audit_cmd",
    "erpops.cli.keys_cmd",
    "erpops.cli.runbook_cmd",
]

app = typer.Typer(
    name="erpops",
    help=(
        "Protect an Odoo-based retail ERP platform: backups, restores, PITR, failover, "
        "secret rotation, cutovers and drills, each a YAML runbook with a signed log.\n\n"
        "Every command works against the embedded lab (-e lab) with no config file; "
        "start it with `erpops lab up`.\n\n" + EXIT_CODES_HELP
    ),
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"erpops {__version__}")
        raise typer.Exit(0)


@app.callback()
def _global(
    config: Optional[Path] = typer.Option(None, "--config", help="Inventory file (default: $ERPOPS_CONFIG, ./erpops.yaml, $XDG_CONFIG_HOME/erpops/erpops.yaml).", envvar="ERPOPS_CONFIG"),
    env: Optional[str] = typer.Option(None, "-e", "--env", help="Environment to act on (default: $ERPOPS_ENV, then the lab)."),
    json: bool = typer.Option(False, "--json", help="Machine-readable JSON on stdout; logs on stderr."),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks on errors."),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version and exit."),
) -> None:
    OPTIONS.config = config
    OPTIONS.env = env
    OPTIONS.json = json
    OPTIONS.debug = debug


for _module in COMMAND_MODULES:
    importlib.import_module(_module).register(app)


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: run the app, map errors to exit codes.

    Typer (in standalone mode) handles usage errors itself with exit 2; every
    erpops error passes through here and becomes a message and its exit code.
    """
    args = sys.argv[1:] if argv is None else argv
    debug = "--debug" in args
    try:
        app(args=args, prog_name="erpops")
    except ErpopsError as exc:
        _report(exc, debug=debug or OPTIONS.debug)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        typer.echo("erpops: interrupted", err=True)
        sys.exit(130)
    except Exception:
        if debug or OPTIONS.debug:
            raise
        import traceback

        last = traceback.format_exc().strip().splitlines()[-1]
        typer.echo(f"erpops: internal error: {last}\n  hint: rerun with --debug for the traceback, and report it", err=True)
        sys.exit(ExitCode.FAILED)


def _report(exc: ErpopsError, *, debug: bool) -> None:
    from erpops.secrets import REDACTOR

    if debug:
        import traceback

        traceback.print_exc()
    if OPTIONS.json:
        import json

        typer.echo(json.dumps(REDACTOR.redact(exc.to_dict())))
    typer.echo(REDACTOR.redact(f"erpops: {exc.render()}"), err=True)
