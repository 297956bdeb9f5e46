"""`tbr backfill`: judge the merges from before tbr was installed, so the evidence covers them too.

PRs come from GraphQL in pages of a hundred, each with its reviews, comments and commits, so a year
of a busy organisation costs a few hundred requests. Direct pushes are the commits on a production
branch that no merged PR into that branch accounts for. Each change is judged by the same classifier
as live ones and recorded once (a change tbr already knows is left alone). Without `file_issues`
an unapproved change is only recorded; with it, it is queued for the engine, which files its
follow-up as for any live change (exactly once, due two business days from filing).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog

from tbr import audit, budget, events, graphql
from tbr.classify import Actor, Decision, PushFacts, judge_pull, judge_push
from tbr.engine import Engine, policy_of
from tbr.github import RepoInfo
from tbr.store import iso

log = structlog.get_logger("tbr.backfill")


@dataclass
class Result:
    since: datetime
    repos: int = 0
    pulls: int = 0
    pushes: int = 0
    approved: int = 0
    unapproved: int = 0
    queued: int = 0     # unapproved, handed to the engine to file a follow-up
    known: int = 0      # recorded before (live, by a sweep, or an earlier backfill)
    requests: int = 0
    paused: str | None = None  # stopped under GitHub's rate-limit reserve: run it again after the renewal

    def line(self) -> str:
        return (f"{self.repos} repositories, {self.pulls} merged PRs and {self.pushes} direct pushes judged:"
                f" {self.approved} approved, {self.unapproved} unapproved"
                + (f" ({self.queued} queued for a follow-up)" if self.queued else "")
                + f"; {self.known} already known; {self.requests} API requests"
                + (f"; stopped: {self.paused} (run it again later: what is recorded stays)" if self.paused else ""))


def backfill(engine: Engine, since: datetime, repo: str | None = None, file_issues: bool = False,
             progress: Callable[[Result, str], None] = lambda result, where: None) -> Result:
    gw = engine.gateway
    result = Result(since)
    spent = gw.requests
    if repo:
        inst = gw.installation_for(repo)
        targets = [(inst, gw.repo(inst, repo))]
    else:
        targets = [(inst, r) for inst in gw.installations() for r in gw.installation_repos(inst)
                   if not r.archived and engine.settings.watches_repo(r.full_name)]

    def tick(where: str) -> None:
        result.requests = gw.requests - spent
        progress(result, where)

    for inst, info in targets:
        if not budget.may_run(engine, "backfill"):  # the work that matters keeps GitHub's reserve
            result.paused = next(p["reason"] for p in engine.store.pauses(engine.clock()) if p["work"] == "backfill")
            break
        _repo(engine, inst, info, result, file_issues, tick)
        result.repos += 1
    tick("done")
    engine.store.audit("backfill.finished", repo or "", "tbr", engine.clock(), since=iso(since),
                       repos=result.repos, pulls=result.pulls, pushes=result.pushes, approved=result.approved,
                       unapproved=result.unapproved, queued=result.queued, known=result.known,
                       requests=result.requests, errors=[])
    log.info("backfill.done", since=iso(since), repos=result.repos, pulls=result.pulls, pushes=result.pushes,
             approved=result.approved, unapproved=result.unapproved, requests=result.requests)
    return result


def _repo(engine: Engine, inst: int, info: RepoInfo, result: Result, file_issues: bool,
          tick: Callable[[str], None]) -> None:
    gw = engine.gateway
    cfg = engine.config(inst, info.full_name)
    policy, grace = policy_of(cfg), timedelta(seconds=cfg.grace_seconds)
    watched: dict[str, bool] = {}

    def is_watched(branch: str) -> bool:
        if branch not in watched:
            watched[branch] = engine.branch_unwatched(inst, info.full_name, cfg, branch, info.default_branch) is None
        return watched[branch]

    is_watched(info.default_branch)
    for _, node in gw.merged_pull_nodes(inst, info.full_name, result.since):
        if not is_watched(node["baseRefName"]):
            continue
        facts = graphql.pull_facts(info.full_name, node)
        cutoff = facts.merged_at + grace
        decision = judge_pull(engine.with_access(inst, facts, policy, cutoff), policy, cutoff)
        sha = (node["mergeCommit"] or {}).get("oid", "")
        row = _row(engine, inst, info, "pr", events.pr_key(info.id, facts.number), node["baseRefName"], sha,
                   facts.merged_by.login if facts.merged_by else "", facts.merged_at,
                   {"title": facts.title, "url": facts.url, "author": facts.author.login}, facts.number)
        _record(engine, row, [sha], decision, result, file_issues)
        result.pulls += 1
        tick(info.full_name)
    for branch in sorted(b for b, on in watched.items() if on):
        for c in gw.branch_history(inst, info.full_name, branch, result.since):
            if any(base == branch for _, base in c["pulls"]):
                continue  # delivered by a merged PR, judged on its own
            key = events.push_key(info.id, branch, c["sha"])
            if engine.store.commit_owners(info.id, [c["sha"]]).get(c["sha"], key) != key:
                result.known += 1  # part of a change tbr knows already (a live push of several commits)
                continue
            commit = {"sha": c["sha"], "url": c["url"], "message": c["message"], "author": c["author"]}
            pusher = Actor(c["author"] or "unknown")
            decision = judge_push(PushFacts(info.full_name, branch, pusher, c["at"], False, (commit,), c["url"]),
                                  policy)
            row = _row(engine, inst, info, "push", key, branch, c["sha"],
                       pusher.login, c["at"], {"before": "", "forced": False, "compare": "", "found_by": "backfill",
                                               "commits": [commit]})
            _record(engine, row, [c["sha"]], decision, result, file_issues)
            result.pushes += 1
        tick(f"{info.full_name}:{branch}")


def _row(engine: Engine, inst: int, info: RepoInfo, kind: str, key: str, branch: str, sha: str, actor: str,
         at: datetime, facts: dict, number: int | None = None) -> dict:
    now = iso(engine.clock())
    return {"key": key, "kind": kind, "repo": info.full_name, "repo_id": info.id, "installation_id": inst,
            "branch": branch, "number": number, "sha": sha, "actor": actor, "happened_at": iso(at),
            "facts": json.dumps(facts), "source": "backfill", "first_seen_at": now, "next_attempt_at": now}


def _record(engine: Engine, row: dict, shas: list[str], decision: Decision, result: Result, file_issues: bool) -> None:
    """Record a judged change once. Approved, or unapproved without filing: judged here. Unapproved
    with filing: left pending for the engine, which files the follow-up."""
    store = engine.store
    with store.write():
        known = store.change(row["key"])
        if known is not None:
            result.known += 1
            if file_issues and known["status"] == "unapproved":  # recorded by an earlier backfill: file it now
                store.update_change(row["key"], status="pending", next_attempt_at=row["next_attempt_at"])
                result.queued += 1
            return
        if decision.approved:
            result.approved += 1
        else:
            result.unapproved += 1
        if file_issues and not decision.approved:
            store.add_change(row, shas)
            result.queued += 1
            return
        status = "approved" if decision.approved else "unapproved"
        store.add_change({**row, "status": status, "decision": json.dumps(decision.to_dict()),
                          "judged_at": row["first_seen_at"]}, shas)
        audit.judged(store, row, status, decision, engine.clock())
