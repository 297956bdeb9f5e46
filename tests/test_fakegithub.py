"""githubkit 0.16.1 must accept every response of the fake through its typed methods, and tbr's
Gateway every answer of its GraphQL endpoint."""

import base64
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone

import httpx
import pytest
from githubkit import AppAuthStrategy, GitHub
from githubkit.exception import (
    PrimaryRateLimitExceeded,
    RateLimitExceeded,
    RequestFailed,
    SecondaryRateLimitExceeded,
)

from tbr import graphql as queries
from tbr.classify import Actor
from tbr.config import Settings
from tbr.github import Gateway, GitHubError, GitHubUnavailable, RetryPolicy
from tbr.graphql import pull_facts
from tests.fakegithub import FakeGitHub, fake_github  # noqa: F401  (fixture)

OWNER, NAME = "acme", "widgets"
REPO = f"{OWNER}/{NAME}"
T0 = datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def key():
    return FakeGitHub.generate_key()  # one RSA key per module keeps the suite fast


@pytest.fixture
def fake(key):
    with FakeGitHub(verify_jwt=True, private_key=key) as f:
        f.clock = lambda: T0
        f.add_repo(REPO, protected=["main"], ruleset_branches=["release/*"],
                   assignable={"alice", "bob"})
        yield f


@pytest.fixture
def gh(fake):
    return GitHub(AppAuthStrategy(fake.app_id, fake.private_key), base_url=fake.url,
                  timeout=5, auto_retry=False, http_cache=False)


@pytest.fixture
def inst(gh):
    return gh.with_auth(gh.auth.as_installation(1))


def test_app_level_endpoints(fake, gh):
    app = gh.rest.apps.get_authenticated().parsed_data
    assert app.id == fake.app_id and app.slug == "tbr-fake"
    installation = gh.rest.apps.get_repo_installation(OWNER, NAME).parsed_data
    assert installation.id == 1 and installation.app_id == fake.app_id
    with pytest.raises(RequestFailed) as exc:
        gh.rest.apps.get_repo_installation(OWNER, "unknown")
    assert exc.value.response.status_code == 404
    token = gh.rest.apps.create_installation_access_token(1).parsed_data
    assert token.token.startswith("ghs_fake_")
    expires = datetime.strptime(token.expires_at, "%Y-%m-%dT%H:%M:%SZ")
    assert expires.replace(tzinfo=timezone.utc) > datetime.now(timezone.utc) + timedelta(minutes=59)


def test_jwt_is_verified_and_tokens_are_required(fake, key):
    other = FakeGitHub.generate_key()
    bad = GitHub(AppAuthStrategy(fake.app_id + 1_000_000, other), base_url=fake.url,
                 auto_retry=False, http_cache=False)
    with pytest.raises(RequestFailed) as exc:
        bad.rest.apps.get_authenticated()
    assert exc.value.response.status_code == 401
    r = httpx.get(f"{fake.url}/repos/{REPO}", headers={"Authorization": "token ghs_bogus"})
    assert r.status_code == 401 and r.json()["message"] == "Bad credentials"
    assert httpx.get(f"{fake.url}/repos/{REPO}").status_code == 401


def test_repo_branch_and_rules(fake, inst):
    repo = inst.rest.repos.get(OWNER, NAME).parsed_data
    assert (repo.full_name, repo.default_branch, repo.archived, repo.has_issues) == \
        (REPO, "main", False, True)
    main = inst.rest.repos.get_branch(OWNER, NAME, "main").parsed_data
    assert main.protected is True and len(main.commit.sha) == 40
    fake.add_branch(REPO, "release/1.0")
    rel = inst.rest.repos.get_branch(OWNER, NAME, "release/1.0").parsed_data
    assert rel.name == "release/1.0" and rel.protected is False
    with pytest.raises(RequestFailed) as exc:
        inst.rest.repos.get_branch(OWNER, NAME, "nope")
    assert exc.value.response.status_code == 404
    assert inst.rest.repos.get_branch_rules(OWNER, NAME, "main").parsed_data == []
    [rule] = inst.rest.repos.get_branch_rules(OWNER, NAME, "release/1.0").parsed_data
    assert rule.type == "pull_request" and rule.ruleset_source == REPO
    assert rule.parameters.required_approving_review_count == 1


def test_pull_reviews_and_comments(fake, inst):
    pr = fake.add_pull(REPO, 7, author="carol", merged_by="carol", merged_at=T0,
                       title="Fix", body="text")
    fake.add_review(REPO, 7, "bob", "CHANGES_REQUESTED", submitted_at=T0, body="no")
    fake.add_review(REPO, 7, "ci[bot]", "COMMENTED", user_type="Bot")
    fake.add_review_comment(REPO, 7, "bob", "nit")
    fake.add_issue_comment(REPO, 7, "dave", "LGTM")

    resp = inst.rest.pulls.get(OWNER, NAME, 7)
    got = resp.parsed_data
    assert (got.number, got.state, got.merged) == (7, "closed", True)
    # githubkit 0.16.1 only ships API version 2026-03-10 models, which have no
    # merge_commit_sha field (pydantic drops it); it is still in the raw JSON.
    assert not hasattr(got, "merge_commit_sha")
    assert resp.json()["merge_commit_sha"] == pr["merge_commit_sha"]
    assert got.merged_at == T0 and got.merged_by.login == "carol"
    assert (got.user.login, got.base.ref, got.head.sha) == ("carol", "main", pr["head_sha"])
    assert got.html_url == f"{fake.url}/{REPO}/pull/7" and got.title == "Fix"

    reviews = inst.rest.pulls.list_reviews(OWNER, NAME, 7).parsed_data
    assert [(r.user.login, r.user.type, r.state) for r in reviews] == \
        [("bob", "User", "CHANGES_REQUESTED"), ("ci[bot]", "Bot", "COMMENTED")]
    assert reviews[0].submitted_at == T0 and reviews[0].body == "no"
    [rc] = inst.rest.pulls.list_review_comments(OWNER, NAME, 7).parsed_data
    assert (rc.user.login, rc.body) == ("bob", "nit")
    [ic] = inst.rest.issues.list_comments(OWNER, NAME, 7).parsed_data
    assert (ic.user.login, ic.body) == ("dave", "LGTM")

    for sha in (pr["merge_commit_sha"], pr["head_sha"]):
        [simple] = inst.rest.repos.list_pull_requests_associated_with_commit(
            OWNER, NAME, sha).parsed_data
        assert simple.number == 7 and simple.merged_at == T0
    assert inst.rest.repos.list_pull_requests_associated_with_commit(
        OWNER, NAME, "0" * 40).parsed_data == []

    with pytest.raises(RequestFailed) as exc:
        inst.rest.pulls.get(OWNER, NAME, 99)
    assert exc.value.response.status_code == 404


def test_paginate_follows_link_header(fake, inst):
    fake.add_pull(REPO, 1)
    for i in range(5):
        fake.add_review(REPO, 1, f"user{i}", submitted_at=T0 + timedelta(minutes=i))
    users = [r.user.login for r in inst.rest.paginate(
        inst.rest.pulls.list_reviews, owner=OWNER, repo=NAME, pull_number=1, per_page=2)]
    assert users == [f"user{i}" for i in range(5)]
    assert fake.count("GET", r"/repos/acme/widgets/pulls/1/reviews") == 3
    pages = [q.get("page") for m, p, q in fake.requests if p.endswith("/reviews")]
    assert pages == [None, "2", "3"]


