"""The one gateway to GitHub. Everything tbr asks of GitHub goes through `Gateway`.

githubkit does the HTTP, App auth and response validation; this module adds what tbr needs on top:
a timeout on every request, retries that never sleep long in a worker thread, no automatic retry of
POSTs (a retried POST after a lost answer would file a second issue), and translation of GitHub's
models into the classifier's plain facts.
"""

from __future__ import annotations

import base64
import functools
import threading
from urllib.parse import parse_qs, urlsplit
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import httpx
import structlog
from githubkit import AppAuthStrategy, GitHub
from githubkit.cache import MemCacheStrategy
from githubkit.exception import (GitHubException, GraphQLFailed, RateLimitExceeded, RequestError, RequestFailed,
                                 RequestTimeout)
from githubkit.retry import RetryOption
from githubkit.utils import UNSET

from tbr import graphql
from tbr.classify import Actor, PullFacts
from tbr.config import Settings

log = structlog.get_logger("tbr.github")

IDEMPOTENT = ("GET", "HEAD")


class GitHubUnavailable(Exception):
    """A failure worth trying again later: 5xx, timeout, network, rate limit."""

    def __init__(self, message: str, retry_after: timedelta | None = None):
        super().__init__(message)
        self.retry_after = retry_after


class GitHubError(Exception):
    """GitHub refused the request (4xx). `status` says how."""

    def __init__(self, message: str, status: int, body: object = None):
        super().__init__(message)
        self.status = status
        self.body = body


@dataclass(frozen=True)
class RepoInfo:
    full_name: str
    id: int
    default_branch: str
    archived: bool
    has_issues: bool
    private: bool = True
    pushed_at: datetime | None = None  # GitHub's time of the last push to any of its branches


def _repo_info(r) -> RepoInfo:
    return RepoInfo(r.full_name, r.id, r.default_branch, bool(r.archived), bool(r.has_issues), bool(r.private),
                    _when(getattr(r, "pushed_at", None)))


@dataclass(frozen=True)
class RateBudget:
    """One rate-limit window as GitHub's x-ratelimit-* headers last described it."""
    resource: str
    limit: int
    remaining: int
    reset: datetime


def rate_budget(headers) -> RateBudget | None:
    try:
        return RateBudget(headers.get("x-ratelimit-resource") or "core", int(headers["x-ratelimit-limit"]),
                          int(headers["x-ratelimit-remaining"]),
                          datetime.fromtimestamp(int(headers["x-ratelimit-reset"]), timezone.utc))
    except (KeyError, ValueError, TypeError):
        return None


@dataclass(frozen=True)
class IssueRef:
    number: int
    url: str


class RetryPolicy:
    """githubkit's retry hook: short waits only, and only for requests safe to repeat.

    githubkit sleeps in the calling thread for as long as a rate limit says (up to an hour); here a
    long wait becomes an exception, and the work item is rescheduled in the database instead.
    """

    def __init__(self, base_seconds: float = 1.0, max_tries: int = 3, max_wait: float = 30.0):
        self.base = base_seconds
        self.max_tries = max_tries
        self.max_wait = max_wait

    def __call__(self, exc: GitHubException, count: int) -> RetryOption:
        if count >= self.max_tries:
            return RetryOption(False)
        if isinstance(exc, RateLimitExceeded):
            wait = exc.retry_after.total_seconds()
            # timedelta(0) makes githubkit sleep 60 s, so never hand it a zero wait.
            return RetryOption(wait <= self.max_wait, timedelta(seconds=max(wait, 0.001)))
        request = getattr(exc, "request", None) or getattr(getattr(exc, "exc", None), "request", None)
        # tbr sends GraphQL queries only, never mutations: they are as safe to repeat as a GET.
        if request is None or (request.method not in IDEMPOTENT and request.url.path != "/graphql"):
            return RetryOption(False)
        transient = isinstance(exc, (RequestTimeout,)) or (
            isinstance(exc, RequestFailed) and exc.response.status_code >= 500
        ) or (type(exc) is RequestError)
        if transient:
            return RetryOption(True, timedelta(seconds=self.base * (2 ** count)))
        return RetryOption(False)


def _when(value) -> datetime | None:
    if value in (None, UNSET):
        return None
    return value.astimezone(timezone.utc) if value.tzinfo else value.replace(tzinfo=timezone.utc)


