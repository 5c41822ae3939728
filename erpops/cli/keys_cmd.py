"""``erpops keys init|show``: the Ed25519 key that seals this operator's run logs."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from erpops.cli.context import OPTIONS, json_mode

keys_app = typer.Typer(
    help="The Ed25519 key that seals your run logs; give its public line to your auditors.",
    no_args_is_help=True,
)


@keys_app.command("init")
def init(
    path: Optional[Path] = typer.Option(None, "--path", help="Where to write the private key (default: ~/.config/erpops/keys/operator.ed25519)."),
    force: bool = typer.Option(False, "--force", help="Replace an existing key (old logs then need the old .pub to verify)."),
    json: bool = typer.Option(False, "--json", help="One JSON document on stdout."),
) -> None:
    """Create a signing key: private key (PEM, mode 0600) and its .pub line beside it.

    Refuses (exit 3) when a key already exists, unless --force.
    Example: erpops keys init
    """
    from erpops.audit.keys import init_key, public_path
    from erpops.ui.output import show_result

    OPTIONS.json = json_mode(json)
    signer = init_key(path, force=force)
    doc = {"key_id": signer.key_id, "public_key": signer.public_line(), "private_key_file": signer.source,
           "public_key_file": str(public_path(Path(signer.source)))}
    show_result(doc, lambda d: typer.echo(
        f"✓ created {d['private_key_file']} (mode 0600), key id {d['key_id']}\n"
        f"public key ({d['public_key_file']}), give it to your auditors:\n{d['public_key']}"), as_json=OPTIONS.json)


@keys_app.command("show")
def show(
    json: bool = typer.Option(False, "--json", help="One JSON document on stdout."),
) -> None:
    """Print the key id and public key line of the key that seals your runs.

    Uses audit.signing_key from the inventory when set, else the default key.
    Example: erpops keys show >> docs/keys/alice.pub
    """
    from erpops.audit.keys import load_signer
    from erpops.audit.service import inventory_audit
    from erpops.ui.output import show_result

    OPTIONS.json = json_mode(json)
    audit, _ = inventory_audit()
    signer = load_signer(audit, create=False)
    doc = {"key_id": signer.key_id, "public_key": signer.public_line(), "source": signer.source}
    show_result(doc, lambda d: typer.echo(f"{d['key_id']}\n{d['public_key']}"), as_json=OPTIONS.json)


def register(app: typer.Typer) -> None:
    app.add_typer(keys_app, name="keys")
