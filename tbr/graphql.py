"""The GraphQL queries tbr sends, and the translation of their answers into the classifier's facts.

One query fetches a PR with its reviews, review comments, comments and commits, where REST takes
five requests; another a page of a hundred merged PRs the same way, so backfilling a year of history
costs a few requests per thousand PRs. An inner list that overflows its first page is paged on its
own through `node(id:)`. Pure: no I/O here; the gateway sends these queries.
"""

from __future__ import annotations

import re
from datetime import datetime

from tbr.classify import GHOST, Actor, Comment, CommitFact, Edits, PullFacts, Review, coauthors

PAGE_INFO = "pageInfo { hasNextPage endCursor }"
ACTOR = "author { login __typename }"
# Who last edited a text and when: GitHub's own record, which the text's author cannot rewrite. The last
# editor is enough: text someone else wrote in stays theirs until the author edits it again, which makes
# it the author's. Scalars cost nothing; `userContentEdits`, a connection in every comment of every
# review of every PR, would triple a backfill's GraphQL rate-limit cost.
EDITS = "lastEditedAt editor { login }"
ISSUE_COMMENT = f"nodes {{ {ACTOR} body createdAt url {EDITS} }}"
REVIEW_COMMENT = f"nodes {{ {ACTOR} body createdAt url {EDITS} }}"
# A bot is no GitHub User, so a bot's commit has no `user`: its noreply email names it.
GIT_ACTOR = "user { login } email"
COMMIT = f"nodes {{ commit {{ oid message committedDate author {{ {GIT_ACTOR} }} committer {{ {GIT_ACTOR} }} }} }}"
REVIEW = (f"nodes {{ id state submittedAt url body {ACTOR} authorCanPushToRepository commit {{ oid }} {EDITS}"
          f" comments(first: 10) {{ {PAGE_INFO} {REVIEW_COMMENT} }} }}")

# The inner lists of a PR (and of a review), with the selection each page of them needs.
INNER = {
    "reviews": ("PullRequest", REVIEW),
    "comments": ("PullRequest", ISSUE_COMMENT),
    "commits": ("PullRequest", COMMIT),
    "review_comments": ("PullRequestReview", REVIEW_COMMENT),
}
FIRST_PAGE = {"reviews": 30, "comments": 30, "commits": 50}

# Everything the classifier needs of a PR, in one request (inner lists continue with more_query).
PULL_FIELDS = f"""
        id number state title url body updatedAt mergedAt baseRefName headRefName headRefOid {EDITS}
        {ACTOR}
        mergedBy {{ login __typename }}
        mergeCommit {{ oid }}
        labels(first: 20) {{ nodes {{ name }} }}
        reviews(first: {FIRST_PAGE["reviews"]}) {{ {PAGE_INFO} {REVIEW} }}
        comments(first: {FIRST_PAGE["comments"]}) {{ {PAGE_INFO} {ISSUE_COMMENT} }}
        commits(first: {FIRST_PAGE["commits"]}) {{ {PAGE_INFO} {COMMIT} }}
"""

PULL = f"""
query PullFacts($owner: String!, $name: String!, $number: Int!) {{
  repository(owner: $owner, name: $name) {{
    pullRequest(number: $number) {{ {PULL_FIELDS} }}
  }}
}}
"""

PULLS = f"""
query BackfillPulls($owner: String!, $name: String!, $first: Int!, $after: String) {{
  repository(owner: $owner, name: $name) {{
    databaseId
    nameWithOwner
    defaultBranchRef {{ name }}
    pullRequests(states: MERGED, orderBy: {{field: UPDATED_AT, direction: DESC}}, first: $first, after: $after) {{
      {PAGE_INFO}
      nodes {{ {PULL_FIELDS} }}
    }}
  }}
}}
"""

HISTORY = f"""
query BackfillHistory($owner: String!, $name: String!, $ref: String!, $since: GitTimestamp!, $first: Int!,
                      $after: String) {{
  repository(owner: $owner, name: $name) {{
    ref(qualifiedName: $ref) {{
      target {{
        ... on Commit {{
          history(since: $since, first: $first, after: $after) {{
            {PAGE_INFO}
            nodes {{
              oid committedDate messageHeadline url
              author {{ user {{ login }} }}
              associatedPullRequests(first: 5) {{ nodes {{ number merged baseRefName }} }}
            }}
          }}
        }}
      }}
    }}
  }}
}}
"""


COMMITS_PER_QUERY = 100  # a push's commits are matched to merged PRs a hundred at a time


def commit_pulls_query(count: int) -> str:
    """One query for the PRs GitHub associates with each of `count` commits ($c0, $c1, ...), where
    REST takes a request per commit: a 2,048-commit push costs 21 requests, not 2,048."""
    params = "".join(f", $c{i}: GitObjectID!" for i in range(count))
    fields = "".join(f"""
    c{i}: object(oid: $c{i}) {{ ... on Commit {{ associatedPullRequests(first: 10) {{
      nodes {{ number merged baseRefName }} }} }} }}""" for i in range(count))
    return f"""
query CommitPulls($owner: String!, $name: String!{params}) {{
  repository(owner: $owner, name: $name) {{{fields}
  }}
}}
"""


def merged_into(commit: dict | None, branch: str) -> list[int]:
    """The numbers of the merged PRs into `branch` among a commit's associated PRs (None: no such commit)."""
    nodes = ((commit or {}).get("associatedPullRequests") or {}).get("nodes") or []
    return [n["number"] for n in nodes if n and n["merged"] and n["baseRefName"] == branch]

