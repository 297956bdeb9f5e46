"""The bot as a user runs it: `gunicorn app:app` with TBR_* variables, against the fake GitHub.

The only waits here are for another process: a bounded wait for its start-up line, and a bounded
check of the outcome; nothing sleeps for a fixed time.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from datetime import datetime, timezone

import httpx

from tbr import audit, config
from tbr.store import Store
from tests import payloads
from tests.processes import ROOT, Gunicorn, eventually, pending


def test_black_box_run_files_exactly_the_issues_it_should(github, service_env):
    env = service_env
    repo = github.add_repo("acme/api", protected=("main",))
    github.add_collaborator("acme/api", "bob", "write")
    now = datetime.now(timezone.utc)
    mine = github.add_pull("acme/api", 1, author="alice", merged_by="alice", merged_at=now)
    reviewed = github.add_pull("acme/api", 2, author="alice", merged_by="alice", merged_at=now)
    github.add_review("acme/api", 2, "bob", "APPROVED", submitted_at=now)
    others = github.add_pull("acme/api", 3, author="alice", merged_by="bob", merged_at=now)

    def pr_payload(pr, merged_by):
        return payloads.merged_pr("acme/api", repo["id"], pr["number"], author="alice", merged_by=merged_by,
                                  merged_at=now, merge_sha=pr["merge_commit_sha"])

    bot = Gunicorn(env)
    try:
        answers = [
            bot.post("pull_request", pr_payload(mine, "alice"), "g-1"),
            bot.post("pull_request", pr_payload(mine, "alice"), "g-1"),   # redelivery
            bot.post("pull_request", pr_payload(mine, "alice"), "g-1b"),  # same content, new GUID: a replay
            bot.post("pull_request", pr_payload(reviewed, "alice"), "g-2"),
            bot.post("pull_request", pr_payload(others, "bob"), "g-3"),
            bot.post("push", payloads.push("acme/api", repo["id"], commits=[(mine["merge_commit_sha"], "Merge #1")],
                                           pushed_at=now), "g-4"),
            bot.post("push", payloads.push("acme/api", repo["id"], commits=[("d" * 40, "hotfix")],
                                           sender="carol", pushed_at=now), "g-5"),
            bot.post("push", payloads.push("acme/api", repo["id"], commits=[("e" * 40, "x")], pushed_at=now),
                     "g-6", secret="forged"),
        ]
        assert [a.status_code for a in answers] == [202, 200, 200, 202, 202, 202, 202, 401]
        try:
            eventually(lambda: pending(env["TBR_DB"]) == 0)
        except AssertionError:
            with sqlite3.connect(env["TBR_DB"]) as conn:
                print(conn.execute("SELECT key, status, last_error FROM changes").fetchall())
                print(conn.execute("SELECT guid, status, last_error FROM deliveries").fetchall())
            print("".join(bot.log))
            raise
        titles = sorted(i["title"] for i in github.issues("acme/api", include_seeded=False))
        assert titles == ["TBR acme/api#1 follow-up review", "TBR acme/api@ddddddd follow-up review"]
        assert github.count("POST", r"/repos/acme/api/issues") == 2
        eventually(lambda: any('"sweep.done"' in line for line in bot.log))
        health = httpx.get(f"http://127.0.0.1:{bot.port}/healthz", timeout=5)
        assert health.status_code == 200 and health.json()["ok"]
    finally:
        bot.stop()
    # The log is JSON lines naming delivery, repo and change.
    logs = [json.loads(line) for line in bot.log if line.startswith("{")]
    judged = [entry for entry in logs if entry.get("event") == "change.judged"]
    assert {e["status"] for e in judged} == {"followup", "approved", "covered"}
    assert all(e["repo"] == "acme/api" and e["change"] for e in judged)
    # Two workers, one scheduler: it swept at start-up (and the sweep found nothing new).
    assert sum(e.get("event") == "scheduler.leading" for e in logs) == 1, [e.get("event") for e in logs]
    sweeps = [e for e in logs if e.get("event") == "sweep.done"]
    assert sweeps and sweeps[0]["repos"] == 1 and sweeps[0]["errors"] == 0
    # The request workers and the worker process wrote to one audit chain, which holds: 6 deliveries (no
    # redelivery, no forgery), the worker process's life (the one process that judges), a heartbeat.
    db = Store(env["TBR_DB"]).db
    assert audit.verify(db, keys=audit.keys_of(config.load(env))).ok
    kinds = [r["kind"] for r in audit.records(db)]
    assert kinds.count("delivery.received") == 6 and kinds.count("followup.filed") == 2
    assert kinds.count("process.started") == kinds.count("process.stopped") == 1 and "heartbeat" in kinds


def test_bad_setting_stops_start_up_with_one_line(service_env):
    env = {**service_env, "TBR_TIMEZONE": "Mars/Olympus"}
    proc = subprocess.run([sys.executable, "-m", "gunicorn", "app:app"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0
    assert "tbr: configuration error: TBR_TIMEZONE must be an IANA time zone" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_without_credentials_gunicorn_serves_the_setup_page(service_env):
    env = {k: v for k, v in service_env.items() if k not in ("TBR_APP_ID", "TBR_PRIVATE_KEY_PATH", "TBR_WEBHOOK_SECRET")}
    bot = Gunicorn(env, ready='"tbr.setup_mode"')
    try:
        assert httpx.get(f"http://127.0.0.1:{bot.port}/setup", timeout=5).status_code == 403  # loopback: no matter
        # The one-time code is in the log, the same in every worker (the master made it).
        [code] = {json.loads(line)["setup_code"] for line in bot.log if '"tbr.setup_mode"' in line}
        for _ in range(4):  # over new connections, to either worker
            page = httpx.get(f"http://127.0.0.1:{bot.port}/setup", params={"token": code}, timeout=5,
                             headers={"Connection": "close"})
            assert page.status_code == 200 and "Create the GitHub App" in page.text
        # Fly's private network, where `fly proxy` comes from, is IPv6.
        page = httpx.get(f"http://[::1]:{bot.port}/setup", params={"token": code}, timeout=5)
        assert page.status_code == 200
        health = httpx.get(f"http://127.0.0.1:{bot.port}/healthz", timeout=5)
        assert health.status_code == 503 and health.json()["problems"] == ["no App credentials: open /setup"]
    finally:
        bot.stop()
