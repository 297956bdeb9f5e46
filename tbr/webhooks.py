"""POST /webhook: verify, store, answer. The work happens later, on the worker thread.

The answer comes after one SQLite insert and never waits for GitHub: GitHub gives up on a delivery
after 10 seconds and never retries it by itself, so a slow answer is a lost change.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Callable
from datetime import datetime
from urllib.parse import parse_qs

import structlog
from flask import Blueprint, jsonify, request
from githubkit.webhooks import verify

from tbr import events

log = structlog.get_logger("tbr.webhooks")

MAX_BYTES = 25 * 1024 * 1024  # GitHub caps payloads at 25 MB
BUSY_MS = 5000


def _answer(status: int, message: str, **extra):
    return jsonify({"message": message, **extra}), status


def _signature_ok(secret: str, body: bytes, header: str | None) -> bool:
    # githubkit's verify falls back to SHA-1 without the "sha256=" prefix: insist on SHA-256.
    return bool(header) and header.startswith("sha256=") and verify(secret, body, header)


def _decode(body: bytes, content_type: str) -> tuple[str, object]:
    """The JSON text GitHub sent (kept as it came: re-encoding it would cost time and change its
    hash), and what it says."""
    text = body.decode("utf-8")
    if content_type.startswith("application/x-www-form-urlencoded"):
        text = parse_qs(text).get("payload", [""])[0]
    return text, json.loads(text)


def blueprint(secret: str, store, wake: Callable[[], None], clock: Callable[[], datetime]) -> Blueprint:
    bp = Blueprint("webhooks", __name__)

    def refuse(status: int, message: str):
        try:
            store.bump(f"webhook_refused_{status}")  # a count for /metrics; the request itself is not kept
        except sqlite3.Error:
            log.warning("webhook.uncounted", status=status)  # the database is unavailable: refuse all the same
        return _answer(status, message)

    @bp.post("/webhook")
    def receive():
        if (request.content_length or 0) > MAX_BYTES:
            return refuse(413, "payload larger than 25 MB")
        body = request.get_data(cache=False)
        if len(body) > MAX_BYTES:
            return refuse(413, "payload larger than 25 MB")
        if not _signature_ok(secret, body, request.headers.get("X-Hub-Signature-256")):
            log.warning("webhook.refused", reason="bad or missing X-Hub-Signature-256", remote=request.remote_addr)
            return refuse(401, "signature missing or wrong: set the App's webhook secret to TBR_WEBHOOK_SECRET")
        guid = request.headers.get("X-GitHub-Delivery", "").strip()
        event = request.headers.get("X-GitHub-Event", "").strip()
        if not guid or not event:
            return refuse(400, "X-GitHub-Delivery and X-GitHub-Event headers are required")
        try:
            text, payload = _decode(body, request.content_type or "")
            if not isinstance(payload, dict):
                raise events.MalformedPayload("payload is not a JSON object")
            now = clock()
            # The fields the work relies on, checked before storing.
            events.check(event, payload, now)
        except (ValueError, UnicodeDecodeError, RecursionError) as e:  # RecursionError: JSON nested too deep
            log.warning("webhook.malformed", delivery=guid, event_name=event, error=str(e))
            return refuse(400, f"malformed payload: {e}")
        repo, action = events.text(payload, "repository.full_name"), events.text(payload, "action")
        subject = repo or events.text(payload, "organization.login") or ""
        bound = log.bind(delivery=guid, event_name=event, action=action, repo=repo)
        try:
            # Wait for another writer at most a few seconds: GitHub gives up after ten. And leave WAL
            # checkpoints (a copy and an fsync of the database file) to the worker's commits.
            store.db.execute(f"PRAGMA busy_timeout = {BUSY_MS}")
            store.db.execute("PRAGMA wal_autocheckpoint = 0")
            with store.write(wait=BUSY_MS / 1000):
                stored = store.add_delivery(guid, event, action, repo, text, now)
                if stored:
                    store.audit("delivery.received", subject, events.text(payload, "sender.login"), now,
                                delivery=guid, event=event, action=action, sha256=hashlib.sha256(body).hexdigest())
        except sqlite3.Error as e:
            # Locked, full, or failing: nothing was stored, so say so. GitHub records the failure and
            # the sweep asks for the delivery again; a 2xx here would lose it for good.
            bound.error("webhook.not_stored", error=str(e))
            return _answer(503, f"could not store the delivery ({e}); it will be requested again")
        if not stored:
            bound.info("webhook.duplicate")
            return _answer(200, "already received", delivery=guid)
        bound.info("webhook.stored")
        wake()
        return _answer(202 if event != "ping" else 200, "pong" if event == "ping" else "queued", delivery=guid)

    @bp.errorhandler(413)
    def too_large(_e):
        return refuse(413, "payload larger than 25 MB")

    return bp

