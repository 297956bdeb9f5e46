from __future__ import annotations

import dataclasses
import os
from datetime import datetime, timedelta, timezone

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tbr.config import Settings

SECRET = "It's a Secret to Everybody"


class Clock:
    """A settable clock: tests move time instead of sleeping."""

    def __init__(self, now: datetime):
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture(scope="session")
def private_key() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                             serialization.NoEncryption()).decode()


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime(2026, 11, 20, 2, 0, tzinfo=timezone.utc))


@pytest.fixture
def settings(tmp_path, private_key) -> Settings:
    return Settings(app_id=1, private_key=private_key, webhook_secret=SECRET,
                    api_url="http://127.0.0.1:9", db_path=str(tmp_path / "tbr.db"), grace_seconds=300,
                    log_format="console")


@pytest.fixture
def client(app):
    """A Flask test client for the module's own `app` fixture."""
    return app.test_client()


@pytest.fixture
def store(app):
    return app.extensions["tbr"].store


def with_(settings: Settings, **changes) -> Settings:
    return dataclasses.replace(settings, **changes)


def tracked(github, gh_settings: Settings, clock: Clock, repo: str, track: str = "acme/compliance"):
    """`repo` and a tracking repo on the fake GitHub (on the test's clock), and a bot that files follow-ups
    in the tracking repo and escalates to @acme/security."""
    created = github.add_repo(repo)
    github.add_repo(track)
    github.clock = clock
    return created, Bot(with_(gh_settings, tracking_repo=track, escalate="@acme/security"), clock)


class Bot:
    """tbr wired to a fake GitHub: deliver webhooks through Flask, then run the worker's pass by hand."""

    def __init__(self, settings: Settings, clock: Clock):
        from tbr.github import Gateway, RetryPolicy
        from tbr.web import create_app

        self.settings = settings
        self.clock = clock
        self.gateway = Gateway(settings, timeout=5, retry=RetryPolicy(base_seconds=0.001))
        self.app = create_app(settings, gateway=self.gateway, clock=clock, start_worker=False)
        self.runtime = self.app.extensions["tbr"]
        self.store = self.runtime.store
        self.engine = self.runtime.engine
        self.client = self.app.test_client()

    def deliver(self, event: str, payload: dict, guid: str | None = None):
        import json

        from tests import payloads

        body = json.dumps(payload).encode()
        resp = self.client.post("/webhook", data=body, headers=payloads.headers(event, body, SECRET, guid))
        assert resp.status_code in (200, 202), resp.json
        return resp

    def run(self, after_seconds: float = 0) -> int:
        self.clock.advance(after_seconds)
        return self.engine.run_due()

    def change(self, key: str) -> dict:
        return self.store.change(key)

    def changes(self) -> list[dict]:
        return list(self.store.db.query("SELECT * FROM changes ORDER BY key"))


@pytest.fixture
def github():
    from tests.fakegithub import FakeGitHub

    with FakeGitHub() as fake:
        yield fake


@pytest.fixture
def gh_settings(settings, github) -> Settings:
    return with_(settings, app_id=github.app_id, private_key=github.private_key, api_url=github.url)


@pytest.fixture
def cli_env(monkeypatch, github, tmp_path):
    """The TBR_* environment a `tbr` command reads, pointing at the fake GitHub, and the service's database
    (the commands that only read one refuse a path where there is none)."""
    for k, v in {"TBR_APP_ID": str(github.app_id), "TBR_PRIVATE_KEY": github.private_key,
                 "TBR_WEBHOOK_SECRET": "s", "TBR_GITHUB_API_URL": github.url, "TBR_DB": str(tmp_path / "cli.db"),
                 "TBR_LOG_FORMAT": "console"}.items():
        monkeypatch.setenv(k, v)
    from tbr.store import Store

    Store(str(tmp_path / "cli.db")).close()
    return monkeypatch


@pytest.fixture
def bot(gh_settings, clock, github) -> Bot:
    github.clock = clock
    return Bot(gh_settings, clock)


@pytest.fixture
def service_env(tmp_path, github) -> dict:
    """The environment `gunicorn app:app` runs with, pointing at the fake GitHub."""
    key = tmp_path / "app.pem"
    key.write_text(github.private_key)
    base = {k: v for k, v in os.environ.items() if not k.startswith("TBR_")}
    return {**base, "TBR_APP_ID": str(github.app_id), "TBR_PRIVATE_KEY_PATH": str(key),
            "TBR_WEBHOOK_SECRET": SECRET, "TBR_GITHUB_API_URL": github.url,
            "TBR_DB": str(tmp_path / "tbr.db"), "TBR_GRACE_SECONDS": "0", "TBR_TIMEZONE": "Europe/Berlin",
            # on the real clock, the first days of a quarter would open access reviews in these tests
            "TBR_ACCESS_REVIEWS": "off"}
