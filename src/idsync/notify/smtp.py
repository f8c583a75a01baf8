"""Sending one email through a store's notification server.

The connection is opened for each message: notifications are rare, and a
connection kept open would only fail later, at a worse moment. TLS always
verifies the server certificate with :func:`ssl.create_default_context`
(the system CAs, or the server's ``ca_file``); there is no switch to turn
that off. Failures become :class:`~idsync.errors.TransientError` when
trying again later may help (the server is down, busy, or answered 4xx)
and :class:`~idsync.errors.ConnectorError` when it will not (a refused
certificate, a refused login, a 5xx answer). The password never appears in
a message or a log line.

A message is sent once the server has answered its DATA with 2xx: it is
then the server's, and nothing that happens after (QUIT refused, the
connection closed or reset) makes :func:`send` fail, since a failure would
have it sent again. Only a failure before that answer is raised; when the
connection breaks after the last byte of the message went out but before
the answer came, the server may have kept it, and a second attempt can
deliver it twice (with the same Message-ID, see :func:`build`).
"""

from __future__ import annotations

import logging
import smtplib
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import TYPE_CHECKING

from idsync.domain.definitions import NotificationServer
from idsync.errors import AuthError, ConfigError, ConnectorError, TransientError
from idsync.store.secrets import resolve_secret

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Email:
    """A message ready to send: recipients, subject and both bodies."""

    to: tuple[str, ...]
    subject: str
    text: str
    html: str | None = None
    cc: tuple[str, ...] = ()


def tls_context(server: NotificationServer) -> ssl.SSLContext:
    """A verifying TLS context for *server* (its CA file, else the system CAs)."""
    try:
        return ssl.create_default_context(cafile=server.ca_file) if server.ca_file else ssl.create_default_context()
    except (OSError, ssl.SSLError) as exc:
        raise ConnectorError(f"notification server CA file {server.ca_file!r} cannot be read: {exc}") from exc


def build(server: NotificationServer, email: Email, *, message_id: str | None = None) -> EmailMessage:
    """The MIME message: plain text, with an HTML alternative when there is one.

    *message_id* is the Message-ID; give the same one at every attempt to
    send one message, so a receiver that gets it twice can tell."""
    msg = EmailMessage()
    msg["From"] = server.sender
    msg["To"] = ", ".join(email.to)
    if email.cc:
        msg["Cc"] = ", ".join(email.cc)
    msg["Subject"] = email.subject
    msg["Date"] = formatdate(localtime=False)
    msg["Message-ID"] = message_id or make_msgid(domain="idsync")
    msg.set_content(email.text)
    if email.html:
        msg.add_alternative(email.html, subtype="html")
    return msg


