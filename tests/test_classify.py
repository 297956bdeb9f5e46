"""The classifier, as tables of facts and the decision they must produce."""

from datetime import datetime, timedelta, timezone

import pytest

from tbr.classify import (WRITE_ROLES, Actor, Comment, CommitFact, Edits, Policy, PullFacts, PushFacts, Review,
                          find_phrase, judge_pull, judge_push, permissions_needed, reverted)

MERGED = datetime(2026, 11, 20, 2, 0, tzinfo=timezone.utc)
CUTOFF = MERGED + timedelta(minutes=5)
URL = "https://github.com/acme/api/pull/7"
ALICE, BOB, CAROL = Actor("alice"), Actor("bob"), Actor("carol")
BOT = Actor("ci-helper[bot]", "Bot")


def t(minutes: int) -> datetime:
    return MERGED + timedelta(minutes=minutes)


# Everyone's role on acme/api, as GitHub's permission API would say (bob and carol can merge).
ROLES = {"alice": "write", "bob": "write", "carol": "maintain", "rita": "read", "trish": "triage", "olga": "none"}


def review(who, state, minutes=-10, body="", can_push=None, edits=Edits()):
    can_push = ROLES.get(who.login) in WRITE_ROLES if can_push is None else can_push
    return Review(who, state, t(minutes), f"{URL}#pullrequestreview-{minutes}", body, can_push=can_push, edits=edits)


def comment(who, body, minutes=-5, kind="comment", edits=Edits()):
    return Comment(who, body, t(minutes), f"{URL}#issuecomment-{minutes}", kind, edits=edits)


def pull(reviews=(), comments=(), author=ALICE, merged_by=ALICE, commits=(), **more):
    more.setdefault("permissions", dict(ROLES))
    return PullFacts("acme/api", 7, URL, "Fix outage", author, merged_by, MERGED, tuple(reviews), tuple(comments),
                     commits=tuple(commits), **more)


CASES = [
    # (name, facts, approved, rule, approver)
    ("no reviews, self-merged", pull(), False, "none", None),
    ("approved by another", pull([review(BOB, "APPROVED")]), True, "review", "bob"),
    ("webhook-style lowercase state", pull([review(BOB, "approved")]), True, "review", "bob"),
    ("approval overridden by own later changes request",
     pull([review(BOB, "APPROVED", -20), review(BOB, "CHANGES_REQUESTED", -10)]), False, "none", None),
    ("changes requested then approved",
     pull([review(BOB, "CHANGES_REQUESTED", -20), review(BOB, "APPROVED", -10)]), True, "review", "bob"),
    ("a later plain comment review changes nothing",
     pull([review(BOB, "APPROVED", -20), review(BOB, "COMMENTED", -10)]), True, "review", "bob"),
    ("dismissed approval", pull([review(BOB, "DISMISSED")]), False, "none", None),
    ("another reviewer's changes request does not cancel an approval",
     pull([review(BOB, "APPROVED", -20), review(CAROL, "CHANGES_REQUESTED", -10)]), True, "review", "bob"),
    ("bot approval does not count", pull([review(BOT, "APPROVED")]), False, "none", None),
    ("login ending in [bot] is a bot even typed User",
     pull([review(Actor("renovate[bot]"), "APPROVED")]), False, "none", None),
    ("author's own approval does not count", pull([review(ALICE, "APPROVED")]), False, "none", None),
    ("approval after the grace period is not retroactive", pull([review(BOB, "APPROVED", 6)]), False, "none", None),
    ("approval within the grace period counts", pull([review(BOB, "APPROVED", 4)]), True, "review", "bob"),
    ("LGTM comment by another", pull(comments=[comment(BOB, "lgtm, ship it")]), True, "comment", "bob"),
    ("LGTM in any case", pull(comments=[comment(BOB, "Lgtm!")]), True, "comment", "bob"),
    ("ship emoji", pull(comments=[comment(BOB, "🚢")]), True, "comment", "bob"),
    (":shipit:", pull(comments=[comment(BOB, "looks fine :shipit:")]), True, "comment", "bob"),
    ("LGTM in a review comment", pull(comments=[comment(BOB, "LGTM", kind="review comment")]), True, "comment", "bob"),
    ("LGTM in a commented review's body", pull([review(BOB, "COMMENTED", body="LGTM")]), True, "comment", "bob"),
    ("LGTM by the author", pull(comments=[comment(ALICE, "LGTM")]), False, "none", None),
    ("LGTM by a bot", pull(comments=[comment(BOT, "LGTM")]), False, "none", None),
    ("LGTM inside a word", pull(comments=[comment(BOB, "LGTMS are cheap")]), False, "none", None),
    ("not LGTM", pull(comments=[comment(BOB, "not LGTM yet")]), False, "none", None),
    ("quoted LGTM", pull(comments=[comment(BOB, "> LGTM\nwho said that?")]), False, "none", None),
    ("LGTM after grace", pull(comments=[comment(BOB, "LGTM", 30)]), False, "none", None),
    ("merged by someone else", pull(merged_by=BOB), True, "merged-by-other", "bob"),
    ("merged by a bot", pull(merged_by=Actor("github-merge-queue[bot]", "Bot")), False, "none", None),
    ("merger unknown", pull(merged_by=None), False, "none", None),
    ("exempt author", pull(author=Actor("dependabot[bot]", "Bot"), merged_by=Actor("dependabot[bot]", "Bot")),
     True, "exempt-author", "dependabot[bot]"),
    ("review beats comment and merger",
     pull([review(CAROL, "APPROVED", -1)], [comment(BOB, "LGTM", -30)], merged_by=BOB), True, "review", "carol"),
    ("earliest approval within a rule",
     pull([review(CAROL, "APPROVED", -1), review(BOB, "APPROVED", -30)]), True, "review", "bob"),
]


