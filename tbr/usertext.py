"""Text that people write, read in linear time: approval phrases, co-author trailers, `TBR:`
declarations, revert references and access-review commands. Pure; no I/O, and no regular
expressions: a backtracking matcher on an attacker's 64 KB comment can hold the interpreter for
minutes. Everything here is plain string operations, capped at GitHub's own limits (65,536
characters for a body or comment): texts are searched at C speed for what matters (a phrase,
`TBR:`, a trailer, a command) and only those places are read, within budgets (the MAX_ constants)
that bound the work on any text and err towards "no approval", "not declared".

## When a text approves (`approving_phrase`)

One grammar decides it, for PR comments, review bodies and follow-up sign-off comments alike.

1. **The writer's own words.** Set apart as GitHub shows them, and never an approval: fenced code
   (``` or ~~~), indented code, `>` quote lines, HTML comments, `<blockquote>`, `<pre>`, `<code>`,
   `<del>`, `<s>` and `<strike>` elements, inline code spans and ~~strikethrough~~.
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

Budgets: at most 10 phrase occurrences are judged in a text, each from the 200 characters either
side of it (a clause that began earlier counts as negated, a sentence that ends later as a
question); 100 code fences or HTML tags before them are looked at (past them, everything is
hidden); a line with over 200 backtick or tilde runs is code.
"""

from __future__ import annotations

import bisect
import functools
import string
from dataclasses import dataclass

MAX_TEXT = 65_536  # GitHub's limit for an issue or PR body and for a comment
MAX_MESSAGE = 65_536  # commit messages (git has none): a trailer past this is as if never written
MAX_PHRASE = 100
MAX_REASON = 1_000  # a declaration's reason, as recorded and shown in the follow-up
# Budgets that bound the work on any text; each errs towards "not an approval", "not declared".
MAX_MARKERS = 100  # code fences and HTML tags looked at before the last phrase; past them, all is hidden
MAX_CANDIDATES = 200  # phrase (or `TBR:`) occurrences looked at in one text
MAX_WINDOWS = 10  # phrase occurrences judged in one text
WINDOW = 200  # characters read either side of a phrase; a clause reaching past them does not approve
MAX_RUNS = 200  # backtick or tilde runs in a line; a line with more is code, not a statement
MAX_TRAILERS = 20  # Co-authored-by lines in one commit message (more: as if not written)
MAX_DECLARATIONS = 20  # `TBR:` occurrences looked at in one text
MAX_REVERTS = 20  # `This reverts commit` sentences in one commit message
MAX_COMMANDS = 500  # `revoke` / `keep` words in one comment
ASCII_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)  # keeps every position

# ---------------------------------------------------------------------------------------------
# 1. The writer's own words


def _capped(text: str | None, limit: int = MAX_TEXT) -> str:
    text = (text or "")[:limit]
    return text.replace("\r\n", "\n").replace("\r", "\n") if "\r" in text else text


def _lower(text: str) -> str:
    """Lowercase with every position kept (str.lower lengthens a few letters, such as "İ")."""
    low = text.lower()
    return low if len(low) == len(text) else text.translate(ASCII_LOWER)


def _run_end(text: str, i: int, ch: str) -> int:
    """The end of the run of `ch` starting at i (C-speed, however long the run)."""
    size = 16
    while True:
        chunk = text[i:i + size]
        rest = len(chunk.lstrip(ch))
        if rest or i + size >= len(text):
            return i + len(chunk) - rest
        size *= 2


def _line_start(text: str, pos: int) -> int:
    return text.rfind("\n", 0, pos) + 1


def _line_end(text: str, pos: int) -> int:
    end = text.find("\n", pos)
    return len(text) if end < 0 else end


def _starts_line(text: str, pos: int) -> bool:
    """Whether only spaces and tabs (at most 64) stand between the line's start and `pos`."""
    start = max(0, pos - 64)
    before = text[start:pos]
    cut = before.rfind("\n")
    return not before[cut + 1:].strip(" \t") and (cut >= 0 or start == 0)


HIDDEN_TAGS = frozenset({"blockquote", "pre", "code", "del", "s", "strike"})


