"""The `tbr` command fits the conventions of a command line: --version, help for every option, the
environment in --help, people's output on stdout and logs on stderr, --json on listings, times in the
organization's time zone, and a reason when a command does nothing."""

from __future__ import annotations

import argparse
import io
import json
import subprocess
import sys
from datetime import datetime, timedelta, timezone

import pytest
import structlog

from tbr import __version__, logs
from tbr.cli import main
from tests.processes import ROOT


def parsers():
    """Every parser of the command line, with its name, by walking argparse's sub-parsers."""
    from tbr import cli

    captured = {}
    real = argparse.ArgumentParser.parse_args

    def grab(self, args=None, namespace=None):
        captured["root"] = self
        raise SystemExit(0)

    argparse.ArgumentParser.parse_args = grab
    try:
        with pytest.raises(SystemExit):
            cli.main(["status"])
    finally:
        argparse.ArgumentParser.parse_args = real
    todo, found = [("tbr", captured["root"])], []
    while todo:
        name, parser = todo.pop()
        found.append((name, parser))
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                todo += [(f"{name} {sub}", p) for sub, p in action.choices.items()]
    return found


def test_version():
    done = subprocess.run([sys.executable, "-m", "tbr", "--version"], capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stdout) == (0, f"tbr {__version__}\n")


def test_every_option_and_argument_has_help_and_a_readable_metavar():
    for name, parser in parsers():
        for action in parser._actions:
            if isinstance(action, (argparse._HelpAction, argparse._VersionAction)):
                continue
            what = f"{name} {'/'.join(action.option_strings) or action.dest}"
            if isinstance(action, argparse._SubParsersAction):  # each command says what it does
                assert all(c.help for c in action._choices_actions), what
                continue
            assert action.help, f"{what} has no help"
            shown = parser.format_help()
            assert "FROM_" not in shown, shown
            if action.metavar:
                assert "_" not in str(action.metavar), what


