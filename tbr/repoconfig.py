"""Per-repository configuration: `.github/tbr.yml` in the repository, under the organization's
policy in its `.github` repository (the Probot convention), over the environment. Pure; no I/O.

The environment and the organization's file are the policy. The people a repository's file governs
can edit it, so it may only make the control stricter, key by key (RULES), unless the
organization's file lists the key in `allow_repo_override` (Allstar's `disableRepoOverride`, turned
around). A key that would loosen the policy is refused: the organization's value stays in force and
`RepoConfig.refused` says why.

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
    allow_repo_override: tuple[str, ...] = ()
    # `branches` a repository added to a policy that watches the default and protected branches
    default_branches: bool = False
    sources: dict = field(default_factory=dict, compare=False)  # key -> where its value came from
    refused: dict = field(default_factory=dict, compare=False)  # key -> why the repository's value was refused

    def watches_branch(self, branch: str, default_branch: str | None, protected: bool) -> bool:
        """`branches` globs name the production branches; without them (or with a repository's
        additions to the organization's default), the default and protected ones too."""
        if self.branches is not None and any(patterns.glob_match(p, branch) for p in self.branches):
            return True
        return (self.branches is None or self.default_branches) and (branch == default_branch or protected)

    @property
    def only_listed_branches(self) -> bool:
        """Production is the `branches` globs alone (the policy's list), not also the default and protected ones."""
        return self.branches is not None and not self.default_branches

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


def _keys(value, key: str) -> tuple[str, ...]:
    names = _strings(value, key)
    unknown = [n for n in names if n not in RULES or n == key]
    if unknown:
        raise ValueError(f"unknown key {unknown[0]!r}; keys a repository may be allowed to override:"
                         f" {', '.join(RULES)}")
    return names


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
    "allow_repo_override": _keys,
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
        "allow_repo_override": (),
    }


# How a repository's value may differ from the policy's: each rule takes (the policy's value, the
# repository's value) and returns (the value in force, what loosens or None). The repository's value
# is taken whole when nothing loosens; otherwise the policy's value stays (for lists that may only
# grow, with the repository's additions, which only tighten).

def _at_most(policy, repo):
    """Numbers where less is stricter: a shorter grace period, SLA, review deadline."""
    return (repo, None) if repo <= policy else (policy, f"{repo} is more than the organization's {policy}")


def _strict(strict: bool):
    """Booleans with a strict value: a repository may turn it on, never off."""
    def rule(policy, repo):
        if policy == strict and repo != strict:
            return policy, f"{_shown(repo)} would relax the organization's {_shown(policy)}"
        return repo, None
    return rule


def _fewer(policy, repo):
    """Lists that widen what passes (exempt authors, approval phrases, access reviewers): only remove."""
    known = {p.casefold() for p in policy}
    extra = [r for r in repo if r.casefold() not in known]
    return (repo, None) if not extra else (policy, f"adds {', '.join(extra)}, not in the organization's list")


def _more(policy, repo):
    """Lists that widen what is watched (branches, checks): only add; the organization's entries stay."""
    if policy is None:  # the default and protected branches: a repository's globs add to them
        return repo, None
    missing = [p for p in policy if p not in repo]
    union = tuple(policy) + tuple(r for r in repo if r not in policy)
    return union, (f"leaves out {', '.join(missing)}" if missing else None)


def _same(policy, repo):
    """Where a different value is not comparable, and could be looser: keep the policy's (names
    such as owner/repo or @team compare as GitHub does, ignoring case)."""
    same = repo.casefold() == policy.casefold() if isinstance(repo, str) and isinstance(policy, str) else repo == policy
    return (repo, None) if same else (policy, f"{_shown(repo)} differs from the organization's {_shown(policy)}")


def _none_or_same(policy, repo):
    """Holidays: none at all (every weekday counts) is the strictest calendar; another one could add days off."""
    return (repo, None) if repo is None else _same(policy, repo)


def _adds_or_same(policy, repo):
    """Set where the policy has none (an escalation, a ticket requirement, added); never replaced."""
    return (repo, None) if policy is None else _same(policy, repo)


def _free(policy, repo):
    return repo, None


