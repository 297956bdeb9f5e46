"""`tbr/review` check runs, as the fake GitHub receives them, field by field."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from tbr import lifecycle
from tests import payloads
from tests.conftest import Bot, with_

REPO, TRACK = "acme/api", "acme/compliance"


@pytest.fixture
def repo(github):
    github.add_repo(TRACK)
    repo = github.add_repo(REPO)
    for login in ("bob", "carol"):
        github.add_collaborator(REPO, login, "write")
    return repo


@pytest.fixture
def tracked(github, repo, gh_settings, clock):
    github.clock = clock
    return Bot(with_(gh_settings, tracking_repo=TRACK), clock)


def runs(github, sha):
    return github.check_runs(REPO, head_sha=sha, name="tbr/review")


def test_open_pr_is_neutral_then_success_once_approved(github, repo, bot):
    pr = github.add_pull(REPO, 5, merged=False, author="alice")
    bot.deliver("pull_request", payloads.pull_event(REPO, repo["id"], 5, head_sha=pr["head_sha"]))
    bot.run()
    [run] = runs(github, pr["head_sha"])
    assert (run["status"], run["conclusion"]) == ("completed", "neutral")
    assert run["output"]["title"] == "No approval yet: merging now opens a follow-up review"
    github.add_review(REPO, 5, "bob", "APPROVED", submitted_at=bot.clock())
    bot.deliver("pull_request_review", payloads.review_event(REPO, repo["id"], 5, reviewer="bob", state="approved",
                                                             at=bot.clock()))
    bot.run()
    [run] = runs(github, pr["head_sha"])  # the same run, updated
    assert run["conclusion"] == "success" and run["output"]["title"] == "Approved by @bob (review)"
    assert len(run["history"]) == 2


def test_lgtm_comment_on_the_pr_turns_it_green(github, repo, bot):
    pr = github.add_pull(REPO, 5, merged=False, author="alice")
    github.add_issue_comment(REPO, 5, "carol", "LGTM", created_at=bot.clock())
    payload = payloads.issue_comment(REPO, 5, commenter="carol", body="LGTM", at=bot.clock())
    payload["issue"]["pull_request"] = {"url": "x"}
    bot.deliver("issue_comment", payload)
    bot.run()
    [run] = runs(github, pr["head_sha"])
    assert run["conclusion"] == "success" and "@carol" in run["output"]["title"]


def test_prs_not_headed_for_production_get_no_check(github, repo, bot):
    github.add_branch(REPO, "experiment")
    pr = github.add_pull(REPO, 5, merged=False, base="experiment")
    bot.deliver("pull_request", payloads.pull_event(REPO, repo["id"], 5, base="experiment", head_sha=pr["head_sha"]))
    bot.run()
    assert runs(github, pr["head_sha"]) == []


def test_checks_can_be_turned_off(github, repo, bot):
    github.add_repo("acme/.github")  # by the organization's policy (a repository's file cannot)
    github.put_file("acme/.github", ".github/tbr.yml", "checks: [config]\n")
    pr = github.add_pull(REPO, 5, merged=False)
    bot.deliver("pull_request", payloads.pull_event(REPO, repo["id"], 5, head_sha=pr["head_sha"]))
    bot.run()
    assert runs(github, pr["head_sha"]) == []


def test_unapproved_merge_commit_goes_action_required_then_success_on_sign_off(github, repo, tracked):
    bot = tracked
    pr = github.add_pull(REPO, 7, merged_at=bot.clock())
    bot.deliver("pull_request", payloads.merged_pr(REPO, repo["id"], 7, merged_at=bot.clock(),
                                                   merge_sha=pr["merge_commit_sha"]))
    bot.run(after_seconds=300)
    [run] = runs(github, pr["merge_commit_sha"])
    issue = github.issues(TRACK)[0]
    assert run["conclusion"] == "action_required"
    assert run["output"]["title"] == "Follow-up review due 2026-11-24 23:59 UTC"
    assert run["details_url"] == bot.change(f"pr:{repo['id']}:7")["followup_url"]
    github.close_issue(TRACK, issue["number"], by="bob")
    bot.deliver("issues", payloads.issue_action(TRACK, issue["number"], "closed", sender="bob", at=bot.clock()))
    bot.run()
    [run] = runs(github, pr["merge_commit_sha"])
    assert run["conclusion"] == "success"
    assert run["output"]["title"] == "Reviewed after the fact by @bob on 2026-11-20"


def test_overdue_follow_up_fails_its_commit(github, repo, tracked):
    bot = tracked
    sha = "d" * 40
    bot.deliver("push", payloads.push(REPO, repo["id"], commits=[(sha, "hotfix")], pushed_at=bot.clock()))
    bot.run(after_seconds=300)
    assert runs(github, sha)[0]["conclusion"] == "action_required"
    bot.clock.now = datetime(2026, 11, 25, 9, tzinfo=timezone.utc)
    lifecycle.plan_reminders(bot.store, bot.settings, bot.clock())
    bot.run()
    [run] = runs(github, sha)
    assert run["conclusion"] == "failure" and run["output"]["title"].startswith("Follow-up review overdue")


def test_approved_merge_commit_says_who_approved(github, repo, bot):
    pr = github.add_pull(REPO, 7, merged_at=bot.clock(), merged_by="bob")
    bot.deliver("pull_request", payloads.merged_pr(REPO, repo["id"], 7, merged_by="bob", merged_at=bot.clock(),
                                                   merge_sha=pr["merge_commit_sha"]))
    bot.run(after_seconds=300)
    [run] = runs(github, pr["merge_commit_sha"])
    assert run["conclusion"] == "success" and run["output"]["title"] == "Approved by @bob (merged-by-other)"


def test_a_failing_check_api_does_not_hold_up_the_follow_up(github, repo, tracked):
    bot = tracked
    github.fail("POST", rf"/repos/{REPO}/check-runs", 403, times=50)
    pr = github.add_pull(REPO, 7, merged_at=bot.clock())
    bot.deliver("pull_request", payloads.merged_pr(REPO, repo["id"], 7, merged_at=bot.clock(),
                                                   merge_sha=pr["merge_commit_sha"]))
    bot.run(after_seconds=300)
    assert len(github.issues(TRACK)) == 1
    assert bot.change(f"pr:{repo['id']}:7")["status"] == "followup"



def open_pr_with_commits(github, bot, repo, commits):
    """An open PR #5 by alice whose commits are [(author, message)]; returns its head sha."""
    github.add_pull(REPO, 5, merged=False, author="alice")
    head = None
    for author, message in commits:
        head = github.add_pull_commit(REPO, 5, author=author, message=message, committed_at=bot.clock())
    return head


