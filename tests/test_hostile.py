"""Drills: what an attacker (or GitHub's rarer shapes) sends to /webhook. Each case is one GitHub
can send and was refused and lost, or one an attacker sends and that hurt: it must be answered
as GitHub or the attacker should be, and leave the right record."""

from __future__ import annotations

import io
import json

import pytest

from tests import attacks, payloads
from tests.conftest import SECRET
from tests.processes import Gunicorn


def post(bot, event: str, body: bytes, guid: str | None = None, **extra):
    headers = {**payloads.headers(event, body, SECRET, guid), **extra}
    return bot.client.post("/webhook", data=body, headers=headers)


def test_a_push_without_sender_is_judged_by_its_pusher(bot, github, clock):
    repo = github.add_repo("acme/api")
    payload = payloads.push("acme/api", repo["id"], commits=[("a" * 40, "Fix")], sender="dana", pushed_at=clock())
    del payload["sender"]
    assert post(bot, "push", json.dumps(payload).encode()).status_code == 202
    bot.run()
    [change] = bot.changes()
    assert change["actor"] == payload["pusher"]["name"]


def test_a_member_removed_without_the_user_is_stored_as_ignored(bot):
    payload = payloads.member_removed("acme", "mallory")
    payload["membership"]["user"] = None
    resp = post(bot, "organization", json.dumps(payload).encode(), "removed-ghost")
    assert resp.status_code == 202
    row = bot.store.delivery("removed-ghost")
    assert row["status"] == "done" and row["outcome"].startswith("ignored:") and "membership.user" in row["outcome"]


def org_ruleset(org: str, installation_id: int, action: str = "edited") -> dict:
    """An organization-level `repository_ruleset` delivery: GitHub's schema has no `repository` then."""
    sender = payloads.example("pull_request.closed.1")["sender"]
    organization = payloads.example("organization.member_added.1")["organization"]
    return {"action": action, "sender": sender, "installation": {"id": installation_id, "node_id": "MDIz"},
            "organization": {**organization, "login": org},
            "repository_ruleset": {"id": 7, "name": "protect main", "source": org, "source_type": "Organization",
                                   "enforcement": "disabled"}}


def test_an_organization_ruleset_queues_a_look_at_every_repository(bot, github):
    github.add_repo("acme/api")
    github.add_repo("acme/web")
    resp = post(bot, "repository_ruleset", json.dumps(org_ruleset("acme", 1)).encode(), "org-rules")
    assert resp.status_code == 202
    bot.engine.run_due()
    assert "controls of 2 repositories queued" in bot.store.delivery("org-rules")["outcome"]


@pytest.mark.parametrize("closed_at", ["not a time", "\x1dê", 10 ** 20])
def test_a_time_tbr_cannot_read_is_stored_as_ignored_not_a_500(bot, clock, closed_at):
    payload = payloads.issue_action("acme/compliance", 3, "closed", sender="bob", at=clock())
    payload["issue"]["closed_at"] = closed_at
    resp = post(bot, "issues", json.dumps(payload).encode(), "odd-time")
    assert resp.status_code == 202
    assert bot.store.delivery("odd-time")["outcome"].startswith("ignored:")


def test_a_repository_name_no_repository_has_is_stored_as_ignored(bot, clock):
    payload = payloads.merged_pr("acme/api", 42, 7, merged_at=clock())
    payload["repository"]["full_name"] = "acme/\x01api"  # it would go into GitHub API URLs
    assert post(bot, "pull_request", json.dumps(payload).encode(), "odd-name").status_code == 202
    assert bot.store.delivery("odd-name")["outcome"].startswith("ignored: payload's repository.full_name")


def test_a_non_ascii_signature_is_a_401(bot):
    body = json.dumps(payloads.example("ping.none.1")).encode()
    for signature in ("sha256=é" + "0" * 63, "sha256=" + "٣" * 64, "é"):
        resp = post(bot, "ping", body, **{"X-Hub-Signature-256": signature.encode().decode("latin-1")})
        assert resp.status_code == 401, signature


