"""Did a change have an approver? Pure: facts in, decision with evidence out.

The rules, in the order a decision names them when several hold:
1. review: an APPROVED review by a human other than the author that is still that reviewer's
   verdict (GitHub's rule: a reviewer's latest APPROVED / CHANGES_REQUESTED / DISMISSED review
   counts; COMMENTED reviews change nothing).
2. comment: an approval phrase in an issue comment, review comment or review body by a human other
   than the author, stated as an approval (tbr.usertext's grammar): not quoted or in code, not
   negated, asked for or talked about.
3. merged-by-other: the PR was merged by a human other than its author.
4. exempt-author: the author is on the exempt list and authored every commit in it (merging their
   PR is the approval).
Only people who could have merged it approve it: a review or comment counts only from a human with
write access or more to the repository (never a bot, never `ghost`). Only evidence from before the
cutoff (merge time plus grace) counts; later approvals are listed in the evidence as late, not made
retroactive. A comment or review body edited after the cutoff, or by anyone but its author, does not
count: its text is not what its author said in time.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime

from tbr import patterns, usertext

VERDICT_STATES = ("APPROVED", "CHANGES_REQUESTED", "DISMISSED")
WRITE_ROLES = ("admin", "maintain", "write")  # the repository roles that can merge
GHOST = "ghost"  # how GitHub shows a deleted account


@dataclass(frozen=True)
class Actor:
    login: str
    type: str = "User"

    @property
    def is_bot(self) -> bool:
        return self.type == "Bot" or self.login.lower().endswith("[bot]")

    def same(self, other: Actor | None) -> bool:
        return other is not None and self.login.lower() == other.login.lower()


@dataclass(frozen=True)
class Edits:
    """How a text was edited after it was posted, as GitHub records it (`lastEditedAt`, `editor`)."""

    last_at: datetime | None = None
    editors: tuple[str, ...] = ()  # who edited it (GitHub says who did last)


@dataclass(frozen=True)
class Review:
    reviewer: Actor
    state: str  # webhooks say "approved", REST says "APPROVED": normalised in __post_init__
    submitted_at: datetime | None
    url: str
    body: str = ""
    commit_id: str | None = None  # the head commit the reviewer saw
    can_push: bool | None = None  # GitHub's authorCanPushToRepository; None: not known
    edits: Edits = Edits()

    def __post_init__(self):
        object.__setattr__(self, "state", self.state.upper())


@dataclass(frozen=True)
class Comment:
    author: Actor
    body: str
    created_at: datetime
    url: str
    kind: str = "issue comment"
    can_push: bool | None = None  # known for a review's comments; otherwise PullFacts.permissions says
    edits: Edits = Edits()


@dataclass(frozen=True)
class CommitFact:
    """A commit of the PR: who wrote it (author and Co-authored-by trailers) and who committed it when."""

    sha: str
    author: str | None
    committer: str | None
    committed_at: datetime | None
    coauthors: tuple[str, ...] = ()  # logins (from noreply addresses) or names, as the trailers say
    message: str = ""


coauthors = usertext.coauthors  # the logins or names a commit's Co-authored-by trailers give


@dataclass(frozen=True)
class PullFacts:
    repo: str
    number: int
    url: str
    title: str
    author: Actor
    merged_by: Actor | None
    merged_at: datetime
    reviews: tuple[Review, ...] = ()
    comments: tuple[Comment, ...] = ()
    head_sha: str | None = None
    base: str | None = None
    commits: tuple[CommitFact, ...] = ()
    body: str = ""
    head_ref: str = ""
    labels: tuple[str, ...] = ()
    body_edits: Edits = Edits()
    # Lowercase login -> repository role (admin ... read, none) of the comment authors tbr asked about.
    permissions: dict[str, str] = field(default_factory=dict, hash=False, compare=False)


@dataclass(frozen=True)
class PushFacts:
    repo: str
    branch: str
    pusher: Actor
    pushed_at: datetime
    forced: bool
    commits: tuple[dict, ...]  # {"sha", "url", "message"}: the commits no merged PR accounts for
    compare_url: str = ""


@dataclass(frozen=True)
class Policy:
    approval_phrases: tuple[str, ...] = ("LGTM", "🚢", ":shipit:")
    exempt_authors: tuple[str, ...] = ("dependabot[bot]",)
    require_fresh_approval: bool = False  # an approval of an older head commit does not count
    independent_approvals: bool = False  # separation of duties: no approval by a (co-)author of the PR
    ticket_pattern: str | None = None  # a ticket reference in a declared emergency's reason

    def is_exempt(self, actor: Actor) -> bool:
        return actor.login.lower() in {a.lower() for a in self.exempt_authors}


@dataclass(frozen=True)
class Approval:
    rule: str
    approver: str
    at: datetime | None
    url: str
    detail: str


@dataclass(frozen=True)
class Declaration:
    """An emergency declared by the PR's author or merger: a `TBR: <reason>` line."""

    by: str
    at: datetime | None
    reason: str
    ticket: str | None
    url: str
    where: str  # "the pull request's description" or "a comment", with " (and labelled `tbr`)" when it is


