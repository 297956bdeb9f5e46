"""The auditor's report as a person reads it: printed by Chromium to A4 and Letter and read back with
pdftotext, and on screens 1,400 px and 390 px wide with nothing to scroll sideways. One browser for the
module. Rows tbr's own flow makes (tests/test_evidence.py's population) and the rest of the kinds put in
the tables as an older tbr or a copy would hold them."""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
import sys
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from tbr import cli, evidence, pdf, report
from tests.processes import CHROMIUM, ROOT, needs_chromium
from tests.test_evidence import REPO, export, population, utc  # noqa: F401 (population: a fixture)

EVIL = '<script>alert(1)</script> & "quotes"'
LONG = "Waiting" + "x" * 249  # GitHub's longest title, one unbroken word: it must wrap, not widen the page


def _change(db, key, status, at, **kw):
    row = {"key": key, "kind": "pr", "repo": REPO, "repo_id": 1000, "branch": "main", "number": kw.pop("number"),
           "sha": "e" * 40, "actor": kw.pop("actor", "erin"), "happened_at": at, "source": kw.pop("source", "backfill"),
           # Before the audit log began: shown as the table holds it ("predates the audit log").
           "first_seen_at": kw.pop("seen", "2026-10-01T00:00:00+00:00"), "next_attempt_at": at, "status": status,
           "facts": json.dumps({"title": kw.pop("title"), "url": f"https://github.com/{REPO}/pull/9", "author": "erin"}),
           "decision": json.dumps(kw.pop("decision")), **kw}
    db["changes"].insert(row)


@pytest.fixture
def everything(population):
    """Every kind of row: approved by each rule, follow-ups open, overdue, signed off in time and late,
    reverted, declared and undeclared, before tbr, pending, one the audit log disproves; access reviews,
    offboarding, 2FA and configuration changes; user text that must be escaped."""
    bot, c = population
    db = bot.store.db
    declared = {"by": "erin", "at": "2026-11-12T08:00:00+00:00", "reason": f"checkout down {EVIL}", "ticket": "INC-77"}
    followup = {"followup_repo": "acme/compliance", "due_at": "2026-11-17T00:00:00+00:00",
                "followup_state": "signed_off", "signed_off_by": "frank"}
    _change(db, "pr:1000:20", "followup", "2026-11-12T08:05:00+00:00", number=20, title=f"Hotfix {EVIL}",
            decision={"rule": "none", "summary": "No approval found: erin merged her own change",
                      "notes": ["mallory's comment came after the grace period"], "declaration": declared},
            followup_number=20, followup_url="https://github.com/acme/compliance/issues/20",
            signed_off_at="2026-11-19T10:00:00+00:00", signoff_how="comment", business_seconds=4.4 * 86400,
            within_sla=0, **{k: v for k, v in followup.items()})
    _change(db, "pr:1000:21", "followup", "2026-11-13T09:00:00+00:00", number=21, title="Reverted change",
            decision={"rule": "none", "summary": "No approval found: erin merged her own change"},
            followup_number=21, followup_url="https://github.com/acme/compliance/issues/21",
            signed_off_at="2026-11-13T12:00:00+00:00", signoff_how="reverted", business_seconds=0.12 * 86400,
            within_sla=1, **{**followup, "signed_off_by": "gina"})
    _change(db, "pr:1000:22", "unapproved", "2026-11-01T09:00:00+00:00", number=22, title="Before tbr",
            decision={"rule": "none", "summary": "No approval found (backfill): erin merged her own change"})
    _change(db, "pr:1000:23", "approved", "2026-11-01T10:00:00+00:00", number=23, title="Exempt author",
            decision={"rule": "exempt-author", "summary": "Approved: renovate is exempt",
                      "approval": {"approver": "renovate", "at": "2026-11-01T10:00:00+00:00"}})
    _change(db, "pr:1000:24", "pending", "2026-11-29T23:58:00+00:00", number=24, title=LONG, decision={},
            source="webhook")
    _change(db, "pr:1000:25", "approved", "2026-11-20T10:00:00+00:00", number=25, title="Unrecorded",
            decision={"rule": "comment", "summary": "Approved: LGTM by bob",
                      "approval": {"approver": "bob", "at": "2026-11-20T09:00:00+00:00"}},
            seen="2026-11-20T10:00:00+00:00", source="webhook")  # after the log began, yet never recorded
    db["access_reviews"].insert({"key": "2026-Q4:acme/api", "quarter": "2026-Q4", "subject": REPO, "tracking_repo":
                                 "acme/compliance", "number": 30, "url": "https://github.com/acme/compliance/issues/30",
                                 "opened_at": "2026-11-02T09:00:00+00:00", "due_at": "2026-11-30T00:00:00+00:00",
                                 "terms": "{}"})
    db["access_lines"].insert_all([
        {"review_key": "2026-Q4:acme/api", "line_id": "1", "repo": REPO, "login": "zoe", "permission": "admin",
         "via": json.dumps(["team platform"])},
        {"review_key": "2026-Q4:acme/api", "line_id": "2", "repo": REPO, "login": "yves", "permission": "write",
         "via": json.dumps(["direct"])}])
    db["offboarding"].insert({"org": "acme", "login": "xavier", "repo": REPO, "kind": "collaborator",
                              "detail": "write, left acme on 2026-11-03", "found_at": "2026-11-04T09:00:00+00:00",
                              "issue_url": "https://github.com/acme/compliance/issues/31"})
    db["twofa_checks"].insert({"org": "acme", "checked_at": "2026-11-15T06:00:00+00:00", "visible": 1,
                               "members": json.dumps(["wendy"]), "outside": json.dumps([])})
    db["config_versions"].insert({"repo": REPO, "kind": "changed", "recorded_at": "2026-11-16T12:00:00+00:00",
                                  "effective_at": "2026-11-16T12:00:00+00:00", "actor": "vic", "commit_sha": "f" * 40,
                                  "changes": json.dumps([{"key": "sla_business_days", "before": 2, "after": 1}])})
    return bot


