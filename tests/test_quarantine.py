"""No poison item: an attempt counts as it starts, so a crash or a kill counts; an item that fails or never
finishes N times is quarantined (never looped on, blocking nothing), shown in /healthz, /metrics, the
digest and `tbr status`, and `tbr retry KEY` brings it back. The engine runs in-process on the test's
clock; tests/test_worker_process.py drills the same with real processes killed."""

from __future__ import annotations

import socket
from datetime import datetime, timezone

import pytest

from tbr import audit, cli, digest, engine
from tbr import health as health_module
from tbr.classify import judge_pull
from tbr.store import iso
from tests.conftest import Bot, with_
from tests.test_core_loop import REPO, filed, merge

DEAD = f"{socket.gethostname()}:999999:12345:deadbeef"  # a process of this machine that no longer runs


class Killed(BaseException):
    """What a kill -9 looks like to the code after it: nothing runs, nothing is recorded."""


@pytest.fixture
def repo(github):
    return github.add_repo(REPO)


@pytest.fixture
def bot(gh_settings, clock, github) -> Bot:
    github.clock = clock
    return Bot(with_(gh_settings, quarantine_after=3), clock)


def poison(monkeypatch, number: int, how=Killed):
    """Judging PR `number` dies (a bug it triggers, or the process killed) every time; the others do not."""
    real = engine.judge_pull

    def judge(facts, *args, **kwargs):
        if facts.number == number:
            raise how(f"judging #{number} blew up")
        return real(facts, *args, **kwargs)

    monkeypatch.setattr(engine, "judge_pull", judge)


def crash(bot) -> None:
    """One pass of a worker process that is killed on the poison item; the next process starts up."""
    assert work(bot, passes=1) == 1


def work(bot, passes: int = 10) -> int:
    """Worker processes doing what is due, each killed when the poison item kills it and followed by a
    new one (which first frees what the dead one held); returns how many were killed."""
    kills = 0
    owner = bot.engine.owner
    bot.engine.owner = DEAD  # the process as seen afterwards: gone
    try:
        for _ in range(passes):
            try:
                if not bot.run():
                    return kills
            except Killed:
                kills += 1
                bot.engine.release_dead_leases()
    finally:
        bot.engine.owner = owner
    if passes > 1:
        raise AssertionError("a crash loop: the poison item is tried again at once")
    return kills


def poisoned_merge(github, repo, bot, monkeypatch) -> str:
    """PR #7 merged, delivered and past its grace period, and judging it kills the worker; its change's key."""
    poison(monkeypatch, 7)
    _, payload = merge(github, repo, bot)
    bot.deliver("pull_request", payload)
    bot.clock.advance(300)
    return f"pr:{repo['id']}:7"


def test_an_attempt_counts_before_the_work_so_a_kill_counts_and_backs_off(github, repo, bot, monkeypatch):
    key = poisoned_merge(github, repo, bot, monkeypatch)
    crash(bot)
    change = bot.change(key)
    assert (change["attempts"], change["failures"], change["status"]) == (1, 1, "pending")
    assert "never finished" in change["last_error"]
    assert change["next_attempt_at"] == iso(bot.clock() + engine.backoff(0))  # no crash loop: it waits
    assert bot.run() == 0
    bot.clock.advance(engine.backoff(0).total_seconds())
    crash(bot)
    assert bot.change(key)["attempts"] == 2
    assert bot.change(key)["next_attempt_at"] == iso(bot.clock() + engine.backoff(1))


def test_an_item_that_kills_its_worker_every_time_is_quarantined_and_blocks_nothing(github, repo, bot, monkeypatch):
    key = poisoned_merge(github, repo, bot, monkeypatch)
    kills = 0
    for n in range(5):
        _, good = merge(github, repo, bot, number=10 + n)  # work arriving meanwhile is done meanwhile
        bot.deliver("pull_request", good)
        kills += work(bot)
        bot.clock.advance(3600)
    assert kills == 3
    change = bot.change(key)
    assert change["quarantined_at"] and change["status"] == "pending" and change["attempts"] == 3
    assert sorted(i["title"] for i in filed(github)) == [f"TBR acme/api#{n} follow-up review" for n in range(10, 14)]
    bot.clock.advance(86400)
    assert work(bot) == 0 and bot.change(key)["attempts"] == 3  # never tried again by itself
    [record] = audit.records(bot.store.db, kind="work.quarantined")
    assert record["subject"] == "acme/api#7" and record["data"]["item"] == key and record["data"]["attempts"] == 3


