"""The weekly overdue digest for security leads: one issue per week, updated when run again.

Order is by urgency: the counts, overdue, then due in the next seven days, then last week's completed reviews with the
SLA hit rate, then coverage (heartbeats, gaps, sweeps) so a quiet week can be told from a dead bot,
and the audit log's head hash, published where tbr cannot rewrite it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import httpx
import structlog

from tbr import access, accesscontrols, audit, budget, evidence, sla
from tbr.engine import Engine
from tbr.followups import LABEL_COLOR
from tbr.repoconfig import refusals
from tbr.store import config_changes, from_iso, iso

log = structlog.get_logger("tbr.digest")

LABEL = "tbr-digest"
SOON_DAYS = 7


@dataclass(frozen=True)
class Digest:
    week: date
    title: str
    body: str
    summary: str  # a few lines, for Slack


def week_start(now: datetime, tz) -> date:
    local = now.astimezone(tz).date()
    return local - timedelta(days=local.weekday())


def _link(row: dict) -> str:
    what = f"{row['repo']}#{row['number']}" if row["kind"] == "pr" else f"{row['repo']}@{row['sha'][:7]}"
    return f"[{what}]({row['followup_url']})"


def build(engine: Engine, now: datetime) -> Digest:
    store, tz, holidays = engine.store, engine.tz, engine.holidays
    week = week_start(now, tz)
    this_week = datetime.combine(week, time(0), tzinfo=tz)
    last_week = this_week - timedelta(days=7)
    # Only what the digest shows: the years of signed-off follow-ups stay in the database.
    rows = list(store.db.query(
        "SELECT * FROM changes WHERE status = 'followup' AND (followup_state IN ('open', 'deleted', 'transferred')"
        " OR (signed_off_at >= ? AND signed_off_at < ?)) ORDER BY due_at", [iso(last_week), iso(this_week)]))
    open_rows = [r for r in rows if r["followup_state"] == "open"]
    overdue = [r for r in open_rows if from_iso(r["due_at"]) <= now]
    # Through the end of the seventh day from today: on a Monday, next Monday's are listed too.
    horizon = datetime.combine(now.astimezone(tz).date() + timedelta(days=SOON_DAYS + 1), time(0), tzinfo=tz)
    due_soon = [r for r in open_rows if now < from_iso(r["due_at"]) <= horizon]
    gone = [r for r in rows if r["followup_state"] in ("deleted", "transferred")]
    done = [r for r in rows if r["signed_off_at"] and last_week <= from_iso(r["signed_off_at"]) < this_week]
    lines = [f"<!-- tbr:digest={week.isoformat()} -->",
             f"Follow-up reviews as of {now.astimezone(tz):%a %d %b %Y %H:%M} ({tz.key}).", "",
             f"**{len(open_rows)} open follow-up{'' if len(open_rows) == 1 else 's'}: {len(overdue)} overdue,"
             f" {len(due_soon)} due in the next {SOON_DAYS} days.**", ""]

    lines.append(f"## Overdue ({len(overdue)})")
    for r in overdue:
        due_day = (from_iso(r["due_at"]) - timedelta(microseconds=1)).astimezone(tz).date()
        late = sla.business_days_between(due_day, now.astimezone(tz).date(), holidays)
        lines.append(f"- {_link(r)}: @{r['actor']}, {late} business days overdue (due {due_day:%a %d %b})")
    lines.append("" if overdue else "None.\n")
    if gone:
        lines.append(f"## Deleted or transferred follow-ups ({len(gone)})")
        lines += [f"- {_link(r)}: {r['followup_state']}; the review it tracked is unaccounted for" for r in gone]
        lines.append("")

    lines.append(f"## Due in the next {SOON_DAYS} days ({len(due_soon)})")
    for r in due_soon:
        due_day = (from_iso(r["due_at"]) - timedelta(microseconds=1)).astimezone(tz)
        lines.append(f"- {_link(r)}: @{r['actor']}, due end of {due_day:%a %d %b}")
    lines.append("" if due_soon else "None.\n")

    within = sum(1 for r in done if r["within_sla"])
    rate = f"{100 * within / len(done):.0f}%" if done else "n/a"
    lines.append(f"## Completed last week ({len(done)}; SLA hit rate {rate})")
    for r in done:
        taken = sla.business_days(timedelta(seconds=r["business_seconds"] or 0))
        lines.append(f"- {_link(r)}: reviewed by @{r['signed_off_by']} in {taken} business days"
                     f" {'(within SLA)' if r['within_sla'] else '(late)'}")
    lines.append("" if done else "None.\n")

    lines += quarantine_section(store)
    lines += exceptions_section(store, now, tz)
    lines += access_section(store, now, tz)
    lines += config_section(store, last_week, now, tz)

    sweeps = store.db.execute("SELECT count(*), count(error) FROM sweeps WHERE started_at >= ? AND started_at < ?",
                              [iso(last_week), iso(this_week)]).fetchone()
    received = store.db.execute("SELECT count(*) FROM deliveries WHERE received_at >= ? AND received_at < ?",
                                [iso(last_week), iso(this_week)]).fetchone()[0]
    cover = audit.coverage(store.db, last_week, this_week)
    seq, head = audit.head(store.db)
    lines += [f"## Coverage last week ({last_week:%d %b} to {this_week - timedelta(days=1):%d %b})",
              running_line(cover, tz),
              f"- Sweeps run: {sweeps[0]}" + (f" ({sweeps[1]} with errors)" if sweeps[1] else ""),
              budget.summary(store, last_week, this_week),
              f"- Webhook deliveries received: {received}",
              f"- Downtime gaps: {len(cover.gaps)}"]
    lines += [f"  - {g.start.astimezone(tz):%a %d %b %H:%M} to {g.end.astimezone(tz):%a %d %b %H:%M}, "
              + (f"filled by the sweep of {g.filled_by.astimezone(tz):%a %d %b %H:%M}" if g.filled_by
                 else "not yet covered by a sweep") for g in cover.gaps]
    # Published outside tbr's database, the head hash lets `tbr audit verify --expect` catch a cut-off log.
    lines += ["", f"Audit log head: #{seq} sha256:{head}"]
    summary = (f"tbr weekly digest, week of {week}: {len(open_rows)} open follow-ups, {len(overdue)} overdue,"
               f" {len(due_soon)} due in the next {SOON_DAYS} days, "
               f"{len(done)} completed last week (SLA hit rate {rate}), {len(cover.gaps)} coverage gaps.")
    return Digest(week, f"TBR weekly digest: week of {week.isoformat()}", "\n".join(lines) + "\n", summary)


def running_line(cover: audit.Coverage, tz) -> str:
    """Last week's running time, from tbr's installation: the days before it are not downtime."""
    if cover.percent is None:
        installed = f" (installed {cover.installed_at.astimezone(tz):%a %d %b %H:%M})" if cover.installed_at else ""
        return f"- Last week was before tbr{installed}: no running time to measure yet, and no downtime"
    since = (f" since tbr was installed ({cover.watched_from.astimezone(tz):%a %d %b %H:%M})" if cover.before
             else " of the week")
    return f"- Running {cover.percent:.1f}%{since}, by tbr's heartbeats"


def quarantine_section(store) -> list[str]:
    """Work tbr set aside after it failed again and again: until someone fixes it, it is not judged."""
    items = store.quarantined()
    if not items:
        return []
    lines = [f"## Quarantined work ({len(items)})",
             "tbr stopped trying these after repeated failures; fix the cause, then run `tbr retry KEY`."]
    lines += [f"- {r['kind']} `{r['key']}`" + (f" ({r['subject']})" if r["subject"] else "")
              + f", since {r['quarantined_at'][:10]}: {r['error'][:200]}" for r in items]
    return lines + [""]


def exceptions_section(store, now: datetime, tz: ZoneInfo) -> list[str]:
    """The last three months' unapproved merges: declared emergencies, accidents, reverts."""
    rows = evidence.monthly(store.db, evidence.Period(now - timedelta(days=92), now, timezone=tz.key))
    lines = ["## Exceptions by month (declared, undeclared, reverted)"]
    lines += [f"- {evidence.month_text(m)}" for m in rows]
    return lines + ["" if rows else "None.\n"]


