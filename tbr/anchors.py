"""Anchors: the audit log's head, published once a day where GitHub timestamps it and tbr cannot change it.

A chain shows any record changed, inserted or removed, but not its own last records cut off, nor a
whole history rewritten by someone holding the key. So once a day tbr comments the head (`#SEQ
sha256:HASH`) on a pinned `TBR audit anchors` issue in the tracking repository, through the actions
queue like every other post (keyed by the date: never posted twice). `tbr audit verify` reads those
comments back (the App's own only: anyone with write access can comment there) and checks the log
still holds every one, so rewriting or truncating history is caught up to the last day. The weekly
digest prints the head too.
"""

from __future__ import annotations

from datetime import datetime

import structlog

from tbr import audit
from tbr.store import iso

log = structlog.get_logger("tbr.anchors")

TITLE = "TBR audit anchors"
LABEL = "tbr:audit"
ISSUE_MARK = "<!-- tbr:anchors -->"
MARK = "<!-- tbr:anchor="


def queue_daily(engine, now: datetime) -> bool:
    """Queue today's anchor (local date), with the head as it is now; False if queued already or nowhere to go."""
    repo = engine.settings.tracking_repo
    if repo is None:
        return False
    day = now.astimezone(engine.tz).date().isoformat()
    with engine.store.write():
        seq, head = audit.head(engine.store.db)
        return seq > 0 and engine.store.add_action(f"anchor:{day}", "anchor", repo, 0, now, seq=seq, hash=head,
                                                   at=iso(now))


def text(seq: int, head: str) -> str:
    """How a head is written for people, the digest and `verify --expect` alike."""
    return f"#{seq} sha256:{head}"


def publish(engine, repo: str, data: dict) -> None:
    """Comment the queued head on the anchors issue (opened, and pinned, the first time)."""
    gw = engine.gateway
    inst = gw.installation_for(repo)
    number = _issue(engine, inst, repo)
    mark = f"{MARK}{data['seq']} -->"
    # A retry after a lost answer: the comment may be there already (only the App's own count).
    if any(mark in c["body"] for c in gw.own_comments(inst, repo, number)):
        return
    gw.post_comment(inst, repo, number, f"{mark}\nAudit log head: **{text(data['seq'], data['hash'])}**"
                    f" (as of {data['at'][:16].replace('T', ' ')} UTC). `tbr audit verify` checks the log still"
                    " holds it.")
    log.info("anchor.published", repo=repo, issue=number, seq=data["seq"])


def _issue(engine, inst: int, repo: str) -> int:
    gw = engine.gateway
    found = next((i["number"] for i in gw.own_issues(inst, repo, LABEL, None) if ISSUE_MARK in i["body"]), None)
    if found:
        return found
    gw.ensure_label(inst, repo, LABEL, "5319e7", "tbr's published audit log heads")
    issue = gw.create_issue(inst, repo, TITLE, f"{ISSUE_MARK}\nOnce a day tbr comments the head of its audit log"
                            " here, where GitHub timestamps it and tbr cannot change it. `tbr audit verify` checks"
                            " every one. Please leave this issue open and its comments alone.", [LABEL], [])
    try:
        gw.pin_issue(inst, repo, issue.number)
    except Exception as e:  # pinning is for people; the anchors work without it
        log.warning("anchor.not_pinned", repo=repo, issue=issue.number, error=str(e))
    return issue.number


def published(gateway, repo: str) -> list[tuple[int, str, str]]:
    """Every anchor the App published: (seq, hash, comment url)."""
    inst = gateway.installation_for(repo)
    out = []
    for issue in gateway.own_issues(inst, repo, LABEL, None):
        if ISSUE_MARK not in issue["body"]:
            continue
        for c in gateway.own_comments(inst, repo, issue["number"]):
            line = c["body"].split("**", 2)
            head = audit.parse_head(line[1]) if c["body"].startswith(MARK) and len(line) == 3 else None
            if head:
                out.append((*head, c["url"]))
    return out
