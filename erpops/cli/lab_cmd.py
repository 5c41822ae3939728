"""`erpops lab`: the embedded sandbox — up, status, down, load, ledger-check.

Thin: options in, erpops.lab functions, output out. See docs/lab.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from erpops.cli.context import env_name, json_mode

lab_app = typer.Typer(
    name="lab",
    help="A real PostgreSQL primary + replica with Odoo-shaped retail data on this machine (environment `lab`).",
    no_args_is_help=True,
)


def _size(n: int | None) -> str:
    from erpops.units import format_size

    return "?" if n is None else format_size(n)


@lab_app.command("up")
def up(
    scale: float = typer.Option(1.0, "--scale", min=0.001, help="Data volume: 1 is about 50 MB of database and 100 MB of filestore; linear."),
    no_replica: bool = typer.Option(False, "--no-replica", help="Only a primary, no streaming replica."),
    with_redis: bool = typer.Option(False, "--redis", help="Also start a redis-server (role: sessions)."),
    with_s3: bool = typer.Option(False, "--s3", help="Also start a local S3 endpoint (SeaweedFS) and keep the lab's backup repository there."),
    json: bool = typer.Option(False, "--json", help="One JSON document on stdout."),
) -> None:
    """Create and start the lab, or start it again; does nothing if it already runs.

    Example: erpops lab up --scale 0.1 --redis --s3
    """
    from erpops.lab.lifecycle import up as lab_up
    from erpops.lab.status import inspect
    from erpops.ui.output import show_result, warn

    result = lab_up(scale=scale, replica=not no_replica, with_redis=with_redis, with_s3=with_s3)
    for w in result["warnings"]:
        warn(w)
    doc = {"action": result["action"], **_with_s3(inspect(result["state"]), result["state"])}
    show_result(doc, _print_up, as_json=json_mode(json))


def _print_up(doc: dict) -> None:
    from erpops.ui.output import log, ok, warn

    if doc["action"] == "running":
        log("the lab is already running")
    elif doc["action"] == "started":
        log("the lab was stopped; started it again")
    for n in doc["nodes"]:
        if n["state"] != "running":
            warn(f"{n['name']} is {n['state']} (127.0.0.1:{n['port']})")
        elif n["role"] == "primary":
            db = doc["databases"].get(doc["tenant"])
            ok(f"PostgreSQL {doc['pg_version'].split('.')[0]} primary   127.0.0.1:{n['port']}  "
               f"({doc['tenant']}: {_size(db)}, {doc['attachments'] or 0:,} attachments, "
               f"{_size(doc['filestore']['bytes'])} filestore)")
        else:
            ok(f"{n['replication'] or 'disconnected'} replica       127.0.0.1:{n['port']}  lag {_size(n['lag_bytes'])}")
    if doc.get("redis"):
        ok(f"redis (sessions)        {doc['redis']['url']}")
    if doc.get("s3"):
        ok(f"S3 (SeaweedFS)          {doc['s3']['endpoint']}  repository {doc['s3']['repository']}")
    ok('environment "lab" ready — try: erpops lab status')


@lab_app.command("status")
def status(json: bool = typer.Option(False, "--json", help="One JSON document on stdout.")) -> None:
    """Each node's role, port, PID, replication state and lag; database and filestore sizes.

    Example: erpops lab status --json
    """
    from erpops.errors import UsageError
    from erpops.lab import state
    from erpops.lab.status import inspect
    from erpops.ui.output import show_result

    st = state.load()
    if st is None:
        raise UsageError("the lab is not running", hint="run: erpops lab up")
    show_result(_with_s3(inspect(st), st), _print_status, as_json=json_mode(json))


def _with_s3(doc: dict, st) -> dict:
    """Add the S3 endpoint (`lab up --s3`) to what status and up show."""
    if st.s3 is not None:
        from erpops.lab.s3 import describe

        doc["s3"] = describe(st.s3)
    return doc


def _print_status(doc: dict) -> None:
    from rich import box
    from rich.table import Table

    from erpops.ui.output import stdout

    out = stdout()
    out.print(f"lab in {doc['root']} (PostgreSQL {doc['pg_version']}, scale {doc['scale']:g})", markup=False)
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    for col in ("node", "role", "address", "pid", "state", "replication", "lag"):
        table.add_column(col, no_wrap=True)
    for n in doc["nodes"]:
        table.add_row(n["name"], n["role"], f"127.0.0.1:{n['port']}", str(n["pid"] or "-"), n["state"],
                      n["replication"] or "-", _size(n["lag_bytes"]) if n["lag_bytes"] is not None else "-")
    if doc.get("redis"):
        r = doc["redis"]
        table.add_row("redis", r["role"], r["url"].split("//")[1].split("/")[0], str(r["pid"] or "-"),
                      r["state"], "-", "-")
    if doc.get("s3"):
        s = doc["s3"]
        table.add_row("seaweedfs", "s3", (s["endpoint"] or "-").split("//")[-1], str(s["pid"] or "-"),
                      s["state"], "-", "-")
    out.print(table)
    dbs = ", ".join(f"{name} {_size(size)}" for name, size in doc["databases"].items()) or "unknown (primary down)"
    out.print(f"databases: {dbs}")
    fs = doc["filestore"]
    if doc.get("s3"):
        out.print(f"S3 endpoint: {doc['s3']['endpoint']} (path-style), repository {doc['s3']['repository']}",
                  markup=False)
    out.print(f"filestore: {fs['files']:,} files, {_size(fs['bytes'])} in {fs['path']}"
              + (f"; {doc['attachments']:,} attachments" if doc["attachments"] is not None else ""))


@lab_app.command("down")
def down(json: bool = typer.Option(False, "--json", help="One JSON document on stdout.")) -> None:
    """Stop every process the lab started (by PID) and remove the lab directory.

    Example: erpops lab down
    """
    from erpops.lab.lifecycle import down as lab_down
    from erpops.ui.output import log, ok, show_result

    def human(doc: dict) -> None:
        if not doc["stopped"] and not doc["removed"]:
            log("no lab here; nothing to do")
            return
        for p in doc["stopped"]:
            ok(f"stopped {p['name']} (PID {p['pid']})" if p["pid"] else f"{p['name']} was not running")
        ok(f"removed {doc['removed']}")

    show_result(lab_down(), human, as_json=json_mode(json))


@lab_app.command("load")
def load(
    rate: float = typer.Option(20.0, "--rate", min=0.1, help="Transactions per second."),
    duration: str = typer.Option("30s", "--duration", help="How long to run, e.g. 30s, 5m."),
    ledger: Path = typer.Option(..., "--ledger", help="Append one JSON line per committed transaction here."),
    db: Optional[str] = typer.Option(None, "--db", help="Database (default: the environment's first tenant)."),
    env: Optional[str] = typer.Option(None, "-e", "--env", help="Environment (default: lab)."),
    json: bool = typer.Option(False, "--json", help="One JSON summary on stdout."),
) -> None:
    """POS-like writes against the environment's current primary, recorded in a ledger;
    keeps going across a failover.

    Example: erpops lab load --rate 50 --duration 2m --ledger /tmp/ledger.jsonl
    """
    from erpops.errors import UsageError
    from erpops.lab.load import run_load
    from erpops.ui.output import log, ok, show_result
    from erpops.units import parse_duration

    try:
        seconds = parse_duration(duration)
    except ValueError as exc:
        raise UsageError(f"--duration: {exc}") from None
    name = env_name(env)
    summary = run_load(name, rate=rate, duration=seconds, ledger=ledger, dbname=db, on_event=lambda m: log(m))

    def human(s: dict) -> None:
        ok(f"{s['committed']:,} transactions committed and recorded in {s['ledger']} "
           f"({s['rate']:g}/s over {s['elapsed_s']:g}s on {' -> '.join(s['primaries']) or '?'})")
        if s["errors"] or s["reconnects"]:
            log(f"{s['errors']} error(s), {s['reconnects']} reconnect(s), {s['downtime_s']:g}s without a primary")

    show_result(summary, human, as_json=json_mode(json))


@lab_app.command("ledger-check")
def ledger_check(
    ledger: Path = typer.Argument(..., help="A ledger written by `erpops lab load`."),
    db: Optional[str] = typer.Option(None, "--db", help="Check in this database instead of the one in the ledger."),
    env: Optional[str] = typer.Option(None, "-e", "--env", help="Environment (default: lab)."),
    json: bool = typer.Option(False, "--json", help="One JSON document on stdout."),
) -> None:
    """Prove every acknowledged write in the ledger exists in the environment's current primary
    (exit 4 and the missing ids otherwise).

    Example: erpops lab ledger-check /tmp/ledger.jsonl -e lab
    """
    from erpops.errors import VerificationFailed
    from erpops.lab.ledger import check
    from erpops.pg.primary import load_environment
    from erpops.ui.output import emit_json, ok, show_result, stdout

    environment = load_environment(env_name(env))
    try:
        report = check(ledger, environment, dbname=db)
    except VerificationFailed as exc:
        report = getattr(exc, "report", None)
        if report is not None:
            if json_mode(json):
                emit_json({"ok": False, **report})
                raise typer.Exit(exc.exit_code) from None
            for row in report["missing"]:
                stdout().print(f"missing {row}", markup=False)
        raise

    def human(r: dict) -> None:
        ok(f"all {r['rows_checked']:,} rows of {r['transactions']:,} acknowledged transactions are in "
           f"{r['primary']} ({r['environment']})")

    show_result({"ok": True, **report}, human, as_json=json_mode(json))


def register(app: typer.Typer) -> None:
    app.add_typer(lab_app, name="lab", help="The embedded lab: a real primary + replica with retail data (environment `lab`).")
