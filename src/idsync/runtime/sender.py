"""The sender loop: delivers the messages waiting in the outbox.

Each pass takes the due messages one by one with a claim only one sender can
win (:meth:`~idsync.store.outbox_repo.OutboxRepository.claim`, committed
before anything is sent), delivers the message, and records the outcome:
*sent*; back to *pending* after a wait that doubles from ``retry`` up to
``retry_max`` when the failure may pass (the server is down or busy); or
*failed*, when it will not pass by waiting (a refused certificate or login,
an address refused for good) or when the message's give-up time has come.
Failed messages stay until ``idsync outbox retry`` or ``purge``.

The loop runs in ``idsync scheduler`` (a thread) or alone (``idsync outbox
send``); any number of them may run at once, on any number of machines.

Delivery guarantee: **at least once**, and exactly once unless one of these
failures happens at the wrong moment:

- the connection breaks after the message was handed over but before the
  server's answer came back (for email, after the end of DATA; for a
  webhook, after the request was sent): nobody can tell whether it arrived,
  so it is sent again;
- the sender dies, or cannot reach the database, after the server accepted
  the message and before *sent* is recorded: its claim runs out (5 minutes)
  and another sender delivers the message again;
- a delivery takes longer than the claim: another sender takes the message
  over and may deliver it too. The first sender then records nothing (the
  outcome of a claim is only written while that claim holds), counts it as
  *lost* and logs it.

Whatever happens after an SMTP server answered DATA with 2xx (QUIT refused,
the connection closed or reset) the message is *sent*, never sent again.
Every message carries an id made of its outbox row and the installation
(:func:`~idsync.services.notifications.message_id`), the same at every
attempt and from every sender: the ``Message-ID`` header of an email, the
``X-Idsync-Delivery`` header of a webhook, so a receiver can drop a copy.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from idsync import settings
from idsync.errors import IdsyncError, TransientError
from idsync.services import notifications
from idsync.services.workspace import Workspace
from idsync.store.leases import default_node
from idsync.store.outbox_repo import OutboxRepository, OutboxRow
from idsync.store.retry import Backoff
from idsync.store.tables import utcnow

log = logging.getLogger(__name__)

DEFAULT_LEASE = timedelta(minutes=5)
"""How long a sender holds a message it is delivering; another sender takes
it over after that (the first one died)."""

Deliver = Callable[[Workspace, OutboxRow, dict[str, str]], str]
"""Delivers one message (its unsealed contents); the server's answer, or raises."""


@dataclass
class PassReport:
    """What one pass of the sender did."""

    sent: int = 0
    retried: int = 0
    failed: int = 0
    lost: int = 0
    """Messages whose claim ran out while this sender delivered them: another
    sender took them over, and their outcome is that sender's to record."""
    lines: list[str] = field(default_factory=list)

    @property
    def handled(self) -> int:
        return self.sent + self.retried + self.failed + self.lost


def deliver(ws: Workspace, row: OutboxRow, content: dict[str, str]) -> str:
    """Deliver one message by its channel."""
    if row.channel == notifications.EMAIL:
        return notifications.deliver_email(ws, row, content)
    if row.channel == notifications.WEBHOOK:
        return notifications.deliver_webhook(ws, row, content)
    raise IdsyncError(f"outbox message {row.id}: unknown channel {row.channel!r}")


