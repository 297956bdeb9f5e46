"""`tbr evidence` for a known population: every column, the summary, and the HTML page in a browser."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from tbr import audit, cli, evidence
from tests import payloads
from tests.conftest import Bot, with_
from tests.processes import chromium_page, needs_chromium

REPO, OTHER = "acme/api", "acme/web"


def utc(s: str) -> datetime:
    return datetime.fromisoformat(s).replace(tzinfo=timezone.utc)


@pytest.fixture
def population(github, gh_settings, clock, tmp_path):
    """November 2026 in acme/api: approved by review, merged by another, a follow-up signed off, one
    overdue, a direct push; plus a change in October and one in acme/web, outside the export."""
    api, web = github.add_repo(REPO), github.add_repo(OTHER)
    github.clock = clock
    bot = Bot(with_(gh_settings, db_path=str(tmp_path / "evidence.db")), clock)

    def merge(repo, number, at, **kw):
        bot.clock.now = utc(at)
        github.add_pull(repo["full_name"], number, merged_at=bot.clock(), title=f"Change {number}",
                        merged_by=kw.get("merged_by", "alice"))
        if "review" in kw:
            github.add_collaborator(repo["full_name"], kw["review"], "write")
            github.add_review(repo["full_name"], number, kw["review"], submitted_at=bot.clock() - timedelta(hours=1))
        bot.deliver("pull_request", payloads.merged_pr(repo["full_name"], repo["id"], number, merged_at=bot.clock(),
                                                       merged_by=kw.get("merged_by", "alice")))
        bot.run(after_seconds=300)
        return bot.change(f"pr:{repo['id']}:{number}")

    merge(api, 1, "2026-10-30 10:00")                       # October: outside
    reviewed = merge(api, 2, "2026-11-02 10:00", review="bob")
    merge(api, 3, "2026-11-03 10:00", merged_by="carol")   # merged by someone else
    signed = merge(api, 4, "2026-11-04 10:00")
    merge(web, 5, "2026-11-04 11:00")            # another repository
    overdue = merge(api, 6, "2026-11-05 10:00")
    bot.clock.now = utc("2026-11-06 09:00")
    sha = "d" * 40
    github.add_commit(REPO, "main", sha, message="Hotfix the cache\n\ndetails", author="dave")
    bot.deliver("push", payloads.push(REPO, api["id"], commits=[(sha, "Hotfix the cache\n\ndetails")], sender="dave",
                                      pushed_at=bot.clock()))
    bot.run(after_seconds=300)
    bot.clock.now = utc("2026-11-05 15:00")
    github.close_issue(REPO, signed["followup_number"], by="bob")
    bot.deliver("issues", payloads.issue_action(REPO, signed["followup_number"], "closed", sender="bob",
                                                at=bot.clock()))
    bot.run()
    # Heartbeats all month but for Tuesday 10 Nov 12:00-18:00, and a sweep after it that looked back; from
    # before midnight UTC, so the month in Berlin (tests/test_report.py) is watched from its start too.
    t = utc("2026-10-31 22:00")
    with bot.store.write():
        while t <= utc("2026-11-30 12:00"):
            if not utc("2026-11-10 12:00") <= t < utc("2026-11-10 18:00"):
                bot.store.audit("heartbeat", "", "tbr", t)
            t += timedelta(minutes=5)
    bot.store.audit("sweep.finished", "", "tbr", utc("2026-11-10 18:10"), since="2026-11-10T11:00:00+00:00",
                    errors=[])
    bot.clock.now = utc("2026-11-30 12:00")
    return bot, {"reviewed": reviewed, "signed": signed, "overdue": overdue}


def export(bot, fmt: str, **kw) -> tuple[dict, str]:
    out = io.StringIO()
    period = evidence.Period(utc("2026-11-01 00:00"), utc("2026-12-01 00:00"), kw.get("repo"))
    head, _ = evidence.export(bot.store.db, period, fmt, out, bot.clock())
    return head, out.getvalue()


def test_csv_has_one_row_per_change_with_every_column(population):
    bot, c = population
    _, text = export(bot, "csv", repo=REPO)
    rows = list(csv.DictReader(io.StringIO(text)))
    assert list(rows[0]) == list(evidence.COLUMNS)
    assert [r["change"] for r in rows] == ["#2", "#3", "#4", "#6", "d" * 40]
    reviewed, by_other, signed, overdue, push = rows
    assert reviewed == {
        "repo": REPO, "change": "#2", "kind": "pr", "branch": "main", "url": f"{reviewed['url']}",
        "title": "Change 2", "author": "alice", "merged_by": "alice", "merged_at": "2026-11-02T10:00:00.000000+00:00",
        "decision": "approved", "rule": "review", "approver": "bob", "approved_at": "2026-11-02T09:00:00+00:00",
        "approval_link": reviewed["approval_link"],
        "explanation": "Approved: bob approved the pull request (2026-11-02 09:00 UTC)", "emergency": "",
        "declared_by": "", "declared_at": "", "reason": "", "ticket": "", "followup": "", "due": "",
        "followup_state": "", "signed_off_at": "", "signed_off_by": "", "completed_how": "", "business_days": "",
        "within_sla": "", "found_by": "webhook", "did_not_count": "", "audit_log": "proven"}
    assert reviewed["url"].endswith("/acme/api/pull/2") and "pullrequestreview" in reviewed["approval_link"]
    assert (by_other["rule"], by_other["approver"], by_other["merged_by"]) == ("merged-by-other", "carol", "carol")
    assert {k: signed[k] for k in ("decision", "rule", "emergency", "followup", "due", "followup_state",
                                   "signed_off_at", "signed_off_by", "completed_how", "business_days",
                                   "within_sla")} == {
        "decision": "follow-up", "rule": "none", "emergency": "undeclared", "followup": c["signed"]["followup_url"],
        "due": "2026-11-07T00:00:00.000000+00:00", "followup_state": "signed_off",
        "signed_off_at": "2026-11-05T15:00:00.000000+00:00", "signed_off_by": "bob", "completed_how": "closed",
        "business_days": "1.21", "within_sla": "yes"}
    assert signed["explanation"].startswith("No approval found: alice authored it, alice merged it")
    assert (overdue["followup_state"], overdue["signed_off_by"], overdue["within_sla"]) == ("open", "", "")
    assert {k: push[k] for k in ("kind", "title", "author", "merged_by", "decision")} == {
        "kind": "push", "title": "Hotfix the cache", "author": "Codertocat", "merged_by": "dave",
        "decision": "follow-up"}  # the author as the push's commit says (the webhook example's)
    assert push["explanation"].startswith("Direct push: dave pushed 1 commit(s) to main")


def test_summary_counts_sla_coverage_and_the_chain(population):
    bot, _ = population
    head, _ = export(bot, "csv")
    assert head["changes"] == 6  # acme/web included without --repo
    assert head["by_decision"] == {"approved": 2, "followup": 4, "unapproved": 0, "pending": 0}
    assert head["approved_by_rule"] == {"review": 1, "merged-by-other": 1}
    assert head["followups"] == {"filed": 4, "signed_off": 1, "within_sla": 1, "late": 0, "overdue_open": 3,
                                 "open_not_due": 0, "deleted_or_transferred": 0}
    assert head["sla_compliance"] == "100.0%"
    [gap] = head["coverage"]["gaps"]
    assert gap == {"from": "2026-11-10T11:55:00.000000+00:00", "to": "2026-11-10T18:00:00.000000+00:00",
                   "hours": 6.08, "filled_by_sweep_at": "2026-11-10T18:10:00.000000+00:00"}
    # The period runs to 1 Dec, but coverage is counted up to now (30 Nov 12:00), not into the future.
    assert head["coverage"]["running"] == "99.14%"  # 6 h 5 min down in 708 h
    seq, hash_ = audit.head(bot.store.db)
    assert head["audit_chain"] == {"intact": True, "links_hold": True, "hmac_checked": True, "unchecked": None,
                                   "records": seq, "head_seq": seq, "head_hash": hash_,
                                   "problem": None, "missing_from_table": [], "rows_disagreeing": 0,
                                   "rows_checked": True}


def test_json_streams_the_same_population(population):
    bot, _ = population
    _, text = export(bot, "json", repo=REPO)
    doc = json.loads(text)
    assert doc["summary"]["changes"] == 5 and doc["summary"]["period"]["repo"] == REPO
    assert [r["change"] for r in doc["changes"]] == ["#2", "#3", "#4", "#6", "d" * 40]
    _, csv_text = export(bot, "csv", repo=REPO)
    assert [{k: str(v) for k, v in r.items()} for r in doc["changes"]] == list(csv.DictReader(io.StringIO(csv_text)))


def test_cli_writes_the_file_records_the_export_and_fails_on_a_broken_chain(population, cli_env, tmp_path, capsys):
    bot, _ = population
    cli_env.setenv("TBR_DB", bot.store.path)
    out = tmp_path / "q4.csv"
    assert cli.main(["evidence", "--from", "2026-11-01", "--to", "2026-11-30", "--repo", REPO, "--out", str(out)]) == 0
    assert len(out.read_text().splitlines()) == 6
    err = capsys.readouterr().err
    assert "Changes: 5: 2 approved (1 by review, 1 by merged-by-other), 3 with a follow-up" in err
    assert "Audit chain: intact" in err and f"5 changes written to {out}" in err
    [record] = audit.records(bot.store.db, kind="evidence.exported")
    assert record["subject"] == REPO and record["data"]["rows"] == 5 and record["data"]["format"] == "csv"
    bot.store.db.execute("DROP TRIGGER audit_no_update")
    bot.store.db.execute("UPDATE audit SET actor = 'mallory' WHERE seq = 3")
    assert cli.main(["evidence", "--from", "2026-11-01", "--to", "2026-11-30", "--out", str(out)]) == 1
    assert "Audit chain: BROKEN: record #3" in capsys.readouterr().err
    with pytest.raises(SystemExit, match="before --from"):
        cli.main(["evidence", "--from", "2026-11-30", "--to", "2026-11-01"])


@needs_chromium
def test_html_report_offline_in_a_browser_summary_first_printable(population, tmp_path):
    bot, c = population
    _, page_html = export(bot, "html")
    path = tmp_path / "evidence.html"
    path.write_text(page_html, encoding="utf-8")
    with chromium_page() as page:
        requests = []
        page.on("request", lambda r: requests.append(r.url))
        page.goto(path.as_uri())
        assert requests == [path.as_uri()]  # self-contained: nothing fetched but the page itself
        # the last day asked for, not the end excluded
        assert page.title() == "Change management evidence: acme, 2026-11-01 to 2026-11-30"
        summary_box, table_box = page.locator("#summary").bounding_box(), page.locator("#changes").bounding_box()
        assert summary_box["y"] < table_box["y"]
        assert "6 changes" in page.inner_text("#population") and "1 by merged-by-other" in page.inner_text("#population")
        assert page.eval_on_selector_all("#changes tbody tr td:first-child a", "as => as.map(a => a.textContent)") == [
            "acme/api #2", "acme/api #3", "acme/api #4", "acme/web #5", "acme/api #6", "acme/api " + "d" * 12]
        assert page.locator("svg[role=img]").count() == 4 and page.locator("script").count() == 0
        signed = page.locator(".exception", has_text="Change 4").inner_text()
        assert "signed off by @bob 2026-11-05 15:00 (closed): 1.21 business days, within the SLA of 2" in signed
        assert page.inner_text("#audit-check") == "Rows: every row agrees with the audit log"
        page.emulate_media(media="print")
        pdf = page.pdf()
        assert pdf.startswith(b"%PDF") and len(pdf) > 1000


@pytest.mark.parametrize("value, end, zone, bound", [
    ("2026-12-31", True, "UTC", "2027-01-01T00:00:00+00:00"),            # --to a date: that whole day
    ("2026-12-01", False, "UTC", "2026-12-01T00:00:00+00:00"),
    ("2026-12-31", True, "Europe/Berlin", "2026-12-31T23:00:00+00:00"),  # the organization's day
    ("2026-07-01", False, "Europe/Berlin", "2026-06-30T22:00:00+00:00"),  # summer time
    ("2026-12-31T12:00Z", True, "Europe/Berlin", "2026-12-31T12:00:00+00:00"),  # a time: that instant
])
def test_period_dates_are_whole_days_in_the_organization_s_time_zone(value, end, zone, bound):
    settings = type("S", (), {"timezone": zone, "tz": ZoneInfo(zone)})()
    assert cli._period_bound(value, settings, "--to", end).astimezone(timezone.utc).isoformat() == bound


@pytest.mark.parametrize("start, end, zone, days", [
    ("2026-12-01T00:00Z", "2027-01-01T00:00Z", "UTC", ("2026-12-01", "2026-12-31")),
    ("2026-11-30T23:00Z", "2026-12-31T23:00Z", "Europe/Berlin", ("2026-12-01", "2026-12-31")),
    ("2026-12-01T00:00Z", "2027-01-01T00:00Z", "Europe/Berlin", ("2026-12-01", "2027-01-01")),  # 1 Jan 01:00 there
    ("2026-12-01T12:00Z", "2026-12-31T12:00Z", "UTC", ("2026-12-01", "2026-12-31")),
])
def test_a_period_names_its_first_and_last_day(start, end, zone, days):
    period = evidence.Period(datetime.fromisoformat(start), datetime.fromisoformat(end), None, zone)
    assert (period.first_day.isoformat(), period.last_day.isoformat()) == days


def test_the_summary_names_the_organization_the_days_asked_for_and_the_time_before_tbr(population, cli_env, capsys):
    bot, _ = population
    cli_env.setenv("TBR_DB", bot.store.path)
    cli_env.setenv("TBR_TIMEZONE", "Europe/Berlin")
    assert cli.main(["evidence", "--from", "2026-10-01", "--to", "2026-12-31", "--format", "json"]) == 0
    out, err = capsys.readouterr()
    head = json.loads(out)["summary"]
    assert head["organization"] == "acme"
    assert {k: head["period"][k] for k in ("first_day", "last_day", "timezone")} == {
        "first_day": "2026-10-01", "last_day": "2026-12-31", "timezone": "Europe/Berlin"}
    assert head["period"]["to"] == "2026-12-31T23:00:00.000000+00:00"
    assert err.startswith("Period: 2026-10-01 to 2026-12-31 (Europe/Berlin), acme: all watched repositories\n")
    # tbr's first record is the merge of 30 Oct: October before it is not downtime.
    cover = head["coverage"]
    installed = cover["installed_at"]
    assert installed.startswith("2026-10-30T10:")
    assert cover["before_tbr"] == {"from": "2026-09-30T22:00:00.000000+00:00", "to": installed,
                                   "hours": cover["before_tbr"]["hours"], "backfilled_at": None,
                                   "backfilled_since": None}
    assert 707 < cover["before_tbr"]["hours"] < 709  # 30 Sep 22:00 to 30 Oct 10:0x UTC
    assert cover["running"] != "n/a" and cover["watched_hours"] > 24 * 31
    assert "  before tbr: 2026-10-01 00:00 to 2026-10-30 11:0" in err and "no backfill judged its merges" in err
    assert "since tbr was installed (2026-10-30 11:0" in err
