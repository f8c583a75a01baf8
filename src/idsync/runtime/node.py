"""A node: the parts one process runs, put together and stopped cleanly.

``idsync scheduler`` is a node with a scheduler, a thread executor and an
outbox sender; ``idsync outbox send`` is a node with a sender alone; a
future ``serve`` or worker process embeds the same parts. The front end only
says what it wants and how to report; starting, signals and an orderly
shutdown live here, once.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import FrameType
from typing import Any

from idsync import logcontext, settings
from idsync.domain.principals import Principal
from idsync.domain.results import RunState
from idsync.domain.roles import Role
from idsync.runtime.executor import ThreadExecutor
from idsync.runtime.scheduler import Scheduler, run_now
from idsync.runtime.sender import PassReport, Sender, start_thread
from idsync.services import authz, collection_runs
from idsync.services.collection_runs import DEFAULT_LEASE, CollectionReport, Runtime
from idsync.services.workspace import Workspace
from idsync.store.leases import default_node
from idsync.store.outbox_repo import FAILED, PENDING, SENDING, SENT, OutboxMessage, OutboxRepository
from idsync.store.runs_repo import LogLine, RunRepository
from idsync.store.tables import utcnow

Say = Callable[[str], None]
"""Where a node reports what it does, one line at a time."""


def log_line(message: str, level: str = "info", at: datetime | None = None) -> str:
    """One line of a node's log: ``2027-01-04 01:00:00 UTC info    message``.

    What a node says and what its modules log (warnings, failures) share this
    format, so a service's journal reads as one log: every line with its
    instant and zone, then its level, then the message. With
    ``IDSYNC_LOG_FORMAT=json`` it is a JSON object instead, like every log line."""
    if logcontext.json_logs():
        return logcontext.json_line(message, level, "idsync.node", at)
    moment = (at or datetime.now(UTC)).astimezone(UTC)
    return f"{moment:%Y-%m-%d %H:%M:%S} UTC {level.lower():<7} {message}"


class LineFormatter(logging.Formatter):
    """Log records in the format of :func:`log_line`."""

    def format(self, record: logging.LogRecord) -> str:
        text = log_line(record.getMessage(), record.levelname, datetime.fromtimestamp(record.created, UTC))
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return text


@contextmanager
def one_log_format() -> Iterator[None]:
    """While the block runs, the root logger's handlers write :func:`log_line`
    lines (JSON objects with ``IDSYNC_LOG_FORMAT=json``); their formatters come back afterwards."""
    handlers = logging.getLogger().handlers
    chosen: logging.Formatter = logcontext.JsonFormatter() if logcontext.json_logs() else LineFormatter()
    previous = [handler.formatter for handler in handlers]
    for handler in handlers:
        handler.setFormatter(chosen)
    try:
        yield
    finally:
        for handler, formatter in zip(handlers, previous, strict=True):
            handler.setFormatter(formatter)


def finished_line(row: Any) -> str:
    """A run's end, for a node's log: its state, counts and why it ended."""
    counts = row.counts.summary() or "no records"
    why = f"; {row.error}" if row.error else ""
    return f"run {row.id} of collection {row.collection_name!r} ended {row.state.value}: {counts}{why}"


@contextmanager
def stop_on_signals() -> Iterator[threading.Event]:
    """An event set by SIGTERM or SIGINT while the block runs; the previous
    handlers come back afterwards."""
    stop = threading.Event()

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def naming_node(say: Say, node: str) -> Say:
    """*say*, its lines naming *node* (in JSON logs), from whichever thread says them."""

    def said(message: str) -> None:
        with logcontext.bound(node=node):
            say(message)

    return said


@dataclass(frozen=True)
class SchedulerNode:
    """What a scheduler node does; the defaults are those of ``idsync scheduler``."""

    once: bool = False
    """Fire what is due, wait for those runs, then return."""
    tick: float = 30.0
    lease: timedelta = DEFAULT_LEASE
    node: str | None = None
    shutdown_timeout: float = 30.0
    outbox: bool = True
    """Deliver notifications from a thread of this node."""


def acting_node(ws: Workspace, name: str, action: str) -> Workspace:
    """*ws* acting as idsync itself (system principal *name*), once whoever
    starts the node has been checked to hold the operator role.

    A node starts runs on its own, for schedules and approvals, long after
    whoever started it has gone: what it does is idsync's doing, recorded as
    such, and never an approval (a system principal never approves).
    """
    authz.require(ws, Role.OPERATOR, action)
    return ws.acting_as(Principal.system(name))


def run_scheduler(ws: Workspace, options: SchedulerNode, stop: threading.Event, say: Say) -> None:
    """Run a scheduler node until *stop* is set (or, with ``once``, until the
    runs it started end). Whoever starts it needs the operator role; the node
    then acts as idsync's ``scheduler``.

    On the way out it stops ticking, asks the runs it executes to stop at
    their next batch, waits up to ``shutdown_timeout`` seconds, and marks what
    is still running *terminated*: it never leaves a run marked running.
    """
    ws = acting_node(ws, "scheduler", "run the scheduler")
    runtime = Runtime(node=options.node or default_node(), lease=options.lease)
    say = naming_node(say, runtime.node)

    def finished(row: Any) -> None:
        with logcontext.bound(run_id=row.id, collection=row.collection_name, node=runtime.node):
            say(finished_line(row))

    executor = ThreadExecutor(ws, runtime, on_finished=finished)
    engine = Scheduler(ws, executor, runtime, on_event=say)
    say(f"scheduler {runtime.node} started (tick {options.tick:g}s, lease {options.lease.total_seconds():g}s)")
    # Notifications go out from a thread of their own: a slow mail server never holds up a tick.
    sender_stop = threading.Event()
    sender = start_thread(ws, sender_stop, say=say) if options.outbox and not options.once else None
    try:
        if options.once:
            engine.start()
            while executor.active() and not stop.wait(0.1):
                pass
        else:
            engine.serve(stop, options.tick)
    finally:
        terminated = engine.shutdown(options.shutdown_timeout if stop.is_set() or not options.once else 0)
        for run_id in terminated:
            say(f"run {run_id} marked terminated")
        sender_stop.set()
        if sender is not None:
            sender.join(timeout=30)
        say(f"scheduler {runtime.node} stopped")


def run_sender(ws: Workspace, stop: threading.Event, say: Say, *, poll: float | None = None) -> None:
    """Deliver outbox messages until *stop* is set (whoever starts it needs the operator role)."""
    sender = Sender(acting_node(ws, "outbox sender", "run the outbox sender"))
    say(f"outbox sender {sender.node} started")
    try:
        sender.run(stop, poll=poll)
    finally:
        say(f"outbox sender {sender.node} stopped")


def send_due(ws: Workspace) -> PassReport:
    """One pass of the sender: deliver what is due now."""
    return Sender(ws).send_due()


def deliver_run(
    ws: Workspace,
    run_id: int,
    *,
    wait: float | None = None,
    clock: Callable[[], datetime] = utcnow,
    sleep: Callable[[float], None] = time.sleep,
) -> RunDelivery:
    """Deliver the notifications of finished run *run_id* (and the password
    messages of its job runs) now, from this process, waiting at most *wait*
    seconds (setting notify_send_wait_seconds) for a server that answered
    "try later"; what was sent, failed or left pending, and why.

    A message still pending at the end stays in the outbox: a scheduler or
    an outbox sender delivers it later.
    """
    budget = float(settings.get_int("notify_send_wait_seconds")) if wait is None else wait
    deadline = clock() + timedelta(seconds=max(budget, 0.0))
    with ws.db.session() as session:
        ids = [run_id] + [child.id for child in RunRepository(session).children(run_id)]
    sender = Sender(ws, clock=clock, log_outcomes=False)  # the caller shows the report's lines
    result = RunDelivery()
    while True:
        report = sender.send_due(run_ids=ids)
        result.lines.extend(report.lines)
        with ws.db.session() as session:
            messages = OutboxRepository(session, clock=clock).of_runs(ids)
        waiting = [m for m in messages if m.state in (PENDING, SENDING)]
        if not waiting:
            break
        soonest = min(m.next_attempt_at for m in waiting)
        now = clock()
        if soonest > deadline or now >= deadline:
            break
        if report.handled == 0:
            sleep(min(max((soonest - now).total_seconds(), 0.2), max((deadline - now).total_seconds(), 0.05)))
    result.messages = messages
    if not messages:
        with ws.db.session() as session:
            result.reason = _not_queued_reason(RunRepository(session).logs(run_id))
    return result


def _not_queued_reason(lines: list[LogLine]) -> str:
    for line in reversed(lines):
        if line.message.startswith("notifications not queued: "):
            return line.message.removeprefix("notifications not queued: ")
    return "no notification was due for this run (notifications off, or no trigger fired)"


@dataclass
class RunDelivery:
    """The notifications of one run after :func:`deliver_run`."""

    messages: list[OutboxMessage] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)
    reason: str | None = None
    """Why there was nothing to send (None when there was)."""

    def count(self, state: str) -> int:
        return sum(1 for m in self.messages if m.state == state)

    @property
    def sent(self) -> int:
        return self.count(SENT)

    @property
    def failed(self) -> int:
        return self.count(FAILED)

    @property
    def pending(self) -> int:
        return self.count(PENDING) + self.count(SENDING)

    def summary(self) -> str:
        """One line: how many were sent, failed or left pending, and why."""
        if not self.messages:
            return f"notifications: none sent: {self.reason}"
        parts = [f"{self.sent} sent"]
        if self.failed:
            why = "; ".join(dict.fromkeys(m.last_error or "unknown error" for m in self.messages if m.state == FAILED))
            parts.append(f"{self.failed} failed ({why})")
        if self.pending:
            why = "; ".join(
                dict.fromkeys(m.last_error or "not tried yet" for m in self.messages if m.state in (PENDING, SENDING))
            )
            parts.append(f"{self.pending} left pending ({why}): a scheduler or an outbox sender delivers them later")
        return "notifications: " + ", ".join(parts)


def run_schedule_now(ws: Workspace, name: str) -> list[CollectionReport]:
    """Start every collection of schedule *name* now, in this process, wait for
    them (queued ones too), and report each."""
    runtime = Runtime()
    executor = ThreadExecutor(ws, runtime)
    started = run_now(ws, name, executor, runtime)
    executor.wait()
    for item in started:
        if item.state is RunState.QUEUED:
            collection_runs.wait_for(ws, item.run_id, runtime)
    return [collection_runs.report(ws, item.run_id) for item in started]
