"""Who may sign off a follow-up, as a table of issue events."""

from datetime import datetime, timezone

import pytest

from tbr.config import DEFAULT_SIGNOFF_PHRASES
from tbr.events import IssueEvent
from tbr.signoff import Followup, judge

AT = datetime(2026, 11, 23, 10, tzinfo=timezone.utc)
OPEN = Followup("pr:1:7", "open", frozenset({"alice", "carol"}), "@alice authored and @carol merged acme/api#7")
PHRASES = ("LGTM", "reviewed")


def ev(action, actor="bob", reason=None, comment="", actor_type="User"):
    return IssueEvent("acme/tbr", 3, action, actor, actor_type, AT, reason, comment, 99, "https://x/c/99")


CASES = [
    ("closed as completed by an independent human", OPEN, ev("closed", reason="completed"), "signed_off", "bob"),
    ("closed with no reason by an independent human", OPEN, ev("closed"), "signed_off", "bob"),
    ("closed by the author", OPEN, ev("closed", "alice", "completed"), "refuse", None),
    ("closed by the merger, any case", OPEN, ev("closed", "Carol", "completed"), "refuse", None),
    ("closed as not planned by anyone", OPEN, ev("closed", "bob", "not_planned"), "refuse", None),
    ("closed by a bot", OPEN, ev("closed", "helper[bot]", "completed", actor_type="Bot"), "refuse", None),
    ("closed after sign-off (tbr's own close)", Followup("k", "signed_off", frozenset(), ""), ev("closed"), "ignore", None),
    ("LGTM by an independent human", OPEN, ev("commented", comment="Reviewed the diff, LGTM"), "signed_off", "bob"),
    ("'reviewed' by an independent human", OPEN, ev("commented", comment="Reviewed."), "signed_off", "bob"),
    ("LGTM by the author", OPEN, ev("commented", "alice", comment="LGTM"), "reply", None),
    ("LGTM by a bot", OPEN, ev("commented", "ci[bot]", comment="LGTM", actor_type="Bot"), "ignore", None),
    ("a plain comment", OPEN, ev("commented", comment="looking at it tomorrow"), "ignore", None),
    ("not LGTM", OPEN, ev("commented", comment="not LGTM"), "ignore", None),
    ("reopened after sign-off", Followup("k", "signed_off", frozenset(), ""), ev("reopened"), "reopened", None),
    ("reopened while open (tbr's own reopen)", OPEN, ev("reopened"), "ignore", None),
    ("deleted", OPEN, ev("deleted"), "gone", None),
    ("transferred", OPEN, ev("transferred"), "gone", None),
]


@pytest.mark.parametrize("name, followup, event, kind, reviewer", CASES, ids=[c[0] for c in CASES])
def test_judge(name, followup, event, kind, reviewer):
    verdict = judge(followup, event, PHRASES)
    assert (verdict.kind, verdict.reviewer) == (kind, reviewer)


def test_refusals_explain_themselves():
    assert "Separation of duties: @alice authored and @carol merged acme/api#7, so @alice cannot sign off" in judge(
        OPEN, ev("closed", "alice", "completed"), PHRASES).message
    assert "cannot be waived" in judge(OPEN, ev("closed", "bob", "not_planned"), PHRASES).message


@pytest.mark.parametrize("comment, phrases", [
    ("I have not yet reviewed this", DEFAULT_SIGNOFF_PHRASES),
    ("I have not yet reviewed this", ("LGTM", "reviewed")),  # even with `reviewed` configured
    ("Reviewed.", DEFAULT_SIGNOFF_PHRASES),  # no longer a default phrase: close the issue instead
    ("LGTM? I have not looked at the diff yet", DEFAULT_SIGNOFF_PHRASES),
    ("> LGTM\nwaiting for the logs", DEFAULT_SIGNOFF_PHRASES),
])
def test_what_does_not_sign_off(comment, phrases):
    assert judge(OPEN, ev("commented", comment=comment), phrases).kind == "ignore"
    assert judge(OPEN, ev("commented", comment="Looked at the diff. LGTM"), phrases).kind == "signed_off"


NO_AUTHORITY = "@olga has no write access to acme/api and is not one of its reviewers"
AUTHORITY = [
    # (name, event, kind, what tbr says)
    ("a close without authority is refused", ev("closed", "olga", "completed"), "refuse",
     f"{NO_AUTHORITY}, so cannot sign off its review. Reopened."),
    ("an LGTM without authority gets a reply", ev("commented", "olga", comment="LGTM"), "reply",
     f"Thanks, but this does not complete the review: {NO_AUTHORITY}."),
    ("separation of duties is said first", ev("closed", "alice", "completed"), "refuse", "Separation of duties"),
    ("a plain comment needs no authority", ev("commented", "olga", comment="hm"), "ignore", ""),
    ("a reopen needs no authority", ev("reopened", "olga"), "ignore", ""),
]


@pytest.mark.parametrize("name, event, kind, message", AUTHORITY, ids=[c[0] for c in AUTHORITY])
def test_authority(name, event, kind, message):
    verdict = judge(OPEN, event, PHRASES, NO_AUTHORITY)
    assert verdict.kind == kind and message in verdict.message and verdict.reviewer is None
