"""/metrics in Prometheus' text format, read from the database at scrape time.

gunicorn runs several processes and a scrape reaches one of them; counting in the database rather
than in process memory makes every scrape tell the whole deployment's story.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from tbr.audit import coverage, first_at
from tbr.evidence import Period, monthly
from tbr.store import Store, from_iso, iso

COVERAGE_WINDOW = timedelta(days=7)


class Collector:
    def __init__(self, store: Store, clock: Callable[[], datetime], timezone: str = "UTC"):
        self.store = store
        self.clock = clock
        self.timezone = timezone  # the organization's: its months, as the digest and the report count them

    def collect(self):
        db, now = self.store.db, self.clock()
        deliveries = CounterMetricFamily("tbr_deliveries", "Webhook deliveries stored, by event and status",
                                         labels=["event", "status"])
        for r in db.query("SELECT event, status, count(*) AS n FROM deliveries GROUP BY event, status"):
            deliveries.add_metric([r["event"], r["status"]], r["n"])
        counters = self.store.counters()
        refused = CounterMetricFamily("tbr_webhooks_refused", "Webhook requests refused, by HTTP status",
                                      labels=["status"])
        for name, value in counters.items():
            if name.startswith("webhook_refused_"):
                refused.add_metric([name.removeprefix("webhook_refused_")], value)
        decisions = CounterMetricFamily("tbr_decisions", "Changes judged, by status and rule",
                                        labels=["status", "rule"])
        for r in db.query("SELECT status, json_extract(decision, '$.rule') AS rule, count(*) AS n FROM changes"
                          " WHERE decision IS NOT NULL GROUP BY status, rule"):
            decisions.add_metric([r["status"], r["rule"] or ""], r["n"])
        followups = GaugeMetricFamily("tbr_followups", "Follow-up issues by state", labels=["state"])
        for r in db.query("SELECT followup_state AS s, count(*) AS n FROM changes WHERE status = 'followup'"
                          " GROUP BY followup_state"):
            followups.add_metric([r["s"] or "open"], r["n"])
        overdue = GaugeMetricFamily("tbr_followups_overdue", "Open follow-ups past their due date")
        overdue.add_metric([], db.execute("SELECT count(*) FROM changes WHERE status = 'followup' AND"
                                          " followup_state = 'open' AND due_at <= ?", [iso(now)]).fetchone()[0])
        pending = GaugeMetricFamily("tbr_pending_work", "Work waiting in the database", labels=["kind"])
        for table in ("deliveries", "changes", "actions"):
            pending.add_metric([table], db.execute(f"SELECT count(*) FROM {table} WHERE status = 'pending'").fetchone()[0])
        quarantined = GaugeMetricFamily("tbr_quarantined", "Work set aside after repeated failures, until"
                                        " `tbr retry`", labels=["kind"])
        set_aside = self.store.quarantined()
        for table in ("deliveries", "changes", "actions"):
            quarantined.add_metric([table], sum(1 for r in set_aside if r["table"] == table))
        sweeps = CounterMetricFamily("tbr_sweeps", "Reconciliation sweeps run, by result", labels=["result"])
        for r in db.query("SELECT error IS NULL AS ok, count(*) AS n FROM sweeps WHERE finished_at IS NOT NULL"
                          " GROUP BY ok"):
            sweeps.add_metric(["ok" if r["ok"] else "error"], r["n"])
        last = db.execute("SELECT finished_at, repos_checked FROM sweeps WHERE finished_at IS NOT NULL"
                          " ORDER BY finished_at DESC LIMIT 1").fetchone()
        # The name Tailscale's bot used, so alerts written for it keep working.
        repos = GaugeMetricFamily("tbrbot_repos_checked", "Repositories checked by the last sweep")
        repos.add_metric([], last[1] if last else 0)
        since = GaugeMetricFamily("tbr_seconds_since_last_sweep", "Seconds since the last sweep finished")
        since.add_metric([], (now - from_iso(last[0])).total_seconds() if last else float("inf"))
        github = CounterMetricFamily("tbr_github_requests", "GitHub API answers, by status class", labels=["status"])
        for name, value in counters.items():
            if name.startswith("github_requests_"):
                github.add_metric([name.removeprefix("github_requests_")], value)
        rate = GaugeMetricFamily("tbr_github_rate_limit_remaining", "Requests left in GitHub's rate-limit window")
        if "github_rate_limit_remaining" in counters:
            rate.add_metric([], counters["github_rate_limit_remaining"])
        exceptions = CounterMetricFamily("tbr_exceptions", "Unapproved changes by month (all), unapproved merges"
                                         " declared, undeclared and reverted, and those before tbr (backfilled)",
                                         labels=["month", "kind"])
        median = GaugeMetricFamily("tbr_exceptions_median_business_days", "Median business days to sign-off, by month",
                                   labels=["month"])
        for m in monthly(db, Period(datetime.min.replace(tzinfo=now.tzinfo), now, timezone=self.timezone)):
            exceptions.add_metric([m["month"], "all"], m["exceptions"])
            for kind in ("declared", "undeclared", "reverted", "before_tbr"):
                exceptions.add_metric([m["month"], kind], m[kind])
            if m["median_business_days"] is not None:
                median.add_metric([m["month"]], m["median_business_days"])
        # Uptime is measured from here: the time before tbr is not downtime.
        installed = GaugeMetricFamily("tbr_installed_timestamp_seconds", "When tbr was installed (its first audit"
                                      " record), epoch seconds: coverage counts from it")
        if (first := first_at(db)) is not None:
            installed.add_metric([], first.timestamp())
        yield from (deliveries, refused, decisions, followups, overdue, pending, quarantined, sweeps, repos, since, github, rate,
                    exceptions, median, installed, *coverage_metrics(db, now), *budget_metrics(self.store, counters, now))


def coverage_metrics(db, now: datetime):
    """Coverage of the last week, as the digest measures it: from installation on, so a fresh install is
    not 0% running (the time before tbr is not downtime, and is left out of both figures)."""
    cover = coverage(db, now - COVERAGE_WINDOW, now)
    running = GaugeMetricFamily("tbr_coverage_running_ratio", "Share of the last 7 days since tbr was installed"
                                " that it was running (absent before it has recorded anything)")
    gaps = GaugeMetricFamily("tbr_coverage_gaps", "Downtime gaps in the last 7 days since tbr was installed,"
                             " by whether a sweep has filled them", labels=["filled"])
    if cover.percent is not None:
        running.add_metric([], cover.percent / 100)
    for filled in (True, False):
        gaps.add_metric(["yes" if filled else "no"], sum((g.filled_by is not None) == filled for g in cover.gaps))
    return running, gaps


def budget_metrics(store: Store, counters: dict, now: datetime):
    """GitHub's budget per resource as its headers last said, and the safety-net work waiting for it."""
    budget = GaugeMetricFamily("tbr_github_rate_limit", "GitHub's rate-limit window per resource (reset: epoch"
                               " seconds)", labels=["resource", "field"])
    for name, value in sorted(counters.items()):
        if name.startswith("github_rate_") and name.count("_") >= 3 and name != "github_rate_limit_remaining":
            resource, _, field = name.removeprefix("github_rate_").rpartition("_")
            budget.add_metric([resource, field], value)
    paused = GaugeMetricFamily("tbr_safety_net_paused", "Safety-net work waiting for GitHub's rate limit"
                               " (1 while paused), and why", labels=["work", "reason", "until"])
    for p in store.pauses(now):
        paused.add_metric([p["work"], p["reason"], p["until"]], 1)
    return budget, paused


def render(store: Store, clock: Callable[[], datetime], timezone: str = "UTC") -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(Collector(store, clock, timezone))
    return generate_latest(registry)
