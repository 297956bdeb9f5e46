"""`tbr check-config` against the fake GitHub, and the CLI's one-line errors."""

from __future__ import annotations

import pytest

from datetime import datetime, timedelta, timezone

from tbr.cli import main

HOUR_AGO = datetime.now(timezone.utc) - timedelta(hours=1)  # lost long enough ago to be past its grace period


@pytest.fixture
def env(cli_env):
    return cli_env


def test_check_config_all_good(env, github, capsys):
    github.add_repo("acme/compliance")
    env.setenv("TBR_TRACKING_REPO", "acme/compliance")
    assert main(["check-config"]) == 0
    out = capsys.readouterr().out
    assert "the private key authenticates as App" in out
    assert "tracking repo acme/compliance exists, is not archived and has issues enabled" in out


def test_check_config_without_tracking_repo(env, capsys):
    assert main(["check-config"]) == 0
    assert "each follow-up goes to the repository that changed" in capsys.readouterr().out


@pytest.mark.parametrize("repo_kw, message", [
    ({"archived": True}, "is archived"),
    ({"has_issues": False}, "has issues disabled"),
])
def test_check_config_tracking_repo_unusable(env, github, capsys, repo_kw, message):
    github.add_repo("acme/compliance", **repo_kw)
    env.setenv("TBR_TRACKING_REPO", "acme/compliance")
    assert main(["check-config"]) == 1
    assert message in capsys.readouterr().err


def test_check_config_tracking_repo_missing(env, capsys):
    env.setenv("TBR_TRACKING_REPO", "acme/nowhere")
    assert main(["check-config"]) == 1
    assert "404" in capsys.readouterr().err


def test_check_config_key_of_another_app(env, github, capsys):
    env.setenv("TBR_APP_ID", str(github.app_id + 1))
    assert main(["check-config"]) == 1
    assert "belongs to App" in capsys.readouterr().err


def test_check_config_unreachable_github(env, capsys):
    env.setenv("TBR_GITHUB_API_URL", "http://127.0.0.1:9")
    assert main(["check-config"]) == 3  # try again later
    assert "GitHub is unreachable" in capsys.readouterr().err


def test_bad_setting_is_one_line_and_exit_2(env, capsys):
    env.setenv("TBR_GRACE_SECONDS", "soon")
    assert main(["check-config"]) == 2
    assert capsys.readouterr().err == "tbr: configuration error: TBR_GRACE_SECONDS must be a whole number, got 'soon'\n"


def test_process_and_status_run_once(env, capsys):
    assert main(["process", "--json"]) == 0
    assert '"handled": 0' in capsys.readouterr().out
    assert main(["status"]) == 0


def test_sweep_command(env, github, capsys):
    github.add_repo("acme/api")
    sha = github.add_commit("acme/api", "main", message="direct", committed_at=HOUR_AGO)
    assert main(["sweep", "--since", "2020-01-01", "--json"]) == 0
    out = capsys.readouterr().out
    assert '"repos_checked": 1' in out and '"changes_found": 1' in out and '"since": "2020-01-01T00:00:00+00:00"' in out
    assert [i["title"] for i in github.issues("acme/api")] == [f"TBR acme/api@{sha[:7]} follow-up review"]


def test_remind_and_digest_dry_runs_write_nothing(env, github, capsys):
    github.add_repo("acme/api")
    github.add_commit("acme/api", "main", message="direct", committed_at=HOUR_AGO)
    env.setenv("TBR_TRACKING_REPO", "acme/api")
    assert main(["sweep"]) == 0
    [issue] = github.issues("acme/api")
    assert main(["remind", "--now", "2099-01-05T10:00:00Z", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "would post overdue on" in out and "would post still-overdue on" in out and "2 reminder(s)" in out
    assert main(["digest", "--now", "2099-01-05T10:00:00Z", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "# TBR weekly digest: week of 2099-01-05" in out and "## Overdue (1)" in out
    assert github.comments("acme/api", issue["number"]) == []
    assert len(github.issues("acme/api")) == 1


def test_remind_posts_and_digest_publishes(env, github, capsys):
    github.add_repo("acme/api")
    github.add_commit("acme/api", "main", message="direct", committed_at=HOUR_AGO)
    env.setenv("TBR_TRACKING_REPO", "acme/api")
    main(["sweep"])
    [issue] = github.issues("acme/api")
    assert main(["remind", "--now", "2099-01-05T10:00:00Z"]) == 0
    assert main(["remind", "--now", "2099-01-05T11:00:00Z"]) == 0
    assert len(github.comments("acme/api", issue["number"])) == 2  # overdue, and the latest repeat
    assert main(["digest", "--now", "2099-01-05T10:00:00Z"]) == 0
    assert "TBR weekly digest: week of 2099-01-05" in [i["title"] for i in github.issues("acme/api")]


def test_bad_now_is_one_line(env):
    with pytest.raises(SystemExit) as e:
        main(["remind", "--now", "yesterday"])
    assert "not an ISO 8601 time" in str(e.value.code)
