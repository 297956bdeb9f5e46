"""githubkit 0.16.1 must accept every response of the fake through its typed methods."""

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
        inst.rest.issues.get(OWNER, NAME, 1)  # not served by the fake
    assert exc.value.response.status_code == 404
    assert exc.value.response.json()["message"] == "Not Found"
    assert fake.unhandled == [("GET", "/repos/acme/widgets/issues/1", {})]


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
