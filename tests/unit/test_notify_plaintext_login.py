"""A notification server login without TLS would send the password in clear."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from idsync.domain.definitions import NotificationServer
from idsync.domain.principals import Principal
from idsync.errors import ConfigError
from idsync.notify import smtp
from idsync.services import definitions
from idsync.services.workspace import Workspace
from tests.servers.slapd import free_port


@pytest.fixture
def ws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Workspace]:
    monkeypatch.setenv("IDSYNC_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("IDSYNC_SECRET_KEY", raising=False)
    workspace = Workspace(principal=Principal("tester"), database_url=f"sqlite:///{tmp_path / 'idsync.db'}")
    yield workspace
    workspace.close()


def store(**server: object) -> object:
    return definitions.parse("store", {
        "name": "corp", "kind": "local", "path": "dir.db",
        "notification_server": {"host": "mail.example.org", "sender": "idsync@example.org", **server},
    })


def test_a_login_over_no_tls_is_refused_when_saved(ws: Workspace) -> None:
    with pytest.raises(ConfigError, match="would send the password in clear") as caught:
        definitions.save(ws, "store", store(tls="none", username="mailer", password="pw"))
    assert caught.value.field == "notification_server.tls"
    assert definitions.list_definitions(ws, "store") == []


def test_an_explicit_allowance_saves_it_with_a_warning(ws: Workspace, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        outcome = definitions.save(
            ws, "store", store(tls="none", username="mailer", password="pw", allow_plaintext_login=True)
        )
    assert outcome == "created"
    assert "sends its login password in clear" in caplog.text and "'pw'" not in caplog.text


def test_no_tls_without_a_login_and_a_login_over_tls_are_fine(ws: Workspace) -> None:
    assert definitions.save(ws, "store", store(tls="none")) == "created"
    assert definitions.save(ws, "store", store(tls="starttls", username="mailer", password="pw")) == "updated"


def test_sending_refuses_it_before_connecting() -> None:
    server = NotificationServer(
        host="127.0.0.1", port=free_port(), tls="none", sender="idsync@example.org", username="mailer", password="pw"
    )
    with pytest.raises(ConfigError, match="would send the password in clear"):
        smtp.send(server, smtp.Email(to=["ops@example.org"], subject="s", text="t"))
