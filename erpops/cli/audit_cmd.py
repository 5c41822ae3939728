"""``erpops audit verify|list|show``: check and read the signed run logs."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from erpops.cli.context import OPTIONS, json_mode

audit_app = typer.Typer(
    help="Verify and read the signed, hash-chained run logs (docs/audit-log.md).",
    no_args_is_help=True,
)

RUNS_DIR_HELP = "Read runs from this directory (an auditor's copy) instead of this machine's state dir."


@audit_app.command("verify")
def verify(
    target: Optional[str] = typer.Argument(None, help="RUN_ID, a run directory or an audit.jsonl file (default: the latest run)."),
    all_runs: bool = typer.Option(False, "--all", help="Every run, and the chain from run to run."),
    runs_dir: Optional[Path] = typer.Option(None, "--runs-dir", help=RUNS_DIR_HELP),
    trusted_key: Optional[List[Path]] = typer.Option(None, "--trusted-key", help="Also trust this public key file (repeatable)."),
    strict: bool = typer.Option(False, "--strict", help="Treat incomplete (unsealed) runs as a failure too."),
    json: bool = typer.Option(False, "--json", help="One JSON document with every finding on stdout."),
) -> None:
    """Check hashes, links, seals, key trust and the run-to-run chain; name what broke.

    Exit 0 when valid (incomplete runs are warnings unless --strict), 4 when a log
    was altered, truncated, reordered, deleted, or sealed by an untrusted key.
    Example: erpops audit verify --all --runs-dir ./copy --trusted-key alice.pub
    """
    from erpops.audit.service import verify as run_verify
    from erpops.errors import ExitCode
    from erpops.ui.output import show_result

    OPTIONS.json = json_mode(json)
    result = run_verify(target, all_runs=all_runs, runs_dir=runs_dir, trusted_key_files=trusted_key or [])
    failed = not result.valid or (strict and bool(result.incomplete))
    doc = result.to_dict()
    doc["strict"] = strict
    show_result(doc, lambda _: _render_verification(result, strict), as_json=OPTIONS.json)
    if failed:
        raise typer.Exit(ExitCode.VERIFY)


def _render_verification(result, strict: bool) -> None:
    ok_runs = [r for r in result.reports if r.status == "ok"]
    records = sum(r.records for r in result.reports)
    if len(result.reports) == 1 and not result.chain_findings:
        report = result.reports[0]
        if report.status == "ok":
            keys = ", ".join(sorted(set(report.seal_keys)))
            typer.echo(f"✓ run {report.run_id}: {report.records} records, hashes and links intact, sealed by {keys}")
    elif ok_runs and not result.chain_errors:
        first = min((r.ts for r in result.reports if r.ts), default="?")
        typer.echo(f"✓ {len(ok_runs):,} runs, {records:,} records, chain intact from {first}")
    elif ok_runs:
        n = len(ok_runs)
        typer.echo(f"✓ {n:,} run{'s' if n != 1 else ''} intact ({sum(r.records for r in ok_runs):,} records)")
    for report in result.reports:
        if report.status == "ok":
            continue
        mark = "✗" if report.status == "tampered" else "!"
        messages = [f.message for f in report.findings]
        typer.echo(f"{mark} run {report.run_id}: " + "; ".join(messages))
    for finding in result.chain_findings:
        typer.echo(("✗ " if finding.severity == "error" else "! ") + finding.message)
    bad = len(result.tampered)
    if bad:
        typer.echo(f"{bad} run{'s' if bad != 1 else ''} failed verification")
    if result.chain_errors:
        n = len(result.chain_errors)
        typer.echo(f"{n} break{'s' if n != 1 else ''} in the chain between runs")
    if result.incomplete:
        n = len(result.incomplete)
        typer.echo(f"{n} run{'s' if n != 1 else ''} incomplete (unsealed, not tampered)"
                   + ("; --strict makes this a failure" if strict else ""))


@audit_app.command("list")
def list_(
    runs_dir: Optional[Path] = typer.Option(None, "--runs-dir", help=RUNS_DIR_HELP),
    json: bool = typer.Option(False, "--json", help="One JSON document on stdout."),
) -> None:
    """The recorded runs: id, runbook, environment, operator, start, duration, status, sealed.

    Example: erpops audit list
    """
    from erpops.audit.service import list_runs
    from erpops.ui.output import show_result

    OPTIONS.json = json_mode(json)
    rows = list_runs(runs_dir)
    show_result({"runs": rows}, lambda doc: _render_list(doc["runs"]), as_json=OPTIONS.json)


def _duration(seconds) -> str:
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.1f}s"
    seconds = int(round(seconds))
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m" if seconds >= 3600 else f"{seconds // 60}m{seconds % 60:02d}s"


def _render_list(rows: list[dict]) -> None:
    if not rows:
        typer.echo("no runs recorded yet")
        return
    # Plain aligned columns, never wrapped or truncated: run ids must stay copyable and greppable.
    header = ("RUN", "RUNBOOK", "ENV", "OPERATOR", "STARTED", "DURATION", "STATUS", "SEALED")
    table = [header] + [(
        r["run_id"], r["runbook"] or "-", r["environment"] or "-", r["operator"] or "-",
        (r["started"] or "-")[:19] + ("Z" if r["started"] else ""), _duration(r["duration_s"]),
        (r["status"] or "-") + (" (tabletop)" if r["tabletop"] else ""), "yes" if r["sealed"] else "NO")
        for r in rows]
    widths = [max(len(str(row[i])) for row in table) for i in range(len(header))]
    for row in table:
        typer.echo("  ".join(str(cell).ljust(w) for cell, w in zip(row, widths)).rstrip())


@audit_app.command("show")
def show(
    run_id: str = typer.Argument(..., help="RUN_ID (a unique prefix is enough), a run directory or an audit.jsonl file."),
    runs_dir: Optional[Path] = typer.Option(None, "--runs-dir", help=RUNS_DIR_HELP),
    json: bool = typer.Option(False, "--json", help="One JSON document on stdout."),
) -> None:
    """One run's timeline: who ran which runbook (digest, inputs), each step's start, end and result.

    Secrets appear as ***: they were redacted before the log was written.
    Example: erpops audit show 20261203T101502Z-backup
    """
    from erpops.audit.service import show_run
    from erpops.ui.output import show_result

    OPTIONS.json = json_mode(json)
    show_result(show_run(run_id, runs_dir), _render_timeline, as_json=OPTIONS.json)


def _render_timeline(t: dict) -> None:
    import json as _json

    lines = [
        f"run       {t['run_id']}" + ("  [tabletop]" if t["tabletop"] else ""),
        f"runbook   {t['runbook'] or '-'}  digest {t['runbook_digest'] or '-'}",
        f"who       {t['operator'] or '-'} (os user {t['operator_os_user'] or '-'} on {t['host'] or '-'})",
        f"where     environment {t['environment'] or '-'}  inventory digest {t['inventory_digest'] or '-'}",
        f"inputs    {_json.dumps(t['inputs'], ensure_ascii=False) if t['inputs'] is not None else '-'}",
        f"when      {t['started'] or '-'}  took {_duration(t['duration_s'])}",
        f"result    {t['status']}  " + (f"sealed by {', '.join(k for k in t['sealed_by'] if k)}" if t["sealed"] else "NOT SEALED"),
        "",
    ]
    if t["steps"]:
        lines.append("steps")
        for s in t["steps"]:
            extra = f"  {s['attempts']} attempts" if s.get("attempts", 1) > 1 else ""
            error = f"  — {s['error']}" if s.get("error") else ""
            lines.append(f"  {s['step']:<20} {s.get('started') or '-':<28} {_duration(s.get('duration_s')):>8}  "
                         f"{s.get('result', '-')}{extra}{error}")
        lines.append("")
    lines.append("events")
    for e in t["events"]:
        offset = f"+{_duration(e['offset_s'])}" if e["offset_s"] is not None else ""
        step = f" [{e['step']}]" if e["step"] else ""
        lines.append(f"  {e['seq']:>4} {offset:>9}  {e['type']:<14}{step} {e['detail']}".rstrip())
    typer.echo("\n".join(lines))


def register(app: typer.Typer) -> None:
    app.add_typer(audit_app, name="audit")