@dataclass(frozen=True)
class Decision:
    approved: bool
    rule: str  # the approving rule, or "none"
    approval: Approval | None
    summary: str
    notes: tuple[str, ...] = field(default_factory=tuple)  # approvals that did not count, and why
    declaration: Declaration | None = None  # for an unapproved merge: the emergency declared, if any

    def to_dict(self) -> dict:
        data = asdict(self)
        for name in ("approval", "declaration"):
            value = getattr(self, name)
            if value and value.at:
                data[name]["at"] = value.at.isoformat()
        data["notes"] = list(self.notes)
        return data


def find_phrase(body: str | None, phrases: tuple[str, ...]) -> str | None:
    """The first of `phrases` that a comment or review body states as an approval, or None."""
    return usertext.approving_phrase(body, phrases)


def _fmt(at: datetime | None) -> str:
    return at.strftime("%Y-%m-%d %H:%M UTC") if at else "unknown time"


def edit_problem(author: Actor, edits: Edits, cutoff: datetime) -> str | None:
    """Why an edited text is not what its author said in time; None when it is."""
    others = sorted({e for e in edits.editors if e.lower() != author.login.lower()}, key=str.lower)
    if others:
        return f"{', '.join(others)} edited it, not its author"
    if edits.last_at and edits.last_at > cutoff:
        return f"it was edited at {_fmt(edits.last_at)}, after the grace period ended"
    return None


def no_write_access(facts: PullFacts, who: Actor, can_push: bool | None) -> str | None:
    """Why `who` could not have merged the PR (so cannot approve it); None when they could."""
    if who.login.lower() == GHOST:
        return "a deleted account (ghost)"
    if can_push is None:
        can_push = facts.permissions.get(who.login.lower()) in WRITE_ROLES
    return None if can_push else f"no write access to {facts.repo}"


def _head_committed_at(facts: PullFacts) -> datetime | None:
    """When the newest commit of the PR was committed (as its committer says)."""
    dates = [c.committed_at for c in facts.commits if c.committed_at]
    return max(dates) if dates else None


def _review_approvals(facts: PullFacts, policy: Policy, cutoff: datetime, notes: list[str]) -> list[Approval]:
    latest: dict[str, Review] = {}
    for review in sorted(facts.reviews, key=lambda r: r.submitted_at or cutoff):
        who = review.reviewer
        if review.state not in VERDICT_STATES:
            continue
        if review.submitted_at and review.submitted_at > cutoff:
            if review.state == "APPROVED":
                notes.append(f"{who.login} approved at {_fmt(review.submitted_at)}, after the grace period: recorded, not retroactive")
            continue
        if who.is_bot:
            if review.state == "APPROVED":
                notes.append(f"{who.login} approved, but bots cannot approve")
            continue
        if who.same(facts.author):
            continue
        why = no_write_access(facts, who, review.can_push)
        if why:
            if review.state == "APPROVED":
                notes.append(f"{who.login}'s approval did not count: {why}")
            continue  # GitHub's required reviews ignore them too
        latest[who.login.lower()] = review
    approvals = []
    for review in latest.values():
        who = review.reviewer.login
        if review.state == "APPROVED":
            if policy.require_fresh_approval and facts.head_sha and review.commit_id != facts.head_sha:
                notes.append(f"{who} approved an older commit ({(review.commit_id or '?')[:7]}), and fresh approval"
                             " is required")
                continue
            approvals.append(Approval("review", who, review.submitted_at, review.url, f"{who} approved the pull request"))
        elif review.state == "DISMISSED":
            notes.append(f"{who}'s review was dismissed")
        elif any(r.reviewer.login.lower() == who.lower() and r.state == "APPROVED" for r in facts.reviews):
            notes.append(f"{who} approved but later requested changes")
    return approvals


