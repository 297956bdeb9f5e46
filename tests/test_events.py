"""From real payload shapes to the changes they report."""

from datetime import datetime, timezone

import pytest

from tbr import events
from tbr.events import MalformedPayload, extract
from tests import payloads

NOW = datetime(2026, 11, 20, 2, 0, tzinfo=timezone.utc)


def test_merged_pr_is_one_change():
    payload = payloads.merged_pr("acme/api", 42, 7, author="alice", merged_by="bob", merged_at=NOW, merge_sha="c" * 40)
    [ref] = extract("pull_request", payload, NOW)
    assert (ref.key, ref.kind, ref.repo, ref.branch, ref.number) == ("pr:42:7", "pr", "acme/api", "main", 7)
    assert (ref.sha, ref.actor, ref.happened_at, ref.installation_id) == ("c" * 40, "bob", NOW, 1)
    assert ref.facts["author"] == "alice"


def test_closed_unmerged_pr_and_other_actions_are_nothing():
    assert extract("pull_request", payloads.example("pull_request.closed.1"), NOW) == []
    assert extract("pull_request", payloads.example("pull_request.opened.1"), NOW) == []
    assert extract("ping", payloads.example("ping.none.1"), NOW) == []
    assert extract("issue_comment", payloads.example("issue_comment.created.1"), NOW) == []


def test_push_to_a_branch():
    payload = payloads.push("acme/api", 42, commits=[("a" * 40, "hotfix\n\ndetails")], forced=True, pushed_at=NOW)
    [ref] = extract("push", payload, NOW)
    assert ref.key == f"push:42:main:{'a' * 40}"
    assert ref.facts["forced"] is True
    assert ref.facts["commits"] == [{"sha": "a" * 40, "url": f"https://github.com/acme/api/commit/{'a' * 40}",
                                     "message": "hotfix", "author": "Codertocat"}]
    assert ref.happened_at == NOW


@pytest.mark.parametrize("name", ["push.none.1", "push.none.2", "push.none.7"])
def test_tag_pushes_and_deletions_are_nothing(name):
    assert extract("push", payloads.example(name), NOW) == []


def test_real_branch_creation_push_is_a_change():
    [ref] = extract("push", payloads.example("push.none.5"), NOW)
    assert ref.branch == "master" and ref.sha.startswith("6113728")


def test_a_push_without_sender_is_the_pushers():
    """GitHub's schema makes `sender` optional on a push; `pusher` is always there."""
    payload = payloads.push("acme/api", 42, commits=[("a" * 40, "x")], sender="dana", pushed_at=NOW)
    del payload["sender"]
    [ref] = extract("push", payload, NOW)
    assert ref.actor == "dana"


@pytest.mark.parametrize("event, mutate, missing", [
    ("pull_request", lambda p: p.pop("repository"), "repository"),
    ("pull_request", lambda p: p["pull_request"].pop("merged"), "merged"),
    ("pull_request", lambda p: p["pull_request"]["base"].pop("ref"), "base.ref"),
    ("push", lambda p: p.pop("ref"), "ref"),
    ("push", lambda p: p.pop("commits"), "commits"),
])
def test_missing_fields_are_named(event, mutate, missing):
    payload = (payloads.merged_pr("acme/api", 42, 7, merged_at=NOW) if event == "pull_request"
               else payloads.push("acme/api", 42, commits=[("a" * 40, "x")], pushed_at=NOW))
    mutate(payload)
    with pytest.raises(MalformedPayload, match=missing):
        extract(event, payload, NOW)


def test_an_installation_lists_only_repository_names_that_can_go_into_an_api_url():
    """Found by the fuzz: a schema-valid `installation` delivery whose repositories' full_name is any text
    queued a controls look that failed with InvalidURL on every try until quarantined."""
    payload = {"action": "created", "installation": {"id": 1}, "sender": {"login": "alice"},
               "repositories": [{"full_name": "acme/api"}, {"full_name": "xMa\x18<"}, {"full_name": ""}]}
    trigger = events.controls_trigger("installation", payload, datetime(2026, 11, 20, tzinfo=timezone.utc))
    assert trigger.repos == ("acme/api",)
