"""The work: turn stored deliveries into changes, and judge each change once its grace period ends.

Every step reads its input from the database and writes its result back in one transaction, so a
crash or restart at any point leaves work pending, never lost; leases keep two workers (or two
processes) from doing the same item at once. Failures keep the item pending with a backoff.
"""

from __future__ import annotations

import dataclasses
import json
import os
import socket
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta, timezone

import structlog

from tbr import accesscontrols, anchors, audit, checks, controls, events, lifecycle, reverts, sla
from tbr.classify import (WRITE_ROLES, Actor, Decision, Policy, PullFacts, PushFacts, judge_pull, judge_push,
                          permissions_needed, reverted, separation)
from tbr.config import Settings
from tbr.configstore import RepoConfigs, check_status, touches_config
from tbr.repoconfig import RepoConfig
from tbr.followups import Change, Filer, marker
from tbr.github import Gateway, GitHubError, GitHubUnavailable
from tbr.store import LABELS, Store, from_iso, iso

log = structlog.get_logger("tbr.engine")

MAX_BACKOFF = timedelta(hours=1)
PERMISSION_TTL = timedelta(days=1)  # how long GitHub's word on someone's repository role is reused


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def backoff(attempts: int) -> timedelta:
    """30 s, 1 min, 2 min, ... capped at an hour: an outage delays work, it never drops it."""
    return min(timedelta(seconds=30 * 2 ** attempts), MAX_BACKOFF)


