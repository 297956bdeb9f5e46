"""/healthz says whether tbr is watching; /metrics says what it has done. Both read the database."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from tbr.store import iso
from tbr.web import create_app
from tests import payloads
from tests.conftest import SECRET, with_


@pytest.fixture
def app(settings, clock):
    return create_app(with_(settings, metrics_token="s3cret-metrics"), clock=clock, start_worker=False)


def sweep_finished(store, at, error=None):
    store.db.execute("INSERT INTO sweeps (started_at, finished_at, since, repos_checked, error) VALUES (?, ?, ?, 3, ?)",
                     [iso(at), iso(at), iso(at), error])


def test_healthy_when_the_scheduler_beats_and_sweeps_are_recent(client, store, clock):
    store.beat("scheduler", clock())
    sweep_finished(store, clock())
    resp = client.get("/healthz")
    assert resp.status_code == 200 and resp.json["ok"] and resp.json["problems"] == []


def test_fresh_start_is_healthy_until_its_first_sweep_is_late(client, store, clock):
    assert client.get("/healthz").status_code == 200
    clock.advance(16 * 60)
    resp = client.get("/healthz")
    assert resp.status_code == 503
    assert resp.json["problems"] == ["no scheduler has run: sweeps, reminders and the digest are not happening",
                                     "no reconciliation sweep has succeeded yet"]


def test_silent_scheduler_and_stale_sweep_are_503_with_reasons(client, store, clock):
    store.beat("scheduler", clock())
    sweep_finished(store, clock())
    clock.advance(3 * 3600)
    resp = client.get("/healthz")
    assert resp.status_code == 503 and not resp.json["ok"]
    assert resp.json["problems"] == ["the scheduler last ran 180 minutes ago",
                                     "the last successful sweep finished 180 minutes ago"]


def test_failed_sweeps_do_not_count_as_coverage(client, store, clock):
    store.beat("scheduler", clock())
    sweep_finished(store, clock() - timedelta(hours=3))
    sweep_finished(store, clock(), error="GitHub answered 502")
    clock.advance(16 * 60)
    store.beat("scheduler", clock())
    assert "the last successful sweep finished" in client.get("/healthz").json["problems"][0]


def test_unwritable_database_is_503(client, store, monkeypatch):
    def broken():
        raise OSError("disk I/O error")

    monkeypatch.setattr(store, "check_writable", broken)
    resp = client.get("/healthz")
    assert resp.status_code == 503 and resp.json["problems"] == ["database not writable: disk I/O error"]


def test_metrics_need_the_token_whenever_one_is_set_loopback_too(client):
    """Behind a reverse proxy on the same host every request is from loopback: the address proves nothing."""
    for where in ({"REMOTE_ADDR": "203.0.113.9"}, {"REMOTE_ADDR": "127.0.0.1"}, {"REMOTE_ADDR": "::ffff:127.0.0.1"}):
        assert client.get("/metrics", environ_base=where).status_code == 401
        assert client.get("/metrics", environ_base=where, headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert client.get("/metrics", environ_base=where, headers={"Authorization": "Bearer é"}).status_code == 401
        assert client.get("/metrics", environ_base=where,
                          headers={"Authorization": "Bearer s3cret-metrics"}).status_code == 200


def test_without_a_token_metrics_answer_loopback_only(settings, clock):
    client = create_app(settings, clock=clock, start_worker=False).test_client()
    assert client.get("/metrics", environ_base={"REMOTE_ADDR": "203.0.113.9"}).status_code == 401
    for local in ("127.0.0.1", "::1", "::ffff:127.0.0.1"):  # the last: IPv4 on a dual-stack socket
        assert client.get("/metrics", environ_base={"REMOTE_ADDR": local}).status_code == 200


def metric(text: str, line_start: str) -> float:
    [line] = [line for line in text.splitlines() if line.startswith(line_start + " ")]
    return float(line.rsplit(" ", 1)[1])


def test_metrics_tell_what_happened(client, store, clock):
    body = json.dumps(payloads.merged_pr("acme/api", 42, 7, merged_at=clock())).encode()
    client.post("/webhook", data=body, headers=payloads.headers("pull_request", body, SECRET))
    client.post("/webhook", data=body, headers=payloads.headers("pull_request", body, "forged"))
    store.db.execute("INSERT INTO changes (key, kind, repo, repo_id, branch, sha, actor, happened_at, facts, source,"
                     " first_seen_at, next_attempt_at, status, decision, followup_state, due_at) VALUES"
                     " ('pr:42:7', 'pr', 'acme/api', 42, 'main', '', 'alice', ?, '{}', 'x', ?, ?, 'followup',"
                     " '{\"rule\": \"none\"}', 'open', ?)", [iso(clock())] * 3 + [iso(clock() - timedelta(hours=1))])
    sweep_finished(store, clock() - timedelta(minutes=10))
    store.record_github_response(type("R", (), {"status_code": 200, "headers": {"x-ratelimit-remaining": "4990"}})())
    text = client.get("/metrics", headers={"Authorization": "Bearer s3cret-metrics"}).get_data(as_text=True)
    assert metric(text, 'tbr_deliveries_total{event="pull_request",status="pending"}') == 1
    assert metric(text, 'tbr_webhooks_refused_total{status="401"}') == 1
    assert metric(text, 'tbr_decisions_total{rule="none",status="followup"}') == 1
    assert metric(text, "tbr_followups_overdue") == 1
    assert metric(text, 'tbr_pending_work{kind="deliveries"}') == 1
    assert metric(text, 'tbr_sweeps_total{result="ok"}') == 1
    assert metric(text, "tbrbot_repos_checked") == 3
    assert metric(text, "tbr_seconds_since_last_sweep") == 600
    assert metric(text, 'tbr_github_requests_total{status="2xx"}') == 1
    assert metric(text, "tbr_github_rate_limit_remaining") == 4990