def test_create_and_list_issues(fake, inst):
    fake.add_existing_issue(REPO, "old", "seeded", labels=["tbr"],
                            created_at=T0 - timedelta(days=10))
    fake.add_existing_issue(REPO, "closed", "", labels=["tbr"], state="closed")
    fake.add_existing_issue(REPO, "other", "", labels=["bug"])
    fake.clock = lambda: T0 + timedelta(days=1)
    created = inst.rest.issues.create(OWNER, NAME, title="Review #7", body="please",
                                      labels=["tbr"], assignees=["alice"]).parsed_data
    assert created.number == 4 and created.created_at == T0 + timedelta(days=1)
    assert created.html_url == f"{fake.url}/{REPO}/issues/4"
    assert [l.name for l in created.labels] == ["tbr"]
    assert [a.login for a in created.assignees] == ["alice"]
    assert created.user.type == "Bot"
    [mine] = fake.issues(REPO, include_seeded=False)
    assert (mine["title"], mine["labels"], mine["assignees"]) == \
        ("Review #7", ["tbr"], ["alice"])

    listed = inst.rest.issues.list_for_repo(OWNER, NAME, labels="tbr", state="all").parsed_data
    assert [i.number for i in listed] == [4, 2, 1]
    listed = inst.rest.issues.list_for_repo(OWNER, NAME, labels="tbr",
                                            since=T0 - timedelta(days=1)).parsed_data
    assert [i.title for i in listed] == ["Review #7"]  # open only, updated since
    _, _, query = fake.requests[-1]
    assert query["labels"] == "tbr" and "since" in query

    label = inst.rest.issues.create_label(OWNER, NAME, name="needs-review",
                                          color="ff0000", description="d").parsed_data
    assert (label.name, label.color) == ("needs-review", "ff0000")
    with pytest.raises(RequestFailed) as exc:
        inst.rest.issues.create_label(OWNER, NAME, name="TBR", color="ff0000")
    assert exc.value.response.status_code == 422
    assert exc.value.response.json()["errors"][0]["code"] == "already_exists"


def test_invalid_assignee_is_422(fake, inst):
    with pytest.raises(RequestFailed) as exc:
        inst.rest.issues.create(OWNER, NAME, title="t", assignees=["mallory"])
    body = exc.value.response.json()
    assert exc.value.response.status_code == 422 and body["message"] == "Validation Failed"
    assert body["errors"] == [{"value": "mallory", "resource": "Issue",
                               "field": "assignees", "code": "invalid"}]
    assert fake.issues(REPO) == []


def test_issues_disabled_is_410(fake, inst):
    fake.add_repo("acme/noissues", has_issues=False)
    with pytest.raises(RequestFailed) as exc:
        inst.rest.issues.create("acme", "noissues", title="t")
    assert exc.value.response.status_code == 410


def test_fault_injection(fake, inst):
    fake.fail("POST", r"/repos/acme/widgets/issues", 502)
    with pytest.raises(RequestFailed) as exc:
        inst.rest.issues.create(OWNER, NAME, title="lost")
    assert exc.value.response.status_code == 502 and fake.issues(REPO) == []
    fake.fail("POST", r"/repos/.*/issues", 502, after_effect=True)
    with pytest.raises(RequestFailed):
        inst.rest.issues.create(OWNER, NAME, title="created anyway")
    assert [i["title"] for i in fake.issues(REPO)] == ["created anyway"]
    inst.rest.issues.create(OWNER, NAME, title="works again")  # times=1 is used up
    assert fake.count("POST", r"/repos/acme/widgets/issues") == 3


def test_rate_limits(fake, inst):
    fake.rate_limit("GET", r"/repos/acme/widgets", reset_in_seconds=120)
    with pytest.raises(RateLimitExceeded) as exc:
        inst.rest.repos.get(OWNER, NAME)
    assert isinstance(exc.value, PrimaryRateLimitExceeded)
    assert timedelta(seconds=100) < exc.value.retry_after <= timedelta(seconds=120)
    fake.secondary_rate_limit(None, r"/repos/acme/widgets", retry_after=3)
    with pytest.raises(SecondaryRateLimitExceeded) as exc:
        inst.rest.repos.get(OWNER, NAME)
    assert exc.value.retry_after == timedelta(seconds=3)
    assert inst.rest.repos.get(OWNER, NAME).parsed_data.name == NAME


def test_unknown_routes_are_recorded(fake, inst):
    with pytest.raises(RequestFailed) as exc:
        inst.rest.issues.list_events(OWNER, NAME, 1)  # not served by the fake
    assert exc.value.response.status_code == 404
    assert exc.value.response.json()["message"] == "Not Found"
    assert fake.unhandled == [("GET", "/repos/acme/widgets/issues/1/events", {})]


def test_other_installation_cannot_see_repo(fake, gh):
    fake.add_repo("other/repo", installation_id=2)
    inst1 = gh.with_auth(gh.auth.as_installation(1))
    with pytest.raises(RequestFailed) as exc:
        inst1.rest.repos.get("other", "repo")
    assert exc.value.response.status_code == 404
    inst2 = gh.with_auth(gh.auth.as_installation(2))
    assert inst2.rest.repos.get("other", "repo").parsed_data.full_name == "other/repo"


def test_without_jwt_verification_any_bearer_is_accepted():
    with FakeGitHub() as f:
        f.add_repo("o/r")
        r = httpx.get(f"{f.url}/app", headers={"Authorization": "Bearer whatever"})
        assert r.status_code == 200 and r.json()["id"] == f.app_id
        t = httpx.post(f"{f.url}/app/installations/1/access_tokens",
                       headers={"Authorization": "Bearer x"})
        assert t.status_code == 201
        r = httpx.get(f"{f.url}/repos/o/r", headers={"Authorization": f"Bearer {t.json()['token']}"})
        assert r.status_code == 200


def test_concurrent_issue_creation_gets_unique_numbers(fake_github):
    fake_github.add_repo("o/r")
    token = httpx.post(f"{fake_github.url}/app/installations/1/access_tokens",
                       headers={"Authorization": "Bearer x"}).json()["token"]

    def create(i):
        return httpx.post(f"{fake_github.url}/repos/o/r/issues", json={"title": f"t{i}"},
                          headers={"Authorization": f"token {token}"}).json()["number"]

    with ThreadPoolExecutor(8) as pool:
        numbers = list(pool.map(create, range(24)))
    assert sorted(numbers) == list(range(1, 25))
    assert len(fake_github.issues("o/r")) == 24


# ------------------------------------------------------------ app level

def test_list_installations(fake, gh):
    fake.add_repo("other/repo", installation_id=2)
    fake.add_repo("acme/second")  # same installation as acme/widgets
    got = gh.rest.apps.list_installations().parsed_data
    assert [(i.id, i.account.login, i.app_id) for i in got] == \
        [(1, OWNER, fake.app_id), (2, "other", fake.app_id)]
    first = got[0]
    assert first.target_type == "User" and first.permissions.issues == "write"
    assert first.events == ["pull_request"] and first.created_at == T0
    assert first.suspended_at is None
    paged = list(gh.rest.paginate(gh.rest.apps.list_installations, per_page=1))
    assert [i.id for i in paged] == [1, 2]


def test_webhook_deliveries_paginate_by_cursor(fake, gh):
    for i in range(5):
        fake.add_hook_delivery(f"guid-{i}", delivered_at=T0 + timedelta(minutes=i),
                               status_code=200 if i == 2 else 503, repository_id=42)
    deliveries = list(gh.rest.paginate(gh.rest.apps.list_webhook_deliveries, per_page=2))
    assert [d.guid for d in deliveries] == [f"guid-{i}" for i in (4, 3, 2, 1, 0)]
    cursors = [q.get("cursor") for m, p, q in fake.requests if p == "/app/hook/deliveries"]
    assert len(cursors) == 3 and cursors[0] is None and all(cursors[1:])
    d = deliveries[0]
    assert (d.status, d.status_code, d.event, d.action) == \
        ("Invalid HTTP Response: 503", 503, "pull_request", "closed")
    assert (d.redelivery, d.installation_id, d.repository_id, d.throttled_at) == \
        (False, 1, 42, None)
    assert d.delivered_at == T0 + timedelta(minutes=4) and deliveries[2].status == "OK"
    failed = gh.rest.apps.list_webhook_deliveries(status="failure").parsed_data
    assert [x.guid for x in failed] == ["guid-4", "guid-3", "guid-1", "guid-0"]

    resp = gh.rest.apps.redeliver_webhook_delivery(d.id)
    assert resp.status_code == 202 and resp.json() == {}
    resp.parsed_data  # noqa: B018  (githubkit must accept the body)
    assert fake.redelivery_requests == [d.id]
    with pytest.raises(RequestFailed) as exc:
        gh.rest.apps.redeliver_webhook_delivery(999_999_999)
    assert exc.value.response.status_code == 404

    fake.fail("GET", r"/app/hook/deliveries", 502)
    with pytest.raises(RequestFailed) as exc:
        gh.rest.apps.list_webhook_deliveries()
    assert exc.value.response.status_code == 502


def test_app_endpoints_reject_installation_tokens(fake, gh):
    # githubkit itself always signs /app/* with the JWT, so go around it.
    token = gh.rest.apps.create_installation_access_token(1).parsed_data.token
    r = httpx.get(f"{fake.url}/app/hook/deliveries", headers={"Authorization": f"token {token}"})
    assert r.status_code == 401


