"""`tbr backfill` against the fake GitHub's GraphQL endpoint (GitHub's own schema), counting requests."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime, timedelta, timezone

import pytest

from tbr import audit, cli, evidence, metrics
from tbr.backfill import backfill
from tbr.store import iso
from tests import payloads

REPO = "acme/api"
SINCE = datetime(2025, 11, 20, tzinfo=timezone.utc)


def utc(s: str) -> datetime:
    return datetime.fromisoformat(s).replace(tzinfo=timezone.utc)


@pytest.fixture
def history(github, bot):
    """A year of acme/api: approved, LGTM'd, merged by another, self-merged PRs, a direct push, a PR into
    an unprotected branch and one merged before the backfill's start."""
    repo = github.add_repo(REPO)
    for login in ("bob", "carol"):
        github.add_collaborator(REPO, login, "write")
    github.add_pull(REPO, 1, merged_at=utc("2026-02-02 10:00"), author="alice", merged_by="alice")
    github.add_review(REPO, 1, "bob", submitted_at=utc("2026-02-02 09:00"))
    github.add_pull(REPO, 2, merged_at=utc("2026-03-03 10:00"), author="alice", merged_by="alice")
    github.add_issue_comment(REPO, 2, "carol", "LGTM", created_at=utc("2026-03-03 09:30"))
    github.add_pull(REPO, 3, merged_at=utc("2026-04-04 10:00"), author="alice", merged_by="dave")
    github.add_pull(REPO, 4, merged_at=utc("2026-05-05 10:00"), author="alice", merged_by="alice")
    github.add_review(REPO, 4, "bob", "APPROVED", submitted_at=utc("2026-05-06 10:00"))  # after the merge
    github.add_pull(REPO, 5, merged_at=utc("2026-06-06 10:00"), author="erin", merged_by="erin", base="experiment")
    github.add_pull(REPO, 6, merged_at=utc("2025-10-01 10:00"), author="alice", merged_by="alice")
    for number in (1, 2, 3, 4):
        pr = github._pull(REPO, number)
        github.add_commit(REPO, "main", pr["merge_commit_sha"], message=f"Merge pull request #{number}",
                          committed_at=pr["merged_at"], pull=number)
    push = github.add_commit(REPO, "main", message="Hotfix straight to main", author="frank",
                             committed_at=utc("2026-07-07 03:00"))
    return repo, push


def by_change(bot) -> dict:
    return {(c["number"] or c["sha"]): c for c in bot.changes()}


def test_backfill_records_decisions_without_filing(github, bot, history):
    repo, push = history
    result = backfill(bot.engine, SINCE)
    assert (result.repos, result.pulls, result.pushes, result.approved, result.unapproved, result.queued) == \
        (1, 4, 1, 3, 2, 0)
    changes = by_change(bot)
    assert set(changes) == {1, 2, 3, 4, push}  # not #5 (unwatched branch), not #6 (before --since)
    assert {k: (c["status"], c["source"]) for k, c in changes.items()} == {
        1: ("approved", "backfill"), 2: ("approved", "backfill"), 3: ("approved", "backfill"),
        4: ("unapproved", "backfill"), push: ("unapproved", "backfill")}
    assert json.loads(changes[1]["decision"])["approval"]["approver"] == "bob"
    assert json.loads(changes[2]["decision"])["rule"] == "comment"
    assert json.loads(changes[3]["decision"])["rule"] == "merged-by-other"
    assert "after the grace period" in json.loads(changes[4]["decision"])["notes"][0]
    assert changes[push]["kind"] == "push" and changes[push]["actor"] == "frank"
    assert github.issues(REPO, include_seeded=False) == []
    assert bot.run() == 0  # nothing left for the engine
    judged = list(audit.records(bot.store.db, kind="change.judged"))
    assert len(judged) == 5 and all(r["data"]["source"] == "backfill" for r in judged)
    [done] = audit.records(bot.store.db, kind="backfill.finished")
    assert done["data"]["requests"] == result.requests > 0


