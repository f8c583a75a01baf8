"""What a front end hands the services to compose a collection or a schedule,
and the one YAML reader for definition files."""

from __future__ import annotations

from datetime import time
from pathlib import Path

import pytest

from idsync.domain.collections import CollectionDefinition
from idsync.errors import ConfigError
from idsync.services import yamlio
from idsync.services.collection_edits import (
    KEEP,
    CollectionEdit,
    NewCollection,
    edit_collection,
    new_collection,
)
from idsync.services.schedule_edits import ScheduleEdit, edit_schedule, new_schedule

DAILY = {"kind": "daily", "start": "2026-01-01T02:00:00", "timezone": "Europe/Berlin"}


def stored() -> CollectionDefinition:
    return new_collection(NewCollection(name="nightly", jobs=["hr", "groups:continue"], schedule="night"))


def test_new_collection_takes_job_on_failure_suffixes() -> None:
    collection = stored()
    assert [(e.job, e.on_failure) for e in collection.jobs] == [("hr", "abort"), ("groups", "continue")]
    assert collection.schedule == "night"


def test_new_collection_refuses_an_unknown_on_failure_naming_the_field() -> None:
    with pytest.raises(ConfigError, match="'retry': use abort or continue") as caught:
        new_collection(NewCollection(name="n", jobs=["hr:retry"]))
    assert caught.value.field == "jobs"


def test_recipients_turn_notifications_on() -> None:
    collection = new_collection(NewCollection(name="n", jobs=["hr"], notify_to=["ops@example.org"], notify_on=["failed"]))
    assert collection.notifications.enabled
    assert collection.notifications.recipients == ["ops@example.org"]


def test_an_unknown_notification_trigger_names_the_choices() -> None:
    with pytest.raises(ConfigError, match="'sometimes': use one of always") as caught:
        new_collection(NewCollection(name="n", jobs=["hr"], notify_to=["a@example.org"], notify_on=["sometimes"]))
    assert caught.value.field == "notifications.triggers"


def test_edit_applies_remove_add_move_then_on_failure() -> None:
    edited = edit_collection(stored(), CollectionEdit(remove_job="groups", add_job="cleanup", position=1))
    assert edited.job_names == ["cleanup", "hr"]
    edited = edit_collection(edited, CollectionEdit(move_job="hr", position=1, on_failure="continue"))
    assert [(e.job, e.on_failure) for e in edited.jobs] == [("hr", "continue"), ("cleanup", "abort")]


def test_edit_keeps_the_schedule_unless_told_and_none_removes_it() -> None:
    assert edit_collection(stored(), CollectionEdit(description="x")).schedule == "night"
    assert edit_collection(stored(), CollectionEdit(schedule=None)).schedule is None
    assert edit_collection(stored(), CollectionEdit(schedule=KEEP)).schedule == "night"


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (CollectionEdit(move_job="hr"), "needs its new position"),
        (CollectionEdit(job="hr"), "say abort or continue"),
        (CollectionEdit(on_failure="continue"), "needs the job it is for"),
        (CollectionEdit(remove_job="nope"), "collection 'nightly': job 'nope' is not in collection"),
        (CollectionEdit(overlap="sometimes"), "collection 'nightly': overlap"),
    ],
)
def test_bad_edits_are_one_config_error(edit: CollectionEdit, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        edit_collection(stored(), edit)


def test_schedule_trigger_edits_number_from_one() -> None:
    schedule = new_schedule("night", DAILY)
    weekly = {"kind": "weekly", "start": "2026-01-05T03:00:00", "weekdays": ["mon"]}
    schedule = edit_schedule(schedule, ScheduleEdit(add=weekly))
    assert [t.kind for t in schedule.triggers] == ["daily", "weekly"]
    schedule = edit_schedule(schedule, ScheduleEdit(disable=1, remove=2))
    assert [(t.kind, t.enabled) for t in schedule.triggers] == [("daily", False)]
    replaced = edit_schedule(schedule, ScheduleEdit(add=weekly, replace_triggers=True, grace="5m"))
    assert [t.kind for t in replaced.triggers] == ["weekly"] and replaced.triggers[0].start.time() == time(3)


def test_schedule_edit_refuses_a_trigger_number_out_of_range_naming_the_field() -> None:
    with pytest.raises(ConfigError, match="trigger 3: schedule 'night' has triggers 1 to 1") as caught:
        edit_schedule(new_schedule("night", DAILY), ScheduleEdit(remove=3))
    assert caught.value.field == "remove_trigger"


def test_replacing_triggers_needs_a_trigger() -> None:
    with pytest.raises(ConfigError, match="needs the trigger"):
        edit_schedule(new_schedule("night", DAILY), ScheduleEdit(replace_triggers=True))


JOB = """\
name: {name}
source: {{data_source: hr}}
destination: {{store: corp, container: "ou=People,dc=example,dc=org", object_type: user}}
mappings:
  - {{attribute: uid, source: id, key: true}}
"""


def test_one_reader_takes_a_mapping_a_list_or_its_section(tmp_path: Path) -> None:
    one = tmp_path / "one.yaml"
    one.write_text(JOB.format(name="a"), encoding="utf-8")
    assert [j.name for j in yamlio.read_definitions(one, "job")] == ["a"]
    section = tmp_path / "section.yaml"
    section.write_text("jobs:\n" + "".join(
        "  - " + JOB.format(name=n).replace("\n", "\n    ").rstrip() + "\n" for n in ("a", "b")
    ), encoding="utf-8")
    assert [j.name for j in yamlio.read_definitions(section, "job")] == ["a", "b"]
    with pytest.raises(ConfigError, match="expected sync job 'a' alone"):
        yamlio.read_definitions(section, "job", name="a")


def test_the_reader_names_file_and_line_of_a_bad_field(tmp_path: Path) -> None:
    path = tmp_path / "job.yaml"
    path.write_text(JOB.format(name="a").replace("object_type: user", "object_type: printer"), encoding="utf-8")
    with pytest.raises(ConfigError, match=rf"^{path}:3: sync job 'a': destination.object_type"):
        yamlio.read_definitions(path, "job")


def test_the_reader_refuses_a_file_of_several_kinds(tmp_path: Path) -> None:
    path = tmp_path / "all.yaml"
    path.write_text("stores: []\njobs: []\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="holds stores as well as jobs") as caught:
        yamlio.read_definitions(path, "job")
    assert caught.value.hint == "apply the whole file"


def test_the_reader_refuses_what_is_not_yaml_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("name: [unclosed\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=rf"^{path}:2: not valid YAML"):
        yamlio.read_definitions(path, "job")
