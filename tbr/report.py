"""The auditor's report: `tbr evidence --format html` (and, through tbr/pdf.py, `--format pdf`).

One self-contained page, no script, in the order an auditor reads: who and when, the control as the
policy states it, the figures, charts (inline SVG, tbr/charts.py), the population table (times in the
organization's time zone, to the minute), one section per exception with its whole story, the access
controls and the configuration changes, and the verdict of every row against the audit log.

Streamed: rows are written as evidence.rows yields them. Past TABLE_CAP changes the table stops (every
row is still checked against the audit log, and rows that disagree are still shown), and past
STORY_CAP exceptions their sections stop: the report says so, and the CSV holds every row. So memory
stays flat and the page stays printable however large the population.

Everything a person wrote (titles, reasons, comments, logins, branch names) is escaped.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import TextIO
from zoneinfo import ZoneInfo

from tbr import charts, evidence

TABLE_CAP = 2000  # changes in the population table; the CSV beside it holds them all
STORY_CAP = 300  # exceptions told in full
DISAGREE_CAP = 1000  # rows past TABLE_CAP still shown because the log disproves them


@dataclass(frozen=True)
class Policy:
    """What the report states: plain data from the settings (tbr/cli.py). Its times are in the period's
    time zone, the organization's."""
    sla_days: int = 2  # the default; a repository's .github/tbr.yml may shorten it (each row has its due time)
    holidays: str | None = None
    repos: tuple[str, ...] = ()  # TBR_REPOS; empty: every repository the App is installed on


def statement(policy: Policy, tz: str) -> str:
    """The control as the policy states it."""
    where = (f"the repositories {', '.join(policy.repos)}" if policy.repos
             else "every repository the GitHub App is installed on")
    holidays = f", public holidays of {policy.holidays} excluded" if policy.holidays else ""
    return (f"Every change that reaches a production branch of {where} (each repository's default and protected"
            " branches, and those its .github/tbr.yml names) is approved before it is merged, by an approving"
            " review or comment from someone other than its author with write access, or by being merged by"
            f" someone other than its author; otherwise a follow-up review is filed and signed off by someone"
            f" other than its author within {policy.sla_days} business days (by the end of the day,"
            f" {tz} time{holidays}; a repository's .github/tbr.yml may shorten this).")


def _e(value) -> str:
    text = str(value)
    # Most cells hold nothing to escape: testing costs less than html.escape's five replacements.
    if "&" in text or "<" in text or ">" in text or '"' in text or "'" in text:
        return html.escape(text)
    return text


_local = evidence.local_minute


def _link(url: str, text: str) -> str:
    # Only web links become links: a value an attacker set could otherwise be javascript:.
    if url.startswith(("https://", "http://")):
        return f'<a href="{_e(url)}">{_e(text)}</a>'
    return _e(text)


