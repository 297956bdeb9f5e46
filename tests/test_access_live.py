"""Access controls against the fake GitHub: a quarter's review from open to complete, a removed member
with lingering access, two-factor coverage with and without the permission to see it."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime, timedelta, timezone

import pytest

from tbr import access, accesscontrols, audit, cli, digest, evidence
from tests import payloads
from tests.conftest import Bot, with_

REPO, TRACK = "acme/api", "acme/compliance"
Q4 = datetime(2026, 10, 1, 9, 0, tzinfo=timezone.utc)  # Thursday 1 Oct 2026: the quarter's first business day


@pytest.fixture
def org(github, gh_settings, clock):
    """acme: an owner, a direct collaborator, an outside contractor, a team, a reader, a pending invite."""
    github.add_repo(REPO)
    github.add_repo(TRACK)
    github.add_member("acme", "olivia", role="admin")
    for login in ("bob", "carol", "dave", "rita"):
        github.add_member("acme", login)
    github.add_collaborator(REPO, "bob", "write")
    github.add_collaborator(REPO, "xena", "maintain", two_factor=False)  # not a member: outside collaborator
    github.add_team("acme", "core", members=("carol", "dave"), repos={REPO: "push"})
    github.add_collaborator(REPO, "rita", "read")
    github.add_team("acme", "security", members=("bob",))  # the escalation team: the reviewers
    clock.now = Q4
    github.clock = clock
    return Bot(with_(gh_settings, tracking_repo=TRACK, escalate="@acme/security", repos=frozenset({REPO})), clock)


def review_issue(github) -> dict:
    [issue] = [i for i in github.issues(TRACK, include_seeded=False) if i["title"].startswith("TBR access review")]
    return issue


def tick(bot, github, issue: dict, login: str, by: str) -> None:
    """`by` ticks `login`'s box in the issue, as GitHub's UI does: an edit of the body."""
    before = issue["body"]
    after = before.replace(f"- [ ] @{login}:", f"- [x] @{login}:")
    issue["body"] = after
    bot.deliver("issues", payloads.issue_edited(TRACK, issue["number"], body=after, previous=before, sender=by,
                                                at=bot.clock()))


def comment(bot, issue: dict, by: str, text: str, comment_id: int) -> None:
    bot.deliver("issue_comment", payloads.issue_comment(TRACK, issue["number"], commenter=by, body=text,
                                                        at=bot.clock(), comment_id=comment_id))


def test_a_quarters_review_from_open_to_complete(github, org):
    bot = org
    accesscontrols.daily(bot.engine, bot.clock())
    bot.run()
    issue = review_issue(github)
    assert issue["title"] == "TBR access review 2026-Q4: acme/api"
    lines = [line for line in issue["body"].splitlines() if line.startswith("- [")]
    assert lines == [
        "- [ ] @bob: write (direct) <!-- tbr:line=bob -->",
        "- [ ] @carol: write (team @acme/core) <!-- tbr:line=carol -->",
        "- [ ] @dave: write (team @acme/core) <!-- tbr:line=dave -->",
        "- [ ] @olivia: admin (org owner) <!-- tbr:line=olivia -->",
        "- [ ] @xena: maintain (outside collaborator) <!-- tbr:line=xena -->"]
    assert "@acme/security: for each line" in issue["body"]
    accesscontrols.daily(bot.engine, bot.clock() + timedelta(hours=2))  # again the same day: nothing new
    assert len([i for i in github.issues(TRACK) if i["title"].startswith("TBR access review")]) == 1

    bot.clock.advance(3600)
    tick(bot, github, issue, "bob", by="olivia")
    tick(bot, github, issue, "olivia", by="olivia")  # her own line: refused, and the tick undone
    comment(bot, issue, "olivia", "revoke @xena\nkeep @carol", 1)
    bot.run()
    while bot.run():
        pass
    issue = review_issue(github)
    assert "- [x] @bob: write (direct), kept by @olivia" in issue["body"]
    assert "- [ ] @olivia: admin (org owner)" in issue["body"]
    assert "- [x] ~~@xena: maintain (outside collaborator)~~, revoked by @olivia" in issue["body"]
    refusals = [c["body"].split("\n", 1)[1] for c in github.comments(TRACK, issue["number"])
                if "Not recorded" in c["body"]]  # after tbr's hidden marker
    assert refusals == ["Not recorded: @olivia cannot decide their own access (acme/api): someone else must."]
    assert github.collaborators(REPO).get("xena")  # apply_revocations is off: recorded, not applied

    comment(bot, issue, "bob", "keep @olivia\nkeep @dave", 2)
    while bot.run():
        pass
    issue = review_issue(github)
    assert issue["state"] == "closed" and "**Complete**" in issue["body"]
    [row] = accesscontrols.status(bot.store, "2026-Q4")
    assert {k: row[k] for k in ("lines", "kept", "revoked", "undecided", "completed_by")} == {
        "lines": 5, "kept": 4, "revoked": 1, "undecided": 0, "completed_by": "bob"}
    kinds = [r["kind"] for r in audit.records(bot.store.db, kind=None) if r["kind"].startswith("access_review")]
    assert kinds.count("access_review.decided") == 5 and kinds[-1] == "access_review.completed"


def test_decisions_by_anyone_but_the_reviewers_and_owners_are_undone(github, org):
    bot = org
    github.put_file(REPO, ".github/tbr.yml", "access_review:\n  apply_revocations: true\n")
    accesscontrols.open_reviews(bot.engine, "2026-Q4", bot.clock())
    issue = review_issue(github)
    tick(bot, github, issue, "dave", by="carol")  # a writer, but neither a reviewer nor an owner
    comment(bot, issue, "rita", "revoke @xena", 1)
    while bot.run():
        pass
    issue = review_issue(github)
    assert "- [ ] @dave: write (team @acme/core)" in issue["body"]  # the tick undone
    assert github.collaborators(REPO).get("xena")  # nobody removed
    said = [c["body"].split("\n", 1)[1] for c in github.comments(TRACK, issue["number"])]
    who = "only @acme/security or an owner of acme may decide this review"
    assert f"@carol: not recorded: {who}. Your change to the checklist was undone." in said
    assert f"@rita: not recorded: {who}." in said
    assert all(line.decision is None for line in accesscontrols.lines_of(bot.store, "2026-Q4:acme/api"))


def test_revocations_applied_when_configured_and_reminders_sent(github, org):
    bot = org
    github.add_repo("acme/.github")  # only the organization's policy can turn apply_revocations on
    github.put_file("acme/.github", ".github/tbr.yml", "access_review:\n  apply_revocations: true\n")
    github.put_file(REPO, ".github/tbr.yml", "access_review:\n  due_days: 2\n")  # a shorter deadline: taken
    accesscontrols.open_reviews(bot.engine, "2026-Q4", bot.clock())
    issue = review_issue(github)
    comment(bot, issue, "olivia", "revoke @xena\nrevoke @carol", 1)
    while bot.run():
        pass
    assert "xena" not in github.collaborators(REPO)  # direct access removed
    assert "~~@xena: maintain (outside collaborator)~~, revoked by @olivia, access removed" in review_issue(github)["body"]
    assert github.count("DELETE", r"/repos/acme/api/collaborators/carol") == 0  # team access: left to people
    bot.clock.now = datetime(2026, 10, 6, 10, 0, tzinfo=timezone.utc)  # past the 2 business days
    accesscontrols.plan_reminders(bot.store, bot.settings, bot.clock())
    while bot.run():
        pass
    texts = [c["body"] for c in github.comments(TRACK, issue["number"])]
    [overdue] = [t for t in texts if "this access review is overdue" in t]
    assert "@acme/security: for your attention." in overdue  # escalated, like an overdue follow-up


def test_tbr_access_review_commands(github, org, cli_env, capsys):
    cli_env.setenv("TBR_DB", org.store.path)
    cli_env.setenv("TBR_TRACKING_REPO", TRACK)
    cli_env.setenv("TBR_REPOS", REPO)
    assert cli.main(["access-review", "open", "--quarter", "2026-Q4"]) == 0
    assert "1 access review(s) opened for 2026-Q4" in capsys.readouterr().out
    assert cli.main(["access-review", "status"]) == 0
    out = capsys.readouterr().out
    assert "2026-Q4  acme/api" in out and "5 lines: 0 kept, 0 revoked; 5 undecided" in out
    with pytest.raises(SystemExit, match="not a quarter"):
        cli.main(["access-review", "open", "--quarter", "Q4"])


def test_a_removed_member_with_lingering_access(github, org):
    bot = org
    github.add_invitation(REPO, "dave", "write")
    github.remove_member("acme", "carol")   # team access goes with membership: nothing left
    github.remove_member("acme", "bob")     # still a direct collaborator
    github.remove_member("acme", "dave")    # a pending invitation remains
    for login in ("carol", "bob", "dave"):
        bot.deliver("organization", payloads.member_removed("acme", login, sender="olivia"))
    while bot.run():
        pass
    titles = sorted(i["title"] for i in github.issues(TRACK, include_seeded=False))
    assert titles == ["TBR offboarding: @bob still has access to acme", "TBR offboarding: @dave still has access to acme"]
    findings = {(r["login"], r["kind"], r["detail"]) for r in bot.store.db.query("SELECT * FROM offboarding")}
    assert findings == {("bob", "collaborator", "write"), ("dave", "invitation", "pending invitation")}
    assert [r["subject"] for r in audit.records(bot.store.db, kind="offboarding.clean")] == ["acme/@carol"]
    body = digest.build(bot.engine, bot.clock()).body
    assert "- People who left with access remaining: 2" in body and "@bob (acme): write on acme/api" in body

    bot.gateway.remove_collaborator(bot.gateway.installation_for(REPO), REPO, "bob")  # an admin removes bob
    bot.clock.advance(86400)
    accesscontrols.daily(bot.engine, bot.clock())
    while bot.run():
        pass
    bob = next(i for i in github.issues(TRACK) if "@bob" in i["title"])
    assert bob["state"] == "closed"
    assert "People who left with access remaining: 1" in digest.build(bot.engine, bot.clock()).body


def test_two_factor_coverage_with_and_without_permission(github, org):
    bot = org
    github.add_member("acme", "dave", two_factor=False)
    [row] = accesscontrols.check_2fa(bot.engine, bot.clock())
    assert (row["visible"], row["members"], row["outside"]) == (True, ["dave"], ["xena"])
    text = accesscontrols.twofa_text(accesscontrols.latest_2fa(bot.store, "acme"))
    assert text == "Two-factor authentication missing for 2: @dave, @xena (outside collaborator)."
    github.twofa_visible = False
    bot.clock.advance(86400)
    [row] = accesscontrols.check_2fa(bot.engine, bot.clock())
    assert not row["visible"] and row["reason"] == "Only owners can use this filter."
    text = accesscontrols.twofa_text(accesscontrols.latest_2fa(bot.store, "acme"))
    assert text.startswith("Two-factor authentication: tbr cannot see it (Only owners can use this filter.)")
    assert f"- acme: {text}" in digest.build(bot.engine, bot.clock()).body


def test_twofa_gaps_fail_tbr_controls(github, org):
    bot = org
    github.set_protection(REPO, "main")
    github.add_member("acme", "dave", two_factor=False)
    accesscontrols.check_2fa(bot.engine, bot.clock())
    bot.deliver("branch_protection_rule", payloads.protection_rule(REPO, github._repo(REPO)["id"], action="created",
                                                                   sender="olivia"))
    while bot.run():
        pass
    [run] = github.check_runs(REPO, name="tbr/controls")
    assert run["conclusion"] == "failure" and "missing for 2: @dave" in run["output"]["summary"]


def test_evidence_has_the_access_sections(github, org):
    bot = org
    accesscontrols.open_reviews(bot.engine, "2026-Q4", bot.clock())
    comment(bot, review_issue(github), "olivia", "revoke @xena", 1)
    github.remove_member("acme", "bob")
    bot.deliver("organization", payloads.member_removed("acme", "bob"))
    while bot.run():
        pass
    accesscontrols.check_2fa(bot.engine, bot.clock())
    period = evidence.Period(datetime(2026, 10, 1, tzinfo=timezone.utc), datetime(2027, 1, 1, tzinfo=timezone.utc))
    out = io.StringIO()
    evidence.export(bot.store.db, period, "csv", out, bot.clock(), "access-reviews")
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert list(rows[0]) == list(evidence.ACCESS_COLUMNS) and len(rows) == 5
    xena = next(r for r in rows if r["login"] == "xena")
    assert (xena["decision"], xena["decided_by"], xena["via"]) == ("revoke", "olivia", "outside collaborator")
    out = io.StringIO()
    head, _ = evidence.export(bot.store.db, period, "json", out, bot.clock())
    doc = json.loads(out.getvalue())
    assert [r["login"] for r in doc["offboarding"]] == ["bob"] and doc["2fa"][0]["outside_without_2fa"] == "xena"
    assert head["access"]["reviews"] == 1 and head["access"]["lines_revoked"] == 1
    assert head["access"]["offboarding_unresolved"] == 1
    assert access.LABEL in [label for i in github.issues(TRACK) for label in i["labels"]]
    # Every line is proven by the audit log; a decision edited in the table shows as the log has it.
    assert {r["audit_log"] for r in rows} == {"proven"}
    bot.store.db.execute("UPDATE access_lines SET decision = 'keep', decided_by = 'xena' WHERE login = 'xena'")
    out = io.StringIO()
    head, _ = evidence.export(bot.store.db, period, "csv", out, bot.clock(), "access-reviews")
    xena = next(r for r in csv.DictReader(io.StringIO(out.getvalue())) if r["login"] == "xena")
    assert (xena["decision"], xena["decided_by"]) == ("revoke", "olivia")
    assert xena["audit_log"] == "DISAGREES: the table says decision 'keep', decided_by 'xena'"
    assert evidence.failed(head)


def test_org_scope_asked_for_in_repository_files_is_one_review_of_every_repo(github, org):
    github.add_repo("acme/web")
    github.add_collaborator("acme/web", "bob", "admin")
    for repo in (REPO, "acme/web"):  # the org's own .github file says nothing of scope
        github.put_file(repo, ".github/tbr.yml", "access_review:\n  scope: org\n")
    bot = Bot(with_(org.settings, repos=frozenset({REPO, "acme/web"})), org.clock)
    assert accesscontrols.open_reviews(bot.engine, "2026-Q4", bot.clock()) == ["2026-Q4:acme"]
    bob = {(ln.repo, ln.permission) for ln in accesscontrols.lines_of(bot.store, "2026-Q4:acme") if ln.login == "bob"}
    assert bob == {(REPO, "write"), ("acme/web", "admin")}  # one line per repository, none dropped
    assert review_issue(github)["title"] == "TBR access review 2026-Q4: acme"


def test_someone_removed_again_after_a_resolved_finding_is_found_again(github, org):
    bot = org

    def remove_bob():
        github.remove_member("acme", "bob")
        bot.deliver("organization", payloads.member_removed("acme", "bob", sender="olivia"))
        while bot.run():
            pass

    def admin_removes_access_and_tbr_rechecks():
        bot.gateway.remove_collaborator(bot.gateway.installation_for(REPO), REPO, "bob")
        bot.clock.advance(86400)
        accesscontrols.daily(bot.engine, bot.clock())
        while bot.run():
            pass

    remove_bob()
    admin_removes_access_and_tbr_rechecks()
    github.add_member("acme", "bob")  # rejoins, gets direct access again, and leaves again a month later
    github.add_collaborator(REPO, "bob", "write")
    bot.clock.advance(30 * 86400)
    remove_bob()
    [finding] = bot.store.db.query("SELECT * FROM offboarding WHERE login = 'bob'")
    assert finding["resolved_at"] is None and finding["found_at"].startswith("2026-11-01")
    issues = [i for i in github.issues(TRACK, include_seeded=False) if "@bob" in i["title"]]
    assert [i["state"] for i in issues] == ["closed", "open"] and finding["issue_url"].endswith(f"/{issues[1]['number']}")
    assert "People who left with access remaining: 1" in digest.build(bot.engine, bot.clock()).body
    admin_removes_access_and_tbr_rechecks()
    assert [i["state"] for i in github.issues(TRACK, include_seeded=False) if "@bob" in i["title"]] == ["closed", "closed"]


def test_the_daily_access_work_stops_under_the_rate_limit_reserve_and_goes_on_next_hour(github, org):
    """A first day reads every repository's configuration; under GitHub's reserve it must not spend what
    judging and filing need: it stops, records the pause, and the next hourly run does the day's work."""
    bot = org
    github.use_rate_limit(int(github.rate_limit_state()["limit"] * 0.85))
    bot.gateway.installation_repos(1)  # any answer tells tbr where the budget stands
    accesscontrols.daily(bot.engine, bot.clock())
    bot.run()
    assert github.count("GET", r"/repos/acme/api/contents/.*") == 0
    assert [i for i in github.issues(TRACK, include_seeded=False) if i["title"].startswith("TBR access review")] == []
    assert bot.store.last_beat("access-daily") is None
    assert [p["work"] for p in bot.store.pauses(bot.clock())] == [accesscontrols.WORK]
    bot.clock.advance(3601)  # GitHub's window renews
    github.use_rate_limit(0)
    bot.gateway.installation_repos(1)
    accesscontrols.daily(bot.engine, bot.clock())
    bot.run()
    assert review_issue(github)["title"] == "TBR access review 2026-Q4: acme/api"
    assert bot.store.last_beat("access-daily") is not None
