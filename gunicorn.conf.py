"""gunicorn settings, read automatically by `gunicorn app:app` from this directory."""

import os
import sys

bind = f"0.0.0.0:{os.environ.get('PORT', '8000')}"
# Each worker runs its own background thread; leases in SQLite keep them from doing the same work.
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
timeout = 30
graceful_timeout = 20


def on_starting(server):
    """Check the settings once, in the master, so a bad one is one line and not a boot loop."""
    from tbr.config import ConfigError, load

    try:
        load()
    except ConfigError as e:
        print(f"tbr: configuration error: {e}", file=sys.stderr)
        sys.exit(1)
