"""The core loop end to end: webhook in, judgement after grace, exactly one follow-up out.

GitHub is the fake on loopback (tests/fakegithub.py); time is the injected clock.
"""

from __future__ import annotations

import json
import threading
from datetime import timedelta

import pytest

from tbr.store import LEASE, iso
from tests import payloads
from tests.conftest import Bot, with_

REPO = "acme/api"


@pytest.fixture
def repo(github):
    repo = github.add_repo(REPO, protected=("main", "release"), ruleset_branches=("prod/*",))
    github.add_collaborator(REPO, "bob", "write")  # a colleague who can merge, so can approve
    return repo


def merge(github, repo, bot, number=7, author="alice", merged_by="alice", base="main", **kw):
    """A PR merged on the fake GitHub now, and its pull_request.closed payload."""
    pr = github.add_pull(REPO, number, author=author, merged_by=merged_by, base=base, merged_at=bot.clock(), **kw)
    payload = payloads.merged_pr(REPO, repo["id"], number, author=author, merged_by=merged_by,
                                 merged_at=bot.clock(), base=base, merge_sha=pr["merge_commit_sha"])
    return pr, payload


def filed(github, repo=REPO) -> list[dict]:
    return github.issues(repo, include_seeded=False)


def test_unapproved_merge_gets_one_followup_after_grace(github, repo, bot):
    _, payload = merge(github, repo, bot)
    bot.deliver("pull_request", payload, "d-1")
    bot.run(after_seconds=299)
    assert filed(github) == []  # still inside the grace period
    bot.run(after_seconds=1)
    [issue] = filed(github)
    assert issue["title"] == "TBR acme/api#7 follow-up review"
    assert issue["labels"] == ["tbr", "tbr:undeclared"] and issue["assignees"] == ["alice"]
    body = issue["body"]
    assert f"<!-- tbr:change=pr:{repo['id']}:7 -->" in body
    assert "https://github.com/acme/api/pull/7" in body or f"{github.url}/acme/api/pull/7" in body
    assert "| Author | @alice |" in body and "| Merged by | @alice |" in body
    assert "| Merged at | 2026-11-20 02:00 UTC |" in body
    assert "**Tue 24 Nov 2026**, end of day (UTC" in body  # merged Friday: due Tuesday
    assert "No approval found: alice authored it, alice merged it" in body
    assert "closes this issue as completed" in body
    change = bot.change(f"pr:{repo['id']}:7")
    assert change["status"] == "followup" and change["followup_number"] == issue["number"]
    assert change["due_at"].startswith("2026-11-25T00:00:00")
    assert json.loads(change["decision"])["rule"] == "none"
    assert bot.store.delivery("d-1")["status"] == "done"
    assert github.labels(REPO)["tbr"]["description"].startswith("Follow-up review")


def test_approved_merge_files_nothing_and_says_who(github, repo, bot):
    _, payload = merge(github, repo, bot)
    github.add_review(REPO, 7, "bob", "APPROVED", submitted_at=bot.clock() - timedelta(minutes=3))
    bot.deliver("pull_request", payload)
    bot.run(after_seconds=300)
    assert filed(github) == []
    change = bot.change(f"pr:{repo['id']}:7")
    decision = json.loads(change["decision"])
    assert change["status"] == "approved"
    assert (decision["rule"], decision["approval"]["approver"]) == ("review", "bob")
    assert decision["approval"]["url"] and decision["approval"]["at"].startswith("2026-11-20T01:57")


def test_lgtm_during_grace_counts_and_after_it_does_not(github, repo, bot):
    _, first = merge(github, repo, bot, number=7)
    _, second = merge(github, repo, bot, number=8)
    bot.deliver("pull_request", first)
    bot.deliver("pull_request", second)
    github.add_issue_comment(REPO, 7, "bob", "LGTM", created_at=bot.clock() + timedelta(minutes=4))
    github.add_issue_comment(REPO, 8, "bob", "LGTM", created_at=bot.clock() + timedelta(minutes=6))
    bot.run(after_seconds=400)
    assert bot.change(f"pr:{repo['id']}:7")["status"] == "approved"
    assert bot.change(f"pr:{repo['id']}:8")["status"] == "followup"
    [issue] = filed(github)
    assert "bob wrote 'LGTM' at 2026-11-20 02:06 UTC, after the grace period" in issue["body"]


