"""Is tbr watching? /healthz answers from the database, so every worker gives the same answer."""

from __future__ import annotations

from datetime import datetime, timedelta

from tbr.store import Store, from_iso

SCHEDULER_SILENCE = timedelta(minutes=3)  # it beats every minute
FIRST_SWEEP_GRACE = timedelta(minutes=15)
WORKER_SILENCE = timedelta(minutes=5)  # it beats every 30 s, and with each item (at most 4 minutes long)
QUARANTINE_SHOWN = 5


def problems(store: Store, now: datetime, sweep_minutes: int, started_at: datetime) -> list[str]:
    found = []
    try:
        store.check_writable()
    except Exception as e:  # any database failure makes the bot unhealthy
        return [f"database not writable: {e}"]
    beat = store.last_beat("scheduler")
    if beat is None:
        if now - started_at > timedelta(minutes=2):
            found.append("no scheduler has run: sweeps, reminders and the digest are not happening")
    elif now - beat > SCHEDULER_SILENCE:
        found.append(f"the scheduler last ran {int((now - beat).total_seconds() // 60)} minutes ago")
    last = store.db.execute("SELECT max(finished_at) FROM sweeps WHERE error IS NULL").fetchone()[0]
    limit = timedelta(minutes=2 * sweep_minutes + 10)
    if last is None:
        if now - started_at > FIRST_SWEEP_GRACE:
            found.append("no reconciliation sweep has succeeded yet")
    elif now - from_iso(last) > limit:
        found.append(f"the last successful sweep finished {int((now - from_iso(last)).total_seconds() // 60)} minutes ago")
    return found


def worker_problems(store: Store, now: datetime, started_at: datetime) -> list[str]:
    """The worker process (tbr/supervisor.py starts it) must be alive, or nothing gets judged."""
    beat = store.last_beat("worker")
    if beat is None:
        if now - started_at > timedelta(minutes=2):
            return ["no worker process has run: deliveries are stored but not processed"]
    elif now - beat > WORKER_SILENCE:
        return [f"the worker process last ran {int((now - beat).total_seconds() // 60)} minutes ago:"
                " deliveries are stored but not processed"]
    return []


def quarantine_problems(store: Store) -> list[str]:
    """Items set aside after failing again and again: each needs a person, then `tbr retry KEY`."""
    items = store.quarantined()
    found = [f"quarantined after {r['attempts']} attempts: {r['kind']} {r['key']}"
             + (f" ({r['subject']})" if r["subject"] else "") + f"; fix the cause, then `tbr retry {r['key']}`"
             for r in items[:QUARANTINE_SHOWN]]
    if len(items) > QUARANTINE_SHOWN:
        found.append(f"{len(items) - QUARANTINE_SHOWN} more quarantined items: see `tbr status`")
    return found
