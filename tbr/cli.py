"""The `tbr` command: operate the bot from a shell, with the same settings as the service."""

from __future__ import annotations

import argparse
import json
import os
import re
import sqlite3
import sys
import traceback
from datetime import date, datetime, time, timedelta, timezone

from tbr import __version__, config, logs

# Exit codes, for scripts and cron: 1 the command failed (or found a problem), 2 usage or configuration,
# 3 try again later (GitHub unreachable or rate limited, the database busy).
FAILED, USAGE, TRY_LATER = 1, 2, 3

ENVIRONMENT = """\
environment (the same as the service's; README.md, "Configuration"):
  TBR_APP_ID, TBR_PRIVATE_KEY or TBR_PRIVATE_KEY_PATH, TBR_WEBHOOK_SECRET
                        the GitHub App (or TBR_CREDENTIALS, written by /setup)
  TBR_DB                SQLite file (./tbr.db)
  TBR_TRACKING_REPO     owner/name where follow-ups go (the changed repository)
  TBR_REPOS             only these owner/name, comma-separated (every repository installed)
  TBR_TIMEZONE          the organization's time zone, for due dates and times without one (UTC)
  TBR_HOLIDAYS          holiday calendar for the SLA, like US or DE-BY (none)
  TBR_GRACE_SECONDS     wait after a merge before judging it, 0 to 86400 (300)
  TBR_ESCALATE          @user or @org/team to mention on overdue and undeclared changes
  TBR_LOG_FORMAT        json, console, or auto: console at a terminal, JSON otherwise (auto)
  TBR_GITHUB_API_URL    GitHub's API (https://api.github.com)
  and TBR_EXEMPT_AUTHORS, TBR_APPROVAL_PHRASES, TBR_SIGNOFF_PHRASES, TBR_REMINDER_HOUR,
  TBR_OVERDUE_REMINDER_DAYS, TBR_SWEEP_MINUTES, TBR_ACCESS_REVIEWS, TBR_PAYLOAD_DAYS, TBR_DIGEST_AT,
  TBR_SLACK_WEBHOOK_URL, TBR_METRICS_TOKEN, TBR_PUBLIC_URL, TBR_GITHUB_URL, TBR_CREDENTIALS

exit status: 0 done, 1 failed, 2 usage or configuration error, 3 try again later (GitHub unreachable).
Errors are one line; --debug shows the traceback."""


def _settings(app: bool = True) -> config.Settings:
    """The settings; `app` False for commands that only read the database, which run without the App's
    credentials (an auditor with a copy of the database)."""
    return config.load(app=app)  # a ConfigError is one line, by main's error boundary


def check_config(_args) -> int:
    """Settings first, then what only GitHub can tell: the key works, the tracking repo takes issues."""
    from tbr.github import Gateway, GitHubError, RetryPolicy
    from tbr.store import Store

    settings = _settings()
    print(f"ok: settings (app {settings.app_id}, db {settings.db_path}, timezone {settings.timezone},"
          f" holidays {settings.holidays or 'none'}, grace {settings.grace_seconds}s)")
    store = Store(settings.db_path)  # what the service does first: create or migrate it, then write to it
    store.check_writable()
    store.close()
    print(f"ok: database {settings.db_path} is writable")
    gateway = Gateway(settings, timeout=10, retry=RetryPolicy(max_tries=1))  # answer fast, retry by hand
    app = gateway.app_info()
    print(f"ok: the private key authenticates as App {app['name']!r} (id {app['id']})")
    if app["id"] != settings.app_id:
        print(f"tbr: TBR_APP_ID is {settings.app_id} but the key belongs to App {app['id']}", file=sys.stderr)
        return 1
    missing = []
    for repo in sorted(settings.repos or ()):
        try:
            gateway.repo(gateway.installation_for(repo), repo)
        except GitHubError as e:  # each one named, not only the first
            print(f"tbr: TBR_REPOS lists {repo}, {_refusal(e)}", file=sys.stderr)
            missing.append(repo)
    if settings.repos and not missing:
        print(f"ok: the App is installed on every repository of TBR_REPOS ({len(settings.repos)})")
    repo = settings.tracking_repo
    if repo is None:
        print("ok: no TBR_TRACKING_REPO: each follow-up goes to the repository that changed")
        return 1 if missing else 0
    info = gateway.repo(gateway.installation_for(repo), repo)
    if info.archived:
        print(f"tbr: TBR_TRACKING_REPO {repo} is archived: follow-ups cannot be filed there", file=sys.stderr)
    elif not info.has_issues:
        print(f"tbr: TBR_TRACKING_REPO {repo} has issues disabled: enable them in its settings", file=sys.stderr)
    else:
        print(f"ok: tracking repo {info.full_name} exists, is not archived and has issues enabled")
        return 1 if missing else 0
    return 1


