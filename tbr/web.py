"""The Flask application: the webhook receiver, health and metrics, wired to one Engine."""

from __future__ import annotations

import hmac
import ipaddress
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
        return Response(metrics.render(runtime.store, clock, settings.timezone), mimetype="text/plain; version=0.0.4")

    log.info("tbr.started", db=settings.db_path, api=settings.api_url, tracking_repo=settings.tracking_repo,
             grace_seconds=settings.grace_seconds, timezone=settings.timezone)
    return app


class SetupSwitch:
    """The WSGI app while tbr has no credentials: /setup, until the flow writes them, then tbr itself."""

    def __init__(self, setup: config.SetupSettings):
        from tbr.setup import setup_app

        self.credentials = setup.credentials
        self.setup = setup_app(setup)
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
        setup = config.load_setup()
        # The secret /setup asks for, to whoever reads this log: not to whoever reaches the port.
        log.warning("tbr.setup_mode", reason=str(e), setup_code=setup.code, open=f"/setup?token={setup.code}")
        return SetupSwitch(setup)


def loopback(addr: str | None) -> bool:
    """Whether a peer is this machine; on a dual-stack socket IPv4 peers come as ::ffff:a.b.c.d."""
    try:
        ip = ipaddress.ip_address(addr or "")
    except ValueError:
        return False
    return (getattr(ip, "ipv4_mapped", None) or ip).is_loopback


def admin_only(token: str | None) -> None:
    """Admin routes take a bearer of TBR_METRICS_TOKEN whenever one is set, from any address (behind a
    proxy on the same host every request is from loopback). Without a token: loopback only."""
    if token is None:
        if loopback(request.remote_addr):
            return
        abort(401)
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode()):
        return
    abort(401)
