"""Declared emergencies and reverts, end to end: webhook in, follow-up (or its completion) out.

GitHub is the fake on loopback; the PR's description, comments and labels reach tbr through GraphQL,
as they do from GitHub. Time is the injected clock.
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from tbr import audit, evidence, metrics
from tests import payloads
from tests.conftest import tracked

REPO, TRACK = "acme/api", "acme/compliance"


@pytest.fixture
def env(github, gh_settings, clock):
    repo, bot = tracked(github, gh_settings, clock, REPO, TRACK)
    github.add_collaborator(REPO, "bob", "write")
    github.put_file(REPO, ".github/tbr.yml", "ticket_pattern: 'INC-[0-9]+'\n")
    return repo, bot


def merge(github, repo, bot, number, *, author="alice", merged_by="alice", deliver=True, **pull):
    """Merge a PR on the fake GitHub now and deliver its pull_request.closed."""
    pr = github.add_pull(REPO, number, author=author, merged_by=merged_by, merged_at=bot.clock(), **pull)
    if deliver:
        deliver_merge(bot, repo, pr)
    return pr


def deliver_merge(bot, repo, pr):
    bot.deliver("pull_request", payloads.merged_pr(REPO, repo["id"], pr["number"], author=pr["author"],
                                                   merged_by=pr["merged_by"], merged_at=pr["merged_at"],
                                                   merge_sha=pr["merge_commit_sha"]))


def followup(github, bot, repo, number) -> tuple[dict, dict]:
    change = bot.change(f"pr:{repo['id']}:{number}")
    assert change["status"] == "followup"
    [issue] = [i for i in github.issues(TRACK, include_seeded=False) if i["number"] == change["followup_number"]]
    return change, issue


def row_of(bot, change) -> dict:
    period = evidence.Period(bot.clock() - timedelta(days=30), bot.clock() + timedelta(days=1))
    return next(r for r in evidence.rows(bot.store.db, period) if r["change"] == f"#{change['number']}")


def test_declared_in_the_description_is_recorded_everywhere(env, github):
    repo, bot = env
    merge(github, repo, bot, 7, body="Roll back the cache.\n\nTBR: checkout is down, INC-42")
    bot.run(after_seconds=300)
    change, issue = followup(github, bot, repo, 7)
    assert issue["labels"] == ["tbr"]  # declared: not an accident
    assert "### Declared emergency" in issue["body"] and "### Undeclared" not in issue["body"]
    assert ("@alice declared it in [the pull request's description](" in issue["body"]
            and ": checkout is down, INC-42 (ticket INC-42)" in issue["body"])
    assert "@acme/security" not in issue["body"]
    declared = json.loads(change["decision"])["declaration"]
    assert (declared["by"], declared["reason"], declared["ticket"]) == ("alice", "checkout is down, INC-42", "INC-42")
    [judged] = audit.records(bot.store.db, subject="acme/api#7", kind="change.judged")
    assert judged["data"]["declaration"] == declared
    row = row_of(bot, change)
    assert {k: row[k] for k in ("emergency", "declared_by", "reason", "ticket")} == {
        "emergency": "declared", "declared_by": "alice", "reason": "checkout is down, INC-42", "ticket": "INC-42"}
    assert row["declared_at"] == change["happened_at"][:19] + "+00:00"


def test_declared_in_a_comment_after_the_merge_within_grace_counts(env, github):
    repo, bot = env
    merge(github, repo, bot, 7)
    bot.clock.advance(120)
    comment = github.add_issue_comment(REPO, 7, "alice", "TBR: payments failing, INC-9", created_at=bot.clock())
    bot.run(after_seconds=180)
    change, issue = followup(github, bot, repo, 7)
    assert issue["labels"] == ["tbr"]
    assert "@alice declared it in [a comment](" in issue["body"] and "payments failing, INC-9 (ticket INC-9)" in issue["body"]
    assert row_of(bot, change)["declared_at"].startswith("2026-11-20T02:02")
    assert json.loads(change["decision"])["declaration"]["url"].endswith(f"#issuecomment-{comment['id']}")


@pytest.mark.parametrize("who,note", [
    ("bob", "bob declared an emergency, but only the author or the merger can"),
    ("alice", "alice declared an emergency at 2026-11-20 02:06 UTC, after the grace period"),
])
def test_a_declaration_by_someone_else_or_too_late_is_undeclared_and_escalated(env, github, who, note):
    repo, bot = env
    merge(github, repo, bot, 7)
    github.add_issue_comment(REPO, 7, who, "TBR: outage", created_at=bot.clock() + timedelta(minutes=6 if who == "alice" else 1))
    bot.run(after_seconds=300)
    change, issue = followup(github, bot, repo, 7)
    assert issue["labels"] == ["tbr", "tbr:undeclared"]
    assert "### Undeclared" in issue["body"] and "this merge looks accidental. @acme/security: for your attention." in issue["body"]
    assert f"- {note}" in issue["body"]
    assert row_of(bot, change)["emergency"] == "undeclared"
    assert github.labels(TRACK)["tbr:undeclared"]["description"].startswith("Merged without approval and without")


def test_labelled_tbr_without_a_reason_is_undeclared_and_says_why(env, github):
    repo, bot = env
    merge(github, repo, bot, 7, labels=["tbr"])
    bot.run(after_seconds=300)
    _, issue = followup(github, bot, repo, 7)
    assert issue["labels"] == ["tbr", "tbr:undeclared"]
    assert "labelled `tbr`, but with no `TBR: <reason>` line" in issue["body"]


def test_an_approval_within_grace_still_clears_an_undeclared_merge(env, github):
    repo, bot = env
    merge(github, repo, bot, 7)
    github.add_review(REPO, 7, "bob", "APPROVED", submitted_at=bot.clock() + timedelta(minutes=4))
    bot.run(after_seconds=300)
    assert bot.change(f"pr:{repo['id']}:7")["status"] == "approved"
    assert github.issues(TRACK, include_seeded=False) == []


def test_an_open_pull_request_is_told_how_to_declare(env, github):
    repo, bot = env
    pr = github.add_pull(REPO, 5, merged=False)
    bot.deliver("pull_request", payloads.pull_event(REPO, repo["id"], 5, head_sha=pr["head_sha"]))
    bot.run()
    [run] = github.check_runs(REPO, head_sha=pr["head_sha"], name="tbr/review")
    assert run["conclusion"] == "neutral"
    assert "declare it before merging: add a line `TBR: <reason>`" in run["output"]["summary"]
    github.add_issue_comment(REPO, 5, "alice", "TBR: INC-3 login broken", created_at=bot.clock())
    payload = payloads.issue_comment(REPO, 5, commenter="alice", body="TBR: INC-3 login broken", at=bot.clock())
    payload["issue"]["pull_request"] = {"url": "x"}
    bot.deliver("issue_comment", payload)
    bot.run()
    [run] = github.check_runs(REPO, head_sha=pr["head_sha"], name="tbr/review")
    assert run["conclusion"] == "neutral"  # declaring is not approving
    assert "Emergency declared by @alice: INC-3 login broken" in run["output"]["summary"]


def revert_of(github, repo, bot, target: dict, number=8, *, by_sha=False, **kw):
    """Merge GitHub's revert of `target` (by its description, or only by its commit message)."""
    body = "" if by_sha else f"Reverts {REPO}#{target['number']}"
    pr = merge(github, repo, bot, number, body=body, title=f"Revert \"{target['title']}\"", deliver=False, **kw)
    github.add_pull_commit(REPO, number, message=f"Revert \"{target['title']}\"\n\n"
                                                 f"This reverts commit {target['merge_commit_sha']}.")
    deliver_merge(bot, repo, pr)
    return pr


