"""One-click App creation (GitHub's App-manifest flow), served while tbr has no credentials.

GET /setup shows a button that posts app-manifest.json (with this deployment's URLs) to GitHub;
GitHub creates the App and sends the browser back to /setup/callback with a one-time code, which
is exchanged for the App's id, private key and webhook secret. They are written to the credentials
file (mode 0600), and from then on tbr runs with them and /setup is gone.

Whoever completes this flow decides which App the bot trusts, so it is open only from loopback
(e.g. through `fly proxy`) or to someone holding TBR_METRICS_TOKEN (`/setup?token=...`).
"""

from __future__ import annotations

import hashlib
import hmac
import html
import json
import os
import secrets
from pathlib import Path

from flask import Flask, Response, abort, request

from tbr.github import GitHubError, GitHubUnavailable, convert_manifest

MANIFEST = Path(__file__).resolve().parent.parent / "app-manifest.json"
COOKIE = "tbr_setup_state"

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Set up tbr</title>
<style>body{{font:16px/1.5 system-ui,sans-serif;max-width:42rem;margin:3rem auto;padding:0 1rem;color:#1f2328}}
button{{font:inherit;padding:.6rem 1.2rem;border-radius:6px;border:1px solid #1f883d;background:#1f883d;color:#fff;cursor:pointer}}
code{{background:#f6f8fa;padding:.1rem .3rem;border-radius:4px}}</style></head>
<body><h1>Set up tbr</h1>{body}</body></html>"""


def manifest_for(base_url: str, hook_base: str) -> dict:
    manifest = json.loads(MANIFEST.read_text())
    manifest["hook_attributes"]["url"] = f"{hook_base}/webhook"
    manifest["redirect_url"] = f"{base_url}/setup/callback"
    return manifest


def write_credentials(path: Path, app: dict) -> None:
    """Write atomically and privately: the file holds the App's private key."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump({k: app[k] for k in ("app_id", "slug", "name", "html_url", "private_key", "webhook_secret")}, f)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


class Setup:
    def __init__(self, credentials: Path, api_url: str, web_url: str, token: str | None, public_url: str | None):
        self.credentials = credentials
        self.api_url = api_url
        self.web_url = web_url.rstrip("/")
        self.token = token
        self.public_url = public_url

    def _sign(self, nonce: str) -> str:
        return hmac.new((self.token or "loopback").encode(), nonce.encode(), hashlib.sha256).hexdigest()[:32]

    def _allowed(self) -> bool:
        if request.remote_addr in ("127.0.0.1", "::1"):
            return True
        given = request.args.get("token", "")
        return bool(self.token) and hmac.compare_digest(given, self.token)

    def page(self):
        if self.credentials.exists():
            abort(404)
        if not self._allowed():
            abort(403, "open /setup from the machine itself (e.g. through fly proxy), or add ?token=TBR_METRICS_TOKEN")
        base = request.host_url.rstrip("/")
        manifest = manifest_for(base, self.public_url or base)
        org = request.args.get("org", "").strip()
        target = f"{self.web_url}/organizations/{org}/settings/apps/new" if org else f"{self.web_url}/settings/apps/new"
        nonce = secrets.token_hex(16)
        state = f"{nonce}.{self._sign(nonce)}"
        owner = f"the organization <code>{html.escape(org)}</code>" if org else "your personal account (add <code>?org=NAME</code> for an organization)"
        body = (f"<p>tbr has no GitHub App yet. This creates one for {owner}, with the permissions and events "
                f"in <code>app-manifest.json</code>; its webhook will point at <code>{html.escape(manifest['hook_attributes']['url'])}</code>.</p>"
                f"<form id=create method=post action=\"{html.escape(target)}?state={state}\">"
                f"<input type=hidden name=manifest value=\"{html.escape(json.dumps(manifest))}\">"
                "<button type=submit>Create the GitHub App</button></form>")
        resp = Response(PAGE.format(body=body), mimetype="text/html")
        resp.set_cookie(COOKIE, state, httponly=True, samesite="Lax", max_age=3600, secure=request.is_secure)
        return resp

    def callback(self):
        if self.credentials.exists():
            abort(404)
        state, code = request.args.get("state", ""), request.args.get("code", "")
        nonce, _, mac = state.partition(".")
        cookie = request.cookies.get(COOKIE, "")
        trusted = self._allowed() or (self.token and hmac.compare_digest(mac, self._sign(nonce)))
        if not code or not state or not hmac.compare_digest(state, cookie) or not trusted:
            abort(403, "this callback does not come from the setup page opened here: start again at /setup")
        try:
            app = convert_manifest(self.api_url, code)
        except (GitHubError, GitHubUnavailable) as e:
            return Response(PAGE.format(body=f"<p>GitHub refused the exchange: {html.escape(str(e))}. "
                                             "Start again at <a href=/setup>/setup</a>.</p>"), status=502,
                            mimetype="text/html")
        write_credentials(self.credentials, app)
        install = f"{app['html_url']}/installations/new"
        body = (f"<p id=done>Created the GitHub App <b>{html.escape(app['name'])}</b> (id {app['app_id']}). "
                f"Its credentials are in <code>{html.escape(str(self.credentials))}</code> and tbr now uses them.</p>"
                f"<p>Next: <a href=\"{html.escape(install)}\">install it</a> on your organization's production "
                "repositories, then run <code>tbr check-config</code>.</p>")
        resp = Response(PAGE.format(body=body), mimetype="text/html")
        resp.delete_cookie(COOKIE)
        return resp


def setup_app(credentials: Path, api_url: str, web_url: str, token: str | None, public_url: str | None) -> Flask:
    app = Flask("tbr-setup")
    setup = Setup(credentials, api_url, web_url, token, public_url)
    app.add_url_rule("/setup", view_func=setup.page)
    app.add_url_rule("/setup/callback", view_func=setup.callback)
    app.add_url_rule("/healthz", view_func=lambda: ({"ok": False, "problems": ["no App credentials: open /setup"]}, 503))
    return app
