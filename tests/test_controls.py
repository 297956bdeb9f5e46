"""Branch protection drift: the `tbr/controls` check run, and an issue when production loses a control."""

from __future__ import annotations

import pytest

from tbr.controls import protection, weakened
from tbr.schedule import queue_daily_controls
from tests import payloads
from tests.conftest import Bot, with_

REPO, TRACK = "acme/api", "acme/compliance"
ALL = {"require_pr": True, "block_force_push": True, "block_deletion": True}


@pytest.mark.parametrize("classic, rules, state", [
    ({"required_pull_request_reviews": True, "allow_force_pushes": False, "allow_deletions": False}, set(), ALL),
    ({"required_pull_request_reviews": True, "allow_force_pushes": True, "allow_deletions": False}, set(),
     {**ALL, "block_force_push": False}),
    ({"required_pull_request_reviews": False, "allow_force_pushes": False, "allow_deletions": False}, set(),
     {**ALL, "require_pr": False}),
    (None, {"pull_request", "non_fast_forward", "deletion"}, ALL),
    (None, {"pull_request"}, {"require_pr": True, "block_force_push": False, "block_deletion": False}),
    (None, set(), {"require_pr": False, "block_force_push": False, "block_deletion": False}),
])
def test_protection_from_classic_and_rulesets(classic, rules, state):
    assert protection("main", classic, rules).state() == state


def test_weakened_is_only_a_loss_after_a_first_look():
    assert weakened(None, {**ALL, "require_pr": False}) == []
    assert weakened(ALL, {**ALL, "require_pr": False}) == ["Changes go through a pull request"]
    assert weakened({**ALL, "require_pr": False}, ALL) == []


@pytest.fixture
def setup(github, gh_settings, clock):
    github.add_repo(TRACK)
    repo = github.add_repo(REPO)  # main has the default protection
    github.clock = clock
    return repo, Bot(with_(gh_settings, tracking_repo=TRACK), clock)


def controls_runs(github):
    return github.check_runs(REPO, name="tbr/controls")


def test_protected_branch_passes_and_losing_protection_opens_an_issue(github, setup):
    repo, bot = setup
    bot.deliver("branch_protection_rule", payloads.protection_rule(REPO, repo["id"], action="created", sender="admin"))
    bot.run()
    [run] = controls_runs(github)
    assert run["conclusion"] == "success"
    assert "| Changes go through a pull request | ✅ classic protection |" in run["output"]["summary"]
    github.remove_protection(REPO, "main")
    event = payloads.protection_rule(REPO, repo["id"], action="deleted", sender="mallory")
    bot.deliver("branch_protection_rule", event, "g-deleted")
    bot.run()
    latest = controls_runs(github)[-1]
    assert latest["conclusion"] == "failure"
    assert latest["output"]["title"] == "3 of 3 branch controls not enforced on main"
    [issue] = github.issues(TRACK, include_seeded=False)
    assert issue["title"] == "TBR controls weakened: acme/api:main"
    assert "Changed by: @mallory (branch protection rule 'production' deleted" in issue["body"]
    assert "- Force pushes are blocked" in issue["body"]
    bot.deliver("branch_protection_rule", event, "g-deleted-again")  # the same news under a new GUID
    bot.run()
    assert len(github.issues(TRACK, include_seeded=False)) == 1  # already weakened: nothing new is lost


def test_ruleset_protection_counts(github, setup):
    repo, bot = setup
    github.remove_protection(REPO, "main")
    github.set_ruleset(REPO, "main", rules=["pull_request", "non_fast_forward", "deletion"])
    bot.deliver("branch_protection_rule", payloads.protection_rule(REPO, repo["id"], action="edited", sender="admin"))
    bot.run()
    [run] = controls_runs(github)
    assert run["conclusion"] == "success" and "✅ ruleset" in run["output"]["summary"]


def test_daily_check_looks_at_every_repo_and_reports_without_blame(github, setup):
    repo, bot = setup
    assert queue_daily_controls(bot.engine) == 2  # acme/api and acme/compliance
    bot.run()
    assert len(controls_runs(github)) == 1
    github.set_protection(REPO, "main", allow_force_pushes=True)
    bot.clock.advance(86400)
    queue_daily_controls(bot.engine)
    bot.run()
    [issue] = github.issues(TRACK, include_seeded=False)
    assert "Changed by: not known (found by the daily check)" in issue["body"]
    assert "- Force pushes are blocked" in issue["body"] and "pull request\n" not in issue["body"]


def test_controls_check_can_be_turned_off(github, setup):
    repo, bot = setup
    github.add_repo("acme/.github")  # by the organization's policy (a repository's file cannot)
    github.put_file("acme/.github", ".github/tbr.yml", "checks: [review]\n")
    bot.deliver("branch_protection_rule", payloads.protection_rule(REPO, repo["id"], action="edited", sender="admin"))
    bot.run()
    assert controls_runs(github) == []


def test_a_new_installation_gets_its_controls_checked(github, setup):
    repo, bot = setup
    payload = payloads.example("installation.created.1")
    payload["repositories"] = [{"id": repo["id"], "name": "api", "full_name": REPO, "private": False}]
    payload["installation"]["id"] = 1
    bot.deliver("installation", payload)
    bot.run()
    assert [r["conclusion"] for r in controls_runs(github)] == ["success"]
