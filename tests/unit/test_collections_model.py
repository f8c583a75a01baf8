"""The collection definition: structure, notification settings and the pure edits."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from idsync.domain.collections import (
    CollectionDefinition,
    add_job,
    move_job,
    remove_job,
    set_on_failure,
    with_changes,
)


def collection(**data: object) -> CollectionDefinition:
    return CollectionDefinition.model_validate({"name": "nightly", "jobs": ["hr", "groups", "cleanup"], **data})


def test_jobs_keep_their_order_and_default_to_abort() -> None:
    c = collection()
    assert c.job_names == ["hr", "groups", "cleanup"]
    assert [e.on_failure for e in c.jobs] == ["abort", "abort", "abort"]
    assert (c.schedule, c.overlap, c.preview_when_finished, c.notifications.enabled) == (None, "skip", False, False)


def test_entries_take_on_failure_continue() -> None:
    c = collection(jobs=[{"job": "hr", "on_failure": "continue"}, "groups"])
    assert [(e.job, e.on_failure) for e in c.jobs] == [("hr", "continue"), ("groups", "abort")]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"jobs": []}, "a collection needs at least one job"),
        ({"jobs": ["hr", "hr"]}, "job 'hr' is listed twice"),
        ({"jobs": [{"job": "hr", "on_failure": "retry"}]}, "'abort' or 'continue'"),
        ({"overlap": "parallel"}, "'skip' or 'queue'"),
        ({"colour": "red"}, "Extra inputs are not permitted"),
        ({"notifications": {"enabled": True, "triggers": ["always"]}}, "no recipients"),
        ({"notifications": {"enabled": True, "recipients": ["ops@example.org"]}}, "no trigger"),
        ({"notifications": {"recipients": ["not an address"]}}, "is not an e-mail address"),
        ({"notifications": {"recipients": ["a@example.org", "A@example.org"]}}, "listed twice"),
        ({"notifications": {"triggers": ["sometimes"]}}, "'always', 'records_updated', 'errors' or 'failed'"),
        ({"smart_group_jobs": ["g", "g"]}, "listed twice"),
    ],
)
def test_bad_collections_are_refused_with_the_reason(data: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        collection(**data)
    assert message in str(caught.value)


def test_notifications_are_kept_when_complete() -> None:
    c = collection(notifications={"enabled": True, "recipients": ["ops@example.org"], "triggers": ["failed", "errors"]})
    assert c.notifications.recipients == ["ops@example.org"]
    assert c.notifications.triggers == ["failed", "errors"]


def test_disabled_notifications_may_be_incomplete() -> None:
    assert collection(notifications={"recipients": ["ops@example.org"]}).notifications.enabled is False


def test_add_job_at_the_end_or_at_a_position() -> None:
    c = collection()
    assert add_job(c, "audit").job_names == ["hr", "groups", "cleanup", "audit"]
    added = add_job(c, "audit", "continue", position=1)
    assert added.job_names == ["audit", "hr", "groups", "cleanup"]
    assert added.jobs[0].on_failure == "continue"
    assert c.job_names == ["hr", "groups", "cleanup"]  # the original is untouched


def test_add_job_refuses_a_duplicate_and_a_bad_position() -> None:
    with pytest.raises(ValueError, match="already in collection"):
        add_job(collection(), "hr")
    with pytest.raises(ValueError, match="position 9 is out of range: use 1 to 4"):
        add_job(collection(), "audit", position=9)


def test_remove_job_keeps_the_others_in_order() -> None:
    assert remove_job(collection(), "groups").job_names == ["hr", "cleanup"]


def test_removing_the_last_job_is_refused() -> None:
    with pytest.raises(ValueError, match="is the only job"):
        remove_job(collection(jobs=["hr"]), "hr")


def test_removing_an_unknown_job_names_the_jobs() -> None:
    with pytest.raises(ValueError, match="job 'nope' is not in collection 'nightly' \\(it has hr, groups, cleanup\\)"):
        remove_job(collection(), "nope")


@pytest.mark.parametrize(
    ("job", "position", "order"),
    [
        ("cleanup", 1, ["cleanup", "hr", "groups"]),
        ("hr", 3, ["groups", "cleanup", "hr"]),
        ("groups", 2, ["hr", "groups", "cleanup"]),
    ],
)
def test_move_job(job: str, position: int, order: list[str]) -> None:
    assert move_job(collection(), job, position).job_names == order


def test_move_job_keeps_on_failure() -> None:
    c = collection(jobs=["hr", {"job": "groups", "on_failure": "continue"}])
    moved = move_job(c, "groups", 1)
    assert [(e.job, e.on_failure) for e in moved.jobs] == [("groups", "continue"), ("hr", "abort")]


def test_set_on_failure_and_other_settings() -> None:
    c = set_on_failure(collection(), "groups", "continue")
    assert [e.on_failure for e in c.jobs] == ["abort", "continue", "abort"]
    changed = with_changes(c, schedule="nightly-2am", overlap="queue")
    assert (changed.schedule, changed.overlap, changed.job_names) == ("nightly-2am", "queue", c.job_names)
    with pytest.raises(ValidationError, match="'skip' or 'queue'"):
        with_changes(c, overlap="never")
