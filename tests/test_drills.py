"""Fault drills: kill tbr mid-work, break GitHub, lock and fill the disk. Each drill ends with exactly one
follow-up per unapproved change and none for approved ones."""

from __future__ import annotations

import contextlib
import json
import re
import socket
import sqlite3
from datetime import datetime, timedelta, timezone

import pytest

from tbr import webhooks
from tbr.engine import process_start
from tbr.github import GitHubError, GitHubUnavailable
from tests import payloads
from tests.conftest import SECRET
from tests.processes import Gunicorn, eventually, pending

REPO = "acme/api"


def merged(github, repo, number: int, approved: bool, bot) -> dict:
    pr = github.add_pull(REPO, number, merged_at=bot.clock(), author="alice", merged_by="alice")
    if approved:
        github.add_collaborator(REPO, "bob", "write")
        github.add_review(REPO, number, "bob", submitted_at=bot.clock())
    return payloads.merged_pr(REPO, repo["id"], number, merged_at=bot.clock(), merge_sha=pr["merge_commit_sha"])


def followups(github) -> list[str]:
    return sorted(i["title"] for i in github.issues(REPO, include_seeded=False) if i["title"].startswith("TBR "))


def post(bot, event: str, payload: dict, guid: str):
    body = json.dumps(payload).encode()
    return bot.client.post("/webhook", data=body, headers=payloads.headers(event, body, SECRET, guid))


# the database ---------------------------------------------------------------------------------