def process(args) -> int:
    """Do all due work once and exit (for cron, or to drain work by hand)."""
    runtime = _runtime()
    handled = runtime.engine.run_due()
    if args.json:
        print(json.dumps({"handled": handled, **runtime.store.counts()}))
    else:
        print(f"{handled} item(s) of work done" + ("" if handled else ": nothing was due"))
        print(_work_line(runtime.store.counts()))
    return 0


def _runtime():
    from tbr.web import build

    settings = _settings()
    logs.configure(settings.log_format)
    return build(settings)


def _when(value: str | None, settings: config.Settings | None = None, option: str = "--now") -> datetime | None:
    """An ISO 8601 time; without an offset, in the organization's time zone (given settings), and said so."""
    if value is None:
        return None
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise SystemExit(f"tbr: not an ISO 8601 time: {value!r}") from None
    if when.tzinfo:
        return when
    if settings is None:
        return when.replace(tzinfo=timezone.utc)
    when = when.replace(tzinfo=settings.tz)
    print(f"note: {option} {value} has no offset: read as {when:%Y-%m-%d %H:%M} {settings.timezone} (TBR_TIMEZONE);"
          " add Z or +01:00 to say otherwise", file=sys.stderr)
    return when


def sweep_cmd(args) -> int:
    """Look for merges the webhooks missed (and request failed deliveries again), then judge them."""
    from tbr import sweep

    runtime = _runtime()
    result = sweep.sweep(runtime.engine, since=_when(args.since, runtime.settings, "--since"))
    handled = runtime.engine.run_due()
    if args.json:
        print(json.dumps({"since": result.since.isoformat(), "repos_checked": result.repos_checked,
                          "changes_found": result.changes_found, "redeliveries": result.redeliveries,
                          "errors": result.errors, "handled": handled}))
    else:
        print(f"swept {result.repos_checked} repositories since {_local(result.since, runtime.settings)}:"
              f" {result.changes_found} change(s) the webhooks missed, {result.redeliveries} failed deliveries"
              f" requested again; {handled} item(s) of work done")
        if result.errors:
            print(f"tbr: {result.errors} part(s) of the sweep failed (the log above says which); the next sweep"
                  " tries again", file=sys.stderr)
    return 1 if result.errors else 0


def remind_cmd(args) -> int:
    """Queue the reminders owed at --now (default: now) and post them; --dry-run only prints them."""
    from tbr import lifecycle

    runtime = _runtime()
    engine = runtime.engine
    now = _when(args.now, runtime.settings) or engine.clock()
    queued = lifecycle.plan_reminders(runtime.store, runtime.settings, now, engine.clock(), dry_run=args.dry_run)
    if not args.dry_run:
        engine.run_due()
    if args.json:
        print(json.dumps(queued, indent=1, ensure_ascii=False))
        return 0
    for item in queued:
        print(f"{'would post' if args.dry_run else 'queued'} {item['kind']} on {item['issue']}: {item['text']}")
    print(f"{len(queued)} reminder(s)" + ("" if queued else ": none owed (each is posted once, at"
                                          f" {runtime.settings.reminder_hour}:00 on a business day)"))
    return 0


def digest_cmd(args) -> int:
    """Publish (or update) this week's digest as of --now; --dry-run prints it instead."""
    from tbr import digest

    runtime = _runtime()
    now = _when(args.now, runtime.settings) or runtime.engine.clock()
    result = digest.publish(runtime.engine, now, dry_run=args.dry_run)
    if args.dry_run or runtime.settings.tracking_repo is None:
        print(f"# {result.title}\n\n{result.body}")
    else:
        print(result.summary)
    return 0


def config_show(args) -> int:
    """The effective configuration of a repository, and where each value came from."""
    from tbr.configstore import describe
    from tbr.repoconfig import PATH

    runtime = _runtime()
    engine = runtime.engine
    if not config.REPO_RE.match(args.repo):
        raise SystemExit(f"tbr: not owner/name: {args.repo!r}")
    inst = engine.gateway.installation_for(args.repo)
    for source in (f"{args.repo.split('/')[0]}/.github", args.repo):
        engine.configs.refresh(inst, source)
        for problem in engine.configs.problems(source):
            print(f"invalid {source}:{PATH}: {problem} (its last valid version stays in force)")
    print(describe(engine.config(inst, args.repo)))
    return 0


