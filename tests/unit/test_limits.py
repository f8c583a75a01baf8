"""Safety limits: which plans are held, and the reason a user reads."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from idsync.domain.definitions import Limits
from idsync.engine.limits import PlanSize, exceeded, hold_reason


def test_no_limits_hold_nothing() -> None:
    huge = PlanSize(creates=10**6, removals=10**6, changed=10**6, scope=10**6)
    assert exceeded(None, huge) == []
    assert exceeded(Limits(), huge) == []
    assert hold_reason(None, huge) is None
    assert not Limits().any


def test_the_reason_names_the_count_and_the_limit() -> None:
    reason = hold_reason(Limits(max_deletes=100), PlanSize(removals=1250, scope=5000))
    assert reason == "held: 1,250 deletes exceed max_deletes 100"


@pytest.mark.parametrize(
    ("limits", "size", "held"),
    [
        (Limits(max_creates=10), PlanSize(creates=10), False),
        (Limits(max_creates=10), PlanSize(creates=11), True),
        (Limits(max_creates=0), PlanSize(creates=1), True),
        (Limits(max_deletes=5), PlanSize(removals=5, changed=5, scope=10), False),
        (Limits(max_deletes=5), PlanSize(removals=6, changed=6, scope=10), True),
        (Limits(max_changed_percent=10), PlanSize(changed=10, scope=100), False),
        (Limits(max_changed_percent=10), PlanSize(changed=11, scope=100), True),
        (Limits(max_changed_percent=0.5), PlanSize(changed=1, scope=100), True),
        # Nothing in scope: nothing existing can change; a first load is bounded by max_creates.
        (Limits(max_changed_percent=1), PlanSize(creates=500, scope=0), False),
    ],
)
def test_limits_are_inclusive_bounds(limits: Limits, size: PlanSize, held: bool) -> None:
    assert (hold_reason(limits, size) is not None) is held


def test_every_exceeded_limit_is_listed() -> None:
    limits = Limits(max_creates=1, max_deletes=1, max_changed_percent=10)
    reasons = exceeded(limits, PlanSize(creates=2, removals=3, changed=4, scope=8))
    assert reasons == [
        "2 creates exceed max_creates 1",
        "3 deletes exceed max_deletes 1",
        "4 of 8 objects in scope change (50.0%), over max_changed_percent 10",
    ]
    assert hold_reason(limits, PlanSize(creates=2, removals=3, changed=4, scope=8)) == "held: " + "; ".join(reasons)


def test_changed_percent() -> None:
    assert PlanSize(changed=1, scope=8).changed_percent == 12.5
    assert PlanSize(changed=3, scope=0).changed_percent == 0.0


def test_limits_are_validated() -> None:
    with pytest.raises(ValidationError):
        Limits(max_creates=-1)
    with pytest.raises(ValidationError):
        Limits(max_changed_percent=101)
    assert Limits(max_changed_percent=12.5).any
