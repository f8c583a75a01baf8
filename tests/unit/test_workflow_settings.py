"""Workflow settings as written in a store's definition."""

from __future__ import annotations

from datetime import timedelta

import pytest
from pydantic import ValidationError

from idsync.domain.workflow import WorkflowSettings


def test_defaults_require_nothing_and_expire_after_seven_days() -> None:
    workflow = WorkflowSettings()
    assert not workflow.enabled
    assert workflow.expires_after == timedelta(days=7)
    assert workflow.required_approvals == 1


def test_each_kind_of_run_is_covered_separately() -> None:
    workflow = WorkflowSettings(scheduled=True, approvers=["bob"])
    assert workflow.covers("schedule")
    assert not workflow.covers("manual")
    assert not workflow.covers("held")


def test_requiring_approval_without_approvers_is_refused() -> None:
    with pytest.raises(ValidationError, match="needs approvers or approver_group"):
        WorkflowSettings(manual=True)


def test_durations_are_written_as_users_write_them_and_exported_alike() -> None:
    workflow = WorkflowSettings.model_validate(
        {"manual": True, "approvers": ["bob"], "expires_after": "3d", "escalation": {"after": "1d12h", "approvers": ["carol"]}}
    )
    assert workflow.expires_after == timedelta(days=3)
    assert workflow.model_dump(mode="json")["escalation"]["after"] == "1d12h"


def test_escalation_must_come_before_expiry_and_name_someone() -> None:
    with pytest.raises(ValidationError, match="must be shorter than expires_after"):
        WorkflowSettings(manual=True, approvers=["bob"], expires_after="1d", escalation={"after": "2d", "approvers": ["c"]})
    with pytest.raises(ValidationError, match="whom to escalate to"):
        WorkflowSettings(manual=True, approvers=["bob"], escalation={"after": "1h"})


@pytest.mark.parametrize("number", [0, 11])
def test_the_number_of_approvals_is_bounded(number: int) -> None:
    with pytest.raises(ValidationError):
        WorkflowSettings(manual=True, approvers=["bob"], required_approvals=number)
