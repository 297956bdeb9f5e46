"""Attacks on a running `gunicorn app:app`, for the drills (tests/test_hostile.py) and the figures
(bench/edge.py): slow uploads that hold request threads, and large unsigned bodies."""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from contextlib import contextmanager

import httpx

from tests import payloads
from tests.conftest import SECRET

MB = 1024 * 1024


@contextmanager
def slow_uploads(port: int, count: int = 40):
    """`count` connections that each announce a 1 MB body, send its first byte, and then nothing: no
    signature needed, each holds a request thread for as long as the server waits for its body."""
    socks = []
    try:
        for _ in range(count):
            s = socket.create_connection(("127.0.0.1", port))
            s.sendall(b"POST /webhook HTTP/1.1\r\nHost: tbr\r\nContent-Type: application/json\r\n"
                      b"X-GitHub-Event: push\r\nX-GitHub-Delivery: slow\r\n"
                      b"X-Hub-Signature-256: sha256=" + b"0" * 64 + b"\r\n"
                      b"Content-Length: 1048576\r\n\r\n{")
            socks.append(s)
        yield socks
    finally:
        for s in socks:
            s.close()


def signed_delivery(port: int, timeout: float = 10.0) -> tuple[int, float]:
    """A ping as GitHub sends it, over a new connection; (status, seconds to the answer). GitHub gives
    up after 10 s."""
    body = json.dumps({**payloads.example("ping.none.1"), "zen": os.urandom(8).hex()}).encode()
    start = time.monotonic()
    answer = httpx.post(f"http://127.0.0.1:{port}/webhook", content=body, timeout=timeout,
                        headers={**payloads.headers("ping", body, SECRET), "Connection": "close"})
    return answer.status_code, time.monotonic() - start


def rss(pid: int) -> int:
    """Resident memory of process `pid` and all its descendants, in bytes (Linux)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except OSError:
                continue
            children.setdefault(ppid, []).append(int(entry))
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        todo += children.get(p, [])
        try:
            with open(f"/proc/{p}/status") as f:
                total += next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmRSS:"))
        except (OSError, StopIteration):
            pass
    return total


def unsigned_bodies(port: int, pid: int, count: int = 16, size: int = 24 * MB, chunked: bool = False) -> tuple[int, list[int]]:
    """`count` concurrent unsigned bodies of `size` bytes each (a forged signature), while the peak
    resident memory of the server (pid and its workers) is sampled; (peak growth in bytes, statuses)."""
    idle = rss(pid)
    peak, statuses, done = idle, [], threading.Event()
    chunk = b"x" * (256 * 1024)

    def body():
        sent = 0
        while sent < size:
            piece = chunk[:size - sent]
            sent += len(piece)
            yield piece

    def send():
        headers = {"X-GitHub-Event": "push", "X-GitHub-Delivery": "big", "Content-Type": "application/json",
                   "X-Hub-Signature-256": "sha256=" + "0" * 64}
        if not chunked:
            headers["Content-Length"] = str(size)
        try:
            statuses.append(httpx.post(f"http://127.0.0.1:{port}/webhook", content=body(), headers=headers,
                                       timeout=60).status_code)
        except httpx.HTTPError as e:
            statuses.append(type(e).__name__)

    senders = [threading.Thread(target=send) for _ in range(count)]
    for t in senders:
        t.start()

    def sample():
        nonlocal peak
        while not done.is_set():
            peak = max(peak, rss(pid))
            done.wait(0.05)

    sampler = threading.Thread(target=sample)
    sampler.start()
    for t in senders:
        t.join()
    done.set()
    sampler.join()
    return peak - idle, statuses
