"""Per-repository configuration: `.github/tbr.yml` in the repository, over the organization's
defaults in its `.github` repository (the Probot convention), over the environment. Pure; no I/O.

Each key is checked on its own, so an invalid file is reported key by key ("grace_seconds: must be
a whole number of seconds from 0 to 86400") and the last valid configuration stays in force.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from tbr import patterns, usertext
from tbr.config import ESCALATE_RE, REPO_RE, Settings

PATH = ".github/tbr.yml"
CHECKS = ("review", "separation-of-duties", "controls", "change-reference", "config")


class InvalidConfig(ValueError):
    def __init__(self, problems: list[str]):
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class AccessReview:
    """The quarterly access review (CC6.3): on by default, one issue per repository."""

    enabled: bool = True
    scope: str = "repo"              # repo: an issue per repository; org: one per organization
    business_day: int = 1            # opened on this business day of each quarter
    due_days: int = 10               # business days to decide every line
    reviewers: tuple[str, ...] = ()  # mentioned in the issue and its reminders (default: escalate)
    apply_revocations: bool = False  # remove direct collaborators whose access is revoked


ACCESS_REVIEW_KEYS = {"enabled", "scope", "business_day", "due_days", "reviewers", "apply_revocations"}


@dataclass(frozen=True)
class RepoConfig:
    branches: tuple[str, ...] | None
    approval_phrases: tuple[str, ...]
    exempt_authors: tuple[str, ...]
    grace_seconds: int
    sla_business_days: int
    timezone: str
    holidays: str | None
    tracking_repo: str | None
    escalate: str | None
    checks: tuple[str, ...]
    ticket_pattern: str | None
    require_fresh_approval: bool
    revert_completes: bool = True
    access_review: AccessReview = None
    sources: dict = field(default_factory=dict, compare=False)  # key -> where its value came from

    def watches_branch(self, branch: str, default_branch: str | None, protected: bool) -> bool:
        """`branches` globs name the production branches; without them, the default and protected ones."""
        if self.branches is not None:
            return any(patterns.glob_match(pattern, branch) for pattern in self.branches)
        return branch == default_branch or protected

    def as_dict(self) -> dict:
        return {k: getattr(self, k) for k in KEYS}


def _strings(value, key: str) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v.strip() for v in value):
        raise ValueError("must be a list of non-empty strings")
    return tuple(v.strip() for v in value)


def _seconds(value, key: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 86400:
        raise ValueError("must be a whole number of seconds from 0 to 86400")
    return value


def _days(value, key: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 30:
        raise ValueError("must be a whole number of business days from 1 to 30")
    return value


def _timezone(value, key: str) -> str:
    try:
        ZoneInfo(str(value))
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{value!r} is not an IANA time zone like Europe/Berlin") from None
    return str(value)


def _holidays(value, key: str) -> str | None:
    from tbr.sla import holiday_calendar

    if value is None:
        return None
    try:
        holiday_calendar(str(value), 2026)
    except (NotImplementedError, KeyError, ValueError):
        raise ValueError(f"{value!r} is not a country code of the holidays package, like US or DE-BY") from None
    return str(value)


def _repo(value, key: str) -> str:
    if not isinstance(value, str) or not REPO_RE.match(value):
        raise ValueError("must look like owner/name")
    return value


def _escalate(value, key: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not ESCALATE_RE.match(value):
        raise ValueError("must be a user (@name) or a team (@org/team)")
    return "@" + value.lstrip("@")  # a mention, wherever it is written


def _checks(value, key: str) -> tuple[str, ...]:
    names = _strings(value, key) if value != [] else ()
    unknown = [n for n in names if n not in CHECKS]
    if unknown:
        raise ValueError(f"unknown check {unknown[0]!r}; known: {', '.join(CHECKS)}")
    return names


def _pattern(value, key: str) -> str | None:
    """A regular expression tbr can match in linear time (RE2), or None."""
    if value is None:
        return None
    problem = patterns.problem(str(value))
    if problem:
        raise ValueError(problem)
    return str(value)


def _phrases(value, key: str) -> tuple[str, ...]:
    """Approval phrases, read by tbr.usertext's grammar: each must hold a word or an emoji."""
    phrases = _strings(value, key)
    for phrase in phrases:
        problem = usertext.phrase_problem(phrase)
        if problem:
            raise ValueError(problem)
    return phrases


