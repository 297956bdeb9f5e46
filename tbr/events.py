"""From a webhook payload to the changes it reports. Pure; no I/O.

Only the fields tbr relies on are checked: a payload missing one of them is malformed (400), and
anything else GitHub adds or changes in its payloads does not turn a real delivery into a refusal
that GitHub would never retry.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timezone

ZERO_SHA = "0" * 40
REPO_NAME = re.compile(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+")  # GitHub's owner and repository name characters


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


def _dig(payload: dict, path: str, kind: type | None = None):
    """The field at `path`; with `kind`, it must be of that type (a bool is no int here)."""
    value = payload
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            raise MalformedPayload(f"payload has no {path}")
        value = value[part]
    if kind is not None and not _is(value, kind):
        raise MalformedPayload(f"payload's {path} is not {KINDS[kind]}: {value!r:.40}")
    return value


KINDS = {int: "a number", str: "text", dict: "an object", list: "a list"}


def _is(value, kind: type) -> bool:
    return isinstance(value, kind) and not (isinstance(value, bool) and kind is not bool)


def _opt(obj, key: str, kind: type, default=None):
    """An optional field of `obj`, or `default` when it is missing or of another type."""
    value = obj.get(key) if isinstance(obj, dict) else None
    return value if _is(value, kind) else default


def text(payload: dict, path: str) -> str | None:
    """An optional text field: None when it is missing or not text."""
    try:
        value = _dig(payload, path)
    except MalformedPayload:
        return None
    return value if isinstance(value, str) else None


def parse_time(value) -> datetime:
    """GitHub sends ISO 8601 strings, and epoch seconds in some push fields."""
    if isinstance(value, (int, float)):
        return datetime.fromtimestamp(value, tz=timezone.utc)
    if isinstance(value, str):
        return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(timezone.utc)
    raise MalformedPayload(f"not a timestamp: {value!r}")


def _installation(payload: dict) -> int | None:
    return _opt(payload.get("installation"), "id", int)


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
    body: str = ""                      # edited: the issue's body now
    previous_body: str | None = None    # edited: its body before, when the edit changed it


ISSUE_ACTIONS = ("closed", "reopened", "deleted", "transferred", "edited")


def issue_event(event: str, payload: dict, received_at: datetime) -> IssueEvent | None:
    """The follow-up lifecycle events tbr acts on, or None for any other delivery."""
    if event not in ("issues", "issue_comment") or not isinstance(payload, dict):
        return None
    action = _dig(payload, "action")
    issue = _dig(payload, "issue", dict)
    if event == "issues" and action not in ISSUE_ACTIONS:
        return None
    if event == "issue_comment" and (action != "created" or issue.get("pull_request")):
        return None
    base = dict(repo=_dig(payload, "repository.full_name", str), number=_dig(issue, "number", int),
                actor=_dig(payload, "sender.login", str), actor_type=_opt(payload["sender"], "type", str, "User"))
    if event == "issue_comment":
        comment = _dig(payload, "comment", dict)
        return IssueEvent(**base, action="commented", at=parse_time(_dig(comment, "created_at")),
                          comment=_opt(comment, "body", str, ""), comment_id=_opt(comment, "id", int),
                          comment_url=_opt(comment, "html_url", str, ""))
    when = issue.get("closed_at") if action == "closed" else issue.get("updated_at")
    previous = _opt(_opt(payload.get("changes"), "body", dict), "from", str)
    return IssueEvent(**base, action=action, at=parse_time(when) if when else received_at,
                      state_reason=_opt(issue, "state_reason", str), body=_opt(issue, "body", str, ""),
                      previous_body=previous)


@dataclass(frozen=True)
class MemberRemoved:
    org: str
    login: str
    installation_id: int | None
    actor: str
    at: datetime


def member_removed(event: str, payload: dict, received_at: datetime) -> MemberRemoved | None:
    """`organization.member_removed`: someone left the organization (CC6.2, offboarding)."""
    if event != "organization" or payload.get("action") != "member_removed":
        return None
    return MemberRemoved(_dig(payload, "organization.login", str), _dig(payload, "membership.user.login", str),
                         _installation(payload), text(payload, "sender.login") or "", received_at)


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
        number = _dig(payload, "pull_request.number", int)
    elif event in ("pull_request_review", "pull_request_review_comment"):
        number = _dig(payload, "pull_request.number", int)
    elif event == "issue_comment" and action == "created" and _opt(payload, "issue", dict, {}).get("pull_request"):
        number = _dig(payload, "issue.number", int)
    else:
        return None
    repo = _dig(payload, "repository", dict)
    return PullActivity(_dig(repo, "full_name", str), _dig(repo, "id", int), _installation(payload), number,
                        _opt(repo, "default_branch", str))


@dataclass(frozen=True)
class ControlsTrigger:
    """Branch protection may have changed (or a repository arrived): look at its controls again."""

    repos: tuple[str, ...]
    installation_id: int | None
    actor: str
    what: str
    at: datetime
    org_wide: bool = False  # an organization's ruleset: every repository of the installation


def controls_trigger(event: str, payload: dict, received_at: datetime) -> ControlsTrigger | None:
    if not isinstance(payload, dict):
        return None
    action = payload.get("action")
    if event in ("branch_protection_rule", "repository_ruleset"):
        rule = _opt(payload, "rule", dict) or _opt(payload, "repository_ruleset", dict) or {}
        what = f"{event.replace('_', ' ')} {_opt(rule, 'name', str, '')!r} {action}".replace(" ''", "")
        if event == "repository_ruleset" and "repository" not in payload:
            # An organization's ruleset (GitHub's schema lets `repository` be absent then).
            return ControlsTrigger((), _installation(payload), text(payload, "sender.login") or "",
                                   f"organization {what}", received_at, org_wide=True)
        repos = (_dig(payload, "repository.full_name", str),)
    elif event == "installation" and action in ("created", "new_permissions_accepted"):
        repos = _names(payload.get("repositories"))
        what = f"installation {action}"
    elif event == "installation_repositories" and action == "added":
        repos = _names(payload.get("repositories_added"))
        what = "repositories added to the installation"
    else:
        return None
    return ControlsTrigger(repos, _installation(payload), text(payload, "sender.login") or "", what, received_at)


def _names(repositories) -> tuple[str, ...]:
    # Only owner/name: the names go into GitHub API URLs, where any other text fails forever.
    return tuple(name for r in (repositories if isinstance(repositories, list) else [])
                 if (name := _opt(r, "full_name", str)) and REPO_NAME.fullmatch(name))


def check(event: str, payload: dict, received_at: datetime) -> None:
    """Raise MalformedPayload when a delivery lacks a field any of the readers below relies on, or has
    one of another type: running them is the check, so what passes here cannot fail them later."""
    name = text(payload, "repository.full_name")
    if name is not None and not REPO_NAME.fullmatch(name):  # it goes into GitHub API URLs
        raise MalformedPayload(f"payload's repository.full_name is not owner/name: {name!r:.60}")
    try:
        extract(event, payload, received_at)
        issue_event(event, payload, received_at)
        pull_activity(event, payload)
        controls_trigger(event, payload, received_at)
        member_removed(event, payload, received_at)
    except MalformedPayload:
        raise
    except (TypeError, KeyError, AttributeError, IndexError) as e:
        raise MalformedPayload(f"a field of the {event} payload has the wrong type ({type(e).__name__}: {e})") from e
    except (ValueError, OverflowError, OSError) as e:  # a timestamp that is no time, or out of range
        raise MalformedPayload(f"a field of the {event} payload has a value tbr cannot read ({e})") from e


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
    pr = _dig(payload, "pull_request", dict)
    _dig(payload, "action")
    if payload["action"] != "closed" or not _dig(pr, "merged"):
        return []
    repo_id = _dig(payload, "repository.id", int)
    number = _dig(pr, "number", int)
    return [ChangeRef(
        key=pr_key(repo_id, number),
        kind="pr",
        repo=_dig(payload, "repository.full_name", str),
        repo_id=repo_id,
        installation_id=_installation(payload),
        branch=_dig(pr, "base.ref", str),
        default_branch=_opt(payload["repository"], "default_branch", str),
        sha=_opt(pr, "merge_commit_sha", str, ""),
        actor=_opt(pr.get("merged_by"), "login", str, ""),
        happened_at=parse_time(_dig(pr, "merged_at")),
        number=number,
        facts={"title": _opt(pr, "title", str, ""), "url": _dig(pr, "html_url", str),
               "author": _dig(pr, "user.login", str)},
    )]


def _push(payload: dict, received_at: datetime) -> list[ChangeRef]:
    ref = _dig(payload, "ref", str)
    after = _dig(payload, "after", str)
    if not ref.startswith("refs/heads/") or payload.get("deleted") or after == ZERO_SHA:
        return []  # tags and branch deletions change no production code
    repo_id = _dig(payload, "repository.id", int)
    branch = ref.removeprefix("refs/heads/")
    commits = [
        {"sha": c["id"], "url": _opt(c, "url", str, ""), "message": _opt(c, "message", str, "").split("\n", 1)[0],
         "author": _opt(c.get("author"), "username", str)}
        for c in _dig(payload, "commits", list)
        if _opt(c, "id", str)
    ]
    pushed_at = payload["repository"].get("pushed_at")
    return [ChangeRef(
        key=push_key(repo_id, branch, after),
        kind="push",
        repo=_dig(payload, "repository.full_name", str),
        repo_id=repo_id,
        installation_id=_installation(payload),
        branch=branch,
        default_branch=_opt(payload["repository"], "default_branch", str),
        sha=after,
        # GitHub's schema lets a push come without `sender`; its `pusher` is always there.
        actor=text(payload, "sender.login") or text(payload, "pusher.name") or "",
        happened_at=parse_time(pushed_at) if pushed_at else received_at,
        facts={
            "before": _opt(payload, "before", str, ""),
            "forced": bool(payload.get("forced")),
            "compare": _opt(payload, "compare", str, ""),
            "commits": commits,
        },
    )]
