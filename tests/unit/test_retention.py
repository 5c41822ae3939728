"""Retention rules: which backups are kept and by which rule (restic/pgBackRest-like)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from hypothesis import given, settings
from hypothesis import strategies as st

from erpops.repo.retention import NEWEST_VERIFIED, NO_POLICY, Point, Policy, decide

T0 = datetime(2026, 12, 3, 2, 0, 11, tzinfo=timezone.utc)  # a Thursday


def nightly(days: int, *, start: datetime = T0, verified=()) -> list[Point]:
    """One backup per night going back ``days`` nights, newest first."""
    return [Point(f"b{i:03d}", start - timedelta(days=i), i in verified) for i in range(days)]


def kept(decisions) -> dict[str, list[str]]:
    return {d.point.backup_id: d.reasons for d in decisions if d.keep}


def test_keep_last_keeps_the_n_newest_and_names_their_rank():
    result = kept(decide(nightly(10), Policy(keep_last=3)))
    assert result == {"b000": ["last 1/3"], "b001": ["last 2/3"], "b002": ["last 3/3"]}


def test_decisions_come_newest_first_whatever_the_input_order():
    points = nightly(5)
    assert [d.point.backup_id for d in decide(list(reversed(points)), Policy(keep_last=1))] == [p.backup_id for p in points]


def test_keep_daily_keeps_the_newest_backup_of_each_day():
    points = [Point("d1-late", T0.replace(hour=23), False), Point("d1-early", T0.replace(hour=1), False),
              Point("d0-late", T0.replace(hour=20) - timedelta(days=1), False),
              Point("d0-early", T0.replace(hour=3) - timedelta(days=1), False)]
    assert kept(decide(points, Policy(keep_daily=2))) == {"d1-late": ["daily 2026-12-03"], "d0-late": ["daily 2026-12-02"]}


def test_days_without_backups_do_not_use_up_daily_slots():
    # backups on the 3rd, the 1st and Nov 25th: three days that have backups
    points = [Point("a", T0, False), Point("b", T0 - timedelta(days=2), False), Point("c", T0 - timedelta(days=8), False),
              Point("d", T0 - timedelta(days=9), False)]
    assert set(kept(decide(points, Policy(keep_daily=3)))) == {"a", "b", "c"}


def test_weekly_uses_iso_weeks_and_keeps_the_newest_of_each():
    points = nightly(21)  # Dec 3 (Thu, W49) back to Nov 13
    result = kept(decide(points, Policy(keep_weekly=3)))
    # the newest of W49 (Dec 3), of W48 (Sun Nov 29) and of W47 (Sun Nov 22)
    assert result == {"b000": ["weekly 2026-W49"], "b004": ["weekly 2026-W48"], "b011": ["weekly 2026-W47"]}


def test_monthly_and_yearly_keep_the_last_backup_of_each_period():
    points = [Point(f"m{i}", datetime(2026, 12 - i, 28, tzinfo=timezone.utc), False) for i in range(6)]
    points += [Point("y2025", datetime(2025, 12, 31, tzinfo=timezone.utc), False),
               Point("y2025-early", datetime(2025, 6, 1, tzinfo=timezone.utc), False)]
    assert kept(decide(points, Policy(keep_monthly=3))) == {"m0": ["monthly 2026-12"], "m1": ["monthly 2026-11"],
                                                           "m2": ["monthly 2026-10"]}
    assert kept(decide(points, Policy(keep_yearly=2))) == {"m0": ["yearly 2026"], "y2025": ["yearly 2025"]}


def test_hourly_rule():
    points = [Point(f"h{i}", T0 - timedelta(minutes=20 * i), False) for i in range(7)]  # 02:00 back to 00:00
    assert sorted(kept(decide(points, Policy(keep_hourly=2)))) == ["h0", "h1"]


def test_keep_within_is_relative_to_the_newest_backup_not_to_now():
    # backups stopped a month ago: keep_within must not empty the repository
    old = nightly(10, start=T0 - timedelta(days=30))
    result = kept(decide(old, Policy(keep_within=3 * 86400)))
    assert set(result) == {"b000", "b001", "b002", "b003"}
    assert result["b000"] == ["within 3d"]


def test_a_backup_kept_by_several_rules_names_all_of_them():
    result = kept(decide(nightly(3), Policy(keep_last=1, keep_daily=1, keep_weekly=1, keep_monthly=1)))
    assert result == {"b000": ["last 1/1", "daily 2026-12-03", "weekly 2026-W49", "monthly 2026-12"]}


def test_the_newest_verified_backup_is_kept_even_when_no_rule_keeps_it():
    points = nightly(10, verified={4, 7})
    result = kept(decide(points, Policy(keep_last=2)))
    assert result == {"b000": ["last 1/2"], "b001": ["last 2/2"], "b004": [NEWEST_VERIFIED]}


def test_newest_verified_is_added_to_the_rules_that_already_keep_it():
    assert kept(decide(nightly(3, verified={0}), Policy(keep_last=1))) == {"b000": ["last 1/1", NEWEST_VERIFIED]}


def test_zero_everywhere_removes_all_but_the_newest_verified():
    assert kept(decide(nightly(5, verified={3}), Policy(keep_last=0, keep_daily=0))) == {"b003": [NEWEST_VERIFIED]}
    assert kept(decide(nightly(5), Policy(keep_last=0))) == {}


def test_no_policy_keeps_everything():
    decisions = decide(nightly(4), Policy())
    assert all(d.reasons == [NO_POLICY] for d in decisions) and len(decisions) == 4


def test_policy_from_the_inventory_model_or_a_dict():
    assert Policy.from_config({"keep_last": 7, "keep_within": "2d"}) == Policy(keep_last=7, keep_within=172800.0)
    assert Policy.from_config(None).empty

    from erpops.config.model import Retention

    model = Retention.model_validate({"keep_last": 7, "keep_daily": 14, "keep_weekly": 8, "keep_monthly": 12,
                                      "keep_within": "3d"})
    policy = Policy.from_config(model)
    assert policy == Policy(keep_last=7, keep_daily=14, keep_weekly=8, keep_monthly=12, keep_within=259200.0)
    assert policy.describe() == "keep_last 7, keep_daily 14, keep_weekly 8, keep_monthly 12, keep_within 3d"


def test_naive_times_are_taken_as_utc():
    points = [Point("naive", datetime(2026, 12, 3, 23, 30), False), Point("aware", T0.replace(hour=1), False)]
    assert kept(decide(points, Policy(keep_daily=1))) == {"naive": ["daily 2026-12-03"]}


# --- properties ---------------------------------------------------------------

counts = st.one_of(st.none(), st.integers(min_value=0, max_value=6))
policies = st.builds(Policy, counts, counts, counts, counts, counts, counts,
                     st.one_of(st.none(), st.floats(min_value=0, max_value=40 * 86400)))
points = st.lists(
    st.tuples(st.integers(min_value=0, max_value=400 * 24 * 60), st.booleans()),
    max_size=40, unique_by=lambda t: t[0],
).map(lambda items: [Point(f"p{minutes:07d}", T0 - timedelta(minutes=minutes), verified) for minutes, verified in items])


@settings(max_examples=300, deadline=None)
@given(points, policies)
def test_property_newest_verified_always_kept_and_every_kept_backup_has_a_reason(backups, policy):
    decisions = decide(backups, policy)
    assert sorted(d.point.backup_id for d in decisions) == sorted(p.backup_id for p in backups)
    verified = [p for p in backups if p.verified]
    if verified:
        newest = max(verified, key=lambda p: p.time)
        assert next(d for d in decisions if d.point is newest).keep
    for d in decisions:
        assert d.keep == bool(d.reasons)
        assert all(isinstance(r, str) and r for r in d.reasons)


@settings(max_examples=200, deadline=None)
@given(points, st.integers(min_value=1, max_value=6))
def test_property_keep_last_n_keeps_exactly_min_n_len(backups, n):
    decisions = decide(backups, Policy(keep_last=n))
    assert sum(1 for d in decisions if any(r.startswith("last ") for r in d.reasons)) == min(n, len(backups))


@settings(max_examples=200, deadline=None)
@given(points, st.integers(min_value=1, max_value=6))
def test_property_daily_keeps_one_per_day_for_the_newest_days(backups, n):
    decisions = decide(backups, Policy(keep_daily=n))
    days = sorted({p.time.date() for p in backups}, reverse=True)[:n]
    by_daily = [d for d in decisions if any(r.startswith("daily ") for r in d.reasons)]
    assert sorted((d.point.time.date() for d in by_daily), reverse=True) == days  # one per day, the n newest days
    for d in by_daily:
        if d.keep:  # and it is the newest backup of its day
            same_day = [p for p in backups if p.time.date() == d.point.time.date()]
            assert d.point.time == max(p.time for p in same_day)