class Text:
    """A text, capped at GitHub's limit, and which of its positions are not its writer's own words:
    fenced code, HTML comments and hidden elements (computed once, up to a position, within a
    budget of markers: past it, everything counts as hidden), `>` quote lines and indented code."""

    def __init__(self, text: str, upto: int):
        self.text = text
        self.spans: list[tuple[int, int]] = []
        if text.find("```", 0, upto + 3) >= 0 or text.find("~~~", 0, upto + 3) >= 0:
            self._fences(upto)
        if text.find("<", 0, upto) >= 0:
            self._html(upto)
        merged: list[list[int]] = []  # fences and HTML may overlap: keep their union, disjoint
        for start, end in sorted(self.spans):
            if merged and start <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], end)
            else:
                merged.append([start, end])
        self.spans = [(a, b) for a, b in merged]
        self.starts = [a for a, _ in merged]

    def _fences(self, upto: int) -> None:
        text, pos, seen, fence = self.text, 0, 0, None  # fence: (char, length, start) while open
        while True:
            found = [i for i in (text.find("```", pos, upto + 3), text.find("~~~", pos, upto + 3)) if i >= 0]
            if not found:
                break
            i = min(found)
            seen += 1
            if seen > MAX_MARKERS:
                self.spans.append((i, len(text)))
                return
            end = _run_end(text, i, text[i])
            pos = end
            if not _starts_line(text, i):
                continue
            if fence is None:
                fence = (text[i], end - i, _line_start(text, i))
            elif text[i] == fence[0] and end - i >= fence[1] and not text[end:_line_end(text, end)].strip():
                self.spans.append((fence[2], _line_end(text, end)))
                fence = None
        if fence:
            self.spans.append((fence[2], len(text)))

    def _html(self, upto: int) -> None:
        text, n = self.text, len(self.text)
        pos, seen, depth, start = 0, 0, 0, 0
        while True:
            i = text.find("<", pos, upto)
            if i < 0:
                break
            seen += 1
            if seen > MAX_MARKERS:
                self.spans.append((i if depth == 0 else start, n))
                return
            if text.startswith("<!--", i):
                end = text.find("-->", i + 4)
                stop = n if end < 0 else end + 3
                if depth == 0:
                    self.spans.append((i, stop))
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
                    start = i
                depth += 1
            elif depth:
                depth -= 1
                if depth == 0:
                    self.spans.append((start, stop))
            pos = stop
        if depth:
            self.spans.append((start, n))

    def visible(self, start: int, end: int) -> str:
        """text[start:end] with its fenced or HTML-hidden stretches blanked out."""
        k = max(0, bisect.bisect_right(self.starts, start) - 1)
        parts, at = [], start
        while k < len(self.spans) and self.spans[k][0] < end:
            a, b = max(self.spans[k][0], at), min(self.spans[k][1], end)
            if a < b:
                parts.append(self.text[at:a] + " " * (b - a))
                at = b
            k += 1
        return "".join(parts) + self.text[at:end]

    def hidden(self, pos: int) -> bool:
        k = bisect.bisect_right(self.starts, pos) - 1
        if k >= 0 and pos < self.spans[k][1]:
            return True
        text, start = self.text, _line_start(self.text, pos)
        first = text[start:start + 64].lstrip(" \t")[:1]
        if first == ">":
            return True
        if text.startswith(("    ", "\t"), start):  # indented code: after a blank line or more code
            if start == 0:
                return True
            previous = text[_line_start(text, start - 1):start - 1]
            return not previous.strip() or previous.startswith(("    ", "\t"))
        return False


def _drop_spans(text: str, ch: str, lengths: tuple[int, ...] | None = None) -> str | None:
    """Remove spans delimited by equal runs of `ch` (code spans with backticks, strikethrough with
    tildes), as CommonMark pairs them: an opener takes the next run of the same length; one
    without a partner is literal. None past MAX_RUNS runs: such a line is not read."""
    runs = []  # (start, end)
    pos = text.find(ch)
    while pos >= 0:
        end = _run_end(text, pos, ch)
        if lengths is None or end - pos in lengths:
            runs.append((pos, end))
            if len(runs) > MAX_RUNS:
                return None
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
        parts.append(text[start:s] + " ")
        start = runs[closer][1]
        index = closer + 1
    parts.append(text[start:])
    return "".join(parts)


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
    out, word = [], []
    for c in chunk:
        if c.isalnum() or (c in _JOINERS and word):
            word.append(c)
            continue
        if word:
            out.append("".join(word).rstrip(_JOINERS))
            word = []
        if c not in _JOINERS:
            out.append(c)
    if word:
        out.append("".join(word).rstrip(_JOINERS))
    return [t for t in out if t]


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


CUT_BEFORE = "\x00before"  # the clause began before the window read: as good as negated
CUT_AFTER = "\x00after"  # the sentence ends after the window read: as good as a question