def test_a_locked_database_answers_503_and_the_redelivery_is_taken(github, bot, monkeypatch):
    repo = github.add_repo(REPO)
    payload = merged(github, repo, 1, False, bot)
    monkeypatch.setattr(webhooks, "BUSY_MS", 50)
    other = sqlite3.connect(bot.store.path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another writer holds the lock
    try:
        answer = post(bot, "pull_request", payload, "locked-1")
    finally:
        other.execute("ROLLBACK")
    assert answer.status_code == 503 and "could not store" in answer.json["message"]
    assert bot.store.delivery("locked-1") is None
    assert post(bot, "pull_request", payload, "locked-1").status_code == 202  # GitHub's redelivery
    bot.run(after_seconds=300)
    assert followups(github) == ["TBR acme/api#1 follow-up review"]


def test_a_full_disk_answers_503_and_stores_nothing(github, bot):
    repo = github.add_repo(REPO)
    payload = merged(github, repo, 1, False, bot)
    pages = bot.store.db.execute("PRAGMA page_count").fetchone()[0]
    bot.store.db.execute(f"PRAGMA max_page_count = {pages}")  # this connection may not grow the file
    try:
        answer = post(bot, "pull_request", payload, "full-1")
        assert answer.status_code == 503 and "full" in answer.json["message"]
        forged = bot.client.post("/webhook", data=b"{}", headers=payloads.headers("push", b"{}", "wrong", "f-1"))
        assert forged.status_code == 401  # refusals still answer, uncounted
    finally:
        bot.store.db.execute("PRAGMA max_page_count = 1073741823")
    assert bot.store.delivery("full-1") is None
    assert post(bot, "pull_request", payload, "full-1").status_code == 202  # GitHub's redelivery
    bot.run(after_seconds=300)
    assert followups(github) == ["TBR acme/api#1 follow-up review"]


# a killed process's work ----------------------------------------------------------------------

def test_work_held_by_a_killed_process_is_taken_at_once_not_after_its_lease(github, bot):
    repo = github.add_repo(REPO)
    bot.deliver("pull_request", merged(github, repo, 1, False, bot), guid="d-1")
    dead = f"{socket.gethostname()}:999999:12345:deadbeef"  # a pid that started at another time
    bot.store.db.execute("UPDATE deliveries SET lease_owner = ?, lease_until = ?", [dead, "9999-01-01"])
    alive = f"{socket.gethostname()}:1:{process_start(1)}:cafe"
    bot.deliver("pull_request", merged(github, repo, 2, False, bot), guid="d-2")
    bot.store.db.execute("UPDATE deliveries SET lease_owner = ?, lease_until = ? WHERE guid = 'd-2'",
                         [alive, "9999-01-01"])
    assert bot.engine.release_dead_leases() == 1
    bot.run(after_seconds=300)
    assert followups(github) == ["TBR acme/api#1 follow-up review"]  # #2's owner (pid 1) still runs


# kill -9 -------------------------------------------------------------------------------------

def live_merges(github) -> tuple[dict, dict]:
    """#1 merged by its author alone, #2 approved by bob; both just now, on the real clock."""
    repo = github.add_repo(REPO, protected=("main",))
    now = datetime.now(timezone.utc)
    for number in (1, 2):
        github.add_pull(REPO, number, author="alice", merged_by="alice", merged_at=now)
    github.add_collaborator(REPO, "bob", "write")
    github.add_review(REPO, 2, "bob", submitted_at=now)
    return repo, {n: payloads.merged_pr(REPO, repo["id"], n, merged_at=now,
                                        merge_sha=github._pull(REPO, n)["merge_commit_sha"]) for n in (1, 2)}


def finish(github, env) -> None:
    """Start tbr again and let it finish: exactly the one follow-up, whatever the kill interrupted."""
    bot = Gunicorn(env)
    try:
        eventually(lambda: pending(env["TBR_DB"]) == 0 and followups(github))
    finally:
        bot.stop()
    assert followups(github) == ["TBR acme/api#1 follow-up review"]


def test_killed_during_the_grace_period(github, service_env):
    env = {**service_env, "TBR_GRACE_SECONDS": "2"}
    _, deliveries = live_merges(github)
    bot = Gunicorn(env)
    assert [bot.post("pull_request", p).status_code for p in deliveries.values()] == [202, 202]
    bot.kill()
    assert followups(github) == [] and pending(env["TBR_DB"]) >= 2
    finish(github, env)


def test_killed_while_github_creates_the_issue(github, service_env):
    _, deliveries = live_merges(github)
    held = github.hold("POST", f"/repos/{REPO}/issues")
    bot = Gunicorn(service_env)
    assert [bot.post("pull_request", p).status_code for p in deliveries.values()] == [202, 202]
    assert held.arrived.wait(30)
    bot.kill()
    held.release()  # GitHub goes on to create the issue; nobody hears the answer
    eventually(lambda: followups(github))
    finish(github, service_env)


def test_killed_during_a_sweep(github, service_env):
    live_merges(github)  # neither webhook ever arrives: only a sweep can find them
    held = github.hold("GET", f"/repos/{REPO}/activity")
    bot = Gunicorn(service_env)  # sweeps at start-up
    assert held.arrived.wait(30)
    bot.kill()
    held.release()
    finish(github, service_env)


# GitHub failing ---------------------------------------------------------------------------------

ENDPOINTS = [  # every endpoint the scenario below makes tbr use, as (method, path pattern)
    ("POST", r"/app/installations/\d+/access_tokens"),
    ("GET", r"/app/installations"),
    ("GET", r"/app/hook/deliveries"),
    ("GET", r"/installation/repositories"),
    ("GET", r"/repos/acme/api/installation"),
    ("GET", r"/repos/acme/[^/]+/contents/.*"),
    ("POST", r"/graphql"),
    ("GET", r"/repos/acme/api/activity"),
    ("GET", r"/repos/acme/api/rules/branches/.*"),
    ("POST", r"/repos/acme/api/labels"),
    ("GET", r"/repos/acme/api/issues"),  # the follow-up index, read once per process
    ("POST", r"/repos/acme/api/issues"),
    ("GET", r"/repos/acme/api/issues/\d+"),
    ("PATCH", r"/repos/acme/api/issues/\d+"),
    ("POST", r"/repos/acme/api/issues/\d+/comments"),
    ("GET", r"/repos/acme/api/issues/\d+/comments"),
    ("POST", r"/repos/acme/api/issues/\d+/labels"),
    ("POST", r"/repos/acme/api/check-runs"),
    ("PATCH", r"/repos/acme/api/check-runs/\d+"),
    ("GET", r"/repos/acme/api/collaborators/[^/]+/permission"),  # may bob sign off?
]

FAULTS = {
    "502 burst": lambda gh, m, p: gh.fail(m, p, 502, times=6),
    "secondary rate limit": lambda gh, m, p: gh.secondary_rate_limit(m, p, retry_after=120, times=2),
    "expired token": lambda gh, m, p: gh.fail(m, p, 401, times=2, body={
        "message": "Bad credentials", "documentation_url": "https://docs.github.com/rest"}),
}


def scenario(github, bot, fault=lambda: None) -> None:
    """An unapproved PR, an approved one, a direct push, a merge whose webhooks were lost, then
    overdue reminders, a sign-off and a refused close; with `fault` armed from the start. Work goes on as the service
    would do it: the worker's passes, hourly sweeps, reminders, until nothing is left."""
    from tbr import lifecycle, schedule, sweep

    repo = github.add_repo(REPO, protected=("main",))
    bot.engine.release_dead_leases()
    fault()
    for number, approved in ((1, False), (2, True)):
        bot.deliver("pull_request", merged(github, repo, number, approved, bot))
    sha = github.add_commit(REPO, "main", "d" * 40, message="hotfix")
    bot.deliver("push", payloads.push(REPO, repo["id"], commits=[(sha, "hotfix")], sender="carol",
                                      pushed_at=bot.clock()))
    lost = github.add_pull(REPO, 3, merged_at=bot.clock(), author="alice", merged_by="alice")
    github.add_commit(REPO, "main", lost["merge_commit_sha"], message="Merge #3", pull=3)
    for hour in range(30):
        if hour in (0, 6, 12, 24):
            sweep.sweep(bot.engine)
            with contextlib.suppress(GitHubUnavailable, GitHubError):  # APScheduler logs it; runs again
                schedule.queue_daily_controls(bot.engine)
        if hour == 12:  # overdue by now (Fri 02:00 + 2 business days): a reminder and a label
            lifecycle.plan_reminders(bot.store, bot.settings, bot.clock() + timedelta(days=5), bot.clock())
        if hour == 13:  # bob signs #1 off; alice closes her own #3, which tbr reopens
            for number, by in ((1, "bob"), (3, "alice")):
                issue = bot.change(f"pr:{repo['id']}:{number}")["followup_number"]
                github.close_issue(REPO, issue, by=by)
                bot.deliver("issues", payloads.issue_action(REPO, issue, "closed", sender=by, at=bot.clock()))
        while bot.run():
            pass
        bot.clock.advance(3600)


def outcome(github, bot) -> tuple:
    filed = [i for i in github.issues(REPO, include_seeded=False) if i["title"].startswith("TBR ")]
    signed = bot.store.db.execute("SELECT count(*) FROM changes WHERE followup_state = 'signed_off'").fetchone()[0]
    return sorted(i["title"] for i in filed), pending(bot.store.path), signed


EXPECTED = (["TBR acme/api#1 follow-up review", "TBR acme/api#3 follow-up review",
             "TBR acme/api@ddddddd follow-up review"], 0, 1)


def test_the_scenario_without_faults_uses_every_endpoint_listed_and_no_other(github, bot):
    scenario(github, bot)
    assert outcome(github, bot) == EXPECTED
    unused = [f"{method} {path}" for method, path in ENDPOINTS if not github.count(method, path)]
    assert unused == [], "not used: drop them from ENDPOINTS"
    unlisted = sorted({f"{m} {p}" for m, p, _ in github.requests
                       if not any(m == method and re.fullmatch(path, p) for method, path in ENDPOINTS)})
    assert unlisted == [], "used but not drilled: add them to ENDPOINTS"


@pytest.mark.parametrize("fault", FAULTS)
@pytest.mark.parametrize("method, path", ENDPOINTS, ids=[f"{m} {p}" for m, p in ENDPOINTS])
def test_github_failing_on_an_endpoint_delays_work_and_never_loses_or_doubles_it(github, bot, method, path, fault):
    scenario(github, bot, lambda: FAULTS[fault](github, method, path))
    assert outcome(github, bot) == EXPECTED
    assert github.count(method, path) > 1 or method == "POST"  # the fault was met, and what failed was tried again


def test_every_installation_token_expiring_at_once(github, bot):
    scenario(github, bot, github.expire_tokens)
    github.expire_tokens()
    bot.clock.advance(86400)
    scenario_rest = bot.engine.run_due
    scenario_rest()
    assert outcome(github, bot) == EXPECTED
