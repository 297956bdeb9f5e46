"""The supervisor of the worker process, started by gunicorn's master (gunicorn.conf.py).

Judging runs in one process of its own (`python -m tbr.worker --role work`), never in gunicorn's
request workers, so that work holding the GIL never delays answering a webhook; the scheduler runs
in another (`--role schedule`), so such work cannot freeze a job holding the database's write lock
either. This small process:
- starts both, and starts each again when it dies, after a pause that grows while it keeps
  dying (1 s, doubling, at most a minute);
- reads, over a pipe, each item the worker starts and its time budget, and kills the worker when an
  item overruns it. The attempt was counted in the database when the item was claimed, so the kill
  counts towards the item's quarantine, and the next worker backs off from it;
- on SIGTERM (gunicorn stopping) asks the worker to stop, and kills it if it has not within GRACE;
- dies with gunicorn's master, and the worker with it (Linux's parent-death signal).
"""

from __future__ import annotations

import ctypes
import os
import select
import signal
import subprocess
import sys
import threading
import time

import structlog

from tbr.store import LABELS

log = structlog.get_logger("tbr.supervisor")

GRACE = 10.0  # seconds a stopping worker has to finish its item
MAX_PAUSE = 60.0
STEADY = 60.0  # a worker that ran this long before dying is not crash-looping: restart at once
PR_SET_PDEATHSIG = 1


def die_with_parent(parent: int) -> None:
    """Have Linux kill this process when its parent dies, so no worker outlives gunicorn."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):  # not Linux: the getppid check below still covers start-up
        pass
    if os.getppid() != parent:  # it died before the request took effect
        os._exit(1)


class Supervisor:
    def __init__(self, command: list[str], role: str = "work"):
        self.command = command
        self.role = role
        self.stopping = False
        self.proc: subprocess.Popen | None = None

    def stop(self, *_) -> None:
        self.stopping = True

    def run(self) -> int:
        quick = 0  # deaths in a row, each soon after its start
        while not self.stopping:
            started = time.monotonic()
            self._watch(self._spawn())
            if self.stopping:
                break
            quick = 0 if time.monotonic() - started > STEADY else quick + 1
            pause = min(2.0 ** max(quick - 1, 0), MAX_PAUSE)
            log.warning("worker.restarting", role=self.role, exit_code=self.proc.returncode, in_seconds=pause)
            deadline = time.monotonic() + pause
            while not self.stopping and time.monotonic() < deadline:
                time.sleep(0.1)  # a restart pause; SIGTERM ends it within 0.1 s
        return 0

    def _spawn(self) -> int:
        read, write = os.pipe()
        self.proc = subprocess.Popen([*self.command, "--report-fd", str(write), "--parent", str(os.getpid())],
                                     pass_fds=[write])
        os.close(write)
        log.info("worker.spawned", role=self.role, pid=self.proc.pid)
        return read

    def _watch(self, reader: int) -> None:
        """Until the worker exits or is stopped: follow what it reports, kill it past its budget."""
        buffer, item, budget, deadline = b"", None, "", None
        try:
            while True:
                if self.stopping:
                    self._terminate()
                    return
                if deadline is not None and time.monotonic() > deadline:
                    table, _, ident = item
                    log.error("worker.over_budget", **{LABELS.get(table, "item"): ident}, budget_seconds=int(budget),
                              pid=self.proc.pid, hint="the item is tried again later, quarantined if it keeps failing")
                    self.proc.kill()
                    self.proc.wait()
                    return
                ready, _, _ = select.select([reader], [], [], 0.2)
                chunk = os.read(reader, 4096) if ready else b""
                if ready and not chunk or self.proc.poll() is not None:  # EOF: the worker is gone
                    self.proc.wait()
                    return
                buffer += chunk
                while b"\n" in buffer:
                    line, buffer = buffer.split(b"\n", 1)
                    budget, _, rest = line.decode(errors="replace").partition("\t")
                    if budget.isdigit():
                        item, deadline = rest.partition("\t"), time.monotonic() + int(budget)
                    else:
                        item, deadline = None, None
        finally:
            os.close(reader)

    def _terminate(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(GRACE)
        except subprocess.TimeoutExpired:
            log.warning("worker.killed", reason=f"still running {GRACE:.0f} s after SIGTERM", pid=self.proc.pid)
            self.proc.kill()
            self.proc.wait()


def main(argv: list[str] | None = None) -> int:
    from tbr import config, logs

    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["--parent"]:
        die_with_parent(int(args[1]))
    try:
        logs.configure(config.load().log_format)
    except config.ConfigError:  # setup mode, say: the worker waits for the credentials itself
        logs.configure()
    children = [Supervisor([sys.executable, "-m", "tbr.worker", "--role", role], role) for role in ("work", "schedule")]

    def stop(*_):
        for child in children:
            child.stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    others = [threading.Thread(target=child.run, name=f"supervise-{child.role}") for child in children[1:]]
    for thread in others:
        thread.start()
    children[0].run()
    for thread in others:
        thread.join()
    return 0


if __name__ == "__main__":
    sys.exit(main())