def _approving_in(line: str, phrases: list[Phrase], cut_before=False, cut_after=False) -> list[Phrase]:
    """The phrase occurrences that approve in a line, or in the stretch of one that was read."""
    toks = tokens(_url_free(line))
    toks = [CUT_BEFORE] * cut_before + toks + [CUT_AFTER] * cut_after
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
        if isinstance(item, str) and (item in SENTENCE_ENDS or item == CUT_AFTER):
            # The run of ends and symbols closing the sentence says whether it is a question.
            question = False
            while index < len(items) and isinstance(items[index], str) and not _is_word(items[index]) \
                    and items[index] != CUT_BEFORE:
                question = question or items[index] in ("?", "？", CUT_AFTER)
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
            if x == CUT_BEFORE:
                negated = True
            elif _is_word(x):
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


def _window(line: str, q: int, size: int) -> tuple[int, int] | None:
    """The stretch of `line` read to judge the phrase at q: WINDOW characters either side, cut at
    whitespace; None when a single word reaches past it (no phrase stands alone there)."""
    left, right = max(0, q - WINDOW), min(len(line), q + size + WINDOW)
    if left and not line[left - 1].isspace():
        gaps = [i for i in (line.find(" ", left, q), line.find("\t", left, q)) if i >= 0]
        if not gaps:
            return None
        left = min(gaps) + 1
    if right < len(line) and not line[right].isspace():
        gap = max(line.rfind(" ", q + size, right), line.rfind("\t", q + size, right))
        if gap < 0:
            return None
        right = gap
    return left, right


def approving_phrase(text: str | None, phrases) -> str | None:
    """The first of `phrases` (in their order) that the text states as an approval, or None."""
    return _approving_phrase(text, tuple(phrases))


@functools.lru_cache(maxsize=64)  # a judgement reads each text twice (approvals, separation of duties)
def _approving_phrase(text: str | None, phrases: tuple[str, ...]) -> str | None:
    parsed = [p for p in (phrase(t) for t in phrases) if p.words]
    if not text or not parsed:
        return None
    low = _lower(_capped(text))
    wanted = [(p, max(p.words, key=len)) for p in parsed]
    wanted = [(p, key) for p, key in wanted if key in low]
    if not wanted:
        return None
    candidates = set()
    for _, key in wanted:
        pos = low.find(key)
        while pos >= 0 and len(candidates) < MAX_CANDIDATES:
            candidates.add(pos)
            pos = low.find(key, pos + len(key))
    ordered = sorted(candidates)
    reader = Text(low, ordered[-1] + 1)
    here = [p for p, _ in wanted]
    approving: set[str] = set()
    windows, read_line = 0, -1
    for pos in ordered:
        start = _line_start(low, pos)
        if start == read_line or reader.hidden(pos):
            continue
        read_line = start
        line = reader.visible(start, _line_end(low, pos))
        if "`" in line:
            line = _drop_spans(line, "`")
        if line and "~" in line:
            line = _drop_spans(line, "~", (1, 2))
        if not line:
            continue
        for _, key in wanted:
            q = line.find(key)
            while q >= 0 and windows < MAX_WINDOWS:
                windows += 1
                bounds = _window(line, q, len(key))
                if bounds is None:
                    q = line.find(key, q + len(key))
                    continue
                left, right = bounds
                found = _approving_in(line[left:right], here, left > 0, right < len(line))
                approving.update(p.text for p in found)
                if parsed[0].text in approving:
                    return parsed[0].text
                q = line.find(key, max(right, q + len(key)))
        if windows >= MAX_WINDOWS:
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
    text = _capped(message, MAX_MESSAGE)
    low = _lower(text)
    found, pos, seen = [], low.find(COAUTHOR), 0
    while pos >= 0 and seen < MAX_TRAILERS:
        seen += 1
        if pos == 0 or low[pos - 1] == "\n":
            who = _trailer(text[pos + len(COAUTHOR):_line_end(text, pos)])
            if who:
                found.append(who)
        pos = low.find(COAUTHOR, pos + len(COAUTHOR))
    return tuple(found)


def _trailer(rest: str) -> str | None:
    """` Name <email>` after `Co-authored-by:`: the noreply address's login, else the name."""
    rest = rest.rstrip()
    if not rest.endswith(">"):
        return None
    inner = rest[:-1]
    lt = inner.find("<", inner.rfind(">") + 1)
    if lt < 1:  # no address, or no name before it
        return None
    name, email = inner[:lt].strip(), inner[lt + 1:].strip()
    if email.endswith(NOREPLY):
        local = email[:-len(NOREPLY)]
        number, plus, login = local.partition("+")
        candidate = login if plus else local
        if (not plus or (number.isascii() and number.isdigit())) and _login_chars(candidate):
            return candidate
    return name or None


