"""A fake GitHub REST API on loopback, good enough for githubkit's typed client.

Response bodies are GitHub's own published examples (tests/fixtures/rest/*.json,
extracted from @octokit/openapi by tests/fixtures/rest/extract.py).  Each
response deep-copies its template, rewrites the example's hosts/repo names to
the fake's, then overwrites the fields the fake actually models from state.
That keeps every field githubkit's pydantic models require present without
hand-writing payloads.

    with FakeGitHub() as fake:
        fake.add_repo("o/r")
        fake.add_pull("o/r", 1, merged_by="bob")
        gh = GitHub(AppAuthStrategy(fake.app_id, fake.private_key),
                    base_url=fake.url, auto_retry=False, http_cache=False)

Paths in `fail`/`count` are matched with re.fullmatch against the request
path (no query string), methods case-insensitively (None = any method).
Branches are known only if they are the default branch, listed in
protected/ruleset_branches (non-glob names), used by a pull, or added with
add_branch/add_commit/set_protection/set_ruleset (non-glob patterns); any other
branch is a 404 like on GitHub (no auto-creation).
Issue timestamps in state (fake.issues()) are aware datetimes; in JSON they
are rendered as GitHub does, "YYYY-MM-DDTHH:MM:SSZ".

Issue endpoints (GET/PATCH an issue, add/remove labels) serve issues only and
answer 404 for pull request numbers; the comment endpoints serve both.  Commit
history exists only for commits added with add_commit (first-parent chain from
the branch head); a branch without such commits lists no commits.  As on
GitHub, a new conversation comment bumps the pull's/issue's updated_at.  Webhook
deliveries are listed from add_hook_delivery; a redelivery request is only
recorded in fake.redelivery_requests (add the new attempt yourself if the test
needs it).  POST /slack/<anything> stands in for a Slack incoming webhook:
no auth, the JSON body is appended to fake.slack_messages, the answer is "ok".

Check runs belong to this fake's App; any head_sha is accepted (GitHub checks
the commit exists), a conclusion completes the run and completed_at/started_at
default to fake.clock(), and a PATCHed output is merged over the previous one.
The list for a ref resolves branch names to their head (a ref that is neither a
branch nor a 40-hex sha is 422); filter=latest (the default) keeps the newest
run per name.  fake.check_runs() keeps every POST/PATCH body in `history`.  File
contents are kept per ref (a branch name or a sha, with no inheritance between
refs); a sha that is a branch head reads that branch's files.  Only files are
served (no directories, symlinks or raw downloads).  Classic branch protection
exists for the branches in add_repo(protected=...) (GitHub's defaults: one
approval, no force pushes, no deletions) or set via set_protection; GET
.../protection is 404 "Branch not protected" otherwise.  Rulesets from
add_repo(ruleset_branches=...) and set_ruleset() are served by GET
/rules/branches/{branch}; they do not make a branch "protected".  A pull's
commits are those added with add_pull_commit; the newest becomes the pull's
head.

POST /graphql executes queries with graphql-core against GitHub's published
schema (tests/fixtures/graphql/schema.graphql.gz, from @octokit/graphql-schema),
so a query that would not validate on GitHub fails here too, answered as GitHub
does: HTTP 200 with {"errors": [...]} (execution errors carry GitHub's `type`,
e.g. NOT_FOUND; validation errors, as on GitHub, have none and no `data`).
Resolved: repository(owner, name) (databaseId, nameWithOwner, defaultBranchRef,
ref(qualifiedName) -> a Commit target with history(since, until),
pullRequests(states, orderBy, baseRefName, headRefName)), pull requests (with
reviews, their inline comments, issue comments, commits, mergeCommit, labels),
Commit.associatedPullRequests (the same links as /commits/{sha}/pulls), Repository.object(oid:)
for a commit (null for one the fake does not know), and
node(id:) for PullRequest and PullRequestReview ids.  Connections page with
first/after/last/before (at most 100, opaque cursors).  A field or argument the
fake does not model is an error, never a silent null or ignored.  Bots are `Bot` actors whose login
has no "[bot]" suffix, as in GitHub's GraphQL.  A review comment added with
add_review_comment(review_id=...) belongs to that review; one added without a
review_id is served (in GraphQL only) under a COMMENTED review of its own, as a
single comment on GitHub is, whose node id is "PRR_fake<comment id>".  A review's
authorCanPushToRepository comes from the access model below; edit_comment, edit_review and
edit_pull_body record edits, served as lastEditedAt, editor and userContentEdits.

Access control: a repo's owner is an organization unless add_repo(owner_type="User") makes it
a personal account (admin of its repos, no teams; /orgs/<it>/... is 404).  An org has members
(add_member; role "admin" is an owner, admin of every repo), teams (add_team, with members and
{repo: permission}) and an optional base permission for members (set_base_permission); a repo
has direct collaborators (add_collaborator; "outside" ones are not org members) and pending
invitations (add_invitation).  Someone's role on a repo is the highest of these grants; on a
public repo the permission endpoint answers read for anyone else, on a private one none (as
GitHub does), and the collaborator list's `permission` filter keeps those with at least that
permission.  remove_member drops org and team membership only, as on GitHub.  Two-factor
status is per user; with fake.twofa_visible = False, filter=2fa_disabled (or 2fa_insecure, which
matches nobody here) is refused with GitHub's 422 for a caller who is not an owner.  A token
sees an org (/orgs/{org}/...) only if its installation has one of the org's repos.
"""

from __future__ import annotations

import base64
import copy
import fnmatch
import functools
import gzip
import hashlib
import itertools
import json
import pathlib
import re
import secrets
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from urllib.parse import quote, urlencode

import graphql
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map, Rule
from werkzeug.serving import WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

FIXTURES = pathlib.Path(__file__).parent / "fixtures" / "rest"
GRAPHQL_SCHEMA = pathlib.Path(__file__).parent / "fixtures" / "graphql" / "schema.graphql.gz"
DOCS = "https://docs.github.com/rest"

# Example hosts/names that get rewritten to the fake's in every template.
_EXAMPLE_API = "https://api.github.com"
_EXAMPLE_WEB = "https://github.com"
_EXAMPLE_REPO = "octocat/Hello-World"

# Process-wide counters: githubkit caches JWTs and installation tokens in a
# process-global cache keyed by (app_id, installation_id) -- NOT by base URL --
# so every fake gets its own app id and tokens are never reused across fakes.
_app_ids = itertools.count(100001)
_token_ids = itertools.count(1)

_templates: dict[str, object] = {}


def _template(name: str):
    if name not in _templates:
        _templates[name] = json.loads((FIXTURES / f"{name}.json").read_text())
    return copy.deepcopy(_templates[name])


def _first(name: str) -> dict:
    """List endpoints' examples are lists; their first item is the template."""
    return _template(name)[0]


def generate_key() -> str:
    """A fresh RSA private key, PEM (PKCS#8), as GitHub Apps use."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def public_key_of(private_pem: str) -> str:
    key = serialization.load_pem_private_key(private_pem.encode(), password=None)
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def _dt(value) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value if value is None or value.tzinfo else value.replace(tzinfo=timezone.utc)
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _role(permission: str) -> str:
    """A repository role from a role or an older permission name (pull, push)."""
    role = {"pull": "read", "push": "write"}.get(permission, permission)
    if role not in _RANK:
        raise ValueError(f"unknown repository permission {permission!r}")
    return role


def _sha() -> str:
    return secrets.token_hex(20)


def _blob_sha(data: bytes) -> str:
    """Git's blob id, as the contents API reports it."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def _subst(obj, pairs):
    """Recursively replace substrings in every string of a JSON value."""
    if isinstance(obj, str):
        for old, new in pairs:
            obj = obj.replace(old, new)
        return obj
    if isinstance(obj, list):
        return [_subst(v, pairs) for v in obj]
    if isinstance(obj, dict):
        return {k: _subst(v, pairs) for k, v in obj.items()}
    return obj


@dataclass
class Hold:
    method: str | None
    regex: str
    arrived: threading.Event = field(default_factory=threading.Event)
    released: threading.Event = field(default_factory=threading.Event)

    def release(self) -> None:
        self.released.set()


class _ApiError(Exception):
    def __init__(self, status, message, errors=None, docs=DOCS, headers=None):
        self.status, self.headers = status, headers or {}
        self.body = {"message": message, "documentation_url": docs}
        if errors is not None:
            self.body["errors"] = errors
        self.body["status"] = str(status)


@functools.cache
def graphql_schema() -> graphql.GraphQLSchema:
    """GitHub's published GraphQL schema, built once per process (about half a second)."""
    with gzip.open(GRAPHQL_SCHEMA, "rt") as f:
        sdl = f.read()
    # graphql-core's schema validation rejects GitHub's deprecated implementations of
    # non-deprecated interface fields (PullRequest.databaseId vs Reactable.databaseId...), and
    # assume_valid_sdl skips the SDL checks its duplicate EnterpriseOwnerInfo fields fail.
    sdl = re.sub(r'@deprecated\(\s*reason:\s*"(?:[^"\\]|\\.)*"\s*\)', "", sdl)
    return graphql.build_schema(sdl, assume_valid_sdl=True)


class _GraphQLError(Exception):
    """An execution error as GitHub reports it, with its `type` (NOT_FOUND, ...)."""

    def __init__(self, message: str, type_: str | None = None):
        super().__init__(message)
        self.type = type_


_MAX_PAGE = 100  # GitHub's limit on a connection's first/last
_CURSOR = "cursor:v2:"


def _cursor(offset: int) -> str:
    return base64.b64encode(f"{_CURSOR}{offset}".encode()).decode()


def _offset(cursor: str) -> int:
    try:
        text = base64.b64decode(cursor, validate=True).decode()
    except ValueError:
        text = ""
    offset = text.removeprefix(_CURSOR)
    if not text.startswith(_CURSOR) or not offset.isdigit():
        raise _GraphQLError(f"`{cursor}` does not appear to be a valid cursor.",
                            "INVALID_CURSOR_ARGUMENTS")
    return int(offset)


def _timestamp(value: str | None) -> datetime | None:
    """A GitTimestamp argument; one without an offset is taken as UTC."""
    if value is None:
        return None
    try:
        return _dt(_dt(value))  # the second pass makes a naive value aware
    except ValueError:
        raise _GraphQLError(f"{value!r} is not a valid GitTimestamp") from None


def _resolve_field(source, info, **args):
    """graphql-core's default resolver, except that a field the fake does not model is an
    error, not a silent null."""
    if isinstance(source, dict) and info.field_name not in source:
        raise _GraphQLError(
            f"fakegithub does not implement {info.parent_type.name}.{info.field_name}")
    return graphql.default_field_resolver(source, info, **args)


def _graphql_answer(result: graphql.ExecutionResult) -> dict:
    out = {} if result.data is None else {"data": result.data}
    if result.errors:
        out["errors"] = [_graphql_error(e) for e in result.errors]
    return out


def _graphql_error(error: graphql.GraphQLError) -> dict:
    out = error.formatted
    cause = error.original_error
    if isinstance(cause, _GraphQLError):
        out = {"type": cause.type, **out} if cause.type else out
    elif cause is not None and not isinstance(cause, graphql.GraphQLError):
        # A bug in the fake: name the exception, not just its text.
        out["message"] = f"{type(cause).__name__}: {cause}"
    return out


class _QuietHandler(WSGIRequestHandler):
    def log(self, *args, **kwargs):  # keep pytest output clean
        pass


_ROUTES = Map([
    Rule("/app", methods=["GET"], endpoint="get_app"),
    Rule("/app/installations/<int:installation_id>/access_tokens",
         methods=["POST"], endpoint="create_token"),
    Rule("/repos/<owner>/<repo>/installation", methods=["GET"], endpoint="get_installation"),
    Rule("/repos/<owner>/<repo>", methods=["GET"], endpoint="get_repo"),
    Rule("/repos/<owner>/<repo>/branches/<path:branch>", methods=["GET"], endpoint="get_branch"),
    Rule("/repos/<owner>/<repo>/rules/branches/<path:branch>", methods=["GET"],
         endpoint="get_branch_rules"),
    Rule("/repos/<owner>/<repo>/branches/<path:branch>/protection", methods=["GET"],
         endpoint="get_branch_protection"),
    Rule("/repos/<owner>/<repo>/check-runs", methods=["POST"], endpoint="create_check_run"),
    Rule("/repos/<owner>/<repo>/check-runs/<int:check_run_id>", methods=["GET"],
         endpoint="get_check_run"),
    Rule("/repos/<owner>/<repo>/check-runs/<int:check_run_id>", methods=["PATCH"],
         endpoint="update_check_run"),
    Rule("/repos/<owner>/<repo>/commits/<path:ref>/check-runs", methods=["GET"],
         endpoint="list_check_runs_for_ref"),
    Rule("/repos/<owner>/<repo>/contents/<path:path>", methods=["GET"], endpoint="get_content"),
    Rule("/repos/<owner>/<repo>/pulls/<int:number>/commits", methods=["GET"],
         endpoint="list_pull_commits"),
    Rule("/repos/<owner>/<repo>/pulls/<int:number>", methods=["GET"], endpoint="get_pull"),
    Rule("/repos/<owner>/<repo>/pulls/<int:number>/reviews", methods=["GET"],
         endpoint="list_reviews"),
    Rule("/repos/<owner>/<repo>/pulls/<int:number>/comments", methods=["GET"],
         endpoint="list_review_comments"),
    Rule("/repos/<owner>/<repo>/issues/<int:number>/comments", methods=["GET"],
         endpoint="list_issue_comments"),
    Rule("/repos/<owner>/<repo>/commits/<sha>/pulls", methods=["GET"], endpoint="commit_pulls"),
    Rule("/repos/<owner>/<repo>/issues", methods=["GET"], endpoint="list_issues"),
    Rule("/repos/<owner>/<repo>/issues", methods=["POST"], endpoint="create_issue"),
    Rule("/repos/<owner>/<repo>/labels", methods=["POST"], endpoint="create_label"),
    Rule("/app/installations", methods=["GET"], endpoint="list_installations"),
    Rule("/app/hook/deliveries", methods=["GET"], endpoint="list_deliveries"),
    Rule("/app/hook/deliveries/<int:delivery_id>/attempts", methods=["POST"],
         endpoint="redeliver"),
    Rule("/installation/repositories", methods=["GET"], endpoint="list_installation_repos"),
    Rule("/repos/<owner>/<repo>/pulls", methods=["GET"], endpoint="list_pulls"),
    Rule("/repos/<owner>/<repo>/branches", methods=["GET"], endpoint="list_branches"),
    Rule("/repos/<owner>/<repo>/commits", methods=["GET"], endpoint="list_commits"),
    Rule("/repos/<owner>/<repo>/issues/<int:number>", methods=["GET"], endpoint="get_issue"),
    Rule("/repos/<owner>/<repo>/issues/<int:number>", methods=["PATCH"],
         endpoint="update_issue"),
    Rule("/repos/<owner>/<repo>/issues/<int:number>/comments", methods=["POST"],
         endpoint="create_issue_comment"),
    Rule("/repos/<owner>/<repo>/issues/<int:number>/labels", methods=["POST"],
         endpoint="add_labels"),
    Rule("/repos/<owner>/<repo>/issues/<int:number>/labels/<path:name>", methods=["DELETE"],
         endpoint="remove_label"),
    Rule("/repos/<owner>/<repo>/collaborators", methods=["GET"], endpoint="list_collaborators"),
    Rule("/repos/<owner>/<repo>/collaborators/<username>/permission", methods=["GET"],
         endpoint="get_collaborator_permission"),
    Rule("/repos/<owner>/<repo>/collaborators/<username>", methods=["DELETE"],
         endpoint="remove_collaborator"),
    Rule("/repos/<owner>/<repo>/invitations", methods=["GET"], endpoint="list_invitations"),
    Rule("/repos/<owner>/<repo>/teams", methods=["GET"], endpoint="list_repo_teams"),
    Rule("/orgs/<org>/teams/<team_slug>/members", methods=["GET"], endpoint="list_team_members"),
    Rule("/orgs/<org>/members", methods=["GET"], endpoint="list_org_members"),
    Rule("/orgs/<org>/outside_collaborators", methods=["GET"],
         endpoint="list_outside_collaborators"),
    Rule("/graphql", methods=["POST"], endpoint="graphql"),
    Rule("/repos/<owner>/<repo>/activity", methods=["GET"], endpoint="list_activity"),
    Rule("/slack/<path:hook>", methods=["POST"], endpoint="slack"),
    # The App-manifest flow: GitHub's web pages (a person confirms), then the API exchange.
    Rule("/settings/apps/new", methods=["POST"], endpoint="manifest_form"),
    Rule("/organizations/<org>/settings/apps/new", methods=["POST"], endpoint="manifest_form"),
    Rule("/app-manifests/<code>/conversions", methods=["POST"], endpoint="manifest_conversion"),
], strict_slashes=False, merge_slashes=False)