def _phrase_candidates(facts: PullFacts, policy: Policy, cutoff: datetime, notes: list[str]):
    """The comments and review bodies that approve by their words, time and edits, whatever their author's
    access: (author, phrase, at, url, kind, can_push), earliest first."""
    texts = [(c.author, c.body, c.created_at, c.url, c.kind, c.can_push, c.edits, None) for c in facts.comments]
    texts += [(r.reviewer, r.body, r.submitted_at, r.url, "review", r.can_push, r.edits, r.commit_id)
              for r in facts.reviews if r.body]
    head_at = _head_committed_at(facts)
    for author, body, at, url, kind, can_push, edits, commit_id in sorted(texts, key=lambda t: t[2] or cutoff):
        phrase = find_phrase(body, policy.approval_phrases)
        if phrase is None:
            continue
        said = f"{author.login} wrote {phrase!r}"
        stale = policy.require_fresh_approval and (
            (commit_id or facts.head_sha) != facts.head_sha if kind == "review"
            else bool(head_at and at and at < head_at))
        edited = edit_problem(author, edits, cutoff)
        if author.is_bot:
            notes.append(f"{said}, but bots cannot approve")
        elif author.same(facts.author):
            notes.append(f"{said} on their own pull request, which does not count")
        elif at and at > cutoff:
            notes.append(f"{said} at {_fmt(at)}, after the grace period: recorded, not retroactive")
        elif stale:
            notes.append(f"{said} before the newest commit, and fresh approval is required")
        elif edited:
            notes.append(f"{said} in a {kind}, which did not count: {edited}")
        else:
            yield author, phrase, at, url, kind, can_push


def _phrase_approvals(facts: PullFacts, policy: Policy, cutoff: datetime, notes: list[str]) -> list[Approval]:
    approvals = []
    for author, phrase, at, url, kind, can_push in _phrase_candidates(facts, policy, cutoff, notes):
        if can_push is None and author.login.lower() not in facts.permissions and author.login.lower() != GHOST:
            continue  # not asked about (see permissions_needed): a review approval settles the decision
        why = no_write_access(facts, author, can_push)
        if why:
            notes.append(f"{author.login} wrote {phrase!r} in a {kind}, which did not count: {why}")
        else:
            approvals.append(Approval("comment", author.login, at, url, f"{author.login} wrote {phrase!r} in a {kind}"))
    return approvals


def permissions_needed(facts: PullFacts, policy: Policy, cutoff: datetime) -> set[str]:
    """The lowercase logins whose repository role decides whether their words approve: authors of comments
    that would otherwise approve, when no review approval settles the decision already."""
    if not policy.independent_approvals and _review_approvals(facts, policy, cutoff, []):
        return set()
    return {author.login.lower() for author, _, _, _, _, can_push in _phrase_candidates(facts, policy, cutoff, [])
            if can_push is None and author.login.lower() not in facts.permissions
            and author.login.lower() != GHOST}


def conflicts(facts: PullFacts, login: str, at: datetime | None) -> list[str]:
    """Why `login`, approving at `at`, is not independent of the PR's code; [] when they are."""
    who = login.lower()
    found = []
    for c in facts.commits:
        if (c.author or "").lower() == who:
            found.append(f"authored {c.sha[:7]}")
        elif who in (x.lower() for x in c.coauthors):
            found.append(f"co-authored {c.sha[:7]}")
        elif (c.committer or "").lower() == who and at and c.committed_at and c.committed_at > at:
            found.append(f"committed {c.sha[:7]} after approving")
    return found


def separation(facts: PullFacts, policy: Policy, cutoff: datetime) -> tuple[list[Approval], dict[str, list[str]]]:
    """The approvals found, and for each approver who is not independent, why not."""
    plain = Policy(policy.approval_phrases, policy.exempt_authors, policy.require_fresh_approval)
    approvals = _approvals(facts, plain, cutoff, [])
    return approvals, {a.approver: conflicts(facts, a.approver, a.at) for a in approvals
                       if a.rule != "exempt-author" and conflicts(facts, a.approver, a.at)}


def _approvals(facts: PullFacts, policy: Policy, cutoff: datetime, notes: list[str]) -> list[Approval]:
    found = _review_approvals(facts, policy, cutoff, notes) + _phrase_approvals(facts, policy, cutoff, notes)
    merger = facts.merged_by
    wrote = merger and [c.sha[:7] for c in facts.commits
                        if merger.same(Actor(c.author or GHOST)) or any(merger.same(Actor(x)) for x in c.coauthors)]
    if merger and wrote and not merger.same(facts.author):
        notes.append(f"{merger.login} merged it, but wrote commits in it ({', '.join(wrote)}): merging one's own"
                     " work approves nothing")
    elif merger and not merger.is_bot and not merger.same(facts.author):
        found.append(Approval("merged-by-other", merger.login, facts.merged_at, facts.url,
                              f"{merger.login} merged {facts.author.login}'s pull request"))
    if policy.independent_approvals:
        independent = []
        for a in found:
            why = conflicts(facts, a.approver, a.at)
            if why:
                notes.append(f"{a.approver}'s approval does not count under separation of duties: {a.approver} "
                             + ", ".join(why))
            else:
                independent.append(a)
        found = independent
    return found


DECLARATION_LABEL = "tbr"


