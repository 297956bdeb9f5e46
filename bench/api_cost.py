"""GitHub API cost, counted at the fake GitHub: requests per judged PR, and per 1,000 PRs backfilled.

    .venv/bin/python bench/api_cost.py [--prs 100] [--backfill 5000]

A judged PR is its `pull_request.closed` webhook and its merge commit's `push`, judged after the grace
period, with the follow-up filed when unapproved and `tbr/review` published on the merge commit.
The first PR warms up what is paid once per process (the installation token, the repository's
configuration, the label); the figures are for the PRs after it.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tbr.backfill import backfill  # noqa: E402
from tbr.config import Settings  # noqa: E402
from tests.conftest import SECRET, Bot, Clock  # noqa: E402
from tests.fakegithub import FakeGitHub  # noqa: E402
from tests.test_cost import REPO, merge_and_judge  # noqa: E402


def bot_for(github: FakeGitHub, tmp: str, name: str) -> Bot:
    clock = Clock(datetime(2026, 11, 20, 2, 0, tzinfo=timezone.utc))
    github.clock = clock
    settings = Settings(app_id=github.app_id, private_key=github.private_key, webhook_secret=SECRET,
                        api_url=github.url, db_path=f"{tmp}/{name}.db", grace_seconds=300, log_format="console")
    return Bot(settings, clock)


def judged(prs: int) -> dict:
    with FakeGitHub() as github, tempfile.TemporaryDirectory() as tmp:
        bot = bot_for(github, tmp, "judged")
        repo = github.add_repo(REPO)
        github.add_collaborator(REPO, "bob", "write")  # the approver: only a writer's approval counts
        merge_and_judge(github, bot, repo, 1, approved=False)
        out = {}
        for i, (approved, by_comment, label) in enumerate(((True, False, "approved"),
                                                           (True, True, "approved by comment"),
                                                           (False, False, "unapproved"))):
            before = github.count(None, ".*")
            for n in range(prs):
                merge_and_judge(github, bot, repo, 10_000 * (1 + i) + n, approved, by_comment)
            out[label] = (github.count(None, ".*") - before) / prs
        return out


def backfilled(prs: int) -> dict:
    with FakeGitHub() as github, tempfile.TemporaryDirectory() as tmp:
        bot = bot_for(github, tmp, "backfill")
        github.add_repo(REPO)
        github.add_pulls(REPO, prs, merged_at=bot.clock() - timedelta(hours=1), spacing=timedelta(hours=1))
        before = github.count(None, ".*")
        result = backfill(bot.engine, bot.clock() - timedelta(days=366))
        spent = github.count(None, ".*") - before
        return {"prs": result.pulls, "requests": spent, "graphql": github.count("POST", "/graphql"),
                "per_1000": round(1000 * spent / max(result.pulls, 1), 1)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--prs", type=int, default=100)
    parser.add_argument("--backfill", type=int, default=5000)
    args = parser.parse_args()
    j = judged(args.prs)
    print(f"requests per judged PR: approved {j['approved']:.2f}, approved by comment"
          f" {j['approved by comment']:.2f}, unapproved (follow-up filed) {j['unapproved']:.2f}")
    b = backfilled(args.backfill)
    print(f"backfill of {b['prs']} PRs: {b['requests']} requests ({b['graphql']} GraphQL), {b['per_1000']} per 1,000 PRs")


if __name__ == "__main__":
    main()