def test_a_chunked_body_over_25_mb_is_a_413_signed_or_not(bot):
    body = b'{"zen": "' + b"x" * (25 * 1024 * 1024) + b'"}'
    for signature in (payloads.sign(SECRET, body), "sha256=" + "0" * 64, None):
        headers = {**payloads.headers("ping", body, SECRET), "Transfer-Encoding": "chunked"}
        if signature is None:
            del headers["X-Hub-Signature-256"]
        else:
            headers["X-Hub-Signature-256"] = signature
        # As gunicorn hands over a chunked body: no length, the stream ends where the body does.
        resp = bot.client.post("/webhook", input_stream=io.BytesIO(body), headers=headers,
                               environ_overrides={"wsgi.input_terminated": True})
        assert resp.status_code == 413, (signature, resp.status_code)
    assert bot.store.db.execute("SELECT count(*) FROM deliveries").fetchone()[0] == 0


def test_a_replayed_body_under_a_new_guid_is_recorded_and_not_processed_again(bot, github, clock):
    repo = github.add_repo("acme/api")
    body = json.dumps(payloads.push("acme/api", repo["id"], commits=[("a" * 40, "Fix")], pushed_at=clock())).encode()
    assert post(bot, "push", body, "first").status_code == 202
    resp = post(bot, "push", body, "second")
    assert resp.status_code == 200 and "replay of delivery first" in resp.json["message"]
    bot.run()
    second = bot.store.delivery("second")
    assert second["status"] == "done" and second["outcome"] == "replay of delivery first"
    assert len(bot.changes()) == 1
    [audit] = [json.loads(r["data"]) for r in bot.store.db.query(
        "SELECT data FROM audit WHERE kind = 'delivery.received' AND json_extract(data, '$.delivery') = 'second'")]
    assert audit["replay_of"] == "first"
    # A redelivery (same GUID) is still a duplicate, not a replay.
    assert post(bot, "push", body, "first").json["message"] == "already received"


def test_the_same_body_days_later_is_a_new_event_not_a_replay(bot, clock):
    """Some payloads carry no time of their own: a member removed again a month later sends the same bytes."""
    body = json.dumps(payloads.member_removed("acme", "bob")).encode()
    assert post(bot, "organization", body, "first").status_code == 202
    assert post(bot, "organization", body, "soon").json["message"].startswith("replay of delivery first")
    clock.advance(4 * 86400)
    assert post(bot, "organization", body, "later").json["message"] == "queued"
    clock.advance(3600)
    assert post(bot, "organization", body, "again").json["message"].startswith("replay of delivery later")


# Against `gunicorn app:app` as deployed -----------------------------------------------------------


@pytest.fixture
def served(service_env):
    bot = Gunicorn(service_env)
    yield bot
    bot.stop()


def test_slow_uploads_do_not_hold_up_githubs_deliveries(served):
    """40 connections trickling unsigned bodies hold request threads; GitHub's delivery still gets its
    2xx before GitHub's 10 s timeout (the figure, well under 1 s, is in bench/README.md)."""
    with attacks.slow_uploads(served.port, 40):
        for _ in range(4):
            status, _seconds = attacks.signed_delivery(served.port, timeout=10)
            assert status == 200


def test_large_unsigned_bodies_do_not_fill_memory(served):
    """16 unsigned 24 MB bodies at once: refused, and never all in memory (512 MB on a Fly VM)."""
    attacks.signed_delivery(served.port)  # warm up both the request path and the database
    growth, statuses = attacks.unsigned_bodies(served.port, served.proc.pid, count=16)
    assert set(statuses) <= {401, 408}, statuses  # forged, or slower than GitHub would be: refused
    assert growth < 150 * attacks.MB, f"{growth / attacks.MB:.0f} MB"


def test_a_chunked_body_over_25_mb_is_a_413_from_gunicorn_too(served):
    _growth, statuses = attacks.unsigned_bodies(served.port, served.proc.pid, count=1, size=26 * attacks.MB,
                                                chunked=True)
    assert statuses == [413]
