"""What used to end in a Python traceback: each is now one line on standard error and a non-zero exit,
and `--debug` shows the traceback."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tbr.cli import main
from tests.processes import ROOT

UNREACHABLE = "http://127.0.0.1:9"  # nothing listens on the discard port


def one_line(err: str) -> str:
    """The error line; fails when there is a traceback, or more than one line from tbr itself."""
    assert "Traceback" not in err, err
    mine = [line for line in err.splitlines() if line.startswith("tbr:")]
    assert len(mine) == 1, err
    return mine[0]


@pytest.mark.parametrize("argv", [["status"], ["check-config"], ["process"], ["followups"],
                                  ["audit", "verify"], ["digest", "--dry-run"]])
def test_db_in_a_missing_directory_is_a_configuration_error(cli_env, capsys, argv):
    cli_env.setenv("TBR_DB", "/missing/dir/tbr.db")
    assert main(argv) == 2
    assert one_line(capsys.readouterr().err) == (
        "tbr: configuration error: TBR_DB: the directory /missing/dir does not exist: create it, or set TBR_DB to"
        " a file in an existing directory")


def test_db_in_a_missing_directory_stops_gunicorn_with_the_same_line(service_env):
    env = {**service_env, "TBR_DB": "/missing/dir/tbr.db", "PORT": "0"}
    done = subprocess.run([sys.executable, "-m", "gunicorn", "app:app"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode != 0
    assert one_line(done.stderr).startswith("tbr: configuration error: TBR_DB: the directory /missing/dir")


def test_check_config_says_when_the_database_is_not_writable(cli_env, capsys, tmp_path):
    (tmp_path / "ro").mkdir()
    (tmp_path / "ro" / "tbr.db").write_text("not a database, and a file SQLite cannot use")
    cli_env.setenv("TBR_DB", str(tmp_path / "ro" / "tbr.db"))
    assert main(["check-config"]) == 1
    assert "(TBR_DB): file is not a database" in one_line(capsys.readouterr().err)


def test_check_config_names_each_repository_of_tbr_repos_not_installed(cli_env, github, capsys):
    github.add_repo("acme/api")
    cli_env.setenv("TBR_REPOS", "acme/api,acme/nope,acme/gone")
    assert main(["check-config"]) == 1
    out, err = capsys.readouterr()
    assert "ok: database" in out
    lines = [line for line in err.splitlines() if line.startswith("tbr:")]
    assert [line.split(",")[0] for line in lines] == ["tbr: TBR_REPOS lists acme/gone", "tbr: TBR_REPOS lists acme/nope"]
    assert all("is the App installed on it?" in line for line in lines)
    cli_env.setenv("TBR_REPOS", "acme/api")
    assert main(["check-config"]) == 0
    assert "ok: the App is installed on every repository of TBR_REPOS (1)" in capsys.readouterr().out


@pytest.mark.parametrize("argv", [["config", "show", "acme/nope"], ["backfill", "--since", "2026-01-01",
                                                                     "--repo", "acme/nope"]])
def test_unknown_repository_is_one_line(cli_env, capsys, argv):
    assert main(argv) == 1
    line = one_line(capsys.readouterr().err)
    assert "acme/nope" in line and "404" in line and "is the App installed on it?" in line


def test_evidence_into_a_missing_directory_is_one_line(cli_env, capsys):
    assert main(["evidence", "--from", "2026-11-01", "--to", "2026-11-30", "--out", "/missing/dir/x.html"]) == 1
    assert one_line(capsys.readouterr().err) == "tbr: /missing/dir/x.html: No such file or directory"


@pytest.mark.parametrize("argv", [["digest", "--now", "2026-12-07T09:00Z"], ["backfill", "--since", "2026-11-01"],
                                  ["config", "show", "acme/api"], ["sweep"], ["check-config"]])
def test_unreachable_github_is_one_line_and_exit_3(cli_env, capsys, monkeypatch, argv):
    cli_env.setenv("TBR_GITHUB_API_URL", UNREACHABLE)
    monkeypatch.setattr("githubkit.core.time.sleep", lambda seconds: None)  # its retries' waits, not ours
    cli_env.setenv("TBR_TRACKING_REPO", "acme/compliance")
    assert main(argv) in (1, 3)  # a sweep notes what failed and ends 1; everything else is "try again"
    err = capsys.readouterr().err
    assert "Traceback" not in err
    if argv[0] != "sweep":
        assert main(argv) == 3
        assert "GitHub is unreachable or busy, try again later" in one_line(capsys.readouterr().err)


def test_refused_request_is_one_line(cli_env, github, capsys):
    github.add_repo("acme/compliance")
    cli_env.setenv("TBR_TRACKING_REPO", "acme/compliance")
    github.fail("POST", r"/repos/acme/compliance/issues", 403, times=5)
    assert main(["digest", "--now", "2026-12-07T09:00Z"]) == 1
    assert "GitHub answered 403" in one_line(capsys.readouterr().err)


def test_debug_shows_the_traceback_anywhere_on_the_line(cli_env, capsys, monkeypatch):
    cli_env.setenv("TBR_GITHUB_API_URL", UNREACHABLE)
    monkeypatch.setattr("githubkit.core.time.sleep", lambda seconds: None)
    assert main(["config", "show", "acme/api", "--debug"]) == 3
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err and "GitHubUnavailable" in err
    assert err.rstrip().splitlines()[-1].startswith("tbr: GitHub is unreachable")
    assert main(["--debug", "config", "show", "acme/api"]) == 3
    assert "Traceback" in capsys.readouterr().err


def test_the_command_line_entry_point_exits_with_the_code(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "TBR_DB": "/missing/dir/tbr.db"}
    done = subprocess.run([sys.executable, "-m", "tbr", "status"], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 2 and done.stdout == ""
    assert one_line(done.stderr).startswith("tbr: configuration error: TBR_DB")


def test_unreachable_slack_is_one_line(cli_env, github, capsys):
    github.add_repo("acme/compliance")
    cli_env.setenv("TBR_TRACKING_REPO", "acme/compliance")
    cli_env.setenv("TBR_SLACK_WEBHOOK_URL", f"{UNREACHABLE}/services/T0/B0/x")
    assert main(["digest", "--now", "2026-12-07T09:00Z"]) == 1
    assert one_line(capsys.readouterr().err) == "tbr: Slack webhook (TBR_SLACK_WEBHOOK_URL): ConnectError"
    assert [i["title"] for i in github.issues("acme/compliance")] == ["TBR weekly digest: week of 2026-12-07"]