def status(args) -> int:
    """What tbr holds, in people's terms: the follow-ups, the work waiting, and the latest changes."""
    from tbr.audit import subject
    from tbr.store import from_iso

    settings = _settings(app=False)
    store = _store(settings, readonly=True)
    counts, now = store.counts(), datetime.now(timezone.utc)
    rows = list(store.db.query("SELECT * FROM changes ORDER BY first_seen_at DESC LIMIT ?", [args.n]))
    if args.json:
        print(json.dumps({"counts": counts, "changes": [
            {"change": subject(r), "state": _state(r, settings, now), "followup": _followup_name(r),
             "url": r["followup_url"], "summary": _summary(r), "last_error": r["last_error"]} for r in rows],
            "quarantined": store.quarantined()}, indent=1))
        return 0
    followups = store.followups()
    open_ = [r for r in followups if r["followup_state"] == "open"]
    overdue = sum(1 for r in open_ if r["due_at"] and from_iso(r["due_at"]) <= now)
    print(f"Follow-ups: {len(open_)} open ({overdue} overdue),"
          f" {sum(1 for r in followups if r['followup_state'] == 'signed_off')} reviewed"
          + "".join(f", {n} {s}" for s in ("deleted", "transferred")
                    if (n := sum(1 for r in followups if r["followup_state"] == s))))
    print(f"Changes: {counts.get('changes_approved', 0)} approved, {counts.get('changes_followup', 0)} unapproved"
          f" (a follow-up each), {counts.get('changes_covered', 0)} part of another change,"
          f" {counts.get('changes_pending', 0)} waiting to be judged")
    print(_work_line(counts))
    print(f"Sweeps: {counts['sweeps']}" + (f", the last at {_local(datetime.fromisoformat(counts['last_sweep']), settings)}"
                                          if counts["last_sweep"] else ""))
    print(budget_text(store, now))
    if rows:
        print(f"\nLatest {len(rows)} change(s), newest first:")
    for r in rows:
        where = f": {_followup_name(r)}" if r["followup_number"] else ""
        print(f"  {subject(r):28} {_state(r, settings, now)}{where}")
        if r["status"] != "covered" and (_summary(r) or r["last_error"]):  # covered: judged with the other one
            print(f"  {'':28} {r['last_error'] if r['status'] == 'pending' and r['last_error'] else _summary(r)}")
    _print_quarantined(store)
    return 0


def _work_line(counts: dict) -> str:
    return (f"Waiting: {counts.get('deliveries_pending', 0)} webhook deliveries, {counts.get('changes_pending', 0)}"
            f" changes, {counts.get('actions_pending', 0)} GitHub actions (comments, labels)")


def _local(when: datetime, settings: config.Settings) -> str:
    return f"{when.astimezone(settings.tz):%a %d %b %Y %H:%M} {settings.timezone}"


def _due_day(row: dict, settings: config.Settings) -> str:
    """The day a follow-up is due by the end of, in the organization's time zone."""
    from tbr.store import from_iso

    return f"{(from_iso(row['due_at']) - timedelta(microseconds=1)).astimezone(settings.tz):%a %d %b %Y}"


def _followup_name(row: dict) -> str | None:
    return f"{row['followup_repo']}#{row['followup_number']}" if row["followup_number"] else None


def _summary(row: dict) -> str:
    return json.loads(row["decision"]).get("summary", "") if row["decision"] else ""


def _state(row: dict, settings: config.Settings, now: datetime) -> str:
    """A change's state as its people would say it."""
    from tbr.store import from_iso

    if row["status"] == "pending":
        return "waiting to be judged" + (" (retrying)" if row["last_error"] else "")
    if row["status"] == "approved":
        return "approved"
    if row["status"] == "covered":
        return "part of another change"
    state = row["followup_state"] or "open"
    if state == "signed_off":
        return (f"reviewed by @{row['signed_off_by']} on {from_iso(row['signed_off_at']).astimezone(settings.tz):%a %d %b}"
                if row["signed_off_at"] else "reviewed")
    if state != "open":
        return f"follow-up {state}"
    if not row["due_at"]:
        return "follow-up open"
    late = from_iso(row["due_at"]) <= now
    return f"{'overdue' if late else 'follow-up open'}, due end of {_due_day(row, settings)}"


def followups_cmd(args) -> int:
    """Follow-ups with their repository, change, assignee, due date and state, soonest due first."""
    settings = _settings(app=False)
    now = _when(args.now, settings) or datetime.now(timezone.utc)
    return print_followups(_store(settings, readonly=True), settings, now, args.open, args.overdue, args.json)