def review_pr(bot, repo, head):
    bot.deliver("pull_request", payloads.pull_event(REPO, repo["id"], 5, head_sha=head, action="synchronize"))
    bot.run()


def test_approval_by_a_co_author_fails_separation_of_duties(github, repo, bot):
    head = open_pr_with_commits(github, bot, repo, [
        ("alice", "Fix it"), ("alice", "Pair on it\n\nCo-authored-by: Bob B <4242+bob@users.noreply.github.com>")])
    github.add_review(REPO, 5, "bob", "APPROVED", submitted_at=bot.clock())
    review_pr(bot, repo, head)
    [sod] = github.check_runs(REPO, head_sha=head, name="tbr/separation-of-duties")
    assert sod["conclusion"] == "failure"
    assert sod["output"]["title"] == "Every approval comes from someone who wrote code in this pull request"
    assert f"@bob: co-authored {head[:7]}" in sod["output"]["summary"]
    [review] = github.check_runs(REPO, head_sha=head, name="tbr/review")
    assert review["conclusion"] == "neutral"
    assert "does not count under separation of duties: bob co-authored" in review["output"]["summary"]


def test_approver_who_commits_after_approving_is_not_independent(github, repo, bot, clock):
    github.add_pull(REPO, 5, merged=False, author="alice")
    github.add_review(REPO, 5, "bob", "APPROVED", submitted_at=clock())
    clock.advance(60)
    head = github.add_pull_commit(REPO, 5, author="bob", message="tweak", committed_at=clock())
    review_pr(bot, repo, head)
    [sod] = github.check_runs(REPO, head_sha=head, name="tbr/separation-of-duties")
    assert sod["conclusion"] == "failure" and f"@bob: authored {head[:7]}" in sod["output"]["summary"]


def test_independent_approval_passes_separation_of_duties(github, repo, bot):
    head = open_pr_with_commits(github, bot, repo, [("alice", "Fix it")])
    github.add_review(REPO, 5, "carol", "APPROVED", submitted_at=bot.clock())
    review_pr(bot, repo, head)
    [sod] = github.check_runs(REPO, head_sha=head, name="tbr/separation-of-duties")
    assert (sod["conclusion"], sod["output"]["title"]) == ("success", "Independent approval by @carol")


@pytest.mark.parametrize("title, head_ref, conclusion", [
    ("OPS-123: fix the outage", "fix", "success"),
    ("fix the outage", "ops-77-hotfix", "failure"),   # the pattern is case-sensitive as written
    ("fix the outage", "OPS-77-hotfix", "success"),
    ("fix the outage", "fix", "failure"),
])
def test_change_reference(github, repo, bot, title, head_ref, conclusion):
    github.put_file(REPO, ".github/tbr.yml", "ticket_pattern: 'OPS-[0-9]+'\n")
    pr = github.add_pull(REPO, 5, merged=False, title=title, head=head_ref)
    review_pr(bot, repo, pr["head_sha"])
    [ref] = github.check_runs(REPO, head_sha=pr["head_sha"], name="tbr/change-reference")
    assert ref["conclusion"] == conclusion


def test_no_change_reference_check_without_a_pattern(github, repo, bot):
    pr = github.add_pull(REPO, 5, merged=False)
    review_pr(bot, repo, pr["head_sha"])
    assert github.check_runs(REPO, head_sha=pr["head_sha"], name="tbr/change-reference") == []
