"""Text that people write, read in linear time: approval phrases, co-author trailers, `TBR:`
declarations, revert references and access-review commands. Pure; no I/O, and no regular
expressions: a backtracking matcher on an attacker's 64 KB comment can hold the interpreter for
minutes. Everything here is plain string operations, line by line, capped at GitHub's own limits
(65,536 characters for a body or comment), so its cost grows with the text, never faster.

## When a text approves (`approving_phrase`)

One grammar decides it, for PR comments, review bodies and follow-up sign-off comments alike.

1. **The writer's own words.** Dropped first, as GitHub would show them set apart: fenced code
   (``` or ~~~), indented code, `>` quote lines, HTML comments, `<blockquote>`, `<pre>`, `<code>`,
   `<del>`, `<s>` and `<strike>` elements, then inline code spans and ~~strikethrough~~.
2. **Sentences and clauses.** Each remaining line is split into sentences at `.`, `!`, `?`, `;` and
   `…` (and at the line's end), and a sentence into clauses at `,`, `:`, `|`, a dash, and the words
   "but", "though", "although", "however", "otherwise", "anyway", "nonetheless", "nevertheless".
3. **Words.** A word is a run of letters and digits (with inner `'`, `-`, `_`); every other
   character stands alone and is ignored when judging positions (punctuation, emoji, markup), and
   case does not matter. A phrase ("LGTM", "ship it", "🚢", ":shipit:") matches a whole run of
   words and symbols, so "LGTMS", "LGTM'd" and "non-LGTM" are not "LGTM".
4. **An approval** is a phrase that stands as its own statement:
   - its sentence is not a question (no `?` ends it: "LGTM?", "Is this LGTM?");
   - no negation comes earlier in its clause: not, no, never, nope, nah, nor, neither, cannot,
     hardly, without, none, and any "n't" or apostrophe-less form ("isn't", "dont") — so "NOT  LGTM",
     "isn't LGTM", "Not yet LGTM" and "I have not yet reviewed this" do not approve, while
     "No concerns, LGTM" and "Not sure about X, but LGTM" do;
   - it opens its clause ("LGTM, thanks", "LGTM with one nit below"), unless a request follows
     ("LGTM needed", "LGTM please"), or closes it ("Thanks, LGTM", "Looks good. LGTM 🚢"), unless it
     is the object of another word: after a preposition, a request or a modal ("waiting for LGTM",
     "needs LGTM", "will LGTM"), or an article or possessive ("an LGTM", "my LGTM").
   A phrase in the middle of its clause ("The LGTM bot is down") is talk about the phrase.

Caps keep the worst case small: a text is read up to 65,536 characters, a line up to 65,536 too;
at most 1,000 phrase occurrences are judged in one text (a real approval is never the 1,001st).
"""

from __future__ import annotations

import string
from dataclasses import dataclass

MAX_TEXT = 65_536  # GitHub's limit for an issue or PR body and for a comment
MAX_MESSAGE = 65_536  # commit messages (git has none): a trailer past this is as if never written
MAX_PHRASE = 100
MAX_OCCURRENCES = 1_000
MAX_REASON = 1_000  # a declaration's reason, as recorded and shown in the follow-up

# ---------------------------------------------------------------------------------------------
# 1. The writer's own words


def _capped(text: str | None, limit: int = MAX_TEXT) -> str:
    return (text or "")[:limit].replace("\r\n", "\n").replace("\r", "\n")


def _fence(stripped: str) -> tuple[str, int] | None:
    """(character, length) of a code fence opening this (left-stripped) line, if it is one."""
    if stripped[:3] in ("```", "~~~"):
        ch = stripped[0]
        return ch, len(stripped) - len(stripped.lstrip(ch))
    return None


