"""Acknowledgement while the worker is saturated: signed deliveries to `gunicorn app:app` (its production
settings) at a fixed rate, first with the worker idle, then while it is stuck on an item that holds the
GIL (a backtracking regex, the attack of issue 15).

    .venv/bin/python bench/ack.py [--seconds 30] [--rate 20]

The stuck item is planted as tests/test_worker_process.py does it: a `sitecustomize` on PYTHONPATH
wraps the engine for deliveries whose GUID starts with `poison-`. Its budget is raised to the
maximum (240 s) so the worker stays stuck for the whole measurement; the run checks it still was.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from ingest import SECRET, delivery_body, fixed_rate, tbr_server  # noqa: E402
from tests import payloads  # noqa: E402
from tests.fakegithub import FakeGitHub  # noqa: E402
from tests.test_worker_process import SITECUSTOMIZE  # noqa: E402

import httpx  # noqa: E402


def holder(db: Path, guid: str) -> str | None:
    with sqlite3.connect(db) as conn:
        row = conn.execute("SELECT lease_owner FROM deliveries WHERE guid = ?", [guid]).fetchone()
    return row[0] if row else None


def planted(tmp: Path) -> dict:
    """The environment that plants the stuck item, with the longest budget so it stays stuck."""
    (tmp / "site").mkdir()
    (tmp / "site" / "sitecustomize.py").write_text(SITECUSTOMIZE)
    (tmp / "poison").write_text("hog")
    return {"PYTHONPATH": str(tmp / "site"), "TBR_TEST_POISON": str(tmp / "poison"), "TBR_WORK_BUDGET_SECONDS": "240"}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=30)
    parser.add_argument("--rate", type=int, default=20, help="deliveries a second (GitHub sends one per event)")
    args = parser.parse_args()
    with FakeGitHub() as github, tempfile.TemporaryDirectory() as tmp_name:
        repo = github.add_repo("acme/api")
        github.add_pull("acme/api", 1, merged_at=datetime.now(timezone.utc))
        server, db = tbr_server(github, Path(tmp_name), **planted(Path(tmp_name)))
        body, results = delivery_body(repo), {}
        try:
            results["worker idle"] = asyncio.run(fixed_rate(server, body, args.rate, args.seconds, "idle-"))
            poison = json.dumps(payloads.merged_pr("acme/api", repo["id"], 1, merged_at=datetime.now(timezone.utc))).encode()
            httpx.post(server.url, content=poison, headers=payloads.headers("pull_request", poison, SECRET, "poison-1"), timeout=10)
            deadline = time.monotonic() + 60
            while not holder(db, "poison-1") and time.monotonic() < deadline:
                time.sleep(0.1)  # the worker process taking the item: another process, nothing to wait on
            stuck_since = holder(db, "poison-1")
            results["worker stuck holding the GIL"] = asyncio.run(
                fixed_rate(server, body, args.rate, args.seconds, "stuck-"))
            assert stuck_since and holder(db, "poison-1") == stuck_since, "the worker was not stuck throughout"
        finally:
            server.stop()
    print(json.dumps(results, indent=1))
    print(f"\n{'':30} {'sent':>6} {'2xx':>6} {'p50':>9} {'p99':>9} {'max':>9}")
    for name, r in results.items():
        print(f"{name:30} {r['sent']:>6} {r['2xx']:>6} {r['p50_ms']:>7}ms {r['p99_ms']:>7}ms {r['max_ms']:>7}ms")


if __name__ == "__main__":
    main()
