"""A key given twice in the source: the first record with the key decides.

Every later record with the key is a duplicate record error naming the key
and the first record's line, and the first record's outcome stands, whether
it was applied, unchanged, skipped or failed. Real components: a CSV file and
the embedded directory.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from idsync.connectors.csv import CsvReader
from idsync.connectors.local import LocalDirectory
from idsync.domain.changes import Change, ChangeOp
from idsync.domain.definitions import JobDefinition
from idsync.domain.entry import Attrs, Scope
from idsync.domain.results import Counts
from idsync.engine import runner
from idsync.engine.context import RunContext
from idsync.engine.hashing import job_fingerprint
from idsync.engine.planner import Planner
from idsync.engine.update_mode import HashState, UpdateFilter
from tests.jobs import PEOPLE, job_definition
from tests.unit.test_engine import ListRecorder

SUFFIX = "dc=example,dc=org"
HEADER = "id,last,mail"


@pytest.fixture
def directory(tmp_path: Path) -> LocalDirectory:
    d = LocalDirectory(tmp_path / "dir.db", suffix=SUFFIX)
    ou = Attrs({"objectClass": ["top", "organizationalUnit"], "ou": ["People"]})
    assert [o.error for o in d.apply([Change(ChangeOp.CREATE, PEOPLE, attrs=ou)])] == [None]
    return d


def job(**overrides: Any) -> JobDefinition:
    """uid from id (the key), cn and sn from last, mail required: an empty mail fails the record."""
    return job_definition([
        {"attribute": "uid", "from": "id", "key": True},
        {"attribute": "cn", "from": "last"},
        {"attribute": "sn", "from": "last"},
        {"attribute": "mail", "from": "mail", "required": True},
    ], **overrides)


def run(
    directory: LocalDirectory, path: Path, rows: list[str], jobdef: JobDefinition | None = None,
    update: UpdateFilter | None = None, steps: tuple[runner.ApplyStep, ...] = (),
) -> tuple[Counts, ListRecorder]:
    """Run the job over a CSV of *rows* (the header is line 1, so rows start at line 2)."""
    path.write_text(HEADER + "\n" + "".join(r + "\n" for r in rows), encoding="utf-8")
    jd = jobdef or job()
    recorder = ListRecorder()
    planner = Planner(jd, CsvReader(path), directory, RunContext.create(jd.name), update)
    return runner.run(planner, directory, recorder, 2, None, steps), recorder


def sn_of(directory: LocalDirectory, uid: str) -> tuple[str, ...] | None:
    hits = list(directory.search(SUFFIX, Scope.SUB, f"(uid={uid})", ["sn"]))
    assert len(hits) <= 1
    return hits[0].attrs.get_values("sn") if hits else None


def duplicate_lines(recorder: ListRecorder) -> list[int | None]:
    return [e.line for e in recorder.errors_seen if e.message.startswith("duplicate key")]


def test_a_second_record_of_a_new_key_is_a_duplicate_of_the_first(tmp_path: Path, directory: LocalDirectory) -> None:
    counts, rec = run(directory, tmp_path / "a.csv", ["1,First,a@x.org", "1,Second,b@x.org"])
    assert (counts.created, counts.errors) == (1, 1)
    assert sn_of(directory, "1") == ("First",)
    (error,) = rec.errors_seen
    assert error.line == 3 and error.key == "1"
    assert "duplicate key '1'" in error.message and "(first at line 2)" in error.message


def test_a_second_record_of_an_existing_key_is_a_duplicate_of_the_first(
    tmp_path: Path, directory: LocalDirectory
) -> None:
    run(directory, tmp_path / "a.csv", ["1,Before,a@x.org"])
    counts, rec = run(directory, tmp_path / "b.csv", ["1,First,a@x.org", "1,Second,b@x.org"])
    assert (counts.updated, counts.errors) == (1, 1)
    assert sn_of(directory, "1") == ("First",)
    (error,) = rec.errors_seen
    assert error.line == 3 and "duplicate key '1'" in error.message and "(first at line 2)" in error.message


def test_a_failed_first_record_still_decides_for_a_new_key(tmp_path: Path, directory: LocalDirectory) -> None:
    counts, rec = run(directory, tmp_path / "a.csv", ["1,First,", "1,Second,b@x.org", "2,Other,c@x.org"])
    assert (counts.created, counts.errors) == (1, 2)
    assert sn_of(directory, "1") is None and sn_of(directory, "2") == ("Other",)
    first, second = rec.errors_seen
    assert first.line == 2 and "required attribute 'mail'" in first.message
    assert second.line == 3 and "duplicate key '1'" in second.message and "(first at line 2)" in second.message


def test_a_failed_first_record_still_decides_for_an_existing_key(tmp_path: Path, directory: LocalDirectory) -> None:
    run(directory, tmp_path / "a.csv", ["1,Before,a@x.org"])
    counts, rec = run(directory, tmp_path / "b.csv", ["1,First,", "1,Second,b@x.org"])
    assert (counts.updated, counts.errors) == (0, 2)
    assert sn_of(directory, "1") == ("Before",)
    assert duplicate_lines(rec) == [3]
    assert "(first at line 2)" in rec.errors_seen[1].message


def test_every_later_record_names_the_first_line(tmp_path: Path, directory: LocalDirectory) -> None:
    rows = ["1,First,a@x.org", "2,Other,c@x.org", "1,Second,b@x.org", "1,Third,d@x.org"]
    counts, rec = run(directory, tmp_path / "a.csv", rows)
    assert (counts.created, counts.errors) == (2, 2)
    assert sn_of(directory, "1") == ("First",)
    assert duplicate_lines(rec) == [4, 5]
    assert all("(first at line 2)" in e.message for e in rec.errors_seen)


def test_three_records_with_a_failed_first_apply_nothing(tmp_path: Path, directory: LocalDirectory) -> None:
    counts, rec = run(directory, tmp_path / "a.csv", ["1,First,", "1,Second,b@x.org", "1,Third,d@x.org"])
    assert (counts.created, counts.errors) == (0, 3)
    assert sn_of(directory, "1") is None
    assert duplicate_lines(rec) == [3, 4]
    assert all("(first at line 2)" in e.message for e in rec.errors_seen[1:])


def test_a_later_record_that_fails_too_is_reported_as_a_duplicate(tmp_path: Path, directory: LocalDirectory) -> None:
    counts, rec = run(directory, tmp_path / "a.csv", ["1,First,a@x.org", "1,Second,"])
    assert (counts.created, counts.errors) == (1, 1)
    assert duplicate_lines(rec) == [3]


def test_a_key_matching_two_objects_fails_once_then_its_repeats_are_duplicates(
    tmp_path: Path, directory: LocalDirectory
) -> None:
    for cn in ("One", "Two"):
        twin = Attrs({"objectClass": ["inetOrgPerson"], "uid": ["1"], "cn": [cn], "sn": [cn]})
        assert [o.error for o in directory.apply([Change(ChangeOp.CREATE, f"cn={cn},{PEOPLE}", attrs=twin)])] == [None]
    counts, rec = run(directory, tmp_path / "a.csv", ["1,First,a@x.org", "1,Second,b@x.org"])
    assert (counts.updated, counts.errors) == (0, 2)
    assert "matches 2 objects" in rec.errors_seen[0].message
    assert duplicate_lines(rec) == [3]


def test_a_failed_first_record_decides_in_a_changed_only_run(tmp_path: Path, directory: LocalDirectory) -> None:
    """A changed-only run reads the directory only when a record needs it;
    a failed record claims its key all the same."""
    jd = job(update_mode="changed", changed_by={"hash": True})
    stored: dict[str, str] = {}

    def hashed() -> tuple[UpdateFilter, tuple[runner.ApplyStep, ...]]:
        state = HashState(dict(stored), job_fingerprint(jd), stored.update, batch_size=2)
        return UpdateFilter(hashes=state), (state,)

    run(directory, tmp_path / "a.csv", ["1,Same,a@x.org"], jd, *hashed())
    counts, rec = run(directory, tmp_path / "b.csv", ["1,Same,", "1,Same,a@x.org"], jd, *hashed())
    assert (counts.unchanged, counts.errors) == (0, 2)
    assert duplicate_lines(rec) == [3]


def test_a_cancelled_first_record_still_decides(tmp_path: Path, directory: LocalDirectory) -> None:
    """A record the job skips with cancel_row() was given all the same: a later one is a duplicate."""
    jd = job_definition([
        {"attribute": "uid", "from": "id", "key": True},
        {"attribute": "cn", "from": "last"},
        {"attribute": "sn", "from": "last"},
        {"attribute": "mail", "expression": "cancel_row() if not source['mail'] else source['mail']"},
    ])
    counts, rec = run(directory, tmp_path / "a.csv", ["1,First,", "1,Second,b@x.org"], jd)
    assert (counts.skipped, counts.created, counts.errors) == (1, 0, 1)
    assert sn_of(directory, "1") is None
    assert duplicate_lines(rec) == [3]
