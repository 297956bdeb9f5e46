"""`tbr evidence`: the population of production changes in a period, for an auditor, in one command.

One row per change that reached a watched branch: how it was approved, or its follow-up and who
signed it off when. A summary comes first: counts by decision, SLA compliance, overdue follow-ups,
coverage (time running, gaps and the sweeps that filled them) and the audit chain's state. Rows are
streamed from SQLite to the output one at a time, so memory stays flat however large the population;
the summary is computed with aggregate queries before the first row is written.

Every row is proven by the audit log, not taken from the mutable tables on trust: its decision, rule,
approver, declaration, follow-up, sign-off or revert, and each access-review decision, are read from
the change's chained records (up to the head `audit.verify` proved), and shown as the records say. A
row whose table values disagree says so in its `audit_log` column, naming what the table claims;
a change the log records but the table lost is named in the summary. Either fails the export as a
broken chain does.
"""

from __future__ import annotations

import csv
import json
import operator
import statistics
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from functools import lru_cache
from typing import TextIO
from zoneinfo import ZoneInfo

from tbr import accesscontrols, audit, sla
from tbr.repoconfig import refusals
from tbr.store import config_changes, from_iso, iso

COLUMNS = ("repo", "change", "kind", "branch", "url", "title", "author", "merged_by", "merged_at", "decision",
           "rule", "approver", "approved_at", "approval_link", "explanation", "emergency", "declared_by", "declared_at",
           "reason", "ticket", "followup", "due", "followup_state", "signed_off_at", "signed_off_by", "completed_how",
           "business_days", "within_sla", "found_by", "did_not_count", "audit_log")

DECISIONS = {"approved": "approved", "followup": "follow-up", "unapproved": "unapproved (before tbr, no follow-up)",
             "pending": "pending (grace period)"}


@dataclass(frozen=True)
class Period:
    start: datetime
    end: datetime  # exclusive
    repo: str | None = None
    timezone: str = "UTC"  # the organization's: the days the period names are its days

    @property
    def first_day(self) -> date:
        return self.start.astimezone(ZoneInfo(self.timezone)).date()

    @property
    def last_day(self) -> date:
        """The last day the period reaches into (an end at midnight excludes the day it starts)."""
        return (self.end - timedelta(microseconds=1)).astimezone(ZoneInfo(self.timezone)).date()

    def where(self) -> tuple[str, list]:
        sql = f"status IN ({', '.join('?' * len(DECISIONS))}) AND happened_at >= ? AND happened_at < ?"
        args = [*DECISIONS, iso(self.start), iso(self.end)]
        if self.repo:
            sql += " AND repo = ? COLLATE NOCASE"
            args.append(self.repo)
        return sql, args


def summary(db, period: Period, now: datetime) -> dict:
    check = audit.verify(db)
    chain = {"intact": check.complete, "links_hold": check.ok, "hmac_checked": check.unchecked_from is None,
             "unchecked": audit.unchecked_line(check) if check.ok and not check.complete else None}
    where, args = period.where()
    counts = {s: 0 for s in DECISIONS}
    counts.update(dict(db.execute(f"SELECT status, count(*) FROM changes WHERE {where} GROUP BY status", args)))
    rules = dict(db.execute(f"SELECT json_extract(decision, '$.rule'), count(*) FROM changes WHERE {where}"
                            " AND status = 'approved' GROUP BY 1 ORDER BY 2 DESC", args))
    f = db.execute(
        "SELECT count(signed_off_at), sum(within_sla), sum(followup_state = 'open' AND due_at <= ?),"
        " sum(followup_state = 'open' AND due_at > ?), sum(followup_state IN ('deleted', 'transferred'))"
        f" FROM changes WHERE {where} AND status = 'followup'", [iso(now), iso(now), *args]).fetchone()
    signed, within = f[0], f[1] or 0
    missing = missing_changes(db, period, check.head_seq)
    return {
        "organization": organization(db, period.repo),
        "period": {"from": iso(period.start), "to": iso(period.end), "repo": period.repo or "all watched",
                   "first_day": period.first_day.isoformat(), "last_day": period.last_day.isoformat(),
                   "timezone": period.timezone},
        "generated_at": iso(now),
        "changes": sum(counts.values()),
        "by_decision": counts,
        "approved_by_rule": rules,
        "followups": {"filed": counts["followup"], "signed_off": signed, "within_sla": within,
                      "late": signed - within, "overdue_open": f[2] or 0, "open_not_due": f[3] or 0,
                      "deleted_or_transferred": f[4] or 0},
        "sla_compliance": f"{100 * within / signed:.1f}%" if signed else "n/a",
        "coverage": coverage_summary(db, period, now),
        "audit_chain": {**chain, "records": check.records, "head_seq": check.head_seq,
                        "head_hash": check.head_hash, "problem": check.problem,
                        "missing_from_table": missing, "rows_disagreeing": 0, "rows_checked": False},
        "access": access_summary(db, period),
        "by_month": monthly(db, period),
    }


def _hours(span: timedelta) -> float:
    return round(span.total_seconds() / 3600, 2)


