"""Branch protection of production, as a control: does the branch require a pull request, and block
force pushes and deletion? Pure; the facts come from GitHub's classic protection and rulesets.
"""

from __future__ import annotations

from dataclasses import dataclass

CONTROLS = (
    ("require_pr", "Changes go through a pull request"),
    ("block_force_push", "Force pushes are blocked"),
    ("block_deletion", "The branch cannot be deleted"),
)


@dataclass(frozen=True)
class Protection:
    """What protects one branch. `how` says, per control, which mechanism enforces it (or nothing)."""

    branch: str
    how: dict  # control -> "classic protection" | "ruleset" | None

    def state(self) -> dict[str, bool]:
        return {name: bool(self.how.get(name)) for name, _ in CONTROLS}


def protection(branch: str, classic: dict | None, rule_types: set[str]) -> Protection:
    """Combine classic protection (None when the branch has none) with the active ruleset rules."""
    how = {}
    if classic is not None and classic.get("required_pull_request_reviews"):
        how["require_pr"] = "classic protection"
    elif "pull_request" in rule_types:
        how["require_pr"] = "ruleset"
    if classic is not None and not classic.get("allow_force_pushes"):
        how["block_force_push"] = "classic protection"
    elif "non_fast_forward" in rule_types:
        how["block_force_push"] = "ruleset"
    if classic is not None and not classic.get("allow_deletions"):
        how["block_deletion"] = "classic protection"
    elif "deletion" in rule_types:
        how["block_deletion"] = "ruleset"
    return Protection(branch, how)


def check_status(p: Protection) -> tuple[str, str, str]:
    """The `tbr/controls` check run: a table with one row per control."""
    rows = "\n".join(f"| {label} | {'✅ ' + p.how[name] if p.how.get(name) else '❌ not enforced'} |"
                     for name, label in CONTROLS)
    missing = [label for name, label in CONTROLS if not p.how.get(name)]
    table = f"Branch `{p.branch}`\n\n| control | status |\n|---|---|\n{rows}\n"
    if missing:
        return "failure", f"{len(missing)} of {len(CONTROLS)} branch controls not enforced on {p.branch}", table
    return "success", f"{p.branch} requires pull requests and blocks force pushes and deletion", table


def weakened(before: dict[str, bool] | None, after: dict[str, bool]) -> list[str]:
    """The controls that were enforced and no longer are (nothing on a first look)."""
    if before is None:
        return []
    return [label for name, label in CONTROLS if before.get(name) and not after.get(name)]
