"""The `tbr` command: operate the bot from a shell, with the same settings as the service."""

from __future__ import annotations

import argparse
import json
import re
import sys
from datetime import datetime, timedelta, timezone

from tbr import config, logs


def _settings() -> config.Settings:
    try:
        return config.load()
    except config.ConfigError as e:
        print(f"tbr: configuration error: {e}", file=sys.stderr)
        raise SystemExit(2) from None


def check_config(_args) -> int:
    """Settings first, then what only GitHub can tell: the key works, the tracking repo takes issues."""
    from tbr.github import Gateway, GitHubError, GitHubUnavailable, RetryPolicy

    settings = _settings()
    print(f"ok: settings (app {settings.app_id}, db {settings.db_path}, timezone {settings.timezone},"
          f" holidays {settings.holidays or 'none'}, grace {settings.grace_seconds}s)")
    gateway = Gateway(settings, timeout=10, retry=RetryPolicy(max_tries=1))  # answer fast, retry by hand
    try:
        app = gateway.app_info()
        print(f"ok: the private key authenticates as App {app['name']!r} (id {app['id']})")
        if app["id"] != settings.app_id:
            print(f"tbr: TBR_APP_ID is {settings.app_id} but the key belongs to App {app['id']}", file=sys.stderr)
            return 1
        repo = settings.tracking_repo
        if repo is None:
            print("ok: no TBR_TRACKING_REPO: each follow-up goes to the repository that changed")
            return 0
        info = gateway.repo(gateway.installation_for(repo), repo)
    except GitHubError as e:
        hint = " (is the App installed on it?)" if e.status == 404 else ""
        print(f"tbr: {e}{hint}", file=sys.stderr)
        return 1
    except GitHubUnavailable as e:
        print(f"tbr: GitHub is unreachable: {e}", file=sys.stderr)
        return 1
    if info.archived:
        print(f"tbr: TBR_TRACKING_REPO {repo} is archived: follow-ups cannot be filed there", file=sys.stderr)
        return 1
    if not info.has_issues:
        print(f"tbr: TBR_TRACKING_REPO {repo} has issues disabled: enable them in its settings", file=sys.stderr)
        return 1
    print(f"ok: tracking repo {info.full_name} exists, is not archived and has issues enabled")
    return 0


def process(_args) -> int:
    """Do all due work once and exit (for cron, or to drain work by hand)."""
    runtime = _runtime()
    handled = runtime.engine.run_due()
    print(json.dumps({"handled": handled, **runtime.store.counts()}))
    return 0


def _runtime():
    from tbr.web import build

    settings = _settings()
    logs.configure(settings.log_format)
    return build(settings)


def _when(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise SystemExit(f"tbr: not an ISO 8601 time: {value!r}") from None
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)


def sweep_cmd(args) -> int:
    """Look for merges the webhooks missed (and request failed deliveries again), then judge them."""
    from tbr import sweep

    runtime = _runtime()
    result = sweep.sweep(runtime.engine, since=_when(args.since))
    handled = runtime.engine.run_due()
    print(json.dumps({"since": result.since.isoformat(), "repos_checked": result.repos_checked,
                      "changes_found": result.changes_found, "redeliveries": result.redeliveries,
                      "errors": result.errors, "handled": handled}))
    return 1 if result.errors else 0


def remind_cmd(args) -> int:
    """Queue the reminders owed at --now (default: now) and post them; --dry-run only prints them."""
    from tbr import lifecycle

    runtime = _runtime()
    engine = runtime.engine
    now = _when(args.now) or engine.clock()
    queued = lifecycle.plan_reminders(runtime.store, runtime.settings, now, engine.clock(), dry_run=args.dry_run)
    for item in queued:
        print(f"{'would post' if args.dry_run else 'queued'} {item['kind']} on {item['issue']}: {item['text']}")
    if not args.dry_run:
        engine.run_due()
    print(f"{len(queued)} reminder(s)")
    return 0


def digest_cmd(args) -> int:
    """Publish (or update) this week's digest as of --now; --dry-run prints it instead."""
    from tbr import digest

    runtime = _runtime()
    now = _when(args.now) or runtime.engine.clock()
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