def own_lines(text: str | None) -> list[str]:
    """The text's lines with code blocks and quotes blanked (line numbers stay), HTML comments and
    hidden HTML elements removed: the writer's own words, as whole lines."""
    lines = _capped(text).split("\n")
    out = []
    fence = None  # (char, length) while inside a fenced block
    previous_blank_or_code = True
    for line in lines:
        stripped = line.lstrip()
        if fence:
            ch, length = fence
            if stripped.startswith(ch * length) and not stripped.rstrip().strip(ch):
                fence = None
            out.append("")
            continue
        opened = _fence(stripped) if stripped[:1] in "`~" and stripped else None
        if opened:
            fence = opened
            out.append("")
            previous_blank_or_code = True
            continue
        if not stripped:
            out.append("")
            previous_blank_or_code = True
            continue
        if line[:4] == "    " or line[:1] == "\t":
            if previous_blank_or_code:  # indented code: after a blank line or more code
                out.append("")
                continue
        elif stripped[0] == ">":
            out.append("")
            previous_blank_or_code = False
            continue
        out.append(line)
        previous_blank_or_code = False
    joined = "\n".join(out)
    if "<" in joined:
        joined = _without_html(joined)
    return joined.split("\n")


HIDDEN_TAGS = frozenset({"blockquote", "pre", "code", "del", "s", "strike"})


def _without_html(text: str) -> str:
    """Drop HTML comments and the content of quoting, code and struck-through elements (nested
    ones counted; an unclosed one hides the rest, as a browser shows it). Newlines are kept."""
    parts, depth, pos, start = [], 0, 0, 0  # text[start:] is not yet copied (or dropped)
    n = len(text)
    while True:
        i = text.find("<", pos)
        if i < 0:
            break
        if text.startswith("<!--", i):
            end = text.find("-->", i + 4)
            stop = n if end < 0 else end + 3
            if depth == 0:
                parts.append(text[start:i] + "\n" * text.count("\n", i, stop))
                start = stop
            pos = stop
            continue
        head = text[i + 1:i + 13].lower()
        closing = head.startswith("/")
        name = head[1:] if closing else head
        k = 0
        while k < len(name) and "a" <= name[k] <= "z":
            k += 1
        if name[:k] not in HIDDEN_TAGS or name[k:k + 1] not in ("", ">", " ", "\t", "\n", "/"):
            pos = i + 1
            continue
        gt = text.find(">", i, i + 1_000)
        stop = i + 1 + k + closing if gt < 0 else gt + 1
        if not closing:
            if depth == 0:
                parts.append(text[start:i])
                start = i
            depth += 1
        elif depth:
            depth -= 1
            if depth == 0:
                parts.append("\n" * text.count("\n", start, stop))
                start = stop
        pos = stop
    parts.append("\n" * text.count("\n", start, n) if depth else text[start:])
    return "".join(parts)


def _run_end(text: str, i: int, ch: str) -> int:
    """The end of the run of `ch` starting at i (C-speed, however long the run)."""
    size = 16
    while True:
        chunk = text[i:i + size]
        rest = len(chunk.lstrip(ch))
        if rest or i + size >= len(text):
            return i + len(chunk) - rest
        size *= 2


def _drop_spans(text: str, ch: str, lengths: tuple[int, ...] | None = None) -> str:
    """Remove spans delimited by equal runs of `ch` (code spans with backticks, strikethrough with
    tildes), as CommonMark pairs them: an opener takes the next run of the same length; one
    without a partner is literal. Linear: each run is looked at a bounded number of times."""
    runs = []  # (start, end)
    pos = text.find(ch)
    while pos >= 0:
        end = _run_end(text, pos, ch)
        if lengths is None or end - pos in lengths:
            runs.append((pos, end))
        pos = text.find(ch, end)
    if len(runs) < 2:
        return text
    by_length: dict[int, list[int]] = {}
    for index, (s, e) in enumerate(runs):
        by_length.setdefault(e - s, []).append(index)
    cursor = dict.fromkeys(by_length, 0)
    parts, start, index = [], 0, 0
    while index < len(runs):
        s, e = runs[index]
        same, c = by_length[e - s], cursor[e - s]
        while c < len(same) and same[c] <= index:
            c += 1
        cursor[e - s] = c
        if c == len(same):
            index += 1
            continue
        closer = same[c]
        parts.append(text[start:s])
        parts.append("\n" * text.count("\n", s, runs[closer][1]))
        start = runs[closer][1]
        index = closer + 1
    parts.append(text[start:])
    return "".join(parts)