# ------------------------------------------------------------ installation level

def test_installation_repositories(fake, gh, inst):
    fake.add_repo("acme/second", archived=True)
    fake.add_repo("other/repo", installation_id=2)
    got = inst.rest.apps.list_repos_accessible_to_installation().parsed_data
    assert got.total_count == 2
    assert [r.full_name for r in got.repositories] == [REPO, "acme/second"]
    full = inst.rest.repos.get(OWNER, NAME).parsed_data
    first = got.repositories[0]
    assert (first.id, first.default_branch, first.owner.login, first.html_url) == \
        (full.id, full.default_branch, full.owner.login, full.html_url)
    assert got.repositories[1].archived is True
    paged = list(inst.rest.paginate(inst.rest.apps.list_repos_accessible_to_installation,
                                    map_func=lambda r: r.parsed_data.repositories, per_page=1))
    assert [r.full_name for r in paged] == [REPO, "acme/second"]
    inst2 = gh.with_auth(gh.auth.as_installation(2))
    got2 = inst2.rest.apps.list_repos_accessible_to_installation().parsed_data
    assert (got2.total_count, [r.full_name for r in got2.repositories]) == (1, ["other/repo"])


def test_list_pulls(fake, inst):
    h = timedelta(hours=1)
    fake.add_pull(REPO, 1, created_at=T0 - 5 * h, merged_at=T0 - 4 * h, author="carol")
    fake.add_pull(REPO, 2, created_at=T0 - 3 * h, merged=False)
    fake.add_branch(REPO, "release/1.0")
    three = fake.add_pull(REPO, 3, created_at=T0 - 2 * h, merged_at=T0 - h,
                          base="release/1.0", updated_at=T0)
    fake.add_pull(REPO, 4, created_at=T0 - 6 * h, merged=False, state="closed")

    assert [p.number for p in inst.rest.pulls.list(OWNER, NAME).parsed_data] == [2]
    resp = inst.rest.pulls.list(OWNER, NAME, state="closed")
    closed = resp.parsed_data
    assert [p.number for p in closed] == [3, 1, 4]  # created, desc
    p3 = closed[0]
    assert (p3.base.ref, p3.user.login, p3.merged_at, p3.updated_at) == \
        ("release/1.0", "alice", T0 - h, T0)
    # PullRequestSimple (2026-03-10) has no merge_commit_sha; the raw JSON does.
    assert resp.json()[0]["merge_commit_sha"] == three["merge_commit_sha"]
    assert closed[1].updated_at == T0 - 4 * h  # defaults to merged_at
    assert closed[2].merged_at is None
    by_update = inst.rest.pulls.list(OWNER, NAME, state="all", sort="updated",
                                     direction="desc").parsed_data
    assert [p.number for p in by_update] == [3, 2, 1, 4]
    assert [p.number for p in inst.rest.pulls.list(
        OWNER, NAME, state="all", sort="updated").parsed_data] == [4, 1, 2, 3]  # asc default
    assert [p.number for p in inst.rest.pulls.list(
        OWNER, NAME, state="all", base="main", direction="asc").parsed_data] == [4, 1, 2]
    paged = list(inst.rest.paginate(inst.rest.pulls.list, owner=OWNER, repo=NAME,
                                    state="all", per_page=3))
    assert [p.number for p in paged] == [3, 2, 1, 4]
    pages = [q.get("page") for m, p, q in fake.requests if p == "/repos/acme/widgets/pulls"]
    assert pages[-2:] == [None, "2"]


def test_list_branches(fake, inst):
    fake.add_branch(REPO, "feature", sha="a" * 40)
    fake.add_branch(REPO, "dev")
    got = inst.rest.repos.list_branches(OWNER, NAME).parsed_data
    assert [(b.name, b.protected) for b in got] == \
        [("dev", False), ("feature", False), ("main", True)]
    assert got[1].commit.sha == "a" * 40 and got[1].commit.url.endswith("/commits/" + "a" * 40)
    assert [b.name for b in inst.rest.repos.list_branches(
        OWNER, NAME, protected=True).parsed_data] == ["main"]
    assert [b.name for b in inst.rest.repos.list_branches(
        OWNER, NAME, protected=False).parsed_data] == ["dev", "feature"]
    paged = list(inst.rest.paginate(inst.rest.repos.list_branches, owner=OWNER, repo=NAME,
                                    per_page=2))
    assert [b.name for b in paged] == ["dev", "feature", "main"]


def test_list_commits_with_since_and_until(fake, inst):
    h = timedelta(hours=1)
    old_head = inst.rest.repos.get_branch(OWNER, NAME, "main").parsed_data.commit.sha
    shas = [fake.add_commit(REPO, "main", message=f"change {i}", committed_at=T0 + i * h,
                            author="bob" if i else "alice") for i in range(3)]
    bot = fake.add_commit(REPO, "feature", message="bump", committed_at=T0 + 5 * h,
                          author=None)
    assert inst.rest.repos.get_branch(OWNER, NAME, "main").parsed_data.commit.sha == shas[2]

    got = inst.rest.repos.list_commits(OWNER, NAME).parsed_data  # default branch
    assert [c.sha for c in got] == shas[::-1]
    newest = got[0]
    assert (newest.commit.message, newest.commit.committer.date, newest.author.login) == \
        ("change 2", T0 + 2 * h, "bob")
    assert newest.commit.author.name == "bob" and newest.commit.tree.sha
    assert [p.sha for p in newest.parents] == [shas[1]]
    assert [p.sha for p in got[-1].parents] == [old_head]
    assert newest.html_url == f"{fake.url}/{REPO}/commit/{shas[2]}"

    since = inst.rest.repos.list_commits(OWNER, NAME, sha="main", since=T0 + h / 2).parsed_data
    assert [c.sha for c in since] == [shas[2], shas[1]]
    window = inst.rest.repos.list_commits(OWNER, NAME, since=T0 + h, until=T0 + h).parsed_data
    assert [c.sha for c in window] == [shas[1]]
    by_sha = inst.rest.repos.list_commits(OWNER, NAME, sha=shas[1]).parsed_data
    assert [c.sha for c in by_sha] == [shas[1], shas[0]]
    feature = inst.rest.repos.list_commits(OWNER, NAME, sha="feature").parsed_data
    assert [c.sha for c in feature] == [bot, *shas[::-1]]
    assert feature[0].author is None and feature[0].committer is None
    assert [c.sha for c in inst.rest.repos.list_commits(
        OWNER, NAME, author="alice").parsed_data] == [shas[0]]
    paged = list(inst.rest.paginate(inst.rest.repos.list_commits, owner=OWNER, repo=NAME,
                                    per_page=2))
    assert [c.sha for c in paged] == shas[::-1]
    with pytest.raises(RequestFailed) as exc:
        inst.rest.repos.list_commits(OWNER, NAME, sha="nope")
    assert exc.value.response.status_code == 404


def test_get_and_update_issue(fake, inst):
    issue = fake.add_existing_issue(REPO, "Review #7", "body", labels=["tbr"],
                                    assignees=["alice"], created_at=T0 - timedelta(days=1))
    n = issue["number"]
    got = inst.rest.issues.get(OWNER, NAME, n).parsed_data
    assert (got.number, got.state, got.state_reason, got.title, got.body) == \
        (n, "open", None, "Review #7", "body")
    assert [l.name for l in got.labels] == ["tbr"] and [a.login for a in got.assignees] == ["alice"]
    assert (got.user.login, got.closed_by, got.closed_at) == ("octocat", None, None)
    assert got.html_url == f"{fake.url}/{REPO}/issues/{n}"
    assert got.created_at == T0 - timedelta(days=1) == got.updated_at

    fake.clock = lambda: T0 + timedelta(hours=1)
    upd = inst.rest.issues.update(OWNER, NAME, n, title="New", body="b2", labels=["x", "tbr"],
                                  assignees=["bob"]).parsed_data
    assert (upd.title, upd.body, upd.updated_at) == ("New", "b2", T0 + timedelta(hours=1))
    assert [l.name for l in upd.labels] == ["x", "tbr"] and [a.login for a in upd.assignees] == ["bob"]
    assert "x" in fake.labels(REPO)

    fake.clock = lambda: T0 + timedelta(hours=2)
    closed = inst.rest.issues.update(OWNER, NAME, n, state="closed",
                                     state_reason="not_planned").parsed_data
    assert (closed.state, closed.state_reason, closed.closed_at) == \
        ("closed", "not_planned", T0 + timedelta(hours=2))
    assert (closed.closed_by.login, closed.closed_by.type) == ("tbr-fake[bot]", "Bot")
    reopened = inst.rest.issues.update(OWNER, NAME, n, state="open").parsed_data
    assert (reopened.state, reopened.state_reason, reopened.closed_at) == ("open", "reopened", None)
    assert fake.issues(REPO)[0]["state"] == "open"

    with pytest.raises(RequestFailed) as exc:
        inst.rest.issues.update(OWNER, NAME, n, assignees=["mallory"])
    assert exc.value.response.status_code == 422
    fake.add_pull(REPO, 50)
    for call in (lambda: inst.rest.issues.get(OWNER, NAME, 50),  # pulls: not served as issues
                 lambda: inst.rest.issues.get(OWNER, NAME, 99)):
        with pytest.raises(RequestFailed) as exc:
            call()
        assert exc.value.response.status_code == 404