@pytest.mark.parametrize("name, facts, approved, rule, approver", CASES, ids=[c[0] for c in CASES])
def test_judge_pull(name, facts, approved, rule, approver):
    decision = judge_pull(facts, Policy(), CUTOFF)
    assert (decision.approved, decision.rule) == (approved, rule)
    assert (decision.approval.approver if decision.approval else None) == approver
    if approved:
        assert decision.approval.url and decision.approval.at
        assert approver in decision.summary


def test_rejections_are_explained():
    facts = pull([review(BOB, "APPROVED", -20), review(BOB, "CHANGES_REQUESTED", -10), review(BOT, "APPROVED")],
                 [comment(ALICE, "LGTM"), comment(CAROL, "LGTM", 60)])
    decision = judge_pull(facts, Policy(), CUTOFF)
    assert not decision.approved
    text = "\n".join(decision.notes)
    assert "bob approved but later requested changes" in text
    assert "bots cannot approve" in text
    assert "alice wrote 'LGTM' on their own pull request" in text
    assert "carol wrote 'LGTM' at 2026-11-20 03:00 UTC, after the grace period" in text
    assert "alice authored it, alice merged it" in decision.summary


def test_configured_phrases():
    policy = Policy(approval_phrases=("reviewed",), exempt_authors=())
    assert judge_pull(pull(comments=[comment(BOB, "Reviewed.")]), policy, CUTOFF).approved
    assert not judge_pull(pull(comments=[comment(BOB, "LGTM")]), policy, CUTOFF).approved
    dependabot = Actor("dependabot[bot]", "Bot")
    assert not judge_pull(pull(author=dependabot, merged_by=dependabot), policy, CUTOFF).approved


@pytest.mark.parametrize("body, phrase", [
    ("LGTM", "LGTM"), ("lgtm.", "LGTM"), ("(LGTM)", "LGTM"), ("no lgtm", None), ("LGTM2", None),
    ("> lgtm", None), ("  > lgtm\nok", None), ("", None), (None, None), ("🚢🚢", "🚢"),
])
def test_find_phrase(body, phrase):
    assert find_phrase(body, Policy().approval_phrases) == phrase


