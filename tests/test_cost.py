"""GitHub requests per judged PR, counted at the fake GitHub: at most 3, filing and check run included."""

from __future__ import annotations

from tests import payloads

REPO = "acme/api"


def merge_and_judge(github, bot, repo, number: int, approved: bool, by_comment: bool = False) -> None:
    """A PR's life as GitHub reports it: its closed webhook and its merge commit's push, then the grace period.
    Approved by bob (a writer): by review, or by an LGTM comment."""
    pr = github.add_pull(REPO, number, merged_at=bot.clock(), author="alice", merged_by="alice")
    if approved and by_comment:
        github.add_issue_comment(REPO, number, "bob", "LGTM")
    elif approved:
        github.add_review(REPO, number, "bob")
    github.add_commit(REPO, "main", pr["merge_commit_sha"], message=f"Merge #{number}", pull=number)
    bot.deliver("pull_request", payloads.merged_pr(REPO, repo["id"], number, merged_at=bot.clock(),
                                                   merge_sha=pr["merge_commit_sha"]))
    bot.deliver("push", payloads.push(REPO, repo["id"], commits=[(pr["merge_commit_sha"], f"Merge #{number}")],
                                      pushed_at=bot.clock()))
    bot.run(after_seconds=300)
    while bot.run():
        pass


def test_requests_per_judged_pr(github, bot):
    repo = github.add_repo(REPO)
    github.add_collaborator(REPO, "bob", "write")
    merge_and_judge(github, bot, repo, 1, approved=False)  # warm-up: token, installation, configuration, label
    # Approved: the PR as GraphQL, the check run. Unapproved: those and the issue. The push: nothing.
    for approved, most in ((True, 2), (False, 3)):
        before = github.count(None, ".*")
        for n in range(10):
            merge_and_judge(github, bot, repo, 100 * (1 + approved) + n, approved)
        per_pr = (github.count(None, ".*") - before) / 10
        assert per_pr == most, (approved, per_pr, github.requests[-8:])
    assert len([c for c in bot.changes() if c["status"] == "followup"]) == 11
    assert github.count("POST", "/repos/acme/api/check-runs") == 21  # tbr/review on each merge commit


def test_a_comment_approval_costs_its_authors_access_once(github, bot):
    repo = github.add_repo(REPO)
    github.add_collaborator(REPO, "bob", "write")
    merge_and_judge(github, bot, repo, 1, approved=False)  # warm-up
    before = github.count(None, ".*")
    for n in range(10):
        merge_and_judge(github, bot, repo, 100 + n, approved=True, by_comment=True)
    # The PR and the check run each time; bob's access once (GitHub's permission API), then remembered.
    assert github.count(None, ".*") - before == 2 * 10 + 1
    assert github.count("GET", r"/repos/acme/api/collaborators/bob/permission") == 1
    assert all(c["status"] == "approved" for c in bot.changes() if c["number"] and c["number"] >= 100)