def declaration(text: str | None) -> str | None:
    """The reason of the first `TBR: <reason>` line in the writer's own words (not quoted, not in
    code or an HTML comment), or None. Long reasons are cut at MAX_REASON characters."""
    text = _capped(text)
    starts, pos, seen = [], text.find("TBR:"), 0
    while pos >= 0 and seen < MAX_DECLARATIONS:
        seen += 1
        if _starts_line(text, pos):
            starts.append(pos)
        pos = text.find("TBR:", pos + 4)
    if not starts:
        return None
    reader = Text(text, starts[-1] + 1)
    for pos in starts:
        reason = text[pos + 4:_line_end(text, pos)].strip()
        if reason and not reader.hidden(pos):
            return reason if len(reason) <= MAX_REASON else reason[:MAX_REASON - 1] + "…"
    return None


def _repo_chars(s: str) -> bool:
    return bool(s) and all(c.isalnum() or c in "_.-" for c in s)


def reverts_pull(body: str | None) -> tuple[str, int] | None:
    """GitHub's revert button's `Reverts owner/repo#N` line: (owner/repo, N), or None."""
    text = _capped(body)
    pos, seen = text.find("Reverts "), 0
    while pos >= 0 and seen < MAX_CANDIDATES:
        seen += 1
        if pos == 0 or text[pos - 1] == "\n":
            ref, hash_, number = text[pos + len("Reverts "):_line_end(text, pos)].rstrip().rpartition("#")
            owner, slash, name = ref.partition("/")
            if hash_ and slash and number.isascii() and number.isdigit() and len(number) <= 10 \
                    and _repo_chars(owner) and _repo_chars(name):
                return ref, int(number)
        pos = text.find("Reverts ", pos + 8)
    return None


REVERTS_COMMIT = "This reverts commit "
HEX = frozenset("0123456789abcdef")


def reverted_commits(message: str | None) -> list[str]:
    """The shas that `This reverts commit <sha>` sentences of a commit message name (7 to 40 hex)."""
    text, found = _capped(message, MAX_MESSAGE), []
    pos, seen = text.find(REVERTS_COMMIT), 0
    while pos >= 0 and seen < MAX_REVERTS:
        seen += 1
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
    text, found, end = _capped(body), {}, 0
    pos = text.find(TICK_MARKER)
    while pos >= 0:
        start = text.rfind("\n", end, pos) + 1 or end
        end = _line_end(text, pos)
        _tick(text[start:end], found)
        pos = text.find(TICK_MARKER, end)
    return found


def _tick(line: str, found: dict[str, bool]) -> None:
    if not (line.startswith("- [") and line[3:4] in (" ", "x", "X") and line[4:6] == "] "):
        return
    s = line.rstrip()
    if not s.endswith(" -->"):
        return
    head, _, line_id = s[:-4].rpartition(" ")
    if head.endswith("<!--") and line_id.startswith("tbr:line=") and len(head) >= 10 and line_id[9:]:
        found[line_id[9:]] = line[3] != " "


MAX_LOGIN = 100  # GitHub's logins have at most 39 characters


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
    text = _capped(comment)
    low = _lower(text)
    starts = []
    for verb in ("revoke", "keep"):
        pos, seen = low.find(verb), 0
        while pos >= 0 and seen < MAX_COMMANDS:
            seen += 1
            if _starts_line(low, pos):
                starts.append((pos, verb))
            pos = low.find(verb, pos + len(verb))
    found = []
    for pos, verb in sorted(starts):
        rest = text[pos + len(verb):_line_end(text, pos)]
        gap = len(rest) - len(rest.lstrip())
        if not gap or rest[gap:gap + 1] != "@":
            continue
        rest = rest[gap + 1:]
        n = _take(rest[:MAX_LOGIN + 1], _login_char)
        if not n or n > MAX_LOGIN:
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
    candidate = words[1][:MAX_LOGIN * 3]
    owner_n = _take(candidate, _repo_char)
    if not owner_n or candidate[owner_n:owner_n + 1] != "/":
        return None
    name_n = _take(candidate[owner_n + 1:], _repo_char)
    return candidate[:owner_n + 1 + name_n] if name_n else None