def test_issue_labels(fake, inst):
    n = fake.add_existing_issue(REPO, "t", labels=["tbr"])["number"]
    added = inst.rest.issues.add_labels(OWNER, NAME, n, labels=["needs review", "TBR"]).parsed_data
    assert [l.name for l in added] == ["tbr", "needs review"]  # case-insensitive, no dupes
    assert fake.labels(REPO)["needs review"]["color"] == "ededed"
    left = inst.rest.issues.remove_label(OWNER, NAME, n, "needs review").parsed_data
    assert [l.name for l in left] == ["tbr"]
    with pytest.raises(RequestFailed) as exc:
        inst.rest.issues.remove_label(OWNER, NAME, n, "needs review")
    assert exc.value.response.status_code == 404
    assert inst.rest.issues.remove_label(OWNER, NAME, n, "tbr").parsed_data == []
    assert fake.issues(REPO)[0]["labels"] == []
    fake.add_repo("acme/old", archived=True)
    m = fake.add_existing_issue("acme/old", "t")["number"]
    with pytest.raises(RequestFailed) as exc:
        inst.rest.issues.add_labels("acme", "old", m, labels=["x"])
    assert exc.value.response.status_code == 403  # archived repos are read-only


def test_issue_comments_on_an_issue(fake, inst):
    n = fake.add_existing_issue(REPO, "Review #7", created_at=T0 - timedelta(days=1))["number"]
    fake.add_issue_comment(REPO, n, "bob", "LGTM", created_at=T0 - timedelta(hours=2))
    mine = inst.rest.issues.create_comment(OWNER, NAME, n, body="Thanks!")
    assert mine.status_code == 201
    c = mine.parsed_data
    assert (c.body, c.user.login, c.user.type, c.created_at) == \
        ("Thanks!", "tbr-fake[bot]", "Bot", T0)
    assert c.html_url == f"{fake.url}/{REPO}/issues/{n}#issuecomment-{c.id}"

    listed = inst.rest.issues.list_comments(OWNER, NAME, n).parsed_data
    assert [(x.user.login, x.body) for x in listed] == [("bob", "LGTM"), ("tbr-fake[bot]", "Thanks!")]
    recent = inst.rest.issues.list_comments(OWNER, NAME, n, since=T0 - timedelta(hours=1)).parsed_data
    assert [x.body for x in recent] == ["Thanks!"]
    assert [(x["user"], x["body"], x["created_at"]) for x in fake.comments(REPO, n)] == \
        [("bob", "LGTM", T0 - timedelta(hours=2)), ("tbr-fake[bot]", "Thanks!", T0)]
    got = inst.rest.issues.get(OWNER, NAME, n).parsed_data
    assert got.comments == 2 and got.updated_at == T0  # comments bump updated_at

    fake.add_pull(REPO, 7)  # the same endpoints serve pull requests
    inst.rest.issues.create_comment(OWNER, NAME, 7, body="on a PR")
    assert [x["body"] for x in fake.comments(REPO, 7)] == ["on a PR"]
    [pc] = inst.rest.issues.list_comments(OWNER, NAME, 7).parsed_data
    assert pc.html_url.startswith(f"{fake.url}/{REPO}/pull/7#")
    with pytest.raises(RequestFailed) as exc:
        inst.rest.issues.create_comment(OWNER, NAME, 99, body="x")
    assert exc.value.response.status_code == 404


def test_close_and_reopen_issue_as_a_human(fake, inst):
    n = fake.add_existing_issue(REPO, "t")["number"]
    before = len(fake.requests)
    fake.clock = lambda: T0 + timedelta(hours=3)
    fake.close_issue(REPO, n, by="bob", reason="not_planned")
    assert len(fake.requests) == before  # state helpers do not log requests
    got = inst.rest.issues.get(OWNER, NAME, n).parsed_data
    assert (got.state, got.state_reason, got.closed_by.login, got.closed_at) == \
        ("closed", "not_planned", "bob", T0 + timedelta(hours=3))
    fake.reopen_issue(REPO, n, by="bob")
    got = inst.rest.issues.get(OWNER, NAME, n).parsed_data
    assert (got.state, got.state_reason, got.closed_at) == ("open", "reopened", None)
    assert [i.number for i in inst.rest.issues.list_for_repo(OWNER, NAME).parsed_data] == [n]


def test_slack_webhook_stand_in(fake):
    r = httpx.post(f"{fake.url}/slack/T000/B000/XXXX", json={"text": "hello"})
    assert (r.status_code, r.text) == (200, "ok")
    assert fake.slack_messages == [{"text": "hello"}]
    assert httpx.post(f"{fake.url}/slack/x", content=b"not json").status_code == 400
    fake.fail("POST", r"/slack/.*", 500)  # faults apply here too
    assert httpx.post(f"{fake.url}/slack/x", json={"text": "lost"}).status_code == 500
    assert fake.slack_messages == [{"text": "hello"}]
    assert fake.count("POST", r"/slack/.*") == 3


# ------------------------------------------------------------ checks, contents, protection

def test_check_run_create_update_get_and_history(fake, inst):
    sha = "c" * 40
    fake.add_pull(REPO, 8, merged=False, head_sha=sha)
    resp = inst.rest.checks.create(OWNER, NAME, name="review", head_sha=sha, status="in_progress",
                                   external_id="pr-8", details_url="https://tbr.example/8",
                                   output={"title": "Waiting", "summary": "No approval yet"})
    assert resp.status_code == 201
    run = resp.parsed_data
    assert (run.name, run.head_sha, run.status, run.conclusion) == ("review", sha, "in_progress", None)
    assert (run.started_at, run.completed_at, run.external_id) == (T0, None, "pr-8")
    assert (run.app.id, run.app.slug) == (fake.app_id, "tbr-fake")
    assert run.html_url == f"{fake.url}/{REPO}/runs/{run.id}"
    assert (run.output.title, run.output.summary, run.output.text) == \
        ("Waiting", "No approval yet", None)
    assert [(p.number, p.head.sha) for p in run.pull_requests] == [(8, sha)]

    fake.clock = lambda: T0 + timedelta(minutes=5)
    upd = inst.rest.checks.update(OWNER, NAME, run.id, conclusion="success",
                                  output={"summary": "Approved by bob", "text": "details"}).parsed_data
    assert (upd.id, upd.status, upd.conclusion) == (run.id, "completed", "success")
    assert (upd.started_at, upd.completed_at) == (T0, T0 + timedelta(minutes=5))
    assert (upd.output.title, upd.output.summary, upd.output.text) == \
        ("Waiting", "Approved by bob", "details")  # a PATCHed output is merged
    got = inst.rest.checks.get(OWNER, NAME, run.id).parsed_data
    assert (got.conclusion, got.details_url, got.check_suite.id) == \
        ("success", "https://tbr.example/8", run.check_suite.id)

    [state] = fake.check_runs(REPO)
    assert (state["id"], state["name"], state["head_sha"], state["status"], state["conclusion"]) == \
        (run.id, "review", sha, "completed", "success")
    assert state["output"] == {"title": "Waiting", "summary": "Approved by bob", "text": "details"}
    assert state["completed_at"] == T0 + timedelta(minutes=5) and state["external_id"] == "pr-8"
    assert [h.get("status") or h.get("conclusion") for h in state["history"]] == \
        ["in_progress", "success"]
    assert state["history"][1] == {"conclusion": "success",
                                   "output": {"summary": "Approved by bob", "text": "details"}}
    assert fake.check_runs(REPO, head_sha="d" * 40) == [] and fake.check_runs(REPO, name="x") == []

    with pytest.raises(RequestFailed) as exc:
        inst.rest.checks.get(OWNER, NAME, 999_999)
    assert exc.value.response.status_code == 404


