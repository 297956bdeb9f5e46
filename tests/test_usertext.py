"""tbr.usertext: what people's text says, as tables of texts written the way people write on GitHub.

The parsers replaced regular expressions; Hypothesis checks they agree with them, line by line, on
the inputs the old expressions handled in reasonable time."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tbr import usertext
from tbr.classify import find_phrase
from tbr.config import DEFAULT_APPROVAL_PHRASES

PHRASES = DEFAULT_APPROVAL_PHRASES  # LGTM, 🚢, :shipit:

APPROVE = [
    ("LGTM", "LGTM"),
    ("lgtm!", "LGTM"),
    ("Lgtm", "LGTM"),
    ("LGTM, thanks", "LGTM"),
    ("Looks good. LGTM 🚢", "LGTM"),
    (":shipit:", ":shipit:"),
    ("🚢", "🚢"),
    ("🚢🚢🚢", "🚢"),
    ("LGTM with one nit below", "LGTM"),
    ("lgtm.", "LGTM"),
    ("(LGTM)", "LGTM"),
    ("**LGTM**", "LGTM"),
    ("_lgtm_", "LGTM"),
    ("Thanks, LGTM", "LGTM"),
    ("Thanks for the fix! LGTM", "LGTM"),
    ("LGTM 👍", "LGTM"),
    ("LGTM 👍🏽 ship it", "LGTM"),
    ("No concerns, LGTM", "LGTM"),
    ("Not sure about the naming, but LGTM", "LGTM"),
    ("Could you rename `foo`? Otherwise LGTM", "LGTM"),
    ("Overall LGTM", "LGTM"),
    ("LGTM overall, nice cleanup", "LGTM"),
    ("Tested locally, works. LGTM!", "LGTM"),
    ("LGTM :shipit:", "LGTM"),
    ("@alice LGTM", "LGTM"),
    ("LGTM, merge when CI is green", "LGTM"),
    ("LGTM modulo the nit about logging", "LGTM"),
    ("Left a couple of nits.\n\nLGTM", "LGTM"),
    ("> Should we also bump the version?\n\nYes, later. LGTM", "LGTM"),
    ("```suggestion\nreturn x\n```\nLGTM with this suggestion", "LGTM"),
    ("lgtm 🚀", "LGTM"),
    ("LGTM - thanks for the quick turnaround", "LGTM"),
    ("Code LGTM", "LGTM"),
    ("Nothing blocking from my side. LGTM", "LGTM"),
    ("Nice! lgtm", "LGTM"),
    ("## Review\nLGTM", "LGTM"),
    ("- [x] tests\n- [x] docs\n\nLGTM", "LGTM"),
    ("LGTM assuming CI passes", "LGTM"),
    ("Looks good to me, LGTM.", "LGTM"),
    ("I haven't run it locally, but LGTM", "LGTM"),
    ("Don't see any issues, LGTM", "LGTM"),
    ("LGTM!!!", "LGTM"),
    ("Approving. LGTM :)", "LGTM"),
    ("<!-- reviewed with the checklist -->\nLGTM", "LGTM"),
    ("LGTM <!-- from the checklist -->", "LGTM"),
    ("LGTM\n\nOne question though: why not use `Path`?", "LGTM"),
    ("LGTM\r\n", "LGTM"),
    ("Verified the migration on staging: LGTM", "LGTM"),
    ("See https://example.com/docs/lgtm for the checklist. LGTM", "LGTM"),
    ("Ran the benchmarks again\nLGTM", "LGTM"),
    ("Great work, LGTM, ship it", "LGTM"),
    ("<details><summary>Logs</summary>\n\nall green\n</details>\n\nLGTM", "LGTM"),
]

REFUSE = [
    "LGTM? I have not looked at the diff yet",
    "NOT  LGTM",
    "isn't LGTM",
    "isn’t LGTM",
    "Not yet LGTM",
    "```\nLGTM\n```",
    "~~~\nLGTM\n~~~",
    "```\nLGTM",
    "    LGTM",
    "<blockquote>LGTM</blockquote>",
    "<BLOCKQUOTE>\nLGTM\n</BLOCKQUOTE>\nI disagree.",
    "<blockquote><blockquote>LGTM</blockquote> said someone</blockquote>",
    "> LGTM",
    "> > LGTM\n\nnope",
    "not LGTM yet",
    "no lgtm",
    "LGTM?",
    "LGTM?!",
    "Is this LGTM?",
    "Should I LGTM this?",
    "Who said LGTM?",
    "LGTMS are cheap",
    "LGTM2",
    "non-LGTM changes",
    "lgtm-ish, but the tests are failing",
    "LGTM'd by mistake, reverting",
    "`LGTM`",
    "``LGTM ` still code``",
    "~~LGTM~~",
    "<del>LGTM</del> found an issue",
    "<code>LGTM</code>",
    "<details><pre>LGTM</pre></details>",
    "<!-- LGTM -->",
    "<!--\nLGTM\n-->",
    "<!--LGTM--> I need to look more, not LGTM",
    "<del>LGTM</del>, wait: LGTM?",
    "Waiting for an LGTM from security",
    "Waiting for LGTM",
    "Needs an LGTM",
    "LGTM needed from @acme/security",
    "Please LGTM",
    "The LGTM bot is down again",
    "I don't think this is LGTM",
    "I dont think this is LGTM",
    "Never LGTM a PR without tests",
    "This is definitely not LGTM",
    "Can't say LGTM until the tests pass",
    "Thanks for the LGTM!",
    "I'll LGTM",
    "Haven't reviewed yet, will LGTM later",
    "LGTM? Not really, see comments",
    "Removing my LGTM, found a bug",
    "LGTM retracted",
    "Nope, not LGTM",
    "Definitely NOT LGTM!",
    "Not LGTM, sorry",
    "https://lgtm.example.com/review/42",
    "Not 🚢 yet",
    "Is it time to :shipit:?",
    "",
]


@pytest.mark.parametrize("text, phrase", APPROVE, ids=[t for t, _ in APPROVE])
def test_texts_that_approve(text, phrase):
    assert usertext.approving_phrase(text, PHRASES) == phrase


@pytest.mark.parametrize("text", REFUSE)
def test_texts_that_do_not_approve(text):
    assert usertext.approving_phrase(text, PHRASES) is None


def test_the_tables_are_big_enough():
    assert len(APPROVE) >= 40 and len(REFUSE) >= 40


def test_the_classifier_and_sign_off_use_the_same_grammar():
    assert find_phrase("LGTM? I have not looked at the diff yet", PHRASES) is None
    assert find_phrase("Looks good. LGTM 🚢", PHRASES) == "LGTM"
    assert find_phrase("LGTM", ["LGTM"]) == "LGTM"  # a repository's phrases, as stored (JSON: a list)


@pytest.mark.parametrize("text, phrases, expected", [
    ("I have not yet reviewed this", ("LGTM", "reviewed"), None),
    ("Reviewed.", ("LGTM", "reviewed"), "reviewed"),
    ("Reviewed the diff, LGTM", ("LGTM", "reviewed"), "LGTM"),
    ("Let's ship it", ("ship it",), "ship it"),
    ("ship  it!", ("ship it",), "ship it"),
    ("Don't ship it", ("ship it",), None),
    ("We should not ship it yet", ("ship it",), None),
    ("Ship it? Not sure", ("Ship it",), None),
    ("+1", ("+1",), "+1"),
    ("Approved ✅", ("approved",), "approved"),
    ("🚢 LGTM", ("LGTM", "🚢"), "LGTM"),  # the first phrase of the configuration is named
])
def test_configured_phrases_go_through_the_same_grammar(text, phrases, expected):
    assert usertext.approving_phrase(text, phrases) == expected


@pytest.mark.parametrize("phrase, problem", [
    (".", "has no letters, digits or emoji"),
    ("!!", "has no letters, digits or emoji"),
    ("x" * 101, "is longer than 100 characters"),
])
def test_phrases_that_would_match_punctuation_are_refused(phrase, problem):
    assert problem in usertext.phrase_problem(phrase)
    assert usertext.phrase_problem("LGTM") is None and usertext.phrase_problem("🚢") is None


def test_what_is_not_the_writers_own_words():
    text = ("mine\n> theirs\n```\ncode\n```\n<!-- hidden\nstill -->\nmine too\n<blockquote>q</blockquote>\n\n"
            "    indented code\n<pre>\ncode\n</pre>\nafter")
    reader = usertext.Text(text, len(text))
    own = {line for line in text.split("\n") if not reader.hidden(text.index(line))}
    assert own == {"mine", "mine too", "", "after"}


def test_budgets_err_towards_no_approval():
    assert usertext.approving_phrase("<b>" * 600 + "LGTM", PHRASES) is None  # past MAX_MARKERS tags
    assert usertext.approving_phrase("<b>" * 100 + "\nLGTM", PHRASES) == "LGTM"
    assert usertext.approving_phrase("not " + "a " * 150 + "LGTM", PHRASES) is None  # the clause began unread
    assert usertext.approving_phrase("LGTM " + "a " * 150 + "?", PHRASES) is None  # its end unread
    assert usertext.approving_phrase("not LGTM\n" * 10 + "LGTM", PHRASES) is None  # past MAX_WINDOWS
    assert usertext.approving_phrase("not LGTM\n" * 9 + "LGTM", PHRASES) == "LGTM"


@pytest.mark.parametrize("message, names", [
    ("x\n\nCo-authored-by: Bob B <4242+bob@users.noreply.github.com>", ("bob",)),
    ("x\n\nCo-authored-by: carol <carol@users.noreply.github.com>\r\n", ("carol",)),
    ("x\n\nCo-authored-by:   Dave   <dave@example.com>   ", ("Dave",)),
    ("Co-authored-by: a <b> <c@d>", ("a <b>",)),
    ("Co-authored-by: <x@y>", ()),
    ("Co-authored-by: bob <12+bob@users.noreply.github.com> trailing", ()),
    ("  Co-authored-by: indented <i@x>", ()),
])
def test_coauthor_trailers(message, names):
    assert usertext.coauthors(message) == names


@pytest.mark.parametrize("text, reason", [
    ("Fixes.\n\nTBR: checkout down, INC-42", "checkout down, INC-42"),
    ("  TBR:\tdb failover  ", "db failover"),
    ("> TBR: quoted\n", None),
    ("```\nTBR: <reason>\n```", None),  # a template's example, not a declaration
    ("<!-- TBR: <reason> -->", None),
    ("TBR:", None),
    ("tbr: lower case is not the keyword", None),
    ("TBR: " + "x" * 5000, "x" * 999 + "…"),
])
def test_declarations(text, reason):
    assert usertext.declaration(text) == reason


@pytest.mark.parametrize("body, ref", [
    ("Reverts acme/api#7", ("acme/api", 7)),
    ("Reverts acme/api#7  \n", ("acme/api", 7)),
    ("Intro\nReverts a.b/c-d_e#12", ("a.b/c-d_e", 12)),
    (" Reverts acme/api#7", None),
    ("Reverts acme/api#x", None),
    ("Reverts acme#7", None),
    ("Reverts acme/api#7 and more", None),
])
def test_revert_references(body, ref):
    assert usertext.reverts_pull(body) == ref


# The expressions the parsers replaced, as oracles: applied to one line at a time, on short inputs.
OLD_COAUTHOR = re.compile(r"^co-authored-by:\s*(.+?)\s*<([^>]*)>\s*$", re.IGNORECASE)
OLD_NOREPLY = re.compile(r"^(?:\d+\+)?([A-Za-z0-9-]+)@users\.noreply\.github\.com$")
OLD_REVERTED = re.compile(r"This reverts commit (?P<sha>[0-9a-f]{7,40})")
OLD_LINE = re.compile(r"^- \[(?P<mark>[ xX])\] .*?<!-- tbr:line=(?P<id>[^ ]+) -->\s*$")
OLD_COMMAND = re.compile(r"^\s*(?P<verb>revoke|keep)\s+@(?P<login>[A-Za-z0-9-]+(?:\[bot\])?)"
                         r"(?:\s+(?:on|in)\s+(?P<repo>[\w.-]+/[\w.-]+))?", re.IGNORECASE)


def lines_of(*fragments):
    return st.lists(st.lists(st.sampled_from(fragments), max_size=8).map("".join), max_size=4).map("\n".join)


@settings(max_examples=300, deadline=None)
@given(lines_of("Co-authored-by:", "co-AUTHORED-by:", " ", "\t", "Bob", "<", ">", "b@x", "4242+", "bob",
                "@users.noreply.github.com", "x"))
def test_coauthors_agree_with_the_old_expression(message):
    expected = []
    for line in message.split("\n"):
        m = OLD_COAUTHOR.match(line)
        if m:
            login = OLD_NOREPLY.match(m[2].strip())
            expected.append(login[1] if login else m[1].strip())
    assert usertext.coauthors(message) == tuple(n for n in expected if n)


@settings(max_examples=300, deadline=None)
@given(lines_of("This reverts commit ", "abcdef1", "0123456789", "ABC", "g", " ", ".", "f" * 20))
def test_reverted_commits_agree_with_the_old_expression(message):
    assert usertext.reverted_commits(message) == OLD_REVERTED.findall(message)


@settings(max_examples=300, deadline=None)
@given(lines_of("- [", " ", "x", "X", "] ", "@bob", "<!-- tbr:line=", "a", "b:c", " -->", "-->", "\t", "~"))
def test_ticks_agree_with_the_old_expression(body):
    expected = {}
    for line in body.split("\n"):
        m = OLD_LINE.match(line)
        if m:
            expected[m["id"]] = m["mark"] != " "
    assert usertext.ticks(body) == expected


@settings(max_examples=300, deadline=None)
@given(lines_of("revoke", "KEEP", "keep", " ", "\t", "@", "bob", "bob-2", "[bot]", "[BOT]", "on", "in", "acme",
                "/", "api.x", ",", "d", ">"))
def test_commands_agree_with_the_old_expression(comment):
    expected = []
    for line in comment.split("\n"):
        m = OLD_COMMAND.match(line)
        if m:
            expected.append((m["verb"].lower(), m["login"], m["repo"]))
    assert usertext.commands(comment) == expected


@settings(max_examples=500, deadline=None)
@given(st.lists(st.sampled_from(["LGTM", "lgtm", "not", "?", ".", ",", "`", "``", "~", "~~", "```", "\n", " ", ">",
                                 "<!--", "-->", "<blockquote>", "</blockquote>", "<pre", "</", "TBR:", "🚢", ":shipit:",
                                 "    ", "\t", "\r", "İ", "x", "but", "for", "revoke @bob", "- [x] ",
                                 "<!-- tbr:line=a -->", "Co-authored-by: a <b>", "Reverts a/b#1"]),
                max_size=40).map("".join))
def test_any_text_is_read_without_error(text):
    phrase = usertext.approving_phrase(text, PHRASES)
    assert phrase in (None, *PHRASES)
    if phrase:  # quoted, the same words approve nothing
        lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
        assert usertext.approving_phrase("\n".join("> " + line for line in lines), PHRASES) is None
    usertext.declaration(text), usertext.commands(text), usertext.ticks(text), usertext.coauthors(text)
    usertext.reverts_pull(text), usertext.reverted_commits(text)
