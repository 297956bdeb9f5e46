"""Webhook ingest: tbr under `gunicorn app:app` (its production settings) against a reference receiver
built on Probot's webhook library, side by side, with signed `pull_request` deliveries on loopback.

    .venv/bin/python bench/ingest.py [--seconds 15] [--connections 32] [--rate 200]

Two loads for each server:
- throughput: `wrk` (Debian's) with as many connections as --connections, each delivery a fresh
  GUID (bench/unique_guid.lua); requests per second and wrk's latency percentiles.
- fixed rate: an open-loop generator sending --rate deliveries a second (a new request every 1/rate
  seconds, whether or not earlier ones were answered, as GitHub does); p50 and p99 latency.
Deliveries lost: answered 2xx but not in tbr's database (for the reference: not in its memory).
tbr talks to the fake GitHub (tests/fakegithub.py) while it ingests, as it would to GitHub.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests import payloads  # noqa: E402
from tests.fakegithub import FakeGitHub  # noqa: E402
from tests.processes import free_port  # noqa: E402

SECRET = "bench-secret"
HERE = Path(__file__).resolve().parent


def delivery_body(repo: dict) -> bytes:
    """A merged PR's `pull_request.closed`, as GitHub sends it (from @octokit/webhooks-examples)."""
    payload = payloads.merged_pr("acme/api", repo["id"], 1, merged_at=datetime.now(timezone.utc))
    return json.dumps(payload).encode()


def wait_for(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.1)  # another process starting: no event to wait on
    raise RuntimeError(f"{url} did not come up")


class Server:
    def __init__(self, name: str, argv: list[str], env: dict, port: int, log: Path, cwd: Path):
        self.name, self.port = name, port
        self.proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT)
        wait_for(f"http://127.0.0.1:{port}/")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/webhook"

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(30)


def tbr_server(github: FakeGitHub, tmp: Path, **extra_env: str) -> tuple[Server, Path]:
    key = tmp / "app.pem"
    key.write_text(github.private_key)
    db = tmp / "tbr.db"
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("TBR_")},
           "TBR_APP_ID": str(github.app_id), "TBR_PRIVATE_KEY_PATH": str(key), "TBR_WEBHOOK_SECRET": SECRET,
           "TBR_GITHUB_API_URL": github.url, "TBR_DB": str(db), "PORT": str(free_port()), **extra_env}
    gunicorn = str(Path(sys.executable).with_name("gunicorn"))
    return Server("tbr (gunicorn app:app)", [gunicorn, "app:app"], env, int(env["PORT"]), tmp / "tbr.log", ROOT), db


def reference_server(tmp: Path) -> Server:
    if not (HERE / "reference" / "node_modules").exists():
        subprocess.run(["npm", "ci", "--silent"], cwd=HERE / "reference", check=True)
    port = free_port()
    return Server("reference (@octokit/webhooks, node)", ["node", "server.mjs", str(port), SECRET], dict(os.environ),
                  port, tmp / "reference.log", HERE / "reference")


def stored(server: Server, db: Path | None, prefix: str) -> int:
    """How many deliveries whose GUID starts with `prefix` the server kept."""
    if db is None:
        return int(httpx.get(f"http://127.0.0.1:{server.port}/count", timeout=5).text)
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT count(*) FROM deliveries WHERE guid LIKE ?", [prefix + "%"]).fetchone()[0]


def run_wrk(server: Server, body: Path, seconds: int, connections: int, prefix: str) -> dict:
    env = {**os.environ, "BODY": str(body), "SIGNATURE": payloads.headers("pull_request", body.read_bytes(),
                                                                           SECRET)["X-Hub-Signature-256"],
           "PREFIX": prefix}
    out = subprocess.run(["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "-s",
                          str(HERE / "unique_guid.lua"), server.url], env=env, capture_output=True, text=True,
                         check=True).stdout
    result = json.loads(out[out.index("JSON ") + 5:].splitlines()[0])
    result["rps"] = round(result["requests"] / result["seconds"])
    return result


