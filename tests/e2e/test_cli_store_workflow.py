"""``idsync store workflow``: approval settings of a store, reviewed and refused when nobody could approve."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from idsync.cli.app import app
from idsync.cli.common import os_principal
from idsync.domain.principals import Principal
from idsync.domain.roles import Role
from idsync.errors import ConfigError
from idsync.services import definitions
from idsync.services.workspace import Workspace
from tests.scheduler_world import World, make_world
from tests.unit.test_workflow_checks import person


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    monkeypatch.setenv("IDSYNC_HOME", str(tmp_path))
    monkeypatch.setenv("IDSYNC_DATABASE_URL", "")
    built = make_world(tmp_path)
    # Once users exist, the command line acts as the user mapped to its account.
    person(built, "admin", (Role.ADMIN,), os_user=os_principal().name)
    yield built
    built.ws.close()


def as_admin(world: World) -> Workspace:
    """The world's workspace acting as its admin user (its own principal is no user)."""
    return world.ws.acting_as(Principal("admin", "user"))


def idsync(*args: str) -> Result:
    return CliRunner().invoke(app, list(args), env={"COLUMNS": "200"})


def test_a_workflow_is_set_reviewed_and_saved(world: World) -> None:
    person(world, "bob")
    person(world, "carol")
    result = idsync(
        "store", "workflow", "dir", "--manual", "--scheduled", "--approver", "bob,carol", "--required", "2",
        "--expires-after", "3d", "--escalate-after", "1d", "--escalate-to", "carol", "--yes", "--json",
    )
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["outcome"] == "updated"
    workflow = definitions.load(as_admin(world), "store", "dir").definition.workflow
    assert workflow.manual and workflow.scheduled and not workflow.held
    assert workflow.approvers == ["bob", "carol"] and workflow.required_approvals == 2
    assert workflow.escalation.approvers == ["carol"]

    result = idsync("store", "workflow", "dir", "--no-scheduled", "--no-escalation", "--yes")
    assert result.exit_code == 0, result.output
    workflow = definitions.load(as_admin(world), "store", "dir").definition.workflow
    assert workflow.manual and not workflow.scheduled and workflow.escalation is None

    result = idsync("store", "workflow", "dir", "--off", "--yes")
    assert result.exit_code == 0, result.output
    assert definitions.load(as_admin(world), "store", "dir").definition.workflow is None


def test_a_workflow_nobody_could_satisfy_is_refused_and_nothing_is_saved(world: World) -> None:
    person(world, "dave", (Role.OPERATOR,))
    result = idsync("store", "workflow", "dir", "--manual", "--approver", "dave", "--yes")
    assert result.exit_code == 1
    assert isinstance(result.exception, ConfigError)
    assert "'dave' does not hold the approver role" in result.exception.message
    assert definitions.load(as_admin(world), "store", "dir").definition.workflow is None


def test_requiring_approval_without_naming_approvers_is_refused(world: World) -> None:
    result = idsync("store", "workflow", "dir", "--held", "--yes")
    assert result.exit_code == 1
    assert isinstance(result.exception, ConfigError)
    assert "needs approvers or approver_group" in result.exception.message
