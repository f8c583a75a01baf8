"""What the outbox promises about delivery, against a real SMTP server (aiosmtpd).

Once the server has answered DATA with 2xx the message is sent: a server
that then closes, resets or refuses the rest of the conversation does not
get it again. A sender whose claim ran out while it delivered (another
sender took the message over) records nothing for it: neither a success
of its own nor a retry. Every message carries a Message-ID made of its
outbox row and the installation, the same at every attempt, so a receiver
can drop the second copy of a message delivered twice.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from idsync.runtime.sender import PassReport, Sender
from idsync.services import collection_runs, notifications
from idsync.store.outbox_repo import PENDING, SENT, OutboxRepository, OutboxRow
from idsync.store.tables import utcnow
from tests.scheduler_world import SUFFIX, World, make_world
from tests.servers.smtp import Handler, SmtpServer

LONG_AGO = timedelta(minutes=10)
"""Further than a sender's lease (5 minutes): a claim made that long ago has run out."""




def one_message(world: World, port: int) -> OutboxRow:
    """A collection run leaving one message (trigger always, one recipient) for 127.0.0.1:*port*."""
    world.define("store", {
        "name": "dir", "kind": "local", "path": str(world.root / "dir.db"), "suffix": SUFFIX,
        "notification_server": {"host": "127.0.0.1", "port": port, "tls": "none", "sender": "idsync@example.org",
                                "timeout": 5},
    })
    world.collection("nightly", ["people"], notifications={
        "enabled": True, "recipients": ["ops@example.org"], "triggers": ["always"],
    })
    run_id = collection_runs.run_collection(world.ws, "nightly").run.id
    [row] = rows(world)
    assert row.run_id == run_id and row.state == PENDING
    return row


def rows(world: World) -> list[OutboxRow]:
    with world.ws.db.session() as session:
        return sorted(OutboxRepository(session).list(), key=lambda r: r.id)


def later(delta: timedelta) -> datetime:
    return utcnow() + delta


@dataclass
class Scripted(Handler):
    """Answers DATA with the given answers in turn (then 250), holding those
    whose hold is set until the test releases them; every message offered
    is kept in *offered*, accepted or not."""

    answers: list[str] = field(default_factory=list)
    holds: list[bool] = field(default_factory=list)
    offered: list[Any] = field(default_factory=list)
    arrived: list[threading.Event] = field(default_factory=lambda: [threading.Event() for _ in range(4)])
    released: list[threading.Event] = field(default_factory=lambda: [threading.Event() for _ in range(4)])

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        index = len(self.offered)
        self.offered.append(envelope.content)
        self.arrived[index].set()
        if index < len(self.holds) and self.holds[index]:
            await asyncio.get_running_loop().run_in_executor(None, self.released[index].wait, 30)
        if index < len(self.answers):
            return self.answers[index]
        return await super().handle_DATA(server, session, envelope)

    def wait_arrived(self, index: int) -> None:
        assert self.arrived[index].wait(30), f"message {index + 1} never reached the server"


def message_ids(offered: list[Any]) -> list[str]:
    import email

    return [str(email.message_from_bytes(content)["Message-ID"]) for content in offered]


# ---------------------------------------------------------------- accepted is sent


@pytest.mark.parametrize("after_data", ["close", "reset", "421"])
def test_a_message_the_server_accepted_is_sent_once_whatever_the_connection_does_next(
    world: World, after_data: str
) -> None:
    with SmtpServer(after_data=after_data) as server:
        row = one_message(world, server.port)
        first = Sender(world.ws, node="a").send_due()
        assert (first.sent, first.retried, first.failed) == (1, 0, 0), first.lines
        # Nothing is due again, now or much later.
        assert Sender(world.ws, node="a", clock=lambda: later(timedelta(days=1))).send_due().handled == 0
        [received] = server.wait_for(1)
    assert len(server.messages) == 1
    [sent] = rows(world)
    assert (sent.id, sent.state, sent.attempts, sent.last_error) == (row.id, SENT, 1, None)
    assert received.message["Message-ID"] == notifications.message_id(world.ws, sent)


def test_a_retried_message_keeps_its_message_id(world: World) -> None:
    handler = Scripted(answers=["451 4.3.0 Try again later"])
    with SmtpServer(handler=handler) as server:
        row = one_message(world, server.port)
        assert Sender(world.ws, node="a").send_due().retried == 1
        assert Sender(world.ws, node="b", clock=lambda: later(timedelta(hours=1))).send_due().sent == 1
        server.wait_for(1)
    first, second = message_ids(handler.offered)
    assert first == second == notifications.message_id(world.ws, row)
    # Made of the row and the installation: the row's id is in it, the key is not.
    assert f"outbox.{row.id}." in first and first.startswith("<") and first.endswith(".idsync>")


