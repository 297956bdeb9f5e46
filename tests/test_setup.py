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
CODE = "one-time-code-from-the-log"
LOCAL = {"REMOTE_ADDR": "127.0.0.1"}


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
    app = SetupSwitch(SetupSettings(env, github.url, github.url, "admin-token", "https://tbr.example.com",
                                    code=CODE))
    yield app
    if app.real is not None:
        app.real.extensions["tbr"].stop()


def form_of(html: str) -> tuple[str, dict]:
    action = unescape(re.search(r'<form id=create method=post action="([^"]+)"', html).group(1))
    manifest = json.loads(unescape(re.search(r'name=manifest value="([^"]+)"', html).group(1)))
    return action, manifest


def test_manifest_flow_creates_the_app_and_tbr_starts_with_it(switch, env, github):
    client = switch.setup.test_client()
    page = client.get(f"/setup?org=acme&token={CODE}", environ_base=LOCAL)
    assert page.status_code == 200
    action, manifest = form_of(page.get_data(as_text=True))
    assert action.startswith(f"{github.url}/organizations/acme/settings/apps/new?state=")
    assert manifest["hook_attributes"]["url"] == "https://tbr.example.com/webhook"
    assert re.fullmatch(r"tbr-acme-[0-9a-f]{6}", manifest["name"])  # "tbr" is taken on GitHub
    assert 'id=unreachable' not in page.get_data(as_text=True)
    assert manifest["redirect_url"] == "http://localhost/setup/callback"
    assert manifest["default_permissions"] == MANIFEST["default_permissions"]
    # The browser posts the form to GitHub, a person clicks Create, GitHub redirects back with a code.
    answer = httpx.post(action, data={"manifest": json.dumps(manifest)})
    assert answer.status_code == 302 and github.manifests[0]["org"] == "acme"
    back = answer.headers["location"].removeprefix("http://localhost")
    done = client.get(back, environ_base=LOCAL)
    assert done.status_code == 200 and "Created the GitHub App" in done.get_data(as_text=True)
    saved = json.loads(env.read_text())
    assert (saved["app_id"], saved["webhook_secret"]) == (github.app_id, "whsec-from-fake")
    assert stat.S_IMODE(env.stat().st_mode) == 0o600
    settings = load()
    assert (settings.app_id, settings.private_key) == (github.app_id, github.private_key.strip())
    # From now on the same WSGI app is tbr itself, and /setup is gone.
    outer = _wsgi_client(switch)
    assert outer.get(f"/setup?token={CODE}", environ_base=LOCAL).status_code == 404
    assert "ok" in outer.get("/healthz").json


def _wsgi_client(app):
    from werkzeug.test import Client
    from werkzeug.wrappers import Response

    return Client(app, Response)


def test_setup_always_takes_the_one_time_code_or_the_token(switch):
    """Behind a proxy on the same host every request is from loopback: the address proves nothing."""
    client = switch.setup.test_client()
    for where in ({"REMOTE_ADDR": "203.0.113.7"}, LOCAL, {"REMOTE_ADDR": "::1"}):
        asked = client.get("/setup?org=acme", environ_base=where)
        assert asked.status_code == 403 and "one-time code" in asked.get_data(as_text=True)
        assert 'name=org value="acme"' in asked.get_data(as_text=True)
        assert client.get("/setup?token=wrong", environ_base=where).status_code == 403
        assert client.get("/setup?token=", environ_base=where).status_code == 403
        assert client.get(f"/setup?token={CODE}", environ_base=where).status_code == 200
        assert client.get("/setup?token=admin-token", environ_base=where).status_code == 200


def test_callback_without_the_pages_state_is_refused(switch, env, github):
    client = switch.setup.test_client()
    client.get(f"/setup?token={CODE}", environ_base=LOCAL)
    assert client.get("/setup/callback?code=x&state=forged.mac", environ_base=LOCAL).status_code == 403
    fresh = switch.setup.test_client()  # a browser that never saw the page
    assert fresh.get("/setup/callback?code=x&state=a.b", environ_base=LOCAL).status_code == 403
    # A state it made up, with a cookie to match: not signed with the code, so refused, from loopback too.
    fresh.set_cookie("tbr_setup_state", "a.b")
    assert fresh.get("/setup/callback?code=x&state=a.b", environ_base=LOCAL).status_code == 403
    assert not env.exists()


def manifest_at(env, github, url: str, public_url: str | None = None, **kw):
    setup = SetupSwitch(SetupSettings(env, github.url, github.url, None, public_url, code=CODE, **kw)).setup
    page = setup.test_client().get(f"{url}/setup?token={CODE}", environ_base=LOCAL)
    assert page.status_code == 200
    return page.get_data(as_text=True), form_of(page.get_data(as_text=True))[1]


@pytest.mark.parametrize("url", ["http://127.0.0.1:8000", "http://localhost:8000", "http://10.1.2.3:8080",
                                 "http://[::1]:8000", "http://tbr:8000", "http://my-app.internal:8080",
                                 "http://192.168.1.20"])
def test_the_page_warns_when_github_could_not_reach_the_webhook(env, github, url):
    html, manifest = manifest_at(env, github, url)
    assert manifest["hook_attributes"]["url"] == f"{url}/webhook"
    assert "id=unreachable" in html and "TBR_PUBLIC_URL" in html


def test_the_webhook_comes_from_tbr_public_url_whatever_the_host_header_says(env, github):
    html, manifest = manifest_at(env, github, "http://127.0.0.1:8000", "https://tbr.acme.example")
    assert manifest["hook_attributes"]["url"] == "https://tbr.acme.example/webhook"
    assert "id=unreachable" not in html
    assert re.fullmatch(r"tbr-tbr-[0-9a-f]{6}", manifest["name"])


def test_the_apps_name_can_be_set(env, github):
    _, manifest = manifest_at(env, github, "https://bot.acme.example", app_name="acme-soc2-bot")
    assert manifest["name"] == "acme-soc2-bot"


def test_a_name_longer_than_github_takes_is_a_configuration_error(monkeypatch, env):
    from tbr.config import ConfigError, load_setup

    monkeypatch.setenv("TBR_APP_NAME", "x" * 35)
    with pytest.raises(ConfigError, match="TBR_APP_NAME"):
        load_setup()


def test_each_unnamed_app_gets_its_own_name(env, github):
    names = {manifest_at(env, github, "https://bot.acme.example")[1]["name"] for _ in range(5)}
    assert len(names) == 5 and all(len(n) <= 34 for n in names)


def test_setup_is_disabled_once_credentials_exist(switch, env):
    env.write_text("{}")
    assert switch.setup.test_client().get(f"/setup?token={CODE}", environ_base=LOCAL).status_code == 404


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
            page.fill("input[name=token]", CODE)  # the code from the log, as a person types it
            page.click("button")
            assert page.locator("button").inner_text() == "Create the GitHub App"
            page.click("button")
            page.wait_for_selector("#done")
            assert f"(id {github.app_id})" in page.inner_text("#done")
            page.goto(f"{base}/healthz")
            assert '"ok"' in page.content()
    finally:
        server.shutdown()
    assert json.loads(env.read_text())["app_id"] == github.app_id