def process_start(pid: int) -> str:
    """When process `pid` started, in clock ticks since boot (Linux); "" when it is not running (or a
    zombie: killed, not yet reaped) or this cannot be known. With the pid it names one process for
    good: a pid is reused, a pid and start time never are."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return ""
    return "" if fields[0] in ("Z", "X") else fields[19]


def owner_dead(owner: str) -> bool:
    """Whether a lease owner is a process on this machine that no longer runs (killed, say)."""
    host, pid, started, _ = (owner.split(":") + ["", "", "", ""])[:4]
    return host == socket.gethostname() and pid.isdigit() and started != "" and process_start(int(pid)) != started


def policy_of(cfg: RepoConfig) -> Policy:
    return Policy(cfg.approval_phrases, cfg.exempt_authors, cfg.require_fresh_approval,
                  independent_approvals="separation-of-duties" in cfg.checks, ticket_pattern=cfg.ticket_pattern)


class Engine:
    def __init__(self, settings: Settings, store: Store, gateway: Gateway,
                 clock: Callable[[], datetime] = utcnow):
        self.settings = settings
        self.store = store
        self.gateway = gateway
        self.clock = clock
        self.filer = Filer(gateway, store)
        self.configs = RepoConfigs(settings, store, gateway, clock)
        self.check_runs = checks.CheckRuns(store, gateway)
        # The deployment's own clock, for what is not one repository's: the digest, its schedule.
        self.tz = settings.tz
        self.holidays = sla.holiday_calendar(settings.holidays)
        # Told (table, key) as an attempt starts and (None, None) as it ends: the worker process reports
        # this to its supervisor, which enforces the time budget.
        self.attempting: Callable[[str | None, str | None], None] = lambda table, ident: None
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{process_start(os.getpid())}:{uuid.uuid4().hex[:8]}"

    # the loop body ----------------------------------------------------------------------------

    def release_dead_leases(self) -> int:
        """Work a killed process on this machine held is free again now, not when its lease runs out;
        an item that has failed too often by now (it may be what killed it) is quarantined instead."""
        released, quarantined = self.store.release_leases(owner_dead, self.clock(), self.settings.quarantine_after)
        if released:
            log.warning("leases.released", items=released, reason="their process is gone")
        for ident in quarantined:
            log.error("work.quarantined", item=ident, reason="its process is gone", hint=f"tbr retry {ident}")
        return released

    def run_due(self) -> int:
        """Process every delivery and change that is due now; returns how many were handled."""
        handled = 0
        for table, work in (("deliveries", self._process_delivery), ("changes", self._judge_change),
                            ("actions", self._do_action)):
            for ident in self.store.due(table, self.clock()):
                if self._claim(table, ident):
                    self._guarded(table, ident, work)
                    handled += 1
        return handled

    def _claim(self, table: str, ident: str) -> bool:
        """Count the attempt as it starts; an item whose lease ran out after its last allowed failure is
        quarantined here rather than tried once more."""
        now = self.clock()
        if self.store.quarantine_spent(table, ident, self.settings.quarantine_after, now):
            log.error("work.quarantined", item=ident, reason="its last attempt never finished", hint=f"tbr retry {ident}")
            return False
        return self.store.claim(table, ident, self.owner, now, lambda attempts: now + backoff(attempts))

    def _guarded(self, table: str, ident: str, work: Callable[[str], None]) -> None:
        label = LABELS[table]
        bound = log.bind(**{label: ident})
        self.attempting(table, ident)
        try:
            work(ident)
        except Exception as e:  # whatever went wrong, the item stays pending and is tried again
            at = self.clock() + backoff(self.store.attempts(table, ident) - 1)
            unavailable = isinstance(e, GitHubUnavailable)
            if unavailable and e.retry_after:
                at = max(at, self.clock() + e.retry_after)
            error = f"{type(e).__name__}: {e}"
            # GitHub being unavailable delays work without counting against it: an outage never quarantines.
            attempts, failures = self.store.retry_later(table, ident, error, at, failed=not unavailable)
            if failures >= self.settings.quarantine_after:
                self.store.quarantine(table, ident, f"failed {failures} times; the last: {error}", self.clock())
                bound.error(f"{label}.quarantined", error=str(e), attempts=attempts, hint=f"tbr retry {ident}")
                return
            method = bound.warning if isinstance(e, (GitHubUnavailable, GitHubError)) else bound.exception
            method(f"{label}.retry_later", error=str(e), attempts=attempts, retry_at=iso(at))
        finally:
            self.attempting(None, None)

    # deliveries -------------------------------------------------------------------------------

    def _process_delivery(self, guid: str) -> None:
        row = self.store.delivery(guid)
        bound = log.bind(delivery=guid, event=row["event"], action=row["action"], repo=row["repo"])
        payload, received = json.loads(row["payload"]), from_iso(row["received_at"])
        try:
            refs = events.extract(row["event"], payload, received)
            issue_event = events.issue_event(row["event"], payload, received)
        except (events.MalformedPayload, ValueError) as e:
            # The receiver checks the same fields before storing, so this is a stored row gone bad.
            self.store.finish_delivery(guid, f"malformed: {e}", self.clock())
            bound.error("delivery.malformed", error=str(e))
            return
        if issue_event:
            self._on_issue_event(guid, issue_event, bound)
            return
        activity = events.pull_activity(row["event"], payload)
        if activity:
            self._on_pull_activity(guid, activity)
            return
        removed = events.member_removed(row["event"], payload, received)
        if removed:
            with self.store.write():
                self.store.add_action(f"offboard:{removed.org}:{removed.login}:{guid}", "offboarding", removed.org, 0,
                                      self.clock(), login=removed.login, actor=removed.actor)
                self.store.finish_delivery(guid, f"offboarding check of @{removed.login} queued", self.clock())
            return
        trigger = events.controls_trigger(row["event"], payload, received)
        if trigger and trigger.org_wide:
            if trigger.installation_id is None:
                self.store.finish_delivery(guid, "ignored: an organization's ruleset, without its installation",
                                           self.clock())
                return
            repos = [r.full_name for r in self.gateway.installation_repos(trigger.installation_id) if not r.archived]
            trigger = dataclasses.replace(trigger, repos=tuple(repos))
        if trigger:
            with self.store.write():
                queued = self.queue_controls(trigger.repos, trigger.installation_id, guid, trigger.actor,
                                             trigger.what, trigger.at)
                self.store.finish_delivery(guid, f"controls of {queued} repositories queued", self.clock())
            return
        if row["event"] == "push" and refs and refs[0].branch == refs[0].default_branch \
                and touches_config(payload["commits"]):
            self._reload_config(refs[0])
        watched, outcomes = [], []
        for ref in refs:
            reason = self._unwatched_reason(ref)
            if reason:
                outcomes.append(reason)
            else:
                watched.append(ref)
        now = self.clock()
        rows = [self.change_row(ref, source=guid, now=now) for ref in watched]  # may ask GitHub: not under the lock
        with self.store.write():
            for ref, change_row in zip(watched, rows):
                added = self.store.add_change(change_row, self._shas(ref))
                outcomes.append(f"{'recorded' if added else 'already known'}: {ref.key}")
                bound.info("change.recorded" if added else "change.duplicate", change=ref.key,
                           repo=ref.repo, judge_at=self.store.change(ref.key)["next_attempt_at"])
            self.store.finish_delivery(guid, "; ".join(outcomes) or "nothing to judge", now)

    def _on_issue_event(self, guid: str, ev: events.IssueEvent, bound) -> None:
        """A close, reopen, comment or deletion on an issue: if it is a follow-up, act on it."""
        # Who may sign off or decide is GitHub's to say: asked before the transaction, not under its lock.
        row = self.store.followup_for_issue(ev.repo, ev.number)
        review = None if row else accesscontrols.review_for_issue(self.store, ev.repo, ev.number)
        unauthorized = self.signoff_refusal(row, ev) if row else None
        refusal = accesscontrols.decider_refusal(self, review, ev) if review else None
        now = self.clock()
        with self.store.write():
            row = self.store.followup_for_issue(ev.repo, ev.number)
            review = None if row else accesscontrols.review_for_issue(self.store, ev.repo, ev.number)
            if review:
                outcome = accesscontrols.apply_event(self.store, review, ev, now, refusal)
                bound.info("access_review.event", review=review["key"], action=ev.action, actor=ev.actor,
                           outcome=outcome)
            elif row is None:
                outcome = "not a tbr follow-up"
            else:
                outcome = lifecycle.apply_issue_event(self.store, self.settings, row, ev, now, unauthorized)
                bound.info("followup.event", change=row["key"], issue=f"{ev.repo}#{ev.number}", action=ev.action,
                           actor=ev.actor, outcome=outcome)
            self.store.finish_delivery(guid, outcome, now)

    def _on_pull_activity(self, guid: str, act: events.PullActivity) -> None:
        """An open PR changed: queue a fresh look at its review status (done as an action, so a
        failing check-run API never holds up the delivery)."""
        now = self.clock()
        with self.store.write():
            outcome = "repository not watched"
            if self.settings.watches_repo(act.repo):
                self.store.add_action(f"review:{act.repo_id}:{act.number}:{guid}", "review_pull", act.repo,
                                      act.number, now, None, installation_id=act.installation_id,
                                      default_branch=act.default_branch)
                outcome = f"review status of {act.repo}#{act.number} queued"
            self.store.finish_delivery(guid, outcome, now)

    def queue_controls(self, repos, installation_id: int | None, trigger: str, actor: str, what: str,
                       at: datetime, seen: dict[str, dict] | None = None) -> int:
        """Queue a look at each repository's branch controls (call within a write transaction). `seen`:
        per repository, what the daily check already read (branch, head, classic, rules), not asked again."""
        queued = 0
        for repo in repos:
            if self.settings.watches_repo(repo):
                queued += self.store.add_action(f"controls:{repo}:{trigger}", "controls", repo, 0, self.clock(),
                                                None, installation_id=installation_id, trigger=trigger,
                                                actor=actor, what=what, at=iso(at), **(seen or {}).get(repo, {}))
        return queued

    def _check_controls(self, repo: str, data: dict) -> None:
        """`tbr/controls` on the default branch's head; a weakening since the last look opens an issue."""
        inst = self._installation(data["installation_id"], repo)
        cfg = self.config(inst, repo)
        if "head" in data:  # read by the daily check a moment ago
            branch, head, classic, rules = data["branch"], data["head"], data["classic"], set(data["rules"])
        else:
            branch = self.gateway.repo(inst, repo).default_branch
            head, classic, rules = self.gateway.branch_controls(inst, repo, branch)
        p = controls.protection(branch, classic, rules)
        now = self.clock()
        if "controls" in cfg.checks:
            conclusion, title, summary = controls.check_status(p)
            seen = accesscontrols.latest_2fa(self.store, repo.split("/")[0])
            if seen and seen["visible"] and (seen["members"] or seen["outside"]):
                conclusion, title = "failure", f"{title}; two-factor authentication missing for some"
            summary = f"{summary}\n\n{accesscontrols.twofa_text(seen)}"
            self.check_runs.publish(inst, repo, head, checks.CONTROLS, (conclusion, title, summary), now)
        before = self.store.db.execute("SELECT state FROM control_states WHERE repo = ? AND branch = ?",
                                       [repo, branch]).fetchone()
        lost = controls.weakened(json.loads(before[0]) if before else None, p.state())
        if lost:
            self._report_weakening(inst, repo, branch, cfg, p, lost, data)
        self.store.db.execute(
            "INSERT INTO control_states (repo, branch, state, checked_at) VALUES (?, ?, ?, ?)"
            " ON CONFLICT(repo, branch) DO UPDATE SET state = excluded.state, checked_at = excluded.checked_at",
            [repo, branch, json.dumps(p.state()), iso(now)])

    def _report_weakening(self, inst: int, repo: str, branch: str, cfg: RepoConfig, p, lost: list[str],
                          data: dict) -> None:
        tracking = cfg.tracking_repo or repo
        tracking_inst = inst if tracking.lower() == repo.lower() else self.gateway.installation_for(tracking)
        mark = marker(f"controls:{repo}:{branch}:{data['trigger']}")
        if self.gateway.find_issue(tracking_inst, tracking, "tbr", mark, since=self.clock() - timedelta(days=1)):
            return
        who = (f"@{data['actor']} ({data['what']}, {data['at'][:16].replace('T', ' ')} UTC)"
               if data.get("actor") else "not known (found by the daily check)")
        body = (f"{mark}\nProduction branch `{branch}` of **{repo}** lost controls:\n"
                + "".join(f"- {label}\n" for label in lost)
                + f"\nChanged by: {who}\n\n{controls.check_status(p)[2]}\n"
                "Restore the protection, or record here why it was changed and who approved it.\n")
        issue = self.gateway.create_issue(tracking_inst, tracking, f"TBR controls weakened: {repo}:{branch}", body,
                                          ["tbr"], [])
        self.store.audit("controls.weakened", f"{repo}:{branch}", data.get("actor"), self.clock(), lost=lost,
                         issue=issue.url, trigger=data["trigger"], what=data.get("what"))
        log.warning("controls.weakened", repo=repo, branch=branch, lost=lost, issue=issue.url, actor=data.get("actor"))

    def _review_pull(self, repo: str, number: int, data: dict) -> None:
        inst = self._installation(data["installation_id"], repo)
        cfg = self.config(inst, repo)
        if not {"review", "separation-of-duties", "change-reference"} & set(cfg.checks):
            return
        facts = self.gateway.pull_facts(inst, repo, number, merged=False)
        if facts is None or self.branch_unwatched(inst, repo, cfg, facts.base, data["default_branch"]):
            return  # closed since, or not headed for production
        now, policy = self.clock(), policy_of(cfg)
        facts = self.with_access(inst, facts, policy, now)
        statuses = {checks.REVIEW: checks.open_pull_status(judge_pull(facts, policy, now))}
        if "separation-of-duties" in cfg.checks:
            statuses[checks.SEPARATION] = checks.separation_status(*separation(facts, policy, now))
        if "change-reference" in cfg.checks and cfg.ticket_pattern:
            statuses[checks.REFERENCE] = checks.reference_status(facts, cfg.ticket_pattern)
        for name, status in statuses.items():
            self.check_runs.publish(inst, repo, facts.head_sha, name, status, now, facts.url)

    @staticmethod
    def _shas(ref: events.ChangeRef) -> list[str]:
        return [c["sha"] for c in ref.facts["commits"]] if ref.kind == "push" else [ref.sha]

    def _unwatched_reason(self, ref: events.ChangeRef) -> str | None:
        if not self.settings.watches_repo(ref.repo):
            return f"{ref.repo} is not in TBR_REPOS"
        inst = self._installation(ref.installation_id, ref.repo)
        return self.branch_unwatched(inst, ref.repo, self.config(inst, ref.repo, ref.happened_at, ref.sha), ref.branch,
                                     ref.default_branch)

    def branch_unwatched(self, inst: int, repo: str, cfg: RepoConfig, branch: str,
                         default_branch: str | None) -> str | None:
        """Why `branch` is not production, or None when it is."""
        if cfg.branches is not None and cfg.watches_branch(branch, default_branch, False):
            return None
        if cfg.only_listed_branches:
            return f"{repo}:{branch} matches none of the configured branches {list(cfg.branches)}"
        if branch == default_branch:
            return None
        protection = self.gateway.branch_protection(inst, repo, branch)
        return None if protection else f"{repo}:{branch} is neither the default branch nor protected"

    def config(self, inst: int, repo: str, at: datetime | None = None, sha: str | None = None) -> RepoConfig:
        """In force now, or (with `at`, `sha`) before the change of that time and commit: a change
        that edits `.github/tbr.yml` is judged under the configuration it replaces."""
        return self.configs.get(inst, repo, at, sha)

    def _reload_config(self, push: events.ChangeRef) -> None:
        """A push to a default branch changed .github/tbr.yml: load it, and say on the commit if it is wrong."""
        inst = self._installation(push.installation_id, push.repo)
        problems = self.configs.refresh(inst, push.repo, push)
        cfg = self.config(inst, push.repo)
        if "config" not in cfg.checks:
            return
        status = check_status(problems, cfg.refused)
        # Through the action queue: a failing checks API must not hold up judging this push.
        with self.store.write():
            checks.queue(self.store, f"config-check:{push.repo}:{push.sha}", push.repo, inst, push.sha, checks.CONFIG,
                         status, self.clock())

    def change_row(self, ref: events.ChangeRef, source: str, now: datetime) -> dict:
        return {
            "key": ref.key, "kind": ref.kind, "repo": ref.repo, "repo_id": ref.repo_id,
            "installation_id": ref.installation_id, "branch": ref.branch, "number": ref.number,
            "sha": ref.sha, "actor": ref.actor, "happened_at": iso(ref.happened_at),
            "facts": json.dumps(ref.facts), "source": source, "first_seen_at": iso(now),
            "next_attempt_at": iso(ref.happened_at + self._grace(ref)),
        }

    def _grace(self, ref: events.ChangeRef) -> timedelta:
        inst = self._installation(ref.installation_id, ref.repo)
        return timedelta(seconds=self.config(inst, ref.repo, ref.happened_at, ref.sha).grace_seconds)

    def role(self, inst: int, repo: str, login: str) -> str:
        """`login`'s role on `repo` (admin ... read, none), from GitHub's permission API, remembered a day."""
        now = self.clock()
        role = self.store.permission(repo, login, now - PERMISSION_TTL)
        if role is None:
            role = self.gateway.permission_of(inst, repo, login)
            self.store.remember_permission(repo, login, role, now)
        return role

    def is_one_of(self, inst: int, handles, login: str) -> bool:
        """Whether `login` is one of `handles`: a person (@login), or a member of a team (@org/team)."""
        for handle in handles:
            name = handle.lstrip("@")
            if "/" in name:
                members = self.gateway.team_members(inst, *name.split("/", 1))
                if login.lower() in (m.lower() for m in members):
                    return True
            elif name.lower() == login.lower():
                return True
        return False

    def signoff_refusal(self, row: dict, ev: events.IssueEvent) -> str | None:
        """Why the event's actor may not sign off the follow-up in `row`: neither write access to the changed
        repository nor one of its reviewers. None when they may, or when the event would sign nothing off
        (so GitHub is asked only about would-be reviewers)."""
        if not lifecycle.signs_off(self.settings, row, ev):
            return None
        inst = self._installation(row["installation_id"], row["repo"])
        if self.role(inst, row["repo"], ev.actor) in WRITE_ROLES:
            return None
        reviewers = accesscontrols.reviewers_of(self.config(inst, row["repo"]))
        if self.is_one_of(inst, reviewers, ev.actor):
            return None
        named = f" ({', '.join(reviewers)})" if reviewers else ""
        return f"@{ev.actor} has no write access to {row['repo']} and is not one of its reviewers{named}"

    def with_access(self, inst: int, facts: PullFacts, policy: Policy, cutoff: datetime) -> PullFacts:
        """The PR's facts with the roles of the comment authors whose access decides whether their words
        approve (asked of GitHub only for them: reviews carry their author's access for free)."""
        needed = permissions_needed(facts, policy, cutoff)
        if not needed:
            return facts
        known = {login: self.role(inst, facts.repo, login) for login in sorted(needed)}
        return dataclasses.replace(facts, permissions={**facts.permissions, **known})

    def _installation(self, installation_id: int | None, repo: str) -> int:
        # Repository webhooks (not the App's) carry no installation: ask GitHub which one covers it.
        return installation_id or self.gateway.installation_for(repo)

    # judging ----------------------------------------------------------------------------------

    def _judge_change(self, key: str) -> None:
        row = self.store.change(key)
        change = Change(row["key"], row["kind"], row["repo"], row["branch"], row["number"], row["sha"],
                        row["actor"], from_iso(row["happened_at"]), json.loads(row["facts"]))
        inst = self._installation(row["installation_id"], row["repo"])
        bound = log.bind(change=key, repo=row["repo"], source=row["source"])
        if row["kind"] == "pr":
            outcome = self._judge_pull(row, change, inst)
        else:
            outcome = self._judge_push(row, change, inst)
        if outcome is None:
            return
        status, decision, change = outcome
        values = {"status": status, "decision": decision.to_dict(), "judged_at": iso(self.clock()),
                  "lease_owner": None, "lease_until": None, "last_error": None,
                  "actor": change.actor, "facts": change.facts}
        cfg = self.config(inst, row["repo"], *self._judged_under(row))  # asked before taking the lock
        if status == "followup":
            if not self.store.holds("changes", key, self.owner, self.clock()):
                bound.warning("change.lease_lost")  # another worker took it over; let it finish
                return
            # The SLA's terms are fixed when the follow-up is filed; a later configuration change
            # does not move a promise already made.
            terms = {"timezone": cfg.timezone, "holidays": cfg.holidays, "days": cfg.sla_business_days,
                     "escalate": cfg.escalate, "checks": list(cfg.checks)}
            tz, holidays = lifecycle.clock_of(terms)
            # A merge from before tbr was installed, filed by backfill: the promise starts when it is filed.
            start = from_iso(row["first_seen_at"]) if row["source"] == "backfill" else change.happened_at
            due = sla.due_at(start, tz, holidays, cfg.sla_business_days)
            tracking = cfg.tracking_repo or row["repo"]
            tracking_inst = inst if tracking.lower() == row["repo"].lower() else self.gateway.installation_for(tracking)
            if not row["filing_at"]:  # recorded before the POST, so a try after a crash looks first
                self.store.update_change(key, filing_at=iso(self.clock()))
            issue = self.filer.file(tracking_inst, tracking, change, decision, due, tz, cfg.sla_business_days,
                                    retry=bool(row["filing_at"]), escalate=cfg.escalate)
            values.update(followup_repo=tracking, followup_number=issue.number, followup_url=issue.url,
                          due_at=iso(due), followup_state="open", terms=terms)
        review_check = "review" in cfg.checks
        now = self.clock()
        with self.store.write():
            self.store.update_change(key, **values)
            audit.judged(self.store, {**row, "actor": change.actor}, status, decision, now)
            if status == "followup":
                self.store.audit("followup.filed", audit.subject(row), "tbr", now, change=key,
                                 issue=values["followup_url"], due=values["due_at"])
            if review_check:
                self._queue_commit_check(row, status, decision, values)
            undone = change.facts.get("reverts")
            if cfg.revert_completes and undone:
                reverts.record(self.store, self.settings, row, undone["pull"], undone["shas"], change.happened_at,
                               change.actor or change.facts["author"], change.facts["url"], now)
            if status == "followup":
                reverts.complete_if_reverted(self.store, self.settings, row, now)
        bound.info("change.judged", status=status, rule=decision.rule, summary=decision.summary,
                   approver=decision.approval.approver if decision.approval else None,
                   followup=values.get("followup_url"), due=values.get("due_at"))

    def _queue_commit_check(self, row: dict, status: str, decision: Decision, values: dict) -> None:
        """`tbr/review` on the commit that reached production: how it was approved, or its follow-up."""
        if not row["sha"] or status not in ("approved", "followup"):
            return
        if status == "approved":
            status_ = checks.merged_status(decision)
            url = decision.approval.url
        else:
            status_ = checks.followup_status("open", values["followup_url"], from_iso(values["due_at"]))
            url = values["followup_url"]
        lifecycle.queue_check(self.store, row, "filed", status_, url, self.clock())

    def _judge_pull(self, row: dict, change: Change, inst: int):
        facts = self.gateway.pull_facts(inst, row["repo"], row["number"])
        if facts is None:
            return "covered", Decision(True, "not-merged", None, "GitHub says this pull request was not merged"), change
        cfg = self.config(inst, row["repo"], *self._judged_under(row))
        cutoff = facts.merged_at + timedelta(seconds=cfg.grace_seconds)
        if self.clock() < cutoff:
            # Found early (through its push): judge at the end of its own grace period.
            self.store.defer("changes", row["key"], "waiting for the grace period", cutoff)
            return None
        policy = policy_of(cfg)
        decision = judge_pull(self.with_access(inst, facts, policy, cutoff), policy, cutoff)
        pull, shas = reverted(facts)
        facts_dict = {**change.facts, "title": facts.title, "url": facts.url, "author": facts.author.login,
                      "commit_authors": sorted({c.author for c in facts.commits if c.author}
                                               | {x for c in facts.commits for x in c.coauthors}),
                      **({"reverts": {"pull": pull, "shas": list(shas)}} if pull or shas else {})}
        merged_by = facts.merged_by.login if facts.merged_by else ""
        change = Change(change.key, change.kind, change.repo, change.branch, change.number, change.sha,
                        merged_by, facts.merged_at, facts_dict)
        return ("approved" if decision.approved else "followup"), decision, change

    def _judge_push(self, row: dict, change: Change, inst: int):
        """A push is covered when every commit in it belongs to a merged PR into the same branch."""
        commits = change.facts["commits"] or [{"sha": change.sha, "url": "", "message": ""}]
        # A commit is judged with the change that recorded it first: a sweep can find a commit whose
        # push delivery is stored but not yet processed, and then both would claim it.
        key = row["key"]
        owners = self.store.commit_owners(row["repo_id"], [c["sha"] for c in commits])
        elsewhere = {owners[c["sha"]] for c in commits if owners.get(c["sha"], key) != key}
        commits = [c for c in commits if owners.get(c["sha"], key) == key]
        if not commits:
            return "covered", Decision(True, "recorded-elsewhere", None,
                                       f"Its commits were recorded first with {', '.join(sorted(elsewhere))},"
                                       " and judged there"), change
        covering: set[int] = set()
        uncovered = []
        # A PR already known by its merge commit needs no question; the rest are asked in batches.
        known = {c["sha"]: self.store.pr_with_merge_sha(row["repo_id"], c["sha"]) for c in commits}
        asked = [sha for sha, pr in known.items() if not pr]
        found = self.gateway.merged_pulls_for_commits(inst, row["repo"], asked, row["branch"]) if asked else {}
        for commit in commits:
            known_pr = known[commit["sha"]]
            numbers = [known_pr["number"]] if known_pr else found.get(commit["sha"], [])
            if not numbers:
                uncovered.append(commit)
            for number in numbers:
                if number not in covering and not known_pr:
                    self._discover_pull(row, number, commit["sha"])
                covering.add(number)
        if not uncovered:
            listed = ", ".join(f"#{n}" for n in sorted(covering))
            return "covered", Decision(True, "merged-pr", None,
                                       f"This push delivered merged pull request {listed}, judged on its own"), change
        facts = PushFacts(row["repo"], row["branch"], Actor(row["actor"]), change.happened_at,
                          bool(change.facts.get("forced")), tuple(uncovered), change.facts.get("compare", ""))
        decision = judge_push(facts, policy_of(self.config(inst, row["repo"], *self._judged_under(row))))
        change = Change(change.key, change.kind, change.repo, change.branch, change.number, change.sha,
                        change.actor, change.happened_at, {**change.facts, "commits": uncovered})
        return ("approved" if decision.approved else "followup"), decision, change

    @staticmethod
    def _judged_under(row: dict) -> tuple[datetime, str | None]:
        """The time and commit of a change, whose configuration is the one in force before them."""
        return from_iso(row["happened_at"]), row["sha"]

    def _discover_pull(self, push_row: dict, number: int, sha: str) -> None:
        """A merged PR seen only through its push (its own webhook was lost): judge it too."""
        now = self.clock()
        ref = events.ChangeRef(
            key=events.pr_key(push_row["repo_id"], number), kind="pr", repo=push_row["repo"],
            repo_id=push_row["repo_id"], installation_id=push_row["installation_id"],
            branch=push_row["branch"], default_branch=None, sha=sha, actor="",
            happened_at=from_iso(push_row["happened_at"]), number=number, facts={})
        row = self.change_row(ref, source=f"found through push {push_row['key']}", now=now)
        row["next_attempt_at"] = iso(now)
        if self.store.add_change(row, [sha]):
            log.info("change.discovered", change=ref.key, via=push_row["key"], repo=ref.repo)

    # actions ----------------------------------------------------------------------------------

    def _do_action(self, key: str) -> None:
        """One thing tbr says or does on a follow-up. Comments carry a marker and are looked for
        before posting; labels, closing and reopening are idempotent by nature."""
        row = self.store.action(key)
        data = json.loads(row["data"])
        repo, number = row["repo"], row["number"]
        change = self.store.change(row["change_key"]) if row["change_key"] else None
        if key.startswith("remind:") and change and change["followup_state"] != "open":
            # Signed off (or gone) since the reminder was planned: saying it now would be a false alarm.
            self.store.finish_action(key, self.clock())
            return
        gw = self.gateway
        inst = gw.installation_for(repo) if row["kind"] in ("comment", "add_label", "close", "reopen") else None
        if row["kind"] == "comment":
            gw.comment_once(inst, repo, number, data["body"], marker(key),
                            since=from_iso(row["created_at"]) - timedelta(days=1))
        elif row["kind"] == "add_label":
            gw.add_label(inst, repo, number, data["label"])
        elif row["kind"] == "close":
            gw.set_issue_state(inst, repo, number, "closed", "completed")
        elif row["kind"] == "reopen":
            gw.set_issue_state(inst, repo, number, "open")
        elif row["kind"] == "controls":
            self._check_controls(repo, data)
        elif row["kind"] == "review_pull":
            self._review_pull(repo, number, data)
        elif row["kind"] == "offboarding":
            accesscontrols.check_offboarding(self, repo, data["login"], data["actor"], self.clock())
        elif row["kind"] == "render_review":
            body = accesscontrols.body_of(self.store, accesscontrols.review(self.store, data["review"]))
            gw.update_issue_body(gw.installation_for(repo), repo, number, body)
        elif row["kind"] == "remove_collaborator":
            gw.remove_collaborator(gw.installation_for(repo), repo, data["login"])
            with self.store.write():
                self.store.db.execute("UPDATE access_lines SET applied_at = ? WHERE review_key = ? AND line_id = ?",
                                      [iso(self.clock()), data["review"], data["line_id"]])
                review = accesscontrols.review(self.store, data["review"])
                self.store.add_action(f"render:{data['review']}:applied:{data['line_id']}", "render_review",
                                      review["tracking_repo"], review["number"], self.clock(), review=data["review"])
        elif row["kind"] == "anchor":
            anchors.publish(self, repo, data)
        elif row["kind"] == "check":
            check_inst = self._installation(data["installation_id"], repo)
            self.check_runs.publish(check_inst, repo, data["sha"], data["name"],
                                    (data["conclusion"], data["title"], data["summary"]), self.clock(),
                                    data.get("details_url"))
        else:
            raise ValueError(f"unknown action kind {row['kind']!r}")
        with self.store.write():
            self.store.finish_action(key, self.clock())
            if row["kind"] != "review_pull":  # an open PR's advisory status: not part of the record
                kind = "followup.reminded" if key.startswith("remind:") else f"action.{row['kind']}"
                subject = audit.subject(change) if change else f"{repo}#{number}" if number else repo
                self.store.audit(kind, subject, "tbr", self.clock(), action=key, issue=f"{repo}#{number}",
                                 **({"body": data["body"]} if "body" in data else {}))
        log.info("action.done", action=key, kind=row["kind"], issue=f"{repo}#{number}", change=row["change_key"])
