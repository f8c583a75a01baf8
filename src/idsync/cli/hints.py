"""The command a terminal user types for the hints of the layers below.

Below the front ends an error's hint says the next step in words ("list the
jobs"), since the same error reaches the API and the portal too. Here a
known hint gets the command that does it, shown after the words; any other
hint is shown as it is. The keys are the hints' exact words (a unit test
checks that each is still raised somewhere).
"""

from __future__ import annotations

LISTED = ("store", "source", "job", "schedule", "collection", "plan", "run")
"""The kinds whose NotFoundError hints "list the <kind>s"."""

COMMANDS: dict[str, str] = {
    "upgrade the database schema": "idsync db upgrade",
    "list the outbox messages": "idsync outbox list",
    "take the schedule off those collections first": "idsync collection edit COLLECTION --no-schedule",
    "give the schedule to a collection first": "idsync collection edit COLLECTION --schedule SCHEDULE",
    "set webhook_secret on the store's notification server, then send the failed messages again": (
        "idsync outbox retry"
    ),
    "add notification_server (host, sender) to the store first, then send a test message through it": (
        "idsync store notify-test STORE"
    ),
    "give a recipient, or set default_to on the notification server": "--to ADDRESS",
    "choose another folder": "idsync demo --workspace FOLDER",
    "or run the runs in the scheduler's own process": "--workers=in-process",
    "create that entry, or correct the job's destination": "idsync directory add-container STORE DN",
    **{f"list the {kind}s": f"idsync {kind} list" for kind in LISTED},
}


def render(hint: str | None) -> str | None:
    """The hint line's text: the words, and the command when one is known."""
    if not hint:
        return None
    command = COMMANDS.get(hint)
    return f"{hint} (`{command}`)" if command else hint
