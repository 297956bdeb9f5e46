"""Access controls on GitHub: quarterly access reviews (CC6.3), offboarding checks (CC6.2) and two-factor
coverage (CC6.1). Decisions come from the pure `access` module; this one asks GitHub, records, and
queues what tbr must say or do as actions, keyed so that nothing is done twice.
"""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import structlog

from tbr import access, budget, remind, sla
from tbr.events import IssueEvent
from tbr.followups import marker as change_marker
from tbr.github import RepoInfo
from tbr.store import Store, from_iso, iso

if TYPE_CHECKING:  # the engine calls this module: no import cycle at run time
    from tbr.engine import Engine

log = structlog.get_logger("tbr.access")

CATCH_UP = timedelta(days=14)  # an automatic review opens up to two weeks late (tbr was down)
HOW = "Decide every line: tick its box to keep the access, or comment `revoke @login`."


def watched(engine: Engine, owner: str | None = None) -> list[tuple[int, RepoInfo]]:
    gw = engine.gateway
    return [(inst, r) for inst in gw.installations() for r in gw.installation_repos(inst)
            if not r.archived and engine.settings.watches_repo(r.full_name)
            and (owner is None or r.full_name.split("/")[0].lower() == owner.lower())]


def _local_today(engine: Engine, now: datetime) -> date:
    return now.astimezone(engine.tz).date()


WORK = "access reviews and daily access checks"  # as budget pauses name it


# access reviews --------------------------------------------------------------------------------

def open_reviews(engine: Engine, quarter: str, now: datetime, repo: str | None = None,
                 automatic: bool = False) -> list[str]:
    """Open the quarter's reviews not opened yet (automatic: only those whose opening day has come,
    within two weeks); returns their keys."""
    subjects: dict[str, list[tuple[int, RepoInfo]]] = {}
    configs = {}
    for n, (inst, info) in enumerate(watched(engine)):
        if repo and info.full_name.lower() != repo.lower():
            continue
        # A first day reads every repository's configuration: stop under the reserve, go on next hour.
        if automatic and n % budget.BATCH == 0 and not budget.may_run(engine, WORK):
            raise budget.Waiting(WORK)
        cfg = engine.config(inst, info.full_name).access_review
        if not cfg.enabled:
            continue
        subject = info.full_name.split("/")[0] if cfg.scope == "org" else info.full_name
        subjects.setdefault(subject, []).append((inst, info))
        configs.setdefault(subject, engine.config(inst, f"{subject}/.github" if cfg.scope == "org" else subject))
    opened = []
    for subject, repos in subjects.items():
        cfg = configs[subject]
        key = f"{quarter}:{subject}"
        if engine.store.db.execute("SELECT 1 FROM access_reviews WHERE key = ?", [key]).fetchone():
            continue
        tz, holidays = ZoneInfo(cfg.timezone), sla.holiday_calendar(cfg.holidays)
        first = access.opening_day(quarter, holidays, cfg.access_review.business_day)
        if automatic and not first <= now.astimezone(tz).date() < first + CATCH_UP:
            continue
        opened.append(_open(engine, key, quarter, subject, repos, cfg, tz, now))
    return opened


