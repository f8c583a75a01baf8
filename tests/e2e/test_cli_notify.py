"""``idsync store notify-test``, ``idsync outbox`` and the scheduler's sender,
as a user runs them, against a real SMTP server (aiosmtpd)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.test_cli import Cli
from tests.e2e.test_cli_collections import InProcess
from tests.scheduler_world import SUFFIX, make_world
from tests.servers.smtp import SmtpServer


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    with SmtpServer(login=("mailer", "pw-in-yaml-123")) as server:
        yield server


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, smtp_server: SmtpServer) -> Iterator[Path]:
    """The scheduler world, with store ``dir`` sending through the test server."""
    folder = tmp_path / "home"
    folder.mkdir()
    monkeypatch.setenv("IDSYNC_HOME", str(folder))
    world = make_world(folder)
    world.define("store", {
        "name": "dir", "kind": "local", "path": str(folder / "dir.db"), "suffix": SUFFIX,
        "notification_server": {
            "host": "127.0.0.1", "port": smtp_server.port, "tls": "none", "sender": "idsync@example.org",
            "username": "mailer", "password": "pw-in-yaml-123", "default_to": ["ops@example.org"],
            "allow_plaintext_login": True,  # a test server on loopback, without TLS
        },
    })
    world.collection("nightly", ["people"], notifications={
        "enabled": True, "recipients": ["ops@example.org", "hr@example.org"], "triggers": ["always"],
    })
    world.ws.close()
    yield folder


def test_notify_test_reports_the_servers_answer_and_never_shows_the_password(
    home: Path, smtp_server: SmtpServer
) -> None:
    cli = Cli(home)
    done = cli("store", "notify-test", "dir", "--to", "alice@example.org")
    assert done.stdout.startswith(f"sent to 1 recipient(s) via 127.0.0.1:{smtp_server.port} (none): 250")
    assert smtp_server.wait_for(1)[0].rcpt_tos == ["alice@example.org"]
    assert smtp_server.logins == ["mailer"]
    for args in (("store", "show", "dir"), ("export",)):
        shown = cli(*args)
        assert "pw-in-yaml-123" not in shown.stdout + shown.stderr


def test_notify_test_failures_are_one_line(home: Path, smtp_server: SmtpServer) -> None:
    cli = Cli(home)
    smtp_server.stop()
    failed = cli("store", "notify-test", "dir", ok=False)
    assert failed.returncode == 1
    assert failed.stderr.strip().count("\n") == 0
    assert f"notification server 127.0.0.1:{smtp_server.port} cannot be reached" in failed.stderr
    assert "pw-in-yaml-123" not in failed.stderr


def test_outbox_list_send_retry_purge(home: Path, smtp_server: SmtpServer) -> None:
    run = InProcess(home)
    assert "notifications: left in the outbox (--no-send)" in run("collection", "run", "nightly", "--no-send").stdout
    waiting = run.json("outbox", "list")
    assert [(m["trigger"], m["recipient"], m["state"]) for m in waiting] == [
        ("always", "hr@example.org", "pending"), ("always", "ops@example.org", "pending"),
    ]
    assert all("payload" not in m for m in waiting)
    sent = run.json("outbox", "send", "--once")
    assert (sent["sent"], sent["retried"], sent["failed"]) == (2, 0, 0)
    assert sorted(m.subject for m in smtp_server.wait_for(2)) == ["[idsync] nightly: succeeded; 2 created"] * 2
    assert run.json("outbox", "send", "--once")["sent"] == 0
    assert "0 failed message(s) put back" in run("outbox", "retry").stdout
    assert run.json("outbox", "purge", "--yes") == {"purged": 2}
    assert run.json("outbox", "list") == []
    refused = run("outbox", "list", "--state", "lost", ok=False)
    assert refused.exit_code == 2 and "unknown state 'lost'" in refused.output


def test_the_scheduler_delivers_notifications_in_a_thread(home: Path, smtp_server: SmtpServer) -> None:
    run = InProcess(home)
    run("collection", "run", "nightly", "--no-send")
    env = {k: v for k, v in os.environ.items() if not k.startswith("IDSYNC_")} | {
        "IDSYNC_HOME": str(home), "IDSYNC_OUTBOX_POLL_SECONDS": "1",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "idsync", "scheduler", "--tick", "0.5"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        received = smtp_server.wait_for(2, timeout=30)
    finally:
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert sorted(m.rcpt_tos[0] for m in received) == ["hr@example.org", "ops@example.org"]
    # Each delivery is in the scheduler's own output, not only in a log nobody reads.
    for to in ("hr@example.org", "ops@example.org"):
        assert f") to {to}: sent: sent to 1 recipient(s)" in err, err
    deadline = time.monotonic() + 10
    while {m["state"] for m in run.json("outbox", "list")} != {"sent"}:
        assert time.monotonic() < deadline, run.json("outbox", "list")
        time.sleep(0.1)


def test_a_manual_collection_run_delivers_its_notifications_before_it_exits(
    home: Path, smtp_server: SmtpServer
) -> None:
    run = InProcess(home)
    done = run("collection", "run", "nightly")
    assert done.exit_code == 0
    assert "notifications: 2 sent" in done.stdout
    # Already delivered when the command returned: no sender, no scheduler, no wait.
    assert sorted(m.rcpt_tos[0] for m in smtp_server.messages) == ["hr@example.org", "ops@example.org"]
    assert {m["state"] for m in run.json("outbox", "list")} == {"sent"}
    body = smtp_server.messages[0].body()
    assert "What changed: 2 created." in body and "See the whole run: idsync run show " in body


def test_schedule_run_now_delivers_its_notifications_too(home: Path, smtp_server: SmtpServer) -> None:
    run = InProcess(home)
    run("schedule", "create", "nightly", "--daily", "--at", "02:00", "--yes")
    run("collection", "edit", "nightly", "--schedule", "nightly", "--yes")
    done = run("schedule", "run-now", "nightly")
    assert "notifications: 2 sent" in done.stdout
    assert sorted(m.rcpt_tos[0] for m in smtp_server.messages) == ["hr@example.org", "ops@example.org"]


def test_a_manual_run_with_the_server_down_says_what_is_left_pending_and_why(
    home: Path, smtp_server: SmtpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IDSYNC_NOTIFY_SEND_WAIT_SECONDS", "1")
    smtp_server.stop()
    run = InProcess(home)
    started = time.monotonic()
    done = run("collection", "run", "nightly")
    assert time.monotonic() - started < 20
    assert done.exit_code == 0  # the run succeeded; its messages wait
    assert "notifications: 0 sent, 2 left pending (" in done.stdout
    assert "cannot be reached" in done.stdout
    assert "a scheduler or an outbox sender delivers them later" in done.stdout
    assert {m["state"] for m in run.json("outbox", "list")} == {"pending"}
    as_json = run.json("collection", "run", "nightly")
    assert as_json["notifications"]["pending"] == 2 and as_json["notifications"]["sent"] == 0
