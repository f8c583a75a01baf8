"""Definitions checked when saved: a job against its source and store, a
one-time trigger against the clock, and a definitions file read through to
its last error."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from idsync.errors import ConfigError
from idsync.services import definitions, jobs, schedules, yamlio
from tests.scheduler_world import PEOPLE, World, wall


def people(**changes: Any) -> Any:
    data = {
        "name": "staff", "source": "people",
        "destination": {"store": "dir", "container": PEOPLE},
        "mappings": [
            {"attribute": "uid", "from": "id", "key": True},
            {"attribute": "cn", "join": {"fields": ["first", "last"]}},
            {"attribute": "sn", "from": "last"},
            {"attribute": "mail", "from": "email"},
        ],
    }
    data.update(changes)
    return definitions.parse("job", data)


def with_email_column(world: World) -> None:
    (world.root / "people.csv").write_text("id,first,last,email\n1,Ada,Lovelace,ada@example.org\n", encoding="utf-8")


def test_a_job_reading_a_field_the_source_lacks_is_refused_when_saved(world: World) -> None:
    with pytest.raises(ConfigError, match=r"mapping 'mail' reads field 'email', which .* does not have"):
        jobs.save_job(world.ws, people())
    assert "staff" not in [j.name for j in definitions.list_definitions(world.ws, "job")]


def test_a_job_writing_an_attribute_the_schema_lacks_is_refused_when_saved(world: World) -> None:
    with_email_column(world)
    mappings = [*people().model_dump(by_alias=True)["mappings"][:3], {"attribute": "emial", "from": "email"}]
    with pytest.raises(ConfigError, match="attribute 'emial' is not in the schema of store 'dir'"):
        jobs.save_job(world.ws, people(mappings=mappings))


def test_a_job_that_fits_its_source_and_store_is_saved_without_warning(world: World) -> None:
    with_email_column(world)
    saved = jobs.save_checked(world.ws, people())
    assert (saved.outcome, saved.warning) == ("created", None)


def test_offline_skips_the_connected_check(world: World) -> None:
    assert jobs.save_checked(world.ws, people(), offline=True).outcome == "created"


def test_a_job_whose_source_cannot_be_read_is_saved_with_a_warning(world: World) -> None:
    (world.root / "people.csv").unlink()
    saved = jobs.save_checked(world.ws, people())
    assert saved.outcome == "created"
    assert saved.warning is not None
    assert "saved without checking its fields" in saved.warning and "checked before each run" in saved.warning


# ---------------------------------------------------------------- one-time triggers


def once(start: datetime, **extra: Any) -> Any:
    return definitions.parse("schedule", {"name": "once", "triggers": [{"kind": "once", "start": wall(start)}], **extra})


def test_a_one_time_trigger_in_the_past_is_refused_with_the_reason(world: World) -> None:
    past = datetime.now(UTC) - timedelta(hours=2)
    with pytest.raises(ConfigError, match=r"trigger 1 \(once at .* UTC\) is in the past .*it would never run") as caught:
        schedules.save_schedule(world.ws, once(past))
    assert caught.value.field == "triggers" and caught.value.hint


def test_a_stored_one_time_trigger_that_already_ran_does_not_block_another_edit(world: World) -> None:
    soon = datetime.now(UTC) + timedelta(minutes=5)
    schedules.save_schedule(world.ws, once(soon))
    later = lambda: soon + timedelta(hours=1)  # noqa: E731 - the trigger has fired by then
    assert schedules.save_schedule(world.ws, once(soon, description="edited"), clock=later) == "updated"
    with pytest.raises(ConfigError, match="is in the past"):
        schedules.save_schedule(world.ws, once(soon - timedelta(minutes=1)), clock=later)


# ---------------------------------------------------------------- apply -f


def test_apply_reports_every_error_of_the_file_with_its_line(world: World, tmp_path: Path) -> None:
    past = wall(datetime.now(UTC) - timedelta(days=1))
    spec = tmp_path / "all.yaml"
    spec.write_text(
        "sources:\n"
        "  - name: broken\n"
        "    kind: csv\n"
        "    delimiter: ';;'\n"
        "    path: x.csv\n"
        "jobs:\n"
        "  - name: typo\n"
        "    source: people\n"
        f"    destination: {{store: dir, container: '{PEOPLE}'}}\n"
        "    mappings:\n"
        "      - {attribute: uid, from: id, key: true}\n"
        "      - {attribute: sn, from: lastname}\n"
        "  - name: typo\n"
        "    source: people\n"
        f"    destination: {{store: dir, container: '{PEOPLE}'}}\n"
        "    mappings: [{attribute: uid, from: id, key: true}]\n"
        "schedules:\n"
        "  - name: gone\n"
        f"    triggers: [{{kind: once, start: '{past}'}}]\n",
        encoding="utf-8",
    )
    with pytest.raises(yamlio.FileErrors) as caught:
        yamlio.apply_file(world.ws, spec)
    errors = caught.value.errors
    assert len(errors) == 4, errors
    assert errors[0].startswith(f"{spec}:4: ") and "delimiter" in errors[0]
    assert errors[1].startswith(f"{spec}:7: ") and "reads field 'lastname'" in errors[1]
    assert errors[2].startswith(f"{spec}:13: ") and "defined twice" in errors[2]
    assert errors[3].startswith(f"{spec}:18: ") and "is in the past" in errors[3]
    assert caught.value.message.startswith(f"{spec}: 4 errors, nothing saved:")
    assert definitions.list_definitions(world.ws, "schedule") == []


def test_apply_offline_saves_a_job_it_did_not_check(world: World, tmp_path: Path) -> None:
    spec = tmp_path / "job.yaml"
    spec.write_text(
        "jobs:\n  - name: typo\n    source: people\n"
        f"    destination: {{store: dir, container: '{PEOPLE}'}}\n"
        "    mappings: [{attribute: uid, from: id, key: true}, {attribute: sn, from: lastname}]\n",
        encoding="utf-8",
    )
    with pytest.raises(yamlio.FileErrors, match="reads field 'lastname'"):
        yamlio.apply_file(world.ws, spec)
    assert [i.outcome for i in yamlio.apply_file(world.ws, spec, offline=True)] == ["created"]


def test_a_job_whose_store_is_in_the_same_file_is_applied_with_a_warning(world: World, tmp_path: Path) -> None:
    spec = tmp_path / "new.yaml"
    spec.write_text(
        f"stores:\n  - {{name: other, kind: local, path: '{tmp_path / 'other.db'}'}}\n"
        "jobs:\n  - name: copy\n    source: people\n"
        "    destination: {store: other, container: 'dc=example,dc=org'}\n"
        "    mappings: [{attribute: uid, from: id, key: true}]\n",
        encoding="utf-8",
    )
    applied = {i.name: i for i in yamlio.apply_file(world.ws, spec)}
    assert applied["other"].warning is None
    assert applied["copy"].warning is not None and "defined in the same file" in applied["copy"].warning
