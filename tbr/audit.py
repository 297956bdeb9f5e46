"""The tamper-evident audit log: every decision and action tbr takes, as a hash chain.

Each record holds its sequence number, time, kind, subject, actor and data, the previous record's
hash, and a SHA-256 over all of that. Changing, removing or inserting a record breaks the chain at
that point, and `verify` names the first record where it breaks. Records are appended inside the
write transaction of the work they describe (SQLite's write lock orders them), and triggers refuse
UPDATE and DELETE, so only a person editing the file by hand can rewrite history, and that shows.
A chain cannot show its own last records being cut off: the weekly digest publishes the head hash on
GitHub, and `verify --expect SEQ:HASH` checks the log still contains it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from tbr.times import from_iso, iso

GENESIS = "0" * 64
HEARTBEAT_EVERY = timedelta(minutes=5)
GAP = 3 * HEARTBEAT_EVERY  # no sign of life for this long is downtime
LIFE = ("heartbeat", "process.started", "process.stopped")
FILLERS = ("sweep.finished", "backfill.finished")  # look back over a stretch and record what it missed


def subject(change: dict) -> str:
    """How records and people name a change: owner/repo#12 for a PR, owner/repo@abc1234 for a push."""
    if change["kind"] == "pr":
        return f"{change['repo']}#{change['number']}"
    return f"{change['repo']}@{change['sha'][:7]}"


def judged(store, change: dict, status: str, decision, at: datetime) -> int:
    """The record of a judgement: the decision, who approved and how, with the link, and what did not count."""
    approval = decision.approval
    return store.audit("change.judged", subject(change), "tbr", at, change=change["key"], status=status,
                       rule=decision.rule, summary=decision.summary, notes=list(decision.notes),
                       approver=approval.approver if approval else None,
                       approved_at=approval.at.isoformat() if approval and approval.at else None,
                       link=approval.url if approval else None, source=change["source"],
                       declaration=decision.to_dict()["declaration"])


def digest(seq: int, at: str, kind: str, subject: str, actor: str, data: str, prev_hash: str) -> str:
    canonical = json.dumps([seq, at, kind, subject, actor, data, prev_hash], ensure_ascii=False,
                           separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def append(db, kind: str, subject: str, actor: str | None, at: datetime, data: dict) -> int:
    """Add one record; call inside a write transaction (Store.audit does). Returns its sequence number."""
    last = db.execute("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
    seq, prev = (last[0] + 1, last[1]) if last else (1, GENESIS)
    text = json.dumps(data, sort_keys=True, ensure_ascii=False, default=str)
    row = [seq, iso(at), kind, subject or "", actor or "", text, prev]
    db.execute("INSERT INTO audit (seq, at, kind, subject, actor, data, prev_hash, hash)"
               " VALUES (?, ?, ?, ?, ?, ?, ?, ?)", [*row, digest(*row)])
    return seq


@dataclass
class Verification:
    ok: bool
    records: int
    head_seq: int
    head_hash: str
    problem: str | None = None
    bad_seq: int | None = None

    def describe(self) -> str:
        if self.ok:
            return f"audit log intact: {self.records} records, head #{self.head_seq} sha256:{self.head_hash}"
        return f"audit log broken at record #{self.bad_seq}: {self.problem}"


def verify(db, expect: tuple[int, str] | None = None) -> Verification:
    """Recompute the chain from the first record; stop at the first that does not hold."""
    prev, expected, count = GENESIS, 1, 0

    def broken(seq: int, problem: str) -> Verification:
        return Verification(False, count, expected - 1, prev, problem, seq)

    for seq, at, kind, subject, actor, data, prev_hash, hash_ in db.execute(
            "SELECT seq, at, kind, subject, actor, data, prev_hash, hash FROM audit ORDER BY seq"):
        if seq != expected:
            gone = f"#{expected}" if seq == expected + 1 else f"#{expected} to #{seq - 1}"
            return broken(expected, f"record {gone} deleted (the sequence jumps to #{seq})")
        if digest(seq, at, kind, subject, actor, data, prev_hash) != hash_:
            return broken(seq, f"record #{seq} ({kind}, {subject}) altered: its content no longer matches its hash")
        if prev_hash != prev:
            return broken(seq, f"record #{seq} does not follow record #{seq - 1}: a record before it was deleted,"
                               " inserted or rewritten with a new hash")
        prev, expected, count = hash_, expected + 1, count + 1
    if expect:
        seq, want = expect
        row = db.execute("SELECT hash FROM audit WHERE seq = ?", [seq]).fetchone()
        if row is None:
            return broken(seq, f"record #{seq} is missing: the log was cut off after #{expected - 1}")
        if row[0] != want:
            return broken(seq, f"record #{seq} has hash {row[0]}, not the expected {want}")
    return Verification(True, count, expected - 1, prev)


def head(db) -> tuple[int, str]:
    row = db.execute("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
    return (row[0], row[1]) if row else (0, GENESIS)


def records(db, *, subject: str | None = None, kind: str | None = None, since: datetime | None = None,
            until: datetime | None = None, last: int | None = None) -> Iterator[dict]:
    """Records in order, filtered; `last` keeps only the newest n."""
    where, args = [], []
    for clause, value in (("subject = ? COLLATE NOCASE", subject), ("kind = ?", kind),
                          ("at >= ?", since and iso(since)), ("at < ?", until and iso(until))):
        if value is not None:
            where.append(clause)
            args.append(value)
    sql = "SELECT * FROM audit" + (" WHERE " + " AND ".join(where) if where else "")
    if last is not None:
        sql = f"SELECT * FROM ({sql} ORDER BY seq DESC LIMIT ?)"
        args.append(last)
    for row in db.query(sql + " ORDER BY seq", args):
        yield {**row, "data": json.loads(row["data"])}


# coverage ---------------------------------------------------------------------------------------

@dataclass
class Gap:
    start: datetime
    end: datetime
    filled_by: datetime | None = None  # when a sweep covering the whole gap ran, if one did

    @property
    def length(self) -> timedelta:
        return self.end - self.start


@dataclass
class Coverage:
    start: datetime
    end: datetime
    gaps: list[Gap] = field(default_factory=list)

    @property
    def running(self) -> timedelta:
        return (self.end - self.start) - sum((g.length for g in self.gaps), timedelta())

    @property
    def percent(self) -> float:
        total = (self.end - self.start).total_seconds()
        return 100.0 * self.running.total_seconds() / total if total else 100.0


def coverage(db, start: datetime, end: datetime) -> Coverage:
    """How much of [start, end) tbr was running, from its heartbeats, and which sweeps filled the gaps.

    A gap is a stretch longer than GAP with no heartbeat, start or stop; it is filled when a later
    sweep (or backfill) that succeeded looked back to (or before) its start.
    """
    points = [from_iso(r[0]) for r in db.execute(
        f"SELECT at FROM audit WHERE kind IN ({', '.join('?' * len(LIFE))}) AND at >= ? AND at < ? ORDER BY at",
        [*LIFE, iso(start - GAP), iso(end)])]
    result = Coverage(start, end)
    for a, b in zip([start - GAP, *points], [*points, end]):
        a = max(a, start)
        if b - a > GAP:
            result.gaps.append(Gap(a, b))
    if result.gaps:
        sweeps = sorted((r["at"], from_iso(r["data"]["since"])) for kind in FILLERS
                        for r in records(db, kind=kind, since=start) if not r["data"].get("errors"))
        for gap in result.gaps:
            gap.filled_by = next((from_iso(at) for at, since in sweeps
                                  if since <= gap.start and from_iso(at) >= gap.end), None)
    return result