def test_check_run_validation(fake, gh, inst):
    sha = "c" * 40
    done = inst.rest.checks.create(OWNER, NAME, name="config", head_sha=sha, status="completed",
                                   conclusion="failure",
                                   output={"title": "Bad", "summary": "tbr.yml"}).parsed_data
    assert (done.status, done.completed_at, done.started_at) == ("completed", T0, T0)
    # githubkit validates request bodies itself, so invalid ones go around it.
    token = gh.rest.apps.create_installation_access_token(1).parsed_data.token
    for method, path, body in (
            ("POST", "", {"name": "x", "head_sha": sha, "status": "completed"}),  # no conclusion
            ("POST", "", {"name": "x", "head_sha": sha, "conclusion": "stale"}),  # GitHub only
            ("POST", "", {"name": "x", "head_sha": sha, "output": {"summary": "no title"}}),
            ("POST", "", {"head_sha": sha}),
            ("PATCH", f"/{done.id}", {"status": "in_progress", "completed_at": "2024-05-01T12:00:00Z"}),
            ("PATCH", f"/{done.id}", {"output": {"title": "no summary"}})):
        r = httpx.request(method, f"{fake.url}/repos/{REPO}/check-runs{path}", json=body,
                          headers={"Authorization": f"token {token}"})
        assert r.status_code == 422, body
        assert r.json()["message"] == "Validation Failed"
    [state] = fake.check_runs(REPO)
    assert (state["status"], state["conclusion"], len(state["history"])) == \
        ("completed", "failure", 1)
    fake.fail("PATCH", r"/repos/acme/widgets/check-runs/\d+", 502, after_effect=True)
    with pytest.raises(RequestFailed):
        inst.rest.checks.update(OWNER, NAME, done.id, conclusion="success")
    assert fake.check_runs(REPO)[0]["conclusion"] == "success"  # applied, answer lost


def test_list_check_runs_for_ref(fake, inst):
    sha = fake.add_branch(REPO, "feature", sha="e" * 40)
    for name, conclusion in (("review", "failure"), ("config", "success"), ("review", "success")):
        inst.rest.checks.create(OWNER, NAME, name=name, head_sha=sha, conclusion=conclusion)
    inst.rest.checks.create(OWNER, NAME, name="review", head_sha="f" * 40, status="queued")

    latest = inst.rest.checks.list_for_ref(OWNER, NAME, sha).parsed_data
    assert latest.total_count == 2
    assert [(c.name, c.conclusion) for c in latest.check_runs] == \
        [("review", "success"), ("config", "success")]  # newest first, newest per name
    every = inst.rest.checks.list_for_ref(OWNER, NAME, "feature", filter_="all",
                                          check_name="review").parsed_data
    assert [c.conclusion for c in every.check_runs] == ["success", "failure"]
    assert inst.rest.checks.list_for_ref(OWNER, NAME, sha, status="queued").parsed_data \
        .total_count == 0
    paged = list(inst.rest.paginate(inst.rest.checks.list_for_ref, owner=OWNER, repo=NAME,
                                    ref=sha, filter_="all", per_page=2,
                                    map_func=lambda r: r.parsed_data.check_runs))
    assert len(paged) == 3
    assert fake.count("GET", rf"/repos/acme/widgets/commits/{sha}/check-runs") == 4
    with pytest.raises(RequestFailed) as exc:
        inst.rest.checks.list_for_ref(OWNER, NAME, "no-such-branch")
    assert exc.value.response.status_code == 422


def test_get_file_contents(fake, inst):
    text = "branches: [main]\n" + "approval_phrases: [\"LGTM\", \"approved\"]\n" * 5 + "caf\u00e9\n"
    blob = fake.put_file(REPO, ".github/tbr.yml", text)
    fake.put_file(REPO, ".github/tbr.yml", "branches: [dev]\n", ref="dev")
    f = inst.rest.repos.get_content(OWNER, NAME, ".github/tbr.yml").parsed_data
    assert (f.type, f.encoding, f.name, f.path, f.sha) == ("file", "base64", "tbr.yml",
                                                           ".github/tbr.yml", blob)
    assert f.size == len(text.encode()) and f.content.endswith("\n")
    *full, last = f.content.splitlines()  # GitHub's wrapping: 60 characters a line
    assert full and {len(line) for line in full} == {60} and 0 < len(last) <= 60
    assert base64.b64decode(f.content).decode() == text
    assert f.html_url == f"{fake.url}/{REPO}/blob/main/.github/tbr.yml"
    assert f.links.self_ == f.url and f.links.git == f.git_url
    dev = inst.rest.repos.get_content(OWNER, NAME, ".github/tbr.yml", ref="dev").parsed_data
    assert base64.b64decode(dev.content) == b"branches: [dev]\n"
    head = inst.rest.repos.get_branch(OWNER, NAME, "main").parsed_data.commit.sha
    by_sha = inst.rest.repos.get_content(OWNER, NAME, ".github/tbr.yml", ref=head).parsed_data
    assert by_sha.sha == blob  # a branch head's sha reads the branch's files

    fake.delete_file(REPO, ".github/tbr.yml")
    for path, ref in ((".github/tbr.yml", None), ("missing.txt", None), ("x", "no-such-ref")):
        with pytest.raises(RequestFailed) as exc:
            inst.rest.repos.get_content(OWNER, NAME, path, **({"ref": ref} if ref else {}))
        assert exc.value.response.status_code == 404
    assert exc.value.response.json()["message"] == "No commit found for the ref no-such-ref"


def test_branch_protection(fake, inst):
    main = inst.rest.repos.get_branch_protection(OWNER, NAME, "main").parsed_data  # add_repo default
    reviews = main.required_pull_request_reviews
    assert (reviews.required_approving_review_count, reviews.dismiss_stale_reviews,
            reviews.require_code_owner_reviews, reviews.require_last_push_approval) == \
        (1, False, False, False)
    assert (main.allow_force_pushes.enabled, main.allow_deletions.enabled,
            main.enforce_admins.enabled, main.required_linear_history.enabled) == \
        (False, False, False, False)
    assert main.url == f"{fake.url}/repos/{REPO}/branches/main/protection"

    fake.set_protection(REPO, "release", require_pr=False, allow_force_pushes=True,
                        enforce_admins=True)
    rel = inst.rest.repos.get_branch_protection(OWNER, NAME, "release").parsed_data
    assert not rel.required_pull_request_reviews  # absent, as on GitHub
    assert (rel.allow_force_pushes.enabled, rel.enforce_admins.enabled) == (True, True)
    assert inst.rest.repos.get_branch(OWNER, NAME, "release").parsed_data.protected is True

    fake.remove_protection(REPO, "main")
    fake.add_branch(REPO, "dev")
    for branch, message in (("main", "Branch not protected"), ("dev", "Branch not protected"),
                            ("nope", "Branch not found")):
        with pytest.raises(RequestFailed) as exc:
            inst.rest.repos.get_branch_protection(OWNER, NAME, branch)
        assert exc.value.response.status_code == 404
        assert exc.value.response.json()["message"] == message
    assert inst.rest.repos.get_branch(OWNER, NAME, "main").parsed_data.protected is False


def test_pull_commits(fake, inst):
    fake.add_pull(REPO, 9, merged=False)
    base = inst.rest.repos.get_branch(OWNER, NAME, "main").parsed_data.commit.sha
    first = fake.add_pull_commit(REPO, 9, message="Add feature", committed_at=T0)
    msg = "Fix\n\nCo-authored-by: Bob <bob@example.com>"
    shas = [first] + [fake.add_pull_commit(REPO, 9, message=msg if i == 0 else f"c{i}",
                                           author="carol", pushed_by="carol",
                                           committed_at=T0 + timedelta(minutes=i + 1))
                      for i in range(3)]
    got = inst.rest.pulls.list_commits(OWNER, NAME, 9).parsed_data
    assert [c.sha for c in got] == shas  # oldest first
    assert (got[0].commit.message, got[0].author.login, got[0].commit.author.date) == \
        ("Add feature", "alice", T0)
    assert got[1].commit.message == msg and got[1].commit.committer.name == "carol"
    assert [p.sha for p in got[0].parents] == [base] and [p.sha for p in got[1].parents] == [first]
    assert got[1].html_url == f"{fake.url}/{REPO}/commit/{shas[1]}"
    assert inst.rest.pulls.get(OWNER, NAME, 9).parsed_data.head.sha == shas[-1]
    paged = list(inst.rest.paginate(inst.rest.pulls.list_commits, owner=OWNER, repo=NAME,
                                    pull_number=9, per_page=3))
    assert [c.sha for c in paged] == shas
    fake.add_pull_commit(REPO, 9, author=None)
    assert inst.rest.pulls.list_commits(OWNER, NAME, 9, page=2, per_page=4).parsed_data[0] \
        .author is None
    with pytest.raises(RequestFailed) as exc:
        inst.rest.pulls.list_commits(OWNER, NAME, 99)
    assert exc.value.response.status_code == 404


