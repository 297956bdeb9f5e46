"""Reverts: a merged PR that takes an unapproved change back out of production completes its follow-up.

GitHub's revert button writes `Reverts owner/repo#N` in the new PR's description and `This reverts
commit <sha>` in its commit; either names the change (classify.reverted reads them). Each judged
revert is recorded, and every follow-up is checked against the record when it is filed, so it does not
matter which of the two tbr judges first. The revert itself is judged like any other change.
"""

from __future__ import annotations

import json
from datetime import datetime

import structlog

from tbr import audit, lifecycle
from tbr.config import Settings
from tbr.store import Store, from_iso, iso

log = structlog.get_logger()


def record(store: Store, settings: Settings, row: dict, number: int | None, shas: list[str], at: datetime,
           by: str, url: str, now: datetime) -> None:
    """Record what the merged PR `row` reverts and complete those changes' open follow-ups
    (call within a write transaction)."""
    targets = ([f"pr:{number}"] if number else []) + [f"sha:{sha}" for sha in shas]
    what = f"{row['repo']}#{row['number']}"
    for target in targets:
        store.db.execute("INSERT OR IGNORE INTO reverts (revert_key, repo_id, target, at, by, url, what)"
                         " VALUES (?, ?, ?, ?, ?, ?, ?)", [row["key"], row["repo_id"], target, iso(at), by, url, what])
    # Only a change merged before the revert can be what it took back out.
    for target in store.db.query(
            "SELECT * FROM changes WHERE repo_id = ? AND key != ? AND status = 'followup' AND followup_state = 'open'"
            " AND happened_at <= ? AND ((kind = 'pr' AND number = ?) OR (sha != '' AND EXISTS"
            " (SELECT 1 FROM json_each(?) WHERE changes.sha LIKE json_each.value || '%')))",
            [row["repo_id"], row["key"], iso(at), number, json.dumps(shas)]):
        complete(store, settings, target, {"at": iso(at), "by": by, "url": url, "what": what}, now)


def complete_if_reverted(store: Store, settings: Settings, row: dict, now: datetime) -> None:
    """A follow-up just filed for a change whose revert tbr judged earlier: complete it at once
    (call within a write transaction, after the follow-up is recorded)."""
    revert = next(iter(store.db.query(
        "SELECT * FROM reverts WHERE repo_id = ? AND revert_key != ? AND at >= ? AND (target = ?"
        " OR (? != '' AND target LIKE 'sha:%' AND ? LIKE substr(target, 5) || '%')) ORDER BY at LIMIT 1",
        [row["repo_id"], row["key"], row["happened_at"], f"pr:{row['number']}" if row["kind"] == "pr" else "",
         row["sha"], row["sha"]])), None)
    if revert:
        complete(store, settings, store.change(row["key"]), revert, now)


def complete(store: Store, settings: Settings, row: dict, revert: dict, now: datetime) -> None:
    at = from_iso(revert["at"])
    lifecycle.complete(store, settings, row, at, revert["by"], "reverted",
                       f"Completed by a revert: @{revert['by']} merged [{revert['what']}]({revert['url']}),"
                       " which took this change back out of production,", now)
    store.audit("followup.reverted", audit.subject(row), revert["by"], at, change=row["key"],
                revert=revert["url"], issue=f"{row['followup_repo']}#{row['followup_number']}")
    log.info("followup.reverted", change=row["key"], revert=revert["what"])
