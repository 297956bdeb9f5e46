"""The periodic work, run by exactly one APScheduler per deployment.

gunicorn starts several worker processes; each tries a non-blocking lock on a file beside the
database, and only the holder runs the scheduler. The lock dies with its process, and the others
try again on every pass of their worker thread, so a crashed leader is replaced within seconds.
The jobs keep no state of their own: due times live in the database, so a job that runs twice, or
late after a restart, does no harm.
"""

from __future__ import annotations

import fcntl
import os
from datetime import datetime, time, timedelta
from urllib.parse import quote

import structlog
from apscheduler.schedulers.background import BackgroundScheduler

from tbr import accesscontrols, anchors, audit, budget, controls, digest, lifecycle, sweep
from tbr.config import WEEKDAYS
from tbr.engine import Engine
from tbr.store import from_iso

log = structlog.get_logger("tbr.schedule")

REMIND_EVERY = timedelta(minutes=5)
DIGEST_CHECK_EVERY = timedelta(minutes=10)


def digest_due(engine: Engine, now: datetime) -> bool:
    """This week's digest time has passed and this week's digest was not published yet."""
    settings = engine.settings
    week = digest.week_start(now, engine.tz)
    at = datetime.combine(week + timedelta(days=WEEKDAYS.index(settings.digest_day)),
                          time(*settings.digest_time), tzinfo=engine.tz)
    done = engine.store.db.execute("SELECT 1 FROM digests WHERE week = ? AND number > 0",
                                   [week.isoformat()]).fetchone()
    return now >= at and not done


def queue_daily_controls(engine: Engine) -> int:
    """Once a day, a full look at each watched repository whose default branch's controls changed
    since the last look (or were never looked at); returns how many were queued.

    Asking costs a GraphQL point per hundred repositories (head and classic protection) and, per
    repository, a conditional request for the rulesets that apply, which GitHub does not count while
    they are unchanged. Events (`branch_protection_rule`, `repository_ruleset`) queue a look as they
    happen; this is the net for the ones that were lost. A repository whose controls changed gets its
    `tbr/controls` check run again, and an issue if production lost a control. Under GitHub's
    rate-limit reserve it waits for the next hour; first looks are spread over the hours the budget allows.
    """
    store, gw, settings = engine.store, engine.gateway, engine.settings
    now = engine.clock()
    today = now.astimezone(engine.tz).date().isoformat()
    last = store.last_beat("controls-daily")
    if last and last.astimezone(engine.tz).date().isoformat() == today:
        return 0
    queued, complete = 0, True
    for inst in gw.installations():
        if not budget.may_run(engine, "daily controls"):
            return queued
        repos = [r.full_name for r in gw.installation_repos(inst) if not r.archived
                 and settings.watches_repo(r.full_name)]
        changed, seen = [], {}
        for repo, (branch, head, classic) in gw.default_branch_protection(inst, repos).items():
            url = f"repos/{repo}/rules/branches/{quote(branch, safe='')}"
            cached = store.etag(url)
            etag, rules = gw.if_changed(inst, url, cached[0] if cached else None)
            if rules is None:
                types = set(cached[1])
            else:
                types = {r["type"] for r in rules}
                if etag:
                    with store.write():
                        store.set_etag(url, etag, sorted(types), now)
            if controls.protection(branch, classic, types).state() != store.control_state(repo, branch):
                changed.append(repo)
                seen[repo] = {"branch": branch, "head": head, "classic": classic, "rules": sorted(types)}
        room = _room(engine)
        complete = complete and len(changed) <= room
        with store.write():
            queued += engine.queue_controls(changed[:room], inst, f"daily:{today}", "", "daily check", now, seen)
    if complete:
        store.beat("controls-daily", now)
    return queued