def coverage_summary(db, period: Period, now: datetime) -> dict:
    """Coverage of the period up to now, from tbr's installation (its first record): the time before it is
    "before tbr", judged by a backfill if one reached back into it, and never counted as downtime."""
    cover = audit.coverage(db, period.start, max(period.start, min(period.end, now)))
    before = None
    if cover.before:
        to = cover.watched_from or cover.end
        ran = audit.backfilled(db)
        reached = ran is not None and ran[1] < to  # a backfill since a later time judged nothing before tbr
        before = {"from": iso(period.start), "to": iso(to), "hours": _hours(cover.before),
                  "backfilled_at": iso(ran[0]) if reached else None, "backfilled_since": iso(ran[1]) if reached else None}
    return {
        "installed_at": iso(cover.installed_at) if cover.installed_at else None,
        "before_tbr": before,
        "running": f"{cover.percent:.2f}%" if cover.percent is not None else "n/a",
        "running_hours": _hours(cover.running),
        "watched_hours": _hours(cover.watched),
        "gaps": [{"from": iso(g.start), "to": iso(g.end), "hours": _hours(g.length),
                  "filled_by_sweep_at": iso(g.filled_by) if g.filled_by else None} for g in cover.gaps],
        "sweeps": db.execute("SELECT count(*) FROM audit WHERE kind = 'sweep.finished' AND at >= ? AND at < ?",
                             [iso(period.start), iso(period.end)]).fetchone()[0],
    }


def organization(db, repo: str | None = None) -> str:
    """The watched owners (organizations or users), as the report names them: "acme", or "acme, beta"."""
    if repo:
        return repo.split("/", 1)[0]
    owners = {}
    for (owner,) in db.execute(
            "SELECT DISTINCT substr(repo, 1, instr(repo, '/') - 1) FROM (SELECT DISTINCT repo FROM changes UNION"
            " SELECT repo FROM swept_repos UNION SELECT repo FROM config_files) UNION SELECT org FROM twofa_checks"):
        if owner:
            owners.setdefault(owner.lower(), owner)
    return ", ".join(owners[k] for k in sorted(owners))


EXCEPTIONS = ("followup", "unapproved")  # merged without approval: live (a follow-up) or before tbr (backfilled)


def monthly(db, period: Period) -> list[dict]:
    """Per month: exceptions (unapproved merges of PRs and pushes, those from before tbr that a backfill
    judged included), declared, undeclared, reverted, before tbr, and the median business days to
    sign-off: the figures the process wants to see fall."""
    where, args = period.where()
    tz = ZoneInfo(period.timezone)  # the organization's months: 00:30 on 1 December in Berlin is December
    months: dict[str, dict] = {}
    for at, kind, status, declared, how, seconds in db.execute(
            f"SELECT happened_at, kind, status, json_extract(decision, '$.declaration') IS NOT NULL,"
            f" signoff_how, business_seconds FROM changes WHERE {where} AND status IN {EXCEPTIONS}", args):
        month = f"{from_iso(at).astimezone(tz):%Y-%m}"
        m = months.setdefault(month, {"month": month, "exceptions": 0, "declared": 0, "undeclared": 0,
                                      "reverted": 0, "before_tbr": 0, "_seconds": []})
        m["exceptions"] += 1
        m["before_tbr"] += status == "unapproved"
        if kind == "pr":
            m["declared" if declared else "undeclared"] += 1
        m["reverted"] += how == "reverted"
        if seconds is not None:
            m["_seconds"].append(seconds)
    out = []
    for month in sorted(months):
        m = months[month]
        taken = sorted(m.pop("_seconds"))
        m["median_business_days"] = (sla.business_days(timedelta(seconds=statistics.median(taken)))
                                     if taken else None)
        out.append(m)
    return out


def month_text(m: dict) -> str:
    """One month of `monthly`, as the digest and the evidence summary say it."""
    pushes = m["exceptions"] - m["declared"] - m["undeclared"]  # only a merged PR can be declared
    median = m["median_business_days"]
    before = f" ({m['before_tbr']} before tbr, found by the backfill)" if m["before_tbr"] else ""
    return (f"{m['month']}: {m['exceptions']} unapproved{before}: {m['declared']} declared and {m['undeclared']} undeclared"
            f" merges, {pushes} direct push{'' if pushes == 1 else 'es'}; {m['reverted']} reverted; "
            + (f"median {median} business days to sign-off" if median is not None else "none signed off yet"))


def access_summary(db, period: Period) -> dict:
    reviews = db.execute("SELECT count(*), count(completed_at) FROM access_reviews WHERE opened_at >= ? AND opened_at < ?",
                         [iso(period.start), iso(period.end)]).fetchone()
    decided = dict(db.execute(
        "SELECT coalesce(l.decision, 'undecided'), count(*) FROM access_lines l JOIN access_reviews r ON r.key ="
        " l.review_key WHERE r.opened_at >= ? AND r.opened_at < ? GROUP BY 1",
        [iso(period.start), iso(period.end)]).fetchall())
    offboarding = list(offboarding_rows(db, period))
    orgs = [r[0] for r in db.execute("SELECT DISTINCT org FROM twofa_checks ORDER BY org")]
    return {"reviews": reviews[0], "reviews_complete": reviews[1], "lines_kept": decided.get("keep", 0),
            "lines_revoked": decided.get("revoke", 0), "lines_undecided": decided.get("undecided", 0),
            "offboarding_findings": len(offboarding),
            "offboarding_unresolved": sum(1 for r in offboarding if not r["resolved_at"]),
            "twofa": {org: accesscontrols.twofa_text(accesscontrols.latest_2fa_before(db, org, period.end))
                      for org in orgs}}


