"""GitHub requests per judged PR, counted at the fake GitHub: at most 3, filing and check run included."""

from __future__ import annotations

import json
import math

import pytest

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


@pytest.mark.parametrize("size", [300, 2048])  # 2,048: the most commits a push payload lists
def test_matching_a_push_to_its_pull_requests_costs_a_query_per_hundred_commits(github, bot, size):
    """A rebase-merged PR's commits and a few direct ones in one big push: each commit is matched to the
    merged PRs GitHub associates with it, a hundred commits per GraphQL query, not a request each."""
    repo = github.add_repo(REPO)
    github.add_pull(REPO, 5, merged_at=bot.clock(), author="alice", merged_by="alice")
    github.add_pull(REPO, 6, author="carol", base="release", merged=False, state="open")  # open, elsewhere
    shas = [f"{i:040x}" for i in range(1, size + 1)]
    for sha in shas[:-3]:
        github.associate(REPO, sha, 5)
    github.associate(REPO, shas[-1], 6)
    bot.deliver("push", payloads.push(REPO, repo["id"], commits=[(s, f"Commit {s[-4:]}") for s in shas],
                                      sender="carol", pushed_at=bot.clock()))
    bot.run(after_seconds=300)
    assert github.graphql_count("CommitPulls") == math.ceil(size / 100)
    push = next(c for c in bot.changes() if c["kind"] == "push")
    assert push["status"] == "followup"
    assert [c["sha"] for c in json.loads(push["facts"])["commits"]] == shas[-3:]  # only the direct ones
    assert any(c["key"].endswith(":5") for c in bot.changes())  # the merged PR, found through its push
