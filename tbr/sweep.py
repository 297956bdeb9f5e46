"""The reconciliation sweep: find what the webhooks missed, since GitHub never retries a delivery.

It costs what happened, not what exists. The installation's repository list (a hundred to a request)
carries each repository's `pushed_at`; one that has not moved since the last sweep costs nothing
more. For the others, GitHub's activity log lists every push, force push and merge with its actor and
GitHub's own time of receipt (a commit's date is whatever its committer wrote, so a backdated commit
is found too). A ref update whose head tbr already knows was delivered; for the rest, one GraphQL
query per thirty pushes says which commits each brought (back to where the branch was, or, after a
force push, to where the histories meet) and which merged PRs GitHub associates with it, and each is
recorded as a change to be judged like any other. The sweep also asks GitHub for the App's failed
deliveries and requests their redelivery, and looks again at open follow-ups with conditional
requests, which cost nothing while an issue is unchanged. Each sweep is recorded, so coverage can be
shown later; a sweep paused for GitHub's rate limit leaves unswept repositories for the next one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog

from tbr import budget, events, lifecycle
from tbr.engine import Engine
from tbr.github import GitHubError, GitHubUnavailable, RepoInfo
from tbr.store import from_iso, iso

log = structlog.get_logger("tbr.sweep")

OVERLAP = timedelta(hours=1)
FIRST_LOOKBACK = timedelta(days=3)  # as far back as GitHub keeps failed deliveries
NO_COMMIT = "0" * 40


@dataclass
class SweepResult:
    since: datetime
    repos_checked: int = 0
    changes_found: int = 0
    redeliveries: int = 0
    errors: int = 0
    repos_active: int = 0  # repositories pushed to since the last sweep: the ones it asked about
    paused: str | None = None


def default_since(engine: Engine, now: datetime) -> datetime:
    row = engine.store.db.execute(
        "SELECT max(started_at) FROM sweeps WHERE finished_at IS NOT NULL AND error IS NULL").fetchone()
    return datetime.fromisoformat(row[0]) - OVERLAP if row and row[0] else now - FIRST_LOOKBACK


class Paused(Exception):
    """GitHub's budget is under the reserve, or GitHub asked tbr to back off."""


def sweep(engine: Engine, since: datetime | None = None) -> SweepResult:
    store, gw, settings = engine.store, engine.gateway, engine.settings
    started = engine.clock()
    result = SweepResult(since or default_since(engine, started))
    sweep_id = store.db.execute("INSERT INTO sweeps (started_at, since) VALUES (?, ?)",
                                [iso(started), iso(result.since)]).lastrowid
    problems = []
    try:
        if not budget.may_run(engine, "sweep"):
            raise Paused()
        swept = store.swept_pushed_at()
        for inst in gw.installations():
            repos = [r for r in gw.installation_repos(inst)
                     if not r.archived and settings.watches_repo(r.full_name)]
            _sweep_installation(engine, inst, repos, swept, result, problems)
        result.redeliveries = _redeliver(engine, max(result.since, started - FIRST_LOOKBACK))
        _reconcile_followups(engine)
        store.prune_payloads(started - timedelta(days=settings.payload_days))
    except Paused:
        result.paused = next((p["reason"] for p in store.pauses(engine.clock()) if p["work"] == "sweep"), "paused")
        problems.append(f"paused: {result.paused}")
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
    log.info("sweep.done", since=iso(result.since), repos=result.repos_checked, active=result.repos_active,
             found=result.changes_found, redeliveries=result.redeliveries, errors=result.errors)
    return result


def _sweep_installation(engine: Engine, inst: int, repos: list[RepoInfo], swept: dict[int, str],
                        result: SweepResult, problems: list[str]) -> None:
    store, gw, now = engine.store, engine.gateway, engine.clock()
    quiet, active = [], []
    for repo in repos:
        last = swept.get(repo.id)
        if repo.pushed_at is None or (iso(repo.pushed_at) == last if last else repo.pushed_at < result.since):
            quiet.append(repo)  # nothing pushed since the last look: nothing to ask
        else:
            active.append(repo)
    pushes, asked = [], []
    for repo in active:
        if not budget.may_run(engine, "sweep"):
            raise Paused()
        last = swept.get(repo.id)
        try:
            since = min(from_iso(last) - OVERLAP, result.since) if last else result.since
            pushes += _unseen_pushes(engine, inst, repo, since)
            asked.append(repo)
        except GitHubUnavailable as e:
            if budget.backed_off(engine, "sweep", e):
                raise Paused() from e
            problems.append(f"{repo.full_name}: {e}")
            log.warning("sweep.repo_failed", repo=repo.full_name, error=str(e))
        except Exception as e:  # one repo's failure must not hide the others
            problems.append(f"{repo.full_name}: {e}")
            log.warning("sweep.repo_failed", repo=repo.full_name, error=str(e))
    failed = set()
    if pushes:
        try:
            details = gw.pushed_commits(inst, pushes)
        except GitHubUnavailable as e:
            if budget.backed_off(engine, "sweep", e):
                raise Paused() from e
            raise
        for push in details:
            try:
                result.changes_found += _record(engine, inst, push)
            except Exception as e:
                failed.add(push["repo_id"])
                problems.append(f"{push['repo']}: {e}")
                log.warning("sweep.repo_failed", repo=push["repo"], error=str(e))
    done = quiet + [r for r in asked if r.id not in failed]
    with store.write():
        for repo in done:
            if repo.pushed_at and swept.get(repo.id) != iso(repo.pushed_at):
                store.set_swept(repo.id, repo.full_name, repo.pushed_at, now)
    result.repos_active += len(active)
    result.repos_checked += len(done)