def _row(r: dict) -> dict:
    facts = json.loads(r["facts"])
    decision = json.loads(r["decision"]) if r["decision"] else {}
    approval = decision.get("approval") or {}
    if r["kind"] == "pr":
        change, url, title, author = f"#{r['number']}", facts.get("url", ""), facts.get("title", ""), facts.get("author", "")
    else:
        commits = facts.get("commits") or []
        change, url = r["sha"], facts.get("compare") or (commits[-1]["url"] if commits else "")
        title = commits[-1]["message"].split("\n", 1)[0] if commits else ""
        author = " ".join(sorted({c.get("author") or "" for c in commits} - {""})) or r["actor"]
    seconds = r["business_seconds"]
    declared = decision.get("declaration") or {}
    emergency = ("declared" if declared else "undeclared") if r["status"] in EXCEPTIONS and r["kind"] == "pr" else ""
    return {
        "repo": r["repo"], "change": change, "kind": r["kind"], "branch": r["branch"], "url": url, "title": title,
        "author": author, "merged_by": r["actor"], "merged_at": r["happened_at"],
        "decision": DECISIONS[r["status"]], "rule": decision.get("rule", ""), "approver": approval.get("approver", ""),
        "approved_at": approval.get("at") or "", "approval_link": approval.get("url", ""),
        "explanation": decision.get("summary", ""), "emergency": emergency, "declared_by": declared.get("by", ""),
        "declared_at": declared.get("at") or "", "reason": declared.get("reason", ""),
        "ticket": declared.get("ticket") or "", "followup": r["followup_url"] or "", "due": r["due_at"] or "",
        "followup_state": r["followup_state"] or "", "signed_off_at": r["signed_off_at"] or "",
        "signed_off_by": r["signed_off_by"] or "", "completed_how": r["signoff_how"] or "",
        "business_days": sla.business_days(timedelta(seconds=seconds)) if seconds is not None else "",
        "within_sla": {1: "yes", 0: "no"}.get(r["within_sla"], ""), "found_by": _found_by(r["source"]),
        # Approvals (and declarations) that did not count, each with its reason.
        "did_not_count": "; ".join(decision.get("notes") or []),
    }


def _found_by(source: str) -> str:
    return source if source in ("sweep", "backfill") or source.startswith("found through") else "webhook"


def rows(db, period: Period, head: dict | None = None) -> Iterator[dict]:
    """The changes, each checked against its records up to the head `head` (the summary's audit_chain,
    whose rows_disagreeing it counts) proved; without one, the log is verified first."""
    chain = head or _chain_of(db)
    where, args = period.where()
    since = _log_start(db)
    cur = db.conn.execute(f"SELECT *, {_records_of_change()} FROM changes WHERE {where} ORDER BY happened_at, key",
                          [chain["head_seq"], *args])
    names = [d[0] for d in cur.description]
    for values in cur:
        r = dict(zip(names, values))
        row = _row(r)
        row["audit_log"] = _bind(row, r, since)
        if row["audit_log"].startswith(DISAGREES):
            chain["rows_disagreeing"] += 1
        elif row["audit_log"] == PROVEN and not chain["hmac_checked"]:
            row["audit_log"] = AGREES
        yield row


def _chain_of(db) -> dict:
    check = audit.verify(db)
    return {"head_seq": check.head_seq, "hmac_checked": check.unchecked_from is None, "rows_disagreeing": 0}


# Binding rows to the audit log -------------------------------------------------------------------

DISAGREES = "DISAGREES"
PROVEN = "proven"
# Without the audit key, a row agrees with records whose HMACs nobody checked: not proof.
AGREES = "agrees with the audit log (whose HMACs were not checked: no audit key)"
CHANGE_KINDS = ("change.recorded", "change.judged", "followup.filed", "followup.signed_off", "followup.reverted",
                "followup.reopened", "followup.deleted", "followup.transferred")


def _records_of_change() -> str:
    """A column: the change's records up to a verified head, found through the subject index (the name
    audit.subject gives a change), as text: seq, kind, actor, at and data split by US, records by RS
    (JSON escapes both). A PR's name is its own; a push's (repo@sha7) may be another branch's push of
    the same commit, so its key is matched too, as text, which costs less than parsing the record."""
    kinds = ", ".join(f"'{k}'" for k in CHANGE_KINDS)
    return ("(SELECT group_concat(a.seq || char(31) || a.kind || char(31) || a.actor || char(31) || a.at"
            " || char(31) || a.data, char(30)) FROM audit a"
            " WHERE a.subject = (CASE WHEN changes.kind = 'pr' THEN changes.repo || '#' || changes.number"
            " ELSE changes.repo || '@' || substr(changes.sha, 1, 7) END) COLLATE NOCASE AND a.seq <= ?"
            f" AND a.kind IN ({kinds}) AND (changes.kind = 'pr' OR instr(a.data, '\"change\": ' ||"
            " json_quote(changes.key)))) AS _records")