def test_merge_of_someone_elses_pr_and_exempt_author_are_approvals(github, repo, bot):
    _, by_other = merge(github, repo, bot, number=7, author="alice", merged_by="bob")
    _, dependabot = merge(github, repo, bot, number=8, author="dependabot[bot]", merged_by="dependabot[bot]")
    bot.deliver("pull_request", by_other)
    bot.deliver("pull_request", dependabot)
    bot.run(after_seconds=300)
    assert filed(github) == []
    rules = {c["number"]: json.loads(c["decision"])["rule"] for c in bot.changes()}
    assert rules == {7: "merged-by-other", 8: "exempt-author"}


def test_approval_on_a_later_page_of_reviews_is_found(github, repo, bot):
    _, payload = merge(github, repo, bot)
    for i in range(100):
        github.add_review(REPO, 7, f"commenter{i}", "COMMENTED", submitted_at=bot.clock() - timedelta(hours=1))
    github.add_review(REPO, 7, "bob", "APPROVED", submitted_at=bot.clock() - timedelta(minutes=1))
    bot.deliver("pull_request", payload)
    bot.run(after_seconds=300)
    assert bot.change(f"pr:{repo['id']}:7")["status"] == "approved"
    assert github.count("POST", "/graphql") == 2  # the PR with its first reviews, then the rest of them


def test_duplicate_and_same_content_redeliveries_file_once(github, repo, bot):
    _, payload = merge(github, repo, bot)
    bot.deliver("pull_request", payload, "d-1")
    bot.deliver("pull_request", payload, "d-1")  # GitHub's redelivery: same GUID
    bot.deliver("pull_request", payload, "d-2")  # same content under a new GUID
    bot.run(after_seconds=300)
    bot.deliver("pull_request", payload, "d-3")  # and again after the follow-up exists
    bot.run(after_seconds=300)
    assert len(filed(github)) == 1
    assert len(bot.changes()) == 1
    outcomes = [r["outcome"] for r in bot.store.db.query("SELECT outcome FROM deliveries ORDER BY guid")]
    assert outcomes == ["recorded: pr:1000:7", "replay of delivery d-1", "replay of delivery d-1"]


