"""At scale: 100,000 changes in the database (a quarter of a busy organisation; one in five with a
follow-up), with the audit log they leave. The evidence export as CSV, JSON, the HTML report and its
PDF (headless Chromium), with time and peak memory; the weekly digest.

    .venv/bin/python bench/scale.py [--changes 100000]

Each export runs in a fresh process so its peak resident memory (VmHWM) is its own. Memory is
flat when the peak barely moves between 10,000 and 100,000 changes, which the run shows side by side.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from tbr import audit, digest, evidence, pdf  # noqa: E402
from tbr.store import Store, iso  # noqa: E402

START = datetime(2026, 7, 1, tzinfo=timezone.utc)
KEYS = audit.Keys(b"bench audit key, 32 bytes or more")


def populate(path: str, n: int) -> None:
    store = Store(path)
    step = timedelta(days=90) / n
    rows = []
    for i in range(n):
        at = START + i * step
        approved = i % 5 != 0
        decision = {"approved": approved, "rule": "review" if approved else "none",
                    "approval": {"rule": "review", "approver": "bob", "at": iso(at), "url": f"https://github.com/acme/api/pull/{i}#pullrequestreview-{i}",
                                 "detail": "bob approved the pull request"} if approved else None,
                    "summary": "Approved: bob approved the pull request" if approved else "No approval found: alice authored and merged it",
                    "notes": []}
        row = {"key": f"pr:1:{i}", "kind": "pr", "repo": "acme/api", "repo_id": 1, "installation_id": 1,
               "branch": "main", "number": i, "sha": f"{i:040x}", "actor": "alice", "happened_at": iso(at),
               "facts": json.dumps({"title": f"Change {i}", "url": f"https://github.com/acme/api/pull/{i}", "author": "alice"}),
               "source": "webhook", "first_seen_at": iso(at), "next_attempt_at": iso(at),
               "status": "approved" if approved else "followup", "decision": json.dumps(decision), "judged_at": iso(at)}
        if not approved:
            row.update(followup_repo="acme/api", followup_number=100000 + i,
                       followup_url=f"https://github.com/acme/api/issues/{100000 + i}", due_at=iso(at + timedelta(days=2)),
                       followup_state="signed_off", signed_off_at=iso(at + timedelta(days=1)), signed_off_by="bob",
                       signoff_how="closed", business_seconds=86400, within_sla=1)
        rows.append(row)
    store.db["changes"].insert_all(rows, batch_size=2000)
    # The audit log such a quarter leaves, keyed as in production, which the export verifies whole and
    # binds each row to: each change's records as the live path writes them (three for an approved
    # change, five for a signed-off one), and heartbeats.
    with store.write():
        beat = START
        for row in rows:
            at, subject = datetime.fromisoformat(row["happened_at"]), f"acme/api#{row['number']}"
            while beat <= at:
                audit.append(store.db, "heartbeat", "", "tbr", beat, {}, KEYS)
                beat += audit.HEARTBEAT_EVERY
            decision = json.loads(row["decision"])
            approval = decision["approval"] or {}
            records = [("delivery.received", "alice", {"delivery": f"guid-{row['number']}", "event": "pull_request"}),
                       ("change.recorded", "alice", {"change": row["key"], "branch": "main", "sha": row["sha"],
                                                     "source": "webhook", "happened_at": row["happened_at"]}),
                       ("change.judged", "tbr", {"change": row["key"], "status": row["status"], "rule": decision["rule"],
                                                 "summary": decision["summary"], "notes": [],
                                                 "approver": approval.get("approver"),
                                                 "approved_at": approval.get("at"), "link": approval.get("url"),
                                                 "source": "webhook", "declaration": None, "merged_by": "alice",
                                                 "decision_sha": audit.fingerprint(row["status"], row["actor"], row["decision"])})]
            if row["status"] == "followup":
                records += [("followup.filed", "tbr", {"change": row["key"], "issue": row["followup_url"],
                                                       "due": row["due_at"]}),
                            ("followup.signed_off", "bob", {"change": row["key"], "outcome": "signed off by bob",
                                                            "issue": f"acme/api#{row['followup_number']}"})]
            for kind, actor, data in records:
                when = datetime.fromisoformat(row["signed_off_at"]) if kind == "followup.signed_off" else at
                audit.append(store.db, kind, subject, actor, when, data, KEYS)


def digest_time(path: str) -> float:
    """Child process: build the weekly digest over the whole table."""
    from tbr.config import Settings
    from tbr.engine import Engine

    settings = Settings(app_id=1, private_key="", webhook_secret="s", api_url="http://127.0.0.1:9", db_path=path)
    engine = Engine(settings, Store(path, KEYS), gateway=None, clock=lambda: START + timedelta(days=91))
    t = time.perf_counter()
    digest.build(engine, START + timedelta(days=91))
    return round(time.perf_counter() - t, 2)


def export_one(path: str, fmt: str) -> None:
    """Child process: one export to /dev/null, then time and peak memory as JSON."""
    store = Store(path, KEYS)
    t, cpu = time.perf_counter(), time.process_time()
    period, now = evidence.Period(START, START + timedelta(days=91)), START + timedelta(days=91)
    if fmt == "pdf":  # the report printed by Chromium (its memory is the browser's, not counted here)
        with open(os.devnull, "wb") as out:
            _, n = pdf.write(lambda text: evidence.export(store.db, period, "html", text, now), out)
    else:
        with open(os.devnull, "w") as out:
            _, n = evidence.export(store.db, period, fmt, out, now)
    print(json.dumps({"rows": n, "seconds": round(time.perf_counter() - t, 2),
                      "cpu": round(time.process_time() - cpu, 2), "peak_mb": peak_mb()}))


def peak_mb() -> float:
    """This process's peak resident memory. Not ru_maxrss: Linux carries that over from the parent
    across fork and exec, so the child would report the populating parent's peak."""
    with open("/proc/self/status") as f:
        kb = next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
    return round(kb / 1024, 1)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--changes", type=int, default=100_000)
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child and args.child[1] == "digest":
        print(json.dumps({"seconds": digest_time(args.child[0]), "peak_mb": peak_mb()}))
        return
    if args.child:
        export_one(*args.child)
        return
    with tempfile.TemporaryDirectory() as tmp:
        for n in sorted({args.changes // 10, args.changes}):
            path = os.path.join(tmp, f"{n}.db")
            populate(path, n)
            for what in ("csv", "json", "html", "pdf", "digest"):
                out = subprocess.run([sys.executable, __file__, "--child", path, what], check=True,
                                     capture_output=True, text=True).stdout
                r = json.loads(out.splitlines()[-1])
                label = "weekly digest" if what == "digest" else f"evidence {what}"
                # CPU time too: on a shared machine it moves far less than the wall clock.
                cpu = f"  cpu {r['cpu']:>5} s" if "cpu" in r else ""
                print(f"{n:>7} changes  {label:<14}  {r['seconds']:>5} s{cpu}  peak {r['peak_mb']:>6} MB")


if __name__ == "__main__":
    main()