def test_direct_push_has_no_approver():
    facts = PushFacts("acme/api", "main", ALICE, MERGED, True, ({"sha": "a" * 40, "url": "u", "message": "m"},))
    decision = judge_push(facts, Policy())
    assert not decision.approved and decision.rule == "none"
    assert "alice force-pushed 1 commit(s) to main" in decision.summary


def test_exempt_pusher():
    facts = PushFacts("acme/api", "main", Actor("dependabot[bot]"), MERGED, False, ())
    assert judge_push(facts, Policy()).rule == "exempt-author"


def test_fresh_approval_required():
    fresh = Policy(require_fresh_approval=True)
    stale = PullFacts("acme/api", 7, URL, "t", ALICE, ALICE, MERGED,
                      (Review(BOB, "APPROVED", t(-10), URL, "", commit_id="a" * 40, can_push=True),), (),
                      head_sha="b" * 40)
    decision = judge_pull(stale, fresh, CUTOFF)
    assert not decision.approved and "bob approved an older commit (aaaaaaa)" in decision.notes[0]
    assert judge_pull(stale, Policy(), CUTOFF).approved  # off by default
    current = PullFacts("acme/api", 7, URL, "t", ALICE, ALICE, MERGED,
                        (Review(BOB, "APPROVED", t(-10), URL, "", commit_id="b" * 40, can_push=True),), (),
                        head_sha="b" * 40)
    assert judge_pull(current, fresh, CUTOFF).approved


@pytest.mark.parametrize("message, names", [
    ("x\n\nCo-authored-by: Bob B <4242+bob@users.noreply.github.com>", ("bob",)),
    ("x\n\nCo-authored-by: carol <carol@users.noreply.github.com>", ("carol",)),
    ("x\n\nco-authored-by: Dave Doe <dave@example.com>\nCo-Authored-By: eve <e@x.org>", ("Dave Doe", "eve")),
    ("mentions Co-authored-by: in the middle of a line", ()),
    ("", ()),
])
def test_coauthor_trailers(message, names):
    from tbr.classify import coauthors

    assert coauthors(message) == names


def test_independent_approvals_policy():
    from tbr.classify import CommitFact

    commits = (CommitFact("c" * 40, "alice", "alice", t(-60), ("bob",)),)
    facts = PullFacts("acme/api", 7, URL, "t", ALICE, ALICE, MERGED, (review(BOB, "APPROVED"),), (), commits=commits)
    assert judge_pull(facts, Policy(), CUTOFF).approved  # off: co-authorship is not checked
    decision = judge_pull(facts, Policy(independent_approvals=True), CUTOFF)
    assert not decision.approved and "bob co-authored ccccccc" in decision.notes[-1]


def declared_pull(body="", comments=(), labels=(), reviews=()):
    return pull(reviews, comments, body=body, labels=tuple(labels))


DECLARATIONS = [
    # (name, facts, (by, reason, ticket, where) or None, a note that must be there)
    ("in the description", declared_pull("Fixes the outage.\n\nTBR: checkout down, INC-42 paging"),
     ("alice", "checkout down, INC-42 paging", "INC-42", "the pull request's description"), None),
    ("in the description, labelled too", declared_pull("TBR: hotfix", labels=["bug", "TBR"]),
     ("alice", "hotfix", None, "the pull request's description (and labelled `tbr`)"), None),
    ("in a comment by the author before the merge", declared_pull(comments=[comment(ALICE, "TBR: INC-7 db failover")]),
     ("alice", "INC-7 db failover", "INC-7", "a comment"), None),
    ("after the merge, within grace", declared_pull(comments=[comment(ALICE, "TBR: forgot to say: outage", 4)]),
     ("alice", "forgot to say: outage", None, "a comment"), None),
    ("after the grace period", declared_pull(comments=[comment(ALICE, "TBR: outage", 6)]), None,
     "alice declared an emergency at 2026-11-20 02:06 UTC, after the grace period"),
    ("by someone else", declared_pull(comments=[comment(BOB, "TBR: outage")]), None,
     "bob declared an emergency, but only the author or the merger can"),
    ("someone else's, then the author's", declared_pull(comments=[comment(BOB, "TBR: x", -9), comment(ALICE, "TBR: y")]),
     ("alice", "y", None, "a comment"), "bob declared an emergency, but only the author or the merger can"),
    ("quoted in a reply", declared_pull(comments=[comment(ALICE, "> TBR: outage\nno, not this time")]), None, None),
    ("a TBR: with no reason", declared_pull("TBR:   \n"), None, None),
    ("the label without a reason", declared_pull(labels=["tbr"]), None,
     "labelled `tbr`, but with no `TBR: <reason>` line by the author or the merger, so not declared"),
    ("nothing", declared_pull("Just a fix"), None, None),
]


