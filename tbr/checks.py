"""Controls as GitHub check runs, where engineers look: on pull requests and on commits.

`tbr/review` on an open PR's head says whether it has an approver (success, naming them) or not
(neutral: merging now opens a follow-up review); it never blocks a merge. On the commit that
reached production it says how the change was approved, or links its follow-up: action_required
while the review is owed, success once signed off, failure when overdue. Commit history then
shows, commit by commit, what was reviewed and when.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from tbr import patterns
from tbr.classify import Approval, Decision, PullFacts
from tbr.github import Gateway
from tbr.store import Store, iso

REVIEW = "tbr/review"
SEPARATION = "tbr/separation-of-duties"
REFERENCE = "tbr/change-reference"
CONTROLS = "tbr/controls"
CONFIG = "tbr/config"


def open_pull_status(decision: Decision) -> tuple[str, str, str]:
    """(conclusion, title, summary) for an open PR. Pure."""
    notes = "".join(f"\n- {n}" for n in decision.notes)
    if decision.approved:
        a = decision.approval
        return "success", f"Approved by @{a.approver} ({a.rule})", f"{decision.summary}\n\n[evidence]({a.url}){notes}"
    declared = (f"\n\nEmergency declared by @{decision.declaration.by}: {decision.declaration.reason}"
                if decision.declaration else
                "\n\nIf this is an emergency, declare it before merging: add a line `TBR: <reason>` (with the ticket,"
                " if there is one) to the description or a comment. Without one, the merge is counted as"
                " accidental and escalated.")
    return ("neutral", "No approval yet: merging now opens a follow-up review",
            "Nobody other than the author has approved this pull request yet (a review, an `LGTM` comment, "
            "or someone else merging it counts). Merging it now is allowed, and opens a follow-up review "
            f"due within the SLA.{declared}{notes}")


def merged_status(decision: Decision) -> tuple[str, str, str]:
    """For the commit of an approved change. Pure."""
    a = decision.approval
    return "success", f"Approved by @{a.approver} ({a.rule})", decision.summary


def followup_status(state: str, url: str, due_at: datetime, reviewer: str | None = None,
                    at: datetime | None = None, how: str | None = None) -> tuple[str, str, str]:
    """For the commit of an unapproved change: owed, signed off (or reverted) or overdue. Pure."""
    due = f"{due_at - timedelta(microseconds=1):%Y-%m-%d %H:%M} UTC"
    if state == "signed_off":
        done = "Reverted" if how == "reverted" else "Reviewed after the fact"
        return "success", f"{done} by @{reviewer} on {at:%Y-%m-%d}", f"Follow-up: {url}"
    if state == "overdue":
        return "failure", f"Follow-up review overdue (was due {due})", f"Follow-up: {url}"
    return "action_required", f"Follow-up review due {due}", (
        f"This change reached production without an approver. Its follow-up review is tracked in {url}.")


def separation_status(approvals: list[Approval], conflicted: dict[str, list[str]]) -> tuple[str, str, str]:
    """Fails when every approval comes from someone who wrote code in the PR. Pure."""
    if not approvals:
        return "neutral", "No approvals yet", "Separation of duties is checked once someone approves."
    independent = sorted({a.approver for a in approvals if a.approver not in conflicted})
    lines = "\n".join(f"- @{who}: {', '.join(why)}" for who, why in sorted(conflicted.items()))
    if independent:
        return ("success", f"Independent approval by {', '.join('@' + w for w in independent)}",
                f"At least one approver wrote none of this pull request's code.\n{lines}".strip())
    return ("failure", "Every approval comes from someone who wrote code in this pull request",
            f"An approval counts only from someone who neither authored nor co-authored its commits, "
            f"nor pushed commits after approving:\n{lines}")


def reference_status(facts: PullFacts, pattern: str) -> tuple[str, str, str]:
    """Wants a ticket matching `pattern` in the PR's title, body or branch. Pure."""
    for where, text in (("title", facts.title), ("body", facts.body), ("branch", facts.head_ref)):
        found = patterns.search(pattern, text)
        if found:
            return "success", f"References {found} (in the {where})", f"Pattern: `{pattern}`"
    return ("failure", "No change reference",
            f"Reference a ticket matching `{pattern}` in the pull request's title, body or branch name.")


def queue(store: Store, key: str, repo: str, installation_id: int | None, sha: str, name: str,
          status: tuple[str, str, str], now: datetime, details_url: str | None = None,
          change_key: str | None = None) -> None:
    """Publish a check run through the retried action queue (call within a write transaction)."""
    conclusion, title, summary = status
    store.add_action(key, "check", repo, 0, now, change_key, installation_id=installation_id, sha=sha, name=name,
                     conclusion=conclusion, title=title, summary=summary, details_url=details_url)


class CheckRuns:
    """Publishes a check run, or updates the one tbr already published for that commit and name."""

    def __init__(self, store: Store, gateway: Gateway):
        self.store = store
        self.gateway = gateway

    def publish(self, inst: int, repo: str, head_sha: str, name: str, status: tuple[str, str, str],
                now: datetime, details_url: str | None = None) -> None:
        conclusion, title, summary = status
        row = self.store.db.execute("SELECT run_id FROM check_runs WHERE repo = ? AND head_sha = ? AND name = ?",
                                    [repo, head_sha, name]).fetchone()
        if row:
            self.gateway.update_check_run(inst, repo, row[0], conclusion, title, summary, details_url)
        else:
            run_id = self.gateway.create_check_run(inst, repo, head_sha, name, conclusion, title, summary, details_url)
            self.store.db.execute("INSERT OR REPLACE INTO check_runs (repo, head_sha, name, run_id, updated_at)"
                                  " VALUES (?, ?, ?, ?, ?)", [repo, head_sha, name, run_id, iso(now)])