async def fixed_rate(server: Server, body: bytes, rate: int, seconds: int, prefix: str) -> dict:
    signature = payloads.headers("pull_request", body, SECRET)["X-Hub-Signature-256"]
    latencies: list[float] = []
    answers = {"2xx": 0, "other": 0, "failed": 0}
    async with httpx.AsyncClient(limits=httpx.Limits(max_connections=200), timeout=10) as client:
        async def one(i: int) -> None:
            headers = {"X-GitHub-Event": "pull_request", "X-GitHub-Delivery": f"{prefix}{i}",
                       "X-Hub-Signature-256": signature, "Content-Type": "application/json",
                       "User-Agent": "GitHub-Hookshot/bench"}
            start = time.perf_counter()
            try:
                response = await client.post(server.url, content=body, headers=headers)
            except httpx.HTTPError:
                answers["failed"] += 1
                return
            latencies.append((time.perf_counter() - start) * 1000)
            answers["2xx" if 200 <= response.status_code < 300 else "other"] += 1

        tasks, start = [], time.perf_counter()
        for i in range(rate * seconds):
            await asyncio.sleep(max(0.0, start + i / rate - time.perf_counter()))
            tasks.append(asyncio.create_task(one(i)))
        await asyncio.gather(*tasks)
    cuts = statistics.quantiles(latencies, n=100)
    return {"sent": rate * seconds, **answers, "p50_ms": round(cuts[49], 2), "p99_ms": round(cuts[98], 2),
            "max_ms": round(max(latencies), 2)}


def settle(server: Server, db: Path | None, prefix: str, answered: int) -> int:
    """Deliveries answered 2xx but not kept (a short wait for the last commits is not a loss)."""
    deadline = time.monotonic() + 10
    while stored(server, db, prefix) < answered and time.monotonic() < deadline:
        time.sleep(0.2)  # the other process finishing its last requests: nothing to wait on
    return max(0, answered - stored(server, db, prefix))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--rate", type=int, default=200)
    args = parser.parse_args()
    results = {}
    with FakeGitHub() as github, tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        repo = github.add_repo("acme/api")
        github.add_pull("acme/api", 1, merged_at=datetime.now(timezone.utc))
        body = delivery_body(repo)
        (tmp / "body.json").write_bytes(body)
        tbr, db = tbr_server(github, tmp)
        reference = reference_server(tmp)
        try:
            for server, server_db in ((reference, None), (tbr, db)):
                # The steady rate first, so its latencies are not those of draining wrk's backlog.
                prefix = f"rate-{uuid.uuid4().hex[:6]}-"
                f = asyncio.run(fixed_rate(server, body, args.rate, args.seconds, prefix))
                f["lost"] = settle(server, server_db, prefix, f["2xx"])
                prefix = f"wrk-{uuid.uuid4().hex[:6]}-"
                w = run_wrk(server, tmp / "body.json", args.seconds, args.connections, prefix)
                w["lost"] = settle(server, server_db, prefix, w["ok"])
                results[server.name] = {"throughput": w, "fixed_rate": f}
        finally:
            tbr.stop()
            reference.stop()
    print(json.dumps(results, indent=1))
    ref, mine = results[reference.name], results[tbr.name]
    print(f"\n{'':38} {'req/s':>8} {'p50':>8} {'p99':>8} {'lost':>6}   at {args.rate}/s: {'p50':>7} {'p99':>7} {'lost':>5}")
    for name, r in results.items():
        t, f = r["throughput"], r["fixed_rate"]
        print(f"{name:38} {t['rps']:>8} {t['p50_ms']:>7}ms {t['p99_ms']:>7}ms {t['lost']:>6}   "
              f"{f['p50_ms']:>9}ms {f['p99_ms']:>6}ms {f['lost']:>5}")
    print(f"\nthroughput ratio tbr/reference: {mine['throughput']['rps'] / ref['throughput']['rps']:.2f}")


if __name__ == "__main__":
    main()
