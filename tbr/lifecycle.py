"""A follow-up after it is filed: sign-off, refusals, reopening, reminders.

Decisions come from the pure modules (signoff, remind); this module records them and queues what
tbr must say or do on GitHub as actions, keyed so that doing the same thing twice is impossible.
"""

from __future__ import annotations

import json
from collections.abc import Container
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from tbr import audit, checks, remind, sla, signoff
from tbr.config import Settings
from tbr.events import IssueEvent
from tbr.store import Store, from_iso, iso


def clock_of(terms: dict) -> tuple[ZoneInfo, Container[date]]:
    """The SLA clock a follow-up was filed under."""
    return ZoneInfo(terms["timezone"]), sla.holiday_calendar(terms["holidays"])


def terms_of(row: dict, settings: Settings) -> dict:
    """A follow-up's SLA terms; rows filed before terms were recorded get the deployment's."""
    if row.get("terms"):
        return json.loads(row["terms"])
    return {"timezone": settings.timezone, "holidays": settings.holidays, "days": 2, "escalate": settings.escalate}


def queue_check(store: Store, row: dict, stage: str, status: tuple[str, str, str], details_url: str,
                now: datetime) -> None:
    """Queue a `tbr/review` check run on the change's commit (one per stage of its life)."""
    checks.queue(store, f"check:{row['key']}:{stage}", row["repo"], row["installation_id"], row["sha"], checks.REVIEW,
                 status, now, details_url, row["key"])


def _review_check_on(row: dict, settings: Settings) -> bool:
    return bool(row["sha"]) and "review" in terms_of(row, settings).get("checks", ["review"])


def followup_of(row: dict) -> signoff.Followup:
    facts = json.loads(row["facts"])
    if row["kind"] == "pr":
        # Whoever wrote a commit in it (pushed onto the PR) is as involved as its author.
        authors = {facts.get("author") or "", *facts.get("commit_authors", [])}
        what = f"{row['repo']}#{row['number']}"
        describe = (f"@{facts.get('author')} authored and @{row['actor']} merged {what}"
                    if row["actor"] and row["actor"] != facts.get("author") else f"@{facts.get('author')} authored and merged {what}")
    else:
        authors = {c.get("author") or "" for c in facts.get("commits", [])}
        pusher = f"@{row['actor']}" if row["actor"] else "someone"
        describe = f"{pusher} pushed {row['repo']}@{row['sha'][:7]}"
    involved = frozenset(x.lower() for x in authors | {row["actor"] or ""} if x)
    return signoff.Followup(row["key"], row["followup_state"] or "open", involved, describe)


def signs_off(settings: Settings, row: dict, ev: IssueEvent) -> bool:
    """Whether the event would sign the follow-up off if its actor had the authority to."""
    return signoff.judge(followup_of(row), ev, settings.signoff_phrases).kind == "signed_off"


def sla_text(business: timedelta, within: bool, due_at: datetime, at: datetime) -> str:
    taken = f"{sla.business_days(business)} business days after the change shipped"
    if within:
        return f"{taken}, within the SLA"
    return f"{taken}, {(at - due_at).total_seconds() / 86400:.1f} days after it was due"


AUDIT_KINDS = {"signed_off": "followup.signed_off", "refuse": "followup.close_refused",
               "reply": "followup.signoff_refused", "reopened": "followup.reopened"}


def apply_issue_event(store: Store, settings: Settings, row: dict, ev: IssueEvent, now: datetime,
                      unauthorized: str | None = None) -> str:
    """Record what an event on a follow-up means and queue tbr's answer; returns the outcome. `unauthorized`:
    why the event's actor may not sign off (see `signs_off`), asked of GitHub before the transaction."""
    verdict = signoff.judge(followup_of(row), ev, settings.signoff_phrases, unauthorized)
    outcome = _apply(store, settings, row, ev, verdict, now)
    if verdict.kind in AUDIT_KINDS or verdict.kind == "gone":
        store.audit(AUDIT_KINDS.get(verdict.kind, f"followup.{ev.action}"), audit.subject(row), ev.actor, ev.at,
                    change=row["key"], issue=f"{row['followup_repo']}#{row['followup_number']}", outcome=outcome,
                    **({"comment": ev.comment_url} if ev.comment_url else {}))
    return outcome


