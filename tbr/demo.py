"""`tbr demo`: a week of tbr, in seconds, against the simulated GitHub the tests use.

tbr's web app listens on loopback and gets signed webhooks over HTTP; GitHub is tests/fakegithub.py,
also on loopback, with a small organization (acme: api, web, and compliance for the follow-ups). The
clock is simulated: the week runs in ten-minute steps, and at each step tbr does what its scheduler
and worker would (heartbeats, reminders, the digest, hourly sweeps, the work due). Nothing leaves
this machine. The simulation is the tests' own, so it needs a clone with the test extras installed.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import sys
import tempfile
import threading
import time as timer
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx

from tbr import audit, config, evidence

ROOT = Path(__file__).resolve().parent.parent  # the clone, when tbr is installed editable (pip install -e)
TZ = ZoneInfo("Europe/Berlin")
ORG, API, WEB, TRACK = "acme", "acme/api", "acme/web", "acme/compliance"
STEP = timedelta(minutes=10)  # within audit.GAP: the heartbeats show no downtime
SWEEP_HOURS = 6  # fewer than the default hourly sweeps, so the week takes seconds


def _simulation():
    """The tests' fake GitHub, webhook payloads and wiring of tbr to them, imported from the clone."""
    if not (ROOT / "tests" / "fakegithub.py").is_file():
        raise SystemExit(f"tbr: the demo runs from a clone of tbr (it uses tests/fakegithub.py), installed with"
                         f" pip install -e; {ROOT} has no tests/")
    sys.path.insert(0, str(ROOT))
    try:
        from tests import conftest, fakegithub, payloads
    except ImportError as e:
        raise SystemExit(f"tbr: the demo needs the test extras ({e.name} is missing):"
                         " .venv/bin/pip install -c requirements.lock -e '.[test]'") from None
    return conftest, fakegithub, payloads


def at(day: int, hour: int, minute: int = 0) -> datetime:
    """A time of the demo week: day 0 is Monday 30 November 2026, in Berlin."""
    return datetime(2026, 11, 30, hour, minute, tzinfo=TZ) + timedelta(days=day)


def say(when: datetime, text: str) -> None:
    print(f"{when.astimezone(TZ):%a %d %b %H:%M}  {text}", flush=True)