def test_backfill_again_is_harmless_and_then_files_once(github, bot, history):
    repo, push = history
    backfill(bot.engine, SINCE)
    again = backfill(bot.engine, SINCE)
    assert (again.approved, again.unapproved, again.known) == (0, 0, 5)
    filing = backfill(bot.engine, SINCE, file_issues=True)
    assert (filing.known, filing.queued) == (5, 2)
    while bot.run():
        pass
    assert sorted(i["title"] for i in github.issues(REPO, include_seeded=False)) == [
        "TBR acme/api#4 follow-up review", f"TBR acme/api@{push[:7]} follow-up review"]
    row = by_change(bot)[4]
    # Due two business days after filing (Fri 20 Nov 2026), not after the merge in May.
    assert (row["status"], row["due_at"]) == ("followup", "2026-11-25T00:00:00.000000+00:00")
    backfill(bot.engine, SINCE, file_issues=True)
    while bot.run():
        pass
    assert len(github.issues(REPO, include_seeded=False)) == 2


def test_a_change_tbr_saw_live_is_left_alone(github, bot, history):
    repo, _ = history
    github.add_pull(REPO, 7, merged_at=bot.clock(), merged_by="alice")
    bot.deliver("pull_request", payloads.merged_pr(REPO, repo["id"], 7, merged_at=bot.clock()))
    bot.run(after_seconds=300)
    live = bot.change(f"pr:{repo['id']}:7")
    result = backfill(bot.engine, SINCE, repo=REPO, file_issues=True)
    assert result.known == 1 and bot.change(live["key"]) == live
    while bot.run():
        pass
    assert len([i for i in github.issues(REPO, include_seeded=False) if "#7" in i["title"]]) == 1


def test_a_thousand_prs_cost_a_few_dozen_requests(github, bot):
    github.add_repo(REPO)
    github.add_pulls(REPO, 1000, merged_at=bot.clock() - timedelta(days=1), spacing=timedelta(hours=8))
    start = github.count(None, ".*")
    result = backfill(bot.engine, bot.clock() - timedelta(days=365))
    assert (result.pulls, result.approved) == (1000, 1000)
    graphql = github.count("POST", "/graphql")
    assert graphql == 11  # 10 pages of PRs and one of branch history
    assert result.requests == github.count(None, ".*") - start <= 20  # plus App auth, the repo, its config


def test_inner_lists_longer_than_a_page_are_judged_whole(github, bot):
    """The only approval is the 40th review: it is found through the review list's second page."""
    github.add_repo(REPO)
    github.add_pull(REPO, 1, merged_at=bot.clock() - timedelta(days=2), author="alice", merged_by="alice")
    for i in range(39):
        github.add_review(REPO, 1, f"user{i}", "COMMENTED", submitted_at=bot.clock() - timedelta(days=3))
    github.add_collaborator(REPO, "bob", "write")
    github.add_review(REPO, 1, "bob", submitted_at=bot.clock() - timedelta(days=3))
    result = backfill(bot.engine, bot.clock() - timedelta(days=30))
    assert result.approved == 1
    assert github.count("POST", "/graphql") == 3  # the PR page, the rest of its reviews, the branch history


def test_cli_prints_progress_on_a_terminal_and_the_requests_spent(github, cli_env, capsys, monkeypatch, history):
    monkeypatch.setattr("sys.stderr.isatty", lambda: True)
    assert cli.main(["backfill", "--since", "2025-11-20", "--repo", REPO]) == 0
    out, err = capsys.readouterr()
    assert out.splitlines()[0].startswith(
        "1 repositories, 4 merged PRs and 1 direct pushes judged: 3 approved, 2 unapproved; 0 already known; ")
    assert out.splitlines()[0].endswith(" API requests")
    assert "\r\033[Kacme/api: 1 PRs, 0 pushes" in err and "acme/api:main: 4 PRs, 1 pushes" in err


def test_evidence_shows_backfilled_changes(github, bot, history):
    backfill(bot.engine, SINCE)
    out = io.StringIO()
    evidence.export(bot.store.db, evidence.Period(SINCE, bot.clock()), "csv", out, bot.clock())
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert [(r["change"][:7], r["decision"], r["found_by"]) for r in rows] == [
        ("#1", "approved", "backfill"), ("#2", "approved", "backfill"), ("#3", "approved", "backfill"),
        ("#4", "unapproved (before tbr, no follow-up)", "backfill"),
        (history[1][:7], "unapproved (before tbr, no follow-up)", "backfill")]
    assert rows[0]["approval_link"] and rows[0]["title"] and rows[0]["author"] == "alice"


