"""Which reminders a follow-up is owed, as a table over time."""

from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import pytest

from tbr.remind import Open, plan
from tbr.sla import holiday_calendar

UTC = ZoneInfo("UTC")
# Merged Friday 20 Nov 2026: due by the end of Tuesday 24 Nov.
F = Open("pr:1:7", "x", "alice", datetime(2026, 11, 25, tzinfo=timezone.utc))


def at(s: str) -> datetime:
    return datetime.fromisoformat(s).replace(tzinfo=timezone.utc)


CASES = [
    # now                every  holidays  owed reminder keys (suffixes)
    ("2026-11-23 08:59", 2, None, [], "before the day-before reminder"),
    ("2026-11-23 09:00", 2, None, ["due-soon"], "one business day before the due date"),
    ("2026-11-24 23:59", 2, None, ["due-soon"], "still the same due-soon reminder"),
    ("2026-11-25 00:00", 2, None, ["overdue"], "the due date ended"),
    ("2026-11-25 09:00", 1, None, ["overdue"], "the overdue notice is that day's reminder"),
    ("2026-11-26 09:00", 1, None, ["overdue", "overdue:2026-11-26"], "daily repeats"),
    ("2026-11-26 09:00", 2, None, ["overdue"], "every other business day: not yet"),
    ("2026-11-27 09:00", 2, None, ["overdue", "overdue:2026-11-27"], "every other business day"),
    ("2026-11-28 12:00", 1, None, ["overdue", "overdue:2026-11-27"], "Saturday owes nothing new"),
    ("2026-11-30 08:00", 1, None, ["overdue", "overdue:2026-11-27"], "Monday before the hour"),
    ("2026-11-30 09:00", 1, None, ["overdue", "overdue:2026-11-30"], "after a long outage: only the latest"),
    ("2026-11-26 09:00", 1, "US", ["overdue"], "Thanksgiving owes nothing"),
    ("2026-11-28 12:00", 2, "US", ["overdue"], "holiday weekend: Fri is only the 2nd business day"),
    ("2026-11-30 09:00", 2, "US", ["overdue", "overdue:2026-11-30"], "Monday after the holiday weekend"),
    ("2026-12-10 09:00", 0, None, ["overdue"], "repeats off"),
]


@pytest.mark.parametrize("now, every, cal, want, why", CASES, ids=[c[-1] for c in CASES])
def test_plan(now, every, cal, want, why):
    owed = plan(F, at(now), UTC, holiday_calendar(cal), hour=9, every=every)
    assert [r.key.removeprefix("remind:pr:1:7:") for r in owed] == want


def test_due_soon_before_a_holiday_moves_back():
    # Due end of Friday 27 Nov: the business day before is Wednesday 25 (Thanksgiving on 26).
    f = Open("k", "x", "alice", datetime(2026, 11, 28, tzinfo=timezone.utc))
    assert plan(f, at("2026-11-25 08:00"), UTC, holiday_calendar("US")) == []
    assert [r.kind for r in plan(f, at("2026-11-25 09:00"), UTC, holiday_calendar("US"))] == ["due-soon"]


def test_texts_mention_the_assignee_and_escalation():
    soon, = plan(F, at("2026-11-23 10:00"), UTC, frozenset())
    assert soon.text.startswith("@alice: this follow-up review is due by end of day Tue 24 Nov 2026 (UTC)")
    overdue, = plan(F, at("2026-11-25 10:00"), UTC, frozenset(), escalate="@acme/security")
    assert "@alice" in overdue.text and "@acme/security" in overdue.text
    _, repeat = plan(F, at("2026-11-27 10:00"), UTC, frozenset(), every=1)
    assert "3 business days past its due date" in repeat.text


def test_local_time_zone_decides_the_hour():
    berlin = ZoneInfo("Europe/Berlin")
    f = Open("k", "x", "alice", datetime(2026, 11, 24, 23, tzinfo=timezone.utc))  # end of Tue 24, Berlin
    assert plan(f, at("2026-11-23 07:59"), berlin, frozenset()) == []
    assert len(plan(f, at("2026-11-23 08:00"), berlin, frozenset())) == 1  # 09:00 in Berlin
