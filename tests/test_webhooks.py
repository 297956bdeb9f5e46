"""POST /webhook: forged, malformed, oversized, duplicate and good deliveries."""

from __future__ import annotations

import hashlib
import hmac
import json
from urllib.parse import urlencode

import pytest

from tbr.web import create_app
from tests import payloads
from tests.conftest import SECRET


@pytest.fixture
def app(settings, clock):
    # No worker thread and a GitHub URL where nothing listens: the request path must need neither.
    return create_app(settings, clock=clock, start_worker=False)


def pr_body(clock, **kw) -> bytes:
    return json.dumps(payloads.merged_pr("acme/api", 42, 7, merged_at=clock(), **kw)).encode()


def deliveries(store) -> list[dict]:
    return list(store.db.query("SELECT * FROM deliveries"))


def test_good_delivery_is_stored_before_the_answer_and_not_processed(client, store, clock):
    body = pr_body(clock)
    resp = client.post("/webhook", data=body, headers=payloads.headers("pull_request", body, SECRET, "guid-1"))
    assert resp.status_code == 202 and resp.json["delivery"] == "guid-1"
    [row] = deliveries(store)
    assert (row["guid"], row["event"], row["action"], row["repo"], row["status"]) == (
        "guid-1", "pull_request", "closed", "acme/api", "pending")
    assert json.loads(row["payload"]) == json.loads(body)
    assert row["received_at"] == clock().isoformat(timespec="microseconds")
    assert list(store.db.query("SELECT * FROM changes")) == []  # judged later, off the request thread


def test_same_guid_is_acknowledged_once(client, store, clock):
    body = pr_body(clock)
    first = client.post("/webhook", data=body, headers=payloads.headers("pull_request", body, SECRET, "guid-1"))
    again = client.post("/webhook", data=body, headers=payloads.headers("pull_request", body, SECRET, "guid-1"))
    assert (first.status_code, again.status_code) == (202, 200)
    assert again.json["message"] == "already received"
    assert len(deliveries(store)) == 1


@pytest.mark.parametrize("signature", [
    None,
    "sha256=" + "0" * 64,
    "sha256=",
    "garbage",
])
def test_forged_or_missing_signature_is_refused_and_not_stored(client, store, clock, signature):
    body = pr_body(clock)
    headers = payloads.headers("pull_request", body, SECRET)
    headers.pop("X-Hub-Signature-256")
    if signature:
        headers["X-Hub-Signature-256"] = signature
    resp = client.post("/webhook", data=body, headers=headers)
    assert resp.status_code == 401
    assert deliveries(store) == []


def test_signature_with_another_secret_is_refused(client, store, clock):
    body = pr_body(clock)
    resp = client.post("/webhook", data=body, headers=payloads.headers("pull_request", body, "not the secret"))
    assert resp.status_code == 401 and deliveries(store) == []


@pytest.mark.parametrize("prefix", ["sha1=", ""])
def test_sha1_signatures_are_refused(client, store, clock, prefix):
    # githubkit's verify() falls back to SHA-1 when the sha256= prefix is missing: tbr must not.
    body = pr_body(clock)
    headers = payloads.headers("pull_request", body, SECRET)
    headers["X-Hub-Signature-256"] = prefix + hmac.new(SECRET.encode(), body, hashlib.sha1).hexdigest()
    assert client.post("/webhook", data=body, headers=headers).status_code == 401
    assert deliveries(store) == []


def test_body_changed_after_signing_is_refused(client, store, clock):
    body = pr_body(clock)
    headers = payloads.headers("pull_request", body, SECRET)
    assert client.post("/webhook", data=body.replace(b"alice", b"mallory"), headers=headers).status_code == 401


@pytest.mark.parametrize("body", [b"{not json", b"[1, 2]", b"\xff\xfe"])
def test_signed_but_not_a_json_object_is_400(client, store, body):
    resp = client.post("/webhook", data=body, headers=payloads.headers("push", body, SECRET))
    assert resp.status_code == 400 and "malformed" in resp.json["message"]
    assert deliveries(store) == []


def ignored(store) -> list[tuple[str, str]]:
    return [(r["status"], r["outcome"]) for r in deliveries(store)]


def test_signed_but_missing_a_needed_field_is_stored_as_ignored_naming_it(client, store, clock):
    """GitHub never sends it again if refused: a delivery tbr cannot use is kept, with the reason."""
    payload = payloads.merged_pr("acme/api", 42, 7, merged_at=clock())
    del payload["pull_request"]["base"]
    body = json.dumps(payload).encode()
    resp = client.post("/webhook", data=body, headers=payloads.headers("pull_request", body, SECRET))
    assert resp.status_code == 202 and "base.ref" in resp.json["message"]
    [(status, outcome)] = ignored(store)
    assert status == "done" and outcome.startswith("ignored:") and "base.ref" in outcome


def test_missing_delivery_headers_is_400(client, store, clock):
    body = pr_body(clock)
    headers = payloads.headers("pull_request", body, SECRET)
    del headers["X-GitHub-Delivery"]
    assert client.post("/webhook", data=body, headers=headers).status_code == 400
    assert deliveries(store) == []


def test_over_25_mb_is_413(client, store):
    body = b'{"zen": "' + b"x" * (25 * 1024 * 1024) + b'"}'
    resp = client.post("/webhook", data=body, headers=payloads.headers("ping", body, SECRET))
    assert resp.status_code == 413
    assert deliveries(store) == []


@pytest.mark.parametrize("name", ["ping.none.1", "ping.none.4"])
def test_ping_is_200(client, name):
    body = json.dumps(payloads.example(name)).encode()
    assert client.post("/webhook", data=body, headers=payloads.headers("ping", body, SECRET)).status_code == 200


def test_unknown_action_is_stored_and_acknowledged(client, store, clock):
    payload = payloads.merged_pr("acme/api", 42, 7, merged_at=clock())
    payload["action"] = "a_brand_new_action"
    body = json.dumps(payload).encode()
    assert client.post("/webhook", data=body, headers=payloads.headers("pull_request", body, SECRET)).status_code == 202
    assert deliveries(store)[0]["action"] == "a_brand_new_action"


def test_form_encoded_delivery_is_accepted(client, store, clock):
    body = urlencode({"payload": pr_body(clock).decode()}).encode()
    headers = payloads.headers("pull_request", body, SECRET)
    headers["Content-Type"] = "application/x-www-form-urlencoded"
    assert client.post("/webhook", data=body, headers=headers).status_code == 202
    assert deliveries(store)[0]["repo"] == "acme/api"


def test_issue_event_missing_a_needed_field_is_stored_as_ignored(client, store, clock):
    payload = payloads.issue_action("acme/compliance", 3, "closed", sender="bob", at=clock())
    del payload["issue"]["number"]
    body = json.dumps(payload).encode()
    resp = client.post("/webhook", data=body, headers=payloads.headers("issues", body, SECRET))
    assert resp.status_code == 202 and "number" in resp.json["message"]
    [(status, outcome)] = ignored(store)
    assert status == "done" and "number" in outcome
