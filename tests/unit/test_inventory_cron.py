"""Cron expressions of recurring freeze windows."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest

from erpops.config.cron import parse_cron


def test_last_day_of_the_month():
    cron = parse_cron("0 18 L * *")
    assert cron.matches_day(date(2027, 2, 28)) and not cron.matches_day(date(2027, 2, 27))
    assert cron.matches_day(date(2028, 2, 29)) and not cron.matches_day(date(2028, 2, 28))  # leap year
    assert cron.last_fire(datetime(2027, 3, 1, 9, 0), timedelta(days=2)) == datetime(2027, 2, 28, 18, 0)


def test_lists_ranges_steps_and_names():
    cron = parse_cron("*/15 8-18/2 * jan-mar MON-FRI")
    assert cron.minutes == {0, 15, 30, 45}
    assert cron.hours == {8, 10, 12, 14, 16, 18}
    assert cron.months == {1, 2, 3}
    assert cron.weekdays == {1, 2, 3, 4, 5}
    assert cron.matches_day(date(2027, 1, 4))  # a Monday
    assert not cron.matches_day(date(2027, 1, 3))  # a Sunday
    assert not cron.matches_day(date(2027, 4, 5))  # April


def test_sunday_is_0_and_7():
    assert parse_cron("0 0 * * 7").weekdays == {0} == parse_cron("0 0 * * sun").weekdays


def test_both_day_fields_restricted_means_either():
    cron = parse_cron("0 0 1 * mon")  # the 1st, and every Monday (classic cron)
    assert cron.matches_day(date(2027, 1, 1))  # a Friday, the 1st
    assert cron.matches_day(date(2027, 1, 4))  # a Monday
    assert not cron.matches_day(date(2027, 1, 5))


def test_last_fire_respects_the_horizon():
    cron = parse_cron("30 2 * * *")
    assert cron.last_fire(datetime(2027, 1, 2, 2, 29), timedelta(hours=24)) == datetime(2027, 1, 1, 2, 30)
    assert cron.last_fire(datetime(2027, 1, 2, 2, 29), timedelta(hours=23)) is None
    assert cron.last_fire(datetime(2027, 1, 2, 2, 30), timedelta(0)) == datetime(2027, 1, 2, 2, 30)


@pytest.mark.parametrize("bad, fragment", [
    ("0 18 L *", "5 fields"), ("60 * * * *", "minute field: 60 is outside 0-59"),
    ("* * 0 * *", "day of month field: 0 is outside 1-31"), ("* * * 13 *", "month field: 13"),
    ("* * * * 8", "day of week field: 8"), ("5-1 * * * *", "runs backwards"), ("*/0 * * * *", "step"),
    ("* * * foo *", "not a number or a name"), ("a b c d e", "minute field"), ("1,,2 * * * *", "minute field"),
])
def test_bad_expressions_say_which_field(bad, fragment):
    with pytest.raises(ValueError, match=fragment):
        parse_cron(bad)