def status(_args) -> int:
    store = _store()
    print(json.dumps(store.counts(), indent=2))
    print(budget_text(store, datetime.now(timezone.utc)))
    for row in store.db.query(
            "SELECT key, repo, status, decision, followup_url, last_error FROM changes"
            " ORDER BY first_seen_at DESC LIMIT 20"):
        summary = json.loads(row["decision"])["summary"] if row["decision"] else ""
        extra = row["followup_url"] or row["last_error"] or ""
        print(f"{row['status']:9} {row['key']:40} {row['repo']} {extra}\n          {summary}".rstrip())
    return 0


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


def _store():
    from tbr.store import Store

    return Store(_settings().db_path)


def audit_verify(args) -> int:
    """Recompute the audit log's hash chain; non-zero naming the first record that does not hold."""
    from tbr import audit

    expect = None
    if args.expect:
        seq, _, hash_ = args.expect.partition(":")
        if not seq.lstrip("#").isdigit() or len(hash_.removeprefix("sha256:")) != 64:
            raise SystemExit(f"tbr: --expect takes SEQ:HASH, as the digest prints it: {args.expect!r}")
        expect = (int(seq.lstrip("#")), hash_.removeprefix("sha256:"))
    result = audit.verify(_store().db, expect)
    print(result.describe(), file=sys.stdout if result.ok else sys.stderr)
    return 0 if result.ok else 1


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

    _print_records(audit.records(_store().db, last=args.n), args.json)
    return 0


