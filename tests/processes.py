"""Helpers for tests that run other processes: tbr (gunicorn, the image's start script), Chromium."""

from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests import payloads
from tests.conftest import SECRET

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def eventually(predicate, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)  # polling another process's state: there is no event to wait on


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(not CHROMIUM and not os.environ.get("TBR_REQUIRE_BROWSER"),
                                    reason="no Chromium here")


@contextmanager
def chromium_page():
    """A page in Debian's headless Chromium, driven by Playwright (which downloads no browser)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run"])
        try:
            yield browser.new_page()
        finally:
            browser.close()


class Gunicorn:
    """`gunicorn app:app` as a user runs it, in its own process group so a test can kill all of it."""

    def __init__(self, env: dict, workers: int = 2, ready: str = '"tbr.started"'):
        self.port = free_port()
        self.lines: queue.Queue[str] = queue.Queue()  # for waiting on start-up
        self.log: list[str] = []  # everything it said
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "app:app"], cwd=ROOT, stderr=subprocess.PIPE, text=True,
            env={**env, "PORT": str(self.port), "WEB_CONCURRENCY": str(workers)}, start_new_session=True)
        threading.Thread(target=self._pump, daemon=True).start()
        started = 0
        while started < workers:
            line = self.lines.get(timeout=30)
            started += ready in line

    def _pump(self):
        for line in self.proc.stderr:
            self.log.append(line)
            self.lines.put(line)

    def post(self, event: str, payload: dict, guid: str | None = None, secret: str = SECRET) -> httpx.Response:
        body = json.dumps(payload).encode()
        return httpx.post(f"http://127.0.0.1:{self.port}/webhook", content=body,
                          headers=payloads.headers(event, body, secret, guid), timeout=10)

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=30)

    def kill(self):
        """kill -9 the master and every worker at once: no shutdown code runs."""
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)


def pending(db: str) -> int:
    with sqlite3.connect(db) as conn:
        return sum(conn.execute(f"SELECT count(*) FROM {t} WHERE status = 'pending'").fetchone()[0]
                   for t in ("deliveries", "changes", "actions"))
