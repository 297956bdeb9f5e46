"""Backup and restore: `tbr backup` while tbr runs, and a restored database that files nothing twice."""

from __future__ import annotations

import os
import sqlite3
import stat
import uuid

from tbr import cli
from tests import payloads
from tests.conftest import Bot, with_

REPO = "acme/api"


class Deployment:
    """tbr on one database file, and every delivery GitHub made to it (a restore asks for them again)."""

    def __init__(self, github, settings, clock, path):
        self.bot = Bot(with_(settings, db_path=str(path)), clock)
        self.github = github
        self.sent: list[tuple[str, dict, str]] = []

    def deliver(self, event: str, payload: dict) -> None:
        guid = str(uuid.uuid4())
        self.bot.deliver(event, payload, guid)
        self.sent.append((event, payload, guid))

    def merge(self, repo: dict, number: int) -> None:
        """An unapproved PR merged now, its webhook, and the grace period."""
        self.github.add_pull(REPO, number, merged_at=self.bot.clock(), author="alice", merged_by="alice")
        self.deliver("pull_request", payloads.merged_pr(REPO, repo["id"], number, merged_at=self.bot.clock()))
        self.bot.run(after_seconds=300)


def tbr_issues(github) -> list[dict]:
    return [i for i in github.issues(REPO, include_seeded=False) if "tbr" in i["labels"]]


def test_restoring_yesterday_s_copy_and_delivering_again_files_nothing_twice_and_loses_nothing(
        github, gh_settings, clock, tmp_path, cli_env):
    repo = github.add_repo(REPO)
    github.clock = clock
    live = Deployment(github, gh_settings, clock, tmp_path / "tbr.db")
    live.merge(repo, 1)
    # The nightly copy, taken while tbr runs.
    cli_env.setenv("TBR_DB", str(tmp_path / "tbr.db"))
    assert cli.main(["backup", str(tmp_path / "nightly.db")]) == 0
    assert stat.S_IMODE(os.stat(tmp_path / "nightly.db").st_mode) == 0o600
    # The next day: another follow-up filed, the first one signed off.
    clock.advance(86400)
    live.merge(repo, 2)
    first = live.bot.change(f"pr:{repo['id']}:1")["followup_number"]
    github.add_collaborator(REPO, "bob", "write")  # may sign off
    github.close_issue(REPO, first, by="bob")
    live.deliver("issues", payloads.issue_action(REPO, first, "closed", sender="bob", at=clock()))
    live.bot.run()
    before = {i["number"] for i in tbr_issues(github)}
    assert len(before) == 2
    second = live.bot.change(f"pr:{repo['id']}:2")
    # The volume is lost. A new deployment starts on yesterday's copy, and GitHub delivers again everything
    # since (redeliveries keep their GUIDs; the copy knows only those it had stored).
    restored = Deployment(github, gh_settings, clock, tmp_path / "nightly.db")
    for event, payload, guid in live.sent:
        restored.bot.deliver(event, payload, guid)
    restored.bot.run(after_seconds=300)
    while restored.bot.run():
        pass
    # No second issue: the change filed after the copy is linked to the issue filed then; nothing lost.
    assert {i["number"] for i in tbr_issues(github)} == before
    again = restored.bot.change(f"pr:{repo['id']}:2")
    assert (again["status"], again["followup_number"], again["followup_url"]) == \
        ("followup", second["followup_number"], second["followup_url"])
    assert restored.bot.change(f"pr:{repo['id']}:1")["followup_state"] == "signed_off"
    # Finding it took one look at the listing, not one per change.
    assert github.count("GET", r"/repos/acme/api/issues$") == 2  # one per process


def test_only_the_app_s_own_issues_count_as_filed(github, gh_settings, clock, tmp_path):
    repo = github.add_repo(REPO)
    github.clock = clock
    live = Deployment(github, gh_settings, clock, tmp_path / "tbr.db")
    # Someone with write access copies the marker into an issue of their own, hoping tbr takes it as filed.
    key = f"pr:{repo['id']}:3"
    github.add_existing_issue(REPO, "nothing to see", f"<!-- tbr:change={key} -->", labels=["tbr"], author="mallory")
    live.merge(repo, 3)
    [own] = [i for i in tbr_issues(github) if i["author"] != "mallory"]
    assert live.bot.change(key)["followup_number"] == own["number"]


def test_backup_holds_what_is_still_in_the_wal(github, gh_settings, clock, tmp_path, cli_env):
    live = Deployment(github, gh_settings, clock, tmp_path / "tbr.db")
    with live.bot.store.write():
        live.bot.store.audit("heartbeat", "", "tbr", clock())
    assert os.path.getsize(tmp_path / "tbr.db-wal") > 0  # not yet checkpointed into the main file
    cli_env.setenv("TBR_DB", str(tmp_path / "tbr.db"))
    assert cli.main(["backup", str(tmp_path / "copy.db")]) == 0
    copy = sqlite3.connect(tmp_path / "copy.db")
    assert copy.execute("SELECT count(*) FROM audit WHERE kind = 'heartbeat'").fetchone()[0] == 1
    assert copy.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
