"""Verify many runs together: the run-to-run chain and the fate of unsealed logs.

Every ``run_started`` names the previous run's seal (``prev_run_seal``,
``prev_run_id``) and any run found left unsealed (``previous_run_unsealed``).
From that:

- a run whose named seal matches no run here → that run was deleted (or its
  seal removed);
- a run recorded as left unsealed that is missing → deleted;
- a log that stops without a seal is *incomplete* when a later run recorded it
  as unsealed, when its open marker is still in the local chain state, or when
  it is the latest run and nothing says otherwise; it is *tampered* (truncated
  tail) when later runs started without recording it, or when the local chain
  head or the missing open marker says it was sealed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from erpops.audit.chain import ChainState
from erpops.audit.keys import TrustedKey
from erpops.audit.record import LOG_NAME
from erpops.audit.verify import ERROR, INCOMPLETE, WARNING, Finding, RunReport, verify_file


@dataclass
class Verification:
    reports: list[RunReport]
    chain_findings: list[Finding] = field(default_factory=list)

    @property
    def tampered(self) -> list[RunReport]:
        return [r for r in self.reports if r.status == "tampered"]

    @property
    def incomplete(self) -> list[RunReport]:
        return [r for r in self.reports if r.status == "incomplete"]

    @property
    def chain_errors(self) -> list[Finding]:
        return [f for f in self.chain_findings if f.severity == ERROR]

    @property
    def valid(self) -> bool:
        return not self.tampered and not self.chain_errors

    def to_dict(self) -> dict:
        return {"valid": self.valid, "runs": len(self.reports),
                "records": sum(r.records for r in self.reports),
                "tampered": [r.run_id for r in self.tampered],
                "incomplete": [r.run_id for r in self.incomplete],
                "chain_findings": [f.to_dict() for f in self.chain_findings],
                "reports": [r.to_dict() for r in self.reports]}


def run_logs(runs_dir: Path) -> list[Path]:
    """Every run log under ``runs_dir`` (one ``<run_id>/audit.jsonl`` each)."""
    if not Path(runs_dir).is_dir():
        return []
    return sorted(p for p in Path(runs_dir).glob(f"*/{LOG_NAME}") if p.is_file())


def _started(report: RunReport) -> dict:
    return (report.started or {}).get("data") or {}


def verify_runs(runs_dir: Path, trusted: dict[str, TrustedKey], *, chain: ChainState | None = None,
                only: set[str] | None = None, extra_logs: list[Path] = ()) -> Verification:
    """Verify every run in ``runs_dir`` (plus ``extra_logs``); ``chain`` is the local
    chain state when ``runs_dir`` is this machine's, None for an offline copy.
    With ``only``, the other runs serve as context and only the named runs are reported."""
    reports = [verify_file(p, trusted) for p in [*run_logs(runs_dir), *extra_logs]]
    by_id = {r.run_id: r for r in reports}
    ids_by_dir = {r.path.parent.name: r.run_id for r in reports}
    seal_owner = {h: r.run_id for r in reports for h in r.seal_hashes}
    chain_findings: list[Finding] = []
    dirs_by_id: dict[str, list[str]] = {}
    for r in reports:
        dirs_by_id.setdefault(r.run_id, []).append(str(r.path.parent))
    for rid, dirs in dirs_by_id.items():
        if len(dirs) > 1:  # one run's log copied under another name: a replayed run
            chain_findings.append(Finding(
                "duplicate_run", f"run {rid} appears {len(dirs)} times ({', '.join(dirs[:3])}): a copied log",
                rid, other_run=rid))

    recorded_unsealed: dict[str, str] = {}
    for report in reports:
        data = _started(report)
        for unsealed in [data.get("previous_run_unsealed"), *(data.get("other_unsealed_runs") or [])]:
            if not unsealed:
                continue
            recorded_unsealed.setdefault(unsealed, report.run_id)
            if unsealed not in by_id and unsealed not in ids_by_dir:
                chain_findings.append(Finding(
                    "missing_run", f"run {unsealed} is missing: run {report.run_id} recorded it as left "
                    "unsealed, and its log is gone (deleted)", report.run_id, seq=0, other_run=unsealed))
        seal = data.get("prev_run_seal")
        if seal and seal not in seal_owner:
            named = data.get("prev_run_id") or "?"
            if named in by_id:  # the run is there but its named seal is not: its tail was cut or re-sealed
                lost = by_id[named]
                lost.findings.append(Finding(
                    "truncated_tail", f"truncated tail: run {report.run_id} names this run's seal {seal[:16]}…, "
                    f"which is no longer in its log (cut after record {lost.records - 1}, or re-sealed)",
                    named, seq=lost.records, line=lost.records + 1, other_run=report.run_id))
                continue
            what = f"run {named} is missing (deleted)"
            chain_findings.append(Finding(
                "chain_break", f"chain broken before run {report.run_id}: it names the seal {seal[:16]}… of "
                f"run {named}, which matches no run here: {what}", report.run_id, seq=0, other_run=named))

    if chain is not None:
        named = {f.other_run for f in chain_findings}  # one finding per missing run is enough
        chain_findings.extend(f for f in _local_state_findings(chain, by_id, ids_by_dir) if f.other_run not in named)
    geneses = list({r.run_id: r for r in reports if r.started and not _started(r).get("prev_run_seal")}.values())
    if len(geneses) > 1:
        later = sorted(geneses, key=lambda r: r.ts)[1:]
        chain_findings.append(Finding(
            "new_chain", f"{len(later)} run(s) start a new chain (no previous seal): "
            + ", ".join(r.run_id for r in later[:5]) + " — logs from another machine or a reset state dir",
            later[0].run_id, severity=WARNING))

    head = chain.head() if chain is not None else None
    for report in reports:
        _classify_unsealed(report, reports, recorded_unsealed, chain)
        if (head and head.get("run_id") == report.run_id and report.ends_sealed
                and head.get("seal_hash") not in report.seal_hashes):
            # A resumed run holds several seals: cut after an earlier one, it still ends sealed.
            report.findings.append(Finding(
                "truncated_tail", f"truncated tail: the log ends after record {report.records - 1}, but the "
                f"local chain head names a later seal {head['seal_hash'][:16]}… of this run",
                report.run_id, seq=report.records, line=report.records + 1))
        if report.follow_broken and report.status == "tampered":
            a, b = report.follow_broken
            report.findings.append(Finding(
                "follows_break", f"records {a}–{b} follow a broken link" if a != b
                else f"record {a} follows a broken link", report.run_id, seq=a, severity=WARNING))

    if only is not None:
        reports = [r for r in reports if r.run_id in only or r.path.parent.name in only]
        chain_findings = [f for f in chain_findings if f.run_id in only or f.other_run in only]
    return Verification(sorted(reports, key=lambda r: (r.ts, r.run_id)), chain_findings)


def _local_state_findings(chain: ChainState, by_id: dict, ids_by_dir: dict) -> list[Finding]:
    findings = []
    head = chain.head()
    if head and head.get("run_id") not in by_id and head.get("run_id") not in ids_by_dir:
        findings.append(Finding(
            "missing_run", f"run {head['run_id']} is missing: the local chain head names it as the last "
            "sealed run, and its log is gone (deleted)", head["run_id"], other_run=head["run_id"]))
    for run in chain.open_runs():
        if run.run_id not in by_id and run.run_id not in ids_by_dir:
            findings.append(Finding(
                "missing_run", f"run {run.run_id} is missing: it was started (open marker in "
                f"{chain.open_dir}) and its log is gone", run.run_id, other_run=run.run_id))
    return findings


def _classify_unsealed(report: RunReport, reports: list[RunReport], recorded: dict[str, str],
                       chain: ChainState | None) -> None:
    if any(f.kind == "truncated_tail" for f in report.findings):
        return  # a later run already showed that this log lost its seal
    if report.ends_sealed:
        if report.partial_tail:
            report.findings.append(Finding(
                "altered", f"bytes after the seal at line {report.records + 1} (appended or altered)",
                report.run_id, seq=report.records, line=report.records + 1))
        return
    last_seq = report.records - 1
    where = f"after record {last_seq}" if report.records else "before its first record"
    cut = " and its last line is cut short" if report.partial_tail else ""
    recorder = recorded.get(report.run_id) or recorded.get(report.path.parent.name)
    reason = None
    if recorder:
        reason = f"recorded as left unsealed by run {recorder}"
    elif chain is not None and any(r.run_id == report.run_id for r in chain.open_runs()):
        alive = any(r.run_id == report.run_id and r.alive() for r in chain.open_runs())
        reason = "still running" if alive else "left unsealed (its process is gone; the next run will record it)"
    evidence = None
    if reason is None:
        later = [r for r in reports if r.started and report.ts and r.ts > report.ts and r is not report]
        head = chain.head() if chain is not None else None
        if head and head.get("run_id") == report.run_id:
            evidence = "the local chain head names this run's seal"
        elif later:
            evidence = f"later run {min(later, key=lambda r: r.ts).run_id} did not record it as unsealed"
        elif chain is not None and report.started:
            evidence = "the local chain state shows it was sealed (no open marker)"
        elif report.partial_tail:
            evidence = "no later run or local state explains a cut line"
    if evidence:
        report.findings.append(Finding(
            "truncated_tail", f"truncated tail: the log ends {where} without its seal{cut}, yet {evidence}",
            report.run_id, seq=report.records, line=report.records + 1))
    else:
        report.findings.append(Finding(
            "unsealed", f"incomplete: the log ends {where} without a seal{cut} — {reason or 'the latest run, not sealed (crashed or still running)'}",
            report.run_id, seq=report.records, severity=INCOMPLETE))
