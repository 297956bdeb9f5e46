"""The audit log: its chain catches each kind of tampering, and the bot's work lands in it."""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime, timedelta, timezone

import pytest

from tbr import audit, cli
from tbr.schedule import Scheduler
from tbr.store import Store, iso
from tests import payloads

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=timezone.utc)


@pytest.fixture
def log(tmp_path):
    store = Store(str(tmp_path / "audit.db"))
    for i in range(1, 7):
        store.audit("change.judged", f"acme/api#{i}", "tbr", T0 + timedelta(minutes=i), status="approved", n=i)
    return store


def tamper(store: Store, *steps) -> None:
    """Edit the file as someone with sqlite3 would: the append-only triggers go first. A step is
    (sql, args), or a function of the store giving one after the steps before it are done."""
    conn = sqlite3.connect(store.path)
    conn.execute("DROP TRIGGER IF EXISTS audit_no_update")
    conn.execute("DROP TRIGGER IF EXISTS audit_no_delete")
    conn.execute("DROP TRIGGER IF EXISTS audit_no_replace")
    for step in steps:
        conn.execute(*(step(store) if callable(step) else step))
        conn.commit()
    conn.close()


def rehash(seq: int):
    """Recompute one record's own hash after editing it, as a careful forger would."""
    def step(store: Store) -> tuple[str, list]:
        row = store.db.execute("SELECT seq, at, kind, subject, actor, data, prev_hash FROM audit WHERE seq = ?",
                               [seq]).fetchone()
        return "UPDATE audit SET hash = ? WHERE seq = ?", [audit.digest(*row), seq]
    return step


def test_an_intact_log_verifies_and_names_its_head(log):
    result = audit.verify(log.db)
    seq, head = audit.head(log.db)
    assert (result.ok, result.records, result.head_seq, result.head_hash) == (True, 6, 6, head)
    assert seq == 6 and result.describe() == (f"audit log intact: 6 records, head #6 sha256:{head};"
                                              " records #1 to #6 predate the audit key (plain SHA-256)")
    assert audit.verify(log.db, expect=(6, head)).ok


def test_the_database_refuses_to_change_or_delete_records(log):
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        log.db.execute("UPDATE audit SET actor = 'mallory' WHERE seq = 2")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        log.db.execute("DELETE FROM audit WHERE seq = 6")
    assert audit.verify(log.db).ok


@pytest.mark.parametrize("edit, bad_seq, says", [
    # a field changed in place
    (lambda s: [("UPDATE audit SET data = ? WHERE seq = 3", ['{"n":3,"status":"followup"}'])], 3, "#3 (change.judged, acme/api#3) altered"),
    (lambda s: [("UPDATE audit SET actor = 'mallory' WHERE seq = 1", [])], 1, "#1 (change.judged, acme/api#1) altered"),
    (lambda s: [("UPDATE audit SET at = ? WHERE seq = 5", [iso(T0)])], 5, "altered"),
    # changed and its own hash recomputed: the next record no longer follows it
    (lambda s: [("UPDATE audit SET subject = 'acme/api#99' WHERE seq = 2", []), rehash(2)], 3,
     "#3 does not follow record #2"),
    # deleted from the middle, at the start, and a run of them
    (lambda s: [("DELETE FROM audit WHERE seq = 4", [])], 4, "record #4 deleted (the sequence jumps to #5)"),
    (lambda s: [("DELETE FROM audit WHERE seq = 1", [])], 1, "record #1 deleted"),
    (lambda s: [("DELETE FROM audit WHERE seq IN (2, 3, 4)", [])], 2, "record #2 to #4 deleted"),
    # deleted, and the later records renumbered to close the hole
    (lambda s: [("DELETE FROM audit WHERE seq = 3", []), ("UPDATE audit SET seq = seq - 1 WHERE seq > 3", [])], 3,
     "#3 (change.judged, acme/api#4) altered"),
    # a record inserted in the middle, the later ones renumbered to make room
    (lambda s: [("UPDATE audit SET seq = seq + 100 WHERE seq >= 3", []),
                ("UPDATE audit SET seq = seq - 99 WHERE seq >= 103", []),
                ("INSERT INTO audit VALUES (3, ?, 'followup.signed_off', 'acme/api#1', 'mallory', '{}', ?, ?)",
                 [iso(T0), "0" * 64, "0" * 64])], 3, "#3 (followup.signed_off, acme/api#1) altered"),
])
def test_each_kind_of_tampering_is_caught_at_the_first_bad_record(log, edit, bad_seq, says):
    tamper(log, *edit(log))
    result = audit.verify(log.db)
    assert not result.ok
    assert result.bad_seq == bad_seq
    assert says in result.problem
    assert result.describe().startswith(f"audit log broken at record #{bad_seq}: ")