def _actor(user) -> Actor:
    if user in (None, UNSET):
        return Actor("ghost")  # a deleted account: GitHub shows it as @ghost
    return Actor(user.login, getattr(user, "type", "User") or "User")


def _enabled(setting) -> bool:
    return bool(setting not in (None, UNSET) and getattr(setting, "enabled", False))


def split(full_name: str) -> tuple[str, str]:
    owner, _, name = full_name.partition("/")
    return owner, name


def call(what: str, fn, *args, **kwargs):
    """Run one githubkit call, turning its exceptions into GitHubUnavailable / GitHubError."""
    try:
        return fn(*args, **kwargs)
    except RateLimitExceeded as e:
        wait = int(e.retry_after.total_seconds())
        raise GitHubUnavailable(f"{what}: rate limited for {wait} s", e.retry_after) from e
    except RequestFailed as e:
        status = e.response.status_code
        if status >= 500:
            raise GitHubUnavailable(f"{what}: GitHub answered {status}") from e
        try:
            body = e.response.json()
        except ValueError:
            body = e.response.text
        message = body.get("message", "") if isinstance(body, dict) else str(body)[:200]
        raise GitHubError(f"{what}: GitHub answered {status} {message}".strip(), status, body) from e
    except RequestError as e:
        raise GitHubUnavailable(f"{what}: {type(e.exc).__name__}: {e.exc}") from e
    except GraphQLFailed as e:
        errors = e.response.errors or []
        message = "; ".join(err.message for err in errors)
        status = 404 if any(err.type == "NOT_FOUND" for err in errors) else 422
        raise GitHubError(f"{what}: {message}", status, message) from e
    except GitHubException as e:
        raise GitHubUnavailable(f"{what}: {e!r}") from e


class SharedTransport(httpx.HTTPTransport):
    """One connection pool (and one TLS context) for all of tbr's requests. githubkit makes an httpx
    client per request and closes it after; with its own transport each request would build a TLS
    context (about 20 ms of CPU) and open a new connection."""

    def close(self) -> None:
        pass  # outlives each per-request client


