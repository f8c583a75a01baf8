"""``idsync outbox``: the notifications waiting for delivery, and their sender.

``send`` runs the sender loop in the foreground (``idsync scheduler`` runs
it in a thread already); ``list`` shows the messages and why they have not
gone yet; ``retry`` puts failed messages back; ``purge`` deletes finished
ones. Message contents are never shown: they may hold generated passwords.
"""

from __future__ import annotations

from datetime import timedelta

import typer

from idsync.cli.common import confirm, workspace
from idsync.cli.output import (
    FormatOption,
    JsonOption,
    console,
    err_console,
    print_json,
    state_text,
    table,
    when,
)
from idsync.errors import ConfigError
from idsync.services import outbox

app = typer.Typer(help="Notifications waiting for delivery, and their sender.", no_args_is_help=True)


def _states(given: list[str]) -> list[str]:
    """The --state options, each a known state: a usage error (exit 2) otherwise."""
    try:
        return outbox.check_states(given)
    except ConfigError as exc:
        raise typer.BadParameter(exc.message, param_hint="--state") from exc


@app.command("list")
def list_(
    state: list[str] = typer.Option([], "--state", help="Only messages in this state (repeat): pending, sending, sent, failed."),
    run_id: int | None = typer.Option(None, "--run", help="Only the messages of this run."),
    limit: int = typer.Option(100, "--limit", min=1, help="Newest messages shown."),
    fmt: str = FormatOption,
    json: bool = JsonOption,
) -> None:
    """List outbox messages, newest first, with their last error."""
    rows = outbox.list_messages(workspace(), states=_states(state), run_id=run_id, limit=limit)
    if json:
        print_json(rows)
        return
    table(None, ["id", "run", "collection", "trigger", "channel", "to", "state", "attempts", "next / sent", "last error"], [
        (
            row.id, row.run_id, row.collection_name, row.trigger, row.channel, row.recipient, state_text(row.state), row.attempts,
            when(row.sent_at or row.next_attempt_at), row.last_error or "",
        )
        for row in rows
    ], fmt=fmt)


@app.command("retry")
def retry(
    ids: list[int] = typer.Argument(None, help="Failed messages to send again (default: every failed message)."),
    json: bool = JsonOption,
) -> None:
    """Send failed messages again: due now, with a new give-up time."""
    count = outbox.retry(workspace(), ids or ())
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
    states = _states(state) or list(outbox.FINISHED)
    confirm(f"Delete the {' and '.join(states)} messages of the outbox?", yes)
    older = timedelta(days=older_than_days) if older_than_days is not None else None
    count = outbox.purge(workspace(), states=states, older_than=older)
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
    senders may run at once, on one database.

    Delivery is at least once. A message goes out a second time only when no
    one can tell whether it arrived: the connection broke after the message
    was handed over but before the server answered; or a sender died, or lost
    the database, after the server accepted it; or a delivery took longer
    than the sender's 5-minute claim on it. Once an SMTP server has answered
    DATA with 2xx the message is sent, whatever happens to the connection
    after. Every attempt at one message carries the same id (the Message-ID
    header of an email, X-Idsync-Delivery of a webhook), made of its outbox
    row and this installation, so a receiver can drop a copy."""
    from idsync.runtime.node import log_line, run_sender, send_due, stop_on_signals

    ws = workspace()
    try:
        if once:
            report = send_due(ws)
            if json:
                print_json({"sent": report.sent, "retried": report.retried, "failed": report.failed, "lines": report.lines})
            else:
                for line in report.lines:
                    console.print(line, markup=False, soft_wrap=True)
                console.print(f"{report.sent} sent, {report.retried} to retry, {report.failed} failed")
            return

        def say(message: str) -> None:
            err_console.print(log_line(message), markup=False, soft_wrap=True)

        with stop_on_signals() as stop:
            run_sender(ws, stop, say, poll=poll)
    finally:
        ws.close()