_APP_ENDPOINTS = {"get_app", "create_token", "get_installation", "list_installations",
                  "list_deliveries", "redeliver"}
# The Slack stand-in takes no GitHub auth; nor do the manifest pages (a browser session) and the
# manifest exchange (the one-time code is the credential).
_PUBLIC_ENDPOINTS = {"slack", "manifest_form", "manifest_conversion"}
_STATE_REASONS = {"completed", "not_planned", "duplicate", "reopened"}
# Repository roles, lowest first, and the older permission names teams and `permissions` use.
_ROLES = ("read", "triage", "write", "maintain", "admin")
_RANK = {role: i for i, role in enumerate(_ROLES, 1)}
_LEGACY = {"read": "pull", "triage": "triage", "write": "push", "maintain": "maintain",
           "admin": "admin"}
_PERMISSIONS = {"issues": "write", "pull_requests": "read", "contents": "read",
                "metadata": "read", "administration": "read", "checks": "write"}
# What apps may send (GitHub Actions alone may set waiting/requested/pending, GitHub alone stale).
_CHECK_STATUSES = {"queued", "in_progress", "completed"}
_CHECK_CONCLUSIONS = {"action_required", "cancelled", "failure", "neutral", "success",
                      "skipped", "timed_out"}
# GitHub's defaults for a branch protected in the UI with "Require a pull request".
_DEFAULT_PROTECTION = {"require_pr": True, "approvals": 1, "allow_force_pushes": False,
                       "allow_deletions": False, "enforce_admins": False,
                       "dismiss_stale_reviews": False, "require_code_owner_reviews": False,
                       "require_last_push_approval": False, "linear_history": False}
# No published example shows a pull_request rule; these are the parameters
# githubkit's model requires.
_PULL_REQUEST_RULE = {"required_approving_review_count": 1, "dismiss_stale_reviews_on_push": False,
                      "require_code_owner_review": False, "require_last_push_approval": False,
                      "required_review_thread_resolution": False,
                      "allowed_merge_methods": ["merge", "squash", "rebase"]}