def _open(engine: Engine, key: str, quarter: str, subject: str, repos, cfg, tz: ZoneInfo, now: datetime) -> str:
    gw, ar = engine.gateway, cfg.access_review
    # From the subject, not `ar`: a repository's own file may ask for org scope the org's file lacks.
    org_wide = "/" not in subject
    lines = [access.Line(f"{info.full_name}:{a['login']}" if org_wide else a["login"], info.full_name, a["login"],
                         a["permission"], tuple(a["via"]))
             for inst, info in repos for a in gw.repo_access(inst, info.full_name)]
    holidays = sla.holiday_calendar(cfg.holidays)
    due = sla.due_at(now, tz, holidays, ar.due_days)
    reviewers = reviewers_of(cfg)
    tracking = cfg.tracking_repo or (f"{subject}/.github" if org_wide else subject)
    inst = gw.installation_for(tracking)
    body = access.render(key, quarter, subject, lines, due, tz, reviewers)
    issue = gw.find_issue(inst, tracking, access.LABEL, access.marker(key),
                          since=datetime.combine(access.quarter_start(quarter), datetime.min.time(), tz))
    if issue is None:
        gw.ensure_label(inst, tracking, access.LABEL, "5319e7", "tbr's quarterly access review")
        issue = gw.create_issue(inst, tracking, access.title(quarter, subject), body, [access.LABEL], [])
    terms = {"reviewers": list(reviewers), "apply_revocations": ar.apply_revocations, "timezone": cfg.timezone,
             "holidays": cfg.holidays, "escalate": cfg.escalate}
    with engine.store.write():
        engine.store.db.execute(
            "INSERT OR IGNORE INTO access_reviews (key, quarter, subject, installation_id, tracking_repo, number, url,"
            " opened_at, due_at, terms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [key, quarter, subject, inst, tracking, issue.number, issue.url, iso(now), iso(due), json.dumps(terms)])
        engine.store.db.conn.executemany(
            "INSERT OR IGNORE INTO access_lines (review_key, line_id, repo, login, permission, via)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            [(key, ln.line_id, ln.repo, ln.login, ln.permission, json.dumps(ln.via)) for ln in lines])
        engine.store.audit("access_review.opened", subject, "tbr", now, review=key, issue=issue.url,
                           lines=len(lines), due=iso(due))
    log.info("access_review.opened", review=key, issue=issue.url, lines=len(lines))
    return key


def reviewers_of(cfg) -> tuple[str, ...]:
    """The configured reviewers (@login or @org/team): the access review's, else the escalation handle."""
    return cfg.access_review.reviewers or ((cfg.escalate,) if cfg.escalate else ())


def decider_refusal(engine: Engine, review: dict, ev: IssueEvent) -> str | None:
    """Why the event's actor may not decide lines of `review`: only its reviewers and the organization's owners
    may. None when they may, or when the event decides nothing (so GitHub is asked only then)."""
    if ev.action not in ("edited", "commented") or _is_bot(ev) or review["completed_at"]:
        return None
    terms, org = json.loads(review["terms"]), review["subject"].split("/")[0]
    inst = review["installation_id"]
    if engine.is_one_of(inst, terms["reviewers"], ev.actor) or \
            ev.actor.lower() in (o.lower() for o in engine.gateway.org_owners(inst, org)):
        return None
    named = " or ".join(filter(None, [", ".join(terms["reviewers"]), f"an owner of {org}"]))
    return f"only {named} may decide this review"


def _is_bot(ev: IssueEvent) -> bool:
    return ev.actor_type == "Bot" or ev.actor.endswith("[bot]")


def lines_of(store: Store, key: str) -> list[access.Line]:
    return [access.Line(r["line_id"], r["repo"], r["login"], r["permission"], tuple(json.loads(r["via"])),
                        r["decision"], r["decided_by"], from_iso(r["decided_at"]), bool(r["applied_at"]))
            for r in store.db.query("SELECT * FROM access_lines WHERE review_key = ? ORDER BY repo, login COLLATE NOCASE",
                                    [key])]


def review(store: Store, key: str) -> dict | None:
    return next(store.db.query("SELECT * FROM access_reviews WHERE key = ?", [key]), None)


def review_for_issue(store: Store, repo: str, number: int) -> dict | None:
    return next(store.db.query("SELECT * FROM access_reviews WHERE tracking_repo = ? COLLATE NOCASE AND number = ?",
                               [repo, number]), None)


def body_of(store: Store, review: dict) -> str:
    terms = json.loads(review["terms"])
    completed = (review["completed_by"], from_iso(review["completed_at"])) if review["completed_at"] else None
    return access.render(review["key"], review["quarter"], review["subject"], lines_of(store, review["key"]),
                         from_iso(review["due_at"]), ZoneInfo(terms["timezone"]), tuple(terms["reviewers"]), completed)


def apply_event(store: Store, review: dict, ev: IssueEvent, now: datetime, refusal: str | None = None) -> str:
    """A person edited, commented on or closed an access review issue (call within a write transaction).
    `refusal`: why the actor may not decide (see `decider_refusal`); what they tried is undone and said."""
    key, repo, number = review["key"], review["tracking_repo"], review["number"]
    if _is_bot(ev):
        return "tbr's own (or a bot's) change: nothing to decide"
    if ev.action == "closed" and not review["completed_at"]:
        store.add_action(f"reopen:{key}:{iso(ev.at)}", "reopen", repo, number, now)
        store.add_action(f"refuse:{key}:{iso(ev.at)}", "comment", repo, number, now,
                         body=f"@{ev.actor}: this review completes when every line is decided. Reopened.")
        return "closed before complete: reopened"
    if review["completed_at"]:
        return "review already complete"
    if ev.action == "edited" and ev.previous_body is not None:
        wanted = [(line_id, "keep" if ticked else None) for line_id, ticked in
                  access.edited(ev.previous_body, ev.body).items()]
    elif ev.action == "commented":
        wanted = [(f"{login} on {on}" if on else login, verb) for verb, login, on in access.commands(ev.comment)]
    else:
        return "nothing to decide"
    if not wanted:
        return "nothing to decide"
    if refusal:
        undone = " Your change to the checklist was undone." if ev.action == "edited" else ""
        store.add_action(f"unauthorized:{key}:{iso(ev.at)}:{ev.comment_id or ''}", "comment", repo, number, now,
                         body=f"@{ev.actor}: not recorded: {refusal}.{undone}")
        store.audit("access_review.decision_refused", review["subject"], ev.actor, ev.at, review=key, how=ev.action,
                    reason=refusal)
        if ev.action == "edited":  # the checklist shows tbr's record again, without their ticks
            store.add_action(f"render:{key}:{iso(ev.at)}:", "render_review", repo, number, now, review=key)
        return f"refused: {refusal}"
    lines = lines_of(store, key)
    decisions, refused = access.decide(lines, ev.actor, wanted)
    terms = json.loads(review["terms"])
    by_id = {ln.line_id: ln for ln in lines}
    for d in decisions:
        store.db.execute("UPDATE access_lines SET decision = ?, decided_by = ?, decided_at = ?"
                         " WHERE review_key = ? AND line_id = ?",
                         [d.decision, ev.actor if d.decision else None, iso(ev.at) if d.decision else None, key,
                          d.line_id])
        line = by_id[d.line_id]
        store.audit("access_review.decided", line.repo, ev.actor, ev.at, review=key, login=line.login,
                    permission=line.permission, decision=d.decision or "undecided", how=ev.action)
        if d.decision == "revoke" and terms["apply_revocations"] and \
                {"direct", "outside collaborator"} & set(line.via):
            store.add_action(f"revoke:{key}:{d.line_id}", "remove_collaborator", line.repo, 0, now, login=line.login,
                             review=key, line_id=d.line_id)
    if refused:
        store.add_action(f"refused:{key}:{iso(ev.at)}:{ev.comment_id or ''}", "comment", repo, number, now,
                         body="Not recorded: " + "; ".join(refused) + ".")
    undecided = store.db.execute("SELECT count(*) FROM access_lines WHERE review_key = ? AND decision IS NULL",
                                 [key]).fetchone()[0]
    if undecided == 0 and decisions:
        store.db.execute("UPDATE access_reviews SET completed_at = ?, completed_by = ? WHERE key = ?",
                         [iso(ev.at), ev.actor, key])
        counts = dict(store.db.execute("SELECT decision, count(*) FROM access_lines WHERE review_key = ?"
                                       " GROUP BY decision", [key]).fetchall())
        store.audit("access_review.completed", review["subject"], ev.actor, ev.at, review=key, **counts)
        store.add_action(f"complete:{key}", "comment", repo, number, now,
                         body=f"Access review complete: {counts.get('keep', 0)} kept, {counts.get('revoke', 0)}"
                              f" revoked; last decision by @{ev.actor} on {ev.at:%Y-%m-%d %H:%M} UTC.")
        store.add_action(f"close:{key}", "close", repo, number, now)
    store.add_action(f"render:{key}:{iso(ev.at)}:{ev.comment_id or ''}", "render_review", repo, number, now,
                     review=key)
    return f"{len(decisions)} decided, {len(refused)} refused" + (", review complete" if undecided == 0 else "")


def plan_reminders(store: Store, settings, now: datetime) -> int:
    """Due-soon and overdue reminders for open reviews, like a follow-up's."""
    queued = 0
    for review in store.db.query("SELECT * FROM access_reviews WHERE completed_at IS NULL"):
        terms = json.loads(review["terms"])
        tz, holidays = ZoneInfo(terms["timezone"]), sla.holiday_calendar(terms["holidays"])
        who = " @".join(r.lstrip("@") for r in terms["reviewers"])
        owed = remind.plan(remind.Open(f"access:{review['key']}", review["url"], who, from_iso(review["due_at"]),
                                       "access review", HOW),
                           now, tz, holidays, settings.reminder_hour, settings.overdue_reminder_days,
                           remind.mention(terms.get("escalate")))
        with store.write():
            for r in owed:
                queued += store.add_action(r.key, "comment", review["tracking_repo"], review["number"], now,
                                           body=r.text)
    return queued


def status(store: Store, quarter: str | None = None) -> list[dict]:
    """Per review: lines decided, kept, revoked, and when it completed and by whom."""
    rows = []
    for r in store.db.query("SELECT * FROM access_reviews" + (" WHERE quarter = ?" if quarter else "")
                            + " ORDER BY quarter, subject", [quarter] if quarter else []):
        counts = dict(store.db.execute("SELECT coalesce(decision, 'undecided'), count(*) FROM access_lines"
                                       " WHERE review_key = ? GROUP BY 1", [r["key"]]).fetchall())
        rows.append({"quarter": r["quarter"], "subject": r["subject"], "issue": r["url"], "opened_at": r["opened_at"],
                     "due_at": r["due_at"], "lines": sum(counts.values()), "kept": counts.get("keep", 0),
                     "revoked": counts.get("revoke", 0), "undecided": counts.get("undecided", 0),
                     "completed_at": r["completed_at"], "completed_by": r["completed_by"]})
    return rows


# offboarding ------------------------------------------------------------------------------------

def lingering(engine: Engine, org: str, login: str, repos: list[tuple[int, RepoInfo]]) -> list[tuple[str, str, str]]:
    """The access `login` still has to watched repos of `org`: (repo, kind, detail)."""
    found = []
    for inst, info in repos:
        permission = engine.gateway.permission_of(inst, info.full_name, login)
        # Everyone may read a public repository: only more than that is access to take away there.
        if permission not in ("none", "") and (info.private or permission != "read"):
            found.append((info.full_name, "collaborator", permission))
        if login.lower() in (i.lower() for i in engine.gateway.invitees(inst, info.full_name)):
            found.append((info.full_name, "invitation", "pending invitation"))
    return found


def check_offboarding(engine: Engine, org: str, login: str, actor: str, now: datetime) -> str:
    """Someone left `org`: if they still have access to a watched repository, say so in an issue."""
    found = lingering(engine, org, login, watched(engine, org))
    store = engine.store
    if not found:
        store.audit("offboarding.clean", f"{org}/@{login}", actor, now, org=org, login=login)
        return f"@{login} has no access left to {org}'s watched repositories"
    issue = _offboarding_issue(engine, org, login, found, actor, now)
    with store.write():
        for repo, kind, detail in found:
            # Removed again after an earlier finding was resolved: a new finding, with its new issue.
            store.db.execute("INSERT INTO offboarding (org, login, repo, kind, detail, found_at, issue_url)"
                             " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (org, login, repo, kind) DO UPDATE SET"
                             " detail = excluded.detail, found_at = excluded.found_at, issue_url = excluded.issue_url,"
                             " resolved_at = NULL WHERE resolved_at IS NOT NULL",
                             [org, login, repo, kind, detail, iso(now), issue.url if issue else None])
        store.audit("offboarding.lingering_access", f"{org}/@{login}", actor, now, org=org, login=login,
                    access=[f"{r} ({d})" for r, _, d in found], issue=issue.url if issue else None)
    log.warning("offboarding.lingering_access", org=org, login=login, repos=[r for r, _, _ in found])
    return f"@{login} still has access: " + ", ".join(f"{r} ({d})" for r, _, d in found)


def _tracking(engine: Engine, org: str) -> str | None:
    if engine.settings.tracking_repo:
        return engine.settings.tracking_repo
    repos = watched(engine, org)
    return engine.config(repos[0][0], f"{org}/.github").tracking_repo if repos else None


def _offboarding_issue(engine: Engine, org: str, login: str, found, actor: str, now: datetime):
    tracking = _tracking(engine, org)
    if tracking is None:
        log.warning("offboarding.no_tracking_repo", org=org, login=login)
        return None
    gw = engine.gateway
    inst = gw.installation_for(tracking)
    mark = change_marker(f"offboarding:{org}:{login}")
    issue = gw.find_issue(inst, tracking, "tbr", mark, since=now - timedelta(days=1))
    if issue:
        return issue
    body = (f"{mark}\n@{login} left the **{org}** organization"
            + (f" (removed by @{actor})" if actor else "") + f" on {now:%Y-%m-%d %H:%M} UTC, but still has access"
            " (SOC 2 CC6.2):\n" + "".join(f"- `{r}`: {d}\n" for r, _, d in found)
            + "\nRemove it (or record here why it stays, and who approved). tbr checks daily, lists it in the"
              " weekly digest until it is gone, and closes this issue then.\n")
    return gw.create_issue(inst, tracking, f"TBR offboarding: @{login} still has access to {org}", body, ["tbr"], [])


def recheck_offboarding(engine: Engine, now: datetime) -> int:
    """Daily: is the lingering access gone yet? Returns how many findings were resolved."""
    store, resolved = engine.store, 0
    open_rows = list(store.db.query("SELECT * FROM offboarding WHERE resolved_at IS NULL ORDER BY org, login"))
    for org, login in sorted({(r["org"], r["login"]) for r in open_rows}):
        repos = watched(engine, org)
        still = {(repo, kind) for repo, kind, _ in lingering(engine, org, login, repos)}
        mine = [r for r in open_rows if (r["org"], r["login"]) == (org, login)]
        with store.write():
            for r in mine:
                if (r["repo"], r["kind"]) not in still:
                    store.db.execute("UPDATE offboarding SET resolved_at = ? WHERE org = ? AND login = ? AND repo = ?"
                                     " AND kind = ?", [iso(now), org, login, r["repo"], r["kind"]])
                    store.audit("offboarding.resolved", f"{org}/@{login}", "tbr", now, repo=r["repo"], access=r["kind"])
                    resolved += 1
            if not still and mine[0]["issue_url"]:
                repo, number = issue_of(mine[0]["issue_url"])
                store.add_action(f"offboarded:{org}:{login}:{repo}#{number}", "comment", repo, number, now,
                                 body=f"@{login} has no access left to {org}'s watched repositories. Closing.")
                store.add_action(f"close:offboarding:{org}:{login}:{repo}#{number}", "close", repo, number, now)
    return resolved


def issue_of(url: str) -> tuple[str, int]:
    """owner/name and number of an issue's URL."""
    parts = url.rstrip("/").split("/")
    return f"{parts[-4]}/{parts[-3]}", int(parts[-1])


# two-factor coverage ------------------------------------------------------------------------------

def check_2fa(engine: Engine, now: datetime) -> list[dict]:
    """Each organization's members and outside collaborators without 2FA, or why tbr cannot see them."""
    gw, store, out = engine.gateway, engine.store, []
    orgs = {info.full_name.split("/")[0]: inst for inst, info in watched(engine)}
    for org, inst in sorted(orgs.items()):
        seen = gw.without_2fa(inst, org)
        row = {"org": org, "checked_at": iso(now), "visible": not isinstance(seen, str),
               "reason": seen if isinstance(seen, str) else None,
               "members": [] if isinstance(seen, str) else seen[0], "outside": [] if isinstance(seen, str) else seen[1]}
        with store.write():
            store.db.execute("INSERT OR REPLACE INTO twofa_checks (org, checked_at, visible, reason, members, outside)"
                             " VALUES (?, ?, ?, ?, ?, ?)", [org, row["checked_at"], int(row["visible"]), row["reason"],
                                                            json.dumps(row["members"]), json.dumps(row["outside"])])
            store.audit("twofa.checked", org, "tbr", now, visible=row["visible"], reason=row["reason"],
                        members_without=row["members"], outside_without=row["outside"])
        out.append(row)
    return out


def latest_2fa(store: Store, org: str) -> dict | None:
    return latest_2fa_before(store.db, org, None)


def latest_2fa_before(db, org: str, before: datetime | None) -> dict | None:
    """The last two-factor check of `org` (before `before`, if given)."""
    row = db.execute("SELECT visible, reason, members, outside, checked_at FROM twofa_checks WHERE org = ?"
                     " COLLATE NOCASE AND checked_at < ? ORDER BY checked_at DESC LIMIT 1",
                     [org, iso(before) if before else "9999"]).fetchone()
    if row is None:
        return None
    return {"visible": bool(row[0]), "reason": row[1], "members": json.loads(row[2]), "outside": json.loads(row[3]),
            "checked_at": row[4]}


def twofa_text(seen: dict | None) -> str:
    """One line for people: the digest and `tbr/controls`."""
    if seen is None:
        return "Two-factor authentication: not checked yet."
    if not seen["visible"]:
        return (f"Two-factor authentication: tbr cannot see it ({seen['reason']}). Give the App the organization"
                " permission that allows it, or check it in the organization's settings.")
    missing = [f"@{m}" for m in seen["members"]] + [f"@{m} (outside collaborator)" for m in seen["outside"]]
    return ("Two-factor authentication: everyone has it." if not missing else
            f"Two-factor authentication missing for {len(missing)}: {', '.join(missing)}.")


# the daily work ------------------------------------------------------------------------------------

def daily(engine: Engine, now: datetime) -> None:
    """Once a local day (the job runs hourly): open the quarter's reviews when due, look again at
    lingering access, check two-factor coverage. Reminders are planned every run."""
    store = engine.store
    plan_reminders(store, engine.settings, now)
    today = _local_today(engine, now)
    last = store.last_beat("access-daily")
    if last and _local_today(engine, last) == today:
        return
    try:
        open_reviews(engine, access.quarter_of(today), now, automatic=True)
    except budget.Waiting:
        return  # not done today: the next hourly run goes on from the configurations read so far
    recheck_offboarding(engine, now)
    check_2fa(engine, now)
    store.beat("access-daily", now)