@pytest.mark.parametrize("name,facts,expected,note", DECLARATIONS, ids=[c[0] for c in DECLARATIONS])
def test_declarations(name, facts, expected, note):
    decision = judge_pull(facts, Policy(ticket_pattern=r"INC-\d+"), CUTOFF)
    assert not decision.approved
    d = decision.declaration
    assert (d and (d.by, d.reason, d.ticket, d.where)) == (expected or None)
    if d:
        assert d.url.startswith(URL)
    if note:
        assert note in decision.notes
    else:
        assert not [n for n in decision.notes if "declared" in n]


def test_an_approval_within_grace_still_clears_a_declared_change():
    facts = declared_pull("TBR: outage", reviews=[review(BOB, "APPROVED", 3)])
    decision = judge_pull(facts, Policy(), CUTOFF)
    assert decision.approved and decision.declaration is None


def test_a_declaration_serialises_with_its_time():
    decision = judge_pull(declared_pull(comments=[comment(ALICE, "TBR: outage")]), Policy(), CUTOFF)
    assert decision.to_dict()["declaration"] == {"by": "alice", "at": "2026-11-20T01:55:00+00:00", "reason": "outage",
                                                 "ticket": None, "url": f"{URL}#issuecomment--5", "where": "a comment"}


REVERTS = [
    ("GitHub's revert button", "Reverts acme/api#7", ["This reverts commit 1234567abcdef."], (7, ("1234567abcdef",))),
    ("another repository's PR is not ours", "Reverts acme/other#7", [], (None, ())),
    ("the repository's name in any case", "Reverts ACME/Api#12\n", [], (12, ())),
    ("by sha only, each once", "", ["Revert x\n\nThis reverts commit abcdef1.", "This reverts commit abcdef1."],
     (None, ("abcdef1",))),
    ("not a revert", "Reverts nothing here", ["Update"], (None, ())),
]


@pytest.mark.parametrize("name,body,messages,expected", REVERTS, ids=[c[0] for c in REVERTS])
def test_what_a_pull_reverts(name, body, messages, expected):
    commits = tuple(CommitFact(f"{i:040x}", "alice", "alice", MERGED, (), m) for i, m in enumerate(messages))
    facts = PullFacts("acme/api", 9, URL, "Revert", ALICE, ALICE, MERGED, body=body, commits=commits)
    assert reverted(facts) == expected


# Who may approve (only people who could have merged it), exempt means exempt, freshness and edits.
RITA, TRISH, OLGA, GHOST = Actor("rita"), Actor("trish"), Actor("olga"), Actor("ghost")
DEPENDABOT = Actor("dependabot[bot]", "Bot")
HEAD = "b" * 40
BY_BOB_LATE = Edits(t(30), ("bob",))
BY_ALICE = Edits(t(-1), ("alice",))


def commit(sha, author, minutes=-30, message="m"):
    return CommitFact(sha * 40, author, author, t(minutes), (), message)


