"""The container image, without Docker: its steps run here as the image runs them.

No Docker engine is at hand, so the Dockerfile keeps its build and start steps in deploy/install.sh
and deploy/start.sh, and these tests run them: on a copy of exactly what the Dockerfile COPYs, with
the ENV it sets (and fly.toml's [env]), its RUN and CMD lines, and /app, /opt/venv and /data mapped
to temporary directories. The install (from the package index) runs once per session; the other
waits are bounded waits for the server's own output.
"""

from __future__ import annotations

import json
import os
import queue
import re
import shlex
import shutil
import signal
import subprocess
import threading
import time
import tomllib
import uuid
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests import payloads
from tests.processes import eventually, free_port
from tests.conftest import SECRET

ROOT = Path(__file__).resolve().parent.parent
WORKERS = 2  # gunicorn.conf.py's default WEB_CONCURRENCY, set explicitly to know how many to wait for


def dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) for each instruction, continuation lines joined."""
    steps, current = [], ""
    for raw in (ROOT / "Dockerfile").read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        keyword, _, args = (current + line).partition(" ")
        steps.append((keyword.upper(), args.strip()))
        current = ""
    return steps


def one(steps, keyword: str) -> str:
    found = [args for kw, args in steps if kw == keyword]
    assert len(found) == 1, f"expected one {keyword} in the Dockerfile, found {found}"
    return found[0]


def env_pairs(args: str) -> list[tuple[str, str]]:
    pairs = [token.split("=", 1) for token in shlex.split(args)]
    assert all(len(p) == 2 for p in pairs), f"ENV {args!r}: use the KEY=value form"
    return [(k, v) for k, v in pairs]


def fly() -> dict:
    with open(ROOT / "fly.toml", "rb") as f:
        return tomllib.load(f)


def json_objects(text: str) -> list[dict]:
    """Every JSON object in text. Not line by line: the workers share stderr, and structlog's
    PrintLogger writes a line's text and its newline separately, so two lines can share one."""
    decoder, found, i = json.JSONDecoder(), [], text.find("{")
    while i != -1:
        try:
            obj, end = decoder.raw_decode(text, i)
            found.append(obj)
        except json.JSONDecodeError:
            end = i + 1
        i = text.find("{", end)
    return found




@dataclass
class Image:
    app: Path  # WORKDIR
    prefix: Path  # where install.sh put the virtualenv
    mapping: dict[str, str]  # image path -> path here (/data is added per container)
    env: list[tuple[str, str]]  # the Dockerfile's ENV, in order
    cmd: list[str]
    install_seconds: float

    def translate(self, value: str, data: Path) -> str:
        paths = {**self.mapping, "/data": str(data)}
        pattern = "|".join(re.escape(p) for p in sorted(paths, key=len, reverse=True))
        return re.sub(rf"(?<![\w/.])({pattern})(?=/|:|$)", lambda m: paths[m.group(1)], value)


def expand(value: str, env: dict) -> str:
    return re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: env.get(m.group(1) or m.group(2), ""), value)


def stage(steps, app: Path) -> None:
    """What the Dockerfile's COPY lines put in WORKDIR (.dockerignore keeps bytecode out)."""
    for keyword, args in steps:
        if keyword != "COPY":
            continue
        *sources, dest = shlex.split(args)
        assert not any(s.startswith("--") for s in sources) and not dest.startswith("/"), \
            f"COPY {args}: this test copies plain sources into WORKDIR only"
        target = app / dest
        for source in sources:
            path = ROOT / source
            if path.is_dir():
                shutil.copytree(path, target, dirs_exist_ok=True,
                                ignore=shutil.ignore_patterns("__pycache__", "*.py[co]"))
            elif dest.endswith("/"):
                target.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, target / path.name)
            else:
                assert len(sources) == 1, f"COPY {args}: several sources need a directory/ to go to"
                shutil.copy2(path, target)


