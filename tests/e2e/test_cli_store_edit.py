"""``idsync store add`` and ``idsync store edit`` with a notification server,
as a user runs them: every field an option, secrets never on the command
line, the review of changes before saving."""

from __future__ import annotations

from pathlib import Path

import pytest

from idsync.domain.principals import Principal
from idsync.services import definitions
from idsync.services.workspace import Workspace
from tests.e2e.test_cli import Cli


def test_a_store_gets_and_changes_its_notification_server_from_options(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cli = Cli(tmp_path / "home")
    monkeypatch.setenv("IDSYNC_HOME", str(tmp_path / "home"))
    added = cli(
        "store", "add", "dir", "--kind", "local", "--path", str(tmp_path / "dir.db"),
        "--smtp-host", "mail.example.org", "--smtp-sender", "idsync@example.org",
        "--smtp-to", "ops@example.org,hr@example.org", "--smtp-username", "bot", "--smtp-password-env", "SMTP_PW",
    )
    assert "identity store 'dir' (new)" in added.stdout
    assert "notification server.default to: ops@example.org, hr@example.org" in added.stdout
    assert "store 'dir' created" in added.stdout

    refused = cli("store", "edit", "dir", "--smtp-port", "2525", ok=False)
    assert refused.returncode == 1 and "nothing saved" in refused.stderr
    assert "  notification server.port:\n    was: none\n    now: 2525" in refused.stdout

    edited = cli("store", "edit", "dir", "--smtp-port", "2525", "--smtp-password-stdin", "--yes", input="s3cret\n")
    assert "now: ******** (changed)" in edited.stdout and "s3cret" not in edited.stdout
    shown = cli.json("store", "show", "dir")
    assert shown["notification_server"]["port"] == 2525 and "password" not in shown["notification_server"]
    ws = Workspace(principal=Principal("tester"))
    try:
        assert definitions.load(ws, "store", "dir").secrets["notification_server.password"] == "s3cret"
    finally:
        ws.close()

    wrong = cli("store", "edit", "dir", "--url", "ldap://ldap.example.org", "--yes", ok=False)
    assert "url does not apply to a local store (ldap stores only)" in wrong.stderr
    gone = cli.json("store", "edit", "dir", "--remove-notification-server", "--yes")
    assert gone["outcome"] == "updated"
    assert "notification_server" not in cli.json("store", "show", "dir")


def test_no_option_takes_a_password_as_its_value() -> None:
    from typer.testing import CliRunner

    from idsync.cli.app import app

    for command in (["store", "add"], ["store", "edit"]):
        text = CliRunner().invoke(app, [*command, "--help"], env={"COLUMNS": "200"}).output
        assert "--smtp-password-env" in text and "--smtp-password-stdin" in text
        assert "--smtp-password " not in text and "--password " not in text