class Week:
    """tbr, the fake GitHub and the clock, and the moves of the week's people."""

    def __init__(self, out: Path, conftest, fakegithub, payloads):
        self.out, self.payloads = out, payloads
        self.clock = conftest.Clock(at(0, 0))
        self.next_sweep = self.clock.now
        self.github = fakegithub.FakeGitHub().start()
        self.github.clock = self.clock
        self.repos = {name: self.github.add_repo(name) for name in (API, WEB, TRACK)}
        for login in ("alice", "bob", "carol", "dave", "erin"):
            self.github.add_member(ORG, login)
        self.github.add_team(ORG, "engineering", ["alice", "bob", "carol", "dave", "erin"],
                             {API: "write", WEB: "write", TRACK: "write"})
        self.github.add_team(ORG, "security", ["sam"], {TRACK: "maintain"})
        self.github.put_file(WEB, ".github/tbr.yml", "ticket_pattern: 'INC-[0-9]+'\n")
        self.settings = config.Settings(
            app_id=self.github.app_id, private_key=self.github.private_key, webhook_secret=secrets.token_hex(16),
            api_url=self.github.url, db_path=str(out / "tbr.db"), tracking_repo=TRACK, timezone=TZ.key,
            escalate="@acme/security", access_reviews=False, log_format="json", sweep_minutes=SWEEP_HOURS * 60)
        self._save_credentials()
        self._start_tbr(conftest.Bot)

    def _save_credentials(self) -> None:
        """As /setup would: so `tbr status` and friends read this database afterwards (not GitHub)."""
        path = self.out / "tbr-credentials.json"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump({"app_id": self.settings.app_id, "private_key": self.settings.private_key,
                       "webhook_secret": self.settings.webhook_secret}, f)

    def _start_tbr(self, bot) -> None:
        """tbr wired to the fake as the tests wire it, its web app served on loopback."""
        from werkzeug.serving import WSGIRequestHandler, make_server

        from tbr.schedule import Scheduler

        self.log_file = open(self.out / "tbr.log", "w", encoding="utf-8")
        with contextlib.redirect_stderr(self.log_file):  # tbr's own log lines: a file, not the story on screen
            bot = bot(self.settings, self.clock)
        app, self.runtime = bot.app, bot.runtime
        self.engine, self.store = self.runtime.engine, self.runtime.store
        self.scheduler = Scheduler(self.engine)  # its jobs, run on the simulated clock below
        quiet = type("Quiet", (WSGIRequestHandler,), {"log": lambda *args: None})
        self.server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=quiet)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.github.stop()
        self.runtime.stop()
        logging.shutdown()
        self.log_file.close()

    # time -------------------------------------------------------------------------------------

    def until(self, when: datetime) -> None:
        """Run tbr's periodic work and its worker, step by step, up to `when`."""
        while self.clock.now < when:
            self.clock.now = min(self.clock.now + STEP, when)
            self.scheduler.beat()
            if self.clock.now >= self.next_sweep:
                self.scheduler.run_sweep()
                self.next_sweep += timedelta(hours=SWEEP_HOURS)
            self.scheduler.run_remind()
            self.scheduler.run_digest()
            while self.engine.run_due():
                pass

    # what people do on GitHub -----------------------------------------------------------------

    def deliver(self, event: str, payload: dict) -> None:
        body = json.dumps(payload).encode()
        answer = httpx.post(f"{self.url}/webhook", content=body,
                            headers=self.payloads.headers(event, body, self.settings.webhook_secret), timeout=10)
        answer.raise_for_status()

    def merge(self, repo: str, number: int, title: str, author: str, *, merged_by: str | None = None,
              body: str = "", approved_by: str | None = None, own_lgtm: bool = False) -> str:
        now, gh = self.clock.now, self.github
        pr = gh.add_pull(repo, number, author=author, merged_by=merged_by or author, merged_at=now, title=title,
                         body=body, created_at=now - timedelta(hours=3))
        if approved_by:
            gh.add_review(repo, number, approved_by, "APPROVED", submitted_at=now - timedelta(minutes=20))
        if own_lgtm:
            gh.add_issue_comment(repo, number, author, "LGTM", created_at=now - timedelta(minutes=2))
        gh.add_commit(repo, "main", pr["merge_commit_sha"], f"Merge pull request #{number}: {title}",
                      committed_at=now, author=merged_by or author, pull=number)
        repo_id = self.repos[repo]["id"]
        self.deliver("pull_request", self.payloads.merged_pr(repo, repo_id, number, author=author,
                                                            merged_by=merged_by or author, merged_at=now,
                                                            merge_sha=pr["merge_commit_sha"]))
        self.deliver("push", self.payloads.push(repo, repo_id, commits=[(pr["merge_commit_sha"], f"Merge #{number}")],
                                                sender=merged_by or author, pushed_at=now))
        return f"pr:{repo_id}:{number}"

    def force_push(self, repo: str, who: str, message: str) -> str:
        now = self.clock.now
        sha = self.github.add_commit(repo, "main", message=message, committed_at=now, author=who)
        repo_id = self.repos[repo]["id"]
        self.deliver("push", self.payloads.push(repo, repo_id, commits=[(sha, message)], sender=who, forced=True,
                                                pushed_at=now))
        return f"push:{repo_id}:main:{sha}"

    def comment(self, key: str, who: str, text: str) -> None:
        change = self.store.change(key)
        number = change["followup_number"]
        made = self.github.add_issue_comment(TRACK, number, who, text, created_at=self.clock.now)
        self.deliver("issue_comment", self.payloads.issue_comment(TRACK, number, commenter=who, body=text,
                                                                  at=self.clock.now, comment_id=made["id"]))

    # what tbr did -----------------------------------------------------------------------------

    def verdict(self, key: str) -> str:
        """What tbr decided, and what did not count, as the follow-up says it."""
        change = self.store.change(key)
        decision = json.loads(change["decision"] or "{}")
        lines = [decision.get("summary") or change["last_error"] or "not judged yet"]
        if change["status"] == "followup":
            issue = next(i for i in self.github.issues(TRACK) if i["number"] == change["followup_number"])
            lines[0] = (f"follow-up {TRACK}#{issue['number']} filed for @{issue['assignees'][0]}, labelled"
                        f" {', '.join(issue['labels'])}: {lines[0]}")
        if decision.get("declaration"):
            lines.append(f"declared emergency: {decision['declaration'].get('reason')}")
        lines += [f"note: {note}" for note in decision.get("notes") or ()]
        return "\n                    ".join(lines)

    def last_comment(self, key: str) -> str:
        change = self.store.change(key)
        comments = self.github.comments(TRACK, change["followup_number"])
        visible = [line for line in comments[-1]["body"].splitlines() if line.strip() and not line.startswith("<!--")]
        return visible[0] if comments and visible else "(none)"