def print_followups(store, settings: config.Settings, now: datetime, open_only: bool = False,
                    overdue_only: bool = False, as_json: bool = False) -> int:
    from tbr.audit import subject
    from tbr.store import from_iso

    rows = store.followups()
    if open_only or overdue_only:
        rows = [r for r in rows if r["followup_state"] == "open"]
    if overdue_only:
        rows = [r for r in rows if r["due_at"] and from_iso(r["due_at"]) <= now]
    listed = [{"followup": _followup_name(r), "url": r["followup_url"], "change": subject(r), "assignee": r["actor"],
               "due": _due_day(r, settings) if r["due_at"] else None,
               "due_at": from_iso(r["due_at"]).astimezone(settings.tz).isoformat() if r["due_at"] else None,
               "state": _state(r, settings, now).split(",")[0]} for r in rows]
    if as_json:
        print(json.dumps(listed, indent=1))
        return 0
    if not listed:
        which = "overdue " if overdue_only else "open " if open_only else ""
        print(f"no {which}follow-ups" + ("" if which else " filed yet"))
        return 0
    print(f"{'FOLLOW-UP':22} {'CHANGE':24} {'ASSIGNEE':12} {'DUE BY END OF (' + settings.timezone + ')':30} STATE")
    for f in listed:
        print(f"{f['followup']:22} {f['change']:24} {'@' + f['assignee']:12} {f['due'] or '-':30} {f['state']}")
    return 0


def _print_quarantined(store) -> None:
    items = store.quarantined()
    if items:
        print(f"\nquarantined: {len(items)} item(s) set aside after failing again and again;"
              " fix the cause, then `tbr retry KEY`")
    for r in items:
        print(f"  {r['kind']:10} {r['key']} {r['subject']} (since {r['quarantined_at'][:16].replace('T', ' ')} UTC,"
              f" {r['attempts']} attempts)\n             {r['error']}")


def retry_cmd(args) -> int:
    """Try quarantined work again, after fixing what made it fail."""
    import getpass

    store, now = _store(existing=True), datetime.now(timezone.utc)
    keys = [r["key"] for r in store.quarantined()] if args.all else args.keys
    if not keys:
        if args.all:
            print("nothing is quarantined: there is nothing to retry")
            return 0
        print("tbr: name the KEY to retry, or --all", file=sys.stderr)
        return USAGE
    failed = 0
    for key in keys:
        found = store.retry(key, now, getpass.getuser())
        if found is None:
            print(f"tbr: no delivery, change or action {key!r} (see `tbr status`)", file=sys.stderr)
            failed = 1
        elif found[1] == "done":
            print(f"{key}: already done; nothing to retry")
        else:
            print(f"{key}: {'out of quarantine, ' if found[1] == 'quarantined' else ''}due now"
                  " (the running service picks it up within seconds)")
    return failed


def budget_text(store, now) -> str:
    """GitHub's rate limit in people's terms: what is left, and what waits for it."""
    counters = store.counters()
    lines = []
    for resource in ("core", "graphql"):
        limit, left = counters.get(f"github_rate_{resource}_limit"), counters.get(f"github_rate_{resource}_remaining")
        reset = counters.get(f"github_rate_{resource}_reset")
        if limit and left is not None and reset:
            at = datetime.fromtimestamp(reset, timezone.utc)
            lines.append(f"GitHub {resource} budget: {int(left)} of {int(limit)} left" +
                         (f", renewed at {at:%H:%M} UTC" if at > now else " (window since renewed)"))
    for p in store.pauses(now):
        lines.append(f"Paused until {p['until'][11:16]} UTC: {p['work']} ({p['reason']})")
    return "\n".join(lines) or "GitHub budget: not seen yet"


def _store(settings: config.Settings | None = None, readonly: bool = False, existing: bool = False):
    """The database; `readonly` for commands that only read it, which leave it as it is. Those, and any
    `existing`, need it to be there: a mistyped TBR_DB is an error, not a new, empty database."""
    from tbr import audit
    from tbr.store import Store

    settings = settings or _settings(app=not readonly)
    if (readonly or existing) and not os.path.isfile(settings.db_path):
        raise config.ConfigError(f"TBR_DB: there is no database at {os.path.abspath(settings.db_path)}: set TBR_DB"
                                 " to tbr's database, or to a copy of it (tbr backup writes one)")
    return Store(settings.db_path, audit.keys_of(settings), readonly=readonly)


def audit_verify(args) -> int:
    """Recompute the audit log's hash chain; non-zero naming the first record that does not hold."""
    from tbr import audit

    expect = None
    if args.expect:
        expect = audit.parse_head(args.expect)
        if expect is None:
            raise SystemExit(f"tbr: --expect takes SEQ:HASH, or #SEQ sha256:HASH as the digest prints it: {args.expect!r}")
    settings = _settings(app=False)
    store = _store(settings, readonly=True)
    published = [] if args.offline else _published_anchors(settings)
    if published is None:
        return FAILED
    result = audit.verify(store.db, expect, store.keys, published)
    print(result.describe(), file=sys.stdout if result.ok else sys.stderr)
    if not (result.ok and _tables_agree(store, result)):
        return FAILED
    if not result.complete:  # what it could not check is not "intact": a configuration to complete
        print(f"tbr: {audit.unchecked_line(result)}", file=sys.stderr)
        return USAGE
    return 0