def _room(engine: Engine) -> int:
    """How many controls checks (a check run, an issue if weakened: two requests at most) fit above the
    reserve this hour."""
    core = engine.gateway.budgets.get("core")
    if core is None or core.reset <= engine.clock():
        return 10**9
    return max(int(core.remaining - core.limit * engine.settings.rate_reserve_percent / 100) // 2, 0)


class Scheduler:
    def __init__(self, engine: Engine, wake=lambda: None):
        self.engine = engine
        self.wake = wake
        self.lock_path = f"{engine.settings.db_path}.scheduler.lock"
        self._fd: int | None = None
        self._scheduler: BackgroundScheduler | None = None

    @property
    def leading(self) -> bool:
        return self._scheduler is not None

    def tick(self) -> None:
        """Become the deployment's scheduler if nobody is; called on every worker pass."""
        if self.leading:
            return
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return
        self._fd = fd
        self._start()

    def _start(self) -> None:
        settings, now = self.engine.settings, self.engine.clock()
        sched = BackgroundScheduler(timezone=settings.timezone, job_defaults={"coalesce": True, "max_instances": 1})
        sched.add_job(self.run_sweep, "interval", minutes=settings.sweep_minutes, next_run_time=now, id="sweep")
        sched.add_job(self.run_remind, "interval", seconds=REMIND_EVERY.total_seconds(), next_run_time=now,
                      id="remind")
        sched.add_job(self.run_digest, "interval", seconds=DIGEST_CHECK_EVERY.total_seconds(),
                      next_run_time=now, id="digest")
        sched.add_job(self.beat, "interval", seconds=60, next_run_time=now, id="heartbeat")
        # Hourly, though the check is daily: queued once a day (keyed by the date), so a run that
        # failed (GitHub down) is made up within the hour instead of the next day.
        sched.add_job(self.run_controls, "interval", hours=1, next_run_time=now, id="controls")
        sched.add_job(self.run_access, "interval", hours=1, next_run_time=now, id="access")
        sched.add_job(self.run_anchor, "interval", hours=1, next_run_time=now, id="anchor")
        sched.start()
        self._scheduler = sched
        log.info("scheduler.leading", pid=os.getpid(), sweep_minutes=settings.sweep_minutes,
                 digest=f"{settings.digest_day} {settings.digest_time[0]:02d}:{settings.digest_time[1]:02d}")

    def stop(self) -> None:
        if self._scheduler:
            self._scheduler.shutdown(wait=True)  # let a running job finish its transaction
            self._scheduler = None
        if self._fd is not None:
            os.close(self._fd)  # releases the lock for another worker
            self._fd = None

    # the jobs: each also a `tbr` command ------------------------------------------------------

    def beat(self) -> None:
        """A sign of life for /healthz every minute, and for the audit log every few minutes."""
        store, now = self.engine.store, self.engine.clock()
        store.beat("scheduler", now)
        with store.write():
            last = store.db.execute("SELECT max(at) FROM audit WHERE kind = 'heartbeat'").fetchone()[0]
            if last is None or now - from_iso(last) >= audit.HEARTBEAT_EVERY:
                store.audit("heartbeat", "", "tbr", now, process=self.engine.owner)

    def run_sweep(self) -> None:
        sweep.sweep(self.engine)
        self.wake()

    def run_remind(self) -> None:
        lifecycle.plan_reminders(self.engine.store, self.engine.settings, self.engine.clock())
        self.wake()

    def run_controls(self) -> None:
        """Daily: every watched repository's branch controls, whether or not an event said they changed."""
        queue_daily_controls(self.engine)
        self.wake()

    def run_access(self) -> None:
        """Access reviews, offboarding, two-factor coverage: their daily work, done once a day."""
        if budget.may_run(self.engine, accesscontrols.WORK):
            accesscontrols.daily(self.engine, self.engine.clock())
        else:  # reminders are not safety net: they go on
            accesscontrols.plan_reminders(self.engine.store, self.engine.settings, self.engine.clock())
        self.wake()

    def run_anchor(self) -> None:
        """The audit log's head, published on GitHub once a day (tbr/anchors.py)."""
        anchors.queue_daily(self.engine, self.engine.clock())

    def run_digest(self) -> None:
        now = self.engine.clock()
        if digest_due(self.engine, now):
            digest.publish(self.engine, now)
