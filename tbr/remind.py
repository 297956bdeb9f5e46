"""Which reminders an open follow-up is owed at a given moment. Pure; no I/O.

Each reminder has a key that names it for good (the overdue repeats carry their business day), so
planning is repeatable: the caller stores actions by key and a second plan adds nothing. After a
long outage only the latest repeat is owed, never a backlog of them.

- due soon: at `hour` local time on the business day before the due date;
- overdue: when the due date ends: label `tbr:overdue`, mention the assignee and the escalation;
- still overdue: at `hour` on every `every`-th business day after that (0: never).
"""

from __future__ import annotations

from collections.abc import Container
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from tbr.sla import business_days_between, is_business_day, previous_business_day

OVERDUE_LABEL = "tbr:overdue"


@dataclass(frozen=True)
class Open:
    change_key: str
    title: str
    assignee: str
    due_at: datetime
    what: str = "follow-up review"
    how: str = "Someone other than the change's author and merger reviews it, then closes this issue as completed."


@dataclass(frozen=True)
class Reminder:
    key: str
    kind: str  # due-soon | overdue | still-overdue
    text: str


def _due_day(due_at: datetime, tz: ZoneInfo) -> date:
    return (due_at - timedelta(microseconds=1)).astimezone(tz).date()


def _at(day: date, hour: int, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, time(hour), tzinfo=tz)


def mention(handle: str | None) -> str | None:
    """An escalation handle as a mention (follow-ups filed before handles were normalised lack the @)."""
    return f"@{handle.lstrip('@')}" if handle else None


def plan(f: Open, now: datetime, tz: ZoneInfo, holidays: Container[date], hour: int = 9, every: int = 2,
         escalate: str | None = None) -> list[Reminder]:
    due_day = _due_day(f.due_at, tz)
    due_text = f"end of day {due_day:%a %d %b %Y} ({tz.key})"
    who = f"@{f.assignee}" if f.assignee else "Assignee"
    if now < f.due_at:
        if now >= _at(previous_business_day(due_day, holidays), hour, tz):
            return [Reminder(f"remind:{f.change_key}:due-soon", "due-soon",
                             f"{who}: this {f.what} is due by {due_text}. {f.how}")]
        return []
    cc = f" {escalate}: for your attention." if escalate else ""
    owed = [Reminder(f"remind:{f.change_key}:overdue", "overdue",
                     f"{who}: this {f.what} is overdue; it was due by {due_text}.{cc}")]
    if every > 0:
        latest = _latest_repeat(due_day, now, tz, holidays, hour, every)
        if latest:
            days = business_days_between(due_day, latest, holidays)
            owed.append(Reminder(f"remind:{f.change_key}:overdue:{latest.isoformat()}", "still-overdue",
                                 f"{who}: this {f.what} is still open, {days} business days past its due date "
                                 f"({due_text})."))
    return owed


def _latest_repeat(due_day: date, now: datetime, tz: ZoneInfo, holidays: Container[date], hour: int,
                   every: int) -> date | None:
    """The latest business day, on or before now, that is owed a repeat.

    The first business day after the due date already had the overdue notice, so repeats start
    `every` business days after that one.
    """
    day = now.astimezone(tz).date()
    if now < _at(day, hour, tz):
        day -= timedelta(days=1)
    while day > due_day:
        n = business_days_between(due_day, day, holidays)
        if is_business_day(day, holidays) and n > 1 and (n - 1) % every == 0:
            return day
        day -= timedelta(days=1)
    return None
