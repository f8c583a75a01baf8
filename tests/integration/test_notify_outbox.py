"""Notifications of collection runs, end to end: a real run on the embedded
directory, the outbox in SQLite, and a real SMTP server (aiosmtpd).

The run writes its messages to the outbox in the transaction that finishes
it; the sender delivers them. A mail server that is down never touches the
run; its messages wait and go out once it is back, and two senders never
send one message twice.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from idsync.domain import collections as model
from idsync.domain.results import RunState
from idsync.errors import ConfigError, TransientError
from idsync.runtime.sender import Sender
from idsync.services import collection_runs, collections, definitions, jobs, notifications
from idsync.store.job_state_repo import JobStateRepository
from idsync.store.outbox_repo import FAILED, PENDING, SENT, OutboxRepository, OutboxRow
from idsync.store.runs_repo import RunRepository
from idsync.store.tables import utcnow
from tests.scheduler_world import PEOPLE, SUFFIX, World, make_world
from tests.servers.smtp import SmtpServer, free_port

RECIPIENTS = ["ops@example.org", "hr@example.org"]


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    monkeypatch.setenv("IDSYNC_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("IDSYNC_BASE_URL", "https://idsync.example.org/")
    made = make_world(tmp_path)
    yield made
    made.ws.close()


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    with SmtpServer() as server:
        yield server


def point_store(world: World, port: int, **extra: object) -> None:
    """The store ``dir`` sends through 127.0.0.1:*port* (plain SMTP)."""
    world.define("store", {
        "name": "dir", "kind": "local", "path": str(world.root / "dir.db"), "suffix": SUFFIX,
        "notification_server": {"host": "127.0.0.1", "port": port, "tls": "none", "sender": "idsync@example.org",
                                "timeout": 2, **extra},
    })


def notify(world: World, name: str, jobs: list[str], triggers: list[str]) -> None:
    world.collection(name, jobs, notifications={"enabled": True, "recipients": RECIPIENTS, "triggers": triggers})


def outbox(world: World, run_id: int | None = None) -> list[OutboxRow]:
    with world.ws.db.session() as session:
        return sorted(OutboxRepository(session).list(run_id=run_id), key=lambda r: r.id)


def later(seconds: float) -> datetime:
    return utcnow() + timedelta(seconds=seconds)


def test_one_message_per_recipient_and_run_naming_every_trigger_with_its_changes(
    world: World, smtp_server: SmtpServer
) -> None:
    point_store(world, smtp_server.port)
    world.csv_job("staff", ["7,Grace,Hopper", "8,Edsger,Dijkstra", "9,Barbara,Liskov"])
    notify(world, "nightly", ["staff"], ["always", "records_updated", "errors", "failed"])
    report = collection_runs.run_collection(world.ws, "nightly")
    assert report.run.state is RunState.SUCCEEDED
    queued = outbox(world, report.run.id)
    assert [(m.trigger, m.recipient, m.state) for m in queued] == [
        ("records_updated", "ops@example.org", PENDING), ("records_updated", "hr@example.org", PENDING),
    ]
    assert {m.store_name for m in queued} == {"dir"}
    assert smtp_server.messages == []  # nothing is sent by the run itself

    sent = Sender(world.ws, node="a").send_due()
    assert (sent.sent, sent.retried, sent.failed) == (2, 0, 0)
    received = smtp_server.wait_for(2)
    assert sorted((m.rcpt_tos[0], m.subject) for m in received) == sorted(
        (to, "[idsync] nightly: succeeded; 3 created") for to in RECIPIENTS
    )
    body = received[0].body()
    assert "Triggers:   records_updated, always" in body
    assert "What changed: 3 created." in body
    assert f"created uid=7,{PEOPLE} (job staff)" in body and "cn: Grace Hopper" in body
    assert f"See the whole run: idsync run show {report.run.id}" in body
    assert f"In the portal: https://idsync.example.org/runs/{report.run.id}" in body
    assert [m.state for m in outbox(world, report.run.id)] == [SENT] * 2
    assert Sender(world.ws, node="a").send_due().handled == 0  # nothing twice


def test_always_and_failed_send_each_recipient_one_message(world: World, smtp_server: SmtpServer) -> None:
    point_store(world, smtp_server.port)
    world.missing_source_job("broken")
    notify(world, "nightly", ["broken"], ["always", "failed", "recovered"])
    failed = collection_runs.run_collection(world.ws, "nightly")
    assert failed.run.state is RunState.FAILED
    assert [(m.trigger, m.recipient) for m in outbox(world, failed.run.id)] == [
        ("failed", "ops@example.org"), ("failed", "hr@example.org"),
    ]
    notify(world, "nightly", ["people"], ["always", "failed", "recovered"])
    good = collection_runs.run_collection(world.ws, "nightly")
    assert good.run.state is RunState.SUCCEEDED
    assert [m.trigger for m in outbox(world, good.run.id)] == ["recovered", "recovered"]
    Sender(world.ws).send_due()
    received = smtp_server.wait_for(4)
    assert sorted(m.rcpt_tos[0] for m in received) == sorted(RECIPIENTS * 2)
    subjects = sorted(m.subject for m in received)
    assert subjects[:2] == ["[idsync] nightly: failed; nothing changed"] * 2
    assert all(s.startswith("[idsync] nightly: recovered, succeeded") for s in subjects[2:]), subjects
    failed_body = next(m for m in received if "failed" in m.subject).body()
    assert "Triggers:   failed, always" in failed_body


def test_no_message_when_no_trigger_fires(world: World, smtp_server: SmtpServer) -> None:
    point_store(world, smtp_server.port)
    notify(world, "nightly", ["people"], ["failed", "errors"])
    report = collection_runs.run_collection(world.ws, "nightly")
    assert report.run.state is RunState.SUCCEEDED
    assert outbox(world) == []


def test_enqueueing_the_same_run_again_adds_nothing(world: World, smtp_server: SmtpServer) -> None:
    point_store(world, smtp_server.port)
    notify(world, "nightly", ["people"], ["always"])
    report = collection_runs.run_collection(world.ws, "nightly")
    with world.ws.db.session() as session:
        assert notifications.enqueue_run(world.ws, session, report.run.id) == 0
    assert len(outbox(world, report.run.id)) == 2


def test_a_dead_smtp_server_neither_fails_nor_delays_the_run(world: World) -> None:
    port = free_port()
    point_store(world, port)
    notify(world, "nightly", ["people"], ["always"])
    report = collection_runs.run_collection(world.ws, "nightly")
    assert report.run.state is RunState.SUCCEEDED and report.run.error is None
    # The run only queued its messages: nothing tried the server (and waited for it) yet.
    assert [(m.state, m.attempts) for m in outbox(world, report.run.id)] == [(PENDING, 0)] * 2

    first = Sender(world.ws, node="a").send_due()
    assert (first.sent, first.retried, first.failed) == (0, 2, 0)
    waiting = outbox(world, report.run.id)
    assert {m.state for m in waiting} == {PENDING}
    assert all("cannot be reached" in (m.last_error or "") and m.attempts == 1 for m in waiting)
    # Not due yet: the next attempt waits (exponential backoff).
    assert Sender(world.ws, node="a").send_due().handled == 0

    with SmtpServer(port=port) as server:
        back = Sender(world.ws, node="a", clock=lambda: later(3600)).send_due()
        assert back.sent == 2
        assert sorted(m.rcpt_tos[0] for m in server.wait_for(2)) == sorted(RECIPIENTS)
    assert {(m.state, m.attempts) for m in outbox(world, report.run.id)} == {(SENT, 2)}


def test_the_sender_gives_up_after_the_configured_time(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IDSYNC_OUTBOX_GIVE_UP_SECONDS", "60")
    point_store(world, free_port())
    notify(world, "nightly", ["people"], ["always"])
    report = collection_runs.run_collection(world.ws, "nightly")
    sender = Sender(world.ws, node="a", clock=lambda: later(120))
    assert sender.send_due().failed == 2
    gone = outbox(world, report.run.id)
    assert {m.state for m in gone} == {FAILED}
    assert all((m.last_error or "").startswith("gave up: notification server 127.0.0.1") for m in gone)
    with world.ws.db.session() as session:
        assert OutboxRepository(session).retry(give_up_after=timedelta(hours=1)) == 2
    assert {m.state for m in outbox(world, report.run.id)} == {PENDING}


def test_backoff_doubles_up_to_the_longest_wait() -> None:
    policy = notifications.OutboxPolicy(timedelta(seconds=30), timedelta(minutes=5), timedelta(days=1))
    waits = [policy.next_wait(n).total_seconds() for n in range(1, 7)]
    assert waits == [30, 60, 120, 240, 300, 300]


def test_two_senders_never_send_a_message_twice(world: World, smtp_server: SmtpServer) -> None:
    point_store(world, smtp_server.port)
    world.collection(
        "nightly", ["people"],
        notifications={"enabled": True, "recipients": [f"u{i}@example.org" for i in range(12)], "triggers": ["always"]},
    )
    report = collection_runs.run_collection(world.ws, "nightly")
    assert len(outbox(world, report.run.id)) == 12
    start = threading.Barrier(2)
    results: dict[str, int] = {}

    def send(node: str) -> None:
        start.wait()
        results[node] = Sender(world.ws, node=node).send_due().sent

    threads = [threading.Thread(target=send, args=(node,)) for node in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert results["a"] + results["b"] == 12
    received = smtp_server.wait_for(12)
    time.sleep(0.3)
    assert len(smtp_server.messages) == 12
    assert sorted(m.rcpt_tos[0] for m in received) == sorted(f"u{i}@example.org" for i in range(12))


def test_a_claimed_message_cannot_be_claimed_again_until_its_lease_ends(world: World, smtp_server: SmtpServer) -> None:
    point_store(world, smtp_server.port)
    notify(world, "nightly", ["people"], ["always"])
    run_id = collection_runs.run_collection(world.ws, "nightly").run.id
    first = outbox(world, run_id)[0].id
    with world.ws.db.session() as session:
        repo = OutboxRepository(session)
        claimed = repo.claim(first, "a", timedelta(minutes=5))
        assert claimed is not None
        assert repo.claim(first, "b", timedelta(minutes=5)) is None
        assert not repo.mark_sent(first, "b", attempt=claimed.attempts)  # only the holder records the outcome
    with world.ws.db.session() as session:
        late = OutboxRepository(session, clock=lambda: later(600))
        assert first in late.due()  # holder died: another sender takes over
        assert late.claim(first, "b", timedelta(minutes=5)) is not None


def test_a_refused_certificate_fails_the_message_at_once(world: World, tmp_path: Path) -> None:
    from tests.servers.tls import make_ca

    (tmp_path / "ca").mkdir()
    (tmp_path / "cert").mkdir()
    ca = make_ca(tmp_path / "ca")
    cert, key = ca.issue_server_certificate(tmp_path / "cert")
    with SmtpServer(tls="starttls", cert=cert, key=key) as server:
        world.define("store", {
            "name": "dir", "kind": "local", "path": str(world.root / "dir.db"), "suffix": SUFFIX,
            "notification_server": {"host": "localhost", "port": server.port, "sender": "idsync@example.org"},
        })
        notify(world, "nightly", ["people"], ["always"])
        run_id = collection_runs.run_collection(world.ws, "nightly").run.id
        assert Sender(world.ws).send_due().failed == 2
        assert all("certificate refused" in (m.last_error or "") for m in outbox(world, run_id))
        assert server.messages == []


def test_enabling_notifications_needs_a_notification_server(world: World) -> None:
    world.define("store", {"name": "dir", "kind": "local", "path": str(world.root / "dir.db"), "suffix": SUFFIX})
    c = model.CollectionDefinition.model_validate(
        {"name": "c", "jobs": ["people"], "notifications": {"enabled": True, "recipients": RECIPIENTS, "triggers": ["always"]}}
    )
    with pytest.raises(ConfigError, match=r"store 'dir' .* has no notification server$") as caught:
        collections.save_collection(world.ws, c)
    assert caught.value.hint and "add notification_server" in caught.value.hint
    collections.save_collection(world.ws, c.model_copy(update={"notifications": model.Notifications()}))


def test_a_notification_problem_is_logged_on_the_run_not_raised(
    world: World, smtp_server: SmtpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    point_store(world, smtp_server.port)
    notify(world, "nightly", ["people"], ["always"])
    (world.root / "templates").mkdir()
    (world.root / "templates" / "subject.txt").write_text("{{ broken", encoding="utf-8")
    monkeypatch.setenv("IDSYNC_NOTIFY_TEMPLATES", str(world.root / "templates"))
    report = collection_runs.run_collection(world.ws, "nightly")
    assert report.run.state is RunState.SUCCEEDED
    with world.ws.db.session() as session:
        lines = [line.message for line in RunRepository(session).logs(report.run.id)]
    assert any(line.startswith("notifications not queued:") for line in lines)
    assert outbox(world) == []


def test_the_database_going_away_while_queueing_is_raised_for_the_transaction_to_be_tried_again(
    world: World, smtp_server: SmtpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    point_store(world, smtp_server.port)
    notify(world, "nightly", ["people"], ["always"])
    report = collection_runs.run_collection(world.ws, "nightly")

    def lost(*_args: object) -> int:
        raise TransientError("lost the connection to PostgreSQL at 127.0.0.1:5432")

    monkeypatch.setattr(notifications, "_enqueue", lost)
    with world.ws.db.session() as session, pytest.raises(TransientError, match="lost the connection"):
        notifications.enqueue_run(world.ws, session, report.run.id)


def test_generated_passwords_go_in_a_separate_message_to_their_recipients(
    world: World, smtp_server: SmtpServer
) -> None:
    point_store(world, smtp_server.port)
    (world.root / "staff.csv").write_text("id,first,last\n7,Grace,Hopper\n8,Edsger,Dijkstra\n", encoding="utf-8")
    world.define("source", {"name": "staff", "kind": "csv", "path": str(world.root / "staff.csv")})
    world.define("job", {
        "name": "staff", "source": "staff", "destination": {"store": "dir", "container": PEOPLE},
        "mappings": [
            {"attribute": "uid", "from": "id", "key": True},
            {"attribute": "cn", "join": {"fields": ["first", "last"]}},
            {"attribute": "sn", "from": "last"},
        ],
        "passwords": {"generate": {"length": 20}, "recipients": ["helpdesk@example.org"]},
    })
    notify(world, "nightly", ["staff"], ["always"])
    report = collection_runs.run_collection(world.ws, "nightly")
    assert report.run.state is RunState.SUCCEEDED
    [child] = report.jobs
    assert [(m.trigger, m.recipient, m.run_id) for m in outbox(world)] == [
        ("passwords", "helpdesk@example.org", child.id),
        ("always", "ops@example.org", report.run.id),
        ("always", "hr@example.org", report.run.id),
    ]
    with world.ws.db.session() as session:  # delivered to the outbox: no longer waiting in the job's table
        assert JobStateRepository(session).pending_passwords(world.ws.secrets, child.id) == []
    assert Sender(world.ws).send_due().sent == 3
    received = smtp_server.wait_for(3)
    [passwords] = [m for m in received if m.rcpt_tos == ["helpdesk@example.org"]]
    text = passwords.body()
    assert f"uid=7,{PEOPLE}" in text and f"uid=8,{PEOPLE}" in text
    secrets = _passwords_in(text)
    assert len(secrets) == 2 and all(len(s) == 20 for s in secrets)
    for report_message in (m for m in received if m is not passwords):
        assert not any(s in report_message.body() or s in report_message.body("html") for s in secrets)


def _passwords_in(text: str) -> list[str]:
    return [line.split("password:", 1)[1].strip() for line in text.splitlines() if line.strip().startswith("password:")]


def test_record_errors_and_a_held_job_make_one_message_and_a_release_another(
    world: World, smtp_server: SmtpServer
) -> None:
    point_store(world, smtp_server.port)
    world.csv_job("staff", ["7,Grace,Hopper", "8,too,many,fields"])
    world.csv_job("leavers", ["1,Ada,Lovelace", "2,Alan,Turing", "3,Kurt,Goedel"])
    job = definitions.load(world.ws, "job", "leavers").definition
    world.define("job", {**definitions.public_body(job), "limits": {"max_creates": 1}})
    world.collection("nightly", [{"job": "staff", "on_failure": "continue"}, {"job": "leavers"}],
                     notifications={"enabled": True, "recipients": RECIPIENTS[:1], "triggers": ["errors", "held"]})
    report = collection_runs.run_collection(world.ws, "nightly")
    assert report.run.state is RunState.HELD
    assert report.run.error == "job 'leavers' held: 3 creates exceed max_creates 1"
    assert [m.trigger for m in outbox(world, report.run.id)] == ["held"]
    assert Sender(world.ws, node="a").send_due().sent == 1
    [message] = smtp_server.wait_for(1)
    assert message.subject.strip() == "[idsync] nightly: held, leavers awaiting a decision; 1 created, 1 error"
    body = message.body()
    held = next(j for j in report.jobs if j.job_name == "leavers")
    assert "State:      held" in body and "held: held" not in body and "State:      completed" not in body
    assert "Triggers:   held, errors" in body
    assert f"idsync job run leavers --plan {held.plan_id}" in body

    # Releasing the held job: the collection run takes its outcome and says so.
    assert held.plan_id is not None
    release = jobs.run_job(world.ws, "leavers", plan_id=held.plan_id)
    assert release.state is RunState.SUCCEEDED
    after = collection_runs.report(world.ws, report.run.id)
    assert after.run.state is RunState.COMPLETED_WITH_ERRORS  # staff still has its record error
    assert after.run.counts.created == 4
    assert [j.state for j in after.jobs] == [RunState.COMPLETED_WITH_ERRORS, RunState.SUCCEEDED]
    assert [m.trigger for m in outbox(world, report.run.id)] == ["held", f"released {release.id}"]
    assert Sender(world.ws, node="a").send_due().sent == 1
    released = smtp_server.wait_for(2)[1]
    assert " ".join(released.subject.split()) == "[idsync] nightly: held job released, now completed with errors; 4 created, 1 error"
    assert f"job run {release.id} applied its plan" in released.body()
    assert f"created uid=1,{PEOPLE} (job leavers)" in released.body()


def test_the_changed_objects_listed_are_capped_by_a_setting(
    world: World, smtp_server: SmtpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IDSYNC_NOTIFY_CHANGES_SHOWN", "1")
    point_store(world, smtp_server.port)
    world.csv_job("staff", ["7,Grace,Hopper", "8,Edsger,Dijkstra", "9,Barbara,Liskov"])
    world.collection("nightly", ["staff"],
                     notifications={"enabled": True, "recipients": RECIPIENTS[:1], "triggers": ["always"]})
    collection_runs.run_collection(world.ws, "nightly")
    Sender(world.ws).send_due()
    body = smtp_server.wait_for(1)[0].body()
    assert "Changed objects (first 1 of 3):" in body and "... and 2 more" in body
    assert f"uid=7,{PEOPLE}" in body and f"uid=8,{PEOPLE}" not in body


def test_the_sender_tells_each_delivery_and_each_failure(world: World) -> None:
    port = free_port()
    point_store(world, port)
    world.collection("nightly", ["people"],
                     notifications={"enabled": True, "recipients": RECIPIENTS[:1], "triggers": ["always"]})
    report = collection_runs.run_collection(world.ws, "nightly")
    told: list[str] = []
    Sender(world.ws, node="a", say=told.append).send_due()
    [failure] = told
    assert failure.startswith(f"notification message 1 (always, run {report.run.id}) to ops@example.org: "
                              "not delivered: notification server 127.0.0.1:")
    assert "cannot be reached" in failure and "next attempt at" in failure
    with SmtpServer(port=port) as server:
        Sender(world.ws, node="a", clock=lambda: later(3600), say=told.append).send_due()
        server.wait_for(1)
    assert told[1].startswith(f"notification message 1 (always, run {report.run.id}) to ops@example.org: sent: ")