@pytest.mark.parametrize("by_sha", [False, True], ids=["by description", "by merge commit"])
def test_a_revert_completes_the_followup_and_is_judged_itself(env, github, by_sha):
    repo, bot = env
    target = merge(github, repo, bot, 7)
    bot.run(after_seconds=300)
    change, issue = followup(github, bot, repo, 7)
    bot.clock.advance(3600)
    revert_of(github, repo, bot, target, by_sha=by_sha)
    bot.run(after_seconds=300)
    bot.run()  # the queued comment, close and check run
    change, issue = followup(github, bot, repo, 7)
    assert (change["followup_state"], change["signoff_how"], change["signed_off_by"]) == ("signed_off", "reverted", "alice")
    assert change["signed_off_at"].startswith("2026-11-20T03:05") and change["within_sla"] == 1
    assert issue["state"] == "closed"
    [note] = [c["body"] for c in github.comments(TRACK, issue["number"])]
    assert "\nCompleted by a revert: @alice merged [acme/api#8](" in note and "within the SLA" in note
    [record] = audit.records(bot.store.db, subject="acme/api#7", kind="followup.reverted")
    assert record["actor"] == "alice" and record["data"]["revert"].endswith("/acme/api/pull/8")
    runs = github.check_runs(REPO, head_sha=target["merge_commit_sha"], name="tbr/review")
    assert runs[-1]["conclusion"] == "success" and runs[-1]["output"]["title"].startswith("Reverted by @alice")
    assert row_of(bot, change)["completed_how"] == "reverted"
    # The revert is a change like any other: self-merged, it has its own follow-up.
    revert, _ = followup(github, bot, repo, 8)
    assert revert["followup_state"] == "open"


