"""The notification server of an identity store, against a real SMTP server.

aiosmtpd on 127.0.0.1: plain SMTP, STARTTLS and implicit TLS with a
throwaway CA, a login, a certificate from another CA (refused), and a
server that is not there (a transient error, so the outbox tries again).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from idsync.domain.principals import Principal
from idsync.errors import AuthError, ConfigError, ConnectorError, TransientError
from idsync.services import definitions, notifications
from idsync.services.workspace import Workspace
from tests.servers.smtp import SmtpServer, free_port
from tests.servers.tls import CertificateAuthority, make_ca


@pytest.fixture
def ws(tmp_home: Path) -> Workspace:
    return Workspace(principal=Principal("tester"))


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> CertificateAuthority:
    return make_ca(tmp_path_factory.mktemp("smtp-ca"))


@pytest.fixture(scope="module")
def server_cert(ca: CertificateAuthority, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return ca.issue_server_certificate(tmp_path_factory.mktemp("smtp-cert"))


@pytest.fixture
def plain_smtp() -> Iterator[SmtpServer]:
    with SmtpServer() as server:
        yield server


def add_store(ws: Workspace, name: str = "dir", **server: Any) -> None:
    body = {"name": name, "kind": "local", "path": f"{name}.directory"}
    if server:
        body["notification_server"] = {"sender": "idsync@example.org", **server}
    definitions.save(ws, "store", definitions.parse("store", body))


def test_plain_message_reaches_the_server(ws: Workspace, plain_smtp: SmtpServer) -> None:
    add_store(ws, host=plain_smtp.host, port=plain_smtp.port, tls="none", default_to=["ops@example.org"])
    line = notifications.send_test(ws, "dir", ["alice@example.org"])
    assert line.startswith(f"sent to 1 recipient(s) via 127.0.0.1:{plain_smtp.port} (none): 250")
    [message] = plain_smtp.wait_for(1)
    assert message.rcpt_tos == ["alice@example.org"]
    assert message.mail_from == "idsync@example.org"
    assert message.subject == "[idsync] test message from identity store dir"
    assert "identity store 'dir'" in message.body()


def test_default_recipients_when_no_to_is_given(ws: Workspace, plain_smtp: SmtpServer) -> None:
    add_store(
        ws, host=plain_smtp.host, port=plain_smtp.port, tls="none",
        default_to=["ops@example.org"], default_cc=["audit@example.org"],
    )
    notifications.send_test(ws, "dir")
    [message] = plain_smtp.wait_for(1)
    assert sorted(message.rcpt_tos) == ["audit@example.org", "ops@example.org"]
    assert message.message["Cc"] == "audit@example.org"


def test_no_recipient_at_all_is_refused(ws: Workspace, plain_smtp: SmtpServer) -> None:
    add_store(ws, host=plain_smtp.host, port=plain_smtp.port, tls="none")
    with pytest.raises(ConnectorError, match="no recipient"):
        notifications.send_test(ws, "dir")
    assert plain_smtp.messages == []


def test_store_without_server_says_what_to_add(ws: Workspace) -> None:
    add_store(ws)
    with pytest.raises(ConfigError, match="'dir' has no notification server: add notification_server"):
        notifications.send_test(ws, "dir", ["a@example.org"])


def test_starttls_verified_with_the_test_ca_and_login(
    ws: Workspace, ca: CertificateAuthority, server_cert: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    cert, key = server_cert
    with SmtpServer(tls="starttls", cert=cert, key=key, login=("mailer", "s3cret-pw")) as server:
        add_store(
            ws, host="localhost", port=server.port, tls="starttls", ca_file=str(ca.cert_file),
            username="mailer", password="s3cret-pw",
        )
        line = notifications.send_test(ws, "dir", ["bob@example.org"])
        assert "(starttls): 250" in line
        assert server.wait_for(1)[0].rcpt_tos == ["bob@example.org"]
        assert server.logins == ["mailer"]
    # The password is a secret: encrypted apart, never in the stored body or an export.
    assert "s3cret-pw" not in str(definitions.exportable(ws, "store", "dir"))
    assert definitions.displayable(ws, "store", "dir")["notification_server"]["password"] != "s3cret-pw"


def test_wrong_password_is_an_auth_error_without_the_password(
    ws: Workspace, ca: CertificateAuthority, server_cert: tuple[Path, Path]
) -> None:
    cert, key = server_cert
    with SmtpServer(tls="starttls", cert=cert, key=key, login=("mailer", "right")) as server:
        add_store(
            ws, host="localhost", port=server.port, tls="starttls", ca_file=str(ca.cert_file),
            username="mailer", password="wrong-pw",
        )
        with pytest.raises(AuthError, match="refused the login of 'mailer'") as caught:
            notifications.send_test(ws, "dir", ["bob@example.org"])
        assert "wrong-pw" not in caught.value.message
        assert server.messages == []


def test_certificate_from_another_ca_is_refused(
    ws: Workspace, server_cert: tuple[Path, Path], tmp_path: Path
) -> None:
    other = make_ca(tmp_path / "other-ca", "some other CA")
    cert, key = server_cert
    with SmtpServer(tls="starttls", cert=cert, key=key) as server:
        add_store(ws, host="localhost", port=server.port, tls="starttls", ca_file=str(other.cert_file))
        with pytest.raises(ConnectorError, match="certificate refused") as caught:
            notifications.send_test(ws, "dir", ["bob@example.org"])
        assert not isinstance(caught.value, TransientError)
        assert server.messages == []


def test_system_cas_do_not_trust_a_private_ca(ws: Workspace, server_cert: tuple[Path, Path]) -> None:
    cert, key = server_cert
    with SmtpServer(tls="starttls", cert=cert, key=key) as server:
        add_store(ws, host="localhost", port=server.port, tls="starttls")
        with pytest.raises(ConnectorError, match="certificate refused"):
            notifications.send_test(ws, "dir", ["bob@example.org"])


def test_implicit_tls(ws: Workspace, ca: CertificateAuthority, server_cert: tuple[Path, Path]) -> None:
    cert, key = server_cert
    with SmtpServer(tls="implicit", cert=cert, key=key) as server:
        add_store(ws, host="localhost", port=server.port, tls="implicit", ca_file=str(ca.cert_file))
        assert "(implicit): 250" in notifications.send_test(ws, "dir", ["carol@example.org"])
        assert server.wait_for(1)[0].rcpt_tos == ["carol@example.org"]


def test_starttls_against_a_plain_server_is_refused(ws: Workspace, plain_smtp: SmtpServer) -> None:
    add_store(ws, host=plain_smtp.host, port=plain_smtp.port, tls="starttls")
    with pytest.raises(ConnectorError, match="check its tls setting"):
        notifications.send_test(ws, "dir", ["bob@example.org"])


def test_server_down_is_transient(ws: Workspace) -> None:
    add_store(ws, host="127.0.0.1", port=free_port(), tls="none", timeout=2)
    with pytest.raises(TransientError, match="cannot be reached"):
        notifications.send_test(ws, "dir", ["bob@example.org"])