TRUST = [
    # (name, facts, policy, approved, rule, approver, a note that must be there)
    ("a writer's review approves", pull([review(BOB, "APPROVED")]), Policy(), True, "review", "bob", None),
    ("a maintainer's review approves", pull([review(CAROL, "APPROVED")]), Policy(), True, "review", "carol", None),
    ("a read-only reviewer does not", pull([review(RITA, "APPROVED")]), Policy(), False, "none", None,
     "rita's approval did not count: no write access to acme/api"),
    ("a deleted account does not", pull([review(GHOST, "APPROVED", can_push=True)]), Policy(), False, "none", None,
     "ghost's approval did not count: a deleted account (ghost)"),
    ("a read-only reviewer's changes request does not cancel a writer's approval",
     pull([review(BOB, "APPROVED", -20), review(RITA, "CHANGES_REQUESTED", -10)]), Policy(), True, "review", "bob",
     None),
    ("a writer's LGTM approves", pull(comments=[comment(BOB, "LGTM")]), Policy(), True, "comment", "bob", None),
    ("an outsider's LGTM does not", pull(comments=[comment(OLGA, "LGTM")]), Policy(), False, "none", None,
     "olga wrote 'LGTM' in a comment, which did not count: no write access to acme/api"),
    ("a triager's LGTM does not", pull(comments=[comment(TRISH, "LGTM")]), Policy(), False, "none", None,
     "trish wrote 'LGTM' in a comment, which did not count: no write access to acme/api"),
    ("an LGTM by someone tbr did not ask about does not", pull(comments=[comment(Actor("zed"), "LGTM")]), Policy(),
     False, "none", None, None),
    ("ghost's LGTM does not", pull(comments=[comment(GHOST, "LGTM")]), Policy(), False, "none", None,
     "ghost wrote 'LGTM' in a comment, which did not count: a deleted account (ghost)"),
    ("a read-only reviewer's LGTM review body does not",
     pull([review(RITA, "COMMENTED", body="LGTM")]), Policy(), False, "none", None,
     "rita wrote 'LGTM' in a review, which did not count: no write access to acme/api"),
    ("a pure dependabot PR is exempt",
     pull(author=DEPENDABOT, merged_by=DEPENDABOT, commits=[commit("a", "dependabot[bot]")]), Policy(), True,
     "exempt-author", "dependabot[bot]", None),
    ("a writer's commit on a dependabot PR makes it ordinary",
     pull(author=DEPENDABOT, merged_by=ALICE, commits=[commit("a", "dependabot[bot]"), commit("c", "alice")]),
     Policy(), False, "none", None, "dependabot[bot] is an exempt author, but alice also wrote commits in it,"
                                    " so it is judged as an ordinary pull request"),
    ("an unlinked commit author on a dependabot PR makes it ordinary",
     pull(author=DEPENDABOT, merged_by=DEPENDABOT, commits=[commit("a", None)]), Policy(), False, "none", None,
     "dependabot[bot] is an exempt author, but an unknown author also wrote commits in it,"
     " so it is judged as an ordinary pull request"),
    ("a merger who pushed onto someone's PR does not approve it",
     pull(author=BOB, merged_by=CAROL, commits=[commit("a", "bob"), commit("c", "carol")]), Policy(), False, "none",
     None, "carol merged it, but wrote commits in it (ccccccc): merging one's own work approves nothing"),
    ("a merger who wrote none of it approves it",
     pull(author=BOB, merged_by=CAROL, commits=[commit("a", "bob")]), Policy(), True, "merged-by-other", "carol", None),
    ("an old LGTM, fresh approval required",
     pull(comments=[comment(BOB, "LGTM", -40)], commits=[commit("b", "alice", -30)], head_sha=HEAD),
     Policy(require_fresh_approval=True), False, "none", None,
     "bob wrote 'LGTM' before the newest commit, and fresh approval is required"),
    ("an LGTM after the newest commit, fresh approval required",
     pull(comments=[comment(BOB, "LGTM", -20)], commits=[commit("b", "alice", -30)], head_sha=HEAD),
     Policy(require_fresh_approval=True), True, "comment", "bob", None),
    ("an old review body, fresh approval required",
     pull([Review(BOB, "COMMENTED", t(-10), URL, "LGTM", "a" * 40, True)], head_sha=HEAD),
     Policy(require_fresh_approval=True), False, "none", None,
     "bob wrote 'LGTM' before the newest commit, and fresh approval is required"),
    ("an LGTM edited in after the grace period", pull(comments=[comment(BOB, "LGTM", edits=BY_BOB_LATE)]), Policy(),
     False, "none", None, "bob wrote 'LGTM' in a comment, which did not count: it was edited at 2026-11-20 02:30 UTC,"
                          " after the grace period ended"),
    ("an LGTM edited in by the author", pull(comments=[comment(BOB, "LGTM", edits=BY_ALICE)]), Policy(), False,
     "none", None, "bob wrote 'LGTM' in a comment, which did not count: alice edited it, not its author"),
    ("an LGTM its author edited within the grace period",
     pull(comments=[comment(BOB, "LGTM", edits=Edits(t(1), ("bob",)))]), Policy(), True, "comment", "bob", None),
    ("a review body edited by someone else",
     pull([review(BOB, "COMMENTED", body="LGTM", edits=Edits(t(-1), ("carol",)))]), Policy(), False, "none",
     None, "bob wrote 'LGTM' in a review, which did not count: carol edited it, not its author"),
    ("a comment whose editor's account was deleted",
     pull(comments=[comment(BOB, "LGTM", edits=Edits(t(-1), ("ghost",)))]), Policy(), False, "none",
     None, "bob wrote 'LGTM' in a comment, which did not count: ghost edited it, not its author"),
]


