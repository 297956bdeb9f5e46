"""Access controls, the pure part: the quarterly access review's issue and how people decide its lines,
quarters and their opening day. No I/O.

An access review lists everyone with write, maintain or admin access as a checklist. A reviewer ticks
a line to keep that access, or comments `revoke @login` (or `keep @login`); nobody decides their own
line. tbr keeps the decisions in its database and renders the issue from them, so the issue always
shows who decided what, and an edit that ticks one's own line is undone.
"""

from __future__ import annotations

from collections.abc import Container
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from tbr import usertext
from tbr.sla import is_business_day

LABEL = "tbr-access-review"


@dataclass(frozen=True)
class Line:
    line_id: str       # the login, or repo:login in an organization-wide review
    repo: str
    login: str
    permission: str    # admin | maintain | write
    via: tuple[str, ...]
    decision: str | None = None  # keep | revoke
    decided_by: str | None = None
    decided_at: datetime | None = None
    applied: bool = False


def quarter_of(day: date) -> str:
    return f"{day.year}-Q{(day.month - 1) // 3 + 1}"


def quarter_start(quarter: str) -> date:
    year, q = quarter.split("-Q")
    return date(int(year), 3 * (int(q) - 1) + 1, 1)


def opening_day(quarter: str, holidays: Container[date], nth: int = 1) -> date:
    """The quarter's `nth` business day, when its access reviews open."""
    day, seen = quarter_start(quarter), 0
    while True:
        if is_business_day(day, holidays):
            seen += 1
            if seen == nth:
                return day
        day += timedelta(days=1)


def title(quarter: str, subject: str) -> str:
    return f"TBR access review {quarter}: {subject}"


def marker(key: str) -> str:
    return f"<!-- tbr:access-review={key} -->"


def line_text(line: Line, org_wide: bool) -> str:
    who = f"`{line.repo}` @{line.login}" if org_wide else f"@{line.login}"
    what = f"{who}: {line.permission} ({', '.join(line.via)})"
    if line.decision == "keep":
        what += f", kept by @{line.decided_by}"
    elif line.decision == "revoke":
        what = f"~~{what}~~, revoked by @{line.decided_by}" + (", access removed" if line.applied else "")
    return f"- [{'x' if line.decision else ' '}] {what} <!-- tbr:line={line.line_id} -->"


def render(key: str, quarter: str, subject: str, lines: list[Line], due: datetime, tz: ZoneInfo,
           reviewers: tuple[str, ...], completed: tuple[str, datetime] | None = None) -> str:
    org_wide = any(line.line_id != line.login for line in lines)
    due_local = (due - timedelta(microseconds=1)).astimezone(tz)
    people = " ".join(reviewers) or "Reviewers"
    head = [marker(key),
            f"Quarterly access review (SOC 2 CC6.3) of **{subject}** for {quarter}: everyone who can change "
            f"its code, and how they have that access.", "",
            f"{people}: for each line, tick the box to **keep** the access, or comment `revoke @login`"
            + (" on owner/repo" if org_wide else "") + " to **revoke** it (`keep @login` works too). "
            "Nobody decides their own line.",
            f"Due by end of day {due_local:%a %d %b %Y} ({tz.key}).", ""]
    if completed:
        by, at = completed
        head.append(f"**Complete**: every line decided; the last by @{by} on {at:%Y-%m-%d %H:%M} UTC.\n")
    body = [line_text(line, org_wide) for line in lines] or ["Nobody has write access."]
    return "\n".join(head + body) + "\n"


ticks = usertext.ticks  # each line's checkbox in an issue body, by line id


def edited(before: str, after: str) -> dict[str, bool]:
    """The lines whose box an edit ticked (True) or unticked (False)."""
    old, new = ticks(before), ticks(after)
    return {line_id: mark for line_id, mark in new.items() if old.get(line_id, mark) != mark}


commands = usertext.commands  # `revoke @login [on owner/repo]` and `keep @login` lines, as (verb, login, repo)


@dataclass(frozen=True)
class Decision:
    line_id: str
    decision: str | None  # keep | revoke | None (undecided again)


def decide(lines: list[Line], actor: str, wanted: list[tuple[str, str | None]]) -> tuple[list[Decision], list[str]]:
    """What `actor` decided, as (line id, decision) pairs, and the refusals to say: nobody decides
    their own line, and a line must exist. Lines are matched by id, or by login (and repo)."""
    by_id = {line.line_id: line for line in lines}
    decisions, refused = [], []
    for target, decision in wanted:
        login, _, repo = target.partition(" on ")
        matches = [by_id[target]] if target in by_id else [
            line for line in lines if line.login.lower() == login.lower() and (not repo or line.repo == repo)]
        if not matches:
            refused.append(f"@{login} has no line in this review" + (f" for {repo}" if repo else ""))
            continue
        for line in matches:
            if line.login.lower() == actor.lower():
                refused.append(f"@{actor} cannot decide their own access ({line.repo}): someone else must")
            else:
                decisions.append(Decision(line.line_id, decision))
    return decisions, refused
