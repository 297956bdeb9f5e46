"""The reconciliation sweep: find what the webhooks missed, since GitHub never retries a delivery.

For every watched repository it lists the PRs merged and the commits that reached watched branches
since the last sweep (with an overlap), and records whatever tbr has not seen as a change, to be
judged like any other. It also asks GitHub for the App's failed deliveries and requests their
redelivery. Each sweep is recorded, so coverage can be shown later.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog

from tbr import events, lifecycle
from tbr.engine import Engine
from tbr.github import GitHubError
from tbr.store import iso

log = structlog.get_logger("tbr.sweep")

OVERLAP = timedelta(hours=1)
FIRST_LOOKBACK = timedelta(days=3)  # as far back as GitHub keeps failed deliveries


@dataclass
class SweepResult:
    since: datetime
    repos_checked: int = 0
    changes_found: int = 0
    redeliveries: int = 0
    errors: int = 0


def default_since(engine: Engine, now: datetime) -> datetime:
    row = engine.store.db.execute(
        "SELECT max(started_at) FROM sweeps WHERE finished_at IS NOT NULL AND error IS NULL").fetchone()
    return datetime.fromisoformat(row[0]) - OVERLAP if row and row[0] else now - FIRST_LOOKBACK


def sweep(engine: Engine, since: datetime | None = None) -> SweepResult:
    store, gw, settings = engine.store, engine.gateway, engine.settings
    started = engine.clock()
    result = SweepResult(since or default_since(engine, started))
    sweep_id = store.db.execute("INSERT INTO sweeps (started_at, since) VALUES (?, ?)",
                                [iso(started), iso(result.since)]).lastrowid
    problems = []
    try:
        for inst in gw.installations():
            for repo in gw.installation_repos(inst):
                if repo.archived or not settings.watches_repo(repo.full_name):
                    continue
                try:
                    result.changes_found += _sweep_repo(engine, inst, repo, result.since)
                    result.repos_checked += 1
                except Exception as e:  # one repo's failure must not hide the others
                    problems.append(f"{repo.full_name}: {e}")
                    log.warning("sweep.repo_failed", repo=repo.full_name, error=str(e))
        result.redeliveries = _redeliver(engine, max(result.since, started - FIRST_LOOKBACK))
        _reconcile_followups(engine)
        store.prune_payloads(started - timedelta(days=settings.payload_days))
    except Exception as e:
        problems.append(str(e))
        log.warning("sweep.failed", error=str(e))
    result.errors = len(problems)
    with store.write():
        store.db.execute(
            "UPDATE sweeps SET finished_at = ?, repos_checked = ?, changes_found = ?, redeliveries = ?, error = ?"
            " WHERE id = ?",
            [iso(engine.clock()), result.repos_checked, result.changes_found, result.redeliveries,
             "; ".join(problems)[:2000] or None, sweep_id])
        store.audit("sweep.finished", "", "tbr", engine.clock(), since=iso(result.since), started=iso(started),
                    repos_checked=result.repos_checked, changes_found=result.changes_found,
                    redeliveries=result.redeliveries, errors=problems)
    log.info("sweep.done", since=iso(result.since), repos=result.repos_checked, found=result.changes_found,
             redeliveries=result.redeliveries, errors=result.errors)
    return result


def _sweep_repo(engine: Engine, inst: int, repo, since: datetime) -> int:
    store, gw = engine.store, engine.gateway
    now = engine.clock()
    found = 0
    engine.configs.refresh(inst, repo.full_name)  # in case a push that changed it went unseen
    cfg = engine.config(inst, repo.full_name)
    watched = set()
    if cfg.branches is not None:
        watched = {b for b in gw.branch_names(inst, repo.full_name, protected_only=False)
                   if cfg.watches_branch(b, repo.default_branch, False)}
    if not cfg.only_listed_branches:  # the default and protected branches (a repository's branches add to them)
        watched |= {repo.default_branch, *gw.branch_names(inst, repo.full_name, protected_only=True)}
    for pr in gw.merged_pulls_since(inst, repo.full_name, since):
        if pr["base"] not in watched:
            if cfg.only_listed_branches or not gw.branch_protection(inst, repo.full_name, pr["base"]):
                continue
            watched.add(pr["base"])  # protected by a ruleset: sweep its commits too
        ref = events.ChangeRef(
            key=events.pr_key(repo.id, pr["number"]), kind="pr", repo=repo.full_name, repo_id=repo.id,
            installation_id=inst, branch=pr["base"], default_branch=repo.default_branch, sha="", actor="",
            happened_at=pr["merged_at"], number=pr["number"],
            facts={"title": pr["title"], "url": pr["url"], "author": pr["author"]})
        if store.change(ref.key) is None and store.add_change(engine.change_row(ref, "sweep", now), []):
            found += 1
            log.info("sweep.found_pull", change=ref.key, repo=repo.full_name)
    for branch in sorted(watched):
        commits = gw.commits_since(inst, repo.full_name, branch, since)
        known = store.known_commits(repo.id, [c["sha"] for c in commits]) | store.pending_push_shas(repo.full_name)
        unseen = [c for c in commits if c["sha"] not in known]
        if not unseen:
            continue
        # One change for the commits the webhooks missed; keyed by the newest, as its push would be.
        head = unseen[0]
        ref = events.ChangeRef(
            key=events.push_key(repo.id, branch, head["sha"]), kind="push", repo=repo.full_name, repo_id=repo.id,
            installation_id=inst, branch=branch, default_branch=repo.default_branch, sha=head["sha"],
            actor=head["author"] or "", happened_at=head["at"] or now,
            facts={"before": "", "forced": False, "compare": "", "found_by": "sweep",
                   "commits": [{k: c[k] for k in ("sha", "url", "message", "author")} for c in reversed(unseen)]})
        if store.add_change(engine.change_row(ref, "sweep", now), [c["sha"] for c in unseen]):
            found += 1
            log.info("sweep.found_commits", change=ref.key, repo=repo.full_name, commits=len(unseen))
    return found


def _redeliver(engine: Engine, since: datetime) -> int:
    """Ask GitHub to resend each failed delivery tbr never stored, once."""
    store, gw = engine.store, engine.gateway
    deliveries = gw.failed_deliveries(since)
    delivered = {d["guid"] for d in deliveries if d["ok"]}
    requested = 0
    for d in deliveries:
        if d["ok"] or d["guid"] in delivered or store.delivery(d["guid"]):
            continue
        if store.db.execute("SELECT 1 FROM redeliveries WHERE guid = ?", [d["guid"]]).fetchone():
            continue
        gw.redeliver(d["id"])
        with store.write():
            store.db.execute("INSERT OR IGNORE INTO redeliveries (guid, delivery_id, requested_at) VALUES (?, ?, ?)",
                             [d["guid"], d["id"], iso(engine.clock())])
            store.audit("delivery.redelivery_requested", "", "tbr", engine.clock(), delivery=d["guid"],
                        event=d["event"], failed_at=iso(d["delivered_at"]))
        requested += 1
        log.info("sweep.redelivery_requested", delivery=d["guid"], event_name=d["event"])
    return requested


def _reconcile_followups(engine: Engine) -> None:
    """A follow-up closed while its webhook was lost would be nagged forever: look at each open one."""
    store, gw = engine.store, engine.gateway
    for row in store.open_followups():
        repo, number = row["followup_repo"], row["followup_number"]
        try:
            issue = gw.issue(gw.installation_for(repo), repo, number)
        except GitHubError as e:
            if e.status in (404, 410):  # deleted, or moved where tbr cannot see it
                with store.write():
                    store.update_change(row["key"], followup_state="deleted")
                log.warning("sweep.followup_missing", change=row["key"], issue=f"{repo}#{number}")
            continue
        if issue["state"] != "closed":
            continue
        closer = issue["closed_by"]
        ev = events.IssueEvent(repo, number, "closed", closer.login if closer else "ghost",
                               closer.type if closer else "User", issue["closed_at"] or engine.clock(),
                               issue["state_reason"])
        unauthorized = engine.signoff_refusal(row, ev)
        with store.write():
            outcome = lifecycle.apply_issue_event(store, engine.settings, row, ev, engine.clock(), unauthorized)
        log.info("sweep.followup_closed", change=row["key"], issue=f"{repo}#{number}", outcome=outcome)