def test_an_inserted_record_with_a_forged_hash_breaks_the_link_after_it(log):
    """A forger who computes a correct hash for an inserted record still cannot make the next one follow it."""
    tamper(log, ("UPDATE audit SET seq = seq + 100 WHERE seq >= 4", []),
           ("UPDATE audit SET seq = seq - 99 WHERE seq >= 104", []))
    prev = log.db.execute("SELECT hash FROM audit WHERE seq = 3").fetchone()[0]
    row = [4, iso(T0), "followup.signed_off", "acme/api#1", "mallory", "{}", prev]
    tamper(log, ("INSERT INTO audit VALUES (?, ?, ?, ?, ?, ?, ?, ?)", [*row, audit.digest(*row)]))
    result = audit.verify(log.db)
    assert (result.ok, result.bad_seq) == (False, 5)


def test_a_log_cut_off_at_the_end_is_caught_against_a_published_head(log):
    seq, head = audit.head(log.db)
    tamper(log, ("DELETE FROM audit WHERE seq >= 5", []))
    assert audit.verify(log.db).ok  # a chain alone cannot see its own end cut off
    result = audit.verify(log.db, expect=(seq, head))
    assert (result.ok, result.bad_seq) == (False, 6)
    assert "cut off after #4" in result.problem


def test_cli_verify_tail_and_search(log, monkeypatch, capsys, cli_env):
    cli_env.setenv("TBR_DB", log.path)
    seq, head = audit.head(log.db)
    assert cli.main(["audit", "verify", "--expect", f"#{seq}:sha256:{head}"]) == 0
    assert capsys.readouterr().out.startswith("audit log intact: 6 records")
    assert cli.main(["audit", "tail", "-n", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == ["#5", "#6"]
    assert lines[1] == "#6 2026-11-02T09:06:00Z change.judged acme/api#6 by tbr n=6 status=\"approved\""
    assert cli.main(["audit", "search", "--subject", "ACME/api#3", "--json"]) == 0
    [record] = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert (record["seq"], record["data"]) == (3, {"n": 3, "status": "approved"})
    assert cli.main(["audit", "search", "--subject", "acme/api#404"]) == 1
    tamper(log, ("UPDATE audit SET actor = 'mallory' WHERE seq = 2", []))
    assert cli.main(["audit", "verify"]) == 1
    assert "broken at record #2" in capsys.readouterr().err
    with pytest.raises(SystemExit, match="SEQ:HASH"):
        cli.main(["audit", "verify", "--expect", "six"])


def test_a_change_s_whole_story_is_in_the_log(bot, github):
    """Delivery, recording, judgement, follow-up, reminder and sign-off, under the change's name."""
    repo = github.add_repo("acme/api")
    github.add_collaborator("acme/api", "bob", "write")  # signs off: could have merged it
    github.add_pull("acme/api", 7, merged_at=bot.clock())
    body = payloads.merged_pr("acme/api", repo["id"], 7, merged_at=bot.clock())
    bot.deliver("pull_request", body, guid="d-1")
    bot.deliver("pull_request", body, guid="d-1")  # a redelivery adds nothing
    bot.run(after_seconds=300)
    number = bot.change(f"pr:{repo['id']}:7")["followup_number"]
    bot.clock.advance(5 * 86400 + 10 * 3600)  # Wednesday 12:00, past due: an overdue reminder
    Scheduler(bot.engine).run_remind()
    bot.run()
    github.close_issue("acme/api", number, by="bob")
    bot.deliver("issues", payloads.issue_action("acme/api", number, "closed", sender="bob", at=bot.clock()))
    bot.run()
    kinds = [(r["kind"], r["actor"]) for r in audit.records(bot.store.db, subject="acme/api#7")]
    assert kinds[:4] == [("change.recorded", "alice"), ("change.judged", "tbr"), ("followup.filed", "tbr"),
                         ("action.check", "tbr")]
    assert ("followup.reminded", "tbr") in kinds and ("action.add_label", "tbr") in kinds
    assert ("followup.signed_off", "bob") in kinds
    judged = next(audit.records(bot.store.db, subject="acme/api#7", kind="change.judged"))["data"]
    assert judged["status"] == "followup" and judged["summary"].startswith("No approval found")
    received = [(r["subject"], r["data"]["delivery"], r["data"]["event"])
                for r in audit.records(bot.store.db, kind="delivery.received")]
    assert received[0] == ("acme/api", "d-1", "pull_request") and received[1][2] == "issues" and len(received) == 2
    assert audit.verify(bot.store.db, keys=bot.store.keys).ok


def test_heartbeats_every_five_minutes_and_gaps_filled_by_sweeps(bot):
    sched = Scheduler(bot.engine)
    start = bot.clock()
    for minute in range(0, 60):  # the beat job runs every minute, a heartbeat record lands every five
        if not 20 <= minute < 45:  # down for 25 minutes
            bot.clock.now = start + timedelta(minutes=minute)
            sched.beat()
    beats = list(audit.records(bot.store.db, kind="heartbeat"))
    assert len(beats) == 7
    bot.store.audit("sweep.finished", "", "tbr", start + timedelta(minutes=50), since=iso(start), errors=[])
    cover = audit.coverage(bot.store.db, start, start + timedelta(minutes=60))
    [gap] = cover.gaps
    assert (gap.start, gap.end, gap.filled_by) == (start + timedelta(minutes=15), start + timedelta(minutes=45),
                                                   start + timedelta(minutes=50))
    assert cover.running == timedelta(minutes=30)


def test_configuration_changes_and_process_life_are_recorded(bot, github):
    from tbr.worker import Worker

    github.add_repo("acme/api")
    github.put_file("acme/api", ".github/tbr.yml", "grace_seconds: 60\n")
    inst = bot.gateway.installation_for("acme/api")
    bot.engine.configs.refresh(inst, "acme/api")
    bot.engine.configs.refresh(inst, "acme/api")  # unchanged: nothing new to record
    github.put_file("acme/api", ".github/tbr.yml", "grace_seconds: -1\n")
    bot.engine.configs.refresh(inst, "acme/api")
    changed, invalid = audit.records(bot.store.db, subject="acme/api")
    assert (changed["kind"], changed["data"]["config"]) == ("config.changed", {"grace_seconds": 60})
    assert invalid["kind"] == "config.invalid" and invalid["data"]["problems"]
    worker = Worker(bot.engine, poll_seconds=0.01)
    worker.start()
    worker.stop()
    assert [r["kind"] for r in audit.records(bot.store.db, last=2)] == ["process.started", "process.stopped"]


H = timedelta(hours=1)


@pytest.mark.parametrize("installed, start, end, running, watched, before, gaps", [
    # Installed at T0, heartbeats every five minutes from then on, down from T0+3:55 (the last beat) to T0+6h.
    (True, T0, T0 + 10 * H, "79.2", 10 * H, timedelta(0), 1),            # all watched: the gap counts
    (True, T0 - 24 * H, T0 + 10 * H, "79.2", 10 * H, 24 * H, 1),         # the day before tbr is not downtime
    (True, T0 - 24 * H, T0 + 2 * H, "100.0", 2 * H, 24 * H, 0),          # installed within the period
    (True, T0 - 48 * H, T0 - 24 * H, None, timedelta(0), 24 * H, 0),     # all before tbr: nothing to measure
    (True, T0 - 1 * H, T0, None, timedelta(0), 1 * H, 0),                # ends as tbr starts
    (False, T0, T0 + 10 * H, None, timedelta(0), 10 * H, 0),             # tbr has recorded nothing yet
])
def test_coverage_counts_from_tbr_s_first_record(tmp_path, installed, start, end, running, watched, before, gaps):
    store = Store(str(tmp_path / "cover.db"))
    t = T0
    while installed and t < T0 + 10 * H:
        if not T0 + 4 * H <= t < T0 + 6 * H:
            store.audit("heartbeat", "", "tbr", t)
        t += timedelta(minutes=5)
    cover = audit.coverage(store.db, start, end)
    assert (cover.installed_at, cover.watched, cover.before, len(cover.gaps)) == (
        T0 if installed else None, watched, before, gaps)
    assert (None if cover.percent is None else f"{cover.percent:.1f}") == running


@pytest.mark.parametrize("scraped_at, ratio, gaps", [
    (T0 + 2 * H, 1.0, 'filled="no"} 0.0'),   # a fresh install, two hours old: all running, not 0%
    (T0 + 10 * H, 0.792, 'filled="no"} 1.0'),  # the two hours down count, nothing before T0 does
    (T0 - H, None, 'filled="no"} 0.0'),          # before tbr recorded anything: no figure at all
])
def test_metrics_coverage_counts_from_installation(tmp_path, scraped_at, ratio, gaps):
    from tbr import metrics

    store = Store(str(tmp_path / "cover.db"))
    for step in range(int(10 * H / timedelta(minutes=5))):
        t = T0 + step * timedelta(minutes=5)
        if not T0 + 4 * H <= t < T0 + 6 * H and t <= scraped_at:
            store.audit("heartbeat", "", "tbr", t)
    text = metrics.render(store, lambda: scraped_at).decode()
    lines = [line for line in text.splitlines() if line.startswith("tbr_coverage_running_ratio ")]
    assert [round(float(line.split()[1]), 3) for line in lines] == ([ratio] if ratio else [])
    assert f"tbr_coverage_gaps{{{gaps}" in text