@pytest.mark.parametrize("name, facts, policy, approved, rule, approver, note", TRUST, ids=[c[0] for c in TRUST])
def test_who_and_when(name, facts, policy, approved, rule, approver, note):
    decision = judge_pull(facts, policy, CUTOFF)
    assert (decision.approved, decision.rule) == (approved, rule)
    if approver:
        assert decision.approval.approver == approver
    if note:
        assert note in decision.notes


EDITED_DECLARATIONS = [
    ("a description edited after the grace period", pull(body="TBR: outage", body_edits=Edits(t(30), ("alice",))),
     "the description declares an emergency, which did not count: it was edited at 2026-11-20 02:30 UTC, after the"
     " grace period ended"),
    ("a description someone else edited", pull(body="TBR: outage", body_edits=Edits(t(-1), ("bob",))),
     "the description declares an emergency, which did not count: bob edited it, not its author"),
    ("a comment edited after the grace period", pull(comments=[comment(ALICE, "TBR: outage", edits=Edits(t(9)))]),
     "alice declared an emergency in a comment, which did not count: it was edited at 2026-11-20 02:09 UTC, after the"
     " grace period ended"),
]


@pytest.mark.parametrize("name, facts, note", EDITED_DECLARATIONS, ids=[c[0] for c in EDITED_DECLARATIONS])
def test_edited_declarations_do_not_count(name, facts, note):
    decision = judge_pull(facts, Policy(), CUTOFF)
    assert decision.declaration is None and note in decision.notes


def test_a_commenter_not_asked_about_is_not_reported():
    facts = pull([review(BOB, "APPROVED")], [comment(Actor("zed"), "LGTM")], permissions={})
    decision = judge_pull(facts, Policy(), CUTOFF)
    assert decision.rule == "review" and decision.notes == ()


def test_only_otherwise_approving_comment_authors_are_asked_about():
    facts = pull(comments=[comment(Actor("zed"), "LGTM"), comment(Actor("yan"), "looks odd"),
                           comment(Actor("xi"), "LGTM", 30), comment(ALICE, "LGTM")], permissions={})
    assert permissions_needed(facts, Policy(), CUTOFF) == {"zed"}
    reviewed = PullFacts(**{**facts.__dict__, "reviews": (review(BOB, "APPROVED"),)})
    assert permissions_needed(reviewed, Policy(), CUTOFF) == set()  # a writer's review settles it
