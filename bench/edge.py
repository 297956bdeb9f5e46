"""Hostile requests against `gunicorn app:app` as deployed, and the GitHub cost of a big push.

    .venv/bin/python bench/edge.py [--deliveries 50] [--skip-push]

- Signed-delivery latency while 40 slow uploads each hold a request thread (vs. without them).
- Peak resident memory growth (master and workers) while 16 unsigned 24 MB bodies arrive at once,
  sent with a length and chunked.
- Requests to GitHub to match a 300- and a 2,048-commit push to its merged PRs.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests import attacks, payloads  # noqa: E402
from tests.conftest import SECRET  # noqa: E402
from tests.fakegithub import FakeGitHub  # noqa: E402
from tests.processes import Gunicorn  # noqa: E402


def env_for(github: FakeGitHub, tmp: str) -> dict:
    key = Path(tmp) / "app.pem"
    key.write_text(github.private_key)
    base = {k: v for k, v in os.environ.items() if not k.startswith("TBR_")}
    return {**base, "TBR_APP_ID": str(github.app_id), "TBR_PRIVATE_KEY_PATH": str(key), "TBR_WEBHOOK_SECRET": SECRET,
            "TBR_GITHUB_API_URL": github.url, "TBR_DB": f"{tmp}/tbr.db", "TBR_ACCESS_REVIEWS": "off"}


def latencies(port: int, n: int) -> tuple[float, float, int]:
    times, failed = [], 0
    for _ in range(n):
        try:
            status, seconds = attacks.signed_delivery(port, timeout=10)
            failed += status != 200
            times.append(seconds)
        except Exception:  # a timeout: GitHub would have given up
            failed += 1
            times.append(10.0)
    times.sort()
    return statistics.median(times), times[min(len(times) - 1, math.ceil(0.99 * len(times)) - 1)], failed


def requests_per_push(size: int) -> tuple[int, int]:
    """(GraphQL CommitPulls queries, REST /commits/{sha}/pulls requests) to judge one push of `size` commits."""
    from datetime import datetime, timezone

    from tbr.config import Settings
    from tests.conftest import Bot, Clock

    with FakeGitHub() as github, tempfile.TemporaryDirectory() as tmp:
        clock = Clock(datetime(2026, 11, 20, 2, 0, tzinfo=timezone.utc))
        github.clock = clock
        bot = Bot(Settings(app_id=github.app_id, private_key=github.private_key, webhook_secret=SECRET,
                           api_url=github.url, db_path=f"{tmp}/tbr.db", grace_seconds=300, log_format="console"),
                  clock)
        repo = github.add_repo("acme/api")
        github.add_pull("acme/api", 5, merged_at=clock(), author="alice", merged_by="alice")
        shas = [f"{i:040x}" for i in range(1, size + 1)]
        for sha in shas:
            github.associate("acme/api", sha, 5)
        bot.deliver("push", payloads.push("acme/api", repo["id"], commits=[(s, "x") for s in shas], pushed_at=clock()))
        bot.run(after_seconds=300)
        return github.graphql_count("CommitPulls"), github.count("GET", r"/repos/acme/api/commits/\w+/pulls")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--deliveries", type=int, default=50)
    parser.add_argument("--skip-push", action="store_true")
    args = parser.parse_args()
    with FakeGitHub() as github, tempfile.TemporaryDirectory() as tmp:
        github.add_repo("acme/api")
        bot = Gunicorn(env_for(github, tmp))
        try:
            attacks.signed_delivery(bot.port)
            p50, p99, failed = latencies(bot.port, args.deliveries)
            print(f"signed delivery, quiet: p50 {p50 * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms, not 2xx {failed}")
            with attacks.slow_uploads(bot.port, 40):
                p50, p99, failed = latencies(bot.port, args.deliveries)
            print(f"signed delivery, 40 slow uploads: p50 {p50 * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms, "
                  f"not 2xx {failed}")
            for chunked in (False, True):
                growth, statuses = attacks.unsigned_bodies(bot.port, bot.proc.pid, count=16, chunked=chunked)
                print(f"16 unsigned 24 MB bodies ({'chunked' if chunked else 'with a length'}): peak RSS growth "
                      f"{growth / attacks.MB:.0f} MB, answers {sorted(set(statuses), key=str)}")
        finally:
            bot.stop()
    if not args.skip_push:
        for size in (300, 2048):
            graphql, rest = requests_per_push(size)
            print(f"{size}-commit push: {graphql} GraphQL queries, {rest} REST /commits/{{sha}}/pulls")


if __name__ == "__main__":
    main()