POLICY = report.Policy(holidays="DE-BE")
BERLIN = ZoneInfo("Europe/Berlin")  # the organization's time zone: the period's days and the report's times


def november(year: int = 2026, month: int = 11) -> evidence.Period:
    """A calendar month of the organization's."""
    return evidence.Period(datetime(year, month, 1, tzinfo=BERLIN), datetime(year, month + 1, 1, tzinfo=BERLIN),
                           timezone=BERLIN.key)


def render(bot, tmp_path) -> tuple[dict, str]:
    out = io.StringIO()
    head, _ = evidence.export(bot.store.db, november(), "html", out, bot.clock(), policy=POLICY)
    (tmp_path / "report.html").write_text(out.getvalue(), encoding="utf-8")
    return head, out.getvalue()


def test_user_text_is_escaped_and_the_control_is_stated(everything, tmp_path):
    head, page = render(everything, tmp_path)
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;quotes&quot;" in page
    assert ("follow-up review is filed and signed off by someone other than its author within 2 business days (by"
            " the end of the day, Europe/Berlin time, public holidays of DE-BE excluded") in page
    assert 'DISAGREES: the audit log has no record of this change' in page and evidence.failed(head)
    assert 'class="broken">Rows: BROKEN: 1 rows disagree' in page


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM and not os.environ.get("TBR_REQUIRE_BROWSER"):
        pytest.skip("no Chromium here")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=pdf.flags())
        yield b
        b.close()


def pdf_text(browser, html_path, paper: str, out) -> tuple[str, int]:
    page = browser.new_page()
    page.goto(html_path.as_uri())
    page.pdf(path=str(out), format=pdf.PAPERS[paper], print_background=True, **pdf.MARGINS)
    page.close()
    text = read_pdf(out)
    return text, text.count("\f")


def read_pdf(path) -> str:
    """The PDF's text as pdftotext reads it, a cell's words together, pages apart by form feeds."""
    if not shutil.which("pdftotext") and not os.environ.get("TBR_REQUIRE_BROWSER"):
        pytest.skip("no pdftotext here (apt-get install poppler-utils)")
    return subprocess.run(["pdftotext", str(path), "-"], capture_output=True, text=True, check=True).stdout