def test_rulesets(fake, inst):
    fake.set_ruleset(REPO, "main", rules=[
        {"type": "pull_request", "parameters": {"required_approving_review_count": 2}},
        {"type": "non_fast_forward"}, "deletion"])
    rules = inst.rest.repos.get_branch_rules(OWNER, NAME, "main").parsed_data
    assert [r.type for r in rules] == ["pull_request", "non_fast_forward", "deletion"]
    assert rules[0].parameters.required_approving_review_count == 2
    assert rules[0].parameters.dismiss_stale_reviews_on_push is False  # defaults filled in
    assert {r.ruleset_source for r in rules} == {REPO}

    fake.add_branch(REPO, "release/2.0")
    ruleset_id = fake.set_ruleset(REPO, "release/*", rules=["deletion"])
    rel = inst.rest.repos.get_branch_rules(OWNER, NAME, "release/2.0").parsed_data
    assert [(r.type, r.ruleset_id) for r in rel] == [("pull_request", 1), ("deletion", ruleset_id)]
    assert fake.set_ruleset(REPO, "release/*", rules=[]) == ruleset_id  # replaces the ruleset
    assert [r.type for r in inst.rest.repos.get_branch_rules(
        OWNER, NAME, "release/2.0").parsed_data] == ["pull_request"]  # add_repo's ruleset_branches
    fake.remove_ruleset(REPO, "main")
    assert inst.rest.repos.get_branch_rules(OWNER, NAME, "main").parsed_data == []


# ------------------------------------------------------------ GraphQL, through tbr's Gateway

@pytest.fixture
def gateway(fake):
    settings = Settings(app_id=fake.app_id, private_key=fake.private_key, webhook_secret="s",
                        api_url=fake.url)
    return Gateway(settings, timeout=5, retry=RetryPolicy(base_seconds=0.001))


def merged_numbers(gateway, since, **kwargs):
    return [node["number"] for _, node in gateway.merged_pull_nodes(1, REPO, since, **kwargs)]


def graphql_post(fake, token, query, variables=None):
    return httpx.post(f"{fake.url}/graphql", json={"query": query, "variables": variables or {}},
                      headers={"Authorization": f"bearer {token}"})


def test_graphql_pages_merged_pulls_by_update(fake, inst, gateway):
    h = timedelta(hours=1)
    pulls = {n: fake.add_pull(REPO, n, merged_at=T0 - n * h) for n in range(1, 6)}
    fake.add_pull(REPO, 6, merged=False)
    fake.add_pull(REPO, 7, merged=False, state="closed")
    fake.add_issue_comment(REPO, 5, "dave", "late", created_at=T0)  # bumps #5's updated_at

    got = list(gateway.merged_pull_nodes(1, REPO, T0 - 10 * h, page_size=2))
    assert [node["number"] for _, node in got] == [5, 1, 2, 3, 4]
    assert fake.count("POST", r"/graphql") == 3
    repository, node = got[1]
    rest = inst.rest.pulls.get(OWNER, NAME, 1).parsed_data
    repo_id = inst.rest.repos.get(OWNER, NAME).parsed_data.id
    assert (repository["databaseId"], repository["nameWithOwner"], repository["defaultBranchRef"]) \
        == (repo_id, REPO, {"name": "main"})
    assert (node["id"], node["url"], node["headRefOid"], node["mergeCommit"]) == \
        (rest.node_id, rest.html_url, rest.head.sha, {"oid": pulls[1]["merge_commit_sha"]})
    assert (node["updatedAt"], node["mergedAt"], node["baseRefName"], node["headRefName"]) == \
        ("2024-05-01T11:00:00Z", "2024-05-01T11:00:00Z", "main", "feature-1")

    # Updated before `since`: paging stops; merged before it: skipped.
    assert merged_numbers(gateway, T0 - 2.5 * h, page_size=2) == [1, 2]
    assert fake.count("POST", r"/graphql") == 5


def test_graphql_inner_lists_are_completed_through_node(fake, gateway):
    m = timedelta(minutes=1)
    fake.add_pull(REPO, 7, merged_at=T0)
    reviews = [fake.add_review(REPO, 7, f"rev{i}", submitted_at=T0 - (100 - i) * m)
               for i in range(35)]
    for i in range(12):
        fake.add_review_comment(REPO, 7, "rev3", f"nit {i}", created_at=T0 - 50 * m,
                                review_id=reviews[3]["id"])
    for i in range(40):
        fake.add_issue_comment(REPO, 7, "dave", f"comment {i}", created_at=T0 - (40 - i) * m)
    shas = [fake.add_pull_commit(REPO, 7, message=f"c{i}", committed_at=T0 - (200 - i) * m)
            for i in range(60)]

    [(_, node)] = gateway.merged_pull_nodes(1, REPO, T0 - timedelta(days=1))
    # One query for the page, then one node(id:) query each for the reviews, comments and
    # commits beyond their first page, and for review 3's comments beyond its first 10.
    assert fake.count("POST", r"/graphql") == 5
    got = node["reviews"]["nodes"]
    assert [r["author"]["login"] for r in got] == [f"rev{i}" for i in range(35)]
    assert [[c["body"] for c in r["comments"]["nodes"]] for r in got[2:5]] == \
        [[], [f"nit {i}" for i in range(12)], []]
    assert [c["body"] for c in node["comments"]["nodes"]] == [f"comment {i}" for i in range(40)]
    assert [c["commit"]["oid"] for c in node["commits"]["nodes"]] == shas
    for connection in (node["reviews"], node["comments"], node["commits"], got[3]["comments"]):
        assert connection["pageInfo"]["hasNextPage"] is False


def test_graphql_bots_and_pull_facts(fake, gateway):
    h = timedelta(hours=1)
    fake.add_pull(REPO, 8, author="dependabot[bot]", author_type="Bot", merged_by="tbr-fake[bot]",
                  merged_at=T0, title="Bump x", body=None)
    trailer = "Co-authored-by: Bob <1+bob@users.noreply.github.com>"
    first = fake.add_pull_commit(REPO, 8, author="carol", committed_at=T0 - 4 * h,
                                 message=f"Bump x\n\n{trailer}")
    head = fake.add_pull_commit(REPO, 8, author=None, committed_at=T0 - 3 * h)
    fake.add_review(REPO, 8, "renovate", "commented", user_type="Bot", submitted_at=T0 - 3 * h)
    approval = fake.add_review(REPO, 8, "bob", "APPROVED", body="LGTM", submitted_at=T0 - 2 * h)
    fake.add_review_comment(REPO, 8, "bob", "nit", created_at=T0 - 2 * h, review_id=approval["id"])
    single = fake.add_review_comment(REPO, 8, "erin", "why?", created_at=T0 - h)
    fake.add_issue_comment(REPO, 8, "ci[bot]", "green", user_type="Bot", created_at=T0 - h)

    [(_, node)] = gateway.merged_pull_nodes(1, REPO, T0 - timedelta(days=1))
    assert node["author"] == {"login": "dependabot", "__typename": "Bot"}  # no "[bot]"
    assert node["mergedBy"] == {"login": "tbr-fake", "__typename": "Bot"}
    assert [r["author"] for r in node["reviews"]["nodes"]] == [
        {"login": "renovate", "__typename": "Bot"}, {"login": "bob", "__typename": "User"},
        {"login": "erin", "__typename": "User"}]
    assert node["reviews"]["nodes"][2]["id"] == f"PRR_fake{single['id']}"  # its own review

    facts = pull_facts(REPO, node)
    url = f"{fake.url}/{REPO}/pull/8"
    assert (facts.number, facts.url, facts.title, facts.body, facts.merged_at) == \
        (8, url, "Bump x", "", T0)
    assert (facts.head_sha, facts.base, facts.head_ref) == (head, "main", "feature-8")
    assert (facts.author, facts.merged_by) == \
        (Actor("dependabot[bot]", "Bot"), Actor("tbr-fake[bot]", "Bot"))
    assert [(r.reviewer, r.state, r.submitted_at, r.body, r.commit_id) for r in facts.reviews] == [
        (Actor("renovate[bot]", "Bot"), "COMMENTED", T0 - 3 * h, "", head),
        (Actor("bob"), "APPROVED", T0 - 2 * h, "LGTM", head),
        (Actor("erin"), "COMMENTED", T0 - h, "", head)]
    assert facts.reviews[1].url == f"{url}#pullrequestreview-{approval['id']}"
    assert [(c.author, c.body, c.kind) for c in facts.comments] == [
        (Actor("ci[bot]", "Bot"), "green", "comment"), (Actor("bob"), "nit", "review comment"),
        (Actor("erin"), "why?", "review comment")]
    assert [(c.sha, c.author, c.committer, c.committed_at, c.coauthors) for c in facts.commits] == [
        (first, "carol", "carol", T0 - 4 * h, ("bob",)), (head, None, None, T0 - 3 * h, ())]
    assert facts.commits[0].message.startswith("Bump x")
    rest = gateway.pull_facts(1, REPO, 8)  # the gateway's own path sees the same comments and commits
    assert rest.comments == facts.comments
    assert rest.commits == facts.commits