def _without_inline(lines: list[str]) -> list[str]:
    """Drop code spans and strikethrough, paragraph by paragraph (a span may cross a line break)."""
    out, para = [], []
    for line in lines + [""]:
        if line.strip():
            para.append(line)
            continue
        if para:
            text = "\n".join(para)
            if "`" in text:
                text = _drop_spans(text, "`")
            if "~" in text:
                text = _drop_spans(text, "~", (1, 2))
            out.extend(text.split("\n"))
            para = []
        out.append(line)
    return out[:-1]


# ---------------------------------------------------------------------------------------------
# 2-3. Words, sentences and clauses

_JOINERS = "'-_"
_SPACED = {c: f" {c} " for c in string.punctuation if c not in _JOINERS}
_SPACED.update({c: f" {c} " for c in "“”‘«»¡¿…—–。，、！？；：（）"})
_SPACED["’"] = "'"
_SPACED["`"] = " "
_SPACED["*"] = " "
SPACING = str.maketrans(_SPACED)

SENTENCE_ENDS = frozenset(".!?;…。！？；")
CLAUSE_ENDS = frozenset(",:|—–-，、：")
CONTRASTS = frozenset({"but", "though", "although", "however", "otherwise", "anyway", "nonetheless",
                       "nevertheless"})
NEGATIONS = frozenset({"not", "no", "never", "nope", "nah", "nor", "neither", "cannot", "hardly", "without",
                       "none", "dont", "doesnt", "didnt", "isnt", "arent", "wasnt", "werent", "cant",
                       "couldnt", "wont", "wouldnt", "shouldnt", "havent", "hasnt", "hadnt", "aint", "mustnt"})
# Words that make a phrase after them its object: it is asked for, promised or talked about.
OBJECT_OF = frozenset({
    "for", "from", "of", "to", "with", "about", "on", "at", "by", "after", "before", "until", "till", "into", "via",
    "per", "need", "needs", "needed", "needing", "want", "wants", "wanted", "wait", "waiting", "await", "awaiting",
    "request", "requests", "requesting", "requested", "ask", "asks", "asking", "get", "gets", "getting", "got",
    "give", "gives", "giving", "gave", "please", "pls", "plz", "require", "requires", "required", "seeking",
    "expect", "expecting", "pending", "missing", "retract", "retracting", "retracted", "withdraw", "withdrawing",
    "revoke", "revoking", "remove", "removing", "removed", "drop", "dropping", "rescind", "rescinding", "dismiss",
    "dismissing", "will", "would", "can", "could", "should", "shall", "may", "might", "must", "going", "gonna",
})
ARTICLES = frozenset({"a", "an", "the", "my", "your", "his", "her", "their", "our", "its", "any", "some",
                      "another", "every", "each", "whose"})
NOT_POSSESSIVE = frozenset({"it's", "that's", "what's", "here's", "there's", "he's", "she's", "let's", "who's"})
REQUESTED_AFTER = frozenset({"needed", "required", "requested", "please", "pls", "plz", "retracted", "withdrawn",
                             "revoked", "removed", "rescinded", "missing", "wanted", "pending", "request"})


def _is_word(token: str) -> bool:
    return token[:1].isalnum()


def _split_chunk(chunk: str) -> list[str]:
    """A chunk mixing letters with symbols (emoji, say): words and single symbols."""
    tokens, word = [], []
    for c in chunk:
        if c.isalnum() or (c in _JOINERS and word):
            word.append(c)
            continue
        if word:
            tokens.append("".join(word).rstrip(_JOINERS))
            word = []
        if c not in _JOINERS:
            tokens.append(c)
    if word:
        tokens.append("".join(word).rstrip(_JOINERS))
    return [t for t in tokens if t]