def _parse_records(text: str | None) -> list:
    records = []
    for item in text.split("\x1e") if text else ():
        seq, kind, actor, at, data = item.split("\x1f", 4)
        records.append((int(seq), kind, actor, at, data))
    return sorted(records)


def _log_start(db) -> str:
    first = audit.first_at(db)
    return iso(first) if first else "9999"


def _field(text: str, name: str):
    """One top-level field of a flat record's JSON text, without parsing the rest (JSON escapes every quote
    inside a string, so `"name": ` can only be a key)."""
    at = text.find(f'"{name}": ')
    return _DECODER.raw_decode(text, at + len(name) + 4)[0] if at >= 0 else None


_DECODER = json.JSONDecoder()


def _value(text: str, name: str, claimed: str) -> str:
    """A flat record's field, checked first against the value the table claims (one search, no parse)."""
    if f'"{name}": {json.encoder.encode_basestring(claimed)}' in text:
        return claimed
    return _field(text, name) or ""


DECISION_COLUMNS = ("decision", "rule", "approver", "approved_at", "approval_link", "explanation", "declared_by",
                    "declared_at", "reason", "ticket")
FOLLOWUP_COLUMNS = ("followup", "due", "followup_state", "signed_off_at", "signed_off_by", "completed_how")


def proven(records: list, row: dict, fingerprint: str) -> dict:
    """What a change's records (seq, kind, actor, at, data as JSON text), in order, prove, as export columns.
    A judgement whose fingerprint is the table's (`fingerprint`) proves the row's decision columns as they are."""
    out = {"decision": DECISIONS["pending"]}
    for _, kind, actor, at, text in records:
        if kind == "change.recorded":
            out["merged_at"] = _value(text, "happened_at", row["merged_at"])
        elif kind == "change.judged" and fingerprint and f'"decision_sha": "{fingerprint}"' in text:
            out.update({c: row[c] for c in (*DECISION_COLUMNS, "merged_by")}, **dict.fromkeys(FOLLOWUP_COLUMNS, ""))
        elif kind == "change.judged":
            data = json.loads(text)
            d = data.get("declaration") or {}
            out.update(decision=DECISIONS.get(data["status"], data["status"]), rule=data.get("rule") or "",
                       approver=data.get("approver") or "", approved_at=data.get("approved_at") or "",
                       approval_link=data.get("link") or "", explanation=data.get("summary") or "",
                       declared_by=d.get("by", ""), declared_at=d.get("at") or "", reason=d.get("reason", ""),
                       ticket=d.get("ticket") or "", followup="", due="", followup_state="", signed_off_at="",
                       signed_off_by="", completed_how="")
            if "merged_by" in data:  # recorded since judgements name the merger
                out["merged_by"] = data["merged_by"]
        elif kind == "followup.filed":
            out.update(followup=_value(text, "issue", row["followup"]), due=_value(text, "due", row["due"]),
                       followup_state="open")
        elif kind in ("followup.signed_off", "followup.reverted"):
            how = "reverted" if kind == "followup.reverted" else "comment" if _field(text, "comment") else "closed"
            out.update(followup_state="signed_off", signed_off_at=at, signed_off_by=actor, completed_how=how)
        elif kind == "followup.reopened":
            out.update(followup_state="open", signed_off_at="", signed_off_by="", completed_how="")
        else:  # deleted, transferred
            out["followup_state"] = kind.split(".", 1)[1]
    if out.get("signed_off_at") and out.get("due"):
        out["within_sla"] = "yes" if out["signed_off_at"] <= out["due"] else "no"
    return out


def _bind(row: dict, r: dict, log_start: str) -> str:
    """Put the records' values in the row; say whether the table agreed, naming what it claimed if not."""
    records = _parse_records(r["_records"])
    if not records:
        if r["first_seen_at"] < log_start:
            return "predates the audit log"
        return f"{DISAGREES}: the audit log has no record of this change"
    claimed = []
    fingerprint = audit.fingerprint(r["status"], r["actor"], r["decision"]) if r["decision"] else None
    for column, value in proven(records, row, fingerprint).items():
        if row[column] != value:
            claimed.append(f"{column} {row[column]!r}")
            row[column] = value
    if row["decision"] not in (DECISIONS[s] for s in EXCEPTIONS) or r["kind"] != "pr":
        row["emergency"] = ""
    else:
        row["emergency"] = "declared" if row["declared_by"] else "undeclared"
    return f"{DISAGREES}: the table says " + ", ".join(claimed) if claimed else PROVEN