def play(week: Week) -> dict:
    """The week. Returns the changes' keys by name."""
    keys = {}
    week.until(at(0, 10))
    say(at(0, 10), f"alice merges {API}#101 'Add rate limiting', approved by bob")
    keys["approved"] = week.merge(API, 101, "Add rate limiting", "alice", approved_by="bob")
    week.until(at(0, 10, 10))
    say(at(0, 10, 10), f"  tbr: {week.verdict(keys['approved'])}")

    week.until(at(0, 14))
    say(at(0, 14), f"carol merges her own {API}#102 'Raise the cache TTL', after commenting LGTM on it herself")
    keys["own_lgtm"] = week.merge(API, 102, "Raise the cache TTL", "carol", own_lgtm=True)
    week.until(at(0, 14, 10))
    say(at(0, 14, 10), f"  tbr: {week.verdict(keys['own_lgtm'])}")

    week.until(at(1, 2, 10))
    say(at(1, 2, 10), f"dave merges {WEB}#7 at night, declaring it: 'TBR: checkout is down, INC-1234'")
    keys["declared"] = week.merge(WEB, 7, "Roll back the checkout release", "dave",
                                  body="Reverts the 1.42 release.\n\nTBR: checkout is down, INC-1234")
    week.until(at(1, 2, 20))
    say(at(1, 2, 20), f"  tbr: {week.verdict(keys['declared'])}")

    week.until(at(1, 16))
    say(at(1, 16), f"erin force-pushes a commit straight to {API} main")
    keys["push"] = week.force_push(API, "erin", "hotfix: raise the connection pool to 50")
    week.until(at(1, 16, 10))
    say(at(1, 16, 10), f"  tbr: {week.verdict(keys['push'])}")

    week.until(at(2, 11))
    say(at(2, 11), "dave comments LGTM on his own follow-up (the author cannot sign off)")
    week.comment(keys["declared"], "dave", "LGTM")
    week.until(at(2, 11, 5))
    say(at(2, 11, 5), f"  tbr replies: {week.last_comment(keys['declared'])}")
    week.until(at(2, 11, 30))
    say(at(2, 11, 30), "bob reviews the rollback and signs off with a comment")
    week.comment(keys["declared"], "bob", "Walked through the rollback and the error logs. LGTM")
    week.until(at(2, 11, 35))
    say(at(2, 11, 35), f"  tbr: {week.last_comment(keys['declared'])}")

    week.until(at(3, 9, 5))
    say(at(3, 9, 5), "carol's follow-up was due by the end of Wednesday; tbr's reminder on it:")
    say(at(3, 9, 5), f"  {week.last_comment(keys['own_lgtm'])}")
    week.until(at(4, 9, 5))
    say(at(4, 9, 5), f"erin's, due by the end of Thursday: {week.last_comment(keys['push'])}")

    week.until(at(7, 9, 15))  # Monday: the weekly digest at 09:00
    say(at(7, 9, 15), "tbr publishes the weekly digest in acme/compliance (below)")
    return keys