def test_tbr_closing_a_reverted_followup_is_not_refused(env, github):
    repo, bot = env
    target = merge(github, repo, bot, 7)
    bot.run(after_seconds=300)
    bot.clock.advance(600)
    revert_of(github, repo, bot, target)
    bot.run(after_seconds=300)
    bot.run()
    change, issue = followup(github, bot, repo, 7)
    bot.deliver("issues", payloads.issue_action(TRACK, issue["number"], "closed", sender="tbr[bot]", at=bot.clock()))
    bot.run()
    assert followup(github, bot, repo, 7)[1]["state"] == "closed"
    assert len(github.comments(TRACK, issue["number"])) == 1


def test_a_revert_judged_first_completes_the_followup_when_it_is_filed(env, github):
    repo, bot = env
    target = merge(github, repo, bot, 7, deliver=False)  # its delivery comes late (a redelivery)
    bot.clock.advance(60)
    revert_of(github, repo, bot, target, merged_by="carol")  # merged by someone else: approved
    bot.run(after_seconds=300)
    assert bot.change(f"pr:{repo['id']}:8")["status"] == "approved"
    deliver_merge(bot, repo, target)
    bot.run()
    bot.run()
    change, issue = followup(github, bot, repo, 7)
    assert (change["followup_state"], change["signoff_how"], change["signed_off_by"]) == ("signed_off", "reverted", "carol")
    assert issue["state"] == "closed"


def test_reverts_complete_nothing_when_turned_off(env, github):
    repo, bot = env
    github.put_file(REPO, ".github/tbr.yml", "revert_completes: false\n")
    target = merge(github, repo, bot, 7)
    bot.run(after_seconds=300)
    revert_of(github, repo, bot, target)
    bot.run(after_seconds=300)
    bot.run()
    change, issue = followup(github, bot, repo, 7)
    assert change["followup_state"] == "open" and issue["state"] == "open"


def test_monthly_figures_in_the_evidence_and_metrics(env, github):
    repo, bot = env
    merge(github, repo, bot, 7, body="TBR: outage")
    target = merge(github, repo, bot, 8)
    bot.run(after_seconds=300)
    bot.clock.advance(6 * 3600)
    revert_of(github, repo, bot, target, number=9, merged_by="carol")
    bot.run(after_seconds=300)
    bot.run()
    period = evidence.Period(bot.clock() - timedelta(days=30), bot.clock() + timedelta(days=1))
    [month] = evidence.summary(bot.store.db, period, bot.clock())["by_month"]
    assert month == {"month": "2026-11", "exceptions": 2, "declared": 1, "undeclared": 1, "reverted": 1,
                     "before_tbr": 0, "median_business_days": 0.25}
    text = metrics.render(bot.store, bot.clock).decode()
    for kind, value in (("all", 2), ("declared", 1), ("undeclared", 1), ("reverted", 1), ("before_tbr", 0)):
        assert f'tbr_exceptions_total{{kind="{kind}",month="2026-11"}} {value}.0' in text
    assert 'tbr_exceptions_median_business_days{month="2026-11"} 0.25' in text


def test_a_revert_merged_before_the_change_it_names_completes_nothing(env, github):
    repo, bot = env
    merge(github, repo, bot, 8, body=f"Reverts {REPO}#7", merged_by="carol")  # names a PR not merged yet
    bot.run(after_seconds=300)
    merge(github, repo, bot, 7)
    bot.run(after_seconds=300)
    bot.run()
    change, issue = followup(github, bot, repo, 7)
    assert change["followup_state"] == "open" and issue["state"] == "open"
