"""tbr.patterns: configured patterns compiled with RE2, or refused with a reason people can act on."""

from __future__ import annotations

import fnmatch

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tbr import patterns
from tbr.repoconfig import InvalidConfig, parse


@pytest.mark.parametrize("pattern, reason", [
    ("(?<=TBR )INC-\\d+", "lookarounds and backreferences are not supported"),
    ("(a)\\1", "invalid escape sequence"),
    ("[unclosed", "missing ]"),
    ("x" * 1_001, "is longer than 1000 characters"),
])
def test_patterns_re2_cannot_match_in_linear_time_are_refused(pattern, reason):
    assert reason in patterns.problem(pattern)
    with pytest.raises(InvalidConfig) as e:
        parse(f"ticket_pattern: '{pattern}'")
    assert e.value.problems == [f"ticket_pattern: {patterns.problem(pattern)}"]


def test_a_catastrophic_pattern_is_accepted_and_matches_in_linear_time():
    assert patterns.problem("^(a+)+$") is None
    assert patterns.search("^(a+)+$", "a" * 60_000 + "!") is None
    assert patterns.search(r"[A-Z]+-\d+", "fixes OPS-12 and OPS-13") == "OPS-12"
    assert patterns.search("(?=x)", "x") is None  # stored before validation refused it: matches nothing


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(["*", "?", "[", "]", "!", "^", "-", "a", "b", "/", ".", "\\", "z"]), max_size=8)
       .map("".join),
       st.lists(st.sampled_from(["a", "b", "/", ".", "-", "[", "]", "!", "^", "\\", "z"]), max_size=8).map("".join))
def test_branch_globs_match_as_fnmatch_does(glob, branch):
    try:
        expected = fnmatch.fnmatchcase(branch, glob)
    except Exception:  # fnmatch's own regex fails on a bad range: the glob then matches only itself
        expected = branch == glob
    assert patterns.glob_match(glob, branch) == expected
