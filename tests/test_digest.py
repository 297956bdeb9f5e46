"""The weekly digest for a known week, and its schedule."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from tbr import audit, digest
from tbr.schedule import Scheduler, digest_due
from tbr.store import iso
from tests import payloads
from tests.conftest import Bot, with_

REPO, TRACK = "acme/api", "acme/compliance"


def utc(s: str) -> datetime:
    return datetime.fromisoformat(s).replace(tzinfo=timezone.utc)


@pytest.fixture
def week(github, gh_settings, clock):
    """Four follow-ups around the week of Monday 30 Nov 2026, and a week of coverage with one gap."""
    repo = github.add_repo(REPO)
    github.add_repo(TRACK)
    for login in ("bob", "dave"):  # they sign off: colleagues who could have merged
        github.add_collaborator(REPO, login, "write")
    github.clock = clock
    bot = Bot(with_(gh_settings, tracking_repo=TRACK, slack_webhook_url=f"{github.url}/slack/T000/B000"), clock)

    def merge(number, at):
        bot.clock.now = utc(at)
        github.add_pull(REPO, number, merged_at=bot.clock())
        bot.deliver("pull_request", payloads.merged_pr(REPO, repo["id"], number, merged_at=bot.clock()))
        bot.run(after_seconds=300)
        return bot.change(f"pr:{repo['id']}:{number}")

    overdue = merge(1, "2026-11-20 10:00")      # due end of Tue 24 Nov: overdue
    due_soon = merge(2, "2026-11-30 10:00")     # due end of Wed 2 Dec: due in the next 7 days
    on_time = merge(3, "2026-11-23 10:00")      # due end of Wed 25 Nov
    late = merge(4, "2026-11-19 10:00")         # due end of Mon 23 Nov
    for change, by, at in ((on_time, "bob", "2026-11-24 12:00"), (late, "dave", "2026-11-25 12:00")):
        bot.clock.now = utc(at)
        github.close_issue(TRACK, change["followup_number"], by=by)
        bot.deliver("issues", payloads.issue_action(TRACK, change["followup_number"], "closed", sender=by,
                                                    at=bot.clock()))
        bot.run()
    # Heartbeats and hourly sweeps all last week (22-29 Nov), except Thursday 03:00-08:00; the sweep
    # after that gap looks back over it.
    sched = Scheduler(bot.engine)
    t = utc("2026-11-22 23:00")
    while t < utc("2026-11-30 00:00"):
        if not utc("2026-11-26 03:00") <= t < utc("2026-11-26 08:00"):
            bot.clock.now = t
            sched.beat()
            if t.minute == 30:
                bot.store.db.execute("INSERT INTO sweeps (started_at, finished_at, since) VALUES (?, ?, ?)",
                                     [iso(t), iso(t), iso(t)])
                bot.store.audit("sweep.finished", "", "tbr", t, since=iso(t - timedelta(hours=6)), errors=[])
        t += timedelta(minutes=5)
    bot.clock.now = utc("2026-11-30 09:00")
    return bot, {"overdue": overdue, "due_soon": due_soon, "on_time": on_time, "late": late}


def test_digest_content_for_a_known_week(github, week):
    bot, c = week
    d = digest.build(bot.engine, bot.clock())
    assert d.title == "TBR weekly digest: week of 2026-11-30"
    body = d.body
    sections = [line for line in body.splitlines() if line.startswith("## ")]
    assert "**2 open follow-ups: 1 overdue, 1 due in the next 7 days.**" in body
    assert sections == ["## Overdue (1)", "## Due in the next 7 days (1)", "## Completed last week (2; SLA hit rate 50%)",
                        "## Exceptions by month (declared, undeclared, reverted)", "## Access controls",
                        "## Coverage last week (23 Nov to 29 Nov)"]
    assert ("- 2026-11: 3 unapproved: 0 declared and 3 undeclared merges, 0 direct pushes; 0 reverted;"
            " median 2.58 business days to sign-off") in body
    assert f"acme/api#1]({c['overdue']['followup_url']}): @alice, 4 business days overdue (due Tue 24 Nov)" in body
    assert "acme/api#2" in body.split("## Due in the next 7 days")[1].split("##")[0]
    assert "reviewed by @bob in 1.08 business days (within SLA)" in body
    assert "reviewed by @dave in 4.08 business days (late)" in body
    assert "- Sweeps run: 163" in body
    assert "- Running 97.0% of the week, by tbr's heartbeats" in body
    assert "- Downtime gaps: 1" in body
    assert "Thu 26 Nov 02:55 to Thu 26 Nov 08:00, filled by the sweep of Thu 26 Nov 08:30" in body
    seq, head = audit.head(bot.store.db)
    assert body.rstrip().endswith(f"Audit log head: #{seq} sha256:{head}")


def test_publishing_twice_updates_the_same_issue_and_posts_to_slack_once(github, week):
    bot, _ = week
    digest.publish(bot.engine, bot.clock())
    bot.clock.advance(3600)
    digest.publish(bot.engine, bot.clock())
    [issue] = [i for i in github.issues(TRACK) if i["title"].startswith("TBR weekly digest")]
    assert issue["title"] == "TBR weekly digest: week of 2026-11-30" and "tbr-digest" in issue["labels"]
    assert "as of Mon 30 Nov 2026 10:00" in issue["body"]
    assert len(github.slack_messages) == 1
    assert github.slack_messages[0]["text"].startswith("tbr weekly digest, week of 2026-11-30: 2 open follow-ups, 1 overdue")


def test_someone_elses_issue_with_the_digests_marker_is_not_the_digest(github, week):
    bot, _ = week
    theirs = github.add_existing_issue(TRACK, "All good this week", "<!-- tbr:digest=2026-11-30 -->\nNothing overdue.",
                                       labels=["tbr-digest"], author="alice", created_at=bot.clock())
    digest.publish(bot.engine, bot.clock())
    digests = [i for i in github.issues(TRACK) if "tbr-digest" in i["labels"]]
    assert [i["author"] for i in digests] == ["alice", f"{github.app_slug}[bot]"]
    assert next(i for i in digests if i["number"] == theirs["number"])["body"].endswith("Nothing overdue.")


def test_digest_lost_answer_is_found_by_marker(github, week):
    bot, _ = week
    github.fail("POST", rf"/repos/{TRACK}/issues", 502, after_effect=True)
    with pytest.raises(Exception):
        digest.publish(bot.engine, bot.clock())
    digest.publish(bot.engine, bot.clock())
    assert len([i for i in github.issues(TRACK) if i["title"].startswith("TBR weekly digest")]) == 1


def test_deleted_followup_is_flagged(github, week):
    bot, c = week
    bot.deliver("issues", payloads.issue_action(TRACK, c["overdue"]["followup_number"], "deleted", sender="eve",
                                                at=bot.clock()))
    bot.run()
    body = digest.build(bot.engine, bot.clock()).body
    assert "## Deleted or transferred follow-ups (1)" in body and "deleted; the review it tracked" in body


def test_digest_is_due_once_a_week_at_its_time(github, week):
    bot, _ = week
    assert not digest_due(bot.engine, utc("2026-11-30 08:59"))
    assert digest_due(bot.engine, utc("2026-11-30 09:00"))
    digest.publish(bot.engine, utc("2026-11-30 09:00"))
    assert not digest_due(bot.engine, utc("2026-12-03 12:00"))
    assert digest_due(bot.engine, utc("2026-12-07 09:30"))


def test_only_one_scheduler_per_deployment(week, monkeypatch):
    bot, _ = week
    started = []
    monkeypatch.setattr(Scheduler, "_start", lambda self: started.append(self))
    first, second = Scheduler(bot.engine), Scheduler(bot.engine)  # as two gunicorn workers would
    first.tick()
    second.tick()
    assert started == [first]
    first.stop()  # the leader's process dies: its lock goes with it
    second.tick()
    assert started == [first, second]
    second.stop()


def test_due_in_the_next_seven_days_includes_next_monday_and_direct_pushes_are_named(github, week):
    bot, _ = week
    # Merged Thursday 3 Dec 10:00: due by the end of Monday 7 Dec.
    bot.clock.now = utc("2026-12-03 10:00")
    github.add_pull(REPO, 5, merged_at=bot.clock())
    api = bot.store.db.execute("SELECT repo_id FROM changes WHERE repo = ?", [REPO]).fetchone()[0]
    bot.deliver("pull_request", payloads.merged_pr(REPO, api, 5, merged_at=bot.clock()))
    sha = github.add_commit(REPO, "main", message="hotfix", committed_at=bot.clock(), author="erin")
    bot.deliver("push", payloads.push(REPO, api, commits=[(sha, "hotfix")], sender="erin", forced=True,
                                      pushed_at=bot.clock()))
    bot.run(after_seconds=300)
    monday = digest.build(bot.engine, utc("2026-11-30 09:00")).body  # the digest of Monday 30 Nov
    soon = monday.split("## Due in the next 7 days")[1].split("##")[0]
    assert "acme/api#5" in soon and "due end of Mon 07 Dec" in soon
    assert f"acme/api@{sha[:7]}" in soon
    assert "**4 open follow-ups: 1 overdue, 3 due in the next 7 days.**" in monday
    tuesday = digest.build(bot.engine, utc("2026-12-08 09:00")).body  # a week later, they are overdue
    assert "**4 open follow-ups: 4 overdue, 0 due in the next 7 days.**" in tuesday
    assert "- 2026-12: 2 unapproved: 0 declared and 1 undeclared merges, 1 direct push; 0 reverted;" in tuesday


def test_a_fresh_install_counts_no_downtime_before_it(github, gh_settings, clock):
    """Installed on Wednesday: its first digest, on Monday, measures from then; one the same Monday
    morning finds last week all before tbr, not "Running 0.0%"."""
    bot = Bot(gh_settings, clock)
    sched = Scheduler(bot.engine)
    bot.clock.now = utc("2026-11-25 10:00")
    while bot.clock.now < utc("2026-11-30 09:00"):
        sched.beat()
        bot.clock.now += timedelta(minutes=5)
    body = digest.build(bot.engine, utc("2026-11-30 09:00")).body
    assert "- Running 100.0% since tbr was installed (Wed 25 Nov 10:00), by tbr's heartbeats" in body
    assert "- Downtime gaps: 0" in body
    early = digest.build(bot.engine, utc("2026-11-26 09:00")).body  # the week of 16 Nov: before tbr
    assert ("- Last week was before tbr (installed Wed 25 Nov 10:00): no running time to measure yet,"
            " and no downtime") in early
    assert "Running 0.0%" not in early and "- Downtime gaps: 0" in early
