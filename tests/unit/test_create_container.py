"""A job destination's create_container: previewed as creates, created by the run,
and honoured by a collection's preview for the jobs after the one that creates it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from idsync.connectors.local import LocalDirectory
from idsync.domain.changes import ChangeOp
from idsync.domain.entry import Scope
from idsync.domain.results import RunState
from idsync.errors import ConfigError, ConnectorError, NotFoundError
from idsync.services import collection_runs, collections, history, jobs
from tests.scheduler_world import SUFFIX, World, make_world
from tests.unit.conftest import copy_migrated

STAFF = f"ou=Staff,ou=Teams,{SUFFIX}"
MAPPINGS = [
    {"attribute": "uid", "from": "id", "key": True},
    {"attribute": "cn", "join": {"fields": ["first", "last"]}},
    {"attribute": "sn", "from": "last"},
]


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, migrated_sqlite: Path) -> Iterator[World]:
    monkeypatch.setenv("IDSYNC_HOME", str(tmp_path / "home"))
    copy_migrated(migrated_sqlite, tmp_path / "idsync.db")
    made = make_world(tmp_path)
    (tmp_path / "staff.csv").write_text("id,first,last\n7,Grace,Hopper\n8,Edsger,Dijkstra\n", encoding="utf-8")
    made.define("source", {"name": "staff", "kind": "csv", "path": str(tmp_path / "staff.csv")})
    yield made
    made.ws.close()


def staff_job(world: World, name: str = "staff", container: str = STAFF, **destination: Any) -> None:
    world.define("job", {
        "name": name, "source": "staff",
        "destination": {"store": "dir", "container": container, **destination},
        "mappings": MAPPINGS,
    })


def entries(world: World, base: str) -> list[str]:
    with LocalDirectory(world.root / "dir.db", SUFFIX) as d:
        try:
            return [e.dn for e in d.search(base, Scope.SUB)]
        except NotFoundError:
            return []


def test_without_create_container_a_missing_container_fails_the_preview(world: World) -> None:
    staff_job(world)
    with pytest.raises(ConnectorError, match="does not exist") as caught:
        jobs.preview_job(world.ws, "staff")
    assert caught.value.hint == "create that entry, or correct the job's destination"


def test_the_preview_shows_the_container_creates_first_and_writes_nothing(world: World) -> None:
    staff_job(world, create_container=True)
    result = jobs.preview_job(world.ws, "staff")
    changes = list(history.plan_changes(world.ws, result.plan.id))
    assert [(c.op, c.dn) for c in changes[:2]] == [
        (ChangeOp.CREATE, f"ou=Teams,{SUFFIX}"), (ChangeOp.CREATE, STAFF),
    ]
    assert changes[0].attrs is not None and changes[0].attrs["objectClass"] == ("top", "organizationalUnit")
    assert [c.dn for c in changes[2:]] == [f"uid=7,{STAFF}", f"uid=8,{STAFF}"]
    assert result.plan.counts.created == 4
    assert entries(world, f"ou=Teams,{SUFFIX}") == []


def test_the_run_creates_the_chain_then_needs_it_no_more(world: World) -> None:
    staff_job(world, create_container=True)
    run = jobs.run_job(world.ws, "staff")
    assert run.state is RunState.SUCCEEDED and run.counts.created == 4
    assert set(entries(world, f"ou=Teams,{SUFFIX}")) == {f"ou=Teams,{SUFFIX}", STAFF, f"uid=7,{STAFF}", f"uid=8,{STAFF}"}
    again = jobs.preview_job(world.ws, "staff")
    assert again.plan.counts.changed == 0, "the container exists now: nothing to create"


def test_applying_the_previewed_plan_creates_the_chain(world: World) -> None:
    staff_job(world, create_container=True)
    plan = jobs.preview_job(world.ws, "staff").plan
    run = jobs.run_job(world.ws, "staff", plan_id=plan.id)
    assert run.state is RunState.SUCCEEDED and run.counts.created == 4
    assert STAFF in entries(world, STAFF)


def test_a_container_no_class_fits_is_refused_when_the_job_is_saved(world: World) -> None:
    with pytest.raises(ConfigError, match="cannot tell which object class") as caught:
        jobs.save_job(world.ws, jobs.JobDefinition.model_validate({
            "name": "bad", "source": "staff",
            "destination": {"store": "dir", "container": f"cn=Users,{SUFFIX}", "create_container": True},
            "mappings": MAPPINGS,
        }))
    assert caught.value.field == "destination.container"


def test_a_collection_previews_a_job_writing_into_a_container_an_earlier_job_creates(world: World) -> None:
    staff_job(world, "first", create_container=True)
    world.define("source", {"name": "more", "kind": "csv", "path": str(world.root / "more.csv")})
    (world.root / "more.csv").write_text("id,first,last\n9,Barbara,Liskov\n", encoding="utf-8")
    world.define("job", {
        "name": "second", "source": "more",
        "destination": {"store": "dir", "container": STAFF, "create_container": True},
        "mappings": MAPPINGS,
    })
    world.define("job", {
        "name": "third", "source": "more",
        "destination": {"store": "dir", "container": f"ou=Teams,{SUFFIX}", "scope": "one"},
        "mappings": [*MAPPINGS[:2], {"attribute": "sn", "from": "first"}],
    })
    world.collection("c", ["first", "second", "third"])
    preview = collections.preview_collection(world.ws, "c")
    assert [j.error for j in preview.jobs] == [None, None, None]
    created = {j.job: [c.dn for c in history.plan_changes(world.ws, j.plan.id)] for j in preview.jobs if j.plan}
    assert created["first"][:2] == [f"ou=Teams,{SUFFIX}", STAFF]
    assert created["second"] == [f"uid=9,{STAFF}"], "the container is the first job's to create"
    assert created["third"] == [f"uid=9,ou=Teams,{SUFFIX}"]
    assert entries(world, f"ou=Teams,{SUFFIX}") == []
    report = collection_runs.run_collection(world.ws, "c")
    assert [j.state for j in report.jobs] == [RunState.SUCCEEDED] * 3


def test_a_collection_previews_a_job_writing_into_an_object_an_earlier_job_creates(world: World) -> None:
    (world.root / "ous.csv").write_text("ou\nPeople\nTeams\n", encoding="utf-8")
    staff_job(world, "into-teams", container=f"ou=Teams,{SUFFIX}")
    world.collection("c", ["ou", "into-teams"])
    preview = collections.preview_collection(world.ws, "c")
    assert [j.error for j in preview.jobs] == [None, None]
    assert [j.plan.counts.created for j in preview.jobs if j.plan] == [1, 2]
