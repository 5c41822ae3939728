"""Five-field cron expressions, enough for recurring freeze windows.

``minute hour day-of-month month day-of-week`` with ``*``, lists (``1,15``),
ranges (``1-5``), steps (``*/15``, ``8-18/2``), month and weekday names
(``JAN``, ``MON``) and ``L`` (last day of the month) in the day-of-month field,
as in ``0 18 L * *`` ("18:00 on the last day of every month"). As in classic
cron, when both day fields are restricted a day matches if either matches.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

_MONTHS = {m.lower(): i for i, m in enumerate(calendar.month_abbr) if m}
_DAYS = {"sun": 0, "mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6}
_FIELDS = (("minute", 0, 59, {}), ("hour", 0, 23, {}), ("day of month", 1, 31, {}),
           ("month", 1, 12, _MONTHS), ("day of week", 0, 7, _DAYS))
_ITEM = re.compile(r"^(?P<range>\*|(?P<a>[0-9a-z]+)(?:-(?P<b>[0-9a-z]+))?)(?:/(?P<step>\d+))?$")


@dataclass(frozen=True)
class Cron:
    text: str
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    last_day: bool  # "L" in the day-of-month field
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday
    any_day: bool  # day-of-month is "*"
    any_weekday: bool  # day-of-week is "*"

    def matches_day(self, d: date) -> bool:
        if d.month not in self.months:
            return False
        dom = d.day in self.days or (self.last_day and d.day == calendar.monthrange(d.year, d.month)[1])
        dow = d.isoweekday() % 7 in self.weekdays
        if self.any_day or self.any_weekday:
            return dom and dow
        return dom or dow

    def last_fire(self, at: datetime, horizon: timedelta) -> datetime | None:
        """The latest firing time <= ``at`` (both naive, in the same zone), looking
        back at most ``horizon``; None if there is none in that span."""
        earliest = at - horizon
        day = at.date()
        while day >= earliest.date():
            if self.matches_day(day):
                for hour in sorted(self.hours, reverse=True):
                    for minute in sorted(self.minutes, reverse=True):
                        fire = datetime.combine(day, time(hour, minute))
                        if fire <= at:
                            return fire if fire >= earliest else None
            day -= timedelta(days=1)
        return None


def parse_cron(text: str) -> Cron:
    """Parse a cron expression; ValueError names the field that is wrong."""
    if not isinstance(text, str):
        raise ValueError(f"expected a cron expression like \"0 18 L * *\", got {text!r}")
    fields = text.split()
    if len(fields) != 5:
        raise ValueError(f"a cron expression has 5 fields (minute hour day-of-month month day-of-week), "
                         f"got {len(fields)} in {text!r}")
    values: list[frozenset[int]] = []
    last_day = False
    for (label, low, high, names), field in zip(_FIELDS, fields):
        items = set()
        for item in field.lower().split(","):
            if label == "day of month" and item == "l":
                last_day = True
                continue
            items |= _parse_item(item, label, low, high, names, text)
        values.append(frozenset(items))
    weekdays = frozenset(d % 7 for d in values[4])  # 7 is Sunday too
    return Cron(text, values[0], values[1], values[2], last_day, values[3], weekdays,
                any_day=fields[2] == "*", any_weekday=fields[4] == "*")


def _parse_item(item: str, label: str, low: int, high: int, names: dict, text: str) -> set[int]:
    m = _ITEM.match(item)
    if not m:
        raise ValueError(f"cron {label} field: cannot read {item!r} in {text!r}")

    def number(token: str) -> int:
        value = names.get(token[:3]) if token.isalpha() and token[:3] in names else None
        if value is None:
            if not token.isdigit():
                raise ValueError(f"cron {label} field: {token!r} is not a number or a name in {text!r}")
            value = int(token)
        if not low <= value <= high:
            raise ValueError(f"cron {label} field: {value} is outside {low}-{high} in {text!r}")
        return value

    if m["range"] == "*":
        start, end = low, high
    else:
        start = number(m["a"])
        end = number(m["b"]) if m["b"] else (high if m["step"] else start)
        if end < start:
            raise ValueError(f"cron {label} field: range {item!r} runs backwards in {text!r}")
    step = int(m["step"]) if m["step"] else 1
    if step < 1:
        raise ValueError(f"cron {label} field: step must be at least 1 in {text!r}")
    return set(range(start, end + 1, step))
