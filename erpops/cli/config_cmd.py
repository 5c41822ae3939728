"""``erpops config validate`` and ``erpops config show``: the inventory, checked and shown."""

from __future__ import annotations

from typing import Optional

import typer

from erpops.cli.context import OPTIONS, env_name, json_mode

config_app = typer.Typer(
    help="Check and show the inventory (erpops.yaml): environments, repositories, audit keys.",
    no_args_is_help=True,
)


@config_app.command("validate")
def validate(
    path: Optional[str] = typer.Argument(None, help="Inventory file (default: the one erpops would use)."),
    json: bool = typer.Option(False, "--json", help="One JSON document on stdout."),
) -> None:
    """Check the inventory and report every problem at once (file:line:column, key, fix).

    Exits 0 when the file is valid, 2 otherwise (or when no file is found).

    \b
    Examples:
      erpops config validate
      erpops --config /etc/erpops/erpops.yaml config validate --json
    """
    from erpops.config.show import validate_inventory, validate_summary
    from erpops.ui.output import emit_json, ok

    OPTIONS.json = json_mode(json)  # so that errors are JSON too
    result = validate_inventory(path)
    if OPTIONS.json:
        emit_json(result)
    else:
        ok(validate_summary(result))


@config_app.command("show")
def show(
    env: Optional[str] = typer.Option(None, "-e", "--env", help="Show only this environment (and its repository)."),
    json: bool = typer.Option(False, "--json", help="One JSON document on stdout."),
) -> None:
    """Print the inventory in effect, defaults filled in, secrets masked.

    Secret references (env:NAME, file:PATH, ...) are shown; resolved values never are.

    \b
    Examples:
      erpops config show -e prod
      erpops config show --json
    """
    import sys

    from erpops.config.show import render_yaml, show_inventory
    from erpops.ui.output import emit_json

    OPTIONS.json = json_mode(json)
    shown = show_inventory(env_name(env, default=None))
    if OPTIONS.json:
        emit_json(shown)
    else:
        sys.stdout.write(render_yaml(shown))


def register(app: typer.Typer) -> None:
    app.add_typer(config_app, name="config")