def test_graphql_many_pulls_cost_few_requests(fake, gateway):
    fake.add_pulls(REPO, 250, spacing=timedelta(minutes=1))
    nodes = [node for _, node in gateway.merged_pull_nodes(1, REPO, T0 - timedelta(days=1))]
    assert [n["number"] for n in nodes] == list(range(1, 251))  # newest first
    assert {(len(n["reviews"]["nodes"]), len(n["comments"]["nodes"])) for n in nodes} == {(1, 1)}
    assert fake.count("POST", r"/graphql") == 3


def test_graphql_branch_history(fake, inst, gateway):
    h = timedelta(hours=1)
    pr = fake.add_pull(REPO, 3, merged_at=T0 - h)
    fake.add_pull(REPO, 4, merged=False)
    fake.add_commit(REPO, "main", message="old", committed_at=T0 - 5 * h)
    direct = fake.add_commit(REPO, "main", message="Direct push\n\nwhy", committed_at=T0 - 2 * h,
                             author="carol")
    merge = fake.add_commit(REPO, "main", sha=pr["merge_commit_sha"], committed_at=T0 - h,
                            message="Merge pull request #3")
    late = fake.add_commit(REPO, "main", message="wip", committed_at=T0, author=None, pull=4)

    got = gateway.branch_history(1, REPO, "main", T0 - 3 * h, page_size=2)
    assert fake.count("POST", r"/graphql") == 2
    web = f"{fake.url}/{REPO}/commit"
    assert got == [
        {"sha": late, "at": T0, "message": "wip", "url": f"{web}/{late}", "author": None,
         "pulls": []},  # associated with an open PR only
        {"sha": merge, "at": T0 - h, "message": "Merge pull request #3", "url": f"{web}/{merge}",
         "author": "alice", "pulls": [(3, "main")]},
        {"sha": direct, "at": T0 - 2 * h, "message": "Direct push", "url": f"{web}/{direct}",
         "author": "carol", "pulls": []}]
    # The same commits and links as REST serves.
    rest = inst.rest.repos.list_commits(OWNER, NAME, sha="main", since=T0 - 3 * h).parsed_data
    assert [(c["sha"], c["url"], c["at"]) for c in got] == \
        [(c.sha, c.html_url, c.commit.committer.date) for c in rest]
    assert [p.number for p in inst.rest.repos.list_pull_requests_associated_with_commit(
        OWNER, NAME, merge).parsed_data] == [3]
    fake.add_branch(REPO, "release")  # a branch without add_commit commits has no history
    assert gateway.branch_history(1, REPO, "release", T0 - 3 * h) == []
    assert gateway.branch_history(1, REPO, "gone", T0 - 3 * h) == []


def test_graphql_errors_are_answered_as_github_does(fake, gh, gateway, monkeypatch):
    token = gh.rest.apps.create_installation_access_token(1).parsed_data.token
    invalid = '{ repository(owner: "acme", name: "widgets") { nope } }'
    r = graphql_post(fake, token, invalid)
    assert r.status_code == 200 and "data" not in r.json()  # did not validate: nothing ran
    [error] = r.json()["errors"]
    assert "'nope'" in error["message"] and error["locations"] == [{"line": 1, "column": 48}]
    monkeypatch.setattr(queries, "HISTORY", queries.HISTORY.replace("messageHeadline", "headline"))
    with pytest.raises(GitHubError) as exc:
        gateway.branch_history(1, REPO, "main", T0)
    assert exc.value.status == 422 and "headline" in str(exc.value)

    fake.add_repo("other/repo", installation_id=2)
    for repo in ("acme/nope", "other/repo"):  # another installation's repo is not found either
        with pytest.raises(GitHubError) as exc:
            list(gateway.merged_pull_nodes(1, repo, T0))
        assert exc.value.status == 404
    r = graphql_post(fake, token, 'query { repository(owner: "other", name: "repo") { id } }')
    assert r.json() == {"data": {"repository": None}, "errors": [{
        "type": "NOT_FOUND", "path": ["repository"], "locations": [{"line": 1, "column": 9}],
        "message": "Could not resolve to a Repository with the name 'other/repo'."}]}

    with pytest.raises(GitHubError):
        merged_numbers(gateway, T0, page_size=101)
    r = graphql_post(fake, token, queries.PULLS, {"owner": OWNER, "name": NAME, "first": 101})
    assert [e["type"] for e in r.json()["errors"]] == ["EXCESSIVE_PAGINATION"]
    r = graphql_post(fake, token, queries.more_query("reviews"), {"id": "PR_fake999999"})
    assert [(e["type"], e["path"]) for e in r.json()["errors"]] == [("NOT_FOUND", ["node"])]
    r = graphql_post(fake, token, '{ repository(owner: "acme", name: "widgets") { forkCount } }')
    assert r.json()["errors"][0]["message"] == "fakegithub does not implement Repository.forkCount"
    r = graphql_post(fake, "ghs_bogus", "{ viewer { login } }")
    assert (r.status_code, r.json()["message"]) == (401, "Bad credentials")


def test_graphql_faults_are_retried(fake, gateway):
    fake.add_pull(REPO, 1, merged_at=T0)
    fake.fail("POST", r"/graphql", 502)
    assert merged_numbers(gateway, T0 - timedelta(hours=1)) == [1]
    assert fake.count("POST", r"/graphql") == 2
    fake.fail("POST", r"/graphql", 502, times=5)
    with pytest.raises(GitHubUnavailable):
        merged_numbers(gateway, T0 - timedelta(hours=1))


# ------------------------------------------------------------ access controls

@pytest.fixture
def acme(fake):
    """Every way into acme/widgets: an org owner, a team, a member who is also a direct
    collaborator, outside collaborators; rita and rob may only read; rita and xena lack 2FA."""
    fake.add_member(OWNER, "olivia", role="admin")
    fake.add_member(OWNER, "dave")
    fake.add_member(OWNER, "tina")
    fake.add_member(OWNER, "rita", two_factor=False)
    fake.add_team(OWNER, "devs", members=["dave", "tina"], repos={REPO: "push"})
    fake.add_team(OWNER, "readers", members=["rita"], repos={REPO: "pull"})
    fake.add_collaborator(REPO, "dave", "maintain")
    fake.add_collaborator(REPO, "xena", two_factor=False)
    fake.add_collaborator(REPO, "rob", "read")
    return fake


def access_of(gateway, login):
    return next((a for a in gateway.repo_access(1, REPO) if a["login"] == login), None)


def test_repo_access_lists_everyone_who_can_write_and_how(acme, gateway):
    assert gateway.repo_access(1, REPO) == [
        {"login": "dave", "permission": "maintain", "via": ["direct", "team @acme/devs"]},
        {"login": "olivia", "permission": "admin", "via": ["org owner"]},
        {"login": "tina", "permission": "write", "via": ["team @acme/devs"]},
        {"login": "xena", "permission": "write", "via": ["outside collaborator"]},
    ]
    acme.set_base_permission(OWNER, "write")
    assert access_of(gateway, "rita") == {"login": "rita", "permission": "write",
                                          "via": ["org base permission"]}


