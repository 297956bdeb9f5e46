"""The worker: the loop that drains due work, run in its own process (`python -m tbr.worker`).

Under gunicorn the request workers never judge anything: CPU-heavy work there would hold the GIL
and delay answering GitHub. tbr/supervisor.py, started by gunicorn's master, runs this process,
enforces each item's time budget from what it reports, and starts it again when it dies.

The loop passes every second and holds no work of its own: everything it does is read from and
written to the database, so a restart resumes where the last process stopped. Tests call
`Engine.run_due()` directly instead.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from datetime import timedelta

import structlog

from tbr import __version__
from tbr.engine import Engine

log = structlog.get_logger("tbr.worker")

# Under the supervisor, items and the scheduler run in two processes: an item that holds the GIL
# (a pathological input) would otherwise freeze a scheduler job inside its write transaction, and
# SQLite's write lock with it, so webhooks could not be stored until the item's budget ran out.
ROLES = ("all", "work", "schedule")
BEAT_EVERY = timedelta(seconds=30)  # a sign of life for /healthz (see health.WORKER_SILENCE)


class Worker:
    def __init__(self, engine: Engine, poll_seconds: float = 5.0, tick=lambda: None):
        self.engine = engine
        self.tick = tick  # called every pass: lets this process take over the scheduler
        self.poll_seconds = poll_seconds
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_beat = None

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
            self.beat()
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

    def beat(self) -> None:
        """Say in the database that this worker is alive, at most every BEAT_EVERY."""
        now = self.engine.clock()
        if self._last_beat is not None and now - self._last_beat < BEAT_EVERY:
            return
        try:
            self.engine.store.beat("worker", now)
            self._last_beat = now
        except Exception:  # the database is unavailable: /healthz says so itself
            log.exception("worker.beat_failed")

    def _record(self, kind: str) -> None:
        try:
            self.engine.store.audit(kind, "", "tbr", self.engine.clock(), process=self.engine.owner,
                                    version=__version__)
        except Exception:  # a full or locked disk must not stop the worker; the heartbeats will show it
            log.exception("worker.audit_failed", kind=kind)


class Reporter:
    """Tells the supervisor, over a pipe, each item as it starts (with its budget) and when it ends.
    One short write per line is atomic on a pipe, so the supervisor never reads half a line."""

    def __init__(self, fd: int, budget: int, worker: Worker):
        self.fd = fd
        self.budget = budget
        self.worker = worker

    def __call__(self, table: str | None, ident: str | None) -> None:
        if table is not None:
            self.worker.beat()  # a long pass of many items is still a live worker
        line = f"{self.budget}\t{table}\t{ident[:200]}\n" if table else "\n"
        try:
            os.write(self.fd, line.encode())
        except OSError:  # no supervisor listening (run by hand): the budget is not enforced
            pass


def _settings(stop: threading.Event):
    """The settings, once there are credentials (in setup mode the App does not exist yet); None
    when told to stop first."""
    from tbr import config

    while not stop.is_set():
        try:
            return config.load()
        except config.MissingCredentials:
            stop.wait(5)  # /setup writes the credentials file; nothing to do until then
        except config.ConfigError as e:
            print(f"tbr: configuration error: {e}", file=sys.stderr)
            raise SystemExit(2) from None


def main(argv: list[str] | None = None) -> int:
    """The worker process: the loop, the deployment's scheduler when it holds the lock, until SIGTERM."""
    from tbr import logs
    from tbr.supervisor import die_with_parent
    from tbr.web import build

    parser = argparse.ArgumentParser(prog="python -m tbr.worker")
    parser.add_argument("--report-fd", type=int, help="pipe to the supervisor (tbr/supervisor.py)")
    parser.add_argument("--parent", type=int, help="exit with this process")
    parser.add_argument("--role", choices=ROLES, default="all",
                        help="work: drain due items; schedule: run the deployment's scheduler; all: both")
    args = parser.parse_args(argv)
    if args.parent:
        die_with_parent(args.parent)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):  # gunicorn stopping, or Ctrl-C at its terminal
        signal.signal(signum, lambda *_: stop.set())
    settings = _settings(stop)
    if settings is None:
        return 0
    logs.configure(settings.log_format)
    runtime = build(settings)
    if args.role == "schedule":
        _schedule(runtime.scheduler, stop)
        return 0
    if args.role == "work":
        runtime.worker.tick = lambda: None  # the scheduler runs in a process of its own
    runtime.worker.poll_seconds = 1.0  # a job of the scheduler's process cannot wake this one: poll
    if args.report_fd is not None:
        runtime.engine.attempting = Reporter(args.report_fd, settings.work_budget_seconds, runtime.worker)
    runtime.worker.start()
    while not stop.wait(1.0) and runtime.worker.alive:
        pass
    runtime.stop()
    return 0


def _schedule(scheduler, stop: threading.Event) -> None:
    """The scheduler's process: lead when no other process does, until told to stop."""
    scheduler.wake = lambda: None  # the worker is another process; it polls every second
    while not stop.wait(1.0):
        try:
            scheduler.tick()
        except Exception:  # e.g. the lock file cannot be opened: try again on the next pass
            log.exception("scheduler.tick_failed")
    scheduler.stop()


if __name__ == "__main__":
    sys.exit(main())
