"""Trying a job's mappings on the first rows of its source: the entries they
would make and the rows that fail, with nothing written."""

from __future__ import annotations

from typing import Any

import pytest

from idsync.domain.principals import Principal
from idsync.domain.roles import Role
from idsync.errors import ConfigError, PermissionDeniedError
from idsync.services import definitions, history, job_trial, jobs, users
from tests.scheduler_world import PEOPLE, World


def edited(world: World, **changes: Any) -> Any:
    """The people job as an editor left it, unsaved."""
    body = definitions.public_body(definitions.load(world.ws, "job", "people").definition)
    body.update(changes)
    return definitions.parse("job", body)


def test_the_stored_job_maps_its_first_rows_to_entries(world: World) -> None:
    trial = job_trial.try_stored(world.ws, "people")
    assert (trial.rows, trial.read, trial.errors) == (5, 2, [])
    assert [e.dn for e in trial.entries] == [f"uid=1,{PEOPLE}", f"uid=2,{PEOPLE}"]
    first = trial.entries[0].attributes
    assert first["cn"] == ["Ada Lovelace"] and first["sn"] == ["Lovelace"]
    assert first["objectClass"] == ["top", "person", "organizationalPerson", "inetOrgPerson"]
    assert trial.columns == ["id", "first", "last"]


def test_an_unsaved_edit_is_tried_as_edited_and_its_failing_rows_are_reported(world: World) -> None:
    (world.root / "people.csv").write_text("id,first,last\n1,Ada,Lovelace\n2,Alan,\n3,Grace,Hopper\n", "utf-8")
    job = edited(world, mappings=[
        {"attribute": "uid", "from": "id", "key": True},
        {"attribute": "sn", "from": "last", "required": True, "transforms": ["upper"]},
        {"attribute": "mail", "expression": "source['first'].lower() + '@example.org'"},
    ])
    trial = job_trial.try_job(world.ws, job, rows=5)
    assert [e.attributes["sn"] for e in trial.entries] == [["LOVELACE"], ["HOPPER"]]
    assert trial.entries[1].attributes["mail"] == ["grace@example.org"]
    [error] = trial.errors
    assert (error.line, error.key, error.attribute) == (3, "2", "sn")
    assert "required attribute 'sn' has no value" in error.message
    stored = definitions.load(world.ws, "job", "people").definition
    assert [m.attribute for m in stored.mappings] == ["uid", "cn", "sn"], "the trial saved nothing"


def test_a_trial_reads_only_the_rows_asked_for(world: World) -> None:
    rows = "".join(f"{i},First{i},Last{i}\n" for i in range(1, 200))
    (world.root / "people.csv").write_text("id,first,last\n" + rows, "utf-8")
    trial = job_trial.try_stored(world.ws, "people", rows=3)
    assert trial.read == 3 and [e.key for e in trial.entries] == ["1", "2", "3"]


def test_a_field_the_source_lacks_is_an_error_of_each_row(world: World) -> None:
    job = edited(world, mappings=[{"attribute": "uid", "from": "id", "key": True}, {"attribute": "mail", "from": "email"}])
    trial = job_trial.try_job(world.ws, job, rows=1)
    assert trial.entries == [] and len(trial.errors) == 1
    assert (trial.errors[0].attribute, trial.errors[0].key) == ("email", "1")
    assert "source has no field 'email'" in trial.errors[0].message


@pytest.mark.parametrize("rows", [0, 51])
def test_the_row_count_is_bounded(world: World, rows: int) -> None:
    with pytest.raises(ConfigError, match="a trial reads 1 to 50 rows"):
        job_trial.try_stored(world.ws, "people", rows=rows)


def test_a_trial_records_no_run_and_no_plan(world: World) -> None:
    before = (len(history.list_runs(world.ws, limit=100)), len(history.list_plans(world.ws, limit=100)))
    job_trial.try_stored(world.ws, "people")
    assert (len(history.list_runs(world.ws, limit=100)), len(history.list_plans(world.ws, limit=100))) == before


def test_an_auditor_cannot_try_a_job(world: World) -> None:
    users.add_user(world.ws, "root", roles=[Role.ADMIN])
    admin = world.ws.acting_as(Principal("root", "user"))
    users.add_user(admin, "audrey", roles=[Role.AUDITOR])
    with pytest.raises(PermissionDeniedError):
        job_trial.try_stored(world.ws.acting_as(Principal("audrey", "user")), "people")


def test_a_directory_source_is_tried_on_the_entries_it_reads(world: World) -> None:
    jobs.run_job(world.ws, "people")
    job = edited(world, source={"store": "dir", "base_dn": PEOPLE, "filter": "(objectClass=person)"},
                 destination={"store": "dir", "container": f"ou=Copies,{PEOPLE}"},
                 mappings=[{"attribute": "uid", "from": "uid", "key": True}, {"attribute": "sn", "from": "sn"}])
    trial = job_trial.try_job(world.ws, job)
    assert sorted(e.dn for e in trial.entries) == [f"uid=1,ou=Copies,{PEOPLE}", f"uid=2,ou=Copies,{PEOPLE}"]
    assert trial.source == f"store 'dir' ({PEOPLE})"
