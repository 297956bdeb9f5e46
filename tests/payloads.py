"""Webhook deliveries for tests, made from GitHub's real example payloads.

The examples (tests/fixtures/webhooks, from @octokit/webhooks-examples) are closed-but-unmerged PRs
and pushes to Codertocat/Hello-World; these helpers keep every other field as GitHub sent it and
change only what a scenario is about.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import uuid
from datetime import datetime, timezone
from functools import cache
from pathlib import Path

FIXTURES = Path(__file__).parent / "fixtures" / "webhooks"


@cache
def _example(name: str) -> dict:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def example(name: str) -> dict:
    return copy.deepcopy(_example(name))


def _iso(dt: datetime) -> str:
    return dt.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _user(login: str) -> dict:
    user = copy.deepcopy(_example("pull_request.closed.1")["sender"])
    user.update(login=login, type="Bot" if login.endswith("[bot]") else "User",
                html_url=f"https://github.com/{login}")
    return user


def _repository(payload: dict, full_name: str, repo_id: int, default_branch: str) -> None:
    repo = payload["repository"]
    owner, name = full_name.split("/")
    repo.update(id=repo_id, name=name, full_name=full_name, default_branch=default_branch,
                html_url=f"https://github.com/{full_name}")
    repo["owner"]["login"] = owner


def merged_pr(full_name: str, repo_id: int, number: int, *, author: str = "alice", merged_by: str | None = "alice",
              merged_at: datetime, base: str = "main", default_branch: str = "main",
              merge_sha: str | None = None, installation_id: int | None = 1, merged: bool = True) -> dict:
    payload = example("pull_request.closed.1")
    _repository(payload, full_name, repo_id, default_branch)
    pr = payload["pull_request"]
    pr.update(number=number, merged=merged, merged_at=_iso(merged_at) if merged else None,
              closed_at=_iso(merged_at), merge_commit_sha=merge_sha or hashlib.sha1(f"{full_name}#{number}".encode()).hexdigest(),
              merged_by=_user(merged_by) if merged_by else None, user=_user(author),
              html_url=f"https://github.com/{full_name}/pull/{number}", title=f"Change number {number}")
    pr["base"]["ref"] = base
    payload["number"] = number
    payload["sender"] = _user(merged_by or author)
    payload["installation"] = {"id": installation_id, "node_id": "x"} if installation_id else None
    if installation_id is None:
        del payload["installation"]
    return payload


def push(full_name: str, repo_id: int, *, branch: str = "main", default_branch: str = "main",
         commits: list[tuple[str, str]], sender: str = "alice", forced: bool = False,
         pushed_at: datetime, installation_id: int = 1) -> dict:
    """A push of `commits` [(sha, message)], the last one the new head."""
    payload = example("push.none.5")
    _repository(payload, full_name, repo_id, default_branch)
    template = payload["commits"][0]
    payload["commits"] = []
    for sha, message in commits:
        commit = copy.deepcopy(template)
        commit.update(id=sha, tree_id=sha, message=message, url=f"https://github.com/{full_name}/commit/{sha}")
        payload["commits"].append(commit)
    payload["head_commit"] = copy.deepcopy(payload["commits"][-1]) if commits else None
    after = commits[-1][0] if commits else "f" * 40
    payload.update(ref=f"refs/heads/{branch}", before="b" * 40, after=after, created=False, deleted=False,
                   forced=forced, sender=_user(sender), installation={"id": installation_id, "node_id": "x"},
                   compare=f"https://github.com/{full_name}/compare/bbbbbbb...{after[:7]}")
    payload["pusher"] = {"name": sender, "email": f"{sender}@example.com"}
    payload["repository"]["pushed_at"] = int(pushed_at.timestamp())
    return payload


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def headers(event: str, body: bytes, secret: str, guid: str | None = None) -> dict:
    return {
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": guid or str(uuid.uuid4()),
        "X-Hub-Signature-256": sign(secret, body),
        "Content-Type": "application/json",
        "User-Agent": "GitHub-Hookshot/044aadd",
    }


def _issue_repo(payload: dict, full_name: str) -> None:
    _repository(payload, full_name, payload["repository"]["id"], payload["repository"].get("default_branch", "main"))


def issue_action(full_name: str, number: int, action: str, *, sender: str, at: datetime,
                 state_reason: str | None = None, sender_type: str = "User") -> dict:
    """issues.<action> for an issue; closed is the reopened example with the close applied."""
    name = {"closed": "reopened"}.get(action, action)
    payload = example(f"issues.{name}.1")
    _issue_repo(payload, full_name)
    issue = payload["issue"]
    issue.update(number=number, updated_at=_iso(at), html_url=f"https://github.com/{full_name}/issues/{number}")
    if action == "closed":
        issue.update(state="closed", closed_at=_iso(at), state_reason=state_reason or "completed")
    payload.update(action=action, sender=_user(sender))
    payload["sender"]["type"] = sender_type
    payload["installation"] = {"id": 1, "node_id": "x"}
    return payload


def issue_comment(full_name: str, number: int, *, commenter: str, body: str, at: datetime,
                  comment_id: int = 4242) -> dict:
    payload = example("issue_comment.created.1")
    _issue_repo(payload, full_name)
    payload["issue"].update(number=number, html_url=f"https://github.com/{full_name}/issues/{number}")
    payload["issue"].pop("pull_request", None)
    payload["comment"].update(id=comment_id, body=body, created_at=_iso(at), updated_at=_iso(at),
                              user=_user(commenter),
                              html_url=f"https://github.com/{full_name}/issues/{number}#issuecomment-{comment_id}")
    payload["sender"] = _user(commenter)
    payload["installation"] = {"id": 1, "node_id": "x"}
    return payload


def pull_event(full_name: str, repo_id: int, number: int, *, action: str = "opened", base: str = "main",
               author: str = "alice", head_sha: str | None = None, default_branch: str = "main") -> dict:
    """pull_request.<action> for an open PR."""
    payload = example("pull_request.opened.1")
    _repository(payload, full_name, repo_id, default_branch)
    pr = payload["pull_request"]
    pr.update(number=number, user=_user(author), html_url=f"https://github.com/{full_name}/pull/{number}")
    pr["base"]["ref"] = base
    if head_sha:
        pr["head"]["sha"] = head_sha
    payload.update(action=action, number=number, sender=_user(author), installation={"id": 1, "node_id": "x"})
    return payload


def review_event(full_name: str, repo_id: int, number: int, *, reviewer: str, state: str, at: datetime) -> dict:
    """pull_request_review.submitted (webhook review states are lowercase)."""
    payload = example("pull_request_review.submitted.1")
    _repository(payload, full_name, repo_id, payload["repository"].get("default_branch", "main"))
    payload["pull_request"]["number"] = number
    payload["review"].update(state=state.lower(), user=_user(reviewer), submitted_at=_iso(at))
    payload.update(sender=_user(reviewer), installation={"id": 1, "node_id": "x"})
    return payload


def protection_rule(full_name: str, repo_id: int, *, action: str, sender: str) -> dict:
    payload = example(f"branch_protection_rule.{action}.1")
    _repository(payload, full_name, repo_id, "main")
    payload.update(sender=_user(sender), installation={"id": 1, "node_id": "x"})
    return payload


def issue_edited(full_name: str, number: int, *, body: str, previous: str, sender: str, at: datetime,
                 sender_type: str = "User") -> dict:
    """issues.edited: the body changed from `previous` to `body`."""
    payload = issue_action(full_name, number, "edited", sender=sender, at=at, sender_type=sender_type)
    payload["issue"]["body"] = body
    payload["changes"] = {"body": {"from": previous}}
    return payload


def member_removed(org: str, login: str, *, sender: str = "octocat") -> dict:
    """organization.member_removed: the examples have member_added, of the same shape; the action differs."""
    payload = example("organization.member_added.1")
    payload["organization"]["login"] = org
    payload["membership"]["user"].update(login=login, html_url=f"https://github.com/{login}")
    payload.update(action="member_removed", sender=_user(sender), installation={"id": 1, "node_id": "x"})
    return payload
