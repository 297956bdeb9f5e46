"""The Flask application: the webhook receiver and a health check, wired to one Engine."""

from __future__ import annotations

import atexit
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import structlog
from flask import Flask, jsonify

from tbr import config, logs
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


def build(settings: config.Settings, *, gateway: Gateway | None = None,
          clock: Callable[[], datetime] = utcnow) -> Runtime:
    store = Store(settings.db_path)
    engine = Engine(settings, store, gateway or Gateway(settings), clock=clock)
    worker = Worker(engine)
    scheduler = Scheduler(engine, wake=worker.wake)
    worker.tick = scheduler.tick
    return Runtime(settings, store, engine, worker, scheduler)


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
        problems = []
        try:
            runtime.store.check_writable()
        except Exception as e:  # any database failure makes the bot unhealthy
            problems.append(f"database not writable: {e}")
        if start_worker and not runtime.worker.alive:
            problems.append("worker thread is not running")
        body = {"ok": not problems, "problems": problems, "pending": runtime.store.counts()}
        return jsonify(body), (200 if not problems else 503)

    if start_worker:
        runtime.worker.start()
        atexit.register(runtime.worker.stop)
        atexit.register(runtime.scheduler.stop)
    log.info("tbr.started", db=settings.db_path, api=settings.api_url, tracking_repo=settings.tracking_repo,
             grace_seconds=settings.grace_seconds, timezone=settings.timezone)
    return app
