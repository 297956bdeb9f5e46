"""The background thread that drains due work, so the webhook answers without waiting for it.

It wakes when a delivery arrives and every few seconds for changes whose grace period has ended.
It holds no work of its own: everything it does is read from and written to the database, so a
restart resumes where the last process stopped. Tests call `Engine.run_due()` directly instead.
"""

from __future__ import annotations

import threading

import structlog

from tbr import __version__
from tbr.engine import Engine

log = structlog.get_logger("tbr.worker")


class Worker:
    def __init__(self, engine: Engine, poll_seconds: float = 5.0, tick=lambda: None):
        self.engine = engine
        self.tick = tick  # called every pass: lets this process take over the scheduler
        self.poll_seconds = poll_seconds
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def wake(self) -> None:
        self._wake.set()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="tbr-worker", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread:
            self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        return bool(self._thread and self._thread.is_alive())

    def _run(self) -> None:
        log.info("worker.started", owner=self.engine.owner)
        self._record("process.started")
        try:
            self.engine.release_dead_leases()
        except Exception:  # the database is unavailable: the leases run out by themselves
            log.exception("worker.release_leases_failed")
        while not self._stop.is_set():
            self._wake.clear()
            try:
                self.tick()
            except Exception:  # e.g. the lock file cannot be opened: the work below must still be done
                log.exception("worker.scheduler_tick_failed")
            try:
                handled = self.engine.run_due()
            except Exception:  # the database itself failed; keep the thread, try again shortly
                log.exception("worker.pass_failed")
                handled = 0
            if not handled:
                self._wake.wait(self.poll_seconds)
        self._record("process.stopped")
        self.engine.store.close()
        log.info("worker.stopped")

    def _record(self, kind: str) -> None:
        try:
            self.engine.store.audit(kind, "", "tbr", self.engine.clock(), process=self.engine.owner,
                                    version=__version__)
        except Exception:  # a full or locked disk must not stop the worker; the heartbeats will show it
            log.exception("worker.audit_failed", kind=kind)
