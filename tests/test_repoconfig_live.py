"""Per-repository configuration in action, against the fake GitHub: layering, effects, bad files."""

from __future__ import annotations

import pytest

from tbr.cli import main
from tests import payloads

REPO = "acme/api"


@pytest.fixture
def repo(github):
    github.add_repo("acme/.github")
    github.add_repo("acme/compliance")
    repo = github.add_repo(REPO)
    github.add_collaborator(REPO, "bob", "write")
    return repo


def merge(github, repo, bot, number=7, author="alice", merged_by="alice", base="main"):
    github.add_pull(REPO, number, author=author, merged_by=merged_by, base=base, merged_at=bot.clock())
    bot.deliver("pull_request", payloads.merged_pr(REPO, repo["id"], number, author=author, merged_by=merged_by,
                                                   merged_at=bot.clock(), base=base))


def test_repo_file_over_org_file_over_environment(github, repo, bot):
    github.put_file("acme/.github", ".github/tbr.yml", "grace_seconds: 60\ntracking_repo: acme/compliance\n"
                                                       "sla_business_days: 3\n")
    github.put_file(REPO, ".github/tbr.yml", "grace_seconds: 0\n")
    merge(github, repo, bot)
    bot.run()  # grace 0 from the repo's file: judged at once
    [issue] = github.issues("acme/compliance", include_seeded=False)  # tracking repo from the org's file
    assert "within 3 business days" in issue["body"]
    assert "**Wed 25 Nov 2026**" in issue["body"]  # merged Friday + 3 business days


def test_the_organizations_branches_replace_default_and_protected(github, repo, bot):
    github.put_file("acme/.github", ".github/tbr.yml", "branches: ['release/*']\n")
    github.add_branch(REPO, "release/1.2")
    merge(github, repo, bot, number=7, base="main")
    merge(github, repo, bot, number=8, base="release/1.2")
    bot.run(after_seconds=300)
    assert [i["title"] for i in github.issues(REPO, include_seeded=False)] == ["TBR acme/api#8 follow-up review"]


def test_configured_exempt_authors_and_phrases(github, repo, bot):
    github.put_file("acme/.github", ".github/tbr.yml", "exempt_authors: ['release-bot']\napproval_phrases: ['+1']\n")
    merge(github, repo, bot, number=7, author="release-bot", merged_by="release-bot")
    merge(github, repo, bot, number=8)
    github.add_issue_comment(REPO, 8, "bob", "+1", created_at=bot.clock())
    bot.run(after_seconds=300)
    assert github.issues(REPO, include_seeded=False) == []


def push_touching_config(bot, repo, sha):
    payload = payloads.push(REPO, repo["id"], commits=[(sha, "Update tbr.yml")], pushed_at=bot.clock())
    payload["commits"][0].update(added=[], removed=[], modified=[".github/tbr.yml"])
    return payload


def test_invalid_file_fails_tbr_config_and_the_last_valid_one_stays(github, repo, bot):
    github.put_file(REPO, ".github/tbr.yml", "grace_seconds: 0\n")
    bot.deliver("push", push_touching_config(bot, repo, "a" * 40))
    bot.run()
    [ok] = github.check_runs(REPO, head_sha="a" * 40, name="tbr/config")
    assert ok["conclusion"] == "success"
    github.put_file(REPO, ".github/tbr.yml", "grace_seconds: soon\ntimezone: Mars/Olympus\n")
    bot.deliver("push", push_touching_config(bot, repo, "b" * 40))
    bot.run()
    [bad] = github.check_runs(REPO, head_sha="b" * 40, name="tbr/config")
    assert bad["conclusion"] == "failure"
    assert "previous configuration stays in force" in bad["output"]["title"]
    assert "grace_seconds: must be a whole number" in bad["output"]["summary"]
    assert "timezone: 'Mars/Olympus' is not an IANA time zone" in bad["output"]["summary"]
    merge(github, repo, bot, number=9)
    bot.run()  # grace 0 still in force: judged at once
    assert "TBR acme/api#9 follow-up review" in [i["title"] for i in github.issues(REPO, include_seeded=False)]


def test_pushes_that_do_not_touch_the_file_do_not_refetch_it(github, repo, bot):
    github.put_file(REPO, ".github/tbr.yml", "grace_seconds: 0\n")
    for i in range(3):
        bot.deliver("push", payloads.push(REPO, repo["id"], commits=[(f"{i}" * 40, "x")], pushed_at=bot.clock()))
    bot.run(after_seconds=300)
    assert github.count("GET", r"/repos/acme/api/contents/.*") == 1


def test_config_show_names_each_source(github, repo, cli_env, capsys):
    github.put_file("acme/.github", ".github/tbr.yml", "timezone: Europe/Berlin\n")
    github.put_file(REPO, ".github/tbr.yml", "grace_seconds: 30\nholidays: DE\n")
    assert main(["config", "show", REPO]) == 0
    out = capsys.readouterr().out
    assert 'grace_seconds           30  (acme/api:.github/tbr.yml)' in out
    assert 'timezone                "Europe/Berlin"  (acme/.github:.github/tbr.yml)' in out
    assert 'sla_business_days       2  (environment)' in out


def test_config_show_reports_an_invalid_file(github, repo, cli_env, capsys):
    github.put_file(REPO, ".github/tbr.yml", "grace_seconds: soon\n")
    assert main(["config", "show", REPO]) == 0
    assert "invalid acme/api:.github/tbr.yml: grace_seconds: must be a whole number" in capsys.readouterr().out


def test_grace_from_config_sets_when_a_change_is_judged(github, repo, bot):
    github.put_file("acme/.github", ".github/tbr.yml", "grace_seconds: 900\n")
    merge(github, repo, bot)
    bot.run(after_seconds=600)
    assert github.issues(REPO, include_seeded=False) == []
    bot.run(after_seconds=300)
    assert len(github.issues(REPO, include_seeded=False)) == 1  # after the configured 900 s, not 300


def test_a_failing_checks_api_does_not_hold_up_a_config_push(github, repo, bot):
    github.put_file(REPO, ".github/tbr.yml", "grace_seconds: 0\n")
    github.fail("POST", rf"/repos/{REPO}/check-runs", 403, times=50)
    bot.deliver("push", push_touching_config(bot, repo, "c" * 40))
    bot.run(after_seconds=300)  # judged under the configuration before it: the environment's 300 s
    assert bot.change(f"push:{repo['id']}:main:{'c' * 40}")["status"] == "followup"
