"""Per-repository configuration: validation of every key, and layering."""

from __future__ import annotations

import pytest

from tbr.repoconfig import InvalidConfig, layer, parse


def test_a_full_valid_file():
    data = parse("""
branches: ["main", "release/*"]
approval_phrases: [LGTM, "ship it"]
exempt_authors: ["dependabot[bot]", "renovate[bot]"]
grace_seconds: 600
sla_business_days: 3
timezone: Europe/Berlin
holidays: DE-BY
tracking_repo: acme/compliance
escalate: "@acme/security"
checks: [review, controls]
ticket_pattern: "[A-Z]+-[0-9]+"
require_fresh_approval: true
""")
    assert data["branches"] == ("main", "release/*") and data["grace_seconds"] == 600
    assert data["checks"] == ("review", "controls") and data["require_fresh_approval"] is True


@pytest.mark.parametrize("text, problem", [
    ("branches: []", "branches: must be a list of non-empty strings"),
    ("approval_phrases: [1, 2]", "approval_phrases: must be a list of non-empty strings"),
    ("grace_seconds: soon", "grace_seconds: must be a whole number of seconds from 0 to 86400"),
    ("grace_seconds: -5", "grace_seconds: must be a whole number of seconds from 0 to 86400"),
    ("grace_seconds: true", "grace_seconds: must be a whole number of seconds from 0 to 86400"),
    ("sla_business_days: 0", "sla_business_days: must be a whole number of business days from 1 to 30"),
    ("timezone: Mars/Olympus", "timezone: 'Mars/Olympus' is not an IANA time zone"),
    ("holidays: XX", "holidays: 'XX' is not a country code"),
    ("tracking_repo: nope", "tracking_repo: must look like owner/name"),
    ("escalate: 'not a team!'", "escalate: must be a user (@name) or a team (@org/team)"),
    ("checks: [review, lint]", "checks: unknown check 'lint'"),
    ("ticket_pattern: '[unclosed'", "ticket_pattern: is not a regular expression"),
    ("require_fresh_approval: yes please", "require_fresh_approval: must be true or false"),
    ("grace_second: 5", "grace_second: unknown key (did you mean grace_seconds?)"),
    ("- just\n- a list", "the file must be a mapping of keys to values"),
    ("branches: [main\nbroken: {", "not valid YAML at line"),
])
def test_every_invalid_value_is_named(text, problem):
    with pytest.raises(InvalidConfig) as e:
        parse(text)
    assert any(p.startswith(problem) for p in e.value.problems), e.value.problems


def test_all_problems_are_reported_at_once():
    with pytest.raises(InvalidConfig) as e:
        parse("grace_seconds: x\ntimezone: Nowhere\n")
    assert [p.split(":")[0] for p in e.value.problems] == ["grace_seconds", "timezone"]


def test_empty_file_sets_nothing():
    assert parse("") == {} and parse("# nothing yet\n") == {}


def test_layers_repo_over_org_over_environment(settings):
    cfg = layer(settings, ("acme/.github:.github/tbr.yml", {"grace_seconds": 60, "timezone": "Europe/Berlin"}),
                ("acme/api:.github/tbr.yml", {"grace_seconds": 0}))
    assert (cfg.grace_seconds, cfg.timezone, cfg.sla_business_days) == (0, "Europe/Berlin", 2)
    assert cfg.sources["grace_seconds"] == "acme/api:.github/tbr.yml"
    assert cfg.sources["timezone"] == "acme/.github:.github/tbr.yml"
    assert cfg.sources["approval_phrases"] == "environment"
    assert cfg.approval_phrases == settings.approval_phrases


@pytest.mark.parametrize("branches, branch, default, protected, watched", [
    (None, "main", "main", False, True),
    (None, "release", "main", True, True),
    (None, "feature/x", "main", False, False),
    (("release/*",), "release/2026.11", "main", False, True),
    (("release/*",), "main", "main", True, False),  # configured branches replace the default rule
])
def test_which_branches_are_production(settings, branches, branch, default, protected, watched):
    cfg = layer(settings, ("repo", {"branches": branches} if branches else {}))
    assert cfg.watches_branch(branch, default, protected) is watched