RULES = {
    "branches": (_more, "a repository may add production branches, not stop watching the organization's"),
    "approval_phrases": (_fewer, "a repository may drop approval phrases, not add its own"),
    "exempt_authors": (_fewer, "a repository may exempt fewer authors, not add its own"),
    "grace_seconds": (_at_most, "a repository may shorten the grace period, not lengthen it"),
    "sla_business_days": (_at_most, "a repository may shorten the SLA, not lengthen it"),
    "timezone": (_same, "the SLA's clock is the organization's: another time zone can move a deadline later"),
    "holidays": (_none_or_same, "another holiday calendar can add days off and move a deadline later"),
    "tracking_repo": (_same, "where follow-ups are filed is the organization's to decide"),
    "escalate": (_adds_or_same, "a repository may name someone to escalate to where the policy names nobody,"
                                " not replace the organization's"),
    "checks": (_more, "a repository may turn checks on, not off"),
    "ticket_pattern": (_adds_or_same, "a repository may require a ticket reference where the policy does not,"
                                      " not change the organization's pattern"),
    "require_fresh_approval": (_strict(True), "a repository may require fresh approvals, not stop requiring them"),
    "revert_completes": (_strict(False), "a repository may stop counting reverts as reviews, not start"),
    "access_review": (None, "access reviews"),  # key by key, ACCESS_RULES
    "allow_repo_override": (_same, "only the organization's file may allow overrides"),
}

ACCESS_RULES = {
    "enabled": (_strict(True), "a repository may not switch its access review off"),
    "scope": (_free, ""),  # one issue per repository or per organization: every line is reviewed either way
    "business_day": (_at_most, "a repository may open its review earlier, not later"),
    "due_days": (_at_most, "a repository may shorten the deadline, not lengthen it"),
    "reviewers": (_fewer, "who decides access is the organization's choice: a repository may name fewer"
                          " reviewers, not others"),
    "apply_revocations": (_same, "only the organization's file may turn it on or off, as removing people's"
                                 " access is its decision"),
}


def _shown(value) -> str:
    if isinstance(value, tuple):
        return ", ".join(value) or "none"
    return "none" if value is None else str(value).lower() if isinstance(value, bool) else str(value)


def tighten(key: str, policy, repo, rules=RULES) -> tuple[object, str | None]:
    """The value in force for one key of a repository's file, and why it was refused (None: taken)."""
    rule, why = rules[key]
    value, loosens = rule(policy, repo)
    if loosens is None:
        return value, None
    return value, f"{loosens}: {why}; the organization's value ({_shown(policy)}) stays in force"


def refusals(refused: dict[str, str], key: str) -> dict[str, str]:
    """The refusals of a key of a repository's file (for access_review, of its keys): key -> why."""
    return {k: why for k, why in refused.items() if k == key or k.startswith(f"{key}.")}


def _frozen(data: dict | None) -> dict:
    """A file's values as parse() gives them (stored as JSON, lists come back as lists)."""
    return {k: _frozen(v) if isinstance(v, dict) else tuple(v) if isinstance(v, list) else v
            for k, v in (data or {}).items()}


def _access_layer(policy: dict, repo: dict, allowed: bool, refused: dict) -> dict:
    """access_review key by key; apply_revocations stays the organization's even where it allows overrides."""
    values = {**AccessReview().__dict__, **policy}
    for sub, value in repo.items():
        if allowed and sub != "apply_revocations":
            values[sub] = value
            continue
        values[sub], why = tighten(sub, values[sub], value, ACCESS_RULES)
        if why:
            refused[f"access_review.{sub}"] = why
    return values


def layer(settings: Settings, org: tuple[str, dict | None] | None = None,
          repo: tuple[str, dict | None] | None = None) -> RepoConfig:
    """The environment, then the organization's file, then what the repository's file may change;
    `sources` says which layer each value came from, `refused` which repository keys were not taken."""
    values, sources, refused = defaults(settings), dict.fromkeys(KEYS, "environment"), {}
    org_name, org_data = org or ("", None)
    for key, value in _frozen(org_data).items():
        values[key] = {**values[key], **value} if key == "access_review" else value
        sources[key] = org_name
    allowed = set(values["allow_repo_override"])
    default_branches = False
    name, data = repo or ("", None)
    for key, value in _frozen(data).items():
        if key == "access_review":
            values[key] = _access_layer(values[key], value, key in allowed, refused)
            sources[key] = name
            continue
        if key in allowed:
            values[key], sources[key] = value, name
            continue
        default_branches |= key == "branches" and values[key] is None
        before = values[key]
        values[key], why = tighten(key, before, value)
        if why is None:
            sources[key] = name
        else:
            refused[key] = why
            if values[key] != before:  # a list that may only grow keeps the repository's additions
                sources[key] = f"{sources[key]} + {name}"
    return RepoConfig(**{**values, "access_review": AccessReview(**values["access_review"])},
                      default_branches=default_branches, sources=sources, refused=refused)
