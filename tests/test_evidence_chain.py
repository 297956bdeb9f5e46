"""Evidence that holds up against someone with a copy of the database: rows bound to the audit log, a chain
keyed outside the database, secrets kept out of sight, and files only tbr can read."""

from __future__ import annotations

import csv
import io
import json
import os
import sqlite3
import stat
from datetime import datetime, timedelta, timezone

import pytest
from cryptography.hazmat.primitives import serialization

from tbr import audit, cli, config, evidence
from tbr.store import Store
from tests.test_evidence import REPO, export, population, utc  # noqa: F401 (population is a fixture)

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=timezone.utc)
KEY_A, KEY_B = b"a" * 32, b"b" * 32


def forge(path: str, *sql) -> None:
    """Edit the file as someone with sqlite3 and a copy of the database would: triggers go first."""
    conn = sqlite3.connect(path)
    for name in ("audit_no_update", "audit_no_delete", "audit_no_replace"):
        conn.execute(f"DROP TRIGGER IF EXISTS {name}")
    for statement in sql:
        conn.execute(*statement)
    conn.commit()
    conn.close()


def rechain(path: str, key: bytes | None, start: int = 1) -> None:
    """Recompute every hash from `start` on, as a forger would after rewriting a record, with `key`
    (None: plain SHA-256, which the chain used before it was keyed)."""
    conn = sqlite3.connect(path)
    rows = conn.execute("SELECT seq, at, kind, subject, actor, data FROM audit WHERE seq >= ? ORDER BY seq",
                        [start]).fetchall()
    prev = conn.execute("SELECT hash FROM audit WHERE seq = ?", [start - 1]).fetchone()
    prev = prev[0] if prev else audit.GENESIS
    for seq, at, kind, subject, actor, data in rows:
        new = audit.digest(seq, at, kind, subject, actor, data, prev, key)
        conn.execute("INSERT OR REPLACE INTO audit VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                     [seq, at, kind, subject, actor, data, prev, new])
        prev = new
    conn.commit()
    conn.close()


def csv_rows(text: str) -> dict[str, dict]:
    return {r["change"]: r for r in csv.DictReader(io.StringIO(text))}


# 1. Every exported fact is proven by the chain --------------------------------------------------------

def test_an_edited_changes_row_is_shown_as_the_log_proves_it_and_fails_the_export(population, cli_env, capsys):
    bot, c = population
    overdue, signed = c["overdue"], c["signed"]
    head, text = export(bot, "csv", repo=REPO)
    assert not evidence.failed(head) and {r["audit_log"] for r in csv_rows(text).values()} == {"proven"}
    # One UPDATE turns an unapproved change into "approved by carol", another credits carol with a sign-off.
    forged = {"approved": True, "rule": "review", "summary": "Approved: carol approved the pull request",
              "approval": {"approver": "carol", "at": "2026-11-05T09:00:00+00:00", "url": "https://x/1",
                           "rule": "review", "detail": ""}, "declaration": None, "notes": []}
    bot.store.db.execute("UPDATE changes SET status = 'approved', decision = ? WHERE key = ?",
                         [json.dumps(forged), overdue["key"]])
    bot.store.db.execute("UPDATE changes SET signed_off_by = 'carol' WHERE key = ?", [signed["key"]])
    head, text = export(bot, "csv", repo=REPO)
    rows = csv_rows(text)
    six, four = rows["#6"], rows["#4"]
    # The row shows what the log proves, and names what the table claims.
    assert (six["decision"], six["approver"], six["rule"]) == ("follow-up", "", "none")
    assert six["followup"] == overdue["followup_url"]
    assert six["audit_log"].startswith("DISAGREES: the table says decision 'approved'")
    assert "approver 'carol'" in six["audit_log"]
    assert four["signed_off_by"] == "bob" and four["audit_log"] == "DISAGREES: the table says signed_off_by 'carol'"
    assert rows["#2"]["audit_log"] == "proven"
    assert head["audit_chain"]["intact"] and head["audit_chain"]["rows_disagreeing"] == 2
    assert evidence.failed(head)
    # The command fails exactly as for a broken chain, and says why; so does `tbr audit verify`.
    cli_env.setenv("TBR_DB", bot.store.path)
    assert cli.main(["evidence", "--from", "2026-11-01", "--to", "2026-11-30", "--repo", REPO]) == 1
    err = capsys.readouterr().err
    assert "Audit chain: intact" in err and "Rows: BROKEN: 2 rows disagree with the audit log" in err
    assert cli.main(["audit", "verify"]) == 1
    err = capsys.readouterr().err
    assert "tables disagree with the audit log: 2 rows" in err and f"{REPO} #6: DISAGREES" in err


def test_each_judgement_fingerprints_the_row_it_wrote(population):
    """What lets the export prove an unedited row with one hash: the live path's records match its rows."""
    bot, _ = population
    for change in bot.changes():
        if change["decision"]:
            [judged, *_] = audit.records(bot.store.db, subject=audit.subject(change), kind="change.judged", last=1)
            assert judged["data"]["decision_sha"] == audit.fingerprint(change["status"], change["actor"],
                                                                        change["decision"]), change["key"]


def test_a_change_deleted_or_moved_out_of_the_period_is_named(population):
    bot, c = population
    bot.store.db.execute("DELETE FROM changes WHERE key = ?", [c["overdue"]["key"]])
    bot.store.db.execute("UPDATE changes SET happened_at = '2026-10-01T00:00:00+00:00' WHERE key = ?",
                         [c["signed"]["key"]])
    head, text = export(bot, "json", repo=REPO)
    assert sorted(head["audit_chain"]["missing_from_table"]) == sorted([c["overdue"]["key"], c["signed"]["key"]])
    assert json.loads(text)["audit_check"]["holds"] is False
    assert "2 changes the audit log records are missing from the table" in evidence.check_line(head)


def test_a_row_tbr_never_recorded_disagrees(population):
    bot, c = population
    row = {**bot.store.change(c["reviewed"]["key"]), "key": "pr:1000:77", "number": 77}
    bot.store.db["changes"].insert(row)
    _, text = export(bot, "csv", repo=REPO)
    assert csv_rows(text)["#77"]["audit_log"] == "DISAGREES: the audit log has no record of this change"


# 2. A key the database does not hold ----------------------------------------------------------------

@pytest.fixture
def keyed(tmp_path):
    store = Store(str(tmp_path / "audit.db"), audit.Keys(KEY_A))
    for i in range(1, 7):
        store.audit("change.judged", f"acme/api#{i}", "tbr", T0 + timedelta(minutes=i), status="followup", n=i)
    return store


def test_records_are_keyed_and_a_copy_of_the_database_cannot_rechain_them(keyed):
    first = next(audit.records(keyed.db))
    assert (first["kind"], first["data"]["key_id"]) == ("audit.keyed", audit.key_id(KEY_A))
    assert KEY_A.decode() not in json.dumps(list(audit.records(keyed.db)))
    assert audit.verify(keyed.db).ok and audit.verify(keyed.db).legacy == 0
    # The append-only triggers refuse INSERT OR REPLACE too.
    row = keyed.db.execute("SELECT * FROM audit WHERE seq = 3").fetchone()
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        keyed.db.execute("INSERT OR REPLACE INTO audit VALUES (?, ?, ?, ?, ?, ?, ?, ?)", row)
    # Rewritten with the triggers dropped and every later hash recomputed: plain SHA-256 (the old scheme)
    # or any key but tbr's, the chain does not verify, and the first rewritten record is named.
    for guess in (None, KEY_B):
        forge(keyed.path, ("UPDATE audit SET data = ? WHERE seq = 3", ['{"n":2,"status":"approved"}']))
        rechain(keyed.path, guess, start=1 if guess is None else 3)
        result = audit.verify(keyed.db)
        assert not result.ok and result.bad_seq in (1, 3) and "altered" in result.problem
    # Only the key recomputes it, which is why the database must not hold it.
    rechain(keyed.path, KEY_A)
    assert audit.verify(keyed.db).ok


def test_a_record_sqlite_writes_differently_is_checked_as_tbr_wrote_it(keyed, monkeypatch):
    monkeypatch.setattr(audit, "CANONICAL", "json_array(seq, at, kind, subject, actor, data, prev_hash, 0)")
    assert audit.verify(keyed.db).ok
    forge(keyed.path, ("UPDATE audit SET actor = 'mallory' WHERE seq = 4",))
    assert audit.verify(keyed.db).bad_seq == 4


def test_an_old_chain_keeps_verifying_and_the_switch_is_a_record(tmp_path):
    path = str(tmp_path / "old.db")
    old = Store(path)
    for i in range(3):
        old.audit("heartbeat", "", "tbr", T0 + timedelta(minutes=i))
    new = Store(path, audit.Keys(KEY_A))
    new.audit("heartbeat", "", "tbr", T0 + timedelta(minutes=5))
    kinds = [r["kind"] for r in audit.records(new.db)]
    assert kinds == ["heartbeat"] * 3 + ["audit.keyed", "heartbeat"]
    result = audit.verify(new.db)
    assert result.ok and result.legacy == 3 and "records #1 to #3 predate the audit key" in result.describe()
    # From the switch on, a process without the key cannot append, nor check the HMACs: only the links.
    with pytest.raises(audit.KeyMissing):
        old.audit("heartbeat", "", "tbr", T0 + timedelta(minutes=6))
    keyless = audit.verify(old.db)
    assert (keyless.ok, keyless.complete, keyless.unchecked_from, keyless.legacy) == (True, False, 4, 3)
    assert "intact" not in keyless.describe()
    # Rotation: a new key is another switch; the old one, retired, still checks the records before it.
    rotated = Store(path, audit.Keys(KEY_B, (KEY_A,)))
    rotated.audit("heartbeat", "", "tbr", T0 + timedelta(minutes=7))
    assert audit.verify(rotated.db).ok
    result = audit.verify(rotated.db, keys=audit.Keys(KEY_B))
    assert not result.ok and result.bad_seq == 4 and "does not hold" in result.problem


def test_the_key_comes_from_tbr_audit_key_or_the_app_private_key(private_key):
    env = {"TBR_APP_ID": "1", "TBR_PRIVATE_KEY": private_key, "TBR_WEBHOOK_SECRET": "s"}
    derived = audit.keys_of(config.load(env))
    assert derived.current == audit.derive(private_key) and derived.current != private_key.encode()
    # The same key however the PEM is written (GitHub's PKCS#1, or PKCS#8 after a conversion).
    pkcs8 = serialization.load_pem_private_key(private_key.encode(), None).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()
    assert pkcs8 != private_key and audit.derive(pkcs8) == derived.current
    explicit = audit.keys_of(config.load({**env, "TBR_AUDIT_KEY": "k" * 40, "TBR_AUDIT_KEY_RETIRED": "r" * 40}))
    assert explicit.current == b"k" * 40 and explicit.get(audit.key_id(b"r" * 40)) == b"r" * 40
    with pytest.raises(config.ConfigError, match="at least 32") as e:
        config.load({**env, "TBR_AUDIT_KEY": "short-secret"})
    assert "short-secret" not in str(e.value)
    assert "k" * 40 not in repr(explicit) and audit.key_id(b"k" * 40) in repr(explicit)


# 6. Secrets and files -------------------------------------------------------------------------------

def test_settings_never_show_their_secrets(private_key):
    env = {"TBR_APP_ID": "1", "TBR_PRIVATE_KEY": private_key, "TBR_WEBHOOK_SECRET": "webhook-secret-value",
           "TBR_METRICS_TOKEN": "metrics-token-value", "TBR_AUDIT_KEY": "audit-key-value" * 3,
           "TBR_SLACK_WEBHOOK_URL": "https://hooks.slack.com/services/T0/B0/slack-secret"}
    settings = config.load(env)
    shown = repr(settings) + str(settings) + repr(config.load_setup(env))
    for secret in ("PRIVATE KEY", private_key.splitlines()[1], "webhook-secret-value", "metrics-token-value",
                   "audit-key-value", "slack-secret"):
        assert secret not in shown
    assert "app_id=1" in shown
    with pytest.raises(config.ConfigError) as e:
        config.load({**env, "TBR_SLACK_WEBHOOK_URL": "hooks.slack.com/services/T0/B0/slack-secret"})
    assert "slack-secret" not in str(e.value)


def test_a_failing_slack_webhook_is_reported_without_its_url(bot, github, monkeypatch):
    from types import SimpleNamespace

    from tbr import digest

    secret_url = f"{github.url}/services/T0/B0/slack-secret"  # the fake answers 404 there
    monkeypatch.setattr(bot.engine, "settings", config.Settings(**{**vars(bot.engine.settings),
                                                                    "slack_webhook_url": secret_url}))
    with pytest.raises(RuntimeError) as e:
        digest._post_slack(bot.engine, SimpleNamespace(week=T0.date(), summary="s"), T0)
    assert "404" in str(e.value) and "slack-secret" not in str(e.value)


def test_the_database_and_its_wal_are_only_tbr_s(tmp_path):
    old = os.umask(0o022)
    try:
        path = str(tmp_path / "tbr.db")
        store = Store(path)
        store.audit("heartbeat", "", "tbr", T0)
        for name in (path, path + "-wal", path + "-shm"):
            assert stat.S_IMODE(os.stat(name).st_mode) == 0o600, name
        # A database created by an earlier version, readable by all, is tightened at start.
        store.close()
        for name in (path, path + "-wal", path + "-shm"):
            if os.path.exists(name):
                os.chmod(name, 0o644)
        Store(path)
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    finally:
        os.umask(old)