def test_escalate_and_revert_completes():
    assert parse("escalate: acme/leads\nrevert_completes: false\n") == {"escalate": "@acme/leads", "revert_completes": False}
    with pytest.raises(InvalidConfig) as e:
        parse("revert_completes: sometimes")
    assert e.value.problems == ["revert_completes: must be true or false"]


# The organization's policy is the authority: what a repository's file may change -------------------

ORG, REPO_FILE = "acme/.github:.github/tbr.yml", "acme/api:.github/tbr.yml"


@pytest.mark.parametrize("org, repo, key, value, refused", [
    # numbers: only lower
    ({}, {"grace_seconds": 60}, "grace_seconds", 60, False),
    ({}, {"grace_seconds": 86400}, "grace_seconds", 300, True),
    ({"sla_business_days": 3}, {"sla_business_days": 1}, "sla_business_days", 1, False),
    ({"sla_business_days": 3}, {"sla_business_days": 5}, "sla_business_days", 3, True),
    # lists that widen what passes: only shrink
    ({"exempt_authors": ["dependabot[bot]", "renovate[bot]"]}, {"exempt_authors": ["Dependabot[bot]"]},
     "exempt_authors", ("Dependabot[bot]",), False),
    ({}, {"exempt_authors": ["mallory"]}, "exempt_authors", ("dependabot[bot]",), True),
    ({"approval_phrases": ["LGTM", "ship it"]}, {"approval_phrases": ["lgtm"]}, "approval_phrases", ("lgtm",), False),
    ({"approval_phrases": ["LGTM"]}, {"approval_phrases": ["LGTM", "."]}, "approval_phrases", ("LGTM",), True),
    # lists that widen what is watched: only grow (a repository's additions stay)
    ({}, {"branches": ["release/*"]}, "branches", ("release/*",), False),
    ({"branches": ["main"]}, {"branches": ["main", "hotfix/*"]}, "branches", ("main", "hotfix/*"), False),
    ({"branches": ["main"]}, {"branches": ["release/*"]}, "branches", ("main", "release/*"), True),
    ({"checks": ["review"]}, {"checks": ["review", "controls"]}, "checks", ("review", "controls"), False),
    ({}, {"checks": []}, "checks", ("review", "separation-of-duties", "controls", "change-reference", "config"), True),
    # booleans: only toward the strict value
    ({}, {"require_fresh_approval": True}, "require_fresh_approval", True, False),
    ({"require_fresh_approval": True}, {"require_fresh_approval": False}, "require_fresh_approval", True, True),
    ({}, {"revert_completes": False}, "revert_completes", False, False),
    ({"revert_completes": False}, {"revert_completes": True}, "revert_completes", False, True),
    # not comparable: the organization's
    ({"tracking_repo": "acme/compliance"}, {"tracking_repo": "acme/shadow"}, "tracking_repo", "acme/compliance", True),
    ({}, {"tracking_repo": "acme/shadow"}, "tracking_repo", None, True),
    ({"tracking_repo": "acme/compliance"}, {"tracking_repo": "acme/compliance"}, "tracking_repo", "acme/compliance",
     False),
    ({}, {"timezone": "Pacific/Kiritimati"}, "timezone", "UTC", True),
    ({"holidays": "US"}, {"holidays": "DE"}, "holidays", "US", True),
    ({"holidays": "US"}, {"holidays": None}, "holidays", None, False),  # no days off: every weekday counts
    # added where the organization has none, never replaced
    ({}, {"escalate": "@bob"}, "escalate", "@bob", False),
    ({"escalate": "@acme/security"}, {"escalate": "@mallory"}, "escalate", "@acme/security", True),
    ({}, {"ticket_pattern": "[A-Z]+-[0-9]+"}, "ticket_pattern", "[A-Z]+-[0-9]+", False),
    ({"ticket_pattern": "OPS-[0-9]+"}, {"ticket_pattern": ".*"}, "ticket_pattern", "OPS-[0-9]+", True),
    # only the organization allows overrides
    ({}, {"allow_repo_override": ["grace_seconds"]}, "allow_repo_override", (), True),
    # ... and then the repository's value is taken as it is
    ({"allow_repo_override": ["grace_seconds"]}, {"grace_seconds": 86400}, "grace_seconds", 86400, False),
    ({"allow_repo_override": ["exempt_authors"]}, {"exempt_authors": ["release-bot"]}, "exempt_authors",
     ("release-bot",), False),
    ({"allow_repo_override": ["branches"]}, {"branches": ["release/*"]}, "branches", ("release/*",), False),
])
def test_a_repository_may_only_tighten_the_policy(settings, org, repo, key, value, refused):
    cfg = layer(settings, (ORG, org), (REPO_FILE, repo))
    assert getattr(cfg, key) == value
    assert (key in cfg.refused) is refused, cfg.refused
    if refused:
        assert cfg.refused[key].endswith("stays in force")