def more_query(inner: str) -> str:
    """The query for the next page of one inner list of a PR or review."""
    typename, selection = INNER[inner]
    field = "comments" if inner == "review_comments" else inner
    return f"""
query BackfillMore($id: ID!, $after: String) {{
  node(id: $id) {{
    ... on {typename} {{
      {field}(first: 100, after: $after) {{ {PAGE_INFO} {selection} }}
    }}
  }}
}}
"""


def when(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


def actor(node: dict | None) -> Actor:
    """GraphQL names a bot without the "[bot]" REST and webhooks add: add it, so one policy fits all."""
    if not node:
        return Actor("ghost")  # a deleted account
    if node.get("__typename") == "Bot":
        return Actor(f"{node['login']}[bot]", "Bot")
    return Actor(node["login"])


NOREPLY_RE = re.compile(r"^(?:\d+\+)?([A-Za-z0-9-]+(?:\[bot\])?)@users\.noreply\.github\.com$", re.IGNORECASE)


def _user(git_actor: dict | None) -> str | None:
    login = ((git_actor or {}).get("user") or {}).get("login")
    if login:
        return login
    m = NOREPLY_RE.match((git_actor or {}).get("email") or "")
    return m.group(1) if m and m.group(1).endswith("[bot]") else None


def edits(node: dict) -> Edits:
    """When a text was last edited and by whom (a deleted account: ghost)."""
    if not node.get("lastEditedAt"):
        return Edits()
    return Edits(when(node["lastEditedAt"]), ((node.get("editor") or {}).get("login") or GHOST,))


def pull_facts(repo: str, node: dict) -> PullFacts:
    """A merged PR node, its inner lists already complete, as the classifier's facts."""
    reviews = node["reviews"]["nodes"]
    comments = [Comment(actor(c["author"]), c["body"] or "", when(c["createdAt"]), c["url"], "comment",
                        edits=edits(c))
                for c in node["comments"]["nodes"]]
    # A review's comments are its author's: GitHub says whether that author can push.
    comments += [Comment(actor(c["author"]), c["body"] or "", when(c["createdAt"]), c["url"], "review comment",
                         r.get("authorCanPushToRepository") if actor(c["author"]).same(actor(r["author"])) else None,
                         edits(c))
                 for r in reviews for c in r["comments"]["nodes"]]
    return PullFacts(
        repo=repo,
        number=node["number"],
        url=node["url"],
        title=node["title"],
        author=actor(node["author"]),
        merged_by=actor(node["mergedBy"]) if node["mergedBy"] else None,
        merged_at=when(node["mergedAt"]),  # None while open
        reviews=tuple(Review(actor(r["author"]), r["state"], when(r["submittedAt"]), r["url"], r["body"] or "",
                             (r["commit"] or {}).get("oid"), r.get("authorCanPushToRepository"), edits(r))
                      for r in reviews),
        comments=tuple(comments),
        head_sha=node["headRefOid"],
        base=node["baseRefName"],
        commits=tuple(CommitFact(c["commit"]["oid"], _user(c["commit"]["author"]), _user(c["commit"]["committer"]),
                                 when(c["commit"]["committedDate"]), coauthors(c["commit"]["message"]),
                                 c["commit"]["message"] or "")
                      for c in node["commits"]["nodes"]),
        body=node["body"] or "",
        head_ref=node["headRefName"],
        labels=tuple(label["name"] for label in node["labels"]["nodes"]),
        body_edits=edits(node),
    )


# What a push brought (the sweep): the head's merged PRs and its history, read back to the
# commit the branch pointed at before (or, after a force push, to where the two histories meet).
PUSHED = """fragment Pushed on Commit {
  associatedPullRequests(first: 5) { nodes { number merged mergedAt baseRefName title url author { login } } }
  history(first: DEPTH) { nodes { oid messageHeadline url committedDate author { user { login } } } }
}"""

# The default branch's head and classic protection (the daily controls check, batched).
PROTECTION = """fragment Protection on Repository {
  defaultBranchRef { name target { oid } branchProtectionRule { requiresApprovingReviews allowsForcePushes allowsDeletions } }
}"""


def pushed(push: dict, node: dict) -> dict:
    """`push` with the commits it brought (newest first) and, for a history rewrite, the ones it dropped."""
    after = node.get("after") or {}
    history = (after.get("history") or {}).get("nodes") or []
    before = [c["oid"] for c in (((node.get("before") or {}).get("history") or {}).get("nodes") or [])]
    old, new = set(before), {c["oid"] for c in history}
    commits = []
    # A new branch: its history was on another branch before; only its head can be new there.
    for c in history if node.get("before") else history[:1]:
        if c["oid"] in old:
            break  # where the branch was: the rest was there before this push
        commits.append({"sha": c["oid"], "url": c["url"], "message": c["messageHeadline"],
                        "author": _user(c["author"]), "at": when(c["committedDate"])})
    dropped = []
    for sha in before:
        if sha in new:
            break
        dropped.append(sha)
    pulls = [{"number": p["number"], "base": p["baseRefName"], "merged_at": when(p["mergedAt"]), "title": p["title"],
              "url": p["url"], "author": (p["author"] or {}).get("login") or "ghost"}
             for p in ((after.get("associatedPullRequests") or {}).get("nodes") or []) if p["merged"]]
    return {**push, "commits": commits, "dropped": dropped, "pulls": pulls, "found": bool(after)}


def classic_protection(rule: dict | None) -> dict | None:
    """A BranchProtectionRule as the controls check reads REST's branch protection."""
    if rule is None:
        return None
    return {"required_pull_request_reviews": bool(rule["requiresApprovingReviews"]),
            "allow_force_pushes": bool(rule["allowsForcePushes"]), "allow_deletions": bool(rule["allowsDeletions"])}
