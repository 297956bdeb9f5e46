"""The one-click App setup (GitHub's manifest flow), end to end against the fake GitHub."""

from __future__ import annotations

import json
import os
import re
import stat
import threading
from html import unescape
from pathlib import Path

import httpx
import pytest
from werkzeug.serving import make_server

from tbr.config import SetupSettings, load
from tbr.web import SetupSwitch
from tests.processes import chromium_page, needs_chromium

MANIFEST = json.loads((Path(__file__).resolve().parent.parent / "app-manifest.json").read_text())


@pytest.fixture
def env(tmp_path, github, monkeypatch):
    for name in [n for n in os.environ if n.startswith("TBR_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("TBR_DB", str(tmp_path / "tbr.db"))
    monkeypatch.setenv("TBR_GITHUB_API_URL", github.url)
    monkeypatch.setenv("TBR_LOG_FORMAT", "console")
    return tmp_path / "tbr-credentials.json"


@pytest.fixture
def switch(env, github):
    app = SetupSwitch(SetupSettings(env, github.url, github.url, "admin-token", "https://tbr.example.com"))
    yield app
    if app.real is not None:
        app.real.extensions["tbr"].stop()


def form_of(html: str) -> tuple[str, dict]:
    action = unescape(re.search(r'<form id=create method=post action="([^"]+)"', html).group(1))
    manifest = json.loads(unescape(re.search(r'name=manifest value="([^"]+)"', html).group(1)))
    return action, manifest


def test_manifest_flow_creates_the_app_and_tbr_starts_with_it(switch, env, github):
    client = switch.setup.test_client()
    page = client.get("/setup?org=acme", environ_base={"REMOTE_ADDR": "127.0.0.1"})
    assert page.status_code == 200
    action, manifest = form_of(page.get_data(as_text=True))
    assert action.startswith(f"{github.url}/organizations/acme/settings/apps/new?state=")
    assert manifest["hook_attributes"]["url"] == "https://tbr.example.com/webhook"
    assert manifest["redirect_url"] == "http://localhost/setup/callback"
    assert manifest["default_permissions"] == MANIFEST["default_permissions"]
    # The browser posts the form to GitHub, a person clicks Create, GitHub redirects back with a code.
    answer = httpx.post(action, data={"manifest": json.dumps(manifest)})
    assert answer.status_code == 302 and github.manifests[0]["org"] == "acme"
    back = answer.headers["location"].removeprefix("http://localhost")
    done = client.get(back, environ_base={"REMOTE_ADDR": "127.0.0.1"})
    assert done.status_code == 200 and "Created the GitHub App" in done.get_data(as_text=True)
    saved = json.loads(env.read_text())
    assert (saved["app_id"], saved["webhook_secret"]) == (github.app_id, "whsec-from-fake")
    assert stat.S_IMODE(env.stat().st_mode) == 0o600
    settings = load()
    assert (settings.app_id, settings.private_key) == (github.app_id, github.private_key.strip())
    # From now on the same WSGI app is tbr itself, and /setup is gone.
    outer = _wsgi_client(switch)
    assert outer.get("/setup", environ_base={"REMOTE_ADDR": "127.0.0.1"}).status_code == 404
    assert "ok" in outer.get("/healthz").json


def _wsgi_client(app):
    from werkzeug.test import Client
    from werkzeug.wrappers import Response

    return Client(app, Response)


def test_setup_is_for_loopback_or_the_token_holder(switch):
    client = switch.setup.test_client()
    outside = {"REMOTE_ADDR": "203.0.113.7"}
    assert client.get("/setup", environ_base=outside).status_code == 403
    assert client.get("/setup?token=wrong", environ_base=outside).status_code == 403
    assert client.get("/setup?token=admin-token", environ_base=outside).status_code == 200


def test_callback_without_the_pages_state_is_refused(switch, env, github):
    client = switch.setup.test_client()
    local = {"REMOTE_ADDR": "127.0.0.1"}
    client.get("/setup", environ_base=local)
    assert client.get("/setup/callback?code=x&state=forged.mac", environ_base=local).status_code == 403
    fresh = switch.setup.test_client()  # a browser that never saw the page
    assert fresh.get("/setup/callback?code=x&state=a.b", environ_base={"REMOTE_ADDR": "203.0.113.7"}).status_code == 403
    assert not env.exists()


def test_setup_is_disabled_once_credentials_exist(switch, env):
    env.write_text("{}")
    assert switch.setup.test_client().get("/setup", environ_base={"REMOTE_ADDR": "127.0.0.1"}).status_code == 404


def test_app_manifest_is_least_privilege():
    assert MANIFEST["default_permissions"] == {
        "contents": "read", "pull_requests": "read", "issues": "write", "checks": "write", "metadata": "read",
        "administration": "read", "members": "read"}
    assert set(MANIFEST["default_events"]) == {
        "pull_request", "pull_request_review", "pull_request_review_comment", "issue_comment", "issues", "push",
        "branch_protection_rule", "repository_ruleset", "member", "organization"}
    assert MANIFEST["public"] is False


@needs_chromium
def test_setup_page_in_headless_chromium(switch, env, github):
    server = make_server("127.0.0.1", 0, switch, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_port}"
    try:
        with chromium_page() as page:
            page.goto(f"{base}/setup")
            assert page.title() == "Set up tbr"
            assert page.locator("button").inner_text() == "Create the GitHub App"
            page.click("button")
            page.wait_for_selector("#done")
            assert f"(id {github.app_id})" in page.inner_text("#done")
            page.goto(f"{base}/healthz")
            assert '"ok"' in page.content()
    finally:
        server.shutdown()
    assert json.loads(env.read_text())["app_id"] == github.app_id