@pytest.mark.parametrize("org, repo, sub, value, refused", [
    ({}, {"due_days": 5}, "due_days", 5, False),
    ({}, {"due_days": 20}, "due_days", 10, True),
    ({}, {"enabled": False}, "enabled", True, True),
    ({}, {"scope": "org"}, "scope", "org", False),
    ({"access_review": {"reviewers": ["@acme/security"]}}, {"reviewers": ["@mallory"]}, "reviewers",
     ("@acme/security",), True),
    ({}, {"apply_revocations": True}, "apply_revocations", False, True),
    # apply_revocations is the organization's even where it allows access_review to be overridden
    ({"allow_repo_override": ["access_review"]}, {"apply_revocations": True}, "apply_revocations", False, True),
    ({"allow_repo_override": ["access_review"]}, {"due_days": 20}, "due_days", 20, False),
    ({"access_review": {"apply_revocations": True}}, {}, "apply_revocations", True, False),
])
def test_access_review_keys_may_only_tighten(settings, org, repo, sub, value, refused):
    cfg = layer(settings, (ORG, org), (REPO_FILE, {"access_review": repo}))
    assert getattr(cfg.access_review, sub) == value
    assert (f"access_review.{sub}" in cfg.refused) is refused, cfg.refused


def test_a_repositorys_branches_add_to_the_default_and_protected_ones(settings):
    cfg = layer(settings, (ORG, {}), (REPO_FILE, {"branches": ["release/*"]}))
    assert cfg.watches_branch("main", "main", False) and cfg.watches_branch("release/2", "main", False)
    assert cfg.watches_branch("stable", "main", True) and not cfg.watches_branch("feature/x", "main", False)


def test_every_key_has_a_direction():
    from tbr.repoconfig import ACCESS_REVIEW_KEYS, ACCESS_RULES, KEYS, RULES

    assert set(RULES) == set(KEYS) and set(ACCESS_RULES) == ACCESS_REVIEW_KEYS


def test_refusals_name_the_key_and_why(settings):
    cfg = layer(settings, (ORG, {"grace_seconds": 600}), (REPO_FILE, {"grace_seconds": 86400, "checks": [],
                                                                      "sla_business_days": 1}))
    assert cfg.refused["grace_seconds"] == ("86400 is more than the organization's 600: a repository may shorten the"
                                            " grace period, not lengthen it; the organization's value (600) stays"
                                            " in force")
    assert set(cfg.refused) == {"grace_seconds", "checks"} and cfg.sla_business_days == 1  # the rest applies
    assert cfg.sources["sla_business_days"] == REPO_FILE and cfg.sources["grace_seconds"] == ORG


def test_only_known_keys_may_be_overridden():
    assert parse("allow_repo_override: [grace_seconds, access_review]\n")["allow_repo_override"] == (
        "grace_seconds", "access_review")
    with pytest.raises(InvalidConfig) as e:
        parse("allow_repo_override: [grace_period]\n")
    assert e.value.problems[0].startswith("allow_repo_override: unknown key 'grace_period'")
