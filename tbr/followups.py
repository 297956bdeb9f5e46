"""The follow-up issue: what it says, and filing it exactly once.

Exactly once rests on a hidden marker holding the change's key, and on an index of the follow-ups
tbr has filed (FollowupIndex): its own App-authored issues labelled `tbr`, by the marker in their
body, kept in the database. Before its first filing, each process brings the index up to date from
GitHub's listing, reading only what was updated since it last looked (`since`); every filing adds
its issue. So a database restored from yesterday's copy, or a fresh one against repositories tbr
already served, finds the issue it filed instead of filing a second, and a try after a crash or a
POST whose answer was lost looks again first. The cost is one listing per tracking repository per
process, plus one page per 100 of its issues updated since: far under 0.1 request per filing. Only
issues the App authored count: a marker copied into someone else's issue is ignored. Titles are
for people (and auditors' searches); people rename issues, so titles are never used to match.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import structlog

from tbr.classify import Decision
from tbr.github import Gateway, GitHubError, IssueRef
from tbr.times import from_iso, iso

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


MARK = "<!-- tbr:change="
SKEW = timedelta(minutes=1)  # GitHub's `since` compares whole seconds: read the last minute again


def marker(key: str) -> str:
    return f"{MARK}{key} -->"


def marked_key(body: str) -> str | None:
    """The change key in a follow-up's marker, if its body has one (linear: two finds)."""
    start = body.find(MARK)
    if start < 0:
        return None
    start += len(MARK)
    end = body.find(" -->", start, start + 300)
    return body[start:end] if end > start else None


class FollowupIndex:
    """The follow-ups tbr filed, by change key, in each tracking repository (see the module's docstring)."""

    def __init__(self, store, gateway: Gateway):
        self.store = store
        self.gateway = gateway
        self._fresh: set[str] = set()  # tracking repos this process has brought up to date

    def find(self, inst: int, repo: str, key: str, refresh: bool = False) -> IssueRef | None:
        if refresh or repo.lower() not in self._fresh:
            self.refresh(inst, repo)
        found = self.store.indexed_followup(repo, key)
        return IssueRef(*found) if found else None

    def refresh(self, inst: int, repo: str) -> None:
        since = self.store.followup_index_since(repo)
        issues = self.gateway.own_issues(inst, repo, LABEL, from_iso(since) - SKEW if since else None)
        found = [(key, i["number"], i["url"]) for i in issues if (key := marked_key(i["body"]))]
        newest = max((i["updated_at"] for i in issues), default=None)
        self.store.index_followups(repo, found, iso(newest) if newest else None)
        self._fresh.add(repo.lower())
        log.info("followups.indexed", repo=repo, since=since, read=len(issues), found=len(found))

    def add(self, repo: str, key: str, issue: IssueRef) -> None:
        self.store.index_followups(repo, [(key, issue.number, issue.url)])


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
        f"Someone other than {people}, with write access to {change.repo} or one of its reviewers, reviews the"
        " change and then closes this issue as completed, "
        "or comments `LGTM` on it. If the review finds a problem, link the fix here before closing.",
    ]
    return "\n".join(lines) + "\n"


class Filer:
    """Files follow-ups through the gateway, once each (FollowupIndex); remembers which labels it has made sure of."""

    def __init__(self, gateway: Gateway, store):
        self.gateway = gateway
        self.index = FollowupIndex(store, gateway)
        self._labelled: set[tuple[str, str]] = set()

    def file(self, inst: int, tracking_repo: str, change: Change, decision: Decision, due: datetime,
             tz: ZoneInfo, days: int = 2, retry: bool = True,
             escalate: str | None = None) -> IssueRef:
        """File the follow-up, unless the index knows it filed one; on a `retry` (an earlier try may have
        created it), the index reads GitHub's listing again first."""
        gw = self.gateway
        found = self.index.find(inst, tracking_repo, change.key, refresh=retry)
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
            issue = gw.create_issue(inst, tracking_repo, title(change), text, labels, assignees)
        except GitHubError as e:
            if e.status != 422 or not assignees:
                raise
            # GitHub refuses assignees without access to the tracking repo: file it anyway.
            log.warning("followup.assignee_refused", change=change.key, assignee=change.actor, error=str(e))
            issue = gw.create_issue(inst, tracking_repo, title(change), text, labels, [])
        self.index.add(tracking_repo, change.key, issue)
        return issue