def _apply(store: Store, settings: Settings, row: dict, ev: IssueEvent, verdict: signoff.Verdict,
           now: datetime) -> str:
    key, repo, number = row["key"], row["followup_repo"], row["followup_number"]
    if verdict.kind == "signed_off":
        how = f"[commented]({ev.comment_url})" if verdict.how == "comment" else "closed this follow-up"
        complete(store, settings, row, verdict.at, verdict.reviewer, verdict.how,
                 f"Review signed off: @{verdict.reviewer} {how}", now)
        return f"signed off by {verdict.reviewer}"
    if verdict.kind == "refuse":
        # Keyed by the close's time, which the webhook and the sweep both see: one answer per close.
        store.add_action(f"reopen:{key}:{iso(ev.at)}", "reopen", repo, number, now, key)
        store.add_action(f"refuse:{key}:{iso(ev.at)}", "comment", repo, number, now, key, body=verdict.message)
        return f"refused: {verdict.message}"
    if verdict.kind == "reply":
        store.add_action(f"reply:{key}:{ev.comment_id}", "comment", repo, number, now, key, body=verdict.message)
        return "phrase by an involved person: replied"
    if verdict.kind == "reopened":
        store.update_change(key, followup_state="open", signed_off_at=None, signed_off_by=None, signoff_how=None,
                            business_seconds=None, within_sla=None)
        return verdict.message
    if verdict.kind == "gone":
        store.update_change(key, followup_state=ev.action)
        return verdict.message
    return "nothing to do"


def complete(store: Store, settings: Settings, row: dict, at: datetime, by: str, how: str, said: str,
             now: datetime) -> None:
    """The follow-up is complete: record who and when against its SLA, say so on it (closing it unless a
    person just did), and turn the commit's `tbr/review` green. Call within a write transaction."""
    key, repo, number = row["key"], row["followup_repo"], row["followup_number"]
    happened, due = from_iso(row["happened_at"]), from_iso(row["due_at"])
    business = sla.business_duration(happened, at, *clock_of(terms_of(row, settings)))
    within = at <= due
    store.update_change(key, followup_state="signed_off", signed_off_at=iso(at), signed_off_by=by, signoff_how=how,
                        business_seconds=int(business.total_seconds()), within_sla=int(within))
    store.add_action(f"signoff:{key}:{iso(at)}", "comment", repo, number, now, key,
                     body=f"{said} on {at:%Y-%m-%d %H:%M} UTC, {sla_text(business, within, due, at)}.")
    if how != "closed":
        store.add_action(f"close:{key}:{iso(at)}", "close", repo, number, now, key)
    if _review_check_on(row, settings):
        queue_check(store, row, f"signed-off:{iso(at)}", checks.followup_status("signed_off", row["followup_url"],
                                                                                 due, by, at, how),
                    row["followup_url"], now)


def plan_reminders(store: Store, settings: Settings, as_of: datetime, now: datetime | None = None,
                   dry_run: bool = False) -> list[dict]:
    """Queue every reminder owed at `as_of` that was not queued before, to be done from `now` on (the real
    time, which differs when a person asks "as if it were then"); return what was (or would be) queued."""
    now = now or as_of
    queued = []
    for row in store.open_followups():
        terms = terms_of(row, settings)
        escalate = remind.mention(terms.get("escalate"))
        owed = remind.plan(
            remind.Open(row["key"], row["followup_url"] or "", row["actor"], from_iso(row["due_at"])), as_of,
            *clock_of(terms), settings.reminder_hour, settings.overdue_reminder_days, escalate)
        for r in owed:
            if store.has_action(r.key):
                continue
            queued.append({"key": r.key, "kind": r.kind, "issue": row["followup_url"], "text": r.text})
            if dry_run:
                continue
            with store.write():
                store.add_action(r.key, "comment", row["followup_repo"], row["followup_number"], now, row["key"],
                                 body=r.text)
                if r.kind == "overdue":
                    store.add_action(f"label:{row['key']}:overdue", "add_label", row["followup_repo"],
                                     row["followup_number"], now, row["key"], label=remind.OVERDUE_LABEL)
                    if _review_check_on(row, settings):
                        queue_check(store, row, "overdue", checks.followup_status(
                            "overdue", row["followup_url"], from_iso(row["due_at"])), row["followup_url"], now)
    return queued
