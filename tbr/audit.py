"""The tamper-evident audit log: every decision and action tbr takes, as a keyed hash chain.

Each record holds its sequence number, time, kind, subject, actor and data, the previous record's
hash, and an HMAC-SHA256 over all of that under the audit key, which the database does not hold
(TBR_AUDIT_KEY, or else a key derived from the App's private key). Changing, removing or inserting a
record breaks the chain at that point, and `verify` names the first record where it breaks; without
the key nobody can compute the hashes of a rewritten history, so a copy of the database alone cannot
forge a chain that verifies. Records are appended inside the write transaction of the work they
describe (SQLite's write lock orders them), and triggers refuse UPDATE, DELETE and a reused number.

Logs written before the key existed hold plain SHA-256 records. The first record under a key is an
`audit.keyed` record naming the key's id (never the key): every record from it on is keyed, and it
chains the older ones, which keep verifying. Rotating the key is the same: a new `audit.keyed` record,
and the old key moves to TBR_AUDIT_KEY_RETIRED so older records can still be checked.

A chain cannot show its own last records being cut off: tbr publishes its head on GitHub once a day
(tbr/anchors.py) and in the weekly digest, and `verify` checks the log still contains each one.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from tbr.times import from_iso, iso


GENESIS = "0" * 64
KEYED = "audit.keyed"  # from this record on, records are HMAC-SHA256 under the key it names by id
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
                       declaration=decision.to_dict()["declaration"], merged_by=change["actor"] or "",
                       decision_sha=fingerprint(status, change["actor"] or "", json.dumps(decision.to_dict())))


def fingerprint(status: str, merged_by: str, decision: str) -> str:
    """Binds a change's status, merger and decision as the changes table stores them (the decision as JSON
    text) to its judgement record: the export proves an unedited row with one hash instead of a parse."""
    return hashlib.sha256(f"{status}\n{merged_by}\n{decision}".encode()).hexdigest()


def digest(seq: int, at: str, kind: str, subject: str, actor: str, data: str, prev_hash: str,
           key: bytes | None = None) -> str:
    """A record's hash: HMAC-SHA256 under `key`, or plain SHA-256 for records from before the key."""
    canonical = json.dumps([seq, at, kind, subject, actor, data, prev_hash], ensure_ascii=False,
                           separators=(",", ":"))
    return _hash(canonical.encode(), key)


def _hash(canonical: bytes, key: bytes | None) -> str:
    return hmac.digest(key, canonical, "sha256").hex() if key is not None else hashlib.sha256(canonical).hexdigest()


# SQLite's json_array writes the same text as `digest` for every record tbr writes (it escapes alike and
# keeps non-ASCII), at a fraction of the cost; a record where it differs is recomputed by `digest`.
CANONICAL = "json_array(seq, at, kind, subject, actor, data, prev_hash)"


class KeyMissing(Exception):
    """The log is keyed and this process holds no key (or not that one)."""


class Keys:
    """The audit key that signs new records, and the retired ones older records may be under.

    Never printed: repr shows key ids only. A key id is an HMAC of a constant, so it names a key
    without revealing it."""

    def __init__(self, current: bytes | None, retired: tuple[bytes, ...] = ()):
        self.current = current
        self._by_id = {key_id(k): k for k in (*retired, *([current] if current else []))}

    @property
    def current_id(self) -> str | None:
        return key_id(self.current) if self.current else None

    def get(self, kid: str) -> bytes | None:
        return self._by_id.get(kid)

    @property
    def none(self) -> bool:
        """No key at all (an auditor's copy without TBR_AUDIT_KEY): keyed records can only be linked, not checked."""
        return not self._by_id

    def __repr__(self) -> str:
        return f"Keys(current={self.current_id}, known={sorted(self._by_id)})"


def key_id(key: bytes) -> str:
    return hmac.digest(key, b"tbr audit key id", "sha256").hex()[:16]