def tokens(line: str) -> list[str]:
    """A line as lowercase words and single symbols. URLs are one neutral word."""
    out = []
    for chunk in line.translate(SPACING).lower().split():
        stripped = chunk.strip(_JOINERS)
        if not stripped:
            if chunk.strip("'_"):
                out.append("-")  # a dash between words
            continue
        if stripped.replace("'", "").replace("-", "").replace("_", "").isalnum():
            out.append(stripped)
        else:
            out.extend(_split_chunk(stripped))
    return out


def _url_free(line: str) -> str:
    if "://" not in line and "www." not in line.lower():
        return line
    return " ".join("url" if "://" in w or w.lower().startswith("www.") else w for w in line.split())


def _negation(word: str) -> bool:
    return word in NEGATIONS or word.endswith("n't")


def _object(before: list[str]) -> bool:
    last = before[-1]
    if last in OBJECT_OF or last.endswith(("'ll", "'d")):
        return True
    return any(w in ARTICLES or (w.endswith("'s") and w not in NOT_POSSESSIVE) for w in before[-2:])


@dataclass(frozen=True)
class Phrase:
    text: str
    words: tuple[str, ...]


def phrase(text: str) -> Phrase:
    return Phrase(text, tuple(tokens(text)))


def phrase_problem(text: str) -> str | None:
    """Why a configured phrase cannot be used, or None."""
    if len(text) > MAX_PHRASE:
        return f"{text[:20]!r}… is longer than {MAX_PHRASE} characters"
    words = tokens(text)
    if not any(_is_word(w) or not w.isascii() for w in words):
        return f"{text!r} has no letters, digits or emoji: it would match ordinary punctuation"
    return None


def _matches(toks: list[str], words: tuple[str, ...]) -> list[int]:
    """Where `words` occurs in `toks`, without overlaps (Knuth-Morris-Pratt: linear)."""
    m = len(words)
    if m == 1:
        w = words[0]
        return [i for i, t in enumerate(toks) if t == w]
    fail, k = [0] * m, 0
    for i in range(1, m):
        while k and words[i] != words[k]:
            k = fail[k - 1]
        if words[i] == words[k]:
            k += 1
        fail[i] = k
    found, k = [], 0
    for i, t in enumerate(toks):
        while k and t != words[k]:
            k = fail[k - 1]
        if t == words[k]:
            k += 1
        if k == m:
            found.append(i - m + 1)
            k = 0
    return found


def _approving_in_line(line: str, phrases: list[Phrase]) -> list[Phrase]:
    toks = tokens(_url_free(line))
    at: dict[int, Phrase] = {}
    taken = bytearray(len(toks))
    for p in phrases:
        m = len(p.words)
        for i in _matches(toks, p.words):
            if not any(taken[i:i + m]):
                at[i] = p
                taken[i:i + m] = b"\1" * m
    if not at:
        return []
    items: list = []  # words, symbols, and phrase occurrences (as Phrase objects)
    i = 0
    while i < len(toks):
        if i in at:
            items.append(at[i])
            i += len(at[i].words)
        else:
            items.append(toks[i])
            i += 1
    found, clauses, index = [], [[]], 0
    while index <= len(items):
        item = items[index] if index < len(items) else "."
        if isinstance(item, str) and item in SENTENCE_ENDS:
            # The run of ends and symbols closing the sentence says whether it is a question.
            question = False
            while index < len(items) and isinstance(items[index], str) and not _is_word(items[index]):
                question = question or items[index] in "?？"
                index += 1
            if not question:
                for clause in clauses:
                    found.extend(_approving_in_clause(clause))
            clauses = [[]]
            if index == len(items):
                break
            continue
        if isinstance(item, str) and (item in CLAUSE_ENDS or item in CONTRASTS):
            clauses.append([])
        else:
            clauses[-1].append(item)
        index += 1
    return found


