"""Settings: every problem is one line naming the variable."""

from __future__ import annotations

import pytest

from tbr.config import ConfigError, load


@pytest.fixture
def env(private_key) -> dict:
    return {"TBR_APP_ID": "12345", "TBR_PRIVATE_KEY": private_key, "TBR_WEBHOOK_SECRET": "s3cret"}


def test_defaults(env):
    s = load(env)
    assert (s.app_id, s.api_url, s.db_path, s.tracking_repo, s.grace_seconds) == (
        12345, "https://api.github.com", "./tbr.db", None, 300)
    assert (s.timezone, s.holidays, s.repos, s.exempt_authors) == ("UTC", None, None, ("dependabot[bot]",))
    assert s.watches_repo("any/repo")


def test_everything_set(env, tmp_path, private_key):
    key = tmp_path / "key.pem"
    key.write_text(private_key)
    del env["TBR_PRIVATE_KEY"]
    s = load({**env, "TBR_PRIVATE_KEY_PATH": str(key), "TBR_GITHUB_API_URL": "https://ghe.example.com/api/v3/",
              "TBR_DB": str(tmp_path / "tbr.db"), "TBR_TRACKING_REPO": "acme/compliance", "TBR_GRACE_SECONDS": "60",
              "TBR_TIMEZONE": "Europe/Berlin", "TBR_HOLIDAYS": "DE-BY", "TBR_REPOS": "acme/API, acme/web"})
    assert s.api_url == "https://ghe.example.com/api/v3"
    assert (s.tracking_repo, s.grace_seconds, s.timezone, s.holidays) == ("acme/compliance", 60, "Europe/Berlin", "DE-BY")
    assert s.watches_repo("acme/api") and s.watches_repo("ACME/Web") and not s.watches_repo("acme/other")


def test_key_with_escaped_newlines(env, private_key):
    assert load({**env, "TBR_PRIVATE_KEY": private_key.replace("\n", "\\n")}).private_key == private_key


@pytest.mark.parametrize("change, message", [
    ({"TBR_APP_ID": None}, "TBR_APP_ID is required"),
    ({"TBR_APP_ID": "abc"}, "TBR_APP_ID must be the App's numeric id, got 'abc'"),
    ({"TBR_PRIVATE_KEY": None}, "TBR_PRIVATE_KEY or TBR_PRIVATE_KEY_PATH is required"),
    ({"TBR_PRIVATE_KEY": "not a key"}, "TBR_PRIVATE_KEY is not a PEM private key"),
    ({"TBR_PRIVATE_KEY_PATH": "/nonexistent/key.pem"}, "set only one"),
    ({"TBR_PRIVATE_KEY": None, "TBR_PRIVATE_KEY_PATH": "/nonexistent/key.pem"}, "TBR_PRIVATE_KEY_PATH: cannot read"),
    ({"TBR_WEBHOOK_SECRET": " "}, "TBR_WEBHOOK_SECRET is required"),
    ({"TBR_GITHUB_API_URL": "ftp://x"}, "TBR_GITHUB_API_URL must be an http(s) URL"),
    ({"TBR_TRACKING_REPO": "just-a-name"}, "TBR_TRACKING_REPO must look like owner/name"),
    ({"TBR_GRACE_SECONDS": "five"}, "TBR_GRACE_SECONDS must be a whole number"),
    ({"TBR_GRACE_SECONDS": "-1"}, "TBR_GRACE_SECONDS must be at least 0"),
    ({"TBR_TIMEZONE": "Mars/Olympus"}, "TBR_TIMEZONE must be an IANA time zone"),
    ({"TBR_HOLIDAYS": "XX"}, "TBR_HOLIDAYS must be a country code"),
    ({"TBR_HOLIDAYS": "DE-ZZ"}, "TBR_HOLIDAYS must be a country code"),
    ({"TBR_REPOS": "acme/api,oops"}, "TBR_REPOS must look like owner/name, got 'oops'"),
    ({"TBR_LOG_FORMAT": "xml"}, "TBR_LOG_FORMAT must be json, console or auto"),
    ({"TBR_GRACE_SECONDS": "99999999"}, "TBR_GRACE_SECONDS must be at most 86,400, got 99,999,999"),
    ({"TBR_OVERDUE_REMINDER_DAYS": "31"}, "TBR_OVERDUE_REMINDER_DAYS must be at most 30"),
    ({"TBR_SWEEP_MINUTES": "100000"}, "TBR_SWEEP_MINUTES must be at most 1,440"),
    ({"TBR_PAYLOAD_DAYS": "100000"}, "TBR_PAYLOAD_DAYS must be at most 3,660"),
    ({"TBR_DB": "/missing/dir/tbr.db"}, "TBR_DB: the directory /missing/dir does not exist"),
    ({"TBR_DB": "/"}, "TBR_DB is a directory"),
])
def test_bad_settings_name_the_variable(env, change, message):
    for k, v in change.items():
        if v is None:
            env.pop(k, None)
        else:
            env[k] = v
    with pytest.raises(ConfigError) as e:
        load(env)
    assert message in str(e.value)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("raw, mention", [("acme/security", "@acme/security"), ("@oncall-lead", "@oncall-lead"), ("", None)])
def test_escalate_is_always_a_mention(env, raw, mention):
    assert load({**env, "TBR_ESCALATE": raw}).escalate == mention
