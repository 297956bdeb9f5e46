"""The SLA clock, as a table: (merged at, zone, holidays) -> due date and the instant it ends."""

from datetime import date, datetime, timezone
from zoneinfo import ZoneInfo

import pytest

from tbr.sla import add_business_days, due_at, due_date, holiday_calendar


def utc(s: str) -> datetime:
    return datetime.fromisoformat(s).replace(tzinfo=timezone.utc)


CASES = [
    # merged at (UTC)        zone                 holidays  due date      due instant (UTC)      why
    ("2026-11-20 14:00", "UTC", None, "2026-11-24", "2026-11-25 00:00", "Friday: weekend skipped"),
    ("2026-11-21 02:00", "UTC", None, "2026-11-24", "2026-11-25 00:00", "Saturday counts from Monday"),
    ("2026-11-22 23:59", "UTC", None, "2026-11-24", "2026-11-25 00:00", "Sunday counts from Monday"),
    ("2026-11-23 00:01", "UTC", None, "2026-11-25", "2026-11-26 00:00", "Monday: Tue, Wed"),
    ("2026-11-25 10:00", "UTC", "US", "2026-11-30", "2026-12-01 00:00", "Thanksgiving Thursday skipped"),
    ("2026-12-24 10:00", "UTC", "US", "2026-12-29", "2026-12-30 00:00", "Christmas Friday skipped"),
    ("2026-12-31 18:00", "UTC", "US", "2027-01-05", "2027-01-06 00:00", "year end: New Year's Day skipped"),
    ("2026-12-31 18:00", "UTC", None, "2027-01-04", "2027-01-05 00:00", "year end without holidays"),
    ("2026-11-20 23:30", "Asia/Tokyo", None, "2026-11-24", "2026-11-24 15:00", "already Saturday in Tokyo"),
    ("2026-11-23 03:00", "America/Los_Angeles", None, "2026-11-24", "2026-11-25 08:00", "still Sunday in LA"),
    ("2026-10-29 12:00", "America/New_York", None, "2026-11-02", "2026-11-03 05:00", "across DST end (EDT->EST)"),
    ("2027-03-11 12:00", "America/New_York", None, "2027-03-15", "2027-03-16 04:00", "across DST start (EST->EDT)"),
    ("2026-10-23 10:00", "Europe/Berlin", None, "2026-10-27", "2026-10-27 23:00", "across CEST->CET"),
    ("2027-01-04 09:00", "Europe/Berlin", "DE-BY", "2027-01-07", "2027-01-07 23:00", "Epiphany in Bavaria"),
    ("2027-01-04 09:00", "Europe/Berlin", "DE", "2027-01-06", "2027-01-06 23:00", "no Epiphany nationally"),
]


@pytest.mark.parametrize("merged, zone, cal, want_date, want_at, why", CASES, ids=[c[-1] for c in CASES])
def test_due(merged, zone, cal, want_date, want_at, why):
    tz = ZoneInfo(zone)
    holidays = holiday_calendar(cal)
    assert due_date(utc(merged), tz, holidays) == date.fromisoformat(want_date)
    assert due_at(utc(merged), tz, holidays) == utc(want_at)


def test_zero_and_more_days():
    assert add_business_days(date(2026, 11, 20), 0, frozenset()) == date(2026, 11, 20)
    assert add_business_days(date(2026, 11, 20), 5, frozenset()) == date(2026, 11, 27)


def test_naive_time_is_refused():
    with pytest.raises(ValueError):
        due_date(datetime(2026, 11, 20, 12), ZoneInfo("UTC"), frozenset())


def test_unknown_calendar_is_refused():
    with pytest.raises(NotImplementedError):
        holiday_calendar("XX")


from datetime import timedelta  # noqa: E402

from tbr.sla import business_days, business_days_between, business_duration, previous_business_day  # noqa: E402

DURATIONS = [
    # start (UTC)          end (UTC)            zone          holidays  business hours
    ("2026-11-20 14:00", "2026-11-23 10:00", "UTC", None, 20, "Friday afternoon to Monday morning"),
    ("2026-11-21 10:00", "2026-11-22 10:00", "UTC", None, 0, "all weekend"),
    ("2026-11-25 12:00", "2026-11-27 12:00", "UTC", "US", 24, "across Thanksgiving"),
    ("2026-10-23 22:00", "2026-10-26 01:00", "Europe/Berlin", None, 2, "Friday midnight Berlin, over DST end"),
    ("2026-11-23 10:00", "2026-11-23 09:00", "UTC", None, 0, "end before start"),
]


@pytest.mark.parametrize("start, end, zone, cal, hours, why", DURATIONS, ids=[d[-1] for d in DURATIONS])
def test_business_duration(start, end, zone, cal, hours, why):
    got = business_duration(utc(start), utc(end), ZoneInfo(zone), holiday_calendar(cal))
    assert got == timedelta(hours=hours)


def test_business_day_helpers():
    us = holiday_calendar("US")
    assert business_days(timedelta(hours=36)) == 1.5
    assert business_days_between(date(2026, 11, 24), date(2026, 11, 30), us) == 3  # Wed, Fri, Mon
    assert previous_business_day(date(2026, 11, 30), us) == date(2026, 11, 27)
    assert previous_business_day(date(2026, 11, 27), us) == date(2026, 11, 25)  # Thanksgiving skipped
