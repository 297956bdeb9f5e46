"""gunicorn settings, read automatically by `gunicorn app:app` from this directory."""

import json
import os
import secrets
import socket
import sqlite3
import subprocess
import sys
import threading
from datetime import datetime, timezone

from gunicorn import glogging


def _dual_stack() -> bool:
    """Whether one socket on [::] takes IPv4 too (Linux's default): Fly's private network, where
    `fly proxy` comes from, is IPv6; the public edge and local tools speak IPv4."""
    try:
        with open("/proc/sys/net/ipv6/bindv6only") as f:
            return socket.has_dualstack_ipv6() and f.read().strip() == "0"
    except OSError:
        return False


bind = [f"{'[::]' if _dual_stack() else '0.0.0.0'}:{os.environ.get('PORT', '8000')}"]
# These workers only answer requests; judging runs in one process of its own (when_ready below).
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
# gthread: a thread per request being read or answered; connections that send nothing wait in the
# poller, not in a thread. A slow upload holds its thread until its body is in or tbr's 10 s body
# deadline (tbr/webhooks.py) ends it, so 64 threads a worker leave GitHub's deliveries free threads
# beside 40 slow uploads, even if the kernel hands all of them to one worker. An idle thread costs
# a stack, no CPU; a body being read at most 256 KB of memory (the rest waits on disk).
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS", "64"))
timeout = 30
graceful_timeout = 20


class JsonAccessLogger(glogging.Logger):
    """gunicorn's logger, but each request is one JSON object on the access log.

    gunicorn's access_log_format does not escape what the client sent, so a quote in a path or a
    User-Agent would break a JSON template; json.dumps escapes it. The query string is left out:
    /setup carries a token in it.
    """

    def access(self, resp, req, environ, request_time):
        if not self.access_log_enabled:
            return
        status = str(resp.status).split(None, 1)[0]
        # PATH_INFO is the percent-decoded path as latin-1 text (PEP 3333); show it as the UTF-8 it was.
        path = environ.get("PATH_INFO", "").encode("latin-1", "replace").decode("utf-8", "replace")
        entry = {
            "timestamp": datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": "info",
            "event": "http.request",
            # IPv4 peers arrive on the dual-stack socket as ::ffff:a.b.c.d: show the address they have.
            "remote_addr": (environ.get("REMOTE_ADDR") or "").removeprefix("::ffff:") or None,
            "method": environ.get("REQUEST_METHOD"),
            "path": path,
            "status": int(status) if status.isdigit() else status,
            "bytes": getattr(resp, "sent", None),
            "duration_ms": round(request_time.total_seconds() * 1000, 3),
            "user_agent": environ.get("HTTP_USER_AGENT"),
        }
        if environ.get("HTTP_X_GITHUB_DELIVERY"):  # the `delivery` of tbr's own log lines
            entry["delivery"] = environ["HTTP_X_GITHUB_DELIVERY"]
        try:
            self.access_log.info(json.dumps(entry))
        except Exception:  # a log line must never fail a request
            self.exception("access log")


# One JSON line per request on stdout; tbr's own log lines and gunicorn's go to stderr.
# (access_log_format is not used: JsonAccessLogger writes the line.)
logger_class = JsonAccessLogger
accesslog = "-"


def on_starting(server):
    """Check the settings once, in the master, so a bad one is one line and not a boot loop."""
    from tbr.config import SETUP_CODE, ConfigError, MissingCredentials, load
    from tbr.store import Store

    try:
        # Create and migrate the database here, once, before the workers start together.
        Store(load().db_path).close()
    except MissingCredentials:
        # No App yet: the workers serve /setup until it has one, all asking for this one-time code.
        os.environ.setdefault(SETUP_CODE, secrets.token_urlsafe(16))
        return
    except ConfigError as e:
        print(f"tbr: configuration error: {e}", file=sys.stderr)
        sys.exit(1)
    except (sqlite3.Error, OSError) as e:  # a read-only directory, a file that is not a database
        print(f"tbr: database {os.environ.get('TBR_DB') or './tbr.db'} (TBR_DB): {e}", file=sys.stderr)
        sys.exit(1)


_supervisor: subprocess.Popen | None = None
_stopping = threading.Event()
SUPERVISOR_CHECK = 2.0  # seconds between looks at the supervisor


def _start_supervisor() -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "tbr.supervisor", "--parent", str(os.getpid())])


def _keep_supervised(server) -> None:
    """Start the supervisor again if it dies (the OOM killer, a bug): without it nothing is judged.
    gunicorn's master reaps every child of its own, so this looks by poll() rather than waiting."""
    global _supervisor
    while not _stopping.wait(SUPERVISOR_CHECK):
        if _supervisor.poll() is not None and not _stopping.is_set():
            server.log.error("tbr supervisor exited (status %s); starting it again", _supervisor.returncode)
            _supervisor = _start_supervisor()


def when_ready(server):
    """Start the worker's supervisor (tbr/supervisor.py): judging never runs in a request worker, so
    work that holds the GIL cannot delay answering GitHub. It dies with this master, and this master
    starts it again if it dies."""
    global _supervisor
    _supervisor = _start_supervisor()
    threading.Thread(target=_keep_supervised, args=(server,), name="tbr-supervisor-watch", daemon=True).start()


def on_exit(server):
    """gunicorn is stopping: stop the worker too (it finishes its item, or is killed after 10 s)."""
    _stopping.set()
    if _supervisor is None:
        return
    _supervisor.terminate()
    try:
        _supervisor.wait(graceful_timeout)
    except subprocess.TimeoutExpired:
        _supervisor.kill()
