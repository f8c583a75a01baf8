"""The Requests section as people use it: an operator's run raises a request,
an approver (signed in by an API token) sees it in the inbox and decides it,
the run applies exactly what was approved; refusals come with their exit codes."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from idsync.domain.entry import Scope
from idsync.domain.principals import Principal
from idsync.services import connections
from tests.e2e.test_cli import ME, Cli
from tests.scheduler_world import PEOPLE, World, make_world


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    monkeypatch.setenv("IDSYNC_HOME", str(tmp_path))
    made = make_world(tmp_path)
    made.collection("c", ["people"])
    made.ws.close()
    yield made


@pytest.fixture
def cli(world: World) -> Cli:
    cli = Cli(world.root)
    cli("user", "add", "olivia", "--os-user", ME, "--role", "admin", "--role", "operator")
    cli("user", "add", "alice", "--email", "alice@example.org", "--role", "approver")
    cli("user", "add", "bob", "--role", "approver")
    return cli


def as_user(cli: Cli, name: str) -> Cli:
    token = cli("token", "create", f"{name}-cli", "--user", name).stdout.strip().splitlines()[0]
    other = Cli(cli.home)
    other.env["IDSYNC_TOKEN"] = token
    return other


def people(world: World) -> list[str]:
    with connections.directory(world.ws.acting_as(Principal.system("test")), "dir") as directory:
        return sorted(e.dn for e in directory.search(PEOPLE, Scope.ONE, "(objectClass=*)", ["uid"]))


def test_a_run_waits_for_an_approver_then_applies_exactly_what_was_approved(world: World, cli: Cli) -> None:
    cli("store", "workflow", "dir", "--manual", "--approver", "alice,bob", "--yes")
    raised = cli("collection", "run", "c", "--no-send", ok=False)
    assert raised.returncode == 5, raised.stderr
    assert "awaiting_approval" in raised.stdout
    found = re.search(r"request (\d+) raised \(manual\): pending, 1 approval\(s\) needed", raised.stdout)
    assert found, raised.stdout
    request_id = found.group(1)
    assert people(world) == []

    refused = cli("request", "approve", request_id, ok=False)  # an admin is not an approver
    assert refused.returncode == 8
    assert "may not decide requests: that needs the role approver" in refused.stderr

    alice = as_user(cli, "alice")
    assert "requests: 1 awaiting your decision" in alice("status").stdout
    inbox = alice.json("request", "list", "--inbox")
    assert [(r["id"], r["state"], r["requested_by"]) for r in inbox] == [(int(request_id), "pending", "olivia")]
    shown = alice("request", "show", request_id).stdout
    assert "job people: plan" in shown and "created 2" in shown
    assert "create   uid=1,ou=People,dc=example,dc=org" in shown
    assert "may decide now:  alice, bob" in shown

    approved = alice("request", "approve", request_id, "--exclude", f"uid=2,{PEOPLE}", "--comment", "not Alan yet")
    assert f"request {request_id} approved: now executed" in approved.stdout
    assert "not_approved 1" in approved.stdout
    assert people(world) == [f"uid=1,{PEOPLE}"]

    again = alice("request", "deny", request_id, "--reason", "too late", ok=False)
    assert again.returncode == 7
    trail = cli.json("request", "show", request_id)["trail"]
    assert [(row["actor"], row["action"]) for row in trail] == [("alice", "approve"), ("idsync", "execute")]
    assert cli("audit", "verify").stdout.startswith("audit trail intact")


def test_a_denial_needs_a_reason_and_writes_nothing(world: World, cli: Cli) -> None:
    cli("store", "workflow", "dir", "--manual", "--approver", "bob", "--yes")
    raised = cli("collection", "run", "c", "--no-send", ok=False)
    request_id = re.search(r"request (\d+) raised", raised.stdout).group(1)  # type: ignore[union-attr]
    bob = as_user(cli, "bob")
    assert bob("request", "deny", request_id, ok=False).returncode == 2  # --reason is required
    denied = bob("request", "deny", request_id, "--reason", "wrong export")
    assert f"request {request_id} denied: now denied" in denied.stdout
    assert people(world) == []
    mine = cli.json("request", "list")
    assert [(r["state"], r["outcome"]) for r in mine] == [("denied", "denied by bob: wrong export")]
    # The collection can run again: a new request.
    assert cli("collection", "run", "c", "--no-send", ok=False).returncode == 5


def test_an_open_request_refuses_a_second_manual_run(world: World, cli: Cli) -> None:
    cli("store", "workflow", "dir", "--manual", "--approver", "bob", "--yes")
    cli("collection", "run", "c", "--no-send", ok=False)
    second = cli("collection", "run", "c", "--no-send", ok=False)
    assert second.returncode == 7
    assert "collection 'c' has request 1 awaits approval" in second.stderr