def _bool(value, key: str) -> bool:
    if not isinstance(value, bool):
        raise ValueError("must be true or false")
    return value


def _access_review(value, key: str) -> dict:
    """The keys set of access_review (layers merge them key by key)."""
    if value is False:
        return {"enabled": False}
    if not isinstance(value, dict):
        raise ValueError(f"must be a mapping of {', '.join(sorted(ACCESS_REVIEW_KEYS))}, or false")
    unknown = sorted(set(value) - ACCESS_REVIEW_KEYS)
    if unknown:
        raise ValueError(f"unknown key {unknown[0]!r}; known: {', '.join(sorted(ACCESS_REVIEW_KEYS))}")
    clean = {}
    for k, v in value.items():
        if k in ("enabled", "apply_revocations"):
            clean[k] = _bool(v, k)
        elif k == "scope":
            if v not in ("repo", "org"):
                raise ValueError("scope must be repo or org")
            clean[k] = v
        elif k == "reviewers":
            clean[k] = tuple(r if r.startswith("@") else f"@{r}" for r in _strings(v, k))
        elif isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= (20 if k == "business_day" else 30):
            raise ValueError(f"{k} must be a whole number of business days from 1 to {20 if k == 'business_day' else 30}")
        else:
            clean[k] = v
    return clean


KEYS = {
    "branches": _strings,
    "approval_phrases": _phrases,
    "exempt_authors": _strings,
    "grace_seconds": _seconds,
    "sla_business_days": _days,
    "timezone": _timezone,
    "holidays": _holidays,
    "tracking_repo": _repo,
    "escalate": _escalate,
    "checks": _checks,
    "ticket_pattern": _pattern,
    "require_fresh_approval": _bool,
    "revert_completes": _bool,
    "access_review": _access_review,
}


def parse(text: str) -> dict:
    """A `.github/tbr.yml`, validated: the keys it sets, cleaned; InvalidConfig lists every problem."""
    try:
        data = yaml.safe_load(text) if text.strip() else {}
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise InvalidConfig([f"not valid YAML{where}: {getattr(e, 'problem', e)}"]) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise InvalidConfig(["the file must be a mapping of keys to values"])
    clean, problems = {}, []
    for key, value in data.items():
        check = KEYS.get(key)
        if check is None:
            close = [k for k in KEYS if k.startswith(str(key)[:4])]
            hint = f" (did you mean {close[0]}?)" if close else ""
            problems.append(f"{key}: unknown key{hint}")
            continue
        try:
            clean[key] = check(value, key)
        except ValueError as e:
            problems.append(f"{key}: {e}")
    if problems:
        raise InvalidConfig(problems)
    return clean


def defaults(settings: Settings) -> dict:
    """The environment's layer: every key has a value here."""
    return {
        "branches": None,
        "approval_phrases": settings.approval_phrases,
        "exempt_authors": settings.exempt_authors,
        "grace_seconds": settings.grace_seconds,
        "sla_business_days": 2,
        "timezone": settings.timezone,
        "holidays": settings.holidays,
        "tracking_repo": settings.tracking_repo,
        "escalate": settings.escalate,
        "checks": CHECKS,
        "ticket_pattern": None,
        "require_fresh_approval": False,
        "revert_completes": True,
        "access_review": {} if settings.access_reviews else {"enabled": False},
    }


def layer(settings: Settings, *layers: tuple[str, dict | None]) -> RepoConfig:
    """Later layers win, key by key; `sources` says which layer each value came from."""
    values, sources = defaults(settings), dict.fromkeys(KEYS, "environment")
    for name, data in layers:
        for key, value in (data or {}).items():
            values[key] = {**values[key], **value} if key == "access_review" else value
            sources[key] = name
    return RepoConfig(**{**values, "access_review": AccessReview(**values["access_review"])}, sources=sources)