def derive(private_key_pem: str) -> bytes:
    """The audit key derived from the App's private key: stable across PEM formatting, secret as the key is."""
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_private_key(private_key_pem.encode(), password=None)
    der = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    return hmac.digest(der, b"tbr audit chain key v1", "sha256")


def _key_of(value: str) -> bytes:
    """A configured key: a secret string, or a PEM private key (an old App key) to derive it from."""
    pem = value.replace("\\n", "\n")
    return derive(pem) if pem.lstrip().startswith("-----BEGIN") else value.encode()


def keys_of(settings) -> Keys:
    """TBR_AUDIT_KEY if set, else derived from the App's private key; TBR_AUDIT_KEY_RETIRED for older records."""
    if settings.audit_key:
        current = _key_of(settings.audit_key)
    elif settings.private_key:
        current = derive(settings.private_key)
    else:
        current = None
    return Keys(current, tuple(_key_of(v) for v in settings.audit_keys_retired))


def _chain_key_id(db) -> str | None:
    row = db.execute(f"SELECT json_extract(data, '$.key_id') FROM audit WHERE kind = '{KEYED}'"
                     " ORDER BY seq DESC LIMIT 1").fetchone()
    return row[0] if row else None


def append(db, kind: str, subject: str, actor: str | None, at: datetime, data: dict,
           keys: Keys | None = None) -> int:
    """Add one record; call inside a write transaction (Store.audit does). Returns its sequence number.

    With a key, the first record under it is an `audit.keyed` record; without one, a keyed log refuses
    the record rather than append one that would break it."""
    chain_kid = _chain_key_id(db)
    current = keys.current if keys else None
    if current is None and chain_kid is not None:
        raise KeyMissing(f"the audit log is keyed (key id {chain_kid}) and this process has no audit key")
    if current is not None and chain_kid != keys.current_id:
        _insert(db, KEYED, "", "tbr", at, {"key_id": keys.current_id, "algorithm": "hmac-sha256",
                                           "previous": chain_kid or "sha256"}, current)
    return _insert(db, kind, subject, actor, at, data, current)