def _published_anchors(settings: config.Settings) -> list | None:
    """The heads tbr published on GitHub (tbr/anchors.py); None when they cannot be read."""
    from tbr import anchors
    from tbr.github import Gateway, GitHubError, GitHubUnavailable, RetryPolicy

    if not settings.has_app:
        print("no App credentials: the anchors tbr published on GitHub were not fetched (--expect checks one)",
              file=sys.stderr)
        return []
    if settings.tracking_repo is None:
        print("no TBR_TRACKING_REPO: tbr publishes no anchors, so a cut-off log shows only against --expect",
              file=sys.stderr)
        return []
    try:
        return anchors.published(Gateway(settings, timeout=15, retry=RetryPolicy(max_tries=2)), settings.tracking_repo)
    except (GitHubError, GitHubUnavailable) as e:
        print(f"tbr: cannot read the audit anchors published in {settings.tracking_repo}: {e}"
              " (--offline checks the log without them)", file=sys.stderr)
        return None


def _tables_agree(store, result) -> bool:
    """What the export shows must be what the log proves: the tables are checked against it too."""
    from tbr import evidence

    disagree, named = evidence.table_check(store.db, result.head_seq)
    if disagree:
        print(f"tables disagree with the audit log: {disagree} rows", file=sys.stderr)
        for line in named:
            print(f"  {line}", file=sys.stderr)
        return False
    print("tables agree with the audit log: every change and access decision")
    return True


def _print_records(rows, as_json: bool) -> int:
    n = 0
    for r in rows:
        n += 1
        if as_json:
            print(json.dumps(r, ensure_ascii=False))
            continue
        data = " ".join(f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in r["data"].items() if v not in (None, [], ""))
        print(f"#{r['seq']} {r['at'][:19]}Z {r['kind']} {r['subject'] or '-'} by {r['actor'] or '-'} {data}".rstrip())
    return n


def audit_tail(args) -> int:
    from tbr import audit

    _print_records(audit.records(_store(readonly=True).db, last=args.n), args.json)
    return 0


def audit_search(args) -> int:
    from tbr import audit

    found = _print_records(audit.records(_store(readonly=True).db, subject=args.subject, kind=args.kind, since=_when(args.since),
                                         until=_when(args.until)), args.json)
    if not found:
        print("no matching records", file=sys.stderr)
    return 0 if found else 1


def backfill_cmd(args) -> int:
    """Judge the merges since --since, so the evidence covers the time before tbr was installed."""
    from tbr import backfill

    if args.repo and not config.REPO_RE.match(args.repo):
        raise SystemExit(f"tbr: not owner/name: {args.repo!r}")
    runtime = _runtime()
    terminal = sys.stderr.isatty()

    def progress(result, where: str) -> None:
        if terminal:  # one line, redrawn: a year of history takes a while
            logs.progress(f"{where}: {result.pulls} PRs, {result.pushes} pushes, {result.requests} requests")

    try:
        result = backfill.backfill(runtime.engine, _when(args.since, runtime.settings, "--since"), args.repo,
                                   args.file_issues, progress)
    finally:
        logs.end_progress()
    while args.file_issues and runtime.engine.run_due():
        pass  # until nothing is due: what failed waits for its retry, in the service
    print(result.line())
    if args.file_issues:
        waiting = runtime.store.db.execute("SELECT count(*) FROM changes WHERE source = 'backfill'"
                                           " AND status = 'pending'").fetchone()[0]
        print(f"follow-ups filed for the unapproved; {waiting} still waiting (retried by the running service)"
              if waiting else "follow-ups filed for every unapproved change")
    return 0


def access_open(args) -> int:
    """Open this quarter's (or --quarter's) access reviews that are not open yet."""
    from tbr import access, accesscontrols

    runtime = _runtime()
    now = runtime.engine.clock()
    quarter = args.quarter or access.quarter_of(now.astimezone(runtime.engine.tz).date())
    if not re.fullmatch(r"\d{4}-Q[1-4]", quarter):
        raise SystemExit(f"tbr: not a quarter like 2026-Q4: {quarter!r}")
    opened = accesscontrols.open_reviews(runtime.engine, quarter, now, repo=args.repo)
    for key in opened:
        print(f"opened {key}: {accesscontrols.review(runtime.store, key)['url']}")
    print(f"{len(opened)} access review(s) opened for {quarter}" + ("" if opened else _why_none_opened(
        runtime, quarter, args.repo)))
    return 0


def _why_none_opened(runtime, quarter: str, repo: str | None) -> str:
    from tbr import accesscontrols

    already = accesscontrols.status(runtime.store, quarter)
    if already:
        return f": {len(already)} already open or complete (tbr access-review status --quarter {quarter})"
    if repo and not runtime.settings.watches_repo(repo):
        return f": {repo} is not in TBR_REPOS"
    return (": no watched repository has access reviews on (TBR_ACCESS_REVIEWS is"
            f" {'on' if runtime.settings.access_reviews else 'off'}; a repository's or organization's"
            " .github/tbr.yml can set access_review)")