def _unseen_pushes(engine: Engine, inst: int, repo: RepoInfo, since: datetime) -> list[dict]:
    """The ref updates of watched branches since `since` whose head tbr has not seen."""
    store, gw = engine.store, engine.gateway
    updates = [a for a in gw.activity(inst, repo.full_name, since)
               if a["ref"].startswith("refs/heads/") and a["after"] != NO_COMMIT]
    known = store.known_commits(repo.id, [a["after"] for a in updates]) | store.pending_push_shas(repo.full_name)
    unseen = list({a["after"]: a for a in reversed(updates) if a["after"] not in known}.values())
    if any(a["branch"] == repo.default_branch for a in unseen):
        engine.configs.refresh(inst, repo.full_name)  # in case one of them changed it
    cfg = engine.config(inst, repo.full_name)
    verdicts: dict[str, str | None] = {}
    out = []
    for a in unseen:
        if a["branch"] not in verdicts:
            verdicts[a["branch"]] = engine.branch_unwatched(inst, repo.full_name, cfg, a["branch"],
                                                            repo.default_branch)
        if verdicts[a["branch"]] is None:
            out.append({**a, "repo": repo.full_name, "repo_id": repo.id, "default_branch": repo.default_branch})
    return out


def _record(engine: Engine, inst: int, push: dict) -> int:
    """Record the PRs and the commits of one ref update the webhooks missed; returns how many changes."""
    store, now = engine.store, engine.clock()
    repo, repo_id, branch = push["repo"], push["repo_id"], push["branch"]
    found = 0
    for pr in push["pulls"]:
        if pr["base"] != branch:
            continue
        ref = events.ChangeRef(
            key=events.pr_key(repo_id, pr["number"]), kind="pr", repo=repo, repo_id=repo_id,
            installation_id=inst, branch=branch, default_branch=push["default_branch"], sha="", actor="",
            happened_at=pr["merged_at"] or push["at"], number=pr["number"],
            facts={"title": pr["title"], "url": pr["url"], "author": pr["author"]})
        if store.change(ref.key) is None and store.add_change(engine.change_row(ref, "sweep", now), []):
            found += 1
            log.info("sweep.found_pull", change=ref.key, repo=repo)
    known = store.known_commits(repo_id, [c["sha"] for c in push["commits"]]) | store.pending_push_shas(repo)
    unseen = [c for c in push["commits"] if c["sha"] not in known]
    if not unseen:
        return found
    forced = push["type"] == "force_push" or bool(push["dropped"])
    # One change for the commits the webhooks missed, keyed by the newest, as its push would be; dated
    # when GitHub received the push, and by whom, as GitHub's activity log says.
    head = unseen[0]
    ref = events.ChangeRef(
        key=events.push_key(repo_id, branch, head["sha"]), kind="push", repo=repo, repo_id=repo_id,
        installation_id=inst, branch=branch, default_branch=push["default_branch"], sha=head["sha"],
        actor=push["actor"] or head["author"] or "", happened_at=push["at"] or now,
        facts={"before": push["before"] if push["before"] != NO_COMMIT else "", "forced": forced,
               "rewrote": len(push["dropped"]) if forced else 0, "compare": "", "found_by": "sweep",
               "commits": [{k: c[k] for k in ("sha", "url", "message", "author")} for c in reversed(unseen)]})
    if store.add_change(engine.change_row(ref, "sweep", now), [c["sha"] for c in unseen]):
        found += 1
        log.info("sweep.found_commits", change=ref.key, repo=repo, commits=len(unseen), forced=forced)
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
    """A follow-up closed while its webhook was lost would be nagged forever: look at each open one,
    conditionally, so an issue unchanged since the last look costs nothing."""
    store, gw = engine.store, engine.gateway
    for row in store.open_followups():
        repo, number = row["followup_repo"], row["followup_number"]
        url = f"repos/{repo}/issues/{number}"
        seen = store.etag(url)
        try:
            # In the change's own repository (no tracking repository), its installation is known.
            inst = row["installation_id"] if row["installation_id"] and repo.lower() == row["repo"].lower() \
                else gw.installation_for(repo)
            etag, issue = gw.if_changed(inst, url, seen[0] if seen else None)
        except GitHubError as e:
            if e.status in (404, 410):  # deleted, or moved where tbr cannot see it
                with store.write():
                    store.update_change(row["key"], followup_state="deleted")
                log.warning("sweep.followup_missing", change=row["key"], issue=f"{repo}#{number}")
            continue
        if issue is None:
            continue  # unchanged since the last look
        if etag:
            with store.write():
                store.set_etag(url, etag, {"state": issue["state"]}, engine.clock())
        if issue["state"] != "closed":
            continue
        closer = issue.get("closed_by")
        ev = events.IssueEvent(repo, number, "closed", closer["login"] if closer else "ghost",
                               closer.get("type", "User") if closer else "User",
                               from_iso(issue["closed_at"]) if issue.get("closed_at") else engine.clock(),
                               issue.get("state_reason"))
        unauthorized = engine.signoff_refusal(row, ev)
        with store.write():
            outcome = lifecycle.apply_issue_event(store, engine.settings, row, ev, engine.clock(), unauthorized)
        log.info("sweep.followup_closed", change=row["key"], issue=f"{repo}#{number}", outcome=outcome)
