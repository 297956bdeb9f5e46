"""Drills: the inputs that froze tbr's regular expressions, at GitHub's own size limits, through the
real functions. Each runs in a child process that must finish well inside a generous bound: it
takes milliseconds now (plus the child's start-up), and took from 49 s to hours with backtracking
expressions. The speed goals themselves are in bench/text.py, not here."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BOUND = 30  # seconds: room for a loaded machine's start-up; the old code needed 49 s and more


def run(code: str):
    """Run `code` in a child Python at the repository's root; return what it prints as JSON."""
    done = subprocess.run([sys.executable, "-"], input=code, cwd=ROOT, capture_output=True, text=True,
                          timeout=BOUND, check=True)
    return json.loads(done.stdout)


PULL = """
import json
from datetime import datetime, timezone
from tbr.classify import Actor, Comment, Policy, PullFacts, judge_pull
at = datetime(2026, 11, 20, 2, tzinfo=timezone.utc)
def pull(body="", comments=(), title="t"):
    return PullFacts("acme/api", 7, "https://x/7", title, Actor("alice"), Actor("alice"), at, body=body,
                     comments=tuple(Comment(Actor(who), text, at, "https://x/c") for who, text in comments))
"""


def test_a_padded_coauthor_trailer():
    # 4,000 characters in one Co-authored-by line: cubic for the old expression (over 60 s).
    message = "Fix\n\nCo-authored-by:" + " " * 4_000 + "x"
    assert run(f"import json; from tbr.classify import coauthors; print(json.dumps(coauthors({message!r})))") == []
    padded = "Co-authored-by:" + " " * 4_000 + "bob <1+bob@users.noreply.github.com>"
    assert run(f"import json; from tbr.classify import coauthors; print(json.dumps(coauthors({padded!r})))") == ["bob"]


def test_a_description_at_githubs_limit_against_the_declaration_parser():
    # 65,000 characters after a `TBR:`: quadratic for the old expression (about a minute).
    body = "TBR: x" + " " * 65_000 + "y"
    decision = run(PULL + f"d = judge_pull(pull({body!r}, [('alice', '\\n' * 65_000)]), Policy(), at)\n"
                          "print(json.dumps(d.declaration.reason))")
    assert decision.startswith("x ") and decision.endswith("…") and len(decision) == 1_000


def test_a_comment_of_newlines_to_the_access_review_command_parser():
    # A command, 65,000 newlines and a near miss: quadratic for the old expression (minutes).
    code = ("import json; from tbr import access\n"
            "print(json.dumps(access.commands('revoke @bob' + '\\n' * 65_000 + 'revoke bob')))")
    assert run(code) == [["revoke", "bob", None]]


def test_a_repositorys_catastrophic_ticket_pattern():
    # `^(a+)+$` on a title and a declaration's reason: exponential for a backtracking matcher.
    code = PULL + """
from tbr import checks, repoconfig
pattern = repoconfig.parse('ticket_pattern: "^(a+)+$"')["ticket_pattern"]
facts = pull("TBR: " + "a" * 64 + "!", title="a" * 64 + "!")
reference = checks.reference_status(facts, pattern)
declared = judge_pull(facts, Policy(ticket_pattern=pattern), at).declaration
print(json.dumps([reference[0], declared.ticket]))
"""
    assert run(code) == ["failure", None]


def test_an_approval_phrase_at_githubs_limit():
    # The grammar's own worst cases: every phrase negated, questioned or in code, 64 KB each.
    texts = ["not LGTM " * 7_000, "LGTM? " * 10_000, "`LGTM` " * 9_000, "\n" * 65_535 + "LGTM?"]
    code = PULL + f"""
texts = {texts!r}
d = judge_pull(pull(comments=[("bob", t) for t in texts]), Policy(), at)
print(json.dumps(d.approved))
"""
    assert run(code) is False
