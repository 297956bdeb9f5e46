"""Settings from the environment.

Every problem is reported as one line naming the variable, so a bad deployment fails at start-up
with something a person can act on, not with a traceback an hour later.
"""

from __future__ import annotations

import json
import os
import re
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cryptography.hazmat.primitives.serialization import load_pem_private_key

from tbr.usertext import phrase_problem

REPO_RE = re.compile(r"^[A-Za-z0-9-]+/[A-Za-z0-9._-]+$")

DEFAULT_EXEMPT_AUTHORS = ("dependabot[bot]",)
DEFAULT_APPROVAL_PHRASES = ("LGTM", "🚢", ":shipit:")
DEFAULT_SIGNOFF_PHRASES = ("LGTM",)  # or close the follow-up as completed
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
ESCALATE_RE = re.compile(r"^@?[A-Za-z0-9-]+(/[A-Za-z0-9._-]+)?$")


class ConfigError(Exception):
    """A setting is missing or malformed; str(e) is one line naming the variable."""


class MissingCredentials(ConfigError):
    """No App credentials at all, in the environment or the credentials file: time for /setup."""


@dataclass(frozen=True)
class Settings:
    app_id: int
    # Secrets: kept out of repr (and so out of logs and tracebacks that print settings).
    private_key: str = field(repr=False)
    webhook_secret: str = field(repr=False)
    api_url: str = "https://api.github.com"
    db_path: str = "./tbr.db"
    tracking_repo: str | None = None
    grace_seconds: int = 300
    timezone: str = "UTC"
    holidays: str | None = None
    repos: frozenset[str] | None = None
    exempt_authors: tuple[str, ...] = DEFAULT_EXEMPT_AUTHORS
    approval_phrases: tuple[str, ...] = DEFAULT_APPROVAL_PHRASES
    log_format: str = "auto"  # json, console, or auto: console at a terminal, JSON otherwise
    escalate: str | None = None
    signoff_phrases: tuple[str, ...] = DEFAULT_SIGNOFF_PHRASES
    overdue_reminder_days: int = 2
    reminder_hour: int = 9
    sweep_minutes: int = 60
    payload_days: int = 30
    rate_reserve_percent: int = 20  # GitHub's budget kept for judging and filing: the safety net waits below it
    access_reviews: bool = True
    digest_day: str = "mon"
    digest_time: tuple[int, int] = (9, 0)
    slack_webhook_url: str | None = field(default=None, repr=False)
    metrics_token: str | None = field(default=None, repr=False)
    public_url: str | None = None
    work_budget_seconds: int = 120  # one item's time; the supervisor stops a worker that overruns it
    quarantine_after: int = 5  # failed or overrun attempts before an item is set aside
    audit_key: str | None = field(default=None, repr=False)  # TBR_AUDIT_KEY; None: derived from private_key
    audit_keys_retired: tuple[str, ...] = field(default=(), repr=False)

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def watches_repo(self, full_name: str) -> bool:
        return self.repos is None or full_name.lower() in self.repos


def _get(env, name: str) -> str | None:
    value = env.get(name)
    if value is None or not value.strip():
        return None
    return value.strip()


def _required(env, name: str, hint: str) -> str:
    value = _get(env, name)
    if value is None:
        raise ConfigError(f"{name} is required: {hint}")
    return value


def _on_off(env, name: str, default: bool = True) -> bool:
    raw = (_get(env, name) or ("on" if default else "off")).lower()
    if raw not in ("on", "off", "true", "false", "1", "0"):
        raise ConfigError(f"{name} must be on or off, got {raw!r}")
    return raw in ("on", "true", "1")