def access_status(args) -> int:
    """Completion of each access review, as an auditor asks for it."""
    from tbr import accesscontrols

    rows = accesscontrols.status(_store(readonly=True), args.quarter)
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    for r in rows:
        done = (f"complete {r['completed_at'][:16].replace('T', ' ')} UTC by @{r['completed_by']}"
                if r["completed_at"] else f"{r['undecided']} undecided, due {r['due_at'][:10]}")
        print(f"{r['quarter']}  {r['subject']:30} {r['lines']:>3} lines: {r['kept']} kept, {r['revoked']} revoked;"
              f" {done}  {r['issue']}")
    if not rows:
        print("no access reviews" + (f" for {args.quarter}" if args.quarter else ""))
    return 0


def _period_bound(value: str, settings: config.Settings, option: str, end: bool) -> datetime:
    """A date means the whole day in the organization's time zone (so --to 2026-12-31 includes that day);
    a time means that instant (without an offset, in that time zone too)."""
    try:
        day = date.fromisoformat(value)
    except ValueError:
        return _when(value, settings, option)
    return datetime.combine(day + timedelta(days=end), time(0), tzinfo=settings.tz)


def evidence_cmd(args) -> int:
    """The population of changes in a period, with approvals and follow-ups, and a summary."""
    import getpass

    from tbr import evidence, pdf, report

    if args.repo and not config.REPO_RE.match(args.repo):
        raise SystemExit(f"tbr: not owner/name: {args.repo!r}")
    settings = _settings(app=False)
    period = evidence.Period(_period_bound(args.from_, settings, "--from", False),
                             _period_bound(args.to, settings, "--to", True), args.repo, settings.timezone)
    if period.end <= period.start:
        raise SystemExit("tbr: --to is before --from")
    if args.format == "pdf" and not args.out and sys.stdout.isatty():
        raise SystemExit("tbr: --format pdf writes a PDF: give --out FILE, or redirect standard output to a file")
    # Without the App's credentials (an auditor's copy), the database is read as it is, and the export
    # goes unrecorded: a record needs the audit key, and a copy is better left unchanged.
    store, now = _store(settings, readonly=not settings.has_app, existing=True), datetime.now(timezone.utc)
    policy = report.Policy(holidays=settings.holidays, repos=tuple(sorted(settings.repos or ())))

    def write(out):
        return evidence.export(store.db, period, "html" if args.format == "pdf" else args.format, out, now,
                               args.section, policy)

    if args.format == "pdf":
        pdf.require()  # before anything is written
        out = open(args.out, "wb") if args.out else sys.stdout.buffer
    else:
        out = open(args.out, "w", encoding="utf-8", newline="") if args.out else sys.stdout
    try:
        head, n = pdf.write(write, out, args.paper) if args.format == "pdf" else write(out)
    finally:
        if args.out:
            out.close()
    for line in evidence.summary_lines(head):
        print(line, file=sys.stderr)
    if settings.has_app:
        store.audit("evidence.exported", period.repo or "", getpass.getuser(), now, format=args.format, rows=n,
                    period=head["period"], out=args.out, audit_head=head["audit_chain"]["head_hash"])
    else:
        print("Not recorded in the audit log: without the App's credentials the database was only read", file=sys.stderr)
    what = "changes" if args.format != "csv" or args.section == "changes" else f"{args.section} rows"
    print(f"{n} {what} written" + (f" to {args.out}" if args.out else ""), file=sys.stderr)
    return 1 if evidence.failed(head) else 0


def backup_cmd(args) -> int:
    """A consistent copy through SQLite's online backup API (a plain `cp` misses the WAL), while tbr runs."""
    import os
    import sqlite3

    from tbr import audit

    try:
        size = _store(readonly=True).backup(args.path)
        copy = sqlite3.connect(args.path)
        seq, head = audit.head(copy)
        copy.close()
    except (OSError, sqlite3.Error) as e:
        print(f"tbr: cannot write {args.path}: {e}", file=sys.stderr)
        return 1
    print(f"backed up {size} bytes to {os.path.abspath(args.path)}; its audit log ends at #{seq} sha256:{head}")
    return 0


def _refusal(e) -> str:
    """GitHub's refusal, and what a 404 most often means for an App."""
    hint = " (does it exist, and is the App installed on it?)" if e.status == 404 else ""
    return f"{e}{hint}"