def test_every_commit_of_a_push_tbr_saw_live_is_left_alone(github, bot, history):
    """A live push of two commits is one change, keyed by its head: backfill must not record the other
    commit again as a push of its own (a second exception in the evidence)."""
    repo, _ = history
    first = github.add_commit(REPO, "main", message="Hotfix, part 1", author="frank", committed_at=bot.clock())
    head = github.add_commit(REPO, "main", message="Hotfix, part 2", author="frank", committed_at=bot.clock())
    bot.deliver("push", payloads.push(REPO, repo["id"], commits=[(first, "Hotfix, part 1"), (head, "Hotfix, part 2")],
                                      sender="frank", pushed_at=bot.clock()))
    bot.run(after_seconds=300)
    before = {c["key"] for c in bot.changes()}
    result = backfill(bot.engine, SINCE, repo=REPO)
    assert result.known == 2  # both commits of the live push
    assert {c["key"] for c in bot.changes()} - before == {c["key"] for c in bot.changes() if c["source"] == "backfill"}
    assert [c["sha"] for c in bot.changes() if c["kind"] == "push" and c["sha"] in (first, head)] == [head]


def test_backfill_waits_under_githubs_rate_limit_reserve(github, bot):
    github.add_repo(REPO)
    github.add_pulls(REPO, 3, merged_at=bot.clock() - timedelta(days=2))
    github.use_rate_limit(int(github.rate_limit_state()["limit"] * 0.9))
    bot.gateway.installation_repos(1)  # tbr learns where the budget stands from any answer
    result = backfill(bot.engine, bot.clock() - timedelta(days=30))
    assert (result.repos, result.pulls) == (0, 0) and "under the 20% kept" in result.paused
    assert "stopped:" in result.line()
    bot.clock.advance(3601)
    github.use_rate_limit(0)
    bot.gateway.installation_repos(1)
    assert backfill(bot.engine, bot.clock() - timedelta(days=30)).pulls == 3


def test_backfilled_exceptions_count_in_the_monthly_figures_and_metrics(github, bot, history):
    _, push = history
    backfill(bot.engine, SINCE)
    head = evidence.summary(bot.store.db, evidence.Period(SINCE, bot.clock()), bot.clock())
    assert [{k: m[k] for k in ("month", "exceptions", "declared", "undeclared", "before_tbr")}
            for m in head["by_month"]] == [
        {"month": "2026-05", "exceptions": 1, "declared": 0, "undeclared": 1, "before_tbr": 1},
        {"month": "2026-07", "exceptions": 1, "declared": 0, "undeclared": 0, "before_tbr": 1}]
    assert evidence.month_text(head["by_month"][1]).startswith(
        "2026-07: 1 unapproved (1 before tbr, found by the backfill): 0 declared and 0 undeclared merges, 1 direct push")
    # The whole year is before tbr (its first record is the backfill's): not downtime, and backfilled.
    cover = head["coverage"]
    assert (cover["running"], cover["watched_hours"], cover["gaps"]) == ("n/a", 0.0, [])
    assert cover["before_tbr"] == {"from": iso(SINCE), "to": iso(bot.clock()), "hours": cover["before_tbr"]["hours"],
                                   "backfilled_at": iso(bot.clock()), "backfilled_since": iso(SINCE)}
    assert cover["installed_at"] == iso(bot.clock())
    text = metrics.render(bot.store, bot.clock).decode()
    assert 'tbr_exceptions_total{kind="before_tbr",month="2026-05"} 1.0' in text
    assert 'tbr_exceptions_total{kind="all",month="2026-07"} 1.0' in text
    [installed] = [line for line in text.splitlines() if line.startswith("tbr_installed_timestamp_seconds ")]
    assert float(installed.split()[1]) == bot.clock().timestamp()