def declaration(facts: PullFacts, policy: Policy, cutoff: datetime, notes: list[str]) -> Declaration | None:
    """The first `TBR: <reason>` line by the PR's author or merger: in its description, or in a comment
    made before the grace period ended. Lines by anyone else, or too late, are noted and do not count;
    so is the `tbr` label without such a line, since an exception needs its reason."""
    def ticket(reason: str) -> str | None:
        return patterns.search(policy.ticket_pattern, reason) if policy.ticket_pattern else None

    labelled = DECLARATION_LABEL in {name.lower() for name in facts.labels}
    also = " (and labelled `tbr`)" if labelled else ""
    allowed = {facts.author.login.lower()} | ({facts.merged_by.login.lower()} if facts.merged_by else set())
    reason = usertext.declaration(facts.body)
    edited = reason and edit_problem(facts.author, facts.body_edits, cutoff)
    if edited:
        notes.append(f"the description declares an emergency, which did not count: {edited}")
    elif reason:
        return Declaration(facts.author.login, facts.merged_at, reason, ticket(reason), facts.url,
                           f"the pull request's description{also}")
    for c in sorted(facts.comments, key=lambda c: c.created_at or cutoff):
        reason = usertext.declaration(c.body)
        if not reason:
            continue
        edited = edit_problem(c.author, c.edits, cutoff)
        if c.author.login.lower() not in allowed:
            notes.append(f"{c.author.login} declared an emergency, but only the author or the merger can")
        elif c.created_at and c.created_at > cutoff:
            notes.append(f"{c.author.login} declared an emergency at {_fmt(c.created_at)}, after the grace period")
        elif edited:
            notes.append(f"{c.author.login} declared an emergency in a comment, which did not count: {edited}")
        else:
            return Declaration(c.author.login, c.created_at, reason, ticket(reason), c.url, f"a comment{also}")
    if labelled:
        notes.append("labelled `tbr`, but with no `TBR: <reason>` line by the author or the merger, so not declared")
    return None


def reverted(facts: PullFacts) -> tuple[int | None, tuple[str, ...]]:
    """What a PR reverts in its own repository: GitHub's `Reverts owner/repo#N` description (another
    repository's PR is not this one's to complete), and commits it reverts by sha."""
    ref = usertext.reverts_pull(facts.body)
    number = ref[1] if ref and ref[0].lower() == facts.repo.lower() else None
    return number, tuple(dict.fromkeys(sha for c in facts.commits for sha in usertext.reverted_commits(c.message)))


def exempt_but(facts: PullFacts, policy: Policy) -> list[str]:
    """Who else (authors and co-authors of its commits) wrote a PR of an exempt author: [] when nobody did,
    or the author is not exempt. A writer's commit on a bot's PR makes it the writer's change too."""
    if not policy.is_exempt(facts.author):
        return []
    others = {name for c in facts.commits for name in (c.author or "an unknown author", *c.coauthors)
              if not facts.author.same(Actor(name))}
    return sorted(others, key=str.lower)


def judge_pull(facts: PullFacts, policy: Policy, cutoff: datetime) -> Decision:
    """Judge a merged pull request with everything known at `cutoff` (merge time plus grace)."""
    notes: list[str] = []
    found = _approvals(facts, policy, cutoff, notes)
    merger = facts.merged_by
    others = exempt_but(facts, policy)
    if others:
        notes.append(f"{facts.author.login} is an exempt author, but {', '.join(others)} also wrote commits in it,"
                     " so it is judged as an ordinary pull request")
    elif policy.is_exempt(facts.author):
        found.append(Approval("exempt-author", facts.author.login, facts.merged_at, facts.url,
                              f"{facts.author.login} is an exempt author; merging its pull request is the approval"))
    if found:
        # The strongest rule wins; within a rule, the earliest approval.
        order = ("review", "comment", "merged-by-other", "exempt-author")
        best = min(found, key=lambda a: (order.index(a.rule), a.at or cutoff))
        return Decision(True, best.rule, best, f"Approved: {best.detail} ({_fmt(best.at)})", tuple(notes))
    merged_by = merger.login if merger else "an unknown account"
    summary = (f"No approval found: {facts.author.login} authored it, {merged_by} merged it, "
               "and nobody else approved it before the grace period ended")
    declared = declaration(facts, policy, cutoff, notes)
    return Decision(False, "none", None, summary, tuple(notes), declared)


def judge_push(facts: PushFacts, policy: Policy) -> Decision:
    """A push whose commits no merged pull request accounts for had no approver."""
    if policy.is_exempt(facts.pusher):
        approval = Approval("exempt-author", facts.pusher.login, facts.pushed_at, facts.compare_url,
                            f"{facts.pusher.login} is an exempt account")
        return Decision(True, "exempt-author", approval, f"Approved: {approval.detail}")
    forced = "force-pushed" if facts.forced else "pushed"
    summary = (f"Direct push: {facts.pusher.login} {forced} {len(facts.commits)} commit(s) to {facts.branch} "
               "that belong to no merged pull request, so nobody approved them")
    return Decision(False, "none", None, summary)
