"""Patterns from configuration (`ticket_pattern`, `branches` globs), matched in linear time.

They are compiled with RE2 (google-re2), whose matchers never backtrack: a repository's
`ticket_pattern: "^(a+)+$"` costs the same as any other on a 64 KB pull request body. RE2 has no
lookarounds or backreferences; a pattern it cannot compile is refused when the configuration is
validated (`problem`), and one stored before that check matches nothing. Pure; no I/O.
"""

from __future__ import annotations

import functools

import re2

from tbr.usertext import MAX_TEXT  # GitHub's limit for a body; titles and branch names are far shorter

MAX_PATTERN = 1_000


def _options() -> re2.Options:
    options = re2.Options()
    options.log_errors = False  # the error is reported to the user, not on stderr
    return options


@functools.lru_cache(maxsize=512)
def _compiled(pattern: str):
    if len(pattern) > MAX_PATTERN:
        raise ValueError(f"is longer than {MAX_PATTERN} characters")
    try:
        return re2.compile(pattern, options=_options())
    except re2.error as e:
        reason = e.args[0].decode() if e.args and isinstance(e.args[0], bytes) else str(e)
        raise ValueError(f"is not a regular expression tbr can match in linear time (RE2: {reason}); "
                         "lookarounds and backreferences are not supported") from None


def problem(pattern: str) -> str | None:
    """Why a configured regular expression is refused, or None."""
    try:
        _compiled(pattern)
    except ValueError as e:
        return str(e)
    return None


def search(pattern: str, text: str | None) -> str | None:
    """The first match of `pattern` in `text`, or None (also for a pattern RE2 cannot compile)."""
    try:
        m = _compiled(pattern).search((text or "")[:MAX_TEXT])
    except ValueError:
        return None
    return m.group(0) if m else None


def _glob_regex(glob: str) -> str:
    """fnmatch's glob syntax (`*`, `?`, `[seq]`, `[!seq]`; `*` crosses `/`) as an RE2 pattern."""
    out, i, n = [], 0, len(glob)
    while i < n:
        c = glob[i]
        i += 1
        if c == "*":
            out.append(".*")
        elif c == "?":
            out.append(".")
        elif c == "[":
            j = i + (glob[i:i + 1] == "!")
            j += glob[j:j + 1] == "]"
            j = glob.find("]", j)
            if j < 0:
                out.append(r"\[")
                continue
            inner = glob[i:j].replace("\\", "\\\\")
            i = j + 1
            if inner.startswith("!"):
                inner = "^" + inner[1:]
            elif inner.startswith("^"):
                inner = "\\" + inner
            out.append(f"[{inner}]")
        else:
            out.append(re2.escape(c))
    return "(?s)" + "".join(out)


@functools.lru_cache(maxsize=512)
def _glob(glob: str):
    try:
        return re2.compile(_glob_regex(glob), options=_options())
    except re2.error:
        return None  # a malformed class: the glob matches only itself


def glob_match(glob: str, name: str) -> bool:
    """fnmatch.fnmatchcase, in linear time."""
    compiled = _glob(glob)
    return bool(compiled.fullmatch(name)) if compiled else name == glob
