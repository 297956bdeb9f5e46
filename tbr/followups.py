"""The follow-up issue: what it says, and filing it exactly once.

Exactly once rests on a hidden marker holding the change's key. tbr records that it is about to
file before its first try; any later try first lists the tracking repo's `tbr`-labelled issues
touched since the change was first seen and looks for the marker. So a crash between GitHub
creating the issue and tbr recording it, or a POST whose answer was lost, is followed by finding the
issue, not by filing a second one, and the usual first try costs one request. Titles are for
people (and auditors' searches); people rename issues, so titles are never used to match.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import structlog

from tbr.classify import Decision
from tbr.github import Gateway, GitHubError, IssueRef

log = structlog.get_logger("tbr.followups")

LABEL = "tbr"
LABEL_COLOR = "d93f0b"
LABEL_DESCRIPTION = "Follow-up review of a change that reached production without an approver"
UNDECLARED = "tbr:undeclared"
LABELS = {LABEL: (LABEL_COLOR, LABEL_DESCRIPTION),
          UNDECLARED: ("b60205", "Merged without approval and without a declared emergency (`TBR: <reason>`)")}


@dataclass(frozen=True)
class Change:
    """What the follow-up needs to know about a change (a row of the changes table, as data)."""

    key: str
    kind: str
    repo: str
    branch: str
    number: int | None
    sha: str
    actor: str
    happened_at: datetime
    facts: dict


def marker(key: str) -> str:
    return f"<!-- tbr:change={key} -->"


def title(change: Change) -> str:
    if change.kind == "pr":
        return f"TBR {change.repo}#{change.number} follow-up review"
    return f"TBR {change.repo}@{change.sha[:7]} follow-up review"


def _when(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%d %H:%M UTC")


def _declaration(change: Change, decision: Decision, escalate: str | None) -> list[str]:
    d = decision.declaration
    if d:
        ticket = f" (ticket {d.ticket})" if d.ticket else ""
        return ["", "### Declared emergency",
                f"@{d.by} declared it in [{d.where}]({d.url}) on {_when(d.at) if d.at else 'unknown date'}:"
                f" {d.reason}{ticket}"]
    if change.kind != "pr":
        return []
    cc = f" {escalate}: for your attention." if escalate else ""
    return ["", "### Undeclared", "Nobody declared an emergency (a `TBR: <reason>` line by the author or the merger,"
            " in the description or a comment, before the grace period ended): this merge looks accidental." + cc]


def _forced(branch: str, facts: dict) -> str:
    if facts.get("rewrote"):
        return (f"**yes: it rewrote the history of `{branch}`**; {facts['rewrote']} commit(s) that were on it"
                f" (up to `{facts.get('before', '')[:7]}`) are no longer")
    return "yes" if facts.get("forced") else "no"


def body(change: Change, decision: Decision, due: datetime, tz: ZoneInfo, days: int = 2,
         escalate: str | None = None) -> str:
    due_local = (due - timedelta(microseconds=1)).astimezone(tz)
    due_text = f"**{due_local:%a %d %b %Y}**, end of day ({tz.key}; {_when(due)})"
    facts = change.facts
    if change.kind == "pr":
        rows = [
            ("Pull request", f"[{change.repo}#{change.number}]({facts['url']}): {facts.get('title', '')}"),
            ("Author", f"@{facts['author']}"),
            ("Merged by", f"@{change.actor}" if change.actor else "unknown"),
            ("Merged at", _when(change.happened_at)),
        ]
        people = f"@{facts['author']}" + (f" or @{change.actor}" if change.actor and change.actor != facts["author"] else "")
    else:
        rows = [
            ("Pushed by", f"@{change.actor}" if change.actor else "unknown (found by the reconciliation sweep)"),
            ("Pushed at", _when(change.happened_at)),
            ("Force push", _forced(change.branch, facts)),
        ]
        if facts.get("compare"):
            rows.append(("Compare", facts["compare"]))
        people = f"@{change.actor}" if change.actor else "whoever pushed it"
    rows = [("Repository", f"{change.repo}, branch `{change.branch}`"), *rows, ("Review due", due_text)]
    lines = [
        marker(change.key),
        f"This change reached `{change.branch}` of **{change.repo}** without an approver. "
        "Our change-management policy allows that in an emergency, on the promise of a review "
        f"within {days} business day{'s' if days != 1 else ''}. This issue tracks that review.",
        "",
        "| | |",
        "|---|---|",
        *(f"| {k} | {v} |" for k, v in rows),
    ]
    if change.kind == "push":
        lines += ["", "### Commits", *(f"- [`{c['sha'][:7]}`]({c['url']}) {c['message']}" for c in facts["commits"])]
    lines += _declaration(change, decision, escalate)
    lines += ["", "### Why no approval was found", decision.summary]
    lines += [f"- {note}" for note in decision.notes]
    lines += [
        "",
        "### What completes this review",
        f"Someone other than {people} reviews the change and then closes this issue as completed, "
        "or comments `LGTM` on it. If the review finds a problem, link the fix here before closing.",
    ]
    return "\n".join(lines) + "\n"


class Filer:
    """Files follow-ups through the gateway; remembers which labels it has made sure of."""

    def __init__(self, gateway: Gateway):
        self.gateway = gateway
        self._labelled: set[tuple[str, str]] = set()

    def file(self, inst: int, tracking_repo: str, change: Change, decision: Decision, due: datetime,
             tz: ZoneInfo, first_seen: datetime, days: int = 2, retry: bool = True,
             escalate: str | None = None) -> IssueRef:
        """File the follow-up; on a `retry` (an earlier try may have created it), look for it first."""
        gw = self.gateway
        found = retry and gw.find_issue(inst, tracking_repo, LABEL, marker(change.key),
                                        since=first_seen - timedelta(days=1))
        if found:
            log.info("followup.found_existing", change=change.key, issue=found.url)
            return found
        labels = [LABEL] + ([UNDECLARED] if change.kind == "pr" and not decision.declaration else [])
        for name in labels:  # once per process: GitHub would make a missing one grey and unexplained
            if (tracking_repo.lower(), name) not in self._labelled:
                gw.ensure_label(inst, tracking_repo, name, *LABELS[name])
                self._labelled.add((tracking_repo.lower(), name))
        text = body(change, decision, due, tz, days, escalate)
        assignees = [change.actor] if change.actor else []
        try:
            return gw.create_issue(inst, tracking_repo, title(change), text, labels, assignees)
        except GitHubError as e:
            if e.status != 422 or not assignees:
                raise
            # GitHub refuses assignees without access to the tracking repo: file it anyway.
            log.warning("followup.assignee_refused", change=change.key, assignee=change.actor, error=str(e))
            return gw.create_issue(inst, tracking_repo, title(change), text, labels, [])