class Gateway:
    def __init__(self, settings: Settings, *, timeout: float = 15.0, retry: RetryPolicy | None = None,
                 transport: httpx.BaseTransport | None = None,
                 on_response: Callable[[httpx.Response], None] | None = None):
        self.settings = settings
        self.retry = retry or RetryPolicy()
        self.requests = 0  # answers received from GitHub, for commands that report their cost
        self.budgets: dict[str, RateBudget] = {}  # per resource (core, graphql), from the last answer
        self._lock = threading.Lock()
        transport = transport or SharedTransport()
        self._make_app = lambda: GitHub(
            AppAuthStrategy(str(settings.app_id), settings.private_key),
            base_url=settings.api_url + "/",
            timeout=timeout,
            auto_retry=self.retry,
            http_cache=False,
            user_agent="tbr (https://github.com/tbr-bot/tbr)",
            transport=transport,
            event_hooks={"response": [self._seen, *([on_response] if on_response else [])]},
            # githubkit's default token cache is process-wide and keyed by app id alone.
            cache_strategy=MemCacheStrategy(),
        )
        self.app = self._make_app()
        self._clients: dict[int, GitHub] = {}
        self._installations: dict[str, int] = {}

    # plumbing ---------------------------------------------------------------------------------

    def _seen(self, response: httpx.Response) -> None:
        """Count each answer; on a 401, forget the cached tokens. githubkit keeps an installation
        token until the expiry GitHub gave, so a token revoked early (the App reinstalled, its key
        rotated) would fail every call for up to an hour; the retry gets a fresh one instead."""
        budget = rate_budget(response.headers)
        with self._lock:
            self.requests += 1
            if budget:
                self.budgets[budget.resource] = budget
            if response.status_code == 401:
                self.app = self._make_app()
                self._clients.clear()
                log.warning("github.tokens_forgotten", url=str(response.request.url))

    def _inst(self, installation_id: int) -> GitHub:
        with self._lock:
            client = self._clients.get(installation_id)
            if client is None:
                client = self._clients[installation_id] = self.app.with_auth(
                    self.app.auth.as_installation(installation_id))
            return client

    def _all(self, what: str, client: GitHub, method, **kwargs) -> list:
        return call(what, lambda: list(client.rest.paginate(method, per_page=100, **kwargs)))

    # app level --------------------------------------------------------------------------------

    def app_info(self) -> dict:
        app = call("GET /app", self.app.rest.apps.get_authenticated).parsed_data
        return {"id": app.id, "slug": getattr(app, "slug", None), "name": app.name}

    def _ours(self, user) -> bool:
        """Whether GitHub says this App wrote it: anyone can paste tbr's hidden markers into their own text."""
        return user not in (None, UNSET) and getattr(user, "type", None) == "Bot" \
            and user.login.lower() == self.app_login.lower()

    def installation_for(self, repo: str) -> int:
        """The installation that covers `repo`; remembered, since it only changes on reinstall."""
        key = repo.lower()
        if key not in self._installations:
            inst = call(f"GET /repos/{repo}/installation",
                              self.app.rest.apps.get_repo_installation, *split(repo)).parsed_data
            self._installations[key] = inst.id
        return self._installations[key]

    # repositories -----------------------------------------------------------------------------

    def repo(self, inst: int, repo: str) -> RepoInfo:
        r = call(f"GET /repos/{repo}", self._inst(inst).rest.repos.get, *split(repo)).parsed_data
        return _repo_info(r)

    def branch_protection(self, inst: int, repo: str, branch: str) -> str | None:
        """How `branch` is protected ("classic", "ruleset"), or None when it is not."""
        client = self._inst(inst)
        try:
            b = call(f"GET /repos/{repo}/branches/{branch}",
                           client.rest.repos.get_branch, *split(repo), branch).parsed_data
        except GitHubError as e:
            if e.status == 404:
                return None  # deleted since the push: nothing left to protect
            raise
        if b.protected:
            return "classic"
        rules = call(f"GET /repos/{repo}/rules/branches/{branch}",
                           client.rest.repos.get_branch_rules, *split(repo), branch).parsed_data
        return "ruleset" if rules else None

    # pull requests ----------------------------------------------------------------------------

    def pull_facts(self, inst: int, repo: str, number: int, merged: bool = True) -> PullFacts | None:
        """Everything the classifier needs about a PR, every page of it, in one GraphQL request (more
        only for long lists). None when `merged` is asked for and it is not merged, or when an open PR
        is asked for and it is not open."""
        owner, name = split(repo)
        node = self._graphql(inst, f"pull {repo}#{number}", graphql.PULL,
                             {"owner": owner, "name": name, "number": number})["repository"]["pullRequest"]
        if node["state"] != ("MERGED" if merged else "OPEN"):
            return None
        self._complete(inst, repo, node)
        return graphql.pull_facts(repo, node)

    def merged_pulls_for_commits(self, inst: int, repo: str, shas: list[str], branch: str) -> dict[str, list[int]]:
        """For each commit, the numbers of the merged PRs into `branch` that GitHub associates with it:
        one GraphQL request per hundred commits, whatever the push's size."""
        owner, name = split(repo)
        found: dict[str, list[int]] = {}
        step = graphql.COMMITS_PER_QUERY
        for start in range(0, len(shas), step):
            batch = shas[start:start + step]
            data = self._graphql(inst, f"pulls of {len(batch)} commits of {repo}", graphql.commit_pulls_query(len(batch)),
                                 {"owner": owner, "name": name, **{f"c{i}": sha for i, sha in enumerate(batch)}})
            found.update({sha: graphql.merged_into(data["repository"][f"c{i}"], branch) for i, sha in enumerate(batch)})
        return found

    # issues -----------------------------------------------------------------------------------

    def find_issue(self, inst: int, repo: str, label: str, marker: str, since: datetime) -> IssueRef | None:
        """Our own issue, by the hidden marker in its body, among issues labelled `label` that this App
        opened (a copy of the marker in someone else's issue is theirs, not tbr's).

        Listing by label is exact and immediate (the search API is neither); `since` bounds the
        listing to issues touched after the change was first seen, which includes any we filed.
        """
        return next((IssueRef(i["number"], i["url"]) for i in self.own_issues(inst, repo, label, since)
                     if marker in i["body"]), None)

    @functools.cached_property
    def app_login(self) -> str:
        """The App's own login, as GitHub shows it on what the App authors (asked once per process)."""
        return f"{self.app_info()['slug']}[bot]"

    def own_issues(self, inst: int, repo: str, label: str, since: datetime | None) -> list[dict]:
        """Issues labelled `label` that this App authored (others' are left out, whatever their body
        says), touched since `since` (None: all), least recently updated first."""
        client = self._inst(inst)
        issues = self._all(f"issues of {repo}", client, client.rest.issues.list_for_repo, owner=split(repo)[0],
                           repo=split(repo)[1], labels=label, state="all", sort="updated", direction="asc",
                           **({"since": since} if since else {}))
        return [{"number": i.number, "url": i.html_url, "body": i.body or "", "updated_at": i.updated_at}
                for i in issues if self._ours(i.user) and not i.pull_request]

    def create_issue(self, inst: int, repo: str, title: str, body: str, labels: list[str],
                     assignees: list[str]) -> IssueRef:
        """POST once: RetryPolicy never repeats a POST after a 5xx or timeout, since the lost answer
        may hide a created issue; the caller looks for the marker before trying again."""
        client = self._inst(inst)
        data = {"title": title, "body": body, "labels": labels}
        if assignees:
            data["assignees"] = assignees
        issue = call(f"POST /repos/{repo}/issues", client.rest.issues.create,
                           *split(repo), data=data).parsed_data
        return IssueRef(issue.number, issue.html_url)

    def ensure_label(self, inst: int, repo: str, name: str, color: str, description: str) -> None:
        client = self._inst(inst)
        try:
            call(f"POST /repos/{repo}/labels", client.rest.issues.create_label, *split(repo),
                       data={"name": name, "color": color, "description": description})
        except GitHubError as e:
            if e.status != 422:  # 422: it exists already
                raise

    # follow-up lifecycle ------------------------------------------------------------------------

    def comment_once(self, inst: int, repo: str, number: int, body: str, marker: str, since: datetime) -> None:
        """Post a comment unless this App's comment carrying `marker` is there already (a retry after a lost
        answer); a copy of the marker in anyone else's comment does not silence tbr."""
        client = self._inst(inst)
        owner, name = split(repo)
        existing = self._all(f"comments of {repo}#{number}", client, client.rest.issues.list_comments,
                             owner=owner, repo=name, issue_number=number, since=since)
        if any(marker in (c.body or "") and self._ours(c.user) for c in existing):
            return
        call(f"POST comment on {repo}#{number}", client.rest.issues.create_comment, owner, name, number,
                   data={"body": f"{marker}\n{body}"})

    def own_comments(self, inst: int, repo: str, number: int) -> list[dict]:
        """The comments on an issue this App authored (others' are left out, whatever they say), oldest first."""
        client = self._inst(inst)
        owner, name = split(repo)
        comments = self._all(f"comments of {repo}#{number}", client, client.rest.issues.list_comments,
                             owner=owner, repo=name, issue_number=number)
        return [{"body": c.body or "", "url": c.html_url, "created_at": c.created_at} for c in comments
                if self._ours(c.user)]

    def post_comment(self, inst: int, repo: str, number: int, body: str) -> str:
        """POST once (never repeated by RetryPolicy); the caller looks for its marker before a retry."""
        c = call(f"POST comment on {repo}#{number}", self._inst(inst).rest.issues.create_comment, *split(repo),
                 number, data={"body": body}).parsed_data
        return c.html_url

    def pin_issue(self, inst: int, repo: str, number: int) -> None:
        node = call(f"GET issue {repo}#{number}", self._inst(inst).rest.issues.get, *split(repo), number).parsed_data
        self._graphql(inst, f"pin {repo}#{number}", "mutation($id: ID!) { pinIssue(input: {issueId: $id})"
                      " { issue { number } } }", {"id": node.node_id})

    def set_issue_state(self, inst: int, repo: str, number: int, state: str, reason: str | None = None) -> None:
        data = {"state": state}
        if reason:
            data["state_reason"] = reason
        call(f"PATCH {repo}#{number} {state}", self._inst(inst).rest.issues.update, *split(repo), number,
                   data=data)

    def add_label(self, inst: int, repo: str, number: int, label: str) -> None:
        call(f"label {repo}#{number}", self._inst(inst).rest.issues.add_labels, *split(repo), number,
                   data={"labels": [label]})

    def update_issue_body(self, inst: int, repo: str, number: int, body: str) -> None:
        call(f"PATCH {repo}#{number} body", self._inst(inst).rest.issues.update, *split(repo), number,
                   data={"body": body})

    # reconciliation -----------------------------------------------------------------------------

    def installations(self) -> list[int]:
        items = self._all("GET /app/installations", self.app, self.app.rest.apps.list_installations)
        return [i.id for i in items]

    def installation_repos(self, inst: int) -> list[RepoInfo]:
        client = self._inst(inst)
        repos = call("GET /installation/repositories", lambda: list(client.rest.paginate(
            client.rest.apps.list_repos_accessible_to_installation,
            map_func=lambda r: r.parsed_data.repositories, per_page=100)))
        return [_repo_info(r) for r in repos]

    # history, through GraphQL (backfill) -----------------------------------------------------------

    def _graphql(self, inst: int, what: str, query: str, variables: dict) -> dict:
        return call(what, self._inst(inst).graphql.request, query, variables)

    def merged_pull_nodes(self, inst: int, repo: str, since: datetime, page_size: int = 100):
        """Yield (repository, PR node) for each PR merged at or after `since`, newest activity first,
        each node's inner lists complete. Pages stop at the first PR last updated before `since`."""
        owner, name = split(repo)
        after = None
        while True:
            data = self._graphql(inst, f"merged pulls of {repo}", graphql.PULLS,
                                 {"owner": owner, "name": name, "first": page_size, "after": after})
            repository = data["repository"]
            page = repository["pullRequests"]
            for node in page["nodes"]:
                if graphql.when(node["updatedAt"]) < since:
                    return
                if graphql.when(node["mergedAt"]) >= since:
                    self._complete(inst, repo, node)
                    yield repository, node
            if not page["pageInfo"]["hasNextPage"]:
                return
            after = page["pageInfo"]["endCursor"]

    def _complete(self, inst: int, repo: str, node: dict) -> None:
        """Page through whichever inner lists of a PR node overflowed their first page."""
        for inner in ("reviews", "comments", "commits"):
            self._rest_of(inst, f"{inner} of {repo}#{node['number']}", inner, node["id"], node[inner])
        for review in node["reviews"]["nodes"]:
            self._rest_of(inst, f"review comments of {repo}#{node['number']}", "review_comments", review["id"],
                          review["comments"])

    def _rest_of(self, inst: int, what: str, inner: str, node_id: str, connection: dict) -> None:
        field = "comments" if inner == "review_comments" else inner
        while connection["pageInfo"]["hasNextPage"]:
            more = self._graphql(inst, what, graphql.more_query(inner),
                                 {"id": node_id, "after": connection["pageInfo"]["endCursor"]})["node"][field]
            connection["nodes"] += more["nodes"]
            connection["pageInfo"] = more["pageInfo"]

    def branch_history(self, inst: int, repo: str, branch: str, since: datetime, page_size: int = 100) -> list[dict]:
        """Commits on `branch` since `since`, newest first, each with the PRs GitHub associates with it."""
        owner, name = split(repo)
        after, commits = None, []
        while True:
            data = self._graphql(inst, f"history of {repo}:{branch}", graphql.HISTORY,
                                 {"owner": owner, "name": name, "ref": f"refs/heads/{branch}",
                                  "since": since.isoformat(), "first": page_size, "after": after})
            ref = data["repository"]["ref"]
            if ref is None:
                return commits  # the branch is gone
            history = ref["target"]["history"]
            commits += [{"sha": c["oid"], "at": graphql.when(c["committedDate"]), "message": c["messageHeadline"],
                         "url": c["url"], "author": ((c["author"] or {}).get("user") or {}).get("login"),
                         "pulls": [(p["number"], p["baseRefName"]) for p in c["associatedPullRequests"]["nodes"]
                                   if p["merged"]]}
                        for c in history["nodes"]]
            if not history["pageInfo"]["hasNextPage"]:
                return commits
            after = history["pageInfo"]["endCursor"]

    def failed_deliveries(self, since: datetime) -> list[dict]:
        """The App's webhook deliveries since `since` that GitHub could not hand over, newest first."""
        out = []

        def walk():
            for d in self.app.rest.paginate(self.app.rest.apps.list_webhook_deliveries, per_page=100):
                if _when(d.delivered_at) < since:
                    return
                out.append({"id": d.id, "guid": d.guid, "ok": 200 <= (d.status_code or 0) < 300,
                            "event": d.event, "delivered_at": _when(d.delivered_at)})

        call("GET /app/hook/deliveries", walk)
        return out

    def redeliver(self, delivery_id: int) -> None:
        call(f"redeliver {delivery_id}", self.app.rest.apps.redeliver_webhook_delivery, delivery_id)

    # access controls (CC6) -----------------------------------------------------------------------

    def repo_access(self, inst: int, repo: str) -> list[dict]:
        """Everyone with write, maintain or admin access to `repo`, and how they have it: directly, as
        an outside collaborator, through a team, or as an organization owner."""
        client = self._inst(inst)
        owner, name = split(repo)

        def people(affiliation: str) -> list:
            return self._all(f"{affiliation} collaborators of {repo}", client, client.rest.repos.list_collaborators,
                             owner=owner, repo=name, affiliation=affiliation)

        def org_only(what: str, method, **kwargs) -> list:
            try:
                return self._all(what, client, method, **kwargs)
            except GitHubError as e:
                if e.status == 404:  # a personal account's repository: no teams, no owners
                    return []
                raise

        everyone = {c.login: c for c in people("all")}
        direct = {c.login for c in people("direct")}
        outside = {c.login for c in people("outside")}
        via: dict[str, list[str]] = {login: [] for login in everyone}
        for team in org_only(f"teams of {repo}", client.rest.repos.list_teams, owner=owner, repo=name):
            if team.permission in ("push", "maintain", "admin"):
                for m in self._all(f"members of team {team.slug}", client, client.rest.teams.list_members_in_org,
                                   org=owner, team_slug=team.slug):
                    via.setdefault(m.login, []).append(f"team @{owner}/{team.slug}")
        for m in org_only(f"owners of {owner}", client.rest.orgs.list_members, org=owner, role="admin"):
            via.setdefault(m.login, []).append("org owner")
        found = []
        for login, c in sorted(everyone.items(), key=lambda kv: kv[0].lower()):
            if c.role_name not in ("admin", "maintain", "write"):
                continue
            ways = (["outside collaborator"] if login in outside else ["direct"] if login in direct else []) + via[login]
            fallback = "repository owner" if login.lower() == owner.lower() else "org base permission"
            found.append({"login": login, "permission": c.role_name, "via": ways or [fallback]})
        return found

    def permission_of(self, inst: int, repo: str, login: str) -> str:
        """`login`'s permission on `repo`: admin, maintain, write, triage, read, or none."""
        client = self._inst(inst)
        try:
            p = call(f"GET permission of {login} on {repo}", client.rest.repos.get_collaborator_permission_level,
                     *split(repo), login).parsed_data
        except GitHubError as e:
            if e.status == 404:  # not a collaborator, or no such user
                return "none"
            raise
        return p.role_name or p.permission

    def org_owners(self, inst: int, org: str) -> list[str]:
        """The owners of organization `org`; a personal account owns its own repositories."""
        client = self._inst(inst)
        try:
            return [m.login for m in self._all(f"owners of {org}", client, client.rest.orgs.list_members, org=org,
                                               role="admin")]
        except GitHubError as e:
            if e.status == 404:
                return [org]
            raise

    def team_members(self, inst: int, org: str, slug: str) -> list[str]:
        """The members of team @org/slug; none when the App cannot see the team."""
        client = self._inst(inst)
        try:
            return [m.login for m in self._all(f"members of team {org}/{slug}", client,
                                               client.rest.teams.list_members_in_org, org=org, team_slug=slug)]
        except GitHubError as e:
            if e.status in (403, 404):
                return []
            raise

    def invitees(self, inst: int, repo: str) -> list[str]:
        client = self._inst(inst)
        invitations = self._all(f"invitations of {repo}", client, client.rest.repos.list_invitations,
                                owner=split(repo)[0], repo=split(repo)[1])
        return [i.invitee.login for i in invitations if i.invitee not in (None, UNSET)]

    def remove_collaborator(self, inst: int, repo: str, login: str) -> None:
        call(f"DELETE collaborator {login} of {repo}", self._inst(inst).rest.repos.remove_collaborator,
             *split(repo), login)

    def without_2fa(self, inst: int, org: str) -> tuple[list[str], list[str]] | str:
        """Members and outside collaborators of `org` without two-factor authentication, or, when the
        App may not see that, GitHub's reason."""
        client = self._inst(inst)
        try:
            members = self._all(f"members of {org} without 2FA", client, client.rest.orgs.list_members,
                                org=org, filter_="2fa_disabled")
            outside = self._all(f"outside collaborators of {org} without 2FA", client,
                                client.rest.orgs.list_outside_collaborators, org=org, filter_="2fa_disabled")
        except GitHubError as e:
            if e.status in (403, 404, 422):
                return str(e.body.get("message") if isinstance(e.body, dict) else e) or f"GitHub answered {e.status}"
            raise
        return sorted(m.login for m in members), sorted(m.login for m in outside)

    # configuration and check runs ---------------------------------------------------------------

    def file_text(self, inst: int, repo: str, path: str) -> tuple[str, str] | None:
        """A file's text and blob sha on the default branch, or None when there is no such file."""
        client = self._inst(inst)
        try:
            f = call(f"GET {repo}:{path}", client.rest.repos.get_content, *split(repo), path).parsed_data
        except GitHubError as e:
            if e.status == 404:
                return None
            raise
        if getattr(f, "type", None) != "file" or getattr(f, "content", None) in (None, UNSET):
            return None
        return base64.b64decode(f.content).decode("utf-8", "replace"), f.sha

    def branch_controls(self, inst: int, repo: str, branch: str) -> tuple[str, dict | None, set[str]]:
        """The branch's head sha, its classic protection (None when it has none) and its ruleset rule types."""
        client = self._inst(inst)
        owner, name = split(repo)
        head = call(f"GET /repos/{repo}/branches/{branch}", client.rest.repos.get_branch, owner, name,
                    branch).parsed_data.commit.sha
        try:
            p = call(f"GET protection of {repo}:{branch}", client.rest.repos.get_branch_protection, owner, name,
                     branch).parsed_data
            classic = {"required_pull_request_reviews": p.required_pull_request_reviews not in (None, UNSET),
                       "allow_force_pushes": _enabled(p.allow_force_pushes),
                       "allow_deletions": _enabled(p.allow_deletions)}
        except GitHubError as e:
            if e.status != 404:
                raise
            classic = None
        rules = call(f"GET /repos/{repo}/rules/branches/{branch}", client.rest.repos.get_branch_rules, owner, name,
                     branch).parsed_data
        return head, classic, {r.type for r in rules}

    def create_check_run(self, inst: int, repo: str, head_sha: str, name: str, conclusion: str, title: str,
                         summary: str, details_url: str | None = None) -> int:
        data = {"name": name, "head_sha": head_sha, "status": "completed", "conclusion": conclusion,
                "output": {"title": title[:255], "summary": summary[:65000]}}
        if details_url:
            data["details_url"] = details_url
        run = call(f"POST check run {name} on {repo}@{head_sha[:7]}", self._inst(inst).rest.checks.create,
                   *split(repo), data=data).parsed_data
        return run.id

    def update_check_run(self, inst: int, repo: str, run_id: int, conclusion: str, title: str, summary: str,
                         details_url: str | None = None) -> None:
        data = {"status": "completed", "conclusion": conclusion,
                "output": {"title": title[:255], "summary": summary[:65000]}}
        if details_url:
            data["details_url"] = details_url
        call(f"PATCH check run {run_id} on {repo}", self._inst(inst).rest.checks.update, *split(repo), run_id,
             data=data)

    # what changed, cheaply (sweeps and daily checks) ----------------------------------------------

    def activity(self, inst: int, repo: str, since: datetime) -> list[dict]:
        """Every ref update of `repo` GitHub received at or after `since`, newest first: pushes, force
        pushes, merges, with the actor and GitHub's own timestamp (commit dates are the committer's)."""
        client = self._inst(inst)
        owner, name = split(repo)
        out, after = [], UNSET
        while True:
            resp = call(f"activity of {repo}", client.rest.repos.list_activities, owner, name, per_page=100,
                        after=after)
            for a in resp.parsed_data:
                at = _when(a.timestamp)
                if at < since:
                    return out
                out.append({"ref": a.ref, "branch": a.ref.removeprefix("refs/heads/"), "before": a.before,
                            "after": a.after, "type": a.activity_type, "at": at,
                            "actor": a.actor.login if a.actor not in (None, UNSET) else None})
            after = _link_param(resp.headers.get("link", ""), "next", "after")
            if after is None:
                return out

    def pushed_commits(self, inst: int, pushes: list[dict], depth: int = 100) -> list[dict]:
        """For each push {repo, before, after}: the commits it brought (newest first, at most `depth`),
        the commits a force push dropped from the branch, and the merged PRs GitHub associates with
        its head. One GraphQL query per batch of repositories, whatever the number of pushes."""
        out = []
        for start in range(0, len(pushes), 30):
            batch = pushes[start:start + 30]
            params, fields, variables = [], [], {}
            for i, p in enumerate(batch):
                owner, name = split(p["repo"])
                variables.update({f"o{i}": owner, f"n{i}": name, f"a{i}": p["after"]})
                params += [f"$o{i}: String!", f"$n{i}: String!", f"$a{i}: GitObjectID!"]
                before = ""
                if p["before"].strip("0"):
                    variables[f"b{i}"] = p["before"]
                    params.append(f"$b{i}: GitObjectID!")
                    before = f" before: object(oid: $b{i}) {{ ... on Commit {{ history(first: {depth}) {{ nodes {{ oid }} }} }} }}"
                fields.append(f"p{i}: repository(owner: $o{i}, name: $n{i}) {{ after: object(oid: $a{i}) {{ ...Pushed }}{before} }}")
            query = (f"query({', '.join(params)}) {{ {' '.join(fields)} }}\n" + graphql.PUSHED.replace("DEPTH", str(depth)))
            data = self._graphql(inst, f"commits of {len(batch)} pushes", query, variables)
            for i, p in enumerate(batch):
                out.append(graphql.pushed(p, data.get(f"p{i}") or {}))
        return out

    def default_branch_protection(self, inst: int, repos: list[str]) -> dict[str, tuple[str, str, dict | None]]:
        """Per repository: its default branch, that branch's head and its classic protection (None when
        it has none), a hundred repositories to a GraphQL query of one point."""
        out = {}
        for start in range(0, len(repos), 100):
            batch = repos[start:start + 100]
            params, fields, variables = [], [], {}
            for i, repo in enumerate(batch):
                variables.update({f"o{i}": split(repo)[0], f"n{i}": split(repo)[1]})
                params += [f"$o{i}: String!", f"$n{i}: String!"]
                fields.append(f"r{i}: repository(owner: $o{i}, name: $n{i}) {{ ...Protection }}")
            query = f"query({', '.join(params)}) {{ {' '.join(fields)} }}\n" + graphql.PROTECTION
            data = self._graphql(inst, f"protection of {len(batch)} repositories", query, variables)
            for i, repo in enumerate(batch):
                ref = (data.get(f"r{i}") or {}).get("defaultBranchRef")
                if ref:
                    out[repo] = (ref["name"], ref["target"]["oid"], graphql.classic_protection(ref["branchProtectionRule"]))
        return out

    def if_changed(self, inst: int, path: str, etag: str | None) -> tuple[str | None, object]:
        """GET `path` unless it is unchanged since `etag` (GitHub does not count a 304 against the
        rate limit): (the new ETag, its JSON), or (etag, None) when unchanged."""
        client = self._inst(inst)
        headers = {"If-None-Match": etag} if etag else {}
        resp = call(f"GET {path}", client.request, "GET", path.lstrip("/"), headers=headers)
        if resp.status_code == 304:
            return etag, None
        return resp.headers.get("etag"), resp.json()


def _link_param(link: str, rel: str, param: str) -> str | None:
    """A query parameter of the `rel` URL in a Link header (GitHub's cursor pagination)."""
    for part in link.split(","):
        if f'rel="{rel}"' in part:
            url = part.split(";")[0].strip().strip("<>")
            values = parse_qs(urlsplit(url).query).get(param)
            return values[0] if values else None
    return None


def convert_manifest(api_url: str, code: str, timeout: float = 15.0) -> dict:
    """Exchange the App-manifest flow's one-time code for the new App's id, key and webhook secret.

    The code is the only credential, so this is the one call made without App auth; it is a POST
    and is not retried (the code works once).
    """
    github = GitHub(base_url=api_url + "/", timeout=timeout, auto_retry=False, http_cache=False)
    app = call("POST /app-manifests/{code}/conversions", github.rest.apps.create_from_manifest, code).parsed_data
    return {"app_id": app.id, "slug": app.slug, "name": app.name, "html_url": app.html_url,
            "private_key": app.pem, "webhook_secret": app.webhook_secret}
