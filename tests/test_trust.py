"""Issue 14: the people the control watches cannot approve their own change. Each attack, end to end against
the fake GitHub, beside its legitimate twin."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from tbr import evidence, lifecycle
from tbr.followups import marker
from tbr.store import from_iso
from tests import payloads
from tests.conftest import tracked

REPO = "acme/api"
PERMISSION = r"/repos/acme/api/collaborators/[^/]+/permission"


@pytest.fixture
def repo(github):
    repo = github.add_repo(REPO)
    github.add_collaborator(REPO, "bob", "write")  # can merge, so can approve
    github.add_collaborator(REPO, "rita", "read")  # can read and comment, nothing more
    github.add_member("acme", "mo")  # an org member without access to acme/api
    return repo


def merge(github, repo, bot, number=7, author="alice", merged_by="alice", **kw):
    pr = github.add_pull(REPO, number, author=author, merged_by=merged_by, merged_at=bot.clock(), **kw)
    bot.deliver("pull_request", payloads.merged_pr(REPO, repo["id"], number, author=author, merged_by=merged_by,
                                                   merged_at=bot.clock(), merge_sha=pr["merge_commit_sha"]))
    return pr


def judged(bot, repo, number=7) -> tuple[str, dict]:
    bot.run(after_seconds=300)
    change = bot.change(f"pr:{repo['id']}:{number}")
    return change["status"], json.loads(change["decision"])


def followup_body(github, number=7) -> str:
    [issue] = [i for i in github.issues(REPO, include_seeded=False) if f"#{number} " in i["title"]]
    return issue["body"]


# who approves ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("who, why", [
    ("olga", "no write access to acme/api"),  # an outsider
    ("mo", "no write access to acme/api"),  # an org member without access
    ("rita", "no write access to acme/api"),  # a read-only collaborator
])
def test_an_lgtm_from_someone_who_could_not_merge_does_not_approve(github, repo, bot, who, why):
    merge(github, repo, bot)
    github.add_issue_comment(REPO, 7, who, "LGTM", created_at=bot.clock())
    status, decision = judged(bot, repo)
    assert status == "followup"
    note = f"{who} wrote 'LGTM' in a comment, which did not count: {why}"
    assert note in decision["notes"] and f"- {note}" in followup_body(github)
    [row] = evidence.rows(bot.store.db, evidence.Period(bot.clock() - timedelta(days=1), bot.clock()))
    assert note in row["did_not_count"]


def test_a_writers_lgtm_still_approves_and_access_is_asked_once(github, repo, bot):
    for number in (7, 8):
        merge(github, repo, bot, number)
        github.add_issue_comment(REPO, number, "bob", "LGTM", created_at=bot.clock())
    status, decision = judged(bot, repo)
    assert status == "approved" and (decision["rule"], decision["approval"]["approver"]) == ("comment", "bob")
    assert bot.change(f"pr:{repo['id']}:8")["status"] == "approved"
    assert github.count("GET", PERMISSION) == 1  # remembered for the second PR


def test_an_approving_review_from_a_read_only_collaborator_or_ghost_does_not_count(github, repo, bot):
    merge(github, repo, bot)
    github.add_review(REPO, 7, "rita", "APPROVED", submitted_at=bot.clock())
    github.add_review(REPO, 7, None, "APPROVED", submitted_at=bot.clock())  # a deleted account
    status, decision = judged(bot, repo)
    assert status == "followup"
    body = followup_body(github)
    assert "- rita's approval did not count: no write access to acme/api" in body
    assert "- ghost's approval did not count: a deleted account (ghost)" in body
    assert github.count("GET", PERMISSION) == 0  # GraphQL said it, for free


def test_a_writers_review_still_approves(github, repo, bot):
    merge(github, repo, bot)
    github.add_review(REPO, 7, "bob", "APPROVED", submitted_at=bot.clock())
    status, decision = judged(bot, repo)
    assert status == "approved" and decision["approval"]["approver"] == "bob"


# exempt means exempt --------------------------------------------------------------------------------

def test_a_writers_commit_on_a_dependabot_pr_makes_it_theirs(github, repo, bot):
    merge(github, repo, bot, author="dependabot[bot]", merged_by="bob", author_type="Bot")
    github.add_pull_commit(REPO, 7, author="dependabot[bot]", message="Bump lodash")
    github.add_pull_commit(REPO, 7, author="bob", message="and a little something else")
    status, decision = judged(bot, repo)
    assert status == "followup"
    body = followup_body(github)
    assert ("- dependabot[bot] is an exempt author, but bob also wrote commits in it, so it is judged as an"
            " ordinary pull request") in body
    assert "bob merged it, but wrote commits in it" in body


def test_a_pure_dependabot_pr_is_still_exempt(github, repo, bot):
    merge(github, repo, bot, author="dependabot[bot]", merged_by="dependabot[bot]", author_type="Bot")
    github.add_pull_commit(REPO, 7, author="dependabot[bot]", message="Bump lodash")
    status, decision = judged(bot, repo)
    assert status == "approved" and decision["rule"] == "exempt-author"


# freshness and edits --------------------------------------------------------------------------------

def test_a_comment_edited_into_an_lgtm_after_the_grace_period_does_not_count(github, repo, bot):
    merge(github, repo, bot)
    c = github.add_issue_comment(REPO, 7, "bob", "Looking now", created_at=bot.clock())
    github.edit_comment(REPO, 7, c["id"], "LGTM", by="bob", at=bot.clock() + timedelta(minutes=6))
    bot.clock.advance(360)  # the edit happens before tbr judges (its work ran late)
    status, decision = judged(bot, repo)
    assert status == "followup"
    assert ("bob wrote 'LGTM' in a comment, which did not count: it was edited at 2026-11-20 02:06 UTC, after the"
            " grace period ended") in followup_body(github)


def test_a_comment_someone_else_edited_into_an_lgtm_does_not_count(github, repo, bot):
    merge(github, repo, bot)
    c = github.add_issue_comment(REPO, 7, "bob", "Not yet", created_at=bot.clock())
    github.edit_comment(REPO, 7, c["id"], "LGTM", by="alice", at=bot.clock() + timedelta(minutes=1))
    status, decision = judged(bot, repo)
    assert status == "followup"
    note = "bob wrote 'LGTM' in a comment, which did not count: alice edited it, not its author"
    assert note in followup_body(github)


def test_an_lgtm_its_author_edited_within_the_grace_period_still_counts(github, repo, bot):
    merge(github, repo, bot)
    c = github.add_issue_comment(REPO, 7, "bob", "LGMT", created_at=bot.clock())
    github.edit_comment(REPO, 7, c["id"], "LGTM", by="bob", at=bot.clock() + timedelta(minutes=1))
    status, decision = judged(bot, repo)
    assert status == "approved" and decision["approval"]["approver"] == "bob"


def test_a_declaration_someone_else_wrote_into_the_description_does_not_count(github, repo, bot):
    pr = merge(github, repo, bot, body="Fix")
    github.edit_pull_body(REPO, pr["number"], "Fix\n\nTBR: outage", by="bob", at=bot.clock())
    status, decision = judged(bot, repo)
    assert decision["declaration"] is None
    assert ("the description declares an emergency, which did not count: bob edited it, not its author"
            in decision["notes"])


def test_fresh_approval_applies_to_comments_too(github, repo, bot):
    github.put_file(REPO, ".github/tbr.yml", "require_fresh_approval: true\n")
    for number, commented in ((7, -20), (8, +1)):
        merge(github, repo, bot, number)
        github.add_pull_commit(REPO, number, author="alice", committed_at=bot.clock() - timedelta(minutes=10))
        github.add_issue_comment(REPO, number, "bob", "LGTM", created_at=bot.clock() + timedelta(minutes=commented))
    status, decision = judged(bot, repo)
    assert status == "followup"
    assert "bob wrote 'LGTM' before the newest commit, and fresh approval is required" in followup_body(github)
    assert bot.change(f"pr:{repo['id']}:8")["status"] == "approved"  # commented after the newest commit


# sign-off authority ---------------------------------------------------------------------------------

TRACK = "acme/compliance"


@pytest.fixture
def tracked_env(github, gh_settings, clock):
    repo, bot = tracked(github, gh_settings, clock, REPO, TRACK)  # escalates to @acme/security
    github.add_collaborator(REPO, "bob", "write")
    github.add_collaborator(REPO, "rita", "read")
    github.add_team("acme", "security", members=("sam",))  # a reviewer without access to acme/api
    return repo, bot


def filed_followup(github, repo, bot, number=7, author="alice", merged_by="alice", pushed_by=None) -> dict:
    merge(github, repo, bot, number, author=author, merged_by=merged_by)
    if pushed_by:
        github.add_pull_commit(REPO, number, author=pushed_by, committed_at=bot.clock() - timedelta(minutes=5))
    bot.run(after_seconds=300)
    change = bot.change(f"pr:{repo['id']}:{number}")
    assert change["status"] == "followup"
    return change


def close(github, bot, number, by):
    github.close_issue(TRACK, number, by=by)
    bot.deliver("issues", payloads.issue_action(TRACK, number, "closed", sender=by, at=bot.clock()))
    bot.run()


def said(github, number) -> list[str]:
    return [c["body"] for c in github.comments(TRACK, number)]


@pytest.mark.parametrize("who, why", [
    ("olga", "@olga has no write access to acme/api and is not one of its reviewers (@acme/security), so cannot"
             " sign off its review. Reopened."),
    ("rita", "@rita has no write access to acme/api and is not one of its reviewers (@acme/security), so cannot"
             " sign off its review. Reopened."),
])
def test_a_close_by_someone_without_authority_is_reopened_with_the_reason(github, tracked_env, who, why):
    repo, bot = tracked_env
    change = filed_followup(github, repo, bot)
    close(github, bot, change["followup_number"], who)
    assert github.issues(TRACK)[0]["state"] == "open"
    assert any(why in c for c in said(github, change["followup_number"]))
    assert bot.change(change["key"])["followup_state"] == "open"


@pytest.mark.parametrize("who", ["bob", "sam"])  # a writer; a configured reviewer
def test_a_close_by_a_writer_or_a_reviewer_still_signs_off(github, tracked_env, who):
    repo, bot = tracked_env
    change = filed_followup(github, repo, bot)
    close(github, bot, change["followup_number"], who)
    assert bot.change(change["key"])["signed_off_by"] == who


def test_someone_who_pushed_onto_the_pr_cannot_sign_off(github, tracked_env):
    repo, bot = tracked_env
    change = filed_followup(github, repo, bot, pushed_by="bob")
    close(github, bot, change["followup_number"], "bob")
    assert bot.change(change["key"])["followup_state"] == "open"
    assert any("Separation of duties" in c and "@bob cannot sign off" in c
               for c in said(github, change["followup_number"]))


def test_an_lgtm_on_the_followup_without_authority_does_not_sign_off(github, tracked_env):
    repo, bot = tracked_env
    change = filed_followup(github, repo, bot)
    number = change["followup_number"]
    bot.deliver("issue_comment", payloads.issue_comment(TRACK, number, commenter="rita", body="LGTM", at=bot.clock()))
    bot.run()
    assert bot.change(change["key"])["followup_state"] == "open"
    assert any("does not complete the review: @rita has no write access to acme/api" in c for c in said(github, number))


# only tbr's own words are tbr's ---------------------------------------------------------------------

def test_a_copied_marker_does_not_silence_the_overdue_reminder(github, tracked_env):
    repo, bot = tracked_env
    change = filed_followup(github, repo, bot)
    number = change["followup_number"]
    # The assignee copies the hidden marker of the overdue reminder they expect into a comment of their own.
    copied = marker(f"remind:{change['key']}:overdue")
    due = from_iso(change["due_at"])
    github.add_issue_comment(TRACK, number, "alice", f"{copied}\nworking on it", created_at=due - timedelta(hours=1))
    bot.clock.now = due + timedelta(minutes=1)
    lifecycle.plan_reminders(bot.store, bot.settings, bot.clock())
    while bot.run():
        pass
    mine = [c for c in github.comments(TRACK, number) if c["user"] == f"{github.app_slug}[bot]"]
    assert any("this follow-up review is overdue" in c["body"] and "@acme/security" in c["body"] for c in mine)


def test_tbrs_own_reminder_is_still_posted_once_after_a_lost_answer(github, tracked_env):
    repo, bot = tracked_env
    change = filed_followup(github, repo, bot)
    number = change["followup_number"]
    bot.clock.now = from_iso(change["due_at"]) + timedelta(minutes=1)
    lifecycle.plan_reminders(bot.store, bot.settings, bot.clock())
    github.fail("POST", rf"/repos/{TRACK}/issues/{number}/comments", 502, after_effect=True)
    bot.run()
    bot.run(after_seconds=3600)
    assert len([c for c in github.comments(TRACK, number) if "is overdue" in c["body"]]) == 1