def test_help_lists_the_environment_and_exit_codes(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    for name in ("TBR_APP_ID", "TBR_DB", "TBR_TIMEZONE", "TBR_GRACE_SECONDS", "TBR_LOG_FORMAT", "TBR_REPOS"):
        assert name in out
    assert "exit status: 0 done, 1 failed, 2 usage or configuration error, 3 try again later" in out
    for command in ("demo", "followups", "status", "check-config", "evidence", "backfill"):
        assert f"    {command}" in out


def test_logs_are_json_when_not_at_a_terminal_and_never_coloured_in_a_pipe():
    pipe = io.StringIO()  # not a terminal
    logs.configure("auto", file=pipe)
    structlog.get_logger("t").info("thing.happened", repo="acme/api")
    assert json.loads(pipe.getvalue())["event"] == "thing.happened"
    pipe = io.StringIO()
    logs.configure("console", file=pipe)
    structlog.get_logger("t").info("thing.happened", repo="acme/api")
    assert "thing.happened" in pipe.getvalue() and "\x1b[" not in pipe.getvalue()


def test_a_log_line_starts_on_its_own_line_after_a_progress_line(capsys):
    logs.configure("json")
    logs.progress("acme/api: 10 PRs")
    structlog.get_logger("t").warning("github.slow")
    logs.progress("acme/api: 20 PRs")
    logs.end_progress()
    err = capsys.readouterr().err
    assert "\r\x1b[Kacme/api: 10 PRs\n{" in err  # the log line does not start at the end of the progress line
    assert err.endswith("acme/api: 20 PRs\n")


def test_the_service_entry_logs_json_into_a_pipe(service_env):
    """stdout and stderr of a command are pipes here: human output on stdout, JSON logs on stderr."""
    done = subprocess.run([sys.executable, "-m", "tbr", "process"], cwd=ROOT, env=service_env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("0 item(s) of work done: nothing was due\nWaiting: 0 webhook deliveries")
    for line in done.stderr.splitlines():
        json.loads(line)


@pytest.fixture
def filed(cli_env, github):
    """Three follow-ups in acme/compliance, filed by the CLI's sweep: one signed off, one overdue, one not yet due."""
    github.add_repo("acme/api")
    github.add_repo("acme/compliance")
    cli_env.setenv("TBR_TRACKING_REPO", "acme/compliance")
    cli_env.setenv("TBR_TIMEZONE", "Europe/Berlin")
    return github


def merge(github, number, merged_at, author="alice"):
    github.add_pull("acme/api", number, author=author, merged_by=author, merged_at=merged_at)


def test_followups_and_status_speak_of_repositories_and_people(filed, capsys):
    github = filed
    now = datetime.now(timezone.utc)
    merge(github, 7, now - timedelta(days=9))
    merge(github, 8, now - timedelta(hours=2), author="carol")
    assert main(["sweep", "--since", (now - timedelta(days=10)).isoformat()]) == 0
    capsys.readouterr()
    assert main(["followups", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [(f["change"], f["assignee"], f["state"]) for f in listed] == [
        ("acme/api#7", "alice", "overdue"), ("acme/api#8", "carol", "follow-up open")]
    assert all(f["followup"].startswith("acme/compliance#") for f in listed)
    assert listed[0]["due_at"].endswith(("+01:00", "+02:00"))  # in Europe/Berlin
    assert main(["followups", "--overdue"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split() == ["FOLLOW-UP", "CHANGE", "ASSIGNEE", "DUE", "BY", "END", "OF", "(Europe/Berlin)",
                                "STATE"]
    assert len(table) == 2 and "acme/api#7" in table[1] and "@alice" in table[1] and table[1].endswith("overdue")
    # signed off: the status says so in words, and no internal key anywhere
    number = listed[0]["followup"].split("#")[1]
    github.add_collaborator("acme/api", "bob", "write")  # may sign off
    github.close_issue("acme/compliance", int(number), by="bob")
    assert main(["sweep", "--since", (now - timedelta(days=10)).isoformat()]) == 0
    capsys.readouterr()
    assert main(["status"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Follow-ups: 1 open (0 overdue), 1 reviewed\n")
    assert "acme/api#7" in out and "reviewed by @bob on" in out and "acme/api#8" in out
    assert "pr:" not in out and "followup " not in out and "{" not in out
    assert main(["status", "--json"]) == 0
    assert {c["change"] for c in json.loads(capsys.readouterr().out)["changes"]} == {"acme/api#7", "acme/api#8"}
    assert main(["followups", "--open"]) == 0
    assert "acme/api#7" not in capsys.readouterr().out


def test_no_followups_says_so(cli_env, capsys):
    assert main(["followups", "--overdue"]) == 0
    assert capsys.readouterr().out == "no overdue follow-ups\n"


def test_a_naive_now_is_read_in_the_organizations_time_zone_and_said_so(filed, capsys):
    assert main(["digest", "--dry-run", "--now", "2026-12-14T09:00"]) == 0
    out, err = capsys.readouterr()
    assert ("note: --now 2026-12-14T09:00 has no offset: read as 2026-12-14 09:00 Europe/Berlin (TBR_TIMEZONE)"
            in err)
    assert "as of Mon 14 Dec 2026 09:00 (Europe/Berlin)" in out
    assert main(["digest", "--dry-run", "--now", "2026-12-14T09:00Z"]) == 0
    out, err = capsys.readouterr()
    assert "note:" not in err and "as of Mon 14 Dec 2026 10:00 (Europe/Berlin)" in out


def test_commands_that_do_nothing_say_why(filed, cli_env, capsys):
    filed.add_repo("acme/web")
    assert main(["remind", "--now", "2026-12-14T09:00Z"]) == 0
    assert "0 reminder(s): none owed" in capsys.readouterr().out
    assert main(["access-review", "open", "--quarter", "2026-Q4"]) == 0
    first = capsys.readouterr().out
    assert first.endswith("3 access review(s) opened for 2026-Q4\n")  # acme/api, acme/compliance, acme/web
    assert main(["access-review", "open", "--quarter", "2026-Q4"]) == 0
    assert "0 access review(s) opened for 2026-Q4: 3 already open or complete" in capsys.readouterr().out
    cli_env.setenv("TBR_ACCESS_REVIEWS", "off")
    assert main(["access-review", "open", "--quarter", "2027-Q1"]) == 0
    assert "0 access review(s) opened for 2027-Q1: no watched repository has access reviews on" in (
        capsys.readouterr().out)


def test_backfill_ends_its_progress_line(filed, monkeypatch, capsys):
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    merge(filed, 3, datetime.now(timezone.utc) - timedelta(days=2))
    assert main(["backfill", "--since", "2026-01-01T00:00Z"]) == 0
    err = capsys.readouterr().err
    assert "\r\x1b[K" in err and err.rstrip("\n").count("\r\x1b[K") >= 1
    last_progress = err.rindex("\r\x1b[K")
    assert "\n" in err[last_progress:], "the progress line is ended"



def test_remind_lists_as_json(filed, capsys):
    merge(filed, 4, datetime.now(timezone.utc) - timedelta(days=20))
    assert main(["sweep", "--since", (datetime.now(timezone.utc) - timedelta(days=21)).isoformat()]) == 0
    capsys.readouterr()
    assert main(["remind", "--dry-run", "--json"]) == 0
    owed = json.loads(capsys.readouterr().out)
    assert [r["kind"] for r in owed] == ["overdue", "still-overdue"]
    assert owed[0]["issue"].endswith("/acme/compliance/issues/1") and "@alice" in owed[0]["text"]