def _int(env, name: str, default: int, minimum: int = 0, maximum: int | None = None) -> int:
    raw = _get(env, name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, got {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ConfigError(f"{name} must be at most {maximum:,}, got {value:,}")
    return value


def _percent(env, name: str, default: int) -> int:
    value = _int(env, name, default)
    if value > 90:
        raise ConfigError(f"{name} must be at most 90 (a percentage of GitHub's hourly budget), got {value}")
    return value


def _repo(name: str, raw: str) -> str:
    if not REPO_RE.match(raw):
        raise ConfigError(f"{name} must look like owner/name, got {raw!r}")
    return raw


def _db_path(env) -> str:
    """TBR_DB, checked the way SQLite would fail on it later: its directory must exist."""
    raw = _get(env, "TBR_DB") or "./tbr.db"
    path = Path(raw)
    if path.is_dir():
        raise ConfigError(f"TBR_DB is a directory, not a file: {raw} (try {path / 'tbr.db'})")
    if not path.resolve().parent.is_dir():
        raise ConfigError(f"TBR_DB: the directory {path.resolve().parent} does not exist: create it, or set TBR_DB"
                          " to a file in an existing directory")
    return raw


def _private_key(env) -> str:
    text = _get(env, "TBR_PRIVATE_KEY")
    path = _get(env, "TBR_PRIVATE_KEY_PATH")
    if text and path:
        raise ConfigError("TBR_PRIVATE_KEY and TBR_PRIVATE_KEY_PATH are both set: set only one")
    if path:
        try:
            text = Path(path).read_text()
        except OSError as e:
            raise ConfigError(f"TBR_PRIVATE_KEY_PATH: cannot read {path}: {e.strerror}") from None
        name = "TBR_PRIVATE_KEY_PATH"
    elif text:
        # Secrets stores often flatten newlines; accept the literal "\n" form too.
        text = text.replace("\\n", "\n")
        name = "TBR_PRIVATE_KEY"
    else:
        raise ConfigError(
            "TBR_PRIVATE_KEY or TBR_PRIVATE_KEY_PATH is required: the GitHub App's private key (PEM)"
        )
    try:
        load_pem_private_key(text.encode(), password=None)
    except (ValueError, TypeError) as e:
        raise ConfigError(f"{name} is not a PEM private key: {e}") from None
    return text


def _timezone(env) -> str:
    name = _get(env, "TBR_TIMEZONE") or "UTC"
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"TBR_TIMEZONE must be an IANA time zone like Europe/Berlin, got {name!r}") from None
    return name


def _holidays(env) -> str | None:
    code = _get(env, "TBR_HOLIDAYS")
    if code is None:
        return None
    from tbr.sla import holiday_calendar

    try:
        holiday_calendar(code, 2026)
    except (NotImplementedError, KeyError, ValueError) as e:
        raise ConfigError(
            f"TBR_HOLIDAYS must be a country code known to the holidays package, like US or DE-BY, got {code!r} ({e})"
        ) from None
    return code


def _escalate(env) -> str | None:
    raw = _get(env, "TBR_ESCALATE")
    if raw and not ESCALATE_RE.match(raw):
        raise ConfigError(f"TBR_ESCALATE must be a user (@name) or a team (@org/team), got {raw!r}")
    return "@" + raw.lstrip("@") if raw else None  # a mention, wherever it is written


def _hour(env) -> int:
    hour = _int(env, "TBR_REMINDER_HOUR", 9)
    if hour > 23:
        raise ConfigError(f"TBR_REMINDER_HOUR must be an hour from 0 to 23, got {hour}")
    return hour


def _budget(env) -> int:
    seconds = _int(env, "TBR_WORK_BUDGET_SECONDS", 120, minimum=5)
    if seconds > 240:  # under the five-minute lease, so no second worker takes an item still being worked on
        raise ConfigError(f"TBR_WORK_BUDGET_SECONDS must be at most 240, got {seconds}")
    return seconds


def _public_url(env) -> str | None:
    return _url(env, "TBR_PUBLIC_URL", "") if _get(env, "TBR_PUBLIC_URL") else None


def _slack(env) -> str | None:
    url = _get(env, "TBR_SLACK_WEBHOOK_URL")
    if url and not re.match(r"^https?://", url):  # the URL is a secret: not repeated back
        raise ConfigError("TBR_SLACK_WEBHOOK_URL must be an http(s) URL (Slack's incoming webhook URL)")
    return url


def _list(env, name: str, default: tuple[str, ...]) -> tuple[str, ...]:
    raw = _get(env, name)
    if raw is None:
        return default
    return tuple(item.strip() for item in raw.split(",") if item.strip())


def _phrases(env, name: str, default: tuple[str, ...]) -> tuple[str, ...]:
    phrases = _list(env, name, default)
    for phrase in phrases:
        problem = phrase_problem(phrase)
        if problem:
            raise ConfigError(f"{name}: {problem}")
    return phrases


def _digest_at(env) -> tuple[str, tuple[int, int]]:
    raw = _get(env, "TBR_DIGEST_AT") or "mon 09:00"
    m = re.fullmatch(r"([A-Za-z]{3})\s+([01]?\d|2[0-3]):([0-5]\d)", raw)
    if not m or m.group(1).lower() not in WEEKDAYS:
        raise ConfigError(f"TBR_DIGEST_AT must look like 'mon 09:00' (weekday, 24-hour time), got {raw!r}")
    return m.group(1).lower(), (int(m.group(2)), int(m.group(3)))


def credentials_path(env=None) -> Path:
    """Where the /setup flow writes the App's credentials: TBR_CREDENTIALS, or beside the database."""
    env = os.environ if env is None else env
    explicit = _get(env, "TBR_CREDENTIALS")
    if explicit:
        return Path(explicit)
    return Path(_get(env, "TBR_DB") or "./tbr.db").resolve().parent / "tbr-credentials.json"


def _with_credentials_file(env) -> dict:
    """The environment, completed from the credentials file for whatever it does not set itself."""
    names = ("TBR_APP_ID", "TBR_PRIVATE_KEY", "TBR_PRIVATE_KEY_PATH", "TBR_WEBHOOK_SECRET")
    if any(_get(env, n) for n in names):
        return dict(env)
    path = credentials_path(env)
    if not path.exists():
        raise MissingCredentials(
            "TBR_APP_ID, TBR_PRIVATE_KEY (or TBR_PRIVATE_KEY_PATH) and TBR_WEBHOOK_SECRET are not set and there is"
            f" no {path}: set them, or open /setup to create the GitHub App")
    try:
        saved = json.loads(path.read_text())
        return {**env, "TBR_APP_ID": str(saved["app_id"]), "TBR_PRIVATE_KEY": saved["private_key"],
                "TBR_WEBHOOK_SECRET": saved["webhook_secret"]}
    except (OSError, ValueError, KeyError) as e:
        raise ConfigError(f"TBR_CREDENTIALS: {path} is unreadable or incomplete ({e})") from None


@dataclass(frozen=True)
class SetupSettings:
    """What the /setup flow needs before any App exists."""

    credentials: Path
    api_url: str
    web_url: str
    token: str | None = field(repr=False)
    public_url: str | None
    app_name: str | None = None  # TBR_APP_NAME; None: a unique name made up on the setup page
    code: str = ""  # the one-time code the setup page asks for (printed in the log at start-up)


def _url(env, name: str, default: str) -> str:
    url = (_get(env, name) or default).rstrip("/")
    if not re.match(r"^https?://[^\s/]+", url):
        raise ConfigError(f"{name} must be an http(s) URL, got {url!r}")
    return url


def load_setup(env=None) -> SetupSettings:
    env = os.environ if env is None else env
    name = _get(env, "TBR_APP_NAME")
    if name and len(name) > APP_NAME_MAX:
        raise ConfigError(f"TBR_APP_NAME must be at most {APP_NAME_MAX} characters (GitHub's limit), got {name!r}")
    # gunicorn's master makes the code before forking (gunicorn.conf.py), so every worker takes the same.
    code = _get(env, SETUP_CODE) or secrets.token_urlsafe(16)
    return SetupSettings(credentials_path(env), _url(env, "TBR_GITHUB_API_URL", "https://api.github.com"),
                         _url(env, "TBR_GITHUB_URL", "https://github.com"), _get(env, "TBR_METRICS_TOKEN"),
                         _public_url(env), name, code)


APP_NAME_MAX = 34  # GitHub's limit on an App's name
SETUP_CODE = "TBR_SETUP_CODE"


def local_policy(env=None) -> tuple[str, str | None, tuple[str, ...]]:
    """The time zone, holidays and watched repositories (TBR_REPOS), which need no credentials: what a
    report on a copy of the database states."""
    env = os.environ if env is None else env
    return _timezone(env), _holidays(env), tuple(_repo("TBR_REPOS", r).lower() for r in _list(env, "TBR_REPOS", ()))


def load(env=None) -> Settings:
    """Read and validate every TBR_* variable; raise ConfigError on the first problem."""
    env = os.environ if env is None else env
    db_path = _db_path(env)  # first: the credentials file from /setup lives beside it
    env = _with_credentials_file(env)
    raw_id = _required(env, "TBR_APP_ID", "the GitHub App's numeric id")
    if not raw_id.isdigit() or int(raw_id) == 0:
        raise ConfigError(f"TBR_APP_ID must be the App's numeric id, got {raw_id!r}")
    private_key = _private_key(env)
    secret = _required(env, "TBR_WEBHOOK_SECRET", "the webhook secret set on the GitHub App")
    api_url = _url(env, "TBR_GITHUB_API_URL", "https://api.github.com")
    tracking = _get(env, "TBR_TRACKING_REPO")
    repos_raw = _list(env, "TBR_REPOS", ())
    log_format = (_get(env, "TBR_LOG_FORMAT") or "auto").lower()
    digest_day, digest_time = _digest_at(env)
    if log_format not in ("json", "console", "auto"):
        raise ConfigError(f"TBR_LOG_FORMAT must be json, console or auto, got {log_format!r}")
    return Settings(
        app_id=int(raw_id),
        private_key=private_key,
        webhook_secret=secret,
        api_url=api_url,
        db_path=db_path,
        tracking_repo=_repo("TBR_TRACKING_REPO", tracking) if tracking else None,
        grace_seconds=_int(env, "TBR_GRACE_SECONDS", 300, maximum=86400),  # as .github/tbr.yml bounds it
        timezone=_timezone(env),
        holidays=_holidays(env),
        repos=frozenset(_repo("TBR_REPOS", r).lower() for r in repos_raw) if repos_raw else None,
        exempt_authors=_list(env, "TBR_EXEMPT_AUTHORS", DEFAULT_EXEMPT_AUTHORS),
        approval_phrases=_phrases(env, "TBR_APPROVAL_PHRASES", DEFAULT_APPROVAL_PHRASES),
        log_format=log_format,
        escalate=_escalate(env),
        signoff_phrases=_phrases(env, "TBR_SIGNOFF_PHRASES", DEFAULT_SIGNOFF_PHRASES),
        overdue_reminder_days=_int(env, "TBR_OVERDUE_REMINDER_DAYS", 2, maximum=30),
        reminder_hour=_hour(env),
        sweep_minutes=_int(env, "TBR_SWEEP_MINUTES", 60, minimum=5, maximum=1440),
        payload_days=_int(env, "TBR_PAYLOAD_DAYS", 30, minimum=1, maximum=3660),
        rate_reserve_percent=_percent(env, "TBR_RATE_RESERVE_PERCENT", 20),
        access_reviews=_on_off(env, "TBR_ACCESS_REVIEWS"),
        digest_day=digest_day,
        digest_time=digest_time,
        slack_webhook_url=_slack(env),
        metrics_token=_get(env, "TBR_METRICS_TOKEN"),
        public_url=_public_url(env),
        work_budget_seconds=_budget(env),
        quarantine_after=_int(env, "TBR_QUARANTINE_AFTER", 5, minimum=1),
        audit_key=_audit_key(env),
        audit_keys_retired=_list(env, "TBR_AUDIT_KEY_RETIRED", ()),
    )


def _audit_key(env) -> str | None:
    key = _get(env, "TBR_AUDIT_KEY")
    if key is not None and len(key) < 32:  # the value itself is never repeated back
        raise ConfigError(f"TBR_AUDIT_KEY must be at least 32 characters (a random secret), got {len(key)}")
    return key
