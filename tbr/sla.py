"""The SLA clock: business days in the team's time zone. Pure; no I/O.

A change is due at the end of the second business day after the local day it reached production:
merged Friday at any hour, due end of Tuesday; merged Saturday, due end of Tuesday too. Day
granularity keeps the promise easy to state and to check ("by end of day Tuesday, Berlin time").
"""

from __future__ import annotations

import functools
from collections.abc import Container
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import holidays as holidays_lib

NO_HOLIDAYS: frozenset[date] = frozenset()


@functools.lru_cache(maxsize=64)  # read-only calendars, shared by every repository that names one
def holiday_calendar(code: str | None, year: int | None = None) -> Container[date]:
    """`US`, `DE-BY` (country-subdivision) or None; raises NotImplementedError for unknown codes."""
    if not code:
        return NO_HOLIDAYS
    country, _, subdiv = code.partition("-")
    return holidays_lib.country_holidays(country.upper(), subdiv=subdiv.upper() or None, years=year)


def is_business_day(day: date, holidays: Container[date]) -> bool:
    return day.weekday() < 5 and day not in holidays


def add_business_days(start: date, days: int, holidays: Container[date]) -> date:
    """The `days`-th business day after `start` (start itself never counts)."""
    day = start
    remaining = days
    while remaining > 0:
        day += timedelta(days=1)
        if is_business_day(day, holidays):
            remaining -= 1
    return day


def due_date(happened_at: datetime, tz: ZoneInfo, holidays: Container[date], days: int = 2) -> date:
    """The local calendar day by whose end the follow-up review is due."""
    if happened_at.tzinfo is None:
        raise ValueError("happened_at must be timezone-aware")
    return add_business_days(happened_at.astimezone(tz).date(), days, holidays)


def end_of_day(day: date, tz: ZoneInfo) -> datetime:
    """The instant the local day ends (next local midnight), in UTC; correct across DST changes."""
    return datetime.combine(day + timedelta(days=1), time(0), tzinfo=tz).astimezone(ZoneInfo("UTC"))


def due_at(happened_at: datetime, tz: ZoneInfo, holidays: Container[date], days: int = 2) -> datetime:
    return end_of_day(due_date(happened_at, tz, holidays, days), tz)


def business_duration(start: datetime, end: datetime, tz: ZoneInfo, holidays: Container[date]) -> timedelta:
    """Time between two instants that falls on local business days (weekends and holidays don't count)."""
    if end <= start:
        return timedelta(0)
    total = timedelta(0)
    day = start.astimezone(tz).date()
    last = end.astimezone(tz).date()
    while day <= last:
        if is_business_day(day, holidays):
            day_start = datetime.combine(day, time(0), tzinfo=tz)
            lo = max(start, day_start)
            hi = min(end, end_of_day(day, tz))
            if hi > lo:
                total += hi - lo
        day += timedelta(days=1)
    return total


def business_days(duration: timedelta) -> float:
    """A duration from business_duration, in business days (one business day is one local day)."""
    return round(duration.total_seconds() / 86400, 2)


def business_days_between(earlier: date, later: date, holidays: Container[date]) -> int:
    """How many business days come after `earlier`, up to and including `later`."""
    count, day = 0, earlier
    while day < later:
        day += timedelta(days=1)
        count += is_business_day(day, holidays)
    return count


def previous_business_day(day: date, holidays: Container[date]) -> date:
    day -= timedelta(days=1)
    while not is_business_day(day, holidays):
        day -= timedelta(days=1)
    return day
