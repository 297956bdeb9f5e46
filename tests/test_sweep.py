"""The reconciliation sweep finds what webhooks missed, and asks GitHub to resend failed deliveries."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tbr.sweep import OVERLAP, default_since, sweep
from tests import payloads
from tests.conftest import Bot, with_

REPO = "acme/api"


@pytest.fixture
def repo(github):
    return github.add_repo(REPO, protected=("main", "release"))


def lost_merge(github, bot, number=9, author="alice", merged_by="alice"):
    """A PR merged on GitHub whose webhooks never reached tbr."""
    pr = github.add_pull(REPO, number, author=author, merged_by=merged_by,
                         merged_at=bot.clock() - timedelta(minutes=30))
    github.add_commit(REPO, "main", sha=pr["merge_commit_sha"], message=f"Merge pull request #{number}",
                      committed_at=bot.clock() - timedelta(minutes=30), pull=number)
    return pr


def titles(github, repo=REPO):
    return sorted(i["title"] for i in github.issues(repo, include_seeded=False))


def test_sweep_finds_a_merge_whose_webhook_was_lost(github, repo, bot):
    lost_merge(github, bot)
    result = sweep(bot.engine)
    assert (result.repos_checked, result.changes_found, result.errors) == (1, 2, 0)  # the PR and its commit
    bot.run()
    bot.run()
    assert titles(github) == ["TBR acme/api#9 follow-up review"]
    statuses = {c["kind"]: (c["status"], c["source"]) for c in bot.changes()}
    assert statuses == {"pr": ("followup", "sweep"), "push": ("covered", "sweep")}


def test_sweep_finds_a_direct_push_whose_webhook_was_lost(github, repo, bot):
    sha = github.add_commit(REPO, "release", message="hotfix straight to release", author="carol",
                            committed_at=bot.clock() - timedelta(minutes=10))
    sweep(bot.engine)
    bot.run()
    assert titles(github) == [f"TBR acme/api@{sha[:7]} follow-up review"]
    assert github.issues(REPO)[0]["assignees"] == ["carol"]


def test_sweep_ignores_what_webhooks_already_delivered(github, repo, bot):
    pr = github.add_pull(REPO, 7, merged_at=bot.clock(), merged_by="bob")
    github.add_commit(REPO, "main", sha=pr["merge_commit_sha"], pull=7)
    bot.deliver("pull_request", payloads.merged_pr(REPO, repo["id"], 7, merged_by="bob", merged_at=bot.clock(),
                                                   merge_sha=pr["merge_commit_sha"]))
    bot.deliver("push", payloads.push(REPO, repo["id"], commits=[(pr["merge_commit_sha"], "Merge #7")],
                                      pushed_at=bot.clock()))
    bot.run(after_seconds=300)
    assert sweep(bot.engine).changes_found == 0
    assert len(bot.changes()) == 2


def test_unwatched_branches_and_repos_are_not_swept(github, repo, gh_settings, clock):
    github.add_repo("acme/other")
    github.add_commit(REPO, "feature/x", message="wip", committed_at=clock())
    github.add_commit("acme/other", "main", message="direct", committed_at=clock())
    github.clock = clock
    bot = Bot(with_(gh_settings, repos=frozenset({REPO})), clock)
    result = sweep(bot.engine)
    assert (result.repos_checked, result.changes_found) == (1, 0)


def test_one_failing_repo_does_not_stop_the_sweep(github, repo, bot):
    github.add_repo("acme/web")
    lost_merge(github, bot)
    github.fail("GET", r"/repos/acme/web/pulls", 404)
    result = sweep(bot.engine)
    assert (result.repos_checked, result.errors) == (1, 1)
    row = bot.store.db.execute("SELECT repos_checked, changes_found, error, finished_at FROM sweeps").fetchone()
    assert row[0] == 1 and row[1] == 2 and "acme/web" in row[2] and row[3]


def test_sweeps_are_recorded_and_overlap(github, repo, bot):
    first = sweep(bot.engine)
    assert first.since == bot.clock() - timedelta(days=3)
    bot.clock.advance(3600)
    assert default_since(bot.engine, bot.clock()) == bot.clock() - timedelta(hours=1) - OVERLAP
    assert bot.store.db.execute("SELECT count(*) FROM sweeps").fetchone()[0] == 1


def test_failed_deliveries_are_redelivered_once(github, repo, bot):
    lost = github.add_hook_delivery("g-lost", status_code=503, delivered_at=bot.clock() - timedelta(hours=2))
    github.add_hook_delivery("g-later-ok", status_code=502, delivered_at=bot.clock() - timedelta(hours=2))
    github.add_hook_delivery("g-later-ok", status_code=200, delivered_at=bot.clock() - timedelta(hours=1),
                             redelivery=True)
    stored = payloads.merged_pr(REPO, repo["id"], 3, merged_by="bob", merged_at=bot.clock())
    bot.deliver("pull_request", stored, "g-stored")  # tbr has it: GitHub only thinks it failed (timeout)
    github.add_hook_delivery("g-stored", status_code=504, delivered_at=bot.clock() - timedelta(minutes=5))
    github.add_hook_delivery("g-ancient", status_code=500, delivered_at=bot.clock() - timedelta(days=4))
    assert sweep(bot.engine).redeliveries == 1
    assert github.redelivery_requests == [lost["id"]]
    assert sweep(bot.engine).redeliveries == 0
    assert github.redelivery_requests == [lost["id"]]


def test_sweep_follows_configured_branches(github, repo, bot):
    github.add_repo("acme/.github")  # the organization's branches replace the default and protected ones
    github.put_file("acme/.github", ".github/tbr.yml", "branches: ['deploy/*']\n")
    github.add_commit(REPO, "main", message="not production here", committed_at=bot.clock())
    sha = github.add_commit(REPO, "deploy/eu", message="hotfix", committed_at=bot.clock() - timedelta(minutes=10))
    sweep(bot.engine)
    bot.run()
    assert titles(github) == [f"TBR acme/api@{sha[:7]} follow-up review"]


def test_old_payloads_are_dropped_but_redeliveries_still_recognised(github, repo, bot):
    github.add_pull(REPO, 7, merged_at=bot.clock(), merged_by="bob")
    body = payloads.merged_pr(REPO, repo["id"], 7, merged_by="bob", merged_at=bot.clock())
    bot.deliver("pull_request", body, guid="old")
    bot.run(after_seconds=300)
    bot.clock.advance(29 * 86400)
    sweep(bot.engine)
    assert bot.store.delivery("old")["payload"] != ""  # within TBR_PAYLOAD_DAYS (30)
    bot.clock.advance(2 * 86400)
    sweep(bot.engine)
    assert bot.store.delivery("old")["payload"] == ""
    assert bot.deliver("pull_request", body, guid="old").status_code == 200  # still known
    assert len(bot.changes()) == 1