@pytest.fixture(scope="module")
def image(tmp_path_factory) -> Image:
    """The image, built once: its COPYs staged, then its RUN of deploy/install.sh."""
    steps = dockerfile()
    workdir = one(steps, "WORKDIR")
    run = [args for kw, args in steps if kw == "RUN" and "deploy/install.sh" in args]
    assert len(run) == 1, run
    install = shlex.split(run[0])
    image_prefix = install[-1]
    root = tmp_path_factory.mktemp("image")
    app = root / "app"
    image = Image(app, root / "venv", {workdir: str(app), image_prefix: str(root / "venv")},
                  [pair for kw, args in steps if kw == "ENV" for pair in env_pairs(args)],
                  json.loads(one(steps, "CMD")), 0.0)
    stage(steps, app)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    before_run = steps.index(("RUN", run[0]))
    for keyword, args in steps[:before_run]:  # the ENV in force when the RUN runs
        if keyword == "ENV":
            env.update((k, expand(image.translate(v, root / "data"), env)) for k, v in env_pairs(args))
    started = time.monotonic()
    done = subprocess.run([image.translate(a, root / "data") for a in install], cwd=app, env=env,
                          capture_output=True, text=True, timeout=900)
    image.install_seconds = time.monotonic() - started
    print(f"\ndeploy/install.sh took {image.install_seconds:.1f} s")
    assert done.returncode == 0, done.stdout + done.stderr
    return image


class Container:
    """The image's CMD, run as the image would run it, with fly.toml's [env] and the secrets."""

    def __init__(self, image: Image, github, data: Path):
        data.mkdir()
        self.data = data
        self.port = free_port()
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("TBR_") and k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
        for k, v in image.env:
            env[k] = expand(image.translate(v, data), env)
        for k, v in fly()["env"].items():
            env[k] = image.translate(str(v), data)
        env = {
            **env, "PORT": str(self.port), "WEB_CONCURRENCY": str(WORKERS),
            # The secrets (fly secrets set ...), against the fake GitHub.
            "TBR_APP_ID": str(github.app_id), "TBR_PRIVATE_KEY": github.private_key,
            "TBR_WEBHOOK_SECRET": SECRET, "TBR_GITHUB_API_URL": github.url,
        }
        self.url = f"http://127.0.0.1:{self.port}"
        self.stdout: list[str] = []
        self.stderr: list[str] = []
        started: queue.Queue[str] = queue.Queue()
        self.proc = subprocess.Popen([image.translate(a, data) for a in image.cmd], cwd=image.app, env=env,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        threading.Thread(target=self._pump, args=(self.proc.stdout, self.stdout, None), daemon=True).start()
        threading.Thread(target=self._pump, args=(self.proc.stderr, self.stderr, started), daemon=True).start()
        deadline = time.monotonic() + 60
        booted = 0
        while booted < WORKERS:
            try:
                line = started.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                self.stop()
                raise AssertionError("no start-up in 60 s:\n" + "".join(self.stderr)) from None
            if line is None:
                raise AssertionError(f"exited with {self.proc.wait()}:\n" + "".join(self.stderr))
            booted += '"tbr.started"' in line

    @staticmethod
    def _pump(stream, lines: list[str], signal_to: queue.Queue | None):
        for line in stream:
            lines.append(line)
            if signal_to is not None:
                signal_to.put(line)
        if signal_to is not None:
            signal_to.put(None)  # end of output: the process is gone

    def access_log(self) -> list[dict]:
        return [json.loads(line) for line in self.stdout]

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=30)


@pytest.fixture
def container(image, github, tmp_path):
    c = Container(image, github, tmp_path / "data")
    yield c
    try:
        c.stop()
    except subprocess.TimeoutExpired:
        c.proc.kill()
        c.proc.wait()


def test_dockerfile_and_fly_toml_describe_the_same_deployment():
    steps = dockerfile()
    assert one(steps, "FROM").startswith("python:3.11-slim")
    workdir = one(steps, "WORKDIR")
    install = [shlex.split(args) for kw, args in steps if kw == "RUN" and "deploy/install.sh" in args]
    assert len(install) == 1 and install[0][0] in ("deploy/install.sh", f"{workdir}/deploy/install.sh")
    prefix = install[0][-1]
    assert json.loads(one(steps, "CMD")) == [f"{workdir}/deploy/start.sh", prefix]
    user = one(steps, "USER").split(":")[0]
    assert user not in ("", "root", "0")
    assert [kw for kw, _ in steps].index("USER") > max(i for i, (kw, _) in enumerate(steps) if kw == "RUN")
    env = dict(pair for kw, args in steps if kw == "ENV" for pair in env_pairs(args))
    assert env["TBR_DB"].startswith("/data/") and one(steps, "VOLUME").strip('[]" ') == "/data"
    assert f"{prefix}/bin" in env["PATH"].split(":")  # `tbr check-config` in a shell in the container
    assert one(steps, "EXPOSE") == env["PORT"]
    config = fly()
    assert config["mounts"]["destination"] == "/data" and config["mounts"]["source"]
    assert config["env"]["PORT"] == env["PORT"] and config["env"]["TBR_DB"] == env["TBR_DB"]
    service = config["http_service"]
    assert str(service["internal_port"]) == env["PORT"]
    assert [(c.get("method", "GET").upper(), c["path"]) for c in service["checks"]] == [("GET", "/healthz")]
    assert service["min_machines_running"] == 1 and service["auto_stop_machines"] in ("off", False)
    assert config["kill_signal"] == "SIGTERM"  # gunicorn's graceful stop; SIGINT is its quick one
    # The secrets are named in the comment block, and none is in [env].
    comments = "\n".join(line for line in (ROOT / "fly.toml").read_text().splitlines() if line.startswith("#"))
    for secret in ("TBR_APP_ID", "TBR_PRIVATE_KEY", "TBR_WEBHOOK_SECRET", "TBR_SLACK_WEBHOOK_URL", "TBR_METRICS_TOKEN"):
        assert secret in comments and secret not in config["env"]
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {"tests", ".venv", ".git", "*.db"} <= set(ignored)
    for script in ("install.sh", "start.sh"):
        path = ROOT / "deploy" / script
        assert os.access(path, os.X_OK), f"deploy/{script} must be executable (git update-index --chmod=+x)"
        assert "set -euo pipefail" in path.read_text()


