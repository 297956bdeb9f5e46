"""`tbr demo` as a new user runs it from a clone: a week on the tests' fake GitHub, then where to look."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.processes import ROOT


def tbr(*args, env=None, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tbr", *args], cwd=cwd or ROOT, capture_output=True, text=True,
                          timeout=300, env=env)


def test_demo_plays_a_week_and_says_where_to_look(tmp_path):
    base = {k: v for k, v in os.environ.items() if not k.startswith("TBR_")}
    done = tbr("demo", "--out", str(tmp_path / "demo"), env=base, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""  # tbr's own log goes to a file, not into the story
    out = done.stdout
    story = [
        "alice merges acme/api#101 'Add rate limiting', approved by bob",
        "tbr: Approved: bob approved the pull request",
        "tbr: follow-up acme/compliance#2 filed for @carol, labelled tbr, tbr:undeclared",
        "note: carol wrote 'LGTM' on their own pull request, which does not count",
        "tbr: follow-up acme/compliance#3 filed for @dave, labelled tbr:",
        "declared emergency: checkout is down, INC-1234",
        "tbr: follow-up acme/compliance#4 filed for @erin, labelled tbr: Direct push: erin force-pushed 1 commit(s)",
        "tbr replies: @dave, thanks, but this does not complete the review",
        "tbr: Review signed off: @bob",
        "@carol: this follow-up review is overdue; it was due by end of day Wed 02 Dec 2026 (Europe/Berlin)",
        "TBR weekly digest: week of 2026-12-07",
        "**2 open follow-ups: 2 overdue, 0 due in the next 7 days.**",
        "reviewed by @bob in 1.39 business days (within SLA)",
        "The follow-ups (tbr followups):",
        "Changes: 4: 1 approved (1 by review), 3 with a follow-up",
        "2026-12: 2 unapproved: 1 declared and 0 undeclared merges, 1 direct push",
        "Audit log: audit log intact",
        "tbr and the simulated GitHub have stopped.",
    ]
    at = 0
    for line in story:  # in this order
        found = out.find(line, at)
        assert found >= 0, f"{line!r} not in order in:\n{out}"
        at = found
    assert "Traceback" not in out
    folder = tmp_path / "demo"
    page = (folder / "evidence.html").read_text()
    assert page.lstrip().lower().startswith("<!doctype html>")
    assert "<h1>Change management evidence: acme, " in page and "times below are Europe/Berlin" in page
    assert page.count('class="exception"') == 3  # the week's three follow-ups, each told in full
    issues = sorted(p.name for p in (folder / "github").iterdir())
    assert issues == [f"acme-compliance-{n}.md" for n in range(1, 6)]  # two digests, three follow-ups
    carol = (folder / "github" / "acme-compliance-2.md").read_text()
    assert carol.startswith("# TBR acme/api#102 follow-up review (acme/compliance#2, open)")
    assert "Labels: tbr, tbr:undeclared, tbr:overdue; assignees: @carol" in carol
    for line in (json.loads(line) for line in (folder / "tbr.log").read_text().splitlines()):
        assert line["level"] in ("info", "warning"), line  # JSON throughout, and no errors
    # The demo's database answers the CLI afterwards, as the last lines say.
    listed = tbr("followups", "--json", "--now", "2026-12-07T09:15+01:00", env={**base, "TBR_DB": str(folder / "tbr.db"),
                                             "TBR_TIMEZONE": "Europe/Berlin"})
    assert listed.returncode == 0, listed.stderr
    assert [(f["change"], f["followup"], f["state"]) for f in json.loads(listed.stdout)] == [
        ("acme/api#102", "acme/compliance#2", "overdue"),
        ("acme/web#7", "acme/compliance#3", "reviewed by @bob on Wed 02 Dec"),
        (json.loads(listed.stdout)[2]["change"], "acme/compliance#4", "overdue")]


def test_demo_refuses_a_used_directory(tmp_path):
    (tmp_path / "tbr.db").write_text("")
    done = tbr("demo", "--out", str(tmp_path))
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [f"tbr: {tmp_path / 'tbr.db'} exists: give the demo an empty directory"]
