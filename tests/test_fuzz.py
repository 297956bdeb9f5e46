"""Fuzzing /webhook: whatever arrives, never a 5xx or a crash, nothing stored for what is refused, and
nothing stored that the worker then chokes on."""

from __future__ import annotations

import json
import sqlite3
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests import payloads, schemagen
from tests.conftest import SECRET

pytestmark = pytest.mark.filterwarnings("ignore")

EXAMPLES = sorted(p.stem for p in payloads.FIXTURES.glob("*.json"))
EVENTS = sorted({name.split(".")[0] for name in EXAMPLES} | {"ping", "star", "", "pull_request ", "événement"})
header_text = st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF, blacklist_characters="\x7f"),
                      max_size=80)  # what an HTTP header value can carry
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                         HealthCheck.too_slow])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12)


@st.composite
def mutated_payloads(draw) -> tuple[str, dict]:
    """A real example payload with some of its fields removed or replaced by values of other types."""
    name = draw(st.sampled_from(EXAMPLES))
    payload = payloads.example(name)
    for _ in range(draw(st.integers(1, 4))):
        node, path = payload, []
        while isinstance(node, (dict, list)) and node and draw(st.booleans()):
            key = draw(st.sampled_from(sorted(node) if isinstance(node, dict) else range(len(node))))
            path.append((node, key))
            node = node[key]
        if not path:
            continue
        parent, key = path[-1]
        if isinstance(parent, dict) and draw(st.booleans()):
            del parent[key]
        else:
            parent[key] = draw(json_values)
    return name.split(".")[0], payload


@pytest.fixture
def rows(bot):
    def count() -> tuple[int, int]:
        db = bot.store.db
        return (db.execute("SELECT count(*) FROM deliveries").fetchone()[0],
                db.execute("SELECT count(*) FROM audit").fetchone()[0])
    return count


def send(bot, body: bytes, event: str, guid: str, signature: str | None, content_type: str = "application/json"):
    headers = {"X-GitHub-Event": event, "X-GitHub-Delivery": guid, "Content-Type": content_type}
    if signature is not None:
        headers["X-Hub-Signature-256"] = signature
    return bot.client.post("/webhook", data=body, headers=headers)


def signed(body: bytes) -> str:
    return payloads.headers("push", body, SECRET)["X-Hub-Signature-256"]


@FUZZ
@given(body=st.binary(max_size=2048), event=st.sampled_from(EVENTS), guid=header_text,
       signature=st.none() | header_text | st.just("sha1=0") | st.builds(lambda h: f"sha256={h}",
                                                                          st.text("0123456789abcdef", max_size=64)))
def test_anything_unsigned_is_refused_and_stored_nowhere(bot, rows, body, event, guid, signature):
    before = rows()
    answer = send(bot, body, event, guid, signature)
    assert answer.status_code == 401
    assert rows() == before


@FUZZ
@given(body=st.binary(max_size=2048) | st.text(max_size=500).map(str.encode), event=st.sampled_from(EVENTS),
       guid=header_text, form=st.booleans())
def test_garbage_with_a_valid_signature_is_a_clear_400_or_stored(bot, rows, body, event, guid, form):
    if form:
        body = b"payload=" + quote(body).encode()
    before = rows()
    answer = send(bot, body, event, guid, signed(body),
                  "application/x-www-form-urlencoded" if form else "application/json")
    assert answer.status_code in (200, 202, 400), answer.status_code
    assert answer.is_json and answer.json["message"]
    if answer.status_code == 400:
        assert rows() == before


@FUZZ
@given(case=mutated_payloads(), guid=st.uuids().map(str))
def test_real_payloads_with_wrong_types_or_missing_fields(world, rows, case, guid):
    """Refused with 400, or stored and then processed by the worker without a programming error: a
    payload the receiver accepts must never wedge the queue with a TypeError retried forever."""
    bot, (event, payload) = world, case
    body = json.dumps(payload).encode()
    before = rows()
    answer = send(bot, body, event, guid, signed(body))
    assert answer.status_code in (200, 202, 400), (answer.status_code, answer.json)
    if answer.status_code == 400:
        assert rows() == before
        return
    assert_worked_without_programming_errors(bot)


@FUZZ
@given(size=st.integers(0, 64 * 1024))
def test_sizes(bot, rows, size):
    body = json.dumps({"zen": "x" * size, "hook_id": 1}).encode()
    answer = send(bot, body, "ping", f"size-{size}", signed(body))
    assert answer.status_code == 200


def test_the_database_refusing_is_503_not_500(bot, rows, monkeypatch):
    def broken(*_a, **_k):
        raise sqlite3.DatabaseError("database disk image is malformed")
    monkeypatch.setattr(bot.store, "add_delivery", broken)
    body = json.dumps(payloads.example("ping.none.1")).encode()
    assert send(bot, body, "ping", "g", signed(body)).status_code == 503


@pytest.mark.parametrize("body", [b"[" * 100_000 + b"]" * 100_000, b'{"a":' * 50_000 + b"1" + b"}" * 50_000],
                         ids=["lists", "objects"])
def test_json_nested_too_deep_is_a_400_and_stored_nowhere(bot, rows, body):
    before = rows()
    answer = send(bot, body, "push", "deep", signed(body))
    assert answer.status_code == 400 and "malformed payload" in answer.json["message"]
    assert rows() == before


SUBSCRIBED = sorted(schemagen.events())


def test_the_schema_covers_every_event_tbr_subscribes_to():
    manifest = json.loads((payloads.FIXTURES.parents[2] / "app-manifest.json").read_text())
    assert set(manifest["default_events"]) <= set(SUBSCRIBED)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                   HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data(), event=st.sampled_from(SUBSCRIBED))
def test_every_schema_valid_delivery_is_stored_and_answered_2xx(world, rows, data, event):
    """Whatever GitHub's schema allows (optional fields missing, nullable ones null) is a delivery GitHub
    can send: stored and answered 2xx, never refused and lost; and the worker then handles it, as work
    or as ignored with its reason, without a programming error."""
    bot = world
    payload = data.draw(schemagen.payloads(event))
    guid = data.draw(st.uuids().map(str))
    body = json.dumps(payload).encode()
    answer = send(bot, body, event, guid, signed(body))
    assert answer.status_code in (200, 202), (answer.status_code, answer.json)
    row = bot.store.delivery(guid)
    assert row is not None
    assert_worked_without_programming_errors(bot)


def assert_worked_without_programming_errors(bot) -> None:
    """Run the worker over the delivery and what it leads to (changes once their grace period is over,
    actions such as a look at branch controls): an item may wait for GitHub, but none may fail with a
    programming error (ValueError, TypeError, KeyError...), which would be retried until quarantined."""
    bot.engine.run_due()
    bot.run(after_seconds=bot.settings.grace_seconds + 1)
    for table, key in (("deliveries", "guid"), ("changes", "key"), ("actions", "key")):
        failed = [(ident, error) for ident, error in bot.store.db.execute(
                      f"SELECT {key}, last_error FROM {table} WHERE last_error IS NOT NULL")
                  # a quarantined item's error is "failed N times; the last: <error>"
                  if not error.rsplit("the last: ", 1)[-1].startswith(("GitHubUnavailable", "GitHubError"))]
        assert not failed, (table, failed)


@pytest.fixture
def world(github, bot):
    """The repositories the schema strategies name, on the fake GitHub, so follow-on work reaches the judging
    and the controls checks instead of stopping at a 404."""
    for repo in ("acme/api", "acme/compliance", "acme/.github", "Codertocat/Hello-World"):
        github.add_repo(repo)
    return bot