def report(week: Week) -> Path:
    """The auditor's evidence for the week, as `tbr evidence --format html` writes it."""
    now = week.clock.now
    period = evidence.Period(at(0, 0), at(7, 0), timezone=TZ.key)
    path = week.out / "evidence.html"
    with open(path, "w", encoding="utf-8", newline="") as out:
        head, rows = evidence.export(week.store.db, period, "html", out, now)
    week.store.audit("evidence.exported", "", "demo", now, format="html", rows=rows, period=head["period"],
                     out=str(path), audit_head=head["audit_chain"]["head_hash"])
    for line in evidence.summary_lines(head):
        print(f"  {line}")
    return path


def write_issues(week: Week) -> Path:
    """Each issue tbr filed, as GitHub would show it: title, labels, assignees, body, comments."""
    folder = week.out / "github"
    folder.mkdir(exist_ok=True)
    for issue in week.github.issues(TRACK, include_seeded=False):
        lines = [f"# {issue['title']} ({TRACK}#{issue['number']}, {issue['state']})", "",
                 f"Labels: {', '.join(issue['labels']) or 'none'}; assignees: "
                 f"{', '.join('@' + a for a in issue['assignees']) or 'none'}", "", issue["body"] or ""]
        for c in week.github.comments(TRACK, issue["number"]):
            lines += ["", "---", f"**@{c['user']}** commented on {c['created_at'].astimezone(TZ):%a %d %b %H:%M}:",
                      "", c["body"]]
        (folder / f"{TRACK.replace('/', '-')}-{issue['number']}.md").write_text("\n".join(lines) + "\n")
    return folder


def run(out: str | None = None) -> int:
    from tbr import cli

    conftest, fakegithub, payloads = _simulation()
    folder = Path(out) if out else Path(tempfile.mkdtemp(prefix="tbr-demo-"))
    folder.mkdir(parents=True, exist_ok=True)
    if (folder / "tbr.db").exists():
        raise SystemExit(f"tbr: {folder / 'tbr.db'} exists: give the demo an empty directory")
    started = timer.monotonic()
    print(f"tbr demo: one week of {ORG} (api, web; follow-ups in {TRACK}), Europe/Berlin, on a simulated clock.\n"
          f"GitHub is simulated on loopback (tests/fakegithub.py); nothing leaves this machine.\n", flush=True)
    week = Week(folder, conftest, fakegithub, payloads)
    try:
        print(f"tbr listens on {week.url}, GitHub on {week.github.url}\n")
        play(week)
        digest_issue = [i for i in week.github.issues(TRACK, include_seeded=False)
                        if i["title"].startswith("TBR weekly digest")][-1]  # this Monday's
        print(f"\n{'=' * 20} {TRACK}#{digest_issue['number']}: {digest_issue['title']} {'=' * 20}")
        print(digest_issue["body"].split("## Exceptions")[0].rstrip())
        print("...\n\nThe follow-ups (tbr followups):")
        cli.print_followups(week.store, week.settings, week.clock.now)
        print("\nThe evidence report (tbr evidence --format html):")
        path = report(week)
        issues = write_issues(week)
        chain = audit.verify(week.store.db)
    finally:
        week.stop()
    env = f"TBR_DB={folder / 'tbr.db'} TBR_TIMEZONE={TZ.key}"
    print(f"""
Where to look:
  {issues}/   every issue tbr filed, with its comments, as it reads on GitHub
  {path}   the auditor's report; open it in a browser
  {folder / 'tbr.log'}   tbr's own log, one JSON object per line
  {env} tbr status   (also: tbr followups, tbr audit tail, tbr audit verify)
Audit log: {chain.describe()}
Done in {timer.monotonic() - started:.0f} s; tbr and the simulated GitHub have stopped.""")
    return 0