def _error_line(e: BaseException) -> tuple[str, int]:
    """One line and an exit code for what can go wrong outside tbr's control; anything else is a bug."""
    from tbr.digest import SlackFailed
    from tbr.github import GitHubError, GitHubUnavailable

    if isinstance(e, config.ConfigError):
        return f"configuration error: {e}", USAGE
    if isinstance(e, GitHubUnavailable):
        return f"GitHub is unreachable or busy, try again later: {e}", TRY_LATER
    if isinstance(e, GitHubError):
        return _refusal(e), FAILED
    if isinstance(e, sqlite3.OperationalError) and "locked" in str(e):
        return f"the database is busy (another tbr writing?), try again: {e}", TRY_LATER
    if isinstance(e, sqlite3.Error):
        return f"database {os.environ.get('TBR_DB') or './tbr.db'} (TBR_DB): {e}", FAILED
    if isinstance(e, SlackFailed):
        return str(e), FAILED
    if isinstance(e, OSError) and e.filename:
        return f"{e.filename}: {e.strerror}", FAILED
    if isinstance(e, OSError):
        return f"{e.strerror or e}", FAILED
    return f"unexpected {type(e).__name__}: {e} (tbr --debug ... shows where)", FAILED


def _run(args) -> int:
    """The error boundary: whatever a command raises reaches people as one line and an exit code."""
    try:
        return args.fn(args)
    except KeyboardInterrupt:
        print("tbr: interrupted", file=sys.stderr)
        return 130
    except Exception as e:
        logs.end_progress()
        if args.debug:
            traceback.print_exc()
        line, code = _error_line(e)
        print(f"tbr: {line}".replace("\n", " "), file=sys.stderr)
        return code


def demo_cmd(args) -> int:
    """A week of tbr against the tests' simulated GitHub, on loopback; nothing leaves this machine."""
    from tbr import demo

    return demo.run(args.out)


