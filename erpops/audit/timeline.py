"""Read run logs for people: the list of runs and one run's timeline.

These readers do not verify (``erpops audit verify`` does); they show what the
records say, tolerating a damaged line so that a broken log can still be read.
Secrets are already *** in the records: redaction happened before writing.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

from erpops.audit.record import LOG_NAME
from erpops.errors import UsageError

STEP_END = {"step_finished": "ok", "step_failed": "failed", "step_skipped": "skipped"}


def read_records(path: Path) -> list[dict]:
    records = []
    for line in Path(path).read_bytes().split(b"\n"):
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if isinstance(rec, dict) and isinstance(rec.get("data"), dict):
            records.append(rec)
    return records


def _time(ts: str | None) -> datetime | None:
    try:
        return datetime.fromisoformat(ts.replace("Z", "+00:00")) if ts else None
    except ValueError:
        return None


def duration_between(start: str | None, end: str | None) -> float | None:
    a, b = _time(start), _time(end)
    return (b - a).total_seconds() if a and b else None


def find_run(runs_dir: Path, run_id: str) -> Path:
    """The log of ``run_id`` (a unique prefix is enough)."""
    exact = Path(runs_dir) / run_id / LOG_NAME
    if exact.is_file():
        return exact
    matches = sorted(p for p in Path(runs_dir).glob(f"{run_id}*/{LOG_NAME}"))
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise UsageError(f"run id {run_id!r} is ambiguous: " + ", ".join(p.parent.name for p in matches[:5]),
                         hint="give more of the run id")
    from erpops.yamlsrc import suggest

    known = [p.parent.name for p in Path(runs_dir).glob(f"*/{LOG_NAME}")]
    close = suggest(run_id, known)
    raise UsageError(f"no run {run_id!r} in {runs_dir}",
                     hint=f"did you mean {close}?" if close else "list the runs with: erpops audit list")


def step_name(data: dict) -> str:
    return str(data.get("step") or data.get("step_id") or data.get("id") or "")


def summarize(path: Path) -> dict:
    """One row of ``erpops audit list``."""
    records = read_records(path)
    started = next((r for r in records if r["type"] == "run_started"), None)
    finished = next((r for r in reversed(records) if r["type"] == "run_finished"), None)
    data = started["data"] if started else {}
    last = records[-1] if records else None
    status = (finished or {}).get("data", {}).get("status") if finished else ("running or crashed" if records else "empty")
    return {
        "run_id": (started or last or {}).get("run_id") or Path(path).parent.name,
        "runbook": data.get("runbook"),
        "environment": data.get("environment"),
        "operator": data.get("operator"),
        "tabletop": bool(data.get("tabletop")),
        "started": started["ts"] if started else None,
        "duration_s": duration_between(started and started["ts"], finished and finished["ts"]),
        "status": status,
        "sealed": bool(last and last["type"] == "seal"),
        "records": len(records),
        "path": str(path),
    }


def timeline(path: Path) -> dict:
    """Who ran what, when each step started and ended, and how it ended."""
    records = read_records(path)
    if not records:
        raise UsageError(f"{path} holds no readable audit record", hint=f"check it with: erpops audit verify {path}")
    head = summarize(path)
    start_ts = records[0]["ts"]
    steps: dict[str, dict] = {}
    events = []
    for rec in records:
        data, kind = rec["data"], rec["type"]
        name = step_name(data)
        if kind == "step_started":
            steps.setdefault(name, {"step": name, "started": rec["ts"], "attempts": 1, "result": "running"})
        elif kind == "step_retried" and name in steps:
            steps[name]["attempts"] += 1
        elif kind in STEP_END:
            step = steps.setdefault(name, {"step": name, "started": None, "attempts": 1})
            step.update(result=STEP_END[kind], ended=rec["ts"],
                        duration_s=duration_between(step.get("started"), rec["ts"]))
            if kind == "step_failed":
                step["error"] = data.get("error") or data.get("message")
        events.append({"seq": rec["seq"], "ts": rec["ts"], "offset_s": duration_between(start_ts, rec["ts"]),
                       "type": kind, "step": name or None, "detail": describe(kind, data)})
    started = next((r["data"] for r in records if r["type"] == "run_started"), {})
    seals = [r["data"].get("key_id") for r in records if r["type"] == "seal"]
    return {**head, "operator_os_user": started.get("os_user"), "host": started.get("host"),
            "runbook_digest": started.get("runbook_digest"), "inputs": started.get("inputs"),
            "inventory_digest": started.get("inventory_digest"), "erpops_version": started.get("erpops_version"),
            "sealed_by": seals, "steps": list(steps.values()), "events": events}


def describe(kind: str, data: dict) -> str:
    """A short human phrase for one record."""
    if kind == "run_started":
        where = f" on {data['environment']}" if data.get("environment") else ""
        return f"{data.get('operator')} started {data.get('runbook') or 'a run'}{where}" + (
            " (tabletop)" if data.get("tabletop") else "")
    if kind == "gate":
        who = data.get("by") or data.get("confirmed_by") or data.get("who") or data.get("operator") or "?"
        text = f"{data.get('decision') or 'confirmed'} by {who}"
        typed = data.get("typed") or data.get("answer")
        text += f", typed {typed!r}" if typed is not None else ""
        return text + (f" — {data['message']}" if data.get("message") else "")
    if kind == "undo":
        return f"undo {data.get('uses') or ''} {data.get('status') or ''}".strip() + (
            f": {data['error']}" if data.get("error") else "")
    if kind == "run_resumed":
        return f"{data.get('operator') or '?'} resumed from step {data.get('from_step') or '?'}"
    if kind == "step_started":
        attempt = data.get("attempt")
        return f"{data.get('uses') or ''}" + (f" (attempt {attempt})" if attempt not in (None, 1) else "")
    if kind == "step_finished":
        return "ok" + (" (simulated)" if data.get("simulated") else "")
    if kind == "step_failed":
        return str(data.get("error") or data.get("message") or "failed")
    if kind == "step_retried":
        return f"attempt {data.get('attempt', '?')}: {data.get('error') or data.get('reason') or ''}".rstrip(": ")
    if kind == "run_finished":
        return f"status {data.get('status')}"
    if kind == "seal":
        return f"sealed by {data.get('key_id')}"
    if kind == "step_output":
        text = data.get("line") or data.get("text") or data.get("output") or ""
        return str(text)[:120]
    shown = {k: v for k, v in data.items() if k not in ("step", "step_id", "id")}
    return json.dumps(shown, ensure_ascii=False)[:120] if shown else ""
