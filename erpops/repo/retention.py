"""Retention: which backups to keep, and which rule keeps each one. Pure logic.

The semantics are restic's ``forget`` policy (also what pgBackRest's and
borg's users expect), applied to the backups of one group — erpops groups
by environment and tenant, so ``keep_last: 7`` means seven backups of each
tenant, whatever the number of tenants:

- ``keep_last N``: the N newest backups.
- ``keep_hourly/daily/weekly/monthly/yearly N``: walking from the newest
  backup to the oldest, the newest backup of each hour/day/ISO week/month/year
  that *has* backups, for the N newest such periods (a week without backups
  does not use up a slot). Periods are taken in UTC.
- ``keep_within D``: every backup taken within D before the newest backup
  (relative to the newest backup, not to now, so that backups stopping for a
  while never lets retention delete everything).
- Whatever the rules say, the newest *verified* backup is kept.
- No rule at all means no retention policy: everything is kept.

A backup may be kept by several rules; all of them are named.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

# (rule name, how a time maps to its period, how the period is shown)
_PERIODS = (
    ("hourly", lambda t: (t.year, t.month, t.day, t.hour), lambda t: f"{t:%Y-%m-%dT%HZ}"),
    ("daily", lambda t: (t.year, t.month, t.day), lambda t: f"{t:%Y-%m-%d}"),
    ("weekly", lambda t: t.isocalendar()[:2], lambda t: "{}-W{:02d}".format(*t.isocalendar()[:2])),
    ("monthly", lambda t: (t.year, t.month), lambda t: f"{t:%Y-%m}"),
    ("yearly", lambda t: t.year, lambda t: f"{t:%Y}"),
)
NEWEST_VERIFIED = "newest verified"
NO_POLICY = "no retention policy"


@dataclass(frozen=True)
class Policy:
    keep_last: int | None = None
    keep_hourly: int | None = None
    keep_daily: int | None = None
    keep_weekly: int | None = None
    keep_monthly: int | None = None
    keep_yearly: int | None = None
    keep_within: float | None = None  # seconds

    def __post_init__(self):
        for name, value in self.__dict__.items():
            if value is not None and value < 0:
                raise ValueError(f"{name} must not be negative")

    @property
    def empty(self) -> bool:
        return all(value is None for value in self.__dict__.values())

    @classmethod
    def from_config(cls, retention) -> "Policy":
        """From the inventory's ``retention:`` (a model or a dict; None: no policy)."""
        if retention is None:
            return cls()
        get = retention.get if isinstance(retention, dict) else lambda name: getattr(retention, name, None)
        within = get("keep_within")
        if within is not None and not isinstance(within, (int, float)):
            from erpops.units import parse_duration

            within = float(parse_duration(str(within)))
        return cls(get("keep_last"), get("keep_hourly"), get("keep_daily"), get("keep_weekly"),
                   get("keep_monthly"), get("keep_yearly"), float(within) if within is not None else None)

    def describe(self) -> str:
        from erpops.units import format_duration

        parts = [f"{name} {value}" for name, value in self.__dict__.items() if value is not None and name != "keep_within"]
        if self.keep_within is not None:
            parts.append(f"keep_within {format_duration(self.keep_within)}")
        return ", ".join(parts) or "none (everything is kept)"


@dataclass(frozen=True)
class Point:
    """What retention needs to know of a backup."""

    backup_id: str
    time: datetime  # aware; the backup's point in time
    verified: bool = False


@dataclass
class Decision:
    point: Point
    reasons: list[str] = field(default_factory=list)

    @property
    def keep(self) -> bool:
        return bool(self.reasons)


def _utc(t: datetime) -> datetime:
    if t.tzinfo is None:  # erpops keeps UTC internally; a naive time is UTC
        return t.replace(tzinfo=timezone.utc)
    return t.astimezone(timezone.utc)


def decide(points: list[Point], policy: Policy) -> list[Decision]:
    """One decision per point, newest first."""
    ordered = sorted(points, key=lambda p: (_utc(p.time), p.backup_id), reverse=True)
    decisions = [Decision(p) for p in ordered]
    if policy.empty:
        for d in decisions:
            d.reasons.append(NO_POLICY)
        return decisions
    if policy.keep_last:
        for n, d in enumerate(decisions[: policy.keep_last], start=1):
            d.reasons.append(f"last {n}/{policy.keep_last}")
    for name, period_of, show in _PERIODS:
        wanted = getattr(policy, f"keep_{name}")
        if not wanted:
            continue
        seen = []
        for d in decisions:
            period = period_of(_utc(d.point.time))
            if period in seen:
                continue
            seen.append(period)
            if len(seen) > wanted:
                break
            d.reasons.append(f"{name} {show(_utc(d.point.time))}")
    if policy.keep_within is not None and decisions:
        since = _utc(decisions[0].point.time) - timedelta(seconds=policy.keep_within)
        from erpops.units import format_duration

        for d in decisions:
            if _utc(d.point.time) >= since:
                d.reasons.append(f"within {format_duration(policy.keep_within)}")
    newest_verified = next((d for d in decisions if d.point.verified), None)
    if newest_verified is not None:
        newest_verified.reasons.append(NEWEST_VERIFIED)
    return decisions