STYLE = """
:root{--line:#d0d7de;--muted:#57606a}
*{box-sizing:border-box}
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0 auto;padding:1.5em;max-width:1400px;
color:#1f2328;overflow-wrap:anywhere}
h1{font-size:1.6em;margin:0}h2{font-size:1.25em;margin:1.6em 0 .5em;border-bottom:1px solid var(--line)}
h3{font-size:1.05em;margin:0 0 .4em}
.sub{color:var(--muted);margin:.2em 0 1em}
.control{border-left:4px solid #0072B2;background:#f6f8fa;padding:.6em 1em;margin:1em 0}
.figures{display:grid;grid-template-columns:repeat(auto-fit,minmax(230px,1fr));gap:.8em;margin:1em 0}
.figures section{border:1px solid var(--line);border-radius:6px;padding:.6em .9em;break-inside:avoid}
.figures h3{font-size:.85em;text-transform:uppercase;letter-spacing:.04em;color:var(--muted)}
.figures p{margin:.15em 0}.big{font-size:1.5em;font-weight:600}
.broken,.disagrees{color:#cf222e;font-weight:600}.ok{color:#1a7f37}
.charts{display:grid;grid-template-columns:repeat(auto-fit,minmax(min(100%,560px),1fr));gap:1em}
figure.chart{margin:0;break-inside:avoid}figure.chart svg{width:100%;height:auto;display:block}
figcaption{font-size:.85em}.key{white-space:nowrap;margin-left:.8em}
.key i{display:inline-block;width:.8em;height:.8em;margin-right:.3em;vertical-align:-.05em}
table{border-collapse:collapse;width:100%;table-layout:fixed;font-size:12.5px}
th,td{border:1px solid var(--line);padding:4px 6px;text-align:left;vertical-align:top}
thead th{background:#eaeef2}thead tr.groups th{text-align:center;font-size:.85em;text-transform:uppercase;
letter-spacing:.05em}
td small,.muted{color:var(--muted)}td b{font-weight:600}
tr{break-inside:avoid}thead{display:table-header-group}
.note td,p.note{background:#fff8c5;font-style:italic}
.exception{border:1px solid var(--line);border-radius:6px;padding:.8em 1em;margin:.8em 0;break-inside:avoid}
.exception dl{display:grid;grid-template-columns:11em 1fr;gap:.2em .8em;margin:0}
.exception dt{color:var(--muted)}.exception dd{margin:0}
.exception ol{margin:0;padding-left:1.2em}
#changes col.c1{width:15%}#changes col.c2{width:19%}#changes col.c3{width:9%}#changes col.c4{width:20%}
#changes col.c5{width:9%}#changes col.c6{width:13%}#changes col.c7{width:15%}
@media screen and (max-width:760px){  /* paper always gets the table: its headers repeat on each page */
body{padding:.8em}
table.cards,table.cards tbody,table.cards tr,table.cards td{display:block;width:100%}
table.cards colgroup,table.cards thead{display:none}
table.cards tr{border:1px solid var(--line);border-radius:6px;margin:0 0 .8em;padding:.3em .5em}
table.cards td{border:0;padding:.2em 0}table.cards td:empty{display:none}
table.cards td::before{content:attr(data-label);display:block;font-size:.75em;text-transform:uppercase;
color:var(--muted)}
.exception dl{grid-template-columns:1fr}.exception dt{margin-top:.3em}
}
@page{margin:14mm 10mm 16mm;
@bottom-right{content:"Page " counter(page) " of " counter(pages);$FOOT}}
@media print{
body{padding:0;max-width:none;font-size:10.5px}
a{color:inherit;text-decoration:none}
table{font-size:9px}
.charts{grid-template-columns:1fr 1fr}
h2{break-after:avoid}
*{-webkit-print-color-adjust:exact;print-color-adjust:exact}
}
"""

FOOT = "font:9px system-ui,sans-serif;color:#57606a"  # the page footer, on paper
STYLE = STYLE.replace("$FOOT", FOOT)


def write(out: TextIO, db, period: evidence.Period, head: dict, sections: dict, policy: Policy) -> int:
    """The report; returns the number of changes."""
    tz = period.timezone
    org = head["organization"] or "no repositories yet"
    days = head["period"]["first_day"], head["period"]["last_day"]
    title = f"Change management evidence: {org}, {days[0]} to {days[1]}"
    footer = f"{org} · {days[0]} to {days[1]} · tbr evidence"
    out.write(f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
              '<meta name="viewport" content="width=device-width,initial-scale=1">'
              f"<title>{_e(title)}</title><style>{STYLE}@page{{@bottom-left{{content:\"{_css(footer)}\";{FOOT}}}}}"
              "</style></head><body>\n")
    out.write(f'<header><h1>{_e(title)}</h1><p class="sub">{_e(days[0])} to {_e(days[1])} inclusive,'
              f" {_e(tz)}; {_e(head['period']['repo'])}; times below are {_e(tz)}, to the minute. Generated {_e(_local(head['generated_at'], tz))} by tbr.</p></header>\n")
    configs = list(sections["config-changes"][1](db, period))  # few: a summary figure and a table
    anchors = evidence.anchors(db, period, head["audit_chain"]["head_seq"])
    _summary(out, head, policy, configs, anchors)
    _charts(out, db, period, head, policy)
    n = _population(out, db, period, head, sections["changes"][1], policy)
    _access(out, db, period, sections, tz)
    _configs(out, configs, tz)
    head["audit_chain"]["rows_checked"] = True
    cls = ' class="broken"' if evidence.failed(head) else ' class="ok"'
    out.write(f'<h2>Every row against the audit log</h2><p id="audit-check"{cls}>'
              f"{_e(evidence.check_line(head))}</p>\n</body></html>\n")
    return n


