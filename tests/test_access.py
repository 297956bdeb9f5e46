"""Access reviews, the pure part: quarters, rendering, ticks, commands, and who may decide a line."""

from __future__ import annotations

from datetime import date, datetime, timezone
from zoneinfo import ZoneInfo

import pytest

from tbr import access
from tbr.sla import holiday_calendar

LINES = [access.Line("alice", "acme/api", "alice", "admin", ("org owner",)),
         access.Line("bob", "acme/api", "bob", "write", ("direct",)),
         access.Line("carol", "acme/api", "carol", "maintain", ("team @acme/core", "direct"))]


@pytest.mark.parametrize("day, quarter", [(date(2026, 1, 1), "2026-Q1"), (date(2026, 3, 31), "2026-Q1"),
                                          (date(2026, 4, 1), "2026-Q2"), (date(2026, 12, 31), "2026-Q4")])
def test_quarter_of(day, quarter):
    assert access.quarter_of(day) == quarter


@pytest.mark.parametrize("quarter, holidays, nth, opening", [
    ("2027-Q1", "US", 1, date(2027, 1, 4)),     # Fri 1 Jan is New Year's Day: Mon 4 Jan
    ("2026-Q4", None, 1, date(2026, 10, 1)),    # a Thursday
    ("2026-Q3", None, 1, date(2026, 7, 1)),
    ("2026-Q2", "DE", 1, date(2026, 4, 1)),
    ("2026-Q4", None, 3, date(2026, 10, 5)),    # Thu 1, Fri 2, (weekend), Mon 5
])
def test_opening_day_is_the_nth_business_day(quarter, holidays, nth, opening):
    assert access.opening_day(quarter, holiday_calendar(holidays), nth) == opening


def test_rendered_issue_round_trips_its_ticks():
    due = datetime(2026, 10, 15, 22, 0, tzinfo=timezone.utc)
    lines = [LINES[0], access.Line("bob", "acme/api", "bob", "write", ("direct",), "revoke", "alice"), LINES[2]]
    body = access.render("2026-Q4:acme/api", "2026-Q4", "acme/api", lines, due, ZoneInfo("Europe/Berlin"), ("@sec",))
    assert body.startswith("<!-- tbr:access-review=2026-Q4:acme/api -->")
    assert "- [ ] @alice: admin (org owner) <!-- tbr:line=alice -->" in body
    assert "- [x] ~~@bob: write (direct)~~, revoked by @alice <!-- tbr:line=bob -->" in body
    assert "@carol: maintain (team @acme/core, direct)" in body and "@sec: for each line" in body
    assert access.ticks(body) == {"alice": False, "bob": True, "carol": False}
    ticked = body.replace("- [ ] @carol", "- [x] @carol")
    assert access.edited(body, ticked) == {"carol": True}
    assert access.edited(ticked, body) == {"carol": False}
    assert access.title("2026-Q4", "acme/api") == "TBR access review 2026-Q4: acme/api"


def test_commands_in_a_comment():
    text = "Looked at it.\nrevoke @bob\n> keep @quoted-is-fine-too\nKEEP @carol on acme/api\nrevoke bob"
    assert access.commands(text) == [("revoke", "bob", None), ("keep", "carol", "acme/api")]


def test_nobody_decides_their_own_line_and_unknown_logins_are_named():
    decisions, refused = access.decide(LINES, "bob", [("alice", "keep"), ("bob", "keep"), ("zed", "revoke")])
    assert decisions == [access.Decision("alice", "keep")]
    assert refused == ["@bob cannot decide their own access (acme/api): someone else must",
                       "@zed has no line in this review"]


def test_org_wide_lines_are_matched_by_login_and_repo():
    lines = [access.Line("acme/api:bob", "acme/api", "bob", "write", ("direct",)),
             access.Line("acme/web:bob", "acme/web", "bob", "admin", ("direct",))]
    assert access.decide(lines, "alice", [("bob on acme/web", "revoke")])[0] == [access.Decision("acme/web:bob", "revoke")]
    assert len(access.decide(lines, "alice", [("bob", "keep")])[0]) == 2
