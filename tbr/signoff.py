"""Who may sign off a follow-up review, and what tbr does about each issue event. Pure; no I/O.

The review is complete when a human who neither authored nor merged (or pushed) the change, and who
has write access to the changed repository (or is one of the configured reviewers), closes the
follow-up as completed, or comments an approval phrase on it. Anything else that closes it is undone
with an explanation: separation of duties is the point of the control. Whether someone has that
authority is I/O: the caller asks GitHub only when `judge` would otherwise sign off, and passes the
reason they lack it as `unauthorized`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from tbr.classify import Actor, find_phrase
from tbr.events import IssueEvent


@dataclass(frozen=True)
class Followup:
    change_key: str
    state: str  # open | signed_off | deleted | transferred
    involved: frozenset[str]  # lowercase logins of the change's author(s) and merger or pusher
    describe: str  # "alice authored and merged acme/api#7"


@dataclass(frozen=True)
class Verdict:
    kind: str  # signed_off | refuse | reopened | gone | reply | ignore
    reviewer: str | None = None
    at: datetime | None = None
    how: str | None = None  # closed | comment
    message: str = ""  # what tbr says on the issue, if anything


def judge(followup: Followup, ev: IssueEvent, phrases: tuple[str, ...], unauthorized: str | None = None) -> Verdict:
    actor = Actor(ev.actor, ev.actor_type)
    involved = actor.login.lower() in followup.involved
    if ev.action in ("deleted", "transferred"):
        return Verdict("gone", message=f"follow-up {ev.action} by @{ev.actor}")
    if ev.action == "reopened":
        if followup.state == "signed_off" and not actor.is_bot:
            return Verdict("reopened", message=f"@{ev.actor} reopened the follow-up: the review is open again")
        return Verdict("ignore")
    if ev.action == "closed":
        if followup.state != "open":
            return Verdict("ignore")  # tbr's own close after a sign-off, or a gone follow-up
        if ev.state_reason == "not_planned":
            return Verdict("refuse", message=(
                f"@{ev.actor} closed this as not planned, but a follow-up review cannot be waived: "
                "the change already reached production. Reopened. Once someone independent has reviewed "
                "it, close this issue as completed."))
        if actor.is_bot:
            return Verdict("refuse", message=f"@{ev.actor} is a bot, and only a person can sign off a review. Reopened.")
        if involved:
            return Verdict("refuse", message=(
                f"Separation of duties: {followup.describe}, so @{ev.actor} cannot sign off its review. "
                "Reopened. Ask someone else to review the change and close this issue."))
        if unauthorized:
            return Verdict("refuse", message=f"{unauthorized}, so cannot sign off its review. Reopened.")
        return Verdict("signed_off", reviewer=ev.actor, at=ev.at, how="closed")
    if ev.action == "commented" and followup.state == "open" and not actor.is_bot:
        phrase = find_phrase(ev.comment, phrases)
        if phrase is None:
            return Verdict("ignore")
        if involved:
            return Verdict("reply", message=(
                f"@{ev.actor}, thanks, but this does not complete the review: {followup.describe}. "
                "Someone else needs to review the change."))
        if unauthorized:
            return Verdict("reply", message=f"Thanks, but this does not complete the review: {unauthorized}.")
        return Verdict("signed_off", reviewer=ev.actor, at=ev.at, how="comment")
    return Verdict("ignore")
