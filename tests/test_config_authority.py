"""Issue 14 point 1, against the fake GitHub: a repository's `.github/tbr.yml` may tighten the
organization's policy, never loosen it, and a change to it is judged under the configuration before it.

Each attack is beside its legitimate twin."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest

from tbr import digest, evidence
from tbr.cli import main
from tests import payloads

REPO = "acme/api"
PATH = ".github/tbr.yml"


@pytest.fixture
def repo(github):
    for name in ("acme/.github", "acme/compliance", "acme/shadow"):
        github.add_repo(name)
    repo = github.add_repo(REPO)
    github.add_collaborator(REPO, "bob", "write")  # an approver who could have merged
    return repo


def merge(github, repo, bot, number=7, author="alice", merged_by="alice", base="main"):
    pr = github.add_pull(REPO, number, author=author, merged_by=merged_by, base=base, merged_at=bot.clock())
    bot.deliver("pull_request", payloads.merged_pr(REPO, repo["id"], number, author=author, merged_by=merged_by,
                                                   merged_at=bot.clock(), base=base, merge_sha=pr["merge_commit_sha"]))
    return pr


def push(bot, repo, sha, sender, config: bool = False):
    """A direct push to main by `sender`; with `config`, its commit edits .github/tbr.yml."""
    payload = payloads.push(REPO, repo["id"], commits=[(sha, "Update tbr.yml" if config else "hotfix")],
                            sender=sender, pushed_at=bot.clock())
    if config:
        payload["commits"][0].update(added=[], removed=[], modified=[PATH])
    bot.deliver("push", payload)


def config_push(github, bot, repo, text, sha, sender="mallory"):
    github.put_file(REPO, PATH, text)
    push(bot, repo, sha, sender, config=True)


def filed(github, repo=REPO):
    return [i["title"] for i in github.issues(repo, include_seeded=False)]


def config_check(github, sha):
    [run] = github.check_runs(REPO, head_sha=sha, name="tbr/config")
    return run["conclusion"], run["output"]["title"], run["output"]["summary"]


# exempt_authors ------------------------------------------------------------------------------------

def test_a_direct_push_exempting_its_own_author_is_refused_and_followed_up(github, repo, bot):
    config_push(github, bot, repo, "exempt_authors: [mallory]\n", "a" * 40)
    bot.run(after_seconds=300)
    bot.clock.advance(60)
    push(bot, repo, "b" * 40, "mallory")
    bot.run(after_seconds=300)
    assert filed(github) == ["TBR acme/api@aaaaaaa follow-up review", "TBR acme/api@bbbbbbb follow-up review"]
    conclusion, title, summary = config_check(github, "a" * 40)
    assert conclusion == "failure" and "exempt_authors refused" in title
    assert "`exempt_authors`: adds mallory, not in the organization's list" in summary


def test_an_exemption_the_organization_allows_applies_from_the_push_after_it(github, repo, bot):
    github.put_file("acme/.github", PATH, "allow_repo_override: [exempt_authors]\n")
    config_push(github, bot, repo, "exempt_authors: [mallory]\n", "a" * 40)
    bot.run(after_seconds=300)
    bot.clock.advance(60)
    push(bot, repo, "b" * 40, "mallory")
    bot.run(after_seconds=300)
    # The push that adds the exemption is judged under the configuration before it; the next is exempt.
    assert filed(github) == ["TBR acme/api@aaaaaaa follow-up review"]
    assert bot.change(f"push:{repo['id']}:main:{'b' * 40}")["status"] == "approved"
    assert config_check(github, "a" * 40)[0] == "success"


def test_a_merged_pull_request_that_changes_the_file_is_judged_under_the_one_before(github, repo, bot):
    github.put_file("acme/.github", PATH, "allow_repo_override: [exempt_authors, grace_seconds]\n")
    github.put_file(REPO, PATH, "exempt_authors: ['release-bot']\nbranches: [main]\n")
    merge(github, repo, bot, number=6)
    bot.run()  # tbr reads the file in force before the change
    bot.clock.advance(60)
    github.put_file(REPO, PATH, "exempt_authors: [mallory]\ngrace_seconds: 86400\n")
    pr = merge(github, repo, bot, number=7, author="mallory", merged_by="mallory")
    payload = payloads.push(REPO, repo["id"], commits=[(pr["merge_commit_sha"], "Merge pull request #7")],
                            sender="mallory", pushed_at=bot.clock())
    payload["commits"][0].update(added=[], removed=[], modified=[PATH])
    bot.deliver("push", payload)
    bot.run(after_seconds=300)  # under the grace period before it, not the 86400 s it brings
    assert "TBR acme/api#7 follow-up review" in filed(github)
    bot.clock.advance(60)
    merge(github, repo, bot, number=8, author="mallory", merged_by="mallory")
    bot.run(after_seconds=86400)
    assert "TBR acme/api#8 follow-up review" not in filed(github)  # exempt from then on, as the org allows


# branches ------------------------------------------------------------------------------------------

def test_listing_other_branches_does_not_hide_main(github, repo, bot):
    github.put_file(REPO, PATH, "branches: ['release/*']\n")
    github.add_branch(REPO, "release/1.2")
    merge(github, repo, bot, number=7, base="main")
    merge(github, repo, bot, number=8, base="release/1.2")
    bot.run(after_seconds=300)
    assert filed(github) == ["TBR acme/api#7 follow-up review", "TBR acme/api#8 follow-up review"]


def test_a_repository_adds_a_branch_to_the_organizations(github, repo, bot):
    github.put_file("acme/.github", PATH, "branches: [main]\n")
    config_push(github, bot, repo, "branches: [main, 'hotfix/*']\n", "a" * 40, sender="alice")
    github.add_branch(REPO, "hotfix/x")
    github.add_branch(REPO, "feature/y")
    bot.clock.advance(60)
    merge(github, repo, bot, number=7, base="hotfix/x")
    merge(github, repo, bot, number=8, base="feature/y")
    bot.run(after_seconds=300)
    assert "TBR acme/api#7 follow-up review" in filed(github)
    assert "TBR acme/api#8 follow-up review" not in filed(github)
    assert config_check(github, "a" * 40)[0] == "success"


# approval_phrases ----------------------------------------------------------------------------------

def test_a_repository_cannot_make_any_comment_an_approval(github, repo, bot):
    config_push(github, bot, repo, 'approval_phrases: ["ok"]\n', "a" * 40)
    bot.run(after_seconds=300)
    merge(github, repo, bot, number=7)
    github.add_issue_comment(REPO, 7, "bob", "ok", created_at=bot.clock())
    bot.run(after_seconds=300)
    assert "TBR acme/api#7 follow-up review" in filed(github)
    conclusion, title, summary = config_check(github, "a" * 40)
    assert conclusion == "failure" and "`approval_phrases`: adds ok" in summary


def test_a_repository_may_drop_approval_phrases(github, repo, bot):
    github.put_file("acme/.github", PATH, 'approval_phrases: ["LGTM", "ship it"]\n')
    github.put_file(REPO, PATH, 'approval_phrases: ["LGTM"]\n')
    merge(github, repo, bot, number=7)
    github.add_issue_comment(REPO, 7, "bob", "ship it", created_at=bot.clock())
    merge(github, repo, bot, number=8)
    github.add_issue_comment(REPO, 8, "bob", "LGTM", created_at=bot.clock())
    bot.run(after_seconds=300)
    assert filed(github) == ["TBR acme/api#7 follow-up review"]


# tracking_repo -------------------------------------------------------------------------------------

@pytest.mark.parametrize("org_file, tracking", [
    ("tracking_repo: acme/compliance\n", "acme/compliance"),  # the repository's choice is refused
    ("tracking_repo: acme/compliance\nallow_repo_override: [tracking_repo]\n", "acme/shadow"),  # allowed
])
def test_a_repository_sends_its_followups_elsewhere_only_if_the_organization_allows(github, repo, bot, org_file,
                                                                                    tracking):
    github.put_file("acme/.github", PATH, org_file)
    github.put_file(REPO, PATH, "tracking_repo: acme/shadow\n")
    merge(github, repo, bot)
    bot.run(after_seconds=300)
    assert filed(github, tracking) == ["TBR acme/api#7 follow-up review"]
    assert filed(github, ({"acme/compliance", "acme/shadow"} - {tracking}).pop()) == []


# grace_seconds -------------------------------------------------------------------------------------

def test_a_repository_cannot_lengthen_the_grace_period(github, repo, bot):
    github.put_file(REPO, PATH, "grace_seconds: 86400\n")
    merge(github, repo, bot)
    bot.run(after_seconds=300)  # the environment's 300 s
    assert filed(github) == ["TBR acme/api#7 follow-up review"]


def test_a_repository_may_shorten_the_grace_period(github, repo, bot):
    github.put_file(REPO, PATH, "grace_seconds: 60\n")
    merge(github, repo, bot)
    bot.run(after_seconds=60)
    assert filed(github) == ["TBR acme/api#7 follow-up review"]


# checks --------------------------------------------------------------------------------------------

def test_a_repository_cannot_turn_the_checks_off(github, repo, bot):
    config_push(github, bot, repo, "checks: []\n", "a" * 40)
    bot.run(after_seconds=300)
    conclusion, title, summary = config_check(github, "a" * 40)
    assert conclusion == "failure" and "`checks`: leaves out review" in summary
    pr = merge(github, repo, bot)
    bot.run(after_seconds=300)
    bot.run()
    [review] = github.check_runs(REPO, head_sha=pr["merge_commit_sha"], name="tbr/review")
    assert review["conclusion"] == "action_required"


def test_a_repository_may_turn_a_check_on(github, repo, bot):
    github.put_file("acme/.github", PATH, "checks: [config]\n")
    github.put_file(REPO, PATH, "checks: [config, review]\n")
    pr = merge(github, repo, bot)
    bot.run(after_seconds=300)
    bot.run()
    assert github.check_runs(REPO, head_sha=pr["merge_commit_sha"], name="tbr/review")


# records: audit, digest, evidence, `tbr config show` --------------------------------------------------

def test_configuration_changes_are_recorded_with_who_which_commit_and_what_was_refused(github, repo, bot):
    from tbr.store import config_changes

    start = bot.clock()
    github.put_file(REPO, PATH, "sla_business_days: 1\n")
    merge(github, repo, bot)  # tbr first reads the file
    bot.run(after_seconds=300)
    config_push(github, bot, repo, "sla_business_days: 1\nexempt_authors: [mallory]\n", "a" * 40)
    bot.run(after_seconds=300)
    end = bot.clock() + timedelta(seconds=1)
    first, changed = config_changes(bot.store.db, start, end, REPO)
    assert (first["kind"], first["actor"], first["changes"]) == (
        "first", None, [{"key": "sla_business_days", "before": None, "after": 1}])
    assert (changed["kind"], changed["actor"], changed["commit_sha"]) == ("changed", "mallory", "a" * 40)
    assert changed["changes"] == [{"key": "exempt_authors", "before": None, "after": ["mallory"]}]
    assert list(changed["refused"]) == ["exempt_authors"]
    [record] = [r for r in bot.store.db.query("SELECT * FROM audit WHERE kind = 'config.changed' AND actor = ?",
                                                ["mallory"])]
    assert '"refused": {"exempt_authors"' in record["data"]

    body = digest.build(bot.engine, end).body
    assert "## Configuration changes since" in body
    assert "- acme/api: changed, pushed by @mallory in `aaaaaaa`" in body
    assert '  - `exempt_authors`: not set → ["mallory"], refused: adds mallory' in body

    rows = list(evidence.config_rows(bot.store.db, evidence.Period(start, end)))
    assert [(r["key"], r["pushed_by"], r["outcome"]) for r in rows] == [
        ("sla_business_days", "", "taken"), ("exempt_authors", "mallory", "refused")]
    assert rows[1]["commit"] == "a" * 40 and rows[1]["after"] == '["mallory"]'
    out = io.StringIO()
    evidence.export(bot.store.db, evidence.Period(start, end), "csv", out, end, "config-changes")
    assert out.getvalue().splitlines()[0] == ",".join(evidence.CONFIG_COLUMNS)
    assert ",mallory," in out.getvalue().splitlines()[2]


def test_config_show_says_which_repository_values_were_refused(github, repo, cli_env, capsys):
    github.put_file("acme/.github", PATH, "grace_seconds: 600\n")
    github.put_file(REPO, PATH, "grace_seconds: 86400\nbranches: ['release/*']\n")
    assert main(["config", "show", REPO]) == 0
    out = capsys.readouterr().out
    assert 'grace_seconds           600  (acme/.github:.github/tbr.yml)' in out
    assert "refused grace_seconds: 86400 is more than the organization's 600" in out
    assert '["release/*"] and the default and protected branches  (acme/api:.github/tbr.yml)' in out


def test_the_sweep_still_watches_main_and_protected_branches_beside_a_repositorys_own(github, bot):
    from tbr.sweep import sweep

    github.add_repo(REPO, protected=("stable",))
    github.add_repo("acme/.github")
    github.put_file(REPO, PATH, "branches: ['release/*']\n")
    github.add_branch(REPO, "release/1.2")
    for branch, who in (("main", "carol"), ("stable", "dave"), ("release/1.2", "erin")):
        github.add_commit(REPO, branch, message=f"straight to {branch}", author=who,
                          committed_at=bot.clock() - timedelta(minutes=10))
    sweep(bot.engine)
    bot.run()
    assert sorted(i["assignees"][0] for i in github.issues(REPO, include_seeded=False)) == ["carol", "dave", "erin"]
