"""Which notification triggers fire: a table of run outcomes against every trigger."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest

from idsync.domain.results import Counts, ErrorItem, RunState
from idsync.errors import ConfigError
from idsync.notify.events import JobOutcome, RunEvent
from idsync.notify.rules import TRIGGER_MEANINGS, TRIGGERS, check_triggers, fired

START = datetime(2026, 1, 5, 2, 0, tzinfo=UTC)

FINISHED_STATES = (
    "succeeded",
    "completed_with_errors",
    "failed",
    "held",
    "terminated",
    "skipped",
    "missed",
    "denied",
    "expired",
    "cancelled",
)


def event(state: str, *, changes: bool = False, errors: bool = False, conflicts: int = 0, missed: int = 0) -> RunEvent:
    counts = Counts(read=10, updated=3 if changes else 0, errors=2 if errors else 0, conflicts=conflicts)
    items = (ErrorItem("mail is not valid", key="E1"), ErrorItem("uid is empty", key="E2")) if errors else ()
    return RunEvent(
        run_id=7,
        collection="HR to LDAP",
        state=state,
        trigger="schedule",
        started_at=START,
        finished_at=START + timedelta(seconds=30),
        counts=counts,
        jobs=(JobOutcome("people", state, counts),),
        errors=items,
        error_total=len(items),
        error=None,
        missed=missed,
    )


# (state, records changed, record errors) -> triggers that fire when all are configured
# and the previous run did not fail.
TABLE: dict[tuple[str, bool, bool], set[str]] = {
    ("succeeded", False, False): {"always"},
    ("succeeded", True, False): {"always", "records_updated"},
    ("succeeded", False, True): {"always", "errors"},
    ("succeeded", True, True): {"always", "records_updated", "errors"},
    ("completed_with_errors", False, False): {"always"},
    ("completed_with_errors", True, False): {"always", "records_updated"},
    ("completed_with_errors", False, True): {"always", "errors"},
    ("completed_with_errors", True, True): {"always", "records_updated", "errors"},
    ("failed", False, False): {"always", "failed"},
    ("failed", True, False): {"always", "records_updated", "failed"},
    ("failed", False, True): {"always", "failed"},
    ("failed", True, True): {"always", "records_updated", "failed"},
    ("held", False, False): {"always", "held"},
    ("held", True, False): {"always", "records_updated", "held"},
    ("held", False, True): {"always", "errors", "held"},
    ("held", True, True): {"always", "records_updated", "errors", "held"},
    ("terminated", False, False): {"always"},
    ("terminated", True, False): {"always", "records_updated"},
    ("terminated", False, True): {"always", "errors"},
    ("terminated", True, True): {"always", "records_updated", "errors"},
    ("skipped", False, False): {"always"},
    ("skipped", True, False): {"always", "records_updated"},
    ("skipped", False, True): {"always", "errors"},
    ("skipped", True, True): {"always", "records_updated", "errors"},
    ("missed", False, False): {"always", "missed"},
    ("missed", True, False): {"always", "records_updated", "missed"},
    ("missed", False, True): {"always", "errors", "missed"},
    ("missed", True, True): {"always", "records_updated", "errors", "missed"},
    ("denied", False, False): {"always"},
    ("denied", True, False): {"always", "records_updated"},
    ("denied", False, True): {"always", "errors"},
    ("denied", True, True): {"always", "records_updated", "errors"},
    ("expired", False, False): {"always"},
    ("expired", True, False): {"always", "records_updated"},
    ("expired", False, True): {"always", "errors"},
    ("expired", True, True): {"always", "records_updated", "errors"},
    ("cancelled", False, False): {"always"},
    ("cancelled", True, False): {"always", "records_updated"},
    ("cancelled", False, True): {"always", "errors"},
    ("cancelled", True, True): {"always", "records_updated", "errors"},
}


def test_table_covers_every_finished_state_with_and_without_changes_and_errors() -> None:
    expected = {(s, c, e) for s in FINISHED_STATES for c in (False, True) for e in (False, True)}
    assert set(TABLE) == expected
    finished = {state.value for state in RunState if state.finished}
    assert finished == set(FINISHED_STATES)


@pytest.mark.parametrize(("state", "changes", "errors"), sorted(TABLE))
@pytest.mark.parametrize("previous", [None, "succeeded"])
def test_all_triggers_configured(state: str, changes: bool, errors: bool, previous: str | None) -> None:
    result = fired(TRIGGERS, event(state, changes=changes, errors=errors), previous)
    assert result == [name for name in TRIGGERS if name in TABLE[(state, changes, errors)]]


@pytest.mark.parametrize(("state", "changes", "errors"), sorted(TABLE))
@pytest.mark.parametrize("trigger", TRIGGERS)
def test_each_trigger_alone(trigger: str, state: str, changes: bool, errors: bool) -> None:
    result = fired([trigger], event(state, changes=changes, errors=errors), None)
    assert result == ([trigger] if trigger in TABLE[(state, changes, errors)] else [])


# (this run's state, previous finished run's state) pairs where recovered fires.
RECOVERS = {("succeeded", "failed"), ("completed_with_errors", "failed")}


@pytest.mark.parametrize("state", FINISHED_STATES)
@pytest.mark.parametrize("previous", [None, *FINISHED_STATES])
def test_recovered_against_each_previous_state(state: str, previous: str | None) -> None:
    for changes in (False, True):
        for errors in (False, True):
            result = fired(["recovered"], event(state, changes=changes, errors=errors), previous)
            assert result == (["recovered"] if (state, previous) in RECOVERS else []), (changes, errors)


def test_recovered_sits_in_trigger_order_with_the_others() -> None:
    result = fired(reversed(TRIGGERS), event("completed_with_errors", changes=True, errors=True), "failed")
    assert result == ["always", "records_updated", "errors", "recovered"]


@pytest.mark.parametrize("state", ["pending", "queued", "running"])
def test_a_run_still_going_fires_nothing(state: str) -> None:
    assert fired(TRIGGERS, event(state, changes=True, errors=True), "failed") == []


def test_conflicts_count_as_record_errors() -> None:
    assert fired(["errors"], event("completed_with_errors", conflicts=1), None) == ["errors"]
    assert fired(["errors"], event("failed", conflicts=1), None) == []


def test_error_total_beyond_the_listed_errors_counts() -> None:
    base = event("succeeded")
    late = RunEvent(**{**base.__dict__, "error_total": 40})
    assert fired(["errors"], late, None) == ["errors"]


def test_missed_occurrences_reported_by_a_later_run_fire_missed() -> None:
    assert fired(["missed", "always"], event("succeeded", missed=3), None) == ["always", "missed"]
    assert fired(["missed"], event("succeeded", missed=0), None) == []


def test_no_trigger_configured_fires_nothing() -> None:
    assert fired([], event("failed", changes=True, errors=True), "failed") == []


def test_unknown_trigger_is_refused_with_the_choices() -> None:
    with pytest.raises(ConfigError, match=r"unknown notification trigger 'sometimes'.*always, records_updated"):
        fired(["failed", "sometimes"], event("failed"), None)
    assert check_triggers(("held", "missed")) == ["held", "missed"]


def test_every_trigger_is_explained() -> None:
    assert set(TRIGGER_MEANINGS) == set(TRIGGERS)
    assert TRIGGERS[:4] == ("always", "records_updated", "errors", "failed")


def test_duration() -> None:
    assert event("succeeded").duration_seconds == 30.0
    never = RunEvent(**{**event("missed").__dict__, "started_at": None})
    assert never.duration_seconds is None


def test_the_collection_model_accepts_exactly_these_triggers() -> None:
    from pydantic import ValidationError

    from idsync.domain.collections import ALL_NOTIFY_TRIGGERS, NOTIFY_TRIGGERS, Notifications

    assert ALL_NOTIFY_TRIGGERS == TRIGGERS
    assert NOTIFY_TRIGGERS == ("always", "records_updated", "errors", "failed")
    chosen = Notifications(enabled=True, recipients=["ops@example.org"], triggers=["recovered", "missed", "held"])
    assert chosen.triggers == ["recovered", "missed", "held"]
    with pytest.raises(ValidationError):
        Notifications(enabled=True, recipients=["ops@example.org"], triggers=["sometimes"])  # type: ignore[list-item]


def test_held_fires_when_a_job_of_the_collection_is_held() -> None:
    counts = Counts(read=10)
    base = event("completed_with_errors")
    jobs = (JobOutcome("people", "succeeded", counts), JobOutcome("leavers", "held", counts, "held: 250 deletes exceed max_deletes 100"))
    collection = dataclasses.replace(base, jobs=jobs)
    assert "held" in fired(TRIGGERS, collection, None)
    assert "held" not in fired(TRIGGERS, base, None)