def audit_search(args) -> int:
    from tbr import audit

    found = _print_records(audit.records(_store().db, subject=args.subject, kind=args.kind, since=_when(args.since),
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
            print(f"\r\033[K{where}: {result.pulls} PRs, {result.pushes} pushes, {result.requests} requests",
                  end="", file=sys.stderr, flush=True)

    result = backfill.backfill(runtime.engine, _when(args.since), args.repo, args.file_issues, progress)
    if terminal:
        print(file=sys.stderr)
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
    print(f"{len(opened)} access review(s) opened for {quarter}")
    return 0


def access_status(args) -> int:
    """Completion of each access review, as an auditor asks for it."""
    from tbr import accesscontrols

    rows = accesscontrols.status(_store(), args.quarter)
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


def _period_bound(value: str, end: bool) -> datetime:
    """A date means the whole day (so --to 2026-12-31 includes that day); a time means that instant."""
    when = _when(value)
    if end and len(value) == 10:
        when += timedelta(days=1)
    return when


def evidence_cmd(args) -> int:
    """The population of changes in a period, with approvals and follow-ups, and a summary."""
    import getpass

    from tbr import evidence

    if args.repo and not config.REPO_RE.match(args.repo):
        raise SystemExit(f"tbr: not owner/name: {args.repo!r}")
    period = evidence.Period(_period_bound(args.from_, False), _period_bound(args.to, True), args.repo)
    if period.end <= period.start:
        raise SystemExit("tbr: --to is before --from")
    store, now = _store(), datetime.now(timezone.utc)
    out = open(args.out, "w", encoding="utf-8", newline="") if args.out else sys.stdout
    try:
        head, n = evidence.export(store.db, period, args.format, out, now, args.section)
    finally:
        if args.out:
            out.close()
    store.audit("evidence.exported", period.repo or "", getpass.getuser(), now, format=args.format, rows=n,
                period=head["period"], out=args.out, audit_head=head["audit_chain"]["head_hash"])
    for line in evidence.summary_lines(head):
        print(line, file=sys.stderr)
    what = "changes" if args.format != "csv" or args.section == "changes" else f"{args.section} rows"
    print(f"{n} {what} written" + (f" to {args.out}" if args.out else ""), file=sys.stderr)
    return 0 if head["audit_chain"]["intact"] else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tbr", description="tbr: follow-up reviews for unapproved changes")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("check-config", help="validate settings and GitHub access, start nothing").set_defaults(fn=check_config)
    sub.add_parser("process", help="do all due work once, then exit").set_defaults(fn=process)
    sub.add_parser("status", help="what is pending, judged and filed").set_defaults(fn=status)
    p = sub.add_parser("config", help="per-repository configuration")
    show = p.add_subparsers(dest="action", required=True).add_parser(
        "show", help="the effective configuration of owner/repo and where each value came from")
    show.add_argument("repo")
    show.set_defaults(fn=config_show)
    p = sub.add_parser("sweep", help="find changes the webhooks missed, since the last sweep or --since")
    p.add_argument("--since", help="ISO 8601 date or time (default: the last sweep, less an hour)")
    p.set_defaults(fn=sweep_cmd)
    for name, fn, what in (("remind", remind_cmd, "post the SLA reminders owed"),
                           ("digest", digest_cmd, "publish or update this week's overdue digest")):
        p = sub.add_parser(name, help=what)
        p.add_argument("--now", help="judge as if it were this ISO 8601 time")
        p.add_argument("--dry-run", action="store_true", help="print, write nothing")
        p.set_defaults(fn=fn)
    p = sub.add_parser("backfill", help="judge the merges before tbr was installed, for the evidence")
    p.add_argument("--since", required=True, help="ISO 8601 date or time")
    p.add_argument("--repo", help="only this owner/name")
    p.add_argument("--file-issues", action="store_true",
                   help="file a follow-up for each unapproved change (default: only record the decisions)")
    p.set_defaults(fn=backfill_cmd)
    p = sub.add_parser("evidence", help="export the changes of a period with their approvals and follow-ups")
    p.add_argument("--from", dest="from_", required=True, help="first day (ISO 8601 date or time, UTC)")
    p.add_argument("--to", required=True, help="last day, included (ISO 8601 date), or an end time (excluded)")
    p.add_argument("--format", choices=("csv", "json", "html"), default="csv")
    p.add_argument("--out", help="file to write (default: standard output); the summary goes to standard error")
    p.add_argument("--repo", help="only this owner/name")
    p.add_argument("--section", choices=("changes", "access-reviews", "offboarding", "2fa"), default="changes",
                   help="with --format csv: which table (JSON and HTML hold them all)")
    p.set_defaults(fn=evidence_cmd)
    p = sub.add_parser("access-review", help="quarterly access reviews (SOC 2 CC6.3)")
    access_sub = p.add_subparsers(dest="action", required=True)
    o = access_sub.add_parser("open", help="open the quarter's reviews not open yet")
    o.add_argument("--quarter", help="like 2026-Q4 (default: this quarter)")
    o.add_argument("--repo", help="only this owner/name")
    o.set_defaults(fn=access_open)
    st = access_sub.add_parser("status", help="completion per repository (or organization)")
    st.add_argument("--quarter", help="like 2026-Q4 (default: all)")
    st.add_argument("--json", action="store_true")
    st.set_defaults(fn=access_status)
    p = sub.add_parser("audit", help="the tamper-evident audit log")
    audit_sub = p.add_subparsers(dest="action", required=True)
    v = audit_sub.add_parser("verify", help="recompute the hash chain; exit 1 naming the first broken record")
    v.add_argument("--expect", metavar="SEQ:HASH", help="a head the log must still contain (from a weekly digest)")
    v.set_defaults(fn=audit_verify)
    t = audit_sub.add_parser("tail", help="the latest records")
    t.add_argument("-n", type=int, default=20, help="how many (default 20)")
    s = audit_sub.add_parser("search", help="records about one change, issue or repository")
    s.add_argument("--subject", help="owner/repo#12 (a PR), owner/repo@abc1234 (a push), or owner/repo")
    s.add_argument("--kind", help="e.g. change.judged, followup.signed_off, heartbeat")
    s.add_argument("--since", help="ISO 8601 date or time")
    s.add_argument("--until", help="ISO 8601 date or time")
    for cmd, fn in ((t, audit_tail), (s, audit_search)):
        cmd.add_argument("--json", action="store_true", help="one JSON object per line")
        cmd.set_defaults(fn=fn)
    args = parser.parse_args(argv)
    return args.fn(args)


if __name__ == "__main__":
    sys.exit(main())
