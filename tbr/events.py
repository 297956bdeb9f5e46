"""From a webhook payload to the changes it reports. Pure; no I/O.

Only the fields tbr relies on are checked: a payload missing one of them is malformed (400), and
anything else GitHub adds or changes in its payloads does not turn a real delivery into a refusal
that GitHub would never retry.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone

ZERO_SHA = "0" * 40


class MalformedPayload(ValueError):
    pass


@dataclass(frozen=True)
class ChangeRef:
    """A change that reached a branch; `key` is stable across redeliveries and renames."""

    key: str
    kind: str  # "pr" or "push"
    repo: str
    repo_id: int
    installation_id: int | None
    branch: str
    default_branch: str | None
    sha: str
    actor: str
    happened_at: datetime
    number: int | None = None
    facts: dict = field(default_factory=dict)


def pr_key(repo_id: int, number: int) -> str:
    return f"pr:{repo_id}:{number}"


def push_key(repo_id: int, branch: str, sha: str) -> str:
    return f"push:{repo_id}:{branch}:{sha}"


def _dig(payload: dict, path: str):
    value = payload
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            raise MalformedPayload(f"payload has no {path}")
        value = value[part]
    return value


def parse_time(value) -> datetime:
    """GitHub sends ISO 8601 strings, and epoch seconds in some push fields."""
    if isinstance(value, (int, float)):
        return datetime.fromtimestamp(value, tz=timezone.utc)
    if isinstance(value, str):
        return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(timezone.utc)
    raise MalformedPayload(f"not a timestamp: {value!r}")


def _installation(payload: dict) -> int | None:
    inst = payload.get("installation")
    return inst.get("id") if isinstance(inst, dict) else None


@dataclass(frozen=True)
class IssueEvent:
    """Something a person did to an issue that may be a follow-up: close, reopen, comment, delete."""

    repo: str
    number: int
    action: str  # closed | reopened | deleted | transferred | commented
    actor: str
    actor_type: str
    at: datetime
    state_reason: str | None = None
    comment: str = ""
    comment_id: int | None = None
    comment_url: str = ""


ISSUE_ACTIONS = ("closed", "reopened", "deleted", "transferred")


def issue_event(event: str, payload: dict, received_at: datetime) -> IssueEvent | None:
    """The follow-up lifecycle events tbr acts on, or None for any other delivery."""
    if event not in ("issues", "issue_comment") or not isinstance(payload, dict):
        return None
    action = _dig(payload, "action")
    issue = _dig(payload, "issue")
    if event == "issues" and action not in ISSUE_ACTIONS:
        return None
    if event == "issue_comment" and (action != "created" or issue.get("pull_request")):
        return None
    base = dict(repo=_dig(payload, "repository.full_name"), number=_dig(issue, "number"),
                actor=_dig(payload, "sender.login"), actor_type=payload["sender"].get("type") or "User")
    if event == "issue_comment":
        comment = _dig(payload, "comment")
        return IssueEvent(**base, action="commented", at=parse_time(_dig(comment, "created_at")),
                          comment=comment.get("body") or "", comment_id=comment.get("id"),
                          comment_url=comment.get("html_url", ""))
    when = issue.get("closed_at") if action == "closed" else issue.get("updated_at")
    return IssueEvent(**base, action=action, at=parse_time(when) if when else received_at,
                      state_reason=issue.get("state_reason"))


@dataclass(frozen=True)
class PullActivity:
    """Something happened on an open pull request that may change its review status."""

    repo: str
    repo_id: int
    installation_id: int | None
    number: int
    default_branch: str | None


PR_ACTIONS = ("opened", "synchronize", "reopened", "ready_for_review", "edited")


def pull_activity(event: str, payload: dict) -> PullActivity | None:
    if not isinstance(payload, dict):
        return None
    action = payload.get("action")
    if event == "pull_request" and action in PR_ACTIONS:
        number = _dig(payload, "pull_request.number")
    elif event in ("pull_request_review", "pull_request_review_comment"):
        number = _dig(payload, "pull_request.number")
    elif event == "issue_comment" and action == "created" and (payload.get("issue") or {}).get("pull_request"):
        number = _dig(payload, "issue.number")
    else:
        return None
    repo = _dig(payload, "repository")
    return PullActivity(_dig(repo, "full_name"), _dig(repo, "id"), _installation(payload), number,
                        repo.get("default_branch"))


@dataclass(frozen=True)
class ControlsTrigger:
    """Branch protection may have changed (or a repository arrived): look at its controls again."""

    repos: tuple[str, ...]
    installation_id: int | None
    actor: str
    what: str
    at: datetime


def controls_trigger(event: str, payload: dict, received_at: datetime) -> ControlsTrigger | None:
    if not isinstance(payload, dict):
        return None
    action = payload.get("action")
    if event in ("branch_protection_rule", "repository_ruleset"):
        rule = payload.get("rule") or payload.get("repository_ruleset") or {}
        repos = (_dig(payload, "repository.full_name"),)
        what = f"{event.replace('_', ' ')} {rule.get('name', '')!r} {action}".replace(" ''", "")
    elif event == "installation" and action in ("created", "new_permissions_accepted"):
        repos = tuple(r["full_name"] for r in payload.get("repositories") or [] if "full_name" in r)
        what = f"installation {action}"
    elif event == "installation_repositories" and action == "added":
        repos = tuple(r["full_name"] for r in payload.get("repositories_added") or [] if "full_name" in r)
        what = "repositories added to the installation"
    else:
        return None
    return ControlsTrigger(repos, _installation(payload), (payload.get("sender") or {}).get("login", ""), what,
                           received_at)


def check(event: str, payload: dict, received_at: datetime) -> None:
    """Raise MalformedPayload when a delivery lacks a field any of the readers below relies on."""
    extract(event, payload, received_at)
    issue_event(event, payload, received_at)
    pull_activity(event, payload)
    controls_trigger(event, payload, received_at)


def extract(event: str, payload: dict, received_at: datetime) -> list[ChangeRef]:
    """The changes a delivery reports: a merged PR, a push to a branch, or nothing."""
    if not isinstance(payload, dict):
        raise MalformedPayload("payload is not a JSON object")
    if event == "pull_request":
        return _pull_request(payload)
    if event == "push":
        return _push(payload, received_at)
    return []


def _pull_request(payload: dict) -> list[ChangeRef]:
    pr = _dig(payload, "pull_request")
    _dig(payload, "action")
    if payload["action"] != "closed" or not _dig(pr, "merged"):
        return []
    repo_id = _dig(payload, "repository.id")
    number = _dig(pr, "number")
    merged_by = pr.get("merged_by") or {}
    return [ChangeRef(
        key=pr_key(repo_id, number),
        kind="pr",
        repo=_dig(payload, "repository.full_name"),
        repo_id=repo_id,
        installation_id=_installation(payload),
        branch=_dig(pr, "base.ref"),
        default_branch=payload["repository"].get("default_branch"),
        sha=pr.get("merge_commit_sha") or "",
        actor=merged_by.get("login") or "",
        happened_at=parse_time(_dig(pr, "merged_at")),
        number=number,
        facts={"title": pr.get("title", ""), "url": _dig(pr, "html_url"), "author": _dig(pr, "user.login")},
    )]


def _push(payload: dict, received_at: datetime) -> list[ChangeRef]:
    ref = _dig(payload, "ref")
    after = _dig(payload, "after")
    if not ref.startswith("refs/heads/") or payload.get("deleted") or after == ZERO_SHA:
        return []  # tags and branch deletions change no production code
    repo_id = _dig(payload, "repository.id")
    branch = ref.removeprefix("refs/heads/")
    commits = [
        {"sha": c["id"], "url": c.get("url", ""), "message": (c.get("message") or "").split("\n", 1)[0],
         "author": (c.get("author") or {}).get("username")}
        for c in _dig(payload, "commits")
        if isinstance(c, dict) and "id" in c
    ]
    pushed_at = payload["repository"].get("pushed_at")
    return [ChangeRef(
        key=push_key(repo_id, branch, after),
        kind="push",
        repo=_dig(payload, "repository.full_name"),
        repo_id=repo_id,
        installation_id=_installation(payload),
        branch=branch,
        default_branch=payload["repository"].get("default_branch"),
        sha=after,
        actor=_dig(payload, "sender.login"),
        happened_at=parse_time(pushed_at) if pushed_at else received_at,
        facts={
            "before": payload.get("before", ""),
            "forced": bool(payload.get("forced")),
            "compare": payload.get("compare", ""),
            "commits": commits,
        },
    )]
