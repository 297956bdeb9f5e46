"""The Flask application: the webhook receiver, health and metrics, wired to one Engine."""

from __future__ import annotations

import hmac
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import structlog
from flask import Flask, Response, abort, jsonify, request

from tbr import config, health, logs, metrics
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
    store = Store(settings.db_path)
    gateway = gateway or Gateway(settings, on_response=store.record_github_response)
    engine = Engine(settings, store, gateway, clock=clock)
    worker = Worker(engine)
    scheduler = Scheduler(engine, wake=worker.wake)
    worker.tick = scheduler.tick
    return Runtime(settings, store, engine, worker, scheduler, clock())


def create_app(settings: config.Settings | None = None, *, gateway: Gateway | None = None,
               clock: Callable[[], datetime] = utcnow, start_worker: bool = True) -> Flask:
    """The web app. It never judges: gunicorn.conf.py starts the worker process. `start_worker=False`
    (tests, which run the work themselves) says no worker process is expected, so /healthz does not
    look for one."""
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
        readable = not any(p.startswith("database") for p in problems)
        if readable and start_worker:
            problems += health.worker_problems(runtime.store, clock(), runtime.started_at)
        # Quarantined items are problems to fix, but tbr is still watching: a 503 would make a load
        # balancer stop sending it webhooks, and one bad item must not stop the rest.
        serious = bool(problems)
        body = {"ok": True, "problems": problems}
        if readable:
            problems += health.quarantine_problems(runtime.store)
            body["work"] = runtime.store.counts()
        body["ok"] = not problems
        return jsonify(body), (503 if serious else 200)

    @app.get("/metrics")
    def metrics_():
        admin_only(settings.metrics_token)
        return Response(metrics.render(runtime.store, clock), mimetype="text/plain; version=0.0.4")

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
