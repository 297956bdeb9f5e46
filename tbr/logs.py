"""structlog set-up: JSON lines in production, readable lines at a terminal."""

from __future__ import annotations

import logging
import sys

import structlog

_progress = {"open": False}  # a progress line (redrawn with \r) is on the terminal, not yet ended


def configure(fmt: str = "auto", level: int = logging.INFO, file=None) -> None:
    """fmt: json, console, or auto (console at a terminal, JSON into a pipe or a file, where a program
    reads the lines). Colours only at a terminal: escape codes in a file or a pipe are noise."""
    file = file or sys.stderr
    tty = file.isatty()
    if fmt == "auto":
        fmt = "console" if tty else "json"
    renderer = structlog.processors.JSONRenderer() if fmt == "json" else structlog.dev.ConsoleRenderer(colors=tty)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
            _after_progress,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        # One write per line: gunicorn's workers share stderr, and a line written in two parts can
        # interleave with another worker's.
        logger_factory=structlog.WriteLoggerFactory(file=file),
        cache_logger_on_first_use=False,
    )


def progress(text: str) -> None:
    """Redraw one progress line on standard error (a terminal)."""
    print(f"\r\033[K{text}", end="", file=sys.stderr, flush=True)
    _progress["open"] = True


def end_progress() -> None:
    if _progress["open"]:
        print(file=sys.stderr, flush=True)
        _progress["open"] = False


def _after_progress(_logger, _method, line: str) -> str:
    """A log line starts on a line of its own, not at the end of a progress line."""
    if _progress["open"]:
        _progress["open"] = False
        return "\n" + line
    return line