def test_the_image_serves_health_and_webhooks_and_logs_each_request_as_json(container):
    health = httpx.get(f"{container.url}/healthz", timeout=10)
    assert health.status_code in (200, 503)
    assert health.headers["content-type"].startswith("application/json")
    assert isinstance(health.json(), dict) and "ok" in health.json()

    guid = str(uuid.uuid4())
    body = json.dumps(payloads.example("ping.none.1")).encode()
    ping = httpx.post(f"{container.url}/webhook", content=body, timeout=10,
                      headers=payloads.headers("ping", body, SECRET, guid))
    assert ping.status_code == 200, ping.text
    forged = httpx.post(f"{container.url}/webhook", content=body, timeout=10,
                        headers=payloads.headers("ping", body, "not the secret"))
    assert forged.status_code == 401
    # What a client sends is not escaped by gunicorn's own access log format: here it must be.
    agent = 'probe "quoted" \\ {"json": 1}'
    odd = httpx.get(f'{container.url}/no"such\\path%E2%9C%93', headers={"User-Agent": agent}, timeout=10)
    assert odd.status_code == 404

    # Each line is written after its answer is sent, by whichever worker answered: order is not promised.
    eventually(lambda: len(container.stdout) >= 4)
    log = {(e["method"], e["path"], e["status"]): e for e in container.access_log()}  # all JSON objects
    assert set(log) == {("GET", "/healthz", health.status_code), ("POST", "/webhook", 200),
                        ("POST", "/webhook", 401), ("GET", '/no"such\\path✓', 404)}
    assert all(e["remote_addr"] == "127.0.0.1" and e["timestamp"].endswith("Z") and e["bytes"] > 0
               and isinstance(e["duration_ms"], float) and e["event"] == "http.request" for e in log.values())
    accepted = log["POST", "/webhook", 200]
    assert accepted["delivery"] == guid and accepted["user_agent"] == "GitHub-Hookshot/044aadd"
    assert log["GET", '/no"such\\path✓', 404]["user_agent"] == agent
    # tbr's own lines are on stderr, as JSON (TBR_LOG_FORMAT from the image), and no access line is.
    app_lines = json_objects("".join(container.stderr))
    assert any(e.get("event") == "webhook.stored" and e.get("delivery") == guid for e in app_lines)
    assert not any(e.get("event") == "http.request" for e in app_lines)

    # start.sh exec'd gunicorn (so SIGTERM reaches it), running as whoever started it, its data on /data.
    uid, args = subprocess.run(["ps", "-ww", "-o", "uid=,args=", "-p", str(container.proc.pid)], capture_output=True,
                               text=True, check=True).stdout.split(None, 1)
    assert int(uid) == os.getuid() and "/bin/gunicorn app:app" in args
    assert (container.data / "tbr.db").is_file()


def test_the_image_stops_cleanly_on_sigterm(container):
    assert httpx.get(f"{container.url}/healthz", timeout=10).status_code in (200, 503)
    running = len(container.stderr)
    assert container.stop() == 0
    stopping = "".join(container.stderr[running:])
    assert "Handling signal: term" in stopping and "Shutting down: Master" in stopping
    assert "Traceback" not in stopping and '"level": "error"' not in stopping, stopping