@needs_chromium
@pytest.mark.parametrize("paper", ["a4", "letter"])
def test_on_paper_the_table_runs_over_pages_with_its_headers_and_no_row_split(population, tmp_path, browser, paper):
    bot, _ = population
    for n in range(100, 260):
        _change(bot.store.db, f"pr:1000:{n}", "approved", f"2026-11-{1 + n % 28:02d}T10:{n % 60:02d}:00+00:00",
                number=n, title=f"Row {n} title " + "words " * (n % 9), decision={
                    "rule": "review", "summary": "Approved", "approval": {"approver": f"approver{n}",
                                                                          "at": "2026-11-01T09:00:00+00:00"}})
    render(bot, tmp_path)
    text, _ = pdf_text(browser, tmp_path / "report.html", paper, tmp_path / f"table-{paper}.pdf")
    pages = text.split("\f")
    holding = [i for i, page in enumerate(pages) if re.search(r"acme/api #1\d\d\b", page)]
    assert len(holding) >= 3  # the table runs over several pages
    for i in holding:
        assert "Title and people" in pages[i] and "Sign-off" in pages[i], f"page {i + 1} has rows but no header"
    for n in range(100, 260):
        where = {what: [i for i, page in enumerate(pages) if re.search(rf"{what}\b", page)][0]
                 for what in (f"acme/api #{n}", f"Row {n} title", f"@approver{n}")}
        assert len(set(where.values())) == 1, f"row {n} split over pages: {where}"


@needs_chromium
@pytest.mark.parametrize("paper", ["a4", "letter"])
def test_on_paper_every_figure_and_every_fact_of_an_exception_is_there(everything, tmp_path, browser, paper):
    head, _ = render(everything, tmp_path)
    text, pages = pdf_text(browser, tmp_path / "report.html", paper, tmp_path / f"report-{paper}.pdf")
    flat = re.sub(r"\s+", " ", text)
    assert 2 <= pages <= 12
    assert f"Page 1 of {pages}" in flat and f"Page {pages} of {pages}" in flat
    assert flat.count("acme · 2026-11-01 to 2026-11-30") == pages  # the footer on every page
    s = head
    for figure in (f"{s['changes']} changes", f"{s['by_decision']['approved']} approved before merge",
                   "1 by review", "1 by merged-by-other", "1 by exempt-author", "1 by comment",
                   f"{s['by_decision']['followup']} with a follow-up", "1 unapproved before tbr", "1 pending",
                   "1 declared emergency", f"{s['sla_compliance']} within the SLA",
                   f"{s['followups']['within_sla']} of {s['followups']['signed_off']} signed off within 2 business days",
                   f"{s['followups']['late']} late", f"{s['followups']['overdue_open']} overdue, still open",
                   f"{s['coverage']['running']} running", "1 gap, 1 filled by a sweep",
                   "1 change ", "1 taken, 0 refused, 0 invalid", "0 of 1 access review complete",
                   "1 offboarding finding, 1 unresolved",
                   f"{sum(m['exceptions'] for m in s['by_month'])} unapproved", "1 before tbr", "Rows: BROKEN: 1 rows disagree"):
        assert figure in flat, figure
    # The declared emergency signed off late, every fact of its story, in Berlin time.
    for fact in ("acme/api #20: Hotfix <script>alert(1)</script> & \"quotes\"",
                 "2026-11-12 09:05 to main by @erin (author @erin); found by backfill",
                 "No approval found: erin merged her own change", "mallory's comment came after the grace period",
                 "declared by @erin 2026-11-12 09:00: checkout down", "(ticket INC-77)",
                 "signed off by @frank 2026-11-19 11:00 (comment): 4.4 business days, past the SLA of 2",
                 "predates the audit log", "acme/compliance#20, due 2026-11-17 01:00"):
        assert fact in flat, fact
    # Nothing cut off at the right: each row's last column (its sign-off, or follow-up) is on paper.
    for signoff in ("2026-11-05 16:00 by @bob (closed)", "2026-11-13 13:00 by @gina (reverted)"):
        assert signoff in flat, signoff
    for last in ("yves", "wendy", "sla_business_days", "unresolved"):
        assert last in flat, last
    # The unbroken title wraps within its cell, every character of it on paper, none past the edge.
    assert sum(len(run) for run in re.findall(r"(?m)^(?:Waiting)?(x+)$", text)) == 249


@needs_chromium
@pytest.mark.parametrize("width,height", [(1400, 900), (390, 844)])
def test_on_screen_a_row_reads_without_scrolling_sideways(everything, tmp_path, browser, width, height):
    render(everything, tmp_path)
    page = browser.new_page(viewport={"width": width, "height": height})
    page.goto((tmp_path / "report.html").as_uri())
    page.screenshot(path=str(tmp_path / f"report-{width}.png"), full_page=True)
    assert page.evaluate("document.documentElement.scrollWidth <= innerWidth")
    outside = page.evaluate("""() => [...document.querySelectorAll('tr, .exception, figure')].filter(e => {
        const r = e.getBoundingClientRect(); return r.left < 0 || r.right > innerWidth + 0.5;
    }).map(e => e.textContent.slice(0, 60))""")
    assert outside == []
    rows = page.locator("#changes tbody tr").count()
    assert rows == 12
    if width < 500:  # a phone: each row a card, its cells labelled
        assert page.evaluate("getComputedStyle(document.querySelector('#changes td')).display") == "block"
    page.close()


