"""One-click App creation (GitHub's App-manifest flow), served while tbr has no credentials.

GET /setup shows a button that posts app-manifest.json (with this deployment's URLs) to GitHub;
GitHub creates the App and sends the browser back to /setup/callback with a one-time code, which
is exchanged for the App's id, private key and webhook secret. They are written to the credentials
file (mode 0600), and from then on tbr runs with them and /setup is gone.

Whoever completes this flow decides which App the bot trusts, so it always takes a secret, whatever
address the request comes from (behind a proxy on the same host every request is from loopback):
the one-time code tbr prints in its log at start-up, or TBR_METRICS_TOKEN (`/setup?token=...`).
"""

from __future__ import annotations

import hashlib
import hmac
import html
import ipaddress
import json
import os
import re
import secrets
from pathlib import Path
from urllib.parse import urlsplit

from flask import Flask, Response, abort, request

from tbr.config import APP_NAME_MAX
from tbr.github import GitHubError, GitHubUnavailable, convert_manifest

MANIFEST = Path(__file__).resolve().parent.parent / "app-manifest.json"
COOKIE = "tbr_setup_state"

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Set up tbr</title>
<style>body{{font:16px/1.5 system-ui,sans-serif;max-width:42rem;margin:3rem auto;padding:0 1rem;color:#1f2328}}
button{{font:inherit;padding:.6rem 1.2rem;border-radius:6px;border:1px solid #1f883d;background:#1f883d;color:#fff;cursor:pointer}}
code{{background:#f6f8fa;padding:.1rem .3rem;border-radius:4px}}
.warn{{background:#fff8c5;border:1px solid #d4a72c;border-radius:6px;padding:.6rem .8rem}}</style></head>
<body><h1>Set up tbr</h1>{body}</body></html>"""

ASK = ("<p>Creating tbr's GitHub App decides which App tbr trusts, so this page needs a secret: the one-time "
       "code tbr printed in its log when it started (the <code>tbr.setup_mode</code> line), or "
       "<code>TBR_METRICS_TOKEN</code>.</p>"
       "<form method=get action=/setup><label>Code <input name=token autocomplete=off required></label> "
       "<input type=hidden name=org value=\"{org}\"><button type=submit>Continue</button></form>")


def manifest_for(base_url: str, hook_base: str, name: str) -> dict:
    manifest = json.loads(MANIFEST.read_text())
    manifest["name"] = name
    manifest["hook_attributes"]["url"] = f"{hook_base}/webhook"
    manifest["redirect_url"] = f"{base_url}/setup/callback"
    return manifest


def default_name(org: str, hook_base: str) -> str:
    """`tbr-<org or host>-<random>`: GitHub App names are unique across GitHub, and "tbr" is taken."""
    host = (urlsplit(hook_base).hostname or "").split(".")[0]
    owner = re.sub(r"[^a-z0-9]+", "-", (org or host).lower()).strip("-")[:APP_NAME_MAX - 11]
    return "-".join(part for part in ("tbr", owner, secrets.token_hex(3)) if part)


def unreachable(url: str) -> str | None:
    """Why GitHub could not deliver to `url`, or None when it may be reachable from the internet."""
    host = (urlsplit(url).hostname or "").lower()
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        if host == "localhost" or host.endswith((".localhost", ".local", ".internal", ".lan", ".home.arpa")):
            return f"{host} is a name only this network knows"
        if "." not in host:
            return f"{host} is not a public host name"
        return None
    if ip.is_loopback:
        return f"{host} is a loopback address"
    if ip.is_private or ip.is_link_local or ip.is_unspecified or ip.is_reserved:
        return f"{host} is a private address"
    return None


def write_credentials(path: Path, app: dict) -> None:
    """Write atomically and privately: the file holds the App's private key."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump({k: app[k] for k in ("app_id", "slug", "name", "html_url", "private_key", "webhook_secret")}, f)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


class Setup:
    def __init__(self, credentials: Path, api_url: str, web_url: str, token: str | None, public_url: str | None,
                 code: str, app_name: str | None = None):
        self.credentials = credentials
        self.api_url = api_url
        self.web_url = web_url.rstrip("/")
        self.token = token
        self.public_url = public_url
        self.code = code or secrets.token_urlsafe(16)  # never empty: it also keys the state's MAC
        self.app_name = app_name

    def _sign(self, nonce: str) -> str:
        return hmac.new(self.code.encode(), nonce.encode(), hashlib.sha256).hexdigest()[:32]

    def _allowed(self) -> bool:
        """The one-time code or the token, from anyone; the address a request comes from proves nothing."""
        given = request.args.get("token", "").encode()
        return any(hmac.compare_digest(given, secret.encode()) for secret in (self.code, self.token) if secret)

    def page(self):
        if self.credentials.exists():
            abort(404)
        org = request.args.get("org", "").strip()
        if not self._allowed():
            return Response(PAGE.format(body=ASK.format(org=html.escape(org))), status=403, mimetype="text/html")
        # The request's own address is used only now, after the secret was shown.
        base = request.host_url.rstrip("/")
        hook_base = self.public_url or base
        manifest = manifest_for(base, hook_base, self.app_name or default_name(org, hook_base))
        target = f"{self.web_url}/organizations/{org}/settings/apps/new" if org else f"{self.web_url}/settings/apps/new"
        nonce = secrets.token_hex(16)
        state = f"{nonce}.{self._sign(nonce)}"
        owner = f"the organization <code>{html.escape(org)}</code>" if org else "your personal account (add <code>&amp;org=NAME</code> for an organization)"
        hook = manifest["hook_attributes"]["url"]
        body = (f"<p>tbr has no GitHub App yet. This creates one named <code>{html.escape(manifest['name'])}</code> "
                f"for {owner}, with the permissions and events in <code>app-manifest.json</code>; its webhook will "
                f"point at <code>{html.escape(hook)}</code>.</p>")
        why = unreachable(hook)
        if why:
            body += (f"<p id=unreachable role=alert class=warn><b>GitHub cannot reach this webhook URL</b> ({html.escape(why)}): "
                     "the App would never hear of a merge. Set <code>TBR_PUBLIC_URL</code> to the address GitHub "
                     "can reach (e.g. <code>TBR_PUBLIC_URL=https://tbr.example.com</code>, or "
                     "<code>https://YOUR-APP.fly.dev</code>), restart tbr, and open this page again.</p>")
        body += (f"<form id=create method=post action=\"{html.escape(target)}?state={state}\">"
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
        # The state was signed with the one-time code, and only for a page opened with a secret.
        trusted = bool(nonce) and hmac.compare_digest(mac, self._sign(nonce))
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


def setup_app(settings) -> Flask:
    """The setup flow for a config.SetupSettings."""
    app = Flask("tbr-setup")
    setup = Setup(settings.credentials, settings.api_url, settings.web_url, settings.token, settings.public_url,
                  settings.code, settings.app_name)
    app.add_url_rule("/setup", view_func=setup.page)
    app.add_url_rule("/setup/callback", view_func=setup.callback)
    app.add_url_rule("/healthz", view_func=lambda: ({"ok": False, "problems": ["no App credentials: open /setup"]}, 503))
    return app