def test_concurrent_deliveries_and_workers_file_once(github, repo, bot, gh_settings, clock):
    """Two processes' worth of engines (own connections, own lease owners) racing on one database."""
    _, payload = merge(github, repo, bot)
    other = Bot(gh_settings, clock)
    start = threading.Barrier(4)
    errors = []

    def deliver(b, guid):
        start.wait()
        try:
            b.deliver("pull_request", payload, guid)
        except AssertionError as e:
            errors.append(e)

    threads = [threading.Thread(target=deliver, args=(b, g)) for b, g in
               ((bot, "d-1"), (other, "d-1"), (bot, "d-2"), (other, "d-3"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    clock.advance(300)
    race = threading.Barrier(2)

    def work(b):
        race.wait()
        b.engine.run_due()
        b.store.close()

    threads = [threading.Thread(target=work, args=(b,)) for b in (bot, other)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(filed(github)) == 1
    assert github.count("POST", r"/repos/acme/api/issues") == 1
    assert len(list(bot.store.db.query("SELECT * FROM deliveries"))) == 3


def test_restart_resumes_pending_work(github, repo, bot, gh_settings, clock):
    _, payload = merge(github, repo, bot)
    bot.deliver("pull_request", payload, "d-1")
    bot.store.close()
    # A new process on the same database: nothing was kept in memory.
    restarted = Bot(gh_settings, clock)
    restarted.run(after_seconds=300)
    assert len(filed(github)) == 1
    assert restarted.store.delivery("d-1")["status"] == "done"


def test_crash_mid_work_is_resumed_when_the_lease_runs_out(github, repo, bot, gh_settings, clock):
    _, payload = merge(github, repo, bot)
    bot.deliver("pull_request", payload, "d-1")
    clock.advance(300)
    assert bot.store.claim("deliveries", "d-1", "crashed-worker", clock())  # took it, then died
    restarted = Bot(gh_settings, clock)
    assert restarted.run() == 0  # the dead worker's lease still holds
    restarted.run(after_seconds=LEASE.total_seconds())
    restarted.run()
    assert len(filed(github)) == 1


def test_crash_between_creating_the_issue_and_recording_it(github, repo, bot):
    """GitHub creates the issue but the answer is lost: the next attempt finds it by its marker."""
    _, payload = merge(github, repo, bot)
    github.fail("POST", r"/repos/acme/api/issues", 502, after_effect=True)
    bot.deliver("pull_request", payload)
    bot.run(after_seconds=300)
    key = f"pr:{repo['id']}:7"
    assert bot.change(key)["status"] == "pending" and "502" in bot.change(key)["last_error"]
    assert len(filed(github)) == 1  # created, but tbr could not know
    bot.run(after_seconds=60)
    assert len(filed(github)) == 1
    assert github.count("POST", r"/repos/acme/api/issues") == 1  # a 502 on POST is never retried blindly
    change = bot.change(key)
    assert change["status"] == "followup" and change["followup_number"] == filed(github)[0]["number"]


def test_an_issue_filed_before_a_crash_is_found_by_its_marker_though_renamed(github, repo, bot):
    key = f"pr:{repo['id']}:7"
    _, payload = merge(github, repo, bot)
    bot.deliver("pull_request", payload)
    bot.run()
    # An earlier try recorded that it was filing, GitHub created the issue, and the process died
    # before recording it; since then a person renamed it.
    bot.store.update_change(key, filing_at=iso(bot.clock()))
    github.add_existing_issue(REPO, "Renamed by a human", f"<!-- tbr:change={key} -->\nold body", labels=["tbr"],
                              created_at=bot.clock(), author=f"{github.app_slug}[bot]")
    bot.run(after_seconds=300)
    assert filed(github) == [] and github.count("POST", r"/repos/acme/api/issues") == 0
    assert bot.change(key)["followup_number"] == github.issues(REPO)[0]["number"]


def test_a_process_reads_the_followup_listing_once_then_files_without_looking(github, repo, bot):
    for number in (7, 8, 9):
        _, payload = merge(github, repo, bot, number=number)
        bot.deliver("pull_request", payload)
        bot.run(after_seconds=300)
    assert len(filed(github)) == 3 and github.count("GET", r"/repos/acme/api/issues$") == 1


def test_github_outage_delays_work_and_never_drops_it(github, repo, bot):
    _, payload = merge(github, repo, bot)
    github.fail("POST", "/graphql", 502, times=12)  # 4 tries per attempt: 3 attempts fail
    bot.deliver("pull_request", payload)
    bot.run(after_seconds=300)
    key = f"pr:{repo['id']}:7"
    for _ in range(3):
        change = bot.change(key)
        assert change["status"] == "pending" and "502" in change["last_error"]
        bot.run(after_seconds=3600)
    # three attempts failed and the fourth filed it; none counted towards quarantine (GitHub's fault, not the item's)
    assert bot.change(key)["status"] == "followup" and bot.change(key)["attempts"] == 4
    assert bot.change(key)["quarantined_at"] is None
    assert len(filed(github)) == 1


def test_long_rate_limit_reschedules_instead_of_sleeping(github, repo, bot):
    _, payload = merge(github, repo, bot)
    github.rate_limit("POST", "/graphql", reset_in_seconds=1800)
    bot.deliver("pull_request", payload)
    bot.run(after_seconds=300)
    change = bot.change(f"pr:{repo['id']}:7")
    assert change["status"] == "pending" and "rate limited" in change["last_error"]
    assert change["next_attempt_at"] > (bot.clock() + timedelta(minutes=25)).isoformat()
    assert bot.run(after_seconds=1700) == 0  # not before the reset
    bot.run(after_seconds=200)
    assert len(filed(github)) == 1


def test_short_secondary_rate_limit_is_waited_out_in_place(github, repo, bot):
    _, payload = merge(github, repo, bot)
    github.secondary_rate_limit("POST", "/graphql", retry_after=0)
    bot.deliver("pull_request", payload)
    bot.run(after_seconds=300)
    assert len(filed(github)) == 1


def test_refused_assignee_still_gets_the_issue_filed(github, bot):
    repo = github.add_repo(REPO, assignable=("bob",))
    _, payload = merge(github, repo, bot)
    bot.deliver("pull_request", payload)
    bot.run(after_seconds=300)
    [issue] = filed(github)
    assert issue["assignees"] == []


def test_followups_go_to_the_tracking_repo(github, repo, gh_settings, clock):
    github.add_repo("acme/compliance", installation_id=1)
    bot = Bot(with_(gh_settings, tracking_repo="acme/compliance"), clock)
    github.clock = clock
    _, payload = merge(github, repo, bot)
    bot.deliver("pull_request", payload)
    bot.run(after_seconds=300)
    assert filed(github) == []
    [issue] = filed(github, "acme/compliance")
    assert issue["title"] == "TBR acme/api#7 follow-up review"


# pushes ----------------------------------------------------------------------------------------

def push(bot, repo, commits, branch="main", sender="alice", forced=False):
    return payloads.push(REPO, repo["id"], branch=branch, commits=commits, sender=sender, forced=forced,
                         pushed_at=bot.clock())


def test_direct_push_gets_one_followup_naming_commits_and_pusher(github, repo, bot):
    commits = [("a1" * 20, "hotfix: stop the bleeding"), ("b2" * 20, "hotfix: and log it")]
    bot.deliver("push", push(bot, repo, commits, forced=True, sender="carol"))
    bot.run(after_seconds=300)
    [issue] = filed(github)
    assert issue["title"] == "TBR acme/api@b2b2b2b follow-up review"
    assert issue["assignees"] == ["carol"]
    assert "| Force push | yes |" in issue["body"] and "| Pushed by | @carol |" in issue["body"]
    assert "`a1a1a1a`" in issue["body"] and "hotfix: stop the bleeding" in issue["body"]
    assert "Direct push: carol force-pushed 2 commit(s) to main" in issue["body"]


def test_the_push_of_a_pr_merge_is_not_a_second_change(github, repo, bot):
    pr, payload = merge(github, repo, bot)
    bot.deliver("push", push(bot, repo, [(pr["merge_commit_sha"], "Merge pull request #7")]))
    bot.deliver("pull_request", payload)
    bot.run(after_seconds=300)
    assert [i["title"] for i in filed(github)] == ["TBR acme/api#7 follow-up review"]
    statuses = {c["kind"]: c["status"] for c in bot.changes()}
    assert statuses == {"pr": "followup", "push": "covered"}


def test_merge_push_is_matched_by_merge_sha_when_github_has_not_associated_it_yet(github, repo, bot):
    pr, payload = merge(github, repo, bot)
    github.dissociate(REPO, pr["merge_commit_sha"])  # associatedPullRequests still empty
    bot.deliver("push", push(bot, repo, [(pr["merge_commit_sha"], "Squashed (#7)")]))
    bot.deliver("pull_request", payload)
    bot.run(after_seconds=300)
    assert len(filed(github)) == 1
    assert github.graphql_count("CommitPulls") == 0


def test_push_reveals_a_merge_whose_webhook_was_lost(github, repo, bot):
    pr = github.add_pull(REPO, 9, author="alice", merged_by="alice", merged_at=bot.clock())
    bot.deliver("push", push(bot, repo, [(pr["merge_commit_sha"], "Merge pull request #9")]))
    bot.run(after_seconds=300)
    bot.run()
    assert [i["title"] for i in filed(github)] == ["TBR acme/api#9 follow-up review"]
    assert bot.change(f"pr:{repo['id']}:9")["source"].startswith("found through push")


@pytest.mark.parametrize("branch, watched", [
    ("main", True), ("release", True), ("prod/eu", True), ("feature/x", False),
])
def test_which_branches_are_watched(github, repo, bot, branch, watched):
    github.add_branch(REPO, branch)
    bot.deliver("push", push(bot, repo, [("c3" * 20, "direct")], branch=branch))
    bot.run(after_seconds=300)
    assert len(filed(github)) == (1 if watched else 0)
    if not watched:
        assert "neither the default branch nor protected" in bot.store.db.execute(
            "SELECT outcome FROM deliveries").fetchone()[0]


def test_repos_outside_the_allowlist_are_ignored(github, repo, gh_settings, clock):
    bot = Bot(with_(gh_settings, repos=frozenset({"acme/other"})), clock)
    github.clock = clock
    _, payload = merge(github, repo, bot)
    bot.deliver("pull_request", payload)
    bot.run(after_seconds=300)
    assert filed(github) == [] and bot.changes() == []


def test_merge_into_an_unwatched_branch_is_ignored(github, repo, bot):
    github.add_branch(REPO, "experiment")
    _, payload = merge(github, repo, bot, base="experiment")
    bot.deliver("pull_request", payload)
    bot.run(after_seconds=300)
    assert filed(github) == [] and bot.changes() == []


@pytest.mark.parametrize("text, approved", [
    ("LGTM? I have not looked at the diff yet", False),
    ("NOT  LGTM", False),
    ("isn't LGTM", False),
    ("Not yet LGTM", False),
    ("```\nLGTM\n```", False),
    ("<blockquote>LGTM</blockquote>", False),
    ("LGTM, thanks", True),  # the legitimate twin
    ("Looks good. LGTM 🚢", True),
])
def test_only_a_comment_that_states_approval_approves(github, repo, bot, text, approved):
    _, payload = merge(github, repo, bot)
    github.add_issue_comment(REPO, 7, "bob", text, created_at=bot.clock() - timedelta(minutes=1))
    bot.deliver("pull_request", payload)
    bot.run(after_seconds=300)
    change = bot.change(f"pr:{repo['id']}:7")
    assert change["status"] == ("approved" if approved else "followup")
    assert len(filed(github)) == (0 if approved else 1)