class Sender:
    """Delivers due outbox messages; safe to run in several processes at once."""

    def __init__(
        self,
        ws: Workspace,
        *,
        node: str | None = None,
        policy: notifications.OutboxPolicy | None = None,
        lease: timedelta = DEFAULT_LEASE,
        clock: Callable[[], datetime] = utcnow,
        deliver_one: Deliver = deliver,
        say: Callable[[str], None] | None = None,
        log_outcomes: bool = True,
    ) -> None:
        self.ws = ws
        self.say = say
        """Where each delivery and each failed attempt is reported, one line each (besides the log)."""
        self.log_outcomes = log_outcomes
        """Whether failed attempts also go to the log; off where the caller shows
        the pass's report lines itself (a command delivering its own run's
        messages), so each failure is told once."""
        self.node = node or default_node()
        self.policy = policy or notifications.OutboxPolicy.from_settings()
        self.lease = lease
        self.clock = clock
        self.deliver_one = deliver_one

    def send_due(self, *, limit: int = 50, run_ids: Sequence[int] = ()) -> PassReport:
        """One pass: deliver the messages due now (at most *limit*; only those
        of *run_ids* when given)."""
        report = PassReport()
        with self.ws.db.session() as session:
            ids = OutboxRepository(session, clock=self.clock).due(limit, run_ids=run_ids)
        for message_id in ids:
            with self.ws.db.session() as session:
                row = OutboxRepository(session, clock=self.clock).claim(message_id, self.node, self.lease)
            if row is not None:
                self._deliver(row, report)
        return report

    def _deliver(self, row: OutboxRow, report: PassReport) -> None:
        label = f"message {row.id} ({row.trigger}, run {row.run_id}) to {row.recipient}"
        try:
            content = self.ws.secrets.decrypt(row.payload)
            answer = self.deliver_one(self.ws, row, content)
        except IdsyncError as exc:
            self._failed_attempt(row, label, exc, report)
            return
        except Exception as exc:  # an unexpected failure must not stop the loop
            log.exception("outbox %s", label)
            self._failed_attempt(row, label, IdsyncError(f"{type(exc).__name__}: {exc}"), report)
            return
        with self.ws.db.session() as session:
            held = OutboxRepository(session, clock=self.clock).mark_sent(row.id, self.node, attempt=row.attempts)
        if not held:
            self._lost(label, f"delivered ({answer})", report)
            return
        report.sent += 1
        report.lines.append(f"{label}: {answer}")
        log.info("outbox %s: %s", label, answer)
        self._tell(f"notification {label}: sent: {answer}")

    def _failed_attempt(self, row: OutboxRow, label: str, exc: IdsyncError, report: PassReport) -> None:
        now = self.clock()
        next_at = now + self.policy.next_wait(row.attempts)
        retry = isinstance(exc, TransientError) and next_at <= row.expires_at
        why = exc.message if not isinstance(exc, TransientError) or retry else f"gave up: {exc.message}"
        with self.ws.db.session() as session:
            repo = OutboxRepository(session, clock=self.clock)
            if retry:
                held = repo.mark_retry(row.id, self.node, why, next_at, attempt=row.attempts)
            else:
                held = repo.mark_failed(row.id, self.node, why, attempt=row.attempts)
        if not held:
            self._lost(label, f"attempt failed ({why})", report)
        elif retry:
            report.retried += 1
            report.lines.append(f"{label}: {why}; next attempt at {next_at:%Y-%m-%d %H:%M:%S} UTC")
            if self.log_outcomes:
                log.warning("outbox %s: %s; trying again at %s", label, why, next_at)
            self._tell(f"notification {label}: not delivered: {why}; next attempt at {next_at:%Y-%m-%d %H:%M:%S} UTC")
        else:
            report.failed += 1
            report.lines.append(f"{label}: failed: {why}")
            if self.log_outcomes:
                log.error("outbox %s failed: %s", label, why)
            self._tell(f"notification {label}: failed: {why}")

    def _lost(self, label: str, what: str, report: PassReport) -> None:
        """This sender's claim ran out during the attempt and another sender
        took it over: the outcome is that sender's to record, not this one's."""
        line = (
            f"{label}: {what}, but its claim ran out and another sender took it over; "
            "the outcome is left to that sender"
        )
        report.lost += 1
        report.lines.append(line)
        log.warning("outbox %s", line)
        self._tell(f"notification {line}")

    def _tell(self, line: str) -> None:
        if self.say is not None:
            self.say(line)

    def run(self, stop: threading.Event, *, poll: float | None = None) -> None:
        """Deliver until *stop* is set, looking for due messages every *poll* seconds."""
        wait = poll if poll is not None else float(settings.get_int("outbox_poll_seconds"))
        backoff = Backoff()
        while not stop.is_set():
            try:
                report = self.send_due()
            except TransientError as exc:  # the database is away for a moment: one line, a growing wait
                pause = backoff.next()
                log.warning("outbox sender: %s; trying again in %gs", exc.message, pause)
                self._tell(f"notification sender: {exc.message}; trying again in {pause:g}s")
                stop.wait(pause)
                continue
            except IdsyncError as exc:
                log.warning("outbox sender pass failed: %s", exc.message)
                self._tell(f"notification sender: pass failed: {exc.message}")
                report = PassReport()
            except Exception:  # unexpected: keep the traceback, but the loop goes on
                log.exception("outbox sender pass failed")
                report = PassReport()
            else:
                backoff.reset()
            if report.handled == 0:
                stop.wait(wait)


def start_thread(
    ws: Workspace, stop: threading.Event, *, poll: float | None = None, say: Callable[[str], None] | None = None
) -> threading.Thread:
    """Run a :class:`Sender` in a daemon thread until *stop* is set, telling
    *say* of each delivery and each failed attempt (told there, a failure
    is not logged as well: a node's log would show it twice)."""
    sender = Sender(ws, say=say, log_outcomes=say is None)
    thread = threading.Thread(target=sender.run, args=(stop,), kwargs={"poll": poll}, name="idsync-outbox", daemon=True)
    thread.start()
    return thread