def _approving_in_clause(clause: list) -> list[Phrase]:
    """The phrase occurrences of a clause that stand as its opening or closing statement."""
    following: list[str | None] = [None] * len(clause)  # the first word after each item
    nxt = None
    for k in range(len(clause) - 1, -1, -1):
        following[k] = nxt
        x = clause[k]
        if isinstance(x, str) and _is_word(x):
            nxt = x
    found, before, negated = [], [], False  # before: the last two words so far
    for k, x in enumerate(clause):
        if isinstance(x, str):
            if _is_word(x):
                negated = negated or _negation(x)
                before = [*before[-1:], x]
            continue
        if negated:
            continue
        after = following[k]
        if not before and not (after in REQUESTED_AFTER):
            found.append(x)
        elif after is None and before and not _object(before):
            found.append(x)
    return found


def approving_phrase(text: str | None, phrases: tuple[str, ...]) -> str | None:
    """The first of `phrases` (in their order) that the text states as an approval, or None."""
    if not text or not phrases:
        return None
    parsed = [p for p in (phrase(t) for t in phrases) if p.words]
    low = text[:MAX_TEXT].lower()
    wanted = [p for p in parsed if max(p.words, key=len) in low]
    if not wanted:
        return None
    keys = {max(p.words, key=len) for p in wanted}
    approving: set[str] = set()
    examined = 0
    for line in _without_inline(own_lines(text)):
        lowered = line.lower()
        if not any(k in lowered for k in keys):
            continue
        examined += sum(lowered.count(k) for k in keys)
        if examined > MAX_OCCURRENCES:
            break
        approving.update(p.text for p in _approving_in_line(line, wanted))
        if parsed[0].text in approving:
            break
    return next((p.text for p in parsed if p.text in approving), None)


# ---------------------------------------------------------------------------------------------
# Commit trailers, declarations, reverts

COAUTHOR = "co-authored-by:"
NOREPLY = "@users.noreply.github.com"


def _login_chars(s: str) -> bool:
    return bool(s) and s.isascii() and s.replace("-", "").isalnum()


def coauthors(message: str | None) -> tuple[str, ...]:
    """Who a commit message's `Co-authored-by: Name <email>` trailers name: the login of a GitHub
    noreply address (`[ID+]login@users.noreply.github.com`), else the name given."""
    found = []
    for line in _capped(message, MAX_MESSAGE).split("\n"):
        if line[:len(COAUTHOR)].lower() != COAUTHOR:
            continue
        rest = line[len(COAUTHOR):].rstrip()
        if not rest.endswith(">"):
            continue
        inner = rest[:-1]
        lt = inner.find("<", inner.rfind(">") + 1)
        if lt < 1:  # no address, or no name before it
            continue
        name, email = inner[:lt].strip(), inner[lt + 1:].strip()
        login = None
        if email.endswith(NOREPLY):
            local = email[:-len(NOREPLY)]
            number, plus, rest_login = local.partition("+")
            candidate = rest_login if plus else local
            if (not plus or (number.isascii() and number.isdigit())) and _login_chars(candidate):
                login = candidate
        if login or name:
            found.append(login or name)
    return tuple(found)


def declaration(text: str | None) -> str | None:
    """The reason of the first `TBR: <reason>` line in the writer's own words (not quoted, not in
    code or an HTML comment), or None. Long reasons are cut at MAX_REASON characters."""
    for line in own_lines(text):
        stripped = line.strip()
        if stripped.startswith("TBR:"):
            reason = stripped[4:].strip()
            if reason:
                return reason if len(reason) <= MAX_REASON else reason[:MAX_REASON - 1] + "…"
    return None


def _repo_chars(s: str) -> bool:
    return bool(s) and all(c.isalnum() or c in "_.-" for c in s)