def test_another_installation_gives_its_message_of_the_same_row_id_another_message_id(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two installations (two databases, two secret keys) each with message 1:
    a receiver of both must not take one for a copy of the other."""
    seen = []
    for name in ("first", "second"):
        monkeypatch.setenv("IDSYNC_HOME", str(tmp_path / name / "home"))
        (tmp_path / name).mkdir()
        made = make_world(tmp_path / name)
        try:
            with SmtpServer() as server:
                row = one_message(made, server.port)
                assert Sender(made.ws).send_due().sent == 1
                [received] = server.wait_for(1)
        finally:
            made.ws.close()
        seen.append((row.id, str(received.message["Message-ID"])))
    (first_id, first), (second_id, second) = seen
    assert first_id == second_id
    assert first != second


# ---------------------------------------------------------------- a claim lost while delivering


def deliver_in_thread(sender: Sender) -> tuple[threading.Thread, list[PassReport]]:
    out: list[PassReport] = []
    thread = threading.Thread(target=lambda: out.append(sender.send_due()))
    thread.start()
    return thread, out


def test_a_sender_that_lost_its_claim_does_not_count_the_delivery_as_its_own(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    handler = Scripted(holds=[True])
    with SmtpServer(handler=handler) as server:
        row = one_message(world, server.port)
        slow, out = deliver_in_thread(Sender(world.ws, node="slow"))
        handler.wait_arrived(0)  # "slow" is in the middle of DATA, its claim about to run out
        # Ten minutes later by its clock, another sender finds the claim expired and takes over.
        other = Sender(world.ws, node="other", clock=lambda: later(LONG_AGO)).send_due()
        assert (other.sent, other.retried, other.failed) == (1, 0, 0)
        with caplog.at_level(logging.WARNING, logger="idsync.runtime.sender"):
            handler.released[0].set()
            slow.join(30)
        server.wait_for(2)
    [report] = out
    assert (report.sent, report.retried, report.failed) == (0, 0, 0)
    assert report.lost == 1
    assert "another sender took it over" in report.lines[0]
    assert any("another sender took it over" in r.getMessage() for r in caplog.records)
    [sent] = rows(world)
    assert (sent.state, sent.attempts) == (SENT, 2)
    # Delivered twice (the claim ran out mid-delivery), with one Message-ID: the receiver can tell.
    assert message_ids(handler.offered) == [notifications.message_id(world.ws, row)] * 2


def test_a_sender_that_lost_its_claim_does_not_put_the_message_back(world: World) -> None:
    handler = Scripted(holds=[True], answers=["451 4.3.0 Try again later"])
    with SmtpServer(handler=handler) as server:
        one_message(world, server.port)
        slow, out = deliver_in_thread(Sender(world.ws, node="slow"))
        handler.wait_arrived(0)
        assert Sender(world.ws, node="other", clock=lambda: later(LONG_AGO)).send_due().sent == 1
        handler.released[0].set()
        slow.join(30)
        server.wait_for(1)
    [report] = out
    assert (report.sent, report.retried, report.failed) == (0, 0, 0)
    assert report.lost == 1
    assert [(m.state, m.last_error) for m in rows(world)] == [(SENT, None)]


def test_two_claims_under_one_node_name_are_told_apart(world: World) -> None:
    """The claim is fenced by its attempt, not only by the node's name: a
    sender whose claim was taken over by one of the same name (two senders
    given one ``--node``) cannot undo the newer claim."""
    handler = Scripted(holds=[True, True], answers=["451 4.3.0 Try again later"])
    with SmtpServer(handler=handler) as server:
        one_message(world, server.port)
        old, old_out = deliver_in_thread(Sender(world.ws, node="same"))
        handler.wait_arrived(0)
        new, new_out = deliver_in_thread(Sender(world.ws, node="same", clock=lambda: later(LONG_AGO)))
        handler.wait_arrived(1)
        handler.released[0].set()  # the old claim's attempt fails (451) while the new one delivers
        old.join(30)
        assert [m.state for m in rows(world)] == ["sending"]  # still the new claim's
        handler.released[1].set()
        new.join(30)
        server.wait_for(1)
    [old_report], [new_report] = old_out, new_out
    assert [m.state for m in rows(world)] == [SENT]
    assert (old_report.retried, new_report.sent) == (0, 1)
    assert (old_report.lost, new_report.lost) == (1, 0)
    assert Sender(world.ws, clock=lambda: later(timedelta(days=1))).send_due().handled == 0
