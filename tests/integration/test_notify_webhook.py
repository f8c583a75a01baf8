"""The webhook channel against a real local HTTP server (http.server in a thread):
signed JSON, delivered through the outbox with the same guarantees as email."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

from idsync.domain.results import RunState
from idsync.errors import ConfigError, ConnectorError, TransientError
from idsync.notify import webhook
from idsync.runtime.sender import Sender
from idsync.services import collection_runs, definitions, notifications
from idsync.store.outbox_repo import FAILED, PENDING, SENT, OutboxRepository
from idsync.store.tables import outbox, utcnow
from tests.scheduler_world import SUFFIX, World, make_world
from tests.servers.smtp import SmtpServer

SECRET = "hook-key-42"


class Hook:
    """An HTTP server recording the POSTs it gets; answers *status* (settable)."""

    def __init__(self) -> None:
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.status = 204
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                hook.requests.append(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(hook.status)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/idsync"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hook() -> Iterator[Hook]:
    made = Hook()
    yield made
    made.close()


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, hook: Hook) -> Iterator[World]:
    monkeypatch.setenv("IDSYNC_HOME", str(tmp_path / "home"))
    made = make_world(tmp_path)
    yield made
    made.ws.close()


def point_store(world: World, smtp_port: int, url: str) -> None:
    world.define("store", {
        "name": "dir", "kind": "local", "path": str(world.root / "dir.db"), "suffix": SUFFIX,
        "notification_server": {
            "host": "127.0.0.1", "port": smtp_port, "tls": "none", "sender": "idsync@example.org",
            "webhook_url": url, "webhook_secret": SECRET,
        },
    })


def states(world: World, channel: str) -> list[str]:
    with world.ws.db.session() as session:
        return [m.state for m in OutboxRepository(session).list() if m.channel == channel]


def test_each_fired_trigger_is_posted_once_signed(world: World, hook: Hook) -> None:
    with SmtpServer() as smtp_server:
        point_store(world, smtp_server.port, hook.url)
        world.collection("nightly", ["people"], notifications={
            "enabled": True, "recipients": ["ops@example.org"], "triggers": ["always", "records_updated"],
        })
        report = collection_runs.run_collection(world.ws, "nightly")
        assert report.run.state is RunState.SUCCEEDED
        assert Sender(world.ws).send_due().sent == 3  # one email for the run, one post per trigger
        assert Sender(world.ws).send_due().handled == 0
        assert len(smtp_server.wait_for(1)) == 1
    assert len(hook.requests) == 2
    events = []
    for headers, body in hook.requests:
        assert webhook.verify(SECRET, body, headers["x-idsync-signature"])
        assert not webhook.verify("another key", body, headers["x-idsync-signature"])
        assert headers["content-type"] == "application/json"
        document = json.loads(body)
        assert headers["x-idsync-event"] == document["trigger"]
        events.append(document)
    assert sorted(e["trigger"] for e in events) == ["always", "records_updated"]
    updated = next(e for e in events if e["trigger"] == "records_updated")
    assert updated["run_id"] == report.run.id and updated["collection"] == "nightly"
    assert updated["state"] == "succeeded" and updated["counts"]["created"] == 2
    assert [j["job"] for j in updated["jobs"]] == ["people"]
    assert states(world, "webhook") == [SENT, SENT]


def test_a_5xx_answer_is_retried_and_a_4xx_fails(world: World, hook: Hook) -> None:
    point_store(world, 9, hook.url)
    world.collection("nightly", ["people"], notifications={
        "enabled": True, "recipients": ["ops@example.org"], "triggers": ["always"],
    })
    collection_runs.run_collection(world.ws, "nightly")
    hook.status = 503
    Sender(world.ws).send_due()
    assert states(world, "webhook") == [PENDING]
    with pytest.raises(TransientError, match="answered 503"):
        webhook.post(hook.url, b"{}", SECRET, delivery="1", event="always")
    hook.status = 404
    with pytest.raises(ConnectorError, match="answered 404") as caught:
        webhook.post(hook.url, b"{}", SECRET, delivery="1", event="always")
    assert not isinstance(caught.value, TransientError)
    with world.ws.db.session() as session:
        repo = OutboxRepository(session)
        [message] = [m for m in repo.list() if m.channel == "webhook"]
        # Due again now, instead of after the backoff.
        session.execute(update(outbox).where(outbox.c.id == message.id).values(next_attempt_at=message.created_at))
    Sender(world.ws).send_due()
    assert states(world, "webhook") == [FAILED]


def test_a_retried_post_keeps_its_delivery_id_made_of_the_row_and_the_installation(world: World, hook: Hook) -> None:
    point_store(world, 9, hook.url)
    world.collection("nightly", ["people"], notifications={
        "enabled": True, "recipients": ["ops@example.org"], "triggers": ["always"],
    })
    collection_runs.run_collection(world.ws, "nightly")
    hook.status = 503
    Sender(world.ws, node="a").send_due()
    hook.status = 204
    Sender(world.ws, node="b", clock=lambda: utcnow() + timedelta(hours=1)).send_due()
    assert states(world, "webhook") == [SENT]
    with world.ws.db.session() as session:
        [row] = [m for m in OutboxRepository(session).list() if m.channel == "webhook"]
    first, second = (headers["x-idsync-delivery"] for headers, _body in hook.requests)
    assert first == second == notifications.message_id(world.ws, row).strip("<>")
    assert first != str(row.id)  # a row id alone repeats in another installation


def test_a_webhook_needs_an_http_url(world: World) -> None:
    base = {"name": "x", "kind": "local", "path": "x.directory"}
    with pytest.raises(ConfigError, match="must start with http:// or https://"):
        definitions.parse("store", {**base, "notification_server": {
            "host": "h", "sender": "a@b.c", "webhook_url": "file:///etc/passwd", "webhook_secret": "k"}})


def test_the_webhook_secret_is_kept_apart(world: World, hook: Hook) -> None:
    point_store(world, 9, hook.url)
    assert SECRET not in str(definitions.exportable(world.ws, "store", "dir"))
    assert SECRET not in str(definitions.list_definitions(world.ws, "store"))
    assert definitions.load(world.ws, "store", "dir").definition.notification_server.webhook_secret == SECRET
