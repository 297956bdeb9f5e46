"""POST /webhook: verify, store, answer. The work happens later, on the worker thread.

The answer comes after one SQLite insert and never waits for GitHub: GitHub gives up on a delivery
after 10 seconds and never retries it by itself, so a slow answer is a lost change.

Until its signature is checked a body is anyone's: it is read in chunks, hashed as it comes, kept in
memory only up to SPOOL_BYTES (the rest waits in a temporary file), and must arrive within
BODY_SECONDS. A verified delivery of any shape GitHub can send is stored and answered 2xx; one tbr
cannot use is stored as ignored, with the reason.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import sqlite3
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from urllib.parse import parse_qs

import structlog
from flask import Blueprint, jsonify, request
from werkzeug.exceptions import ClientDisconnected, RequestEntityTooLarge

from tbr import events

log = structlog.get_logger("tbr.webhooks")

MAX_BYTES = 25 * 1024 * 1024  # GitHub caps payloads at 25 MB
BUSY_MS = 5000
CHUNK = 64 * 1024
SPOOL_BYTES = 256 * 1024  # an unverified body past this waits on disk, not in memory
BODY_SECONDS = 10.0  # GitHub gives up on a delivery after 10 s: a body slower than that is not GitHub's
# A body seen again under a new GUID within this window is a replay. GitHub keeps a delivery 3 days
# for redelivery (same GUID); a body carrying no time of its own may legitimately recur later.
REPLAY_WINDOW = timedelta(days=3)
SIGNATURE = re.compile(r"sha256=[0-9a-fA-F]{64}")  # checked before use: hmac refuses non-ASCII text


class Refused(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


def _answer(status: int, message: str, **extra):
    return jsonify({"message": message, **extra}), status


def _read_body(secret: str, signature: str) -> tuple[bytes | None, str]:
    """The body, if `signature` is its HMAC (else None), and its SHA-256. Raises Refused when it is
    over 25 MB (however it is sent: with a length or chunked), ends early, or is too slow."""
    if (request.content_length or 0) > MAX_BYTES:
        raise Refused(413, "payload larger than 25 MB")
    mac, digest, size = hmac.new(secret.encode(), digestmod=hashlib.sha256), hashlib.sha256(), 0
    # gunicorn hands over its socket: a timeout on it bounds each read by the time left.
    sock = request.environ.get("gunicorn.socket")
    deadline = time.monotonic() + BODY_SECONDS
    with tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES) as spool:
        try:
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError
                if sock is not None:
                    sock.settimeout(left)
                chunk = request.stream.read(CHUNK)
                if not chunk:
                    break
                size += len(chunk)
                if size > MAX_BYTES:
                    raise Refused(413, "payload larger than 25 MB")
                mac.update(chunk)
                digest.update(chunk)
                spool.write(chunk)
        except TimeoutError:
            raise Refused(408, f"the body took longer than {BODY_SECONDS:g} s to arrive") from None
        except RequestEntityTooLarge:
            raise Refused(413, "payload larger than 25 MB") from None
        except ClientDisconnected:
            raise Refused(400, "the body ended before its announced length") from None
        finally:
            if sock is not None:
                sock.settimeout(None)
        # Only SHA-256 counts (not X-Hub-Signature's SHA-1), and only as 64 ASCII hex digits.
        if not (SIGNATURE.fullmatch(signature)
                and hmac.compare_digest(mac.hexdigest(), signature.removeprefix("sha256=").lower())):
            return None, digest.hexdigest()
        spool.seek(0)
        return spool.read(), digest.hexdigest()


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
        try:
            body, sha256 = _read_body(secret, request.headers.get("X-Hub-Signature-256", ""))
        except Refused as e:
            log.warning("webhook.refused", reason=e.message, remote=request.remote_addr)
            return refuse(e.status, e.message)
        if body is None:
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
        except (ValueError, UnicodeDecodeError, RecursionError) as e:  # RecursionError: JSON nested too deep
            log.warning("webhook.malformed", delivery=guid, event_name=event, error=str(e))
            return refuse(400, f"malformed payload: {e}")
        now = clock()
        try:
            # The fields the work relies on, checked before storing: GitHub's schema lets some be
            # missing, and such a delivery is kept, as ignored, rather than refused and lost.
            events.check(event, payload, now)
            ignored = None
        except events.MalformedPayload as e:
            ignored = f"ignored: {e}"
        repo, action = events.text(payload, "repository.full_name"), events.text(payload, "action")
        subject = repo or events.text(payload, "organization.login") or ""
        bound = log.bind(delivery=guid, event_name=event, action=action, repo=repo)
        try:
            # Wait for another writer at most a few seconds: GitHub gives up after ten. And leave WAL
            # checkpoints (a copy and an fsync of the database file) to the worker's commits.
            store.db.execute(f"PRAGMA busy_timeout = {BUSY_MS}")
            store.db.execute("PRAGMA wal_autocheckpoint = 0")
            with store.write(wait=BUSY_MS / 1000):
                replay_of = store.replay_of(sha256, guid, now, REPLAY_WINDOW)
                # A replay is recorded without its body: the first delivery has it.
                stored = store.add_delivery(guid, event, action, repo, "" if replay_of else text, now)
                if stored:
                    store.audit("delivery.received", subject, events.text(payload, "sender.login"), now,
                                delivery=guid, event=event, action=action, sha256=sha256,
                                **({"replay_of": replay_of} if replay_of else {}))
                    if replay_of or ignored:
                        store.finish_delivery(guid, f"replay of delivery {replay_of}" if replay_of else ignored, now)
                        store.bump("webhook_replays" if replay_of else "webhook_ignored")
        except sqlite3.Error as e:
            # Locked, full, or failing: nothing was stored, so say so. GitHub records the failure and
            # the sweep asks for the delivery again; a 2xx here would lose it for good.
            bound.error("webhook.not_stored", error=str(e))
            return _answer(503, f"could not store the delivery ({e}); it will be requested again")
        if not stored:
            bound.info("webhook.duplicate")
            return _answer(200, "already received", delivery=guid)
        if replay_of:
            bound.warning("webhook.replay", replay_of=replay_of, sha256=sha256)
            return _answer(200, f"replay of delivery {replay_of}: recorded, not processed again", delivery=guid)
        if ignored:
            bound.warning("webhook.ignored", reason=ignored)
            return _answer(202, ignored, delivery=guid)
        bound.info("webhook.stored")
        wake()
        return _answer(202 if event != "ping" else 200, "pong" if event == "ping" else "queued", delivery=guid)

    @bp.errorhandler(413)
    def too_large(_e):
        return refuse(413, "payload larger than 25 MB")

    return bp