def access_section(store, now: datetime, tz) -> list[str]:
    """Access controls: this quarter's reviews, lingering access of people who left, two-factor coverage."""
    quarter = access.quarter_of(now.astimezone(tz).date())
    reviews = accesscontrols.status(store, quarter)
    lines = ["## Access controls", f"- Access reviews {quarter}: {sum(1 for r in reviews if r['completed_at'])}"
             f" of {len(reviews)} complete"]
    for r in reviews:
        if not r["completed_at"]:
            late = " (overdue)" if from_iso(r["due_at"]) <= now else ""
            lines.append(f"  - [{r['subject']}]({r['issue']}): {r['undecided']} of {r['lines']} lines undecided,"
                         f" due {r['due_at'][:10]}{late}")
    lingering = list(store.db.query("SELECT * FROM offboarding WHERE resolved_at IS NULL ORDER BY org, login, repo"))
    lines.append(f"- People who left with access remaining: {len({(r['org'], r['login']) for r in lingering})}")
    lines += [f"  - @{r['login']} ({r['org']}): {r['detail']} on {r['repo']} since {r['found_at'][:10]}"
              + (f" ([issue]({r['issue_url']}))" if r["issue_url"] else "") for r in lingering]
    orgs = [r[0] for r in store.db.execute("SELECT DISTINCT org FROM twofa_checks ORDER BY org")]
    lines += [f"- {org}: {accesscontrols.twofa_text(accesscontrols.latest_2fa(store, org))}" for org in orgs]
    return lines + [""]


