"""``idsync outbox``: the notifications waiting for delivery, and their sender.

``send`` runs the sender loop in the foreground (``idsync scheduler`` runs
it in a thread already); ``list`` shows the messages and why they have not
gone yet; ``retry`` puts failed messages back; ``purge`` deletes finished
ones. Message contents are never shown: they may hold generated passwords.
"""

from __future__ import annotations

import signal
import threading
from dataclasses import asdict
from datetime import timedelta
from types import FrameType
from typing import Any

import typer

from idsync.cli.common import confirm, workspace
from idsync.cli.output import JsonOption, console, err_console, print_json, table
from idsync.runtime.sender import Sender
from idsync.services.notifications import OutboxPolicy
from idsync.store.outbox_repo import FAILED, SENT, STATES, OutboxRepository, OutboxRow
from idsync.store.tables import utcnow

app = typer.Typer(help="Notifications waiting for delivery, and their sender.", no_args_is_help=True)


def _public(row: OutboxRow) -> dict[str, Any]:
    data = asdict(row)
    data.pop("payload")
    return data


def _check_states(states: list[str]) -> None:
    for state in states:
        if state not in STATES:
            raise typer.BadParameter(f"unknown state {state!r}: choose from {', '.join(STATES)}")


@app.command("list")
def list_(
    state: list[str] = typer.Option([], "--state", help="Only messages in this state (repeat): pending, sending, sent, failed."),
    run_id: int | None = typer.Option(None, "--run", help="Only the messages of this run."),
    limit: int = typer.Option(100, "--limit", min=1, help="Newest messages shown."),
    json: bool = JsonOption,
) -> None:
    """List outbox messages, newest first, with their last error."""
    _check_states(state)
    ws = workspace()
    with ws.db.session() as session:
        rows = OutboxRepository(session).list(states=state, run_id=run_id, limit=limit)
    if json:
        print_json([_public(row) for row in rows])
        return
    table(None, ["id", "run", "collection", "trigger", "channel", "to", "state", "attempts", "next / sent", "last error"], [
        (
            row.id, row.run_id, row.collection_name, row.trigger, row.channel, row.recipient, row.state, row.attempts,
            f"{(row.sent_at or row.next_attempt_at):%Y-%m-%d %H:%M:%S}", row.last_error or "",
        )
        for row in rows
    ])


@app.command("retry")
def retry(
    ids: list[int] = typer.Argument(None, help="Failed messages to send again (default: every failed message)."),
    json: bool = JsonOption,
) -> None:
    """Send failed messages again: due now, with a new give-up time."""
    ws = workspace()
    with ws.db.session() as session:
        count = OutboxRepository(session).retry(ids or (), give_up_after=OutboxPolicy.from_settings().give_up)
    if json:
        print_json({"retried": count})
    else:
        console.print(f"{count} failed message(s) put back in the outbox")


@app.command("purge")
def purge(
    state: list[str] = typer.Option([], "--state", help="States to delete (repeat); default: sent and failed."),
    older_than_days: float | None = typer.Option(None, "--older-than-days", min=0, help="Only messages older than this."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
    json: bool = JsonOption,
) -> None:
    """Delete finished messages (sent and failed by default)."""
    states = state or [SENT, FAILED]
    _check_states(states)
    confirm(f"Delete the {' and '.join(states)} messages of the outbox?", yes)
    ws = workspace()
    older = timedelta(days=older_than_days) if older_than_days is not None else None
    with ws.db.session() as session:
        count = OutboxRepository(session).purge(states=states, older_than=older)
    if json:
        print_json({"purged": count})
    else:
        console.print(f"{count} message(s) deleted")


@app.command("send")
def send(
    once: bool = typer.Option(False, "--once", help="Deliver what is due now, then exit."),
    poll: float | None = typer.Option(None, "--poll", min=0.05, help="Seconds between two looks (default: setting outbox_poll_seconds)."),
    json: bool = JsonOption,
) -> None:
    """Deliver outbox messages: once, or until SIGTERM or Ctrl-C. Any number of
    senders may run at once; none sends a message twice."""
    ws = workspace()
    sender = Sender(ws)
    try:
        if once:
            report = sender.send_due()
            if json:
                print_json({"sent": report.sent, "retried": report.retried, "failed": report.failed, "lines": report.lines})
            else:
                for line in report.lines:
                    console.print(line, markup=False, soft_wrap=True)
                console.print(f"{report.sent} sent, {report.retried} to retry, {report.failed} failed")
            return
        stop = threading.Event()

        def on_signal(signum: int, _frame: FrameType | None) -> None:
            stop.set()

        previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
        err_console.print(f"{utcnow():%Y-%m-%d %H:%M:%S} outbox sender {sender.node} started", markup=False)
        try:
            sender.run(stop, poll=poll)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            err_console.print(f"{utcnow():%Y-%m-%d %H:%M:%S} outbox sender {sender.node} stopped", markup=False)
    finally:
        ws.close()
