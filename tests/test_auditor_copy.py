"""An auditor's copy of the database, without the App's credentials: `tbr evidence`, `tbr audit verify`
and `tbr status` read it as it is, check what they can, and say plainly what they could not check."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tbr import audit, cli, evidence
from tbr.store import Store
from tests.processes import ROOT
from tests.test_cli_errors import one_line
from tests.test_evidence import population  # noqa: F401 (a fixture)

APP = ("TBR_APP_ID", "TBR_PRIVATE_KEY", "TBR_PRIVATE_KEY_PATH", "TBR_WEBHOOK_SECRET")
EXPORT = ["evidence", "--from", "2026-11-01", "--to", "2026-11-30"]


def digest_of(path) -> str:
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


@pytest.fixture
def copy(population, cli_env, tmp_path, capsys, github):  # noqa: F811
    """A copy made by `tbr backup` in a directory of its own, and an environment with no App credentials."""
    bot, _ = population
    cli_env.setenv("TBR_DB", bot.store.path)
    (tmp_path / "auditor").mkdir()
    path = str(tmp_path / "auditor" / "tbr.db")
    assert cli.main(["backup", path]) == 0
    capsys.readouterr()
    for name in APP:
        cli_env.delenv(name, raising=False)
    cli_env.setenv("TBR_DB", path)
    return bot, path


def test_evidence_without_a_key_checks_the_links_and_says_the_hmacs_were_not(copy, tmp_path, capsys):
    bot, path = copy
    before = digest_of(path)
    out = tmp_path / "q4.json"
    assert cli.main([*EXPORT, "--format", "json", "--out", str(out)]) == 0
    err = capsys.readouterr().err
    doc = json.loads(out.read_text())
    chain = doc["summary"]["audit_chain"]
    assert (chain["intact"], chain["links_hold"], chain["hmac_checked"]) == (False, True, False)
    assert "Audit chain: NOT FULLY CHECKED: the links hold" in err and "TBR_AUDIT_KEY" in err
    assert "Audit chain: intact" not in err
    assert {r["audit_log"] for r in doc["changes"]} == {evidence.AGREES}
    assert "Not recorded in the audit log: without the App's credentials the database was only read" in err
    assert "6 changes written" in err
    assert digest_of(path) == before  # the copy is as it was: no record, no migration


def test_evidence_with_the_audit_key_alone_proves_every_row(copy, cli_env, tmp_path, capsys, github):
    bot, path = copy
    cli_env.setenv("TBR_AUDIT_KEY", github.private_key)  # the deployment derives its key from this PEM
    out = tmp_path / "q4.csv"
    before = digest_of(path)
    assert cli.main([*EXPORT, "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert "Audit chain: intact" in err and "Rows: every row agrees with the audit log" in err
    assert out.read_text().count(",proven\n") == 6
    assert digest_of(path) == before
    assert cli.main(["audit", "verify", "--offline"]) == 0
    assert capsys.readouterr().out.startswith("audit log intact:")


def test_audit_verify_without_a_key_checks_links_and_anchors_and_exits_2(copy, capsys, github):
    bot, path = copy
    seq, head = audit.head(bot.store.db)
    calls = len(github.requests)
    assert cli.main(["audit", "verify"]) == 2  # no credentials: nothing fetched from GitHub
    out, err = capsys.readouterr()
    assert out.startswith(f"audit log links hold: {seq} records in sequence, head #{seq} sha256:{head}")
    assert "intact" not in out + err
    assert "no App credentials: the anchors tbr published on GitHub were not fetched" in err
    assert one_line(err) == (f"tbr: {audit.unchecked_line(audit.verify(Store(path, readonly=True).db))}")
    assert one_line(err).startswith("tbr: the HMACs of records #1 to #")
    assert "set TBR_AUDIT_KEY" in err
    assert len(github.requests) == calls
    # A head published in a digest is still checked against the copy.
    assert cli.main(["audit", "verify", "--offline", "--expect", f"#{seq} sha256:{head}"]) == 2
    capsys.readouterr()
    assert cli.main(["audit", "verify", "--offline", "--expect", f"#{seq} sha256:{'0' * 64}"]) == 1
    assert "history was rewritten" in capsys.readouterr().err
    assert cli.main(["audit", "verify", "--offline", "--expect", f"#{seq + 5} sha256:{head}"]) == 1
    assert "the log was cut off" in capsys.readouterr().err


def test_audit_verify_without_a_key_still_finds_a_broken_link(copy, capsys):
    _, path = copy
    conn = sqlite3.connect(path)
    conn.execute("DROP TRIGGER audit_no_delete")
    conn.execute("DELETE FROM audit WHERE seq = 3")
    conn.commit()
    conn.close()
    assert cli.main(["audit", "verify", "--offline"]) == 1
    assert "record #3 deleted" in capsys.readouterr().err


def test_status_and_listings_read_the_copy(copy, capsys):
    _, path = copy
    before = digest_of(path)
    assert cli.main(["status"]) == 0
    assert "Follow-ups: 4 open" in capsys.readouterr().out
    assert cli.main(["followups", "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)) == 5  # 4 open, 1 signed off
    assert cli.main(["audit", "tail", "-n", "1"]) == 0
    assert digest_of(path) == before


@pytest.mark.parametrize("argv", [["status"], ["followups"], ["audit", "verify", "--offline"], ["audit", "tail"],
                                  [*EXPORT], ["access-review", "status"], ["retry", "--all"]])
@pytest.mark.parametrize("credentials", [True, False])
def test_a_database_that_is_not_there_is_an_error_not_a_new_one(cli_env, tmp_path, capsys, argv, credentials):
    missing = tmp_path / "typo.db"
    cli_env.setenv("TBR_DB", str(missing))
    if not credentials:
        for name in APP:
            cli_env.delenv(name, raising=False)
    code = cli.main(argv)
    line = one_line(capsys.readouterr().err)
    if argv[0] == "retry" and not credentials:  # it writes: it needs the App
        assert code == 2 and "TBR_APP_ID" in line
        return
    assert code == 2 and line == (f"tbr: configuration error: TBR_DB: there is no database at {missing}: set TBR_DB"
                                  " to tbr's database, or to a copy of it (tbr backup writes one)")
    assert not missing.exists()


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("setpriv"), reason="needs root to run as nobody")
def test_a_copy_in_a_directory_the_auditor_cannot_write_to(copy):
    """As someone else, from a read-only directory: SQLite cannot create the -shm file a WAL database is
    read through, so the copy (no -wal beside it) is read as immutable."""
    _, path = copy
    with tempfile.TemporaryDirectory() as outside:  # pytest's own directories are root's alone
        os.chmod(outside, 0o755)
        readonly = Path(outside) / "readonly"
        readonly.mkdir()
        shutil.copy(path, readonly / "tbr.db")
        os.chmod(readonly / "tbr.db", 0o444)
        os.chmod(readonly, 0o555)
        env = {"PATH": os.environ["PATH"], "TBR_DB": str(readonly / "tbr.db"), "HOME": "/tmp", "PYTHONPATH": str(ROOT)}
        as_nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable]
        if subprocess.run([*as_nobody, "-c", "import tbr.cli"], cwd="/tmp", env=env, capture_output=True).returncode:
            os.chmod(readonly, 0o755)  # so the temporary directory can be removed
            pytest.skip("nobody cannot run this checkout's Python: it lies in a directory only its owner may enter")
        done = subprocess.run([*as_nobody, "-m", "tbr", *EXPORT, "--format", "csv"], cwd="/tmp", env=env,
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        assert len(done.stdout.splitlines()) == 7 and "6 changes written" in done.stderr
        assert sorted(os.listdir(readonly)) == ["tbr.db"]
        os.chmod(readonly, 0o755)
