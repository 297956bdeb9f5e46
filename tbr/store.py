"""SQLite: the only place tbr keeps work. Deliveries and changes wait here until done.

Each thread gets its own connection (a sqlite3 connection belongs to the thread that opened it).
Connections run in autocommit mode; `write()` opens `BEGIN IMMEDIATE` so a read-then-write is
never interleaved with another process's, and sqlite-utils' own `atomic()` nests inside it.
Work is handed out with leases, so several gunicorn workers share one database safely and a crashed
worker's item is picked up again when its lease runs out.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import urllib.parse
from collections.abc import Callable
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone

import sqlite_utils

from tbr import audit
from tbr.times import from_iso, iso  # noqa: F401 (most modules take them from here)

LEASE = timedelta(minutes=5)
STOPPED = "the worker stopped during it (killed, crashed, or over its time budget)"
KEYS = {"deliveries": "guid", "changes": "key", "actions": "key"}  # the work tables and their primary keys
LABELS = {"deliveries": "delivery", "changes": "change", "actions": "action"}  # one item of each, for people

SCHEMA = """
CREATE TABLE IF NOT EXISTS deliveries (
    guid TEXT PRIMARY KEY,
    event TEXT NOT NULL,
    action TEXT,
    repo TEXT,
    payload TEXT NOT NULL,
    received_at TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending',      -- pending | done
    outcome TEXT,                                 -- what processing concluded, for people
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT NOT NULL,
    last_error TEXT,
    processed_at TEXT,
    lease_owner TEXT,
    lease_until TEXT
);
CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries (status, next_attempt_at);