def send(server: NotificationServer, email: Email, *, message_id: str | None = None) -> str:
    """Send *email* through *server*; the server's answer in one line."""
    recipients = list(email.to) + list(email.cc)
    if not recipients:
        raise ConnectorError(
            "the message has no recipient", field="to",
            hint="give a recipient, or set default_to on the notification server",
        )
    where = f"{server.host}:{server.effective_port}"
    if server.sends_password_in_clear and not server.allow_plaintext_login:
        # Checked when the store is saved too; a definition stored before the
        # check existed must not send the password in clear either.
        raise ConfigError(
            f"notification server {where}: a login over tls: none would send the password in clear",
            field="notification_server.tls",
            hint="use tls: starttls or implicit, or set allow_plaintext_login: true on a network you trust",
        )
    msg = build(server, email, message_id=message_id)
    try:
        smtp = _connect(server)
        try:
            if server.tls == "starttls":
                smtp.starttls(context=tls_context(server))
            if server.username:
                smtp.login(server.username, resolve_secret(server.password or ""))
            refused = smtp.send_message(msg, to_addrs=recipients)
            # DATA was answered 2xx (or send_message raised): the message is sent.
            code, answer = smtp.data_answer or (250, b"")
        finally:
            _quit_quietly(smtp, where)
    except smtplib.SMTPAuthenticationError as exc:
        raise AuthError(f"notification server {where} refused the login of {server.username!r}: {_answer(exc)}") from None
    except smtplib.SMTPNotSupportedError as exc:
        raise ConnectorError(f"notification server {where}: {exc}; check its tls setting") from None
    except smtplib.SMTPRecipientsRefused as exc:
        raise _classified(where, "refused every recipient", exc.recipients) from None
    except smtplib.SMTPResponseException as exc:
        error = TransientError if 400 <= exc.smtp_code < 500 else ConnectorError
        raise error(f"notification server {where} answered {exc.smtp_code} {_decode(exc.smtp_error)}") from None
    except ssl.SSLCertVerificationError as exc:
        raise ConnectorError(
            f"notification server {where}: certificate refused ({exc.verify_message}); set ca_file to its CA"
        ) from None
    except ssl.SSLError as exc:
        raise ConnectorError(f"notification server {where}: TLS failed ({exc.reason or exc})") from None
    except (TimeoutError, smtplib.SMTPServerDisconnected, smtplib.SMTPConnectError, OSError) as exc:
        raise TransientError(f"notification server {where} cannot be reached: {exc or type(exc).__name__}") from None
    except smtplib.SMTPException as exc:
        raise ConnectorError(f"notification server {where}: {exc}") from None
    if refused:
        bad = ", ".join(sorted(refused))
        return f"sent to {len(recipients) - len(refused)} of {len(recipients)} recipients via {where}; refused: {bad}"
    return f"sent to {len(recipients)} recipient(s) via {where} ({server.tls}): {code} {_decode(answer)}"


class _Answered:
    """Keeps the server's answer to DATA, the moment a message becomes sent."""

    data_answer: tuple[int, bytes] | None = None

    def data(self, msg: ReadableBuffer | str) -> tuple[int, bytes]:
        code, answer = super().data(msg)  # type: ignore[misc]
        self.data_answer = (code, answer)
        return code, answer


class _Smtp(_Answered, smtplib.SMTP):
    pass


class _SmtpSsl(_Answered, smtplib.SMTP_SSL):
    pass


def _connect(server: NotificationServer) -> _Smtp | _SmtpSsl:
    if server.tls == "implicit":
        return _SmtpSsl(server.host, server.effective_port, timeout=server.timeout, context=tls_context(server))
    return _Smtp(server.host, server.effective_port, timeout=server.timeout)


def _quit_quietly(smtp: smtplib.SMTP, where: str) -> None:
    """Say goodbye and close; a server that does not answer QUIT changes
    nothing (whatever it accepted is sent, whatever it did not has raised)."""
    try:
        smtp.quit()
    except (smtplib.SMTPException, OSError) as exc:
        log.debug("notification server %s: QUIT not answered: %s", where, exc)
        smtp.close()


def _classified(where: str, what: str, recipients: dict[str, tuple[int, bytes]]) -> ConnectorError:
    codes = [code for code, _ in recipients.values()]
    detail = "; ".join(f"{rcpt}: {code} {_decode(text)}" for rcpt, (code, text) in sorted(recipients.items()))
    error = TransientError if all(400 <= c < 500 for c in codes) else ConnectorError
    return error(f"notification server {where} {what}: {detail}")


def _answer(exc: smtplib.SMTPResponseException) -> str:
    return f"{exc.smtp_code} {_decode(exc.smtp_error)}"


def _decode(value: bytes | str) -> str:
    text = value.decode("utf-8", "replace") if isinstance(value, bytes) else value
    return " ".join(text.split())


def addresses(values: Sequence[str]) -> tuple[str, ...]:
    """Addresses from options that may each hold several, comma-separated."""
    return tuple(a.strip() for v in values for a in v.split(",") if a.strip())
