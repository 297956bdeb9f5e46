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
    github.fail("GET", r"/repos/acme/web/activity", 404)
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


# what GitHub received, not what commit dates say (issue 16.4) --------------------------------------

def swept_once(github, bot):
    """A first sweep, an hour ago: the next one looks back an hour (and its overlap), not three days."""
    sweep(bot.engine)
    bot.clock.advance(3600)


def test_a_backdated_push_whose_webhook_was_lost_is_found(github, repo, bot):
    swept_once(github, bot)
    sha = github.add_commit(REPO, "main", message="backdated", author="mallory", pusher="mallory",
                            committed_at=bot.clock() - timedelta(days=10), pushed_at=bot.clock())
    assert sweep(bot.engine).changes_found == 1
    change = bot.change(f"push:{repo['id']}:main:{sha}")
    assert (change["actor"], change["happened_at"]) == ("mallory", bot.clock().isoformat(timespec="microseconds"))
    bot.run(after_seconds=301)
    [issue] = github.issues(REPO, include_seeded=False)
    assert issue["title"] == f"TBR acme/api@{sha[:7]} follow-up review" and "@mallory" in issue["body"]


def test_a_force_push_that_rewrote_production_is_named_in_its_follow_up(github, repo, bot):
    first = github.add_commit(REPO, "main", message="reviewed fix", pull=None)
    github.add_pull(REPO, 4, merge_commit_sha=first, merged_at=bot.clock())
    swept_once(github, bot)
    bot.run(after_seconds=301)
    before = len(github.issues(REPO, include_seeded=False))
    sha = github.force_push(REPO, "main", drop=1, message="rewritten", author="mallory",
                            committed_at=bot.clock() - timedelta(days=30))
    assert sweep(bot.engine).changes_found == 1
    facts = __import__("json").loads(bot.change(f"push:{repo['id']}:main:{sha}")["facts"])
    assert (facts["forced"], facts["rewrote"], facts["before"]) == (True, 1, first)
    bot.run(after_seconds=301)
    issue = github.issues(REPO, include_seeded=False)[before]
    assert "rewrote the history of `main`" in issue["body"] and f"`{first[:7]}`" in issue["body"]
    assert "force-pushed 1 commit(s)" in issue["body"]


def test_a_push_tbr_saw_costs_no_more_than_the_activity_log(github, repo, bot):
    swept_once(github, bot)
    sha = github.add_commit(REPO, "main", message="delivered", committed_at=bot.clock())
    bot.deliver("push", payloads.push(REPO, repo["id"], commits=[(sha, "delivered")], pushed_at=bot.clock()))
    bot.run()
    before = github.spent()
    assert sweep(bot.engine).changes_found == 0
    assert github.spent() - before <= 5  # installations, repositories, activity, deliveries (+ token)
    assert github.count("POST", "/graphql") == 0


def test_many_repositories_lose_webhooks_and_every_change_is_found(github, gh_settings, clock):
    """Scaled down from the bench's 10,000 repositories and 100 lost pushes (bench/sweep_cost.py)."""
    github.clock = clock
    names = [f"acme/r{i:04d}" for i in range(400)]
    repos = {n: github.add_repo(n) for n in names}
    bot = Bot(gh_settings, clock)
    swept_once(github, bot)
    lost = {}
    for i, name in enumerate(names[::10]):  # 40 lost: a direct push, a backdated one, a merge, a force push
        kind = i % 4
        if kind == 0:
            lost[name] = ("push", github.add_commit(name, "main", message="direct", committed_at=clock()))
        elif kind == 1:
            lost[name] = ("push", github.add_commit(name, "main", message="old", pushed_at=clock(),
                                                    committed_at=clock() - timedelta(days=40)))
        elif kind == 2:
            pr = github.add_pull(name, 1, merged_at=clock())
            github.add_commit(name, "main", pr["merge_commit_sha"], message="Merge #1", pull=1, committed_at=clock())
            lost[name] = ("pr", 1)
        else:
            lost[name] = ("push", github.force_push(name, "main", drop=0, message="forced"))
    for name in names[5::10]:  # 40 delivered: nothing to find there
        sha = github.add_commit(name, "main", message="seen", committed_at=clock())
        bot.deliver("push", payloads.push(name, repos[name]["id"], commits=[(sha, "seen")], pushed_at=clock()))
    bot.run()
    result = sweep(bot.engine)
    assert (result.repos_checked, result.repos_active, result.errors) == (400, 80, 0)
    keys = {c["key"] for c in bot.changes() if c["source"] == "sweep"}
    want = {f"pr:{repos[n]['id']}:1" if kind == "pr" else f"push:{repos[n]['id']}:main:{v}"
            for n, (kind, v) in lost.items()}
    assert want <= keys and len(keys) == len(want) + 10  # and each lost merge's commit
    assert sweep(bot.engine).changes_found == 0


# GitHub's rate limit: the safety net waits, the work that matters goes on (issue 18.3) -----------------

def test_the_sweep_pauses_under_the_reserve_and_judging_goes_on(github, repo, bot):
    from tbr.cli import budget_text
    from tbr.metrics import render

    lost_merge(github, bot)
    limit = github.rate_limit_state()["limit"]
    github.use_rate_limit(int(limit * 0.85))
    bot.gateway.installation_repos(1)  # any answer tells tbr where the budget stands
    result = sweep(bot.engine)
    assert result.paused and "under the 20% kept for judging and filing" in result.paused
    assert result.changes_found == 0 and github.count("GET", "/repos/acme/api/activity") == 0
    assert "Paused until" in budget_text(bot.store, bot.clock()) and "sweep" in budget_text(bot.store, bot.clock())
    assert b'tbr_safety_net_paused{reason=' in render(bot.store, bot.clock)
    bot.deliver("pull_request", payloads.merged_pr(REPO, repo["id"], 9, merged_at=bot.clock() - timedelta(minutes=30),
                                                   merge_sha=github._pull(REPO, 9)["merge_commit_sha"]))
    bot.run()
    assert titles(github) == ["TBR acme/api#9 follow-up review"]  # judged and filed all the same
    bot.clock.advance(3601)  # GitHub's window renews
    github.use_rate_limit(0)
    bot.gateway.installation_repos(1)
    assert sweep(bot.engine).paused is None


def test_a_secondary_rate_limit_pauses_the_sweep_for_as_long_as_github_asks(github, repo, bot):
    swept_once(github, bot)
    sha = github.add_commit(REPO, "release", message="hotfix", committed_at=bot.clock())
    github.secondary_rate_limit("GET", r"/repos/acme/api/activity", retry_after=120, status=429)
    asked = github.count("GET", "/repos/acme/api/activity") + 1
    assert "GitHub asked tbr to wait" in sweep(bot.engine).paused
    bot.clock.advance(60)
    assert sweep(bot.engine).paused  # still within GitHub's two minutes
    assert github.count("GET", "/repos/acme/api/activity") == asked
    bot.clock.advance(61)
    result = sweep(bot.engine)
    assert (result.paused, result.changes_found) == (None, 1)
    assert bot.change(f"push:{repo['id']}:release:{sha}")
