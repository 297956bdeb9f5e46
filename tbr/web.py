"""The Flask application: the webhook receiver, health and metrics, wired to one Engine."""

from __future__ import annotations

import atexit
import hmac
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import structlog
from flask import Flask, Response, abort, jsonify, request

from tbr import audit, config, health, logs, metrics
from tbr.engine import Engine, utcnow
from tbr.github import Gateway
from tbr.schedule import Scheduler
from tbr.store import Store
from tbr.webhooks import MAX_BYTES, blueprint
from tbr.worker import Worker

log = structlog.get_logger("tbr.web")


@dataclass
class Runtime:
    settings: config.Settings
    store: Store
    engine: Engine
    worker: Worker
    scheduler: Scheduler
    started_at: datetime

    def stop(self) -> None:
        """Worker first: its next pass could otherwise take the scheduler lock again."""
        self.worker.stop()
        self.scheduler.stop()


def build(settings: config.Settings, *, gateway: Gateway | None = None,
          clock: Callable[[], datetime] = utcnow) -> Runtime:
    store = Store(settings.db_path, audit.keys_of(settings))
    gateway = gateway or Gateway(settings, on_response=store.record_github_response)
    engine = Engine(settings, store, gateway, clock=clock)
    worker = Worker(engine)
    scheduler = Scheduler(engine, wake=worker.wake)
    worker.tick = scheduler.tick
    return Runtime(settings, store, engine, worker, scheduler, clock())


def create_app(settings: config.Settings | None = None, *, gateway: Gateway | None = None,
               clock: Callable[[], datetime] = utcnow, start_worker: bool = True) -> Flask:
    settings = settings or config.load()
    logs.configure(settings.log_format)
    runtime = build(settings, gateway=gateway, clock=clock)
    app = Flask("tbr")
    app.config["MAX_CONTENT_LENGTH"] = MAX_BYTES
    app.extensions["tbr"] = runtime
    app.register_blueprint(blueprint(settings.webhook_secret, runtime.store, runtime.worker.wake, clock))

    @app.get("/healthz")
    def healthz():
        problems = health.problems(runtime.store, clock(), settings.sweep_minutes, runtime.started_at)
        if start_worker and not runtime.worker.alive:
            problems.append("this process's worker thread is not running")
        body = {"ok": not problems, "problems": problems}
        if not any(p.startswith("database") for p in problems):
            body["work"] = runtime.store.counts()
        return jsonify(body), (200 if not problems else 503)

    @app.get("/metrics")
    def metrics_():
        admin_only(settings.metrics_token)
        return Response(metrics.render(runtime.store, clock), mimetype="text/plain; version=0.0.4")

    if start_worker:
        runtime.worker.start()
        atexit.register(runtime.stop)
    log.info("tbr.started", db=settings.db_path, api=settings.api_url, tracking_repo=settings.tracking_repo,
             grace_seconds=settings.grace_seconds, timezone=settings.timezone)
    return app


class SetupSwitch:
    """The WSGI app while tbr has no credentials: /setup, until the flow writes them, then tbr itself."""

    def __init__(self, setup: config.SetupSettings):
        from tbr.setup import setup_app

        self.credentials = setup.credentials
        self.setup = setup_app(setup.credentials, setup.api_url, setup.web_url, setup.token, setup.public_url)
        self.real: Flask | None = None
        self._lock = threading.Lock()

    def __call__(self, environ, start_response):
        if self.real is None and self.credentials.exists():
            with self._lock:
                if self.real is None:
                    self.real = create_app()
        return (self.real or self.setup)(environ, start_response)


def wsgi_app():
    """What `gunicorn app:app` serves: tbr, or the setup flow when no App exists yet."""
    try:
        return create_app()
    except config.MissingCredentials as e:
        logs.configure()
        log.warning("tbr.setup_mode", reason=str(e))
        return SetupSwitch(config.load_setup())


def admin_only(token: str | None) -> None:
    """Admin routes answer loopback, or a bearer of TBR_METRICS_TOKEN; anyone else gets 401."""
    if request.remote_addr in ("127.0.0.1", "::1"):
        return
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if token and scheme.lower() == "bearer" and hmac.compare_digest(given.strip(), token):
        return
    abort(401)
