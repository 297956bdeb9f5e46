"""GitHub requests per judged PR, counted at the fake GitHub: at most 3, filing and check run included."""

from __future__ import annotations

import json
import math
import time
from datetime import timedelta

import pytest

from tbr import accesscontrols, schedule
from tbr.sweep import sweep
from tests import payloads
from tests.conftest import Bot

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


# periodic work at scale (issue 18): figures in bench/README.md, from bench/sweep_cost.py --------------

def an_org(github, clock, n: int) -> dict[str, dict]:
    """`n` repositories, last pushed to a month ago."""
    now = github.clock
    github.clock = lambda: clock() - timedelta(days=30)
    repos = {f"acme/r{i:05d}": github.add_repo(f"acme/r{i:05d}") for i in range(n)}
    github.clock = now
    return repos


def spent(github, work) -> tuple[int, float, object]:
    """What `work` cost against GitHub's rate limits (REST requests plus GraphQL points), and its wall time."""
    before, started = github.spent(), time.perf_counter()
    result = work()
    return github.spent() - before, time.perf_counter() - started, result


def pushes(github, bot, repos: dict, names, *, delivered: bool) -> None:
    """A change to main in each of `names`. Delivered: an approved PR's merge, its webhooks received.
    Lost: a direct push, a backdated one, a merge, a force push, in turn, their webhooks never received."""
    now = bot.clock()
    for i, name in enumerate(names):
        if delivered:
            pr = github.add_pull(name, 1, merged_at=now)
            github.add_collaborator(name, "bob", "write")  # an approver who could have merged
            github.add_review(name, 1, "bob", submitted_at=now)
            sha = github.add_commit(name, "main", pr["merge_commit_sha"], message="Merge #1", pull=1, committed_at=now)
            bot.deliver("pull_request", payloads.merged_pr(name, repos[name]["id"], 1, merged_at=now, merge_sha=sha))
            bot.deliver("push", payloads.push(name, repos[name]["id"], commits=[(sha, "Merge #1")], pushed_at=now))
        elif i % 4 == 0:
            github.add_commit(name, "main", message="change", committed_at=now)
        elif i % 4 == 1:
            github.add_commit(name, "main", message="backdated", committed_at=now - timedelta(days=40), pushed_at=now)
        elif i % 4 == 2:
            pr = github.add_pull(name, 1, merged_at=now)
            github.add_commit(name, "main", pr["merge_commit_sha"], message="Merge #1", pull=1, committed_at=now)
        else:
            github.force_push(name, "main", drop=0, message="forced")
    bot.clock.advance(301)
    while bot.run():
        pass


def a_day_of_daily_jobs(bot) -> None:
    schedule.queue_daily_controls(bot.engine)
    while bot.run():
        pass
    accesscontrols.daily(bot.engine, bot.clock())


def test_periodic_work_costs_what_changed(github, gh_settings, clock):
    """At 500 repositories: an idle sweep costs its repository list and a few requests, a sweep after 20
    pushes one more request per pushed repository, a day of daily jobs a fifth of 0.3 per repository."""
    github.clock = clock
    repos = an_org(github, clock, 500)
    bot = Bot(gh_settings, clock)
    sweep(bot.engine)
    a_day_of_daily_jobs(bot)  # first looks
    listing = 5  # a hundred repositories a page
    bot.clock.advance(3600)
    idle, _, _ = spent(github, lambda: sweep(bot.engine))
    assert idle <= listing + 4, github.charged[-10:]
    bot.clock.advance(3600)
    pushes(github, bot, repos, list(repos)[:20], delivered=True)
    active, _, result = spent(github, lambda: sweep(bot.engine))
    assert result.changes_found == 0 and active <= listing + 4 + 20, github.charged[-30:]
    bot.clock.advance(3600)
    pushes(github, bot, repos, list(repos)[20:40], delivered=False)
    lost, _, result = spent(github, lambda: sweep(bot.engine))
    # 25: each merge's PR too. Per repository its activity and its configuration again (a lost push to the
    # default branch may have changed it); the commits of all 20 pushes in one GraphQL point.
    assert result.changes_found == 25 and lost <= listing + 4 + 2 * 20 + 1
    bot.clock.advance(86400)
    while bot.run():  # the changes found, judged and filed: not daily work
        pass
    daily, _, _ = spent(github, lambda: a_day_of_daily_jobs(bot))
    # Three repository lists, a GraphQL point per hundred, the organization's 2FA lists; ruleset answers are 304s.
    assert daily <= 0.3 * 500 / 5, github.charged[-10:]  # a fifth of the target, at this size