def _insert(db, kind: str, subject: str, actor: str | None, at: datetime, data: dict, key: bytes | None) -> int:
    last = db.execute("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
    seq, prev = (last[0] + 1, last[1]) if last else (1, GENESIS)
    text = json.dumps(data, sort_keys=True, ensure_ascii=False, default=str)
    row = [seq, iso(at), kind, subject or "", actor or "", text, prev]
    db.execute("INSERT INTO audit (seq, at, kind, subject, actor, data, prev_hash, hash)"
               " VALUES (?, ?, ?, ?, ?, ?, ?, ?)", [*row, digest(*row, key)])
    return seq


@dataclass
class Verification:
    ok: bool
    records: int
    head_seq: int
    head_hash: str
    problem: str | None = None
    bad_seq: int | None = None
    legacy: int = 0  # records from before the key: plain SHA-256
    anchors: int = 0  # published heads checked
    unchecked_from: int | None = None  # without any key: keyed records from here on were only linked

    @property
    def complete(self) -> bool:
        """Every record's hash was recomputed: nothing was taken on trust."""
        return self.ok and self.unchecked_from is None

    def describe(self) -> str:
        if self.ok and self.unchecked_from is not None:
            return (f"audit log links hold: {self.records} records in sequence, head #{self.head_seq}"
                    f" sha256:{self.head_hash}" + (f", {self.anchors} published anchors found in it" if self.anchors else "")
                    + (f"; records #1 to #{self.legacy} (plain SHA-256) hold" if self.legacy else ""))
        if self.ok:
            extra = [f"{self.anchors} published anchor{'s' if self.anchors != 1 else ''} found in it"] if self.anchors else []
            if self.legacy:
                extra.append(f"records #1 to #{self.legacy} predate the audit key (plain SHA-256)")
            return (f"audit log intact: {self.records} records, head #{self.head_seq} sha256:{self.head_hash}"
                    + "".join(f"; {e}" for e in extra))
        return f"audit log broken at record #{self.bad_seq}: {self.problem}"


def unchecked_line(v: Verification) -> str:
    """What a verification without any key left out, and how to have it checked: one line."""
    return (f"the HMACs of records #{v.unchecked_from} to #{v.head_seq} were not checked: no audit key"
            " (set TBR_AUDIT_KEY to the deployment's audit key to check them; without it, a record rewritten"
            " with a made-up hash still links)")


def verify(db, expect: tuple[int, str] | None = None, keys: Keys | None = None,
           anchors: list[tuple[int, str, str]] = ()) -> Verification:
    """Recompute the chain from the first record; stop at the first that does not hold. Then check that
    it still holds `expect` and every published anchor (seq, hash, where it was published).

    Holding no key at all, the keyed records' HMACs cannot be recomputed: their sequence and links are
    still checked, and the result says from which record on the hashes were taken as written."""
    keys = keys or getattr(db, "audit_keys", None)  # Store.db carries its process's keys
    keyless = keys is None or keys.none
    prev, expected, count, key, legacy, unchecked = GENESIS, 1, 0, None, 0, None

    def broken(seq: int, problem: str) -> Verification:
        return Verification(False, count, expected - 1, prev, problem, seq, legacy, unchecked_from=unchecked)

    for seq, kind, prev_hash, hash_, canonical in db.execute(
            f"SELECT seq, kind, prev_hash, hash, {CANONICAL} FROM audit ORDER BY seq"):
        if seq != expected:
            gone = f"#{expected}" if seq == expected + 1 else f"#{expected} to #{seq - 1}"
            return broken(expected, f"record {gone} deleted (the sequence jumps to #{seq})")
        if kind == KEYED and keyless:
            unchecked = unchecked or seq
        elif kind == KEYED:
            kid = str(_field_of(db, seq, "$.key_id"))
            key = keys.get(kid)
            if key is None:
                return broken(seq, f"record #{seq} switches to audit key {kid}, which this deployment does not hold"
                                   " (TBR_AUDIT_KEY, TBR_AUDIT_KEY_RETIRED): it cannot be checked")
        elif key is None and unchecked is None:
            legacy = seq
        if unchecked is None and _hash(canonical.encode(), key) != hash_ and not _holds(db, seq, key, hash_):
            subject = _field_of(db, seq, None)
            return broken(seq, f"record #{seq} ({kind}, {subject}) altered: its content no longer matches its hash")
        if prev_hash != prev:
            return broken(seq, f"record #{seq} does not follow record #{seq - 1}: a record before it was deleted,"
                               " inserted or rewritten with a new hash")
        prev, expected, count = hash_, expected + 1, count + 1
    published = [(*expect, "--expect")] if expect else []
    for seq, want, where in [*published, *anchors]:
        row = db.execute("SELECT hash FROM audit WHERE seq = ?", [seq]).fetchone()
        if row is None:
            return broken(seq, f"record #{seq} ({where}) is missing: the log was cut off after #{expected - 1}")
        if row[0] != want:
            return broken(seq, f"record #{seq} has hash {row[0]}, not the {want} published in {where}:"
                               " history was rewritten")
    return Verification(True, count, expected - 1, prev, legacy=legacy, anchors=len(anchors), unchecked_from=unchecked)


def _holds(db, seq: int, key: bytes | None, hash_: str) -> bool:
    """The record's hash as `digest` computes it, for a record SQLite's text differs on."""
    row = db.execute("SELECT seq, at, kind, subject, actor, data, prev_hash FROM audit WHERE seq = ?", [seq]).fetchone()
    return digest(*row, key) == hash_


def _field_of(db, seq: int, path: str | None):
    """A record's subject (path None), or a field of its data, for what `verify` says."""
    sql = "SELECT subject FROM audit WHERE seq = ?" if path is None else \
        "SELECT CASE WHEN json_valid(data) THEN json_extract(data, ?) END FROM audit WHERE seq = ?"
    return db.execute(sql, [seq] if path is None else [path, seq]).fetchone()[0]


def parse_head(text: str) -> tuple[int, str] | None:
    """A published head, as `--expect` takes it: `SEQ:HASH`, `#SEQ:sha256:HASH` or the digest's `#SEQ sha256:HASH`."""
    seq, sep, rest = text.strip().replace(" ", ":", 1).partition(":")
    hash_ = rest.strip().removeprefix("sha256:")
    seq = seq.lstrip("#")
    if not sep or not seq.isdigit() or len(hash_) != 64 or any(c not in "0123456789abcdef" for c in hash_):
        return None
    return int(seq), hash_


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
    """[start, end) split in two: before tbr was installed (its first record), and the rest, watched, with
    its gaps. Only the watched part counts: the time before tbr is not downtime."""
    start: datetime
    end: datetime
    installed_at: datetime | None = None  # tbr's first record; None: it has recorded nothing yet
    gaps: list[Gap] = field(default_factory=list)

    @property
    def watched_from(self) -> datetime | None:
        """Where the watched part starts; None when all of [start, end) is before tbr."""
        if self.installed_at is None or self.installed_at >= self.end:
            return None
        return max(self.start, self.installed_at)

    @property
    def watched(self) -> timedelta:
        return self.end - self.watched_from if self.watched_from else timedelta()

    @property
    def before(self) -> timedelta:
        """The part of [start, end) before tbr was installed."""
        return (self.watched_from or self.end) - self.start

    @property
    def running(self) -> timedelta:
        return self.watched - sum((g.length for g in self.gaps), timedelta())

    @property
    def percent(self) -> float | None:
        """Of the watched part; None when nothing of it was (the whole stretch is before tbr)."""
        total = self.watched.total_seconds()
        return 100.0 * self.running.total_seconds() / total if total else None


def first_at(db) -> datetime | None:
    """When tbr was installed: its first audit record (the log's order is the order of writing)."""
    row = db.execute("SELECT at FROM audit ORDER BY seq LIMIT 1").fetchone()
    return from_iso(row[0]) if row else None


def coverage(db, start: datetime, end: datetime) -> Coverage:
    """How much of [start, end) tbr was running since it was installed, from its heartbeats, and which
    sweeps filled the gaps.

    A gap is a stretch longer than GAP with no heartbeat, start or stop; it is filled when a later
    sweep (or backfill) that succeeded looked back to (or before) its start. The stretch before tbr's
    first record is not a gap: tbr was not there yet (see `backfilled`).
    """
    result = Coverage(start, end, first_at(db))
    since = result.watched_from
    if since is None:
        return result
    points = [from_iso(r[0]) for r in db.execute(
        f"SELECT at FROM audit WHERE kind IN ({', '.join('?' * len(LIFE))}) AND at >= ? AND at < ? ORDER BY at",
        [*LIFE, iso(since - GAP), iso(end)])]
    for a, b in zip([since - GAP, *points], [*points, end]):
        a = max(a, since)
        if b - a > GAP:
            result.gaps.append(Gap(a, b))
    if result.gaps:
        sweeps = sorted((r["at"], from_iso(r["data"]["since"])) for kind in FILLERS
                        for r in records(db, kind=kind, since=start) if not r["data"].get("errors"))
        for gap in result.gaps:
            gap.filled_by = next((from_iso(at) for at, since in sweeps
                                  if since <= gap.start and from_iso(at) >= gap.end), None)
    return result


def backfilled(db) -> tuple[datetime, datetime] | None:
    """The backfill that reached furthest back, as (when it ran, the time it looked back to), if one ran:
    the time before tbr it judged the merges of."""
    row = db.execute("SELECT at, json_extract(data, '$.since') FROM audit WHERE kind = 'backfill.finished'"
                     " ORDER BY json_extract(data, '$.since'), seq LIMIT 1").fetchone()
    return (from_iso(row[0]), from_iso(row[1])) if row else None