def test_permission_of(acme, gateway):
    acme.add_repo(f"{OWNER}/secret", private=True)
    assert gateway.permission_of(1, REPO, "tina") == "write"
    assert gateway.permission_of(1, REPO, "dave") == "maintain"
    assert gateway.permission_of(1, REPO, "stranger") == "read"  # anyone may read a public repo
    assert gateway.permission_of(1, f"{OWNER}/secret", "stranger") == "none"


def test_removed_member_keeps_direct_access_until_removed(acme, gateway):
    acme.add_invitation(REPO, "dave", "admin")
    acme.remove_member(OWNER, "dave")
    assert access_of(gateway, "dave") == {"login": "dave", "permission": "maintain",
                                          "via": ["outside collaborator"]}
    assert gateway.invitees(1, REPO) == ["dave"]

    gateway.remove_collaborator(1, REPO, "dave")
    gateway.remove_collaborator(1, REPO, "tina")  # team access is not a collaborator's
    assert acme.collaborators(REPO) == {"xena": "write", "rob": "read"}
    assert [a["login"] for a in gateway.repo_access(1, REPO)] == ["olivia", "tina", "xena"]
    assert gateway.invitees(1, REPO) == ["dave"]  # a pending invitation outlives the removal


def test_without_2fa(acme, gateway):
    assert gateway.without_2fa(1, OWNER) == (["rita"], ["xena"])
    acme.twofa_visible = False
    assert gateway.without_2fa(1, OWNER) == "Only owners can use this filter."


def test_access_endpoints_through_githubkit(acme, inst):
    acme.add_invitation(REPO, "ivan", "triage")
    [invitation] = inst.rest.repos.list_invitations(OWNER, NAME).parsed_data
    assert (invitation.invitee.login, invitation.permissions, invitation.repository.full_name) \
        == ("ivan", "triage", REPO)
    teams = inst.rest.repos.list_teams(OWNER, NAME).parsed_data
    assert [(t.slug, t.permission) for t in teams] == [("devs", "push"), ("readers", "pull")]
    assert [m.login for m in inst.rest.teams.list_members_in_org(OWNER, "devs").parsed_data] \
        == ["dave", "tina"]

    everyone = list(inst.rest.paginate(inst.rest.repos.list_collaborators, owner=OWNER,
                                       repo=NAME, per_page=2))
    assert [(c.login, c.role_name) for c in everyone] == [
        ("dave", "maintain"), ("olivia", "admin"), ("rita", "read"), ("rob", "read"),
        ("tina", "write"), ("xena", "write")]
    assert acme.count("GET", r"/repos/acme/widgets/collaborators") == 3
    assert everyone[4].permissions.push and not everyone[4].permissions.maintain
    pushers = inst.rest.repos.list_collaborators(OWNER, NAME, permission="push").parsed_data
    assert [c.login for c in pushers] == ["dave", "olivia", "tina", "xena"]

    p = inst.rest.repos.get_collaborator_permission_level(OWNER, NAME, "dave").parsed_data
    assert (p.permission, p.role_name, p.user.login) == ("write", "maintain", "dave")
    assert [u.login for u in inst.rest.orgs.list_members(OWNER, role="admin").parsed_data] \
        == ["olivia"]
    assert [u.login for u in inst.rest.orgs.list_outside_collaborators(OWNER).parsed_data] \
        == ["rob", "xena"]
    acme.twofa_visible = False
    with pytest.raises(RequestFailed) as exc:
        inst.rest.orgs.list_outside_collaborators(OWNER, filter_="2fa_disabled")
    assert exc.value.response.status_code == 422


def test_org_endpoints_are_404_for_other_installations_and_personal_accounts(fake, gh, gateway):
    fake.add_repo("other/repo", installation_id=2)
    fake.add_member("other", "oscar", role="admin")
    fake.add_repo("alice/dotfiles", owner_type="User", installation_id=2)
    fake.add_collaborator("alice/dotfiles", "bob")
    inst1, inst2 = (gh.with_auth(gh.auth.as_installation(i)) for i in (1, 2))
    for client, org in ((inst1, "other"), (inst2, "alice"), (inst1, "nobody")):
        with pytest.raises(RequestFailed) as exc:
            client.rest.orgs.list_members(org)
        assert exc.value.response.status_code == 404
    assert [u.login for u in inst2.rest.orgs.list_members("other").parsed_data] == ["oscar"]
    # A personal account administers its own repos, without teams or owners.
    assert [(a["login"], a["permission"]) for a in gateway.repo_access(2, "alice/dotfiles")] \
        == [("alice", "admin"), ("bob", "write")]
    with pytest.raises(GitHubError) as exc:
        gateway.repo_access(1, "alice/dotfiles")
    assert exc.value.status == 404


# rate limits and what changed, as GitHub answers them (issue 18) -----------------------------------

def test_every_answer_says_where_the_budget_stands_and_304s_are_free(fake, inst):
    r = inst.rest.repos.get(OWNER, NAME)
    limit = 5000  # one repository: GitHub's floor for an installation
    assert {k: r.headers[f"x-ratelimit-{k}"] for k in ("limit", "used", "remaining", "resource")} == \
        {"limit": str(limit), "used": "1", "remaining": str(limit - 1), "resource": "core"}
    assert int(r.headers["x-ratelimit-reset"]) == int(T0.timestamp()) + 3600
    again = inst.request("GET", f"/repos/{REPO}", headers={"If-None-Match": r.headers["etag"]})
    assert again.status_code == 304 and again.headers["x-ratelimit-used"] == "1"
    fake.add_commit(REPO, "main", message="moves pushed_at", pushed_at=T0 + timedelta(minutes=1))
    changed = inst.request("GET", f"/repos/{REPO}", headers={"If-None-Match": r.headers["etag"]})
    assert changed.status_code == 200 and changed.headers["x-ratelimit-used"] == "2"
    assert fake.spent("core", r"/repos/.*") == 2


def test_an_installation_gets_more_for_more_repositories_up_to_12500(fake):
    for i in range(120):
        fake.add_repo(f"{OWNER}/r{i}")
    assert fake.rate_limit_state()["limit"] == 5000 + 50 * 101
    for i in range(120, 300):
        fake.add_repo(f"{OWNER}/r{i}")
    assert fake.rate_limit_state()["limit"] == 12500


def test_the_budget_spent_is_refused_and_renews_after_an_hour(fake, gateway):
    fake.use_rate_limit(5000)
    with pytest.raises(GitHubUnavailable, match="rate limited"):
        gateway.repo(1, REPO)
    assert gateway.budgets["core"].remaining == 0
    fake.clock = lambda: T0 + timedelta(hours=1)
    assert gateway.repo(1, REPO).full_name == REPO
    assert gateway.budgets["core"].remaining == 4999


def test_graphql_costs_points_as_github_counts_them(fake, inst, gateway):
    # GitHub's documented example: 1 + 100 + 100 * 50 requests, over 100: 51 points.
    query = ("query { viewer { login repositories(first: 100) { edges { node { id issues(first: 50) { edges {"
             " node { id labels(first: 60) { edges { node { id name } } } } } } } } } } }")
    inst.request("POST", "/graphql", json={"query": query})
    assert fake.spent("graphql") == 51
    gateway.default_branch_protection(1, [REPO])  # no connection at all: GitHub's minimum, 1
    assert fake.spent("graphql") == 52


def test_the_activity_log_lists_ref_updates_by_github_time(fake, gateway):
    old = fake.add_commit(REPO, "main", message="backdated", committed_at=T0 - timedelta(days=99),
                          pushed_at=T0 - timedelta(minutes=5), pusher="mallory")
    forced = fake.force_push(REPO, "main", drop=1, message="rewritten", author="mallory")
    for i in range(150):
        fake.add_commit(REPO, f"feature/{i % 3}", message=f"wip {i}")
    got = gateway.activity(1, REPO, T0 - timedelta(hours=1))
    assert len(got) == 152 and fake.count("GET", f"/repos/{REPO}/activity") == 2  # cursor-paged
    main = [a for a in got if a["branch"] == "main"]
    assert [(a["type"], a["after"], a["actor"], a["at"]) for a in main] == [
        ("force_push", forced, "mallory", T0), ("push", old, "mallory", T0 - timedelta(minutes=5))]
    assert main[0]["before"] == old
    [pushed] = gateway.pushed_commits(1, [{"repo": REPO, **main[0]}])
    assert ([c["sha"] for c in pushed["commits"]], pushed["dropped"]) == ([forced], [old])