@needs_chromium
def test_cli_writes_the_pdf(everything, cli_env, tmp_path):
    cli_env.setenv("TBR_DB", everything.store.path)
    cli_env.setenv("TBR_TIMEZONE", "Europe/Berlin")
    out = tmp_path / "q4.pdf"
    # Its own process: Playwright's sync API does not nest in this module's browser.
    done = subprocess.run([sys.executable, "-m", "tbr", "evidence", "--from", "2026-11-01", "--to", "2026-11-30",
                           "--format", "pdf", "--paper", "letter", "--out", str(out)], capture_output=True, text=True,
                          timeout=120, cwd=ROOT)
    assert done.returncode == 1, done.stderr  # the row the log disproves fails it, as for every format
    assert "12 changes written" in done.stderr
    text = read_pdf(out)
    assert "Change management evidence: acme, 2026-11-01 to 2026-11-30" in text and "Page 1 of" in text
    # Or to standard output, when it is not a terminal (`tbr evidence --format pdf > q4.pdf`).
    piped = subprocess.run([sys.executable, "-m", "tbr", "evidence", "--from", "2026-11-01", "--to", "2026-11-30",
                            "--format", "pdf"], capture_output=True, timeout=120, cwd=ROOT)
    assert piped.returncode == 1 and piped.stdout.startswith(b"%PDF-"), piped.stderr
    (tmp_path / "piped.pdf").write_bytes(piped.stdout)
    assert "Change management evidence: acme" in read_pdf(tmp_path / "piped.pdf")


def test_without_chromium_one_line_and_a_configuration_error(everything, cli_env, tmp_path, capsys):
    cli_env.setenv("TBR_DB", everything.store.path)
    cli_env.setenv("TBR_CHROMIUM", str(tmp_path / "no-such-browser"))
    code = cli.main(["evidence", "--from", "2026-11-01", "--to", "2026-11-30", "--format", "pdf",
                     "--out", str(tmp_path / "q4.pdf")])
    err = capsys.readouterr().err
    assert code == 2 and err.strip() == f"tbr: configuration error: {pdf.MISSING}" and not (tmp_path / "q4.pdf").exists()


def test_without_the_audit_key_the_report_never_says_intact(everything, tmp_path):
    everything.store.db.audit_keys = None  # an auditor's copy, checked without TBR_AUDIT_KEY
    head, page = render(everything, tmp_path)
    assert not head["audit_chain"]["intact"] and head["audit_chain"]["links_hold"]
    assert '<p class="big broken">NOT FULLY CHECKED</p><p>the links hold, but the HMACs of records' in page
    assert ">intact<" not in page and ">proven<" not in page and "agrees (HMACs not checked)" in page


@pytest.mark.parametrize("zone, months", [("UTC", ["2026-11", "2026-12"]), ("Europe/Berlin", ["2026-12"]),
                                          ("America/Los_Angeles", ["2026-11"])])
def test_monthly_figures_count_the_organization_s_months(population, zone, months):
    bot, _ = population
    db = bot.store.db
    db.execute("DELETE FROM changes")
    for n, at in ((30, "2026-11-30T23:30:00+00:00"), (31, "2026-12-01T07:30:00+00:00")):
        _change(db, f"pr:1000:{n}", "unapproved", at, number=n, title="t", decision={"rule": "none"})
    period = evidence.Period(utc("2026-11-01 00:00"), utc("2026-12-31 00:00"), timezone=zone)
    assert [m["month"] for m in evidence.monthly(db, period)] == months
    assert sum(m["exceptions"] for m in evidence.monthly(db, period)) == 2


def test_a_period_without_changes_says_so(everything, tmp_path):
    out = io.StringIO()
    head, n = evidence.export(everything.store.db, november(2025, 1), "html", out, everything.clock(), policy=POLICY)
    page = out.getvalue()
    assert n == 0 and "No change reached a watched branch in the period." in page
    assert "every change in the period was approved" not in page and "<p>None.</p>" in page
    assert "n/a running" in page  # all of it before tbr: nothing to measure, not 0% running
