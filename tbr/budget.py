"""GitHub's rate limit, shared by the work that matters and the safety net.

Judging, filing, reminders and check runs spend what they need. Safety-net work (sweeps, the daily
checks, backfill, access reviews) asks `may_run` first, and between batches: when the budget GitHub
reports in its x-ratelimit-* headers falls under the reserve (TBR_RATE_RESERVE_PERCENT, 20% by
default), or GitHub asked tbr to back off (a secondary rate limit's retry-after), it pauses until the
window resets and says so in the `pauses` table, which /metrics, `tbr status` and the digest show.
"""

from __future__ import annotations

from datetime import datetime

import structlog

from tbr.github import GitHubUnavailable

log = structlog.get_logger("tbr.budget")


class Waiting(Exception):
    """Safety-net work stopped between batches: the budget fell under the reserve (the pause is recorded)."""


BATCH = 50  # how many repositories a long safety-net loop reads between looks at the budget


def shortage(engine, now: datetime) -> tuple[str, datetime] | None:
    """Why the safety net must wait now and until when, or None."""
    reserve = engine.settings.rate_reserve_percent / 100
    for b in sorted(engine.gateway.budgets.values(), key=lambda b: b.resource):
        if b.reset > now and b.remaining < reserve * b.limit:
            return (f"GitHub's {b.resource} budget is down to {b.remaining} of {b.limit}, under the"
                    f" {engine.settings.rate_reserve_percent}% kept for judging and filing"), b.reset
    return None


def may_run(engine, work: str) -> bool:
    """Whether safety-net `work` may spend GitHub's budget now; records a pause when it may not."""
    store, now = engine.store, engine.clock()
    held = [p for p in store.pauses(now) if p["work"] == work]
    short = shortage(engine, now)
    with store.write():
        if short:
            if not held:
                store.audit("budget.paused", "", "tbr", now, work=work, reason=short[0], until=short[1].isoformat())
            store.set_pause(work, short[0], now, short[1])
        elif not held:
            store.clear_pause(work)
    if short or held:
        reason = short[0] if short else held[0]["reason"]
        log.warning("budget.paused", work=work, reason=reason, until=str(short[1] if short else held[0]["until"]))
        return False
    return True


def backed_off(engine, work: str, error: GitHubUnavailable) -> bool:
    """A rate-limit refusal during `work`: pause it for as long as GitHub asked. False for other failures."""
    if not error.retry_after:
        return False
    now = engine.clock()
    reason = f"GitHub asked tbr to wait ({error})"
    with engine.store.write():
        engine.store.set_pause(work, reason, now, now + error.retry_after)
        engine.store.audit("budget.paused", "", "tbr", now, work=work, reason=reason,
                           until=(now + error.retry_after).isoformat())
    log.warning("budget.backed_off", work=work, error=str(error), seconds=error.retry_after.total_seconds())
    return True


def summary(store, start: datetime, end: datetime) -> str:
    """One line for the weekly digest: did the safety net have to wait for GitHub's rate limit?"""
    rows = store.pauses_between(start, end)
    if not rows:
        return "- GitHub's rate limit: the safety net never had to wait"
    return ("- GitHub's rate limit: the safety net waited for it " + ", ".join(f"{n}× ({work})" for work, n in rows)
            + "; judging and filing went on")
