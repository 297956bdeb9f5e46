"""A follow-up from filing to sign-off, against the fake GitHub, on the injected clock."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from tbr import lifecycle
from tests import payloads
from tests.conftest import Bot, tracked

REPO, TRACK = "acme/api", "acme/compliance"


@pytest.fixture
def env(github, gh_settings, clock):
    repo, bot = tracked(github, gh_settings, clock, REPO, TRACK)
    github.add_collaborator(REPO, "bob", "write")  # may sign off: could have merged it
    return repo, bot


def file_followup(github, repo, bot, number=7, author="alice", merged_by="carol"):
    """Merge a PR on the fake GitHub, deliver its webhook and let tbr file the follow-up."""
    github.add_pull(REPO, number, author=author, merged_by=merged_by, merged_at=bot.clock())
    bot.deliver("pull_request", payloads.merged_pr(REPO, repo["id"], number, author=author, merged_by=merged_by,
                                                   merged_at=bot.clock()))
    bot.run(after_seconds=300)
    change = bot.change(f"pr:{repo['id']}:{number}")
    assert change["status"] == "followup"
    return change


def comments(github, number):
    return [c["body"] for c in github.comments(TRACK, number)]


def close(github, bot, number, by, reason="completed"):
    github.close_issue(TRACK, number, by=by, reason=reason)
    bot.deliver("issues", payloads.issue_action(TRACK, number, "closed", sender=by, at=bot.clock(), state_reason=reason))
    bot.run()


@pytest.fixture
def followup(env, github):
    repo, bot = env
    return file_followup(github, repo, bot, author="alice", merged_by="alice")


def test_independent_close_signs_off_with_sla_facts(env, github, followup):
    _, bot = env
    number = followup["followup_number"]
    bot.clock.advance(3 * 86400)  # Monday 23 Nov, 02:05
    close(github, bot, number, "bob")
    change = bot.change(followup["key"])
    assert (change["followup_state"], change["signed_off_by"], change["signoff_how"]) == ("signed_off", "bob", "closed")
    assert change["signed_off_at"].startswith("2026-11-23T02:05")
    assert change["business_seconds"] == 22 * 3600 + 2 * 3600 + 5 * 60  # merged Fri 02:00: rest of Fri + Mon
    assert change["within_sla"] == 1
    [note] = comments(github, number)
    assert "Review signed off: @bob closed this follow-up" in note and "within the SLA" in note
    assert github.issues(TRACK)[0]["state"] == "closed"


def test_close_by_author_is_undone_with_a_reason(env, github, followup):
    _, bot = env
    number = followup["followup_number"]
    close(github, bot, number, "alice")
    assert github.issues(TRACK)[0]["state"] == "open"
    [note] = comments(github, number)
    assert "Separation of duties: @alice authored and merged acme/api#7, so @alice cannot sign off" in note
    assert bot.change(followup["key"])["followup_state"] == "open"


def test_close_as_not_planned_is_undone(env, github, followup):
    _, bot = env
    close(github, bot, followup["followup_number"], "bob", reason="not_planned")
    assert github.issues(TRACK)[0]["state"] == "open"
    assert "cannot be waived" in comments(github, followup["followup_number"])[0]
    assert bot.change(followup["key"])["followup_state"] == "open"


def test_lgtm_on_the_followup_signs_off_and_closes(env, github, followup):
    _, bot = env
    number = followup["followup_number"]
    bot.clock.advance(86400)
    github.add_issue_comment(TRACK, number, "bob", "Looked at the diff and the logs. LGTM", created_at=bot.clock())
    bot.deliver("issue_comment", payloads.issue_comment(TRACK, number, commenter="bob", body="Looked at it. LGTM",
                                                        at=bot.clock()))
    bot.run()
    issue = github.issues(TRACK)[0]
    assert (issue["state"], issue["state_reason"]) == ("closed", "completed")
    change = bot.change(followup["key"])
    assert (change["signed_off_by"], change["signoff_how"]) == ("bob", "comment")
    assert any("Review signed off: @bob [commented]" in c for c in comments(github, number))
    # GitHub then tells tbr about its own close: nothing more happens.
    bot.deliver("issues", payloads.issue_action(TRACK, number, "closed", sender="tbr-fake[bot]", at=bot.clock(),
                                                sender_type="Bot"))
    bot.run()
    assert github.issues(TRACK)[0]["state"] == "closed" and bot.change(followup["key"])["followup_state"] == "signed_off"


def test_lgtm_by_the_author_gets_one_reply_and_changes_nothing(env, github, followup):
    _, bot = env
    number = followup["followup_number"]
    payload = payloads.issue_comment(TRACK, number, commenter="alice", body="LGTM", at=bot.clock())
    bot.deliver("issue_comment", payload, "c-1")
    bot.deliver("issue_comment", payload, "c-2")  # same comment, redelivered under a new GUID
    bot.run()
    assert len(comments(github, number)) == 1 and "does not complete the review" in comments(github, number)[0]
    assert github.issues(TRACK)[0]["state"] == "open"


def test_reopen_after_sign_off_tracks_it_open_again(env, github, followup):
    _, bot = env
    number = followup["followup_number"]
    close(github, bot, number, "bob")
    github.reopen_issue(TRACK, number, by="dave")
    bot.deliver("issues", payloads.issue_action(TRACK, number, "reopened", sender="dave", at=bot.clock()))
    bot.run()
    change = bot.change(followup["key"])
    assert (change["followup_state"], change["signed_off_by"], change["within_sla"]) == ("open", None, None)


@pytest.mark.parametrize("action", ["deleted", "transferred"])
def test_deleted_or_transferred_followup_is_flagged(env, github, followup, action):
    _, bot = env
    bot.deliver("issues", payloads.issue_action(TRACK, followup["followup_number"], action, sender="dave",
                                                at=bot.clock()))
    bot.run()
    assert bot.change(followup["key"])["followup_state"] == action


def test_events_on_other_issues_are_ignored(env, github, followup):
    _, bot = env
    resp = bot.deliver("issues", payloads.issue_action(TRACK, 999, "closed", sender="bob", at=bot.clock()))
    bot.run()
    assert bot.store.delivery(resp.json["delivery"])["outcome"] == "not a tbr follow-up"


# reminders -------------------------------------------------------------------------------------

def remind(bot, at: str):
    bot.clock.now = datetime.fromisoformat(at).replace(tzinfo=timezone.utc)
    queued = lifecycle.plan_reminders(bot.store, bot.settings, bot.clock())
    bot.run()
    return queued


def test_reminders_due_soon_then_overdue_with_escalation_never_twice(env, github, followup):
    _, bot = env
    number = followup["followup_number"]
    assert remind(bot, "2026-11-23 08:00") == []
    assert [q["kind"] for q in remind(bot, "2026-11-23 09:00")] == ["due-soon"]
    assert remind(bot, "2026-11-23 15:00") == []
    [soon] = comments(github, number)
    assert soon.count("@alice") == 1 and "due by end of day Tue 24 Nov 2026" in soon
    assert [q["kind"] for q in remind(bot, "2026-11-25 00:01")] == ["overdue"]
    overdue = comments(github, number)[-1]
    assert "@alice" in overdue and "@acme/security" in overdue
    assert "tbr:overdue" in github.issues(TRACK)[0]["labels"]
    assert remind(bot, "2026-11-26 10:00") == []  # every other business day by default
    assert [q["kind"] for q in remind(bot, "2026-11-27 10:00")] == ["still-overdue"]
    assert len(comments(github, number)) == 3


def test_restart_between_two_reminders(env, github, followup, gh_settings):
    _, bot = env
    remind(bot, "2026-11-23 09:00")
    bot.store.close()
    restarted = Bot(bot.settings, bot.clock)
    assert remind(restarted, "2026-11-23 10:00") == []
    remind(restarted, "2026-11-25 09:00")
    assert len(comments(github, followup["followup_number"])) == 2


def test_lost_answer_to_a_reminder_comment_is_not_posted_twice(env, github, followup):
    _, bot = env
    github.fail("POST", rf"/repos/{TRACK}/issues/\d+/comments", 502, after_effect=True)
    remind(bot, "2026-11-23 09:00")
    assert bot.store.db.execute("SELECT status FROM actions WHERE key LIKE 'remind:%'").fetchone()[0] == "pending"
    bot.run(after_seconds=120)
    assert len(comments(github, followup["followup_number"])) == 1
    assert bot.store.db.execute("SELECT status FROM actions WHERE key LIKE 'remind:%'").fetchone()[0] == "done"


def test_signed_off_followups_get_no_reminders(env, github, followup):
    _, bot = env
    close(github, bot, followup["followup_number"], "bob")
    assert remind(bot, "2026-11-30 09:00") == []


def test_remind_dry_run_writes_nothing(env, github, followup):
    _, bot = env
    bot.clock.now = datetime(2026, 11, 25, 9, tzinfo=timezone.utc)
    planned = lifecycle.plan_reminders(bot.store, bot.settings, bot.clock(), dry_run=True)
    assert [p["kind"] for p in planned] == ["overdue"]
    assert bot.store.db.execute("SELECT count(*) FROM actions WHERE key LIKE 'remind:%'").fetchone()[0] == 0


def test_sweep_notices_a_close_whose_webhook_was_lost(env, github, followup):
    from tbr.sweep import sweep

    _, bot = env
    bot.clock.advance(86400)
    github.close_issue(TRACK, followup["followup_number"], by="bob")
    sweep(bot.engine)
    change = bot.change(followup["key"])
    assert (change["followup_state"], change["signed_off_by"]) == ("signed_off", "bob")
    assert remind(bot, "2026-11-30 09:00") == []


def test_sweep_undoes_a_self_close_whose_webhook_was_lost(env, github, followup):
    from tbr.sweep import sweep

    _, bot = env
    github.close_issue(TRACK, followup["followup_number"], by="alice")
    sweep(bot.engine)
    bot.run()
    assert github.issues(TRACK)[0]["state"] == "open"
    assert "Separation of duties" in comments(github, followup["followup_number"])[0]


def test_reminder_planned_before_a_sign_off_is_not_posted(env, github, followup):
    _, bot = env
    bot.clock.now = datetime(2026, 11, 23, 9, tzinfo=timezone.utc)
    lifecycle.plan_reminders(bot.store, bot.settings, bot.clock())
    close(github, bot, followup["followup_number"], "bob")  # runs the queued work too
    assert all("due by" not in c for c in comments(github, followup["followup_number"]))


def test_late_webhook_after_the_sweep_handled_the_close_adds_nothing(env, github, followup):
    from tbr.sweep import sweep

    _, bot = env
    number = followup["followup_number"]
    github.close_issue(TRACK, number, by="alice")
    sweep(bot.engine)
    bot.run()
    bot.deliver("issues", payloads.issue_action(TRACK, number, "closed", sender="alice", at=bot.clock()))
    bot.run()
    assert len(comments(github, number)) == 1


def test_a_comment_that_does_not_state_approval_does_not_sign_off(env, github, followup):
    _, bot = env
    number = followup["followup_number"]
    for i, text in enumerate(["I have not yet reviewed this", "LGTM? I have not looked at the diff yet",
                              "> LGTM\nwho wrote this?"]):
        github.add_issue_comment(TRACK, number, "bob", text, created_at=bot.clock())
        bot.deliver("issue_comment", payloads.issue_comment(TRACK, number, commenter="bob", body=text, at=bot.clock()),
                    f"c-{i}")
        bot.run()
    assert github.issues(TRACK)[0]["state"] == "open" and bot.change(followup["key"])["followup_state"] == "open"
    assert comments(github, number) == ["I have not yet reviewed this", "LGTM? I have not looked at the diff yet",
                                        "> LGTM\nwho wrote this?"]