def missing_changes(db, period: Period, head_seq: int) -> list[str]:
    """Changes the log records in the period, still part of the population by their last judgement, that
    the table no longer shows there (deleted, moved in time, or their status changed)."""
    where, args = period.where()
    repo_clause, repo_args = "", []
    if period.repo:
        repo_clause = " AND lower(substr(a.subject, 1, ?)) IN (lower(?) || '#', lower(?) || '@')"
        repo_args = [len(period.repo) + 1, period.repo, period.repo]
    # The cheap test first: only a change the table lacks costs the lookup of its last judgement.
    return [k for (k,) in db.execute(
        "SELECT k FROM (SELECT json_extract(a.data, '$.change') AS k, a.subject, a.data FROM audit a"
        " WHERE a.kind = 'change.recorded' AND a.seq <= ? AND json_extract(a.data, '$.happened_at') >= ?"
        " AND json_extract(a.data, '$.happened_at') < ?" + repo_clause + ") r"
        f" WHERE NOT EXISTS (SELECT 1 FROM changes WHERE changes.key = r.k AND {where})"
        " AND coalesce((SELECT json_extract(j.data, '$.status') FROM audit j WHERE j.subject = r.subject"
        " COLLATE NOCASE AND j.kind = 'change.judged' AND j.seq <= ? AND instr(j.data, '\"change\": ' ||"
        f" json_quote(r.k)) ORDER BY j.seq DESC LIMIT 1), 'pending') IN ({', '.join('?' * len(DECISIONS))})",
        [head_seq, iso(period.start), iso(period.end), *repo_args, *args, head_seq, *DECISIONS])]


def table_check(db, head_seq: int) -> tuple[int, list[str]]:
    """For `tbr audit verify`: every change and access-review line against the log, all time. Returns how
    many rows disagree and a few of them, named (a change's key, or review:login)."""
    period, chain = Period(datetime(1970, 1, 1, tzinfo=timezone.utc), datetime(9999, 1, 1, tzinfo=timezone.utc)), \
        {"head_seq": head_seq, "hmac_checked": True, "rows_disagreeing": 0}  # counts, whatever the wording
    named = [f"{row['repo']} {row['change']}: {row['audit_log']}" for row in rows(db, period, chain)
             if row["audit_log"].startswith(DISAGREES)][:5]
    named += [f"access review {row['quarter']} {row['repo']} @{row['login']}: {row['audit_log']}"
              for row in access_rows(db, period, chain) if row["audit_log"].startswith(DISAGREES)][:5]
    missing = missing_changes(db, period, head_seq)
    named += [f"{key}: recorded in the audit log, missing from the table" for key in missing[:5]]
    return chain["rows_disagreeing"] + len(missing), named


def failed(head: dict) -> bool:
    """The export does not hold: the chain is broken, or rows disagree with it, or rows are missing. (A chain
    whose links hold but whose HMACs could not be checked, for want of the key, is not broken: it is said so.)"""
    chain = head["audit_chain"]
    return not chain["links_hold"] or bool(chain["rows_disagreeing"]) or bool(chain["missing_from_table"])


# The access controls' sections (CC6.1-CC6.3): their columns, and their rows in a period.
ACCESS_COLUMNS = ("quarter", "subject", "repo", "login", "permission", "via", "decision", "decided_by",
                  "decided_at", "access_removed_at", "review_opened_at", "review_due", "review_completed_at",
                  "review_completed_by", "issue", "audit_log")
OFFBOARDING_COLUMNS = ("org", "login", "repo", "kind", "detail", "found_at", "resolved_at", "issue")
TWOFA_COLUMNS = ("org", "checked_at", "visible", "reason", "members_without_2fa", "outside_without_2fa")


def access_rows(db, period: Period, head: dict | None = None) -> Iterator[dict]:
    """Each person's line, its decision and the review's completion as their records say (see `rows`)."""
    chain = head or _chain_of(db)
    seq = chain["head_seq"]
    for r in db.query(
            "SELECT r.*, l.repo, l.login, l.permission, l.via, l.decision, l.decided_by, l.decided_at, l.applied_at,"
            " (SELECT json_array(a.actor, a.at, json_extract(a.data, '$.decision')) FROM audit a WHERE a.subject ="
            " l.repo COLLATE NOCASE AND a.kind = 'access_review.decided' AND a.seq <= ? AND json_extract(a.data,"
            " '$.review') = r.key AND json_extract(a.data, '$.login') = l.login ORDER BY a.seq DESC LIMIT 1) AS _decided,"
            " (SELECT json_array(a.actor, a.at) FROM audit a WHERE a.kind = 'access_review.completed' AND a.seq <= ?"
            " AND json_extract(a.data, '$.review') = r.key ORDER BY a.seq DESC LIMIT 1) AS _completed"
            " FROM access_reviews r JOIN access_lines l ON l.review_key = r.key"
            " WHERE r.opened_at >= ? AND r.opened_at < ?" + (" AND l.repo = ? COLLATE NOCASE" if period.repo else "")
            + " ORDER BY r.quarter, r.subject, l.repo, l.login", [seq, seq, iso(period.start), iso(period.end)]
            + ([period.repo] if period.repo else [])):
        row = {"quarter": r["quarter"], "subject": r["subject"], "repo": r["repo"], "login": r["login"],
               "permission": r["permission"], "via": "; ".join(json.loads(r["via"])), "decision": r["decision"] or "",
               "decided_by": r["decided_by"] or "", "decided_at": r["decided_at"] or "",
               "access_removed_at": r["applied_at"] or "", "review_opened_at": r["opened_at"],
               "review_due": r["due_at"], "review_completed_at": r["completed_at"] or "",
               "review_completed_by": r["completed_by"] or "", "issue": r["url"]}
        by, at, decision = json.loads(r["_decided"]) if r["_decided"] else ("", "", "undecided")
        done_by, done_at = json.loads(r["_completed"]) if r["_completed"] else ("", "")
        decided = decision != "undecided"
        proof = {"decision": decision if decided else "", "decided_by": by if decided else "",
                 "decided_at": at if decided else "", "review_completed_at": done_at, "review_completed_by": done_by}
        claimed = [f"{column} {row[column]!r}" for column, value in proof.items() if row[column] != value]
        row.update(proof)
        row["audit_log"] = (f"{DISAGREES}: the table says " + ", ".join(claimed) if claimed
                            else PROVEN if chain["hmac_checked"] else AGREES)
        chain["rows_disagreeing"] += bool(claimed)
        yield row