class FakeGitHub:
    """In-process fake of the GitHub REST endpoints tbr uses.  Thread-safe."""

    def __init__(self, *, app_id: int | None = None, app_slug: str = "tbr-fake",
                 verify_jwt: bool = False, jwt_public_key: str | None = None,
                 private_key: str | None = None):
        self.app_id = app_id if app_id is not None else next(_app_ids)
        self.app_slug = app_slug
        # JWT verification is opt-in: with verify_jwt=True the fake checks the
        # RS256 signature against jwt_public_key, or against self.private_key.
        self.verify_jwt = verify_jwt or jwt_public_key is not None
        self._jwt_public_key = jwt_public_key
        self._private_key = private_key
        self.clock = lambda: datetime.now(timezone.utc)
        self.requests: list[tuple[str, str, dict]] = []
        self.unhandled: list[tuple[str, str, dict]] = []
        self._lock = threading.RLock()
        self._repos: dict[str, dict] = {}
        self._tokens: dict[str, int] = {}  # token -> installation id
        self._faults: list[dict] = []
        self._holds: list[Hold] = []
        self._users: dict[str, int] = {}
        self._orgs: dict[str, dict] = {}  # login -> {"members", "teams", "base_permission"}
        self._no_2fa: set[str] = set()  # users without two-factor authentication
        self.twofa_visible = True  # False: the App may not use the 2fa_disabled filter
        self._installed_at: dict[int, datetime] = {}  # installation id -> created_at
        self._deliveries: list[dict] = []
        self.redelivery_requests: list[int] = []  # delivery ids, in request order
        self.slack_messages: list = []  # JSON bodies POSTed to /slack/...
        self.manifests: list[dict] = []  # manifests posted to the "new App" page, with the org if any
        self._manifest_codes: dict[str, dict] = {}
        self._ids = itertools.count(1000)
        # Rate limits as GitHub keeps them: a budget per installation (and one for the App's
        # JWT) per resource, an hour from its first charge. `charged` lists every charge.
        self.enforce_rate_limits = True
        self._budgets: dict[tuple, dict] = {}
        self.charged: list[tuple[str, str, str, int]] = []  # (method, path, resource, cost)
        self._server = None
        self._thread = None
        self.url = ""

    # ------------------------------------------------------------ lifecycle
    @staticmethod
    def generate_key() -> str:
        return generate_key()

    @property
    def private_key(self) -> str:
        """An RSA key for this app, generated on first use (bot's TBR_PRIVATE_KEY)."""
        with self._lock:
            if self._private_key is None:
                self._private_key = generate_key()
            return self._private_key

    @property
    def host(self) -> str:
        return self.url.split("://", 1)[-1]

    def start(self) -> FakeGitHub:
        # make_server binds immediately, so the port is live before we return.
        self._server = make_server("127.0.0.1", 0, self._wsgi, threaded=True,
                                   request_handler=_QuietHandler)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        # A short poll interval keeps stop() fast (shutdown waits for one poll).
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.01,),
                                        name="fakegithub", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(timeout=5)
            self._server = self._thread = None

    def __enter__(self) -> FakeGitHub:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # ------------------------------------------------------------ state API
    def add_repo(self, full_name: str, *, default_branch: str = "main",
                 protected=("main",), ruleset_branches=(), archived: bool = False,
                 has_issues: bool = True, installation_id: int = 1,
                 private: bool = False, assignable=None,
                 ruleset_parameters: dict | None = None,
                 owner_type: str = "Organization") -> dict:
        """ruleset_branches are fnmatch patterns; assignable=None lets anyone be assigned;
        owner_type="User" makes the owner a personal account, not an organization."""
        owner, name = full_name.split("/")
        with self._lock:
            if owner_type == "Organization":
                self._org_state(owner)
            elif owner in self._orgs:
                raise ValueError(f"{owner!r} is an organization in the fake")
            repo = {
                "full_name": full_name, "owner": owner, "name": name, "owner_type": owner_type,
                "id": next(self._ids), "default_branch": default_branch,
                "protected": set(protected), "ruleset_branches": list(ruleset_branches),
                "ruleset_parameters": dict(ruleset_parameters or {}),
                "archived": archived, "has_issues": has_issues,
                "installation_id": installation_id, "private": private,
                "assignable": None if assignable is None else set(assignable),
                "branches": {}, "pulls": {}, "issues": {}, "labels": {},
                "commits": {},  # sha -> [pull numbers]
                "history": {},  # sha -> commit added with add_commit
                "protection": {b: dict(_DEFAULT_PROTECTION) for b in protected},
                "rulesets": [],  # set_ruleset: {"id", "pattern", "rules"}
                "check_runs": {},  # id -> run
                "check_suites": {},  # head sha -> suite id
                "files": {},  # ref -> {path: bytes}
                "collaborators": {},  # login -> role, explicitly added
                "invitations": [],  # pending: {"id", "login", "permission", "inviter", ...}
                "pushed_at": self.clock(),  # GitHub's time of the last push to any branch
                "activity": [],  # ref updates, oldest first, as GET /repos/{o}/{r}/activity lists them
            }
            self._repos[full_name] = repo
            self._installed_at.setdefault(installation_id, self.clock())
            literal_rulesets = [b for b in ruleset_branches if not any(c in b for c in "*?[")]
            for b in {default_branch, *protected, *literal_rulesets}:
                repo["branches"][b] = _sha()
            return repo

    def add_branch(self, repo: str, name: str, sha: str | None = None) -> str:
        with self._lock:
            sha = sha or _sha()
            self._repo(repo)["branches"][name] = sha
            return sha

    def add_pull(self, repo: str, number: int | None = None, *, author: str = "alice",
                 base: str = "main", head: str | None = None, merged: bool = True,
                 merged_by: str | None = "alice", merged_at=None,
                 merge_commit_sha: str | None = None, head_sha: str | None = None,
                 title: str | None = None, body: str | None = "", state: str | None = None,
                 created_at=None, author_type: str = "User", updated_at=None,
                 labels=()) -> dict:
        """updated_at defaults to merged_at (or created_at); issue comments bump it. `labels`
        (names) are served in GraphQL only."""
        with self._lock:
            r = self._repo(repo)
            number = number if number is not None else self._next_number(r)
            now = self.clock()
            pr = {
                "number": number, "id": next(self._ids), "author": author,
                "author_type": author_type, "base": base, "head": head or f"feature-{number}",
                "merged": merged, "merged_by": merged_by if merged else None,
                "merged_at": (_dt(merged_at) or now) if merged else None,
                "merge_commit_sha": merge_commit_sha or _sha(),
                "head_sha": head_sha or _sha(),
                "title": title if title is not None else f"Pull request #{number}",
                "body": body, "state": state or ("closed" if merged else "open"),
                "created_at": _dt(created_at) or now - timedelta(hours=1),
                "reviews": [], "review_comments": [], "issue_comments": [],
                "pull_commits": [], "labels": list(labels),
            }
            pr["updated_at"] = _dt(updated_at) or pr["merged_at"] or pr["created_at"]
            r["pulls"][number] = pr
            r["branches"].setdefault(base, _sha())
            r["branches"].setdefault(pr["head"], pr["head_sha"])
            # Only a real merge commit maps back to the PR (open PRs' test merges don't).
            for sha in ([pr["merge_commit_sha"]] if merged else []) + [pr["head_sha"]]:
                self.associate(repo, sha, number)
            if merged:  # the merge reached the base branch: GitHub's activity log has it
                self._record_activity(r, base, r["branches"][base], pr["merge_commit_sha"], "pr_merge",
                                      pr["merged_by"], pr["merged_at"])
            return pr

    def add_review(self, repo: str, number: int, user: str, state: str = "APPROVED", *,
                   submitted_at=None, body: str = "", user_type: str = "User",
                   commit_id: str | None = None) -> dict:
        with self._lock:
            pr = self._pull(repo, number)
            review = {"id": next(self._ids), "user": user, "user_type": user_type,
                      "state": state.upper(), "body": body,
                      "submitted_at": _dt(submitted_at) or self.clock(),
                      "commit_id": commit_id or pr["head_sha"]}
            pr["reviews"].append(review)
            return review

    def add_issue_comment(self, repo: str, number: int, user: str, body: str = "", *,
                          created_at=None, user_type: str = "User") -> dict:
        """A conversation comment on a pull request or an issue (as a human would post it)."""
        with self._lock:
            r = self._repo(repo)
            target = self._conversation(r, number)
            if target is None:
                raise KeyError(f"fake has no pull or issue #{number} in {repo!r}")
            return self._store_comment(target, user, user_type, body,
                                       _dt(created_at) or self.clock())

    def add_review_comment(self, repo: str, number: int, user: str, body: str = "", *,
                           created_at=None, user_type: str = "User",
                           review_id: int | None = None) -> dict:
        """An inline comment; review_id (one of the pull's reviews) makes it part of that
        review, otherwise GraphQL serves it under a COMMENTED review of its own."""
        with self._lock:
            if review_id is not None and all(rv["id"] != review_id
                                             for rv in self._pull(repo, number)["reviews"]):
                raise KeyError(f"pull #{number} in {repo!r} has no review {review_id}")
            comment = self._add_comment("review_comments", repo, number, user, body, created_at,
                                        user_type)
            comment["review_id"] = review_id
            return comment

    def edit_comment(self, repo: str, number: int, comment_id: int, body: str, *, by: str,
                     at=None) -> dict:
        """`by` edits a comment (conversation or inline) of pull or issue #number: GraphQL then
        serves its lastEditedAt, editor and userContentEdits (writers can edit anyone's)."""
        with self._lock:
            r = self._repo(repo)
            target = self._conversation(r, number)
            found = [c for c in [*self._comment_thread(target), *target.get("review_comments", [])]
                     if c["id"] == comment_id]
            if not found:
                raise KeyError(f"#{number} in {repo!r} has no comment {comment_id}")
            return self._edit(found[0], body, by, at)

    def edit_review(self, repo: str, number: int, review_id: int, body: str, *, by: str,
                    at=None) -> dict:
        with self._lock:
            review = next(rv for rv in self._pull(repo, number)["reviews"] if rv["id"] == review_id)
            return self._edit(review, body, by, at)

    def edit_pull_body(self, repo: str, number: int, body: str, *, by: str, at=None) -> dict:
        with self._lock:
            return self._edit(self._pull(repo, number), body, by, at)

    def _edit(self, item: dict, body: str, by: str, at) -> dict:
        when = _dt(at) or self.clock()
        item["body"] = body
        item.setdefault("edits", []).append({"editor": by, "at": when})
        if "updated_at" in item:
            item["updated_at"] = max(item["updated_at"], when)
        return item

    def add_pulls(self, repo: str, count: int, *, reviewers=("bob",), commenters=("carol",),
                  merged_at=None, spacing: timedelta = timedelta(minutes=1),
                  **pull) -> list[dict]:
        """`count` merged pulls, newest first: the first merged at merged_at (default now),
        each next one `spacing` earlier, each approved by every reviewer and commented on
        ("LGTM") by every commenter before its merge, so updated_at stays merged_at.
        Reviewers and commenters without write access get it (as collaborators), so their
        approvals count. Other keywords go to add_pull."""
        newest = _dt(merged_at) or self.clock()
        with self._lock:
            access = self._access(self._repo(repo))
            for login in {*reviewers, *commenters}:
                if _RANK.get(access.get(login), 0) < _RANK["write"]:
                    self.add_collaborator(repo, login, "write")
            pulls = []
            for i in range(count):
                when = newest - i * spacing
                pr = self.add_pull(repo, **{"created_at": when - timedelta(hours=1), **pull,
                                            "merged_at": when})
                for login in reviewers:
                    self.add_review(repo, pr["number"], login, submitted_at=when - spacing / 4)
                for login in commenters:
                    self.add_issue_comment(repo, pr["number"], login, "LGTM",
                                           created_at=when - spacing / 2)
                pulls.append(pr)
            return pulls

    def associate(self, repo: str, sha: str, number: int) -> None:
        with self._lock:
            nums = self._repo(repo)["commits"].setdefault(sha, [])
            if number not in nums:
                nums.append(number)

    def dissociate(self, repo: str, sha: str) -> None:
        """Forget commit -> PR links, as GitHub's index does for a while right after a push."""
        with self._lock:
            self._repo(repo)["commits"].pop(sha, None)

    def add_existing_issue(self, repo: str, title: str, body: str = "", labels=(), *,
                           state: str = "open", assignees=(), author: str = "octocat",
                           created_at=None, updated_at=None, closed_at=None) -> dict:
        with self._lock:
            r = self._repo(repo)
            created = _dt(created_at) or self.clock()
            author_type = "Bot" if author.endswith("[bot]") else "User"  # the App's own: "<slug>[bot]"
            return self._store_issue(r, title, body, list(labels), list(assignees), author,
                                     author_type, created, _dt(updated_at) or created, state,
                                     _dt(closed_at) if closed_at else (created if state == "closed" else None),
                                     seeded=True)

    def issues(self, repo: str, *, include_seeded: bool = True) -> list[dict]:
        """Snapshot of the repo's issues by number (labels are names, assignees logins)."""
        with self._lock:
            out = [copy.deepcopy(i) for _, i in sorted(self._repo(repo)["issues"].items())]
        return [i for i in out if include_seeded or not i["seeded"]]

    def labels(self, repo: str) -> dict[str, dict]:
        with self._lock:
            return copy.deepcopy(self._repo(repo)["labels"])

    def comments(self, repo: str, number: int) -> list[dict]:
        """Snapshot of a pull's or issue's conversation comments, oldest first
        (user is a login; created_at/updated_at are aware datetimes)."""
        with self._lock:
            target = self._conversation(self._repo(repo), number)
            if target is None:
                raise KeyError(f"fake has no pull or issue #{number} in {repo!r}")
            return copy.deepcopy(self._comment_thread(target))

    def close_issue(self, repo: str, number: int, by: str = "bob",
                    reason: str = "completed") -> dict:
        """Close an issue as a human would in the UI (no request is logged)."""
        with self._lock:
            issue = self._issue(repo, number)
            now = self.clock()
            if issue["state"] != "closed":
                issue.update(closed_at=now, closed_by=by, closed_by_type="User")
            issue.update(state="closed", state_reason=reason, updated_at=now)
            return issue

    def reopen_issue(self, repo: str, number: int, by: str = "bob") -> dict:
        """Reopen an issue as a human would.  closed_by keeps the last closer, as on GitHub."""
        with self._lock:
            issue = self._issue(repo, number)
            issue.update(state="open", state_reason="reopened", closed_at=None,
                         reopened_by=by, updated_at=self.clock())
            return issue

    def add_commit(self, repo: str, branch: str, sha: str | None = None,
                   message: str = "Update", committed_at=None, author: str | None = "alice", *,
                   pull: int | None = None, pusher: str | None = None, pushed_at=None) -> str:
        """Append a commit to `branch` (created from the default branch if unknown) and
        make it the head.  author=None renders null author/committer users; pull=N
        also links the commit to PR #N for /commits/{sha}/pulls.  The push is in the activity
        log (GET /repos/{o}/{r}/activity) by `pusher` (default: the author) at `pushed_at`
        (default: when committed, if not in the future)."""
        with self._lock:
            r = self._repo(repo)
            sha = sha or _sha()
            parent = r["branches"].get(branch) or r["branches"].get(r["default_branch"])
            created = branch not in r["branches"]
            r["history"][sha] = {
                "sha": sha, "message": message, "author": author,
                "committed_at": _dt(committed_at) or self.clock(),
                "parents": [parent] if parent else [], "tree": _sha()}
            r["branches"][branch] = sha
            if pull is not None:
                self.associate(repo, sha, pull)
            kind = "pr_merge" if pull is not None else "branch_creation" if created else "push"
            # Received by GitHub when committed, unless told otherwise (pushed_at: a backdated commit).
            received = pushed_at or min(_dt(committed_at) or self.clock(), self.clock())
            self._record_activity(r, branch, parent if not created else None, sha, kind,
                                  pusher or author, received)
            return sha

    def force_push(self, repo: str, branch: str, *, drop: int = 1, sha: str | None = None,
                   message: str = "Rewritten", committed_at=None, author: str | None = "alice",
                   pusher: str | None = None, pushed_at=None) -> str:
        """Rewrite `branch`: its last `drop` commits are replaced by one new commit (on GitHub,
        `git push --force` after a rebase or reset). Returns the new head."""
        with self._lock:
            r = self._repo(repo)
            before = r["branches"][branch]
            base = before
            for _ in range(drop):
                base = (r["history"].get(base, {}).get("parents") or [None])[0]
            sha = sha or _sha()
            r["history"][sha] = {
                "sha": sha, "message": message, "author": author,
                "committed_at": _dt(committed_at) or self.clock(),
                "parents": [base] if base else [], "tree": _sha()}
            r["branches"][branch] = sha
            self._record_activity(r, branch, before, sha, "force_push", pusher or author, pushed_at)
            return sha

    def _record_activity(self, r, branch, before, after, kind, actor, pushed_at=None) -> None:
        at = _dt(pushed_at) or self.clock()
        r["activity"].append({"id": next(self._ids), "ref": f"refs/heads/{branch}",
                              "before": before or "0" * 40, "after": after, "type": kind,
                              "actor": actor, "timestamp": at})
        r["pushed_at"] = at

    def rate_limit_state(self, installation_id: int | str = 1, resource: str = "core") -> dict:
        """What GitHub would answer in x-ratelimit-*: limit, used, remaining, reset (epoch s)."""
        with self._lock:
            return self._budget(installation_id, resource)

    def use_rate_limit(self, used: int, installation_id: int | str = 1, resource: str = "core") -> None:
        """Spend `used` of the current window's budget, as other clients of the installation would."""
        with self._lock:
            self._budget(installation_id, resource)
            self._budgets[(installation_id, resource)]["used"] = used

    def spent(self, resource: str | None = None, path_regex: str = ".*") -> int:
        """Units charged against rate limits (GraphQL in points), as GitHub counts them."""
        with self._lock:
            return sum(cost for _, p, res, cost in self.charged
                       if (resource is None or res == resource) and re.fullmatch(path_regex, p))

    def add_hook_delivery(self, guid: str, event: str = "pull_request",
                          action: str | None = "closed", status_code: int = 503,
                          delivered_at=None, redelivery: bool = False,
                          installation_id: int | None = 1, repository_id: int | None = None, *,
                          duration: float = 0.27, throttled_at=None) -> dict:
        """One attempt to deliver a webhook to the App, as GET /app/hook/deliveries lists it."""
        with self._lock:
            delivery = {
                "id": next(self._ids), "guid": guid,
                "delivered_at": _dt(delivered_at) or self.clock(), "redelivery": redelivery,
                "duration": duration, "status_code": status_code,
                "status": "OK" if 200 <= status_code < 300
                else f"Invalid HTTP Response: {status_code}",
                "event": event, "action": action, "installation_id": installation_id,
                "repository_id": repository_id, "throttled_at": _dt(throttled_at)}
            self._deliveries.append(delivery)
            return delivery

    def add_pull_commit(self, repo: str, number: int, sha: str | None = None,
                        message: str = "Update", author: str | None = "alice",
                        committed_at=None, pushed_by: str | None = None) -> str:
        """Append a commit to pull #number's commit list (GET .../pulls/{n}/commits).  It
        becomes the pull's head (head_sha, head branch tip) and maps back to the pull for
        /commits/{sha}/pulls.  The message may carry `Co-authored-by:` trailers;
        author=None renders null author/committer users; pushed_by is only recorded."""
        with self._lock:
            r = self._repo(repo)
            pr = self._pull(repo, number)
            sha = sha or _sha()
            parent = (pr["pull_commits"][-1]["sha"] if pr["pull_commits"]
                      else r["branches"].get(pr["base"]))
            pr["pull_commits"].append({
                "sha": sha, "message": message, "author": author,
                "committed_at": _dt(committed_at) or self.clock(),
                "parents": [parent] if parent else [], "tree": _sha(), "pushed_by": pushed_by})
            pr["head_sha"] = sha
            r["branches"][pr["head"]] = sha
            self.associate(repo, sha, number)
            return sha

    def check_runs(self, repo: str, head_sha: str | None = None,
                   name: str | None = None) -> list[dict]:
        """Snapshot of the repo's check runs, oldest first: id, name, head_sha, status,
        conclusion, output ({title, summary, text}), details_url, external_id, started_at,
        completed_at (aware datetimes) and history (each POST/PATCH body as sent)."""
        with self._lock:
            runs = sorted(self._repo(repo)["check_runs"].values(), key=lambda c: c["id"])
            return [copy.deepcopy(c) for c in runs
                    if (head_sha is None or c["head_sha"] == head_sha)
                    and (name is None or c["name"] == name)]

    def put_file(self, repo: str, path: str, text: str | bytes, ref: str | None = None) -> str:
        """Create or replace a file on `ref` (a branch name or a sha; None = the default
        branch).  Returns the blob sha GitHub would report."""
        data = text.encode() if isinstance(text, str) else bytes(text)
        with self._lock:
            r = self._repo(repo)
            r["files"].setdefault(ref or r["default_branch"], {})[path.strip("/")] = data
            return _blob_sha(data)

    def delete_file(self, repo: str, path: str, ref: str | None = None) -> None:
        with self._lock:
            r = self._repo(repo)
            r["files"].get(ref or r["default_branch"], {}).pop(path.strip("/"), None)

    def set_protection(self, repo: str, branch: str, *, require_pr: bool = True,
                       approvals: int = 1, allow_force_pushes: bool = False,
                       allow_deletions: bool = False, enforce_admins: bool = False,
                       dismiss_stale_reviews: bool = False,
                       require_code_owner_reviews: bool = False,
                       require_last_push_approval: bool = False,
                       linear_history: bool = False) -> None:
        """Classic branch protection for `branch` (created if unknown), replacing any
        previous settings; the branch reports protected: true."""
        with self._lock:
            r = self._repo(repo)
            r["branches"].setdefault(branch, _sha())
            r["protected"].add(branch)
            r["protection"][branch] = {
                "require_pr": require_pr, "approvals": approvals,
                "allow_force_pushes": allow_force_pushes, "allow_deletions": allow_deletions,
                "enforce_admins": enforce_admins, "dismiss_stale_reviews": dismiss_stale_reviews,
                "require_code_owner_reviews": require_code_owner_reviews,
                "require_last_push_approval": require_last_push_approval,
                "linear_history": linear_history}

    def remove_protection(self, repo: str, branch: str) -> None:
        with self._lock:
            r = self._repo(repo)
            r["protected"].discard(branch)
            r["protection"].pop(branch, None)

    def set_ruleset(self, repo: str, branch_pattern: str, rules=None) -> int:
        """A repository ruleset targeting branch_pattern (fnmatch, or ~DEFAULT_BRANCH / ~ALL),
        replacing any earlier one for the same pattern.  rules are dicts such as
        {"type": "pull_request", "parameters": {...}} (missing pull_request parameters get
        GitHub's defaults), {"type": "non_fast_forward"}, {"type": "deletion"}, or bare type
        names; None = one pull_request rule.  An empty list leaves no rules.  Returns its id."""
        rules = [{"type": "pull_request"}] if rules is None else rules
        rules = [{"type": x} if isinstance(x, str) else copy.deepcopy(dict(x)) for x in rules]
        with self._lock:
            r = self._repo(repo)
            old = next((rs for rs in r["rulesets"] if rs["pattern"] == branch_pattern), None)
            ruleset = {"id": old["id"] if old else next(self._ids), "pattern": branch_pattern,
                       "rules": rules}
            r["rulesets"] = [rs for rs in r["rulesets"] if rs is not old] + [ruleset]
            if not any(c in branch_pattern for c in "*?[~"):
                r["branches"].setdefault(branch_pattern, _sha())
            return ruleset["id"]

    def remove_ruleset(self, repo: str, branch_pattern: str) -> None:
        with self._lock:
            r = self._repo(repo)
            r["rulesets"] = [rs for rs in r["rulesets"] if rs["pattern"] != branch_pattern]

    # Permissions are repository roles (read, triage, write, maintain, admin) or their older
    # names (pull, push).  two_factor=None leaves a user's 2FA status as it was (on by default).
    def add_member(self, org: str, login: str, *, role: str = "member",
                   two_factor: bool | None = None) -> None:
        """Make login a member of org; role "admin" makes them an owner."""
        if role not in ("member", "admin"):
            raise ValueError(f"unknown organization role {role!r}")
        with self._lock:
            self._org_state(org)["members"][login] = role
            self._set_2fa(login, two_factor)

    def remove_member(self, org: str, login: str) -> None:
        """What organization.member_removed reports: login leaves org and its teams (and so
        loses owner, team and base-permission access); direct collaborator access and pending
        invitations stay."""
        with self._lock:
            o = self._org_state(org)
            o["members"].pop(login, None)
            for team in o["teams"].values():
                team["members"].discard(login)

    def add_collaborator(self, repo: str, login: str, permission: str = "write", *,
                         two_factor: bool | None = None) -> None:
        """A direct collaborator, replacing an earlier permission; an outside collaborator if
        login is not a member of the repo's organization."""
        with self._lock:
            self._repo(repo)["collaborators"][login] = _role(permission)
            self._set_2fa(login, two_factor)

    def collaborators(self, repo: str) -> dict[str, str]:
        """Snapshot of the repo's direct collaborators: login -> role."""
        with self._lock:
            return dict(self._repo(repo)["collaborators"])

    def add_team(self, org: str, slug: str, members=(), repos: dict[str, str] | None = None, *,
                 name: str | None = None) -> dict:
        """A team (replacing one with the same slug) whose members get {repo: permission}."""
        with self._lock:
            teams = self._org_state(org)["teams"]
            old = teams.get(slug)
            teams[slug] = {"id": old["id"] if old else next(self._ids), "slug": slug,
                           "name": name or slug, "members": set(members),
                           "repos": {full: _role(p) for full, p in (repos or {}).items()}}
            return copy.deepcopy(teams[slug])

    def add_invitation(self, repo: str, login: str, permission: str = "write", *,
                       inviter: str = "octocat") -> dict:
        """A pending invitation for login to collaborate on repo."""
        with self._lock:
            invitation = {"id": next(self._ids), "login": login, "permission": _role(permission),
                          "inviter": inviter, "created_at": self.clock()}
            self._repo(repo)["invitations"].append(invitation)
            return dict(invitation)

    def set_base_permission(self, org: str, permission: str | None) -> None:
        """The role every member of org has on its repos (None or "none": no base role)."""
        with self._lock:
            self._org_state(org)["base_permission"] = (
                None if permission in (None, "none") else _role(permission))

    def count(self, method: str | None, path_regex: str) -> int:
        with self._lock:
            return sum(1 for m, p, _ in self.requests if self._matches(method, path_regex, m, p))

    def graphql_count(self, operation: str) -> int:
        """How many GraphQL requests named `operation` (`query CommitPulls(...)`) arrived."""
        with self._lock:
            return sum(1 for m, p, q in self.requests if p == "/graphql" and q.get("operation") == operation)

    # ------------------------------------------------------------ faults
    def fail(self, method: str | None, path_regex: str, status: int = 502, *, times: int = 1,
             headers: dict | None = None, body=None, after_effect: bool = False) -> None:
        """The next `times` matching requests get `status`; with after_effect the
        request is performed first (e.g. the issue exists) and only the response is lost."""
        if body is None:
            body = {"message": f"Fake injected HTTP {status}", "documentation_url": DOCS}
        with self._lock:
            self._faults.append({"method": method, "regex": path_regex, "status": status,
                                 "times": times, "headers": dict(headers or {}),
                                 "body": body, "after_effect": after_effect})

    def expire_tokens(self) -> None:
        """Every installation token issued so far stops working (401 Bad credentials), as when they
        expire or the App is reinstalled."""
        with self._lock:
            self._tokens.clear()

    def hold(self, method: str | None, path_regex: str) -> Hold:
        """The next matching request waits until released, then is handled as usual (its client may
        be gone by then): for killing tbr while a request is in flight."""
        hold = Hold(method, path_regex)
        with self._lock:
            self._holds.append(hold)
        return hold

    def rate_limit(self, method: str | None, path_regex: str, *, reset_in_seconds: int = 60,
                   times: int = 1, status: int = 403) -> None:
        # x-ratelimit-reset is compared by githubkit with the real clock, not fake.clock.
        reset = int(time.time()) + reset_in_seconds
        self.fail(method, path_regex, status, times=times, headers={
            "x-ratelimit-limit": "5000", "x-ratelimit-remaining": "0",
            "x-ratelimit-used": "5000", "x-ratelimit-reset": str(reset),
            "x-ratelimit-resource": "core"},
            body={"message": "API rate limit exceeded for installation ID 1.",
                  "documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api"})

    def secondary_rate_limit(self, method: str | None, path_regex: str, *, retry_after: int = 1,
                             times: int = 1, status: int = 403) -> None:
        self.fail(method, path_regex, status, times=times, headers={"Retry-After": str(retry_after)},
                  body={"message": "You have exceeded a secondary rate limit. Please wait a few "
                                   "minutes before you try again.",
                        "documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits"})

    # ------------------------------------------------------------ internals: state
    def _repo(self, full_name: str) -> dict:
        try:
            return self._repos[full_name]
        except KeyError:
            raise KeyError(f"fake has no repo {full_name!r}; call add_repo first") from None

    def _pull(self, repo: str, number: int) -> dict:
        return self._repo(repo)["pulls"][number]

    def _org_state(self, org: str) -> dict:
        if org not in self._orgs and any(r["owner"] == org and r["owner_type"] == "User"
                                         for r in self._repos.values()):
            raise ValueError(f"{org!r} is a personal account in the fake, not an organization")
        return self._orgs.setdefault(org, {"members": {}, "teams": {}, "base_permission": None})

    def _set_2fa(self, login: str, two_factor: bool | None) -> None:
        if two_factor is not None:
            (self._no_2fa.discard if two_factor else self._no_2fa.add)(login)

    def _access(self, r: dict) -> dict[str, str]:
        """login -> highest role, for everyone granted access to r (a public repo's read access
        for anyone aside)."""
        grants = list(r["collaborators"].items())
        org = self._orgs.get(r["owner"])
        if org is None:
            grants.append((r["owner"], "admin"))  # a personal account owns its repos
        else:
            base = org["base_permission"]
            grants += [(login, "admin" if role == "admin" else base)
                       for login, role in org["members"].items() if role == "admin" or base]
            for team in org["teams"].values():
                role = team["repos"].get(r["full_name"])
                grants += [(login, role) for login in team["members"] if role]
        best: dict[str, str] = {}
        for login, role in grants:
            best[login] = max(best.get(login, role), role, key=_RANK.__getitem__)
        return best

    @staticmethod
    def _next_number(r: dict) -> int:
        # Pulls and issues share one number sequence, as on GitHub.
        return max([0, *r["pulls"], *r["issues"]]) + 1

    def _add_comment(self, kind, repo, number, user, body, created_at, user_type):
        with self._lock:
            created = _dt(created_at) or self.clock()
            comment = {"id": next(self._ids), "user": user, "user_type": user_type,
                       "body": body, "created_at": created, "updated_at": created}
            self._pull(repo, number)[kind].append(comment)
            return comment

    def _issue(self, repo: str, number: int) -> dict:
        try:
            return self._repo(repo)["issues"][number]
        except KeyError:
            raise KeyError(f"fake has no issue #{number} in {repo!r}") from None

    @staticmethod
    def _conversation(r: dict, number: int) -> dict | None:
        """The pull or issue whose conversation (issue comments) has this number."""
        return r["pulls"].get(number) or r["issues"].get(number)

    @staticmethod
    def _comment_thread(target: dict) -> list:
        return target["issue_comments"] if "issue_comments" in target else target["comments"]

    def _store_comment(self, target, user, user_type, body, created) -> dict:
        comment = {"id": next(self._ids), "user": user, "user_type": user_type,
                   "body": body, "created_at": created, "updated_at": created}
        self._comment_thread(target).append(comment)
        target["updated_at"] = max(target["updated_at"], created)  # as GitHub bumps it
        return comment

    def _store_issue(self, r, title, body, labels, assignees, author, author_type,
                     created, updated, state, closed_at, seeded):
        for name in labels:  # GitHub creates unknown labels on the fly
            self._ensure_label(r, name)
        issue = {"number": self._next_number(r), "id": next(self._ids), "title": title,
                 "body": body, "labels": labels, "assignees": assignees, "state": state,
                 "state_reason": "completed" if state == "closed" else None,
                 "author": author, "author_type": author_type, "created_at": created,
                 "updated_at": updated, "closed_at": closed_at,
                 "closed_by": None, "closed_by_type": "User", "comments": [],
                 "seeded": seeded}
        r["issues"][issue["number"]] = issue
        return issue

    def _attach_labels(self, r, issue, labels) -> None:
        """Add labels (names or {"name": ...}) to an issue, creating unknown ones."""
        for item in labels:
            name = item["name"] if isinstance(item, dict) else str(item)
            label = self._ensure_label(r, name)
            if label["name"].lower() not in {n.lower() for n in issue["labels"]}:
                issue["labels"].append(label["name"])

    def _ensure_label(self, r, name, color="ededed", description=None):
        key = name.lower()
        if key not in r["labels"]:
            r["labels"][key] = {"id": next(self._ids), "name": name, "color": color,
                                "description": description}
        return r["labels"][key]

    @staticmethod
    def _history(r, head: str, since=None, until=None) -> list[dict]:
        """The add_commit commits on head's first-parent chain, newest first, committed
        within [since, until]."""
        chain, sha = [], head
        while sha in r["history"] and len(chain) <= len(r["history"]):  # stops on a cycle too
            chain.append(r["history"][sha])
            sha = (r["history"][sha]["parents"] or [None])[0]
        return [c for c in chain
                if (since is None or c["committed_at"] >= since)
                and (until is None or c["committed_at"] <= until)]

    @staticmethod
    def _matches(method, regex, m, p) -> bool:
        return (method is None or method.upper() == m) and re.fullmatch(regex, p) is not None

    # ------------------------------------------------------------ internals: rendering
    def _pairs(self, r: dict | None = None):
        pairs = [(_EXAMPLE_API, self.url), (_EXAMPLE_WEB, self.url)]
        return pairs + ([(_EXAMPLE_REPO, r["full_name"])] if r else [])

    def _user(self, login: str, type_: str = "User") -> dict:
        # Any user object from the examples works; they all describe "octocat".
        out = _subst(_template("app")["owner"], [*self._pairs(), ("octocat", login)])
        uid = self._users.setdefault(login, next(self._ids))
        out.update(login=login, id=uid, node_id=f"U_fake{uid}", type=type_, site_admin=False)
        return out

    def _bot(self) -> tuple[str, str]:
        return f"{self.app_slug}[bot]", "Bot"

    def _label(self, r, label, template: dict | None = None) -> dict:
        out = _subst(template if template is not None else _template("label_created"),
                     self._pairs(r))
        out.update(id=label["id"], node_id=f"LA_fake{label['id']}", name=label["name"],
                   url=f"{self.url}/repos/{r['full_name']}/labels/{quote(label['name'])}",
                   color=label["color"], description=label["description"], default=False,
                   # githubkit's Label model requires these; the example predates them.
                   archived_at=None, archived_by=None)
        return out

    def _repository(self, r, template: dict) -> dict:
        out = _subst(template, self._pairs(r))
        for fork_only in ("parent", "source", "template_repository", "organization"):
            out.pop(fork_only, None)
        out.update(id=r["id"], node_id=f"R_fake{r['id']}", name=r["name"],
                   full_name=r["full_name"], owner=self._user(r["owner"]),
                   private=r["private"], visibility="private" if r["private"] else "public",
                   default_branch=r["default_branch"], archived=r["archived"],
                   disabled=False, has_issues=r["has_issues"],
                   language=None)  # required (nullable) by githubkit, absent in example
        out["pushed_at"] = _iso(r["pushed_at"])
        return out

    def _pull_obj(self, r, pr, template: dict) -> dict:
        n = pr["number"]
        out = _subst(template, [*self._pairs(r), ("/1347", f"/{n}")])
        out.pop("milestone", None)
        merged_by = pr["merged_by"]
        out.update(
            id=pr["id"], node_id=f"PR_fake{pr['id']}", number=n, state=pr["state"],
            title=pr["title"], body=pr["body"], locked=False, active_lock_reason=None,
            user=self._user(pr["author"], pr["author_type"]), labels=[], milestone=None,
            assignee=None, assignees=[], requested_reviewers=[], requested_teams=[],
            created_at=_iso(pr["created_at"]),
            updated_at=_iso(pr["updated_at"]),
            closed_at=_iso(pr["merged_at"]) if pr["state"] == "closed" else None,
            merged_at=_iso(pr["merged_at"]), merge_commit_sha=pr["merge_commit_sha"],
            statuses_url=f"{self.url}/repos/{r['full_name']}/statuses/{pr['head_sha']}",
            author_association="MEMBER", auto_merge=None, draft=False,
        )
        for side, ref, sha in (("head", pr["head"], pr["head_sha"]),
                               ("base", pr["base"], r["branches"].get(pr["base"], _sha()))):
            out[side].update(label=f"{r['owner']}:{ref}", ref=ref, sha=sha,
                             user=self._user(r["owner"]),
                             repo=self._repository(r, template[side]["repo"]))
        if "merged" in out:  # full PullRequest only, not PullRequestSimple
            out.update(merged=pr["merged"], mergeable=None, rebaseable=None,
                       mergeable_state="unknown",
                       merged_by=self._user(merged_by) if merged_by else None,
                       comments=len(pr["issue_comments"]),
                       review_comments=len(pr["review_comments"]))
        return out

    def _issue_obj(self, r, issue, template: dict) -> dict:
        n = issue["number"]
        out = _subst(template, [*self._pairs(r), ("/1347", f"/{n}")])
        out.pop("pull_request", None)  # these are plain issues
        out.pop("milestone", None)
        assignees = [self._user(a) for a in issue["assignees"]]
        out.update(
            id=issue["id"], node_id=f"I_fake{issue['id']}", number=n, state=issue["state"],
            state_reason=issue["state_reason"], title=issue["title"], body=issue["body"],
            user=self._user(issue["author"], issue["author_type"]),
            labels=[self._label(r, r["labels"][name.lower()]) for name in issue["labels"]],
            assignee=assignees[0] if assignees else None, assignees=assignees, milestone=None,
            locked=False, active_lock_reason=None, comments=len(issue["comments"]),
            closed_by=(self._user(issue["closed_by"], issue["closed_by_type"])
                       if issue["closed_by"] else None),
            created_at=_iso(issue["created_at"]), updated_at=_iso(issue["updated_at"]),
            closed_at=_iso(issue["closed_at"]),
            author_association="NONE" if issue["author_type"] == "Bot" else "MEMBER",
        )
        return out

    def _review_obj(self, r, pr, rv) -> dict:
        out = _subst(_first("pull_reviews"), [*self._pairs(r), ("/12", f"/{pr['number']}")])
        html = f"{self.url}/{r['full_name']}/pull/{pr['number']}#pullrequestreview-{rv['id']}"
        out.update(id=rv["id"], node_id=f"PRR_fake{rv['id']}",
                   user=self._user(rv["user"], rv["user_type"]), body=rv["body"],
                   state=rv["state"], html_url=html, commit_id=rv["commit_id"],
                   submitted_at=_iso(rv["submitted_at"]), author_association="MEMBER")
        out["_links"]["html"]["href"] = html
        return out

    def _review_comment_obj(self, r, pr, c) -> dict:
        out = _subst(_first("pull_review_comments"), self._pairs(r))
        html = f"{self.url}/{r['full_name']}/pull/{pr['number']}#discussion_r{c['id']}"
        out.update(id=c["id"], node_id=f"PRRC_fake{c['id']}",
                   pull_request_review_id=c.get("review_id"),
                   user=self._user(c["user"], c["user_type"]), body=c["body"],
                   created_at=_iso(c["created_at"]), updated_at=_iso(c["created_at"]),
                   html_url=html, commit_id=pr["head_sha"], original_commit_id=pr["head_sha"],
                   url=f"{self.url}/repos/{r['full_name']}/pulls/comments/{c['id']}",
                   pull_request_url=f"{self.url}/repos/{r['full_name']}/pulls/{pr['number']}",
                   in_reply_to_id=None, author_association="MEMBER")
        out["_links"] = {"self": {"href": out["url"]}, "html": {"href": html},
                         "pull_request": {"href": out["pull_request_url"]}}
        return out

    def _issue_comment_obj(self, r, number, c, template: dict | None = None) -> dict:
        out = _subst(template if template is not None else _first("issue_comments"),
                     self._pairs(r))
        kind = "pull" if number in r["pulls"] else "issues"
        out.update(id=c["id"], node_id=f"IC_fake{c['id']}",
                   user=self._user(c["user"], c["user_type"]), body=c["body"],
                   created_at=_iso(c["created_at"]), updated_at=_iso(c["updated_at"]),
                   html_url=f"{self.url}/{r['full_name']}/{kind}/{number}#issuecomment-{c['id']}",
                   url=f"{self.url}/repos/{r['full_name']}/issues/comments/{c['id']}",
                   issue_url=f"{self.url}/repos/{r['full_name']}/issues/{number}",
                   author_association="NONE" if c["user_type"] == "Bot" else "MEMBER")
        return out

    def _installation_obj(self, inst: int, r: dict, template: dict) -> dict:
        """Installation `inst`, whose account is the owner of its (first) repo `r`."""
        account = self._user(r["owner"])
        out = _subst(template, self._pairs())
        out.update(id=inst, account=account, app_id=self.app_id,
                   app_slug=self.app_slug, client_id=f"Iv1.fake{self.app_id}",
                   target_id=account["id"], target_type="User",
                   access_tokens_url=f"{self.url}/app/installations/{inst}/access_tokens",
                   repositories_url=f"{self.url}/installation/repositories",
                   html_url=f"{self.url}/settings/installations/{inst}",
                   permissions=dict(_PERMISSIONS), events=["pull_request"],
                   single_file_name=None, single_file_paths=[],
                   has_multiple_single_files=False, repository_selection="all",
                   created_at=_iso(self._installed_at[inst]),
                   updated_at=_iso(self._installed_at[inst]),
                   suspended_at=None, suspended_by=None)
        return out

    def _delivery_obj(self, d: dict, template: dict) -> dict:
        out = dict(template)
        out.update({k: v for k, v in d.items() if k not in ("delivered_at", "throttled_at")},
                   delivered_at=_iso(d["delivered_at"]), throttled_at=_iso(d["throttled_at"]))
        return out

    def _short_branch(self, r, name: str, template: dict) -> dict:
        sha, api = r["branches"][name], f"{self.url}/repos/{r['full_name']}"
        out = _subst(template, self._pairs(r))
        out.update(name=name, commit={"sha": sha, "url": f"{api}/commits/{sha}"},
                   protected=name in r["protected"],
                   protection_url=f"{api}/branches/{quote(name)}/protection")
        checks = out["protection"]["required_status_checks"]
        if name not in r["protected"]:
            checks.update(enforcement_level="off", contexts=[])
        # githubkit's model requires `checks`, which the list example predates.
        checks["checks"] = [{"context": c, "app_id": None} for c in checks["contexts"]]
        out["protection"]["enabled"] = name in r["protected"]
        return out

    def _commit_obj(self, r, c: dict, template: dict) -> dict:
        sha, api = c["sha"], f"{self.url}/repos/{r['full_name']}"
        web = f"{self.url}/{r['full_name']}"
        out = _subst(template, self._pairs(r))
        login = c["author"]
        person = {"name": login or "Unknown",
                  "email": f"{login or 'unknown'}@users.noreply.github.com",
                  "date": _iso(c["committed_at"])}
        user = self._user(login) if login else None
        out.update(url=f"{api}/commits/{sha}", sha=sha, node_id=f"C_fake{sha[:12]}",
                   html_url=f"{web}/commit/{sha}", comments_url=f"{api}/commits/{sha}/comments",
                   author=user, committer=copy.deepcopy(user),
                   parents=[{"sha": p, "url": f"{api}/commits/{p}",
                             "html_url": f"{web}/commit/{p}"} for p in c["parents"]])
        out["commit"].update(url=f"{api}/git/commits/{sha}", author=person,
                             committer=dict(person), message=c["message"], comment_count=0,
                             tree={"sha": c["tree"], "url": f"{api}/git/trees/{c['tree']}"})
        return out

    def _app_obj(self) -> dict:
        out = _subst(_template("app"), self._pairs())
        out.update(id=self.app_id, slug=self.app_slug, name=self.app_slug,
                   node_id=f"A_fake{self.app_id}", client_id=f"Iv1.fake{self.app_id}",
                   owner=self._user("tbr-owner", "Organization"),
                   html_url=f"{self.url}/apps/{self.app_slug}",
                   permissions=dict(_PERMISSIONS), events=["pull_request"])
        return out

    def _pull_minimal(self, r, pr) -> dict:
        api = f"{self.url}/repos/{r['full_name']}"
        repo = {"id": r["id"], "url": api, "name": r["name"]}
        return {"url": f"{api}/pulls/{pr['number']}", "id": pr["id"], "number": pr["number"],
                "head": {"ref": pr["head"], "sha": pr["head_sha"], "repo": dict(repo)},
                "base": {"ref": pr["base"], "sha": r["branches"].get(pr["base"], ""),
                         "repo": dict(repo)}}

    def _check_run_obj(self, r, run, template: dict) -> dict:
        rid, api = run["id"], f"{self.url}/repos/{r['full_name']}"
        out = _subst(template, self._pairs(r))
        # As on GitHub: the open pulls whose head is the run's commit.
        pulls = [pr for _, pr in sorted(r["pulls"].items())
                 if pr["state"] == "open" and pr["head_sha"] == run["head_sha"]]
        out.update(id=rid, node_id=f"CR_fake{rid}", name=run["name"], head_sha=run["head_sha"],
                   external_id=run["external_id"], details_url=run["details_url"],
                   url=f"{api}/check-runs/{rid}", html_url=f"{self.url}/{r['full_name']}/runs/{rid}",
                   status=run["status"], conclusion=run["conclusion"],
                   started_at=_iso(run["started_at"]), completed_at=_iso(run["completed_at"]),
                   output={**run["output"], "annotations_count": 0,
                           "annotations_url": f"{api}/check-runs/{rid}/annotations"},
                   check_suite={"id": r["check_suites"][run["head_sha"]]}, app=self._app_obj(),
                   pull_requests=[self._pull_minimal(r, pr) for pr in pulls])
        return out

    def _content_obj(self, r, ref: str, path: str, data: bytes) -> dict:
        api, web = f"{self.url}/repos/{r['full_name']}", f"{self.url}/{r['full_name']}"
        sha, encoded = _blob_sha(data), base64.b64encode(data).decode()
        url = f"{api}/contents/{quote(path)}?ref={quote(ref, safe='')}"
        html, git = f"{web}/blob/{quote(ref)}/{quote(path)}", f"{api}/git/blobs/{sha}"
        out = _subst(_template("content_file"), self._pairs(r))
        out.update(type="file", encoding="base64", size=len(data), name=path.rsplit("/", 1)[-1],
                   path=path, sha=sha, url=url, git_url=git, html_url=html,
                   download_url=f"{web}/raw/{quote(ref)}/{quote(path)}",  # not served
                   # GitHub wraps the base64 at 60 characters, each line ending in a newline.
                   content="".join(encoded[i:i + 60] + "\n" for i in range(0, len(encoded), 60)),
                   _links={"self": url, "git": git, "html": html})
        return out

    def _protection_obj(self, r, branch: str, p: dict) -> dict:
        url = f"{self.url}/repos/{r['full_name']}/branches/{quote(branch)}/protection"
        out = _subst(_template("branch_protection"), self._pairs(r))
        # GitHub leaves out the parts that are not configured (status checks, push
        # restrictions, dismissal restrictions, pull request reviews).
        for absent in ("required_status_checks", "restrictions"):
            out.pop(absent, None)
        reviews = out.pop("required_pull_request_reviews")
        if p["require_pr"]:
            reviews.pop("dismissal_restrictions", None)
            reviews.update(url=f"{url}/required_pull_request_reviews",
                           dismiss_stale_reviews=p["dismiss_stale_reviews"],
                           require_code_owner_reviews=p["require_code_owner_reviews"],
                           required_approving_review_count=p["approvals"],
                           require_last_push_approval=p["require_last_push_approval"])
            out["required_pull_request_reviews"] = reviews
        out.update(url=url,
                   enforce_admins={"url": f"{url}/enforce_admins", "enabled": p["enforce_admins"]},
                   required_signatures={"url": f"{url}/required_signatures", "enabled": False},
                   required_linear_history={"enabled": p["linear_history"]},
                   allow_force_pushes={"enabled": p["allow_force_pushes"]},
                   allow_deletions={"enabled": p["allow_deletions"]},
                   required_conversation_resolution={"enabled": False},
                   lock_branch={"enabled": False}, allow_fork_syncing={"enabled": False})
        return out

    def _collaborator_obj(self, login: str, role: str | None) -> dict:
        """login as a collaborator with `role` (None: no access)."""
        out = _subst(_first("collaborators"), self._pairs())
        out.update(self._user(login), role_name=role or "none",
                   permissions={_LEGACY[x]: _RANK.get(role, 0) >= _RANK[x] for x in _ROLES})
        return out

    def _team_obj(self, org: str, team: dict, role: str, template: dict) -> dict:
        tid = team["id"]
        out = _subst(template, self._pairs())
        out.update(id=tid, node_id=f"T_fake{tid}", name=team["name"], slug=team["slug"],
                   url=f"{self.url}/teams/{tid}",
                   html_url=f"{self.url}/orgs/{org}/teams/{team['slug']}",
                   members_url=f"{self.url}/teams/{tid}/members{{/member}}",
                   repositories_url=f"{self.url}/teams/{tid}/repos", permission=_LEGACY[role],
                   # githubkit's Team model requires `type`, which the example predates.
                   type="organization", parent=None)
        return out

    def _invitation_obj(self, r: dict, invitation: dict, template: dict) -> dict:
        iid = invitation["id"]
        out = _subst(template, self._pairs(r))
        out.update(id=iid, node_id=f"RI_fake{iid}",
                   repository=self._repository(r, out["repository"]),
                   invitee=self._user(invitation["login"]),
                   inviter=self._user(invitation["inviter"]),
                   permissions=invitation["permission"], created_at=_iso(invitation["created_at"]),
                   url=f"{self.url}/user/repository_invitations/{iid}",
                   html_url=f"{self.url}/{r['full_name']}/invitations")
        return out

    # ------------------------------------------------------------ HTTP plumbing
    def _wsgi(self, environ, start_response):
        request = Request(environ)
        return self._dispatch(request)(environ, start_response)

    def _dispatch(self, request: Request) -> Response:
        method, path = request.method, request.path
        query = request.args.to_dict()
        if path == "/graphql":  # kept with the request, for graphql_count
            body = request.get_json(silent=True)
            text = body.get("query") if isinstance(body, dict) else None
            named = re.search(r"\b(?:query|mutation)\s+(\w+)", text if isinstance(text, str) else "")
            query["operation"] = named.group(1) if named else ""
        with self._lock:
            self.requests.append((method, path, query))
            fault = next((f for f in self._faults if f["times"] > 0
                          and self._matches(f["method"], f["regex"], method, path)), None)
            if fault:
                fault["times"] -= 1
            hold = next((h for h in self._holds if self._matches(h.method, h.regex, method, path)), None)
            if hold:
                self._holds.remove(hold)
        if hold:
            request.get_data()  # the whole request is in before its client can die: GitHub has it
            hold.arrived.set()
            hold.released.wait(60)
        if fault and not fault["after_effect"]:
            return self._fault_response(fault)
        try:
            endpoint, args = _ROUTES.bind("fake").match(path, method=method)
        except HTTPException:
            endpoint = None
            with self._lock:
                self.unhandled.append((method, path, query))
            result = self._json(404, {"message": "Not Found", "documentation_url": DOCS,
                                      "status": "404"})
        if endpoint is not None:
            try:
                with self._lock:
                    self._authorize(request, endpoint, args)
                    self._refuse_over_limit(request, endpoint)
                    result = getattr(self, "_h_" + endpoint)(request, **args)
            except _ApiError as e:
                result = self._json(e.status, e.body, e.headers)
            with self._lock:
                result = self._metered(request, endpoint, result)
        # after_effect: the handler has already changed state; only the answer is lost.
        return self._fault_response(fault) if fault else result

    # ------------------------------------------------------------ rate limits and conditional requests
    def _limit(self, who, resource: str) -> int:
        if who == "app":
            return 5000
        # An installation: 5,000 an hour, plus 50 per repository over 20, at most 12,500.
        repos = sum(1 for r in self._repos.values() if r["installation_id"] == who)
        return min(5000 + 50 * max(repos - 20, 0), 12500)

    def _budget(self, who, resource: str) -> dict:
        now = self.clock().timestamp()
        b = self._budgets.get((who, resource))
        if b is None or now >= b["reset"]:
            b = self._budgets[(who, resource)] = {"used": 0, "reset": int(now) + 3600}
        limit = self._limit(who, resource)
        return {"limit": limit, "used": b["used"], "remaining": max(limit - b["used"], 0),
                "reset": b["reset"], "resource": resource}

    @staticmethod
    def _payer(request, endpoint):
        if endpoint in _PUBLIC_ENDPOINTS:
            return None
        if endpoint in _APP_ENDPOINTS:
            return "app"
        return request.environ.get("fakegithub.installation_id")

    def _refuse_over_limit(self, request, endpoint) -> None:
        who = self._payer(request, endpoint)
        if who is None or not self.enforce_rate_limits:
            return
        resource = "graphql" if endpoint == "graphql" else "core"
        b = self._budget(who, resource)
        if b["remaining"] <= 0:
            raise _ApiError(403, f"API rate limit exceeded for installation ID {who}.",
                            docs="https://docs.github.com/rest/overview/rate-limits-for-the-rest-api",
                            headers=self._rate_headers(b))

    @staticmethod
    def _rate_headers(b: dict) -> dict:
        return {"x-ratelimit-limit": str(b["limit"]), "x-ratelimit-remaining": str(b["remaining"]),
                "x-ratelimit-used": str(b["used"]), "x-ratelimit-reset": str(b["reset"]),
                "x-ratelimit-resource": b["resource"]}

    def _metered(self, request, endpoint, result: Response) -> Response:
        """Charge the answer as GitHub does and say so in x-ratelimit-*: a GraphQL query costs its
        points, a 304 to a conditional request (If-None-Match) costs nothing."""
        who = self._payer(request, endpoint)
        if who is None:
            return result
        resource, cost = "core", 1
        if request.method == "GET" and result.status_code == 200:
            etag = 'W/"' + hashlib.sha1(result.get_data()).hexdigest() + '"'
            result.headers["ETag"] = etag
            wanted = [t.strip() for t in request.headers.get("If-None-Match", "").split(",")]
            if etag in wanted:
                result = Response(status=304, headers={"ETag": etag})
                cost = 0
        if endpoint == "graphql":
            resource, cost = "graphql", self._graphql_cost(request)
        if result.status_code == 403 and result.headers.get("x-ratelimit-remaining") == "0":
            cost = 0  # the refusal itself
        b = self._budgets.get((who, resource))
        self._budget(who, resource)  # opens the window if needed
        b = self._budgets[(who, resource)]
        b["used"] += cost
        if cost:
            self.charged.append((request.method, request.path, resource, cost))
        for k, v in self._rate_headers(self._budget(who, resource)).items():
            result.headers.setdefault(k, v)
        return result

    @staticmethod
    def _graphql_cost(request) -> int:
        """GitHub's rule: every connection costs one request per parent it is asked for, each
        assumed to fill its first/last; the sum over 100, rounded, at least 1 point."""
        body = request.get_json(silent=True) or {}
        try:
            document = graphql.parse(body.get("query") or "")
        except graphql.GraphQLError:
            return 1
        variables = body.get("variables") or {}
        fragments = {d.name.value: d for d in document.definitions
                     if isinstance(d, graphql.FragmentDefinitionNode)}

        def size(field) -> int | None:
            for arg in field.arguments or ():
                if arg.name.value in ("first", "last"):
                    v = arg.value
                    if isinstance(v, graphql.VariableNode):
                        return int(variables.get(v.name.value) or 0)
                    if isinstance(v, graphql.IntValueNode):
                        return int(v.value)
            return None

        def walk(selection_set, parents: int) -> int:
            total = 0
            for sel in selection_set.selections if selection_set else ():
                if isinstance(sel, graphql.FragmentSpreadNode):
                    frag = fragments.get(sel.name.value)
                    total += walk(frag.selection_set, parents) if frag else 0
                elif isinstance(sel, graphql.InlineFragmentNode):
                    total += walk(sel.selection_set, parents)
                else:
                    n = size(sel)
                    if n is None:
                        total += walk(sel.selection_set, parents)
                    else:
                        total += parents + walk(sel.selection_set, parents * n)
            return total

        requests = sum(walk(d.selection_set, 1) for d in document.definitions
                       if isinstance(d, graphql.OperationDefinitionNode))
        return max(1, round(requests / 100))

    def _fault_response(self, fault) -> Response:
        body = fault["body"]
        if isinstance(body, (dict, list)):
            return self._json(fault["status"], body, fault["headers"])
        return Response(body, status=fault["status"], headers=fault["headers"])

    @staticmethod
    def _json(status: int, body, headers=None) -> Response:
        resp = Response(json.dumps(body), status=status, mimetype="application/json")
        for k, v in (headers or {}).items():
            resp.headers[k] = v
        return resp

    def _authorize(self, request, endpoint, args) -> None:
        if endpoint in _PUBLIC_ENDPOINTS:
            return
        header = request.headers.get("Authorization", "")
        scheme, _, credential = header.partition(" ")
        if endpoint in _APP_ENDPOINTS:
            if not credential:
                raise _ApiError(401, "A JSON web token could not be decoded")
            if self.verify_jwt:
                key = self._jwt_public_key or public_key_of(self.private_key)
                try:
                    claims = jwt.decode(credential, key, algorithms=["RS256"])
                except jwt.PyJWTError as e:
                    raise _ApiError(401, f"A JSON web token could not be decoded ({e})") from None
                if str(claims.get("iss")) != str(self.app_id):
                    raise _ApiError(401, "'Issuer' claim ('iss') must be an Integer")
            return
        if scheme.lower() not in ("token", "bearer") or credential not in self._tokens:
            raise _ApiError(401, "Bad credentials")
        request.environ["fakegithub.installation_id"] = self._tokens[credential]
        # A token only sees repos of its own installation (GitHub answers 404).
        if "owner" in args:
            r = self._repos.get(f"{args['owner']}/{args['repo']}")
            if r is not None and r["installation_id"] != self._tokens[credential]:
                raise _ApiError(404, "Not Found")
        if "org" in args and not any(r["owner"] == args["org"]
                                     and r["installation_id"] == self._tokens[credential]
                                     for r in self._repos.values()):
            raise _ApiError(404, "Not Found")

    def _r(self, owner, repo) -> dict:
        r = self._repos.get(f"{owner}/{repo}")
        if r is None:
            raise _ApiError(404, "Not Found")
        return r

    def _conversation_or_404(self, r, number) -> dict:
        target = self._conversation(r, number)
        if target is None:
            raise _ApiError(404, "Not Found")
        return target

    def _issue_or_404(self, r, number) -> dict:
        """Issues only: the fake keeps no labels/assignees on pulls (see module doc)."""
        if number not in r["issues"]:
            raise _ApiError(404, "Not Found")
        return r["issues"][number]

    @staticmethod
    def _when(request: Request, name: str) -> datetime | None:
        value = request.args.get(name)
        if not value:
            return None
        try:
            return _dt(value)
        except ValueError:
            raise _ApiError(422, f"Invalid value for {name!r}: {value!r}") from None

    @staticmethod
    def _writable(r) -> None:
        if r["archived"]:
            raise _ApiError(403, "Repository was archived so is read-only.")

    def _org_or_404(self, org) -> dict:
        """An organization (a personal account has no /orgs/ endpoints)."""
        if org not in self._orgs:
            raise _ApiError(404, "Not Found")
        return self._orgs[org]

    @staticmethod
    def _choice(request: Request, name: str, allowed, default=None):
        value = request.args.get(name, default)
        if value not in allowed:
            raise _ApiError(422, "Invalid request.")
        return value

    def _without_2fa(self, request: Request, logins: list[str], docs: str) -> list[str]:
        """The 2FA `filter` of the organization member lists."""
        wanted = self._choice(request, "filter", ("all", "2fa_disabled", "2fa_insecure"), "all")
        if wanted == "all":
            return logins
        if not self.twofa_visible:
            raise _ApiError(422, "Only owners can use this filter.", docs=docs)
        # Every second factor is a secure one in the fake.
        return [login for login in logins if wanted == "2fa_disabled" and login in self._no_2fa]

    def _pr_or_404(self, r, number) -> dict:
        if number not in r["pulls"]:
            raise _ApiError(404, "Not Found")
        return r["pulls"][number]

    @staticmethod
    def _per_page(request: Request) -> int:
        try:
            return min(max(int(request.args.get("per_page", 30)), 1), 100)
        except ValueError:
            raise _ApiError(422, "Invalid request.") from None

    def _paginate(self, request: Request, items: list, wrap=None) -> Response:
        """One page of items with GitHub's Link header; wrap(page_items) -> body
        for endpoints that nest the list in an object."""
        per_page = self._per_page(request)
        try:
            page = max(int(request.args.get("page", 1)), 1)
        except ValueError:
            raise _ApiError(422, "Invalid request.") from None
        last = max((len(items) + per_page - 1) // per_page, 1)
        chunk = items[(page - 1) * per_page: page * per_page]
        resp = self._json(200, wrap(chunk) if wrap else chunk)

        def link(p, rel):
            q = request.args.to_dict()
            q.update(page=str(p), per_page=str(per_page))
            return f'<{self.url}{request.path}?{urlencode(q)}>; rel="{rel}"'

        links = []
        if page < last:
            links += [link(page + 1, "next"), link(last, "last")]
        if page > 1:
            links += [link(1, "first"), link(min(page - 1, last), "prev")]
        if links:
            resp.headers["Link"] = ", ".join(links)
        return resp

    # ------------------------------------------------------------ handlers
    def _h_get_app(self, request):
        return self._json(200, self._app_obj())

    def _h_get_installation(self, request, owner, repo):
        r = self._r(owner, repo)
        return self._json(200, self._installation_obj(r["installation_id"], r,
                                                      _template("repo_installation")))

    def _h_create_token(self, request, installation_id):
        if installation_id not in {r["installation_id"] for r in self._repos.values()}:
            raise _ApiError(404, "Not Found")
        token = f"ghs_fake_{next(_token_ids)}"
        self._tokens[token] = installation_id
        out = _template("installation_token")
        out.pop("repositories", None)
        # Real time, not self.clock: githubkit caches the token until expires_at.
        # Format without fractions: githubkit parses it with "%Y-%m-%dT%H:%M:%SZ".
        out.update(token=token, permissions=dict(_PERMISSIONS), repository_selection="all",
                   expires_at=_iso(datetime.now(timezone.utc) + timedelta(hours=1)))
        return self._json(201, out)

    def _h_get_repo(self, request, owner, repo):
        r = self._r(owner, repo)
        return self._json(200, self._repository(r, _template("repo")))

    def _h_get_branch(self, request, owner, repo, branch):
        r = self._r(owner, repo)
        if branch not in r["branches"]:
            raise _ApiError(404, "Branch not found")
        sha, protected = r["branches"][branch], branch in r["protected"]
        out = _subst(_template("branch"), self._pairs(r))
        old_sha = out["commit"]["sha"]
        out = _subst(out, [(old_sha, sha), ("/branches/main", f"/branches/{branch}"),
                           ("/tree/main", f"/tree/{branch}")])
        out.update(name=branch, protected=protected)
        out["commit"]["sha"] = sha
        out["protection"]["enabled"] = protected
        return self._json(200, out)

    def _h_get_branch_rules(self, request, owner, repo, branch):
        r = self._r(owner, repo)
        rulesets = []  # (ruleset id, rules)
        if any(fnmatch.fnmatchcase(branch, pat) for pat in r["ruleset_branches"]):
            rulesets.append((1, [{"type": "pull_request", "parameters": r["ruleset_parameters"]}]))
        rulesets += [(rs["id"], rs["rules"]) for rs in r["rulesets"]
                     if self._ruleset_targets(r, rs["pattern"], branch)]
        rules = []
        for ruleset_id, items in rulesets:
            for item in items:
                rule = _first("branch_rules")
                rule.update(type=item["type"], ruleset_source_type="Repository",
                            ruleset_source=r["full_name"], ruleset_id=ruleset_id)
                if item["type"] == "pull_request":
                    rule["parameters"] = {**_PULL_REQUEST_RULE, **item.get("parameters", {})}
                elif "parameters" in item:
                    rule["parameters"] = copy.deepcopy(item["parameters"])
                else:
                    del rule["parameters"]
                rules.append(rule)
        return self._paginate(request, rules)

    @staticmethod
    def _ruleset_targets(r, pattern: str, branch: str) -> bool:
        if pattern == "~ALL":
            return True
        if pattern == "~DEFAULT_BRANCH":
            return branch == r["default_branch"]
        return fnmatch.fnmatchcase(branch, pattern.removeprefix("refs/heads/"))

    def _h_get_branch_protection(self, request, owner, repo, branch):
        r = self._r(owner, repo)
        docs = "https://docs.github.com/rest/branches/branch-protection#get-branch-protection"
        if branch not in r["branches"]:
            raise _ApiError(404, "Branch not found", docs=docs)
        if branch not in r["protected"]:
            raise _ApiError(404, "Branch not protected", docs=docs)
        p = {**_DEFAULT_PROTECTION, **r["protection"].get(branch, {})}
        return self._json(200, self._protection_obj(r, branch, p))

    def _apply_check_run(self, run: dict, data: dict, docs: str, creating: bool) -> None:
        """Validate a POST/PATCH body completely, then apply it to `run`."""
        def invalid(field, code="invalid"):
            return _ApiError(422, "Validation Failed",
                             [{"resource": "CheckRun", "field": field, "code": code}], docs)

        for field in ("name", "head_sha") if creating else ("name",):
            if (creating or field in data) and (not isinstance(data.get(field), str)
                                                or not data[field]):
                raise invalid(field, "missing_field" if data.get(field) is None else "invalid")
        status, conclusion = data.get("status"), data.get("conclusion")
        if status is not None and status not in _CHECK_STATUSES:
            raise invalid("status")
        if conclusion is not None and conclusion not in _CHECK_CONCLUSIONS:
            raise invalid("conclusion")
        times = {}
        for field in ("started_at", "completed_at"):
            if data.get(field) is not None:
                try:
                    times[field] = _dt(data[field])
                except (TypeError, ValueError):
                    raise invalid(field) from None
        output = data.get("output")
        if output is not None:
            if not isinstance(output, dict):
                raise invalid("output")
            for field in ("title", "summary") if creating else ("summary",):
                if not isinstance(output.get(field), str):
                    raise invalid(f"output.{field}", "missing_field")
        # "Providing conclusion will automatically set the status to completed"; a completed
        # status or a completed_at needs a conclusion.
        new_status = "completed" if conclusion is not None else status or run["status"]
        completes = conclusion is not None or status == "completed"
        new_conclusion = conclusion or (run["conclusion"] if new_status == "completed" else None)
        if (new_status == "completed" or "completed_at" in times) and new_conclusion is None:
            raise invalid("conclusion", "missing_field")
        # Validated: apply everything at once.
        now = self.clock()
        run["history"].append(copy.deepcopy(data))
        for field in ("name", "details_url", "external_id"):
            if field in data:
                run[field] = data[field]
        run.update(status=new_status, conclusion=new_conclusion,
                   started_at=times.get("started_at") or run["started_at"] or now)
        if new_status != "completed":
            run["completed_at"] = None
        elif completes or "completed_at" in times or run["completed_at"] is None:
            run["completed_at"] = times.get("completed_at") or now
        if output is not None:
            run["output"].update({k: output[k] for k in ("title", "summary", "text") if k in output})

    def _h_create_check_run(self, request, owner, repo):
        r = self._r(owner, repo)
        self._writable(r)
        data = request.get_json(silent=True)
        data = data if isinstance(data, dict) else {}
        run = {"id": None, "name": None, "head_sha": data.get("head_sha"), "status": "queued",
               "conclusion": None, "output": {"title": None, "summary": None, "text": None},
               "details_url": None, "external_id": "", "started_at": None,
               "completed_at": None, "history": []}
        self._apply_check_run(run, data, "https://docs.github.com/rest/checks/runs#create-a-check-run",
                              creating=True)
        run["id"] = next(self._ids)
        r["check_suites"].setdefault(run["head_sha"], next(self._ids))
        r["check_runs"][run["id"]] = run
        return self._json(201, self._check_run_obj(r, run, _template("check_run_created")))

    def _check_run_or_404(self, r, check_run_id) -> dict:
        if check_run_id not in r["check_runs"]:
            raise _ApiError(404, "Not Found",
                            docs="https://docs.github.com/rest/checks/runs#get-a-check-run")
        return r["check_runs"][check_run_id]

    def _h_get_check_run(self, request, owner, repo, check_run_id):
        r = self._r(owner, repo)
        run = self._check_run_or_404(r, check_run_id)
        return self._json(200, self._check_run_obj(r, run, _template("check_run")))

    def _h_update_check_run(self, request, owner, repo, check_run_id):
        r = self._r(owner, repo)
        run = self._check_run_or_404(r, check_run_id)
        self._writable(r)
        data = request.get_json(silent=True)
        self._apply_check_run(run, data if isinstance(data, dict) else {},
                              "https://docs.github.com/rest/checks/runs#update-a-check-run",
                              creating=False)
        return self._json(200, self._check_run_obj(r, run, _template("check_run_updated")))

    def _h_list_check_runs_for_ref(self, request, owner, repo, ref):
        r = self._r(owner, repo)
        docs = "https://docs.github.com/rest/checks/runs#list-check-runs-for-a-git-reference"
        branch = ref.removeprefix("refs/heads/")
        if branch in r["branches"]:
            sha = r["branches"][branch]
        elif re.fullmatch(r"[0-9a-fA-F]{40}", ref):
            sha = ref.lower()
        else:
            raise _ApiError(422, f"No commit found for SHA: {ref}", docs=docs)
        args = request.args
        if args.get("status") not in (None, *_CHECK_STATUSES) \
                or args.get("filter") not in (None, "latest", "all"):
            raise _ApiError(422, "Invalid request.", docs=docs)
        runs = sorted((c for c in r["check_runs"].values()
                       if c["head_sha"] == sha
                       and args.get("check_name") in (None, c["name"])
                       and args.get("status") in (None, c["status"])
                       and args.get("app_id") in (None, str(self.app_id))),
                      key=lambda c: c["id"], reverse=True)  # newest first
        if args.get("filter", "latest") == "latest":
            seen: set[str] = set()
            runs = [c for c in runs if not (c["name"] in seen or seen.add(c["name"]))]
        template = _template("check_runs")["check_runs"][0]
        return self._paginate(request, [self._check_run_obj(r, c, template) for c in runs],
                              wrap=lambda page: {"total_count": len(runs), "check_runs": page})

    def _h_get_content(self, request, owner, repo, path):
        r = self._r(owner, repo)
        ref = (request.args.get("ref") or r["default_branch"]).removeprefix("refs/heads/")
        if ref not in r["files"] and ref not in r["branches"]:
            # A sha: a branch head reads that branch's files.
            heads = [b for b, head in r["branches"].items() if head == ref]
            if heads:
                ref = next((b for b in heads if b in r["files"]), heads[0])
            elif not re.fullmatch(r"[0-9a-fA-F]{40}", ref):
                raise _ApiError(404, f"No commit found for the ref {ref}")
        path = path.strip("/")
        data = r["files"].get(ref, {}).get(path)
        if data is None:
            raise _ApiError(404, "Not Found",
                            docs="https://docs.github.com/rest/repos/contents#get-repository-content")
        return self._json(200, self._content_obj(r, ref, path, data))

    def _h_list_pull_commits(self, request, owner, repo, number):
        r = self._r(owner, repo)
        pr = self._pr_or_404(r, number)
        template = _first("pull_commits")
        return self._paginate(request, [self._commit_obj(r, c, template)
                                        for c in pr["pull_commits"]])

    def _h_get_pull(self, request, owner, repo, number):
        r = self._r(owner, repo)
        return self._json(200, self._pull_obj(r, self._pr_or_404(r, number), _template("pull")))

    def _h_list_reviews(self, request, owner, repo, number):
        r = self._r(owner, repo)
        pr = self._pr_or_404(r, number)
        return self._paginate(request, [self._review_obj(r, pr, rv) for rv in pr["reviews"]])

    def _h_list_review_comments(self, request, owner, repo, number):
        r = self._r(owner, repo)
        pr = self._pr_or_404(r, number)
        return self._paginate(request, [self._review_comment_obj(r, pr, c)
                                        for c in pr["review_comments"]])

    def _h_list_issue_comments(self, request, owner, repo, number):
        r = self._r(owner, repo)
        target = self._conversation_or_404(r, number)
        since = self._when(request, "since")
        return self._paginate(request, [self._issue_comment_obj(r, number, c)
                                        for c in self._comment_thread(target)
                                        if since is None or c["updated_at"] >= since])

    def _h_commit_pulls(self, request, owner, repo, sha):
        r = self._r(owner, repo)
        template = _first("commit_pulls")
        return self._paginate(request, [self._pull_obj(r, r["pulls"][n], template)
                                        for n in r["commits"].get(sha, [])])

    def _h_list_issues(self, request, owner, repo):
        r = self._r(owner, repo)
        if not r["has_issues"]:
            raise _ApiError(410, "Issues are disabled for this repo")
        args = request.args
        state = args.get("state", "open")
        wanted = {l.strip().lower() for l in args.get("labels", "").split(",") if l.strip()}
        since = _dt(args["since"]) if args.get("since") else None
        issues = [i for i in r["issues"].values()
                  if (state == "all" or i["state"] == state)
                  and wanted <= {l.lower() for l in i["labels"]}
                  and (since is None or i["updated_at"] >= since)]
        key = {"updated": "updated_at", "comments": "number"}.get(args.get("sort"), "created_at")
        issues.sort(key=lambda i: (i[key], i["number"]), reverse=args.get("direction", "desc") == "desc")
        template = _first("issues")
        return self._paginate(request, [self._issue_obj(r, i, copy.deepcopy(template)) for i in issues])

    def _h_create_issue(self, request, owner, repo):
        r = self._r(owner, repo)
        if not r["has_issues"] or r["archived"]:
            raise _ApiError(410, "Issues are disabled for this repo")
        data = request.get_json(silent=True) or {}
        docs = "https://docs.github.com/rest/issues/issues#create-an-issue"
        if not data.get("title"):
            raise _ApiError(422, "Validation Failed", [{"resource": "Issue", "field": "title",
                                                        "code": "missing_field"}], docs)
        assignees = list(data.get("assignees") or [])
        if data.get("assignee"):
            assignees.insert(0, data["assignee"])
        for login in assignees:
            if r["assignable"] is not None and login not in r["assignable"]:
                raise _ApiError(422, "Validation Failed", [{"value": login, "resource": "Issue",
                                                            "field": "assignees",
                                                            "code": "invalid"}], docs)
        labels = [l["name"] if isinstance(l, dict) else l for l in data.get("labels") or []]
        now = self.clock()
        issue = self._store_issue(r, data["title"], data.get("body"), labels, assignees,
                                  f"{self.app_slug}[bot]", "Bot", now, now, "open", None,
                                  seeded=False)
        return self._json(201, self._issue_obj(r, issue, _template("issue_created")))

    def _h_create_label(self, request, owner, repo):
        r = self._r(owner, repo)
        data = request.get_json(silent=True) or {}
        docs = "https://docs.github.com/rest/issues/labels#create-a-label"
        name = data.get("name")
        if not name:
            raise _ApiError(422, "Validation Failed", [{"resource": "Label", "field": "name",
                                                        "code": "missing_field"}], docs)
        if name.lower() in r["labels"]:
            raise _ApiError(422, "Validation Failed", [{"resource": "Label", "field": "name",
                                                        "code": "already_exists"}], docs)
        label = self._ensure_label(r, name, (data.get("color") or "ededed").lstrip("#"),
                                   data.get("description"))
        return self._json(201, self._label(r, label))

    def _h_list_installations(self, request):
        firsts: dict[int, dict] = {}
        for r in self._repos.values():
            firsts.setdefault(r["installation_id"], r)
        template = _first("installations")
        return self._paginate(request, [self._installation_obj(i, firsts[i], template)
                                        for i in sorted(firsts)])

    def _h_list_deliveries(self, request):
        # Newest first; GitHub pages these by an opaque cursor, not by page number.
        items = sorted(self._deliveries, key=lambda d: (d["delivered_at"], d["id"]), reverse=True)
        wanted = request.args.get("status")
        if wanted in ("success", "failure"):
            ok = wanted == "success"
            items = [d for d in items if (200 <= d["status_code"] < 400) == ok]
        per_page, start = self._per_page(request), 0
        cursor = request.args.get("cursor")
        if cursor:
            ids = [f"v1_{d['id']}" for d in items]
            if cursor not in ids:
                raise _ApiError(422, "Validation Failed",
                                [{"resource": "Delivery", "field": "cursor", "code": "invalid"}])
            start = ids.index(cursor)
        template = _first("hook_deliveries")
        resp = self._json(200, [self._delivery_obj(d, template)
                                for d in items[start:start + per_page]])
        if start + per_page < len(items):
            q = request.args.to_dict()
            q.update(per_page=str(per_page), cursor=f"v1_{items[start + per_page]['id']}")
            resp.headers["Link"] = f'<{self.url}{request.path}?{urlencode(q)}>; rel="next"'
        return resp

    def _h_redeliver(self, request, delivery_id):
        if not any(d["id"] == delivery_id for d in self._deliveries):
            raise _ApiError(404, "Not Found")
        self.redelivery_requests.append(delivery_id)
        return self._json(202, {})

    def _h_list_installation_repos(self, request):
        inst = request.environ["fakegithub.installation_id"]
        repos = [r for r in self._repos.values() if r["installation_id"] == inst]
        template = _template("installation_repositories")["repositories"][0]
        # Only the page asked for is rendered: an installation may have 10,000 repositories.
        return self._paginate(request, repos,
                              wrap=lambda page: {"total_count": len(repos),
                                                 "repository_selection": "all",
                                                 "repositories": [self._repository(r, template)
                                                                  for r in page]})

    def _h_list_pulls(self, request, owner, repo):
        r = self._r(owner, repo)
        args = request.args
        state, base, head = args.get("state", "open"), args.get("base"), args.get("head")
        pulls = [pr for pr in r["pulls"].values()
                 if (state == "all" or pr["state"] == state)
                 and (base is None or pr["base"] == base)
                 and (head is None or f"{r['owner']}:{pr['head']}" == head
                      or pr["head"] == head)]
        sort = args.get("sort", "created")
        key = "updated_at" if sort == "updated" else "created_at"
        # GitHub's default direction: desc for sort=created (or none), otherwise asc.
        direction = args.get("direction", "desc" if sort == "created" else "asc")
        pulls.sort(key=lambda pr: (pr[key], pr["number"]), reverse=direction == "desc")
        template = _first("pulls")
        return self._paginate(request, [self._pull_obj(r, pr, template) for pr in pulls])

    def _h_list_branches(self, request, owner, repo):
        r = self._r(owner, repo)
        protected = request.args.get("protected")
        names = sorted(b for b in r["branches"]
                       if protected is None or (b in r["protected"]) == (protected == "true"))
        template = _first("branches")
        return self._paginate(request, [self._short_branch(r, b, template) for b in names])

    def _h_list_commits(self, request, owner, repo):
        r = self._r(owner, repo)
        ref = request.args.get("sha") or r["default_branch"]
        if ref in r["branches"]:
            head = r["branches"][ref]
        elif ref in r["history"] or ref in r["commits"] or ref in r["branches"].values():
            head = ref  # a sha the fake knows; only add_commit commits have a history
        else:
            raise _ApiError(404, f"No commit found for SHA: {ref}")
        author = request.args.get("author")
        chain = [c for c in self._history(r, head, self._when(request, "since"),
                                          self._when(request, "until"))
                 if author is None or c["author"] == author]
        template = _first("commits")
        return self._paginate(request, [self._commit_obj(r, c, template) for c in chain])

    def _h_get_issue(self, request, owner, repo, number):
        r = self._r(owner, repo)
        return self._json(200, self._issue_obj(r, self._issue_or_404(r, number),
                                               _template("issue")))

    def _h_update_issue(self, request, owner, repo, number):
        r = self._r(owner, repo)
        issue = self._issue_or_404(r, number)
        self._writable(r)
        data = request.get_json(silent=True) or {}
        docs = "https://docs.github.com/rest/issues/issues#update-an-issue"

        def invalid(field, value):
            return _ApiError(422, "Validation Failed", [{"value": value, "resource": "Issue",
                                                         "field": field, "code": "invalid"}], docs)

        state, reason = data.get("state"), data.get("state_reason")
        if state is not None and state not in ("open", "closed"):
            raise invalid("state", state)
        if reason is not None and reason not in _STATE_REASONS:
            raise invalid("state_reason", reason)
        assignees = None
        if "assignees" in data:
            assignees = [a["login"] if isinstance(a, dict) else a for a in data["assignees"] or []]
            for login in assignees:
                if r["assignable"] is not None and login not in r["assignable"]:
                    raise invalid("assignees", login)
        # Validated: now apply everything at once.
        if data.get("title") is not None:
            issue["title"] = str(data["title"])
        if "body" in data:
            issue["body"] = data["body"]
        if "labels" in data:
            issue["labels"] = []
            self._attach_labels(r, issue, data["labels"] or [])
        if assignees is not None:
            issue["assignees"] = assignees
        now = self.clock()
        if state == "closed" and issue["state"] != "closed":
            login, type_ = self._bot()
            issue.update(state="closed", state_reason=reason or "completed", closed_at=now,
                         closed_by=login, closed_by_type=type_)
        elif state == "open" and issue["state"] != "open":
            issue.update(state="open", state_reason=reason or "reopened", closed_at=None)
        elif reason is not None:
            issue["state_reason"] = reason
        issue["updated_at"] = now
        return self._json(200, self._issue_obj(r, issue, _template("issue_updated")))

    def _h_create_issue_comment(self, request, owner, repo, number):
        r = self._r(owner, repo)
        target = self._conversation_or_404(r, number)
        self._writable(r)
        data = request.get_json(silent=True) or {}
        if not data.get("body"):
            raise _ApiError(422, "Validation Failed",
                            [{"resource": "IssueComment", "field": "body",
                              "code": "missing_field"}],
                            "https://docs.github.com/rest/issues/comments#create-an-issue-comment")
        comment = self._store_comment(target, *self._bot(), data["body"], self.clock())
        return self._json(201, self._issue_comment_obj(r, number, comment,
                                                       _template("issue_comment_created")))

    def _h_add_labels(self, request, owner, repo, number):
        r = self._r(owner, repo)
        issue = self._issue_or_404(r, number)
        self._writable(r)
        data = request.get_json(silent=True)
        names = data.get("labels") if isinstance(data, dict) else data
        if not isinstance(names, list) or not names:
            raise _ApiError(422, "Invalid request.\n\nNo labels were provided.", docs=(
                "https://docs.github.com/rest/issues/labels#add-labels-to-an-issue"))
        self._attach_labels(r, issue, names)
        issue["updated_at"] = self.clock()
        template = _first("issue_labels_added")
        return self._json(200, [self._label(r, r["labels"][n.lower()], template)
                                for n in issue["labels"]])

    def _h_remove_label(self, request, owner, repo, number, name):
        r = self._r(owner, repo)
        issue = self._issue_or_404(r, number)
        self._writable(r)
        present = [n for n in issue["labels"] if n.lower() == name.lower()]
        if not present:
            raise _ApiError(404, "Label does not exist",
                            docs="https://docs.github.com/rest/issues/labels#remove-a-label-from-an-issue")
        issue["labels"].remove(present[0])
        issue["updated_at"] = self.clock()
        template = _first("issue_label_removed")
        return self._json(200, [self._label(r, r["labels"][n.lower()], template)
                                for n in issue["labels"]])

    def _h_list_collaborators(self, request, owner, repo):
        r = self._r(owner, repo)
        access = self._access(r)
        org = self._orgs.get(r["owner"])
        affiliation = self._choice(request, "affiliation", ("all", "direct", "outside"), "all")
        logins = access if affiliation == "all" else [
            login for login in r["collaborators"]
            if affiliation == "direct" or (org is not None and login not in org["members"])]
        wanted = self._choice(request, "permission", (None, *_LEGACY.values()))
        floor = _RANK[_role(wanted)] if wanted else 0
        return self._paginate(request, [self._collaborator_obj(login, access[login])
                                        for login in sorted(logins)
                                        if _RANK[access[login]] >= floor])

    def _h_get_collaborator_permission(self, request, owner, repo, username):
        r = self._r(owner, repo)
        role = self._access(r).get(username) or (None if r["private"] else "read")
        out = _subst(_template("collaborator_permission"), self._pairs())
        # `permission` is the legacy base role: maintain counts as write, triage as read.
        out.update(permission={"maintain": "write", "triage": "read"}.get(role, role or "none"),
                   role_name=role or "none", user=self._collaborator_obj(username, role))
        return self._json(200, out)

    def _h_remove_collaborator(self, request, owner, repo, username):
        self._r(owner, repo)["collaborators"].pop(username, None)
        return Response(status=204)

    def _h_list_invitations(self, request, owner, repo):
        r = self._r(owner, repo)
        template = _first("repo_invitations")
        return self._paginate(request, [self._invitation_obj(r, i, template)
                                        for i in r["invitations"]])

    def _h_list_repo_teams(self, request, owner, repo):
        r = self._r(owner, repo)
        teams = self._orgs.get(r["owner"], {"teams": {}})["teams"]
        template = _first("repo_teams")
        return self._paginate(request, [self._team_obj(r["owner"], t, t["repos"][r["full_name"]],
                                                       template)
                                        for _, t in sorted(teams.items())
                                        if r["full_name"] in t["repos"]])

    def _h_list_team_members(self, request, org, team_slug):
        team = self._org_or_404(org)["teams"].get(team_slug)
        if team is None:
            raise _ApiError(404, "Not Found")
        # Every member is a plain member: the fake has no team maintainers.
        role = self._choice(request, "role", ("all", "member", "maintainer"), "all")
        members = [] if role == "maintainer" else sorted(team["members"])
        template = _first("team_members")
        return self._paginate(request, [{**template, **self._user(m)} for m in members])

    def _h_list_org_members(self, request, org):
        members = self._org_or_404(org)["members"]
        role = self._choice(request, "role", ("all", "admin", "member"), "all")
        logins = sorted(login for login, theirs in members.items() if role in ("all", theirs))
        docs = "https://docs.github.com/rest/orgs/members#list-organization-members"
        return self._paginate(request, [self._user(login)
                                        for login in self._without_2fa(request, logins, docs)])

    def _h_list_outside_collaborators(self, request, org):
        members = self._org_or_404(org)["members"]
        logins = sorted({login for r in self._repos.values() if r["owner"] == org
                         for login in r["collaborators"] if login not in members})
        docs = ("https://docs.github.com/rest/orgs/outside-collaborators"
                "#list-outside-collaborators-for-an-organization")
        return self._paginate(request, [self._user(login)
                                        for login in self._without_2fa(request, logins, docs)])

    def _h_manifest_form(self, request, org=None):
        """GitHub's "Create GitHub App" page, with the person clicking Create at once: redirect back
        to the manifest's redirect_url with a one-time code, as GitHub does."""
        manifest = json.loads(request.form["manifest"])
        code = f"code{next(self._ids)}"
        self.manifests.append({"manifest": manifest, "org": org})
        self._manifest_codes[code] = manifest
        query = urlencode({"code": code, "state": request.args.get("state", request.form.get("state", ""))})
        return Response(status=302, headers={"Location": f"{manifest['redirect_url']}?{query}"})

    def _h_manifest_conversion(self, request, code):
        manifest = self._manifest_codes.pop(code, None)
        if manifest is None:
            raise _ApiError(404, "Not Found")
        out = _subst(_template("manifest_conversion"), self._pairs())
        out.update(id=self.app_id, slug=self.app_slug, name=manifest.get("name", self.app_slug),
                   pem=self.private_key, webhook_secret="whsec-from-fake", client_id=f"Iv1.fake{self.app_id}",
                   html_url=f"{self.url}/apps/{self.app_slug}", permissions=manifest.get("default_permissions", {}),
                   events=manifest.get("default_events", []))
        return self._json(201, out)

    def _h_graphql(self, request):
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            raise _ApiError(400, "Problems parsing JSON")
        if not isinstance(body.get("query"), str):
            return self._json(200, {"errors": [
                {"message": "A query attribute must be specified and must be a string."}]})
        view = _GraphQLView(self, request.environ["fakegithub.installation_id"])
        result = graphql.graphql_sync(graphql_schema(), body["query"], root_value=view.root(),
                                      variable_values=body.get("variables"),
                                      operation_name=body.get("operationName"),
                                      field_resolver=_resolve_field)
        return self._json(200, _graphql_answer(result))

    def _h_list_activity(self, request, owner, repo):
        """Every ref update with its actor and GitHub's own timestamp, newest first by default,
        paged by opaque cursors (`after`, `before`) in the Link header, as GitHub pages them."""
        r = self._r(owner, repo)
        args = request.args
        ref = args.get("ref")
        periods = {"day": 1, "week": 7, "month": 30, "quarter": 91, "year": 365}
        period = self._choice(request, "time_period", (None, *periods))
        items = [a for a in r["activity"]
                 if (ref is None or a["ref"] in (ref, f"refs/heads/{ref}"))
                 and args.get("actor") in (None, a["actor"])
                 and args.get("activity_type") in (None, a["type"])
                 and (period is None or a["timestamp"] >= self.clock() - timedelta(days=periods[period]))]
        items.sort(key=lambda a: (a["timestamp"], a["id"]),
                   reverse=self._choice(request, "direction", ("asc", "desc"), "desc") == "desc")
        ids = [a["id"] for a in items]
        per_page, start = self._per_page(request), 0
        for name, shift in (("after", 1), ("before", 0)):
            cursor = args.get(name)
            if cursor:
                try:
                    start = ids.index(int(base64.b64decode(cursor).decode())) + shift
                except ValueError:
                    raise _ApiError(422, "Validation Failed",
                                    [{"resource": "Activity", "field": name, "code": "invalid"}]) from None
                if name == "before":
                    start = max(start - per_page, 0)
        page = items[start:start + per_page]
        resp = self._json(200, [{
            "id": a["id"], "node_id": f"RA_fake{a['id']}", "before": a["before"], "after": a["after"],
            "ref": a["ref"], "timestamp": _iso(a["timestamp"]), "activity_type": a["type"],
            "actor": self._user(a["actor"]) if a["actor"] else None} for a in page])
        if start + per_page < len(items):
            q = {k: v for k, v in args.items() if k not in ("after", "before")}
            q.update(per_page=str(per_page), after=base64.b64encode(str(page[-1]["id"]).encode()).decode())
            resp.headers["Link"] = f'<{self.url}{request.path}?{urlencode(q)}>; rel="next"'
        return resp

    def _h_slack(self, request, hook):
        data = request.get_json(force=True, silent=True)
        if data is None:
            return Response("invalid_payload", status=400, mimetype="text/plain")
        self.slack_messages.append(data)
        return Response("ok", status=200, mimetype="text/plain")


_PULL_ORDER = {"CREATED_AT": lambda pr: pr["created_at"],
               "UPDATED_AT": lambda pr: pr["updated_at"],
               "COMMENTS": lambda pr: len(pr["issue_comments"])}

# A comment type's node id prefix (as in REST's node_id) and its html_url anchor.
_COMMENT_IDS = {"IssueComment": ("IC", "issuecomment-"),
                "PullRequestReviewComment": ("PRRC", "discussion_r")}


class _GraphQLView:
    """One GraphQL request's view of a FakeGitHub, as the dicts graphql-core's default
    resolvers read: a value is returned as is, a callable is called with (info, **arguments).
    Connections and object links are callables, so only what a query asks for is built.
    Dicts that can stand for an interface or union carry `__typename`."""

    def __init__(self, fake: FakeGitHub, installation_id: int):
        self.fake, self.installation_id = fake, installation_id

    def root(self) -> dict:
        return {"repository": self.repository, "node": self.node}

    def _repos(self):
        return [r for r in self.fake._repos.values()
                if r["installation_id"] == self.installation_id]

    # ---------------------------------------------------------------- Query
    def repository(self, info, owner: str, name: str, followRenames=None):
        r = next((r for r in self._repos() if r["full_name"] == f"{owner}/{name}"), None)
        if r is None:
            raise _GraphQLError(
                f"Could not resolve to a Repository with the name '{owner}/{name}'.", "NOT_FOUND")
        return self._repository(r)

    def node(self, info, id: str):
        kind, _, number = id.partition("_fake")
        found = self._find(kind, int(number)) if number.isdigit() else None
        if found is None:
            raise _GraphQLError(f"Could not resolve to a node with the global id of '{id}'",
                                "NOT_FOUND")
        return found

    def _find(self, kind: str, ident: int) -> dict | None:
        for r in self._repos():
            for pr in r["pulls"].values():
                if kind == "PR" and pr["id"] == ident:
                    return self._pull(r, pr)
                if kind == "PRR":
                    rv = next((rv for rv in self._reviews_of(pr) if rv["id"] == ident), None)
                    if rv is not None:
                        return self._review(r, pr, rv)
        return None

    # ---------------------------------------------------------------- connections
    @staticmethod
    def _page(info, items: list, render, first=None, after=None, last=None, before=None,
              **unsupported) -> dict:
        field = info.field_name
        # Only arguments the query gives: the schema's defaults (orderBy...) arrive here too.
        given = [arg.name.value for node in info.field_nodes for arg in node.arguments or ()
                 if arg.name.value in unsupported]
        if given:
            raise _GraphQLError(f"fakegithub does not implement {field}({given[0]}:)")
        if first is None and last is None:
            raise _GraphQLError(f"You must provide a `first` or `last` value to properly paginate "
                                f"the `{field}` connection.", "MISSING_PAGINATION_BOUNDARIES")
        for arg, n in (("first", first), ("last", last)):
            if n is not None and not 0 <= n <= _MAX_PAGE:
                raise _GraphQLError(f"Requesting {n} records on the `{field}` connection exceeds "
                                    f"the `{arg}` limit of {_MAX_PAGE} records.",
                                    "EXCESSIVE_PAGINATION")
        start = _offset(after) + 1 if after else 0
        end = min(_offset(before) if before else len(items), len(items))
        if first is not None:
            end = min(end, start + first)
        if last is not None:
            start = max(start, end - last)
        window = range(start, end)
        nodes, cursors = [render(items[i]) for i in window], [_cursor(i) for i in window]
        return {"totalCount": len(items), "nodes": nodes,
                "edges": [{"cursor": c, "node": n} for c, n in zip(cursors, nodes)],
                "pageInfo": {"hasNextPage": end < len(items), "hasPreviousPage": start > 0,
                             "startCursor": cursors[0] if cursors else None,
                             "endCursor": cursors[-1] if cursors else None}}

    def _connection(self, items, render):
        """A connection field over items(), evaluated only if the query asks for the field."""
        return lambda info, **args: self._page(info, items(), render, **args)

    # ---------------------------------------------------------------- objects
    def _web(self, r) -> str:
        return f"{self.fake.url}/{r['full_name']}"

    def _actor(self, login: str | None, type_: str = "User") -> dict | None:
        if not login:
            return None  # a deleted account
        if type_ == "Bot" or login.endswith("[bot]"):
            name = login.removesuffix("[bot]")  # GraphQL names bots without REST's suffix
            return {"__typename": "Bot", "login": name, "url": f"{self.fake.url}/apps/{name}"}
        return {"__typename": "User", "login": login, "url": f"{self.fake.url}/{login}"}

    def _repository(self, r) -> dict:
        return {"__typename": "Repository", "id": f"R_fake{r['id']}", "databaseId": r["id"],
                "name": r["name"], "nameWithOwner": r["full_name"], "url": self._web(r),
                "isArchived": r["archived"], "isPrivate": r["private"],
                "hasIssuesEnabled": r["has_issues"],
                "defaultBranchRef": self._ref(r, r["default_branch"]),
                "ref": lambda info, qualifiedName: self._ref(
                    r, qualifiedName.removeprefix("refs/heads/")),
                "pullRequests": lambda info, **args: self._pull_requests(info, r, **args),
                "pullRequest": lambda info, number: self._pull_by_number(r, number),
                "object": lambda info, oid=None, expression=None: self._object(r, oid or expression)}

    def _object(self, r, ident: str | None) -> dict | None:
        """A commit by sha (or a branch name as `expression`), None when GitHub has no such object."""
        sha = r["branches"].get(ident, ident)
        known = sha in r["history"] or sha in r["commits"] or sha in r["branches"].values()
        return self._commit(r, self._record(r, sha)) if known else None

    def _pull_by_number(self, r, number: int) -> dict:
        if number not in r["pulls"]:
            raise _GraphQLError(f"Could not resolve to a PullRequest with the number of {number}.", "NOT_FOUND")
        return self._pull(r, r["pulls"][number])

    def _ref(self, r, branch: str) -> dict | None:
        if branch not in r["branches"]:
            return None
        return {"__typename": "Ref", "id": f"REF_fake{r['id']}:{branch}", "name": branch,
                "prefix": "refs/heads/",
                "branchProtectionRule": lambda info: self._protection_rule(r, branch),
                "target": lambda info: self._commit(r, self._record(r, r["branches"][branch]))}

    @staticmethod
    def _protection_rule(r, branch: str) -> dict | None:
        """The classic protection rule matching `branch` (literal names only in the fake)."""
        if branch not in r["protected"]:
            return None
        p = {**_DEFAULT_PROTECTION, **r["protection"].get(branch, {})}
        return {"__typename": "BranchProtectionRule", "id": f"BPR_fake{r['id']}:{branch}",
                "pattern": branch, "requiresApprovingReviews": bool(p["require_pr"]),
                "requiredApprovingReviewCount": p["approvals"],
                "allowsForcePushes": bool(p["allow_force_pushes"]), "allowsDeletions": bool(p["allow_deletions"]),
                "isAdminEnforced": bool(p["enforce_admins"])}

    def _pull_requests(self, info, r, states=None, orderBy=None, baseRefName=None,
                       headRefName=None, **paging) -> dict:
        pulls = [pr for pr in r["pulls"].values()
                 if (states is None or self._state(pr) in states)
                 and baseRefName in (None, pr["base"]) and headRefName in (None, pr["head"])]
        order = orderBy or {"field": "CREATED_AT", "direction": "ASC"}  # GitHub's default
        key = _PULL_ORDER[order["field"]]
        pulls.sort(key=lambda pr: (key(pr), pr["number"]), reverse=order["direction"] == "DESC")
        return self._page(info, pulls, lambda pr: self._pull(r, pr), **paging)

    @staticmethod
    def _state(pr) -> str:
        return "MERGED" if pr["merged"] else pr["state"].upper()

    def _pull(self, r, pr) -> dict:
        n = pr["number"]
        url = f"{self._web(r)}/pull/{n}"
        return {
            "__typename": "PullRequest", "id": f"PR_fake{pr['id']}", "databaseId": pr["id"],
            "number": n, "title": pr["title"], "body": pr["body"] or "", "url": url,
            "permalink": url, "state": self._state(pr), "merged": pr["merged"],
            "closed": pr["state"] == "closed", "createdAt": _iso(pr["created_at"]),
            "updatedAt": _iso(pr["updated_at"]), "mergedAt": _iso(pr["merged_at"]),
            "closedAt": _iso(pr["merged_at"]) if pr["state"] == "closed" else None,
            "baseRefName": pr["base"], "baseRefOid": r["branches"].get(pr["base"]),
            "headRefName": pr["head"], "headRefOid": pr["head_sha"],
            "author": self._actor(pr["author"], pr["author_type"]),
            **self._edits({**pr, "user": pr["author"]}),
            "mergedBy": self._actor(pr["merged_by"]),
            "mergeCommit": (lambda info: self._merge_commit(r, pr)) if pr["merged"] else None,
            "labels": self._connection(lambda: pr["labels"],
                                       lambda name: {"__typename": "Label", "name": name}),
            "reviews": self._connection(lambda: self._reviews_of(pr),
                                        lambda rv: self._review(r, pr, rv)),
            "comments": self._connection(lambda: pr["issue_comments"],
                                         lambda c: self._comment(r, pr, c, "IssueComment")),
            "commits": self._connection(lambda: pr["pull_commits"],
                                        lambda c: {"__typename": "PullRequestCommit",
                                                   "id": f"PURC_fake{pr['id']}:{c['sha']}",
                                                   "url": f"{url}/commits/{c['sha']}",
                                                   "commit": self._commit(r, c)}),
        }

    def _merge_commit(self, r, pr) -> dict:
        return self._commit(r, self._record(
            r, pr["merge_commit_sha"], author=pr["merged_by"], committed_at=pr["merged_at"],
            message=f"Merge pull request #{pr['number']} from {r['owner']}/{pr['head']}"))

    @staticmethod
    def _reviews_of(pr) -> list[dict]:
        """pr's reviews in creation order, each with its inline comments (as "comments")."""
        threads = {rv["id"]: [] for rv in pr["reviews"]}
        reviews = [{**rv, "comments": threads[rv["id"]]} for rv in pr["reviews"]]
        for c in pr["review_comments"]:
            if c.get("review_id") in threads:
                threads[c["review_id"]].append(c)
            else:  # a single comment: GitHub makes it a COMMENTED review of its own
                reviews.append({"id": c["id"], "user": c["user"], "user_type": c["user_type"],
                                "state": "COMMENTED", "body": "", "submitted_at": c["created_at"],
                                "commit_id": pr["head_sha"], "comments": [c]})
        return sorted(reviews, key=lambda rv: rv["id"])  # ids count up in creation order

    def _review(self, r, pr, rv) -> dict:
        return {
            "__typename": "PullRequestReview", "id": f"PRR_fake{rv['id']}", "databaseId": rv["id"],
            "state": rv["state"], "body": rv["body"] or "",
            "submittedAt": _iso(rv["submitted_at"]), "createdAt": _iso(rv["submitted_at"]),
            "url": f"{self._web(r)}/pull/{pr['number']}#pullrequestreview-{rv['id']}",
            "author": self._actor(rv["user"], rv["user_type"]),
            "authorCanPushToRepository": _RANK.get(self.fake._access(r).get(rv["user"]), 0) >= _RANK["write"],
            **self._edits(rv),
            "commit": lambda info: self._commit(r, self._record(r, rv["commit_id"], pr)),
            "comments": self._connection(lambda: rv["comments"], lambda c: self._comment(
                r, pr, c, "PullRequestReviewComment")),
        }

    def _comment(self, r, pr, c, typename: str) -> dict:
        prefix, anchor = _COMMENT_IDS[typename]
        return {"__typename": typename, "id": f"{prefix}_fake{c['id']}", "databaseId": c["id"],
                "author": self._actor(c["user"], c["user_type"]), "body": c["body"] or "",
                "createdAt": _iso(c["created_at"]), "updatedAt": _iso(c["updated_at"]),
                "url": f"{self._web(r)}/pull/{pr['number']}#{anchor}{c['id']}", **self._edits(c)}

    def _edits(self, item) -> dict:
        """lastEditedAt, editor and userContentEdits of an edited text (edit_comment and friends): as on
        GitHub, once edited its history also holds the first version, by its author; newest first."""
        edits = item.get("edits", [])
        first = ({"editor": item.get("user", item.get("author")), "at": item.get("created_at")
                  or item.get("submitted_at")},) if edits else ()
        history = [*reversed(edits), *first]

        def node(e: dict) -> dict:
            at = _iso(e["at"])
            return {"__typename": "UserContentEdit", "id": f"UCE_fake{id(e)}", "editedAt": at, "createdAt": at,
                    "updatedAt": at, "editor": self._actor(e["editor"]), "diff": None, "deletedAt": None,
                    "deletedBy": None}

        return {"lastEditedAt": _iso(edits[-1]["at"]) if edits else None,
                "editor": self._actor(edits[-1]["editor"]) if edits else None,
                "userContentEdits": self._connection(lambda: history, node)}

    def _record(self, r, sha: str, pr=None, **stub) -> dict:
        """Commit `sha` as the fake knows it (added with add_commit, or one of pr's commits);
        one it knows only by sha gets `stub`'s fields."""
        known = r["history"].get(sha) or next(
            (c for c in (pr["pull_commits"] if pr else ()) if c["sha"] == sha), None)
        return known or {"sha": sha, "message": "", "author": None,
                         "committed_at": self.fake.clock(), "parents": [], **stub}

    def _commit(self, r, c) -> dict:
        sha, login = c["sha"], c["author"]
        person = {"name": login or "Unknown",
                  "email": f"{login or 'unknown'}@users.noreply.github.com",
                  "date": _iso(c["committed_at"]),
                  "user": {"login": login, "url": f"{self.fake.url}/{login}"} if login else None}
        return {
            "__typename": "Commit", "id": f"C_fake{sha[:12]}", "oid": sha,
            "abbreviatedOid": sha[:7],
            "message": c["message"], "messageHeadline": c["message"].split("\n", 1)[0],
            "committedDate": _iso(c["committed_at"]), "authoredDate": _iso(c["committed_at"]),
            "url": f"{self._web(r)}/commit/{sha}", "author": person, "committer": person,
            "history": lambda info, since=None, until=None, **paging: self._page(
                info, self.fake._history(r, sha, _timestamp(since), _timestamp(until)),
                lambda h: self._commit(r, h), **paging),
            "associatedPullRequests": self._connection(
                lambda: [r["pulls"][n] for n in r["commits"].get(sha, []) if n in r["pulls"]],
                lambda pr: self._pull(r, pr)),
        }


@pytest.fixture
def fake_github():
    """Import into a test module (or conftest) to get a started FakeGitHub."""
    with FakeGitHub() as fake:
        yield fake