def config_section(store, since: datetime, now: datetime, tz) -> list[str]:
    """Changes to `.github/tbr.yml` files since last week began: who, which commit, what, taken or refused
    (no section in a week without any)."""
    changes = config_changes(store.db, since, now)
    if not changes:
        return []
    lines = [f"## Configuration changes since {since.astimezone(tz):%a %d %b} ({len(changes)})"]
    for c in changes:
        who = f"pushed by @{c['actor']}" if c["actor"] else "found by tbr"
        commit = f" in `{c['commit_sha'][:7]}`" if c["commit_sha"] else ""
        what = {"first": "first read", "invalid": "invalid file"}.get(c["kind"], c["kind"])
        lines.append(f"- {c['repo']}: {what}, {who}{commit}, {from_iso(c['recorded_at']).astimezone(tz):%a %d %b}")
        lines += [f"  - invalid: {p} (the previous configuration stays in force)" for p in c["problems"]]
        for d in [] if c["problems"] else c["changes"]:
            why = list(refusals(c["refused"], d["key"]).values())
            before, after = (evidence.config_value(v) or "not set" for v in (d["before"], d["after"]))
            lines.append(f"  - `{d['key']}`: {before} → {after}, "
                         + (f"refused: {'; '.join(why)}" if why else "taken"))
    return lines + [""]


def publish(engine: Engine, now: datetime, dry_run: bool = False) -> Digest:
    """Create this week's digest issue, or update it; post to Slack once a week."""
    digest = build(engine, now)
    repo = engine.settings.tracking_repo
    if dry_run:
        return digest
    if repo is None:
        log.warning("digest.no_tracking_repo", week=str(digest.week))
    else:
        _upsert_issue(engine, repo, digest, now)
    _post_slack(engine, digest, now)
    return digest


def _upsert_issue(engine: Engine, repo: str, digest: Digest, now: datetime) -> None:
    store, gw = engine.store, engine.gateway
    inst = gw.installation_for(repo)
    week = digest.week.isoformat()
    row = store.db.execute("SELECT number, url FROM digests WHERE week = ?", [week]).fetchone()
    if row is None:
        since = datetime.combine(digest.week, time(0), tzinfo=engine.tz) - timedelta(days=1)
        found = gw.find_issue(inst, repo, LABEL, f"<!-- tbr:digest={week} -->", since=since)
        if found is None:
            gw.ensure_label(inst, repo, LABEL, LABEL_COLOR, "tbr's weekly digest of follow-up reviews")
            found = gw.create_issue(inst, repo, digest.title, digest.body, [LABEL], [])
        else:
            gw.update_issue_body(inst, repo, found.number, digest.body)
        with store.write():
            store.db.execute("INSERT OR REPLACE INTO digests (week, repo, number, url, updated_at)"
                             " VALUES (?, ?, ?, ?, ?)", [week, repo, found.number, found.url, iso(now)])
            store.audit("digest.published", f"{repo}#{found.number}", "tbr", now, week=week, url=found.url,
                        summary=digest.summary)
        log.info("digest.published", week=week, issue=found.url)
        return
    gw.update_issue_body(inst, repo, row[0], digest.body)
    store.db.execute("UPDATE digests SET updated_at = ? WHERE week = ?", [iso(now), week])
    log.info("digest.updated", week=week, issue=row[1])


class SlackFailed(RuntimeError):
    """Slack refused or could not be reached; the message never names the webhook URL (it is the secret)."""


def _post_slack(engine: Engine, digest: Digest, now: datetime) -> None:
    url = engine.settings.slack_webhook_url
    week = digest.week.isoformat()
    if not url:
        return
    posted = engine.store.db.execute("SELECT slack_posted_at FROM digests WHERE week = ?", [week]).fetchone()
    if posted and posted[0]:
        return
    link = engine.store.db.execute("SELECT url FROM digests WHERE week = ?", [week]).fetchone()
    text = digest.summary + (f" {link[0]}" if link else "")
    try:
        httpx.post(url, json={"text": text}, timeout=10).raise_for_status()
    except httpx.HTTPError as e:  # httpx names the URL, which is the secret: say what failed, not where
        what = f"answered {e.response.status_code}" if isinstance(e, httpx.HTTPStatusError) else type(e).__name__
        raise SlackFailed(f"Slack webhook (TBR_SLACK_WEBHOOK_URL): {what}") from None
    engine.store.db.execute(
        "INSERT INTO digests (week, repo, number, url, updated_at, slack_posted_at) VALUES (?, '', 0, '', ?, ?)"
        " ON CONFLICT(week) DO UPDATE SET slack_posted_at = excluded.slack_posted_at", [week, iso(now), iso(now)])
