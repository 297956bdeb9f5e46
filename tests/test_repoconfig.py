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
