"""The slowest judgement on the worst text GitHub lets people write.

Each shape below is a pull request at GitHub's limits: a 65,536-character description, the 30
comments and 30 review bodies of GraphQL's first pages at 65,536 characters each, a 256-character
title, a 255-character branch name, and 250 commits (the most a pull request lists) with
65,536-character messages. Everything tbr reads in that text runs as it does for a real merge:
Co-authored-by trailers (graphql.pull_facts), judge_pull (approval phrases; the `TBR:`
declaration when unapproved), the separation-of-duties check, reverts and the change-reference
check with a catastrophic `ticket_pattern`. Access-review commands and ticks get 65,536-character
comments and bodies of their own.

    .venv/bin/python bench/text.py [--repeat 3]

Target: every judgement under 50 ms.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tbr import access, checks, classify, usertext  # noqa: E402
from tbr.classify import Actor, Comment, CommitFact, Policy, PullFacts, Review  # noqa: E402

LIMIT = 65_536
AT = datetime(2026, 11, 20, 2, tzinfo=timezone.utc)
CUTOFF = AT + timedelta(minutes=5)
POLICY = Policy(ticket_pattern="^(a+)+$", independent_approvals=True)


def fill(unit: str, tail: str = "") -> str:
    return (unit * (LIMIT // len(unit) + 1))[:LIMIT - len(tail)] + tail


# Texts that make each step of the parsers work hardest, none of which approves.
SHAPES = {
    "newlines, one question at the end": fill("\n", "LGTM?"),
    "every phrase negated": fill("not LGTM "),
    "every phrase a question": fill("LGTM? "),
    "every phrase in a code span": fill("`LGTM` "),
    "backtick runs of growing length": fill("".join("`" * k + " " for k in range(1, 60)) + "LGTM waiting for "),
    "unclosed code spans": fill("` LGTM for "),
    "fences": fill("```\nLGTM?\n"),
    "quote lines": fill("> LGTM\n"),
    "nested blockquotes": fill("<blockquote>LGTM "),
    "HTML comment openers": fill("<!-- LGTM "),
    "tag-like text": fill("<b LGTM for "),
    "strikethrough": fill("~~LGTM~~ ~x "),
    "emoji glued to phrases": fill("LGTM👍x🚢y "),
    "one 65 KB word": fill("a", " LGTM?"),
    "phrases inside long words": fill("x" * 300 + "lgtm"),
    "one long clause ending in a request": fill("LGTM LGTM, ") + "",
    "padded declaration": "TBR: x" + " " * (LIMIT - 7) + "y",
    "many declarations in code": fill("```\nTBR: x\n```\n"),
    "URLs": fill("https://lgtm.example.com/LGTM "),
}
MESSAGES = {
    "padded trailer": "Fix\n\nCo-authored-by:" + " " * (LIMIT - 30) + "x",
    "trailers": fill("Co-authored-by: bob <1+bob@users.noreply.github.com>\n"),
    "revert sentences": fill("This reverts commit abcdef0123456789 "),
    "newlines": fill("\n"),
}


def facts(text: str, message: str) -> tuple[PullFacts, list[str]]:
    people = [Actor(f"user{i}") for i in range(30)]
    comments = tuple(Comment(p, text, AT, f"https://x/c{i}") for i, p in enumerate(people))
    reviews = tuple(Review(p, "COMMENTED", AT, f"https://x/r{i}", text) for i, p in enumerate(people))
    messages = [message] * 250
    return PullFacts("acme/api", 7, "https://x/7", fill("a", "!")[:255] + "!", Actor("alice"), Actor("alice"), AT,
                     reviews, comments, "f" * 40, "main", (), text, fill("a")[:255]), messages


def judgement(pull: PullFacts, messages: list[str]) -> None:
    """What tbr does with a merged PR's text, from the GraphQL answer to the check runs."""
    usertext._approving_phrase.cache_clear()  # each judgement starts cold
    commits = tuple(CommitFact(f"{i:040x}", "alice", "alice", AT, classify.coauthors(m), m)
                    for i, m in enumerate(messages))
    pull = PullFacts(**{**pull.__dict__, "commits": commits})
    decision = classify.judge_pull(pull, POLICY, CUTOFF)
    assert not decision.approved, decision.summary
    classify.separation(pull, POLICY, CUTOFF)
    classify.reverted(pull)
    checks.reference_status(pull, POLICY.ticket_pattern)


def timed(fn, repeat: int) -> float:
    """The least CPU time of `repeat` runs, in ms: other processes on the machine do not count."""
    best = float("inf")
    for _ in range(repeat):
        start = time.process_time()
        fn()
        best = min(best, time.process_time() - start)
    return best * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    rows = []
    for name, text in SHAPES.items():
        message = MESSAGES["padded trailer"]
        pull, messages = facts(text, message)
        rows.append((f"PR text: {name}", timed(lambda: judgement(pull, messages), args.repeat)))
    for name, message in MESSAGES.items():
        pull, messages = facts(SHAPES["every phrase negated"], message)
        rows.append((f"250 commit messages: {name}", timed(lambda: judgement(pull, messages), args.repeat)))
    for name, text in SHAPES.items():
        rows.append((f"access review, comment and body: {name}",
                     timed(lambda: (access.commands(text), access.ticks(text)), args.repeat)))
    rows.append(("access review: 65,520 newlines and a command",
                 timed(lambda: access.commands("\n" * 65_520 + "revoke @bob"), args.repeat)))
    width = max(len(n) for n, _ in rows)
    for name, ms in rows:
        print(f"{name:<{width}}  {ms:8.1f} ms")
    worst = max(rows, key=lambda r: r[1])
    print(f"\nslowest: {worst[0]}, {worst[1]:.1f} ms (target: under 50 ms)")


if __name__ == "__main__":
    main()