def _help_formatter(prog: str) -> argparse.HelpFormatter:
    formatter = argparse.RawDescriptionHelpFormatter(prog, max_help_position=24, width=100)
    # argparse measures the commands' names without their indent, so "access-review" would wrap its help
    formatter._action_max_length = 20
    return formatter


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv  # anywhere on the line, after any command (and commands added later)
    argv = [a for a in argv if a != "--debug"]
    parser = argparse.ArgumentParser(prog="tbr", description="tbr: follow-up reviews for unapproved changes",
                                     epilog=ENVIRONMENT, formatter_class=_help_formatter)
    parser.add_argument("--version", action="version", version=f"tbr {__version__}")
    parser.add_argument("--debug", action="store_true", help="on an error, show the traceback too")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sub.add_parser("check-config", help="validate settings, the database and GitHub access, start nothing"
                   ).set_defaults(fn=check_config)
    p = sub.add_parser("process", help="do all due work once, then exit")
    p.add_argument("--json", action="store_true", help="one JSON object: work done and the queues' counts")
    p.set_defaults(fn=process)
    p = sub.add_parser("status", help="follow-ups, waiting work and the latest changes")
    p.add_argument("-n", type=int, default=20, metavar="N", help="how many of the latest changes (default 20)")
    p.add_argument("--json", action="store_true", help="the counts and the latest changes as JSON")
    p.set_defaults(fn=status)
    p = sub.add_parser("followups", help="follow-up issues: change, assignee, due date and state")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--open", action="store_true", help="only those not reviewed yet")
    which.add_argument("--overdue", action="store_true", help="only those past their due date")
    p.add_argument("--now", metavar="TIME", help="overdue as of this ISO 8601 time (default: now)")
    p.add_argument("--json", action="store_true", help="a JSON list")
    p.set_defaults(fn=followups_cmd)
    p = sub.add_parser("demo", help="watch tbr work for a week, against a simulated GitHub (needs a clone)")
    p.add_argument("--out", metavar="DIR", help="where to leave the database and the evidence report"
                   " (default: a new temporary directory)")
    p.set_defaults(fn=demo_cmd)
    p = sub.add_parser("retry", help="try quarantined work again after a fix (see `tbr status`)")
    p.add_argument("keys", nargs="*", metavar="KEY", help="a delivery's GUID, a change's or an action's key")
    p.add_argument("--all", action="store_true", help="every quarantined item")
    p.set_defaults(fn=retry_cmd)
    p = sub.add_parser("config", help="per-repository configuration")
    show = p.add_subparsers(dest="action", required=True, metavar="ACTION").add_parser(
        "show", help="the effective configuration of owner/repo and where each value came from")
    show.add_argument("repo", metavar="OWNER/REPO", help="the repository, like acme/api")
    show.set_defaults(fn=config_show)
    p = sub.add_parser("sweep", help="find changes the webhooks missed, since the last sweep or --since")
    p.add_argument("--since", metavar="TIME", help="ISO 8601 date or time (default: the last sweep, less an hour);"
                   " without an offset, in TBR_TIMEZONE")
    p.add_argument("--json", action="store_true", help="one JSON object")
    p.set_defaults(fn=sweep_cmd)
    for name, fn, what in (("remind", remind_cmd, "post the SLA reminders owed"),
                           ("digest", digest_cmd, "publish or update this week's overdue digest")):
        p = sub.add_parser(name, help=what)
        p.add_argument("--now", metavar="TIME",
                       help="judge as if it were this ISO 8601 time; without an offset, in TBR_TIMEZONE")
        p.add_argument("--dry-run", action="store_true", help="print, write nothing")
        if name == "remind":  # a listing
            p.add_argument("--json", action="store_true", help="the reminders owed, as a JSON list")
        p.set_defaults(fn=fn)
    p = sub.add_parser("backfill", help="judge the merges before tbr was installed, for the evidence")
    p.add_argument("--since", required=True, metavar="TIME",
                   help="ISO 8601 date or time; without an offset, in TBR_TIMEZONE")
    p.add_argument("--repo", metavar="OWNER/REPO", help="only this repository")
    p.add_argument("--file-issues", action="store_true",
                   help="file a follow-up for each unapproved change (default: only record the decisions)")
    p.set_defaults(fn=backfill_cmd)
    p = sub.add_parser("evidence", help="export the changes of a period with their approvals and follow-ups")
    p.add_argument("--from", dest="from_", metavar="DATE", required=True,
                   help="first day (ISO 8601 date, a whole day in TBR_TIMEZONE, or a time)")
    p.add_argument("--to", metavar="DATE", required=True,
                   help="last day, included (ISO 8601 date, in TBR_TIMEZONE), or an end time (excluded)")
    p.add_argument("--format", choices=("csv", "json", "html", "pdf"), default="csv",
                   help="csv (one table, see --section), json, or the report for people: html, or pdf (needs"
                   " Chromium; --out, or standard output redirected to a file) (default csv)")
    p.add_argument("--paper", choices=("a4", "letter"), default="a4", help="with --format pdf: the paper size"
                   " (default a4)")
    p.add_argument("--out", metavar="FILE",
                   help="file to write (default: standard output); the summary goes to standard error")
    p.add_argument("--repo", metavar="OWNER/REPO", help="only this repository")
    p.add_argument("--section", choices=("changes", "access-reviews", "offboarding", "2fa", "config-changes"),
                   default="changes",
                   help="with --format csv: which table (JSON and HTML hold them all)")
    p.set_defaults(fn=evidence_cmd)
    p = sub.add_parser("access-review", help="quarterly access reviews (SOC 2 CC6.3)")
    access_sub = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    o = access_sub.add_parser("open", help="open the quarter's reviews not open yet")
    o.add_argument("--quarter", help="like 2026-Q4 (default: this quarter)")
    o.add_argument("--repo", metavar="OWNER/REPO", help="only this repository")
    o.set_defaults(fn=access_open)
    st = access_sub.add_parser("status", help="completion per repository (or organization)")
    st.add_argument("--quarter", help="like 2026-Q4 (default: all)")
    st.add_argument("--json", action="store_true", help="a JSON list")
    st.set_defaults(fn=access_status)
    p = sub.add_parser("audit", help="the tamper-evident audit log")
    audit_sub = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    v = audit_sub.add_parser("verify", help="recompute the hash chain; exit 1 naming the first broken record")
    v.add_argument("--expect", metavar="SEQ:HASH", help="a head the log must still contain (from a weekly digest)")
    v.add_argument("--offline", action="store_true", help="do not fetch the anchors published on GitHub")
    v.set_defaults(fn=audit_verify)
    t = audit_sub.add_parser("tail", help="the latest records")
    t.add_argument("-n", type=int, default=20, metavar="N", help="how many (default 20)")
    s = audit_sub.add_parser("search", help="records about one change, issue or repository")
    s.add_argument("--subject", help="owner/repo#12 (a PR), owner/repo@abc1234 (a push), or owner/repo")
    s.add_argument("--kind", help="e.g. change.judged, followup.signed_off, heartbeat")
    s.add_argument("--since", metavar="TIME", help="ISO 8601 date or time (UTC without an offset)")
    s.add_argument("--until", metavar="TIME", help="ISO 8601 date or time (UTC without an offset)")
    for cmd, fn in ((t, audit_tail), (s, audit_search)):
        cmd.add_argument("--json", action="store_true", help="one JSON object per line")
        cmd.set_defaults(fn=fn)
    p = sub.add_parser("backup", help="write a consistent copy of the database while tbr runs")
    p.add_argument("path", help="file to write (replaced atomically; 0600)")
    p.set_defaults(fn=backup_cmd)
    args = parser.parse_args(argv)
    args.debug = args.debug or debug
    return _run(args)


if __name__ == "__main__":
    sys.exit(main())
