"""Periodic work at scale: an organization of 10,000 repositories on the fake GitHub, which charges and
answers rate limits as GitHub does (REST requests, GraphQL points, 304s free).

    .venv/bin/python bench/sweep_cost.py [--repos 10000] [--active 100]

Reports, counted against the rate limit as GitHub counts (REST requests plus GraphQL points), with
wall time: an idle hourly sweep; a sweep after `active` repositories saw pushes tbr was told of; one
after `active` repositories lost their webhooks (every change must be found); a day of the daily
jobs (branch controls, access, two-factor), first and then steady.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.api_cost import bot_for  # noqa: E402
from tbr.sweep import sweep  # noqa: E402
from tests.fakegithub import FakeGitHub  # noqa: E402
from tests.test_cost import a_day_of_daily_jobs, an_org, pushes, spent  # noqa: E402


def row(label: str, cost: int, seconds: float, repos: int, extra: str = "") -> None:
    print(f"| {label} | {cost:,} | {cost / repos:.3f} | {seconds:.1f} s |{extra}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repos", type=int, default=10_000)
    parser.add_argument("--active", type=int, default=100)
    args = parser.parse_args()
    with FakeGitHub() as github, tempfile.TemporaryDirectory() as tmp:
        bot = bot_for(github, tmp, "sweep")
        started = time.perf_counter()
        repos = an_org(github, bot.clock, args.repos)
        names = list(repos)
        print(f"{args.repos:,} repositories (installation limit {github.rate_limit_state()['limit']:,} an hour),"
              f" built in {time.perf_counter() - started:.1f} s\n")
        print("| work | charged | per repository | wall time | |\n|---|---|---|---|---|")
        cost, seconds, result = spent(github, lambda: sweep(bot.engine))
        row("first sweep (nothing pushed in its 3-day lookback)", cost, seconds, args.repos,
            f" {result.repos_checked:,} checked, {result.errors} errors")
        def first_looks() -> int:
            """Every repository's first look, spread by the reserve over as many hours as the budget needs."""
            hours = 0
            while True:
                a_day_of_daily_jobs(bot)
                hours += 1
                if bot.store.last_beat("controls-daily"):
                    return hours
                bot.clock.advance(3600)

        cost, seconds, hours = spent(github, first_looks)
        row(f"first looks of the daily jobs (over {hours} hour(s) of budget)", cost, seconds, args.repos)
        bot.clock.advance(3600)
        cost, seconds, result = spent(github, lambda: sweep(bot.engine))
        row("idle hourly sweep", cost, seconds, args.repos, f" {result.repos_checked:,} checked, {result.errors} errors")
        bot.clock.advance(3600)
        pushes(github, bot, repos, names[:args.active], delivered=True)
        cost, seconds, result = spent(github, lambda: sweep(bot.engine))
        row(f"hourly sweep, {args.active} repositories pushed to (webhooks received)", cost, seconds, args.repos,
            f" {result.repos_active} asked, {result.changes_found} found")
        bot.clock.advance(3600)
        lost = names[args.active:2 * args.active]
        pushes(github, bot, repos, lost, delivered=False)
        cost, seconds, result = spent(github, lambda: sweep(bot.engine))
        keys = {c["key"] for c in bot.changes() if c["source"] == "sweep"}
        missed = [n for n in lost if not any(k.startswith((f"push:{repos[n]['id']}:", f"pr:{repos[n]['id']}:"))
                                             for k in keys)]
        row(f"hourly sweep, {args.active} repositories lost their webhooks", cost, seconds, args.repos,
            f" {result.changes_found} changes found, {len(missed)} repositories missed")
        bot.clock.advance(86400)
        while bot.run():
            pass
        cost, seconds, _ = spent(github, lambda: a_day_of_daily_jobs(bot))
        row("a day of daily jobs, steady (nothing changed)", cost, seconds, args.repos)
        for name in names[:10]:
            github.set_protection(name, "main", allow_force_pushes=True)
        bot.clock.advance(86400)
        cost, seconds, _ = spent(github, lambda: a_day_of_daily_jobs(bot))
        row("a day of daily jobs, 10 repositories' protection weakened", cost, seconds, args.repos)
        print(f"\nconditional requests answered 304 (not counted): {github.count('GET', '.*') - len([c for c in github.charged if c[0] == 'GET'])}")


if __name__ == "__main__":
    main()