def offboarding_rows(db, period: Period) -> Iterator[dict]:
    """Findings open at any time in the period."""
    for r in db.query("SELECT * FROM offboarding WHERE found_at < ? AND (resolved_at IS NULL OR resolved_at >= ?)"
                      + (" AND repo = ? COLLATE NOCASE" if period.repo else "") + " ORDER BY found_at, login",
                      [iso(period.end), iso(period.start)] + ([period.repo] if period.repo else [])):
        yield {"org": r["org"], "login": r["login"], "repo": r["repo"], "kind": r["kind"], "detail": r["detail"],
               "found_at": r["found_at"], "resolved_at": r["resolved_at"] or "", "issue": r["issue_url"] or ""}


def twofa_rows(db, period: Period) -> Iterator[dict]:
    for r in db.query("SELECT * FROM twofa_checks WHERE checked_at >= ? AND checked_at < ? ORDER BY checked_at, org",
                      [iso(period.start), iso(period.end)]):
        yield {"org": r["org"], "checked_at": r["checked_at"], "visible": "yes" if r["visible"] else "no",
               "reason": r["reason"] or "", "members_without_2fa": " ".join(json.loads(r["members"])),
               "outside_without_2fa": " ".join(json.loads(r["outside"]))}


# Configuration changes: one row per key a `.github/tbr.yml` change set, with whether it was taken.
CONFIG_COLUMNS = ("repo", "recorded_at", "in_force_from", "pushed_by", "commit", "blob", "kind", "key", "before",
                  "after", "outcome", "reason")


def config_rows(db, period: Period) -> Iterator[dict]:
    for c in config_changes(db, period.start, period.end, period.repo):
        base = {"repo": c["repo"], "recorded_at": c["recorded_at"], "in_force_from": c["effective_at"] or "",
                "pushed_by": c["actor"] or "", "commit": c["commit_sha"] or "", "blob": c["blob"] or "",
                "kind": c["kind"]}
        if c["problems"]:
            yield {**base, "key": "", "before": "", "after": "", "outcome": "invalid",
                   "reason": "; ".join(c["problems"]) + " (the previous configuration stays in force)"}
            continue
        for d in c["changes"]:
            why = "; ".join(refusals(c["refused"], d["key"]).values())
            yield {**base, "key": d["key"], "before": config_value(d["before"]), "after": config_value(d["after"]),
                   "outcome": "refused" if why else "taken", "reason": why}


def config_value(value) -> str:
    """A configuration value in one cell ("" when not set)."""
    return "" if value is None else value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


SECTIONS = {"changes": (COLUMNS, rows), "access-reviews": (ACCESS_COLUMNS, access_rows),
            "offboarding": (OFFBOARDING_COLUMNS, offboarding_rows), "2fa": (TWOFA_COLUMNS, twofa_rows),
            "config-changes": (CONFIG_COLUMNS, config_rows)}


def write_csv(out: TextIO, db, period: Period, section: str = "changes", sections: dict = SECTIONS) -> int:
    columns, source = sections[section]
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    cells = operator.itemgetter(*columns)  # DictWriter's per-cell lookups cost more than the proof
    n = 0
    for n, row in enumerate(source(db, period), 1):
        writer.writerow(cells(row))
    return n


# One encoder for every row: json.dumps with options builds a new one per call.
_ROW_JSON = json.JSONEncoder(ensure_ascii=False).encode


def write_json(out: TextIO, db, period: Period, head: dict, sections: dict = SECTIONS) -> int:
    """Every section; returns the number of changes."""
    out.write('{"summary": ' + json.dumps(head, indent=1))
    written = {}
    for section, (_, source) in sections.items():
        out.write(f',\n"{section}": [\n')
        n = 0
        for n, row in enumerate(source(db, period), 1):
            out.write((",\n" if n > 1 else "") + _ROW_JSON(row))
        out.write("\n]")
        written[section] = n
    # Known only once every row was checked: how many disagree with the audit log.
    head["audit_chain"]["rows_checked"] = True
    out.write(',\n"audit_check": ' + json.dumps(check_of(head)) + "}\n")
    return written["changes"]


