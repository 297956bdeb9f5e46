"""Anchors: the audit log's head published daily on GitHub, and `tbr audit verify` checking every one."""

from __future__ import annotations

import sqlite3
from tbr import anchors, audit, cli
from tbr.schedule import Scheduler
from tests import payloads
from tests.conftest import tracked
from tests.test_evidence_chain import forge, rechain

REPO, TRACK = "acme/api", "acme/compliance"


def anchor_comments(github) -> list[dict]:
    [issue] = [i for i in github.issues(TRACK) if i["title"] == anchors.TITLE]
    return [c for c in github.comments(TRACK, issue["number"]) if c["user"].endswith("[bot]")]


def busy_day(github, bot, repo, number: int) -> None:
    github.add_pull(REPO, number, merged_at=bot.clock(), author="alice", merged_by="alice")
    bot.deliver("pull_request", payloads.merged_pr(REPO, repo["id"], number, merged_at=bot.clock()))
    bot.run(after_seconds=300)


def publish_today(bot) -> None:
    Scheduler(bot.engine).run_anchor()
    bot.run()


def test_the_head_is_published_once_a_day_and_verify_checks_every_anchor(github, gh_settings, clock, cli_env, capsys):
    repo, bot = tracked(github, gh_settings, clock, REPO)
    busy_day(github, bot, repo, 1)
    publish_today(bot)
    publish_today(bot)  # the hourly job again: today's is queued and posted once
    [first] = anchor_comments(github)
    seq1, head1 = audit.head(bot.store.db)
    assert f"**#{seq1 - 1} sha256:" in first["body"] or f"**#{seq1} sha256:" in first["body"]
    clock.advance(86400)
    busy_day(github, bot, repo, 2)
    publish_today(bot)
    assert len(anchor_comments(github)) == 2
    # Someone with write access adds an "anchor" of their own: not the App's, so not read.
    [issue] = [i for i in github.issues(TRACK) if i["title"] == anchors.TITLE]
    github.add_issue_comment(TRACK, issue["number"], "mallory", f"{anchors.MARK}1 -->\nAudit log head: **#1 sha256:"
                             + "0" * 64 + "**")
    cli_env.setenv("TBR_DB", bot.store.path)
    cli_env.setenv("TBR_TRACKING_REPO", TRACK)
    assert cli.main(["audit", "verify"]) == 0
    out = capsys.readouterr().out
    assert "audit log intact" in out and "2 published anchors found in it" in out
    # The digest's form of a head is accepted by --expect.
    seq, head = audit.head(bot.store.db)
    assert cli.main(["audit", "verify", "--expect", f"#{seq} sha256:{head}"]) == 0
    capsys.readouterr()


def test_a_tail_cut_after_an_anchor_or_a_rewritten_history_is_caught_without_being_told(
        github, gh_settings, clock, cli_env, capsys):
    repo, bot = tracked(github, gh_settings, clock, REPO)
    busy_day(github, bot, repo, 1)
    publish_today(bot)
    anchored = anchors.published(bot.gateway, TRACK)
    [(seq, head, url)] = anchored
    clock.advance(3600)
    busy_day(github, bot, repo, 2)
    cli_env.setenv("TBR_DB", bot.store.path)
    cli_env.setenv("TBR_TRACKING_REPO", TRACK)
    # The last records cut off, back to before the anchor: the chain alone still holds.
    forge(bot.store.path, ("DELETE FROM audit WHERE seq >= ?", [seq - 1]))
    assert audit.verify(bot.store.db).ok
    assert cli.main(["audit", "verify"]) == 1
    err = capsys.readouterr().err
    assert f"record #{seq} ({url}) is missing: the log was cut off after #{seq - 2}" in err


def test_a_history_rewritten_with_the_key_still_differs_from_its_anchor(github, gh_settings, clock, cli_env, capsys):
    repo, bot = tracked(github, gh_settings, clock, REPO)
    busy_day(github, bot, repo, 1)
    publish_today(bot)
    [(seq, head, url)] = anchors.published(bot.gateway, TRACK)
    # Even someone holding the key, who rewrites a record and rechains everything after it, is caught.
    forge(bot.store.path, ("UPDATE audit SET actor = 'mallory' WHERE seq = 2",))
    rechain(bot.store.path, bot.store.keys.current)
    assert audit.verify(bot.store.db).ok
    cli_env.setenv("TBR_DB", bot.store.path)
    cli_env.setenv("TBR_TRACKING_REPO", TRACK)
    assert cli.main(["audit", "verify"]) == 1
    assert f"published in {url}: history was rewritten" in capsys.readouterr().err


def test_a_lost_answer_does_not_post_the_anchor_twice(github, gh_settings, clock):
    repo, bot = tracked(github, gh_settings, clock, REPO)
    busy_day(github, bot, repo, 1)
    Scheduler(bot.engine).run_anchor()
    github.fail("POST", r"/repos/acme/compliance/issues/\d+/comments", 502, after_effect=True)  # answer lost
    bot.run()
    bot.run(after_seconds=3600)
    assert len(anchor_comments(github)) == 1
    assert sqlite3.connect(bot.store.path).execute(
        "SELECT status FROM actions WHERE kind = 'anchor'").fetchone()[0] == "done"