def reverts_pull(body: str | None) -> tuple[str, int] | None:
    """GitHub's revert button's `Reverts owner/repo#N` line: (owner/repo, N), or None."""
    for line in _capped(body).split("\n"):
        if not line.startswith("Reverts "):
            continue
        ref, hash_, number = line[len("Reverts "):].rstrip().rpartition("#")
        owner, slash, name = ref.partition("/")
        if hash_ and slash and number.isascii() and number.isdigit() and len(number) <= 10 \
                and _repo_chars(owner) and _repo_chars(name):
            return ref, int(number)
    return None


REVERTS_COMMIT = "This reverts commit "
HEX = frozenset("0123456789abcdef")


def reverted_commits(message: str | None) -> list[str]:
    """The shas that `This reverts commit <sha>` sentences of a commit message name (7 to 40 hex)."""
    text, found = _capped(message, MAX_MESSAGE), []
    pos = text.find(REVERTS_COMMIT)
    while pos >= 0:
        start = pos + len(REVERTS_COMMIT)
        end = start
        while end < len(text) and end - start < 40 and text[end] in HEX:
            end += 1
        if end - start >= 7:
            found.append(text[start:end])
        pos = text.find(REVERTS_COMMIT, max(end, start))
    return found


# ---------------------------------------------------------------------------------------------
# Access-review issues and commands

TICK_MARKER = "<!-- tbr:line="


def ticks(body: str | None) -> dict[str, bool]:
    """Each `- [ ] ... <!-- tbr:line=ID -->` line's checkbox in an access-review issue, by line id."""
    found = {}
    for line in _capped(body).split("\n"):
        if not (line.startswith("- [") and line[3:4] in (" ", "x", "X") and line[4:6] == "] "):
            continue
        s = line.rstrip()
        if not s.endswith(" -->"):
            continue
        head, _, line_id = s[:-4].rpartition(" ")
        if head.endswith("<!--") and line_id.startswith("tbr:line=") and len(head) >= 10:
            line_id = line_id[len("tbr:line="):]
            if line_id:
                found[line_id] = line[3] != " "
    return found


def _take(s: str, ok) -> int:
    i = 0
    while i < len(s) and ok(s[i]):
        i += 1
    return i


def _login_char(c: str) -> bool:
    return c.isascii() and (c.isalnum() or c == "-")


def _repo_char(c: str) -> bool:
    return c.isalnum() or c in "_.-"


def commands(comment: str | None) -> list[tuple[str, str, str | None]]:
    """`revoke @login [on|in owner/repo]` and `keep @login` at the start of a comment's lines, as
    (verb, login, repo or None)."""
    found = []
    for line in _capped(comment).split("\n"):
        s = line.lstrip()
        verb = s[:6].lower() if s[:6].lower() == "revoke" else s[:4].lower() if s[:4].lower() == "keep" else None
        if not verb:
            continue
        rest = s[len(verb):]
        gap = len(rest) - len(rest.lstrip())
        if not gap or rest[gap:gap + 1] != "@":
            continue
        rest = rest[gap + 1:]
        n = _take(rest, _login_char)
        if not n:
            continue
        login = rest[:n]
        if rest[n:n + 5].lower() == "[bot]":
            login, n = rest[:n + 5], n + 5
        found.append((verb, login, _target(rest[n:])))
    return found


def _target(rest: str) -> str | None:
    """`on owner/repo` or `in owner/repo` after a command's login."""
    words = rest.split(None, 2)
    if len(words) < 2 or rest[:1] not in string.whitespace or words[0].lower() not in ("on", "in"):
        return None
    candidate = words[1]
    owner_n = _take(candidate, _repo_char)
    if not owner_n or candidate[owner_n:owner_n + 1] != "/":
        return None
    name_n = _take(candidate[owner_n + 1:], _repo_char)
    return candidate[:owner_n + 1 + name_n] if name_n else None