def summary_lines(s: dict) -> list[str]:
    """The summary for people, at the terminal."""
    c, f, cov, chain, p = s["by_decision"], s["followups"], s["coverage"], s["audit_chain"], s["period"]
    tz = ZoneInfo(p["timezone"])
    rules = ", ".join(f"{n} by {rule}" for rule, n in s["approved_by_rule"].items())
    lines = [
        f"Period: {p['first_day']} to {p['last_day']} ({p['timezone']}){_bounds(p, tz)},"
        f" {s['organization'] or 'no repositories yet'}: {'all watched repositories' if p['repo'] == 'all watched' else p['repo']}",
        f"Changes: {s['changes']}: {c['approved']} approved" + (f" ({rules})" if rules else "")
        + f", {c['followup']} with a follow-up, {c['unapproved']} unapproved before tbr, {c['pending']} pending",
        f"Follow-ups: {f['signed_off']} signed off, {f['within_sla']} within the SLA ({s['sla_compliance']}),"
        f" {f['late']} late; {f['overdue_open']} overdue and still open; {f['open_not_due']} open, not yet due"
        + (f"; {f['deleted_or_transferred']} deleted or transferred" if f["deleted_or_transferred"] else ""),
        *coverage_lines(cov, tz),
    ]
    lines += [month_text(m) for m in s["by_month"]]
    a = s["access"]
    lines.append(f"Access reviews: {a['reviews_complete']} of {a['reviews']} complete; {a['lines_kept']} kept,"
                 f" {a['lines_revoked']} revoked, {a['lines_undecided']} undecided. Offboarding: {a['offboarding_findings']}"
                 f" findings, {a['offboarding_unresolved']} unresolved.")
    lines += [f"{org}: {text}" for org, text in a["twofa"].items()]
    head = f"{chain['records']} records, head #{chain['head_seq']} sha256:{chain['head_hash']}"
    if chain["intact"]:
        lines.append(f"Audit chain: intact, {head}")
    elif chain["links_hold"]:
        lines.append(f"Audit chain: NOT FULLY CHECKED: the links hold ({head}), but {chain['unchecked']}")
    else:
        lines.append(f"Audit chain: BROKEN: {chain['problem']}")
    lines.append(check_line(s))
    return lines


@lru_cache(maxsize=4096)  # the report shows many times, and rows share them; parsing is the cost
def local_minute(text: str, tz: str) -> str:
    """An ISO time as the organization reads it: 2026-11-02 10:00, in its time zone ("" for none)."""
    return f"{from_iso(text).astimezone(ZoneInfo(tz)):%Y-%m-%d %H:%M}" if text else ""


def _bounds(p: dict, tz: ZoneInfo) -> str:
    """The period's exact bounds, when they are not whole days (a --from or --to with a time)."""
    start, end = from_iso(p["from"]).astimezone(tz), from_iso(p["to"]).astimezone(tz)
    if start.time() == end.time() == time(0):
        return ""
    return f", from {start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} (excluded)"


def coverage_lines(cov: dict, tz: ZoneInfo) -> list[str]:
    """Coverage as people read it: running since tbr was installed, the time before it, the gaps."""
    zone = tz.key
    before = cov["before_tbr"]
    if cov["running"] == "n/a":
        lines = ["Coverage: none to measure: all of the period is before tbr"
                 + (f" (installed {local_minute(cov['installed_at'], zone)} {zone})" if cov["installed_at"] else
                    " (it has recorded nothing yet)")]
    else:
        since = f" since tbr was installed ({local_minute(cov['installed_at'], zone)} {zone})" if before else ""
        lines = [f"Coverage: running {cov['running']} of the {cov['watched_hours']} h watched{since},"
                 f" {len(cov['gaps'])} gaps, {cov['sweeps']} sweeps"]
    if before:
        lines.append(f"  before tbr: {local_minute(before['from'], zone)} to {local_minute(before['to'], zone)} {zone}"
                     f" ({before['hours']} h), not downtime: "
                     + (f"its merges judged by the backfill of {local_minute(before['backfilled_at'], zone)}, which looked"
                        f" back to {local_minute(before['backfilled_since'], zone)}" if before["backfilled_at"]
                        else "no backfill judged its merges (tbr backfill --since)"))
    lines += [f"  gap {local_minute(g['from'], zone)} to {local_minute(g['to'], zone)} {zone} ({g['hours']} h): "
              + (f"filled by the sweep at {local_minute(g['filled_by_sweep_at'], zone)}" if g["filled_by_sweep_at"]
                 else "not filled") for g in cov["gaps"]]
    return lines



HEADINGS = {"access-reviews": "Quarterly access reviews (CC6.3)", "offboarding": "Offboarding: access after leaving (CC6.2)",
            "2fa": "Two-factor authentication coverage (CC6.1)",
            "config-changes": "Configuration changes (.github/tbr.yml)"}


