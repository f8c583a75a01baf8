"""A real SMTP server for tests: aiosmtpd on 127.0.0.1, a free port.

It speaks plain SMTP, STARTTLS or implicit TLS with a certificate from
:mod:`tests.servers.tls`, can require a login, and keeps every message it
received (envelope and parsed message) for the tests to read. It can also
end the connection right after answering DATA (*after_data*), the way a
server that crashes or restarts at that moment looks to its client.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import socket
import ssl
import struct
import threading
import time
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

AFTER_DATA = ("stay", "close", "reset", "421")
"""What the server does once it has answered DATA: go on as usual; close
the connection; reset it (TCP RST); or answer every later command with
``421`` and close (a server shutting down)."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Received:
    """One message as the server got it."""

    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage

    @property
    def subject(self) -> str:
        return str(self.message["Subject"])

    def body(self, subtype: str = "plain") -> str:
        part = self.message.get_body(preferencelist=(subtype,))
        assert part is not None, f"no text/{subtype} part"
        content: str = part.get_content()  # type: ignore[attr-defined]
        return content


@dataclass
class Handler:
    """Keeps every message accepted; tests may subclass it to answer otherwise."""

    messages: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        with self.lock:
            self.messages.append(Received(envelope.mail_from, list(envelope.rcpt_tos), parsed))
        return "250 Message accepted for delivery"


class _EndsAfterData(SMTP):
    """The SMTP protocol of a server that ends the conversation once DATA is answered."""

    def __init__(self, handler: Any, *, after_data: str, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self._after_data = after_data
        self._closing = False

    async def smtp_DATA(self, arg: str) -> None:
        await super().smtp_DATA(arg)  # the answer has been written and drained
        if self.transport is None:
            return
        if self._after_data == "close":
            self.transport.close()
        elif self._after_data == "reset":
            await asyncio.sleep(0.2)  # the client has read the answer: only the connection goes
            sock = self.transport.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.transport.abort()
        elif self._after_data == "421":
            self._closing = True

    async def _shut(self) -> bool:
        if not self._closing:
            return False
        await self.push("421 4.3.2 Service shutting down, closing transmission channel")
        if self.transport is not None:
            self.transport.close()
        return True

    async def smtp_NOOP(self, arg: str) -> None:
        if not await self._shut():
            await super().smtp_NOOP(arg)

    async def smtp_QUIT(self, arg: str) -> None:
        if not await self._shut():
            await super().smtp_QUIT(arg)

    async def smtp_RSET(self, arg: str) -> None:
        if not await self._shut():
            await super().smtp_RSET(arg)


class _Controller(Controller):
    def __init__(self, handler: Any, *, after_data: str, **kwargs: Any) -> None:
        self._after_data = after_data
        super().__init__(handler, **kwargs)

    def factory(self) -> SMTP:
        if self._after_data == "stay":
            return SMTP(self.handler, **self.SMTP_kwargs)
        return _EndsAfterData(self.handler, after_data=self._after_data, **self.SMTP_kwargs)


class SmtpServer:
    """An SMTP server running in a thread until :meth:`stop`.

    *tls*: ``none``, ``starttls`` or ``implicit`` (then *cert* and *key* are
    needed); *login*: (user, password) the server requires; *handler*: what
    answers DATA (a :class:`Handler`); *after_data*: one of :data:`AFTER_DATA`.
    """

    def __init__(
        self,
        *,
        port: int | None = None,
        tls: str = "none",
        cert: Path | None = None,
        key: Path | None = None,
        login: tuple[str, str] | None = None,
        handler: Handler | None = None,
        after_data: str = "stay",
    ) -> None:
        assert after_data in AFTER_DATA, after_data
        self.host = "127.0.0.1"
        self.port = port or free_port()
        self.tls = tls
        self.handler = handler or Handler()
        self.logins: list[str] = []
        context = None
        if tls != "none":
            assert cert is not None and key is not None
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(str(cert), str(key))
        kwargs: dict[str, Any] = {}
        if tls == "starttls":
            kwargs.update(tls_context=context, require_starttls=True)
        elif tls == "implicit":
            kwargs.update(ssl_context=context)
        if login is not None:
            kwargs.update(authenticator=self._authenticator(login), auth_require_tls=tls != "none")
            if tls == "none":
                kwargs["auth_require_tls"] = False
        self._controller = _Controller(
            self.handler, hostname=self.host, port=self.port, after_data=after_data, **kwargs
        )

    def _authenticator(self, login: tuple[str, str]) -> Any:
        def check(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
            ok = isinstance(auth_data, LoginPassword) and (
                auth_data.login.decode(), auth_data.password.decode()
            ) == login
            if ok:
                self.logins.append(auth_data.login.decode())
            return AuthResult(success=ok, handled=False)

        return check

    def start(self) -> SmtpServer:
        self._controller.start()
        self._running = True
        return self

    def stop(self) -> None:
        """Stop listening (a stopped server is not started again: make a new one on its port)."""
        if getattr(self, "_running", False):
            self._controller.stop()
            self._running = False

    @property
    def messages(self) -> list[Received]:
        with self.handler.lock:
            return list(self.handler.messages)

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Received]:
        """The messages once at least *count* arrived (fails after *timeout*)."""
        deadline = time.monotonic() + timeout
        while len(self.messages) < count:
            assert time.monotonic() < deadline, f"expected {count} message(s), got {len(self.messages)}"
            time.sleep(0.05)
        return self.messages

    def __enter__(self) -> SmtpServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