def test_a_failing_item_is_quarantined_at_its_nth_failure(github, repo, bot, monkeypatch):
    poison(monkeypatch, 7, how=RuntimeError)
    _, payload = merge(github, repo, bot)
    bot.deliver("pull_request", payload)
    key = f"pr:{repo['id']}:7"
    bot.run(after_seconds=300)
    bot.run(after_seconds=3600)
    assert bot.change(key)["quarantined_at"] is None and bot.change(key)["failures"] == 2
    bot.run(after_seconds=3600)
    change = bot.change(key)
    assert change["quarantined_at"] and change["last_error"] == "failed 3 times; the last: RuntimeError: judging #7 blew up"


def test_github_unavailable_delays_without_counting_towards_quarantine(github, repo, bot):
    _, payload = merge(github, repo, bot)
    github.fail("POST", "/graphql", 502, times=20)  # 4 tries per attempt: 5 attempts fail
    bot.deliver("pull_request", payload)
    bot.run(after_seconds=300)
    for _ in range(5):
        bot.run(after_seconds=3600)
    change = bot.change(f"pr:{repo['id']}:7")
    assert change["status"] == "followup" and change["attempts"] == 6 and change["quarantined_at"] is None


def test_a_lease_run_out_after_the_last_allowed_attempt_is_quarantined_not_tried_again(github, repo, bot):
    _, payload = merge(github, repo, bot)
    bot.deliver("pull_request", payload, "d-1")
    for _ in range(3):  # a worker on another machine took it three times and vanished each time
        bot.clock.advance(3600)
        assert bot.store.claim("deliveries", "d-1", "other-host:1:1:x", bot.clock())
    bot.clock.advance(3600)
    assert bot.run() == 0
    delivery = bot.store.delivery("d-1")
    assert delivery["quarantined_at"] and "attempt 3 never finished" in delivery["last_error"]


def test_quarantine_is_shown_everywhere_and_tbr_retry_brings_it_back(github, repo, bot, monkeypatch, cli_env,
                                                                        capsys):
    poison(monkeypatch, 7, how=RuntimeError)
    _, payload = merge(github, repo, bot)
    bot.deliver("pull_request", payload)
    key = f"pr:{repo['id']}:7"
    for _ in range(3):
        bot.run(after_seconds=3600)
    bot.store.beat("scheduler", bot.clock())
    bot.store.db.execute("INSERT INTO sweeps (started_at, finished_at, since, repos_checked) VALUES (?, ?, ?, 1)",
                         [iso(bot.clock())] * 3)

    health = bot.client.get("/healthz")
    assert health.status_code == 200  # still watching: a 503 would have a load balancer stop sending webhooks
    assert not health.json["ok"]
    assert health.json["problems"] == [f"quarantined after 3 attempts: change {key} (acme/api#7);"
                                       f" fix the cause, then `tbr retry {key}`"]
    metrics = bot.client.get("/metrics", environ_base={"REMOTE_ADDR": "127.0.0.1"}).get_data(as_text=True)
    assert 'tbr_quarantined{kind="changes"} 1.0' in metrics and 'tbr_quarantined{kind="deliveries"} 0.0' in metrics
    body = digest.build(bot.engine, bot.clock()).body
    assert "## Quarantined work (1)" in body and f"- change `{key}` (acme/api#7)" in body

    cli_env.setenv("TBR_DB", bot.store.path)
    assert cli.main(["status"]) == 0
    out = capsys.readouterr().out
    assert "quarantined: 1 item(s)" in out and f"change     {key} acme/api#7" in out and "blew up" in out

    monkeypatch.setattr(engine, "judge_pull", judge_pull)  # the bug is fixed
    assert cli.main(["retry", key]) == 0
    assert f"{key}: out of quarantine, due now" in capsys.readouterr().out
    bot.clock.now = datetime.now(timezone.utc)  # `tbr retry` made it due on the real clock
    bot.run()
    assert bot.change(key)["status"] == "followup" and len(filed(github)) == 1
    assert bot.store.quarantined() == [] and not health_module.quarantine_problems(bot.store)
    retried = audit.records(bot.store.db, kind="work.retried")
    assert [r["data"]["item"] for r in retried] == [key]
    assert cli.main(["retry", key]) == 0 and "already done" in capsys.readouterr().out
    assert cli.main(["retry", "no-such-key"]) == 1
    assert "no delivery, change or action 'no-such-key'" in capsys.readouterr().err


def test_tbr_retry_all_takes_every_quarantined_item(github, repo, bot, cli_env, capsys):
    _, payload = merge(github, repo, bot)
    key = "d-1"
    bot.deliver("pull_request", payload, key)
    bot.store.quarantine("deliveries", key, "RuntimeError: it blew up", bot.clock())
    cli_env.setenv("TBR_DB", bot.store.path)
    assert cli.main(["retry", "--all"]) == 0
    assert capsys.readouterr().out == f"{key}: out of quarantine, due now (the running service picks it up within seconds)\n"
    assert bot.store.quarantined() == []
    assert cli.main(["retry", "--all"]) == 0 and "nothing is quarantined" in capsys.readouterr().out
    assert cli.main(["retry"]) == 2