-- Each verified body's SHA-256 and the delivery that last brought it: the same body under another
-- GUID soon after is a replay (GitHub gives every delivery its own GUID, and a redelivery keeps it).
CREATE TABLE IF NOT EXISTS delivery_bodies (
    sha256 TEXT PRIMARY KEY,
    guid TEXT NOT NULL,
    received_at TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS changes (
    key TEXT PRIMARY KEY,
    kind TEXT NOT NULL,                           -- pr | push
    repo TEXT NOT NULL,
    repo_id INTEGER NOT NULL,
    installation_id INTEGER,
    branch TEXT NOT NULL,
    number INTEGER,
    sha TEXT NOT NULL,
    actor TEXT NOT NULL,
    happened_at TEXT NOT NULL,
    facts TEXT NOT NULL,
    source TEXT NOT NULL,                         -- the delivery GUID, or how it was found
    first_seen_at TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending',       -- pending | approved | followup | covered
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT NOT NULL,                -- first: happened_at + grace
    last_error TEXT,
    decision TEXT,
    judged_at TEXT,
    followup_repo TEXT,
    followup_number INTEGER,
    followup_url TEXT,
    due_at TEXT,
    lease_owner TEXT,
    lease_until TEXT
);
CREATE INDEX IF NOT EXISTS changes_due ON changes (status, next_attempt_at);
CREATE INDEX IF NOT EXISTS changes_sha ON changes (repo_id, sha);

-- What each merged PR reverts, so a follow-up filed after its revert was judged is completed too.
CREATE TABLE IF NOT EXISTS reverts (
    revert_key TEXT NOT NULL,                     -- the reverting change
    repo_id INTEGER NOT NULL,
    target TEXT NOT NULL,                         -- pr:<number> | sha:<sha or its prefix>
    at TEXT NOT NULL,                             -- when the revert was merged
    by TEXT NOT NULL,
    url TEXT NOT NULL,
    what TEXT NOT NULL,                           -- owner/repo#N
    PRIMARY KEY (revert_key, target)
);
CREATE INDEX IF NOT EXISTS reverts_repo ON reverts (repo_id);

-- Every commit tbr has accounted for, so a sweep can tell which commits on a branch it never saw.
CREATE TABLE IF NOT EXISTS commits (
    repo_id INTEGER NOT NULL,
    sha TEXT NOT NULL,
    change_key TEXT NOT NULL,
    PRIMARY KEY (repo_id, sha)
);

-- What tbr must do on GitHub besides filing: comments, labels, closing, reopening. A row's key
-- names the action once (a reminder's key holds its date), so planning it twice is harmless.
CREATE TABLE IF NOT EXISTS actions (
    key TEXT PRIMARY KEY,
    kind TEXT NOT NULL,                           -- comment | add_label | remove_label | close | reopen
    change_key TEXT,
    repo TEXT NOT NULL,
    number INTEGER NOT NULL,
    data TEXT NOT NULL,
    created_at TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending',
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT NOT NULL,
    last_error TEXT,
    done_at TEXT,
    lease_owner TEXT,
    lease_until TEXT
);
CREATE INDEX IF NOT EXISTS actions_due ON actions (status, next_attempt_at);

CREATE TABLE IF NOT EXISTS sweeps (
    id INTEGER PRIMARY KEY,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    since TEXT NOT NULL,
    repos_checked INTEGER NOT NULL DEFAULT 0,
    changes_found INTEGER NOT NULL DEFAULT 0,
    redeliveries INTEGER NOT NULL DEFAULT 0,
    error TEXT
);

CREATE TABLE IF NOT EXISTS redeliveries (
    guid TEXT PRIMARY KEY,
    delivery_id INTEGER NOT NULL,
    requested_at TEXT NOT NULL
);

-- Signs of life of the periodic work (the scheduler beats every minute), for /healthz.
CREATE TABLE IF NOT EXISTS heartbeats (
    name TEXT PRIMARY KEY,
    at TEXT NOT NULL
);

-- Counters that no row of another table records: refused webhooks, GitHub answers, rate limit.
CREATE TABLE IF NOT EXISTS counters (
    name TEXT PRIMARY KEY,
    value REAL NOT NULL
);

-- Each repository's .github/tbr.yml as last fetched: `data` is the last valid one (NULL: no file),
-- `problems` what is wrong with the current one, if anything.
CREATE TABLE IF NOT EXISTS config_files (
    repo TEXT PRIMARY KEY COLLATE NOCASE,
    data TEXT,
    sha TEXT,
    problems TEXT,
    fetched_at TEXT NOT NULL
);

-- Every version of each .github/tbr.yml tbr has seen, and from when it was in force: a change is
-- judged under the version in force before it (effective_at NULL: since before anything tbr saw).
-- Rows other than a baseline record a configuration change: who pushed it, in which commit, what
-- changed, and which keys were refused.
CREATE TABLE IF NOT EXISTS config_versions (
    id INTEGER PRIMARY KEY,
    repo TEXT NOT NULL COLLATE NOCASE,
    kind TEXT NOT NULL,                           -- baseline | first | changed | invalid | removed
    data TEXT,                                    -- the valid configuration in force from then (NULL: none)
    blob TEXT,
    commit_sha TEXT,
    actor TEXT,
    effective_at TEXT,
    recorded_at TEXT NOT NULL,
    changes TEXT NOT NULL DEFAULT '[]',           -- [{key, before, after}] of the file's own values
    problems TEXT NOT NULL DEFAULT '[]',          -- why the file is invalid (the previous data stays)
    refused TEXT NOT NULL DEFAULT '{}'            -- key: why the policy's value stays in force
);
CREATE INDEX IF NOT EXISTS config_versions_by_repo ON config_versions (repo, effective_at);

-- The check runs tbr published, so a new status updates the run instead of adding another.
CREATE TABLE IF NOT EXISTS check_runs (
    repo TEXT NOT NULL,
    head_sha TEXT NOT NULL,
    name TEXT NOT NULL,
    run_id INTEGER NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (repo, head_sha, name)
);

-- The branch controls last seen per production branch, so a weakening can be told from a first look.
CREATE TABLE IF NOT EXISTS control_states (
    repo TEXT NOT NULL COLLATE NOCASE,
    branch TEXT NOT NULL,
    state TEXT NOT NULL,
    checked_at TEXT NOT NULL,
    PRIMARY KEY (repo, branch)
);

-- The audit log (see tbr/audit.py): append-only, each record chained to the one before by its hash.
CREATE TABLE IF NOT EXISTS audit (
    seq INTEGER PRIMARY KEY,
    at TEXT NOT NULL,
    kind TEXT NOT NULL,
    subject TEXT NOT NULL,
    actor TEXT NOT NULL,
    data TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_subject ON audit (subject COLLATE NOCASE);
CREATE INDEX IF NOT EXISTS audit_kind_at ON audit (kind, at);
CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
-- INSERT OR REPLACE deletes without firing the DELETE trigger: refuse a number already used.
CREATE TRIGGER IF NOT EXISTS audit_no_replace BEFORE INSERT ON audit
WHEN NEW.seq <= (SELECT max(seq) FROM audit)
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;

-- The follow-ups tbr filed, as GitHub lists them (tbr/followups.py FollowupIndex), and how far the listing
-- was read: a restored or fresh database finds an issue filed after its copy was taken instead of filing another.
CREATE TABLE IF NOT EXISTS filed_issues (
    repo TEXT NOT NULL COLLATE NOCASE,
    change_key TEXT NOT NULL,
    number INTEGER NOT NULL,
    url TEXT NOT NULL,
    PRIMARY KEY (repo, change_key)
);
CREATE TABLE IF NOT EXISTS filed_index (
    repo TEXT PRIMARY KEY COLLATE NOCASE,
    since TEXT NOT NULL                           -- the newest updated_at read from GitHub's listing
);

-- Quarterly access reviews (CC6.3): one issue each, one line per person with write access or more.
CREATE TABLE IF NOT EXISTS access_reviews (
    key TEXT PRIMARY KEY,                         -- quarter:subject, e.g. 2026-Q4:acme/api
    quarter TEXT NOT NULL,
    subject TEXT NOT NULL,                        -- owner/repo, or the organization
    installation_id INTEGER,
    tracking_repo TEXT NOT NULL,
    number INTEGER NOT NULL,
    url TEXT NOT NULL,
    opened_at TEXT NOT NULL,
    due_at TEXT NOT NULL,
    terms TEXT NOT NULL,                          -- reviewers, apply_revocations, timezone, holidays, escalate
    completed_at TEXT,
    completed_by TEXT
);
CREATE TABLE IF NOT EXISTS access_lines (
    review_key TEXT NOT NULL,
    line_id TEXT NOT NULL,
    repo TEXT NOT NULL,
    login TEXT NOT NULL,
    permission TEXT NOT NULL,
    via TEXT NOT NULL,
    decision TEXT,                                -- keep | revoke
    decided_by TEXT,
    decided_at TEXT,
    applied_at TEXT,                              -- a revoked direct collaborator removed
    PRIMARY KEY (review_key, line_id)
);

-- Offboarding (CC6.2): access a removed member still has, until it is gone.
CREATE TABLE IF NOT EXISTS offboarding (
    org TEXT NOT NULL COLLATE NOCASE,
    login TEXT NOT NULL COLLATE NOCASE,
    repo TEXT NOT NULL,
    kind TEXT NOT NULL,                           -- collaborator (with its permission) | invitation
    detail TEXT NOT NULL,
    found_at TEXT NOT NULL,
    issue_url TEXT,
    resolved_at TEXT,
    PRIMARY KEY (org, login, repo, kind)
);

-- Two-factor coverage (CC6.1), one row per daily look at an organization.
CREATE TABLE IF NOT EXISTS twofa_checks (
    org TEXT NOT NULL,
    checked_at TEXT NOT NULL,
    visible INTEGER NOT NULL,                     -- 0: the App may not see it (reason says why)
    reason TEXT,
    members TEXT NOT NULL DEFAULT '[]',           -- logins without 2FA
    outside TEXT NOT NULL DEFAULT '[]',
    PRIMARY KEY (org, checked_at)
);

-- Someone's role on a repository, as GitHub's permission API last said (who may approve, sign off).
CREATE TABLE IF NOT EXISTS permissions (
    repo TEXT NOT NULL COLLATE NOCASE,
    login TEXT NOT NULL COLLATE NOCASE,
    role TEXT NOT NULL,                           -- admin | maintain | write | triage | read | none
    checked_at TEXT NOT NULL,
    PRIMARY KEY (repo, login)
);

CREATE TABLE IF NOT EXISTS digests (
    week TEXT PRIMARY KEY,                        -- the Monday, local date
    repo TEXT NOT NULL,
    number INTEGER NOT NULL,
    url TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    slack_posted_at TEXT
);

-- Per repository, GitHub's pushed_at the last sweep finished with: a repository whose pushed_at has
-- not moved since cost that sweep nothing but its line in the installation's repository list.
CREATE TABLE IF NOT EXISTS swept_repos (
    repo_id INTEGER PRIMARY KEY,
    repo TEXT NOT NULL,
    pushed_at TEXT NOT NULL,
    swept_at TEXT NOT NULL
);

-- What a conditional request (If-None-Match) needs: GitHub's ETag and what tbr read from that answer.
CREATE TABLE IF NOT EXISTS etags (
    url TEXT PRIMARY KEY,
    etag TEXT NOT NULL,
    value TEXT NOT NULL,
    checked_at TEXT NOT NULL
);

-- Safety-net work waiting for GitHub's rate limit: what, why, until when (a row per kind of work).
CREATE TABLE IF NOT EXISTS pauses (
    work TEXT PRIMARY KEY,
    reason TEXT NOT NULL,
    since TEXT NOT NULL,
    until TEXT NOT NULL
);
"""

# Columns added after the first release; migrate() adds them to older databases.
CHANGE_COLUMNS = {
    "followup_state": str,      # open | signed_off | deleted | transferred
    "signed_off_at": str,
    "signed_off_by": str,
    "signoff_how": str,         # closed | comment
    "business_seconds": int,
    "within_sla": int,
    "terms": str,               # the SLA's terms when filed: timezone, holidays, days, escalate
    "filing_at": str,           # when tbr first tried to file: a later try first looks for that issue
}
# Columns of every work table (deliveries, changes, actions), added after the first release.
WORK_COLUMNS = {
    "failures": int,            # attempts that raised, crashed or overran (GitHub being unavailable does not count)
    "quarantined_at": str,      # set aside after too many failures: not tried again until `tbr retry`
}


def config_changes(db, start: datetime, end: datetime, repo: str | None = None) -> list[dict]:
    """Configuration changes recorded in [start, end), oldest first (the digest's and the evidence's)."""
    rows = db.query(
        "SELECT * FROM config_versions WHERE kind != 'baseline' AND recorded_at >= ? AND recorded_at < ?"
        + (" AND repo = ?" if repo else "") + " ORDER BY recorded_at, id",
        [iso(start), iso(end)] + ([repo] if repo else []))
    return [{**r, **{k: json.loads(r[k]) for k in ("changes", "problems", "refused")}} for r in rows]


def private_file(path: str) -> None:
    """Create the database 0600, or take group and world access off an existing one and its WAL and SHM:
    it holds private repositories' payloads. SQLite creates the WAL and SHM with the database's mode."""
    if path == ":memory:" or path.startswith("file:"):
        return
    os.close(os.open(path, os.O_CREAT | os.O_RDWR, 0o600))
    for name in (path, f"{path}-wal", f"{path}-shm", f"{path}-journal"):
        try:
            mode = os.stat(name).st_mode & 0o777
        except FileNotFoundError:
            continue
        if mode & 0o077:
            os.chmod(name, mode & 0o700)


def read_only(path: str) -> sqlite3.Connection:
    """A connection that cannot write to the database file. SQLite reads a WAL database through its -shm
    file, which it creates beside the database if it must: in a directory it may not write to, a copy
    without a -wal file (all of it in the database file, as `tbr backup` writes it) is read as immutable."""
    uri = f"file:{urllib.parse.quote(os.path.abspath(path))}?mode=ro"
    conn = sqlite3.connect(uri, uri=True, timeout=30, isolation_level=None, check_same_thread=True)
    try:
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.OperationalError:
        conn.close()
        if os.path.exists(f"{path}-wal"):
            raise
        conn = sqlite3.connect(uri + "&immutable=1", uri=True, isolation_level=None, check_same_thread=True)
    return conn


class Store:
    def __init__(self, path: str, keys: audit.Keys | None = None, readonly: bool = False):
        """Open (and create or migrate) the database; `readonly` opens an existing one as it is, writing
        nothing to it: what `tbr status`, `tbr evidence` and `tbr audit` need, on an auditor's copy too."""
        self.path = path
        self.keys = keys  # the audit key (see tbr/audit.py); None only for a log from before keys
        self.readonly = readonly
        if not readonly:
            private_file(path)
        self._local = threading.local()
        # Threads of one process take turns here rather than in SQLite, whose busy handler polls
        # with sleeps of up to 100 ms: a webhook waiting behind the worker's commit waits for it, not longer.
        self._writing = threading.RLock()
        if readonly:
            self.db  # noqa: B018 (opened now, so a file that is not a database fails here)
        else:
            self.migrate()

    @property
    def db(self) -> sqlite_utils.Database:
        db = getattr(self._local, "db", None)
        if db is None:
            if self.readonly:
                conn = read_only(self.path)
            else:
                conn = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=True)
                # Switching to WAL takes an exclusive lock and does not wait for one: only switch once.
                if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                    conn.execute("PRAGMA journal_mode=WAL")
                # A delivery acknowledged to GitHub must survive a power cut: GitHub will not resend it.
                conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA busy_timeout=30000")
            db = self._local.db = sqlite_utils.Database(conn)
            db.audit_keys = self.keys  # so whatever verifies the log through this connection can
        return db

    def migrate(self) -> None:
        self.db.executescript(SCHEMA)
        with self.write():  # gunicorn workers start together: one migrates, the others see it done
            existing = self.db["changes"].columns_dict
            for name, kind in CHANGE_COLUMNS.items():
                if name not in existing:
                    self.db["changes"].add_column(name, kind)
            if not self.db.execute("SELECT 1 FROM delivery_bodies LIMIT 1").fetchone():
                # Bodies received before this table existed: the audit log has their hashes.
                self.db.execute("INSERT OR IGNORE INTO delivery_bodies (sha256, guid, received_at)"
                                " SELECT json_extract(data, '$.sha256'), json_extract(data, '$.delivery'), at FROM audit"
                                " WHERE kind = 'delivery.received' AND json_extract(data, '$.sha256') IS NOT NULL")
            for table in KEYS:
                existing = self.db[table].columns_dict
                for name, kind in WORK_COLUMNS.items():
                    if name not in existing:
                        self.db[table].add_column(name, kind, not_null_default=0 if kind is int else None)

    def close(self) -> None:
        db = getattr(self._local, "db", None)
        if db is not None:
            db.conn.close()
            self._local.db = None

    @contextmanager
    def write(self, wait: float = 30.0):
        """A write transaction that holds SQLite's write lock from its first statement; waits at most
        `wait` seconds for this process's other writers (then "database is locked")."""
        if not self._writing.acquire(timeout=wait):
            raise sqlite3.OperationalError("database is locked (by another thread of this process)")
        try:
            conn = self.db.conn
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield self.db
            except BaseException:
                if conn.in_transaction:  # SQLite itself rolls back on some errors (a full disk, say)
                    conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        finally:
            self._writing.release()

    @contextmanager
    def atomic(self):
        """Join the caller's write transaction, or open one."""
        if self.db.conn.in_transaction:
            yield self.db
        else:
            with self.write() as db:
                yield db

    def audit(self, kind: str, subject: str, actor: str | None, at: datetime, **data) -> int:
        """Append an audit record, as part of the write transaction of the work it describes."""
        with self.atomic():
            return audit.append(self.db, kind, subject, actor, at, data, self.keys)

    # configuration versions ------------------------------------------------------------------

    def add_config_version(self, repo: str, kind: str, data: str | None, recorded_at: datetime, *,
                           effective_at: datetime | None = None, blob: str | None = None,
                           commit_sha: str | None = None, actor: str | None = None, changes: list | None = None,
                           problems: list | None = None, refused: dict | None = None) -> None:
        self.db.execute(
            "INSERT INTO config_versions (repo, kind, data, blob, commit_sha, actor, effective_at, recorded_at,"
            " changes, problems, refused) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [repo, kind, data, blob, commit_sha, actor, effective_at and iso(effective_at), iso(recorded_at),
             json.dumps(changes or []), json.dumps(problems or []), json.dumps(refused or {})])

    def config_versions_known(self, repo: str) -> bool:
        return self.db.execute("SELECT 1 FROM config_versions WHERE repo = ? LIMIT 1", [repo]).fetchone() is not None

    def config_in_force(self, repo: str, at: datetime, sha: str | None) -> tuple[bool, str | None]:
        """(known, data) of `repo`'s file as it was before a change at `at` (its commit `sha`): a
        version from the same instant counts unless that change's own commit brought it."""
        row = self.db.execute(
            "SELECT data FROM config_versions WHERE repo = ? AND (effective_at IS NULL OR effective_at < ?"
            " OR (effective_at = ? AND coalesce(commit_sha, '') != ?))"
            " ORDER BY coalesce(effective_at, '') DESC, id DESC LIMIT 1",
            [repo, iso(at), iso(at), sha or ""]).fetchone()
        return (row is not None, row[0] if row else None)

    def check_writable(self) -> None:
        """A real write to the database file, as every piece of work needs one."""
        self.beat("healthz", datetime.now(timezone.utc))

    # deliveries -------------------------------------------------------------------------------

    def add_delivery(self, guid: str, event: str, action: str | None, repo: str | None,
                     payload: str, received_at: datetime) -> bool:
        """Store a verified delivery; False when this GUID was stored before (a redelivery)."""
        cur = self.db.execute(
            "INSERT OR IGNORE INTO deliveries (guid, event, action, repo, payload, received_at, next_attempt_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (guid, event, action, repo, payload, iso(received_at), iso(received_at)),
        )
        return cur.rowcount == 1

    def replay_of(self, sha256: str, guid: str, now: datetime, window: timedelta) -> str | None:
        """The GUID that brought a body with this SHA-256 within `window` before `now`, when it is not
        `guid`: this delivery is then a replay. Otherwise records `guid` as the body's latest delivery
        and answers None (call within a write transaction). Some payloads carry no time or id of their
        own (a member removed twice, months apart), hence the window."""
        row = self.db.execute("SELECT guid, received_at FROM delivery_bodies WHERE sha256 = ?", [sha256]).fetchone()
        if row and row[0] != guid and from_iso(row[1]) > now - window:
            return row[0]
        if not row or row[0] != guid:
            self.db.execute("INSERT OR REPLACE INTO delivery_bodies (sha256, guid, received_at) VALUES (?, ?, ?)",
                            [sha256, guid, iso(now)])
        return None

    def prune_payloads(self, before: datetime) -> int:
        """Drop the bodies of deliveries processed before `before`; the rows stay, so a redelivery is still
        recognised, and the audit log keeps each body's SHA-256."""
        return self.db.execute("UPDATE deliveries SET payload = '' WHERE status = 'done' AND processed_at < ?"
                               " AND payload != ''", [iso(before)]).rowcount

    def delivery(self, guid: str) -> dict | None:
        rows = list(self.db.query("SELECT * FROM deliveries WHERE guid = ?", [guid]))
        return rows[0] if rows else None

    def finish_delivery(self, guid: str, outcome: str, now: datetime) -> None:
        self.db.execute(
            "UPDATE deliveries SET status='done', outcome=?, processed_at=?, last_error=NULL,"
            " lease_owner=NULL, lease_until=NULL WHERE guid=?",
            (outcome, iso(now), guid),
        )

    # changes ----------------------------------------------------------------------------------

    def add_change(self, row: dict, shas: list[str]) -> bool:
        """Record a change and the commits it accounts for, once; False when its key is known already."""
        cols = ", ".join(row)
        marks = ", ".join("?" for _ in row)
        with self.atomic():
            cur = self.db.execute(f"INSERT OR IGNORE INTO changes ({cols}) VALUES ({marks})", list(row.values()))
            self.db.conn.executemany("INSERT OR IGNORE INTO commits (repo_id, sha, change_key) VALUES (?, ?, ?)",
                                     [(row["repo_id"], sha, row["key"]) for sha in shas if sha])
            if cur.rowcount == 1:
                self.audit("change.recorded", audit.subject(row), row["actor"], from_iso(row["first_seen_at"]),
                           change=row["key"], branch=row["branch"], sha=row["sha"], source=row["source"],
                           happened_at=row["happened_at"])
        return cur.rowcount == 1

    def commit_owners(self, repo_id: int, shas: list[str]) -> dict[str, str]:
        """The change each known commit was recorded with (the first change to record it)."""
        found = {}
        for i in range(0, len(shas), 500):
            chunk = shas[i:i + 500]
            marks = ", ".join("?" for _ in chunk)
            found.update((r["sha"], r["change_key"]) for r in self.db.query(
                f"SELECT sha, change_key FROM commits WHERE repo_id = ? AND sha IN ({marks})", [repo_id, *chunk]))
        return found

    def known_commits(self, repo_id: int, shas: list[str]) -> set[str]:
        return set(self.commit_owners(repo_id, shas))

    def pending_push_shas(self, repo: str) -> set[str]:
        """Commits of push deliveries received but not yet processed: seen, though not yet recorded."""
        shas = set()
        for (payload,) in self.db.execute("SELECT payload FROM deliveries WHERE status = 'pending' AND event = 'push'"
                                          " AND repo = ? COLLATE NOCASE", [repo]):
            shas.update(c.get("id") for c in json.loads(payload).get("commits") or [])
        return shas

    def followup_for_issue(self, repo: str, number: int) -> dict | None:
        rows = list(self.db.query(
            "SELECT * FROM changes WHERE followup_repo = ? COLLATE NOCASE AND followup_number = ?", [repo, number]))
        return rows[0] if rows else None

    def open_followups(self) -> list[dict]:
        return list(self.db.query(
            "SELECT * FROM changes WHERE status = 'followup' AND followup_state = 'open' ORDER BY due_at"))

    def followups(self) -> list[dict]:
        """Every filed follow-up, whatever its state, the soonest due first (`tbr followups`)."""
        return list(self.db.query("SELECT * FROM changes WHERE status = 'followup' AND followup_number IS NOT NULL"
                                  " ORDER BY due_at, key"))

    # the index of filed follow-ups ----------------------------------------------------------

    def indexed_followup(self, repo: str, key: str) -> tuple[int, str] | None:
        row = self.db.execute("SELECT number, url FROM filed_issues WHERE repo = ? AND change_key = ?",
                              [repo, key]).fetchone()
        return (row[0], row[1]) if row else None

    def followup_index_since(self, repo: str) -> str | None:
        row = self.db.execute("SELECT since FROM filed_index WHERE repo = ?", [repo]).fetchone()
        return row[0] if row else None

    def index_followups(self, repo: str, found: list[tuple[str, int, str]], since: str | None = None) -> None:
        """Remember (change key, number, url) of follow-ups on GitHub; `since`: how far the listing was read."""
        with self.atomic():
            self.db.conn.executemany("INSERT OR IGNORE INTO filed_issues (repo, change_key, number, url)"
                                     " VALUES (?, ?, ?, ?)", [(repo, *f) for f in found])
            if since:
                self.db.execute("INSERT INTO filed_index (repo, since) VALUES (?, ?) ON CONFLICT(repo)"
                                " DO UPDATE SET since = max(since, excluded.since)", [repo, since])

    def backup(self, dest: str) -> int:
        """A consistent copy of the database, WAL included, while others keep writing (SQLite's online
        backup API); written beside `dest` and renamed over it, 0600. Returns its size in bytes."""
        tmp = f"{dest}.tmp-{os.getpid()}"
        if os.path.exists(tmp):
            os.remove(tmp)
        private_file(tmp)
        target = sqlite3.connect(tmp)
        try:
            self.db.conn.backup(target)
        finally:
            target.close()
        os.replace(tmp, dest)
        return os.path.getsize(dest)

    # actions ----------------------------------------------------------------------------------

    def add_action(self, key: str, kind: str, repo: str, number: int, now: datetime,
                   change_key: str | None = None, **data) -> bool:
        cur = self.db.execute(
            "INSERT OR IGNORE INTO actions (key, kind, change_key, repo, number, data, created_at, next_attempt_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [key, kind, change_key, repo, number, json.dumps(data), iso(now), iso(now)])
        return cur.rowcount == 1

    def action(self, key: str) -> dict | None:
        rows = list(self.db.query("SELECT * FROM actions WHERE key = ?", [key]))
        return rows[0] if rows else None

    def has_action(self, key: str) -> bool:
        return self.action(key) is not None

    def finish_action(self, key: str, now: datetime) -> None:
        self.db.execute("UPDATE actions SET status = 'done', done_at = ?, last_error = NULL, lease_owner = NULL,"
                        " lease_until = NULL WHERE key = ?", [iso(now), key])

    def change(self, key: str) -> dict | None:
        rows = list(self.db.query("SELECT * FROM changes WHERE key = ?", [key]))
        return rows[0] if rows else None

    def pr_with_merge_sha(self, repo_id: int, sha: str) -> dict | None:
        rows = list(self.db.query(
            "SELECT * FROM changes WHERE repo_id = ? AND sha = ? AND kind = 'pr'", [repo_id, sha]))
        return rows[0] if rows else None

    def update_change(self, key: str, **values) -> None:
        values = {k: (json.dumps(v) if isinstance(v, (dict, list)) else v) for k, v in values.items()}
        sets = ", ".join(f"{k} = ?" for k in values)
        self.db.execute(f"UPDATE changes SET {sets} WHERE key = ?", [*values.values(), key])

    # leases -----------------------------------------------------------------------------------

    def due(self, table: str, now: datetime, limit: int = 50) -> list[str]:
        key = KEYS[table]
        return [r[key] for r in self.db.query(
            f"SELECT {key} FROM {table} WHERE status = 'pending' AND next_attempt_at <= ?"
            f" AND (lease_until IS NULL OR lease_until <= ?) AND quarantined_at IS NULL"
            f" ORDER BY next_attempt_at LIMIT ?",
            [iso(now), iso(now), limit])]

    def claim(self, table: str, ident: str, owner: str, now: datetime,
              retry_at: Callable[[int], datetime] | None = None) -> bool:
        """Take an item for LEASE and count the attempt, in one transaction, so an attempt that never
        reports back (a crash, a kill) has counted, and as a failure. `retry_at(attempts before this
        one)` is when to try again if it never reports back: a crash loop backs off too."""
        key = KEYS[table]
        with self.atomic():
            row = self.db.execute(
                f"SELECT attempts, lease_owner FROM {table} WHERE {key} = ? AND status = 'pending'"
                f" AND quarantined_at IS NULL AND (lease_until IS NULL OR lease_until <= ?)",
                [ident, iso(now)]).fetchone()
            if row is None:
                return False
            self.db.execute(
                f"UPDATE {table} SET lease_owner = ?, lease_until = ?, attempts = attempts + 1,"
                f" failures = failures + 1, next_attempt_at = coalesce(?, next_attempt_at),"
                # a lease that ran out unreleased: the attempt that held it never reported back
                f" last_error = CASE WHEN ? IS NULL THEN last_error ELSE ? END WHERE {key} = ?",
                [owner, iso(now + LEASE), iso(retry_at(row[0])) if retry_at else None, row[1],
                 f"attempt {row[0]} never finished: {STOPPED}", ident])
        return True

    def release_leases(self, dead, now: datetime, quarantine_after: int | None = None) -> tuple[int, list[str]]:
        """Clear the live leases whose owner `dead(owner)` says is gone; an item that has failed
        `quarantine_after` times by now is quarantined instead. Returns how many items were released,
        and the keys quarantined."""
        released, quarantined = 0, []
        for table, key in KEYS.items():
            owners = [r[0] for r in self.db.execute(
                f"SELECT DISTINCT lease_owner FROM {table} WHERE status = 'pending' AND lease_until > ?", [iso(now)])]
            for owner in filter(dead, owners):
                with self.write():
                    for ident, attempts, failures in self.db.execute(
                            f"SELECT {key}, attempts, failures FROM {table} WHERE lease_owner = ? AND status = 'pending'",
                            [owner]).fetchall():
                        error = f"attempt {attempts} never finished: {STOPPED}"
                        if quarantine_after is not None and failures >= quarantine_after:
                            self.quarantine(table, ident, error, now)
                            quarantined.append(ident)
                        else:
                            released += self.db.execute(
                                f"UPDATE {table} SET lease_owner = NULL, lease_until = NULL, last_error = ?"
                                f" WHERE {key} = ?", [error, ident]).rowcount
        return released, quarantined

    def holds(self, table: str, ident: str, owner: str, now: datetime) -> bool:
        key = KEYS[table]
        rows = list(self.db.query(
            f"SELECT 1 FROM {table} WHERE {key} = ? AND lease_owner = ? AND lease_until > ?",
            [ident, owner, iso(now)]))
        return bool(rows)

    def attempts(self, table: str, ident: str) -> int:
        key = KEYS[table]
        row = self.db.execute(f"SELECT attempts FROM {table} WHERE {key} = ?", [ident]).fetchone()
        return row[0] if row else 0

    def retry_later(self, table: str, ident: str, error: str, at: datetime, failed: bool = True) -> tuple[int, int]:
        """Keep an item pending after an attempt that did not finish it, to be tried again at `at`.
        The attempt was counted, as a failure, when it was claimed; `failed=False` takes the failure
        back (GitHub unavailable is not the item's fault). Returns (attempts, failures)."""
        key = KEYS[table]
        self.db.execute(
            f"UPDATE {table} SET failures = max(failures - ?, 0), last_error = ?, next_attempt_at = ?,"
            f" lease_owner = NULL, lease_until = NULL WHERE {key} = ?",
            [0 if failed else 1, error[:2000], iso(at), ident])
        return self.db.execute(f"SELECT attempts, failures FROM {table} WHERE {key} = ?", [ident]).fetchone()

    def defer(self, table: str, ident: str, why: str, at: datetime) -> None:
        """Not yet (a grace period still running): the attempt is given back, it was no attempt at all."""
        key = KEYS[table]
        self.db.execute(
            f"UPDATE {table} SET attempts = max(attempts - 1, 0), failures = max(failures - 1, 0), last_error = ?,"
            f" next_attempt_at = ?, lease_owner = NULL, lease_until = NULL WHERE {key} = ?", [why, iso(at), ident])

    # quarantine -------------------------------------------------------------------------------

    def quarantine(self, table: str, ident: str, error: str, now: datetime) -> None:
        """Set an item aside after too many failures: it is not tried again until `tbr retry`, and
        blocks nothing meanwhile. Recorded in the audit log."""
        key = KEYS[table]
        with self.atomic():
            self.db.execute(f"UPDATE {table} SET quarantined_at = ?, last_error = ?, lease_owner = NULL,"
                            f" lease_until = NULL WHERE {key} = ?", [iso(now), error[:2000], ident])
            row = self._row(table, ident)
            self.audit("work.quarantined", _work_subject(table, row), "tbr", now, item=ident, what=LABELS[table],
                       attempts=row["attempts"], failures=row["failures"], error=error[:500])

    def quarantine_spent(self, table: str, ident: str, limit: int, now: datetime) -> bool:
        """Quarantine an item that has failed `limit` times already (its lease ran out unreleased: its
        last attempt never reported back); True if it was."""
        def spent(row: dict | None) -> bool:
            return (row is not None and row["status"] == "pending" and not row["quarantined_at"]
                    and row["failures"] >= limit and not (row["lease_until"] and row["lease_until"] > iso(now)))

        if not spent(self._row(table, ident)):  # the usual case, known without the write lock
            return False
        with self.write():
            row = self._row(table, ident)
            if not spent(row):
                return False
            self.quarantine(table, ident, f"attempt {row['attempts']} never finished: {STOPPED}", now)
            return True

    def quarantined(self) -> list[dict]:
        """Every quarantined item, oldest first: what it is, how often it was tried, why it failed."""
        rows = []
        for table, key in KEYS.items():
            for r in self.db.query(f"SELECT * FROM {table} WHERE quarantined_at IS NOT NULL AND status = 'pending'"):
                rows.append({"key": r[key], "table": table, "kind": LABELS[table], "subject": _work_subject(table, r),
                             "attempts": r["attempts"], "failures": r["failures"], "error": r["last_error"] or "",
                             "quarantined_at": r["quarantined_at"]})
        return sorted(rows, key=lambda r: r["quarantined_at"])

    def _row(self, table: str, ident: str) -> dict | None:
        return next(iter(self.db.query(f"SELECT * FROM {table} WHERE {KEYS[table]} = ?", [ident])), None)

    def retry(self, ident: str, now: datetime, by: str) -> tuple[str, str] | None:
        """Try an item again now (after a fix), with a clean slate of failures; recorded in the audit
        log. Returns (table, status before), or None when no item has that key."""
        for table, key in KEYS.items():
            with self.write():
                row = self._row(table, ident)
                if row is None:
                    continue
                state = "done" if row["status"] != "pending" else "quarantined" if row["quarantined_at"] else "pending"
                if state != "done":
                    self.db.execute(f"UPDATE {table} SET quarantined_at = NULL, failures = 0, next_attempt_at = ?"
                                    f" WHERE {key} = ?", [iso(now), ident])
                    self.audit("work.retried", _work_subject(table, row), by, now, item=ident, what=LABELS[table],
                               was=state, attempts=row["attempts"])
                return table, state
        return None

    def beat(self, name: str, now: datetime) -> None:
        self.db.execute("INSERT INTO heartbeats (name, at) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET at = excluded.at",
                        [name, iso(now)])

    def last_beat(self, name: str) -> datetime | None:
        row = self.db.execute("SELECT at FROM heartbeats WHERE name = ?", [name]).fetchone()
        return from_iso(row[0]) if row else None

    def permission(self, repo: str, login: str, since: datetime) -> str | None:
        """`login`'s role on `repo` as GitHub said at or after `since`; None when not known."""
        row = self.db.execute("SELECT role FROM permissions WHERE repo = ? AND login = ? AND checked_at >= ?",
                              [repo, login, iso(since)]).fetchone()
        return row[0] if row else None

    def remember_permission(self, repo: str, login: str, role: str, at: datetime) -> None:
        with self.write():
            self.db.execute("INSERT OR REPLACE INTO permissions (repo, login, role, checked_at) VALUES (?, ?, ?, ?)",
                            [repo, login, role, iso(at)])

    def bump(self, name: str, by: float = 1) -> None:
        self.db.execute("INSERT INTO counters (name, value) VALUES (?, ?)"
                        " ON CONFLICT(name) DO UPDATE SET value = value + excluded.value", [name, by])

    def set_counter(self, name: str, value: float) -> None:
        self.db.execute("INSERT INTO counters (name, value) VALUES (?, ?)"
                        " ON CONFLICT(name) DO UPDATE SET value = excluded.value", [name, value])

    def record_github_response(self, response) -> None:
        """Count GitHub's answers and keep its rate-limit headroom, for /metrics (an httpx hook)."""
        self.bump(f"github_requests_{response.status_code // 100}xx")
        remaining = response.headers.get("x-ratelimit-remaining")
        if remaining is not None and remaining.isdigit():
            self.set_counter("github_rate_limit_remaining", int(remaining))
        resource = response.headers.get("x-ratelimit-resource")
        if resource and remaining is not None and remaining.isdigit():
            for name in ("limit", "remaining", "reset"):
                value = response.headers.get(f"x-ratelimit-{name}", "")
                if value.isdigit():
                    self.set_counter(f"github_rate_{resource}_{name}", int(value))

    # the sweep's and the daily checks' memory of what GitHub said last ---------------------------

    def swept_pushed_at(self) -> dict[int, str]:
        return dict(self.db.execute("SELECT repo_id, pushed_at FROM swept_repos").fetchall())

    def set_swept(self, repo_id: int, repo: str, pushed_at: datetime, now: datetime) -> None:
        self.db.execute("INSERT INTO swept_repos (repo_id, repo, pushed_at, swept_at) VALUES (?, ?, ?, ?)"
                        " ON CONFLICT(repo_id) DO UPDATE SET repo = excluded.repo, pushed_at = excluded.pushed_at,"
                        " swept_at = excluded.swept_at", [repo_id, repo, iso(pushed_at), iso(now)])

    def etag(self, url: str) -> tuple[str, object] | None:
        row = self.db.execute("SELECT etag, value FROM etags WHERE url = ?", [url]).fetchone()
        return (row[0], json.loads(row[1])) if row else None

    def set_etag(self, url: str, etag: str, value: object, now: datetime) -> None:
        self.db.execute("INSERT INTO etags (url, etag, value, checked_at) VALUES (?, ?, ?, ?) ON CONFLICT(url)"
                        " DO UPDATE SET etag = excluded.etag, value = excluded.value, checked_at = excluded.checked_at",
                        [url, etag, json.dumps(value), iso(now)])

    def control_state(self, repo: str, branch: str) -> dict | None:
        row = self.db.execute("SELECT state FROM control_states WHERE repo = ? AND branch = ?", [repo, branch]).fetchone()
        return json.loads(row[0]) if row else None

    def set_pause(self, work: str, reason: str, now: datetime, until: datetime) -> None:
        self.db.execute("INSERT INTO pauses (work, reason, since, until) VALUES (?, ?, ?, ?) ON CONFLICT(work)"
                        " DO UPDATE SET reason = excluded.reason, until = excluded.until", [work, reason, iso(now),
                                                                                             iso(until)])

    def clear_pause(self, work: str) -> None:
        self.db.execute("DELETE FROM pauses WHERE work = ?", [work])

    def pauses_between(self, start: datetime, end: datetime) -> list[tuple[str, int]]:
        """How often each kind of work paused for the rate limit in [start, end), from the audit log."""
        return self.db.execute("SELECT json_extract(data, '$.work'), count(*) FROM audit WHERE kind = 'budget.paused'"
                               " AND at >= ? AND at < ? GROUP BY 1 ORDER BY 1", [iso(start), iso(end)]).fetchall()

    def pauses(self, now: datetime) -> list[dict]:
        return list(self.db.query("SELECT work, reason, since, until FROM pauses WHERE until > ? ORDER BY work",
                                  [iso(now)]))

    def counters(self) -> dict[str, float]:
        return {r["name"]: r["value"] for r in self.db.query("SELECT name, value FROM counters")}

    def counts(self) -> dict:
        counts = {
            f"{table}_{row['status']}": row["n"]
            for table in ("deliveries", "changes", "actions")
            for row in self.db.query(f"SELECT status, count(*) AS n FROM {table} GROUP BY status")
        }
        sweeps = self.db.execute("SELECT count(*), max(started_at) FROM sweeps").fetchone()
        return {**counts, "sweeps": sweeps[0], "last_sweep": sweeps[1]}


def _work_subject(table: str, row: dict) -> str:
    """How the audit log and people name a work item: its change, its issue, or its repository."""
    if table == "changes":
        return audit.subject(row)
    if table == "actions":
        return f"{row['repo']}#{row['number']}" if row["number"] else row["repo"]
    return row["repo"] or ""