def export(db, period: Period, fmt: str, out: TextIO, now: datetime, section: str = "changes",
           policy=None) -> tuple[dict, int]:
    """Write the export (CSV: one section); returns its summary and the number of rows. The summary's
    audit_chain counts the rows that disagree with the log once they are written: see `failed`. `policy`
    (a report.Policy: time zone, SLA, branches) is what the HTML report states and shows times in."""
    head = summary(db, period, now)
    chain = head["audit_chain"]
    sections = {**SECTIONS, "changes": (COLUMNS, lambda db, p: rows(db, p, chain)),
                "access-reviews": (ACCESS_COLUMNS, lambda db, p: access_rows(db, p, chain))}
    if fmt == "csv":
        n = write_csv(out, db, period, section, sections)
    elif fmt == "json":
        n = write_json(out, db, period, head, sections)
    else:
        from tbr import report  # the report reads its figures through this module's queries

        n = report.write(out, db, period, head, sections, policy or report.Policy())
    chain["rows_checked"] = True
    return head, n


def check_of(head: dict) -> dict:
    chain = head["audit_chain"]
    return {"rows_disagreeing": chain["rows_disagreeing"], "missing_from_table": chain["missing_from_table"],
            "holds": not failed(head)}


def check_line(head: dict) -> str:
    """Every row against the audit log, in one line (after the rows, when it is known)."""
    chain = head["audit_chain"]
    missing = chain["missing_from_table"]
    if not failed(head):
        return ("Rows: every row agrees with the audit log" if chain["rows_checked"]
                else "Rows: each is checked against the audit log (its audit_log column; the verdict follows the rows)")
    parts = []
    if not chain["links_hold"]:
        parts.append("the audit chain is broken")
    if chain["rows_disagreeing"]:
        parts.append(f"{chain['rows_disagreeing']} rows disagree with the audit log (their audit_log column"
                     " names what the table says; the row shows what the log proves)")
    if missing:
        parts.append(f"{len(missing)} changes the audit log records are missing from the table: "
                     + ", ".join(missing[:20]) + (" ..." if len(missing) > 20 else ""))
    return "Rows: BROKEN: " + "; ".join(parts)


# The report's figures (tbr/report.py): aggregates, read before the rows are streamed -------------

def hourly_decisions(db, period: Period) -> list[tuple[str, str, int]]:
    """(UTC hour as ISO text, status, count): fine enough to put each change in its local week or day."""
    where, args = period.where()
    return db.execute(f"SELECT substr(happened_at, 1, 13), status, count(*) FROM changes WHERE {where}"
                      " GROUP BY 1, 2 ORDER BY 1", args).fetchall()


def signoff_days(db, period: Period) -> list[float]:
    """Business days from each follow-up's change to its sign-off (reverts included)."""
    where, args = period.where()
    return [sla.business_days(timedelta(seconds=s)) for (s,) in db.execute(
        f"SELECT business_seconds FROM changes WHERE {where} AND status = 'followup' AND signed_off_at IS NOT NULL"
        " AND business_seconds IS NOT NULL", args)]


def anchors(db, period: Period, head_seq: int) -> list[dict]:
    """The daily anchors published in the period (the head each named), and whether the log still holds it."""
    return [{"at": at, "seq": seq, "hash": hash_, "holds": seq is not None and seq <= head_seq and held == hash_}
            for at, seq, hash_, held in db.execute(
                "SELECT a.at, json_extract(x.data, '$.seq'), json_extract(x.data, '$.hash'),"
                " (SELECT h.hash FROM audit h WHERE h.seq = json_extract(x.data, '$.seq'))"
                " FROM audit a LEFT JOIN actions x ON x.key = json_extract(a.data, '$.action')"
                " WHERE a.kind = 'action.anchor' AND a.at >= ? AND a.at < ? ORDER BY a.seq",
                [iso(period.start), iso(period.end)])]


STORY_KINDS = (*CHANGE_KINDS, "followup.reminded", "followup.signoff_refused", "followup.close_refused")


def story(db, row: dict, head_seq: int) -> list[tuple[str, str, str, dict]]:
    """An exception's records up to the verified head, in order: (at, kind, actor, data). A push's subject
    (repo@sha7) may name another branch's push of the same commit: records naming another change drop."""
    subject = f"{row['repo']}{row['change']}" if row["kind"] == "pr" else f"{row['repo']}@{row['change'][:7]}"
    issue = issue_ref(row["followup"])
    out = []
    for at, kind, actor, data in db.execute(
            f"SELECT at, kind, actor, data FROM audit WHERE subject = ? COLLATE NOCASE AND seq <= ?"
            f" AND kind IN ({', '.join('?' * len(STORY_KINDS))}) ORDER BY seq", [subject, head_seq, *STORY_KINDS]):
        data = json.loads(data)
        mine = (data["change"].endswith(f":{row['branch']}:{row['change']}") if "change" in data
                else data.get("issue") == issue)  # a reminder names its issue, not its change
        if row["kind"] != "pr" and not mine:
            continue
        out.append((at, kind, actor, data))
    return out


def issue_ref(url: str) -> str:
    """owner/name#N for an issue's URL (as records name issues); the URL itself if it is not one."""
    if "/issues/" not in url:
        return url
    repo, number = accesscontrols.issue_of(url)
    return f"{repo}#{number}"