def _css(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("<", "\\3c ")


def _n(count: int, one: str, many: str | None = None) -> str:
    return f"{count} {one if count == 1 else many or one + 's'}"


def _hours(hours) -> str:
    return f"{hours:g} h" if hours < 48 else f"{hours / 24:.1f} days"


def _summary(out: TextIO, s: dict, policy: Policy, configs: list, anchors: list) -> None:
    c, f, cov, chain, tz = s["by_decision"], s["followups"], s["coverage"], s["audit_chain"], s["period"]["timezone"]
    months = s["by_month"]
    declared, undeclared = sum(m["declared"] for m in months), sum(m["undeclared"] for m in months)
    exceptions = sum(m["exceptions"] for m in months)
    reverted, before = sum(m["reverted"] for m in months), sum(m["before_tbr"] for m in months)
    rules = "".join(f"<p>{n} by {_e(rule)}</p>" for rule, n in s["approved_by_rule"].items())
    out.write(f'<section id="summary"><h2>The control</h2><p class="control" id="control">{_e(statement(policy, tz))}'
              '</p>\n<div class="figures">\n')
    out.write(f'<section id="population"><h3>Population</h3><p class="big">{_n(s["changes"], "change")}</p>'
              f'<p>{c["approved"]} approved before merge</p>{rules}<p>{c["followup"]} with a follow-up</p>'
              f'<p>{c["unapproved"]} unapproved before tbr, no follow-up</p><p>{c["pending"]} pending</p></section>\n')
    # The monthly figures count every unapproved change of the period, backfilled ones (before tbr) too.
    out.write(f'<section id="exceptions"><h3>Exceptions</h3><p class="big">{exceptions} unapproved</p>'
              f'<p>{_n(declared, "declared emergency", "declared emergencies")}</p>'
              f'<p>{_n(undeclared, "undeclared merge")}</p>'
              f'<p>{_n(exceptions - declared - undeclared, "direct push", "direct pushes")}</p>'
              f'<p>{reverted} reverted</p><p>{before} before tbr</p></section>\n')
    out.write(f'<section id="followups"><h3>Follow-ups</h3><p class="big">{_e(s["sla_compliance"])} within'
              f' the SLA</p><p>{f["within_sla"]} of {f["signed_off"]} signed off within {policy.sla_days} business'
              f' days</p><p>{f["late"]} late</p><p>{f["overdue_open"]} overdue, still open</p>'
              f'<p>{f["open_not_due"]} open, not yet due</p>'
              + (f'<p>{f["deleted_or_transferred"]} deleted or transferred</p>' if f["deleted_or_transferred"] else "")
              + "</section>\n")
    b4 = cov["before_tbr"]
    out.write(f'<section id="coverage"><h3>Coverage</h3><p class="big">{_e(cov["running"])} running</p>'
              + (f'<p>installed {_e(_local(cov["installed_at"], tz))}</p>' if cov["installed_at"] else "")
              + (f'<p>before tbr: {_e(_hours(b4["hours"]))}'
                 + (f', backfilled since {_e(_local(b4["backfilled_since"], tz))}'
                    if b4["backfilled_at"] else ", not backfilled") + "</p>" if b4 else "")
              + f'<p>{_n(len(cov["gaps"]), "gap")}, {sum(1 for g in cov["gaps"] if g["filled_by_sweep_at"])} filled by a'
              f' sweep</p><p>{_n(cov["sweeps"], "sweep")}</p></section>\n')
    held = sum(a["holds"] for a in anchors)
    last = anchors[-1] if anchors else None
    out.write('<section id="chain"><h3>Audit chain</h3>'
              + (f'<p class="big ok">intact</p><p>{_n(chain["records"], "record")}, head #{chain["head_seq"]}</p>'
                 f'<p><small>sha256:{_e(chain["head_hash"])}</small></p>' if chain["intact"]
                 else f'<p class="big broken">NOT FULLY CHECKED</p><p>the links hold, but {_e(chain["unchecked"])}</p>'
                 if chain["links_hold"] else f'<p class="big broken">BROKEN</p><p class="broken">{_e(chain["problem"])}</p>')
              + f'<p>{_n(len(anchors), "daily anchor")} published, {held} held by the log</p>'
              + (f'<p><small>last {_e(_local(last["at"], tz))}: #{last["seq"]}'
                 f' sha256:{_e(str(last["hash"])[:16])}…</small></p>' if last else "")
              + (f'<p class="broken">{len(anchors) - held} anchors NOT held by the log</p>' if held < len(anchors) else "")
              + "</section>\n")
    taken = sum(r["outcome"] == "taken" for r in configs)
    out.write(f'<section id="config"><h3>Configuration</h3><p class="big">{_n(len(configs), "change")}</p>'
              f'<p>{taken} taken, {sum(r["outcome"] == "refused" for r in configs)} refused,'
              f' {sum(r["outcome"] == "invalid" for r in configs)} invalid</p></section>\n')
    a = s["access"]
    out.write(f'<section id="access-summary"><h3>Access</h3><p>{a["reviews_complete"]} of {a["reviews"]} access'
              f' review{"" if a["reviews"] == 1 else "s"} complete</p><p>{a["lines_kept"]} kept, {a["lines_revoked"]} revoked,'
              f' {a["lines_undecided"]} undecided</p><p>{_n(a["offboarding_findings"], "offboarding finding")},'
              f' {a["offboarding_unresolved"]} unresolved</p>'
              + "".join(f"<p>{_e(org)}: {_e(text)}</p>" for org, text in a["twofa"].items()) + "</section>\n")
    out.write("</div>\n")
    if cov["gaps"]:
        out.write("<p>Gaps: " + "; ".join(
            f"{_e(_local(g['from'], tz))} to {_e(_local(g['to'], tz))} ({g['hours']} h), "
            + (f"filled by the sweep at {_e(_local(g['filled_by_sweep_at'], tz))}"
               if g["filled_by_sweep_at"] else "not filled") for g in cov["gaps"]) + ".</p>\n")
    if months:
        out.write("<p>By month: " + "; ".join(_e(evidence.month_text(m)) for m in months) + ".</p>\n")
    out.write("</section>\n")


def weeks(hourly: list[tuple[str, str, int]], tz: str, first: date, last: date) -> list[tuple[date, dict]]:
    """Changes per local week (Monday first) by decision, every week of the period shown, empty or not."""
    zone = ZoneInfo(tz)
    start = first - timedelta(days=first.weekday())
    out = {start + timedelta(weeks=i): dict.fromkeys(evidence.DECISIONS, 0)
           for i in range((last - start).days // 7 + 1)}
    for hour, status, n in hourly:
        day = datetime.fromisoformat(hour + ":00+00:00").astimezone(zone).date()
        monday = day - timedelta(days=day.weekday())
        if monday in out:
            out[monday][status] += n
    return sorted(out.items())


def _charts(out: TextIO, db, period: evidence.Period, head: dict, policy: Policy) -> None:
    first, last = (date.fromisoformat(head["period"][d]) for d in ("first_day", "last_day"))
    weekly = weeks(evidence.hourly_decisions(db, period), period.timezone, first, last)
    labels = [monday.strftime("%d %b") for monday, _ in weekly]
    names = {"approved": "approved", "followup": "follow-up", "unapproved": "before tbr", "pending": "pending"}
    out.write('<h2 id="charts-heading">Charts</h2><div class="charts">\n')
    out.write(charts.stacked_bars("chart-weeks", "Changes per week, by decision", labels,
                                  [(names[d], d, [w[d] for _, w in weekly]) for d in evidence.DECISIONS]))
    months = head["by_month"]
    out.write(charts.stacked_bars(
        "chart-exceptions", "Exceptions per month, by kind", [m["month"] for m in months],
        [("declared", "declared", [m["declared"] for m in months]),
         ("undeclared", "undeclared", [m["undeclared"] for m in months]),
         ("direct push", "push", [m["exceptions"] - m["declared"] - m["undeclared"] for m in months])]))
    out.write(charts.histogram("chart-signoff", "Business days to sign-off, against the SLA",
                               charts.signoff_bins(evidence.signoff_days(db, period), policy.sla_days),
                               policy.sla_days))
    out.write(_coverage_chart(head, period))
    out.write("</div>\n")


def _coverage_chart(head: dict, period: evidence.Period) -> str:
    cov, tz = head["coverage"], period.timezone
    end = min(period.end, datetime.fromisoformat(head["generated_at"]))
    spans, marks = [], []
    b4 = cov["before_tbr"]
    if b4:
        shade = "backfilled" if b4["backfilled_at"] else "before"
        spans.append((datetime.fromisoformat(b4["from"]), datetime.fromisoformat(b4["to"]), shade,
                      f"before tbr: {_local(b4['from'], tz)} to {_local(b4['to'], tz)}"
                      + (f", backfilled since {_local(b4['backfilled_since'], tz)}" if b4["backfilled_at"]
                         else ", not backfilled")))
    for g in cov["gaps"]:
        spans.append((datetime.fromisoformat(g["from"]), datetime.fromisoformat(g["to"]), "gap",
                      f"gap {_local(g['from'], tz)} to {_local(g['to'], tz)} ({g['hours']} h)"))
        if g["filled_by_sweep_at"]:
            marks.append((datetime.fromisoformat(g["filled_by_sweep_at"]),
                          f"sweep at {_local(g['filled_by_sweep_at'], tz)} filled the gap"))
    return charts.timeline("chart-coverage", "Coverage: when tbr was watching", period.start, max(end, period.start),
                           spans, marks)


# The population table: seven columns in three groups, each cell stacking its facts.
COLUMNS = (("Change", ("Change", "Title and people", "Merged")),
           ("Decision", ("Decision", "Audit log")),
           ("Follow-up", ("Follow-up", "Sign-off")))


def _thead() -> str:
    groups = "".join(f'<th colspan="{len(cols)}" scope="colgroup">{g}</th>' for g, cols in COLUMNS)
    names = "".join(f'<th scope="col">{c}</th>' for _, cols in COLUMNS for c in cols)
    cols = "".join(f'<col class="c{i}">' for i in range(1, 8))
    return f'<colgroup>{cols}</colgroup><thead><tr class="groups">{groups}</tr><tr>{names}</tr></thead>'


def _sla_text(row: dict, sla_days: int) -> str:
    if row["business_days"] == "":
        return ""
    return f"{row['business_days']} business days, " + ("within" if row["within_sla"] == "yes" else "past") \
        + f" the SLA of {sla_days}"


def _row_html(row: dict, tz: str, sla_days: int) -> str:
    change = row["change"] if row["kind"] == "pr" else row["change"][:12]
    decision = f"<b>{_e(row['decision'])}</b>" + (f" by {_e(row['rule'])}" if row["rule"] and row["rule"] != "none" else "")
    if row["approver"]:
        decision += f"<br>{_link(row['approval_link'], '@' + row['approver'])} {_e(_local(row['approved_at'], tz))}"
    if row["emergency"]:
        decision += f"<br>{row['emergency']} emergency" + (f" (@{_e(row['declared_by'])})" if row["declared_by"] else "")
    proof = _proof(row["audit_log"])
    follow = ""
    if row["followup"]:
        follow = (f"{_link(row['followup'], evidence.issue_ref(row['followup']))}<br>{_e(row['followup_state'].replace('_', ' '))}"
                  f"<br><small>due {_e(_local(row['due'], tz))}</small>")
    sign = ""
    if row["signed_off_at"]:
        sign = (f"{_e(_local(row['signed_off_at'], tz))} by @{_e(row['signed_off_by'])} ({_e(row['completed_how'])})"
                f"<br><small>{_sla_text(row, sla_days)}</small>")
    cls = {"approved": "approved", "follow-up": "followup"}.get(row["decision"], row["decision"].split(" ")[0])
    return (f'<tr class="{cls}"><td data-label="Change">{_link(row["url"], row["repo"] + " " + change)}<br><small>'
            f'{_e(row["kind"])} to {_e(row["branch"])}; found by {_e(row["found_by"])}</small></td>'
            f'<td data-label="Title and people">{_e(row["title"])}<br><small>by @{_e(row["author"])}, merged by'
            f' @{_e(row["merged_by"])}</small></td><td data-label="Merged">{_e(_local(row["merged_at"], tz))}</td>'
            f'<td data-label="Decision">{decision}</td><td data-label="Audit log">{proof}</td>'
            f'<td data-label="Follow-up">{follow}</td><td data-label="Sign-off">{sign}</td></tr>\n')


def _population(out: TextIO, db, period: evidence.Period, head: dict, source, policy: Policy) -> int:
    tz, total = period.timezone, head["changes"]
    chain = head["audit_chain"]
    out.write('<h2 id="population-heading">The population: every change</h2>\n')
    if total > TABLE_CAP:
        out.write(f'<p class="note">{total} changes: the table lists the first {TABLE_CAP} by merge time, and any'
                  " later row the audit log disproves. Every row was checked against the audit log (the verdict is"
                  " at the end). All rows are in the CSV: tbr evidence --format csv with the same period.</p>\n")
    out.write(f'<table id="changes" class="cards">{_thead()}<tbody>\n')
    stories, told, n, shown_late = [], 0, 0, 0
    for n, row in enumerate(source(db, period), 1):
        if n <= TABLE_CAP:
            out.write(_row_html(row, tz, policy.sla_days))
        elif row["audit_log"].startswith(evidence.DISAGREES) and shown_late < DISAGREE_CAP:
            shown_late += 1
            out.write(_row_html(row, tz, policy.sla_days))
        if row["decision"] in (evidence.DECISIONS["followup"], evidence.DECISIONS["unapproved"]):
            told += 1
            if told <= STORY_CAP:  # bounded: the sections follow the table
                stories.append(_story(row, evidence.story(db, row, chain["head_seq"]), head, policy))
    if n > TABLE_CAP:
        out.write(f'<tr class="note"><td colspan="7">{n - TABLE_CAP - shown_late} more changes are not listed here;'
                  " they are in the CSV.</td></tr>\n")
    if not n:
        out.write('<tr class="note"><td colspan="7">No change reached a watched branch in the period.</td></tr>\n')
    out.write("</tbody></table>\n")
    out.write(f'<h2 id="exceptions-heading">Exceptions: {told} unapproved changes</h2>\n')
    if told > STORY_CAP:
        out.write(f'<p class="note">The first {STORY_CAP} of {told} are told here; every one is a row of the CSV'
                  " with the same facts.</p>\n")
    if not told:
        out.write("<p>None: every change in the period was approved before merge.</p>\n" if n else "<p>None.</p>\n")
    for text in stories:
        out.write(text)
    return n


STEPS = {"change.recorded": "recorded by tbr", "change.judged": "judged", "followup.filed": "follow-up filed",
         "followup.reminded": "reminder posted", "followup.signoff_refused": "a comment did not sign it off",
         "followup.close_refused": "a close did not sign it off (reopened)", "followup.signed_off": "signed off",
         "followup.reverted": "completed by a revert", "followup.reopened": "reopened",
         "followup.deleted": "follow-up deleted", "followup.transferred": "follow-up transferred"}


def _step(at: str, kind: str, actor: str, data: dict, tz: str) -> str:
    what = STEPS.get(kind, kind)
    if kind == "change.judged":
        what += f": {evidence.DECISIONS.get(data.get('status'), data.get('status'))}"
    elif kind == "followup.filed" and data.get("due"):
        what += f", due {_local(data['due'], tz)}"
    elif kind == "followup.reverted" and data.get("revert"):
        what += f" ({data['revert']})"
    who = "" if actor in ("tbr", "") else f" by @{actor}"
    return f"<li>{_e(_local(at, tz))}: {_e(what)}{_e(who)}</li>"


def _story(row: dict, records: list, head: dict, policy: Policy) -> str:
    tz = head["period"]["timezone"]
    now = head["generated_at"]
    if row["decision"] == evidence.DECISIONS["unapproved"]:
        outcome = "merged before tbr was installed; no follow-up was filed"
    elif row["completed_how"] == "reverted":
        outcome = f"reverted by @{row['signed_off_by']} {_local(row['signed_off_at'], tz)}"
    elif row["signed_off_at"]:
        outcome = (f"signed off by @{row['signed_off_by']} {_local(row['signed_off_at'], tz)}"
                   f" ({row['completed_how']}): {_sla_text(row, policy.sla_days)}")
    elif row["followup_state"] == "open":
        outcome = "OVERDUE, still open" if row["due"] and row["due"] <= now else "open, not yet due"
    else:
        outcome = row["followup_state"] or "no follow-up"
    if row["kind"] != "pr":
        declaration = "a direct push cannot be declared"
    elif row["declared_by"]:
        declaration = (f"declared by @{row['declared_by']} {_local(row['declared_at'], tz)}: {row['reason']}"
                       + (f" (ticket {row['ticket']})" if row["ticket"] else ""))
    else:
        declaration = "none: an undeclared merge"
    facts = [("Merged", f"{_local(row['merged_at'], tz)} to {row['branch']} by @{row['merged_by']}"
                        f" (author @{row['author']}); found by {row['found_by']}"),
             ("Why no approval", row["explanation"]), ("What did not count", row["did_not_count"] or "nothing"),
             ("Declaration", declaration), ("Outcome", outcome), ("Audit log", row["audit_log"])]
    body = "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in facts)
    if row["followup"]:
        body += (f"<dt>Follow-up</dt><dd>{_link(row['followup'], evidence.issue_ref(row['followup']))},"
                 f" due {_e(_local(row['due'], tz))}</dd>")
    if records:
        body += "<dt>Timeline</dt><dd><ol>" + "".join(_step(*r, tz) for r in records) + "</ol></dd>"
    change = row["change"] if row["kind"] == "pr" else row["change"][:12]
    return (f'<section class="exception"><h3>{_link(row["url"], row["repo"] + " " + change)}: {_e(row["title"])}'
            f"</h3><dl>{body}</dl></section>\n")


def _table(out: TextIO, key: str, heading: str, columns: tuple[tuple[str, callable], ...], rows, empty: str) -> None:
    """A plain table of one section, capped like the population."""
    out.write(f'<h2 id="{key}-heading">{_e(heading)}</h2>\n')
    n = 0
    for n, row in enumerate(rows, 1):
        if n == 1:
            out.write(f'<table id="{key}" class="cards"><thead><tr>'
                      + "".join(f'<th scope="col">{_e(name)}</th>' for name, _ in columns) + "</tr></thead><tbody>\n")
        if n <= TABLE_CAP:
            out.write("<tr>" + "".join(f'<td data-label="{_e(name)}">{cell(row)}</td>' for name, cell in columns)
                      + "</tr>\n")
    if n > TABLE_CAP:
        out.write(f'<tr class="note"><td colspan="{len(columns)}">{n - TABLE_CAP} more rows are in the CSV'
                  f" (--section {key}).</td></tr>\n")
    out.write("</tbody></table>\n" if n else f"<p>{_e(empty)}</p>\n")


def _proof(verdict: str) -> str:
    """A row's audit-log verdict in its narrow cell: what the table claims, in full, when it disagrees; the
    summary's audit-chain figure says why rows only agree when there was no key to check the HMACs."""
    if verdict.startswith(evidence.DISAGREES):
        return f'<span class="disagrees">{_e(verdict)}</span>'
    return "agrees (HMACs not checked)" if verdict == evidence.AGREES else _e(verdict)


def _access(out: TextIO, db, period: evidence.Period, sections: dict, tz: str) -> None:
    _table(out, "access-reviews", evidence.HEADINGS["access-reviews"], (
        ("Review", lambda r: f"{_e(r['quarter'])} {_e(r['subject'])}<br><small>opened"
                             f" {_e(_local(r['review_opened_at'], tz))}, due {_e(_local(r['review_due'], tz))}</small>"),
        ("Person", lambda r: f"@{_e(r['login'])} on {_e(r['repo'])}<br><small>{_e(r['permission'])} via"
                             f" {_e(r['via'])}</small>"),
        ("Decision", lambda r: (f"<b>{_e(r['decision'])}</b> by @{_e(r['decided_by'])} {_e(_local(r['decided_at'], tz))}"
                                if r["decision"] else "undecided")
         + (f"<br><small>access removed {_e(_local(r['access_removed_at'], tz))}</small>" if r["access_removed_at"] else "")),
        ("Review complete", lambda r: f"{_e(_local(r['review_completed_at'], tz))} by @{_e(r['review_completed_by'])}"
         if r["review_completed_at"] else "not yet"),
        ("Issue", lambda r: _link(r["issue"], evidence.issue_ref(r["issue"]))),
        ("Audit log", lambda r: _proof(r["audit_log"]))), sections["access-reviews"][1](db, period), "No access review was opened in the period.")
    _table(out, "offboarding", evidence.HEADINGS["offboarding"], (
        ("Person", lambda r: f"@{_e(r['login'])} ({_e(r['org'])})"),
        ("Access", lambda r: f"{_e(r['repo'])}: {_e(r['kind'])}<br><small>{_e(r['detail'])}</small>"),
        ("Found", lambda r: _e(_local(r["found_at"], tz))),
        ("Resolved", lambda r: _e(_local(r["resolved_at"], tz)) or "<b>unresolved</b>"),
        ("Issue", lambda r: _link(r["issue"], evidence.issue_ref(r["issue"])))),
        sections["offboarding"][1](db, period), "No access lingered after anyone left.")
    _table(out, "2fa", evidence.HEADINGS["2fa"], (
        ("Organization", lambda r: _e(r["org"])), ("Checked", lambda r: _e(_local(r["checked_at"], tz))),
        ("Visible to tbr", lambda r: _e(r["visible"]) + (f"<br><small>{_e(r['reason'])}</small>" if r["reason"] else "")),
        ("Members without 2FA", lambda r: _e(r["members_without_2fa"]) or "none"),
        ("Outside collaborators without 2FA", lambda r: _e(r["outside_without_2fa"]) or "none")),
        sections["2fa"][1](db, period), "No two-factor check ran in the period.")


def _configs(out: TextIO, configs: list, tz: str) -> None:
    _table(out, "config-changes", evidence.HEADINGS["config-changes"], (
        ("Repository", lambda r: f"{_e(r['repo'])}<br><small>{_e(r['kind'])}"
                                 + (f", by @{_e(r['pushed_by'])}" if r["pushed_by"] else "") + "</small>"),
        ("When", lambda r: f"{_e(_local(r['recorded_at'], tz))}<br><small>in force from"
                           f" {_e(_local(r['in_force_from'], tz))}</small>" if r["in_force_from"]
         else _e(_local(r["recorded_at"], tz))),
        ("Key", lambda r: _e(r["key"])), ("Before", lambda r: _e(r["before"])), ("After", lambda r: _e(r["after"])),
        ("Outcome", lambda r: f"<b>{_e(r['outcome'])}</b>" + (f"<br><small>{_e(r['reason'])}</small>" if r["reason"] else ""))),
        configs, "The configuration did not change in the period.")
